// Attention over strided tensors on the GPU, as gai-attention-layout makes
// them: q, k and v read in place from one packed projection [B, T, (H +
// 2·Hkv)·D], the output written [B, T, H·D], and the three gradients
// written into one packed gradient. The same kernels run the same sums, so
// every element must equal the packed run's exactly; the default backward,
// which adds dQ's (and under GQA dK's and dV's) tiles by atomics in no fixed
// order, within one bf16 rounding.
#include "GpuTest.h"
#include "gai/FloatConvert.h"
#include "hal/cuda/AttentionGrad.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace gai;

namespace {

struct StridesCase {
  int64_t batch, heads, kvHeads, tokens, dim;
  int64_t window;
  float softcap;
  bool bf16;
  bool flashForward; // the tensor-core forward runs it, strided
};

std::string nameOf(const ::testing::TestParamInfo<StridesCase> &info) {
  const StridesCase &c = info.param;
  return "h" + std::to_string(c.heads) + "kv" + std::to_string(c.kvHeads) +
         "t" + std::to_string(c.tokens) + "d" + std::to_string(c.dim) +
         (c.window ? "w" + std::to_string(c.window) : "") +
         (c.softcap > 0 ? "cap" : "") + (c.bf16 ? "bf16" : "f32");
}

/// Tensor [B, heads, T, D] packed, moved to its place in a [B, T, width]
/// buffer at column `offset` (head h's D columns start at offset + h·D), or
/// read back from there.
void place(const std::vector<float> &packed, std::vector<float> &wide,
           int64_t batch, int64_t heads, int64_t tokens, int64_t dim,
           int64_t width, int64_t offset) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t d = 0; d < dim; ++d)
          wide[(b * tokens + t) * width + offset + h * dim + d] =
              packed[((b * heads + h) * tokens + t) * dim + d];
}
std::vector<float> gather(const std::vector<float> &wide, int64_t batch,
                          int64_t heads, int64_t tokens, int64_t dim,
                          int64_t width, int64_t offset) {
  std::vector<float> packed(static_cast<size_t>(batch * heads * tokens * dim));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t d = 0; d < dim; ++d)
          packed[((b * heads + h) * tokens + t) * dim + d] =
              wide[(b * tokens + t) * width + offset + h * dim + d];
  return packed;
}

class CudaAttentionStrides : public ::testing::TestWithParam<StridesCase> {};

TEST_P(CudaAttentionStrides, PackedProjectionEqualsPackedHeads) {
  SKIP_WITHOUT_GPU();
  const StridesCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.tokens * 13 + c.dim));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto make = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float &x : v)
      x = bf16ToFloat(floatToBf16(normal(rng)));
    return v;
  };
  const int64_t B = c.batch, H = c.heads, G = c.kvHeads, T = c.tokens,
                D = c.dim;
  const int64_t qn = B * H * T * D, kn = B * G * T * D, rows = B * H * T;
  const int64_t width = (H + 2 * G) * D; // the packed projection's row
  std::vector<float> q = make(qn), k = make(kn), v = make(kn), dout = make(qn);
  const DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  const cuda::Elem elem = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;
  const size_t bytes = c.bf16 ? 2 : 4;

  cuda::ErrorWord *error = nullptr;
  cudaMalloc(&error, sizeof(cuda::ErrorWord));
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));
  std::vector<void *> owned{error};
  auto alloc = [&](int64_t n, size_t each) {
    void *p = nullptr;
    cudaMalloc(&p, n * each);
    owned.push_back(p);
    return p;
  };
  auto upload = [&](const std::vector<float> &host) {
    void *p = uploadAs(host, dtype);
    owned.push_back(p);
    return p;
  };

  // One run: the forward, then the backward, at the layout `strided` picks.
  struct Result {
    std::vector<float> out, lse, dq, dk, dv;
  };
  auto run = [&](bool strided, bool deterministic) {
    cuda::AttentionParams p{};
    cuda::AttentionGradParams g{};
    g.deterministic = deterministic;
    p.batch = g.batch = B;
    p.heads = g.heads = H;
    p.kvHeads = g.kvHeads = G;
    p.queries = p.keys = g.queries = g.keys = T;
    p.headDim = p.valueDim = g.headDim = g.valueDim = D;
    p.scale = g.scale = 1.0f / std::sqrt(static_cast<float>(D));
    p.softcap = g.softcap = c.softcap;
    p.causal = g.causal = true;
    p.window = g.window = c.window;
    auto *lse = static_cast<float *>(alloc(rows, 4));
    p.lse = lse;
    g.lse = lse;
    void *out = alloc(qn, bytes), *dq, *dk, *dv, *qkvGrad = nullptr;
    if (!strided) {
      p.q = g.q = upload(q);
      p.k = g.k = upload(k);
      p.v = g.v = upload(v);
      g.outGrad = upload(dout);
      dq = alloc(qn, bytes);
      dk = alloc(kn, bytes);
      dv = alloc(kn, bytes);
    } else {
      std::vector<float> qkv(static_cast<size_t>(B * T * width)), doutWide(qn);
      place(q, qkv, B, H, T, D, width, 0);
      place(k, qkv, B, G, T, D, width, H * D);
      place(v, qkv, B, G, T, D, width, (H + G) * D);
      place(dout, doutWide, B, H, T, D, H * D, 0);
      auto *base = static_cast<uint8_t *>(upload(qkv));
      p.q = g.q = base;
      p.k = g.k = base + H * D * bytes;
      p.v = g.v = base + (H + G) * D * bytes;
      g.outGrad = upload(doutWide);
      const RowStrides projection{T * width, D, width},
          heads{T * H * D, D, H * D};
      p.qStrides = p.kStrides = p.vStrides = projection;
      g.qStrides = g.kStrides = g.vStrides = projection;
      p.outStrides = g.outStrides = g.outGradStrides = heads;
      qkvGrad = alloc(B * T * width, bytes);
      dq = qkvGrad;
      dk = static_cast<uint8_t *>(qkvGrad) + H * D * bytes;
      dv = static_cast<uint8_t *>(qkvGrad) + (H + G) * D * bytes;
      g.qGradStrides = g.kGradStrides = g.vGradStrides = projection;
    }
    p.out = out;
    g.out = out;
    g.qGrad = dq;
    g.kGrad = dk;
    g.vGrad = dv;
    if (strided)
      EXPECT_EQ(cuda::attentionTakesStrides(elem, p), c.flashForward);
    if (strided && !c.flashForward) {
      // This forward takes packed tensors only: run it so, and lay its
      // output out as the strided backward reads it.
      cuda::AttentionParams packed = p;
      packed.q = upload(q);
      packed.k = upload(k);
      packed.v = upload(v);
      packed.out = alloc(qn, bytes);
      packed.qStrides = packed.kStrides = packed.vStrides = packed.outStrides =
          RowStrides{};
      cuda::attention(elem, packed, 1, nullptr, error, 0, nullptr);
      std::vector<float> wide(qn);
      place(downloadAs(packed.out, dtype, qn), wide, B, H, T, D, H * D, 0);
      p.out = upload(wide);
      g.out = p.out;
    } else {
      cuda::attention(elem, p, 1, nullptr, error, 0, nullptr);
    }
    auto *workspace = static_cast<float *>(
        alloc(cuda::attentionGradWorkspaceFloats(elem, g), 4));
    cuda::attentionGrad(elem, g, workspace, nullptr);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    Result r;
    r.lse = downloadAs(lse, DType::F32, rows);
    if (!strided) {
      r.out = downloadAs(out, dtype, qn);
      r.dq = downloadAs(dq, dtype, qn);
      r.dk = downloadAs(dk, dtype, kn);
      r.dv = downloadAs(dv, dtype, kn);
    } else {
      r.out = gather(downloadAs(p.out, dtype, qn), B, H, T, D, H * D, 0);
      std::vector<float> grads = downloadAs(qkvGrad, dtype, B * T * width);
      r.dq = gather(grads, B, H, T, D, width, 0);
      r.dk = gather(grads, B, G, T, D, width, H * D);
      r.dv = gather(grads, B, G, T, D, width, (H + G) * D);
    }
    return r;
  };
  Result packed = run(false, true), strided = run(true, true);
  for (auto [got, want, name] : {std::tuple{&strided.out, &packed.out, "out"},
                                 {&strided.lse, &packed.lse, "lse"},
                                 {&strided.dq, &packed.dq, "dq"},
                                 {&strided.dk, &packed.dk, "dk"},
                                 {&strided.dv, &packed.dv, "dv"}}) {
    ASSERT_EQ(got->size(), want->size());
    size_t differ = 0;
    for (size_t i = 0; i < got->size(); ++i)
      differ += !((*got)[i] == (*want)[i] ||
                  (std::isnan((*got)[i]) && std::isnan((*want)[i])));
    EXPECT_EQ(differ, 0u) << name
                          << ": elements that differ from the packed run";
  }
  // The atomic form, strided, against the fixed-order packed run: each
  // element within two bf16 roundings of it (f32: a few ulps of the sums).
  Result atomic = run(true, false);
  const double ulps = c.bf16 ? 2.0 / 128 : 1e-5;
  for (auto [got, want, name] : {std::tuple{&atomic.dq, &packed.dq, "dq"},
                                 {&atomic.dk, &packed.dk, "dk"},
                                 {&atomic.dv, &packed.dv, "dv"}}) {
    double scale = 0.0;
    for (float w : *want)
      scale = std::max(scale, std::fabs(double(w)));
    size_t far = 0;
    for (size_t i = 0; i < got->size(); ++i)
      far += !(std::fabs(double((*got)[i]) - (*want)[i]) <=
               ulps * std::fabs(double((*want)[i])) + 1e-6 * scale);
    EXPECT_EQ(far, 0u) << name << ": elements of the atomic backward off the fixed-order one";
  }
  for (void *p : owned)
    cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaAttentionStrides,
    ::testing::Values(
        // The tensor-core kernels both ways: GQA, a ragged last tile.
        StridesCase{2, 4, 2, 200, 64, 0, 0.0f, true, true},
        // Head dim 128, multi-query, a window and a softcap.
        StridesCase{1, 4, 1, 130, 128, 50, 30.0f, true, true},
        // Too few queries for the tensor-core forward; its backward still runs
        // strided on the tensor cores.
        StridesCase{1, 2, 2, 40, 64, 0, 0.0f, true, false},
        // f32: the row kernels of the backward, at strides.
        StridesCase{1, 4, 2, 70, 64, 20, 0.0f, false, false}),
    nameOf);

} // namespace
