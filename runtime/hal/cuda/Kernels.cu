// Data movement and epilogue kernels: one thread per element or row,
// memory-bound and small next to the GEMMs.
#include "hal/cuda/Kernels.h"
#include "hal/cuda/Math.cuh"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <type_traits>

namespace gai::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocksFor(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

template <typename T>
__global__ void embeddingKernel(const T *table, int64_t rows, int64_t dim,
                                const int32_t *ids, int64_t count, T *out,
                                ErrorWord *error, int step, int64_t firstRow,
                                int64_t vocab) {
  letNextKernelStart();
  waitForPriorKernels();
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count * dim)
    return;
  int64_t row = i / dim, col = i % dim;
  int32_t id = ids[row];
  if (id < 0 || id >= vocab) {
    if (col == 0)
      report(error, kBadTokenId, step, id, 0);
    return;
  }
  int64_t mine = id - firstRow;
  out[i] = mine >= 0 && mine < rows ? table[mine * dim + col] : fromFloat<T>(0.0f);
}

/// Moves `Word`s: `dim` counts words of a row. Thread i works on write
/// i / n of `count`.
template <typename Word>
__global__ void cacheWriteKernel(Word *cache0, const Word *update0, Word *cache1,
                                 const Word *update1, const int32_t *start, int64_t batch,
                                 int64_t heads, int64_t slots, int64_t tokens, int64_t dim,
                                 ErrorWord *error, int step) {
  letNextKernelStart();
  waitForPriorKernels();
  const int64_t n = batch * heads * tokens * dim;
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const bool second = i >= n;
  if (second)
    i -= n;
  if (i >= n || (second && !cache1))
    return;
  Word *cache = second ? cache1 : cache0;
  const Word *update = second ? update1 : update0;
  int64_t d = i % dim, t = (i / dim) % tokens, h = (i / (dim * tokens)) % heads,
          b = i / (dim * tokens * heads);
  int32_t s = start[b];
  if (s < 0 || s + tokens > slots) {
    if (!second && i % (heads * tokens * dim) == 0)
      report(error, kBadCacheWrite, step, static_cast<int>(b), s);
    return;
  }
  cache[((b * heads + h) * slots + s + t) * dim + d] = update[i];
}

__global__ void takeKernel(const uint32_t *x, const int32_t *rows, int64_t batch,
                           int64_t t, int64_t inner, uint32_t *out,
                           ErrorWord *error, int step) {
  letNextKernelStart();
  waitForPriorKernels();
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= batch * inner)
    return;
  int64_t b = i / inner, c = i % inner;
  int32_t r = rows[b];
  if (r < 0 || r >= t) {
    if (c == 0)
      report(error, kBadTakeRow, step, static_cast<int>(b), r);
    return;
  }
  out[i] = x[(b * t + r) * inner + c];
}

/// Copies element `i` of the output from the input offset `map` gives.
template <typename Word, typename Map>
__global__ void gatherKernel(const Word *in, Word *out, int64_t count, Map map) {
  letNextKernelStart();
  waitForPriorKernels();
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < count)
    out[i] = in[map(i)];
}

struct TransposeMap {
  Shape outShape, inStrides; // in strides permuted to the output's order
  __device__ int64_t operator()(int64_t i) const {
    int64_t offset = 0;
    for (int64_t d = outShape.rank - 1; d >= 0; --d) {
      offset += (i % outShape.dims[d]) * inStrides.dims[d];
      i /= outShape.dims[d];
    }
    return offset;
  }
};

struct SliceMap {
  Shape sizes, inStrides, offsets;
  __device__ int64_t operator()(int64_t i) const {
    int64_t offset = 0;
    for (int64_t d = sizes.rank - 1; d >= 0; --d) {
      offset += ((i % sizes.dims[d]) + offsets.dims[d]) * inStrides.dims[d];
      i /= sizes.dims[d];
    }
    return offset;
  }
};

template <typename Map>
void gather(const void *in, void *out, int64_t elementBytes, int64_t count,
            const Map &map, cudaStream_t stream) {
  if (count == 0)
    return;
  switch (elementBytes) {
  case 1:
    launchOverlapped(gatherKernel<uint8_t, Map>, blocksFor(count), kThreads, stream,
                     static_cast<const uint8_t *>(in), static_cast<uint8_t *>(out), count, map);
    break;
  case 2:
    launchOverlapped(gatherKernel<uint16_t, Map>, blocksFor(count), kThreads, stream,
                     static_cast<const uint16_t *>(in), static_cast<uint16_t *>(out), count, map);
    break;
  case 8:
    launchOverlapped(gatherKernel<uint64_t, Map>, blocksFor(count), kThreads, stream,
                     static_cast<const uint64_t *>(in), static_cast<uint64_t *>(out), count, map);
    break;
  case 16:
    launchOverlapped(gatherKernel<uint4, Map>, blocksFor(count), kThreads, stream,
                     static_cast<const uint4 *>(in), static_cast<uint4 *>(out), count, map);
    break;
  default:
    launchOverlapped(gatherKernel<uint32_t, Map>, blocksFor(count), kThreads, stream,
                     static_cast<const uint32_t *>(in), static_cast<uint32_t *>(out), count, map);
  }
}

/// The widest word (16, 8 or 4 bytes) dividing every size in `bytes` and
/// both pointers' addresses; `elementBytes` when none is wider. Gathers
/// that keep the last axis whole then move words, not elements.
int64_t widestWord(int64_t elementBytes, std::initializer_list<int64_t> bytes,
                   const void *in, const void *out) {
  for (int64_t word : {16, 8, 4}) {
    if (word <= elementBytes)
      break;
    bool fits = reinterpret_cast<uintptr_t>(in) % word == 0 &&
                reinterpret_cast<uintptr_t>(out) % word == 0;
    for (int64_t b : bytes)
      fits = fits && b % word == 0;
    if (fits)
      return word;
  }
  return elementBytes;
}

Shape stridesOf(const Shape &shape) {
  Shape s{};
  s.rank = shape.rank;
  int64_t stride = 1;
  for (int64_t d = shape.rank - 1; d >= 0; --d) {
    s.dims[d] = stride;
    stride *= shape.dims[d];
  }
  return s;
}

template <typename T>
__global__ void topkKernel(const T *in, int64_t rows, int64_t n, int64_t k,
                           T *values, int32_t *indices) {
  int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (row >= rows)
    return;
  constexpr int kMaxK = 32;
  float best[kMaxK];
  int32_t where[kMaxK];
  int64_t kept = 0;
  // Insertion in index order: ties keep the lower index first.
  for (int64_t j = 0; j < n; ++j) {
    float x = toFloat(in[row * n + j]);
    if (kept == k && !(x > best[k - 1]))
      continue;
    int64_t at = kept < k ? kept++ : k - 1;
    while (at > 0 && x > best[at - 1]) {
      best[at] = best[at - 1];
      where[at] = where[at - 1];
      --at;
    }
    best[at] = x;
    where[at] = static_cast<int32_t>(j);
  }
  for (int64_t i = 0; i < k; ++i) {
    values[row * k + i] = fromFloat<T>(best[i]);
    indices[row * k + i] = where[i];
  }
}

template <typename T>
__global__ void oneHotKernel(const int32_t *indices, int64_t count, int64_t depth,
                             T *out, ErrorWord *error, int step, int64_t firstClass,
                             int64_t classes) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count * depth)
    return;
  int32_t index = indices[i / depth];
  if (index < 0 || index >= classes) {
    if (i % depth == 0)
      report(error, kBadOneHot, step, index, 0);
    return;
  }
  out[i] = fromFloat<T>(index - firstClass == i % depth ? 1.0f : 0.0f);
}

/// Reductions over the middle of [outer, n, inner]: a block takes 256 / slices
/// neighbouring columns (coalesced rows) and `slices` threads a column, each
/// summing every slices-th row with eight loads in flight; shared memory
/// then combines the slices in a fixed order. Splitting the rows keeps the
/// GPU busy where there are few columns (a norm weight's gradient: 2048
/// columns over 2048 rows), which one thread a column left to 8 warps.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    reduceKernel(const T *in, T *out, int kind, int64_t outer, int64_t n, int64_t inner,
                 int slices) {
  __shared__ float partials[kThreads];
  const int columns = kThreads / slices;
  const int column = threadIdx.x % columns, slice = threadIdx.x / columns;
  const int64_t tiles = (inner + columns - 1) / columns;
  const int64_t o = blockIdx.x / tiles, c = blockIdx.x % tiles * columns + column;
  const bool inside = o < outer && c < inner;
  const float identity = kind == 2 ? -INFINITY : kind == 3 ? INFINITY : 0.0f;
  float acc = identity;
  if (inside) {
    const T *at = in + o * n * inner + c;
    const int64_t step = static_cast<int64_t>(slices) * inner;
    int64_t j = slice;
    if (kind <= 1) {
      // A serial loop waits out each load's latency in turn; eight partial
      // sums keep eight loads in flight, the tail's too (static indices
      // keep them in registers).
      float part[8] = {};
      for (; j + 7 * slices < n; j += 8 * slices)
#pragma unroll
        for (int u = 0; u < 8; ++u)
          part[u] += toFloat(at[(j + u * slices) * inner]);
#pragma unroll
      for (int u = 0; u < 8; ++u)
        if (j + u * slices < n)
          part[u] += toFloat(at[(j + u * slices) * inner]);
      acc = ((part[0] + part[1]) + (part[2] + part[3])) +
            ((part[4] + part[5]) + (part[6] + part[7]));
    } else {
      for (const T *row = at + j * inner; j < n; j += slices, row += step) {
        const float x = toFloat(*row);
        acc = kind == 2 ? fmaxf(acc, x) : fminf(acc, x);
      }
    }
  }
  partials[threadIdx.x] = acc;
  __syncthreads();
  if (slice != 0 || !inside)
    return;
  for (int s = 1; s < slices; ++s) {
    const float x = partials[s * columns + column];
    acc = kind <= 1 ? acc + x : kind == 2 ? fmaxf(acc, x) : fminf(acc, x);
  }
  out[o * inner + c] = fromFloat<T>(kind == 1 ? acc / static_cast<float>(n) : acc);
}

template <typename Word>
__global__ void fillKernel(Word *out, int64_t count, Word bits) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = bits;
}

template <typename T>
__global__ void activationResidualKernel(T *c, const T *residual, int activation,
                                         int64_t count) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count)
    return;
  float x = activate(toFloat(c[i]), activation);
  if (residual)
    x += toFloat(residual[i]);
  c[i] = fromFloat<T>(x);
}

/// activationResidualKernel 16 bytes per thread.
template <typename T>
__global__ void activationResidualVectorKernel(uint4 *c, const uint4 *residual,
                                               int activation, int64_t vectors) {
  constexpr int kVec = 16 / sizeof(T);
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= vectors)
    return;
  uint4 cv = c[i], rv = residual ? residual[i] : make_uint4(0, 0, 0, 0);
  T *ce = reinterpret_cast<T *>(&cv);
  const T *re = reinterpret_cast<const T *>(&rv);
#pragma unroll
  for (int j = 0; j < kVec; ++j)
    ce[j] = fromFloat<T>(activate(toFloat(ce[j]), activation) + toFloat(re[j]));
  c[i] = cv;
}

} // namespace

int deviceMajor() {
  constexpr int kMaxDevices = 64;
  // 0: not asked yet. Racing threads store the same value.
  static std::atomic<int> major[kMaxDevices] = {};
  int device = 0, value = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices)
    return 0;
  if ((value = major[device].load(std::memory_order_relaxed)) != 0)
    return value;
  if (cudaDeviceGetAttribute(&value, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return 0;
  major[device].store(value, std::memory_order_relaxed);
  return value;
}

bool wgmmaRuns() {
#if GAI_CUDA_WGMMA
  return deviceMajor() == 9;
#else
  return false;
#endif
}

int multiprocessorCount() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> count[kMaxDevices] = {}; // as deviceMajor's
  int device = 0, value = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices)
    return 1;
  if ((value = count[device].load(std::memory_order_relaxed)) != 0)
    return value;
  if (cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      value <= 0)
    return 1;
  count[device].store(value, std::memory_order_relaxed);
  return value;
}

static std::atomic<bool> overlapEnabled{true};

void setOverlapLaunches(bool enabled) { overlapEnabled.store(enabled); }

bool overlapsLaunches() {
  return overlapEnabled.load(std::memory_order_relaxed) && deviceMajor() >= 9;
}

void embedding(Elem e, const void *table, int64_t rows, int64_t dim,
               const int32_t *ids, int64_t count, void *out, ErrorWord *error,
               int step, int64_t firstRow, int64_t vocab, cudaStream_t stream) {
  if (count * dim == 0)
    return;
  if (e == Elem::BF16)
    launchOverlapped(embeddingKernel<__nv_bfloat16>, blocksFor(count * dim), kThreads, stream,
                     static_cast<const __nv_bfloat16 *>(table), rows, dim, ids, count,
                     static_cast<__nv_bfloat16 *>(out), error, step, firstRow, vocab);
  else
    launchOverlapped(embeddingKernel<float>, blocksFor(count * dim), kThreads, stream,
                     static_cast<const float *>(table), rows, dim, ids, count,
                     static_cast<float *>(out), error, step, firstRow, vocab);
}

void cacheWrite(Elem e, const CacheWrite *writes, int count, const int32_t *start,
                int64_t batch, int64_t heads, int64_t slots, int64_t tokens,
                int64_t dim, ErrorWord *error, int step, cudaStream_t stream) {
  if (batch * heads * tokens * dim == 0 || count <= 0)
    return;
  const CacheWrite none{nullptr, nullptr};
  const CacheWrite &first = writes[0], &second = count > 1 ? writes[1] : none;
  int64_t elementBytes = bytesOf(e);
  int64_t word = widestWord(elementBytes, {dim * elementBytes}, first.update, first.cache);
  if (count > 1)
    word = std::min(word, widestWord(elementBytes, {dim * elementBytes}, second.update,
                                     second.cache));
  int64_t words = dim * elementBytes / word;
  int64_t n = batch * heads * tokens * words;
  auto launch = [&](auto *typed) {
    using Word = std::remove_pointer_t<decltype(typed)>;
    launchOverlapped(cacheWriteKernel<Word>, blocksFor(n * (count > 1 ? 2 : 1)), kThreads,
                     stream, static_cast<Word *>(first.cache),
                     static_cast<const Word *>(first.update), static_cast<Word *>(second.cache),
                     static_cast<const Word *>(second.update), start, batch, heads, slots,
                     tokens, words, error, step);
  };
  switch (word) {
  case 16: launch(static_cast<uint4 *>(nullptr)); break;
  case 8: launch(static_cast<uint2 *>(nullptr)); break;
  case 4: launch(static_cast<uint32_t *>(nullptr)); break;
  default: launch(static_cast<uint16_t *>(nullptr)); break;
  }
}

void take(const uint32_t *x, const int32_t *rows, int64_t batch, int64_t t,
          int64_t innerWords, uint32_t *out, ErrorWord *error, int step,
          cudaStream_t stream) {
  if (batch * innerWords == 0)
    return;
  launchOverlapped(takeKernel, blocksFor(batch * innerWords), kThreads, stream, x, rows,
                   batch, t, innerWords, out, error, step);
}

void transpose(const void *in, void *out, int64_t elementBytes, const Shape &shape,
               const Shape &perm, cudaStream_t stream) {
  Shape words = shape;
  int64_t last = shape.rank - 1;
  if (last >= 0 && perm.dims[last] == last) {
    int64_t word = widestWord(elementBytes, {shape.dims[last] * elementBytes}, in, out);
    words.dims[last] = shape.dims[last] * elementBytes / word;
    elementBytes = word;
  }
  Shape strides = stridesOf(words);
  TransposeMap map{};
  map.outShape.rank = map.inStrides.rank = words.rank;
  int64_t count = 1;
  for (int64_t d = 0; d < words.rank; ++d) {
    map.outShape.dims[d] = words.dims[perm.dims[d]];
    map.inStrides.dims[d] = strides.dims[perm.dims[d]];
    count *= words.dims[d];
  }
  gather(in, out, elementBytes, count, map, stream);
}

void slice(const void *in, void *out, int64_t elementBytes, const Shape &shape,
           const Shape &offsets, const Shape &sizes, cudaStream_t stream) {
  Shape words = shape, wordOffsets = offsets, wordSizes = sizes;
  int64_t last = shape.rank - 1;
  if (last >= 0) {
    int64_t word = widestWord(elementBytes,
                              {shape.dims[last] * elementBytes, offsets.dims[last] * elementBytes,
                               sizes.dims[last] * elementBytes},
                              in, out);
    words.dims[last] = shape.dims[last] * elementBytes / word;
    wordOffsets.dims[last] = offsets.dims[last] * elementBytes / word;
    wordSizes.dims[last] = sizes.dims[last] * elementBytes / word;
    elementBytes = word;
  }
  SliceMap map{wordSizes, stridesOf(words), wordOffsets};
  int64_t count = 1;
  for (int64_t d = 0; d < wordSizes.rank; ++d)
    count *= wordSizes.dims[d];
  gather(in, out, elementBytes, count, map, stream);
}

void topk(Elem e, const void *in, int64_t rows, int64_t n, int64_t k, void *values,
          int32_t *indices, cudaStream_t stream) {
  if (rows == 0)
    return;
  if (e == Elem::BF16)
    topkKernel<<<blocksFor(rows), kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16 *>(in), rows, n, k,
        static_cast<__nv_bfloat16 *>(values), indices);
  else
    topkKernel<<<blocksFor(rows), kThreads, 0, stream>>>(
        static_cast<const float *>(in), rows, n, k, static_cast<float *>(values),
        indices);
}

void oneHot(Elem e, const int32_t *indices, int64_t count, int64_t depth, void *out,
            ErrorWord *error, int step, int64_t firstClass, int64_t classes,
            cudaStream_t stream) {
  if (count * depth == 0)
    return;
  if (e == Elem::BF16)
    oneHotKernel<<<blocksFor(count * depth), kThreads, 0, stream>>>(
        indices, count, depth, static_cast<__nv_bfloat16 *>(out), error, step, firstClass,
        classes);
  else
    oneHotKernel<<<blocksFor(count * depth), kThreads, 0, stream>>>(
        indices, count, depth, static_cast<float *>(out), error, step, firstClass, classes);
}

void reduce(Elem e, const void *in, void *out, int kind, int64_t outer, int64_t n,
            int64_t inner, cudaStream_t stream) {
  if (outer * inner == 0)
    return;
  // Threads a column: enough for two full SMs' worth of threads, at most
  // 32 and never more than the rows.
  const int64_t wanted = 2 * 2048 * static_cast<int64_t>(multiprocessorCount());
  int slices = 1;
  while (slices < 32 && 2 * slices <= n && outer * inner * slices < wanted)
    slices *= 2;
  const int64_t columns = kThreads / slices;
  const auto blocks = static_cast<unsigned>(outer * ((inner + columns - 1) / columns));
  if (e == Elem::BF16)
    reduceKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16 *>(in),
                                                 static_cast<__nv_bfloat16 *>(out), kind, outer,
                                                 n, inner, slices);
  else
    reduceKernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float *>(in),
                                                 static_cast<float *>(out), kind, outer, n,
                                                 inner, slices);
}

void fill(void *out, int64_t bytes, uint32_t bits, int elementBytes,
          cudaStream_t stream) {
  // Zeros (gradients cleared every step, a gigabyte and more for a large
  // model) go to the driver's memset, which runs at the copy bandwidth;
  // other patterns 16 bytes a store where they can.
  if (bytes <= 0)
    return; // no launch of zero blocks
  const uint32_t word = elementBytes == 2 ? (bits & 0xffffu) * 0x10001u : bits;
  if (word == 0) {
    cudaMemsetAsync(out, 0, static_cast<size_t>(bytes), stream);
    return;
  }
  if (bytes % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0) {
    const int64_t n = bytes / 16;
    fillKernel<<<static_cast<unsigned>(std::min<int64_t>(blocksFor(n), 1 << 16)), kThreads, 0,
                 stream>>>(static_cast<uint4 *>(out), n, make_uint4(word, word, word, word));
    return;
  }
  if (elementBytes == 2) {
    int64_t n = bytes / 2;
    if (n)
      fillKernel<<<blocksFor(n), kThreads, 0, stream>>>(
          static_cast<uint16_t *>(out), n, static_cast<uint16_t>(bits));
    return;
  }
  int64_t n = bytes / 4;
  if (n)
    fillKernel<<<blocksFor(n), kThreads, 0, stream>>>(static_cast<uint32_t *>(out),
                                                      n, bits);
}

void activationResidual(Elem e, void *c, const void *residual, int activation,
                        int64_t count, cudaStream_t stream) {
  if (count == 0)
    return;
  int64_t bytes = count * (e == Elem::BF16 ? 2 : 4);
  if (widestWord(1, {bytes}, c, residual ? residual : c) == 16) {
    int64_t vectors = bytes / 16;
    auto *cv = static_cast<uint4 *>(c);
    auto *rv = static_cast<const uint4 *>(residual);
    if (e == Elem::BF16)
      activationResidualVectorKernel<__nv_bfloat16>
          <<<blocksFor(vectors), kThreads, 0, stream>>>(cv, rv, activation, vectors);
    else
      activationResidualVectorKernel<float>
          <<<blocksFor(vectors), kThreads, 0, stream>>>(cv, rv, activation, vectors);
    return;
  }
  if (e == Elem::BF16)
    activationResidualKernel<<<blocksFor(count), kThreads, 0, stream>>>(
        static_cast<__nv_bfloat16 *>(c), static_cast<const __nv_bfloat16 *>(residual),
        activation, count);
  else
    activationResidualKernel<<<blocksFor(count), kThreads, 0, stream>>>(
        static_cast<float *>(c), static_cast<const float *>(residual), activation,
        count);
}

} // namespace gai::cuda
