// The CUDA executor: one device allocation carved by the plan, steps
// resolved to launches once, and each entry point replayed as a CUDA graph
// after its first run.
#include "core/Executor.h"
#include "core/StepOverlap.h"
#include "core/StepProfile.h"
#include "core/Tables.h"
#include "format/artifact_generated.h"
#include "hal/cuda/CudaBackend.h"
#include "hal/cuda/Driver.h"
#include "hal/cuda/Gemm.h"
#include "hal/cuda/Kernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <type_traits>
#include <variant>

namespace gai {
namespace {

using namespace gai::cuda;

constexpr int64_t kAlign = 256;
constexpr size_t kGemmWorkspace = 32u << 20;

int64_t alignUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

/// Whether an entry has steps the backend would run beside the others (a
/// training step's weight gradients): a generation artifact then gets no
/// second stream and no second GEMM workspace.
bool hasStepsBeside(const LoadedArtifact &artifact) {
  for (const DecodedEntry &entry : artifact.entries())
    for (bool beside : stepsBeside(entry.steps))
      if (beside)
        return true;
  return false;
}

/// Pinned host memory: what inputs and outputs live in.
struct PinnedBuffer {
  uint8_t *data = nullptr;
  int64_t size = 0;
  ~PinnedBuffer() {
    if (data)
      cudaFreeHost(data);
  }
};

class CudaExecutor final : public Executor {
public:
  CudaExecutor(const LoadedArtifact &artifact, int ordinal, const SessionOptions &options)
      : artifact_(artifact), ordinal_(ordinal), options_(options),
        profile_(options.profile) {}
  ~CudaExecutor() override;
  Status init();

  bool hasEntry(const std::string &name) const override {
    return entries_.count(name) != 0;
  }
  std::vector<TensorRef> inputs(const std::string &entry) override;
  std::vector<TensorRef> outputs(const std::string &entry) override;
  Status run(const std::string &entry) override;
  int64_t greedyStepsAtOnce() const override { return profile_ ? 0 : kGreedySteps; }
  StatusOr<std::vector<int32_t>> decodeGreedy(const std::string &entry, int64_t steps,
                                              int32_t lastPosition) override;
  Status readState(int64_t offset, int64_t size, void *dst) override;
  Status writeState(int64_t offset, int64_t size, const void *src) override;
  void zeroState(int64_t offset, int64_t size) override;
  std::string deviceName() const override { return name_; }
  MemoryUse memoryUse() const override {
    size_t freeBytes = 0, totalBytes = 0;
    cudaMemGetInfo(&freeBytes, &totalBytes);
    return {allocated_, static_cast<int64_t>(totalBytes - freeBytes)};
  }

  /// The job's collectives between GPUs; null for a world of one.
  void setCollectives(DeviceCollectives *collectives) { collectives_ = collectives; }

private:
  struct Entry {
    const format::EntryPoint *desc = nullptr;
    const DecodedEntry *commands = nullptr;
    PinnedBuffer hostInput, hostOutput;
    uint8_t *input = nullptr, *output = nullptr; // device
    RecordedEntry recorded;
    cudaGraphExec_t graph = nullptr;
    bool graphFailed = false;
    int runs = 0;
    // decodeGreedy: a run plus greedyFeed as one graph, and the device
    // tokens ring ([kGreedySteps, batch]) with its counters.
    cudaGraphExec_t greedyGraph = nullptr;
    bool greedyGraphFailed = false;
    int32_t greedyLast = 0; // the lastPosition greedyGraph has
    int32_t *greedyRing = nullptr;
    GreedyCounters *greedyCounters = nullptr;
    PinnedBuffer hostRing;
    std::vector<cudaEvent_t> events; // GAI_CUDA_PROFILE: one per step + 1
  };
  Status layOutWeights();
  uint8_t *pointer(const Entry &entry, const Buffer &ref) const;
  Status enqueue(Entry &entry, cudaStream_t stream);
  Status enqueueSteps(Entry &entry, cudaStream_t stream);
  /// What `enqueue` puts on the stream, as a graph; null when capture
  /// fails (said once on stderr: the caller then launches eagerly).
  cudaGraphExec_t capture(const std::string &what,
                          const std::function<Status(cudaStream_t)> &enqueue);
  static constexpr int64_t kGreedySteps = 16; // a chunk: the host sees tokens this often
  Status checkError(const Entry &entry);
  /// Waits for the stream; with collectives, watching them for a failed
  /// rank (never forever), and then aborting them.
  Status synchronize(const std::string &what);
  /// The entries' CUDA graphs, none captured again.
  void destroyGraphs();

  const LoadedArtifact &artifact_;
  int ordinal_;
  SessionOptions options_;
  std::string name_;
  int multiprocessors_ = 1;
  const Driver *driver_ = nullptr;
  CUmodule module_ = nullptr;
  std::vector<CUfunction> functions_;
  std::vector<std::string> kernelNames_;
  cublasLtHandle_t lt_ = nullptr;
  cudaStream_t stream_ = nullptr;
  uint8_t *device_ = nullptr; // the one allocation
  int64_t allocated_ = 0;     // its bytes
  uint8_t *weights_ = nullptr, *state_ = nullptr, *arena_ = nullptr;
  void *gemmWorkspace_ = nullptr;
  /// Prefill GEMMs over quantized weights: the largest one's dequantized
  /// weights (or fp8 A), reused by all of them.
  void *quantScratch_ = nullptr;
  int64_t quantScratchBytes_ = 0;
  float *attentionWorkspace_ = nullptr;
  float *gradScratch_ = nullptr;
  CudaResources resources_;
  DeviceCollectives *collectives_ = nullptr;
  cudaStream_t collectiveStream_ = nullptr;
  cudaStream_t besideStream_ = nullptr; // SessionOptions::stepsBeside
  ErrorWord *error_ = nullptr;
  PinnedBuffer hostError_;
  /// Weight tensors by their offset in the artifact's blob: (old offset,
  /// size, device offset), sorted.
  std::vector<std::array<int64_t, 3>> weightMap_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  /// SessionOptions::profile: steps run eagerly between events; the time
  /// per step kind is printed when the executor goes away.
  bool profile_ = false;
  StepProfile stepTimes_;
};

CudaExecutor::~CudaExecutor() {
  if (profile_ && !stepTimes_.empty())
    std::fputs(stepTimes_.report(name_, options_.profileSteps).c_str(), stderr);
  for (auto &[name, entry] : entries_)
    for (cudaEvent_t e : entry->events)
      cudaEventDestroy(e);
  destroyGraphs();
  // Kernels stuck in a failed job's collectives end only when NCCL aborts,
  // which it does once no graph holds its communicators.
  if (collectives_ && collectives_->failed())
    collectives_->abort();
  for (auto &[name, entry] : entries_) {
    for (cudaEvent_t e : entry->recorded.events)
      cudaEventDestroy(e);
    cudaFree(entry->greedyRing);
    cudaFree(entry->greedyCounters);
  }
  if (module_ && driver_)
    driver_->moduleUnload(module_);
  if (lt_)
    cublasLtDestroy(lt_);
  if (stream_)
    cudaStreamDestroy(stream_);
  if (collectiveStream_)
    cudaStreamDestroy(collectiveStream_);
  if (besideStream_)
    cudaStreamDestroy(besideStream_);
  if (device_)
    cudaFree(device_);
}

Status CudaExecutor::layOutWeights() {
  const format::Weights *w = artifact_.root().weights();
  int64_t next = 0;
  if (w && w->tensors())
    for (const format::TensorDesc *t : *w->tensors()) {
      weightMap_.push_back({t->buffer()->offset(), t->buffer()->size(), next});
      next = alignUp(next + t->buffer()->size());
    }
  std::sort(weightMap_.begin(), weightMap_.end());
  return Status::ok();
}

Status CudaExecutor::init() {
  int count = cudaDeviceCount();
  if (count == 0)
    return Status::error("no CUDA GPU is visible (or this build has no CUDA backend)");
  if (ordinal_ >= count)
    return Status::error("--device=cuda:" + std::to_string(ordinal_) + ": only " +
                         std::to_string(count) + " CUDA GPU(s)");
  if (collectives_ && collectives_->deviceOrdinal() != ordinal_)
    return Status::error("--device=cuda:" + std::to_string(ordinal_) +
                         ": this rank's collectives run on cuda:" +
                         std::to_string(collectives_->deviceOrdinal()));
  if (cudaError_t e = cudaSetDevice(ordinal_); e != cudaSuccess)
    return cudaError("cudaSetDevice", e);
  cudaDeviceProp props{};
  cudaGetDeviceProperties(&props, ordinal_);
  multiprocessors_ = props.multiProcessorCount;
  name_ = "cuda:" + std::to_string(ordinal_) + " (" + props.name + ")";

  setOverlapLaunches(options_.overlapLaunches);
  const format::Artifact &root = artifact_.root();

  auto driver = Driver::get();
  if (!driver)
    return driver.status();
  driver_ = *driver;
  if (const format::KernelModule *k = root.kernels();
      k && k->symbols() && k->symbols()->size() > 0) {
    if (!k->format() || k->format()->str() != "ptx" || !k->code() ||
        k->code()->size() == 0 || k->code()->data()[k->code()->size() - 1] != 0)
      return Status::error("the artifact's kernels are not PTX; compile it with "
                           "--target=cuda");
    CUresult r = driver_->moduleLoadDataEx(&module_, k->code()->data(), 0, nullptr,
                                           nullptr);
    if (r != CUDA_SUCCESS)
      return Status::error("loading the artifact's PTX failed: " + driver_->message(r));
    for (const flatbuffers::String *s : *k->symbols()) {
      CUfunction f;
      r = driver_->moduleGetFunction(&f, module_, s->c_str());
      if (r != CUDA_SUCCESS)
        return Status::error("the PTX has no kernel '" + s->str() + "'");
      functions_.push_back(f);
      kernelNames_.push_back(s->str());
    }
  }
  if (cublasLtCreate(&lt_) != CUBLAS_STATUS_SUCCESS)
    return Status::error("cuBLASLt could not start");
  if (cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
      e != cudaSuccess)
    return cudaError("cudaStreamCreate", e);

  // One allocation: weights | state | arena (shared by the entries, which
  // never run at once) | each entry's inputs and outputs | workspaces.
  // Trainable parameters live in the state (Session copies the weights
  // there); the weights space is then unused.
  if (!hasTrainableParameters(root))
    if (Status s = layOutWeights(); !s)
      return s;
  int64_t weightsBytes = 0;
  for (auto &t : weightMap_)
    weightsBytes = std::max(weightsBytes, alignUp(t[2] + t[1]));
  int64_t arenaBytes = 0, ioBytes = 0, attentionFloats = 0, gradFloats = 0,
          quantScratch = 0;
  // A second stream, with its own GEMM workspace, for the steps that run
  // beside the others (the backend picks them, stepsBeside).
  const bool besideSteps = options_.stepsBeside && !profile_ && hasStepsBeside(artifact_);
  const int64_t besideWorkspaceBytes = besideSteps ? int64_t(kGemmWorkspace) : 0;
  if (root.entries())
    for (const format::EntryPoint *desc : *root.entries()) {
      arenaBytes = std::max(arenaBytes, alignUp(desc->arena_size()));
      ioBytes += alignUp(packedSize(desc->inputs())) + alignUp(packedSize(desc->outputs()));
    }
  for (const DecodedEntry &decoded : artifact_.entries())
    for (const Command &command : decoded.steps)
      if (const auto *g = std::get_if<cmd::Gemm>(&command))
        quantScratch = std::max(quantScratch, quantScratchBytes(*g));
      else if (const auto *eg = std::get_if<cmd::EmbeddingGrad>(&command);
               eg && (eg->dtype == format::DType::F32 || eg->dtype == format::DType::BF16))
        gradFloats = std::max(
            gradFloats, embeddingGradScratchFloats(
                            eg->dtype == format::DType::BF16 ? Elem::BF16 : Elem::F32,
                            eg->vocab, eg->dim, eg->count, options_.deterministic));
      else if (const auto *g = std::get_if<cmd::AttentionGrad>(&command);
               g && (g->dtype == format::DType::F32 || g->dtype == format::DType::BF16)) {
        static uint8_t somewhere;
        AttentionGradParams p =
            attentionGradParamsOf(*g, [](const Buffer &) { return &somewhere; });
        p.deterministic = options_.deterministic;
        gradFloats = std::max(
            gradFloats,
            attentionGradWorkspaceFloats(
                g->dtype == format::DType::BF16 ? Elem::BF16 : Elem::F32, p));
      } else if (const auto *a = std::get_if<cmd::Attention>(&command);
               a && (a->dtype == format::DType::F32 || a->dtype == format::DType::BF16)) {
        // Buffers are not placed yet; sizing needs which ones are there.
        static uint8_t somewhere;
        AttentionParams p = attentionParamsOf(*a, [](const Buffer &) { return &somewhere; });
        Elem elem = a->dtype == format::DType::BF16 ? Elem::BF16 : Elem::F32;
        attentionFloats = std::max(
            attentionFloats,
            attentionWorkspaceFloats(p, attentionSplits(elem, p, multiprocessors_)));
      }
  int64_t stateBytes = alignUp(root.state_size());
  // The sizes come from the artifact: summed wide, and checked against the
  // device before anything is allocated.
  __int128 wanted = static_cast<__int128>(weightsBytes) + stateBytes + arenaBytes + ioBytes +
                    static_cast<__int128>(kGemmWorkspace) + besideWorkspaceBytes +
                    alignUp(attentionFloats * 4) +
                    alignUp(gradFloats * 4) +
                    alignUp(quantScratch) + alignUp(kLossPartsBytes) +
                    kAlign;
  size_t freeBytes = 0, totalBytes = 0;
  if (cudaError_t e = cudaMemGetInfo(&freeBytes, &totalBytes); e != cudaSuccess)
    return cudaError("reading the free memory of " + name_, e);
  // NCCL allocates its buffers later (at the first collective): leave it room.
  const __int128 ncclRoom = collectives_ ? __int128(1) << 30 : 0;
  if (wanted + ncclRoom > static_cast<__int128>(freeBytes)) {
    auto mib = [](__int128 bytes) { return std::to_string(static_cast<int64_t>(bytes >> 20)) + " MiB"; };
    return Status::error(
        "the artifact's planned peak is " +
        (wanted > INT64_MAX ? std::string("more bytes than fit in 64 bits")
                            : std::to_string(static_cast<int64_t>(wanted)) + " bytes (" +
                                  mib(wanted) + ": state " + mib(stateBytes) + ", arena " +
                                  mib(arenaBytes) + ", weights " + mib(weightsBytes) +
                                  ", inputs, outputs and workspaces " +
                                  mib(wanted - stateBytes - arenaBytes - weightsBytes) + ")") +
        "; " + name_ + " has " + std::to_string(freeBytes) + " bytes (" + mib(freeBytes) +
        ") free. Nothing ran. For training, gaic --memory-budget SIZE recomputes activations "
        "to fit (--remat)");
  }
  const auto total = static_cast<int64_t>(wanted);
  allocated_ = total;
  if (cudaError_t e = cudaMalloc(&device_, static_cast<size_t>(total)); e != cudaSuccess)
    return cudaError("allocating " + std::to_string(total >> 20) + " MiB on " + name_, e);
  uint8_t *cursor = device_;
  auto take = [&](int64_t bytes) {
    uint8_t *p = cursor;
    cursor += alignUp(bytes);
    return p;
  };
  weights_ = take(weightsBytes);
  state_ = take(stateBytes);
  arena_ = take(arenaBytes);
  gemmWorkspace_ = take(kGemmWorkspace);
  void *besideGemmWorkspace = besideSteps ? take(kGemmWorkspace) : nullptr;
  quantScratch_ = take(quantScratch);
  quantScratchBytes_ = quantScratch;
  attentionWorkspace_ = reinterpret_cast<float *>(take(attentionFloats * 4));
  gradScratch_ = reinterpret_cast<float *>(take(gradFloats * 4));
  float *lossParts = reinterpret_cast<float *>(take(kLossPartsBytes));
  error_ = reinterpret_cast<ErrorWord *>(take(kAlign));
  cudaMemset(device_, 0, static_cast<size_t>(total));

  for (auto &[from, size, to] : weightMap_)
    if (cudaError_t e = cudaMemcpy(weights_ + to, artifact_.weights() + from,
                                   static_cast<size_t>(size), cudaMemcpyHostToDevice);
        e != cudaSuccess)
      return cudaError("copying the weights to " + name_, e);
  if (cudaError_t e = cudaMallocHost(&hostError_.data, sizeof(ErrorWord));
      e != cudaSuccess)
    return cudaError("cudaMallocHost", e);

  resources_.lt = lt_;
  resources_.gemmWorkspace = gemmWorkspace_;
  resources_.gemmWorkspaceBytes = kGemmWorkspace;
  resources_.attentionWorkspace = attentionWorkspace_;
  resources_.gradScratch = gradScratch_;
  resources_.lossParts = lossParts;
  resources_.error = error_;
  resources_.multiprocessors = multiprocessors_;
  resources_.driver = driver_;
  resources_.functions = &functions_;
  resources_.kernelNames = &kernelNames_;
  resources_.gemmTuneCandidates = options_.gemmTuneCandidates;
  resources_.deterministic = options_.deterministic;
  resources_.attentionGradSpread = options_.attentionGradSpread;
  resources_.quantScratch = {quantScratch_, quantScratchBytes_, options_.fastFp8Accumulation};
  resources_.overlapLaunches =
      root.kernels() && root.kernels()->programmatic_launch() && overlapsLaunches();
  resources_.collectives = collectives_;
  if (besideSteps) {
    if (cudaError_t e = cudaStreamCreateWithFlags(&besideStream_, cudaStreamNonBlocking);
        e != cudaSuccess)
      return cudaError("cudaStreamCreate (beside steps)", e);
    resources_.besideStream = besideStream_;
    resources_.besideGemmWorkspace = besideGemmWorkspace;
  }
  if (collectives_ && options_.overlapCollectives) {
    if (cudaError_t e = cudaStreamCreateWithFlags(&collectiveStream_, cudaStreamNonBlocking);
        e != cudaSuccess)
      return cudaError("cudaStreamCreate (collectives)", e);
    resources_.collectiveStream = collectiveStream_;
  }
  // Every rank makes the same group communicators in the same order, here,
  // before any entry is recorded or captured.
  if (collectives_) {
    std::set<uint32_t> groups;
    for (const DecodedEntry &decoded : artifact_.entries())
      for (const Command &command : decoded.steps)
        std::visit(
            [&](const auto &c) {
              using C = std::decay_t<decltype(c)>;
              // all_slice sends nothing: no communicator of its own.
              if constexpr (std::is_base_of_v<cmd::Collective, C> &&
                            !std::is_same_v<C, cmd::AllSlice>)
                groups.insert(c.axes);
            },
            command);
    for (uint32_t axes : groups)
      if (Status s = collectives_->prepareGroup(axes); !s)
        return s;
  }
  if (root.entries())
    for (size_t index = 0; index < root.entries()->size(); ++index) {
      const format::EntryPoint *desc = root.entries()->Get(index);
      auto entry = std::make_unique<Entry>();
      entry->desc = desc;
      entry->commands = &artifact_.entries()[index];
      for (auto [buffer, device, size] :
           {std::tuple{&entry->hostInput, &entry->input, packedSize(desc->inputs())},
            std::tuple{&entry->hostOutput, &entry->output, packedSize(desc->outputs())}}) {
        buffer->size = size;
        *device = take(size);
        if (cudaError_t e = cudaMallocHost(&buffer->data, static_cast<size_t>(std::max<int64_t>(size, 1)));
            e != cudaSuccess)
          return cudaError("cudaMallocHost", e);
        std::memset(buffer->data, 0, static_cast<size_t>(size));
      }
      const Entry &placed = *entry;
      CudaBackend backend(resources_, [this, &placed](const Buffer &b) { return pointer(placed, b); },
                          entry->recorded);
      if (Status s = backend.recordAll(entry->commands->steps); !s)
        return Status::error("entry '" + desc->name()->str() + "': " + s.message());
      entries_[desc->name()->str()] = std::move(entry);
    }
  if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess)
    return cudaError("setting up " + name_, e);
  return Status::ok();
}

uint8_t *CudaExecutor::pointer(const Entry &entry, const Buffer &ref) const {
  switch (ref.space) {
  case format::Space::Arena: return arena_ + ref.offset;
  case format::Space::State: return state_ + ref.offset;
  case format::Space::Input: return entry.input + ref.offset;
  case format::Space::Output: return entry.output + ref.offset;
  case format::Space::Weights: {
    // The tensor holding the range, moved to its aligned device place.
    std::array<int64_t, 3> key{ref.offset, INT64_MAX, INT64_MAX};
    auto it = std::upper_bound(weightMap_.begin(), weightMap_.end(), key);
    if (it == weightMap_.begin())
      return nullptr;
    --it;
    if (ref.offset + ref.size > (*it)[0] + (*it)[1])
      return nullptr;
    return weights_ + (*it)[2] + (ref.offset - (*it)[0]);
  }
  }
  return nullptr;
}

std::vector<TensorRef> CudaExecutor::inputs(const std::string &entry) {
  auto it = entries_.find(entry);
  return it == entries_.end()
             ? std::vector<TensorRef>{}
             : tensorRefs(it->second->desc->inputs(), it->second->hostInput.data);
}

std::vector<TensorRef> CudaExecutor::outputs(const std::string &entry) {
  auto it = entries_.find(entry);
  return it == entries_.end()
             ? std::vector<TensorRef>{}
             : tensorRefs(it->second->desc->outputs(), it->second->hostOutput.data);
}

Status CudaExecutor::readState(int64_t offset, int64_t size, void *dst) {
  cudaError_t e = cudaMemcpyAsync(dst, state_ + offset, static_cast<size_t>(size),
                                  cudaMemcpyDeviceToHost, stream_);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(stream_);
  return e == cudaSuccess ? Status::ok()
                          : Status::error(std::string("reading state: ") + cudaGetErrorString(e));
}

Status CudaExecutor::writeState(int64_t offset, int64_t size, const void *src) {
  cudaError_t e = cudaMemcpyAsync(state_ + offset, src, static_cast<size_t>(size),
                                  cudaMemcpyHostToDevice, stream_);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(stream_);
  return e == cudaSuccess ? Status::ok()
                          : Status::error(std::string("writing state: ") + cudaGetErrorString(e));
}

void CudaExecutor::zeroState(int64_t offset, int64_t size) {
  cudaMemsetAsync(state_ + offset, 0, static_cast<size_t>(size), stream_);
  cudaStreamSynchronize(stream_);
}

void CudaExecutor::destroyGraphs() {
  for (auto &[name, entry] : entries_) {
    if (entry->graph)
      cudaGraphExecDestroy(entry->graph);
    if (entry->greedyGraph)
      cudaGraphExecDestroy(entry->greedyGraph);
    entry->graph = entry->greedyGraph = nullptr;
    entry->graphFailed = entry->greedyGraphFailed = true;
  }
}

Status CudaExecutor::synchronize(const std::string &what) {
  if (collectives_) {
    Status s = collectives_->synchronize(stream_, what);
    if (!s && collectives_->failed()) {
      destroyGraphs();
      collectives_->abort();
    }
    return s;
  }
  if (cudaError_t e = cudaStreamSynchronize(stream_); e != cudaSuccess)
    return cudaError(what, e);
  return Status::ok();
}

/// Inputs in, every step, outputs and the error word out: what a run is,
/// and what a graph captures.
Status CudaExecutor::enqueue(Entry &entry, cudaStream_t stream) {
  cudaMemsetAsync(error_, 0, sizeof(ErrorWord), stream);
  if (entry.hostInput.size > 0)
    cudaMemcpyAsync(entry.input, entry.hostInput.data,
                    static_cast<size_t>(entry.hostInput.size),
                    cudaMemcpyHostToDevice, stream);
  if (Status s = enqueueSteps(entry, stream); !s)
    return s;
  if (entry.hostOutput.size > 0)
    cudaMemcpyAsync(entry.hostOutput.data, entry.output,
                    static_cast<size_t>(entry.hostOutput.size),
                    cudaMemcpyDeviceToHost, stream);
  cudaMemcpyAsync(hostError_.data, error_, sizeof(ErrorWord), cudaMemcpyDeviceToHost,
                  stream);
  return Status::ok();
}

Status CudaExecutor::enqueueSteps(Entry &entry, cudaStream_t stream) {
  if (profile_ && entry.events.empty()) {
    entry.events.resize(entry.recorded.steps.size() + 1);
    for (cudaEvent_t &e : entry.events)
      cudaEventCreate(&e);
  }
  for (size_t i = 0; i < entry.recorded.steps.size(); ++i) {
    if (profile_)
      cudaEventRecord(entry.events[i], stream);
    if (Status s = entry.recorded.steps[i](stream); !s) {
      // Steps forked beside the stream end before anything else touches
      // what they read or write (a failed capture fails this too).
      if (besideStream_)
        cudaStreamSynchronize(besideStream_);
      return Status::error("step " + std::to_string(i) + " (" + entry.recorded.stepNames[i] +
                           "): " + s.message());
    }
  }
  if (profile_)
    cudaEventRecord(entry.events.back(), stream);
  return Status::ok();
}

cudaGraphExec_t CudaExecutor::capture(const std::string &what,
                                      const std::function<Status(cudaStream_t)> &enqueue) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  Status enqueued = e == cudaSuccess ? enqueue(stream_) : Status::ok();
  cudaError_t ended = e == cudaSuccess ? cudaStreamEndCapture(stream_, &graph) : e;
  if (e == cudaSuccess)
    e = ended;
  if (e == cudaSuccess && enqueued)
    e = cudaGraphInstantiate(&exec, graph, 0);
  if (graph)
    cudaGraphDestroy(graph);
  if (e != cudaSuccess || !enqueued) {
    // Still correct, launch by launch, but slower: say so once.
    std::fprintf(stderr, "gai: %s runs without a CUDA graph (capture: %s)\n", what.c_str(),
                 enqueued ? cudaGetErrorString(e) : enqueued.message().c_str());
    cudaGetLastError(); // the failed capture's error is not the run's
    return nullptr;
  }
  return exec;
}

Status CudaExecutor::checkError(const Entry &entry) {
  ErrorWord word;
  std::memcpy(&word, hostError_.data, sizeof word);
  if (word.flag == kNoError)
    return Status::ok();
  std::string at = "entry '" + entry.desc->name()->str() + "', step " +
                   std::to_string(word.step);
  if (word.step >= 0 && static_cast<size_t>(word.step) < entry.recorded.stepNames.size())
    at += " (" + entry.recorded.stepNames[word.step] + ")";
  switch (word.flag) {
  case kBadTokenId:
    return Status::error(at + ": token id " + std::to_string(word.a) +
                         " is outside the vocabulary");
  case kBadCacheWrite:
    return Status::error(at + ": row " + std::to_string(word.a) +
                         " writes at position " + std::to_string(word.b) +
                         ", past the cache slots");
  case kBadTakeRow:
    return Status::error(at + ": row " + std::to_string(word.a) + " picks position " +
                         std::to_string(word.b) + ", outside its sequence");
  case kBadOneHot:
    return Status::error(at + ": index " + std::to_string(word.a) +
                         " is outside the one-hot depth");
  case kBadLabel:
    return Status::error(at + ": label " + std::to_string(word.b) + " of row " +
                         std::to_string(word.a) + " is outside the vocabulary");
  case kBadQueryStart:
    return Status::error(at + ": row " + std::to_string(word.a) +
                         " starts at position " + std::to_string(word.b) +
                         ", outside the cache slots");
  default:
    return Status::error(at + ": the device reported error " + std::to_string(word.flag));
  }
}

Status CudaExecutor::run(const std::string &name) {
  auto it = entries_.find(name);
  if (it == entries_.end())
    return Status::error("the artifact has no entry point '" + name + "'");
  Entry &entry = *it->second;
  // The first run is eager (it also sets up cuBLASLt and the kernels);
  // the second captures a graph that later runs replay.
  if (options_.cudaGraphs && !profile_ && !entry.graph && !entry.graphFailed && entry.runs >= 1) {
    entry.graph = capture("entry '" + name + "'",
                          [&](cudaStream_t s) { return enqueue(entry, s); });
    entry.graphFailed = !entry.graph;
  }
  ++entry.runs;
  if (entry.graph) {
    if (cudaError_t e = cudaGraphLaunch(entry.graph, stream_); e != cudaSuccess)
      return cudaError("running entry '" + name + "'", e);
  } else if (Status s = enqueue(entry, stream_); !s) {
    return Status::error("entry '" + name + "', " + s.message());
  }
  if (Status s = synchronize("running entry '" + name + "' on " + name_); !s)
    return s;
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    return cudaError("running entry '" + name + "' on " + name_, e);
  if (profile_) {
    stepTimes_.addRun(name);
    for (size_t i = 0; i < entry.recorded.steps.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, entry.events[i], entry.events[i + 1]);
      stepTimes_.addStep(name, entry.recorded.stepNames[i], ms);
    }
  }
  return checkError(entry);
}

StatusOr<std::vector<int32_t>> CudaExecutor::decodeGreedy(const std::string &name,
                                                          int64_t steps,
                                                          int32_t lastPosition) {
  auto it = entries_.find(name);
  if (it == entries_.end())
    return Status::error("the artifact has no entry point '" + name + "'");
  Entry &entry = *it->second;
  // Session::decodeGreedy checked the entry's form and the step count.
  std::vector<TensorRef> in = inputs(name), out = outputs(name);
  const int64_t batch = in[0].numElements();
  const int64_t ringBytes = kGreedySteps * batch * static_cast<int64_t>(sizeof(int32_t));
  // Each buffer on its own: after a failed allocation the next call
  // retries what is missing instead of running with a null one.
  if (!entry.greedyRing)
    if (cudaError_t e = cudaMalloc(&entry.greedyRing, static_cast<size_t>(ringBytes));
        e != cudaSuccess)
      return cudaError("allocating the greedy tokens", e);
  if (!entry.greedyCounters)
    if (cudaError_t e = cudaMalloc(&entry.greedyCounters, sizeof(GreedyCounters));
        e != cudaSuccess)
      return cudaError("allocating the greedy counters", e);
  if (!entry.hostRing.data) {
    if (cudaError_t e = cudaMallocHost(&entry.hostRing.data, static_cast<size_t>(ringBytes));
        e != cudaSuccess)
      return cudaError("cudaMallocHost", e);
    entry.hostRing.size = ringBytes;
  }
  auto onDevice = [&](const uint8_t *host, const PinnedBuffer &buffer, uint8_t *device) {
    return device + (host - buffer.data);
  };
  auto *tokens = reinterpret_cast<int32_t *>(onDevice(in[0].data, entry.hostInput, entry.input));
  auto *positions =
      reinterpret_cast<int32_t *>(onDevice(in[1].data, entry.hostInput, entry.input));
  const uint8_t *logits = onDevice(out[0].data, entry.hostOutput, entry.output);
  const Elem elem = out[0].dtype == DType::BF16 ? Elem::BF16 : Elem::F32;
  const int64_t vocab = out[0].shape[1];
  const GreedyPick pick{tokens, positions, lastPosition, entry.greedyRing,
                        entry.greedyCounters};
  // Where the logits come from our GEMV, it picks the tokens as it writes
  // them: no second pass over the logits by one block (greedyFeed's).
  GemmPlan *picker =
      entry.recorded.finalGemv &&
              entry.recorded.finalGemv->canPickGreedy(logits, batch, vocab)
          ? entry.recorded.finalGemv
          : nullptr;
  auto step = [&](cudaStream_t s) -> Status {
    if (!picker) {
      if (Status st = enqueueSteps(entry, s); !st)
        return st;
      greedyFeed(elem, logits, batch, vocab, pick, s);
      return Status::ok();
    }
    picker->setGreedyPick(pick);
    Status st = enqueueSteps(entry, s);
    picker->setGreedyPick(std::nullopt);
    return st;
  };
  cudaMemsetAsync(error_, 0, sizeof(ErrorWord), stream_);
  cudaMemsetAsync(entry.greedyCounters, 0, sizeof(GreedyCounters), stream_);
  cudaMemcpyAsync(entry.input, entry.hostInput.data, static_cast<size_t>(entry.hostInput.size),
                  cudaMemcpyHostToDevice, stream_);
  for (int64_t i = 0; i < steps; ++i) {
    // As run(): the entry's first run is eager, later ones replay a graph.
    // The graph bakes in lastPosition, so another one means a new graph.
    if (entry.greedyGraph && entry.greedyLast != lastPosition) {
      cudaGraphExecDestroy(entry.greedyGraph);
      entry.greedyGraph = nullptr;
    }
    if (options_.cudaGraphs && !entry.greedyGraph && !entry.greedyGraphFailed && entry.runs >= 1) {
      entry.greedyGraph = capture("greedy decoding of entry '" + name + "'", step);
      entry.greedyGraphFailed = !entry.greedyGraph;
      entry.greedyLast = lastPosition;
    }
    ++entry.runs;
    if (entry.greedyGraph) {
      if (cudaError_t e = cudaGraphLaunch(entry.greedyGraph, stream_); e != cudaSuccess)
        return cudaError("greedy decoding of entry '" + name + "'", e);
    } else if (Status s = step(stream_); !s) {
      return Status::error("entry '" + name + "', " + s.message());
    }
  }
  cudaMemcpyAsync(entry.hostRing.data, entry.greedyRing,
                  static_cast<size_t>(steps * batch) * sizeof(int32_t), cudaMemcpyDeviceToHost,
                  stream_);
  cudaMemcpyAsync(hostError_.data, error_, sizeof(ErrorWord), cudaMemcpyDeviceToHost, stream_);
  if (Status s = synchronize("greedy decoding of entry '" + name + "' on " + name_); !s)
    return s;
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    return cudaError("greedy decoding of entry '" + name + "' on " + name_, e);
  if (Status s = checkError(entry); !s)
    return s;
  const auto *ring = reinterpret_cast<const int32_t *>(entry.hostRing.data);
  return std::vector<int32_t>(ring, ring + steps * batch);
}

} // namespace

int cudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}

StatusOr<std::unique_ptr<Executor>> createCudaExecutor(const LoadedArtifact &artifact,
                                                       int ordinal,
                                                       const SessionOptions &options,
                                                       Communicator &comm) {
  auto executor = std::make_unique<CudaExecutor>(artifact, ordinal, options);
  // NCCL's communicator is also the job's host communicator; any other
  // (a world of one, or MPI's) has no collectives between GPUs.
  auto *collectives = dynamic_cast<DeviceCollectives *>(&comm);
  if (!collectives && comm.size() != 1)
    return Status::error("a job of " + std::to_string(comm.size()) + " GPU ranks needs NCCL "
                         "between them, but its communicator is " + comm.kind() +
                         "'s; open it with openCudaCommunicator (gai-run does for CUDA "
                         "artifacts)");
  executor->setCollectives(collectives);
  if (Status s = executor->init(); !s)
    return s;
  return std::unique_ptr<Executor>(std::move(executor));
}

} // namespace gai
