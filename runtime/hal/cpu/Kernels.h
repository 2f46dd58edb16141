// The CPU HAL's library kernels: what the plan calls for GEMMs, attention
// and data movement. Elementwise and row ops come from generated code.
// All tensors are dense, row-major f32 (i32 for ids and positions).
#ifndef GAI_RUNTIME_HAL_CPU_KERNELS_H
#define GAI_RUNTIME_HAL_CPU_KERNELS_H

#include "hal/RowStrides.h"
#include "gai/Quantize.h"

#include <cstdint>

namespace gai::cpu {

/// Activations a GEMM epilogue applies (the IR's gai.gemm activations).
enum class Activation { None, Silu, Gelu, GeluTanh, Relu };

/// A weight [n, k] stored quantized (gai/Quantize.h's formats and layout).
struct QuantizedWeightView {
  QuantFormat format = QuantFormat::Int8;
  const uint8_t *values = nullptr;
  const float *scale = nullptr;
  const uint8_t *zero = nullptr; ///< int4's, else null
  int64_t group = 0;             ///< int4's
  bool perTensorScale = false;   ///< fp8 with one scale
};

/// C[i] = act(A[i]·B[i] + bias) + residual[i] for i < batch, through BLAS.
/// A[i] is [m, k] ([k, m] if transposeA), B[i] is [k, n] ([n, k] if
/// transposeB); a batch stride of 0 reuses one matrix for every i.
struct GemmArgs {
  const float *a = nullptr, *b = nullptr;
  float *c = nullptr;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transposeA = false, transposeB = false;
  int64_t strideA = 0, strideB = 0, strideC = 0;
  const float *bias = nullptr;     ///< [n], or null
  const float *residual = nullptr; ///< like C (stride strideC), or null
  Activation activation = Activation::None;
  /// A gated linear unit, or null: C = act(A·Gateᵀ) ⊙ (A·Bᵀ) with Gate
  /// [n, k] like B (transposeB), batch 1, no bias or residual.
  const float *gate = nullptr;
  /// B (and the gate) stored quantized, [n, k], in place of b (and gate):
  /// the products go through quantizedGemv (A not transposed, B shared by
  /// the batch).
  const QuantizedWeightView *quantizedB = nullptr, *quantizedGate = nullptr;
};
void gemm(const GemmArgs &args);

/// C[m, n] (row stride ldc) = A[m, k]·dequant(W)ᵀ (row stride lda), or
/// added to C with `accumulate`: for few rows m, where the weight's bytes
/// are the cost.
struct QuantizedGemv {
  const float *a = nullptr;
  float *c = nullptr;
  int64_t m = 0, n = 0, k = 0, lda = 0, ldc = 0;
  QuantizedWeightView weight;
  bool accumulate = false;
};
void quantizedGemv(const QuantizedGemv &g);

/// out = softmax(mask(q·kᵀ·scale))·v per (batch, head), without the score
/// matrix: one pass over the keys with a running max and sum (online
/// softmax). q is [B, H, T, D]; k and v are [B, Hkv, S, D] and
/// [B, Hkv, S, Dv]; head h reads KV head h / (H / Hkv). With `causal`, query
/// t sits at position queryStart[b] + t (or S - T + t when queryStart is
/// null) and sees keys j <= position, and with window W > 0 only those with
/// position - j < W. softcap c > 0 maps scores to c·tanh(s / c).
struct AttentionArgs {
  const float *q = nullptr, *k = nullptr, *v = nullptr;
  float *out = nullptr;
  int64_t batch = 1, heads = 1, kvHeads = 1, queries = 0, keys = 0;
  int64_t headDim = 0, valueDim = 0;
  float scale = 1.0f, softcap = 0.0f;
  bool causal = true;
  int64_t window = 0;
  const int32_t *queryStart = nullptr;
  float *lse = nullptr; // [batch, heads, queries] when set: each row's log-sum-exp
  // Where the rows of q, k, v and out lie; all zero (the default): packed.
  RowStrides qStrides, kStrides, vStrides, outStrides;
};
void attention(const AttentionArgs &args);

/// Attention's backward (no queryStart): the gradients of q, k and v from
/// out's, given the forward's out and lse. qGrad, kGrad and vGrad are
/// overwritten.
struct AttentionGradArgs {
  AttentionArgs forward; // q, k, v, out, lse and the shape
  const float *outGrad = nullptr;
  float *qGrad = nullptr, *kGrad = nullptr, *vGrad = nullptr;
  // As forward's: the gradients' rows and out_grad's; zero: packed.
  RowStrides outGradStrides, qGradStrides, kGradStrides, vGradStrides;
};
void attentionGrad(const AttentionGradArgs &args);

/// out[i, :] = table[ids[i] - firstRow, :] for the `rows` rows the table
/// holds, zeros for other ids (a vocabulary shard); returns the first id
/// outside [0, vocab) (vocab -1: rows), or -1 when all are inside.
int64_t embedding(const float *table, int64_t rows, int64_t dim, const int32_t *ids,
                  int64_t count, float *out, int64_t firstRow = 0, int64_t vocab = -1);

/// embedding's backward: out [rows, dim] = the sum of grad's rows by their
/// ids (minus firstRow; ids of other shards add nothing). Returns the first
/// i whose id is outside [0, vocab), or -1.
int64_t embeddingGrad(const float *grad, int64_t rows, int64_t dim, const int32_t *ids,
                      int64_t count, float *out, int64_t firstRow, int64_t vocab);

/// Writes update [B, H, T, D] into cache [B, H, S, D] at slots
/// start[b] .. start[b] + T - 1. Returns the first row whose slots do not
/// fit, or -1.
int64_t cacheWrite(float *cache, const float *update, const int32_t *start,
                   int64_t batch, int64_t heads, int64_t slots,
                   int64_t tokens, int64_t dim);

/// out[b, :] = x[b, rows[b], :] for x [B, T, inner]. Returns the first b
/// whose row is outside [0, T), or -1.
int64_t take(const float *x, const int32_t *rows, int64_t batch, int64_t t,
             int64_t inner, float *out);

/// out = in with its dimensions permuted: out dim i is in dim perm[i].
/// Elements are `elementBytes` wide.
void transpose(const void *in, void *out, int64_t elementBytes,
               const int64_t *shape, const int64_t *perm, int64_t rank);

/// out = in[offsets[0] : offsets[0] + sizes[0], …].
void slice(const void *in, void *out, int64_t elementBytes,
           const int64_t *shape, const int64_t *offsets, const int64_t *sizes,
           int64_t rank);

/// The k largest values of each row of `in` [rows, n], largest first; ties
/// go to the lower index.
void topk(const float *in, int64_t rows, int64_t n, int64_t k, float *values,
          int32_t *indices);

/// out[i, j] = indices[i] - firstClass == j ? 1 : 0 for j < depth (a
/// shard of `classes`; -1: depth). Returns the first i whose index is
/// outside [0, classes), or -1.
int64_t oneHot(const int32_t *indices, int64_t count, int64_t depth, float *out,
               int64_t firstClass = 0, int64_t classes = -1);

/// For o < outer: `chunk` bytes from in + o·chunk to
/// out + o·outStride + offset (a concat's part, one copy of a repeat).
void place(const void *in, void *out, int64_t outer, int64_t chunk,
           int64_t outStride, int64_t offset);

/// Softmax cross-entropy of logits [rows, vocab] against labels [rows]:
/// rows labelled `ignore` count for nothing. reduction 0 (mean over counted
/// rows), 1 (sum) or 2 (none: one loss per row). Returns the first row whose
/// label is outside [0, vocab), or -1.
int64_t crossEntropy(const float *logits, const int32_t *labels, int64_t rows,
                     int64_t vocab, int64_t ignore, int reduction, float *loss);
/// Its gradient: (softmax - one_hot) · grad (per row for `none`), divided
/// by the counted rows for mean; ignored rows are zero.
int64_t crossEntropyGrad(const float *logits, const int32_t *labels,
                         const float *grad, int64_t rows, int64_t vocab,
                         int64_t ignore, int reduction, float *out);

enum class ReduceKind { Sum, Mean, Max, Min }; // the IR's gai.reduce kinds

/// Reduces `in` [outer, n, inner] over its middle dimension.
void reduce(const float *in, float *out, ReduceKind kind, int64_t outer,
            int64_t n, int64_t inner);

} // namespace gai::cpu

#endif // GAI_RUNTIME_HAL_CPU_KERNELS_H
