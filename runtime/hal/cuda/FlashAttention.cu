// Flash attention (FlashAttention-2's loop order) on bf16 tensor cores.
//
// A block of 4 warps owns 64 queries of one head; each warp owns 16 of
// them. The block walks the 64-key tiles its queries can see: Q·Kᵀ on the
// tensor cores (WMMA 16×16×16, f32 accumulators) into the warp's score
// tile in shared memory, the online softmax there (a warp per row, lane
// by column), then P·V accumulated into the warp's f32 output tile, which the
// softmax rescales first. Scores never reach global memory. Handwritten
// because no library covers attention over our cache layout with causal
// offsets per row, windows and GQA together.
#include "hal/cuda/FlashAttention.h"
#include "hal/cuda/Math.cuh"

#include <mma.h>

namespace gai::cuda {
namespace {

using namespace nvcuda;

constexpr int kRows = 64;  // queries per block
constexpr int kKeys = 64;  // keys per tile
constexpr int kWarps = 4;
constexpr int kWarpRows = kRows / kWarps;

template <int D> struct Smem {
  __nv_bfloat16 q[kRows][D];
  __nv_bfloat16 k[kKeys][D];
  __nv_bfloat16 v[kKeys][D];
  float s[kWarps][kWarpRows][kKeys];
  __nv_bfloat16 p[kWarps][kWarpRows][kKeys];
  float o[kWarps][kWarpRows][D];
};

__device__ __forceinline__ float warpMax(float x) {
  for (int offset = 16; offset > 0; offset /= 2)
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}
__device__ __forceinline__ float warpSum(float x) {
  for (int offset = 16; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

/// Rows [row0, row0 + 64) of a [rows, D] bf16 matrix into shared memory,
/// 16 bytes per thread per load; rows past `rows` are zero.
template <int D>
__device__ void loadTile(__nv_bfloat16 (*dst)[D], const __nv_bfloat16 *src,
                         int row0, int rows) {
  constexpr int kChunks = D / 8;
  for (int c = threadIdx.x; c < kRows * kChunks; c += blockDim.x) {
    int r = c / kChunks, col = (c % kChunks) * 8;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (row0 + r < rows)
      value = *reinterpret_cast<const uint4 *>(src + static_cast<int64_t>(row0 + r) * D + col);
    *reinterpret_cast<uint4 *>(&dst[r][col]) = value;
  }
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32)
    flashKernel(AttentionParams p, ErrorWord *error, int step) {
  extern __shared__ __align__(128) unsigned char raw[];
  Smem<D> &sm = *reinterpret_cast<Smem<D> *>(raw);
  const int tile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int queries = static_cast<int>(p.queries), keys = static_cast<int>(p.keys);
  int start = keys - queries;
  if (p.queryStart) {
    start = p.queryStart[b];
    if (start < 0 || start + queries > keys) {
      if (threadIdx.x == 0 && tile == 0 && h == 0 &&
          atomicCAS(&error->flag, 0, kBadQueryStart) == 0) {
        error->step = step;
        error->a = b;
        error->b = start;
      }
      return;
    }
  }
  const int kvh = h / static_cast<int>(p.heads / p.kvHeads);
  const int q0 = tile * kRows;
  const auto *q = static_cast<const __nv_bfloat16 *>(p.q) +
                  (static_cast<int64_t>(b) * p.heads + h) * queries * D;
  const auto *k = static_cast<const __nv_bfloat16 *>(p.k) +
                  (static_cast<int64_t>(b) * p.kvHeads + kvh) * keys * D;
  const auto *v = static_cast<const __nv_bfloat16 *>(p.v) +
                  (static_cast<int64_t>(b) * p.kvHeads + kvh) * keys * D;

  loadTile<D>(sm.q, q, q0, queries);
  for (int i = lane; i < kWarpRows * D; i += 32)
    sm.o[warp][i / D][i % D] = 0.0f;
  // Each row's running max and sum, the same in every lane.
  float mRow[kWarpRows], lRow[kWarpRows];
#pragma unroll
  for (int r = 0; r < kWarpRows; ++r) {
    mRow[r] = -INFINITY;
    lRow[r] = 0.0f;
  }
  // The keys any query of this block sees.
  int firstKey = 0, lastKey = keys - 1;
  if (p.causal) {
    lastKey = min(lastKey, start + min(q0 + kRows, queries) - 1);
    if (p.window > 0)
      firstKey = max(0, start + q0 - static_cast<int>(p.window) + 1);
  }
  for (int key0 = (firstKey / kKeys) * kKeys; key0 <= lastKey; key0 += kKeys) {
    __syncthreads(); // the previous tile's K and V are no longer read
    loadTile<D>(sm.k, k, key0, keys);
    loadTile<D>(sm.v, v, key0, keys);
    __syncthreads();

    // S = Q Kᵀ for this warp's 16 rows.
    for (int n = 0; n < kKeys / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> bt;
        wmma::load_matrix_sync(a, &sm.q[warp * kWarpRows][kk * 16], D);
        wmma::load_matrix_sync(bt, &sm.k[n * 16][kk * 16], D);
        wmma::mma_sync(acc, a, bt, acc);
      }
      wmma::store_matrix_sync(&sm.s[warp][0][n * 16], acc, kKeys, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax over this tile, masked as the CPU kernel masks: lane
    // c owns columns c and c + 32 of every row (no bank conflicts).
#pragma unroll
    for (int r = 0; r < kWarpRows; ++r) {
      const int query = q0 + warp * kWarpRows + r, position = start + query;
      float s[2];
#pragma unroll
      for (int h2 = 0; h2 < 2; ++h2) {
        int c = lane + 32 * h2, key = key0 + c;
        bool visible = key < keys && query < queries;
        if (p.causal)
          visible = visible && key <= position &&
                    (p.window <= 0 || position - key < p.window);
        float x = sm.s[warp][r][c] * p.scale;
        if (p.softcap > 0.0f)
          x = p.softcap * tanhf(x / p.softcap);
        s[h2] = visible ? x : -INFINITY;
      }
      float mNew = fmaxf(mRow[r], warpMax(fmaxf(s[0], s[1])));
      float correction = mNew == -INFINITY ? 1.0f : expf(mRow[r] - mNew);
      float e0 = mNew == -INFINITY ? 0.0f : expf(s[0] - mNew);
      float e1 = mNew == -INFINITY ? 0.0f : expf(s[1] - mNew);
      sm.p[warp][r][lane] = __float2bfloat16_rn(e0);
      sm.p[warp][r][lane + 32] = __float2bfloat16_rn(e1);
      lRow[r] = lRow[r] * correction + warpSum(e0 + e1);
      mRow[r] = mNew;
      for (int c = lane; c < D; c += 32)
        sm.o[warp][r][c] *= correction;
    }
    __syncwarp();

    // O += P V.
    for (int n = 0; n < D / 16; ++n) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::load_matrix_sync(acc, &sm.o[warp][0][n * 16], D, wmma::mem_row_major);
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> bv;
        wmma::load_matrix_sync(a, &sm.p[warp][0][kk * 16], kKeys);
        wmma::load_matrix_sync(bv, &sm.v[kk * 16][n * 16], D);
        wmma::mma_sync(acc, a, bv, acc);
      }
      wmma::store_matrix_sync(&sm.o[warp][0][n * 16], acc, D, wmma::mem_row_major);
    }
    __syncwarp();
  }

#pragma unroll
  for (int r = 0; r < kWarpRows; ++r) {
    const int query = q0 + warp * kWarpRows + r;
    if (query >= queries)
      continue;
    auto *out = static_cast<__nv_bfloat16 *>(p.out) +
                ((static_cast<int64_t>(b) * p.heads + h) * queries + query) * D;
    for (int c = lane; c < D; c += 32)
      out[c] = __float2bfloat16_rn(lRow[r] > 0.0f ? sm.o[warp][r][c] / lRow[r] : 0.0f);
  }
}

template <int D>
void launchFlash(const AttentionParams &p, ErrorWord *error, int step,
                 cudaStream_t stream) {
  size_t bytes = sizeof(Smem<D>);
  static bool configured = [&] {
    return cudaFuncSetAttribute(flashKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(bytes)) == cudaSuccess;
  }();
  (void)configured; // a failure shows as a launch error
  dim3 grid(static_cast<unsigned>((p.queries + kRows - 1) / kRows),
            static_cast<unsigned>(p.heads), static_cast<unsigned>(p.batch));
  flashKernel<D><<<grid, kWarps * 32, bytes, stream>>>(p, error, step);
}

} // namespace

bool useFlashAttention(const AttentionParams &p) {
  return (p.headDim == 64 || p.headDim == 128) && p.valueDim == p.headDim &&
         p.queries >= kRows;
}

void flashAttention(const AttentionParams &p, ErrorWord *error, int step,
                    cudaStream_t stream) {
  if (p.headDim == 64)
    launchFlash<64>(p, error, step, stream);
  else
    launchFlash<128>(p, error, step, stream);
}

} // namespace gai::cuda
