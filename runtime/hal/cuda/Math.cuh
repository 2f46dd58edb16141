// Element conversions, activations and overlapped launches shared by the
// CUDA kernels.
#ifndef GAI_RUNTIME_HAL_CUDA_MATH_CUH
#define GAI_RUNTIME_HAL_CUDA_MATH_CUH

#include "hal/cuda/Kernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace gai::cuda {

/// Reports bad input: the first report of a run wins (see ErrorWord).
__device__ __forceinline__ void report(ErrorWord *error, int code, int step, int a, int b) {
  if (atomicCAS(&error->flag, 0, code) == 0) {
    error->step = step;
    error->a = a;
    error->b = b;
  }
}

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ float fromFloat<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

/// 16 bytes of T as floats: 4 for f32, 8 for bf16 (the pointer only
/// picks the type).
__device__ __forceinline__ void unpack16(uint4 v, float (&out)[8], const float *) {
  out[0] = __uint_as_float(v.x), out[1] = __uint_as_float(v.y);
  out[2] = __uint_as_float(v.z), out[3] = __uint_as_float(v.w);
}
__device__ __forceinline__ void unpack16(uint4 v, float (&out)[8], const __nv_bfloat16 *) {
  const __nv_bfloat16 *h = reinterpret_cast<const __nv_bfloat16 *>(&v);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    out[i] = __bfloat162float(h[i]);
}

/// The artifact's activations: 1 silu, 2 gelu (erf), 3 gelu (tanh), 4 relu.
__device__ __forceinline__ float activate(float x, int activation) {
  switch (activation) {
  case 1: return x / (1.0f + expf(-x));
  case 2: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
  case 3: {
    float inner = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(inner));
  }
  case 4: return fmaxf(x, 0.0f);
  default: return x;
  }
}

/// The sum of x over a warp's 32 lanes, in every lane.
__device__ __forceinline__ float warpSum(float x) {
  for (int offset = 16; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

/// A logit and its column as one integer that orders as greedy decoding
/// picks: the larger value first, on a tie the lower column, -0 equal to
/// +0. NaN gives 0, below every other key: it never wins.
__device__ __forceinline__ unsigned long long greedyPickKey(float v, int64_t column) {
  uint32_t bits = __float_as_uint(v);
  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return 0;
  if ((bits << 1) == 0) // -0 → +0, in integers: fast math may drop a float fix-up
    bits = 0;
  bits = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
  return static_cast<unsigned long long>(bits) << 32 |
         (0xffffffffu - static_cast<uint32_t>(column));
}
/// The column of a greedyPickKey; 0 for the key 0 (every logit NaN).
__device__ __forceinline__ int32_t greedyPickColumn(unsigned long long key) {
  return key == 0 ? 0 : static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(key));
}

/// Programmatic dependent launch (Hopper). A kernel launched with
/// launchOverlapped may start while the kernel before it (and, through
/// that one's early start, kernels further back) still runs. Before
/// waitForPriorKernels it may read only what no kernel of the stream still
/// in flight writes: model weights, or state an entry's caller wrote before
/// a full stream dependency (cache_ready). After it, it sees everything the
/// kernels before it wrote. letNextKernelStart lets a successor begin.
/// Both are no-ops before sm_90 and for kernels launched plainly.
__device__ __forceinline__ void waitForPriorKernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void letNextKernelStart() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

/// Loads issued before waitForPriorKernels (of what no kernel in flight
/// writes). Coherent and volatile on purpose: ptxas moves `.nc` loads past
/// the wait, and they then never overlap the kernel before. The 16-byte
/// one skips L1 (streamed weights, read once a step).
__device__ __forceinline__ int loadInt32BeforeWait(const int32_t *p) {
  int v;
  asm volatile("ld.global.b32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ uint4 loadBeforeWait(const void *p) {
  uint4 v;
  asm volatile("ld.global.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p)
               : "memory");
  return v;
}

/// What some launches add: dynamic shared memory, and blocks grouped into
/// thread-block clusters of `cluster` (sm_90; {0, 0, 0}: none).
struct LaunchExtras {
  size_t sharedBytes = 0;
  dim3 cluster = dim3(0, 0, 0);
};

/// Launches `kernel`, allowed to start before the previous kernel in the
/// stream finishes where overlapsLaunches() says so (see waitForPriorKernels
/// for what it may touch before its wait).
template <typename... Params, typename... Args>
void launchOverlapped(void (*kernel)(Params...), dim3 grid, dim3 block, LaunchExtras extras,
                      cudaStream_t stream, Args... args) {
  cudaLaunchAttribute attributes[2] = {};
  unsigned count = 0;
  if (extras.cluster.x > 0) {
    attributes[count].id = cudaLaunchAttributeClusterDimension;
    attributes[count].val.clusterDim.x = extras.cluster.x;
    attributes[count].val.clusterDim.y = extras.cluster.y;
    attributes[count++].val.clusterDim.z = extras.cluster.z;
  }
  if (overlapsLaunches()) {
    attributes[count].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[count++].val.programmaticStreamSerializationAllowed = 1;
  }
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = extras.sharedBytes;
  config.stream = stream;
  config.attrs = attributes;
  config.numAttrs = count;
  cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}
/// The same with no extras.
template <typename... Params, typename... Args>
void launchOverlapped(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                      Args... args) {
  launchOverlapped(kernel, grid, block, LaunchExtras{}, stream, args...);
}

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_MATH_CUH
