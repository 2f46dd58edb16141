// Attention's backward on the GPU against the CPU kernel (itself checked
// against central differences and PyTorch's gradients): the tensor-core path
// (bf16, head dim 64 and 128) and the row path (f32, other head dims), at
// shapes that hit their edges: query counts that are not a multiple of the
// 64-row tile, fewer queries than keys, grouped and multi-query heads,
// windows and softcaps. The forward's row log-sum-exps are checked on the way.
#include "GpuTest.h"
#include "gai/FloatConvert.h"
#include "hal/cpu/Kernels.h"
#include "hal/cuda/AttentionGrad.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace gai;

namespace {

struct GradCase {
  int64_t batch, heads, kvHeads, queries, keys, dim;
  bool causal;
  int64_t window;
  float softcap;
  bool bf16;
};

std::string nameOf(const ::testing::TestParamInfo<GradCase> &info) {
  const GradCase &c = info.param;
  std::string name = "b" + std::to_string(c.batch) + "h" + std::to_string(c.heads) + "kv" +
                     std::to_string(c.kvHeads) + "t" + std::to_string(c.queries) + "k" +
                     std::to_string(c.keys) + "d" + std::to_string(c.dim);
  if (c.causal)
    name += "causal";
  if (c.window)
    name += "w" + std::to_string(c.window);
  if (c.softcap > 0)
    name += "cap";
  return name + (c.bf16 ? "bf16" : "f32");
}

/// The relative RMS difference of `got` from `want`.
double relativeError(const std::vector<float> &got, const std::vector<float> &want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * double(got[i] - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

class CudaAttentionGrad : public ::testing::TestWithParam<GradCase> {};

TEST_P(CudaAttentionGrad, MatchesTheCpuKernel) {
  SKIP_WITHOUT_GPU();
  const GradCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.queries * 31 + c.keys * 7 + c.dim));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto make = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float &x : v)
      x = bf16ToFloat(floatToBf16(normal(rng)));
    return v;
  };
  const int64_t qn = c.batch * c.heads * c.queries * c.dim,
                kn = c.batch * c.kvHeads * c.keys * c.dim,
                rows = c.batch * c.heads * c.queries;
  std::vector<float> q = make(qn), k = make(kn), v = make(kn), dout = make(qn);

  // The reference: the CPU forward (out, lse) and backward in f32.
  std::vector<float> out(qn), lse(rows), dq(qn), dk(kn), dv(kn);
  cpu::AttentionGradArgs ref;
  cpu::AttentionArgs &f = ref.forward;
  f.q = q.data();
  f.k = k.data();
  f.v = v.data();
  f.out = out.data();
  f.lse = lse.data();
  f.batch = c.batch;
  f.heads = c.heads;
  f.kvHeads = c.kvHeads;
  f.queries = c.queries;
  f.keys = c.keys;
  f.headDim = f.valueDim = c.dim;
  f.scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  f.softcap = c.softcap;
  f.causal = c.causal;
  f.window = c.window;
  cpu::attention(f);
  ref.outGrad = dout.data();
  ref.qGrad = dq.data();
  ref.kGrad = dk.data();
  ref.vGrad = dv.data();
  cpu::attentionGrad(ref);

  const DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  const cuda::Elem elem = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;
  const size_t bytes = c.bf16 ? 2 : 4;
  void *gq = uploadAs(q, dtype), *gk = uploadAs(k, dtype), *gv = uploadAs(v, dtype),
       *gdout = uploadAs(dout, dtype), *gout = nullptr, *gdq = nullptr, *gdk = nullptr,
       *gdv = nullptr;
  float *glse = nullptr, *workspace = nullptr;
  cudaMalloc(&gout, qn * bytes);
  cudaMalloc(&gdq, qn * bytes);
  cudaMalloc(&gdk, kn * bytes);
  cudaMalloc(&gdv, kn * bytes);
  cudaMalloc(&glse, rows * 4);
  cuda::ErrorWord *error = nullptr;
  cudaMalloc(&error, sizeof(cuda::ErrorWord));
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));

  cuda::AttentionParams p{};
  p.q = gq;
  p.k = gk;
  p.v = gv;
  p.out = gout;
  p.lse = glse;
  p.batch = c.batch;
  p.heads = c.heads;
  p.kvHeads = c.kvHeads;
  p.queries = c.queries;
  p.keys = c.keys;
  p.headDim = p.valueDim = c.dim;
  p.scale = f.scale;
  p.softcap = c.softcap;
  p.causal = c.causal;
  p.window = c.window;
  cuda::attention(elem, p, 1, nullptr, error, 0, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> gotLse(rows);
  cudaMemcpy(gotLse.data(), glse, rows * 4, cudaMemcpyDeviceToHost);
  double worstLse = 0;
  for (int64_t i = 0; i < rows; ++i)
    worstLse = std::max(worstLse, std::fabs(double(gotLse[i]) - lse[i]));
  EXPECT_LE(worstLse, c.bf16 ? 2e-2 : 1e-4) << "row log-sum-exps";

  cuda::AttentionGradParams g{};
  g.q = gq;
  g.k = gk;
  g.v = gv;
  g.out = gout;
  g.outGrad = gdout;
  g.lse = glse;
  g.qGrad = gdq;
  g.kGrad = gdk;
  g.vGrad = gdv;
  g.batch = c.batch;
  g.heads = c.heads;
  g.kvHeads = c.kvHeads;
  g.queries = c.queries;
  g.keys = c.keys;
  g.headDim = g.valueDim = c.dim;
  g.window = c.window;
  g.scale = f.scale;
  g.softcap = c.softcap;
  g.causal = c.causal;
  EXPECT_EQ(cuda::useFlashAttentionGrad(elem, g), c.bf16 && (c.dim == 64 || c.dim == 128));
  // On Hopper, in a wgmma build, the default form's products run on wgmma
  // at head dim 64.
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0);
#if GAI_CUDA_WGMMA
  const bool wgmmaBuild = true;
#else
  const bool wgmmaBuild = false;
#endif
  EXPECT_EQ(cuda::attentionGradOnWgmma(elem, g),
            c.bf16 && c.dim == 64 && wgmmaBuild && major == 9 && minor == 0);
  // Every form of the tensor-core path: the atomic sums (on wgmma where it
  // runs, and on mma.sync) and the fixed order.
  // Each with its key blocks in groups of two waves (the default), head
  // after head (spread 0), and longest first over every head (one group).
  struct Form {
    bool deterministic, mmaSyncOnly;
    float spread;
  };
  std::vector<Form> forms = {{false, false, 2.0f}, {true, false, 2.0f},
                             {false, false, 0.0f}, {false, false, 1e9f},
                             {true, false, 0.0f},  {true, false, 1e9f}};
  if (cuda::attentionGradOnWgmma(elem, g))
    forms.push_back({false, true, 2.0f});
  for (Form form : forms) {
    const bool deterministic = form.deterministic;
    g.deterministic = deterministic;
    g.mmaSyncOnly = form.mmaSyncOnly;
    g.blockSpread = form.spread;
    cudaMalloc(&workspace, cuda::attentionGradWorkspaceFloats(elem, g) * 4);
    // Twice, into NaN-filled gradients: every element is written, and the
    // dQ sums start from zero each time; the fixed-order form repeats its
    // first launch bit for bit.
    std::vector<std::vector<float>> first;
    for (int launch = 0; launch < 2; ++launch) {
      for (auto [ptr, n] : {std::pair{gdq, qn}, {gdk, kn}, {gdv, kn}})
        cudaMemset(ptr, 0xff, n * bytes);
      cuda::attentionGrad(elem, g, workspace, nullptr);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const double bound = c.bf16 ? 2e-2 : 1e-4;
      size_t which = 0;
      for (auto [ptr, want, name] : {std::tuple{gdq, &dq, "dq"}, {gdk, &dk, "dk"},
                                     {gdv, &dv, "dv"}}) {
        std::vector<float> got = downloadAs(ptr, dtype, want->size());
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_TRUE(std::isfinite(got[i])) << name << " element " << i << " not written";
        EXPECT_LE(relativeError(got, *want), bound)
            << name << ", launch " << launch
            << (deterministic ? ", fixed order" : form.mmaSyncOnly ? ", atomic, mma.sync" : ", atomic")
            << ", spread " << form.spread;
        if (deterministic && launch == 0)
          first.push_back(got);
        else if (deterministic)
          EXPECT_TRUE(got == first[which])
              << name << ": the fixed-order form did not repeat itself";
        ++which;
      }
    }
    cudaFree(workspace);
    workspace = nullptr;
  }
  for (void *ptr : {gq, gk, gv, gdout, gout, gdq, gdk, gdv, static_cast<void *>(glse),
                    static_cast<void *>(workspace), static_cast<void *>(error)})
    cudaFree(ptr);
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaAttentionGrad,
    ::testing::Values(
        // The tensor-core path: a ragged last tile, GQA, batch.
        GradCase{2, 4, 2, 200, 200, 64, true, 0, 0.0f, true},
        // Multi-query, a window that starts inside tiles, a softcap.
        GradCase{1, 4, 1, 130, 130, 128, true, 50, 30.0f, true},
        // Fewer queries than keys (a causal offset), head dim 128.
        GradCase{1, 2, 2, 64, 192, 128, true, 0, 0.0f, true},
        // Not causal, keys past the last tile, queries below one tile.
        GradCase{1, 2, 2, 40, 100, 64, false, 0, 0.0f, true},
        // A window wider than a tile: whole tiles inside it take the
        // unmasked path; GQA with a causal offset and ragged queries.
        GradCase{1, 2, 1, 512, 512, 64, true, 192, 0.0f, true},
        GradCase{1, 4, 2, 100, 300, 128, true, 0, 0.0f, true},
        // Head dim 64 (wgmma on Hopper): a softcap under multi-query heads,
        // and a causal offset with ragged queries under GQA.
        GradCase{1, 4, 1, 150, 150, 64, true, 0, 30.0f, true},
        GradCase{1, 4, 2, 100, 300, 64, true, 0, 0.0f, true},
        // A longer sequence: many query tiles per key block.
        GradCase{1, 2, 1, 1024, 1024, 64, true, 0, 0.0f, true},
        // The row path: f32, and bf16 at a head dim the tensor cores do not take.
        GradCase{1, 4, 2, 70, 70, 64, true, 20, 0.0f, false},
        GradCase{1, 2, 1, 33, 33, 80, true, 0, 5.0f, true}),
    nameOf);

} // namespace
