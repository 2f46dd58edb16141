// Flash attention (FlashAttention-2's loop order) on bf16 tensor cores.
//
// A block of 4 warps owns 64 queries of one head; each warp owns 16 of
// them and keeps everything about them in registers: its Q fragments, the
// scores, the probabilities and the f32 output. The block walks the 64-key
// tiles its queries can see; K and V tiles arrive by cp.async into a
// second buffer while the current one is used. Q·Kᵀ and P·V are
// mma.sync m16n8k16 (f32 accumulators); the score accumulators are re-used
// as the A operand of P·V without leaving registers. Shared-memory tiles
// are XOR-swizzled by 16-byte chunk, so ldmatrix reads hit every bank once.
// Handwritten because no library covers attention over our cache layout
// with causal offsets per row, windows and GQA together.
#include "hal/cuda/FlashAttention.h"
#include "hal/cuda/Math.cuh"
#include "hal/cuda/Mma.cuh"
#include "hal/cuda/Wgmma.cuh"

#include <cstdint>

namespace gai::cuda {
namespace {

constexpr int kRows = 64;  // queries per block
constexpr int kKeys = 64;  // keys per tile
constexpr int kWarps = 4;  // 16 queries each
constexpr float kLog2e = 1.4426950408889634f;

template <int D, bool Wgmma = false> constexpr size_t smemBytes() {
  return sizeof(__nv_bfloat16) * (kRows * D + 4 * kKeys * D) + // Q, 2×K, 2×V
         (Wgmma ? kWgmmaAlignment : 0);
}

/// Rows [row0, row0 + 64) of a [rows, D] matrix (rows `stride` apart)
/// into a swizzled tile.
template <int D>
__device__ __forceinline__ void loadTileAsync(__nv_bfloat16 *tile,
                                              const __nv_bfloat16 *src, int row0,
                                              int rows, int64_t stride) {
  loadRowsAsync<D, kRows, kWarps * 32>(tile, src, row0, rows, stride);
}

/// Wgmma: Q·Kᵀ and P·V on Hopper's warpgroup MMA (head dim 64, sm_90a; see
/// Wgmma.cuh), Q and K read from shared memory, P from registers.
template <int D, bool Softcap, bool Wgmma>
__device__ __forceinline__ void flashBlock(const AttentionParams &p, ErrorWord *error,
                                           int step) {
  static_assert(!Wgmma || D == 64, "wgmma tiles are 64 wide");
  extern __shared__ __align__(128) unsigned char shared[];
  unsigned char *raw = Wgmma ? alignedForWgmma(shared) : shared;
  auto *sq = reinterpret_cast<__nv_bfloat16 *>(raw);
  // K and V tiles, double-buffered: buffer i at sk + i·kKeys·D.
  __nv_bfloat16 *sk = sq + kRows * D, *sv = sk + 2 * kKeys * D;
  // The heaviest causal tiles (the last queries) start first.
  const int tile = gridDim.y - 1 - blockIdx.y, h = blockIdx.x, b = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, pairCol = 2 * (lane % 4);
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
  const auto *q = static_cast<const __nv_bfloat16 *>(p.q) + p.qStrides.at(b, h, 0);
  const auto *k = static_cast<const __nv_bfloat16 *>(p.k) + p.kStrides.at(b, kvh, 0);
  const auto *v = static_cast<const __nv_bfloat16 *>(p.v) + p.vStrides.at(b, kvh, 0);
  const int64_t qStride = p.qStrides.row, kStride = p.kStrides.row, vStride = p.vStrides.row;

  // The key tiles any query of this block sees.
  int firstKey = 0, lastKey = keys - 1;
  if (p.causal) {
    lastKey = min(lastKey, start + min(q0 + kRows, queries) - 1);
    if (p.window > 0)
      firstKey = max(0, start + q0 - static_cast<int>(p.window) + 1);
  }
  const int firstTile = firstKey / kKeys;
  const int tiles = lastKey < firstKey ? 0 : lastKey / kKeys - firstTile + 1;

  loadTileAsync<D>(sq, q, q0, queries, qStride);
  if (tiles > 0) {
    loadTileAsync<D>(sk, k, firstTile * kKeys, keys, kStride);
    loadTileAsync<D>(sv, v, firstTile * kKeys, keys, vStride);
  }
  commitCopies();

  // This thread's two rows: the warp's row `group` and `group + 8`.
  const int queryA = q0 + warp * 16 + group;
  const int positions[2] = {start + queryA, start + queryA + 8};
  const bool live[2] = {queryA < queries, queryA + 8 < queries};
  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
    o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.0f, 0.0f};
  // Scores stay as Q·Kᵀ (softcapped: already scaled, in the log2 domain);
  // the softmax scales them inside one FMA with the max subtracted.
  const float expScale = Softcap ? 1.0f : p.scale * kLog2e;

  for (int it = 0; it < tiles; ++it) {
    const int buffer = it & 1, key0 = (firstTile + it) * kKeys;
    if (it + 1 < tiles) {
      loadTileAsync<D>(sk + (buffer ^ 1) * kKeys * D, k, key0 + kKeys, keys, kStride);
      loadTileAsync<D>(sv + (buffer ^ 1) * kKeys * D, v, key0 + kKeys, keys, vStride);
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
    if (!Wgmma && it == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        loadMatrices(qf[kk], sq + swizzled<D>(warp * 16 + lane % 16, kk * 16 + (lane / 16) * 8));
    }

    // S = Q Kᵀ: 8 tiles of 16 queries × 8 keys.
    float s[kKeys / 8][4];
#if GAI_DEVICE_WGMMA
    if constexpr (Wgmma) {
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        wgmma64<0, 0>(s, tileDescriptor(sq + kk * 16),
                      tileDescriptor(sk + buffer * kKeys * D + kk * 16), kk > 0);
      wgmmaCommit();
      wgmmaWait<0>();
      holdOperands(s);
    } else
#endif
    {
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kKeys / 16; ++np) {
        uint32_t bk[4];
        loadMatrices(bk, sk + buffer * kKeys * D + swizzled<D>(np * 16 + lane % 8 + 8 * (lane / 16),
                                                  kk * 16 + 8 * ((lane / 8) % 2)));
        mma(s[2 * np], qf[kk], bk[0], bk[1]);
        mma(s[2 * np + 1], qf[kk], bk[2], bk[3]);
      }
    }
    }

    // Masked as the CPU kernel masks, where the tile crosses the causal
    // edge, the window or the ends (most tiles do not).
    const bool edge = key0 + kKeys > keys || q0 + kRows > queries ||
                      (p.causal && (key0 + kKeys - 1 > start + q0 ||
                                    (p.window > 0 &&
                                     start + q0 + kRows - 1 - key0 >= p.window)));
    if (Softcap) {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          s[n][e] = p.softcap * tanhf(s[n][e] * p.scale / p.softcap) * kLog2e;
    }
    if (edge) {
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = e / 2, key = key0 + n * 8 + pairCol + e % 2;
          bool visible = key < keys && live[row];
          if (p.causal)
            visible = visible && key <= positions[row] &&
                      (p.window <= 0 || positions[row] - key < p.window);
          if (!visible)
            s[n][e] = -INFINITY;
        }
      }
    }

    // Online softmax per row; the four threads of a row share its max, and
    // each keeps a partial sum, added up at the end.
#pragma unroll
    for (int row = 0; row < 2; ++row) {
      float tileMax = -INFINITY;
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
        tileMax = fmaxf(tileMax, fmaxf(s[n][2 * row], s[n][2 * row + 1]));
      tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
      tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 2));
      const float newMax = fmaxf(rowMax[row], tileMax);
      const float base = newMax == -INFINITY ? 0.0f : newMax * expScale;
      const float correction = fastExp2(rowMax[row] * expScale - base);
      rowMax[row] = newMax;
      float sum = 0.0f;
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) {
        s[n][2 * row] = fastExp2(fmaf(s[n][2 * row], expScale, -base));
        s[n][2 * row + 1] = fastExp2(fmaf(s[n][2 * row + 1], expScale, -base));
        sum += s[n][2 * row] + s[n][2 * row + 1];
      }
      rowSum[row] = rowSum[row] * correction + sum;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        o[n][2 * row] *= correction;
        o[n][2 * row + 1] *= correction;
      }
    }

    // O += P V; P's accumulators are already laid out as A fragments.
#if GAI_DEVICE_WGMMA
    if constexpr (Wgmma) {
      // V is MN-major (k, the keys, along its rows); the fragments stay
      // whole until the wait.
      uint32_t pf[kKeys / 16][4];
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j)
        packFragment(pf[j], s[2 * j], s[2 * j + 1]);
      holdOperands(pf); // made (and O rescaled) before the fence
      holdOperands(o);
      wgmmaFence();
#pragma unroll
      for (int j = 0; j < kKeys / 16; ++j)
        wgmma64<1>(o, pf[j], tileDescriptor(sv + buffer * kKeys * D + j * 16 * D));
      wgmmaCommit();
      wgmmaWait<0>();
      holdOperands(pf);
      holdOperands(o);
    } else
#endif
#pragma unroll
    for (int j = 0; j < kKeys / 16; ++j) {
      uint32_t pf[4];
      packFragment(pf, s[2 * j], s[2 * j + 1]);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t bv[4];
        loadMatricesTransposed(bv, sv + buffer * kKeys * D + swizzled<D>(j * 16 + lane % 8 + 8 * ((lane / 8) % 2),
                                                            dp * 16 + 8 * (lane / 16)));
        mma(o[2 * dp], pf, bv[0], bv[1]);
        mma(o[2 * dp + 1], pf, bv[2], bv[3]);
      }
    }
    __syncthreads(); // this buffer is refilled two tiles on
  }

#pragma unroll
  for (int row = 0; row < 2; ++row) {
    float sum = rowSum[row];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (!live[row])
      continue;
    if (p.lse && lane % 4 == 0) // natural log: (max·expScale + log2 sum) · ln 2
      p.lse[(static_cast<int64_t>(b) * p.heads + h) * queries + queryA + 8 * row] =
          sum > 0.0f ? (rowMax[row] * expScale + __log2f(sum)) * 0.6931471805599453f
                     : -INFINITY;
    const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f;
    auto *out = static_cast<__nv_bfloat16 *>(p.out) + p.outStrides.at(b, h, queryA + 8 * row);
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<__nv_bfloat162 *>(out + n * 8 + pairCol) = __floats2bfloat162_rn(
          o[n][2 * row] * inverse, o[n][2 * row + 1] * inverse);
  }
}

// At head dim 64, four blocks an SM (128 registers a thread, a few
// spilled) beat the three that the free allocation allows, by 6% on H100;
// at 128 that cap spills too much.
template <bool Softcap, bool Wgmma>
__global__ void __launch_bounds__(kWarps * 32, 4)
    flashKernel64(AttentionParams p, ErrorWord *error, int step) {
#if !GAI_DEVICE_WGMMA
  if constexpr (Wgmma)
    __trap(); // never launched: the host asks wgmmaRuns() first
  else
#endif
    flashBlock<64, Softcap, Wgmma>(p, error, step);
}
template <bool Softcap>
__global__ void __launch_bounds__(kWarps * 32)
    flashKernel128(AttentionParams p, ErrorWord *error, int step) {
  flashBlock<128, Softcap, false>(p, error, step);
}

template <int D, bool Softcap, bool Wgmma = false>
void launchFlash(const AttentionParams &p, ErrorWord *error, int step,
                 cudaStream_t stream) {
  constexpr size_t bytes = smemBytes<D, Wgmma>();
  constexpr auto kernel = D == 64 ? flashKernel64<Softcap, Wgmma> : flashKernel128<Softcap>;
  static bool configured = [] {
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                static_cast<int>(bytes)) == cudaSuccess;
  }();
  (void)configured; // a failure shows as a launch error
  dim3 grid(static_cast<unsigned>(p.heads),
            static_cast<unsigned>((p.queries + kRows - 1) / kRows),
            static_cast<unsigned>(p.batch));
  kernel<<<grid, kWarps * 32, bytes, stream>>>(p, error, step);
}

} // namespace

bool flashAttentionOnWgmma(const AttentionParams &p) {
  return p.headDim == 64 && !p.mmaSyncOnly && wgmmaRuns();
}

bool useFlashAttention(const AttentionParams &p) {
  return (p.headDim == 64 || p.headDim == 128) && p.valueDim == p.headDim &&
         p.queries >= kRows;
}

void flashAttention(const AttentionParams &given, ErrorWord *error, int step,
                    cudaStream_t stream) {
  AttentionParams p = given;
  p.qStrides = orPacked(p.qStrides, p.heads, p.queries, p.headDim);
  p.kStrides = orPacked(p.kStrides, p.kvHeads, p.keys, p.headDim);
  p.vStrides = orPacked(p.vStrides, p.kvHeads, p.keys, p.valueDim);
  p.outStrides = orPacked(p.outStrides, p.heads, p.queries, p.valueDim);
  const bool softcap = p.softcap > 0.0f;
  if (flashAttentionOnWgmma(p)) {
    if constexpr (kWgmmaBuild)
      softcap ? launchFlash<64, true, true>(p, error, step, stream)
              : launchFlash<64, false, true>(p, error, step, stream);
  } else if (p.headDim == 64)
    softcap ? launchFlash<64, true>(p, error, step, stream)
            : launchFlash<64, false>(p, error, step, stream);
  else
    softcap ? launchFlash<128, true>(p, error, step, stream)
            : launchFlash<128, false>(p, error, step, stream);
}

} // namespace gai::cuda
