// Builds the gai IR of a model: func.func @forward(tokens) -> logits.
#ifndef GAI_FRONTEND_GRAPHBUILDER_H
#define GAI_FRONTEND_GRAPHBUILDER_H

#include "frontend/ModelSpec.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace gai {

/// The functions to build.
struct Entries {
  bool forward = true; ///< @forward(tokens) -> logits of every position
  bool prefill = false; ///< a generation step over a whole prompt
  bool decode = false;  ///< a generation step of one token
  /// @eval_loss(tokens, targets) -> mean cross-entropy: what training
  /// differentiates (see --gai-train-step).
  bool loss = false;
};

struct BuildOptions {
  int64_t batch = 0;  ///< 0: the spec's compile.max_batch
  int64_t seqLen = 0; ///< @forward's length and the KV cache's size;
                      ///< 0: compile.max_seq_len, else the model's max
  std::string dtype;  ///< f32, bf16, f16; empty: compile.dtype
  Entries entries = {};
  int64_t prefillLen = 0; ///< tokens per @prefill row; 0: seqLen
  /// @eval_loss's rows (one micro-batch) and tokens per row; 0: from the
  /// spec's train section (batch / micro_batches, seq_len), else the
  /// generation batch and length.
  int64_t trainBatch = 0;
  int64_t trainSeqLen = 0;
  /// Data-parallel ranks: each builds the loss over its 1/dataParallel of
  /// the micro-batch's rows (which must divide).
  int64_t dataParallel = 1;
  /// Keeps a bf16 or f16 model's residual stream (the hidden state between
  /// layers, and the weights of the norms reading it) in f32. Off: it is
  /// rounded to the model's type at every residual add.
  bool f32Residual = true;
};

/// Emits `func.func @forward(%tokens: tensor<BxTxi32>) -> tensor<BxTxVx..>`
/// of primitive gai ops, and the generation steps @prefill and @decode
/// (their KV caches are explicit arguments and results) when asked. Attention is written out naively (QKᵀ·scale, causal
/// mask, softmax, ·V, K/V repeated for grouped queries): the pattern the
/// attention-rewriting pass finds. Parameters are `gai.param` ops named as in
/// the weights file.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
buildForward(mlir::MLIRContext &context, const ModelSpec &spec,
             const BuildOptions &options);

} // namespace gai

#endif // GAI_FRONTEND_GRAPHBUILDER_H
