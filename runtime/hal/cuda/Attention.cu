// Attention over the KV cache without materialised scores.
//
// The general kernel gives each query a block of 4 warps; each warp takes
// every 4th key, so one key's row is one coalesced warp load, and keeps a
// running max, sum and output (online softmax) in registers. Long contexts
// are split along the keys into independent blocks whose partial results
// a second kernel merges: at batch 1 a decode step has too few queries to
// fill the GPU otherwise. Prefill-sized bf16 work goes to the tensor-core
// flash kernel (FlashAttention.cu).
#include "hal/cuda/FlashAttention.h"
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <algorithm>

namespace gai::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxPerLane = 8; // head dims up to 256
constexpr int kKeysPerSplit = 64; // latency-bound warps: more blocks instead

__device__ __forceinline__ float warpSum(float x) {
  for (int offset = 16; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

struct Range {
  int first, last; // inclusive
  bool ok;
};

/// The keys query `t` of row `b` sees (as in the CPU kernel).
__device__ Range keyRange(const AttentionParams &p, int b, int t, ErrorWord *error,
                          int step, bool reportIt) {
  int start = static_cast<int>(p.keys - p.queries);
  if (p.queryStart) {
    start = p.queryStart[b];
    if (start < 0 || start + p.queries > p.keys) {
      if (reportIt)
        if (atomicCAS(&error->flag, 0, kBadQueryStart) == 0) {
          error->step = step;
          error->a = b;
          error->b = start;
        }
      return {0, -1, false};
    }
  }
  int pos = start + t, first = 0, last = static_cast<int>(p.keys) - 1;
  if (p.causal) {
    last = min(last, pos);
    if (p.window > 0)
      first = max(0, pos - static_cast<int>(p.window) + 1);
  }
  return {first, last, true};
}

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    attentionKernel(AttentionParams p, int splits, float *partial, ErrorWord *error,
                    int step) {
  int row = blockIdx.x; // (b, h, t), t fastest
  int t = row % p.queries, bh = row / p.queries;
  int h = bh % p.heads, b = bh / p.heads;
  int kvh = h / (p.heads / p.kvHeads);
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  Range range = keyRange(p, b, t, error, step,
                         threadIdx.x == 0 && blockIdx.y == 0 && t == 0 && h == 0);
  if (!range.ok)
    return;
  int span = range.last - range.first + 1;
  int per = (span + splits - 1) / splits;
  int s0 = range.first + blockIdx.y * per, s1 = min(range.last + 1, s0 + per);

  const int D = static_cast<int>(p.headDim), Dv = static_cast<int>(p.valueDim);
  const T *q = static_cast<const T *>(p.q) + static_cast<int64_t>(row) * D;
  const T *k = static_cast<const T *>(p.k) + (static_cast<int64_t>(b) * p.kvHeads + kvh) * p.keys * D;
  const T *v = static_cast<const T *>(p.v) + (static_cast<int64_t>(b) * p.kvHeads + kvh) * p.keys * Dv;
  float qr[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
  for (int i = 0; i < kMaxPerLane; ++i) {
    int d = lane + 32 * i;
    qr[i] = d < D ? toFloat(q[d]) : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j = s0 + warp; j < s1; j += kWarps) {
    const T *kj = k + static_cast<int64_t>(j) * D;
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
    const T *vj = v + static_cast<int64_t>(j) * Dv;
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
  float M = -INFINITY;
  for (int w = 0; w < kWarps; ++w)
    M = fmaxf(M, sm[w]);
  float scale[kWarps], L = 0.0f;
  for (int w = 0; w < kWarps; ++w) {
    scale[w] = M == -INFINITY ? 0.0f : expf(sm[w] - M);
    L += sl[w] * scale[w];
  }
  for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
    float a = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      a += sacc[w][d] * scale[w];
    if (splits == 1) {
      T *out = static_cast<T *>(p.out) + static_cast<int64_t>(row) * Dv;
      out[d] = fromFloat<T>(L > 0.0f ? a / L : 0.0f);
    } else {
      float *mine = partial + (static_cast<int64_t>(row) * splits + blockIdx.y) * (Dv + 2);
      mine[2 + d] = a;
      if (d == 0) {
        mine[0] = M;
        mine[1] = L;
      }
    }
  }
}

template <typename T>
__global__ void combineKernel(AttentionParams p, int splits, const float *partial) {
  int row = blockIdx.x;
  int Dv = static_cast<int>(p.valueDim);
  const float *mine = partial + static_cast<int64_t>(row) * splits * (Dv + 2);
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s)
    M = fmaxf(M, mine[s * (Dv + 2)]);
  float L = 0.0f;
  for (int s = 0; s < splits; ++s)
    if (M != -INFINITY)
      L += mine[s * (Dv + 2) + 1] * expf(mine[s * (Dv + 2)] - M);
  T *out = static_cast<T *>(p.out) + static_cast<int64_t>(row) * Dv;
  for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
    float a = 0.0f;
    for (int s = 0; s < splits; ++s)
      if (M != -INFINITY)
        a += mine[s * (Dv + 2) + 2 + d] * expf(mine[s * (Dv + 2)] - M);
    out[d] = fromFloat<T>(L > 0.0f ? a / L : 0.0f);
  }
}

template <typename T>
void launch(const AttentionParams &p, int splits, float *workspace, ErrorWord *error,
            int step, cudaStream_t stream) {
  dim3 grid(static_cast<unsigned>(p.batch * p.heads * p.queries),
            static_cast<unsigned>(splits));
  attentionKernel<T><<<grid, kWarps * 32, 0, stream>>>(p, splits, workspace, error,
                                                       step);
  if (splits > 1)
    combineKernel<T><<<grid.x, 128, 0, stream>>>(p, splits, workspace);
}

} // namespace

int attentionSplits(const AttentionParams &p, int multiprocessors) {
  if (useFlashAttention(p))
    return 1;
  int64_t blocks = p.batch * p.heads * p.queries;
  if (blocks >= 2 * multiprocessors || p.keys <= kKeysPerSplit)
    return 1;
  int64_t wanted = (2 * multiprocessors + blocks - 1) / blocks;
  int64_t most = (p.keys + kKeysPerSplit - 1) / kKeysPerSplit;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({wanted, most, 32})));
}

int64_t attentionWorkspaceFloats(const AttentionParams &p, int splits) {
  return splits > 1 ? p.batch * p.heads * p.queries * splits * (p.valueDim + 2) : 0;
}

void attention(Elem e, const AttentionParams &p, int splits, float *workspace,
               ErrorWord *error, int step, cudaStream_t stream) {
  if (p.batch * p.heads * p.queries == 0)
    return;
  if (e == Elem::BF16 && useFlashAttention(p)) {
    flashAttention(p, error, step, stream);
    return;
  }
  if (e == Elem::BF16)
    launch<__nv_bfloat16>(p, splits, workspace, error, step, stream);
  else
    launch<float>(p, splits, workspace, error, step, stream);
}

} // namespace gai::cuda
