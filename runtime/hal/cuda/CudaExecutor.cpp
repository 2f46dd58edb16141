// The CUDA executor: one device allocation carved by the plan, steps
// resolved to launches once, and each entry point replayed as a CUDA graph
// after its first run.
#include "core/Executor.h"
#include "core/Tables.h"
#include "format/artifact_generated.h"
#include "hal/cuda/Driver.h"
#include "hal/cuda/Gemm.h"
#include "hal/cuda/Kernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

namespace gai {
namespace {

using namespace gai::cuda;

constexpr int64_t kAlign = 256;
constexpr size_t kGemmWorkspace = 32u << 20;

int64_t alignUp(int64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

/// Reductions over a middle axis that go to cuBLASLt: sums and means of
/// rows wide enough to keep its tiles busy.
bool sumsColumnsByGemm(int kind, int64_t n, int64_t inner) {
  return (kind == 0 || kind == 1) && n >= 64 && inner >= 64 && inner % 8 == 0;
}

/// The kernels' element type for a step of type `dtype`.
StatusOr<Elem> elemOf(format::DType dtype, const std::string &at) {
  switch (dtype) {
  case format::DType::F32: return Elem::F32;
  case format::DType::BF16: return Elem::BF16;
  default:
    return Status::error(at + ": the CUDA backend computes in f32 or bf16, not " +
                         std::string(format::EnumNameDType(dtype)));
  }
}

/// The kernel's description of attention step `a`, its buffers placed by
/// `ptr` (a BufferRef to a device pointer, null for an absent one).
template <typename Pointer>
AttentionParams attentionParamsOf(const format::Attention *a, Pointer ptr) {
  AttentionParams p{};
  p.q = ptr(a->q());
  p.k = ptr(a->k());
  p.v = ptr(a->v());
  p.out = ptr(a->out());
  p.queryStart = reinterpret_cast<const int32_t *>(ptr(a->query_start()));
  p.batch = a->batch();
  p.heads = a->heads();
  p.kvHeads = a->kv_heads();
  p.queries = a->queries();
  p.keys = a->keys();
  p.headDim = a->head_dim();
  p.valueDim = a->value_dim();
  p.scale = a->scale();
  p.softcap = a->softcap();
  p.causal = a->causal();
  p.window = a->window();
  p.kNew = ptr(a->k_new());
  p.vNew = p.kNew ? ptr(a->v_new()) : nullptr;
  if (a->rope() != format::RopeStyle::None) { // the loader checked its positions
    p.ropeStyle = a->rope() == format::RopeStyle::Half ? 1 : 2;
    p.ropePositions = reinterpret_cast<const int32_t *>(ptr(a->rope_positions()));
    p.ropeRows = a->rope_positions()->size() / (4 * p.queries);
    p.ropeTheta = a->rope_theta();
  }
  p.cacheReady = a->cache_ready();
  return p;
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
  CudaExecutor(const LoadedArtifact &artifact, int ordinal)
      : artifact_(artifact), ordinal_(ordinal) {}
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

private:
  using StepFn = std::function<Status(cudaStream_t)>;
  struct Entry {
    const format::EntryPoint *desc = nullptr;
    PinnedBuffer hostInput, hostOutput;
    uint8_t *input = nullptr, *output = nullptr; // device
    std::vector<StepFn> steps;
    std::vector<std::string> stepNames;
    std::vector<std::unique_ptr<GemmPlan>> gemms;
    GemmPlan *finalGemv = nullptr; // our GEMV, when it is the last step
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
  Status buildSteps(Entry &entry);
  uint8_t *pointer(const Entry &entry, const format::BufferRef *ref) const;
  /// A sum (or mean) over the middle axis of [outer, n, inner] as a GEMM
  /// ones[1, n] · x[n, inner] per outer index: cuBLASLt reads x at full
  /// bandwidth where a thread per column would loop over n serially.
  Status addColumnSum(Entry &entry, Elem e, const void *in, void *out, int kind,
                      int64_t outer, int64_t n, int64_t inner);
  Status enqueue(Entry &entry, cudaStream_t stream);
  Status enqueueSteps(Entry &entry, cudaStream_t stream);
  /// What `enqueue` puts on the stream, as a graph; null when capture
  /// fails (said once on stderr: the caller then launches eagerly).
  cudaGraphExec_t capture(const std::string &what,
                          const std::function<Status(cudaStream_t)> &enqueue);
  static constexpr int64_t kGreedySteps = 16; // a chunk: the host sees tokens this often
  Status checkError(const Entry &entry);

  const LoadedArtifact &artifact_;
  int ordinal_;
  std::string name_;
  int multiprocessors_ = 1;
  const Driver *driver_ = nullptr;
  CUmodule module_ = nullptr;
  std::vector<CUfunction> functions_;
  cublasLtHandle_t lt_ = nullptr;
  cudaStream_t stream_ = nullptr;
  uint8_t *device_ = nullptr; // the one allocation
  uint8_t *weights_ = nullptr, *state_ = nullptr, *arena_ = nullptr;
  void *gemmWorkspace_ = nullptr;
  float *attentionWorkspace_ = nullptr;
  void *onesF32_ = nullptr, *onesBF16_ = nullptr; // for column sums by GEMM
  ErrorWord *error_ = nullptr;
  PinnedBuffer hostError_;
  /// Weight tensors by their offset in the artifact's blob: (old offset,
  /// size, device offset), sorted.
  std::vector<std::array<int64_t, 3>> weightMap_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  /// GAI_CUDA_PROFILE=1: steps run eagerly between events; the time per
  /// step kind is printed when the executor goes away.
  bool profile_ = false;
  std::map<std::string, std::pair<double, int64_t>> profileMs_;
};

CudaExecutor::~CudaExecutor() {
  if (profile_ && !profileMs_.empty()) {
    std::vector<std::pair<double, std::string>> rows;
    double total = 0;
    for (auto &[name, v] : profileMs_) {
      rows.emplace_back(v.first, name);
      total += v.first;
    }
    std::sort(rows.rbegin(), rows.rend());
    std::fprintf(stderr, "gai profile (%s): %.3f ms in steps\n", name_.c_str(), total);
    for (size_t i = 0; i < rows.size() && i < 30; ++i)
      std::fprintf(stderr, "  %10.3f ms %5.1f%%  %6lld  %s\n", rows[i].first,
                   100.0 * rows[i].first / total,
                   static_cast<long long>(profileMs_[rows[i].second].second),
                   rows[i].second.c_str());
  }
  for (auto &[name, entry] : entries_)
    for (cudaEvent_t e : entry->events)
      cudaEventDestroy(e);
  for (auto &[name, entry] : entries_) {
    if (entry->graph)
      cudaGraphExecDestroy(entry->graph);
    if (entry->greedyGraph)
      cudaGraphExecDestroy(entry->greedyGraph);
    cudaFree(entry->greedyRing);
    cudaFree(entry->greedyCounters);
  }
  if (module_ && driver_)
    driver_->moduleUnload(module_);
  if (lt_)
    cublasLtDestroy(lt_);
  if (stream_)
    cudaStreamDestroy(stream_);
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
  if (cudaError_t e = cudaSetDevice(ordinal_); e != cudaSuccess)
    return cudaError("cudaSetDevice", e);
  cudaDeviceProp props{};
  cudaGetDeviceProperties(&props, ordinal_);
  multiprocessors_ = props.multiProcessorCount;
  name_ = "cuda:" + std::to_string(ordinal_) + " (" + props.name + ")";

  if (const char *env = std::getenv("GAI_CUDA_PROFILE"))
    profile_ = std::string(env) == "1";
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
  int64_t arenaBytes = 0, ioBytes = 0, attentionFloats = 0, onesCount = 0;
  if (root.entries())
    for (const format::EntryPoint *desc : *root.entries()) {
      arenaBytes = std::max(arenaBytes, alignUp(desc->arena_size()));
      ioBytes += alignUp(packedSize(desc->inputs())) + alignUp(packedSize(desc->outputs()));
      if (desc->steps())
        for (const format::Step *step : *desc->steps())
          if (const format::LibraryCall *c = step->command_as_LibraryCall();
              c && c->name() && c->name()->str() == "reduce" && c->ints() &&
              c->ints()->size() >= 4 &&
              sumsColumnsByGemm(static_cast<int>(c->ints()->Get(0)), c->ints()->Get(2),
                                c->ints()->Get(3)))
            onesCount = std::max(onesCount, c->ints()->Get(2));
          else if (const format::Attention *a = step->command_as_Attention()) {
            // Buffers are not placed yet; sizing needs which ones are there.
            auto placeholder = [](const format::BufferRef *r) {
              static uint8_t somewhere;
              return r && r->size() > 0 ? &somewhere : nullptr;
            };
            AttentionParams p = attentionParamsOf(a, placeholder);
            if (auto elem = elemOf(a->dtype(), "attention"))
              attentionFloats =
                  std::max(attentionFloats,
                           attentionWorkspaceFloats(
                               p, attentionSplits(*elem, p, multiprocessors_)));
          }
    }
  int64_t stateBytes = alignUp(root.state_size());
  int64_t total = weightsBytes + stateBytes + arenaBytes + ioBytes +
                  static_cast<int64_t>(kGemmWorkspace) + alignUp(attentionFloats * 4) +
                  alignUp(onesCount * 4) + alignUp(onesCount * 2) + kAlign;
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
  attentionWorkspace_ = reinterpret_cast<float *>(take(attentionFloats * 4));
  onesF32_ = take(onesCount * 4);
  onesBF16_ = take(onesCount * 2);
  error_ = reinterpret_cast<ErrorWord *>(take(kAlign));
  cudaMemset(device_, 0, static_cast<size_t>(total));
  fill(onesF32_, onesCount * 4, 0x3f800000u, 4, nullptr); // after the memset
  fill(onesBF16_, onesCount * 2, 0x3f80u, 2, nullptr);

  for (auto &[from, size, to] : weightMap_)
    if (cudaError_t e = cudaMemcpy(weights_ + to, artifact_.weights() + from,
                                   static_cast<size_t>(size), cudaMemcpyHostToDevice);
        e != cudaSuccess)
      return cudaError("copying the weights to " + name_, e);
  if (cudaError_t e = cudaMallocHost(&hostError_.data, sizeof(ErrorWord));
      e != cudaSuccess)
    return cudaError("cudaMallocHost", e);

  if (root.entries())
    for (const format::EntryPoint *desc : *root.entries()) {
      auto entry = std::make_unique<Entry>();
      entry->desc = desc;
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
      if (Status s = buildSteps(*entry); !s)
        return Status::error("entry '" + desc->name()->str() + "': " + s.message());
      entries_[desc->name()->str()] = std::move(entry);
    }
  if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess)
    return cudaError("setting up " + name_, e);
  return Status::ok();
}

uint8_t *CudaExecutor::pointer(const Entry &entry, const format::BufferRef *ref) const {
  if (!ref || ref->size() == 0)
    return nullptr;
  switch (ref->space()) {
  case format::Space::Arena: return arena_ + ref->offset();
  case format::Space::State: return state_ + ref->offset();
  case format::Space::Input: return entry.input + ref->offset();
  case format::Space::Output: return entry.output + ref->offset();
  case format::Space::Weights: {
    // The tensor holding the range, moved to its aligned device place.
    std::array<int64_t, 3> key{ref->offset(), INT64_MAX, INT64_MAX};
    auto it = std::upper_bound(weightMap_.begin(), weightMap_.end(), key);
    if (it == weightMap_.begin())
      return nullptr;
    --it;
    if (ref->offset() + ref->size() > (*it)[0] + (*it)[1])
      return nullptr;
    return weights_ + (*it)[2] + (ref->offset() - (*it)[0]);
  }
  }
  return nullptr;
}

Status CudaExecutor::addColumnSum(Entry &entry, Elem e, const void *in, void *out, int kind,
                                  int64_t outer, int64_t n, int64_t inner) {
  GemmDesc d;
  d.a = e == Elem::BF16 ? onesBF16_ : onesF32_;
  d.b = in;
  d.c = out;
  d.batch = outer;
  d.m = 1;
  d.n = inner;
  d.k = n;
  d.strideA = 0;
  d.strideB = n * inner;
  d.strideC = inner;
  d.alpha = kind == 1 ? 1.0f / static_cast<float>(n) : 1.0f;
  auto plan = GemmPlan::create(lt_, d, e, kGemmWorkspace);
  if (!plan)
    return plan.status();
  const GemmPlan *p = plan->get();
  entry.gemms.push_back(std::move(*plan));
  void *workspace = gemmWorkspace_;
  entry.steps.push_back(
      [p, workspace](cudaStream_t s) { return p->run(workspace, kGemmWorkspace, s); });
  entry.stepNames.push_back("reduce as gemm " + std::to_string(n) + "x" +
                            std::to_string(inner) +
                            (outer > 1 ? " batch " + std::to_string(outer) : ""));
  return Status::ok();
}

/// Step index + 1 when it is a cache write of the same type, shape and
/// positions as `call` (step `index`), else null.
const format::LibraryCall *nextCacheWrite(const format::EntryPoint *desc, size_t index,
                                         const format::LibraryCall *call) {
  const auto *steps = desc->steps();
  if (index + 1 >= steps->size() ||
      steps->Get(index + 1)->command_type() != format::Command::LibraryCall)
    return nullptr;
  const format::LibraryCall *next = steps->Get(index + 1)->command_as_LibraryCall();
  auto sameRef = [](const format::BufferRef *a, const format::BufferRef *b) {
    return a->space() == b->space() && a->offset() == b->offset() && a->size() == b->size();
  };
  bool same = next->name() && next->name()->str() == "cache_write" && next->args() &&
              next->args()->size() == 3 && next->ints() && call->ints() &&
              next->dtype() == call->dtype() &&
              std::equal(next->ints()->begin(), next->ints()->end(), call->ints()->begin(),
                         call->ints()->end()) &&
              sameRef(next->args()->Get(2), call->args()->Get(2)) &&
              next->args()->Get(0)->size() == call->args()->Get(0)->size();
  return same ? next : nullptr;
}

/// What a decode GEMV pulls into L2 for the attention right after it: a
/// short cache that the attention's row blocks load first, whole (their
/// loads, issued at the block's start, are on the step's critical path;
/// llama-1b's decode went from 1078-1079 to 1083-1085 tok/s in one run).
/// Nothing for longer caches, split over blocks that start streaming
/// anyway. A prefetch only asks L2 for lines: it reads nothing a kernel
/// in flight writes, so it may go out before the GEMV's wait.
template <typename Pointer>
GemvPrefetch cachePrefetch(const format::Step *next, Elem elem, Pointer ptr) {
  constexpr int64_t kMostBytes = 4 << 20;
  GemvPrefetch prefetch;
  if (next->command_type() != format::Command::Attention)
    return prefetch;
  const format::Attention *a = next->command_as_Attention();
  AttentionParams p = attentionParamsOf(a, ptr);
  // The bulk prefetch takes 16-byte aligned regions of whole 16-byte words.
  auto words = [](const void *at, uint64_t bytes) {
    return at && reinterpret_cast<uintptr_t>(at) % 16 == 0 && bytes % 16 == 0;
  };
  if (attentionRowWarps(elem, p) == 0 || !words(p.k, a->k()->size()) ||
      !words(p.v, a->v()->size()) || a->k()->size() + a->v()->size() > kMostBytes)
    return prefetch;
  prefetch.region[0] = p.k;
  prefetch.region[1] = p.v;
  prefetch.bytes[0] = static_cast<int64_t>(a->k()->size());
  prefetch.bytes[1] = static_cast<int64_t>(a->v()->size());
  return prefetch;
}

Status CudaExecutor::buildSteps(Entry &entry) {
  if (!entry.desc->steps())
    return Status::ok();
  for (size_t index = 0; index < entry.desc->steps()->size(); ++index) {
    const format::Step *step = entry.desc->steps()->Get(index);
    int stepIndex = static_cast<int>(index);
    auto ptr = [&](const format::BufferRef *ref) { return pointer(entry, ref); };
    std::string at = "step " + std::to_string(index);
    switch (step->command_type()) {
    case format::Command::Gemm: {
      auto descOf = [&](const format::Gemm *g) {
        GemmDesc d;
        d.a = ptr(g->a());
        d.b = ptr(g->b());
        d.c = ptr(g->c());
        d.bias = ptr(g->bias());
        d.residual = ptr(g->residual());
        d.batch = g->batch();
        d.m = g->m();
        d.n = g->n();
        d.k = g->k();
        d.transposeA = g->transpose_a();
        d.transposeB = g->transpose_b();
        d.strideA = g->stride_a();
        d.strideB = g->stride_b();
        d.strideC = g->stride_c();
        d.activation = static_cast<int>(g->activation());
        d.gate = ptr(g->gate());
        d.norm.weight = ptr(g->norm_weight());
        d.norm.out = ptr(g->norm_out());
        d.norm.squares = reinterpret_cast<double *>(ptr(g->norm_squares()));
        d.norm.offset = g->norm_offset();
        d.norm.aSquares = reinterpret_cast<const double *>(ptr(g->a_squares()));
        d.norm.aEps = g->a_norm_eps();
        d.wideC = g->wide_c();
        auto isWeights = [](const format::BufferRef *r) {
          return r && r->space() == format::Space::Weights;
        };
        d.constantB = isWeights(g->b()) && (!d.gate || isWeights(g->gate())) &&
                      (!d.norm.weight || isWeights(g->norm_weight()));
        return d;
      };
      const format::Gemm *g = step->command_as_Gemm();
      auto elem = elemOf(g->dtype(), at + " (gemm)");
      if (!elem)
        return elem.status();
      // This GEMM and the ones right after it of the same type.
      std::vector<GemmDesc> run;
      for (size_t next = index; next < entry.desc->steps()->size(); ++next) {
        const format::Step *s = entry.desc->steps()->Get(next);
        if (s->command_type() != format::Command::Gemm ||
            s->command_as_Gemm()->dtype() != g->dtype())
          break;
        GemmDesc d = descOf(s->command_as_Gemm());
        if (!d.a || !d.b || !d.c)
          return Status::error("step " + std::to_string(next) +
                               " (gemm): an operand lies outside its buffer");
        run.push_back(d);
      }
      GemmMerge merge = mergeGemms(run, *elem);
      GemmDesc d = merge.count > 1 && !merge.gemv ? merge.batched : run[0];
      std::unique_ptr<GemmPlan> plan;
      if (merge.gemv) {
        plan = GemmPlan::createGemv({run.begin(), run.begin() + merge.count}, *elem);
      } else {
        auto made = GemmPlan::create(lt_, d, *elem, kGemmWorkspace, gemmWorkspace_);
        if (!made && merge.count > 1) { // no algorithm for the batch: one at a time
          merge.count = 1;
          d = run[0];
          made = GemmPlan::create(lt_, d, *elem, kGemmWorkspace, gemmWorkspace_);
        }
        if (!made)
          return Status::error(at + ": " + made.status().message());
        plan = std::move(*made);
      }
      if (merge.gemv && index + merge.count < entry.desc->steps()->size())
        plan->setPrefetch(cachePrefetch(entry.desc->steps()->Get(index + merge.count), *elem,
                                        ptr));
      if (merge.gemv && index + merge.count == entry.desc->steps()->size())
        entry.finalGemv = plan.get();
      const GemmPlan *p = plan.get();
      entry.gemms.push_back(std::move(plan));
      void *workspace = gemmWorkspace_;
      entry.steps.push_back([p, workspace](cudaStream_t s) {
        return p->run(workspace, kGemmWorkspace, s);
      });
      std::string name = "gemm " + std::to_string(d.m) + "x" + std::to_string(d.n) + "x" +
                         std::to_string(d.k);
      if (merge.count > 1)
        name += (merge.gemv ? " with " : " batch ") + std::to_string(merge.count) +
                (merge.gemv ? " parts" : "");
      else if (d.batch > 1)
        name += " batch " + std::to_string(d.batch);
      entry.stepNames.push_back(name + (d.gate ? " gated" : "") +
                                (d.activation ? " act" : "") +
                                (d.residual ? " residual" : ""));
      // The merged steps stay as empty ones, so step numbers keep meaning
      // the artifact's.
      for (size_t merged = 1; merged < merge.count; ++merged) {
        entry.steps.push_back([](cudaStream_t) { return Status::ok(); });
        entry.stepNames.push_back("gemm (done by step " + std::to_string(index) + ")");
      }
      index += merge.count - 1;
      break;
    }
    case format::Command::Attention: {
      const format::Attention *a = step->command_as_Attention();
      AttentionParams p = attentionParamsOf(a, ptr);
      if (p.headDim > 256 || p.valueDim > 256)
        return Status::error(at + " (attention): head dims above 256 are not supported");
      auto elem = elemOf(a->dtype(), at + " (attention)");
      if (!elem)
        return elem.status();
      Elem e = *elem;
      int splits = attentionSplits(e, p, multiprocessors_);
      float *workspace = attentionWorkspace_;
      ErrorWord *error = error_;
      entry.steps.push_back([=](cudaStream_t s) {
        attention(e, p, splits, workspace, error, stepIndex, s);
        return Status::ok();
      });
      entry.stepNames.push_back(std::string(p.kNew ? "cached " : "") + "attention q" +
                                std::to_string(p.queries) + " k" +
                                std::to_string(p.keys) + " splits " +
                                std::to_string(splits));
      break;
    }
    case format::Command::Launch: {
      const format::Launch *l = step->command_as_Launch();
      if (l->kernel() >= functions_.size() || !l->grid() || l->grid()->size() != 2)
        return Status::error(at + ": a launch without a GPU kernel or grid");
      auto args = std::make_shared<std::vector<CUdeviceptr>>();
      if (l->args())
        for (const format::BufferRef *ref : *l->args())
          args->push_back(reinterpret_cast<CUdeviceptr>(ptr(ref)));
      auto params = std::make_shared<std::vector<void *>>();
      for (CUdeviceptr &a : *args)
        params->push_back(&a);
      CUfunction f = functions_[l->kernel()];
      auto grid = static_cast<unsigned>(l->grid()->Get(0));
      auto block = static_cast<unsigned>(l->grid()->Get(1));
      const Driver *driver = driver_;
      // Kernels built to wait for their predecessor may start while it
      // finishes, hiding most of the launch between two small kernels.
      const bool overlap =
          artifact_.root().kernels()->programmatic_launch() && overlapsLaunches();
      entry.steps.push_back([=](cudaStream_t s) {
        CUlaunchAttribute attribute{};
        attribute.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attribute.value.programmaticStreamSerializationAllowed = 1;
        CUlaunchConfig config{};
        config.gridDimX = grid;
        config.gridDimY = config.gridDimZ = 1;
        config.blockDimX = block;
        config.blockDimY = config.blockDimZ = 1;
        config.hStream = s;
        config.attrs = &attribute;
        config.numAttrs = overlap ? 1 : 0;
        CUresult r = driver->launchKernelEx(&config, f, params->data(), nullptr);
        if (r != CUDA_SUCCESS)
          return Status::error("kernel launch: " + driver->message(r));
        (void)args; // keeps the pointers params points at alive
        return Status::ok();
      });
      entry.stepNames.push_back("kernel " + std::to_string(l->kernel()));
      break;
    }
    case format::Command::LibraryCall: {
      const format::LibraryCall *c = step->command_as_LibraryCall();
      std::string callee = c->name() ? c->name()->str() : "";
      std::vector<uint8_t *> args;
      if (c->args())
        for (const format::BufferRef *ref : *c->args())
          args.push_back(ptr(ref));
      std::vector<int64_t> ints;
      if (c->ints())
        ints.assign(c->ints()->begin(), c->ints()->end());
      auto need = [&](size_t nArgs, size_t nInts) -> Status {
        if (args.size() != nArgs || ints.size() < nInts)
          return Status::error(at + " (" + callee + "): expected " +
                               std::to_string(nArgs) + " buffers and " +
                               std::to_string(nInts) + " integers");
        return Status::ok();
      };
      // Data movement ignores the type; the others read it.
      static const char *const kTyped[] = {"embedding", "cache_write", "topk", "one_hot",
                                           "reduce", "cross_entropy", "cross_entropy_grad"};
      Elem e = Elem::F32;
      if (std::find(std::begin(kTyped), std::end(kTyped), callee) != std::end(kTyped)) {
        auto elem = elemOf(c->dtype(), at + " (" + callee + ")");
        if (!elem)
          return elem.status();
        e = *elem;
      }
      ErrorWord *error = error_;
      auto i32 = [](uint8_t *p) { return reinterpret_cast<int32_t *>(p); };
      StepFn fn;
      if (callee == "embedding") {
        if (Status s = need(3, 3); !s) return s;
        fn = [=](cudaStream_t s) {
          embedding(e, args[0], ints[0], ints[1], i32(args[1]), ints[2], args[2],
                    error, stepIndex, s);
          return Status::ok();
        };
      } else if (callee == "cache_write") {
        if (Status s = need(3, 5); !s) return s;
        // The next step, if it writes another cache at the same positions
        // (a layer's values after its keys), joins this launch: one
        // dependent step fewer before the attention that reads both.
        std::vector<CacheWrite> writes{{args[0], args[1]}};
        if (const format::LibraryCall *n = nextCacheWrite(entry.desc, index, c)) {
          uint8_t *cache = ptr(n->args()->Get(0)), *update = ptr(n->args()->Get(1));
          auto range = [&](const format::BufferRef *ref, uint8_t *p) {
            return std::make_pair(p, p + ref->size());
          };
          auto apart = [](std::pair<uint8_t *, uint8_t *> x, std::pair<uint8_t *, uint8_t *> y) {
            return x.second <= y.first || y.second <= x.first;
          };
          auto cache0 = range(c->args()->Get(0), args[0]), update0 = range(c->args()->Get(1), args[1]),
               cache1 = range(n->args()->Get(0), cache), update1 = range(n->args()->Get(1), update);
          if (cache && update && apart(cache0, cache1) && apart(cache0, update1) &&
              apart(cache1, update0))
            writes.push_back({cache, update});
        }
        fn = [=](cudaStream_t s) {
          cacheWrite(e, writes.data(), static_cast<int>(writes.size()), i32(args[2]), ints[0],
                     ints[1], ints[2], ints[3], ints[4], error, stepIndex, s);
          return Status::ok();
        };
        if (writes.size() > 1) {
          if (!args[0] || !args[1] || !args[2])
            return Status::error(at + " (cache_write): a buffer lies outside its space");
          entry.steps.push_back(std::move(fn));
          entry.stepNames.push_back("cache_write (two caches)");
          // The merged step stays as an empty one, so step numbers keep
          // meaning the artifact's.
          entry.steps.push_back([](cudaStream_t) { return Status::ok(); });
          entry.stepNames.push_back("cache_write (done by step " + std::to_string(index) + ")");
          ++index;
          break;
        }
      } else if (callee == "take") {
        if (Status s = need(3, 3); !s) return s;
        fn = [=](cudaStream_t s) {
          take(reinterpret_cast<const uint32_t *>(args[0]), i32(args[1]), ints[0],
               ints[1], ints[2], reinterpret_cast<uint32_t *>(args[2]), error,
               stepIndex, s);
          return Status::ok();
        };
      } else if (callee == "transpose" || callee == "slice") {
        if (Status s = need(2, 2); !s) return s;
        int64_t rank = ints[1];
        size_t want = 2 + (callee == "slice" ? 3 : 2) * static_cast<size_t>(rank);
        if (rank < 0 || rank > kMaxRank || ints.size() != want)
          return Status::error(at + " (" + callee + "): malformed shape");
        Shape a{}, b{}, c{};
        a.rank = b.rank = c.rank = rank;
        for (int64_t d = 0; d < rank; ++d) {
          a.dims[d] = ints[2 + d];
          b.dims[d] = ints[2 + rank + d];
          if (callee == "slice")
            c.dims[d] = ints[2 + 2 * rank + d];
        }
        int64_t bytes = ints[0];
        if (callee == "transpose")
          fn = [=](cudaStream_t s) {
            transpose(args[0], args[1], bytes, a, b, s);
            return Status::ok();
          };
        else
          fn = [=](cudaStream_t s) {
            slice(args[0], args[1], bytes, a, b, c, s);
            return Status::ok();
          };
      } else if (callee == "topk") {
        if (Status s = need(3, 3); !s) return s;
        if (ints[2] > 32)
          return Status::error(at + " (topk): k above 32 is not supported");
        fn = [=](cudaStream_t s) {
          topk(e, args[0], ints[0], ints[1], ints[2], args[1], i32(args[2]), s);
          return Status::ok();
        };
      } else if (callee == "one_hot") {
        if (Status s = need(2, 2); !s) return s;
        fn = [=](cudaStream_t s) {
          oneHot(e, i32(args[0]), ints[0], ints[1], args[1], error, stepIndex, s);
          return Status::ok();
        };
      } else if (callee == "reduce") {
        if (Status s = need(2, 4); !s) return s;
        int kind = static_cast<int>(ints[0]);
        int64_t outer = ints[1], n = ints[2], inner = ints[3];
        if (sumsColumnsByGemm(kind, n, inner)) {
          if (!args[0] || !args[1])
            return Status::error(at + " (reduce): a buffer lies outside its space");
          if (Status s = addColumnSum(entry, e, args[0], args[1], kind, outer, n, inner); !s)
            return Status::error(at + " (reduce): " + s.message());
          break;
        }
        fn = [=](cudaStream_t s) {
          reduce(e, args[0], args[1], static_cast<int>(ints[0]), ints[1], ints[2],
                 ints[3], s);
          return Status::ok();
        };
      } else if (callee == "copy") {
        if (Status s = need(2, 0); !s) return s;
        size_t bytes = static_cast<size_t>(
            std::min(c->args()->Get(0)->size(), c->args()->Get(1)->size()));
        fn = [=](cudaStream_t s) {
          if (cudaError_t err = cudaMemcpyAsync(args[1], args[0], bytes,
                                                cudaMemcpyDeviceToDevice, s);
              err != cudaSuccess)
            return cudaError("copy", err);
          return Status::ok();
        };
      } else if (callee == "place") {
        if (Status s = need(2, 4); !s) return s;
        int64_t outer = ints[0], chunk = ints[1], stride = ints[2], offset = ints[3];
        if (outer < 0 || chunk < 0 || outer * chunk > c->args()->Get(0)->size() ||
            (outer > 0 && (outer - 1) * stride + offset + chunk > c->args()->Get(1)->size()))
          return Status::error(at + " (place): the blocks fall outside the buffers");
        fn = [=](cudaStream_t s) {
          place(args[0], args[1], outer, chunk, stride, offset, s);
          return Status::ok();
        };
      } else if (callee == "cross_entropy" || callee == "cross_entropy_grad") {
        bool grad = callee == "cross_entropy_grad";
        if (Status s = need(grad ? 4 : 3, 4); !s) return s;
        int64_t rows = ints[0], vocab = ints[1], ignore = ints[2];
        int reduction = static_cast<int>(ints[3]);
        auto f32 = [](uint8_t *p) { return reinterpret_cast<float *>(p); };
        if (grad)
          fn = [=](cudaStream_t s) {
            crossEntropyGrad(e, args[0], i32(args[1]), f32(args[2]), rows, vocab, ignore,
                             reduction, args[3], error, stepIndex, s);
            return Status::ok();
          };
        else
          fn = [=](cudaStream_t s) {
            crossEntropy(e, args[0], i32(args[1]), rows, vocab, ignore, reduction,
                         f32(args[2]), error, stepIndex, s);
            return Status::ok();
          };
      } else if (callee == "fill") {
        if (Status s = need(1, 1); !s) return s;
        int64_t bytes = c->args()->Get(0)->size();
        int width = ints.size() > 1 ? static_cast<int>(ints[1]) : 4;
        auto bits = static_cast<uint32_t>(ints[0]);
        fn = [=](cudaStream_t s) {
          fill(args[0], bytes, bits, width, s);
          return Status::ok();
        };
      } else {
        return Status::error(at + ": no such library kernel in this runtime: " + callee);
      }
      for (uint8_t *a : args)
        if (!a)
          return Status::error(at + " (" + callee + "): a buffer lies outside its space");
      entry.steps.push_back(std::move(fn));
      entry.stepNames.push_back(callee);
      break;
    }
    default:
      return Status::error(at + ": unknown command");
    }
  }
  return Status::ok();
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
    entry.events.resize(entry.steps.size() + 1);
    for (cudaEvent_t &e : entry.events)
      cudaEventCreate(&e);
  }
  for (size_t i = 0; i < entry.steps.size(); ++i) {
    if (profile_)
      cudaEventRecord(entry.events[i], stream);
    if (Status s = entry.steps[i](stream); !s)
      return Status::error("step " + std::to_string(i) + " (" + entry.stepNames[i] +
                           "): " + s.message());
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

/// GAI_CUDA_GRAPHS=0 launches every step eagerly (for comparing).
static bool usesGraphs() {
  static const bool graphs = [] {
    const char *env = std::getenv("GAI_CUDA_GRAPHS");
    return !env || std::string(env) != "0";
  }();
  return graphs;
}

Status CudaExecutor::checkError(const Entry &entry) {
  ErrorWord word;
  std::memcpy(&word, hostError_.data, sizeof word);
  if (word.flag == kNoError)
    return Status::ok();
  std::string at = "entry '" + entry.desc->name()->str() + "', step " +
                   std::to_string(word.step);
  if (word.step >= 0 && static_cast<size_t>(word.step) < entry.stepNames.size())
    at += " (" + entry.stepNames[word.step] + ")";
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
  if (usesGraphs() && !profile_ && !entry.graph && !entry.graphFailed && entry.runs >= 1) {
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
  if (cudaError_t e = cudaStreamSynchronize(stream_); e != cudaSuccess)
    return cudaError("running entry '" + name + "' on " + name_, e);
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    return cudaError("running entry '" + name + "' on " + name_, e);
  if (profile_)
    for (size_t i = 0; i < entry.steps.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, entry.events[i], entry.events[i + 1]);
      auto &slot = profileMs_[name + ": " + entry.stepNames[i]];
      slot.first += ms;
      ++slot.second;
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
      entry.finalGemv && entry.finalGemv->canPickGreedy(logits, batch, vocab)
          ? entry.finalGemv
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
    if (usesGraphs() && !entry.greedyGraph && !entry.greedyGraphFailed && entry.runs >= 1) {
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
  if (cudaError_t e = cudaStreamSynchronize(stream_); e != cudaSuccess)
    return cudaError("greedy decoding of entry '" + name + "' on " + name_, e);
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
                                                       int ordinal) {
  auto executor = std::make_unique<CudaExecutor>(artifact, ordinal);
  if (Status s = executor->init(); !s)
    return s;
  return std::unique_ptr<Executor>(std::move(executor));
}

} // namespace gai
