// GEMMs through cuBLASLt: the plan is made once per step (layouts,
// epilogue, algorithm) and replayed every run.
#ifndef GAI_RUNTIME_HAL_CUDA_GEMM_H
#define GAI_RUNTIME_HAL_CUDA_GEMM_H

#include "gai/Status.h"
#include "hal/cuda/Kernels.h"

#include <cublasLt.h>

#include <memory>

namespace gai::cuda {

/// C[i] = act(A[i]·B[i] + bias) + residual[i], row-major, as the CPU's
/// GemmArgs (hal/cpu/Kernels.h), on device pointers.
struct GemmDesc {
  const void *a = nullptr, *b = nullptr;
  void *c = nullptr;
  const void *bias = nullptr, *residual = nullptr;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transposeA = false, transposeB = false;
  int64_t strideA = 0, strideB = 0, strideC = 0;
  int activation = 0; // the artifact's Activation
};

class GemmPlan {
public:
  /// Bias, ReLU and tanh-GELU go in cuBLASLt's epilogue and a residual in
  /// its C operand; SiLU, exact GELU and an activation with a residual
  /// follow as one elementwise kernel.
  static StatusOr<std::unique_ptr<GemmPlan>>
  create(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
         size_t workspaceBytes);
  ~GemmPlan();
  Status run(void *workspace, size_t workspaceBytes, cudaStream_t stream) const;

private:
  GemmPlan() = default;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  GemmDesc desc_;
  Elem elem_ = Elem::F32;
  float beta_ = 0.0f;
  bool followUp_ = false; // the elementwise kernel after the GEMM
  bool gemv_ = false;     // decode-sized: our GEMV kernel, not cuBLASLt
};

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_GEMM_H
