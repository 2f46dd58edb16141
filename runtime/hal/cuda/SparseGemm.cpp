// cuSPARSELt through function pointers: its header gives the types, dlopen
// the code. The structured operand is W, cuSPARSELt's A: in column-major
// terms D[n, m] = op(A)·B with A = W stored [k, n] (transposed), B = X stored
// [k, m], which is X·Wᵀ row-major: the TN layout every cuSPARSELt version runs.
#include "hal/cuda/SparseGemm.h"

#if __has_include(<cusparseLt.h>)
#include <cusparseLt.h>

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

namespace gai::cuda {

struct SparseLt {
  decltype(&cusparseLtInit) init;
  decltype(&cusparseLtDestroy) destroy;
  decltype(&cusparseLtGetErrorString) errorString;
  decltype(&cusparseLtDenseDescriptorInit) denseDescriptor;
  decltype(&cusparseLtStructuredDescriptorInit) structuredDescriptor;
  decltype(&cusparseLtMatDescriptorDestroy) destroyDescriptor;
  decltype(&cusparseLtMatmulDescriptorInit) matmulDescriptor;
  decltype(&cusparseLtMatmulAlgSelectionInit) algSelection;
  decltype(&cusparseLtMatmulAlgSelectionDestroy) destroyAlgSelection;
  decltype(&cusparseLtMatmulPlanInit) planInit;
  decltype(&cusparseLtMatmulPlanDestroy) planDestroy;
  decltype(&cusparseLtMatmulGetWorkspace) workspace;
  decltype(&cusparseLtSpMMAPruneCheck) pruneCheck;
  decltype(&cusparseLtSpMMACompressedSize) compressedSize;
  decltype(&cusparseLtSpMMACompress) compress;
  decltype(&cusparseLtMatmul) matmul;
  decltype(&cusparseLtMatmulSearch) search;
  cusparseLtHandle_t handle{};

  Status check(cusparseStatus_t status, const char *what) const {
    if (status == CUSPARSE_STATUS_SUCCESS)
      return Status::ok();
    return Status::error(std::string("cuSPARSELt ") + what + ": " +
                         (errorString ? errorString(status) : "error " + std::to_string(status)));
  }
};

StatusOr<const SparseLt *> sparseLt() {
  static SparseLt lib;
  static Status status = [] {
    const char *env = std::getenv("GAI_CUSPARSELT");
    std::string name = env && *env ? env : "libcusparseLt.so.0";
    void *so = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!so)
      return Status::error("cuSPARSELt is not here (" + name + ": " + dlerror() +
                           "); set GAI_CUSPARSELT to libcusparseLt.so.0's path, or put its "
                           "directory on LD_LIBRARY_PATH (PyPI: nvidia-cusparselt-cu13)");
    std::string missing;
    auto bind = [&](const char *symbol, auto &fn) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(so, symbol));
      if (!fn)
        missing += std::string(missing.empty() ? "" : ", ") + symbol;
    };
    bind("cusparseLtInit", lib.init);
    bind("cusparseLtDestroy", lib.destroy);
    bind("cusparseLtGetErrorString", lib.errorString);
    bind("cusparseLtDenseDescriptorInit", lib.denseDescriptor);
    bind("cusparseLtStructuredDescriptorInit", lib.structuredDescriptor);
    bind("cusparseLtMatDescriptorDestroy", lib.destroyDescriptor);
    bind("cusparseLtMatmulDescriptorInit", lib.matmulDescriptor);
    bind("cusparseLtMatmulAlgSelectionInit", lib.algSelection);
    bind("cusparseLtMatmulAlgSelectionDestroy", lib.destroyAlgSelection);
    bind("cusparseLtMatmulPlanInit", lib.planInit);
    bind("cusparseLtMatmulPlanDestroy", lib.planDestroy);
    bind("cusparseLtMatmulGetWorkspace", lib.workspace);
    bind("cusparseLtSpMMAPruneCheck", lib.pruneCheck);
    bind("cusparseLtSpMMACompressedSize", lib.compressedSize);
    bind("cusparseLtSpMMACompress", lib.compress);
    bind("cusparseLtMatmul", lib.matmul);
    bind("cusparseLtMatmulSearch", lib.search);
    if (!missing.empty())
      return Status::error(name + " lacks " + missing);
    return lib.check(lib.init(&lib.handle), "init");
  }();
  if (!status)
    return status;
  return &lib;
}

struct SparseGemm::State {
  const SparseLt *lib = nullptr;
  cusparseLtMatDescriptor_t a{}, b{}, c{};
  cusparseLtMatmulDescriptor_t matmul{};
  cusparseLtMatmulAlgSelection_t alg{};
  cusparseLtMatmulPlan_t plan{};
  bool descriptors = false, planned = false;
};

StatusOr<std::unique_ptr<SparseGemm>> SparseGemm::create(int64_t m, int64_t n, int64_t k,
                                                         const void *weight, bool residual,
                                                         cudaStream_t stream, bool wideOutput) {
  StatusOr<const SparseLt *> found = sparseLt();
  if (!found)
    return found.status();
  const SparseLt &lib = **found;
  if (m <= 0 || n <= 0 || k <= 0 || n % 8 || k % 16 || m % 8)
    return Status::error("cuSPARSELt 2:4 GEMM: m, n multiples of 8 and k of 16 needed, got m " +
                         std::to_string(m) + ", n " + std::to_string(n) + ", k " +
                         std::to_string(k));
  std::unique_ptr<SparseGemm> gemm(new SparseGemm());
  gemm->residual_ = residual;
  gemm->state_ = std::make_unique<State>();
  State &s = *gemm->state_;
  s.lib = &lib;
  const auto col = CUSPARSE_ORDER_COL;
  const auto bf16 = CUDA_R_16BF;
  if (Status st = lib.check(lib.structuredDescriptor(&lib.handle, &s.a, k, n, k, 16, bf16, col,
                                                     CUSPARSELT_SPARSITY_50_PERCENT),
                            "structured descriptor");
      !st)
    return st;
  if (Status st = lib.check(lib.denseDescriptor(&lib.handle, &s.b, k, m, k, 16, bf16, col),
                            "dense descriptor");
      !st)
    return st;
  if (Status st = lib.check(lib.denseDescriptor(&lib.handle, &s.c, n, m, n, 16,
                                                wideOutput ? CUDA_R_32F : bf16, col),
                            "output descriptor");
      !st)
    return st;
  s.descriptors = true;
  if (Status st = lib.check(lib.matmulDescriptor(&lib.handle, &s.matmul, CUSPARSE_OPERATION_TRANSPOSE,
                                                 CUSPARSE_OPERATION_NON_TRANSPOSE, &s.a, &s.b,
                                                 &s.c, &s.c, CUSPARSE_COMPUTE_32F),
                            "matmul descriptor");
      !st)
    return st;
  if (Status st = lib.check(lib.algSelection(&lib.handle, &s.alg, &s.matmul,
                                             CUSPARSELT_MATMUL_ALG_DEFAULT),
                            "algorithm selection");
      !st)
    return st;
  if (Status st = lib.check(lib.planInit(&lib.handle, &s.plan, &s.matmul, &s.alg), "plan");
      !st)
    return st;
  s.planned = true;

  // The weight must already be 2:4: pruning is the compiler's.
  int *invalid = nullptr;
  if (cudaMalloc(&invalid, sizeof(int)) != cudaSuccess)
    return Status::error("cuSPARSELt: out of device memory");
  Status checked = lib.check(lib.pruneCheck(&lib.handle, &s.matmul, weight, invalid, stream),
                             "prune check");
  int hostInvalid = 0;
  cudaMemcpyAsync(&hostInvalid, invalid, sizeof(int), cudaMemcpyDeviceToHost, stream);
  cudaStreamSynchronize(stream);
  cudaFree(invalid);
  if (!checked)
    return checked;
  if (hostInvalid)
    return Status::error("cuSPARSELt: the weight [" + std::to_string(n) + ", " +
                         std::to_string(k) + "] is not 2:4 sparse along k");

  size_t compressed = 0, buffer = 0;
  if (Status st = lib.check(lib.compressedSize(&lib.handle, &s.plan, &compressed, &buffer),
                            "compressed size");
      !st)
    return st;
  void *scratch = nullptr;
  if (cudaMalloc(&gemm->compressed_, compressed) != cudaSuccess ||
      (buffer && cudaMalloc(&scratch, buffer) != cudaSuccess))
    return Status::error("cuSPARSELt: out of device memory for a compressed weight");
  gemm->compressedBytes_ = static_cast<int64_t>(compressed);
  Status done = lib.check(lib.compress(&lib.handle, &s.plan, weight, gemm->compressed_, scratch,
                                       stream),
                          "compress");
  cudaStreamSynchronize(stream);
  cudaFree(scratch);
  if (!done)
    return done;
  if (Status st = lib.check(lib.workspace(&lib.handle, &s.plan, &gemm->workspaceBytes_),
                            "workspace size");
      !st)
    return st;
  if (gemm->workspaceBytes_ && cudaMalloc(&gemm->workspace_, gemm->workspaceBytes_) != cudaSuccess)
    return Status::error("cuSPARSELt: out of device memory for a workspace");
  return gemm;
}

SparseGemm::~SparseGemm() {
  if (state_ && state_->lib) {
    const SparseLt &lib = *state_->lib;
    if (state_->planned) {
      lib.planDestroy(&state_->plan);
      lib.destroyAlgSelection(&state_->alg);
    }
    if (state_->descriptors) {
      lib.destroyDescriptor(&state_->a);
      lib.destroyDescriptor(&state_->b);
      lib.destroyDescriptor(&state_->c);
    }
  }
  cudaFree(compressed_);
  cudaFree(workspace_);
}

Status SparseGemm::run(const void *x, const void *c, void *d, cudaStream_t stream) const {
  const SparseLt &lib = *state_->lib;
  float alpha = 1.0f, beta = residual_ ? 1.0f : 0.0f;
  return lib.check(lib.matmul(&lib.handle, &state_->plan, &alpha, compressed_, x, &beta,
                              residual_ ? c : d, d, workspace_, &stream, 1),
                   "matmul");
}

Status SparseGemm::tune(const void *x, void *d, cudaStream_t stream) {
  const SparseLt &lib = *state_->lib;
  float alpha = 1.0f, beta = 0.0f;
  Status s = lib.check(lib.search(&lib.handle, &state_->plan, &alpha, compressed_, x, &beta, d, d,
                                  workspace_, &stream, 1),
                       "search");
  if (!s)
    return s;
  // The chosen configuration may want another workspace.
  size_t bytes = 0;
  if (Status st = lib.check(lib.workspace(&lib.handle, &state_->plan, &bytes), "workspace size");
      !st)
    return st;
  if (bytes > workspaceBytes_) {
    cudaFree(workspace_);
    workspace_ = nullptr;
    if (cudaMalloc(&workspace_, bytes) != cudaSuccess)
      return Status::error("cuSPARSELt: out of device memory for a workspace");
    workspaceBytes_ = bytes;
  }
  return Status::ok();
}

} // namespace gai::cuda

#else // built without cuSPARSELt's header: every 2:4 GEMM runs dense

namespace gai::cuda {

struct SparseLt {};
struct SparseGemm::State {};

StatusOr<const SparseLt *> sparseLt() {
  return Status::error("this build of gai has no cuSPARSELt support (its header, from PyPI's "
                       "nvidia-cusparselt-cu13, was not found when it was built)");
}
StatusOr<std::unique_ptr<SparseGemm>> SparseGemm::create(int64_t, int64_t, int64_t, const void *,
                                                         bool, cudaStream_t, bool) {
  return sparseLt().status();
}
SparseGemm::~SparseGemm() = default;
Status SparseGemm::run(const void *, const void *, void *, cudaStream_t) const {
  return sparseLt().status();
}
Status SparseGemm::tune(const void *, void *, cudaStream_t) { return sparseLt().status(); }

} // namespace gai::cuda

#endif
