// The gai passes. Each lives in its own file and has its own lit test,
// test/passes/<flag>.mlir.
#ifndef GAI_PASSES_TD
#define GAI_PASSES_TD

include "mlir/Pass/PassBase.td"

def GaiAttentionRewrite : Pass<"gai-attention-rewrite", "func::FuncOp"> {
  let summary = "Replace naive attention with gai.flash_attention";
  let description = [{
    Finds `softmax(select(causal_mask, Q·Kᵀ·scale, -inf))·V`. K and V may be
    repeated along the head axis for grouped queries, and a softcap
    (c·tanh(s / c)) may follow the scale. It replaces the pattern with
    `gai.flash_attention` {scale, kv_groups, causal, window, softcap}. The
    rewrite runs only when it is exact. It leaves these unchanged: a softmax
    over another axis, a mask that is not causal, a scale that is not the same
    for every element, a fill value other than -inf (or the type's lowest), and
    K and V repeated differently.
  }];
  let dependentDialects = ["::mlir::gai::GaiDialect"];
}

#endif // GAI_PASSES_TD
