// gai::initialValues: the draws of one mt19937_64 stream, transformed on
// several threads, equal the one-thread Box-Muller to the bit, across the
// chunks the transform works in and for an odd count, and leave the stream
// where the one-thread form leaves it.
#include "gai/Init.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace {

/// The one-thread form: pairs of 53-bit uniforms, Box-Muller in double.
std::vector<float> oneThreadNormals(int64_t count, std::mt19937_64 &rng) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; i += 2) {
    double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
    double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1)) * 0.02;
    values[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
    if (i + 1 < count)
      values[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
  }
  return values;
}

TEST(InitialValues, ThreadedDrawsEqualTheOneThreadForm) {
  // Two full chunks of 4M values and an odd tail; then a small tensor, which
  // stays on one thread; then the stream must be where both forms left it.
  const std::vector<std::vector<int64_t>> shapes = {{(int64_t{1} << 23) + 3},
                                                    {33, 7}};
  std::mt19937_64 threaded(1234), reference(1234);
  for (const std::vector<int64_t> &shape : shapes) {
    const std::vector<float> got =
        gai::initialValues("layers.0.mlp.w", shape, threaded);
    const std::vector<float> want = oneThreadNormals(
        shape.size() == 1 ? shape[0] : shape[0] * shape[1], reference);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)),
              0)
        << "shape of " << got.size() << " values differs";
  }
  EXPECT_EQ(threaded(), reference()) << "the stream moved on by another count";
  // Norm scales and biases draw nothing.
  std::mt19937_64 untouched(1234), moved(1234);
  EXPECT_EQ(gai::initialValues("layers.0.norm.weight", {8}, moved),
            std::vector<float>(8, 1.0f));
  EXPECT_EQ(gai::initialValues("layers.0.attn.bias", {8}, moved),
            std::vector<float>(8, 0.0f));
  EXPECT_EQ(moved(), untouched());
}

} // namespace
