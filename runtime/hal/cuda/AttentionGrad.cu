// Attention's backward (FlashAttention-2's algorithm): the probabilities
// come back from the forward's row log-sum-exps, D = rowsum(dO ⊙ O) stands
// in for the sum over the keys, and nothing [T, S]-sized is ever stored.
//
// bf16 with head dim 64 or 128 runs on the tensor cores. By default one
// kernel does it all, as FlashAttention-2 does: a block owns 64 keys of one
// query head and walks the query tiles that see them, keeping dK and dV in
// registers and adding each tile's dQ to f32 sums by atomics (under GQA,
// dK and dV too). Its sums run in no fixed order, so with `deterministic`
// two kernels do it instead: the key-side one as above without dQ (under
// GQA writing each query head's dK and dV, then summed over the group),
// and a query-side one that owns 64 queries and walks their key tiles for
// dQ, recomputing Q·Kᵀ and dO·Vᵀ (1.25x the time at llama-1b's shape).
// Other shapes and f32 run one warp per query row (dQ) and one per key
// row (dK, dV) on the CUDA cores.
// Handwritten for the same reason as the forward: no library runs
// attention's backward over our layouts with causal offsets, windows,
// softcaps and GQA together.
#include "hal/cuda/AttentionGrad.h"
#include "hal/cuda/KeyBlockOrder.h"
#include "hal/cuda/Math.cuh"
#include "hal/cuda/Mma.cuh"
#include "hal/cuda/Wgmma.cuh"

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace gai::cuda {
namespace {

constexpr int kMostDims = 256; // head dims the row kernels take (8 a lane)

/// Whether the query at position `pos` sees key `key`.
__device__ __forceinline__ bool sees(int64_t pos, int64_t key, bool causal, int64_t window) {
  return !causal || (key <= pos && (window <= 0 || pos - key < window));
}

/// The lanes' share of a row of `dim` elements: element lane + 32·i.
template <typename T>
__device__ __forceinline__ void loadLanes(float (&to)[kMostDims / 32], const T *row, int dim,
                                          int lane) {
#pragma unroll
  for (int i = 0; i < kMostDims / 32; ++i)
    to[i] = lane + 32 * i < dim ? toFloat(row[lane + 32 * i]) : 0.0f;
}
__device__ __forceinline__ float dotLanes(const float (&a)[kMostDims / 32],
                                          const float (&b)[kMostDims / 32]) {
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kMostDims / 32; ++i)
    sum += a[i] * b[i];
  return warpSum(sum);
}

/// The softcapped score of a raw product and the cap's slope there.
__device__ __forceinline__ float capScore(float raw, float scale, float cap, float &slope) {
  float score = raw * scale;
  slope = 1.0f;
  if (cap > 0.0f) {
    float th = tanhf(score / cap);
    score = cap * th;
    slope = 1.0f - th * th;
  }
  return score;
}

//===----------------------------------------------------------------------===//
// The forward's row log-sum-exps where the flash kernel did not run
//===----------------------------------------------------------------------===//

template <typename T> __global__ void rowLseKernel(AttentionParams p) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= p.batch * p.heads * p.queries)
    return;
  const int64_t t = row % p.queries, h = row / p.queries % p.heads,
                b = row / (p.queries * p.heads);
  const int64_t kvh = h / (p.heads / p.kvHeads);
  float q[kMostDims / 32], k[kMostDims / 32];
  loadLanes(q, static_cast<const T *>(p.q) + row * p.headDim, p.headDim, lane);
  const T *keys = static_cast<const T *>(p.k) + (b * p.kvHeads + kvh) * p.keys * p.headDim;
  const int64_t pos = t + p.keys - p.queries;
  float running = -INFINITY, sum = 0.0f;
  for (int64_t j = 0; j < p.keys; ++j) {
    if (!sees(pos, j, p.causal, p.window))
      continue;
    loadLanes(k, keys + j * p.headDim, p.headDim, lane);
    float slope;
    const float s = capScore(dotLanes(q, k), p.scale, p.softcap, slope);
    const float next = fmaxf(running, s);
    sum = sum * __expf(running - next) + __expf(s - next);
    running = next;
  }
  if (lane == 0)
    p.lse[row] = sum > 0.0f ? running + __logf(sum) : -INFINITY;
}

//===----------------------------------------------------------------------===//
// Both paths: D = rowsum(dO ⊙ O)
//===----------------------------------------------------------------------===//

constexpr float kLog2e = 1.4426950408889634f;

/// A query row's numbers for the fused backward: its log-sum-exp in log2
/// units (+inf where the row sees no key, so that exp2(s - lse2) is 0
/// with no test) and D.
struct RowStats {
  float lse2, delta;
};
__device__ __forceinline__ RowStats rowStats(float lse, float delta) {
  return {lse == -INFINITY ? INFINITY : lse * kLog2e, delta};
}

template <typename T>
__global__ void prepareKernel(AttentionGradParams p, float *delta, RowStats *stats) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= p.batch * p.heads * p.queries)
    return;
  const int64_t t = row % p.queries, h = row / p.queries % p.heads,
                b = row / (p.queries * p.heads);
  const T *dout = static_cast<const T *>(p.outGrad) + p.outGradStrides.at(b, h, t);
  const T *out = static_cast<const T *>(p.out) + p.outStrides.at(b, h, t);
  float sum = 0.0f;
  for (int64_t d = lane; d < p.valueDim; d += 32)
    sum += toFloat(dout[d]) * toFloat(out[d]);
  sum = warpSum(sum);
  if (lane == 0) {
    delta[row] = sum;
    if (stats) {
      const float lse = p.lse[row];
      stats[row] = rowStats(lse, sum);
    }
  }
}

/// prepareKernel for the tensor-core path's bf16 rows of D = 8·Lanes
/// elements (16-byte aligned): Lanes threads a row, 16 bytes of dO and O
/// each, and (given `dqSums`, `kvSums`) the row's f32 dQ sums and the
/// kvSumRows rows of GQA's dK and dV sums zeroed on the way, with no memset
/// pass of their own. A warp a row moved 2-byte pieces and left
/// most lanes idle.
template <int Lanes>
__global__ void prepareRowsKernel(AttentionGradParams p, RowStats *stats, float *dqSums,
                                  float *kvSums, int64_t kvSumRows) {
  constexpr int D = 8 * Lanes;
  const int64_t rows = p.batch * p.heads * p.queries;
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / Lanes;
  const int part = static_cast<int>(threadIdx.x % Lanes);
  const bool valid = row < rows;
  float sum = 0.0f;
  if (valid) {
    const int64_t t = row % p.queries, h = row / p.queries % p.heads,
                  b = row / (p.queries * p.heads);
    const uint4 dout = *reinterpret_cast<const uint4 *>(
        static_cast<const __nv_bfloat16 *>(p.outGrad) + p.outGradStrides.at(b, h, t) + part * 8);
    const uint4 out = *reinterpret_cast<const uint4 *>(
        static_cast<const __nv_bfloat16 *>(p.out) + p.outStrides.at(b, h, t) + part * 8);
    const auto *dv = reinterpret_cast<const __nv_bfloat162 *>(&dout);
    const auto *ov = reinterpret_cast<const __nv_bfloat162 *>(&out);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 d = __bfloat1622float2(dv[i]), o = __bfloat1622float2(ov[i]);
      sum += d.x * o.x + d.y * o.y;
    }
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (dqSums) {
      float4 *sums = reinterpret_cast<float4 *>(dqSums + row * D + part * 8);
      sums[0] = sums[1] = zero;
    }
    if (kvSums && row < kvSumRows) {
      float4 *sums = reinterpret_cast<float4 *>(kvSums + row * D + part * 8);
      sums[0] = sums[1] = zero;
    }
  }
#pragma unroll
  for (int offset = Lanes / 2; offset > 0; offset /= 2)
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (valid && part == 0) {
    const float lse = p.lse[row];
    stats[row] = rowStats(lse, sum);
  }
}

//===----------------------------------------------------------------------===//
// The CUDA-core path: a warp a query row, then a warp a key row
//===----------------------------------------------------------------------===//

template <typename T>
__global__ void queryRowsKernel(AttentionGradParams p, const float *delta) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= p.batch * p.heads * p.queries)
    return;
  const int64_t t = row % p.queries, h = row / p.queries % p.heads,
                b = row / (p.queries * p.heads);
  const int64_t kvh = h / (p.heads / p.kvHeads);
  float q[kMostDims / 32], dout[kMostDims / 32], k[kMostDims / 32], v[kMostDims / 32],
      dq[kMostDims / 32] = {};
  loadLanes(q, static_cast<const T *>(p.q) + p.qStrides.at(b, h, t), p.headDim, lane);
  loadLanes(dout, static_cast<const T *>(p.outGrad) + p.outGradStrides.at(b, h, t), p.valueDim,
            lane);
  const float lse = p.lse[row], rowDelta = delta[row];
  const int64_t pos = t + p.keys - p.queries;
  if (lse != -INFINITY)
    for (int64_t j = 0; j < p.keys; ++j) {
      if (!sees(pos, j, p.causal, p.window))
        continue;
      loadLanes(k, static_cast<const T *>(p.k) + p.kStrides.at(b, kvh, j), p.headDim, lane);
      loadLanes(v, static_cast<const T *>(p.v) + p.vStrides.at(b, kvh, j), p.valueDim, lane);
      float slope;
      const float prob = __expf(capScore(dotLanes(q, k), p.scale, p.softcap, slope) - lse);
      const float ds = prob * (dotLanes(dout, v) - rowDelta) * slope * p.scale;
#pragma unroll
      for (int i = 0; i < kMostDims / 32; ++i)
        dq[i] += ds * k[i];
    }
  T *out = static_cast<T *>(p.qGrad) + p.qGradStrides.at(b, h, t);
#pragma unroll
  for (int i = 0; i < kMostDims / 32; ++i)
    if (lane + 32 * i < p.headDim)
      out[lane + 32 * i] = fromFloat<T>(dq[i]);
}

template <typename T>
__global__ void keyRowsKernel(AttentionGradParams p, const float *delta) {
  const int64_t keyRow = static_cast<int64_t>(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (keyRow >= p.batch * p.kvHeads * p.keys)
    return;
  const int64_t j = keyRow % p.keys, kvh = keyRow / p.keys % p.kvHeads,
                b = keyRow / (p.keys * p.kvHeads);
  const int64_t groups = p.heads / p.kvHeads, start = p.keys - p.queries;
  float k[kMostDims / 32], v[kMostDims / 32], q[kMostDims / 32], dout[kMostDims / 32],
      dk[kMostDims / 32] = {}, dv[kMostDims / 32] = {};
  loadLanes(k, static_cast<const T *>(p.k) + p.kStrides.at(b, kvh, j), p.headDim, lane);
  loadLanes(v, static_cast<const T *>(p.v) + p.vStrides.at(b, kvh, j), p.valueDim, lane);
  // The queries that see key j: position t + start >= j, and within the window.
  int64_t first = 0, last = p.queries - 1;
  if (p.causal) {
    first = j - start > 0 ? j - start : 0;
    if (p.window > 0 && j - start + p.window - 1 < last)
      last = j - start + p.window - 1;
  }
  for (int64_t h = kvh * groups; h < (kvh + 1) * groups; ++h)
    for (int64_t t = first; t <= last; ++t) {
      const int64_t row = (b * p.heads + h) * p.queries + t;
      const float lse = p.lse[row];
      if (lse == -INFINITY)
        continue;
      loadLanes(q, static_cast<const T *>(p.q) + p.qStrides.at(b, h, t), p.headDim, lane);
      loadLanes(dout, static_cast<const T *>(p.outGrad) + p.outGradStrides.at(b, h, t),
                p.valueDim, lane);
      float slope;
      const float prob = __expf(capScore(dotLanes(q, k), p.scale, p.softcap, slope) - lse);
      const float ds = prob * (dotLanes(dout, v) - delta[row]) * slope * p.scale;
#pragma unroll
      for (int i = 0; i < kMostDims / 32; ++i) {
        dv[i] += prob * dout[i];
        dk[i] += ds * q[i];
      }
    }
  T *kOut = static_cast<T *>(p.kGrad) + p.kGradStrides.at(b, kvh, j);
  T *vOut = static_cast<T *>(p.vGrad) + p.vGradStrides.at(b, kvh, j);
#pragma unroll
  for (int i = 0; i < kMostDims / 32; ++i) {
    if (lane + 32 * i < p.headDim)
      kOut[lane + 32 * i] = fromFloat<T>(dk[i]);
    if (lane + 32 * i < p.valueDim)
      vOut[lane + 32 * i] = fromFloat<T>(dv[i]);
  }
}

//===----------------------------------------------------------------------===//
// The tensor-core path (bf16, head dim 64 or 128)
//===----------------------------------------------------------------------===//

constexpr int kTile = 64;  // keys or queries a block, and a tile of the other
constexpr int kWarps = 4;  // 16 rows each
constexpr int kThreads = kWarps * 32;
// Blocks an SM must hold at head dim 64: the register cap this sets (168
// and 128) lets three key blocks and four query blocks share an SM, which
// measured 12% faster on an H100 than two and three (llama-1b's and
// gpt2-124m's shapes) with a few bytes of spills; at head dim 128 the caps
// spill hundreds of bytes and measured slower, so it asks for none (0).
// The softcapped wgmma form asks for two: at 168 registers ptxas
// serialises its wgmmas.
template <int D> constexpr int kKeyBlocksPerSm = D == 64 ? 3 : 0;
template <int D> constexpr int kQueryBlocksPerSm = D == 64 ? 4 : 0;

/// A key-side block's keys (its index among the head's key blocks), head
/// and batch, from the one-dimensional grid keyGrid makes.
struct KeyBlockPlace {
  int index, h, b;
};
__device__ __forceinline__ KeyBlockPlace keyBlockPlace(const AttentionGradParams &p) {
  const int heads = static_cast<int>(p.heads), pairs = static_cast<int>(p.batch) * heads;
  const KeyBlock block =
      keyBlockOf(static_cast<int>(blockIdx.x), static_cast<int>(gridDim.x) / pairs, pairs,
                 p.orderGroups);
  return {block.index, block.pair % heads, block.pair / heads};
}

/// The A fragments of a 16 × 16 block of a swizzled [rows, D] tile.
template <int D>
__device__ __forceinline__ void loadRowFragment(uint32_t (&a)[4], const __nv_bfloat16 *tile,
                                                int row0, int kk, int lane) {
  loadMatrices(a, tile + swizzled<D>(row0 + lane % 16, kk * 16 + (lane / 16) * 8));
}
/// B fragments for two n-tiles of 8 rows (k along D): tile rows n0..n0+15.
template <int D>
__device__ __forceinline__ void loadColumnFragments(uint32_t (&b)[4],
                                                    const __nv_bfloat16 *tile, int n0, int kk,
                                                    int lane) {
  loadMatrices(b, tile + swizzled<D>(n0 + lane % 8 + 8 * (lane / 16),
                                     kk * 16 + 8 * ((lane / 8) % 2)));
}
/// B fragments with k along the tile's rows (j0..j0+15), n along D (dd·16..).
template <int D>
__device__ __forceinline__ void loadTransposedFragments(uint32_t (&b)[4],
                                                        const __nv_bfloat16 *tile, int j0,
                                                        int dd, int lane) {
  loadMatricesTransposed(b, tile + swizzled<D>(j0 + lane % 8 + 8 * ((lane / 8) % 2),
                                               dd * 16 + 8 * (lane / 16)));
}

/// s = A·Bᵀ and dp = C·Eᵀ for the warp's 16 rows (row0..) of A and C
/// against the 64 rows of B and E, all swizzled [rows, D] tiles: the two
/// products both backward kernels start a tile with (Sᵀ, dPᵀ or S, dP).
template <int D>
__device__ __forceinline__ void tileProducts(float (&s)[kTile / 8][4], float (&dp)[kTile / 8][4],
                                             const __nv_bfloat16 *a, const __nv_bfloat16 *c,
                                             const __nv_bfloat16 *bTile,
                                             const __nv_bfloat16 *eTile, int row0, int lane) {
#pragma unroll
  for (int n = 0; n < kTile / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t af[4], cf[4];
    loadRowFragment<D>(af, a, row0, kk, lane);
    loadRowFragment<D>(cf, c, row0, kk, lane);
#pragma unroll
    for (int np = 0; np < kTile / 16; ++np) {
      uint32_t bf[4], ef[4];
      loadColumnFragments<D>(bf, bTile, np * 16, kk, lane);
      loadColumnFragments<D>(ef, eTile, np * 16, kk, lane);
      mma(s[2 * np], af, bf[0], bf[1]);
      mma(s[2 * np + 1], af, bf[2], bf[3]);
      mma(dp[2 * np], cf, ef[0], ef[1]);
      mma(dp[2 * np + 1], cf, ef[2], ef[3]);
    }
  }
}

/// Whether every (query, key) of a 64 × 64 tile pair is visible, so that
/// no mask need be applied: both tiles whole, and inside the causal edge
/// and the window.
__device__ __forceinline__ bool wholeTileVisible(const AttentionGradParams &p, int q0,
                                                 int key0, int queries, int keys, int start) {
  return !(key0 + kTile > keys || q0 + kTile > queries ||
           (p.causal && (key0 + kTile - 1 > start + q0 ||
                         (p.window > 0 && start + q0 + kTile - 1 - key0 >= p.window))));
}

/// The probability and the scaled score gradient of one (query, key),
/// in place: P = 2^(score·log2e - lse2), dS = P ⊙ (dP - D) through the
/// cap, times scale. Every tensor-core kernel uses this one form, so the
/// atomic and the fixed-order backward differ only in their sums' order.
template <bool Softcap>
__device__ __forceinline__ void probabilityAndGrad(float &s, float &dp, RowStats row,
                                                   const AttentionGradParams &p) {
  float prob, slope = 1.0f;
  if constexpr (Softcap) {
    const float th = tanhf(s * p.scale / p.softcap);
    slope = 1.0f - th * th;
    prob = fastExp2(p.softcap * kLog2e * th - row.lse2);
  } else {
    prob = fastExp2(fmaf(s, p.scale * kLog2e, -row.lse2));
  }
  s = prob;
  dp = prob * (dp - row.delta) * (slope * p.scale);
}

/// The stats of query rows q0..q0 + 63 into shared memory by cp.async, as
/// the tiles come (a plain load there stalled the block on its round
/// trip). Rows past `queries` read as zeros: no visible score uses them.
__device__ __forceinline__ void loadStatsAsync(RowStats *tile, const RowStats *stats, int q0,
                                               int queries) {
  if (threadIdx.x < kTile) {
    const int t = q0 + threadIdx.x;
    copyAsync8(tile + threadIdx.x, t < queries ? stats + t : stats, t < queries);
  }
}

/// P and the scaled dS of the thread's 32 (key, query) pairs of a tile
/// pair (Sᵀ and dPᵀ: its keys keyA and keyA + 8 by 16 query columns), in
/// place, from the rows' stats. Only `Masked` tiles test visibility.
template <bool Masked, bool Softcap>
__device__ __forceinline__ void tileProbabilities(float (&s)[kTile / 8][4],
                                                  float (&dp)[kTile / 8][4],
                                                  const RowStats *tstats,
                                                  const AttentionGradParams &p, int keyA,
                                                  int q0, int keys, int queries, int start,
                                                  int pairCol) {
#pragma unroll
  for (int n = 0; n < kTile / 8; ++n) {
    // The stats of columns pairCol and pairCol + 1: one 16-byte load.
    const float4 two = *reinterpret_cast<const float4 *>(tstats + n * 8 + pairCol);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      probabilityAndGrad<Softcap>(s[n][e], dp[n][e],
                                  e % 2 ? RowStats{two.z, two.w} : RowStats{two.x, two.y}, p);
      if constexpr (Masked) {
        const int key = keyA + 8 * (e / 2), query = q0 + n * 8 + pairCol + e % 2;
        if (!(key < keys && query < queries && sees(start + query, key, p.causal, p.window)))
          s[n][e] = dp[n][e] = 0.0f;
      }
    }
  }
}

/// tileProbabilities for the tile pair (key0.., q0..): only tiles on the
/// causal edge, the window's edge or the sequences' ends test each (query,
/// key); whole tiles spare the tests.
template <bool Softcap>
__device__ __forceinline__ void keyTileProbabilities(float (&s)[kTile / 8][4],
                                                     float (&dp)[kTile / 8][4],
                                                     const RowStats *tstats,
                                                     const AttentionGradParams &p, int key0,
                                                     int keyA, int q0, int keys, int queries,
                                                     int start, int pairCol) {
  if (wholeTileVisible(p, q0, key0, queries, keys, start))
    tileProbabilities<false, Softcap>(s, dp, tstats, p, keyA, q0, keys, queries, start, pairCol);
  else
    tileProbabilities<true, Softcap>(s, dp, tstats, p, keyA, q0, keys, queries, start, pairCol);
}

/// The query tiles whose queries see some of the `blockKeys` keys from
/// `key0` (`start`: keys - queries, where a causal query 0 sees up to).
struct QueryTiles {
  int first, count;
};
__device__ __forceinline__ QueryTiles queryTilesSeeing(const AttentionGradParams &p, int key0,
                                                       int blockKeys, int queries, int start) {
  int firstQuery = 0, lastQuery = queries - 1;
  if (p.causal) {
    firstQuery = max(0, key0 - start);
    if (p.window > 0) // in 64 bits: a window past every key must not wrap
      lastQuery = static_cast<int>(
          min(static_cast<int64_t>(lastQuery),
              static_cast<int64_t>(key0) + blockKeys - 1 - start + p.window - 1));
  }
  const int first = firstQuery / kTile;
  return {first, lastQuery < firstQuery ? 0 : lastQuery / kTile - first + 1};
}

template <int D> constexpr size_t gradSmemBytes() {
  // Two tiles held for the whole block (K and V, or Q and dO) and two
  // double-buffered streamed ones; then the RowStats of two query tiles.
  return sizeof(__nv_bfloat16) * 6 * kTile * D + sizeof(float) * 4 * kTile;
}

/// dK and dV of 64 keys for one query head: the block walks the query
/// tiles that see them and keeps both sums in registers. Under GQA each
/// query head's share goes to f32 `partials` [B, H, S, D] twice (dK, then
/// dV), which sumGroupsKernel adds up.
template <int D, bool Softcap>
__global__ void __launch_bounds__(kThreads, kKeyBlocksPerSm<D>)
    flashGradKeysKernel(AttentionGradParams p, const RowStats *stats, float *partials) {
  extern __shared__ __align__(128) unsigned char raw[];
  auto *sk = reinterpret_cast<__nv_bfloat16 *>(raw);
  __nv_bfloat16 *sv = sk + kTile * D;
  __nv_bfloat16 *sq = sv + kTile * D;      // two buffers
  __nv_bfloat16 *sdo = sq + 2 * kTile * D; // two buffers
  auto *sstats = reinterpret_cast<RowStats *>(sdo + 2 * kTile * D); // two tiles

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pairCol = 2 * (lane % 4);
  const KeyBlockPlace block = keyBlockPlace(p);
  const int key0 = block.index * kTile, h = block.h, b = block.b;
  const int queries = static_cast<int>(p.queries), keys = static_cast<int>(p.keys);
  const int heads = static_cast<int>(p.heads), groups = heads / static_cast<int>(p.kvHeads);
  const int start = keys - queries;
  const int kvh = h / groups;
  const int64_t rowBase = (static_cast<int64_t>(b) * heads + h) * queries;
  const auto *qSrc = static_cast<const __nv_bfloat16 *>(p.q) + p.qStrides.at(b, h, 0);
  const auto *doSrc =
      static_cast<const __nv_bfloat16 *>(p.outGrad) + p.outGradStrides.at(b, h, 0);

  const QueryTiles seen = queryTilesSeeing(p, key0, kTile, queries, start);
  const int firstTile = seen.first, tiles = seen.count;
  auto loadQueries = [&](int it, int buffer) {
    const int q0 = (firstTile + it) * kTile;
    loadRowsAsync<D, kTile, kThreads>(sq + buffer * kTile * D, qSrc, q0, queries,
                                      p.qStrides.row);
    loadRowsAsync<D, kTile, kThreads>(sdo + buffer * kTile * D, doSrc, q0, queries,
                                      p.outGradStrides.row);
    loadStatsAsync(sstats + buffer * kTile, stats + rowBase, q0, queries);
  };

  loadRowsAsync<D, kTile, kThreads>(
      sk, static_cast<const __nv_bfloat16 *>(p.k) + p.kStrides.at(b, kvh, 0), key0, keys,
      p.kStrides.row);
  loadRowsAsync<D, kTile, kThreads>(
      sv, static_cast<const __nv_bfloat16 *>(p.v) + p.vStrides.at(b, kvh, 0), key0, keys,
      p.vStrides.row);
  if (tiles > 0)
    loadQueries(0, 0);
  commitCopies();

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      dk[n][e] = dv[n][e] = 0.0f;
  // This thread's two key rows: the warp's row `group` and `group + 8`.
  const int keyA = key0 + warp * 16 + group;

  for (int it = 0; it < tiles; ++it) {
    const int buffer = it & 1, q0 = (firstTile + it) * kTile;
    if (it + 1 < tiles) {
      loadQueries(it + 1, buffer ^ 1);
      commitCopies();
      waitCopies<1>();
    } else {
      waitCopies<0>();
    }
    __syncthreads();
    const __nv_bfloat16 *tq = sq + buffer * kTile * D, *tdo = sdo + buffer * kTile * D;
    const RowStats *tstats = sstats + buffer * kTile;

    // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: the warp's 16 keys × 64 queries each.
    float s[kTile / 8][4], dp[kTile / 8][4];
    tileProducts<D>(s, dp, sk, sv, tq, tdo, warp * 16, lane);
    keyTileProbabilities<Softcap>(s, dp, tstats, p, key0, keyA, q0, keys, queries, start,
                                  pairCol);

    // dV += Pᵀ·dO and dK += dSᵀ·Q: the accumulators are A fragments as they lie.
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      uint32_t pf[4], df[4];
      packFragment(pf, s[2 * j], s[2 * j + 1]);
      packFragment(df, dp[2 * j], dp[2 * j + 1]);
#pragma unroll
      for (int dd = 0; dd < D / 16; ++dd) {
        uint32_t bo[4], bq[4];
        loadTransposedFragments<D>(bo, tdo, j * 16, dd, lane);
        loadTransposedFragments<D>(bq, tq, j * 16, dd, lane);
        mma(dv[2 * dd], pf, bo[0], bo[1]);
        mma(dv[2 * dd + 1], pf, bo[2], bo[3]);
        mma(dk[2 * dd], df, bq[0], bq[1]);
        mma(dk[2 * dd + 1], df, bq[2], bq[3]);
      }
    }
    __syncthreads(); // this buffer is refilled two tiles on
  }

  const int64_t partialRows = p.batch * p.heads * p.keys;
#pragma unroll
  for (int row = 0; row < 2; ++row) {
    const int key = keyA + 8 * row;
    if (key >= keys)
      continue;
    if (groups == 1) {
      auto *kOut = static_cast<__nv_bfloat16 *>(p.kGrad) + p.kGradStrides.at(b, kvh, key);
      auto *vOut = static_cast<__nv_bfloat16 *>(p.vGrad) + p.vGradStrides.at(b, kvh, key);
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        *reinterpret_cast<__nv_bfloat162 *>(kOut + n * 8 + pairCol) =
            __floats2bfloat162_rn(dk[n][2 * row], dk[n][2 * row + 1]);
        *reinterpret_cast<__nv_bfloat162 *>(vOut + n * 8 + pairCol) =
            __floats2bfloat162_rn(dv[n][2 * row], dv[n][2 * row + 1]);
      }
    } else {
      const int64_t at = ((static_cast<int64_t>(b) * heads + h) * keys + key) * D;
      float *kOut = partials + at, *vOut = partials + partialRows * D + at;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        *reinterpret_cast<float2 *>(kOut + n * 8 + pairCol) =
            make_float2(dk[n][2 * row], dk[n][2 * row + 1]);
        *reinterpret_cast<float2 *>(vOut + n * 8 + pairCol) =
            make_float2(dv[n][2 * row], dv[n][2 * row + 1]);
      }
    }
  }
}

/// dQ of 64 queries: the block walks the key tiles they see, as the
/// forward does, rebuilding P and dS per tile (dS·K needs no atomics this
/// way, at the cost of recomputing Q·Kᵀ and dO·Vᵀ once more).
template <int D, bool Softcap>
__global__ void __launch_bounds__(kThreads, kQueryBlocksPerSm<D>)
    flashGradQueriesKernel(AttentionGradParams p, const RowStats *stats) {
  extern __shared__ __align__(128) unsigned char raw[];
  auto *sq = reinterpret_cast<__nv_bfloat16 *>(raw);
  __nv_bfloat16 *sdo = sq + kTile * D;
  __nv_bfloat16 *sk = sdo + kTile * D;     // two buffers
  __nv_bfloat16 *sv = sk + 2 * kTile * D;  // two buffers

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pairCol = 2 * (lane % 4);
  // The heaviest causal tiles (the last queries) start first.
  const int tile = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int queries = static_cast<int>(p.queries), keys = static_cast<int>(p.keys);
  const int heads = static_cast<int>(p.heads), groups = heads / static_cast<int>(p.kvHeads);
  const int start = keys - queries, q0 = tile * kTile;
  const int kvh = h / groups;
  const int64_t rowBase = (static_cast<int64_t>(b) * heads + h) * queries;
  const auto *kSrc = static_cast<const __nv_bfloat16 *>(p.k) + p.kStrides.at(b, kvh, 0);
  const auto *vSrc = static_cast<const __nv_bfloat16 *>(p.v) + p.vStrides.at(b, kvh, 0);
  const int64_t kStride = p.kStrides.row, vStride = p.vStrides.row;

  int firstKey = 0, lastKey = keys - 1;
  if (p.causal) {
    lastKey = min(lastKey, start + min(q0 + kTile, queries) - 1);
    if (p.window > 0)
      firstKey = max(0, start + q0 - static_cast<int>(p.window) + 1);
  }
  const int firstTile = firstKey / kTile;
  const int tiles = lastKey < firstKey ? 0 : lastKey / kTile - firstTile + 1;

  loadRowsAsync<D, kTile, kThreads>(
      sq, static_cast<const __nv_bfloat16 *>(p.q) + p.qStrides.at(b, h, 0), q0, queries,
      p.qStrides.row);
  loadRowsAsync<D, kTile, kThreads>(
      sdo, static_cast<const __nv_bfloat16 *>(p.outGrad) + p.outGradStrides.at(b, h, 0), q0,
      queries, p.outGradStrides.row);
  if (tiles > 0) {
    loadRowsAsync<D, kTile, kThreads>(sk, kSrc, firstTile * kTile, keys, kStride);
    loadRowsAsync<D, kTile, kThreads>(sv, vSrc, firstTile * kTile, keys, vStride);
  }
  commitCopies();

  // This thread's two query rows: the warp's row `group` and `group + 8`.
  const int queryA = q0 + warp * 16 + group;
  RowStats rowStats[2];
#pragma unroll
  for (int row = 0; row < 2; ++row) {
    const int t = queryA + 8 * row;
    rowStats[row] = t < queries ? stats[rowBase + t] : RowStats{INFINITY, 0.0f};
  }
  float dq[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
    dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;

  for (int it = 0; it < tiles; ++it) {
    const int buffer = it & 1, key0 = (firstTile + it) * kTile;
    if (it + 1 < tiles) {
      loadRowsAsync<D, kTile, kThreads>(sk + (buffer ^ 1) * kTile * D, kSrc, key0 + kTile,
                                        keys, kStride);
      loadRowsAsync<D, kTile, kThreads>(sv + (buffer ^ 1) * kTile * D, vSrc, key0 + kTile,
                                        keys, vStride);
      commitCopies();
      waitCopies<1>();
    } else {
      waitCopies<0>();
    }
    __syncthreads();
    const __nv_bfloat16 *tk = sk + buffer * kTile * D, *tv = sv + buffer * kTile * D;

    // S = Q·Kᵀ and dP = dO·Vᵀ: the warp's 16 queries × 64 keys each.
    float s[kTile / 8][4], dp[kTile / 8][4];
    tileProducts<D>(s, dp, sq, sdo, tk, tv, warp * 16, lane);
    const bool edge = !wholeTileVisible(p, q0, key0, queries, keys, start);
#pragma unroll
    for (int n = 0; n < kTile / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = e / 2, key = key0 + n * 8 + pairCol + e % 2;
        const int query = queryA + 8 * row;
        const bool visible = !edge || (key < keys && query < queries &&
                                       sees(start + query, key, p.causal, p.window));
        probabilityAndGrad<Softcap>(s[n][e], dp[n][e], rowStats[row], p);
        if (!visible)
          s[n][e] = dp[n][e] = 0.0f;
      }

    // dQ += dS·K: dS's accumulators are A fragments as they lie.
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      uint32_t df[4];
      packFragment(df, dp[2 * j], dp[2 * j + 1]);
#pragma unroll
      for (int dd = 0; dd < D / 16; ++dd) {
        uint32_t bk[4];
        loadTransposedFragments<D>(bk, tk, j * 16, dd, lane);
        mma(dq[2 * dd], df, bk[0], bk[1]);
        mma(dq[2 * dd + 1], df, bk[2], bk[3]);
      }
    }
    __syncthreads(); // this buffer is refilled two tiles on
  }

#pragma unroll
  for (int row = 0; row < 2; ++row) {
    const int query = queryA + 8 * row;
    if (query >= queries)
      continue;
    auto *out = static_cast<__nv_bfloat16 *>(p.qGrad) + p.qGradStrides.at(b, h, query);
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<__nv_bfloat162 *>(out + n * 8 + pairCol) =
          __floats2bfloat162_rn(dq[n][2 * row], dq[n][2 * row + 1]);
  }
}

/// c += (a, b) at `at` and `at + 1` (8-byte aligned): one vector atomic
/// on sm_90.
__device__ __forceinline__ void addPair(float *at, float a, float b) {
#if __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2 *>(at), make_float2(a, b));
#else
  atomicAdd(at, a);
  atomicAdd(at + 1, b);
#endif
}


#if GAI_DEVICE_WGMMA
/// Adds a warp's 16 × 64 accumulator rows (mma.sync's C layout) to the
/// f32 rows at `to` (this lane's first row; D floats apart) by float4
/// atomics, half as many as pairs: a lane and its neighbour swap halves,
/// so the even lane holds four columns of its row and the odd lane four of
/// the row 8 below. The quads are made in place first, so that each
/// atomic reads its own registers (reusing one set made every atomic wait
/// for the one before to read them). Rows at or past `rowsLeft` are skipped.
template <int D>
__device__ __forceinline__ void addQuads(float *to, float (&acc)[D / 8][4], int rowsLeft,
                                         int lane) {
  const bool even = (lane & 1) == 0;
  const int row = even ? 0 : 8;
  to += row * D + (2 * (lane % 4) & ~3);
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    const float give0 = even ? acc[n][2] : acc[n][0], give1 = even ? acc[n][3] : acc[n][1];
    const float got0 = __shfl_xor_sync(0xffffffffu, give0, 1);
    const float got1 = __shfl_xor_sync(0xffffffffu, give1, 1);
    if (even) {
      acc[n][2] = got0;
      acc[n][3] = got1;
    } else {
      acc[n][0] = got0;
      acc[n][1] = got1;
    }
  }
  if (row < rowsLeft)
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      atomicAdd(reinterpret_cast<float4 *>(to + n * 8),
                make_float4(acc[n][0], acc[n][1], acc[n][2], acc[n][3]));
}
#endif

template <int D> constexpr size_t fusedSmemBytes() {
  // gradSmemBytes' tiles, and dSᵀ of one tile pair for the dQ product.
  return gradSmemBytes<D>() + sizeof(__nv_bfloat16) * kTile * kTile;
}

/// FlashAttention-2's backward in one kernel: a block owns 64 keys of one
/// query head and walks the query tiles that see them, keeping dK and dV
/// in registers, and adds each tile's dQ = dS·K to the f32 `dqSums`
/// [B, H, T, D] by atomics. That spares the query-side kernel's second
/// pass over Q·Kᵀ and dO·Vᵀ (three products a tile pair become one), at
/// the price of dQ's sums running in no fixed order. Under GQA dK and dV
/// go the same way into `kvSums` [2][B, KVH, S, D]; finishSumsKernel turns
/// the sums into bf16.
//
/// Wgmma: the products on Hopper's warpgroup MMA (head dim 64, sm_90a; see
/// Wgmma.cuh), the rest as with mma.sync. Its tiles start 1024-byte aligned,
/// which the launch's extra kWgmmaAlignment bytes of shared memory allow.
template <int D, bool Softcap, bool Wgmma>
__global__ void __launch_bounds__(kThreads, Wgmma &&Softcap ? 2 : kKeyBlocksPerSm<D>)
    flashGradFusedKernel(AttentionGradParams p, const RowStats *stats, float *dqSums,
                         float *kvSums) {
  static_assert(!Wgmma || D == 64, "wgmma tiles are 64 wide");
#if !GAI_DEVICE_WGMMA
  if constexpr (Wgmma) {
    __trap(); // never launched: the host asks wgmmaRuns() first
  } else
#endif
  {
  extern __shared__ __align__(128) unsigned char shared[];
  unsigned char *raw = Wgmma ? alignedForWgmma(shared) : shared;
  auto *sk = reinterpret_cast<__nv_bfloat16 *>(raw);
  __nv_bfloat16 *sv = sk + kTile * D;
  __nv_bfloat16 *sq = sv + kTile * D;         // two buffers
  __nv_bfloat16 *sdo = sq + 2 * kTile * D;    // two buffers
  __nv_bfloat16 *sds = sdo + 2 * kTile * D;   // dSᵀ: [keys, queries]
  auto *sstats = reinterpret_cast<RowStats *>(sds + kTile * kTile); // two tiles

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pairCol = 2 * (lane % 4);
  // The blocks in flight are a group of heads' key tiles (keyBlockOf), so
  // the dQ sums their atomics add to and the Q and dO tiles they read stay
  // in L2 (heads fastest over every head spread them: 85% of L2's
  // throughput and a third of DRAM's on llama-1b).
  const KeyBlockPlace block = keyBlockPlace(p);
  const int key0 = block.index * kTile, h = block.h, b = block.b;
  const int queries = static_cast<int>(p.queries), keys = static_cast<int>(p.keys);
  const int heads = static_cast<int>(p.heads), groups = heads / static_cast<int>(p.kvHeads);
  const int start = keys - queries;
  const int kvh = h / groups;
  const int64_t rowBase = (static_cast<int64_t>(b) * heads + h) * queries;
  const auto *qSrc = static_cast<const __nv_bfloat16 *>(p.q) + p.qStrides.at(b, h, 0);
  const auto *doSrc =
      static_cast<const __nv_bfloat16 *>(p.outGrad) + p.outGradStrides.at(b, h, 0);

  const QueryTiles seen = queryTilesSeeing(p, key0, kTile, queries, start);
  const int firstTile = seen.first, tiles = seen.count;
  auto loadQueries = [&](int it, int buffer) {
    const int q0 = (firstTile + it) * kTile;
    loadRowsAsync<D, kTile, kThreads>(sq + buffer * kTile * D, qSrc, q0, queries,
                                      p.qStrides.row);
    loadRowsAsync<D, kTile, kThreads>(sdo + buffer * kTile * D, doSrc, q0, queries,
                                      p.outGradStrides.row);
    loadStatsAsync(sstats + buffer * kTile, stats + rowBase, q0, queries);
  };

  loadRowsAsync<D, kTile, kThreads>(
      sk, static_cast<const __nv_bfloat16 *>(p.k) + p.kStrides.at(b, kvh, 0), key0, keys,
      p.kStrides.row);
  loadRowsAsync<D, kTile, kThreads>(
      sv, static_cast<const __nv_bfloat16 *>(p.v) + p.vStrides.at(b, kvh, 0), key0, keys,
      p.vStrides.row);
  if (tiles > 0)
    loadQueries(0, 0);
  commitCopies();

  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      dk[n][e] = dv[n][e] = 0.0f;
  const int keyA = key0 + warp * 16 + group;
#if GAI_DEVICE_WGMMA
  // The tiles' descriptors, made once: a step along a tile adds its bytes / 16.
  uint64_t kDesc = 0, vDesc = 0, dsDesc = 0, qDesc[2] = {}, doDesc[2] = {};
  if constexpr (Wgmma) {
    kDesc = tileDescriptor(sk);
    vDesc = tileDescriptor(sv);
    dsDesc = tileDescriptor(sds);
#pragma unroll
    for (int buffer = 0; buffer < 2; ++buffer) {
      qDesc[buffer] = tileDescriptor(sq + buffer * kTile * D);
      doDesc[buffer] = tileDescriptor(sdo + buffer * kTile * D);
    }
  }
  constexpr uint64_t kAlongRow = 16 * 2 / 16, kDownRows = 16 * D * 2 / 16; // 16 k a step
#endif

  for (int it = 0; it < tiles; ++it) {
    const int buffer = it & 1, q0 = (firstTile + it) * kTile;
    if (it + 1 < tiles) {
      loadQueries(it + 1, buffer ^ 1);
      commitCopies();
      waitCopies<1>();
    } else {
      waitCopies<0>();
    }
#if GAI_DEVICE_WGMMA
    if constexpr (Wgmma)
      fenceSharedForWgmma(); // cp.async wrote the tiles wgmma reads
#endif
    __syncthreads();
    const __nv_bfloat16 *tq = sq + buffer * kTile * D, *tdo = sdo + buffer * kTile * D;
    const RowStats *tstats = sstats + buffer * kTile;

    float s[kTile / 8][4], dp[kTile / 8][4];
#if GAI_DEVICE_WGMMA
    const uint64_t qd = buffer ? qDesc[1] : qDesc[0], dod = buffer ? doDesc[1] : doDesc[0];
    if constexpr (Wgmma) {
      // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: all four tiles K-major, 16 of D a step.
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wgmma64<0, 0>(s, kDesc + kk * kAlongRow, qd + kk * kAlongRow, kk > 0);
        wgmma64<0, 0>(dp, vDesc + kk * kAlongRow, dod + kk * kAlongRow, kk > 0);
      }
      wgmmaCommit();
      wgmmaWait<0>();
      holdOperands(s);
      holdOperands(dp);
    } else
#endif
      tileProducts<D>(s, dp, sk, sv, tq, tdo, warp * 16, lane);
    keyTileProbabilities<Softcap>(s, dp, tstats, p, key0, keyA, q0, keys, queries, start,
                                  pairCol);

    // P and dS as A fragments (the accumulators as they lie), and dSᵀ to
    // shared memory for dQ, whose rows are split across the warps the
    // other way (each warp holds 16 keys, dQ needs all 64 per query).
    uint32_t pf[kTile / 16][4], df[kTile / 16][4];
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      packFragment(pf[j], s[2 * j], s[2 * j + 1]);
      packFragment(df[j], dp[2 * j], dp[2 * j + 1]);
      storeFragment<kTile>(sds, df[j], warp * 16, j * 16, lane);
    }

    float dq[D / 8][4];
#if GAI_DEVICE_WGMMA
    if constexpr (Wgmma) {
      // dQ = dS·K (A = dS read from dSᵀ, both MN-major) first, then
      // dV += Pᵀ·dO and dK += dSᵀ·Q (A from registers, B = dO and Q
      // MN-major: k is their rows), so that dQ's atomics run while the
      // tensor cores make dV and dK (3% of llama-1b's backward on an
      // H100). The fragments stay whole until the last wait.
      holdOperands(pf); // made before the fence, as the wgmmas need
      holdOperands(df);
      holdOperands(dv);
      holdOperands(dk);
      fenceSharedForWgmma();
      __syncthreads(); // every warp's dSᵀ is in
      wgmmaFence();
#pragma unroll
      for (int j = 0; j < kTile / 16; ++j)
        wgmma64<1, 1>(dq, dsDesc + j * kDownRows, kDesc + j * kDownRows, j > 0);
      wgmmaCommit();
#pragma unroll
      for (int j = 0; j < kTile / 16; ++j) {
        wgmma64<1>(dv, pf[j], dod + j * kDownRows);
        wgmma64<1>(dk, df[j], qd + j * kDownRows);
      }
      wgmmaCommit();
      wgmmaWait<1>(); // dQ is done; dV and dK run on beside its atomics
      holdOperands(dq);
      addQuads<D>(dqSums + (rowBase + q0 + warp * 16 + group) * D, dq, queries - q0 - warp * 16 -
                                                                    group, lane);
      wgmmaWait<0>();
      holdOperands(pf);
      holdOperands(df);
      holdOperands(dv);
      holdOperands(dk);
    } else
#endif
    {
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
#pragma unroll
      for (int dd = 0; dd < D / 16; ++dd) {
        uint32_t bo[4], bq[4];
        loadTransposedFragments<D>(bo, tdo, j * 16, dd, lane);
        loadTransposedFragments<D>(bq, tq, j * 16, dd, lane);
        mma(dv[2 * dd], pf[j], bo[0], bo[1]);
        mma(dv[2 * dd + 1], pf[j], bo[2], bo[3]);
        mma(dk[2 * dd], df[j], bq[0], bq[1]);
        mma(dk[2 * dd + 1], df[j], bq[2], bq[3]);
      }
    }
    __syncthreads(); // every warp's dSᵀ is in

    // dQ of the warp's 16 queries (q0 + warp·16..) over the block's keys:
    // A = dS read transposed from dSᵀ, B = K with k along its rows.
#pragma unroll
    for (int j = 0; j < kTile / 16; ++j) {
      uint32_t af[4];
      loadMatricesTransposed(af, sds + swizzled<kTile>(j * 16 + lane % 8 + 8 * (lane / 16),
                                                       warp * 16 + 8 * ((lane / 8) % 2)));
#pragma unroll
      for (int dd = 0; dd < D / 16; ++dd) {
        uint32_t bk[4];
        loadTransposedFragments<D>(bk, sk, j * 16, dd, lane);
        mma(dq[2 * dd], af, bk[0], bk[1]);
        mma(dq[2 * dd + 1], af, bk[2], bk[3]);
      }
    }
    }
    if (!Wgmma) { // the wgmma form added its dQ above
#pragma unroll
    for (int row = 0; row < 2; ++row) {
      const int query = q0 + warp * 16 + group + 8 * row;
      if (query >= queries)
        continue;
      float *to = dqSums + (rowBase + query) * D;
#pragma unroll
      for (int n = 0; n < D / 8; ++n)
        addPair(to + n * 8 + pairCol, dq[n][2 * row], dq[n][2 * row + 1]);
    }
    }
    __syncthreads(); // this buffer is refilled two tiles on; dSᵀ next tile
  }

  const int64_t kvRows = p.batch * p.kvHeads * p.keys;
#pragma unroll
  for (int row = 0; row < 2; ++row) {
    const int key = keyA + 8 * row;
    if (key >= keys)
      continue;
    if (groups == 1) {
      auto *kOut = static_cast<__nv_bfloat16 *>(p.kGrad) + p.kGradStrides.at(b, kvh, key);
      auto *vOut = static_cast<__nv_bfloat16 *>(p.vGrad) + p.vGradStrides.at(b, kvh, key);
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        *reinterpret_cast<__nv_bfloat162 *>(kOut + n * 8 + pairCol) =
            __floats2bfloat162_rn(dk[n][2 * row], dk[n][2 * row + 1]);
        *reinterpret_cast<__nv_bfloat162 *>(vOut + n * 8 + pairCol) =
            __floats2bfloat162_rn(dv[n][2 * row], dv[n][2 * row + 1]);
      }
    } else {
      const int64_t at =
          ((static_cast<int64_t>(b) * p.kvHeads + kvh) * keys + key) * D;
      float *kOut = kvSums + at, *vOut = kvSums + kvRows * D + at;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        addPair(kOut + n * 8 + pairCol, dk[n][2 * row], dk[n][2 * row + 1]);
        addPair(vOut + n * 8 + pairCol, dv[n][2 * row], dv[n][2 * row + 1]);
      }
    }
  }
  }
}

// The fused backward on wgmma with 128 keys a block (two halves of 64), one
// warpgroup, so that each Q/dO tile read and each dQ atomic serve twice the
// keys: the 64-key kernel is bound by L2 traffic. dK and dV of both halves stay in
// registers (128 floats a thread), two blocks an SM.
constexpr int kWideKeys = 2 * kTile;

constexpr size_t wideSmemBytes() {
  // K and V of 128 keys, Q and dO double-buffered, dSᵀ of 128 keys, stats.
  return sizeof(__nv_bfloat16) * (2 * kWideKeys * 64 + 4 * kTile * 64 + kWideKeys * kTile) +
         sizeof(RowStats) * 2 * kTile;
}

template <bool Softcap>
__global__ void __launch_bounds__(kThreads, 2)
    flashGradWideKernel(AttentionGradParams p, const RowStats *stats, float *dqSums,
                        float *kvSums) {
#if !GAI_DEVICE_WGMMA
  __trap();
#else
  constexpr int D = 64;
  extern __shared__ __align__(128) unsigned char shared[];
  unsigned char *raw = alignedForWgmma(shared);
  auto *sk = reinterpret_cast<__nv_bfloat16 *>(raw);   // [128, D]
  __nv_bfloat16 *sv = sk + kWideKeys * D;               // [128, D]
  __nv_bfloat16 *sq = sv + kWideKeys * D;               // two buffers
  __nv_bfloat16 *sdo = sq + 2 * kTile * D;              // two buffers
  __nv_bfloat16 *sds = sdo + 2 * kTile * D;             // dSᵀ: [128 keys, 64 queries]
  auto *sstats = reinterpret_cast<RowStats *>(sds + kWideKeys * kTile); // two tiles

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pairCol = 2 * (lane % 4);
  const KeyBlockPlace block = keyBlockPlace(p);
  const int key0 = block.index * kWideKeys, h = block.h, b = block.b;
  const int queries = static_cast<int>(p.queries), keys = static_cast<int>(p.keys);
  const int heads = static_cast<int>(p.heads), groups = heads / static_cast<int>(p.kvHeads);
  const int start = keys - queries;
  const int kvh = h / groups;
  const int64_t rowBase = (static_cast<int64_t>(b) * heads + h) * queries;
  const auto *qSrc = static_cast<const __nv_bfloat16 *>(p.q) + p.qStrides.at(b, h, 0);
  const auto *doSrc =
      static_cast<const __nv_bfloat16 *>(p.outGrad) + p.outGradStrides.at(b, h, 0);

  const QueryTiles seen = queryTilesSeeing(p, key0, kWideKeys, queries, start);
  const int firstTile = seen.first, tiles = seen.count;
  auto loadQueries = [&](int it, int buffer) {
    const int q0 = (firstTile + it) * kTile;
    loadRowsAsync<D, kTile, kThreads>(sq + buffer * kTile * D, qSrc, q0, queries,
                                      p.qStrides.row);
    loadRowsAsync<D, kTile, kThreads>(sdo + buffer * kTile * D, doSrc, q0, queries,
                                      p.outGradStrides.row);
    loadStatsAsync(sstats + buffer * kTile, stats + rowBase, q0, queries);
  };

  loadRowsAsync<D, kWideKeys, kThreads>(
      sk, static_cast<const __nv_bfloat16 *>(p.k) + p.kStrides.at(b, kvh, 0), key0, keys,
      p.kStrides.row);
  loadRowsAsync<D, kWideKeys, kThreads>(
      sv, static_cast<const __nv_bfloat16 *>(p.v) + p.vStrides.at(b, kvh, 0), key0, keys,
      p.vStrides.row);
  if (tiles > 0)
    loadQueries(0, 0);
  commitCopies();

  float dk[2][D / 8][4], dv[2][D / 8][4];
#pragma unroll
  for (int half = 0; half < 2; ++half)
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dk[half][n][e] = dv[half][n][e] = 0.0f;

  const uint64_t kDesc = tileDescriptor(sk), vDesc = tileDescriptor(sv),
                 dsDesc = tileDescriptor(sds);
  uint64_t qDesc[2], doDesc[2];
#pragma unroll
  for (int buffer = 0; buffer < 2; ++buffer) {
    qDesc[buffer] = tileDescriptor(sq + buffer * kTile * D);
    doDesc[buffer] = tileDescriptor(sdo + buffer * kTile * D);
  }
  constexpr uint64_t kAlongRow = 16 * 2 / 16, kDownRows = 16 * D * 2 / 16;
  constexpr uint64_t kHalfRows = kTile * D * 2 / 16; // 64 rows of K, V or dSᵀ

  for (int it = 0; it < tiles; ++it) {
    const int buffer = it & 1, q0 = (firstTile + it) * kTile;
    if (it + 1 < tiles) {
      loadQueries(it + 1, buffer ^ 1);
      commitCopies();
      waitCopies<1>();
    } else {
      waitCopies<0>();
    }
    fenceSharedForWgmma();
    __syncthreads();
    const RowStats *tstats = sstats + buffer * kTile;
    const uint64_t qd = buffer ? qDesc[1] : qDesc[0], dod = buffer ? doDesc[1] : doDesc[0];

#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int halfKey0 = key0 + half * kTile;
      float s[kTile / 8][4], dp[kTile / 8][4];
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wgmma64<0, 0>(s, kDesc + half * kHalfRows + kk * kAlongRow, qd + kk * kAlongRow, kk > 0);
        wgmma64<0, 0>(dp, vDesc + half * kHalfRows + kk * kAlongRow, dod + kk * kAlongRow,
                      kk > 0);
      }
      wgmmaCommit();
      wgmmaWait<0>();
      holdOperands(s);
      holdOperands(dp);
      keyTileProbabilities<Softcap>(s, dp, tstats, p, halfKey0, halfKey0 + warp * 16 + group,
                                    q0, keys, queries, start, pairCol);
      uint32_t pf[kTile / 16][4], df[kTile / 16][4];
#pragma unroll
      for (int j = 0; j < kTile / 16; ++j) {
        packFragment(pf[j], s[2 * j], s[2 * j + 1]);
        packFragment(df[j], dp[2 * j], dp[2 * j + 1]);
        storeFragment<kTile>(sds, df[j], half * kTile + warp * 16, j * 16, lane);
      }
      holdOperands(pf);
      holdOperands(df);
      holdOperands(dv[half]);
      holdOperands(dk[half]);
      wgmmaFence();
#pragma unroll
      for (int j = 0; j < kTile / 16; ++j) {
        wgmma64<1>(dv[half], pf[j], dod + j * kDownRows);
        wgmma64<1>(dk[half], df[j], qd + j * kDownRows);
      }
      wgmmaCommit();
      wgmmaWait<0>();
      holdOperands(pf);
      holdOperands(df);
      holdOperands(dv[half]);
      holdOperands(dk[half]);
    }

    // dQ = dS·K over all 128 keys: one set of atomics for both halves.
    float dq[D / 8][4];
    fenceSharedForWgmma();
    __syncthreads(); // every warp's dSᵀ is in
    wgmmaFence();
#pragma unroll
    for (int j = 0; j < kWideKeys / 16; ++j)
      wgmma64<1, 1>(dq, dsDesc + j * kDownRows, kDesc + j * kDownRows, j > 0);
    wgmmaCommit();
    wgmmaWait<0>();
    holdOperands(dq);
    addQuads<D>(dqSums + (rowBase + q0 + warp * 16 + group) * D, dq,
                queries - q0 - warp * 16 - group, lane);
    __syncthreads(); // this buffer is refilled two tiles on; dSᵀ next tile
  }

  const int64_t kvRows = p.batch * p.kvHeads * p.keys;
#pragma unroll
  for (int half = 0; half < 2; ++half)
#pragma unroll
    for (int row = 0; row < 2; ++row) {
      const int key = key0 + half * kTile + warp * 16 + group + 8 * row;
      if (key >= keys)
        continue;
      if (groups == 1) {
        auto *kOut = static_cast<__nv_bfloat16 *>(p.kGrad) + p.kGradStrides.at(b, kvh, key);
        auto *vOut = static_cast<__nv_bfloat16 *>(p.vGrad) + p.vGradStrides.at(b, kvh, key);
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
          *reinterpret_cast<__nv_bfloat162 *>(kOut + n * 8 + pairCol) =
              __floats2bfloat162_rn(dk[half][n][2 * row], dk[half][n][2 * row + 1]);
          *reinterpret_cast<__nv_bfloat162 *>(vOut + n * 8 + pairCol) =
              __floats2bfloat162_rn(dv[half][n][2 * row], dv[half][n][2 * row + 1]);
        }
      } else {
        const int64_t at = ((static_cast<int64_t>(b) * p.kvHeads + kvh) * keys + key) * D;
        float *kOut = kvSums + at, *vOut = kvSums + kvRows * D + at;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
          addPair(kOut + n * 8 + pairCol, dk[half][n][2 * row], dk[half][n][2 * row + 1]);
          addPair(vOut + n * 8 + pairCol, dv[half][n][2 * row], dv[half][n][2 * row + 1]);
        }
      }
    }
#endif
}

/// f32 sums [B, heads, rows, D] (packed) into a bf16 tensor with
/// `strides` (rows 16-byte aligned), eight elements a thread: 16 bytes
/// stored, and the row's place found by 32-bit divisions (a thread of four
/// elements and 64-bit ones left the kernel bound by its arithmetic).
template <int D>
__global__ void finishSumsKernel(const float *sums, __nv_bfloat16 *to, RowStrides strides,
                                 uint32_t heads, uint32_t rows, int64_t count) {
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 8;
       i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x * 8) {
    const float4 lo = *reinterpret_cast<const float4 *>(sums + i);
    const float4 hi = *reinterpret_cast<const float4 *>(sums + i + 4);
    const auto row = static_cast<uint32_t>(i / D);
    const uint32_t t = row % rows, head = row / rows;
    const uint4 packed = {packBf16(lo.x, lo.y), packBf16(lo.z, lo.w), packBf16(hi.x, hi.y),
                          packBf16(hi.z, hi.w)};
    *reinterpret_cast<uint4 *>(to + strides.at(head / heads, head % heads, t) + i % D) = packed;
  }
}

/// dK and dV of each KV head: the sums of its query heads' partials.
__global__ void sumGroupsKernel(AttentionGradParams p, const float *partials) {
  const int64_t groups = p.heads / p.kvHeads, perHead = p.keys * p.headDim;
  const int64_t count = p.batch * p.kvHeads * perHead, whole = p.batch * p.heads * perHead;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t within = i % perHead, head0 = i / perHead * groups; // b·H + kvh·groups
    float dk = 0.0f, dv = 0.0f;
    for (int64_t g = 0; g < groups; ++g) {
      dk += partials[(head0 + g) * perHead + within];
      dv += partials[whole + (head0 + g) * perHead + within];
    }
    const int64_t b = i / perHead / p.kvHeads, kvh = i / perHead % p.kvHeads,
                  key = within / p.headDim, d = within % p.headDim;
    static_cast<__nv_bfloat16 *>(p.kGrad)[p.kGradStrides.at(b, kvh, key) + d] =
        __float2bfloat16_rn(dk);
    static_cast<__nv_bfloat16 *>(p.vGrad)[p.vGradStrides.at(b, kvh, key) + d] =
        __float2bfloat16_rn(dv);
  }
}

template <typename Kernel> void allowSharedMemory(Kernel kernel, size_t bytes) {
  // A failure shows as a launch error.
  (void)cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(bytes));
}

/// The fused backward's products on wgmma: head dim 64 on Hopper, unless
/// the caller asks for mma.sync.
bool useWgmma(const AttentionGradParams &p) {
  return p.headDim == 64 && !p.mmaSyncOnly && wgmmaRuns();
}

/// Blocks of `kernel` (kThreads, `bytes` of shared memory) the whole GPU
/// holds at once.
template <typename Kernel> int blocksHeld(Kernel kernel, size_t bytes) {
  int perSm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, kThreads, bytes) !=
      cudaSuccess)
    perSm = 1;
  return std::max(perSm, 1) * multiprocessorCount();
}

/// `p` with orderGroups set for `keyBlocks` key blocks a head, of which the
/// GPU holds `held` at once (KeyBlockOrder.h).
AttentionGradParams withBlockOrder(const AttentionGradParams &p, int64_t keyBlocks, int held) {
  AttentionGradParams ordered = p;
  ordered.orderGroups =
      keyBlockGroups(p.batch * p.heads, keyBlocks, held,
                     p.blockSpread, p.causal);
  return ordered;
}

/// The key-side kernels' one-dimensional grid (keyBlockOf).
dim3 keyGrid(const AttentionGradParams &p, int64_t keyBlocks) {
  return dim3(static_cast<unsigned>(keyBlocks * p.batch * p.heads));
}

/// Where the tensor-core path's row stats and f32 sums lie in the
/// workspace, after D.
struct GradSums {
  RowStats *stats = nullptr;
  float *dq = nullptr, *kv = nullptr;      // the fused kernel's
  bool dqZeroed = false, kvZeroed = false; // by prepareRowsKernel
  float *partials = nullptr;               // the deterministic form's
};

template <int D, bool Softcap>
void launchFlashGrad(const AttentionGradParams &p, const GradSums &sums,
                     cudaStream_t stream) {
  static bool configured = [] {
    allowSharedMemory(flashGradKeysKernel<D, Softcap>, gradSmemBytes<D>());
    allowSharedMemory(flashGradQueriesKernel<D, Softcap>, gradSmemBytes<D>());
    allowSharedMemory(flashGradFusedKernel<D, Softcap, false>, fusedSmemBytes<D>());
    if constexpr (D == 64 && kWgmmaBuild) {
      allowSharedMemory(flashGradFusedKernel<D, Softcap, true>,
                        fusedSmemBytes<D>() + kWgmmaAlignment);
      allowSharedMemory(flashGradWideKernel<Softcap>, wideSmemBytes() + kWgmmaAlignment);
    }
    return true;
  }();
  (void)configured;
  const auto heads = static_cast<unsigned>(p.heads), batch = static_cast<unsigned>(p.batch);
  const auto keyTiles = static_cast<unsigned>((p.keys + kTile - 1) / kTile);
  const bool grouped = p.heads != p.kvHeads;
  if (!p.deterministic) {
    const int64_t dqCount = p.batch * p.heads * p.queries * D;
    const int64_t kvCount = p.batch * p.kvHeads * p.keys * D;
    if (!sums.dqZeroed)
      cudaMemsetAsync(sums.dq, 0, dqCount * sizeof(float), stream);
    if (grouped && !sums.kvZeroed)
      cudaMemsetAsync(sums.kv, 0, 2 * kvCount * sizeof(float), stream);
    // 128 keys a block where there are more than one tile's: half the Q/dO
    // reads and dQ atomics of 64 (llama-1b's shape: 0.896 -> 0.814 ms).
    if (D == 64 && kWgmmaBuild && useWgmma(p) && p.keys > kTile) {
      const int64_t keyBlocks = (p.keys + kWideKeys - 1) / kWideKeys;
      const size_t bytes = wideSmemBytes() + kWgmmaAlignment;
      static const int held = blocksHeld(flashGradWideKernel<Softcap>, bytes);
      AttentionGradParams ordered = withBlockOrder(p, keyBlocks, held);
      flashGradWideKernel<Softcap><<<keyGrid(p, keyBlocks), kThreads, bytes, stream>>>(
          ordered, sums.stats, sums.dq, sums.kv);
    } else if (D == 64 && kWgmmaBuild && useWgmma(p)) {
      constexpr bool kWgmma = D == 64 && kWgmmaBuild;
      const size_t bytes = fusedSmemBytes<D>() + kWgmmaAlignment;
      static const int held = blocksHeld(flashGradFusedKernel<D, Softcap, kWgmma>, bytes);
      flashGradFusedKernel<D, Softcap, kWgmma><<<keyGrid(p, keyTiles), kThreads, bytes, stream>>>(
          withBlockOrder(p, keyTiles, held), sums.stats, sums.dq, sums.kv);
    } else {
      const size_t bytes = fusedSmemBytes<D>();
      static const int held = blocksHeld(flashGradFusedKernel<D, Softcap, false>, bytes);
      flashGradFusedKernel<D, Softcap, false><<<keyGrid(p, keyTiles), kThreads, bytes, stream>>>(
          withBlockOrder(p, keyTiles, held), sums.stats, sums.dq, sums.kv);
    }
    auto finish = [&](const float *from, void *to, const RowStrides &strides, int64_t n,
                      int64_t rows, int64_t count) {
      finishSumsKernel<D>
          <<<static_cast<unsigned>(std::min<int64_t>((count / 8 + 255) / 256, 8192)), 256, 0,
             stream>>>(from, static_cast<__nv_bfloat16 *>(to), strides,
                       static_cast<uint32_t>(n), static_cast<uint32_t>(rows), count);
    };
    finish(sums.dq, p.qGrad, p.qGradStrides, p.heads, p.queries, dqCount);
    if (grouped) {
      finish(sums.kv, p.kGrad, p.kGradStrides, p.kvHeads, p.keys, kvCount);
      finish(sums.kv + kvCount, p.vGrad, p.vGradStrides, p.kvHeads, p.keys, kvCount);
    }
    return;
  }
  static const int held = blocksHeld(flashGradKeysKernel<D, Softcap>, gradSmemBytes<D>());
  flashGradKeysKernel<D, Softcap><<<keyGrid(p, keyTiles), kThreads, gradSmemBytes<D>(), stream>>>(
      withBlockOrder(p, keyTiles, held), sums.stats, sums.partials);
  flashGradQueriesKernel<D, Softcap>
      <<<dim3(static_cast<unsigned>((p.queries + kTile - 1) / kTile), heads, batch), kThreads,
         gradSmemBytes<D>(), stream>>>(p, sums.stats);
  if (grouped) {
    const int64_t count = p.batch * p.kvHeads * p.keys * p.headDim;
    sumGroupsKernel<<<static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 8192)), 256,
                      0, stream>>>(p, sums.partials);
  }
}

unsigned warpBlocks(int64_t rows) { return static_cast<unsigned>((rows + 3) / 4); }

template <typename T>
void launchRowGrad(const AttentionGradParams &p, const float *delta, cudaStream_t stream) {
  queryRowsKernel<T><<<warpBlocks(p.batch * p.heads * p.queries), 128, 0, stream>>>(p, delta);
  keyRowsKernel<T><<<warpBlocks(p.batch * p.kvHeads * p.keys), 128, 0, stream>>>(p, delta);
}

/// The shapes the tensor-core kernels take, whatever the alignment.
bool flashShapes(Elem e, const AttentionGradParams &p) {
  return e == Elem::BF16 && (p.headDim == 64 || p.headDim == 128) &&
         p.valueDim == p.headDim;
}

} // namespace

bool useFlashAttentionGrad(Elem e, const AttentionGradParams &p) {
  return flashShapes(e, p) && bf16RowsAligned(p.q, p.qStrides) &&
         bf16RowsAligned(p.k, p.kStrides) && bf16RowsAligned(p.v, p.vStrides) &&
         bf16RowsAligned(p.outGrad, p.outGradStrides) &&
         bf16RowsAligned(p.qGrad, p.qGradStrides) &&
         bf16RowsAligned(p.kGrad, p.kGradStrides) &&
         bf16RowsAligned(p.vGrad, p.vGradStrides);
}

bool attentionGradOnWgmma(Elem e, const AttentionGradParams &p) {
  return useFlashAttentionGrad(e, p) && !p.deterministic && useWgmma(p);
}

int64_t attentionGradWorkspaceFloats(Elem e, const AttentionGradParams &p) {
  const int64_t rows = p.batch * p.heads * p.queries;
  const int64_t aligned = (rows + 63) / 64 * 64; // the sums start 256-byte aligned
  // By shape alone (an upper bound): sizing runs before buffers have addresses.
  if (!flashShapes(e, p))
    return aligned;
  const bool grouped = p.heads != p.kvHeads;
  // D, the RowStats, then the sums.
  if (p.deterministic)
    return 3 * aligned + (grouped ? 2 * p.batch * p.heads * p.keys * p.headDim : 0);
  return 3 * aligned + rows * p.headDim +
         (grouped ? 2 * p.batch * p.kvHeads * p.keys * p.headDim : 0);
}

void attentionGrad(Elem e, const AttentionGradParams &given, float *workspace,
                   cudaStream_t stream) {
  AttentionGradParams p = given;
  for (auto [s, heads, rows, dim] :
       {std::tuple{&p.qStrides, p.heads, p.queries, p.headDim},
        {&p.qGradStrides, p.heads, p.queries, p.headDim},
        {&p.outStrides, p.heads, p.queries, p.valueDim},
        {&p.outGradStrides, p.heads, p.queries, p.valueDim},
        {&p.kStrides, p.kvHeads, p.keys, p.headDim},
        {&p.kGradStrides, p.kvHeads, p.keys, p.headDim},
        {&p.vStrides, p.kvHeads, p.keys, p.valueDim},
        {&p.vGradStrides, p.kvHeads, p.keys, p.valueDim}})
    *s = orPacked(*s, heads, rows, dim);
  const int64_t rows = p.batch * p.heads * p.queries;
  if (rows == 0 || p.batch * p.kvHeads * p.keys == 0)
    return;
  const int64_t aligned = (rows + 63) / 64 * 64; // each part starts 256-byte aligned
  float *delta = workspace, *after = workspace + aligned;
  GradSums sums;
  const bool flash = useFlashAttentionGrad(e, p);
  sums.stats = reinterpret_cast<RowStats *>(after);
  if (p.deterministic) {
    sums.partials = after + 2 * aligned;
  } else {
    sums.dq = after + 2 * aligned;
    sums.kv = sums.dq + rows * p.headDim;
  }
  RowStats *stats = flash ? sums.stats : nullptr; // the row kernels read lse and D
  // Where prepareRowsKernel runs (head dim 64 or 128, O's rows 16-byte
  // aligned too), it also zeroes the atomic form's dQ sums.
  const bool rowsPrepare = flash && bf16RowsAligned(p.out, p.outStrides);
  sums.dqZeroed = rowsPrepare && !p.deterministic;
  const int64_t kvSumRows = 2 * p.batch * p.kvHeads * p.keys; // under GQA
  sums.kvZeroed = sums.dqZeroed && p.heads != p.kvHeads && kvSumRows <= rows;
  float *dqZeroed = sums.dqZeroed ? sums.dq : nullptr;
  float *kvZeroed = sums.kvZeroed ? sums.kv : nullptr;
  if (rowsPrepare && p.headDim == 64)
    prepareRowsKernel<8><<<static_cast<unsigned>((rows * 8 + 255) / 256), 256, 0, stream>>>(
        p, sums.stats, dqZeroed, kvZeroed, kvSumRows);
  else if (rowsPrepare)
    prepareRowsKernel<16><<<static_cast<unsigned>((rows * 16 + 255) / 256), 256, 0, stream>>>(
        p, sums.stats, dqZeroed, kvZeroed, kvSumRows);
  else if (e == Elem::BF16)
    prepareKernel<__nv_bfloat16><<<warpBlocks(rows), 128, 0, stream>>>(p, delta, stats);
  else
    prepareKernel<float><<<warpBlocks(rows), 128, 0, stream>>>(p, delta, stats);
  if (!flash) {
    if (e == Elem::BF16)
      launchRowGrad<__nv_bfloat16>(p, delta, stream);
    else
      launchRowGrad<float>(p, delta, stream);
    return;
  }
  const bool softcap = p.softcap > 0.0f;
  if (p.headDim == 64)
    softcap ? launchFlashGrad<64, true>(p, sums, stream)
            : launchFlashGrad<64, false>(p, sums, stream);
  else
    softcap ? launchFlashGrad<128, true>(p, sums, stream)
            : launchFlashGrad<128, false>(p, sums, stream);
}

void attentionRowLse(Elem e, const AttentionParams &p, cudaStream_t stream) {
  const int64_t rows = p.batch * p.heads * p.queries;
  if (rows == 0)
    return;
  if (e == Elem::BF16)
    rowLseKernel<__nv_bfloat16><<<warpBlocks(rows), 128, 0, stream>>>(p);
  else
    rowLseKernel<float><<<warpBlocks(rows), 128, 0, stream>>>(p);
}

} // namespace gai::cuda
