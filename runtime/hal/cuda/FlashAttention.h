// Prefill attention on the tensor cores (bf16, head dims 64 and 128).
#ifndef GAI_RUNTIME_HAL_CUDA_FLASHATTENTION_H
#define GAI_RUNTIME_HAL_CUDA_FLASHATTENTION_H

#include "hal/cuda/Kernels.h"

namespace gai::cuda {

/// Whether flashAttention takes `p` (the caller knows it is bf16): head
/// dim 64 or 128 for queries and values, and enough queries to fill tiles.
bool useFlashAttention(const AttentionParams &p);

/// Whether flashAttention runs `p` on Hopper's wgmma (head dim 64 on a
/// compute capability 9.0 device, in an sm_90a build).
bool flashAttentionOnWgmma(const AttentionParams &p);

void flashAttention(const AttentionParams &p, ErrorWord *error, int step,
                    cudaStream_t stream);

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_FLASHATTENTION_H
