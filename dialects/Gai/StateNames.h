// The names gai IR gives a training step's state tensors: a prefix by role,
// then the weight's name. The frontend and the training passes write them;
// exec::parseStateName reads them.
#ifndef GAI_DIALECTS_GAI_STATENAMES_H
#define GAI_DIALECTS_GAI_STATENAMES_H

#include "llvm/ADT/StringRef.h"

namespace mlir::gai {

inline constexpr llvm::StringLiteral kParamPrefix = "param.";
inline constexpr llvm::StringLiteral kGradPrefix = "grad.";
inline constexpr llvm::StringLiteral kFirstMomentPrefix = "adam.m.";
inline constexpr llvm::StringLiteral kSecondMomentPrefix = "adam.v.";
inline constexpr llvm::StringLiteral kCachePrefix = "cache.";
/// A master weight's low-precision copy, which @train_update writes with
/// the master and @refresh_param_copies makes from it.
inline constexpr llvm::StringLiteral kParamCopyPrefix = "param_copy.";
inline constexpr llvm::StringLiteral kRefreshParamCopies = "refresh_param_copies";

} // namespace mlir::gai

#endif // GAI_DIALECTS_GAI_STATENAMES_H
