// Greedy sampling on the device: a decode step's argmax becomes the next
// step's input without a trip to the host, so steps run back to back.
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <cmath>

namespace gai::cuda {
namespace {

constexpr int kThreads = 1024;
static_assert(kThreads / 32 == 32, "one warp merges the warps' candidates");

/// A candidate logit; index < 0: none yet (NaNs never become one).
struct Candidate {
  float value;
  int index;
};

/// The larger value; on a tie the lower index, as the host's sampler picks.
__device__ __forceinline__ Candidate better(Candidate a, Candidate b) {
  if (b.index < 0)
    return a;
  if (a.index < 0 || b.value > a.value || (b.value == a.value && b.index < a.index))
    return b;
  return a;
}

/// Row `row`'s picked token (of `rows`) for ring slot `step`, and its
/// position moved on from `position`.
__device__ __forceinline__ void writeToken(const GreedyPick &pick, int64_t row, int64_t rows,
                                           int32_t step, int32_t position, int32_t token) {
  pick.ring[static_cast<int64_t>(step) * rows + row] = token;
  pick.tokens[row] = token;
  pick.positions[row] = min(position + 1, pick.lastPosition);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    greedyFeedKernel(const T *logits, int64_t vocab, GreedyPick pick) {
  __shared__ Candidate warps[kThreads / 32];
  // No letNextKernelStart: the next step's kernels read the tokens and
  // positions written here, and with cache_ready some read positions before
  // their own wait; they must not start until this kernel is done.
  waitForPriorKernels();
  const int64_t row = blockIdx.x;
  const T *x = logits + row * vocab;
  // What the end needs, loaded now: off the way out.
  int32_t step = 0, position = 0;
  if (threadIdx.x == 0) {
    step = pick.counters->step;
    position = pick.positions[row];
  }
  Candidate best{-INFINITY, -1};
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    float v = toFloat(x[i]);
    // The first candidate may be -inf; NaN compares false and is skipped.
    if (v > best.value || (best.index < 0 && v == best.value))
      best = Candidate{v, static_cast<int>(i)};
  }
  auto warpBest = [](Candidate c) {
    for (int offset = 16; offset > 0; offset /= 2) {
      Candidate other{__shfl_xor_sync(0xffffffffu, c.value, offset),
                      __shfl_xor_sync(0xffffffffu, c.index, offset)};
      c = better(c, other);
    }
    return c;
  };
  best = warpBest(best);
  if (threadIdx.x % 32 == 0)
    warps[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x >= 32)
    return;
  best = warpBest(warps[threadIdx.x]); // kThreads / 32 == 32 warps
  if (threadIdx.x != 0)
    return;
  // Every logit NaN: 0.
  writeToken(pick, row, gridDim.x, step, position, best.index < 0 ? 0 : best.index);
  // The last row to finish moves the ring on; every row read `step` first.
  __threadfence();
  GreedyCounters *counters = pick.counters;
  if (atomicAdd(&counters->rowsDone, 1u) == gridDim.x - 1) {
    counters->rowsDone = 0;
    counters->step = step + 1;
  }
}

/// Thread b finishes row b. No letNextKernelStart, as greedyFeedKernel.
__global__ void greedyFinishKernel(int batch, GreedyPick pick) {
  waitForPriorKernels();
  const int row = threadIdx.x;
  GreedyCounters *counters = pick.counters;
  const int32_t step = counters->step;
  if (row < batch) {
    writeToken(pick, row, batch, step, pick.positions[row],
               greedyPickColumn(counters->best[row]));
    counters->best[row] = 0;
  }
  __syncthreads(); // every thread has read `step`
  if (row == 0)
    counters->step = step + 1;
}

} // namespace

void greedyFinish(int64_t batch, const GreedyPick &pick, cudaStream_t stream) {
  launchOverlapped(greedyFinishKernel, dim3(1), dim3(32), stream, static_cast<int>(batch),
                   pick);
}

void greedyFeed(Elem e, const void *logits, int64_t batch, int64_t vocab,
                const GreedyPick &pick, cudaStream_t stream) {
  if (batch == 0)
    return;
  dim3 grid(static_cast<unsigned>(batch));
  if (e == Elem::BF16)
    launchOverlapped(greedyFeedKernel<__nv_bfloat16>, grid, dim3(kThreads), stream,
                     static_cast<const __nv_bfloat16 *>(logits), vocab, pick);
  else
    launchOverlapped(greedyFeedKernel<float>, grid, dim3(kThreads), stream,
                     static_cast<const float *>(logits), vocab, pick);
}

} // namespace gai::cuda
