// dlopen from memory: the shared object goes into a memfd, never to disk.
#include "hal/cpu/KernelModule.h"

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

namespace gai::cpu {
namespace {

/// The x86-64 micro-architecture levels' key features.
Status checkCpu(const std::string &target) {
  std::string level = target.rfind("cpu:", 0) == 0 ? target.substr(4) : "";
#if defined(__x86_64__)
  __builtin_cpu_init();
  bool v2 = __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("popcnt");
  bool v3 = v2 && __builtin_cpu_supports("avx2") &&
            __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
  bool v4 = v3 && __builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  bool ok = level == "x86-64-v2"   ? v2
            : level == "x86-64-v3" ? v3
            : level == "x86-64-v4" ? v4
            : level == "x86-64" || level.empty();
  if (!ok)
    return Status::error("the artifact's kernels need " + level +
                         " and this CPU lacks it; recompile with "
                         "gaic --cpu=x86-64");
  return Status::ok();
#else
  return Status::error("the artifact's kernels are x86-64 code, this CPU "
                       "is not x86-64");
#endif
}

} // namespace

StatusOr<std::shared_ptr<KernelModule>>
KernelModule::load(const uint8_t *code, size_t size,
                   const std::vector<std::string> &symbols,
                   const std::string &target) {
  std::shared_ptr<KernelModule> module(new KernelModule());
  if (symbols.empty())
    return module;
  if (Status s = checkCpu(target); !s)
    return s;
  int fd = memfd_create("gai-kernels", MFD_CLOEXEC);
  if (fd < 0)
    return Status::error(std::string("memfd_create: ") + std::strerror(errno));
  module->fd_ = fd;
  size_t written = 0;
  while (written < size) {
    ssize_t n = ::write(fd, code + written, size - written);
    if (n <= 0)
      return Status::error(std::string("writing the kernels: ") +
                           std::strerror(errno));
    written += static_cast<size_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  module->handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!module->handle_)
    return Status::error(std::string("loading the kernels: ") + dlerror());
  for (const std::string &symbol : symbols) {
    void *fn = dlsym(module->handle_, symbol.c_str());
    if (!fn)
      return Status::error("the kernels lack symbol '" + symbol + "'");
    module->kernels_.push_back(reinterpret_cast<KernelFn>(fn));
  }
  return module;
}

KernelModule::~KernelModule() {
  if (handle_)
    dlclose(handle_);
  if (fd_ >= 0)
    ::close(fd_);
}

} // namespace gai::cpu
