// Checks a weights file against the parameters a module uses.
#ifndef GAI_FRONTEND_WEIGHTCHECK_H
#define GAI_FRONTEND_WEIGHTCHECK_H

#include "frontend/ModelSpec.h"
#include "gai/WeightSet.h"

#include "mlir/IR/BuiltinOps.h"

namespace gai {

/// Succeeds when every `gai.param` of `module` has a tensor of its shape and
/// a convertible dtype in `weights`, and they hold nothing else. Otherwise
/// the error lists every missing, extra and mis-shaped tensor, one per line.
llvm::Error checkWeights(mlir::ModuleOp module, const WeightSet &weights,
                         const ModelSpec &spec);

/// The parameter name a file's tensor stands for, or "" for tensors that
/// carry no weights (GPT-2 checkpoints store attention-mask buffers and may
/// omit the "transformer." prefix).
std::string paramNameOf(const ModelSpec &spec, llvm::StringRef tensorName);

} // namespace gai

#endif // GAI_FRONTEND_WEIGHTCHECK_H
