// Declarations and registration of the gai passes.
#ifndef GAI_PASSES_PASSES_H
#define GAI_PASSES_PASSES_H

#include "dialects/Gai/GaiDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace gai {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// The attention rewrite, for pipelines that run it beside other patterns.
void populateAttentionRewritePatterns(RewritePatternSet &patterns);

/// matmul (+ bias) (+ activation) (+ residual) -> gai.gemm; with
/// `libraryActivations`, only relu and tanh-gelu are absorbed.
void populateGemmEpiloguePatterns(RewritePatternSet &patterns,
                                  bool libraryActivations = false);

/// Reverse mode at `b`'s insertion point: seeds the scalar `loss` with 1,
/// runs the VJP of each op of `forward` (in program order) in reverse and
/// returns the adjoint of each of `wrt`, null where the loss does not depend
/// on it. An op without a rule is reported on the op.
FailureOr<SmallVector<Value>> buildGradients(ImplicitLocOpBuilder &b,
                                             ArrayRef<Operation *> forward,
                                             Value loss, ArrayRef<Value> wrt);

/// A splat zero of `like`'s type.
Value zerosLike(ImplicitLocOpBuilder &b, Value like);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace gai
} // namespace mlir

#endif // GAI_PASSES_PASSES_H
