// Attention's backward on CUDA, and the forward's row log-sum-exps it reads.
#ifndef GAI_RUNTIME_HAL_CUDA_ATTENTIONGRAD_H
#define GAI_RUNTIME_HAL_CUDA_ATTENTIONGRAD_H

#include "hal/cuda/Kernels.h"

namespace gai::cuda {

/// cmd::AttentionGrad's pointers and shape; no query_start (training).
struct AttentionGradParams {
  const void *q, *k, *v, *out, *outGrad;
  const float *lse;
  void *qGrad, *kGrad, *vGrad;
  int64_t batch, heads, kvHeads, queries, keys, headDim, valueDim, window;
  float scale, softcap;
  bool causal;
  // The tensor-core path's two-kernel form, whose sums run in a fixed
  // order (bit-for-bit repeatable); the default sums dQ by atomics.
  bool deterministic = false;
  // The default form on mma.sync where it would run on wgmma (Hopper, head
  // dim 64): for comparisons and tests of both.
  bool mmaSyncOnly = false;
  // The order of the key-side blocks under a causal mask, whose work falls
  // with their keys' place: heads go in groups, and a group's blocks run
  // heaviest keys first, each group about `blockSpread` waves of the
  // blocks the GPU holds at once. 0 (or less): head after head, each
  // heaviest first, so a late head's heavy blocks make the tail. Two
  // waves measured 5.7% faster than head after head at llama-1b's shape
  // and 4.2% at gpt2-124m's on an H100 (one and four: 4.3% and 5.8%, 5.6%
  // and 0%): more heads in flight cost L2 less than the tail did.
  float blockSpread = 2.0f;
  // Set by attentionGrad from blockSpread: the groups of (batch, head) pairs.
  int orderGroups = 0;
  // Where each tensor's rows lie; unset (zero): packed.
  RowStrides qStrides, kStrides, vStrides, outStrides, outGradStrides, qGradStrides,
      kGradStrides, vGradStrides;
};

/// Whether the tensor-core kernel takes `p`: bf16, head dim 64 or 128,
/// rows 16-byte aligned (the others take any strides).
bool useFlashAttentionGrad(Elem e, const AttentionGradParams &p);
/// Whether attentionGrad runs `p` on Hopper's wgmma (the default form at
/// head dim 64 on a compute capability 9.0 device, in an sm_90a build).
bool attentionGradOnWgmma(Elem e, const AttentionGradParams &p);
/// The f32 workspace attentionGrad needs: D per query row, and on the
/// tensor-core path the f32 sums of dQ (and under GQA of dK and dV) before
/// they become bf16; the deterministic form keeps each query head's dK and
/// dV under GQA instead.
int64_t attentionGradWorkspaceFloats(Elem e, const AttentionGradParams &p);
/// Writes qGrad, kGrad and vGrad (head dims up to 256).
void attentionGrad(Elem e, const AttentionGradParams &p, float *workspace,
                   cudaStream_t stream);

/// p.lse from q and k, for a forward that ran other than by the flash
/// kernel (which writes them itself).
void attentionRowLse(Elem e, const AttentionParams &p, cudaStream_t stream);

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_ATTENTIONGRAD_H
