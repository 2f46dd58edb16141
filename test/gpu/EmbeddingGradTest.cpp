// cuda::embeddingGrad against a host sum: the fixed-order form (what
// `--deterministic` runs) equal to the bit to each id's rows added in the
// order of their positions, launch after launch; the atomic form within
// rounding of it. Cases: ids repeated hundreds of times, a shard of the
// table (other shards' ids add nothing), widths that are not a multiple of
// the block, bf16 and f32.
#include "GpuTest.h"
#include "gai/FloatConvert.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace gai;

namespace {

struct EmbeddingGradCase {
  int64_t count, rows, dim, firstRow, vocab;
  bool bf16;
};

std::string caseName(const ::testing::TestParamInfo<EmbeddingGradCase> &info) {
  const EmbeddingGradCase &c = info.param;
  return std::to_string(c.count) + "ids_" + std::to_string(c.rows) + "x" +
         std::to_string(c.dim) + "_from" + std::to_string(c.firstRow) +
         (c.bf16 ? "_bf16" : "_f32");
}

class CudaEmbeddingGrad : public ::testing::TestWithParam<EmbeddingGradCase> {};

TEST_P(CudaEmbeddingGrad, FixedOrderAddsEachIdsRowsInOrder) {
  SKIP_WITHOUT_GPU();
  const EmbeddingGradCase c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.count * 7 + c.dim));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Ids from a few hot ones (hundreds of repeats) and the whole vocabulary.
  std::uniform_int_distribution<int32_t> any(0,
                                             static_cast<int32_t>(c.vocab - 1)),
      hot(0, 5);
  std::vector<int32_t> ids(static_cast<size_t>(c.count));
  for (int32_t &id : ids)
    id = rng() % 2 ? static_cast<int32_t>(c.firstRow) + hot(rng) : any(rng);
  std::vector<float> grad(static_cast<size_t>(c.count * c.dim));
  for (float &g : grad)
    g = c.bf16 ? bf16ToFloat(floatToBf16(normal(rng))) : normal(rng);

  // Each row of this shard: its positions' rows in order, from 0, in f32.
  std::vector<float> expected(static_cast<size_t>(c.rows * c.dim), 0.0f);
  for (int64_t p = 0; p < c.count; ++p) {
    const int64_t row = ids[p] - c.firstRow;
    if (row < 0 || row >= c.rows)
      continue;
    for (int64_t col = 0; col < c.dim; ++col)
      expected[row * c.dim + col] += grad[p * c.dim + col];
  }

  const cuda::Elem e = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;
  const int64_t elem = c.bf16 ? 2 : 4;
  std::vector<uint16_t> packed;
  for (float g : grad)
    if (c.bf16)
      packed.push_back(floatToBf16(g));
  void *dGrad = nullptr, *dOut = nullptr;
  int32_t *dIds = nullptr;
  float *dScratch = nullptr;
  cuda::ErrorWord *dError = nullptr;
  const int64_t scratchFloats = std::max<int64_t>(
      1, cuda::embeddingGradScratchFloats(e, c.rows, c.dim, c.count, true));
  ASSERT_GE(scratchFloats,
            cuda::embeddingGradScratchFloats(e, c.rows, c.dim, c.count, false));
  ASSERT_EQ(cudaMalloc(&dGrad, c.count * c.dim * elem), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dOut, c.rows * c.dim * elem), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dIds, c.count * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dScratch, scratchFloats * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dError, sizeof(cuda::ErrorWord)), cudaSuccess);
  cudaMemcpy(dGrad,
             c.bf16 ? static_cast<const void *>(packed.data()) : grad.data(),
             c.count * c.dim * elem, cudaMemcpyHostToDevice);
  cudaMemcpy(dIds, ids.data(), c.count * 4, cudaMemcpyHostToDevice);
  cudaMemset(dError, 0, sizeof(cuda::ErrorWord));

  auto run = [&](bool fixedOrder) {
    cudaMemset(dOut, 0xff,
               c.rows * c.dim * elem); // NaNs: every row must be written
    cuda::embeddingGrad(e, dGrad, c.rows, c.dim, dIds, c.count, dOut, dScratch,
                        fixedOrder, dError, 0, c.firstRow, c.vocab, nullptr);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> got(static_cast<size_t>(c.rows * c.dim));
    if (c.bf16) {
      std::vector<uint16_t> raw(got.size());
      cudaMemcpy(raw.data(), dOut, raw.size() * 2, cudaMemcpyDeviceToHost);
      for (size_t i = 0; i < raw.size(); ++i)
        got[i] = bf16ToFloat(raw[i]);
    } else {
      cudaMemcpy(got.data(), dOut, got.size() * 4, cudaMemcpyDeviceToHost);
    }
    return got;
  };
  auto rounded = [&](float x) {
    return c.bf16 ? bf16ToFloat(floatToBf16(x)) : x;
  };
  for (int launch = 0; launch < 2; ++launch) {
    std::vector<float> got = run(true);
    int64_t differing = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const float want = rounded(expected[i]);
      if (std::memcmp(&got[i], &want, 4) != 0 && ++differing <= 3)
        ADD_FAILURE() << "fixed order, launch " << launch << ": element " << i
                      << " (row " << static_cast<int64_t>(i) / c.dim << ") is "
                      << got[i] << ", not " << want;
    }
    EXPECT_EQ(differing, 0) << "elements not equal to the in-order sum";
  }
  std::vector<float> atomic = run(false);
  for (size_t i = 0; i < atomic.size(); ++i)
    ASSERT_NEAR(atomic[i], expected[i],
                6.4e-3f + (c.bf16 ? 1e-2f * std::fabs(expected[i]) : 0.0f))
        << "atomic form, element " << i;
  cuda::ErrorWord error{};
  cudaMemcpy(&error, dError, sizeof error, cudaMemcpyDeviceToHost);
  EXPECT_EQ(error.flag, cuda::kNoError);

  // A bad id is reported, and the rest still add in order.
  ids[c.count / 2] = static_cast<int32_t>(c.vocab);
  cudaMemcpy(dIds, ids.data(), c.count * 4, cudaMemcpyHostToDevice);
  run(true);
  cudaMemcpy(&error, dError, sizeof error, cudaMemcpyDeviceToHost);
  EXPECT_EQ(error.flag, cuda::kBadTokenId);
  EXPECT_EQ(error.a, c.vocab);
  for (void *p : {dGrad, dOut, static_cast<void *>(dIds),
                  static_cast<void *>(dScratch), static_cast<void *>(dError)})
    cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaEmbeddingGrad,
    ::testing::Values(EmbeddingGradCase{4096, 1000, 200, 0, 1000, false},
                      EmbeddingGradCase{8192, 512, 768, 0, 512, true},
                      EmbeddingGradCase{3000, 300, 300, 300, 1000, true},
                      EmbeddingGradCase{1, 7, 5, 0, 7, false}),
    caseName);

} // namespace
