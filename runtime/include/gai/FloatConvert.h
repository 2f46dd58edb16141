// Converting tensors between float formats (f32, f16, bf16), rounding to
// nearest even: for weights stored in another precision than the model's.
#ifndef GAI_FLOATCONVERT_H
#define GAI_FLOATCONVERT_H

#include "gai/Safetensors.h"

#include <cstddef>
#include <cstdint>

namespace gai {

/// Whether convertFloats handles `from` → `to`.
bool canConvertFloats(DType from, DType to);

/// Converts `count` elements; false (and nothing written) when
/// canConvertFloats(from, to) is false.
bool convertFloats(const void *src, DType from, void *dst, DType to,
                   size_t count);

float bf16ToFloat(uint16_t bits);
uint16_t floatToBf16(float value);
float f16ToFloat(uint16_t bits);
uint16_t floatToF16(float value);

} // namespace gai

#endif // GAI_FLOATCONVERT_H
