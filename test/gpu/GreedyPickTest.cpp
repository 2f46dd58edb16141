// Greedy decoding's pick on the device, both ways: inside the GEMV that
// writes the logits (gemvParts with a GreedyPick) and as the greedyFeed
// kernel after it. Each must take the host sampler's token: the first
// largest logit, NaNs never winning, 0 for a row of NaNs; and each must
// move the ring, the positions and the step on, ready for the next step.
#include "GpuTest.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

using namespace gai;

namespace {

struct PickCase {
  int64_t rows;
  bool bf16;
};

/// The host sampler's choice over one row.
int32_t firstLargest(const float *row, int64_t n) {
  int32_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isnan(row[i]) && (best < 0 || row[i] > row[best]))
      best = static_cast<int32_t>(i);
  return best < 0 ? 0 : best;
}

struct DeviceGreedy {
  int32_t *tokens = nullptr, *positions = nullptr, *ring = nullptr;
  cuda::GreedyCounters *counters = nullptr;
  explicit DeviceGreedy(const std::vector<int32_t> &start) {
    size_t bytes = start.size() * sizeof(int32_t);
    cudaMalloc(&tokens, bytes);
    cudaMalloc(&positions, bytes);
    cudaMalloc(&ring, 2 * bytes);
    cudaMalloc(&counters, sizeof(cuda::GreedyCounters));
    cudaMemcpy(positions, start.data(), bytes, cudaMemcpyHostToDevice);
    cudaMemset(tokens, 0xff, bytes);
    cudaMemset(ring, 0xff, 2 * bytes);
    cudaMemset(counters, 0, sizeof(cuda::GreedyCounters));
  }
  ~DeviceGreedy() {
    for (void *p : {static_cast<void *>(tokens), static_cast<void *>(positions),
                    static_cast<void *>(ring), static_cast<void *>(counters)})
      cudaFree(p);
  }
  cuda::GreedyPick pick(int32_t lastPosition) const {
    return {tokens, positions, lastPosition, ring, counters};
  }
  static std::vector<int32_t> download(const int32_t *p, size_t count) {
    std::vector<int32_t> v(count);
    cudaMemcpy(v.data(), p, count * sizeof(int32_t), cudaMemcpyDeviceToHost);
    return v;
  }
};

class CudaGreedyPick : public ::testing::TestWithParam<PickCase> {};

// Logits [rows, n] = A·Wᵀ + R with A's row r one-hot at r: exactly W[:, r]
// + R, so ties, NaNs and infinities are placed where wanted. Row 0 has its
// largest value twice (the first, in the grid's last blocks, must win) and
// a NaN; row 1 is all NaN; row 2 has +inf twice; row 3 is all -inf.
TEST_P(CudaGreedyPick, TakesTheHostSamplersTokens) {
  SKIP_WITHOUT_GPU();
  const PickCase c = GetParam();
  const int64_t n = 32003, k = 256, m = c.rows; // n: the last block is partly idle
  const DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  const cuda::Elem elem = c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32;
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(static_cast<unsigned>(17 + m));
  std::vector<float> w = bf16Normals(rng, n * k), a(m * k, 0.0f), r(m * n, 0.0f);
  for (int64_t row = 0; row < m; ++row)
    a[row * k + row] = 1.0f;
  w[31999 * k + 0] = w[32002 * k + 0] = 16.0f;
  r[7] = NAN;
  for (int64_t col = 0; col < n; ++col) {
    if (m > 1)
      r[1 * n + col] = NAN;
    if (m > 2)
      r[2 * n + col] = col == 500 || col == 20000 ? inf : 0.0f;
    if (m > 3)
      r[3 * n + col] = -inf;
  }
  void *da = uploadAs(a, dtype), *dw = uploadAs(w, dtype), *dr = uploadAs(r, dtype);
  void *dc = nullptr;
  cudaMalloc(&dc, m * n * (c.bf16 ? 2 : 4));
  const std::vector<int32_t> start = {5, 9, 10, 0};
  const int32_t lastPosition = 10;
  DeviceGreedy fused({start.begin(), start.begin() + m}), feed({start.begin(), start.begin() + m});
  cuda::GemvPart part{dw, dc, nullptr, dr, n, 0};
  // Two steps: the second finds the counters as the first left them.
  for (int step = 0; step < 2; ++step) {
    cuda::GreedyPick pick = fused.pick(lastPosition);
    cuda::gemvParts(elem, da, &part, 1, m, k, /*constantWeights=*/true, nullptr, {}, &pick);
  }
  for (int step = 0; step < 2; ++step)
    cuda::greedyFeed(elem, dc, m, n, feed.pick(lastPosition), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<float> logits = downloadAs(dc, dtype, static_cast<size_t>(m * n));
  EXPECT_EQ(logits[31999], 16.0f);
  std::vector<int32_t> want(m), wantPositions(m);
  for (int64_t row = 0; row < m; ++row) {
    want[row] = firstLargest(logits.data() + row * n, n);
    wantPositions[row] = std::min(start[row] + 2, lastPosition);
  }
  const std::vector<int32_t> expected = {31999, 0, 500, 0};
  EXPECT_EQ(want, std::vector<int32_t>(expected.begin(), expected.begin() + m))
      << "the logits are not what the test set up";
  std::vector<int32_t> wantRing = want;
  wantRing.insert(wantRing.end(), want.begin(), want.end());
  for (const DeviceGreedy *d : {&fused, &feed}) {
    const char *way = d == &fused ? "in the GEMV" : "greedyFeed";
    EXPECT_EQ(DeviceGreedy::download(d->tokens, m), want) << way;
    EXPECT_EQ(DeviceGreedy::download(d->ring, 2 * m), wantRing) << way;
    EXPECT_EQ(DeviceGreedy::download(d->positions, m), wantPositions) << way;
    cuda::GreedyCounters counters{};
    cudaMemcpy(&counters, d->counters, sizeof counters, cudaMemcpyDeviceToHost);
    EXPECT_EQ(counters.step, 2) << way;
    EXPECT_EQ(counters.rowsDone, 0u) << way;
    for (unsigned long long best : counters.best)
      EXPECT_EQ(best, 0ull) << way << ": a row's best was not reset";
  }
  for (void *p : {da, dw, dr, dc})
    cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(Rows, CudaGreedyPick,
                         ::testing::Values(PickCase{1, true}, PickCase{1, false},
                                           PickCase{4, true}, PickCase{4, false}),
                         [](const ::testing::TestParamInfo<PickCase> &info) {
                           return std::to_string(info.param.rows) + "Rows" +
                                  (info.param.bf16 ? "Bf16" : "F32");
                         });

} // namespace
