// Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: cuBLASLt's A is our B and
// its B our A, and a row-major matrix read column-major is its transpose,
// so neither operand moves.
#include "hal/cuda/Gemm.h"

#include <string>

namespace gai::cuda {
namespace {

Status lt(cublasStatus_t status, const char *what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status::ok();
  return Status::error(std::string("cuBLASLt ") + what + ": " +
                       cublasLtGetStatusString(status));
}

/// The largest power of two (up to 256) dividing the address.
uint32_t alignmentOf(const void *p) {
  auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a)
    a /= 2;
  return a;
}

} // namespace

GemmPlan::~GemmPlan() {
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (c_) cublasLtMatrixLayoutDestroy(c_);
  if (op_) cublasLtMatmulDescDestroy(op_);
}

StatusOr<std::unique_ptr<GemmPlan>> GemmPlan::create(cublasLtHandle_t handle,
                                                     const GemmDesc &desc,
                                                     Elem elem,
                                                     size_t workspaceBytes) {
  std::unique_ptr<GemmPlan> plan(new GemmPlan());
  plan->handle_ = handle;
  plan->desc_ = desc;
  plan->elem_ = elem;
  // A few rows against a weight stored [n, k]: cuBLASLt's GEMV kernels
  // reach about a third of the memory bandwidth there, ours most of it.
  auto aligned16 = [](const void *p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (desc.m <= kGemvRows && desc.batch == 1 && desc.transposeB && !desc.transposeA &&
      desc.k % 8 == 0 && aligned16(desc.a) && aligned16(desc.b)) {
    plan->gemv_ = true;
    return plan;
  }
  cudaDataType_t type = elem == Elem::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  if (Status s = lt(cublasLtMatmulDescCreate(&plan->op_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                    "descriptor");
      !s)
    return s;
  cublasOperation_t opA = desc.transposeB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = desc.transposeA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA);
  cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB);

  // Which part of the epilogue cuBLASLt can do.
  bool residual = desc.residual != nullptr;
  int act = desc.activation;
  bool ltActivation = !residual && (act == 0 || act == 3 || act == 4);
  plan->followUp_ = !ltActivation && act != 0;
  plan->beta_ = residual && !plan->followUp_ ? 1.0f : 0.0f;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  if (desc.bias)
    epilogue = !ltActivation || act == 0 ? CUBLASLT_EPILOGUE_BIAS
               : act == 3               ? CUBLASLT_EPILOGUE_GELU_BIAS
                                        : CUBLASLT_EPILOGUE_RELU_BIAS;
  else if (ltActivation && act == 3)
    epilogue = CUBLASLT_EPILOGUE_GELU;
  else if (ltActivation && act == 4)
    epilogue = CUBLASLT_EPILOGUE_RELU;
  cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                 sizeof epilogue);
  if (desc.bias) {
    cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                   &desc.bias, sizeof desc.bias);
    cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                   &type, sizeof type);
  }

  auto layout = [&](cublasLtMatrixLayout_t *out, int64_t rows, int64_t cols,
                    int64_t ld, int64_t stride) -> Status {
    if (Status s = lt(cublasLtMatrixLayoutCreate(out, type, rows, cols, ld), "layout"); !s)
      return s;
    int32_t count = static_cast<int32_t>(desc.batch);
    cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                     sizeof count);
    cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                     &stride, sizeof stride);
    return Status::ok();
  };
  // cuBLASLt's A = our B (n × k), its B = our A (k × m), its D = Cᵀ (n × m).
  Status s = desc.transposeB ? layout(&plan->a_, desc.k, desc.n, desc.k, desc.strideB)
                             : layout(&plan->a_, desc.n, desc.k, desc.n, desc.strideB);
  if (s)
    s = desc.transposeA ? layout(&plan->b_, desc.m, desc.k, desc.m, desc.strideA)
                        : layout(&plan->b_, desc.k, desc.m, desc.k, desc.strideA);
  if (s)
    s = layout(&plan->c_, desc.n, desc.m, desc.n, desc.strideC);
  if (!s)
    return s;

  cublasLtMatmulPreference_t preference;
  if (Status e = lt(cublasLtMatmulPreferenceCreate(&preference), "preference"); !e)
    return e;
  cublasLtMatmulPreferenceSetAttribute(preference,
                                       CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspaceBytes, sizeof workspaceBytes);
  const void *cPointer = plan->beta_ != 0.0f ? desc.residual : desc.c;
  uint32_t alignA = alignmentOf(desc.b), alignB = alignmentOf(desc.a),
           alignC = alignmentOf(cPointer), alignD = alignmentOf(desc.c);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                       &alignA, sizeof alignA);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                       &alignB, sizeof alignB);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                       &alignC, sizeof alignC);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                       &alignD, sizeof alignD);
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle, plan->op_, plan->a_, plan->b_, plan->c_, plan->c_, preference, 1,
      &result, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0)
    return Status::error("cuBLASLt has no algorithm for a " +
                         std::to_string(desc.m) + "x" + std::to_string(desc.n) +
                         "x" + std::to_string(desc.k) + " GEMM (batch " +
                         std::to_string(desc.batch) + ")");
  plan->algo_ = result.algo;
  return plan;
}

Status GemmPlan::run(void *workspace, size_t workspaceBytes,
                     cudaStream_t stream) const {
  if (gemv_) {
    gemv(elem_, desc_.a, desc_.b, desc_.c, desc_.bias, desc_.residual, desc_.m,
         desc_.n, desc_.k, desc_.activation, stream);
    return Status::ok();
  }
  float alpha = 1.0f;
  const void *cPointer = beta_ != 0.0f ? desc_.residual : desc_.c;
  if (Status s = lt(cublasLtMatmul(handle_, op_, &alpha, desc_.b, a_, desc_.a, b_,
                                   &beta_, cPointer, c_, desc_.c, c_, &algo_,
                                   workspace, workspaceBytes, stream),
                    "matmul");
      !s)
    return s;
  if (followUp_) {
    int64_t count = desc_.batch * desc_.m * desc_.n;
    activationResidual(elem_, desc_.c, desc_.residual, desc_.activation, count,
                       stream);
  }
  return Status::ok();
}

} // namespace gai::cuda
