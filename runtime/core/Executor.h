// What a Session runs on: one executor per device kind, behind one
// interface. Inputs and outputs are host memory on every device.
#ifndef GAI_RUNTIME_CORE_EXECUTOR_H
#define GAI_RUNTIME_CORE_EXECUTOR_H

#include "gai/Artifact.h"
#include "gai/Comm.h"
#include "gai/Session.h"
#include "gai/Status.h"
#include "format/artifact_generated.h"

#include <memory>
#include <string>
#include <vector>

namespace gai {

class Executor {
public:
  virtual ~Executor() = default;
  virtual bool hasEntry(const std::string &name) const = 0;
  virtual std::vector<TensorRef> inputs(const std::string &entry) = 0;
  virtual std::vector<TensorRef> outputs(const std::string &entry) = 0;
  virtual Status run(const std::string &entry) = 0;
  /// Greedy decoding without the host between steps (Session::decodeGreedy);
  /// 0 steps at once: this executor cannot.
  virtual int64_t greedyStepsAtOnce() const { return 0; }
  virtual StatusOr<std::vector<int32_t>> decodeGreedy(const std::string &entry, int64_t steps,
                                                      int32_t lastPosition) {
    (void)steps;
    (void)lastPosition;
    return Status::error("entry '" + entry + "': greedy decoding on the device is not "
                         "available on " + deviceName());
  }
  /// Byte ranges of the state space, to and from host memory.
  virtual Status readState(int64_t offset, int64_t size, void *dst) = 0;
  virtual Status writeState(int64_t offset, int64_t size, const void *src) = 0;
  virtual void zeroState(int64_t offset, int64_t size) = 0;
  virtual std::string deviceName() const = 0;
  /// Bytes this executor allocated for the artifact (its plan, and on a GPU
  /// the workspaces), and on a GPU the bytes in use on the whole device.
  virtual MemoryUse memoryUse() const = 0;
};

/// TensorRefs for a packed tensor list whose bytes start at `base`.
std::vector<TensorRef> tensorRefs(
    const flatbuffers::Vector<flatbuffers::Offset<format::TensorDesc>> *list,
    uint8_t *base);

/// Collectives go through `comm`, which outlives the executor; with
/// `options.overlapCollectives` (and more than one rank) on a thread of
/// their own. With `options.profile`, each step is timed and the report
/// printed at exit.
StatusOr<std::unique_ptr<Executor>> createCpuExecutor(const LoadedArtifact &artifact,
                                                      Communicator &comm,
                                                      const SessionOptions &options);

/// Whether this build has the CUDA backend and the machine a CUDA GPU.
int cudaDeviceCount();
/// Runs on CUDA device `ordinal`; an error when there is none.
StatusOr<std::unique_ptr<Executor>> createCudaExecutor(const LoadedArtifact &artifact,
                                                       int ordinal,
                                                       const SessionOptions &options,
                                                       Communicator &comm);

} // namespace gai

#endif // GAI_RUNTIME_CORE_EXECUTOR_H
