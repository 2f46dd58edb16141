// GEMM with epilogue: OpenBLAS for the product, one pass for the epilogue.
#include "hal/cpu/Kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace gai::cpu {
namespace {

float activate(Activation act, float x) {
  switch (act) {
  case Activation::None:
    return x;
  case Activation::Silu:
    return x / (1.0f + std::exp(-x));
  case Activation::Gelu:
    return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
  case Activation::GeluTanh:
    return 0.5f * x *
           (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  case Activation::Relu:
    return std::max(x, 0.0f);
  }
  return x;
}

/// c = a·weightᵀ (+ c with `accumulate`) for A [m, k] not transposed and a
/// weight [n, k], float or quantized.
void productOfRows(const GemmArgs &g, const float *a, const float *weight,
                   const QuantizedWeightView *quantized, float *c, bool accumulate) {
  if (quantized) {
    QuantizedGemv q;
    q.a = a;
    q.c = c;
    q.m = g.m;
    q.n = g.n;
    q.k = g.k;
    q.lda = g.k;
    q.ldc = g.n;
    q.weight = *quantized;
    q.accumulate = accumulate;
    return quantizedGemv(q);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.m, g.n, g.k, 1.0f, a, g.k, weight,
              g.k, accumulate ? 1.0f : 0.0f, c, g.n);
}

/// C = act(A·Gateᵀ) ⊙ (A·Bᵀ): the up product lands in C, the gate's beside it.
void gatedGemm(const GemmArgs &g) {
  std::vector<float> gated(static_cast<size_t>(g.m * g.n));
  productOfRows(g, g.a, g.gate, g.quantizedGate, gated.data(), false);
  productOfRows(g, g.a, g.b, g.quantizedB, g.c, false);
  for (int64_t i = 0; i < g.m * g.n; ++i)
    g.c[i] *= activate(g.activation, gated[i]);
}

} // namespace

void gemm(const GemmArgs &g) {
  if (g.gate || g.quantizedGate)
    return gatedGemm(g);
  int64_t lda = g.transposeA ? g.m : g.k;
  int64_t ldb = g.transposeB ? g.k : g.n;
  bool epilogue = g.bias || g.residual || g.activation != Activation::None;
  std::vector<float> saved; // a residual that C overwrites
  for (int64_t i = 0; i < g.batch; ++i) {
    float *c = g.c + i * g.strideC;
    const float *residual = g.residual ? g.residual + i * g.strideC : nullptr;
    // C += A·B in place (gradient accumulation): BLAS's own beta = 1.
    bool accumulate = residual == c && g.activation == Activation::None;
    if (residual == c && !accumulate) {
      saved.assign(residual, residual + g.m * g.n);
      residual = saved.data();
    }
    if (g.quantizedB)
      productOfRows(g, g.a + i * g.strideA, nullptr, g.quantizedB, c, accumulate);
    else
      cblas_sgemm(CblasRowMajor, g.transposeA ? CblasTrans : CblasNoTrans,
                  g.transposeB ? CblasTrans : CblasNoTrans, g.m, g.n, g.k, 1.0f,
                  g.a + i * g.strideA, lda, g.b + i * g.strideB, ldb,
                  accumulate ? 1.0f : 0.0f, c, g.n);
    if (accumulate) {
      if (g.bias)
        for (int64_t r = 0; r < g.m; ++r)
          for (int64_t col = 0; col < g.n; ++col)
            c[r * g.n + col] += g.bias[col];
      continue;
    }
    if (!epilogue)
      continue;
    for (int64_t r = 0; r < g.m; ++r)
      for (int64_t col = 0; col < g.n; ++col) {
        float &x = c[r * g.n + col];
        float y = activate(g.activation, g.bias ? x + g.bias[col] : x);
        x = residual ? y + residual[r * g.n + col] : y;
      }
  }
}

} // namespace gai::cpu
