#include "gai/FloatConvert.h"

#include <cmath>
#include <cstring>

namespace gai {

float bf16ToFloat(uint16_t bits) {
  uint32_t word = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &word, 4);
  return f;
}

uint16_t floatToBf16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, 4);
  if (std::isnan(value))
    return static_cast<uint16_t>((word >> 16) | 0x40); // stay a quiet NaN
  word += 0x7fff + ((word >> 16) & 1); // round to nearest even
  return static_cast<uint16_t>(word >> 16);
}

float f16ToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1f,
           mantissa = h & 0x3ff;
  uint32_t word;
  if (exponent == 0x1f) {
    word = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent == 0) {
    float f = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -f : f;
  } else {
    word = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &word, 4);
  return f;
}

uint16_t floatToF16(float value) {
  uint32_t word;
  std::memcpy(&word, &value, 4);
  uint16_t sign = static_cast<uint16_t>((word >> 16) & 0x8000);
  float a = std::fabs(value);
  if (std::isnan(value))
    return sign | 0x7e00;
  if (a >= 65520.0f)
    return sign | 0x7c00;
  if (a < 6.103515625e-05f) // subnormal: multiples of 2^-24
    return sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.0f));
  uint32_t bits = word & 0x7fffffffu;
  bits += 0xfff + ((bits >> 13) & 1);
  return sign | static_cast<uint16_t>((bits >> 13) - (112 << 10));
}

static bool isConvertible(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

bool canConvertFloats(DType from, DType to) {
  return isConvertible(from) && isConvertible(to);
}

bool convertFloats(const void *src, DType from, void *dst, DType to,
                   size_t count) {
  if (!canConvertFloats(from, to))
    return false;
  auto in16 = static_cast<const uint16_t *>(src);
  auto in32 = static_cast<const float *>(src);
  auto out16 = static_cast<uint16_t *>(dst);
  auto out32 = static_cast<float *>(dst);
  for (size_t i = 0; i < count; ++i) {
    float x = from == DType::F32    ? in32[i]
              : from == DType::BF16 ? bf16ToFloat(in16[i])
                                    : f16ToFloat(in16[i]);
    if (to == DType::F32)
      out32[i] = x;
    else
      out16[i] = to == DType::BF16 ? floatToBf16(x) : floatToF16(x);
  }
  return true;
}

} // namespace gai
