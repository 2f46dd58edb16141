// cuSPARSELt's 2:4 GEMM against the host's product, in double, of the same
// bf16 values: shapes of llama-1b's projections and small edges, with and
// without a residual; a weight that is not 2:4 is refused.
#include "GpuTest.h"
#include "Bf16Inputs.h"
#include "hal/cuda/SparseGemm.h"

namespace gai {
namespace {

struct SparseCase {
  int64_t m, n, k;
  bool residual;
};

#define SKIP_WITHOUT_SPARSELT()                                                \
  if (auto lib = cuda::sparseLt(); !lib)                                       \
  GTEST_SKIP() << lib.status().message()

void *upload(const std::vector<uint16_t> &v) {
  void *d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, v.size() * 2), cudaSuccess);
  cudaMemcpy(d, v.data(), v.size() * 2, cudaMemcpyHostToDevice);
  return d;
}

class CudaSparseGemm : public ::testing::TestWithParam<SparseCase> {};

TEST_P(CudaSparseGemm, MatchesTheDenseProduct) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_SPARSELT();
  const SparseCase c = GetParam();
  std::mt19937 rng(7);
  std::vector<float> x = bf16Normals(rng, c.m * c.k), w = bf16Normals(rng, c.n * c.k);
  std::vector<float> r = bf16Normals(rng, c.m * c.n);
  prune24(w.data(), c.n, c.k);
  void *dx = upload(toBf16(x)), *dw = upload(toBf16(w)), *dd = upload(toBf16(r));
  cudaStream_t stream = nullptr;
  auto gemm = cuda::SparseGemm::create(c.m, c.n, c.k, dw, c.residual, stream);
  ASSERT_TRUE(gemm) << gemm.status().message();
  EXPECT_LT((*gemm)->compressedBytes(), c.n * c.k * 2) << "the compressed weight is smaller";
  ASSERT_TRUE((*gemm)->run(dx, dd, dd, stream));
  std::vector<uint16_t> got(static_cast<size_t>(c.m * c.n));
  cudaMemcpy(got.data(), dd, got.size() * 2, cudaMemcpyDeviceToHost);
  double worst = 0.0;
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double want = c.residual ? r[i * c.n + j] : 0.0;
      for (int64_t p = 0; p < c.k; ++p)
        want += double(x[i * c.k + p]) * w[j * c.k + p];
      double diff = std::fabs(bf16ToFloat(got[i * c.n + j]) - want);
      // bf16's rounding of the result, and f32 accumulation over k.
      double bound = std::ldexp(std::fabs(want), -8) + 1e-6 * c.k;
      worst = std::max(worst, diff / bound);
    }
  EXPECT_LE(worst, 1.0) << "worst error, in units of the bound";
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dd);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaSparseGemm,
    ::testing::Values(SparseCase{64, 128, 64, false}, SparseCase{16, 64, 256, true},
                      SparseCase{128, 256, 2048, false}, SparseCase{256, 5632, 2048, true},
                      SparseCase{256, 2048, 5632, false}),
    [](const auto &info) {
      const SparseCase &c = info.param;
      return "m" + std::to_string(c.m) + "n" + std::to_string(c.n) + "k" + std::to_string(c.k) +
             (c.residual ? "Residual" : "");
    });

TEST(CudaSparseGemmErrors, ADenseWeightIsRefused) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_SPARSELT();
  std::mt19937 rng(3);
  std::vector<float> w = bf16Normals(rng, 64 * 64);
  void *dw = upload(toBf16(w));
  auto gemm = cuda::SparseGemm::create(64, 64, 64, dw, false, nullptr);
  ASSERT_FALSE(gemm);
  EXPECT_NE(gemm.status().message().find("is not 2:4 sparse along k"), std::string::npos)
      << gemm.status().message();
  cudaFree(dw);
}

} // namespace
} // namespace gai
