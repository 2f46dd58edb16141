// Inputs of the GPU tests and benchmarks, without gtest: bf16
// normals (2:4 weights: pruned by gai::prune24, as gaic prunes).
#ifndef GAI_TEST_GPU_BF16INPUTS_H
#define GAI_TEST_GPU_BF16INPUTS_H

#include "gai/FloatConvert.h"
#include "gai/Sparsity.h"

#include <cstdint>
#include <random>
#include <vector>

namespace gai {

/// `count` draws from N(0, 1), each representable in bf16, so that bf16 and
/// f32 runs of a kernel read the same values.
inline std::vector<float> bf16Normals(std::mt19937 &rng, int64_t count) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float &x : v)
    x = bf16ToFloat(floatToBf16(normal(rng)));
  return v;
}

inline std::vector<uint16_t> toBf16(const std::vector<float> &v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = floatToBf16(v[i]);
  return out;
}

} // namespace gai

#endif // GAI_TEST_GPU_BF16INPUTS_H
