// openHostCommunicator: the single-process communicator, or the MPI plugin
// found and loaded at run time.
#include "dist/MpiPlugin.h"

#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <unistd.h>

namespace gai {
namespace {

using OpenMpiCommunicator = decltype(&gaiOpenMpiCommunicator);

std::string executableDirectory() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0)
    return "";
  std::string exe(path, static_cast<size_t>(length));
  return exe.substr(0, exe.rfind('/'));
}

/// Where the plugin may be: $GAI_MPI_PLUGIN alone when set (this is the one
/// place it is read), else beside the executable (an install's bin/ or a
/// build's lib/ layout), in its ../lib, and the loader's own search path.
std::vector<std::string> pluginCandidates() {
  if (const char *path = std::getenv("GAI_MPI_PLUGIN"); path && *path)
    return {path};
  std::string dir = executableDirectory();
  std::vector<std::string> candidates;
  if (!dir.empty()) {
    candidates.push_back(dir + "/" + dist::kMpiPluginFile);
    candidates.push_back(dir + "/../lib/" + dist::kMpiPluginFile);
  }
  candidates.push_back(dist::kMpiPluginFile);
  return candidates;
}

StatusOr<OpenMpiCommunicator> loadPlugin(const JobPlacement &placement) {
  std::vector<std::string> candidates = pluginCandidates();
  std::string looked;
  for (const std::string &path : candidates) {
    bool bare = path.find('/') == std::string::npos;
    looked += (looked.empty() ? "" : ", ") + (bare ? "the library path" : path);
    if (!bare && access(path.c_str(), F_OK) != 0)
      continue;
    // Global, as Open MPI's components expect of libmpi's symbols; the
    // plugin itself exports nothing but its entry point.
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      if (bare)
        break;
      return Status::error(
          "cannot load the MPI communicator " + path + ": " + dlerror() +
          " (it needs the MPI it was built with; on Debian: apt-get install "
          "openmpi-bin)");
    }
    // Never closed: communicators made by it may live to the end.
    void *entry = dlsym(handle, dist::kMpiPluginEntry);
    if (!entry)
      return Status::error(path + " is not gai's MPI communicator (no " +
                           dist::kMpiPluginEntry + ")");
    return reinterpret_cast<OpenMpiCommunicator>(entry);
  }
  return Status::error(
      "this job has " + std::to_string(placement.size) + " ranks (" +
      placement.sizeVariable + "=" + std::to_string(placement.size) +
      ") and its host collectives need MPI, but " + dist::kMpiPluginFile +
      " was not found (looked at " + looked +
      "): build gai where CMake finds MPI (on Debian: "
      "apt-get install libopenmpi-dev openmpi-bin), or set GAI_MPI_PLUGIN "
      "to the plugin's path");
}

} // namespace

StatusOr<std::unique_ptr<Communicator>>
openHostCommunicator(const JobPlacement &placement) {
  if (placement.size <= 1)
    return singleProcessCommunicator();
  auto open = loadPlugin(placement);
  if (!open)
    return open.status();
  char error[1024] = "";
  Communicator *communicator =
      (*open)(dist::kMpiPluginAbiVersion, placement.rank, placement.size,
              placement.sizeVariable.c_str(), placement.collectiveTimeoutSeconds, error,
              sizeof error);
  if (!communicator)
    return Status::error(error[0] ? error
                                  : "the MPI communicator failed to open");
  return std::unique_ptr<Communicator>(communicator);
}

} // namespace gai
