// The weight formats of gai/Quantize.h: rounding, ranges and layouts.
#include "gai/Quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace gai {
namespace {

std::vector<float> normalWeights(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> w(count);
  for (float &x : w)
    x = normal(rng);
  return w;
}

TEST(QuantizeFormats, Fp8E4M3RoundTripsEveryNumber) {
  for (int bits = 0; bits < 256; ++bits) {
    float v = fp8E4M3ToFloat(static_cast<uint8_t>(bits));
    if (std::isnan(v)) {
      EXPECT_EQ(bits & 0x7F, 0x7F);
      continue;
    }
    EXPECT_EQ(floatToFp8E4M3(v), bits == 0x80 ? 0x80 : bits) << bits;
  }
  EXPECT_EQ(fp8E4M3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(fp8E4M3ToFloat(0x01), std::ldexp(1.0f, -9)); // the smallest subnormal
}

TEST(QuantizeFormats, Fp8E4M3RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(1.0625f)), 1.0f);   // halfway 1 and 1.125: even
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(1.1875f)), 1.25f);  // halfway 1.125 and 1.25: even
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(1.07f)), 1.125f);
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(1000.0f)), 448.0f);
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(-1000.0f)), -448.0f);
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(15.5f * std::ldexp(1.0f, 4))), 256.0f); // 248 -> 256
  EXPECT_EQ(floatToFp8E4M3(std::ldexp(1.0f, -10)), 0);          // a tie with 0: even
  EXPECT_EQ(fp8E4M3ToFloat(floatToFp8E4M3(std::ldexp(1.5f, -9))), std::ldexp(1.0f, -8));
}

TEST(QuantizeFormats, Int8IsSymmetricPerRowWithinHalfAStep) {
  const int64_t rows = 5, cols = 64;
  std::vector<float> w = normalWeights(rows * cols, 1);
  w[3] = -0.5f; // row 0's extreme
  QuantizedWeight q = quantizeWeight(w.data(), rows, cols, QuantFormat::Int8);
  ASSERT_EQ(q.values.size(), size_t(rows * cols));
  ASSERT_EQ(q.scale.size(), size_t(rows));
  EXPECT_FLOAT_EQ(q.scale[0], 0.5f / 127);
  EXPECT_EQ(static_cast<int8_t>(q.values[3]), -127);
  std::vector<float> back(cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantizeRow(QuantFormat::Int8, q.values.data(), q.scale.data(), nullptr, r, cols, 0, false,
                  back.data());
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_LE(std::fabs(back[c] - w[r * cols + c]), q.scale[r] / 2 * 1.0001f);
  }
}

TEST(QuantizeFormats, Int4PacksLowNibbleFirstWithExactZero) {
  const int64_t rows = 2, cols = 32, group = 16;
  std::vector<float> w = normalWeights(rows * cols, 2);
  w[0] = 0.0f;
  w[1] = 0.03f;
  QuantizedWeight q = quantizeWeight(w.data(), rows, cols, QuantFormat::Int4, group);
  ASSERT_EQ(q.values.size(), size_t(rows * cols / 2));
  ASSERT_EQ(q.scale.size(), size_t(rows * cols / group));
  ASSERT_EQ(q.zero.size(), size_t(rows * cols / group));
  // Element 0 (0.0) is the zero point itself, in byte 0's low nibble.
  EXPECT_EQ(q.values[0] & 15, q.zero[0]);
  std::vector<float> back(cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantizeRow(QuantFormat::Int4, q.values.data(), q.scale.data(), q.zero.data(), r, cols,
                  group, false, back.data());
    if (r == 0)
      EXPECT_EQ(back[0], 0.0f);
    for (int64_t c = 0; c < cols; ++c) {
      float scale = q.scale[r * (cols / group) + c / group];
      EXPECT_LE(std::fabs(back[c] - w[r * cols + c]), scale / 2 * 1.0001f) << r << " " << c;
      EXPECT_LE(q.zero[r * (cols / group) + c / group], 15);
    }
  }
}

TEST(QuantizeFormats, Fp8PerTensorAndPerRowScales) {
  const int64_t rows = 4, cols = 16;
  std::vector<float> w = normalWeights(rows * cols, 3);
  w[5] = 2.0f;
  QuantizedWeight tensor = quantizeWeight(w.data(), rows, cols, QuantFormat::Fp8E4M3);
  ASSERT_EQ(tensor.scale.size(), 1u);
  EXPECT_FLOAT_EQ(tensor.scale[0], 2.0f / 448);
  QuantizedWeight row = quantizeWeight(w.data(), rows, cols, QuantFormat::Fp8E4M3, 0, true);
  ASSERT_EQ(row.scale.size(), size_t(rows));
  // Per row, the rows without the outlier keep more precision.
  EXPECT_LT(quantizationError(w.data(), row).rmsRelative,
            quantizationError(w.data(), tensor).rmsRelative);
  EXPECT_LT(quantizationError(w.data(), row).rmsRelative, 0.05);
}

TEST(QuantizeFormats, ErrorsShrinkWithMoreBits) {
  const int64_t rows = 64, cols = 256;
  std::vector<float> w = normalWeights(rows * cols, 4);
  double int8 = quantizationError(w.data(), quantizeWeight(w.data(), rows, cols,
                                                           QuantFormat::Int8)).rmsRelative;
  double int4 = quantizationError(w.data(), quantizeWeight(w.data(), rows, cols,
                                                           QuantFormat::Int4, 128)).rmsRelative;
  double int4Small = quantizationError(w.data(), quantizeWeight(w.data(), rows, cols,
                                                                QuantFormat::Int4, 32)).rmsRelative;
  EXPECT_LT(int8, 0.02);
  EXPECT_LT(int8, int4Small);
  EXPECT_LT(int4Small, int4);
  EXPECT_LT(int4, 0.15);
}

TEST(QuantizeFormats, NamesAndParsing) {
  EXPECT_EQ(parseQuantFormat("int8"), QuantFormat::Int8);
  EXPECT_EQ(parseQuantFormat("int4"), QuantFormat::Int4);
  EXPECT_EQ(parseQuantFormat("fp8"), QuantFormat::Fp8E4M3);
  EXPECT_FALSE(parseQuantFormat("int3"));
  EXPECT_EQ(quantScaleName("a.weight"), "a.weight.scale");
  EXPECT_EQ(quantZeroName("a.weight"), "a.weight.zero");
}

} // namespace
} // namespace gai
