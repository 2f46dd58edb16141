// Attention over the KV cache without materialised scores.
//
// The general kernel gives each query a block of 4 warps; each warp takes
// every 4th key, so one key's row is one coalesced warp load, and keeps a
// running max, sum and output (online softmax) in registers. Long contexts
// are split along the keys into independent blocks whose partial results
// a second kernel merges: at batch 1 a decode step has too few queries to
// fill the GPU otherwise. Prefill-sized bf16 work goes to the tensor-core
// flash kernel (FlashAttention.cu).
#include "hal/cuda/AttentionGrad.h"
#include "hal/cuda/FlashAttention.h"
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <cooperative_groups.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace gai::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = 8; // head dims up to 256
constexpr int kKeysPerSplit = 64; // latency-bound warps: more blocks instead
constexpr int kMostClusterSplits = 8; // the portable cluster size
// A short cache's row takes one block whose lanes load all its keys (up
// to kEarlyOf<warps> pairs each) before the wait: no split to combine.
// Longer caches split. The smaller block wins where it holds the keys: 8
// warps (148 registers) fit beside one of the q/k/v GEMV's blocks, so the
// block starts, and its keys load, while that GEMV drains, where 16 warps
// need an SM of their own (docs/cuda.md has the measurements).
constexpr int kSmallRowWarps = 8, kRowWarps = 16;
template <int Warps>
constexpr int kEarlyOf = Warps == kSmallRowWarps ? 6 : Warps == kRowWarps ? 4 : 1;

struct Range {
  int first, last; // inclusive
  int start;       // the row's first query position
  bool ok;
};

/// The keys query `t` of row `b` sees (as in the CPU kernel).
/// `knownStart`: queryStart[b] as already loaded, or null.
__device__ Range keyRange(const AttentionParams &p, int b, int t, ErrorWord *error,
                          int step, bool reportIt, const int *knownStart) {
  int start = static_cast<int>(p.keys - p.queries);
  if (p.queryStart) {
    start = knownStart ? *knownStart : p.queryStart[b];
    if (start < 0 || start + p.queries > p.keys) {
      if (reportIt)
        if (atomicCAS(&error->flag, 0, kBadQueryStart) == 0) {
          error->step = step;
          error->a = b;
          error->b = start;
        }
      return {0, -1, start, false};
    }
  }
  int pos = start + t, first = 0, last = static_cast<int>(p.keys) - 1;
  if (p.causal) {
    last = min(last, pos);
    if (p.window > 0)
      first = max(0, pos - static_cast<int>(p.window) + 1);
  }
  return {first, last, start, true};
}

/// The query row a block (blockIdx.x = (b, h, t), t fastest) works on, its
/// KV head, and the keys [s0, s1) of its split (blockIdx.y).
struct BlockKeys {
  int row, b, h, t, kvh, s0, s1;
  int first, last; // the row's visible keys, inclusive
  int start;       // its first query position
  bool ok;
};
/// The block's row, batch, head, query and KV head (no memory read).
__device__ BlockKeys blockRow(const AttentionParams &p) {
  BlockKeys bk{};
  bk.row = blockIdx.x;
  const int bh = bk.row / p.queries;
  bk.t = bk.row % p.queries;
  bk.h = bh % p.heads;
  bk.b = bh / p.heads;
  bk.kvh = bk.h / (p.heads / p.kvHeads);
  return bk;
}
/// Then its keys, from queryStart[b] (`knownStart` when already loaded).
__device__ void setBlockKeys(const AttentionParams &p, int splits, ErrorWord *error, int step,
                             BlockKeys &bk, const int *knownStart = nullptr) {
  Range range = keyRange(p, bk.b, bk.t, error, step,
                         threadIdx.x == 0 && blockIdx.y == 0 && bk.t == 0 && bk.h == 0,
                         knownStart);
  bk.ok = range.ok;
  bk.first = range.first;
  bk.start = range.start;
  bk.last = range.last;
  int span = range.last - range.first + 1;
  int per = (span + splits - 1) / splits;
  bk.s0 = range.first + blockIdx.y * per;
  bk.s1 = min(range.last + 1, bk.s0 + per);
}
__device__ BlockKeys blockKeys(const AttentionParams &p, int splits, ErrorWord *error,
                               int step) {
  BlockKeys bk = blockRow(p);
  setBlockKeys(p, splits, error, step, bk);
  return bk;
}

/// theta^(-2i/D) as HF computes it, in f32. (An exp2 of 2i·(-log2 theta / D),
/// as the compiler's RoPE kernels take it, moves the angle by an ulp: 1e-5
/// of a key at position 70.)
__device__ __forceinline__ float ropeInverseFrequency(int i, int D, float theta) {
  return 1.0f / powf(theta, static_cast<float>(2 * i) / static_cast<float>(D));
}

/// RoPE of pair i of row x[D] at `pos` (inverse frequency `inv`) into out,
/// rounded to T as a separate rope kernel would have stored it. Angles in
/// f32, as HF and the compiler's rope compute them, reduced to [-pi, pi]
/// (Cody-Waite: 2pi as an exact high part and a low part) for the fast sine
/// and cosine.
template <typename T, typename Out>
__device__ void rotatePair(const T *x, Out *out, int i, int D, int style, float pos,
                           float inv) {
  int i1 = style == 1 ? i : 2 * i, i2 = style == 1 ? i + D / 2 : 2 * i + 1;
  float x1 = toFloat(x[i1]), x2 = toFloat(x[i2]);
  float angle = pos * inv;
  constexpr float kTwoPiHigh = 6.28125f;
  constexpr float kTwoPiLow = static_cast<float>(6.283185307179586 - 6.28125);
  float turns = rintf(angle * static_cast<float>(1.0 / 6.283185307179586));
  float reduced = fmaf(-turns, kTwoPiLow, fmaf(-turns, kTwoPiHigh, angle));
  float sine, cosine;
  __sincosf(reduced, &sine, &cosine);
  out[i1] = static_cast<Out>(fromFloat<T>(x1 * cosine - x2 * sine));
  out[i2] = static_cast<Out>(fromFloat<T>(x2 * cosine + x1 * sine));
}

/// The inverse frequency of this thread's first RoPE pair, computed before
/// the kernel waits for the one before it (powf is off the critical path).
__device__ __forceinline__ float firstRopeInverseFrequency(const AttentionParams &p) {
  return p.ropeStyle ? ropeInverseFrequency(static_cast<int>(threadIdx.x % (p.headDim / 2)),
                                            static_cast<int>(p.headDim), p.ropeTheta)
                     : 0.0f;
}

/// A folded step's new rows (AttentionParams::kNew) for a block's KV head:
/// keys j >= start come from k and v here, not from the caches.
template <typename T> struct NewRows {
  const T *k, *v; // [queries, D], [queries, Dv]
  int start;      // INT_MAX when nothing is folded
};

/// Dynamic shared memory of a folded step: q's rotated row (f32), the
/// rotated new keys, then the new values, each 16-byte aligned.
__host__ __device__ inline size_t roundTo16(size_t bytes) { return (bytes + 15) / 16 * 16; }
inline size_t foldedSharedBytes(const AttentionParams &p, size_t elementBytes) {
  if (!p.kNew || !p.ropeStyle)
    return 0;
  return roundTo16(p.headDim * 4) + roundTo16(p.queries * p.headDim * elementBytes) +
         p.queries * p.valueDim * elementBytes;
}

/// The start of a folded step. With RoPE, rotates q's row into qRot and,
/// when the block's keys (ending at s1) reach the new rows, the new keys
/// into kRot and the new values beside them (shared memory, so no load
/// from global memory waits in the middle of the softmax). One block per
/// (row, KV head) writes the new rows into the caches; no block reads
/// those slots from the caches, so the write needs no ordering.
template <typename T>
__device__ NewRows<T> foldNewRows(const AttentionParams &p, const BlockKeys &bk, int s1,
                                  float *qRot, T *kRot, float firstInv) {
  const int t = bk.t, h = bk.h;
  NewRows<T> rows{nullptr, nullptr, INT_MAX};
  if (!p.kNew)
    return rows;
  const int D = static_cast<int>(p.headDim), Dv = static_cast<int>(p.valueDim);
  const int Q = static_cast<int>(p.queries);
  const int64_t head = static_cast<int64_t>(bk.b) * p.kvHeads + bk.kvh;
  rows.k = static_cast<const T *>(p.kNew) + head * Q * D;
  rows.v = static_cast<const T *>(p.vNew) + head * Q * Dv;
  rows.start = bk.start;
  const bool writer = blockIdx.y == 0 && t == 0 && h % (p.heads / p.kvHeads) == 0;
  if (p.ropeStyle) {
    const int32_t *pos = p.ropePositions + (p.ropeRows == 1 ? 0 : bk.b) * Q;
    const T *q = static_cast<const T *>(p.q) + static_cast<int64_t>(bk.row) * D;
    // q's pairs, then the new keys' when this block reads a new key, in one
    // pass so that a thread's loads go out together.
    const int pairs = D / 2, rotated = writer || s1 > rows.start ? 1 + Q : 1;
    for (int item = threadIdx.x; item < rotated * pairs; item += blockDim.x) {
      const int r = item / pairs - 1, i = item % pairs;
      const float inv = i == static_cast<int>(threadIdx.x) % pairs
                            ? firstInv
                            : ropeInverseFrequency(i, D, p.ropeTheta);
      if (r < 0)
        rotatePair(q, qRot, i, D, p.ropeStyle, static_cast<float>(pos[t]), inv);
      else
        rotatePair(rows.k + r * D, kRot + r * D, i, D, p.ropeStyle,
                   static_cast<float>(pos[r]), inv);
    }
    if (rotated > 1) {
      // The last threads copy the values while the first ones rotate.
      T *vStage = reinterpret_cast<T *>(reinterpret_cast<char *>(kRot) +
                                        roundTo16(sizeof(T) * Q * D));
      const int bytes = static_cast<int>(sizeof(T)) * Q * Dv;
      if (bytes % 16 == 0 && reinterpret_cast<uintptr_t>(rows.v) % 16 == 0) {
        for (int i = blockDim.x - 1 - threadIdx.x; i < bytes / 16; i += blockDim.x)
          reinterpret_cast<uint4 *>(vStage)[i] = reinterpret_cast<const uint4 *>(rows.v)[i];
      } else {
        for (int i = blockDim.x - 1 - threadIdx.x; i < Q * Dv; i += blockDim.x)
          vStage[i] = rows.v[i];
      }
      rows.v = vStage;
    }
    rows.k = kRot;
    __syncthreads();
  }
  if (writer) {
    // The slots start .. start + Q - 1 of a head are one run.
    T *keys = const_cast<T *>(static_cast<const T *>(p.k)) + (head * p.keys + rows.start) * D;
    T *values = const_cast<T *>(static_cast<const T *>(p.v)) + (head * p.keys + rows.start) * Dv;
    for (int i = threadIdx.x; i < Q * D; i += blockDim.x)
      keys[i] = rows.k[i];
    for (int i = threadIdx.x; i < Q * Dv; i += blockDim.x)
      values[i] = rows.v[i];
  }
  return rows;
}

/// Where split rows count their finished splits: after the partials.
__device__ __forceinline__ unsigned *arrivals(const AttentionParams &p, int splits,
                                              float *partial) {
  int64_t rows = p.batch * p.heads * p.queries;
  return reinterpret_cast<unsigned *>(partial + rows * splits * (p.valueDim + 2));
}

/// Merges a row's `splits` partial states into its output row. Partials
/// written by other blocks are read from L2 (__ldcg), not this SM's L1.
template <typename T>
__device__ void combineRow(const AttentionParams &p, int row, int splits,
                           const float *partial) {
  const int Dv = static_cast<int>(p.valueDim);
  const float *mine = partial + static_cast<int64_t>(row) * splits * (Dv + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s)
    M = fmaxf(M, __ldcg(mine + s * (Dv + 2)));
  float L = 0.0f;
  for (int s = 0; s < splits; ++s)
    if (M != -INFINITY)
      L += __ldcg(mine + s * (Dv + 2) + 1) * expf(__ldcg(mine + s * (Dv + 2)) - M);
  T *out = static_cast<T *>(p.out) + static_cast<int64_t>(row) * Dv;
  for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
    float a = 0.0f;
    for (int s = 0; s < splits; ++s)
      if (M != -INFINITY)
        a += __ldcg(mine + s * (Dv + 2) + 2 + d) * expf(__ldcg(mine + s * (Dv + 2)) - M);
    out[d] = fromFloat<T>(L > 0.0f ? a / L : 0.0f);
  }
}

/// The max and sum of `parts` (at most 32) partial softmax states (natural
/// log units), with each part's rescale factor exp(max_p - max) left in
/// `factors` (shared memory): one expf a part, not one a part and output
/// dimension. Every thread of the block calls it (it synchronises).
struct Merged {
  float max, sum;
};
__device__ Merged mergeStates(const float *maxes, const float *sums, int parts,
                              float *factors) {
  Merged m{-INFINITY, 0.0f};
  for (int w = 0; w < parts; ++w)
    m.max = fmaxf(m.max, maxes[w]);
  if (threadIdx.x < parts)
    factors[threadIdx.x] = m.max == -INFINITY ? 0.0f : expf(maxes[threadIdx.x] - m.max);
  __syncthreads();
  for (int w = 0; w < parts; ++w)
    m.sum += sums[w] * factors[w];
  return m;
}
/// Dimension d of their unnormalised outputs (acc + part·stride), rescaled
/// to the merged max.
__device__ float mergedOutput(const float *acc, const float *factors, int parts, int stride,
                              int d) {
  float a = 0.0f;
  for (int w = 0; w < parts; ++w)
    a += acc[w * stride + d] * factors[w];
  return a;
}

/// The end of a query row's block: merges its `parts` partial softmax
/// states from shared memory (max in natural-log units, sum, unnormalised
/// output at acc + part·stride), then writes the output row or, when the
/// keys are split, this split's partial. The block that finishes a row's
/// last split merges the row (no second launch) and re-arms its counter
/// for the next launch; the counters start at zero with the workspace.
template <typename T>
__device__ void finishRow(const AttentionParams &p, int row, int splits, float *partial,
                          const float *maxes, const float *sums, const float *acc,
                          int parts, int stride) {
  const int Dv = static_cast<int>(p.valueDim);
  __shared__ float factors[32];
  const Merged merged = mergeStates(maxes, sums, parts, factors);
  const float L = merged.sum;
  for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
    float a = mergedOutput(acc, factors, parts, stride, d);
    if (splits == 1) {
      T *out = static_cast<T *>(p.out) + static_cast<int64_t>(row) * Dv;
      out[d] = fromFloat<T>(L > 0.0f ? a / L : 0.0f);
    } else {
      float *mine = partial + (static_cast<int64_t>(row) * splits + blockIdx.y) * (Dv + 2);
      mine[2 + d] = a;
      if (d == 0) {
        mine[0] = merged.max;
        mine[1] = L;
      }
    }
  }
  if (splits == 1)
    return;
  __shared__ bool last;
  __threadfence(); // this split's partial is visible before its arrival is
  __syncthreads();
  unsigned *arrived = arrivals(p, splits, partial) + row;
  if (threadIdx.x == 0)
    last = atomicAdd(arrived, 1u) == static_cast<unsigned>(splits - 1);
  __syncthreads();
  if (!last)
    return;
  __threadfence();
  combineRow<T>(p, row, splits, partial);
  if (threadIdx.x == 0)
    *arrived = 0;
}

/// finishRow for splits that are the blocks of one thread-block cluster
/// (sm_90): each block leaves its merged state in its shared memory and
/// the cluster's first block combines them through distributed shared
/// memory, where finishRow goes through global memory, a fence and a
/// counter.
template <typename T>
__device__ void finishRowInCluster(const AttentionParams &p, int row, const float *maxes,
                                   const float *sums, const float *acc, int parts,
                                   int stride) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  const int Dv = static_cast<int>(p.valueDim);
  __shared__ float mine[2 + kMaxPerLane * 32]; // max, sum, unnormalised output
  __shared__ float factors[32];
  const Merged merged = mergeStates(maxes, sums, parts, factors);
  for (int d = threadIdx.x; d < Dv; d += blockDim.x)
    mine[2 + d] = mergedOutput(acc, factors, parts, stride, d);
  if (threadIdx.x == 0) {
    mine[0] = merged.max;
    mine[1] = merged.sum;
  }
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  if (cluster.block_rank() == 0) {
    const unsigned splits = cluster.num_blocks();
    float total = -INFINITY;
    for (unsigned r = 0; r < splits; ++r)
      total = fmaxf(total, cluster.map_shared_rank(mine, r)[0]);
    float sum = 0.0f;
    for (unsigned r = 0; r < splits; ++r) {
      const float *theirs = cluster.map_shared_rank(mine, r);
      sum += theirs[0] == -INFINITY ? 0.0f : theirs[1] * expf(theirs[0] - total);
    }
    T *out = static_cast<T *>(p.out) + static_cast<int64_t>(row) * Dv;
    for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
      float a = 0.0f;
      for (unsigned r = 0; r < splits; ++r) {
        const float *theirs = cluster.map_shared_rank(mine, r);
        a += theirs[0] == -INFINITY ? 0.0f : theirs[2 + d] * expf(theirs[0] - total);
      }
      out[d] = fromFloat<T>(sum > 0.0f ? a / sum : 0.0f);
    }
  }
  cluster.sync(); // the others' shared memory stays until the first block has read it
#else
  __trap(); // launched as a cluster only on sm_90
#endif
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    attentionKernel(AttentionParams p, int splits, float *partial, ErrorWord *error,
                    int step) {
  letNextKernelStart(); // the output projection may start streaming weights
  const float firstInv = firstRopeInverseFrequency(p);
  waitForPriorKernels();
  const BlockKeys bk = blockKeys(p, splits, error, step);
  if (!bk.ok)
    return;
  const int row = bk.row, b = bk.b, kvh = bk.kvh, s0 = bk.s0, s1 = bk.s1;
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  const int D = static_cast<int>(p.headDim), Dv = static_cast<int>(p.valueDim);
  const T *q = static_cast<const T *>(p.q) + static_cast<int64_t>(row) * D;
  const T *k = static_cast<const T *>(p.k) + (static_cast<int64_t>(b) * p.kvHeads + kvh) * p.keys * D;
  const T *v = static_cast<const T *>(p.v) + (static_cast<int64_t>(b) * p.kvHeads + kvh) * p.keys * Dv;
  extern __shared__ uint4 foldedShared[];
  float *qRot = reinterpret_cast<float *>(foldedShared);
  const NewRows<T> rows = foldNewRows<T>(p, bk, bk.s1, qRot,
                                         reinterpret_cast<T *>(qRot + (D + 3) / 4 * 4), firstInv);
  float qr[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    int d = lane + 32 * i;
    qr[i] = d >= D ? 0.0f : p.kNew && p.ropeStyle ? qRot[d] : toFloat(q[d]);
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j = s0 + warp; j < s1; j += kWarps) {
    const bool fresh = j >= rows.start;
    const T *kj = fresh ? rows.k + static_cast<int64_t>(j - rows.start) * D
                        : k + static_cast<int64_t>(j) * D;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      int d = lane + 32 * i;
      if (d < D)
        s += qr[i] * toFloat(kj[d]);
    }
    s = warpSum(s) * p.scale;
    if (p.softcap > 0.0f)
      s = p.softcap * tanhf(s / p.softcap);
    float mNew = fmaxf(m, s);
    float correction = expf(m - mNew), weight = expf(s - mNew);
    l = l * correction + weight;
    const T *vj = fresh ? rows.v + static_cast<int64_t>(j - rows.start) * Dv
                        : v + static_cast<int64_t>(j) * Dv;
#pragma unroll
    for (int i = 0; i < kMaxPerLane; ++i) {
      int d = lane + 32 * i;
      if (d < Dv)
        acc[i] = acc[i] * correction + weight * toFloat(vj[d]);
    }
    m = mNew;
  }

  // Merge the warps: each rescales to the block's max.
  __shared__ float sm[kWarps], sl[kWarps], sacc[kWarps][kMaxPerLane * 32];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i)
    sacc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  finishRow<T>(p, row, splits, partial, sm, sl, &sacc[0][0], kWarps, kMaxPerLane * 32);
}

/// The general kernel's work with whole 16-byte vectors: L lanes hold one
/// key's row, so a warp takes 32 / L keys a step and each lane loads two
/// keys' K and V vectors before using any, several loads in flight where
/// the per-dimension kernel waits on one at a time. Head dims that are a
/// power of two of at most 32 vectors (64, 128, 256 in bf16).
constexpr float kLog2e = 1.4426950408889634f;

// One block an SM is enough for a row block (its early keys want the
// registers: at 8 warps nvcc otherwise spills f32's); the 4-warp split
// blocks keep room for several.
template <typename T, int L, bool Cluster, int Warps>
__global__ void __launch_bounds__(Warps * 32, Warps >= kSmallRowWarps ? 1 : 4)
    vectorAttentionKernel(AttentionParams p, int splits, float *partial, ErrorWord *error,
                          int step) {
  // The output projection may start streaming its weights: split rows let
  // it start now; a row block once the q/k/v GEMV has finished (below),
  // so that its loads do not compete with the block's own early key loads,
  // which are on the critical path (docs/cuda.md: a gain for short caches,
  // none at 2048 keys, which split).
  constexpr bool kRowBlock = Warps >= kSmallRowWarps;
  if constexpr (!kRowBlock)
    letNextKernelStart();
  constexpr int kVec = 16 / sizeof(T), D = L * kVec;
  constexpr int kGroups = 32 / L, kSubs = Warps * kGroups;
  // Iterations whose keys load before the wait: all of them for one block a row.
  constexpr int kEarly = kEarlyOf<Warps>;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / L, part = lane % L;
  const int bh = blockIdx.x / p.queries;
  const int b = bh / p.heads, kvh = bh % p.heads / (p.heads / p.kvHeads);
  const T *k = static_cast<const T *>(p.k) +
               (static_cast<int64_t>(b) * p.kvHeads + kvh) * p.keys * D + part * kVec;
  const T *v = static_cast<const T *>(p.v) +
               (static_cast<int64_t>(b) * p.kvHeads + kvh) * p.keys * D + part * kVec;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  auto load = [&](const T *base, int j, int end) {
    return j < end ? *reinterpret_cast<const uint4 *>(base + static_cast<int64_t>(j) * D)
                   : zero;
  };

  // With ready caches each split owns a fixed run of slots [c0, c1), and
  // its first keys load before the kernel before this one has finished:
  // the slots a step reads were written by earlier launches.
  int c0 = 0, c1 = 0;
  uint4 early[kEarly][4];
  if (p.cacheReady) {
    const int chunk = static_cast<int>((p.keys + splits - 1) / splits);
    c0 = blockIdx.y * chunk;
    c1 = min(static_cast<int>(p.keys), c0 + chunk);
#pragma unroll
    for (int it = 0; it < kEarly; ++it) {
      const int j0 = c0 + warp * kGroups + it * 2 * kSubs + group, j1 = j0 + kSubs;
      early[it][0] = load(k, j0, c1), early[it][1] = load(k, j1, c1);
      early[it][2] = load(v, j0, c1), early[it][3] = load(v, j1, c1);
    }
  }
  // Ready caches come with the entry's own start positions: their load goes
  // out early too, but nothing uses it before the wait, which would hold
  // the wait back until the load returns.
  BlockKeys bk = blockRow(p);
  const bool startEarly = p.cacheReady && p.queryStart;
  const int start = startEarly ? loadInt32BeforeWait(p.queryStart + bk.b) : 0;
  const float firstInv = firstRopeInverseFrequency(p);
  waitForPriorKernels();
  if constexpr (kRowBlock)
    letNextKernelStart();
  setBlockKeys(p, splits, error, step, bk, startEarly ? &start : nullptr);
  if (!bk.ok)
    return; // the whole row (and so the whole cluster) leaves
  const int row = bk.row;
  int s0 = bk.s0, s1 = bk.s1;
  if (p.cacheReady) {
    s0 = max(bk.first, c0);
    s1 = min(bk.last + 1, c1);
  } else {
    c0 = s0;
  }

  extern __shared__ uint4 foldedShared[];
  float *qRot = reinterpret_cast<float *>(foldedShared);
  const NewRows<T> rows = foldNewRows<T>(p, bk, s1, qRot,
                                         reinterpret_cast<T *>(qRot + (D + 3) / 4 * 4), firstInv);
  float qf[8], acc[8] = {};
  if (p.kNew && p.ropeStyle) {
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      qf[i] = qRot[part * kVec + i];
  } else {
    unpack16(*reinterpret_cast<const uint4 *>(static_cast<const T *>(p.q) +
                                              static_cast<int64_t>(row) * D + part * kVec),
             qf, static_cast<const T *>(nullptr));
  }
  const bool capped = p.softcap > 0.0f;
  const float scale = capped ? p.scale : p.scale * kLog2e; // scores in log2 units
  float m = -INFINITY, l = 0.0f;
  auto score = [&](uint4 kv, bool valid) {
    float kf[8], x = 0.0f;
    unpack16(kv, kf, static_cast<const T *>(nullptr));
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      x += qf[i] * kf[i];
#pragma unroll
    for (int offset = L / 2; offset > 0; offset /= 2)
      x += __shfl_xor_sync(0xffffffffu, x, offset);
    x *= scale;
    if (capped)
      x = p.softcap * tanhf(x / p.softcap) * kLog2e;
    return valid ? x : -INFINITY;
  };
  // A fresh key's rows come from the step's new rows, not the stale slots.
  auto fresh = [&](int j, uint4 &kj, uint4 &vj) {
    int64_t at = static_cast<int64_t>(j - rows.start) * D + part * kVec;
    kj = *reinterpret_cast<const uint4 *>(rows.k + at);
    vj = *reinterpret_cast<const uint4 *>(rows.v + at);
  };
  // Two keys a lane (j0, j1) into the running softmax.
  auto consume = [&](int j0, uint4 k0, uint4 k1, uint4 v0, uint4 v1) {
    const int j1 = j0 + kSubs;
    const bool valid0 = j0 >= s0 && j0 < s1, valid1 = j1 >= s0 && j1 < s1;
    if (valid0 && j0 >= rows.start)
      fresh(j0, k0, v0);
    if (valid1 && j1 >= rows.start)
      fresh(j1, k1, v1);
    float x0 = score(k0, valid0), x1 = score(k1, valid1);
    float mNew = fmaxf(m, fmaxf(x0, x1));
    if (mNew == -INFINITY)
      return;
    float correction = exp2f(m - mNew), w0 = exp2f(x0 - mNew), w1 = exp2f(x1 - mNew);
    l = l * correction + w0 + w1;
    float vf0[8], vf1[8];
    unpack16(v0, vf0, static_cast<const T *>(nullptr));
    unpack16(v1, vf1, static_cast<const T *>(nullptr));
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      acc[i] = acc[i] * correction + w0 * vf0[i] + w1 * vf1[i];
    m = mNew;
  };
  // Uniform across the warp, so every lane reaches the shuffles.
  int base = c0 + warp * kGroups;
  if (p.cacheReady) {
    // The early keys are all in registers and start the softmax: their
    // scores first, then one max and no running rescale.
    float x[kEarly][2];
#pragma unroll
    for (int it = 0; it < kEarly; ++it) {
      const int j0 = base + it * 2 * kSubs + group, j1 = j0 + kSubs;
      x[it][0] = x[it][1] = -INFINITY;
      if (base + it * 2 * kSubs < s1) {
        const bool valid0 = j0 >= s0 && j0 < s1, valid1 = j1 >= s0 && j1 < s1;
        if (valid0 && j0 >= rows.start)
          fresh(j0, early[it][0], early[it][2]);
        if (valid1 && j1 >= rows.start)
          fresh(j1, early[it][1], early[it][3]);
        x[it][0] = score(early[it][0], valid0);
        x[it][1] = score(early[it][1], valid1);
      }
      m = fmaxf(m, fmaxf(x[it][0], x[it][1]));
    }
    if (m != -INFINITY) {
#pragma unroll
      for (int it = 0; it < kEarly; ++it) {
        if (base + it * 2 * kSubs >= s1)
          break;
        const float w0 = exp2f(x[it][0] - m), w1 = exp2f(x[it][1] - m);
        l += w0 + w1;
        float vf0[8], vf1[8];
        unpack16(early[it][2], vf0, static_cast<const T *>(nullptr));
        unpack16(early[it][3], vf1, static_cast<const T *>(nullptr));
#pragma unroll
        for (int i = 0; i < kVec; ++i)
          acc[i] += w0 * vf0[i] + w1 * vf1[i];
      }
    }
    base += kEarly * 2 * kSubs;
  }
  for (; base < s1; base += 2 * kSubs) {
    const int j0 = base + group, j1 = j0 + kSubs;
    consume(j0, load(k, j0, s1), load(k, j1, s1), load(v, j0, s1), load(v, j1, s1));
  }

  // Merge a warp's groups through shuffles (lanes of one part, log2 units),
  // then the warps through shared memory (natural log).
#pragma unroll
  for (int offset = L; offset < 32; offset *= 2) {
    float mOther = __shfl_xor_sync(0xffffffffu, m, offset);
    float lOther = __shfl_xor_sync(0xffffffffu, l, offset);
    float mNew = fmaxf(m, mOther);
    float mine = m == -INFINITY ? 0.0f : exp2f(m - mNew);
    float theirs = mOther == -INFINITY ? 0.0f : exp2f(mOther - mNew);
    l = l * mine + lOther * theirs;
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      acc[i] = acc[i] * mine + __shfl_xor_sync(0xffffffffu, acc[i], offset) * theirs;
    m = mNew;
  }
  __shared__ float sm[Warps], sl[Warps], sacc[Warps][D];
  if (group == 0) {
    if (part == 0) {
      sm[warp] = m == -INFINITY ? m : m / kLog2e;
      sl[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < kVec; ++i)
      sacc[warp][part * kVec + i] = acc[i];
  }
  __syncthreads();
  if constexpr (Cluster)
    finishRowInCluster<T>(p, row, sm, sl, &sacc[0][0], Warps, D);
  else
    finishRow<T>(p, row, splits, partial, sm, sl, &sacc[0][0], Warps, D);
}

/// The lanes that hold one key's row in the vector kernel (16-byte loads),
/// 0 when it cannot take the head dims.
int64_t lanesPerKeyOf(const AttentionParams &p, size_t elementBytes) {
  const int64_t vec = 16 / static_cast<int64_t>(elementBytes), lanes = p.headDim / vec;
  bool ok = p.headDim == p.valueDim && p.headDim % vec == 0 && lanes <= 32 &&
            (lanes & (lanes - 1)) == 0;
  return ok ? lanes : 0;
}

/// The warps of the smallest block that takes a row with all its keys
/// loaded before its wait, 0 when none holds them.
int rowBlockWarps(const AttentionParams &p, size_t elementBytes) {
  const int64_t lanes = lanesPerKeyOf(p, elementBytes);
  if (!p.cacheReady || lanes == 0)
    return 0;
  for (auto [warps, early] : {std::pair{kSmallRowWarps, kEarlyOf<kSmallRowWarps>},
                              std::pair{kRowWarps, kEarlyOf<kRowWarps>}})
    if (p.keys <= early * 2 * warps * (32 / lanes))
      return warps;
  return 0;
}

template <typename T>
void launch(const AttentionParams &p, int splits, float *workspace, ErrorWord *error,
            int step, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(p.batch * p.heads * p.queries),
            static_cast<unsigned>(splits));
  const int64_t lanesPerKey = lanesPerKeyOf(p, sizeof(T));
  auto aligned = [](const void *ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  bool vectors = lanesPerKey > 0 && aligned(p.q) && aligned(p.k) &&
                 aligned(p.v) && (!p.kNew || (aligned(p.kNew) && aligned(p.vNew)));
  const int rowWarps = vectors && splits == 1 ? rowBlockWarps(p, sizeof(T)) : 0;
  // Up to 8 splits of a row combine inside a cluster on sm_90.
  const bool cluster = vectors && splits > 1 && splits <= kMostClusterSplits &&
                       deviceMajor() >= 9;
  LaunchExtras extras;
  extras.sharedBytes = foldedSharedBytes(p, sizeof(T));
  if (cluster)
    extras.cluster = dim3(1, static_cast<unsigned>(splits), 1);
  auto run = [&](auto kernel) {
    launchOverlapped(kernel, grid, dim3((rowWarps ? rowWarps : kWarps) * 32), extras, stream,
                     p, splits, workspace, error, step);
  };
  auto vector = [&](auto clustered, auto warps) {
    constexpr bool C = decltype(clustered)::value;
    constexpr int W = decltype(warps)::value;
    if (lanesPerKey == 1)
      run(vectorAttentionKernel<T, 1, C, W>);
    else if (lanesPerKey == 2)
      run(vectorAttentionKernel<T, 2, C, W>);
    else if (lanesPerKey == 4)
      run(vectorAttentionKernel<T, 4, C, W>);
    else if (lanesPerKey == 8)
      run(vectorAttentionKernel<T, 8, C, W>);
    else if (lanesPerKey == 16)
      run(vectorAttentionKernel<T, 16, C, W>);
    else
      run(vectorAttentionKernel<T, 32, C, W>);
  };
  using Split = std::integral_constant<int, kWarps>;
  if (!vectors)
    run(attentionKernel<T>);
  else if (cluster)
    vector(std::true_type{}, Split{});
  else if (rowWarps == kSmallRowWarps)
    vector(std::false_type{}, std::integral_constant<int, kSmallRowWarps>{});
  else if (rowWarps == kRowWarps)
    vector(std::false_type{}, std::integral_constant<int, kRowWarps>{});
  else
    vector(std::false_type{}, Split{});
}

} // namespace

bool packedLayout(const AttentionParams &p) {
  auto packed = [](const RowStrides &s, int64_t heads, int64_t rows, int64_t dim) {
    const RowStrides want = packedStrides(heads, rows, dim);
    return s.row == 0 || (s.batch == want.batch && s.head == want.head && s.row == want.row);
  };
  return packed(p.qStrides, p.heads, p.queries, p.headDim) &&
         packed(p.kStrides, p.kvHeads, p.keys, p.headDim) &&
         packed(p.vStrides, p.kvHeads, p.keys, p.valueDim) &&
         packed(p.outStrides, p.heads, p.queries, p.valueDim);
}

bool attentionTakesStrides(Elem e, const AttentionParams &p) {
  return e == Elem::BF16 && !p.kNew && useFlashAttention(p) &&
         bf16RowsAligned(p.q, p.qStrides) && bf16RowsAligned(p.k, p.kStrides) &&
         bf16RowsAligned(p.v, p.vStrides) && bf16RowsAligned(p.out, p.outStrides);
}

int attentionSplits(Elem e, const AttentionParams &p, int multiprocessors) {
  if (!p.kNew && useFlashAttention(p))
    return 1;
  if (rowBlockWarps(p, static_cast<size_t>(bytesOf(e))) > 0)
    return 1;
  int64_t blocks = p.batch * p.heads * p.queries;
  if (blocks >= 2 * multiprocessors || p.keys <= kKeysPerSplit)
    return 1;
  int64_t wanted = (2 * multiprocessors + blocks - 1) / blocks;
  int64_t most = (p.keys + kKeysPerSplit - 1) / kKeysPerSplit;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({wanted, most, 32})));
}

int attentionRowWarps(Elem e, const AttentionParams &p) {
  return rowBlockWarps(p, static_cast<size_t>(bytesOf(e)));
}

int64_t attentionWorkspaceFloats(const AttentionParams &p, int splits) {
  // Per split row: its partials (max, sum, output) and an arrival counter.
  int64_t rows = p.batch * p.heads * p.queries;
  return splits > 1 ? rows * splits * (p.valueDim + 2) + rows : 0;
}

void attention(Elem e, const AttentionParams &p, int splits, float *workspace,
               ErrorWord *error, int step, cudaStream_t stream) {
  if (p.batch * p.heads * p.queries == 0)
    return;
  if (e == Elem::BF16 && !p.kNew && useFlashAttention(p)) {
    flashAttention(p, error, step, stream); // writes p.lse itself
    return;
  }
  if (e == Elem::BF16)
    launch<__nv_bfloat16>(p, splits, workspace, error, step, stream);
  else
    launch<float>(p, splits, workspace, error, step, stream);
  if (p.lse)
    attentionRowLse(e, p, stream);
}

} // namespace gai::cuda
