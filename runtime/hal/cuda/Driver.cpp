#include "hal/cuda/Driver.h"

namespace gai::cuda {

Status cudaError(const std::string &what, cudaError_t error) {
  return Status::error(what + ": " + cudaGetErrorString(error));
}

StatusOr<const Driver *> Driver::get() {
  static Driver driver;
  static Status status = [] {
    auto resolve = [](const char *name, auto &fn) -> Status {
      void *p = nullptr;
      cudaDriverEntryPointQueryResult found;
      cudaError_t e = cudaGetDriverEntryPointByVersion(name, &p, 12000,
                                                       cudaEnableDefault, &found);
      if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || !p)
        return Status::error(std::string("the CUDA driver has no ") + name);
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
      return Status::ok();
    };
    for (Status s : {resolve("cuModuleLoadDataEx", driver.moduleLoadDataEx),
                     resolve("cuModuleUnload", driver.moduleUnload),
                     resolve("cuModuleGetFunction", driver.moduleGetFunction),
                     resolve("cuLaunchKernel", driver.launchKernel),
                     resolve("cuLaunchKernelEx", driver.launchKernelEx),
                     resolve("cuGetErrorString", driver.getErrorString)})
      if (!s)
        return s;
    return Status::ok();
  }();
  if (!status)
    return status;
  return &driver;
}

std::string Driver::message(CUresult result) const {
  const char *text = nullptr;
  if (getErrorString && getErrorString(result, &text) == CUDA_SUCCESS && text)
    return text;
  return "CUDA driver error " + std::to_string(static_cast<int>(result));
}

} // namespace gai::cuda
