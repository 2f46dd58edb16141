// A session picks its device and hands everything else to its executor.
#include "gai/Session.h"

#include "core/Executor.h"
#include "format/artifact_generated.h"

#include <cstdlib>

namespace gai {

Session::Session(LoadedArtifact artifact) : artifact_(std::move(artifact)) {}
Session::~Session() = default;

StatusOr<std::unique_ptr<Session>> Session::create(LoadedArtifact artifact,
                                                   const SessionOptions &options) {
  if (!artifact.weights() && artifact.weightsSize() > 0)
    return Status::error("the artifact was loaded without its weights");
  std::unique_ptr<Session> session(new Session(std::move(artifact)));
  const format::Artifact &root = session->artifact_.root();
  std::string target = root.options() && root.options()->target()
                           ? root.options()->target()->str()
                           : "cpu";
  bool cudaArtifact = target.rfind("cuda", 0) == 0;
  std::string device = options.device;
  if (device == "auto")
    device = cudaArtifact ? "cuda" : "cpu";
  StatusOr<std::unique_ptr<Executor>> executor = Status::error("");
  if (device == "cpu") {
    if (cudaArtifact)
      return Status::error("--device=cpu: the artifact was compiled for " + target +
                           "; compile it with --target=cpu to run on the CPU");
    executor = createCpuExecutor(session->artifact_);
  } else if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
    if (!cudaArtifact)
      return Status::error("--device=" + device + ": the artifact was compiled for " +
                           target + "; compile it with --target=cuda to run on a GPU");
    int ordinal = 0;
    if (device.size() > 5) {
      char *end = nullptr;
      long n = std::strtol(device.c_str() + 5, &end, 10);
      if (*end != '\0' || n < 0)
        return Status::error("--device=" + device + ": expected cuda:N");
      ordinal = static_cast<int>(n);
    }
    executor = createCudaExecutor(session->artifact_, ordinal);
  } else {
    return Status::error("--device=" + device + ": expected auto, cpu, cuda or cuda:N");
  }
  if (!executor)
    return executor.status();
  session->executor_ = std::move(*executor);
  return session;
}

bool Session::hasEntry(const std::string &name) const {
  return executor_->hasEntry(name);
}
std::vector<TensorRef> Session::inputs(const std::string &entry) {
  return executor_->inputs(entry);
}
std::vector<TensorRef> Session::outputs(const std::string &entry) {
  return executor_->outputs(entry);
}
Status Session::run(const std::string &entry) { return executor_->run(entry); }
void Session::resetState() { executor_->resetState(); }
std::string Session::deviceName() const { return executor_->deviceName(); }

} // namespace gai
