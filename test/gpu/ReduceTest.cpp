// cuda::reduce and cuda::columnSums against a host sum in double, on shapes that reach each way
// the kernel splits its work: many columns with a few rows (a norm weight's
// per-element terms over a batch of 4), few columns over many rows (2048 x
// 2048, where rows are split across threads), row counts that are no
// multiple of the eight loads a thread keeps in flight, columns that do not
// fill a block, several outer slices, and each kind (sum, mean, max, min).
#include "GpuTest.h"
#include "hal/cuda/ColumnSums.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace gai;

namespace {

struct ReduceCase {
  int64_t outer, n, inner;
  int kind; // 0 sum, 1 mean, 2 max, 3 min
  bool bf16;
};

std::string caseName(const ::testing::TestParamInfo<ReduceCase> &info) {
  const ReduceCase &c = info.param;
  static const char *kinds[] = {"sum", "mean", "max", "min"};
  return std::string(kinds[c.kind]) + "_" + std::to_string(c.outer) + "x" + std::to_string(c.n) +
         "x" + std::to_string(c.inner) + (c.bf16 ? "_bf16" : "_f32");
}

/// Runs cuda::reduce (or, with `columnSums`, cuda::columnSums with
/// `workspaceBytes` of workspace) on random data and checks every result
/// against a host sum in double.
void checkAgainstHost(const ReduceCase &c, bool columnSums = false,
                      size_t workspaceBytes = 32u << 20) {
  const int64_t count = c.outer * c.n * c.inner, results = c.outer * c.inner;
  std::mt19937 rng(static_cast<uint32_t>(count + c.kind));
  std::normal_distribution<float> normal(0.5f, 1.0f);
  std::vector<float> host(count);
  for (float &x : host)
    x = c.bf16 ? bf16ToFloat(floatToBf16(normal(rng))) : normal(rng);
  const int64_t elem = c.bf16 ? 2 : 4;
  std::vector<uint16_t> packed;
  if (c.bf16)
    for (float x : host)
      packed.push_back(floatToBf16(x));
  void *in = nullptr, *out = nullptr;
  ASSERT_EQ(cudaMalloc(&in, count * elem), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&out, results * elem), cudaSuccess);
  cudaMemcpy(in, c.bf16 ? static_cast<const void *>(packed.data()) : host.data(),
             count * elem, cudaMemcpyHostToDevice);
  const cuda::Elem e = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;
  if (columnSums) {
    ASSERT_TRUE(cuda::columnSumsTake(c.kind, c.outer, c.n, c.inner, in, workspaceBytes));
    float *workspace = nullptr;
    ASSERT_EQ(cudaMalloc(&workspace, workspaceBytes), cudaSuccess);
    // Garbage in the workspace: the partials must not depend on its contents.
    cudaMemset(workspace, 0x7f, workspaceBytes);
    cuda::columnSums(e, in, out, c.outer, c.n, c.inner, c.kind == 1 ? 1.0f / c.n : 1.0f,
                     workspace, workspaceBytes, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cudaFree(workspace);
  } else {
    cuda::reduce(e, in, out, c.kind, c.outer, c.n, c.inner, nullptr);
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got(results);
  std::vector<uint16_t> gotBits(results);
  cudaMemcpy(c.bf16 ? static_cast<void *>(gotBits.data()) : got.data(), out, results * elem,
             cudaMemcpyDeviceToHost);
  if (c.bf16)
    for (int64_t i = 0; i < results; ++i)
      got[i] = bf16ToFloat(gotBits[i]);
  cudaFree(in);
  cudaFree(out);

  int64_t wrong = 0;
  for (int64_t o = 0; o < c.outer; ++o)
    for (int64_t col = 0; col < c.inner; ++col) {
      double sum = 0, magnitude = 0;
      double best = c.kind == 2 ? -INFINITY : INFINITY;
      for (int64_t j = 0; j < c.n; ++j) {
        const double x = host[(o * c.n + j) * c.inner + col];
        sum += x;
        magnitude += std::fabs(x);
        best = c.kind == 2 ? std::max(best, x) : std::min(best, x);
      }
      double want = c.kind == 0 ? sum : c.kind == 1 ? sum / c.n : best;
      double scale = c.kind == 1 ? magnitude / c.n : c.kind == 0 ? magnitude : std::fabs(want);
      // f32 sums: a few roundings of the running magnitude; max and min
      // are exact; a bf16 result is one more rounding (2^-8 relative).
      double tolerance = (c.kind <= 1 ? 1e-6 * std::sqrt(static_cast<double>(c.n)) : 0) * scale +
                         (c.bf16 ? std::ldexp(std::fabs(want), -8) : 0) + 1e-30;
      const double error = std::fabs(got[o * c.inner + col] - want);
      if (!(error <= tolerance) && wrong++ < 5)
        ADD_FAILURE() << "outer " << o << " column " << col << ": " << got[o * c.inner + col]
                      << " against " << want << " (tolerance " << tolerance << ")";
    }
  EXPECT_EQ(wrong, 0);
}

class CudaReduce : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(CudaReduce, MatchesTheHostInDouble) {
  SKIP_WITHOUT_GPU();
  checkAgainstHost(GetParam());
}

class CudaColumnSums : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(CudaColumnSums, MatchesTheHostInDouble) {
  SKIP_WITHOUT_GPU();
  checkAgainstHost(GetParam(), true);
}

TEST(CudaColumnSumsWorkspace, OneSliceWhereTheWorkspaceHoldsOneRowOfResults) {
  SKIP_WITHOUT_GPU();
  // 3 × 1024 f32 results fill a 12 KiB workspace: the rows are not sliced.
  checkAgainstHost(ReduceCase{3, 500, 1024, 0, false}, true, 3 * 1024 * 4);
}

TEST(CudaColumnSumsWorkspace, RefusesWhatItCannotTake) {
  alignas(16) static float in[4];
  EXPECT_FALSE(cuda::columnSumsTake(2, 1, 128, 64, in, 1 << 20));     // max
  EXPECT_FALSE(cuda::columnSumsTake(0, 1, 63, 64, in, 1 << 20));      // few rows
  EXPECT_FALSE(cuda::columnSumsTake(0, 1, 128, 60, in, 1 << 20));     // 60 % 8
  EXPECT_FALSE(cuda::columnSumsTake(0, 1, 128, 64, in + 1, 1 << 20)); // unaligned
  EXPECT_FALSE(cuda::columnSumsTake(0, 2, 128, 64, in, 511));         // results too big
  EXPECT_FALSE(cuda::columnSumsTake(0, 65536, 64, 64, in, 1u << 30)); // outer past the grid
  EXPECT_TRUE(cuda::columnSumsTake(1, 2, 128, 64, in, 512));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaReduce,
    ::testing::Values(ReduceCase{1, 4, 1 << 20, 0, false},  // many columns, 4 rows
                      ReduceCase{1, 2048, 2048, 0, false},  // few columns, many rows
                      ReduceCase{1, 1024, 768, 0, true},    // a bias gradient's second stage
                      ReduceCase{1, 16, 786432, 0, true},   // ... and its first
                      ReduceCase{1, 13, 1000, 0, false},    // rows past the last eight
                      ReduceCase{3, 37, 5, 1, false},       // outer slices, a thin block
                      ReduceCase{2, 1, 300, 0, false},      // one row
                      ReduceCase{4, 999, 33, 2, false},     // max over split rows
                      ReduceCase{1, 3000, 7, 3, true},      // min, bf16
                      ReduceCase{5, 100, 129, 1, true}),    // mean, bf16
    caseName);

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaColumnSums,
    ::testing::Values(ReduceCase{1, 8192, 2048, 0, false}, // a norm weight's gradient, llama-1b
                      ReduceCase{1, 8192, 2048, 0, true},
                      ReduceCase{1, 64, 64, 0, false},     // the least it takes
                      ReduceCase{2, 999, 776, 1, true},    // a strip past the last column
                      ReduceCase{3, 4099, 200, 0, false},  // rows no multiple of a slice
                      ReduceCase{1, 1 << 16, 64, 1, false}), // many slices
    caseName);

} // namespace
