// The CUDA HAL's library kernels: attention, data movement and the GEMM
// epilogues cuBLASLt cannot do. Elementwise and row ops come from the PTX
// gaic generates. Floats are f32 or bf16 (`Elem`), math is f32; ids and
// positions are i32. Every launcher enqueues on `stream` and returns at once.
#ifndef GAI_RUNTIME_HAL_CUDA_KERNELS_H
#define GAI_RUNTIME_HAL_CUDA_KERNELS_H

#include "gai/Artifact.h"
#include "hal/RowStrides.h"

#include <cuda_runtime.h>

#include <cstdint>

namespace gai::cuda {

enum class Elem { F32, BF16 };

inline int64_t bytesOf(Elem e) { return e == Elem::BF16 ? 2 : 4; }

/// Where kernels report bad input: the first report wins; `flag` is an
/// ErrorCode, `step` the plan step, `a` and `b` the offending values.
struct ErrorWord {
  int flag, step, a, b;
};
enum ErrorCode : int {
  kNoError = 0,
  kBadTokenId,     // a = the id
  kBadCacheWrite,  // a = row, b = its start position
  kBadTakeRow,     // a = row, b = its index
  kBadOneHot,      // a = the index
  kBadQueryStart,  // a = row, b = its start position
  kBadLabel,       // a = row, b = its label
};

constexpr int kMaxRank = 8;
struct Shape {
  int64_t dims[kMaxRank];
  int64_t rank;
};

/// Whether kernels may be launched to overlap the one before them
/// (programmatic dependent launch): sm_90 or newer, and not turned off by
/// setOverlapLaunches (SessionOptions::overlapLaunches, for measuring what
/// the overlap brings).
bool overlapsLaunches();
void setOverlapLaunches(bool enabled);
/// The current device's compute capability major, 0 when it cannot be read.
int deviceMajor();
/// The current device's multiprocessors, 1 when they cannot be read.
int multiprocessorCount();
/// Whether the library's kernels run wgmma on the current device: built
/// for sm_90a (the GAI_CUDA_WGMMA option) and a Hopper (sm_90) device.
bool wgmmaRuns();

/// out[i] = table[ids[i] - firstRow] for the `rows` rows the table holds
/// (a vocabulary shard: other ids give zeros); an id outside [0, vocab)
/// is reported.
void embedding(Elem e, const void *table, int64_t rows, int64_t dim,
               const int32_t *ids, int64_t count, void *out, ErrorWord *error,
               int step, int64_t firstRow, int64_t vocab, cudaStream_t stream);
/// The f32 scratch embeddingGrad takes: a bf16 table's sums, and the
/// fixed-order form's sort.
int64_t embeddingGradScratchFloats(Elem e, int64_t rows, int64_t dim, int64_t count,
                                   bool fixedOrder);
/// embedding's backward into out [rows, dim]: grad's rows summed by id in
/// f32 (a bf16 table's in `scratch`, then rounded). With `fixedOrder` each
/// id's rows add in the order of their positions, the same bits every run;
/// without, by atomics in any order.
void embeddingGrad(Elem e, const void *grad, int64_t rows, int64_t dim, const int32_t *ids,
                   int64_t count, void *out, float *scratch, bool fixedOrder, ErrorWord *error,
                   int step, int64_t firstRow, int64_t vocab, cudaStream_t stream);
/// Up to two (a layer's keys and values) cache writes of one shape and
/// positions in one launch.
struct CacheWrite {
  void *cache;
  const void *update;
};
void cacheWrite(Elem e, const CacheWrite *writes, int count, const int32_t *start,
                int64_t batch, int64_t heads, int64_t slots, int64_t tokens,
                int64_t dim, ErrorWord *error, int step, cudaStream_t stream);
/// The most rows a decode GEMV (gemvParts) takes: the artifact contract's
/// gated GEMMs and norm folds, which it alone runs.
constexpr int64_t kGemvRows = 8;
static_assert(kGemvRows == kMostGatedGemmRows && kGemvRows == kMostNormFoldRows,
              "the GEMV takes every row count the artifact contract allows it");
/// Greedy decoding on the device. For each row b of logits [batch, vocab]:
/// the first index of the largest logit (NaNs never win; all NaN: 0) goes
/// to tokens[b] and to ring[counters->step · batch + b], and positions[b]
/// advances by one, to at most lastPosition. The last row to finish
/// advances counters->step. Zero the counters before a run of steps.
struct GreedyCounters {
  int32_t step;
  uint32_t rowsDone;
  /// A picking GEMV's best logit so far per row, as greedyPickKey; 0: none.
  unsigned long long best[kGemvRows];
};
struct GreedyPick {
  int32_t *tokens, *positions;
  int32_t lastPosition;
  int32_t *ring;
  GreedyCounters *counters;
};
void greedyFeed(Elem e, const void *logits, int64_t batch, int64_t vocab,
                const GreedyPick &pick, cudaStream_t stream);
/// greedyFeed's end after a picking GEMV (gemvParts), which left each
/// row's best in counters->best: writes the tokens and zeroes the bests.
void greedyFinish(int64_t batch, const GreedyPick &pick, cudaStream_t stream);
/// out[b, :] = x[b, rows[b], :] in 4-byte words.
void take(const uint32_t *x, const int32_t *rows, int64_t batch, int64_t t,
          int64_t innerWords, uint32_t *out, ErrorWord *error, int step,
          cudaStream_t stream);
void transpose(const void *in, void *out, int64_t elementBytes, const Shape &shape,
               const Shape &perm, cudaStream_t stream);
void slice(const void *in, void *out, int64_t elementBytes, const Shape &shape,
           const Shape &offsets, const Shape &sizes, cudaStream_t stream);
void topk(Elem e, const void *in, int64_t rows, int64_t n, int64_t k, void *values,
          int32_t *indices, cudaStream_t stream);
/// As embedding's shard: classes [firstClass, firstClass + depth) of `classes`.
void oneHot(Elem e, const int32_t *indices, int64_t count, int64_t depth, void *out,
            ErrorWord *error, int step, int64_t firstClass, int64_t classes,
            cudaStream_t stream);
/// kind: 0 sum, 1 mean, 2 max, 3 min over the middle of [outer, n, inner].
void reduce(Elem e, const void *in, void *out, int kind, int64_t outer, int64_t n,
            int64_t inner, cudaStream_t stream);
/// `bytes` of `out` filled with the `elementBytes`-wide pattern `bits`.
void fill(void *out, int64_t bytes, uint32_t bits, int elementBytes,
          cudaStream_t stream);
/// c = act(c) + residual over `count` elements (activation as in the
/// artifact: 1 silu, 2 gelu, 3 gelu_tanh, 4 relu); residual may be null.
void activationResidual(Elem e, void *c, const void *residual, int activation,
                        int64_t count, cudaStream_t stream);

/// An RMSNorm folded into decode GEMVs (artifact.fbs). Making its input (a
/// part without a gate): also out = C ⊙ (weight + offset), in A's type, and
/// squares[r] += the row's Σ C² (C as stored; f64, exact for bf16, so the
/// atomics' order does not show; for f32 C all but exact). Reading it
/// (aSquares, the same for all parts): A is such an out, and each row's
/// products are scaled by 1/sqrt(aSquares[r] / k + aEps) before the
/// epilogue.
struct FoldedNorm {
  const void *weight = nullptr;
  void *out = nullptr;
  double *squares = nullptr;
  float offset = 0.0f;
  const double *aSquares = nullptr;
  float aEps = 0.0f;
};

/// How a GEMM's weights are stored (artifact.fbs's WeightFormat).
enum class WeightFormat { Float, Int8, Int4, Fp8E4M3, Sparse24 };

/// Quantized weights W [n, k] (and a gate's, stored alike), read as
/// w = (q - zero) · scale with f32 scales (artifact.fbs): Int8: q int8,
/// a scale a row. Int4: q two a byte (k = 2t in byte t's low nibble),
/// 0..15, a scale and a zero byte per `group` of k. Fp8E4M3: q e4m3fn,
/// one scale (`perTensor`, `gatePerTensor`) or one a row.
struct QuantizedWeights {
  WeightFormat format = WeightFormat::Float;
  const float *scale = nullptr, *gateScale = nullptr;
  const uint8_t *zero = nullptr, *gateZero = nullptr; // int4
  int64_t group = 0;                                  // int4
  bool perTensor = false, gatePerTensor = false;      // fp8
  /// Sparse24: the kept values' positions [n, k / 8] (q holds the values
  /// [n, k / 2] in the GEMM's type), and the gate's.
  const uint8_t *meta = nullptr, *gateMeta = nullptr;
  bool quantized() const { return format != WeightFormat::Float; }
};
/// The bytes of a quantized [n, k] matrix's q.
inline int64_t quantizedBytes(WeightFormat f, int64_t n, int64_t k) {
  return f == WeightFormat::Int4 ? n * (k / 2) : n * k;
}

/// out [n, k] (bf16 or f32 as `e`, row-major) = the weights q [n, k] in
/// `quant`'s format, dequantized: what cuBLASLt multiplies for prefill-sized
/// GEMMs over quantized weights. Needs k a multiple of 8, 4-byte aligned q
/// and 16-byte aligned out.
void dequantize(Elem e, const void *q, const QuantizedWeights &quant, int64_t n, int64_t k,
                void *out, cudaStream_t stream);
/// out [n, k] (bf16 or f32 as `e`, row-major, 16-byte aligned) = the 2:4
/// weights `values` [n, k / 2] (in `e`) and `meta` [n, k / 8] decompressed
/// (k a multiple of 8): what cuBLASLt multiplies until GEMMs read 2:4
/// weights as they are (cuSPARSELt).
void decompress24(Elem e, const void *values, const uint8_t *meta, int64_t n, int64_t k,
                  void *out, cudaStream_t stream);
/// The most blocks quantizeFp8 takes: how many partials it needs room for.
constexpr int kFp8Partials = 1024;
/// A [count] (bf16, count a multiple of 8, 16-byte aligned) scaled into
/// e4m3 for cuBLASLt's fp8 GEMM: out = e4m3(a · 448 / amax), saturating,
/// with amax the largest |a|, and scale[0] = amax / 448 (1 when amax is 0),
/// the dequantizing scale. Two launches, no atomics; `partials` holds
/// kFp8Partials floats between them.
void quantizeFp8(const void *a, int64_t count, uint8_t *out, float *partials, float *scale,
                 int multiprocessors, cudaStream_t stream);
/// A vector of `n` copies of a weight's one scale, as cuBLASLt's
/// outer-vector scaling takes it.
struct Fp8ScaleFill {
  const float *tensorScale = nullptr;
  int64_t n = 0;
  float *out = nullptr;
};
constexpr int kFp8ScaleFills = 4;
/// The same a row of A [m, k] at a time (k a multiple of 8): row r scaled
/// by 448 / its amax, rowScales[r] = amax / 448. One launch, a warp a row;
/// it also makes the `fillCount` vectors `fills` (the per-tensor weight
/// scales of the GEMMs that read this A).
void quantizeFp8Rows(const void *a, int64_t m, int64_t k, uint8_t *out, float *rowScales,
                     const Fp8ScaleFill *fills, int fillCount, cudaStream_t stream);
/// Only the fills: each out[0, n) = *tensorScale.
void fillFp8Scales(const Fp8ScaleFill *fills, int fillCount, cudaStream_t stream);

/// For each part p (up to kGemvParts, all over the same A):
/// C_p[m, n_p] = act_p(A[m, k]·W_p[n_p, k]ᵀ + bias_p) + residual_p, for
/// decode-sized m (at most kGemvRows). A warp per output column streams its
/// weight row in 16-byte loads, so the step runs at memory speed; one
/// launch does q/k/v or gate/up. Needs k a multiple of 8 and 16-byte
/// aligned rows. `constantWeights`: no kernel writes the W_p while the
/// entry runs, so the GEMV may load them before earlier kernels finish.
struct GemvPart {
  const void *w;
  void *c;
  const void *bias, *residual; // either may be null
  int64_t n;
  int activation; // as in the artifact
  /// A gated linear unit's gate weights [n, k], or null: C = act(A·gateᵀ) ⊙
  /// (A·Wᵀ), without bias or residual. A gated part is its launch's only one.
  const void *gate = nullptr;
  FoldedNorm norm;
  /// C, the residual and the norm's weight are f32 over bf16 A and W (an
  /// f32 residual stream); no bias or gate then.
  bool wideC = false;
  /// W and the gate quantized: dequantized in registers as they stream
  /// (QuantGemv.cu). All parts of a launch share the format. Rows and
  /// scales 4-byte aligned, A 16-byte aligned.
  QuantizedWeights quant;
};
constexpr int kGemvParts = 4;
/// Memory the kernel after the GEMV reads first (a short KV cache): the
/// GEMV's first blocks pull it into L2 before their wait, while the GEMV
/// streams its weights. Regions 16-byte aligned, sizes multiples of 16.
/// (Pulling the next GEMV's weights in as well made llama-1b's quantized
/// decode 3-6% slower on an H100: the GEMVs' own loads wait behind it.)
struct GemvPrefetch {
  const void *region[2] = {nullptr, nullptr};
  int64_t bytes[2] = {0, 0};
};
/// `pick` (one part, without a gate): the GEMV is a greedy decoding step's
/// last and does greedyFeed's work on C, the logits [m, n]: each block
/// offers its columns' best, and a one-block greedyFinish writes the
/// tokens. No second pass over the logits, by one block.
void gemvParts(Elem e, const void *a, const GemvPart *parts, int count, int64_t m,
               int64_t k, bool constantWeights, cudaStream_t stream,
               const GemvPrefetch &prefetch = {}, const GreedyPick *pick = nullptr);

/// As the CPU's AttentionArgs (hal/cpu/Kernels.h).
struct AttentionParams {
  const void *q, *k, *v;
  void *out;
  const int32_t *queryStart; // null: static causal offset
  int64_t batch, heads, kvHeads, queries, keys, headDim, valueDim;
  float scale, softcap;
  bool causal;
  int64_t window;
  // Folded cache writes: the step's new rows [batch, kvHeads, queries, D | Dv]
  // belong in k and v at queryStart, and the kernel writes them there; null
  // when k and v hold them already. At most kMostFoldedQueries rows.
  const void *kNew, *vNew;
  // RoPE of q and the new keys first: 0 none, 1 half, 2 interleaved, at
  // ropePositions [ropeRows (1 or batch), queries].
  int ropeStyle;
  const int32_t *ropePositions;
  int64_t ropeRows;
  float ropeTheta;
  // No earlier kernel of the entry writes k, v or queryStart (the caches and
  // positions as the entry started): the kernel may read them, up to the
  // slots before queryStart, while the kernel before it still runs.
  bool cacheReady;
  // [batch, heads, queries] when set: each query row's log-sum-exp (natural
  // log) of its masked scores, for the backward.
  float *lse;
  // Where the rows of q, k, v and out lie; unset (zero): packed. Only the
  // tensor-core kernel takes other strides (attentionTakesStrides).
  RowStrides qStrides, kStrides, vStrides, outStrides;
  // The flash kernel on mma.sync where it would run on wgmma (Hopper, head
  // dim 64): for comparisons and tests of both.
  bool mmaSyncOnly = false;
};
/// Whether `p`'s tensors are all packed (unset strides count as packed).
bool packedLayout(const AttentionParams &p);
/// Whether attention() runs `p` at its strides: the tensor-core kernel
/// (bf16, head dims 64 or 128, at least 64 queries, no folded rows) with
/// rows and pointers 16-byte aligned.
bool attentionTakesStrides(Elem e, const AttentionParams &p);
/// How many pieces to split each query's keys into, and the workspace that
/// needs in 4-byte words (0 when not split): f32 partials, then counters
/// that must be zero before the first launch (each launch leaves them so).
int attentionSplits(Elem e, const AttentionParams &p, int multiprocessors);
/// The warps of the one block that takes each query row with all its keys
/// loaded before the kernel's wait (ready caches, short enough), else 0.
int attentionRowWarps(Elem e, const AttentionParams &p);
int64_t attentionWorkspaceFloats(const AttentionParams &p, int splits);
/// Head dims up to 256. Prefill-sized bf16 work with head dim 64 or 128
/// runs the tensor-core flash kernel; the rest one warp per key.
void attention(Elem e, const AttentionParams &p, int splits, float *workspace,
               ErrorWord *error, int step, cudaStream_t stream);

/// For o < outer: `chunk` bytes from in + o·chunk to out + o·outStride +
/// offset (a concat's part, one copy of a repeat).
void place(const void *in, void *out, int64_t outer, int64_t chunk, int64_t outStride,
           int64_t offset, cudaStream_t stream);

/// The most blocks a cross-entropy launch has, and the bytes of the parts of
/// its loss (a float a block, then an arrival counter).
constexpr int kMostLossBlocks = 1024;
constexpr int64_t kLossPartsBytes = (kMostLossBlocks + 1) * 4;

/// Softmax cross-entropy of logits [rows, vocab] (f32 or bf16; the sums are
/// f32; see the CPU kernel): reduction 0 mean, 1 sum, 2 none; the loss is
/// f32. Rows labelled `ignore` count nothing; other labels outside the
/// vocabulary are reported. The mean and sum add the rows in a fixed order
/// (a run repeats to the bit) through `parts`: kLossPartsBytes of device
/// memory, zero before the first launch, that one launch at a time uses.
void crossEntropy(Elem e, const void *logits, const int32_t *labels, int64_t rows,
                  int64_t vocab, int64_t ignore, int reduction, float *loss,
                  float *parts, ErrorWord *error, int step, cudaStream_t stream);
/// Its gradient, (softmax - one_hot) · grad (/ counted rows for mean), in
/// the logits' type; with `loss`, the loss as crossEntropy gives it, in the
/// same pass over the logits (then `parts` as crossEntropy takes them; both
/// may be null).
void crossEntropyGrad(Elem e, const void *logits, const int32_t *labels, const float *grad,
                      int64_t rows, int64_t vocab, int64_t ignore, int reduction, void *out,
                      ErrorWord *error, int step, cudaStream_t stream, float *loss,
                      float *parts);

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_KERNELS_H
