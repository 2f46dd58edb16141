// Weight quantization: the formats of artifact.fbs's WeightFormat, made
// from float weights and read back. gaic quantizes with these at compile
// time; the CPU backend and `gai-run init` use them too, so there is one
// definition of each format.
#ifndef GAI_QUANTIZE_H
#define GAI_QUANTIZE_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gai {

enum class QuantFormat { Int8, Int4, Fp8E4M3 };

/// "int8", "int4", "fp8"; and back (nullopt for anything else).
const char *quantFormatName(QuantFormat format);
std::optional<QuantFormat> parseQuantFormat(std::string_view name);

/// The companion tensors of quantized weight `weight`: its scales and (int4)
/// zero points, named `<weight>.scale` and `<weight>.zero` in artifacts and
/// in quantized safetensors files.
std::string quantScaleName(std::string_view weight);
std::string quantZeroName(std::string_view weight);

/// A weight [n, k] quantized by rows (see artifact.fbs's WeightFormat for
/// the layouts): int8 values [n, k]; int4 values two a byte [n, k / 2] with
/// zero points [n, k / group]; fp8 e4m3 values [n, k]. Scales are f32 [n]
/// (int8, fp8 per row), [n, k / group] (int4) or [1] (fp8 per tensor).
struct QuantizedWeight {
  QuantFormat format = QuantFormat::Int8;
  int64_t rows = 0, cols = 0, group = 0;
  std::vector<uint8_t> values;
  std::vector<float> scale;
  std::vector<uint8_t> zero;
};

/// Rounds `w` ([rows, cols], row-major f32) to nearest in `format`:
/// int8 symmetric with scale max|row| / 127; int4 asymmetric over each
/// group's range widened to hold 0 (so zero is exact and the zero point an
/// integer in 0..15), scale range / 15; fp8 e4m3 with scale amax / 448 per
/// tensor (`fp8PerRow` false) or per row. `group` (int4) must divide cols.
QuantizedWeight quantizeWeight(const float *w, int64_t rows, int64_t cols, QuantFormat format,
                               int64_t group = 0, bool fp8PerRow = false);

/// Row `row` of the dequantized weight, `cols` floats into `out`.
void dequantizeRow(QuantFormat format, const uint8_t *values, const float *scale,
                   const uint8_t *zero, int64_t row, int64_t cols, int64_t group,
                   bool perTensorScale, float *out);

/// How far a dequantized weight is from the original: the largest
/// |w − ŵ| over max |w|, and sqrt(Σ(w − ŵ)² / Σw²).
struct QuantError {
  double maxRelative = 0, rmsRelative = 0;
};
QuantError quantizationError(const float *w, const QuantizedWeight &q);

uint8_t floatToFp8E4M3(float value); ///< nearest even, saturating at ±448
float fp8E4M3ToFloat(uint8_t bits);

} // namespace gai

#endif // GAI_QUANTIZE_H
