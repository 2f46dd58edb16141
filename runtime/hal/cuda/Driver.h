// The CUDA driver API calls the runtime makes itself (loading PTX and
// launching its kernels), found through cudart so that nothing links
// against libcuda: a machine without a driver still runs on the CPU.
#ifndef GAI_RUNTIME_HAL_CUDA_DRIVER_H
#define GAI_RUNTIME_HAL_CUDA_DRIVER_H

#include "gai/Status.h"

#include <cuda.h>
#include <cuda_runtime.h>

#include <string>

namespace gai::cuda {

struct Driver {
  decltype(&cuModuleLoadDataEx) moduleLoadDataEx = nullptr;
  decltype(&cuModuleUnload) moduleUnload = nullptr;
  decltype(&cuModuleGetFunction) moduleGetFunction = nullptr;
  decltype(&cuLaunchKernel) launchKernel = nullptr;
  decltype(&cuLaunchKernelEx) launchKernelEx = nullptr;
  decltype(&cuGetErrorString) getErrorString = nullptr;

  /// The entry points, resolved once.
  static StatusOr<const Driver *> get();
  std::string message(CUresult result) const;
};

/// "what: the CUDA error's text" for a failed runtime call.
Status cudaError(const std::string &what, cudaError_t error);

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_DRIVER_H
