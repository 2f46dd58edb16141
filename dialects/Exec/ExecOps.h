// The exec dialect: planned buffers and the commands an artifact stores.
#ifndef GAI_DIALECTS_EXEC_EXECOPS_H
#define GAI_DIALECTS_EXEC_EXECOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::exec {
/// The spaces a buffer can live in; the artifact schema's Space, in order.
enum class Space : int64_t { Arena, Weights, State, Input, Output };
StringRef spaceName(Space space);
} // namespace mlir::exec

#include "dialects/Exec/ExecDialect.h.inc"
#include "dialects/Exec/ExecEnums.h.inc"

namespace mlir::exec {
/// A state tensor's role and the weight it belongs to (empty for a cache).
struct StateName {
  StateRole role;
  StringRef weight;
};
/// Reads the names the frontend and the training passes give gai IR's
/// state (`param.`, `grad.`, `adam.m.`, `adam.v.`, `cache.`); none for a
/// name that is not state. The one place those prefixes are read.
std::optional<StateName> parseStateName(StringRef name);
} // namespace mlir::exec

#define GET_ATTRDEF_CLASSES
#include "dialects/Exec/ExecAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/Exec/ExecOps.h.inc"

#endif // GAI_DIALECTS_EXEC_EXECOPS_H
