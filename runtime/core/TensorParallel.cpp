// TensorParallelSplit: index bookkeeping along the split axis.
#include "core/TensorParallel.h"

#include <algorithm>
#include <cstring>

namespace gai {

std::vector<std::pair<int64_t, int64_t>> TensorParallelSplit::where() const {
  std::vector<std::pair<int64_t, int64_t>> at;
  int64_t local = 0, whole = 0;
  const int64_t extent = wholeShape[static_cast<size_t>(axis)];
  for (size_t i = 0; i + 2 < segments.size(); i += 3) {
    int64_t offset = segments[i], units = segments[i + 1], size = segments[i + 2];
    for (; whole < offset; ++whole)
      at.push_back({-1, local++});
    for (int64_t u = 0; u < units; ++u)
      for (int64_t j = 0; j < size; ++j)
        at.push_back({u / keep, local + (u % keep) * size + j});
    local += keep * size;
    whole = offset + units * size;
  }
  for (; whole < extent; ++whole)
    at.push_back({-1, local++});
  return at;
}

int64_t TensorParallelSplit::localExtent() const {
  int64_t extent = wholeShape[static_cast<size_t>(axis)];
  for (size_t i = 0; i + 2 < segments.size(); i += 3)
    extent -= (segments[i + 1] - keep) * segments[i + 2];
  return extent;
}

int64_t TensorParallelSplit::outer() const {
  int64_t n = 1;
  for (int64_t d = 0; d < axis; ++d)
    n *= wholeShape[static_cast<size_t>(d)];
  return n;
}

int64_t TensorParallelSplit::inner() const {
  int64_t n = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < wholeShape.size(); ++d)
    n *= wholeShape[d];
  return n;
}

std::vector<uint8_t> TensorParallelSplit::slice(const uint8_t *whole, size_t elementBytes,
                                                int64_t rank) const {
  const std::vector<std::pair<int64_t, int64_t>> at = where();
  const int64_t local = localExtent(), rows = outer();
  const size_t row = static_cast<size_t>(inner()) * elementBytes;
  std::vector<uint8_t> out(static_cast<size_t>(rows * local) * row);
  for (int64_t o = 0; o < rows; ++o)
    for (size_t w = 0; w < at.size(); ++w) {
      auto [holder, index] = at[w];
      if (holder >= 0 && holder != rank / replicas)
        continue;
      std::memcpy(out.data() + static_cast<size_t>(o * local + index) * row,
                  whole + (static_cast<size_t>(o) * at.size() + w) * row, row);
    }
  return out;
}

std::vector<uint8_t> TensorParallelSplit::gather(const uint8_t *slices, size_t sliceBytes,
                                                 size_t elementBytes) const {
  const std::vector<std::pair<int64_t, int64_t>> at = where();
  const int64_t local = localExtent(), rows = outer();
  const size_t row = static_cast<size_t>(inner()) * elementBytes;
  std::vector<uint8_t> whole(at.size() * row * static_cast<size_t>(rows));
  for (int64_t o = 0; o < rows; ++o)
    for (size_t w = 0; w < at.size(); ++w) {
      auto [holder, index] = at[w];
      const uint8_t *from = slices +
                            static_cast<size_t>(std::max<int64_t>(holder, 0) * replicas) * sliceBytes +
                            static_cast<size_t>(o * local + index) * row;
      std::memcpy(whole.data() + (static_cast<size_t>(o) * at.size() + w) * row, from, row);
    }
  return whole;
}

} // namespace gai
