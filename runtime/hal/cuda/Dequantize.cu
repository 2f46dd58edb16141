// Prefill-sized GEMMs over quantized weights run cuBLASLt on what these
// kernels make: the weights dequantized into a scratch matrix (reads
// n·k·bits/8 bytes and the scales, writes n·k bf16 or f32; no FLOPs to
// speak of), or, for fp8 weights, A in e4m3 (reads m·k bf16 twice, writes
// m·k bytes): a scale a row of A where cuBLASLt takes vectors of scales
// (one launch), else one for all of A (two). Memory bound.
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>

namespace gai::cuda {
namespace {

constexpr int kThreads = 256;

/// An e4m3 byte's value (subnormals too): its bits where f32 keeps its
/// low exponent bits, times the 2^120 between the two biases.
__device__ __forceinline__ float e4m3Value(uint32_t byte) {
  return __uint_as_float((byte & 0x7Fu) << 20 | (byte & 0x80u) << 24) * 0x1p120f;
}

/// out[row, i : i + Word] = the dequantized weights of one 4-byte word of q
/// (8 weights for int4, 4 otherwise): a thread a word.
template <WeightFormat F, typename T>
__global__ void __launch_bounds__(kThreads)
    dequantizeKernel(const uint32_t *q, QuantizedWeights quant, int64_t n, int64_t k, T *out) {
  constexpr int kWordK = F == WeightFormat::Int4 ? 8 : 4;
  const int64_t wordsPerRow = k / kWordK;
  const int64_t word = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
  if (word >= n * wordsPerRow)
    return;
  const int64_t row = word / wordsPerRow, first = word % wordsPerRow * kWordK;
  const uint32_t x = q[word];
  float w[kWordK];
  if constexpr (F == WeightFormat::Int4) {
    const int64_t at = row * (k / quant.group) + first / quant.group;
    const float scale = quant.scale[at], zero = quant.zero[at];
#pragma unroll
    for (int i = 0; i < 8; ++i)
      w[i] = (static_cast<float>(x >> (4 * i) & 0xFu) - zero) * scale;
  } else {
    const float scale = quant.scale[quant.perTensor ? 0 : row];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t byte = x >> (8 * i) & 0xFFu;
      w[i] = (F == WeightFormat::Int8 ? static_cast<float>(static_cast<int8_t>(byte))
                                      : e4m3Value(byte)) *
             scale;
    }
  }
  T values[kWordK];
#pragma unroll
  for (int i = 0; i < kWordK; ++i)
    values[i] = fromFloat<T>(w[i]);
  // kWordK · sizeof(T) bytes at a multiple of them (k is a multiple of 8).
  constexpr int kBytes = kWordK * sizeof(T);
  auto *to = reinterpret_cast<uint8_t *>(out + row * k + first);
  const auto *from = reinterpret_cast<const uint8_t *>(values);
#pragma unroll
  for (int i = 0; i < kBytes; i += kBytes >= 16 ? 16 : 8) {
    if constexpr (kBytes >= 16)
      *reinterpret_cast<uint4 *>(to + i) = *reinterpret_cast<const uint4 *>(from + i);
    else
      *reinterpret_cast<uint2 *>(to + i) = *reinterpret_cast<const uint2 *>(from + i);
  }
}

template <WeightFormat F>
void launchDequantize(Elem e, const void *q, const QuantizedWeights &quant, int64_t n,
                      int64_t k, void *out, cudaStream_t stream) {
  constexpr int64_t kWordK = F == WeightFormat::Int4 ? 8 : 4;
  const int64_t words = n * (k / kWordK);
  const auto blocks = static_cast<unsigned>((words + kThreads - 1) / kThreads);
  const auto *words32 = static_cast<const uint32_t *>(q);
  if (e == Elem::BF16)
    dequantizeKernel<F><<<blocks, kThreads, 0, stream>>>(
        words32, quant, n, k, static_cast<__nv_bfloat16 *>(out));
  else
    dequantizeKernel<F><<<blocks, kThreads, 0, stream>>>(words32, quant, n, k,
                                                          static_cast<float *>(out));
}

/// The largest of a block's `value`s, in every thread.
__device__ __forceinline__ float blockMax(float value) {
  __shared__ float warps[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  if (threadIdx.x % 32 == 0)
    warps[threadIdx.x / 32] = value;
  __syncthreads();
  value = warps[0];
#pragma unroll
  for (int w = 1; w < kThreads / 32; ++w)
    value = fmaxf(value, warps[w]);
  return value;
}

/// partials[b] = the largest |a| that block b's threads see, 8 a step.
__global__ void __launch_bounds__(kThreads)
    amaxKernel(const uint4 *a, int64_t vectors, float *partials) {
  float largest = 0.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < vectors;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    float x[8];
    unpack16(a[i], x, static_cast<const __nv_bfloat16 *>(nullptr));
#pragma unroll
    for (int j = 0; j < 8; ++j)
      largest = fmaxf(largest, fabsf(x[j]));
  }
  largest = blockMax(largest);
  if (threadIdx.x == 0)
    partials[blockIdx.x] = largest;
}

/// out = e4m3(a · 448 / amax), saturating, with amax the largest partial
/// (each block reduces them: no second launch, no atomics); scale[0] =
/// amax / 448, what cuBLASLt multiplies back (1 for an all-zero A).
__global__ void __launch_bounds__(kThreads)
    toFp8Kernel(const uint4 *a, int64_t vectors, const float *partials, int count,
                uint2 *out, float *scale) {
  float amax = 0.0f;
  for (int i = threadIdx.x; i < count; i += kThreads)
    amax = fmaxf(amax, partials[i]);
  amax = blockMax(amax);
  const float inverse = amax > 0.0f ? 448.0f / amax : 1.0f;
  if (blockIdx.x == 0 && threadIdx.x == 0)
    *scale = amax > 0.0f ? amax / 448.0f : 1.0f;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x; i < vectors;
       i += static_cast<int64_t>(gridDim.x) * kThreads) {
    float x[8];
    unpack16(a[i], x, static_cast<const __nv_bfloat16 *>(nullptr));
    uint32_t packed[2] = {};
#pragma unroll
    for (int j = 0; j < 8; j += 2) {
      const __nv_fp8x2_storage_t pair = __nv_cvt_float2_to_fp8x2(
          make_float2(x[j] * inverse, x[j + 1] * inverse), __NV_SATFINITE, __NV_E4M3);
      packed[j / 4] |= static_cast<uint32_t>(pair) << (16 * (j / 2 % 2));
    }
    out[i] = make_uint2(packed[0], packed[1]);
  }
}

/// Two e4m3 from x[j], x[j + 1] times `inverse`, saturating.
__device__ __forceinline__ uint32_t fp8Pair(const float *x, float inverse) {
  return __nv_cvt_float2_to_fp8x2(make_float2(x[0] * inverse, x[1] * inverse), __NV_SATFINITE,
                                  __NV_E4M3);
}

struct Fp8ScaleFills {
  Fp8ScaleFill fill[kFp8ScaleFills];
  int count;
};

/// A warp a row of A [m, k] (bf16, k / 8 vectors a row): the row's amax,
/// then the row in e4m3 times 448 / amax, and rowScales[r] = amax / 448 (1
/// for a zero row). The blocks also write `fills` (outer-vector weight
/// scales). With PerLane > 0 (at least the row's vectors over 32), each
/// lane loads all its vectors of the row before using any: one wait for
/// memory, where a loop of loads and uses waits once a vector. PerLane 0
/// loops, reading the row again from L1 or L2 for the second pass.
template <int PerLane>
__global__ void __launch_bounds__(kThreads)
    toFp8RowsKernel(const uint4 *a, int64_t m, int64_t vectors, uint2 *out, float *rowScales,
                    Fp8ScaleFills fills) {
  for (int f = 0; f < fills.count; ++f)
    for (int64_t i = blockIdx.x * static_cast<int64_t>(kThreads) + threadIdx.x;
         i < fills.fill[f].n; i += static_cast<int64_t>(gridDim.x) * kThreads)
      fills.fill[f].out[i] = *fills.fill[f].tensorScale;
  const int64_t row = blockIdx.x * static_cast<int64_t>(kThreads / 32) + threadIdx.x / 32;
  if (row >= m)
    return;
  const int lane = threadIdx.x % 32;
  const uint4 *in = a + row * vectors;
  auto store = [&](int64_t i, uint4 v, float inverse) {
    float x[8];
    unpack16(v, x, static_cast<const __nv_bfloat16 *>(nullptr));
    out[row * vectors + i] =
        make_uint2(fp8Pair(x, inverse) | fp8Pair(x + 2, inverse) << 16,
                   fp8Pair(x + 4, inverse) | fp8Pair(x + 6, inverse) << 16);
  };
  auto largestOf = [](uint4 v, float largest) {
    float x[8];
    unpack16(v, x, static_cast<const __nv_bfloat16 *>(nullptr));
#pragma unroll
    for (int j = 0; j < 8; ++j)
      largest = fmaxf(largest, fabsf(x[j]));
    return largest;
  };
  auto rowFactor = [&](float largest) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
      largest = fmaxf(largest, __shfl_xor_sync(0xffffffffu, largest, offset));
    if (lane == 0)
      rowScales[row] = largest > 0.0f ? largest / 448.0f : 1.0f;
    return largest > 0.0f ? 448.0f / largest : 1.0f;
  };
  if constexpr (PerLane > 0) {
    uint4 held[PerLane];
#pragma unroll
    for (int v = 0; v < PerLane; ++v) {
      const int64_t i = lane + 32 * v;
      held[v] = i < vectors ? in[i] : make_uint4(0, 0, 0, 0); // zeros leave amax as it is
    }
    float largest = 0.0f;
#pragma unroll
    for (int v = 0; v < PerLane; ++v)
      largest = largestOf(held[v], largest);
    const float inverse = rowFactor(largest);
#pragma unroll
    for (int v = 0; v < PerLane; ++v)
      if (lane + 32 * v < vectors)
        store(lane + 32 * v, held[v], inverse);
  } else {
    float largest = 0.0f;
    for (int64_t i = lane; i < vectors; i += 32)
      largest = largestOf(in[i], largest);
    const float inverse = rowFactor(largest);
    for (int64_t i = lane; i < vectors; i += 32)
      store(i, in[i], inverse);
  }
}

} // namespace

void dequantize(Elem e, const void *q, const QuantizedWeights &quant, int64_t n, int64_t k,
                void *out, cudaStream_t stream) {
  if (n == 0 || k == 0)
    return;
  switch (quant.format) {
  case WeightFormat::Int8:
    launchDequantize<WeightFormat::Int8>(e, q, quant, n, k, out, stream);
    break;
  case WeightFormat::Int4:
    launchDequantize<WeightFormat::Int4>(e, q, quant, n, k, out, stream);
    break;
  case WeightFormat::Fp8E4M3:
    launchDequantize<WeightFormat::Fp8E4M3>(e, q, quant, n, k, out, stream);
    break;
  case WeightFormat::Sparse24:
    decompress24(e, q, quant.meta, n, k, out, stream);
    break;
  case WeightFormat::Float: break;
  }
}

void quantizeFp8(const void *a, int64_t count, uint8_t *out, float *partials, float *scale,
                 int multiprocessors, cudaStream_t stream) {
  const int64_t vectors = count / 8;
  if (vectors == 0)
    return;
  const auto blocks = static_cast<int>(std::min<int64_t>(
      std::min<int64_t>(kFp8Partials, 4 * static_cast<int64_t>(std::max(multiprocessors, 1))),
      (vectors + kThreads - 1) / kThreads));
  const auto *in = static_cast<const uint4 *>(a);
  amaxKernel<<<blocks, kThreads, 0, stream>>>(in, vectors, partials);
  toFp8Kernel<<<blocks, kThreads, 0, stream>>>(in, vectors, partials, blocks,
                                                reinterpret_cast<uint2 *>(out), scale);
}

void quantizeFp8Rows(const void *a, int64_t m, int64_t k, uint8_t *out, float *rowScales,
                     const Fp8ScaleFill *fills, int fillCount, cudaStream_t stream) {
  if (m == 0 || k == 0)
    return;
  Fp8ScaleFills all{};
  all.count = std::min(fillCount, kFp8ScaleFills);
  for (int f = 0; f < all.count; ++f)
    all.fill[f] = fills[f];
  const auto blocks = static_cast<unsigned>((m + kThreads / 32 - 1) / (kThreads / 32));
  const int64_t vectors = k / 8, perLane = (vectors + 31) / 32;
  // Up to 24 vectors a lane stay in registers (llama-1b's 5632 wide rows
  // take 22; 32 spill on sm_90).
  auto launch = [&](auto kernel) {
    kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const uint4 *>(a), m, vectors,
                                            reinterpret_cast<uint2 *>(out), rowScales, all);
  };
  if (perLane <= 4)
    launch(toFp8RowsKernel<4>);
  else if (perLane <= 8)
    launch(toFp8RowsKernel<8>);
  else if (perLane <= 16)
    launch(toFp8RowsKernel<16>);
  else if (perLane <= 24)
    launch(toFp8RowsKernel<24>);
  else
    launch(toFp8RowsKernel<0>);
}

void fillFp8Scales(const Fp8ScaleFill *fills, int fillCount, cudaStream_t stream) {
  // No rows: the conversion kernel's blocks only fill.
  Fp8ScaleFills all{};
  all.count = std::min(fillCount, kFp8ScaleFills);
  int64_t most = 0;
  for (int f = 0; f < all.count; ++f) {
    all.fill[f] = fills[f];
    most = std::max(most, fills[f].n);
  }
  if (most == 0)
    return;
  const auto blocks = static_cast<unsigned>((most + kThreads - 1) / kThreads);
  toFp8RowsKernel<0><<<blocks, kThreads, 0, stream>>>(nullptr, 0, 0, nullptr, nullptr, all);
}

} // namespace gai::cuda
