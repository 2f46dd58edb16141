// Few-row GEMMs over quantized weights on the CPU: each weight row is read
// back into a small f32 buffer (it stays in L1) and dotted with A's rows
// there, so a decode step streams only the quantized bytes. Reading the
// whole weight back first (what larger m does, then BLAS) writes and reads
// four bytes a weight, which made int8 decode slower than f32.
#include "hal/cpu/Kernels.h"

#include "core/QuantizedRows.h"
#include "gai/Quantize.h"

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

namespace gai::cpu {
namespace {

// The column loop (with the row kernels inlined in it) gets an AVX2/FMA
// clone beside the baseline one, picked at load time (the build targets
// baseline x86-64).
#if defined(__x86_64__) && defined(__GNUC__)
#define GAI_CPU_CLONES __attribute__((target_clones("arch=haswell", "default")))
#define GAI_CPU_INLINE __attribute__((always_inline)) inline
#else
#define GAI_CPU_CLONES
#define GAI_CPU_INLINE inline
#endif

/// Σ a[i]·b[i] in eight independent partial sums, so the loop vectorises
/// without reassociating floats the compiler may not.
GAI_CPU_INLINE float dot(const float *a, const float *b, int64_t k) {
  float partial[8] = {};
  int64_t i = 0;
  for (; i + 8 <= k; i += 8)
    for (int j = 0; j < 8; ++j)
      partial[j] += a[i + j] * b[i + j];
  float sum = 0;
  for (; i < k; ++i)
    sum += a[i] * b[i];
  for (float p : partial)
    sum += p;
  return sum;
}

/// Weight row `col` as floats in `out` (gai/Quantize.h's dequantizeRow;
/// the int8 and int4 loops inline, at the clone's width).
GAI_CPU_INLINE void readRow(const QuantizedWeightView &w, int64_t col, int64_t k, float *out) {
  switch (w.format) {
  case QuantFormat::Int8:
    return int8Row(w.values, w.scale, col, k, out);
  case QuantFormat::Int4:
    return int4Row(w.values, w.scale, w.zero, col, k, w.group, out);
  case QuantFormat::Fp8E4M3:
    return dequantizeRow(w.format, w.values, w.scale, w.zero, col, k, w.group,
                         w.perTensorScale, out);
  }
}

/// Columns [first, last) of C = beta·C + A·dequant(W)ᵀ, each weight row
/// read back into `row` (k floats). The buffer comes from the caller: clang
/// emits no library template a clone alone instantiates (std::vector's
/// constructor here), and the link then fails.
GAI_CPU_CLONES void columnsInto(const QuantizedGemv &g, int64_t first, int64_t last,
                                float *row) {
  for (int64_t col = first; col < last; ++col) {
    readRow(g.weight, col, g.k, row);
    for (int64_t r = 0; r < g.m; ++r) {
      float &c = g.c[r * g.ldc + col];
      const float product = dot(g.a + r * g.lda, row, g.k);
      c = g.accumulate ? c + product : product;
    }
  }
}

void columns(const QuantizedGemv &g, int64_t first, int64_t last) {
  std::vector<float> row(static_cast<size_t>(g.k));
  columnsInto(g, first, last, row.data());
}

} // namespace

void quantizedGemv(const QuantizedGemv &g) {
  // Two halves on two threads where the weight is large enough to repay a
  // thread's start (tens of microseconds): the step is memory bound.
  const unsigned cores = std::max(1u, std::min(2u, std::thread::hardware_concurrency()));
  if (cores < 2 || g.n * g.k < (int64_t{1} << 20)) {
    columns(g, 0, g.n);
    return;
  }
  const int64_t half = g.n / 2;
  std::thread other;
  try {
    other = std::thread([&] { columns(g, half, g.n); });
  } catch (const std::system_error &) { // no thread to be had: one does all
    columns(g, 0, g.n);
    return;
  }
  columns(g, 0, half);
  other.join();
}

} // namespace gai::cpu
