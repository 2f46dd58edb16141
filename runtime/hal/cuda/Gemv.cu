// Decode-sized GEMMs: a few rows against weights stored [n, k]. They are
// memory bound, so what counts is how many weight bytes are in flight, and
// how early: cuBLASLt's kernels reach neither, so this is hand written.
// (Bulk-copying each block's weight tile into shared memory, Hopper's TMA
// way, reached 1.9 TB/s over a step's GEMVs against these loads' 2.6.)
#include "hal/cuda/Gemv.cuh"

namespace gai::cuda {
namespace {

/// acc[r] += the 16 bytes of weights `wv` · a[r, i : i + 16 bytes], for
/// the m ≤ Rows rows.
template <typename T, int Rows>
__device__ __forceinline__ void gemvChunk(uint4 wv, const T *a, int m, int64_t k,
                                          int64_t i, float (&acc)[Rows]) {
  constexpr int kVec = 16 / sizeof(T);
  float wf[8], af[8];
  unpack16(wv, wf, a);
#pragma unroll
  for (int r = 0; r < Rows; ++r) {
    if (r >= m)
      break;
    unpack16(*reinterpret_cast<const uint4 *>(a + r * k + i), af, a);
#pragma unroll
    for (int j = 0; j < kVec; ++j)
      acc[r] += wf[j] * af[j];
  }
}

/// The same for 16 bytes of 2:4 values (eight kept bf16 weights, the 16 k
/// from i) placed by `meta` (their four groups' nibbles): each weight takes
/// its A value out of the group's four by a byte permute. On the CUDA cores,
/// as the dense chunks: at batch-1 decode a permute, a mask and an FMA a
/// weight are well inside what the SMs issue at the memory's speed. On an
/// H100's llama-1b decode step this streamed 2:4 weights at 1.57 TB/s, the
/// quantized GEMV's mma tiles at 1.55, bf16 rows here at 2.46: it keeps
/// the folded norms, gates and greedy pick of this kernel with one loop.
template <int Rows>
__device__ __forceinline__ void gemvChunk24(uint4 wv, uint32_t meta, const __nv_bfloat16 *a,
                                            int m, int64_t k, int64_t i, float (&acc)[Rows]) {
  float wf[8];
  unpack16(wv, wf, a);
  // prmt selectors: A's bf16 at slot s of a group into the high half.
  uint32_t select[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const uint32_t slot = meta >> (2 * j) & 3u; // j's nibble half: i0, then i1
    select[j] = 0x1000u + 0x2222u * slot;
  }
  // A malformed group (i0 == i1) holds its second value alone, as
  // decompress24 reads it.
#pragma unroll
  for (int g = 0; g < 4; ++g)
    if (select[2 * g] == select[2 * g + 1])
      wf[2 * g] = 0.0f;
#pragma unroll
  for (int r = 0; r < Rows; ++r) {
    if (r >= m)
      break;
    const auto *row = reinterpret_cast<const uint4 *>(a + r * k + i);
    const uint4 lo = row[0], hi = row[1];
    const uint32_t words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int group = j / 2;
      const uint32_t x =
          __byte_perm(words[2 * group], words[2 * group + 1], select[j]) & 0xFFFF0000u;
      acc[r] += wf[j] * __uint_as_float(x);
    }
  }
}

constexpr int kColumnsPerBlock = 8; // a warp per column
constexpr int kThreads = kColumnsPerBlock * 32;

/// Sums a warp's partial dot products of column `col` and writes, for each
/// row, act(sum + bias) + residual, or with a gate (Weights = 2: sums[0]
/// the gate's, sums[1] the up product's) act(gate) · up. A normed A's
/// sums are scaled by `rowScale` first; with a norm to make, lane 0 also
/// writes the column's norm.out and adds its square (`normScale`: the
/// column's norm weight). Picking (keys not null), lane 0 also leaves each
/// row's greedyPickKey of what it wrote.
template <typename T, int Rows, int Weights>
__device__ __forceinline__ void finishColumn(float (&acc)[Weights][Rows], const GemvPart &g,
                                             int64_t col, int m, int lane,
                                             const float (&rowScale)[Rows], float normScale,
                                             double *squares, unsigned long long *keys) {
  const T *bias = static_cast<const T *>(g.bias);
#pragma unroll
  for (int r = 0; r < Rows; ++r) {
    if (r >= m)
      break;
    float x = warpSum(acc[0][r]) * rowScale[r];
    if constexpr (Weights == 2) {
      float up = warpSum(acc[1][r]) * rowScale[r];
      if (lane == 0)
        static_cast<T *>(g.c)[r * g.n + col] = fromFloat<T>(activate(x, g.activation) * up);
    } else if (lane == 0) {
      int64_t at;
      const float y = storeColumn<T>(g, bias, x, r, col, at); // as stored
      if (keys) // the stored logit: the host picks among the rounded ones
        keys[r] = greedyPickKey(y, col);
      if (g.norm.out) {
        static_cast<T *>(g.norm.out)[at] = fromFloat<T>(y * normScale);
        squares[r] = static_cast<double>(y) * y;
      }
    }
  }
}

/// A norm-making GEMV block's end: each row's squares of the block's
/// columns go to the row's sum, one atomic a block. (One a warp, 8 times as
/// many on one address, made llama-1b's decode step 7% slower.) Nobody
/// waits for it: the readers are later kernels.
template <int Rows>
__device__ __forceinline__ void offerSquares(double *sums,
                                             const double (&squares)[kColumnsPerBlock][Rows],
                                             int m) {
  __syncthreads();
  const int r = threadIdx.x;
  if (r < m) {
    double sum = 0;
#pragma unroll
    for (int w = 0; w < kColumnsPerBlock; ++w)
      sum += squares[w][r];
    atomicAdd(&sums[r], sum);
  }
}

/// Each row's 1/rms from a folded norm's sums of squares (all 1 without).
template <int Rows>
__device__ __forceinline__ void rowScales(const double (&squares)[Rows], const GemvPart &g,
                                          int m, int64_t k, float (&scale)[Rows]) {
#pragma unroll
  for (int r = 0; r < Rows; ++r)
    scale[r] = g.norm.aSquares && r < m
                   ? rsqrtf(static_cast<float>(squares[r] / static_cast<double>(k)) + g.norm.aEps)
                   : 1.0f;
}

/// A picking GEMV block's end (see gemvParts): each row's best key among
/// the block's warps goes to the row's running best, by an atomic nobody
/// waits for (greedyFinish reads the bests after the grid). A block that
/// waited here for its atomics or counted itself in (the last block
/// finishing the pick) held its SM a round trip longer, and the step got
/// slower than with the separate pass.
template <int Rows>
__device__ __forceinline__ void offerGreedy(const GreedyPick &pick,
                                            const unsigned long long (&keys)[kColumnsPerBlock][Rows],
                                            int m) {
  __syncthreads();
  const int r = threadIdx.x;
  if (r < m) {
    unsigned long long best = 0;
#pragma unroll
    for (int w = 0; w < kColumnsPerBlock; ++w)
      best = max(best, keys[w][r]);
    atomicMax(&pick.counters->best[r], best);
  }
}

/// wv[w][u] = chunk u (kStride apart, from i) of weight row w.
template <bool BeforeWait, typename T, int Weights, int PerRow>
__device__ __forceinline__ void loadChunks(uint4 (&wv)[Weights][PerRow],
                                           const T *const (&rows)[Weights], int64_t i,
                                           int64_t stride) {
#pragma unroll
  for (int w = 0; w < Weights; ++w)
#pragma unroll
    for (int u = 0; u < PerRow; ++u) {
      if constexpr (BeforeWait)
        wv[w][u] = loadBeforeWait(rows[w] + i + u * stride);
      else
        wv[w][u] = loadStreaming(rows[w] + i + u * stride);
    }
}

/// meta[w][u] = the two metadata bytes of 2:4 chunk u (kStride values
/// apart, from value i) of weight row w.
template <bool BeforeWait, int Weights, int PerRow>
__device__ __forceinline__ void loadMetas(uint32_t (&meta)[Weights][PerRow],
                                          const uint8_t *const (&rows)[Weights], int64_t i,
                                          int64_t stride) {
#pragma unroll
  for (int w = 0; w < Weights; ++w)
#pragma unroll
    for (int u = 0; u < PerRow; ++u) {
      const uint8_t *p = rows[w] + (i + u * stride) / 4;
      uint16_t v;
      if constexpr (BeforeWait)
        asm volatile("ld.global.u16 %0, [%1];\n" : "=h"(v) : "l"(p) : "memory");
      else
        asm("ld.global.nc.u16 %0, [%1];\n" : "=h"(v) : "l"(p));
      meta[w][u] = v;
    }
}

/// Each lane streams its share of the weight row (Weights = 2: the gate's
/// and the up product's rows) into registers, four 16-byte loads a row in
/// flight.
/// Rows: at least m (a batch-1 decode's 1 keeps no sums for rows it lacks).
/// The bound of 1 block an SM lets bf16 take the registers it wants: 56 at
/// Rows = 1 against 44 under nvcc's default, and the decode step 5% faster
/// for it, with fewer blocks resident. f32 would take 150, so it keeps 3
/// (2 with a gate's second row, which would spill at 3).
/// Pick: the greedy pick above at the end (one part, Weights = 1); its
/// blocks end with a barrier, so their idle warps (past n) stay to it.
/// Sparse: 2:4 weights (bf16), whose rows hold k / 2 kept values and k / 8
/// metadata bytes; the same loop runs over the values.
template <typename T, int Rows, int Weights, bool Pick = false, bool Sparse = false>
__global__ void __launch_bounds__(kThreads, sizeof(T) == 2 ? 1 : 4 - Weights)
    gemvKernel(const T *a, GemvLaunch launch, int m, int64_t k) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int64_t kStride = 32 * kVec;
  static_assert(!Sparse || sizeof(T) == 2, "2:4 values in bf16");
  // Loads in flight per lane and weight row: memory speed needs several
  // per warp. Eight of one row ran llama-1b's decode step 2-3% slower;
  // four of each of a gate's two rows made it 2% faster than two each.
  constexpr int kPerRow = 4;
  static_assert(!Pick || Weights == 1, "a picking GEMV has no gate");
  letNextKernelStart();
  if (threadIdx.x == 0 && launch.prefetch.bytes[0] > 0)
    prefetchChunk(launch.prefetch, blockIdx.x); // the b-th 16 KB for block b
  int64_t col;
  const GemvPart &g = launch.parts[partOfBlock<kColumnsPerBlock>(launch, col)];
  col += threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  const bool active = col < g.n;
  const bool makesNorm = g.norm.out != nullptr; // its blocks end with a barrier too
  if (!active && !Pick && !makesNorm)
    return;
  float acc[Weights][Rows] = {};
  double squares[Rows] = {};
  float normScale = 1.0f; // a norm to make: this column's weight
  if constexpr (!Sparse) {
    if (active) {
      const T *rows[Weights];
      rows[Weights - 1] = static_cast<const T *>(g.w) + col * k;
      if constexpr (Weights == 2)
        rows[0] = static_cast<const T *>(g.gate) + col * k;
      int64_t i = lane * kVec;
      bool full = i + (kPerRow - 1) * kStride < k;
      uint4 wv[Weights][kPerRow];
      // Weights no kernel writes are loaded before waiting for the kernel
      // before (launched overlapped): the first loads are in flight while it
      // finishes. (Prefetching them to L2 instead, or a bulk L2 prefetch of
      // the block's rows, cost more than it hid.)
      if (launch.constantWeights && full)
        loadChunks<true>(wv, rows, i, kStride);
      if (launch.constantWeights && g.norm.out && lane == 0)
        normScale = normWeight<T>(g, col);
      waitForPriorKernels();
      if (!launch.constantWeights && full)
        loadChunks<false>(wv, rows, i, kStride);
      if (!launch.constantWeights && g.norm.out && lane == 0)
        normScale = normWeight<T>(g, col);
      // A normed A's sums of squares, in flight while the weights stream.
      if (g.norm.aSquares)
  #pragma unroll
        for (int r = 0; r < Rows; ++r)
          if (r < m)
            squares[r] = g.norm.aSquares[r];
      while (full) {
  #pragma unroll
        for (int w = 0; w < Weights; ++w)
  #pragma unroll
          for (int u = 0; u < kPerRow; ++u)
            gemvChunk(wv[w][u], a, m, k, i + u * kStride, acc[w]);
        i += kPerRow * kStride;
        full = i + (kPerRow - 1) * kStride < k;
        if (full)
          loadChunks<false>(wv, rows, i, kStride);
      }
      // The last few chunks (k = 5632 leaves two): all loads, then the sums.
  #pragma unroll
      for (int w = 0; w < Weights; ++w)
  #pragma unroll
        for (int u = 0; u < kPerRow - 1; ++u)
          if (i + u * kStride < k)
            wv[w][u] = loadStreaming(rows[w] + i + u * kStride);
  #pragma unroll
      for (int w = 0; w < Weights; ++w)
  #pragma unroll
        for (int u = 0; u < kPerRow - 1; ++u)
          if (i + u * kStride < k)
            gemvChunk(wv[w][u], a, m, k, i + u * kStride, acc[w]);
    } else {
      waitForPriorKernels();
    }
  } else if (active) {
    // The dense loop above over the rows' k / 2 kept values, each 16-byte
    // piece with its two metadata bytes. (A copy, not a shared helper: the
    // dense kernels must compile as they were measured, and sharing the
    // loop or just its prologue changed their registers, 62 to 45 or 64.)
    const int64_t length = k / 2;
    const T *rows[Weights];
    const uint8_t *metaRows[Weights];
    rows[Weights - 1] = static_cast<const T *>(g.w) + col * length;
    metaRows[Weights - 1] = g.quant.meta + col * (k / 8);
    if constexpr (Weights == 2) {
      rows[0] = static_cast<const T *>(g.gate) + col * length;
      metaRows[0] = g.quant.gateMeta + col * (k / 8);
    }
    int64_t i = lane * kVec;
    bool full = i + (kPerRow - 1) * kStride < length;
    uint4 wv[Weights][kPerRow];
    uint32_t meta[Weights][kPerRow];
    // The products of the first `count` loaded chunks, from value i.
    auto products = [&](int count) {
#pragma unroll
      for (int w = 0; w < Weights; ++w)
#pragma unroll
        for (int u = 0; u < kPerRow; ++u)
          if (u < count && i + u * kStride < length)
            gemvChunk24(wv[w][u], meta[w][u], a, m, k, 2 * (i + u * kStride), acc[w]);
    };
    auto loadAll = [&](auto beforeWait) {
      constexpr bool kBefore = decltype(beforeWait)::value;
      loadChunks<kBefore>(wv, rows, i, kStride);
      loadMetas<kBefore>(meta, metaRows, i, kStride);
    };
    if (launch.constantWeights && full)
      loadAll(std::true_type());
    if (launch.constantWeights && g.norm.out && lane == 0)
      normScale = normWeight<T>(g, col);
    waitForPriorKernels();
    if (!launch.constantWeights && full)
      loadAll(std::false_type());
    if (!launch.constantWeights && g.norm.out && lane == 0)
      normScale = normWeight<T>(g, col);
    // A normed A's sums of squares, in flight while the weights stream.
    if (g.norm.aSquares)
#pragma unroll
      for (int r = 0; r < Rows; ++r)
        if (r < m)
          squares[r] = g.norm.aSquares[r];
    while (full) {
      products(kPerRow);
      i += kPerRow * kStride;
      full = i + (kPerRow - 1) * kStride < length;
      if (full)
        loadAll(std::false_type());
    }
    // The last few chunks (k = 5632 leaves two): all loads, then the sums.
#pragma unroll
    for (int w = 0; w < Weights; ++w)
#pragma unroll
      for (int u = 0; u < kPerRow - 1; ++u)
        if (i + u * kStride < length) {
          wv[w][u] = loadStreaming(rows[w] + i + u * kStride);
          meta[w][u] = __ldg(
              reinterpret_cast<const unsigned short *>(metaRows[w] + (i + u * kStride) / 4));
        }
    products(kPerRow - 1);
  } else {
    waitForPriorKernels();
  }
  __shared__ unsigned long long pickKeys[Pick ? kColumnsPerBlock : 1][Pick ? Rows : 1];
  unsigned long long *keys = Pick ? pickKeys[threadIdx.x / 32] : nullptr;
  __shared__ double blockSquares[kColumnsPerBlock][Rows];
  double *warpSquares = blockSquares[threadIdx.x / 32];
  if (active) {
    float scale[Rows];
    rowScales<Rows>(squares, g, m, k, scale);
    finishColumn<T, Rows, Weights>(acc, g, col, m, lane, scale, normScale, warpSquares, keys);
  } else if (makesNorm && lane < Rows) {
    warpSquares[lane] = 0;
  }
  if (makesNorm)
    offerSquares<Rows>(g.norm.squares, blockSquares, m);
  if constexpr (Pick) {
    if (!active && lane < Rows)
      keys[lane] = 0;
    offerGreedy<Rows>(launch.pick, pickKeys, m);
  }
}

template <typename T, int Rows, bool Sparse = false>
void launchRows(const T *a, const GemvLaunch &launch, bool pick, int64_t blocks, int m,
                int64_t k, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(blocks));
  if (pick)
    launchOverlapped(gemvKernel<T, Rows, 1, true, Sparse>, grid, dim3(kThreads), stream, a,
                     launch, m, k);
  else if (launch.parts[0].gate)
    launchOverlapped(gemvKernel<T, Rows, 2, false, Sparse>, grid, dim3(kThreads), stream, a,
                     launch, m, k);
  else
    launchOverlapped(gemvKernel<T, Rows, 1, false, Sparse>, grid, dim3(kThreads), stream, a,
                     launch, m, k);
}

/// Whether 2:4 parts fit the dense kernel's loads: rows of 16-byte pieces
/// of values (k a multiple of 16), each piece's two metadata bytes in one
/// load; else the quantized GEMV reads them.
bool sparseRowsFit(const GemvPart *parts, int count, int64_t k) {
  auto aligned = [](const void *p, uintptr_t to) {
    return reinterpret_cast<uintptr_t>(p) % to == 0;
  };
  if (k % 16)
    return false;
  for (int p = 0; p < count; ++p) {
    const GemvPart &g = parts[p];
    if (!aligned(g.w, 16) || !aligned(g.gate, 16) || !aligned(g.quant.meta, 2) ||
        !aligned(g.quant.gateMeta, 2))
      return false;
  }
  return true;
}

template <typename T>
void launchGemv(const T *a, const GemvLaunch &launch, bool pick, int64_t blocks, int m,
                int64_t k, cudaStream_t stream) {
  if (m == 1)
    launchRows<T, 1>(a, launch, pick, blocks, m, k, stream);
  else
    launchRows<T, kGemvRows>(a, launch, pick, blocks, m, k, stream);
}

} // namespace

void gemvParts(Elem e, const void *a, const GemvPart *parts, int count, int64_t m,
               int64_t k, bool constantWeights, cudaStream_t stream,
               const GemvPrefetch &prefetch, const GreedyPick *pick) {
  const bool sparse = count > 0 && parts[0].quant.format == WeightFormat::Sparse24 &&
                      e == Elem::BF16 && sparseRowsFit(parts, count, k);
  if (count > 0 && parts[0].quant.quantized() && !sparse) {
    quantGemvParts(e, a, parts, count, m, k, constantWeights, stream, prefetch, pick);
    return;
  }
  GemvLaunch launch =
      gemvLaunch(parts, count, kColumnsPerBlock, constantWeights, prefetch, pick);
  const int64_t blocks = count > 0 ? launch.blockEnd[count - 1] : 0;
  if (blocks == 0)
    return;
  if (sparse) {
    const auto *bf16 = static_cast<const __nv_bfloat16 *>(a);
    if (m == 1)
      launchRows<__nv_bfloat16, 1, true>(bf16, launch, pick != nullptr, blocks, 1, k, stream);
    else
      launchRows<__nv_bfloat16, kGemvRows, true>(bf16, launch, pick != nullptr, blocks,
                                                 static_cast<int>(m), k, stream);
  } else if (e == Elem::BF16)
    launchGemv(static_cast<const __nv_bfloat16 *>(a), launch, pick != nullptr, blocks,
               static_cast<int>(m), k, stream);
  else
    launchGemv(static_cast<const float *>(a), launch, pick != nullptr, blocks,
               static_cast<int>(m), k, stream);
  if (pick)
    greedyFinish(m, *pick, stream);
}

} // namespace gai::cuda
