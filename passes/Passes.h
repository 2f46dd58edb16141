// Declarations and registration of the gai passes.
#ifndef GAI_PASSES_PASSES_H
#define GAI_PASSES_PASSES_H

#include "dialects/Gai/GaiDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
namespace gai {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// The attention rewrite, for pipelines that run it beside other patterns.
void populateAttentionRewritePatterns(RewritePatternSet &patterns);

/// matmul (+ bias) (+ activation) (+ residual) -> gai.gemm.
void populateGemmEpiloguePatterns(RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace gai
} // namespace mlir

#endif // GAI_PASSES_PASSES_H
