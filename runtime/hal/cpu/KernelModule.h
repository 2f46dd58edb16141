// Generated CPU kernels: a shared object from the artifact, loaded from
// memory.
#ifndef GAI_RUNTIME_HAL_CPU_KERNELMODULE_H
#define GAI_RUNTIME_HAL_CPU_KERNELMODULE_H

#include "gai/Status.h"

#include <memory>
#include <string>
#include <vector>

namespace gai::cpu {

/// Every generated kernel takes its launch's buffers as one array.
using KernelFn = void (*)(void **buffers);

class KernelModule {
public:
  /// Checks that this CPU has the features `target` (cpu:x86-64-vN) needs,
  /// then dlopens `code` through an anonymous file and resolves `symbols`.
  static StatusOr<std::shared_ptr<KernelModule>>
  load(const uint8_t *code, size_t size, const std::vector<std::string> &symbols,
       const std::string &target);
  ~KernelModule();
  KernelModule(const KernelModule &) = delete;
  KernelModule &operator=(const KernelModule &) = delete;

  KernelFn kernel(size_t index) const { return kernels_[index]; }

private:
  KernelModule() = default;
  void *handle_ = nullptr;
  /// The anonymous file, open while the module is loaded: dlopen knows an
  /// object by its path, /proc/self/fd/N, which a closed fd's number would
  /// give the next module too (dlopen then returns this one's kernels).
  int fd_ = -1;
  std::vector<KernelFn> kernels_;
};

} // namespace gai::cpu

#endif // GAI_RUNTIME_HAL_CPU_KERNELMODULE_H
