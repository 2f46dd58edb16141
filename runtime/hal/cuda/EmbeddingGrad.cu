// The embedding table's gradient: each id's rows of the upstream gradient
// summed into the table's row, in f32. By default by atomics, a thread an
// element, in whatever order the threads run. The fixed-order form
// (`--deterministic`) sorts the positions by id with CUB's radix sort, which
// is stable, so each id's positions keep their order, and one block sums
// each id's rows in that order: the same bits every run, at the cost of the
// sort and of a frequent id's rows summed by one block.
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>

namespace gai::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kAlignBytes = 256;

unsigned blocksFor(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}
int64_t alignBytes(int64_t n) {
  return (n + kAlignBytes - 1) / kAlignBytes * kAlignBytes;
}

/// The row of this shard's table that `id` adds to, or `rows` (past every
/// row) for another shard's id or a bad one, which is reported.
__device__ __forceinline__ uint32_t localRow(int32_t id, int64_t rows,
                                             int64_t firstRow, int64_t vocab,
                                             ErrorWord *error, int step,
                                             bool reports) {
  if (id < 0 || id >= vocab) {
    if (reports)
      report(error, kBadTokenId, step, id, 0);
    return static_cast<uint32_t>(rows);
  }
  const int64_t mine = id - firstRow;
  return static_cast<uint32_t>(mine >= 0 && mine < rows ? mine : rows);
}

/// sums[row of id] += grad[i], a thread an element.
template <typename T>
__global__ void embeddingGradAtomicKernel(const T *grad, int64_t rows,
                                          int64_t dim, const int32_t *ids,
                                          int64_t count, float *sums,
                                          ErrorWord *error, int step,
                                          int64_t firstRow, int64_t vocab) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count * dim)
    return;
  const int64_t position = i / dim, col = i % dim;
  const uint32_t row =
      localRow(ids[position], rows, firstRow, vocab, error, step, col == 0);
  if (row < rows)
    atomicAdd(sums + row * dim + col, toFloat(grad[i]));
}

/// The sort's keys (each position's row, `rows` for none) and values (the
/// positions).
__global__ void sortKeysKernel(const int32_t *ids, int64_t count, int64_t rows,
                               int64_t firstRow, int64_t vocab, uint32_t *keys,
                               uint32_t *positions, ErrorWord *error,
                               int step) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count)
    return;
  keys[i] = localRow(ids[i], rows, firstRow, vocab, error, step, true);
  positions[i] = static_cast<uint32_t>(i);
}

/// Each run of equal keys (a row's positions, in order) summed by the block
/// that holds its first: sums[row] = grad[p0] + grad[p1] + …, from 0.
template <typename T>
__global__ void sumSortedRowsKernel(const T *grad, int64_t dim,
                                    const uint32_t *keys,
                                    const uint32_t *positions, int64_t count,
                                    int64_t rows, float *sums) {
  for (int64_t i = blockIdx.x; i < count; i += gridDim.x) {
    const uint32_t key = keys[i];
    if (key >= rows || (i > 0 && keys[i - 1] == key))
      continue;
    int64_t end = i + 1;
    while (end < count && keys[end] == key)
      ++end;
    for (int64_t col = threadIdx.x; col < dim; col += blockDim.x) {
      float sum = 0.0f;
      for (int64_t j = i; j < end; ++j)
        sum += toFloat(grad[static_cast<int64_t>(positions[j]) * dim + col]);
      sums[key * dim + col] = sum;
    }
  }
}

/// Keys in [0, rows]: the bits the sort looks at.
int keyBits(int64_t rows) {
  int bits = 1;
  while (bits < 32 && (int64_t(1) << bits) <= rows)
    ++bits;
  return bits;
}

size_t sortTempBytes(int64_t count, int64_t rows) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const uint32_t *>(nullptr),
      static_cast<uint32_t *>(nullptr), static_cast<const uint32_t *>(nullptr),
      static_cast<uint32_t *>(nullptr), static_cast<int>(count), 0,
      keyBits(rows));
  return bytes;
}

/// The scratch's parts: a bf16 table's sums (at 0), then (fixed order) keys
/// and positions in and out, then the sort's own.
struct ScratchLayout {
  int64_t keys = 0, sortTemp = 0, total = 0;
};
ScratchLayout layoutOf(Elem e, int64_t rows, int64_t dim, int64_t count,
                       bool fixedOrder) {
  ScratchLayout l;
  int64_t at = e == Elem::BF16 ? alignBytes(rows * dim * 4) : 0;
  if (fixedOrder && count > 0) {
    l.keys = at;
    at += 4 * alignBytes(count * 4);
    l.sortTemp = at;
    at += alignBytes(static_cast<int64_t>(sortTempBytes(count, rows)));
  }
  l.total = at;
  return l;
}

__global__ void roundToBf16Kernel(const float *sums, __nv_bfloat16 *out,
                                  int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
       i < count; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(sums[i]);
}

template <typename T>
void sumRows(const T *grad, int64_t rows, int64_t dim, const int32_t *ids,
             int64_t count, float *to, uint8_t *scratch,
             const ScratchLayout &layout, bool fixedOrder, ErrorWord *error,
             int step, int64_t firstRow, int64_t vocab, cudaStream_t stream) {
  if (!fixedOrder) {
    embeddingGradAtomicKernel<<<blocksFor(count * dim), kThreads, 0, stream>>>(
        grad, rows, dim, ids, count, to, error, step, firstRow, vocab);
    return;
  }
  const int64_t part = alignBytes(count * 4);
  auto *keys = reinterpret_cast<uint32_t *>(scratch + layout.keys);
  auto *sortedKeys = reinterpret_cast<uint32_t *>(scratch + layout.keys + part);
  auto *positions =
      reinterpret_cast<uint32_t *>(scratch + layout.keys + 2 * part);
  auto *sortedPositions =
      reinterpret_cast<uint32_t *>(scratch + layout.keys + 3 * part);
  sortKeysKernel<<<blocksFor(count), kThreads, 0, stream>>>(
      ids, count, rows, firstRow, vocab, keys, positions, error, step);
  size_t tempBytes = static_cast<size_t>(layout.total - layout.sortTemp);
  cub::DeviceRadixSort::SortPairs(
      scratch + layout.sortTemp, tempBytes, static_cast<const uint32_t *>(keys),
      sortedKeys, static_cast<const uint32_t *>(positions), sortedPositions,
      static_cast<int>(count), 0, keyBits(rows), stream);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(count, 8192));
  sumSortedRowsKernel<<<blocks, kThreads, 0, stream>>>(
      grad, dim, sortedKeys, sortedPositions, count, rows, to);
}

} // namespace

int64_t embeddingGradScratchFloats(Elem e, int64_t rows, int64_t dim,
                                   int64_t count, bool fixedOrder) {
  return (layoutOf(e, rows, dim, count, fixedOrder).total + 3) / 4;
}

void embeddingGrad(Elem e, const void *grad, int64_t rows, int64_t dim,
                   const int32_t *ids, int64_t count, void *out, float *scratch,
                   bool fixedOrder, ErrorWord *error, int step,
                   int64_t firstRow, int64_t vocab, cudaStream_t stream) {
  const ScratchLayout layout = layoutOf(e, rows, dim, count, fixedOrder);
  auto *bytes = reinterpret_cast<uint8_t *>(scratch);
  // f32 tables sum in place; bf16 ones in f32 first, as a GEMM would.
  float *to = e == Elem::F32 ? static_cast<float *>(out)
                             : scratch;
  cudaMemsetAsync(to, 0, static_cast<size_t>(rows * dim) * sizeof(float),
                  stream);
  if (count * dim > 0) {
    if (e == Elem::BF16)
      sumRows(static_cast<const __nv_bfloat16 *>(grad), rows, dim, ids, count,
              to, bytes, layout, fixedOrder, error, step, firstRow, vocab,
              stream);
    else
      sumRows(static_cast<const float *>(grad), rows, dim, ids, count, to,
              bytes, layout, fixedOrder, error, step, firstRow, vocab, stream);
  }
  if (e == Elem::BF16)
    roundToBf16Kernel<<<static_cast<unsigned>(
                            std::min<int64_t>(blocksFor(rows * dim), 8192)),
                        kThreads, 0, stream>>>(
        to, static_cast<__nv_bfloat16 *>(out), rows * dim);
}

} // namespace gai::cuda
