// An RMSNorm folded into the decode GEMVs around it (NormFold.h): the
// GEMV making the norm's input writes x ⊙ (weight + offset) and adds each
// row's Σx² to an f64 sum; the GEMVs reading it scale by the row's 1/rms.
// Checked against the host's norm of the x the device stored, in double.
// `wide`: an f32 residual stream over bf16 GEMMs, where the maker's x, its
// residual and the norm's weight are f32 (GemvPart::wideC).
#include "GpuTest.h"

#include "hal/cuda/Kernels.h"

namespace gai {
namespace {

struct NormFoldCase {
  int64_t m, k, dim; // producer: [m, k] · [dim, k]ᵀ; the norm is over dim
  int readers;       // 1 to 3 reading GEMMs in one launch, or 0: one gated
  bool unitOffset, bf16;
  bool wide = false;
};

class CudaNormFold : public ::testing::TestWithParam<NormFoldCase> {};

TEST_P(CudaNormFold, MatchesTheNormBetweenTwoGemms) {
  SKIP_WITHOUT_GPU();
  const NormFoldCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.m * 31 + c.k + c.dim * 3 + c.readers));
  auto make = [&](int64_t count) { return bf16Normals(rng, count); };
  const DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  const DType xType = c.wide ? DType::F32 : dtype; // the maker's x, residual, norm weight
  const cuda::Elem elem = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;
  const float eps = 1e-5f, offset = c.unitOffset ? 1.0f : 0.0f;
  std::vector<void *> buffers;
  auto upload = [&](const std::vector<float> &host, DType type) {
    buffers.push_back(uploadAs(host, type));
    return buffers.back();
  };
  std::vector<float> a = make(c.m * c.k), w = make(c.dim * c.k), residual = make(c.m * c.dim),
                     weight = make(c.dim);
  double *sums = nullptr;
  ASSERT_EQ(cudaMalloc(&sums, c.m * sizeof(double)), cudaSuccess);
  ASSERT_EQ(cudaMemset(sums, 0, c.m * sizeof(double)), cudaSuccess);
  if (c.wide) // residuals off the bf16 grid
    for (size_t i = 0; i < residual.size(); ++i)
      residual[i] *= 1.0f + 1.0f / 1024;
  void *dx = upload(std::vector<float>(c.m * c.dim, NAN), xType);
  void *dnormed = upload(std::vector<float>(c.m * c.dim, NAN), dtype);
  cuda::GemvPart maker{upload(w, dtype), dx, nullptr, upload(residual, xType), c.dim, 0};
  maker.norm.weight = upload(weight, xType);
  maker.norm.out = dnormed;
  maker.norm.squares = sums;
  maker.norm.offset = offset;
  maker.wideC = c.wide;
  cuda::gemvParts(elem, upload(a, dtype), &maker, 1, c.m, c.k, /*constantWeights=*/true,
                  nullptr);

  // The readers: widths 40, 47, 54 (3 parts, as q/k/v), or one gated.
  const bool gated = c.readers == 0;
  const int parts = gated ? 1 : c.readers;
  std::vector<cuda::GemvPart> readers;
  std::vector<std::vector<float>> weights, gates;
  for (int p = 0; p < parts; ++p) {
    int64_t n = 40 + 7 * p;
    weights.push_back(make(n * c.dim));
    gates.push_back(gated ? make(n * c.dim) : std::vector<float>());
    cuda::GemvPart part{upload(weights[p], dtype),
                        upload(std::vector<float>(c.m * n, NAN), dtype),
                        nullptr, nullptr, n, gated ? 1 : 0,
                        gated ? upload(gates[p], dtype) : nullptr};
    part.norm.aSquares = sums;
    part.norm.aEps = eps;
    readers.push_back(part);
  }
  cuda::gemvParts(elem, dnormed, readers.data(), parts, c.m, c.dim, true, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  // The maker's x as stored; its sums (exact in f64 for bf16 x) and x ⊙ g.
  std::vector<float> x = downloadAs(dx, xType, c.m * c.dim);
  if (c.wide) { // f32 x: the product and residual added, never rounded to bf16
    int64_t offGrid = 0;
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t j = 0; j < c.dim; ++j) {
        double want = residual[r * c.dim + j], size = std::fabs(want);
        for (int64_t i = 0; i < c.k; ++i) {
          want += double(a[r * c.k + i]) * w[j * c.k + i];
          size += std::fabs(double(a[r * c.k + i]) * w[j * c.k + i]);
        }
        float got = x[r * c.dim + j];
        ASSERT_NEAR(got, want, 1e-5 * size) << "row " << r << " column " << j;
        offGrid += bf16ToFloat(floatToBf16(got)) != got;
      }
    EXPECT_GT(offGrid, c.m * c.dim * 9 / 10);
  }
  std::vector<float> normed = downloadAs(dnormed, dtype, c.m * c.dim);
  std::vector<double> gotSums(c.m), inverseRms(c.m);
  cudaMemcpy(gotSums.data(), sums, c.m * sizeof(double), cudaMemcpyDeviceToHost);
  for (int64_t r = 0; r < c.m; ++r) {
    double sum = 0;
    for (int64_t j = 0; j < c.dim; ++j) {
      double v = x[r * c.dim + j];
      sum += v * v;
      float product = x[r * c.dim + j] * (weight[j] + offset);
      float want = c.bf16 ? bf16ToFloat(floatToBf16(product)) : product;
      ASSERT_EQ(normed[r * c.dim + j], want) << "row " << r << " element " << j;
    }
    if (c.bf16 && !c.wide)
      EXPECT_EQ(gotSums[r], sum) << "row " << r; // every term exact: order-free
    else
      EXPECT_NEAR(gotSums[r], sum, 1e-12 * sum) << "row " << r;
    inverseRms[r] = 1.0 / std::sqrt(sum / c.dim + eps);
  }
  // The readers: (x ⊙ g as checked above) · Wᵀ, scaled by the row's
  // 1/rms, in double. (How far that is from rounding x·(1/rms)·g instead is
  // the family tests' business: they compare whole models.)
  for (int p = 0; p < parts; ++p) {
    int64_t n = readers[p].n;
    std::vector<float> got = downloadAs(readers[p].c, dtype, c.m * n);
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t col = 0; col < n; ++col) {
        double up = 0, gate = 0, upSize = 0, gateSize = 0;
        for (int64_t j = 0; j < c.dim; ++j) {
          double v = normed[r * c.dim + j];
          up += v * weights[p][col * c.dim + j];
          upSize += std::fabs(v * weights[p][col * c.dim + j]);
          if (gated) {
            gate += v * gates[p][col * c.dim + j];
            gateSize += std::fabs(v * gates[p][col * c.dim + j]);
          }
        }
        up *= inverseRms[r];
        gate *= inverseRms[r];
        double silu = gate / (1.0 + std::exp(-gate));
        double want = gated ? silu * up : up;
        // f32 sums in another order (about 1e-6 of the terms' sizes, times
        // the other factor when gated); bf16 also rounds the result.
        double sums = 1e-6 * inverseRms[r] *
                      (gated ? upSize * std::fabs(silu) + gateSize * std::fabs(up) : upSize);
        double bound = (c.bf16 ? 1e-2 : 1e-6) * std::fabs(want) + sums + 1e-6;
        ASSERT_NEAR(got[r * n + col], want, bound) << "part " << p << " row " << r
                                                   << " column " << col;
      }
  }
  cudaFree(sums);
  for (void *ptr : buffers)
    cudaFree(ptr);
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaNormFold,
    ::testing::Values(NormFoldCase{1, 512, 256, 3, false, true},
                      NormFoldCase{1, 2056, 2048, 0, false, true},
                      NormFoldCase{3, 264, 128, 1, true, true},
                      NormFoldCase{8, 512, 256, 0, false, true},
                      NormFoldCase{1, 512, 256, 3, false, false},
                      NormFoldCase{5, 128, 64, 0, true, false},
                      NormFoldCase{1, 512, 256, 3, false, true, true},
                      NormFoldCase{4, 2056, 2048, 0, true, true, true}),
    [](const ::testing::TestParamInfo<NormFoldCase> &info) {
      const NormFoldCase &c = info.param;
      return "m" + std::to_string(c.m) + "k" + std::to_string(c.k) + "dim" +
             std::to_string(c.dim) +
             (c.readers ? "x" + std::to_string(c.readers) + "readers" : "gated") +
             (c.unitOffset ? "unitoffset" : "") + (c.bf16 ? "bf16" : "f32") +
             (c.wide ? "wide" : "");
    });

} // namespace
} // namespace gai
