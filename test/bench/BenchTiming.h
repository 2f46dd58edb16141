// What the GPU benchmarks share: event timing of a launch sequence,
// copying bf16 inputs to the device, and a projection's GEMM.
#ifndef GAI_TEST_BENCH_BENCHTIMING_H
#define GAI_TEST_BENCH_BENCHTIMING_H

#include "hal/cuda/Gemm.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace gai::bench {

/// Milliseconds per call of `run` on `stream`, over `iters` calls after
/// `warmup` untimed ones.
inline double timeMs(const std::function<void()> &run, cudaStream_t stream, int iters,
                     int warmup) {
  for (int i = 0; i < warmup; ++i)
    run();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < iters; ++i)
    run();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / iters;
}

/// A device copy of bf16 values (as their 16-bit patterns).
inline void *upload(const std::vector<uint16_t> &v) {
  void *d = nullptr;
  cudaMalloc(&d, v.size() * 2);
  cudaMemcpy(d, v.data(), v.size() * 2, cudaMemcpyHostToDevice);
  return d;
}

/// C[m, n] = X[m, k]·Wᵀ for W [n, k] fixed across runs, in gai's terms.
inline cuda::GemmDesc projection(void *x, void *w, void *c, int64_t m, int64_t n, int64_t k) {
  cuda::GemmDesc desc;
  desc.a = x;
  desc.b = w;
  desc.c = c;
  desc.m = m;
  desc.n = n;
  desc.k = k;
  desc.transposeB = true;
  desc.constantB = true;
  return desc;
}

} // namespace gai::bench

#endif // GAI_TEST_BENCH_BENCHTIMING_H
