// The decode attention with its cache writes and RoPE folded in
// (AttentionParams::kNew, gai.cached_attention) against the steps it
// replaces, done on the host: RoPE of q and the new keys, the cache writes,
// then the CPU attention kernel. Also checks what lands in the caches.
#include "GpuTest.h"
#include "hal/cpu/Kernels.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace gai;

namespace {

struct CachedCase {
  int64_t batch, heads, kvHeads, queries, keys, dim;
  int rope;              // 0 none, 1 half, 2 interleaved
  bool positionsPerRow;  // rope positions [batch, T] rather than [1, T]
  bool bf16;
  bool cacheReady = false; // slots before the start may load early (fixed splits)
  int64_t window = 0;
  float softcap = 0.0f;
  // The warps of the one block a row takes (all keys loaded before the
  // wait; 0: split or the general kernel), -1 when not checked.
  int rowWarps = -1;
};

/// RoPE as the compiler's rope and HF compute it (f32 angles), rounded to
/// `dtype`, over `rows` rows of `dim` at one position each.
void rotate(std::vector<float> &x, int64_t rows, int64_t dim, int style,
            const std::vector<float> &positionOfRow, DType dtype) {
  for (int64_t r = 0; r < rows; ++r) {
    float *row = x.data() + r * dim;
    for (int64_t i = 0; i < dim / 2; ++i) {
      float inv = 1.0f / static_cast<float>(
                             std::pow(10000.0, static_cast<float>(2 * i) / dim));
      float angle = positionOfRow[r] * inv;
      float c = std::cos(angle), s = std::sin(angle);
      int64_t i1 = style == 1 ? i : 2 * i, i2 = style == 1 ? i + dim / 2 : 2 * i + 1;
      float x1 = row[i1], x2 = row[i2];
      row[i1] = x1 * c - x2 * s;
      row[i2] = x2 * c + x1 * s;
    }
  }
  if (dtype == DType::BF16)
    for (float &v : x)
      v = bf16ToFloat(floatToBf16(v));
}


class CudaCachedAttention : public ::testing::TestWithParam<CachedCase> {};

TEST_P(CudaCachedAttention, MatchesRopeCacheWritesAndAttention) {
  SKIP_WITHOUT_GPU();
  const CachedCase c = GetParam();
  const int64_t T = c.queries, D = c.dim;
  DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  std::mt19937 rng(static_cast<unsigned>(c.keys * 17 + D + T));
  auto make = [&](int64_t n) { return bf16Normals(rng, n); };
  int64_t qn = c.batch * c.heads * T * D, newN = c.batch * c.kvHeads * T * D,
          cacheN = c.batch * c.kvHeads * c.keys * D;
  std::vector<float> q = make(qn), kNew = make(newN), vNew = make(newN),
                     kCache = make(cacheN), vCache = make(cacheN);
  std::vector<int32_t> starts, positions;
  for (int64_t b = 0; b < c.batch; ++b)
    starts.push_back(static_cast<int32_t>((c.keys - T) * (b + 1) / c.batch));
  for (int64_t b = 0; b < (c.positionsPerRow ? c.batch : 1); ++b)
    for (int64_t t = 0; t < T; ++t)
      positions.push_back(starts[b] + static_cast<int32_t>(t) + 3 * static_cast<int32_t>(b));

  // The host's steps: rope, cache writes, attention.
  std::vector<float> qRot = q, kRot = kNew;
  if (c.rope) {
    auto positionOf = [&](int64_t b, int64_t t) {
      return static_cast<float>(positions[(c.positionsPerRow ? b : 0) * T + t]);
    };
    std::vector<float> qPos, kPos;
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t t = 0; t < T; ++t)
          qPos.push_back(positionOf(b, t));
    for (int64_t b = 0; b < c.batch; ++b)
      for (int64_t h = 0; h < c.kvHeads; ++h)
        for (int64_t t = 0; t < T; ++t)
          kPos.push_back(positionOf(b, t));
    rotate(qRot, c.batch * c.heads * T, D, c.rope, qPos, dtype);
    rotate(kRot, c.batch * c.kvHeads * T, D, c.rope, kPos, dtype);
  }
  std::vector<float> kWant = kCache, vWant = vCache;
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t h = 0; h < c.kvHeads; ++h)
      for (int64_t i = 0; i < T * D; ++i) {
        int64_t slot = ((b * c.kvHeads + h) * c.keys + starts[b]) * D + i;
        kWant[slot] = kRot[(b * c.kvHeads + h) * T * D + i];
        vWant[slot] = vNew[(b * c.kvHeads + h) * T * D + i];
      }
  std::vector<float> want(static_cast<size_t>(qn));
  cpu::AttentionArgs ref{};
  ref.q = qRot.data();
  ref.k = kWant.data();
  ref.v = vWant.data();
  ref.out = want.data();
  describeAttention(ref, c, /*causal=*/true, starts.data());
  cpu::attention(ref);

  // The folded kernel.
  void *dq = uploadAs(q, dtype), *dk = uploadAs(kCache, dtype),
       *dv = uploadAs(vCache, dtype), *dkNew = uploadAs(kNew, dtype),
       *dvNew = uploadAs(vNew, dtype), *dout = nullptr;
  cudaMalloc(&dout, qn * 4);
  int32_t *dstarts = nullptr, *dpositions = nullptr;
  cudaMalloc(&dstarts, starts.size() * 4);
  cudaMemcpy(dstarts, starts.data(), starts.size() * 4, cudaMemcpyHostToDevice);
  cudaMalloc(&dpositions, positions.size() * 4);
  cudaMemcpy(dpositions, positions.data(), positions.size() * 4, cudaMemcpyHostToDevice);
  cuda::ErrorWord *error = nullptr;
  cudaMalloc(&error, sizeof(cuda::ErrorWord));
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));
  cuda::AttentionParams p{};
  p.q = dq;
  p.k = dk;
  p.v = dv;
  p.out = dout;
  describeAttention(p, c, /*causal=*/true, dstarts);
  p.kNew = dkNew;
  p.vNew = dvNew;
  p.ropeStyle = c.rope;
  p.ropePositions = c.rope ? dpositions : nullptr;
  p.ropeRows = c.positionsPerRow ? c.batch : 1;
  p.ropeTheta = 10000.0f;
  p.cacheReady = c.cacheReady;
  cudaDeviceProp props{};
  cudaGetDeviceProperties(&props, 0);
  int splits = cuda::attentionSplits(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, p,
                                     props.multiProcessorCount);
  if (c.rowWarps >= 0) {
    EXPECT_EQ(cuda::attentionRowWarps(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, p),
              c.rowWarps);
    if (c.rowWarps > 0)
      EXPECT_EQ(splits, 1);
  }
  float *workspace = nullptr;
  if (int64_t floats = cuda::attentionWorkspaceFloats(p, splits)) {
    cudaMalloc(&workspace, floats * 4);
    cudaMemset(workspace, 0, floats * 4);
  }
  // Twice: the second launch must find what the first left (same writes).
  for (int launch = 0; launch < 2; ++launch) {
    cudaMemset(dout, 0xff, qn * 4); // NaN: every element must be written
    cuda::attention(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, p, splits, workspace,
                    error, 0, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cuda::ErrorWord word{};
    cudaMemcpy(&word, error, sizeof word, cudaMemcpyDeviceToHost);
    EXPECT_EQ(word.flag, 0);
    std::vector<float> got = downloadAs(dout, dtype, static_cast<size_t>(qn));
    double num = 0, den = 0;
    for (int64_t i = 0; i < qn; ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << "element " << i << " not written";
      num += (got[i] - want[i]) * double(got[i] - want[i]);
      den += double(want[i]) * want[i];
    }
    EXPECT_LE(std::sqrt(num / den), c.bf16 ? 1e-2 : 1e-5)
        << "splits " << splits << " launch " << launch;
  }
  // The caches: the new rows where the writes put them, every other slot
  // untouched. Rotated keys agree to within f32 angles (an ulp of the
  // inverse frequency moves pos·inv by pos ulps) or the last bf16 bit.
  std::vector<float> kGot = downloadAs(dk, dtype, static_cast<size_t>(cacheN)),
                     vGot = downloadAs(dv, dtype, static_cast<size_t>(cacheN));
  double keyBound = c.bf16 ? 1.0 / 128 : 1e-5;
  for (int64_t i = 0; i < cacheN; ++i) {
    ASSERT_NEAR(kGot[i], kWant[i], keyBound * std::max(1.0f, std::fabs(kWant[i])))
        << "key cache element " << i << " (slot " << i / D % c.keys << ")";
    ASSERT_EQ(vGot[i], vWant[i]) << "value cache element " << i;
  }
  for (void *ptr : {dq, dk, dv, dkNew, dvNew, dout, static_cast<void *>(dstarts),
                    static_cast<void *>(dpositions), static_cast<void *>(error),
                    static_cast<void *>(workspace)})
    cudaFree(ptr);
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaCachedAttention,
    ::testing::Values(
        // llama-1b's decode step: one 8-warp block a row loads all its keys
        // early (ready caches); the second has a window and a row that sees
        // half. 512 keys take the 16-warp block.
        CachedCase{1, 32, 4, 1, 384, 64, 1, false, true, true, 0, 0.0f, 8},
        CachedCase{2, 32, 4, 1, 384, 64, 1, false, true, true, 100, 0.0f, 8},
        CachedCase{1, 32, 4, 1, 512, 64, 1, false, true, true, 0, 0.0f, 16},
        // The same in f32 (two vectors a key): 150 keys in 8 warps, 200 in 16.
        CachedCase{1, 8, 2, 1, 150, 64, 1, false, false, true, 0, 0.0f, 8},
        CachedCase{1, 8, 2, 1, 200, 64, 1, false, false, true, 0, 0.0f, 16},
        // Ready caches too long for one block: splits owning fixed slots,
        // combined in a cluster of blocks (sm_90).
        CachedCase{1, 64, 8, 1, 1000, 64, 1, false, true, true, 0, 0.0f, 0},
        // Several new rows, interleaved pairs, head dim 128, per-row
        // positions; split in a cluster, then one block a row.
        CachedCase{2, 8, 2, 3, 100, 128, 2, true, true, false, 0, 0.0f, 0},
        CachedCase{2, 8, 2, 3, 100, 128, 2, true, true, true, 0, 0.0f, 8},
        // No RoPE (learned positions), f32, multi-head.
        CachedCase{2, 4, 4, 1, 50, 64, 0, false, false},
        // f32 with a head dim the vector kernel does not take; a window.
        CachedCase{2, 6, 3, 2, 70, 80, 1, true, false, false, 16},
        // bf16 with a softcap and few keys (one split).
        CachedCase{1, 4, 1, 1, 9, 64, 1, false, true, false, 0, 30.0f},
        // A long cache: more splits than a cluster holds (global combine).
        CachedCase{1, 8, 8, 1, 4000, 64, 1, false, true, true}),
    [](const ::testing::TestParamInfo<CachedCase> &info) {
      const CachedCase &c = info.param;
      return "b" + std::to_string(c.batch) + "h" + std::to_string(c.heads) + "kv" +
             std::to_string(c.kvHeads) + "t" + std::to_string(c.queries) + "k" +
             std::to_string(c.keys) + "d" + std::to_string(c.dim) + "rope" +
             std::to_string(c.rope) + (c.bf16 ? "bf16" : "f32") +
             (c.cacheReady ? "ready" : "") + (c.window ? "w" + std::to_string(c.window) : "") +
             (c.rowWarps > 0 ? "row" + std::to_string(c.rowWarps) : "");
    });

} // namespace
