// 2:4 sparse GEMMs through cuSPARSELt, loaded at run time (dlopen), so that
// a machine without the library keeps running dense GEMMs.
#ifndef GAI_RUNTIME_HAL_CUDA_SPARSEGEMM_H
#define GAI_RUNTIME_HAL_CUDA_SPARSEGEMM_H

#include "gai/Status.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace gai::cuda {

struct SparseLt;

/// cuSPARSELt, found once per process: $GAI_CUSPARSELT (a path), else
/// libcusparseLt.so.0 on the loader's path. The error says where it looked.
StatusOr<const SparseLt *> sparseLt();

/// D[m, n] = X[m, k] · Wᵀ (+ C[m, n] as a residual) in bf16 with f32
/// accumulation, for a weight W [n, k] that is 2:4 sparse along k (at most
/// two of each four consecutive values nonzero); C and D in f32 with
/// `wideOutput` (an f32 residual stream), where the library takes that.
/// The weight is compressed into cuSPARSELt's own layout once, when the
/// plan is made.
class SparseGemm {
public:
  /// `weight`: W on the device, dense (zeros included). Errors: no library,
  /// a shape it refuses, or a weight that is not 2:4.
  static StatusOr<std::unique_ptr<SparseGemm>> create(int64_t m, int64_t n, int64_t k,
                                                      const void *weight, bool residual,
                                                      cudaStream_t stream,
                                                      bool wideOutput = false);
  ~SparseGemm();
  /// `c` is read only when made with `residual` (D may be C).
  Status run(const void *x, const void *c, void *d, cudaStream_t stream) const;
  /// Picks the fastest of cuSPARSELt's configurations on these buffers.
  Status tune(const void *x, void *d, cudaStream_t stream);
  int64_t compressedBytes() const { return compressedBytes_; }

private:
  SparseGemm() = default;
  struct State;
  std::unique_ptr<State> state_;
  void *compressed_ = nullptr, *workspace_ = nullptr;
  int64_t compressedBytes_ = 0;
  size_t workspaceBytes_ = 0;
  bool residual_ = false;
};

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_SPARSEGEMM_H
