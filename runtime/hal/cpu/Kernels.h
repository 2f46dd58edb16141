// The CPU HAL's library kernels: what the plan calls for GEMMs, attention
// and data movement. Elementwise and row ops come from generated code.
// All tensors are dense, row-major f32 (i32 for ids and positions).
#ifndef GAI_RUNTIME_HAL_CPU_KERNELS_H
#define GAI_RUNTIME_HAL_CPU_KERNELS_H

#include <cstdint>

namespace gai::cpu {

/// Activations a GEMM epilogue applies (the IR's gai.gemm activations).
enum class Activation { None, Silu, Gelu, GeluTanh, Relu };

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
};
void gemm(const GemmArgs &args);

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
};
void attention(const AttentionArgs &args);

/// out[i, :] = table[ids[i], :]; returns the first id outside [0, vocab), or
/// -1 when all are inside (those rows are left untouched).
int64_t embedding(const float *table, int64_t vocab, int64_t dim,
                  const int32_t *ids, int64_t count, float *out);

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

} // namespace gai::cpu

#endif // GAI_RUNTIME_HAL_CPU_KERNELS_H
