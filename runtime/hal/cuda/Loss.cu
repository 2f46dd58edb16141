// The fused softmax cross-entropy and its gradient: a block per row (rows
// strided over a fixed grid), the max and the sum of exponentials in one
// pass (online, as flash attention keeps them), so the probabilities are
// never stored. The gradient's kernel can give the loss too: a training
// step then reads the logits twice instead of five times.
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <cfloat>
#include <cstdint>

namespace gai::cuda {
namespace {

constexpr int kThreads = 256;

/// Sum (or max) over the block; every thread gets the result.
template <bool Max>
__device__ float blockReduce(float x, float *scratch) {
  for (int o = 16; o > 0; o /= 2) {
    float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = Max ? fmaxf(x, y) : x + y;
  }
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads(); // scratch may still hold the last reduction
  if (lane == 0)
    scratch[warp] = x;
  __syncthreads();
  x = lane < blockDim.x / 32 ? scratch[lane] : (Max ? -FLT_MAX : 0.0f);
  for (int o = 16; o > 0; o /= 2) {
    float y = __shfl_xor_sync(0xffffffffu, x, o);
    x = Max ? fmaxf(x, y) : x + y;
  }
  return x;
}

/// Labels that count, for the mean; each block counts them itself.
__device__ float countedRows(const int32_t *labels, int64_t rows, int64_t ignore,
                             float *scratch) {
  float n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x)
    n += labels[r] != ignore;
  return blockReduce<false>(n, scratch);
}

/// The mean or sum of the rows' losses, in a fixed order: each block adds its
/// rows in turn and leaves its part; the block that arrives last adds the
/// parts in block order. Atomics into `loss` would add them in whatever order
/// the blocks finish, and a run would not repeat to the bit. `parts` holds
/// kMostLossBlocks floats and then the arrival counter, which starts and
/// ends at zero. Thread 0 of each block calls it.
__device__ void finishLoss(float blockLoss, float *loss, float *parts) {
  unsigned *arrived = reinterpret_cast<unsigned *>(parts + kMostLossBlocks);
  parts[blockIdx.x] = blockLoss;
  __threadfence(); // the part is visible before the arrival is
  if (atomicAdd(arrived, 1u) != gridDim.x - 1)
    return;
  __threadfence();
  float total = 0;
  for (unsigned b = 0; b < gridDim.x; ++b)
    total += __ldcg(parts + b);
  *loss = total;
  *arrived = 0; // re-armed for the next launch
}

/// Whether a row of `vocab` elements of T can be read 16 bytes at a time.
template <typename T> __device__ bool readsWide(const T *row, int64_t vocab) {
  return vocab % (16 / sizeof(T)) == 0 && reinterpret_cast<uintptr_t>(row) % 16 == 0;
}

/// max and log Σ exp(x - max) of one row, in f32 whatever the logits' type,
/// in one pass: each thread keeps its running max and its sum scaled to it.
/// Rows read 16 bytes a load where they can (8 bf16 or 4 f32): a warp of
/// 2-byte loads moves too little to keep the memory busy.
template <typename T>
__device__ void logSumExp(const T *x, int64_t vocab, float *scratch, float &max,
                          float &logSum) {
  float m = -FLT_MAX, sum = 0;
  auto add = [&](float v) {
    if (v > m) {
      sum = sum * __expf(m - v) + 1.0f;
      m = v;
    } else {
      sum += __expf(v - m);
    }
  };
  if (readsWide(x, vocab)) {
    constexpr int kLanes = 16 / sizeof(T);
    const auto *wide = reinterpret_cast<const uint4 *>(x);
    for (int64_t j = threadIdx.x; j < vocab / kLanes; j += blockDim.x) {
      float v[8];
      unpack16(wide[j], v, x);
#pragma unroll
      for (int i = 0; i < kLanes; ++i)
        add(v[i]);
    }
  } else {
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
      add(toFloat(x[j]));
  }
  max = blockReduce<true>(m, scratch);
  sum = m == -FLT_MAX ? 0.0f : sum * __expf(m - max);
  logSum = __logf(blockReduce<false>(sum, scratch));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
crossEntropyKernel(const T *logits, const int32_t *labels, int64_t rows, int64_t vocab,
                   int64_t ignore, int reduction, float *loss, float *parts,
                   ErrorWord *error, int step) {
  __shared__ float scratch[32];
  float counted = reduction == 0 ? countedRows(labels, rows, ignore, scratch) : 1.0f;
  float blockLoss = 0; // thread 0's: this block's rows, in order
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int32_t label = labels[r];
    if (label == ignore) {
      if (reduction == 2 && threadIdx.x == 0)
        loss[r] = 0;
      continue;
    }
    if (label < 0 || label >= vocab) {
      if (threadIdx.x == 0 && atomicCAS(&error->flag, 0, kBadLabel) == 0) {
        error->step = step;
        error->a = static_cast<int>(r);
        error->b = label;
      }
      continue;
    }
    const T *x = logits + r * vocab;
    float max, logSum;
    logSumExp(x, vocab, scratch, max, logSum);
    if (threadIdx.x == 0) {
      float value = max + logSum - toFloat(x[label]);
      if (reduction == 2)
        loss[r] = value;
      else
        blockLoss += value / fmaxf(counted, 1.0f);
    }
  }
  if (reduction != 2 && threadIdx.x == 0)
    finishLoss(blockLoss, loss, parts);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
crossEntropyGradKernel(const T *logits, const int32_t *labels, const float *grad,
                       int64_t rows, int64_t vocab, int64_t ignore, int reduction, T *out,
                       float *loss, float *parts, ErrorWord *error, int step) {
  __shared__ float scratch[32];
  float counted = reduction == 0 ? countedRows(labels, rows, ignore, scratch) : 1.0f;
  float blockLoss = 0; // thread 0's, as in crossEntropyKernel
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int32_t label = labels[r];
    T *o = out + r * vocab;
    if (label == ignore || label < 0 || label >= vocab) {
      if (label != ignore && threadIdx.x == 0 &&
          atomicCAS(&error->flag, 0, kBadLabel) == 0) {
        error->step = step;
        error->a = static_cast<int>(r);
        error->b = label;
      }
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
        o[j] = fromFloat<T>(0.0f);
      if (loss && reduction == 2 && threadIdx.x == 0)
        loss[r] = 0;
      continue;
    }
    const T *x = logits + r * vocab;
    float max, logSum;
    logSumExp(x, vocab, scratch, max, logSum);
    if (loss && threadIdx.x == 0) {
      // As crossEntropyKernel computes it.
      float value = max + logSum - toFloat(x[label]);
      if (reduction == 2)
        loss[r] = value;
      else
        blockLoss += value / fmaxf(counted, 1.0f);
    }
    float scale = (reduction == 2 ? grad[r] : grad[0]) / fmaxf(counted, 1.0f);
    const float shift = max + logSum;
    if (readsWide(x, vocab) && readsWide(o, vocab)) {
      constexpr int kLanes = 16 / sizeof(T);
      const auto *wide = reinterpret_cast<const uint4 *>(x);
      auto *wideOut = reinterpret_cast<uint4 *>(o);
      for (int64_t j = threadIdx.x; j < vocab / kLanes; j += blockDim.x) {
        float v[8];
        unpack16(wide[j], v, x);
        uint4 packed;
        T *lanes = reinterpret_cast<T *>(&packed);
#pragma unroll
        for (int i = 0; i < kLanes; ++i)
          lanes[i] = fromFloat<T>(
              (__expf(v[i] - shift) - (j * kLanes + i == label ? 1.0f : 0.0f)) * scale);
        wideOut[j] = packed;
      }
    } else {
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
        o[j] = fromFloat<T>((__expf(toFloat(x[j]) - shift) - (j == label ? 1.0f : 0.0f)) *
                            scale);
    }
  }
  if (loss && reduction != 2 && threadIdx.x == 0)
    finishLoss(blockLoss, loss, parts);
}

unsigned gridFor(int64_t rows) {
  return static_cast<unsigned>(rows < kMostLossBlocks ? rows : kMostLossBlocks);
}

} // namespace

void place(const void *in, void *out, int64_t outer, int64_t chunk, int64_t outStride,
           int64_t offset, cudaStream_t stream) {
  if (outer == 0 || chunk == 0)
    return;
  cudaMemcpy2DAsync(static_cast<uint8_t *>(out) + offset, static_cast<size_t>(outStride), in,
                    static_cast<size_t>(chunk), static_cast<size_t>(chunk),
                    static_cast<size_t>(outer), cudaMemcpyDeviceToDevice, stream);
}

void crossEntropy(Elem e, const void *logits, const int32_t *labels, int64_t rows,
                  int64_t vocab, int64_t ignore, int reduction, float *loss,
                  float *parts, ErrorWord *error, int step, cudaStream_t stream) {
  if (rows == 0) {
    if (reduction != 2)
      cudaMemsetAsync(loss, 0, sizeof(float), stream);
    return;
  }
  if (e == Elem::BF16)
    crossEntropyKernel<<<gridFor(rows), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16 *>(logits), labels, rows, vocab, ignore, reduction,
        loss, parts, error, step);
  else
    crossEntropyKernel<<<gridFor(rows), kThreads, 0, stream>>>(
        static_cast<const float *>(logits), labels, rows, vocab, ignore, reduction, loss,
        parts, error, step);
}

void crossEntropyGrad(Elem e, const void *logits, const int32_t *labels, const float *grad,
                      int64_t rows, int64_t vocab, int64_t ignore, int reduction, void *out,
                      ErrorWord *error, int step, cudaStream_t stream, float *loss,
                      float *parts) {
  if (rows == 0) {
    if (loss && reduction != 2)
      cudaMemsetAsync(loss, 0, sizeof(float), stream);
    return;
  }
  if (e == Elem::BF16)
    crossEntropyGradKernel<<<gridFor(rows), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16 *>(logits), labels, grad, rows, vocab, ignore,
        reduction, static_cast<__nv_bfloat16 *>(out), loss, parts, error, step);
  else
    crossEntropyGradKernel<<<gridFor(rows), kThreads, 0, stream>>>(
        static_cast<const float *>(logits), labels, grad, rows, vocab, ignore, reduction,
        static_cast<float *>(out), loss, parts, error, step);
}

} // namespace gai::cuda
