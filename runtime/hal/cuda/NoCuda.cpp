// The CUDA backend's entry points in a build without CUDA.
#include "core/Executor.h"

namespace gai {

int cudaDeviceCount() { return 0; }

StatusOr<std::unique_ptr<Executor>> createCudaExecutor(const LoadedArtifact &, int, const SessionOptions &,
                                                       Communicator &) {
  return Status::error("this gai was built without the CUDA backend (no CUDA "
                       "toolkit was found); rebuild with one to run on a GPU");
}

StatusOr<std::unique_ptr<Communicator>> openCudaCommunicator(const JobPlacement &, int &) {
  return Status::error("this gai was built without the CUDA backend (no CUDA toolkit was "
                       "found), so it has no collectives between GPUs");
}

} // namespace gai
