// Where an attention tensor's rows lie, shared by the commands and both
// backends' kernels.
#ifndef GAI_RUNTIME_HAL_ROWSTRIDES_H
#define GAI_RUNTIME_HAL_ROWSTRIDES_H

#include <cstdint>

#ifdef __CUDACC__
#define GAI_HOST_DEVICE __host__ __device__
#else
#define GAI_HOST_DEVICE
#endif

namespace gai {

/// In elements: between batches, between heads and between rows; the head
/// dim is contiguous. A packed [B, H, T, D] tensor has (H·T·D, T·D, D); a
/// [B, T, H, D] one (T·H·D, D, H·D).
struct RowStrides {
  int64_t batch = 0, head = 0, row = 0;
  /// Where row `t` of head `h` of batch `b` starts.
  GAI_HOST_DEVICE int64_t at(int64_t b, int64_t h, int64_t t) const {
    return b * batch + h * head + t * row;
  }
};

/// a·b, or INT64_MAX where that overflows: sizes come from artifacts before
/// they are checked, and a saturated stride fails the extent check after.
inline int64_t saturatingProduct(int64_t a, int64_t b) {
  int64_t product = 0;
  return __builtin_mul_overflow(a, b, &product) ? INT64_MAX : product;
}

/// The strides of a packed [batch, heads, rows, dim] tensor.
inline RowStrides packedStrides(int64_t heads, int64_t rows, int64_t dim) {
  const int64_t rowsOfDim = saturatingProduct(rows, dim);
  return {saturatingProduct(heads, rowsOfDim), rowsOfDim, dim};
}
/// `s`, or a packed tensor's strides when unset (all zero).
inline RowStrides orPacked(const RowStrides &s, int64_t heads, int64_t rows,
                           int64_t dim) {
  return s.row == 0 ? packedStrides(heads, rows, dim) : s;
}

/// Whether every row of a bf16 tensor at `base` with strides `s` starts on
/// a 16-byte boundary, as the tensor-core kernels' cp.async copies need.
inline bool bf16RowsAligned(const void *base, const RowStrides &s) {
  return reinterpret_cast<uintptr_t>(base) % 16 == 0 && s.batch % 8 == 0 &&
         s.head % 8 == 0 && s.row % 8 == 0;
}

} // namespace gai

#endif // GAI_RUNTIME_HAL_ROWSTRIDES_H
