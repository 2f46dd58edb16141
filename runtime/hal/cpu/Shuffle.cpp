// Layout changes and small reductions the plan runs outside generated code.
#include "hal/cpu/Kernels.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

namespace gai::cpu {
namespace {

std::vector<int64_t> rowMajorStrides(const int64_t *shape, int64_t rank) {
  std::vector<int64_t> strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

} // namespace

void transpose(const void *in, void *out, int64_t elementBytes,
               const int64_t *shape, const int64_t *perm, int64_t rank) {
  // Strides of the input, visited in output order; the innermost output
  // dimension is copied in one run when it is also innermost in the input.
  std::vector<int64_t> inStride = rowMajorStrides(shape, rank);
  std::vector<int64_t> outShape(rank), stride(rank);
  for (int64_t d = 0; d < rank; ++d) {
    outShape[d] = shape[perm[d]];
    stride[d] = inStride[perm[d]];
  }
  int64_t total = 1;
  for (int64_t d = 0; d < rank; ++d)
    total *= outShape[d];
  bool contiguousRow = rank > 0 && perm[rank - 1] == rank - 1;
  int64_t run = contiguousRow ? outShape[rank - 1] : 1;
  const auto *src = static_cast<const uint8_t *>(in);
  auto *dst = static_cast<uint8_t *>(out);
  std::vector<int64_t> index(rank, 0);
  for (int64_t at = 0; at < total; at += run) {
    int64_t from = 0;
    for (int64_t d = 0; d < rank; ++d)
      from += index[d] * stride[d];
    std::memcpy(dst + at * elementBytes, src + from * elementBytes,
                run * elementBytes);
    for (int64_t d = rank - (contiguousRow ? 2 : 1); d >= 0; --d) {
      if (++index[d] < outShape[d])
        break;
      index[d] = 0;
    }
  }
}

void slice(const void *in, void *out, int64_t elementBytes,
           const int64_t *shape, const int64_t *offsets, const int64_t *sizes,
           int64_t rank) {
  std::vector<int64_t> inStride = rowMajorStrides(shape, rank);
  int64_t total = 1;
  for (int64_t d = 0; d < rank; ++d)
    total *= sizes[d];
  int64_t run = rank ? sizes[rank - 1] : 1;
  const auto *src = static_cast<const uint8_t *>(in);
  auto *dst = static_cast<uint8_t *>(out);
  std::vector<int64_t> index(rank, 0);
  for (int64_t at = 0; at < total; at += run) {
    int64_t from = 0;
    for (int64_t d = 0; d < rank; ++d)
      from += (offsets[d] + index[d]) * inStride[d];
    std::memcpy(dst + at * elementBytes, src + from * elementBytes,
                run * elementBytes);
    for (int64_t d = rank - 2; d >= 0; --d) {
      if (++index[d] < sizes[d])
        break;
      index[d] = 0;
    }
  }
}

void topk(const float *in, int64_t rows, int64_t n, int64_t k, float *values,
          int32_t *indices) {
  std::vector<int32_t> order(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float *row = in + r * n;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) {
                        return row[a] > row[b] || (row[a] == row[b] && a < b);
                      });
    for (int64_t i = 0; i < k; ++i) {
      values[r * k + i] = row[order[i]];
      indices[r * k + i] = order[i];
    }
  }
}

int64_t oneHot(const int32_t *indices, int64_t count, int64_t depth, float *out,
               int64_t firstClass, int64_t classes) {
  if (classes < 0)
    classes = depth;
  std::fill_n(out, count * depth, 0.0f);
  for (int64_t i = 0; i < count; ++i) {
    if (indices[i] < 0 || indices[i] >= classes)
      return i;
    int64_t at = int64_t(indices[i]) - firstClass;
    if (at >= 0 && at < depth)
      out[i * depth + at] = 1.0f;
  }
  return -1;
}

void reduce(const float *in, float *out, ReduceKind kind, int64_t outer,
            int64_t n, int64_t inner) {
  float init = kind == ReduceKind::Max   ? -std::numeric_limits<float>::infinity()
               : kind == ReduceKind::Min ? std::numeric_limits<float>::infinity()
                                         : 0.0f;
  for (int64_t o = 0; o < outer; ++o) {
    float *dst = out + o * inner;
    std::fill_n(dst, inner, init);
    for (int64_t j = 0; j < n; ++j) {
      const float *src = in + (o * n + j) * inner;
      for (int64_t i = 0; i < inner; ++i) {
        if (kind == ReduceKind::Max)
          dst[i] = std::max(dst[i], src[i]);
        else if (kind == ReduceKind::Min)
          dst[i] = std::min(dst[i], src[i]);
        else
          dst[i] += src[i];
      }
    }
    if (kind == ReduceKind::Mean)
      for (int64_t i = 0; i < inner; ++i)
        dst[i] /= static_cast<float>(n);
  }
}

} // namespace gai::cpu
