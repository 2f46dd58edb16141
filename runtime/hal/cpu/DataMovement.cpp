// Gathers and scatters the plan needs around its kernels.
#include "hal/cpu/Kernels.h"

#include <algorithm>
#include <cstring>

namespace gai::cpu {

int64_t embedding(const float *table, int64_t rows, int64_t dim, const int32_t *ids,
                  int64_t count, float *out, int64_t firstRow, int64_t vocab) {
  if (vocab < 0)
    vocab = rows;
  for (int64_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      return i;
    int64_t row = int64_t(ids[i]) - firstRow;
    if (row >= 0 && row < rows)
      std::copy_n(table + row * dim, dim, out + i * dim);
    else
      std::fill_n(out + i * dim, dim, 0.0f);
  }
  return -1;
}

int64_t embeddingGrad(const float *grad, int64_t rows, int64_t dim, const int32_t *ids,
                      int64_t count, float *out, int64_t firstRow, int64_t vocab) {
  std::fill_n(out, rows * dim, 0.0f);
  for (int64_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      return i;
    int64_t row = int64_t(ids[i]) - firstRow;
    if (row >= 0 && row < rows)
      for (int64_t j = 0; j < dim; ++j)
        out[row * dim + j] += grad[i * dim + j];
  }
  return -1;
}

int64_t cacheWrite(float *cache, const float *update, const int32_t *start,
                   int64_t batch, int64_t heads, int64_t slots,
                   int64_t tokens, int64_t dim) {
  for (int64_t b = 0; b < batch; ++b) {
    if (start[b] < 0 || start[b] + tokens > slots)
      return b;
    for (int64_t h = 0; h < heads; ++h)
      std::copy_n(update + (b * heads + h) * tokens * dim, tokens * dim,
                  cache + ((b * heads + h) * slots + start[b]) * dim);
  }
  return -1;
}

int64_t take(const float *x, const int32_t *rows, int64_t batch, int64_t t,
             int64_t inner, float *out) {
  for (int64_t b = 0; b < batch; ++b) {
    if (rows[b] < 0 || rows[b] >= t)
      return b;
    std::copy_n(x + (b * t + rows[b]) * inner, inner, out + b * inner);
  }
  return -1;
}

void place(const void *in, void *out, int64_t outer, int64_t chunk,
           int64_t outStride, int64_t offset) {
  const auto *src = static_cast<const uint8_t *>(in);
  auto *dst = static_cast<uint8_t *>(out);
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(dst + o * outStride + offset, src + o * chunk, static_cast<size_t>(chunk));
}

} // namespace gai::cpu
