// The weight formats of artifact.fbs's WeightFormat, made and read back.
#include "gai/Quantize.h"

#include "core/QuantizedRows.h"

#include <algorithm>
#include <cmath>

namespace gai {

const char *quantFormatName(QuantFormat format) {
  switch (format) {
  case QuantFormat::Int8:
    return "int8";
  case QuantFormat::Int4:
    return "int4";
  case QuantFormat::Fp8E4M3:
    return "fp8";
  }
  return "?";
}

std::optional<QuantFormat> parseQuantFormat(std::string_view name) {
  if (name == "int8")
    return QuantFormat::Int8;
  if (name == "int4")
    return QuantFormat::Int4;
  if (name == "fp8" || name == "fp8_e4m3")
    return QuantFormat::Fp8E4M3;
  return std::nullopt;
}

std::string quantScaleName(std::string_view weight) { return std::string(weight) + ".scale"; }
std::string quantZeroName(std::string_view weight) { return std::string(weight) + ".zero"; }

uint8_t floatToFp8E4M3(float value) {
  const uint8_t sign = std::signbit(value) ? 0x80 : 0;
  if (std::isnan(value))
    return 0x7F;
  float a = std::fabs(value);
  if (a <= 0x1p-10f) // half the smallest subnormal, 2^-9: ties go to 0
    return sign;
  int e;
  std::frexp(a, &e);
  int exponent = std::max(e - 1, -6); // below 2^-6 the quantum stays 2^-9
  float quantum = std::ldexp(1.0f, exponent - 3);
  auto m = static_cast<uint32_t>(std::nearbyint(a / quantum)); // ties to even
  if (m >= 16) {
    ++exponent;
    m = 8;
  }
  if (m < 8) // subnormal
    return sign | static_cast<uint8_t>(m);
  int field = exponent + 7;
  if (field > 15 || (field == 15 && m == 15)) // past 448 (S.1111.111 is NaN)
    return sign | 0x7E;
  return sign | static_cast<uint8_t>(field << 3) | static_cast<uint8_t>(m - 8);
}

float fp8E4M3ToFloat(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  const int field = (bits >> 3) & 15, m = bits & 7;
  if (field == 15 && m == 7)
    return std::nanf("");
  if (field == 0)
    return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(static_cast<float>(8 + m), field - 10);
}

namespace {

float absMax(const float *w, int64_t count) {
  float m = 0;
  for (int64_t i = 0; i < count; ++i)
    m = std::max(m, std::fabs(w[i]));
  return m;
}

void quantizeInt8(const float *w, QuantizedWeight &q) {
  q.values.resize(q.rows * q.cols);
  q.scale.resize(q.rows);
  for (int64_t r = 0; r < q.rows; ++r) {
    const float *row = w + r * q.cols;
    float amax = absMax(row, q.cols);
    float scale = amax > 0 ? amax / 127.0f : 1.0f;
    q.scale[r] = scale;
    for (int64_t c = 0; c < q.cols; ++c) {
      float v = std::clamp(std::nearbyint(row[c] / scale), -127.0f, 127.0f);
      q.values[r * q.cols + c] = static_cast<uint8_t>(static_cast<int8_t>(v));
    }
  }
}

void quantizeInt4(const float *w, QuantizedWeight &q) {
  const int64_t groups = q.cols / q.group;
  q.values.assign(q.rows * q.cols / 2, 0);
  q.scale.resize(q.rows * groups);
  q.zero.resize(q.rows * groups);
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const float *x = w + r * q.cols + g * q.group;
      // The range holds 0, so that 0 is exact and the zero point is an
      // integer in [0, 15].
      float lo = 0, hi = 0;
      for (int64_t i = 0; i < q.group; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
      }
      float scale = hi > lo ? (hi - lo) / 15.0f : 1.0f;
      float zero = std::clamp(std::nearbyint(-lo / scale), 0.0f, 15.0f);
      q.scale[r * groups + g] = scale;
      q.zero[r * groups + g] = static_cast<uint8_t>(zero);
      for (int64_t i = 0; i < q.group; ++i) {
        auto v = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] / scale) + zero, 0.0f, 15.0f));
        int64_t at = r * q.cols + g * q.group + i;
        q.values[at / 2] |= static_cast<uint8_t>(at % 2 ? v << 4 : v);
      }
    }
}

void quantizeFp8(const float *w, QuantizedWeight &q, bool perRow) {
  q.values.resize(q.rows * q.cols);
  q.scale.resize(perRow ? q.rows : 1);
  auto scaleOf = [](float amax) { return amax > 0 ? amax / 448.0f : 1.0f; };
  if (!perRow)
    q.scale[0] = scaleOf(absMax(w, q.rows * q.cols));
  for (int64_t r = 0; r < q.rows; ++r) {
    const float *row = w + r * q.cols;
    float scale = perRow ? (q.scale[r] = scaleOf(absMax(row, q.cols))) : q.scale[0];
    for (int64_t c = 0; c < q.cols; ++c)
      q.values[r * q.cols + c] = floatToFp8E4M3(row[c] / scale);
  }
}

} // namespace

QuantizedWeight quantizeWeight(const float *w, int64_t rows, int64_t cols, QuantFormat format,
                               int64_t group, bool fp8PerRow) {
  QuantizedWeight q;
  q.format = format;
  q.rows = rows;
  q.cols = cols;
  q.group = format == QuantFormat::Int4 ? group : 0;
  switch (format) {
  case QuantFormat::Int8:
    quantizeInt8(w, q);
    break;
  case QuantFormat::Int4:
    quantizeInt4(w, q);
    break;
  case QuantFormat::Fp8E4M3:
    quantizeFp8(w, q, fp8PerRow);
    break;
  }
  return q;
}

void dequantizeRow(QuantFormat format, const uint8_t *values, const float *scale,
                   const uint8_t *zero, int64_t row, int64_t cols, int64_t group,
                   bool perTensorScale, float *out) {
  switch (format) {
  case QuantFormat::Int8:
    return int8Row(values, scale, row, cols, out);
  case QuantFormat::Int4:
    return int4Row(values, scale, zero, row, cols, group, out);
  case QuantFormat::Fp8E4M3: {
    static const auto table = [] {
      std::vector<float> t(256);
      for (int i = 0; i < 256; ++i)
        t[i] = fp8E4M3ToFloat(static_cast<uint8_t>(i));
      return t;
    }();
    const uint8_t *q = values + row * cols;
    const float s = perTensorScale ? scale[0] : scale[row];
    for (int64_t c = 0; c < cols; ++c)
      out[c] = table[q[c]] * s;
    return;
  }
  }
}

QuantError quantizationError(const float *w, const QuantizedWeight &q) {
  std::vector<float> row(q.cols);
  double maxErr = 0, sumErr = 0, sumW = 0, amax = 0;
  const bool perTensor = q.format == QuantFormat::Fp8E4M3 && q.scale.size() == 1;
  for (int64_t r = 0; r < q.rows; ++r) {
    dequantizeRow(q.format, q.values.data(), q.scale.data(), q.zero.data(), r, q.cols, q.group,
                  perTensor, row.data());
    for (int64_t c = 0; c < q.cols; ++c) {
      double x = w[r * q.cols + c], e = std::fabs(x - row[c]);
      maxErr = std::max(maxErr, e);
      amax = std::max(amax, std::fabs(x));
      sumErr += e * e;
      sumW += x * x;
    }
  }
  QuantError error;
  error.maxRelative = amax > 0 ? maxErr / amax : 0;
  error.rmsRelative = sumW > 0 ? std::sqrt(sumErr / sumW) : 0;
  return error;
}

} // namespace gai
