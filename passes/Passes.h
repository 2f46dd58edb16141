// Declarations and registration of the gai passes.
#ifndef GAI_PASSES_PASSES_H
#define GAI_PASSES_PASSES_H

#include "dialects/Gai/GaiDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
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
/// `libraryActivations`, only relu and tanh-gelu are absorbed; with
/// `narrowResidualRows` > 0, a 2:4 or fp8 product of more rows takes no
/// f32 residual.
void populateGemmEpiloguePatterns(RewritePatternSet &patterns,
                                  bool libraryActivations = false,
                                  int64_t narrowResidualRows = 0);

/// Reverse mode at `b`'s insertion point: seeds the scalar `loss` with 1,
/// runs the VJP of each op of `forward` (in program order) in reverse and
/// returns the adjoint of each of `wrt`, null where the loss does not depend
/// on it. An op without a rule is reported on the op.
FailureOr<SmallVector<Value>> buildGradients(ImplicitLocOpBuilder &b,
                                             ArrayRef<Operation *> forward,
                                             Value loss, ArrayRef<Value> wrt);

/// Σ x² over every element of x, as an f32 scalar.
Value buildSumOfSquares(ImplicitLocOpBuilder &b, Value x);

/// optimizer_step's scalar arguments, in this order, and their names.
struct AdamwScalars {
  static constexpr unsigned kCount = 8;
  static constexpr const char *kNames[kCount] = {
      "lr", "beta1", "beta2", "eps", "weight_decay", "grad_scale",
      "bias_correction1", "bias_correction2_sqrt"};
  Value lr, beta1, beta2, eps, decay, gradScale, correction1, correction2Sqrt;
  static AdamwScalars fromArguments(ValueRange args);
};
struct AdamwUpdate {
  Value param, m, v;
};
/// One AdamW step of parameter `p` (decayed when `decay`) with gradient
/// `g` and moments `m`, `v`, all of one shape, in PyTorch's order.
AdamwUpdate buildAdamwUpdate(ImplicitLocOpBuilder &b, const AdamwScalars &scalars,
                             Value p, Value g, Value m, Value v, bool decay);

/// The device grid the sharding passes build (`shard.grid @mesh`) and its
/// axes: data parallel, then tensor parallel.
constexpr llvm::StringLiteral kMeshSymbol = "mesh";
constexpr int16_t kDataAxis = 0;
constexpr int16_t kTensorAxis = 1;

/// On a column-parallel matmul of a tensor-parallel loss: the gradient of
/// its lhs is each rank's partial sum, which autodiff sums over the grid's
/// tp axis (axis 1) of the symbol it names.
constexpr llvm::StringLiteral kPartialInputGrad = "gai.tp_partial_input_grad";
/// On an op whose one result only column-parallel matmuls read: its
/// gradient, once complete, is summed over tp (one all-reduce for them all).
constexpr llvm::StringLiteral kPartialResultGrad = "gai.tp_partial_result_grad";
/// On an op whose results carry no gradient (a shift that cancels out, as
/// the max of a log-sum-exp): autodiff passes nothing back through it.
constexpr llvm::StringLiteral kNoGrad = "gai.no_grad";

/// A device grid: data- and tensor-parallel ranks.
struct MeshSpec {
  int64_t dp = 1, tp = 1;
};
/// "dp=D[,tp=T]" (either may be left out, each at most once), or an error.
std::optional<MeshSpec> parseMeshSpec(StringRef text, std::string &error);

/// A splat zero of `like`'s type.
Value zerosLike(ImplicitLocOpBuilder &b, Value like);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace gai
} // namespace mlir

#endif // GAI_PASSES_PASSES_H
