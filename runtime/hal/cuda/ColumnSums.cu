// Column sums with every SM busy. reduce's thread a column loops over
// every row in turn when the columns are few, and a GEMM against a ones
// vector needed the ones and cuBLASLt's M = 1 kernels. Here each lane reads
// 16 bytes of a row, the warps of a block take rows in turn, and the rows
// are cut into slices so that every SM has blocks; a second kernel adds the
// slices.
#include "hal/cuda/ColumnSums.h"
#include "hal/cuda/Math.cuh"

#include <algorithm>

namespace gai::cuda {
namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;
constexpr int kInFlight = 4; // rows a lane has loads in flight for

template <typename T> constexpr int kVector = 16 / sizeof(T); // columns a lane

template <typename T> __device__ __forceinline__ void addVector(float (&acc)[kVector<T>], uint4 raw) {
  const T *x = reinterpret_cast<const T *>(&raw);
#pragma unroll
  for (int i = 0; i < kVector<T>; ++i)
    acc[i] += toFloat(x[i]);
}

/// Partial sums of rows [slice·rowsPer, ...) for a strip of 32·V columns:
/// partials[o, slice, c].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sliceSumsKernel(const T *in, float *partials, int64_t n, int64_t inner, int64_t rowsPer) {
  constexpr int V = kVector<T>;
  __shared__ float shared[kWarps][32 * V];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t column = (static_cast<int64_t>(blockIdx.x) * 32 + lane) * V;
  const int64_t slice = blockIdx.y, o = blockIdx.z;
  const int64_t first = slice * rowsPer, last = min(n, first + rowsPer);
  float acc[V] = {};
  if (column < inner) {
    const T *at = in + o * n * inner + column;
    int64_t j = first + warp;
    for (; j + (kInFlight - 1) * kWarps < last; j += kInFlight * kWarps) {
      uint4 raw[kInFlight];
#pragma unroll
      for (int u = 0; u < kInFlight; ++u)
        raw[u] = __ldg(reinterpret_cast<const uint4 *>(at + (j + u * kWarps) * inner));
#pragma unroll
      for (int u = 0; u < kInFlight; ++u)
        addVector<T>(acc, raw[u]);
    }
    for (; j < last; j += kWarps)
      addVector<T>(acc, __ldg(reinterpret_cast<const uint4 *>(at + j * inner)));
  }
#pragma unroll
  for (int i = 0; i < V; ++i)
    shared[warp][lane * V + i] = acc[i];
  __syncthreads();
  for (int c = threadIdx.x; c < 32 * V; c += kThreads) {
    const int64_t col = static_cast<int64_t>(blockIdx.x) * 32 * V + c;
    if (col >= inner)
      continue;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
      sum += shared[w][c];
    partials[(o * gridDim.y + slice) * inner + col] = sum;
  }
}

/// out[o, c] = scale · Σ_slice partials[o, slice, c].
template <typename T>
__global__ void addSlicesKernel(const float *partials, T *out, int64_t outer, int64_t inner,
                                int slices, float scale) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < outer * inner;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = i / inner, c = i % inner;
    const float *at = partials + o * slices * inner + c;
    float sum = 0.0f;
    for (int s = 0; s < slices; ++s)
      sum += at[s * inner];
    out[i] = fromFloat<T>(sum * scale);
  }
}

template <typename T>
void launch(const T *in, T *out, int64_t outer, int64_t n, int64_t inner, float scale,
            float *workspace, size_t workspaceBytes, cudaStream_t stream) {
  constexpr int V = kVector<T>;
  const int64_t strips = (inner + 32 * V - 1) / (32 * V);
  // Four blocks an SM, no more slices than 64-row pieces, partials within
  // the workspace.
  const int64_t wanted = 4 * static_cast<int64_t>(multiprocessorCount());
  int64_t slices = std::max<int64_t>(1, (wanted + outer * strips - 1) / (outer * strips));
  slices = std::min<int64_t>({slices, (n + 63) / 64, 65535,
                              static_cast<int64_t>(workspaceBytes / sizeof(float)) /
                                  std::max<int64_t>(1, outer * inner)});
  slices = std::max<int64_t>(slices, 1);
  const int64_t rowsPer = (n + slices - 1) / slices;
  sliceSumsKernel<T><<<dim3(static_cast<unsigned>(strips), static_cast<unsigned>(slices),
                            static_cast<unsigned>(outer)),
                       kThreads, 0, stream>>>(in, workspace, n, inner, rowsPer);
  const int64_t count = outer * inner;
  addSlicesKernel<T><<<static_cast<unsigned>(std::min<int64_t>((count + 255) / 256, 4096)), 256,
                       0, stream>>>(workspace, out, outer, inner, static_cast<int>(slices),
                                    scale);
}

} // namespace

bool columnSumsTake(int kind, int64_t outer, int64_t n, int64_t inner, const void *in,
                    size_t workspaceBytes) {
  // outer is the grid's z: at most 65535.
  return (kind == 0 || kind == 1) && n >= 64 && inner >= 64 && inner % 8 == 0 &&
         outer <= 65535 &&
         reinterpret_cast<uintptr_t>(in) % 16 == 0 &&
         static_cast<size_t>(outer * inner) * sizeof(float) <= workspaceBytes;
}

void columnSums(Elem e, const void *in, void *out, int64_t outer, int64_t n, int64_t inner,
                float scale, float *workspace, size_t workspaceBytes, cudaStream_t stream) {
  if (outer * inner == 0)
    return;
  if (e == Elem::BF16)
    launch(static_cast<const __nv_bfloat16 *>(in), static_cast<__nv_bfloat16 *>(out), outer, n,
           inner, scale, workspace, workspaceBytes, stream);
  else
    launch(static_cast<const float *>(in), static_cast<float *>(out), outer, n, inner, scale,
           workspace, workspaceBytes, stream);
}

} // namespace gai::cuda
