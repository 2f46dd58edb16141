// One row of an int8 or int4 weight as floats: the layout gai/Quantize.h
// defines, written so the loops vectorise, inline so that a caller built for
// wider vectors (the CPU's quantized GEMV) gets them at its width.
#ifndef GAI_RUNTIME_CORE_QUANTIZEDROWS_H
#define GAI_RUNTIME_CORE_QUANTIZEDROWS_H

#include <cstdint>

// Always inlined: a caller's clone for wider vectors would otherwise call
// the baseline copy.
#if defined(__GNUC__)
#define GAI_ROW_INLINE __attribute__((always_inline)) inline
#else
#define GAI_ROW_INLINE inline
#endif

namespace gai {

/// Row `row` of int8 values [rows, cols] with a scale a row.
GAI_ROW_INLINE void int8Row(const uint8_t *values, const float *scale, int64_t row, int64_t cols,
                    float *out) {
  const auto *q = reinterpret_cast<const int8_t *>(values) + row * cols;
  const float s = scale[row];
  for (int64_t c = 0; c < cols; ++c)
    out[c] = static_cast<float>(q[c]) * s;
}

/// Row `row` of int4 values, two a byte (the low nibble first), with a
/// scale and a zero point a group of `group` along the row.
GAI_ROW_INLINE void int4Row(const uint8_t *values, const float *scale, const uint8_t *zero, int64_t row,
                    int64_t cols, int64_t group, float *out) {
  const uint8_t *q = values + row * cols / 2;
  const int64_t groups = cols / group;
  for (int64_t g = 0; g < groups; ++g) {
    const float s = scale[row * groups + g];
    const float z = static_cast<float>(zero[row * groups + g]);
    const uint8_t *bytes = q + g * group / 2;
    float *to = out + g * group;
    for (int64_t i = 0; i < group / 2; ++i) {
      to[2 * i] = (static_cast<float>(bytes[i] & 15) - z) * s;
      to[2 * i + 1] = (static_cast<float>(bytes[i] >> 4) - z) * s;
    }
  }
}

} // namespace gai

#endif // GAI_RUNTIME_CORE_QUANTIZEDROWS_H
