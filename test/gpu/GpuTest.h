// Helpers shared by the gpu-labelled tests.
#ifndef GAI_TEST_GPU_GPUTEST_H
#define GAI_TEST_GPU_GPUTEST_H

#include "core/Executor.h"
#include "gai/FloatConvert.h"
#include "Bf16Inputs.h" // bf16Normals

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace gai {

inline bool haveGpu() { return cudaDeviceCount() > 0; }

#define SKIP_WITHOUT_GPU()                                                     \
  if (!::gai::haveGpu())                                                       \
  GTEST_SKIP() << "no CUDA GPU on this machine: the gpu tests need one"

/// The shape and masking of an attention test case (fields batch, heads,
/// kvHeads, queries, keys, dim, window, softcap) for the CPU reference's
/// cpu::AttentionArgs and the kernel's cuda::AttentionParams alike (they
/// share these field names).
template <typename Args, typename Case>
void describeAttention(Args &args, const Case &c, bool causal, const int32_t *queryStart) {
  args.batch = c.batch;
  args.heads = c.heads;
  args.kvHeads = c.kvHeads;
  args.queries = c.queries;
  args.keys = c.keys;
  args.headDim = args.valueDim = c.dim;
  args.scale = 1.0f / std::sqrt(static_cast<float>(c.dim));
  args.causal = causal;
  args.window = c.window;
  args.softcap = c.softcap;
  args.queryStart = queryStart;
}

/// `host` on the GPU as `dtype` (f32 or bf16); the caller frees it.
inline void *uploadAs(const std::vector<float> &host, DType dtype) {
  size_t elem = dtype == DType::BF16 ? 2 : 4;
  void *d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, host.size() * elem), cudaSuccess);
  std::vector<uint8_t> bytes(host.size() * elem);
  convertFloats(host.data(), DType::F32, bytes.data(), dtype, host.size());
  cudaMemcpy(d, bytes.data(), bytes.size(), cudaMemcpyHostToDevice);
  return d;
}

/// `count` elements of `dtype` on the GPU, as floats.
inline std::vector<float> downloadAs(const void *device, DType dtype, size_t count) {
  size_t elem = dtype == DType::BF16 ? 2 : 4;
  std::vector<uint8_t> bytes(count * elem);
  cudaMemcpy(bytes.data(), device, bytes.size(), cudaMemcpyDeviceToHost);
  std::vector<float> out(count);
  convertFloats(bytes.data(), dtype, out.data(), DType::F32, count);
  return out;
}

} // namespace gai

#endif // GAI_TEST_GPU_GPUTEST_H
