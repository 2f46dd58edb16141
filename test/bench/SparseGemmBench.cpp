// Times cuSPARSELt's 2:4 GEMM against the dense cuBLASLt GEMM that gai runs
// (both tuned) on llama-1b's prefill projections: X[m, k]·Wᵀ, W [n, k], bf16.
// One JSON line per shape; docs/pruning.md gives the figures.
#include "../gpu/Bf16Inputs.h"
#include "hal/cuda/Gemm.h"
#include "BenchTiming.h"
#include "hal/cuda/SparseGemm.h"

#include <nlohmann/json.hpp>

#include <cstdio>

int main(int argc, char **argv) {
  using namespace gai;
  int64_t m = argc > 1 ? std::atoll(argv[1]) : 2048;
  if (auto lib = cuda::sparseLt(); !lib) {
    std::fprintf(stderr, "sparse-gemm-bench: %s\n", lib.status().message().c_str());
    return 1;
  }
  cublasLtHandle_t lt = nullptr;
  cublasLtCreate(&lt);
  cudaStream_t stream = nullptr;
  cudaStreamCreate(&stream);
  const size_t workspaceBytes = 64 << 20;
  void *workspace = nullptr, *tune = nullptr;
  cudaMalloc(&workspace, workspaceBytes);
  cudaMalloc(&tune, workspaceBytes);
  const int64_t shapes[][3] = {{2048, 2048, 0}, {256, 2048, 0}, {5632, 2048, 0}, {2048, 5632, 0}};
  std::mt19937 rng(11);
  for (auto [n, k, unused] : shapes) {
    (void)unused;
    std::vector<float> x = bf16Normals(rng, m * k), w = bf16Normals(rng, n * k);
    prune24(w.data(), n, k);
    void *dx = bench::upload(toBf16(x)), *dw = bench::upload(toBf16(w)), *dc = nullptr;
    cudaMalloc(&dc, m * n * 2);
    auto dense = cuda::GemmPlan::create(lt, bench::projection(dx, dw, dc, m, n, k),
                                        cuda::Elem::BF16, workspaceBytes, tune, 16);
    auto sparse = cuda::SparseGemm::create(m, n, k, dw, false, stream);
    if (!dense || !sparse) {
      std::fprintf(stderr, "sparse-gemm-bench: %s\n",
                   (!dense ? dense.status() : sparse.status()).message().c_str());
      return 1;
    }
    if (Status s = (*sparse)->tune(dx, dc, stream); !s) {
      std::fprintf(stderr, "sparse-gemm-bench: %s\n", s.message().c_str());
      return 1;
    }
    double denseMs = bench::timeMs(
        [&] { (void)(*dense)->run(workspace, workspaceBytes, stream); }, stream, 50, 5);
    double sparseMs = bench::timeMs(
        [&] { (void)(*sparse)->run(dx, nullptr, dc, stream); }, stream, 50, 5);
    double flops = 2.0 * m * n * k;
    nlohmann::ordered_json line = {
        {"workload", "gemm-2:4"}, {"m", m}, {"n", n}, {"k", k},
        {"dense_ms", denseMs},    {"sparse_ms", sparseMs},
        {"speedup", denseMs / sparseMs},
        {"dense_tflops", flops / denseMs / 1e9}, {"sparse_dense_equivalent_tflops", flops / sparseMs / 1e9}};
    std::printf("%s\n", line.dump().c_str());
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dc);
  }
  return 0;
}
