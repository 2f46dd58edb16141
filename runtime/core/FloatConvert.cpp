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

namespace {

/// One loop per format pair, so the per-element conversion inlines and the
/// loop vectorises (a generation step widens a vocabulary of logits).
template <typename In, typename Out, typename Convert>
void convertEach(const void *src, void *dst, size_t count, Convert convert) {
  auto in = static_cast<const In *>(src);
  auto out = static_cast<Out *>(dst);
  for (size_t i = 0; i < count; ++i)
    out[i] = convert(in[i]);
}

} // namespace

bool convertFloats(const void *src, DType from, void *dst, DType to,
                   size_t count) {
  if (!canConvertFloats(from, to))
    return false;
  if (from == to) {
    std::memmove(dst, src, count * (from == DType::F32 ? 4 : 2));
    return true;
  }
  if (to == DType::F32) {
    if (from == DType::BF16)
      convertEach<uint16_t, float>(src, dst, count, bf16ToFloat);
    else
      convertEach<uint16_t, float>(src, dst, count, f16ToFloat);
    return true;
  }
  auto narrow = [to](float x) {
    return to == DType::BF16 ? floatToBf16(x) : floatToF16(x);
  };
  if (from == DType::F32)
    convertEach<float, uint16_t>(src, dst, count, narrow);
  else if (from == DType::BF16)
    convertEach<uint16_t, uint16_t>(src, dst, count,
                                    [&](uint16_t h) { return narrow(bf16ToFloat(h)); });
  else
    convertEach<uint16_t, uint16_t>(src, dst, count,
                                    [&](uint16_t h) { return narrow(f16ToFloat(h)); });
  return true;
}

} // namespace gai
