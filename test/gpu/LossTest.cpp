// cuda::crossEntropy and cuda::crossEntropyGrad's loss against a host sum in
// double, and repeated to the bit: more rows than the kernels' blocks (each
// block walks several rows), ignored labels, bf16 and f32 logits, and three
// launches in a row (the arrival counter re-arms itself).
#include "GpuTest.h"
#include "gai/FloatConvert.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace gai;

namespace {

struct LossCase {
  int64_t rows, vocab;
  bool bf16;
  int reduction; // 0 mean, 1 sum
};

std::string caseName(const ::testing::TestParamInfo<LossCase> &info) {
  const LossCase &c = info.param;
  return std::to_string(c.rows) + "x" + std::to_string(c.vocab) +
         (c.bf16 ? "_bf16" : "_f32") + (c.reduction == 0 ? "_mean" : "_sum");
}

class CudaLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(CudaLoss, FixedOrderSumMatchesTheHost) {
  SKIP_WITHOUT_GPU();
  const LossCase c = GetParam();
  constexpr int64_t kIgnore = -100;
  std::mt19937 rng(static_cast<uint32_t>(c.rows * 31 + c.vocab));
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int32_t> label(
      0, static_cast<int32_t>(c.vocab - 1));
  std::vector<float> logits(static_cast<size_t>(c.rows * c.vocab));
  for (float &x : logits)
    x = c.bf16 ? bf16ToFloat(floatToBf16(normal(rng))) : normal(rng);
  std::vector<int32_t> labels(static_cast<size_t>(c.rows));
  for (int64_t r = 0; r < c.rows; ++r)
    labels[r] = r % 7 == 3 ? static_cast<int32_t>(kIgnore) : label(rng);
  double expected = 0;
  int64_t counted = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    if (labels[r] == kIgnore)
      continue;
    const float *row = logits.data() + r * c.vocab;
    double max = row[0], sum = 0;
    for (int64_t j = 1; j < c.vocab; ++j)
      max = std::max<double>(max, row[j]);
    for (int64_t j = 0; j < c.vocab; ++j)
      sum += std::exp(row[j] - max);
    expected += max + std::log(sum) - row[labels[r]];
    ++counted;
  }
  if (c.reduction == 0)
    expected /= static_cast<double>(counted);

  const int64_t elem = c.bf16 ? 2 : 4, bytes = c.rows * c.vocab * elem;
  std::vector<uint16_t> packed;
  for (float x : logits)
    if (c.bf16)
      packed.push_back(floatToBf16(x));
  void *dLogits = nullptr, *dGradOut = nullptr;
  int32_t *dLabels = nullptr;
  float *dLoss = nullptr, *dParts = nullptr, *dUpstream = nullptr;
  cuda::ErrorWord *dError = nullptr;
  ASSERT_EQ(cudaMalloc(&dLogits, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dGradOut, bytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dLabels, c.rows * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dLoss, 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dParts, cuda::kLossPartsBytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dUpstream, 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dError, sizeof(cuda::ErrorWord)), cudaSuccess);
  cudaMemcpy(dLogits,
             c.bf16 ? static_cast<const void *>(packed.data()) : logits.data(),
             bytes, cudaMemcpyHostToDevice);
  cudaMemcpy(dLabels, labels.data(), c.rows * 4, cudaMemcpyHostToDevice);
  const float one = 1.0f;
  cudaMemcpy(dUpstream, &one, 4, cudaMemcpyHostToDevice);
  cudaMemset(dParts, 0, cuda::kLossPartsBytes);
  cudaMemset(dError, 0, sizeof(cuda::ErrorWord));
  const cuda::Elem e = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;

  std::vector<uint32_t> bits;
  for (int launch = 0; launch < 3; ++launch) {
    cudaMemset(dLoss, 0xff, 4); // a NaN: the kernel must write it
    if (launch < 2)
      cuda::crossEntropy(e, dLogits, dLabels, c.rows, c.vocab, kIgnore,
                         c.reduction, dLoss, dParts, dError, 0, nullptr);
    else
      cuda::crossEntropyGrad(e, dLogits, dLabels, dUpstream, c.rows, c.vocab,
                             kIgnore, c.reduction, dGradOut, dError, 0, nullptr,
                             dLoss, dParts);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    float got = 0;
    cudaMemcpy(&got, dLoss, 4, cudaMemcpyDeviceToHost);
    EXPECT_NEAR(got, expected, 2e-5 * std::max(1.0, std::fabs(expected)))
        << "launch " << launch;
    uint32_t b = 0;
    std::memcpy(&b, &got, 4);
    bits.push_back(b);
  }
  EXPECT_EQ(bits[1], bits[0]) << "the loss did not repeat to the bit";
  EXPECT_EQ(bits[2], bits[0]) << "the gradient's loss differs from the loss's";
  uint32_t counter = 1;
  cudaMemcpy(&counter,
             reinterpret_cast<uint8_t *>(dParts) + cuda::kMostLossBlocks * 4, 4,
             cudaMemcpyDeviceToHost);
  EXPECT_EQ(counter, 0u) << "the arrival counter was not re-armed";
  for (void *p : {dLogits, dGradOut, static_cast<void *>(dLabels),
                  static_cast<void *>(dLoss), static_cast<void *>(dParts),
                  static_cast<void *>(dUpstream), static_cast<void *>(dError)})
    cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(Kernels, CudaLoss,
                         ::testing::Values(LossCase{3000, 1000, false, 0},
                                           LossCase{4096, 512, true, 0},
                                           LossCase{37, 50257, true, 1},
                                           LossCase{1, 7, false, 0}),
                         caseName);

} // namespace
