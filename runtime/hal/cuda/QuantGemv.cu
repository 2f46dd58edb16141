// Decode GEMVs over quantized weights (int8, int4, fp8 e4m3) and the 2:4
// sparse ones Gemv.cu's rows do not take (k not a multiple of 16):
// C[m, n] = A[m, k]·dequant(W)ᵀ for m ≤ 8. Reads n·k·bits/8 weight bytes
// once, plus their scales (and int4's zeros) and A (2:4: the n·k/2 kept
// bf16 values and a nibble of positions a group, one group a chunk);
// 2·8·n·k tensor-core FLOPs whatever m is. Memory bound by design: over llama-1b's decode step on
// an H200 (4.3 TB/s) 8-warp blocks reached 0.9 (int4) to 1.8 (fp8) TB/s,
// and the blocks sized to one wave with slot-wise loads 1.15 (int4), 1.82
// (int8) and 1.96 (fp8): still latency bound on 2-6 MB matrices.
//
// The weights stream as stored (the bf16 copy never exists) and become
// exact bf16 pairs in registers: a lop3 a pair for int4, shifts for fp8,
// byte permutes for int8. Unpacking to f32 for FMAs on the CUDA cores took
// about five integer and float instructions a weight for int4, more than an
// SM issues at the bandwidth (an H200 brings 37 int4 weights an SM a cycle);
// on mma.sync the tensor cores take the products, f32 sums included.
//
// A warp owns an mma tile of 16 columns (its A operand: lane (g, q) holds
// columns g and g + 8) against A's 8 rows (its B operand: lane (g, q)
// holds A's row g), and the block's warps split k. Lane quad q takes
// chunks q, q + 4, … of a row (16, 8 or 4 bytes), so the four quads' chunks
// are one segment of the row. Within a chunk the mma's k slots map to
// whatever k order makes the weight pairs cheapest; A's pairs are permuted
// to match (a byte permute a pair, shared by both columns).
//
// An mma sums over all four quads' k, so an int4 group's scale applies to
// its sums only where a segment lies in one group: chunks are as wide as
// the group allows (16 bytes for groups that are multiples of 128 k, 8 for
// 64, 4 for 32). Other groups (16, 24, 48, …) and f32 A take one mma per
// quad instead.
#include "hal/cuda/Gemv.cuh"

#include <cuda_bf16.h>

#include <type_traits>

namespace gai::cuda {
namespace {

constexpr int kTileColumns = 16; // the mma's m: the columns a warp owns
constexpr int kTileRows = 8;     // the mma's n: rows of A
// A block's warps share a tile's k. How many, and how many blocks an SM
// holds (PerSM), go by the tiles against the SMs: up to one an SM, 16 warps
// (llama-1b's n = 2048 makes 128 tiles, and 8 warps left half of each SM
// idle); up to two, 8 warps; more (its gate and up, 352), 8 warps three
// blocks an SM, with fewer chunks in flight a lane to fit the registers,
// so that all blocks run in one wave.
template <int PerSM> constexpr int kWarpsOf = PerSM == 1 ? 16 : 8;
static_assert(kGemvRows == kTileRows, "one mma column a row of A");

/// How a 4-byte word of weights unpacks: its k, and the k of each bf16
/// pair (first in the low half) the mma takes, in the order cheapest to make.
template <WeightFormat F> struct Word;
template <> struct Word<WeightFormat::Int8> {
  static constexpr int kK = 4, kPairs = 2;
  __host__ __device__ static constexpr int first(int p) { return 2 * p; }
  __host__ __device__ static constexpr int second(int p) { return 2 * p + 1; }
};
template <> struct Word<WeightFormat::Int4> {
  static constexpr int kK = 8, kPairs = 4;
  __host__ __device__ static constexpr int first(int p) { return p; }
  __host__ __device__ static constexpr int second(int p) { return p + 4; }
};
template <> struct Word<WeightFormat::Fp8E4M3> {
  static constexpr int kK = 4, kPairs = 2;
  __host__ __device__ static constexpr int first(int p) { return p; }
  __host__ __device__ static constexpr int second(int p) { return p + 2; }
};
/// 2:4: a word is one group's two kept bf16 values, four k once placed.
template <> struct Word<WeightFormat::Sparse24> {
  static constexpr int kK = 4, kPairs = 2;
  __host__ __device__ static constexpr int first(int p) { return 2 * p; }
  __host__ __device__ static constexpr int second(int p) { return 2 * p + 1; }
};

__device__ __forceinline__ __nv_bfloat162 asPair(uint32_t bits) {
  __nv_bfloat162 v;
  static_assert(sizeof v == 4, "two bf16");
  memcpy(&v, &bits, 4);
  return v;
}
__device__ __forceinline__ uint32_t bitsOf(__nv_bfloat162 v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  return bits;
}

/// int4's zero as the pair (128 + zero, 128 + zero) that unpackWord takes.
__device__ __forceinline__ uint32_t zeroPair(uint32_t zero) {
  return 0x43004300u | zero * 0x10001u;
}

/// Word x's weights as exact bf16 pairs, before their scale: int8's q,
/// int4's q - zero (`zeros`: zeroPair), fp8's value, 2:4's group with its
/// two values placed by the low nibble of `zeros` (its metadata).
template <WeightFormat F>
__device__ __forceinline__ void unpackWord(uint32_t x, uint32_t zeros,
                                           uint32_t (&w)[Word<F>::kPairs]) {
  if constexpr (F == WeightFormat::Sparse24) {
    // The first value at its slot, then the second at its own, over
    // whatever was there: as decompress24 reads a malformed nibble.
    const uint32_t first = 16 * (zeros & 3u), second = 16 * (zeros >> 2 & 3u);
    uint64_t dense = static_cast<uint64_t>(x & 0xFFFFu) << first;
    dense &= ~(uint64_t{0xFFFFu} << second);
    dense |= static_cast<uint64_t>(x >> 16) << second;
    w[0] = static_cast<uint32_t>(dense);
    w[1] = static_cast<uint32_t>(dense >> 32);
  } else if constexpr (F == WeightFormat::Int4) {
    // Nibbles p and p + 4 into the mantissas of bf16 128: 128 + q each.
#pragma unroll
    for (int p = 0; p < 4; ++p)
      w[p] = bitsOf(__hsub2(asPair(((x >> (4 * p)) & 0x000F000Fu) | 0x43004300u),
                            asPair(zeros)));
  } else if constexpr (F == WeightFormat::Int8) {
    // Byte j (+ 128) into the mantissa of f32 2^23: 2^23 + 128 + q.
    const uint32_t u = x ^ 0x80808080u;
    float f[4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      f[j] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7440 + j)) - 8388736.0f;
    w[0] = bitsOf(__floats2bfloat162_rn(f[0], f[1]));
    w[1] = bitsOf(__floats2bfloat162_rn(f[2], f[3]));
  } else {
    // e4m3's exponent and mantissa bits where bf16 has its low ones: the
    // value · 2^-120, subnormals included; exact times 2^120 (0x7B80).
    const uint32_t p02 = ((x << 4) & 0x07F007F0u) | ((x << 8) & 0x80008000u);
    const uint32_t p13 = ((x >> 4) & 0x07F007F0u) | (x & 0x80008000u);
    const __nv_bfloat162 scale = asPair(0x7B807B80u);
    w[0] = bitsOf(__hmul2(asPair(p02), scale));
    w[1] = bitsOf(__hmul2(asPair(p13), scale));
  }
}

/// A's bf16 pairs for one word, in unpackWord's order: `r` holds the
/// word's k in order (k = e in half e % 2 of r[e / 2]).
template <WeightFormat F>
__device__ __forceinline__ void pairActivations(const uint32_t *r,
                                                uint32_t (&b)[Word<F>::kPairs]) {
  using W = Word<F>;
#pragma unroll
  for (int p = 0; p < W::kPairs; ++p) {
    constexpr int kLowHalf[2] = {0x10, 0x32}, kHighHalf[2] = {0x5400, 0x7600};
    const int lo = W::first(p), hi = W::second(p);
    b[p] = __byte_perm(r[lo / 2], r[hi / 2], kLowHalf[lo % 2] | kHighHalf[hi % 2]);
  }
}

/// The same for f32 A (k = e in r[e]): each value as three bf16 (hi + mid
/// + lo holds its 24 bits), so that three mmas over exact weights sum it as
/// f32 FMAs would.
template <WeightFormat F>
__device__ __forceinline__ void pairActivations(const uint32_t *r,
                                                uint32_t (&b)[3][Word<F>::kPairs]) {
  using W = Word<F>;
#pragma unroll
  for (int p = 0; p < W::kPairs; ++p) {
    float lo = __uint_as_float(r[W::first(p)]), hi = __uint_as_float(r[W::second(p)]);
#pragma unroll
    for (int part = 0; part < 3; ++part) {
      __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
      b[part][p] = bitsOf(v);
      lo -= __low2float(v);
      hi -= __high2float(v);
    }
  }
}

/// d += a·b for one m16n8k16 tile (bf16 in, f32 sums).
__device__ __forceinline__ void mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                    uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/// V 4-byte words of one weight row.
template <int V> struct Chunk {
  uint32_t w[V];
};

/// Weight loads (see Gemv.cu): coherent before the wait, streaming after.
template <int V, bool BeforeWait>
__device__ __forceinline__ Chunk<V> loadChunk(const uint8_t *p) {
  Chunk<V> c;
  if constexpr (V == 4) {
    uint4 v = BeforeWait ? loadBeforeWait(p) : loadStreaming(p);
    c.w[0] = v.x, c.w[1] = v.y, c.w[2] = v.z, c.w[3] = v.w;
  } else if constexpr (V == 2 && BeforeWait) {
    asm volatile("ld.global.L1::no_allocate.v2.u32 {%0,%1}, [%2];\n"
                 : "=r"(c.w[0]), "=r"(c.w[1])
                 : "l"(p)
                 : "memory");
  } else if constexpr (V == 2) {
    asm("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];\n"
        : "=r"(c.w[0]), "=r"(c.w[1])
        : "l"(p));
  } else if constexpr (BeforeWait) {
    c.w[0] = static_cast<uint32_t>(loadInt32BeforeWait(reinterpret_cast<const int32_t *>(p)));
  } else {
    asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];\n" : "=r"(c.w[0]) : "l"(p));
  }
  return c;
}
template <bool BeforeWait> __device__ __forceinline__ float loadScale(const float *p) {
  if constexpr (BeforeWait)
    return __int_as_float(loadInt32BeforeWait(reinterpret_cast<const int32_t *>(p)));
  else
    return __ldg(p);
}
template <bool BeforeWait> __device__ __forceinline__ uint32_t loadZero(const uint8_t *p) {
  if constexpr (BeforeWait) {
    uint32_t v;
    asm volatile("ld.global.u8 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
    return v;
  } else {
    return __ldg(p);
  }
}

/// 2:4: the nibble of one-word chunk `chunk` of a row from the row's
/// metadata `row`.
template <bool BeforeWait>
__device__ __forceinline__ uint32_t loadMeta(const uint8_t *row, int64_t chunk) {
  return loadZero<BeforeWait>(row + chunk / 2) >> (4 * (chunk & 1)) & 0xFu;
}

/// `Bytes` of A (16-byte aligned when a multiple of 16, else 8) as words.
template <int Bytes>
__device__ __forceinline__ void loadActivations(const void *p, uint32_t (&r)[Bytes / 4]) {
  if constexpr (Bytes % 16 == 0) {
#pragma unroll
    for (int i = 0; i < Bytes / 16; ++i) {
      uint4 v = static_cast<const uint4 *>(p)[i];
      r[4 * i] = v.x, r[4 * i + 1] = v.y, r[4 * i + 2] = v.z, r[4 * i + 3] = v.w;
    }
  } else {
    static_assert(Bytes % 8 == 0, "8-byte pieces");
#pragma unroll
    for (int i = 0; i < Bytes / 8; ++i) {
      uint2 v = static_cast<const uint2 *>(p)[i];
      r[2 * i] = v.x, r[2 * i + 1] = v.y;
    }
  }
}

/// A per-row (or per-tensor) scale of column `col`; int4's are applied per
/// chunk instead.
__device__ __forceinline__ float columnScale(const QuantizedWeights &q, bool gate,
                                             int64_t col) {
  if (q.format == WeightFormat::Int4 || q.format == WeightFormat::Sparse24)
    return 1.0f;
  return gate ? q.gateScale[q.gatePerTensor ? 0 : col] : q.scale[q.perTensor ? 0 : col];
}

/// Row `row` of column `col` from its sums (Weights = 2: the gate's, then
/// the up product's): as Gemv.cu's finishColumn, for one element. Leaves
/// the square of what it stored for a norm to make, and its greedy key.
template <typename T, int Weights>
__device__ __forceinline__ void finishElement(const GemvPart &g, const float (&sums)[Weights],
                                              int64_t col, int row, int64_t k, double &square,
                                              unsigned long long &key) {
  const float rowScale = g.norm.aSquares ? rsqrtf(static_cast<float>(
                                               g.norm.aSquares[row] / static_cast<double>(k)) +
                                           g.norm.aEps)
                                         : 1.0f;
  const QuantizedWeights &q = g.quant;
  float x = sums[Weights - 1] * columnScale(q, false, col) * rowScale;
  if constexpr (Weights == 2) {
    float gate = sums[0] * columnScale(q, true, col) * rowScale;
    static_cast<T *>(g.c)[row * g.n + col] = fromFloat<T>(activate(gate, g.activation) * x);
    return;
  }
  int64_t at;
  const float y = storeColumn<T>(g, static_cast<const T *>(g.bias), x, row, col, at);
  key = greedyPickKey(y, col);
  if (g.norm.out) {
    static_cast<T *>(g.norm.out)[at] = fromFloat<T>(y * normWeight<T>(g, col));
    square = static_cast<double>(y) * y;
  }
}

/// PerSM: blocks an SM (see kWarpsOf). T: A's type (bf16, or f32 through
/// three mmas). V: 4-byte words a chunk
/// (4, 2 or 1: as the rows' alignment and int4's groups allow). QuadScales
/// (int4): each quad's products apart, for groups a segment spans. Weights
/// = 2: a gated part, gate then up. Pick: the greedy pick at the end, as
/// Gemv.cu's.
template <int PerSM, WeightFormat F, typename T, int V, bool QuadScales, int Weights, bool Pick>
__global__ void __launch_bounds__(32 * kWarpsOf<PerSM>, PerSM)
    quantGemvKernel(const T *a, GemvLaunch launch, int m, int64_t k) {
  constexpr int Warps = kWarpsOf<PerSM>;
  using W = Word<F>;
  constexpr bool kInt4 = F == WeightFormat::Int4, kF32 = sizeof(T) == 4;
  constexpr bool kSparse = F == WeightFormat::Sparse24;
  static_assert(!QuadScales || (kInt4 && V == 1), "one word a quad");
  static_assert(!kSparse || (!kF32 && V == 1), "2:4: bf16 values, a group a chunk");
  constexpr int kChunkK = V * W::kK, kChunkBytes = 4 * V;
  // Chunks in flight per lane and weight row: two rows a lane, so eight
  // 16-byte loads in flight, as the float GEMV's lanes have four of 16
  // bytes; half at three blocks an SM (80 registers), half for int4, whose
  // chunks take twice the k (a round's A takes 16 registers a chunk), and
  // at least one. f32 A is for tests and small models: one.
  constexpr int kShare = (PerSM == 3 ? 2 : 4) / (kInt4 ? 2 : 1) / Weights;
  constexpr int kInFlight = kF32 || kShare < 1 ? 1 : kShare;
  letNextKernelStart();
  // Two 16 KB prefetches a block: the float GEMV's blocks are twice as many.
  if (threadIdx.x % 32 == 0 && threadIdx.x < 64 && launch.prefetch.bytes[0] > 0)
    prefetchChunk(launch.prefetch, blockIdx.x + threadIdx.x / 32 * gridDim.x);
  int64_t firstColumn;
  const GemvPart &g = launch.parts[partOfBlock<kTileColumns>(launch, firstColumn)];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = lane / 4, quad = lane % 4; // the mma's lane coordinates
  const int64_t chunks = k / kChunkK, rowBytes = k / W::kK * 4;
  // int4: chunk j lies in group j / chunksPerGroup: a shift for the usual
  // powers of two.
  const int64_t groups = kInt4 ? k / g.quant.group : 1;
  const int64_t chunksPerGroup = kInt4 ? g.quant.group / kChunkK : 1;
  const int groupShift =
      (chunksPerGroup & (chunksPerGroup - 1)) == 0 ? __ffsll(chunksPerGroup) - 1 : -1;
  // Weight rows: [w][0] column group, [w][1] column group + 8 (null past n).
  const uint8_t *rows[Weights][2];
  const float *scales[Weights];
  const uint8_t *zeros[Weights];
  const uint8_t *metaRows[Weights][2]; // 2:4: the rows' metadata
#pragma unroll
  for (int w = 0; w < Weights; ++w) {
    const bool gate = Weights == 2 && w == 0;
    const auto *base = static_cast<const uint8_t *>(gate ? g.gate : g.w);
    scales[w] = gate ? g.quant.gateScale : g.quant.scale;
    zeros[w] = gate ? g.quant.gateZero : g.quant.zero;
    const uint8_t *meta = gate ? g.quant.gateMeta : g.quant.meta;
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int64_t col = firstColumn + group + 8 * c;
      rows[w][c] = col < g.n ? base + col * rowBytes : nullptr;
      metaRows[w][c] = kSparse && col < g.n ? meta + col * (k / 8) : nullptr;
    }
  }
  auto chunkOf = [&](int64_t round, int u) {
    return ((round * kInFlight + u) * Warps + warp) * 4 + quad;
  };
  Chunk<V> wv[Weights][2][kInFlight];
  float scale[Weights][2][kInFlight]; // int4: the chunk's group's
  uint32_t zero[Weights][2][kInFlight]; // int4: zeroPair; 2:4: the nibble
  // Slot u's chunk of `round`, as loadChunk's BeforeWait.
  auto load = [&](int64_t round, int u, auto beforeWait) {
    constexpr bool kBefore = decltype(beforeWait)::value;
    const int64_t chunk = chunkOf(round, u);
#pragma unroll
    for (int w = 0; w < Weights; ++w)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const bool valid = rows[w][c] && chunk < chunks;
        if (valid)
          wv[w][c][u] = loadChunk<V, kBefore>(rows[w][c] + chunk * kChunkBytes);
        if constexpr (kSparse)
          zero[w][c][u] = valid ? loadMeta<kBefore>(metaRows[w][c], chunk) : 0u;
        if constexpr (kInt4) {
          // Past n or k: scale 0 (a segment is whole or past k, since
          // groups divide k, so without QuadScales all four quads agree).
          scale[w][c][u] = 0.0f;
          zero[w][c][u] = zeroPair(0);
          if (valid) {
            const int64_t col = firstColumn + group + 8 * c;
            const int64_t at = col * groups + (groupShift >= 0 ? chunk >> groupShift
                                                               : chunk / chunksPerGroup);
            scale[w][c][u] = loadScale<kBefore>(scales[w] + at);
            zero[w][c][u] = zeroPair(loadZero<kBefore>(zeros[w] + at));
          }
        }
      }
  };
  float acc[Weights][4] = {};
  // Slot u's chunk's products: the mma's 4 sums of this lane, for columns
  // group and group + 8, rows 2·quad and 2·quad + 1. Each chunk sums apart
  // and then into acc, in two chains (by word, or a gate's two weights): a
  // chain of dependent mmas runs at their latency, not their rate.
  constexpr int kChains = 3 - Weights;
  constexpr int kActWords = kChunkK * static_cast<int>(sizeof(T)) / 4;
  auto compute = [&](int64_t round, int u, const uint32_t *act) {
    // A warp's slot past k (all four quads') makes nothing: skipped, as
    // llama-1b's k = 2048 leaves half or three quarters of them.
    if (chunkOf(round, u) - quad >= chunks)
      return;
    float part[Weights][kChains][4] = {};
#pragma unroll
    for (int v = 0; v < V; ++v) {
      uint32_t b[kF32 ? 3 : 1][W::kPairs];
      if constexpr (kF32)
        pairActivations<F>(act + v * W::kK, b);
      else
        pairActivations<F>(act + v * W::kK / 2, b[0]);
#pragma unroll
      for (int w = 0; w < Weights; ++w) {
        uint32_t w0[W::kPairs], w1[W::kPairs];
        unpackWord<F>(wv[w][0][u].w[v], zero[w][0][u], w0);
        unpackWord<F>(wv[w][1][u].w[v], zero[w][1][u], w1);
        // `only` ≥ 0: quad `only`'s weights alone (the others' zero).
        auto products = [&](float(&sums)[4], int only) {
          const uint32_t keep = only < 0 || only == quad ? ~0u : 0u;
#pragma unroll
          for (int i = 0; i < W::kPairs / 2; ++i)
#pragma unroll
            for (int piece = 0; piece < (kF32 ? 3 : 1); ++piece)
              mma(sums, w0[2 * i] & keep, w1[2 * i] & keep, w0[2 * i + 1] & keep,
                  w1[2 * i + 1] & keep, b[piece][2 * i], b[piece][2 * i + 1]);
        };
        if constexpr (QuadScales) {
          // Quad `from`'s products, scaled by its group's scales.
#pragma unroll
          for (int from = 0; from < 4; ++from) {
            float sums[4] = {};
            products(sums, from);
#pragma unroll
            for (int s = 0; s < 4; ++s)
              acc[w][s] += __shfl_sync(0xffffffffu, scale[w][s / 2][u], group * 4 + from) *
                           sums[s];
          }
        } else {
          products(part[w][v % kChains], -1);
        }
      }
    }
    if constexpr (!QuadScales)
#pragma unroll
      for (int w = 0; w < Weights; ++w)
#pragma unroll
        for (int s = 0; s < 4; ++s)
          acc[w][s] += (kInt4 ? scale[w][s / 2][u] : 1.0f) *
                       (part[w][0][s] + (kChains == 2 ? part[w][kChains - 1][s] : 0.0f));
  };
#pragma unroll
  for (int u = 0; u < kInFlight; ++u)
    if (launch.constantWeights)
      load(0, u, std::true_type());
  waitForPriorKernels();
#pragma unroll
  for (int u = 0; u < kInFlight; ++u)
    if (!launch.constantWeights)
      load(0, u, std::false_type());
  // Each slot loads its next chunk as soon as its products are made, so
  // that loads stay in flight while the others' products are made.
  for (int64_t round = 0; chunkOf(round, 0) - quad < chunks; ++round) {
    const bool more = chunkOf(round + 1, 0) - quad < chunks;
    // The round's A, all loads at once (zeros past m and k).
    uint32_t act[kInFlight][kActWords] = {};
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      const int64_t chunk = chunkOf(round, u);
      if (group < m && chunk < chunks)
        loadActivations<kActWords * 4>(a + group * k + chunk * kChunkK, act[u]);
    }
#pragma unroll
    for (int u = 0; u < kInFlight; ++u) {
      compute(round, u, act[u]);
      if (more)
        load(round + 1, u, std::false_type());
    }
  }

  // The warps' sums of each (column, row), then one thread each.
  __shared__ float partial[Weights][Warps][kTileColumns][kTileRows];
#pragma unroll
  for (int w = 0; w < Weights; ++w)
#pragma unroll
    for (int s = 0; s < 4; ++s)
      partial[w][warp][group + 8 * (s / 2)][2 * quad + s % 2] = acc[w][s];
  __syncthreads();
  __shared__ double squares[kTileColumns][kTileRows];
  __shared__ unsigned long long keys[Pick ? kTileColumns : 1][kTileRows];
  const bool makesNorm = g.norm.out != nullptr;
  if (threadIdx.x < kTileColumns * kTileRows) {
    const int column = threadIdx.x / kTileRows, row = threadIdx.x % kTileRows;
    const int64_t col = firstColumn + column;
    double square = 0;
    unsigned long long key = 0;
    if (col < g.n && row < m) {
      float sums[Weights];
#pragma unroll
      for (int w = 0; w < Weights; ++w) {
        sums[w] = 0.0f;
#pragma unroll
        for (int from = 0; from < Warps; ++from)
          sums[w] += partial[w][from][column][row];
      }
      finishElement<T, Weights>(g, sums, col, row, k, square, key);
    }
    squares[column][row] = square;
    if constexpr (Pick)
      keys[column][row] = key;
  }
  // A block's norm squares and greedy bests go to each row's by one atomic
  // a row (see Gemv.cu's offerSquares and offerGreedy).
  if (makesNorm) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < m) {
      double sum = 0;
#pragma unroll
      for (int column = 0; column < kTileColumns; ++column)
        sum += squares[column][threadIdx.x];
      atomicAdd(&g.norm.squares[threadIdx.x], sum);
    }
  }
  if constexpr (Pick) {
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < m) {
      unsigned long long best = 0;
#pragma unroll
      for (int column = 0; column < kTileColumns; ++column)
        best = max(best, keys[column][threadIdx.x]);
      atomicMax(&launch.pick.counters->best[threadIdx.x], best);
    }
  }
}

template <int PerSM, WeightFormat F, typename T, int V, bool QuadScales>
void launchPerSM(const T *a, const GemvLaunch &launch, bool pick, int64_t blocks, int m,
                 int64_t k, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(blocks)), block(32 * kWarpsOf<PerSM>);
  if (pick)
    launchOverlapped(quantGemvKernel<PerSM, F, T, V, QuadScales, 1, true>, grid, block, stream,
                     a, launch, m, k);
  else if (launch.parts[0].gate)
    launchOverlapped(quantGemvKernel<PerSM, F, T, V, QuadScales, 2, false>, grid, block, stream,
                     a, launch, m, k);
  else
    launchOverlapped(quantGemvKernel<PerSM, F, T, V, QuadScales, 1, false>, grid, block, stream,
                     a, launch, m, k);
}

/// The blocks an SM that run all tiles in one wave (see kWarpsOf), on bf16
/// A's paths; f32 A and int4's odd groups (tests, small models) keep two.
template <WeightFormat F, typename T, int V, bool QuadScales = false>
void launchQuantized(const T *a, const GemvLaunch &launch, bool pick, int64_t blocks, int m,
                     int64_t k, cudaStream_t stream) {
  if constexpr (sizeof(T) == 2 && !QuadScales) {
    const int64_t sms = multiprocessorCount();
    if (blocks <= sms)
      return launchPerSM<1, F, T, V, QuadScales>(a, launch, pick, blocks, m, k, stream);
    if (blocks > 2 * sms)
      return launchPerSM<3, F, T, V, QuadScales>(a, launch, pick, blocks, m, k, stream);
  }
  launchPerSM<2, F, T, V, QuadScales>(a, launch, pick, blocks, m, k, stream);
}

/// Whether every part's rows split into chunks of `words` 4-byte words on
/// aligned weights, and (int4) a segment of four chunks lies in one group.
bool chunksFit(const GemvLaunch &launch, WeightFormat f, int64_t k, int64_t words) {
  const int64_t chunkK = words * (f == WeightFormat::Int4 ? 8 : 4);
  auto aligned = [&](const void *p) {
    return reinterpret_cast<uintptr_t>(p) % (4 * words) == 0;
  };
  if (k % chunkK)
    return false;
  for (int p = 0; p < launch.count; ++p) {
    const GemvPart &g = launch.parts[p];
    if (!aligned(g.w) || !aligned(g.gate) ||
        (f == WeightFormat::Int4 && g.quant.group % (4 * chunkK) != 0))
      return false;
  }
  return true;
}

template <WeightFormat F>
void launchFormat(Elem e, const void *a, const GemvLaunch &launch, bool pick, int64_t blocks,
                  int m, int64_t k, cudaStream_t stream) {
  constexpr bool kInt4 = F == WeightFormat::Int4;
  const auto *bf16 = static_cast<const __nv_bfloat16 *>(a);
  // f32 A is the slow path already: one kernel, for every alignment and
  // group. 2:4 values are the GEMM's type, so f32 ones never get here
  // (gemvShaped).
  if constexpr (F == WeightFormat::Sparse24) {
    // What Gemv.cu's 2:4 rows do not take (k not a multiple of 16,
    // unaligned values): one group a chunk.
    if (e == Elem::BF16)
      launchQuantized<F, __nv_bfloat16, 1>(bf16, launch, pick, blocks, m, k, stream);
  } else if (e == Elem::F32)
    launchQuantized<F, float, 1, kInt4>(static_cast<const float *>(a), launch, pick, blocks,
                                        m, k, stream);
  else if (chunksFit(launch, F, k, 4))
    launchQuantized<F, __nv_bfloat16, 4>(bf16, launch, pick, blocks, m, k, stream);
  else if constexpr (!kInt4)
    launchQuantized<F, __nv_bfloat16, 1>(bf16, launch, pick, blocks, m, k, stream);
  else if (chunksFit(launch, F, k, 2))
    launchQuantized<F, __nv_bfloat16, 2>(bf16, launch, pick, blocks, m, k, stream);
  else if (chunksFit(launch, F, k, 1))
    launchQuantized<F, __nv_bfloat16, 1>(bf16, launch, pick, blocks, m, k, stream);
  else
    launchQuantized<F, __nv_bfloat16, 1, true>(bf16, launch, pick, blocks, m, k, stream);
}

} // namespace

void quantGemvParts(Elem e, const void *a, const GemvPart *parts, int count, int64_t m,
                    int64_t k, bool constantWeights, cudaStream_t stream,
                    const GemvPrefetch &prefetch, const GreedyPick *pick) {
  GemvLaunch launch = gemvLaunch(parts, count, kTileColumns, constantWeights, prefetch, pick);
  const int64_t blocks = count > 0 ? launch.blockEnd[count - 1] : 0;
  if (blocks == 0)
    return;
  const int rows = static_cast<int>(m);
  switch (parts[0].quant.format) {
  case WeightFormat::Int8:
    launchFormat<WeightFormat::Int8>(e, a, launch, pick, blocks, rows, k, stream);
    break;
  case WeightFormat::Int4:
    launchFormat<WeightFormat::Int4>(e, a, launch, pick, blocks, rows, k, stream);
    break;
  case WeightFormat::Fp8E4M3:
    launchFormat<WeightFormat::Fp8E4M3>(e, a, launch, pick, blocks, rows, k, stream);
    break;
  case WeightFormat::Sparse24:
    launchFormat<WeightFormat::Sparse24>(e, a, launch, pick, blocks, rows, k, stream);
    break;
  case WeightFormat::Float: return;
  }
  if (pick)
    greedyFinish(m, *pick, stream);
}

} // namespace gai::cuda
