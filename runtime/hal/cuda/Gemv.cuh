// What the decode GEMVs over float weights (Gemv.cu) and over quantized
// ones (QuantGemv.cu) share: one launch of several parts, streaming weight
// loads, the L2 prefetch for the next attention and a folded norm's weight.
#ifndef GAI_RUNTIME_HAL_CUDA_GEMV_CUH
#define GAI_RUNTIME_HAL_CUDA_GEMV_CUH

#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

namespace gai::cuda {

/// A weight load that skips L1: each weight byte is read once per step.
__device__ __forceinline__ uint4 loadStreaming(const void *p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

struct GemvLaunch {
  GemvPart parts[kGemvParts];
  int64_t blockEnd[kGemvParts]; // the blocks of parts [0, p]
  int count;
  bool constantWeights;
  GemvPrefetch prefetch;
  GreedyPick pick; // with the kernel's Pick
};

/// The launch of `parts` with `columns` output columns a block, or a
/// launch of no blocks (blockEnd[count - 1] == 0).
inline GemvLaunch gemvLaunch(const GemvPart *parts, int count, int64_t columns,
                             bool constantWeights, const GemvPrefetch &prefetch,
                             const GreedyPick *pick) {
  GemvLaunch launch{};
  launch.count = count;
  launch.constantWeights = constantWeights;
  launch.prefetch = prefetch;
  if (pick)
    launch.pick = *pick;
  int64_t blocks = 0;
  for (int p = 0; p < count; ++p) {
    launch.parts[p] = parts[p];
    blocks += (parts[p].n + columns - 1) / columns;
    launch.blockEnd[p] = blocks;
  }
  return launch;
}

/// Asks L2 for the `chunk`-th 16 KB of the prefetch regions (none past
/// their end): one thread, one bulk prefetch, before the block's wait.
__device__ __forceinline__ void prefetchChunk(const GemvPrefetch &prefetch, int64_t chunk) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int64_t kPrefetchChunk = 16384;
  for (int r = 0; r < 2; ++r) {
    int64_t chunks = (prefetch.bytes[r] + kPrefetchChunk - 1) / kPrefetchChunk;
    if (chunk < chunks) {
      int64_t offset = chunk * kPrefetchChunk;
      auto bytes = static_cast<uint32_t>(min(kPrefetchChunk, prefetch.bytes[r] - offset));
      asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(
                       static_cast<const char *>(prefetch.region[r]) + offset),
                   "r"(bytes)
                   : "memory");
      return;
    }
    chunk -= chunks;
  }
#endif
}

/// The part this block's `Columns` columns belong to, and the first of them.
template <int Columns>
__device__ __forceinline__ int partOfBlock(const GemvLaunch &launch, int64_t &firstColumn) {
  int part = 0;
  while (part + 1 < launch.count && blockIdx.x >= launch.blockEnd[part])
    ++part;
  int64_t firstBlock = part == 0 ? 0 : launch.blockEnd[part - 1];
  firstColumn = (blockIdx.x - firstBlock) * Columns;
  return part;
}

/// A folded norm's scale for column `col`: its weight (C's type) + offset.
template <typename T>
__device__ __forceinline__ float normWeight(const GemvPart &g, int64_t col) {
  float w = g.wideC ? static_cast<const float *>(g.norm.weight)[col]
                    : toFloat(static_cast<const T *>(g.norm.weight)[col]);
  return w + g.norm.offset;
}

/// Row `row`'s sum x of column `col` of an ungated part, finished:
/// act(x + bias) + residual into C (f32 for wideC), at C's element `at`.
/// Returns it as stored. (`bias` is g.bias, which a caller looping over
/// rows reads once.)
template <typename T>
__device__ __forceinline__ float storeColumn(const GemvPart &g, const T *bias, float x,
                                             int64_t row, int64_t col, int64_t &at) {
  if (bias)
    x += toFloat(bias[col]);
  x = activate(x, g.activation);
  at = row * g.n + col;
  if (g.wideC) {
    if (g.residual)
      x += static_cast<const float *>(g.residual)[at];
    static_cast<float *>(g.c)[at] = x;
    return x;
  }
  if (g.residual)
    x += toFloat(static_cast<const T *>(g.residual)[at]);
  T stored = fromFloat<T>(x);
  static_cast<T *>(g.c)[at] = stored;
  return toFloat(stored);
}

/// gemvParts over quantized weights (QuantGemv.cu), greedy pick included.
void quantGemvParts(Elem e, const void *a, const GemvPart *parts, int count, int64_t m,
                    int64_t k, bool constantWeights, cudaStream_t stream,
                    const GemvPrefetch &prefetch, const GreedyPick *pick);

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_GEMV_CUH
