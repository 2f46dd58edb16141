// 2:4 sparse weights (artifact.fbs's Sparse24) decompressed into a dense
// scratch matrix for cuBLASLt, until sparse GEMMs read them as they are:
// reads n·k/2 values and n·k/8 metadata bytes, writes n·k bf16 or f32; no
// FLOPs. Memory bound; not yet measured on a GPU.
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <cuda_bf16.h>

namespace gai::cuda {
namespace {

constexpr int kThreads = 256;

/// out[row, 8j : 8j + 8] from metadata byte j of the row (two groups of
/// four): zeros, then each group's two values at their positions, the
/// second last (as gai/Sparsity.h's decompress24Row).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    decompress24Kernel(const T *values, const uint8_t *meta, int64_t n, int64_t k, T *out) {
  const int64_t bytesPerRow = k / 8;
  const int64_t at = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (at >= n * bytesPerRow)
    return;
  const int64_t row = at / bytesPerRow, first = at % bytesPerRow * 8;
  const uint32_t byte = meta[at];
  const T *kept = values + row * (k / 2) + first / 2;
  alignas(16) T dense[8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
    dense[i] = fromFloat<T>(0.0f);
#pragma unroll
  for (int g = 0; g < 2; ++g) {
    const uint32_t nibble = byte >> (4 * g) & 0xFu;
    dense[4 * g + (nibble & 3u)] = kept[2 * g];
    dense[4 * g + (nibble >> 2)] = kept[2 * g + 1];
  }
  // 8 · sizeof(T) bytes at a multiple of them: out is 16-byte aligned.
  auto *to = reinterpret_cast<uint4 *>(out + row * k + first);
  const auto *from = reinterpret_cast<const uint4 *>(dense);
#pragma unroll
  for (int i = 0; i < static_cast<int>(8 * sizeof(T) / 16); ++i)
    to[i] = from[i];
}

} // namespace

void decompress24(Elem e, const void *values, const uint8_t *meta, int64_t n, int64_t k,
                  void *out, cudaStream_t stream) {
  const int64_t bytes = n * (k / 8);
  if (bytes == 0)
    return;
  const auto blocks = static_cast<unsigned>((bytes + kThreads - 1) / kThreads);
  if (e == Elem::BF16)
    decompress24Kernel<<<blocks, kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16 *>(values), meta, n, k,
        static_cast<__nv_bfloat16 *>(out));
  else
    decompress24Kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float *>(values),
                                                         meta, n, k, static_cast<float *>(out));
}

} // namespace gai::cuda
