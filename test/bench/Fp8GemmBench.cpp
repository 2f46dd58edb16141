// Times cuBLASLt's fp8 GEMM on llama-1b's prefill projections,
// X[m, k]·Wᵀ with W [n, k] in e4m3 and a bf16 product, in each form gai
// could ask for: one scale each or a scale a row (outer vectors), with and
// without fast accumulation; for each, the fastest of the heuristic's first
// 16 algorithms, with its tile. Beside them: gai's tuned bf16 GEMM and the
// kernel that makes X in e4m3 with a scale a row. One JSON line per shape
// and form; docs/quantization.md gives the figures.
#include "../gpu/Bf16Inputs.h"
#include "BenchTiming.h"
#include "hal/cuda/Gemm.h"
#include "hal/cuda/Kernels.h"

#include <cublasLt.h>
#include <nlohmann/json.hpp>

#include <cstdio>

namespace {

using namespace gai;

constexpr int kCandidates = 16;

struct Fp8Form {
  bool rowScales, fast;
};

/// The fastest of the heuristic's candidates for one form: ms and tile id
/// (-1, -1 when cuBLASLt has none).
std::pair<double, int> fastestFp8(cublasLtHandle_t lt, int64_t m, int64_t n, int64_t k,
                                  const void *x8, const void *w8, void *c,
                                  const float *weightScales, const float *rowScales,
                                  Fp8Form form, void *workspace, size_t workspaceBytes,
                                  cudaStream_t stream) {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  const cublasOperation_t t = CUBLAS_OP_T, nOp = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &nOp, sizeof nOp);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &weightScales,
                                 sizeof weightScales);
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &rowScales,
                                 sizeof rowScales);
  if (form.rowScales) {
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof mode);
    cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof mode);
  }
  const int8_t fast = form.fast;
  cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatrixLayoutCreate(&a, CUDA_R_8F_E4M3, k, n, k);
  cublasLtMatrixLayoutCreate(&b, CUDA_R_8F_E4M3, k, m, k);
  cublasLtMatrixLayoutCreate(&d, CUDA_R_16BF, n, m, n);
  cublasLtMatmulPreference_t preference = nullptr;
  cublasLtMatmulPreferenceCreate(&preference);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspaceBytes, sizeof workspaceBytes);
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  cublasLtMatmulAlgoGetHeuristic(lt, op, a, b, d, d, preference, kCandidates, results, &found);
  std::pair<double, int> best{-1, -1};
  const float alpha = 1, beta = 0;
  for (int i = 0; i < found; ++i) {
    if (results[i].state != CUBLAS_STATUS_SUCCESS)
      continue;
    bool failed = false;
    const double ms = bench::timeMs(
        [&] {
          failed |= cublasLtMatmul(lt, op, &alpha, w8, a, x8, b, &beta, c, d, c, d,
                                   &results[i].algo, workspace, workspaceBytes,
                                   stream) != CUBLAS_STATUS_SUCCESS;
        },
        stream, 20, 3);
    if (failed)
      continue;
    if (best.first < 0 || ms < best.first) {
      int tile = -1;
      size_t written = 0;
      cublasLtMatmulAlgoConfigGetAttribute(&results[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID,
                                           &tile, sizeof tile, &written);
      best = {ms, tile};
    }
  }
  cublasLtMatmulPreferenceDestroy(preference);
  cublasLtMatrixLayoutDestroy(a);
  cublasLtMatrixLayoutDestroy(b);
  cublasLtMatrixLayoutDestroy(d);
  cublasLtMatmulDescDestroy(op);
  return best;
}

} // namespace

int main(int argc, char **argv) {
  const int64_t m = argc > 1 ? std::atoll(argv[1]) : 2048;
  cublasLtHandle_t lt = nullptr;
  cublasLtCreate(&lt);
  cudaStream_t stream = nullptr;
  cudaStreamCreate(&stream);
  const size_t workspaceBytes = 64 << 20;
  void *workspace = nullptr, *tune = nullptr;
  cudaMalloc(&workspace, workspaceBytes);
  cudaMalloc(&tune, workspaceBytes);
  // llama-1b's q and o, k and v, gate and up, down; and q, k and v as one.
  const int64_t shapes[][2] = {{2048, 2048}, {256, 2048}, {5632, 2048}, {2048, 5632},
                               {2560, 2048}};
  std::mt19937 rng(5);
  for (auto [n, k] : shapes) {
    const std::vector<float> x = bf16Normals(rng, m * k), w = bf16Normals(rng, n * k);
    void *dx = bench::upload(toBf16(x)), *dw = bench::upload(toBf16(w)), *dc = nullptr;
    void *x8 = nullptr, *w8 = nullptr;
    float *rowScales = nullptr, *weightScales = nullptr;
    cudaMalloc(&dc, m * n * 2);
    cudaMalloc(&x8, m * k);
    cudaMalloc(&w8, n * k);
    cudaMalloc(&rowScales, m * sizeof(float));
    cudaMalloc(&weightScales, n * sizeof(float));
    // The weights' bytes: any e4m3 values (0x00-0x7e and their negatives
    // hold no NaN); the timing does not depend on them.
    std::vector<uint8_t> bytes(n * k);
    for (uint8_t &v : bytes)
      v = static_cast<uint8_t>(rng() % 0x7f) | static_cast<uint8_t>(rng() % 2 ? 0x80 : 0);
    cudaMemcpy(w8, bytes.data(), bytes.size(), cudaMemcpyHostToDevice);
    const std::vector<float> ones(std::max(m, n), 1.0f / 64);
    cudaMemcpy(weightScales, ones.data(), n * sizeof(float), cudaMemcpyHostToDevice);

    auto dense = cuda::GemmPlan::create(lt, bench::projection(dx, dw, dc, m, n, k),
                                        cuda::Elem::BF16, workspaceBytes, tune, 16);
    if (!dense) {
      std::fprintf(stderr, "fp8-gemm-bench: %s\n", dense.status().message().c_str());
      return 1;
    }
    const double denseMs = bench::timeMs(
        [&] { (void)(*dense)->run(workspace, workspaceBytes, stream); }, stream, 50, 5);
    const double convertMs = bench::timeMs(
        [&] {
          cuda::quantizeFp8Rows(dx, m, k, static_cast<uint8_t *>(x8), rowScales, nullptr, 0,
                                stream);
        },
        stream, 50, 5);
    const double flops = 2.0 * m * n * k;
    for (Fp8Form form : {Fp8Form{true, false}, Fp8Form{true, true}, Fp8Form{false, false},
                         Fp8Form{false, true}}) {
      auto [ms, tile] = fastestFp8(lt, m, n, k, x8, w8, dc, weightScales, rowScales, form,
                                   workspace, workspaceBytes, stream);
      nlohmann::ordered_json line = {
          {"workload", "gemm-fp8"},
          {"m", m},
          {"n", n},
          {"k", k},
          {"scales", form.rowScales ? "rows" : "one"},
          {"fast_accum", form.fast},
          {"fp8_ms", ms},
          {"tile_id", tile},
          {"fp8_tflops", ms > 0 ? flops / ms / 1e9 : 0.0},
          {"convert_ms", convertMs},
          {"bf16_ms", denseMs},
          {"speedup_with_convert", ms > 0 ? denseMs / (ms + convertMs) : 0.0}};
      std::printf("%s\n", line.dump().c_str());
    }
    if (cudaError_t e = cudaGetLastError(); e != cudaSuccess) {
      std::fprintf(stderr, "fp8-gemm-bench: %s\n", cudaGetErrorString(e));
      return 1;
    }
    for (void *p : {dx, dw, dc, x8, w8, static_cast<void *>(rowScales),
                    static_cast<void *>(weightScales)})
      cudaFree(p);
  }
  return 0;
}
