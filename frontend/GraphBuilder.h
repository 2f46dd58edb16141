// Builds the gai IR of a model: func.func @forward(tokens) -> logits.
#ifndef GAI_FRONTEND_GRAPHBUILDER_H
#define GAI_FRONTEND_GRAPHBUILDER_H

#include "frontend/ModelSpec.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace gai {

struct BuildOptions {
  int64_t batch = 0;  ///< 0: the spec's compile.max_batch
  int64_t seqLen = 0; ///< 0: compile.max_seq_len, else the model's max
  std::string dtype;  ///< f32, bf16, f16; empty: compile.dtype
};

/// Emits `func.func @forward(%tokens: tensor<BxTxi32>) -> tensor<BxTxVx..>`
/// of primitive gai ops. Attention is written out naively (QKᵀ·scale, causal
/// mask, softmax, ·V, K/V repeated for grouped queries): the pattern the
/// attention-rewriting pass finds. Parameters are `gai.param` ops named as in
/// the weights file.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
buildForward(mlir::MLIRContext &context, const ModelSpec &spec,
             const BuildOptions &options);

} // namespace gai

#endif // GAI_FRONTEND_GRAPHBUILDER_H
