// A session picks its device and hands everything else to its executor.
#include "gai/Session.h"

#include "core/Executor.h"
#include "core/Tables.h"
#include "format/artifact_generated.h"
#include "gai/Comm.h"
#include "gai/FloatConvert.h"

#include <cstdlib>
#include <cstring>

namespace gai {

SessionOptions SessionOptions::fromEnvironment() {
  SessionOptions options;
  auto is = [](const char *name, const char *value) {
    const char *env = std::getenv(name);
    return env && std::strcmp(env, value) == 0;
  };
  options.cudaGraphs = !is("GAI_CUDA_GRAPHS", "0");
  options.profile = is("GAI_CUDA_PROFILE", "1");
  options.overlapLaunches = !is("GAI_CUDA_OVERLAP", "0");
  options.overlapCollectives = !is("GAI_COLLECTIVES_OVERLAP", "0");
  options.deterministic = is("GAI_DETERMINISTIC", "1");
  options.stepsBeside = !is("GAI_CUDA_BESIDE", "0");
  options.fastFp8Accumulation = !is("GAI_CUDA_FP8_FAST_ACCUM", "0");
  if (const char *tune = std::getenv("GAI_CUDA_GEMM_TUNE"))
    options.gemmTuneCandidates = std::atoi(tune);
  if (const char *spread = std::getenv("GAI_ATTENTION_GRAD_SPREAD"); spread && *spread)
    options.attentionGradSpread = std::strtof(spread, nullptr);
  return options;
}

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
  if (Status s = session->joinMesh(options.communicator); !s)
    return s;
  std::string device = options.device;
  if (device == "auto")
    device = cudaArtifact ? "cuda" : "cpu";
  StatusOr<std::unique_ptr<Executor>> executor = Status::error("");
  if (device == "cpu") {
    if (cudaArtifact)
      return Status::error("--device=cpu: the artifact was compiled for " + target +
                           "; compile it with --target=cpu to run on the CPU");
    executor = createCpuExecutor(session->artifact_, *session->comm_, options);
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
    executor = createCudaExecutor(session->artifact_, ordinal, options, *session->comm_);
  } else {
    return Status::error("--device=" + device + ": expected auto, cpu, cuda or cuda:N");
  }
  if (!executor)
    return executor.status();
  session->executor_ = std::move(*executor);
  if (Status s = session->initialiseParameters(); !s)
    return s;
  return session;
}

/// "dp=2,tp=2": gaic's --mesh spelling of the grid (axes dp, tp).
static std::string meshText(const Mesh &mesh) {
  static const char *const kAxes[] = {"dp", "tp"};
  std::string text;
  for (size_t i = 0; i < mesh.shape.size(); ++i)
    if (i == 0 || mesh.shape[i] != 1)
      text += (i ? "," : "") + std::string(i < 2 ? kAxes[i] : "axis") + "=" +
              std::to_string(mesh.shape[i]);
  return text;
}

/// A sharded artifact runs on as many processes as its mesh has ranks,
/// laid out on it; any other runs on a world of one.
Status Session::joinMesh(Communicator *given) {
  const format::Artifact &root = artifact_.root();
  Mesh mesh;
  if (root.options() && root.options()->mesh())
    mesh.shape.assign(root.options()->mesh()->begin(), root.options()->mesh()->end());
  int64_t ranks = mesh.shape.empty() ? 1 : mesh.size();
  if (!given || (given->size() == 1 && ranks != 1)) {
    if (ranks != 1)
      return Status::error("the artifact is sharded over " + std::to_string(ranks) +
                           " ranks (" + meshText(mesh) + "); run it with gai-run launch -n " +
                           std::to_string(ranks) + ", mpirun -n " + std::to_string(ranks) +
                           ", srun or torchrun");
    ownComm_ = singleProcessCommunicator();
    given = ownComm_.get();
  } else if (ranks == 1 && given->size() != 1) {
    return Status::error("the artifact runs on one device but the job has " +
                         std::to_string(given->size()) + " ranks; compile it with gaic "
                         "--mesh dp=" + std::to_string(given->size()) + " to shard it");
  } else if (given->size() != ranks) {
    return Status::error("the artifact is sharded over " + std::to_string(ranks) + " ranks (" +
                         meshText(mesh) + ") but the job has " +
                         std::to_string(given->size()) + "; launch it with -n " +
                         std::to_string(ranks));
  }
  if (mesh.shape.empty())
    mesh.shape = {given->size()};
  if (Status s = given->setMesh(mesh); !s)
    return s;
  comm_ = given;
  // The mesh's axis 1 is tp: each rank reads its slices of split weights.
  if (mesh.shape.size() == 2 && mesh.shape[1] > 1)
    return artifact_.useTensorParallelRank(mesh.groupIndex(given->rank(), 1u << 1),
                                           mesh.shape[1]);
  return Status::ok();
}

/// Trainable parameters (state of role Parameter) start as their weight
/// when the artifact has weights, converted to the state's precision.
Status Session::initialiseParameters() {
  const format::Artifact &root = artifact_.root();
  const format::Weights *w = root.weights();
  if (!artifact_.weights() || !w || !w->tensors() || !root.state())
    return Status::ok();
  std::map<std::string, const format::TensorDesc *> weights;
  for (const format::TensorDesc *t : *w->tensors())
    weights[t->name()->str()] = t;
  std::vector<uint8_t> converted;
  for (const format::TensorDesc *t : *root.state()) {
    if (t->role() != format::TensorRole::Parameter)
      continue;
    std::string name = t->name()->str(), weight = t->weight() ? t->weight()->str() : "";
    auto it = weights.find(weight);
    if (it == weights.end())
      return Status::error("state '" + name + "' has no weight '" + weight +
                           "' to start from");
    const format::TensorDesc *from = it->second;
    converted.resize(static_cast<size_t>(t->buffer()->size()));
    const uint8_t *src = artifact_.weights() + from->buffer()->offset();
    if (from->dtype() == t->dtype()) {
      std::memcpy(converted.data(), src, converted.size());
    } else {
      DType a = hostDType(from->dtype()), b = hostDType(t->dtype());
      convertFloats(src, a, converted.data(), b,
                    static_cast<size_t>(t->buffer()->size()) / dtypeSize(b));
    }
    if (Status s = executor_->writeState(t->buffer()->offset(), t->buffer()->size(),
                                         converted.data());
        !s)
      return s;
  }
  return Status::ok();
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
Status Session::refreshParamCopies() {
  if (!paramCopiesStale_ || !hasEntry(kRefreshParamCopiesEntry))
    return Status::ok();
  if (Status s = executor_->run(kRefreshParamCopiesEntry); !s)
    return s;
  paramCopiesStale_ = false;
  return Status::ok();
}
Status Session::run(const std::string &entry) {
  if (Status s = refreshParamCopies(); !s)
    return s;
  return executor_->run(entry);
}
StatusOr<std::vector<int32_t>> Session::decodeGreedy(const std::string &entry, int64_t steps,
                                                     int32_t lastPosition) {
  if (!hasEntry(entry))
    return Status::error("the artifact has no entry point '" + entry + "'");
  std::vector<TensorRef> in = inputs(entry), out = outputs(entry);
  const int64_t batch = in.empty() || in[0].shape.empty() ? 0 : in[0].shape[0];
  auto oneEach = [&](const TensorRef &t) {
    return t.dtype == DType::I32 && !t.shape.empty() && t.shape[0] == batch &&
           t.numElements() == batch;
  };
  if (batch == 0 || in.size() < 2 || !oneEach(in[0]) || !oneEach(in[1]) || out.empty() ||
      out[0].shape.size() != 2 || out[0].shape[0] != batch ||
      (out[0].dtype != DType::F32 && out[0].dtype != DType::BF16))
    return Status::error("entry '" + entry + "' is not a decode step: greedy decoding needs "
                         "one token and one position (i32) per row as its first inputs and "
                         "logits (f32 or bf16 [batch, vocab]) as its first output");
  if (steps < 1 || steps > executor_->greedyStepsAtOnce())
    return Status::error("entry '" + entry + "': " + std::to_string(steps) +
                         " greedy steps at once; " + deviceName() + " takes at most " +
                         std::to_string(executor_->greedyStepsAtOnce()));
  if (Status s = refreshParamCopies(); !s)
    return s;
  return executor_->decodeGreedy(entry, steps, lastPosition);
}
int64_t Session::greedyStepsAtOnce() const { return executor_->greedyStepsAtOnce(); }
void Session::resetState() {
  if (const auto *state = artifact_.root().state())
    for (const format::TensorDesc *t : *state)
      if (t->role() == format::TensorRole::KVCache)
        executor_->zeroState(t->buffer()->offset(), t->buffer()->size());
}

std::vector<TensorRef> Session::stateTensors() const {
  std::vector<TensorRef> refs = tensorRefs(artifact_.root().state(), nullptr);
  for (TensorRef &r : refs)
    r.data = nullptr;
  return refs;
}

static const format::TensorDesc *findState(const format::Artifact &root,
                                           const std::string &name) {
  if (root.state())
    for (const format::TensorDesc *t : *root.state())
      if (t->name()->str() == name)
        return t;
  return nullptr;
}

Status Session::readState(const std::string &name, void *dst) {
  const format::TensorDesc *t = findState(artifact_.root(), name);
  if (!t)
    return Status::error("the artifact has no state '" + name + "'");
  // A copy reads as its master now is, also before the next entry runs.
  if (t->role() == format::TensorRole::ParameterCopy)
    if (Status s = refreshParamCopies(); !s)
      return s;
  return executor_->readState(t->buffer()->offset(), t->buffer()->size(), dst);
}

Status Session::writeState(const std::string &name, const void *src) {
  const format::TensorDesc *t = findState(artifact_.root(), name);
  if (!t)
    return Status::error("the artifact has no state '" + name + "'");
  if (t->role() == format::TensorRole::Parameter)
    paramCopiesStale_ = true;
  return executor_->writeState(t->buffer()->offset(), t->buffer()->size(), src);
}
std::string Session::deviceName() const { return executor_->deviceName(); }
MemoryUse Session::memoryUse() const { return executor_->memoryUse(); }

} // namespace gai
