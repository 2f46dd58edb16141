// 2:4 sparse weights made from float ones and read back.
#include "gai/Sparsity.h"

#include <cmath>

namespace gai {
namespace {

/// The positions i0 < i1 of the two largest |g[i]|, ties to the lower one.
std::pair<int, int> keptOfGroup(const float *g) {
  int first = 0;
  for (int i = 1; i < 4; ++i)
    if (std::fabs(g[i]) > std::fabs(g[first]))
      first = i;
  int second = first == 0 ? 1 : 0;
  for (int i = second + 1; i < 4; ++i)
    if (i != first && std::fabs(g[i]) > std::fabs(g[second]))
      second = i;
  return first < second ? std::pair{first, second} : std::pair{second, first};
}

} // namespace

std::string sparseMetaName(std::string_view weight) {
  return std::string(weight) + ".meta";
}

Sparse24Weight compress24(const float *w, int64_t rows, int64_t cols) {
  Sparse24Weight s;
  s.rows = rows;
  s.cols = cols;
  s.values.resize(static_cast<size_t>(rows * cols / 2));
  s.meta.assign(static_cast<size_t>(rows * cols / 8), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols / 4; ++g) {
      const float *group = w + r * cols + 4 * g;
      auto [i0, i1] = keptOfGroup(group);
      float *kept = s.values.data() + r * cols / 2 + 2 * g;
      kept[0] = group[i0];
      kept[1] = group[i1];
      uint8_t nibble = static_cast<uint8_t>(i0 | i1 << 2);
      s.meta[r * cols / 8 + g / 2] |= static_cast<uint8_t>(g % 2 ? nibble << 4 : nibble);
    }
  return s;
}

void decompress24Row(const float *values, const uint8_t *meta, int64_t row, int64_t cols,
                     float *out) {
  const float *kept = values + row * cols / 2;
  const uint8_t *bytes = meta + row * cols / 8;
  for (int64_t g = 0; g < cols / 4; ++g) {
    int nibble = g % 2 ? bytes[g / 2] >> 4 : bytes[g / 2] & 15;
    float *group = out + 4 * g;
    group[0] = group[1] = group[2] = group[3] = 0.0f;
    group[nibble & 3] = kept[2 * g];
    group[nibble >> 2] = kept[2 * g + 1];
  }
}

void prune24(float *w, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < cols / 4; ++g) {
      float *group = w + r * cols + 4 * g;
      auto [i0, i1] = keptOfGroup(group);
      for (int i = 0; i < 4; ++i)
        if (i != i0 && i != i1)
          group[i] = 0.0f;
    }
}

} // namespace gai
