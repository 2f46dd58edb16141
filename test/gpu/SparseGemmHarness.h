// Inputs of the 2:4 GEMM test and benchmark: bf16 normals, and a weight
// pruned 2:4 along k by magnitude (the two largest of each four stay), as
// gaic prunes.
#ifndef GAI_TEST_GPU_SPARSEGEMMHARNESS_H
#define GAI_TEST_GPU_SPARSEGEMMHARNESS_H

#include "gai/FloatConvert.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace gai {

inline std::vector<float> bf16Draws(std::mt19937 &rng, int64_t count) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float &x : v)
    x = bf16ToFloat(floatToBf16(normal(rng)));
  return v;
}

/// Zeroes the two smallest magnitudes of each four consecutive values of
/// every row of `w` ([n, k], k a multiple of 4).
inline void prune24(std::vector<float> &w, int64_t k) {
  for (size_t base = 0; base + 4 <= w.size(); base += 4) {
    int order[4] = {0, 1, 2, 3};
    std::sort(order, order + 4, [&](int a, int b) {
      return std::fabs(w[base + a]) > std::fabs(w[base + b]);
    });
    w[base + order[2]] = w[base + order[3]] = 0.0f;
  }
  (void)k;
}

inline std::vector<uint16_t> toBf16(const std::vector<float> &v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = floatToBf16(v[i]);
  return out;
}

} // namespace gai

#endif // GAI_TEST_GPU_SPARSEGEMMHARNESS_H
