// The CUDA backend's recording of each command (see CudaBackend.h).
#include "hal/cuda/CudaBackend.h"

#include "hal/cuda/ColumnSums.h"

#include "core/StepOverlap.h"
#include "core/Tables.h"

namespace gai::cuda {
namespace {

/// The kernels' element type for a command of type `dtype`.
StatusOr<Elem> elemOf(format::DType dtype) {
  switch (dtype) {
  case format::DType::F32: return Elem::F32;
  case format::DType::BF16: return Elem::BF16;
  default:
    return Status::error(std::string("the CUDA backend computes in f32 or bf16, not ") +
                         format::EnumNameDType(dtype));
  }
}

int32_t *i32(uint8_t *p) { return reinterpret_cast<int32_t *>(p); }

/// What a decode GEMV pulls into L2 for the attention right after it: a
/// short cache that the attention's row blocks load first, whole (their
/// loads, issued at the block's start, are on the step's critical path;
/// docs/cuda.md has the measurement). Nothing for longer caches, split over
/// blocks that start streaming anyway. A prefetch only asks L2 for lines:
/// it reads nothing a kernel in flight writes, so it may go out before the
/// GEMV's wait.
GemvPrefetch cachePrefetch(const cmd::Attention &a, Elem elem, const AttentionParams &p) {
  constexpr int64_t kMostBytes = 4 << 20;
  GemvPrefetch prefetch;
  // The bulk prefetch takes 16-byte aligned regions of whole 16-byte words.
  auto words = [](const void *at, int64_t bytes) {
    return at && reinterpret_cast<uintptr_t>(at) % 16 == 0 && bytes % 16 == 0;
  };
  if (attentionRowWarps(elem, p) == 0 || !words(p.k, a.k.size) || !words(p.v, a.v.size) ||
      a.k.size + a.v.size > kMostBytes)
    return prefetch;
  prefetch.region[0] = p.k;
  prefetch.region[1] = p.v;
  prefetch.bytes[0] = a.k.size;
  prefetch.bytes[1] = a.v.size;
  return prefetch;
}

const char *quantizedName(format::WeightFormat f) {
  switch (f) {
  case format::WeightFormat::Int8: return "int8";
  case format::WeightFormat::Int4: return "int4";
  case format::WeightFormat::Fp8E4M3: return "fp8";
  case format::WeightFormat::Sparse24: return "2:4";
  default: return "float";
  }
}

WeightFormat weightFormatOf(format::WeightFormat f) {
  switch (f) {
  case format::WeightFormat::Int8: return WeightFormat::Int8;
  case format::WeightFormat::Int4: return WeightFormat::Int4;
  case format::WeightFormat::Fp8E4M3: return WeightFormat::Fp8E4M3;
  case format::WeightFormat::Sparse24: return WeightFormat::Sparse24;
  default: return WeightFormat::Float;
  }
}

} // namespace

int64_t quantScratchBytes(const cmd::Gemm &g) {
  // Decode-sized GEMMs run as the GEMV, which reads the weights as stored;
  // f32 2:4 values are decompressed for every GEMM (see gemvShaped).
  const bool gemv = g.m <= kGemvRows && g.a.space != format::Space::Weights &&
                    g.a.offset % 16 == 0 &&
                    (!g.sparse24() || g.dtype == format::DType::BF16);
  if (!g.quantized() || gemv)
    return 0;
  const Elem elem = g.dtype == format::DType::BF16 ? Elem::BF16 : Elem::F32;
  return quantScratchBytes(g.m, g.n, g.k, elem,
                           g.weightFormat == format::WeightFormat::Fp8E4M3);
}

AttentionParams attentionParamsOf(const cmd::Attention &a,
                                  const std::function<uint8_t *(const Buffer &)> &pointer) {
  auto ptr = [&](const Buffer &b) { return b.present() ? pointer(b) : nullptr; };
  AttentionParams p{};
  p.q = ptr(a.q);
  p.k = ptr(a.k);
  p.v = ptr(a.v);
  p.out = ptr(a.out);
  p.queryStart = reinterpret_cast<const int32_t *>(ptr(a.queryStart));
  p.batch = a.batch;
  p.heads = a.heads;
  p.kvHeads = a.kvHeads;
  p.queries = a.queries;
  p.keys = a.keys;
  p.headDim = a.headDim;
  p.valueDim = a.valueDim;
  p.scale = a.scale;
  p.softcap = a.softcap;
  p.causal = a.causal;
  p.window = a.window;
  p.kNew = ptr(a.kNew);
  p.vNew = p.kNew ? ptr(a.vNew) : nullptr;
  if (a.rope != format::RopeStyle::None) {
    p.ropeStyle = a.rope == format::RopeStyle::Half ? 1 : 2;
    p.ropePositions = reinterpret_cast<const int32_t *>(ptr(a.ropePositions));
    p.ropeRows = a.ropeRows;
    p.ropeTheta = a.ropeTheta;
  }
  p.cacheReady = a.cacheReady;
  p.lse = reinterpret_cast<float *>(ptr(a.lse));
  p.qStrides = a.qStrides;
  p.kStrides = a.kStrides;
  p.vStrides = a.vStrides;
  p.outStrides = a.outStrides;
  return p;
}

AttentionGradParams attentionGradParamsOf(
    const cmd::AttentionGrad &a, const std::function<uint8_t *(const Buffer &)> &pointer) {
  AttentionGradParams p{};
  p.q = pointer(a.q);
  p.k = pointer(a.k);
  p.v = pointer(a.v);
  p.out = pointer(a.out);
  p.outGrad = pointer(a.outGrad);
  p.lse = reinterpret_cast<const float *>(pointer(a.lse));
  p.qGrad = pointer(a.qGrad);
  p.kGrad = pointer(a.kGrad);
  p.vGrad = pointer(a.vGrad);
  p.batch = a.batch;
  p.heads = a.heads;
  p.kvHeads = a.kvHeads;
  p.queries = a.queries;
  p.keys = a.keys;
  p.headDim = a.headDim;
  p.valueDim = a.valueDim;
  p.window = a.window;
  p.scale = a.scale;
  p.softcap = a.softcap;
  p.causal = a.causal;
  p.qStrides = a.qStrides;
  p.kStrides = a.kStrides;
  p.vStrides = a.vStrides;
  p.outStrides = a.outStrides;
  p.outGradStrides = a.outGradStrides;
  p.qGradStrides = a.qGradStrides;
  p.kGradStrides = a.kGradStrides;
  p.vGradStrides = a.vGradStrides;
  return p;
}

Status CudaBackend::recordAll(const std::vector<Command> &steps) {
  const std::vector<bool> beside =
      device_.besideStream ? stepsBeside(steps) : std::vector<bool>();
  besidePending_.clear();
  lastFork_ = nullptr; // the first beside step forks after the entry's start
  for (const StepGroup &group : groupSteps(steps, beside)) {
    const size_t firstStep = out_.steps.size(), pendingBefore = pending_.size();
    std::vector<Buffer> touched;
    if (!pending_.empty())
      for (size_t i = group.first; i < group.first + group.count; ++i)
        for (const Buffer &b : buffersOf(steps[i]))
          touched.push_back(b);
    Status s;
    recordingBeside_ = group.beside;
    switch (group.kind) {
    case StepGroup::Kind::Single: s = recordStep(group.first, steps[group.first]); break;
    case StepGroup::Kind::Gemms: s = recordGemms(steps, group); break;
    case StepGroup::Kind::CacheWrites:
      s = recordCacheWrites({&std::get<cmd::CacheWrite>(steps[group.first]),
                             &std::get<cmd::CacheWrite>(steps[group.first + 1])},
                            group.first);
      break;
    case StepGroup::Kind::LossWithGrad:
      setStep(group.first + 1);
      s = recordCrossEntropyGrad(std::get<cmd::CrossEntropyGrad>(steps[group.first + 1]),
                                 &std::get<cmd::CrossEntropy>(steps[group.first]));
      break;
    }
    if (s && unresolved_)
      s = Status::error("step " + std::to_string(group.first) +
                        ": a buffer lies outside the tensors of its space");
    recordingBeside_ = false;
    if (!s)
      return s;
    // A group that recorded no step (an in-place copy) has nothing to wait.
    // The waits for collectives go on before a beside step moves, so that
    // they are the beside stream's: a step that shares the previous one's
    // fork would otherwise not wait for them at all.
    if (!touched.empty() && out_.steps.size() > firstStep)
      joinPending(&touched, firstStep, pendingBefore);
    if (out_.steps.size() > firstStep) {
      if (group.beside)
        s = moveBeside(firstStep, group.first);
      else
        joinBeside(steps, group.first, group.count, firstStep);
    }
    if (!s)
      return s;
  }
  // Every collective and beside step rejoins the compute stream before the
  // entry ends (a captured graph must).
  if (!besidePending_.empty() && !out_.steps.empty()) {
    waitAt(out_.steps.size() - 1, besidePending_.back().done, true, "the beside steps");
    besidePending_.clear();
  }
  joinPending(nullptr, out_.steps.empty() ? 0 : out_.steps.size() - 1, pending_.size());
  return Status::ok();
}

Status CudaBackend::moveBeside(size_t firstStep, size_t step) {
  std::vector<size_t> moved; // the group's steps that do anything
  for (size_t at = firstStep; at < out_.steps.size(); ++at)
    if (out_.steps[at])
      moved.push_back(at);
  if (moved.empty())
    return Status::ok();
  cudaStream_t beside = device_.besideStream;
  cudaEvent_t done = nullptr, forked = lastFork_;
  if (cudaError_t e = cudaEventCreateWithFlags(&done, cudaEventDisableTiming); e != cudaSuccess)
    return cudaError("an event for a beside step", e);
  out_.events.push_back(done);
  // No compute work since the last fork: the beside stream, in order, has
  // waited for all of it already.
  const bool fork = forked == nullptr;
  if (fork) {
    if (cudaError_t e = cudaEventCreateWithFlags(&forked, cudaEventDisableTiming);
        e != cudaSuccess)
      return cudaError("an event for a beside step", e);
    out_.events.push_back(forked);
    lastFork_ = forked;
  }
  for (size_t at : moved) {
    RecordedEntry::StepFn run = std::move(out_.steps[at]);
    out_.steps[at] = [run = std::move(run), beside, forked, done,
                      fork = fork && at == moved.front(),
                      end = at == moved.back()](cudaStream_t s) -> Status {
      if (fork) {
        if (cudaError_t e = cudaEventRecord(forked, s); e != cudaSuccess)
          return cudaError("forking a beside step", e);
        if (cudaError_t e = cudaStreamWaitEvent(beside, forked, 0); e != cudaSuccess)
          return cudaError("forking a beside step", e);
      }
      if (Status st = run(beside); !st)
        return st;
      if (end)
        if (cudaError_t e = cudaEventRecord(done, beside); e != cudaSuccess)
          return cudaError("ending a beside step", e);
      return Status::ok();
    };
  }
  besidePending_.push_back({step, done});
  return Status::ok();
}

void CudaBackend::joinBeside(const std::vector<Command> &steps, size_t first, size_t count,
                             size_t firstStep) {
  lastFork_ = nullptr; // compute work the next beside step must wait for
  // The beside stream runs in order: waiting for the last pending step that
  // this group must follow covers those before it.
  size_t last = 0;
  for (size_t p = 0; p < besidePending_.size(); ++p)
    for (size_t i = first; i < first + count; ++i)
      if (mustFollow(steps[besidePending_[p].step], steps[i]))
        last = p + 1;
  if (last == 0)
    return;
  waitAt(firstStep, besidePending_[last - 1].done, false, "waiting for a beside step");
  besidePending_.erase(besidePending_.begin(),
                       besidePending_.begin() + static_cast<std::ptrdiff_t>(last));
}

void CudaBackend::waitAt(size_t firstStep, cudaEvent_t done, bool after, const char *what) {
  size_t at = std::min(firstStep, out_.steps.size() - 1);
  while (at + 1 < out_.steps.size() && !out_.steps[at])
    ++at;
  RecordedEntry::StepFn step = std::move(out_.steps[at]);
  out_.steps[at] = [step = std::move(step), done, after, what](cudaStream_t s) -> Status {
    if (!after)
      if (cudaError_t e = cudaStreamWaitEvent(s, done, 0); e != cudaSuccess)
        return cudaError(what, e);
    if (step)
      if (Status st = step(s); !st)
        return st;
    if (after)
      if (cudaError_t e = cudaStreamWaitEvent(s, done, 0); e != cudaSuccess)
        return cudaError(what, e);
    return Status::ok();
  };
}

void CudaBackend::joinPending(const std::vector<Buffer> *buffers, size_t firstStep,
                              size_t candidates) {
  // The collective stream runs in order: waiting for the last one that
  // overlaps covers those before it. Only collectives recorded before the
  // group count (not the group's own).
  size_t last = 0;
  for (size_t i = 0; i < candidates; ++i)
    if (!buffers)
      last = i + 1;
    else
      for (const Buffer &b : *buffers)
        for (const Buffer &mine : pending_[i].buffers)
          if (b.overlaps(mine))
            last = i + 1;
  if (last == 0 || out_.steps.empty())
    return;
  cudaEvent_t done = pending_[last - 1].done;
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(last));
  // A final join waits after the step.
  waitAt(firstStep, done, buffers == nullptr,
         buffers ? "waiting for a collective" : "waiting for the collectives");
}

Status CudaBackend::recordBeside(const cmd::Collective &c,
                                 std::function<Status(cudaStream_t)> enqueue, const char *name) {
  cudaStream_t beside = device_.collectiveStream;
  if (!beside) {
    add(std::move(enqueue), name);
    return Status::ok();
  }
  cudaEvent_t forked = nullptr, done = nullptr;
  for (cudaEvent_t *e : {&forked, &done}) {
    if (cudaError_t err = cudaEventCreateWithFlags(e, cudaEventDisableTiming); err != cudaSuccess)
      return cudaError("an event for a collective", err);
    out_.events.push_back(*e);
  }
  add([=](cudaStream_t s) -> Status {
        if (cudaError_t e = cudaEventRecord(forked, s); e != cudaSuccess)
          return cudaError(name, e);
        if (cudaError_t e = cudaStreamWaitEvent(beside, forked, 0); e != cudaSuccess)
          return cudaError(name, e);
        if (Status st = enqueue(beside); !st)
          return st;
        if (cudaError_t e = cudaEventRecord(done, beside); e != cudaSuccess)
          return cudaError(name, e);
        return Status::ok();
      },
      name);
  pending_.push_back({{c.input, c.out}, done});
  return Status::ok();
}

uint8_t *CudaBackend::ptr(const Buffer &b) const {
  if (!b.present())
    return nullptr;
  uint8_t *p = pointer_(b);
  unresolved_ |= p == nullptr;
  return p;
}

void CudaBackend::add(RecordedEntry::StepFn fn, std::string name) {
  out_.steps.push_back(std::move(fn));
  out_.stepNames.push_back(std::move(name));
}

GemmDesc CudaBackend::gemmDesc(const cmd::Gemm &g) const {
  GemmDesc d;
  d.a = ptr(g.a);
  d.b = ptr(g.b);
  d.c = ptr(g.c);
  d.bias = ptr(g.bias);
  d.residual = ptr(g.residual);
  d.batch = g.batch;
  d.m = g.m;
  d.n = g.n;
  d.k = g.k;
  d.transposeA = g.transposeA;
  d.transposeB = g.transposeB;
  d.strideA = g.strideA;
  d.strideB = g.strideB;
  d.strideC = g.strideC;
  d.activation = static_cast<int>(g.activation);
  d.gate = ptr(g.gate);
  d.norm.weight = ptr(g.normWeight);
  d.norm.out = ptr(g.normOut);
  d.norm.squares = reinterpret_cast<double *>(ptr(g.normSquares));
  d.norm.offset = g.normOffset;
  d.norm.aSquares = reinterpret_cast<const double *>(ptr(g.aSquares));
  d.norm.aEps = g.aNormEps;
  d.wideC = g.wideC;
  d.quant.format = weightFormatOf(g.weightFormat);
  d.quant.scale = reinterpret_cast<const float *>(ptr(g.bScale));
  d.quant.zero = ptr(g.bZero);
  d.quant.gateScale = reinterpret_cast<const float *>(ptr(g.gateScale));
  d.quant.gateZero = ptr(g.gateZero);
  d.quant.group = g.group;
  d.quant.meta = ptr(g.bMeta);
  d.quant.gateMeta = ptr(g.gateMeta);
  d.aRowScales = reinterpret_cast<const float *>(ptr(g.aScale));
  const bool fp8 = g.weightFormat == format::WeightFormat::Fp8E4M3;
  d.quant.perTensor = fp8 && g.perTensorScale();
  d.quant.gatePerTensor = fp8 && g.gateScale.size == 4;
  auto isWeights = [](const Buffer &b) { return b.space == format::Space::Weights; };
  auto constant = [&](const Buffer &b) { return !b.present() || isWeights(b); };
  d.constantB = isWeights(g.b) && constant(g.gate) && constant(g.normWeight) &&
                constant(g.bScale) && constant(g.bZero) && constant(g.gateScale) &&
                constant(g.gateZero) && constant(g.bMeta) &&
                constant(g.gateMeta);
  return d;
}

Status CudaBackend::record(const cmd::Gemm &c) {
  return recordGemms({c}, StepGroup{StepGroup::Kind::Gemms, 0, 1, nullptr, false});
}

Status CudaBackend::recordGemms(const std::vector<Command> &steps, const StepGroup &group) {
  const auto &first = std::get<cmd::Gemm>(steps[group.first]);
  auto elem = elemOf(first.dtype);
  if (!elem)
    return Status::error("step " + std::to_string(group.first) + " (gemm): " +
                         elem.status().message());
  std::vector<GemmDesc> run;
  for (size_t i = 0; i < group.count; ++i) {
    GemmDesc d = gemmDesc(std::get<cmd::Gemm>(steps[group.first + i]));
    if (!d.a || !d.b || !d.c)
      return Status::error("step " + std::to_string(group.first + i) +
                           " (gemm): an operand lies outside the tensors of its space");
    // Quantized weights and their scales are read in 4-byte words.
    auto words = [](const void *p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; };
    if (d.quant.quantized() && !(words(d.b) && words(d.gate) && words(d.quant.scale) &&
                                 words(d.quant.gateScale)))
      return Status::error("step " + std::to_string(group.first + i) +
                           " (gemm): quantized weights and scales must be 4-byte aligned");
    run.push_back(d);
  }
  GemmPlan *previous = nullptr; // the plan of the step before, in this run
  for (size_t i = 0; i < run.size();) {
    const size_t index = group.first + i;
    GemmMerge merge = mergeGemms({run.begin() + i, run.end()}, *elem);
    GemmDesc d = merge.count > 1 && !merge.gemv ? merge.batched : run[i];
    std::unique_ptr<GemmPlan> plan;
    if (merge.gemv) {
      plan = GemmPlan::createGemv({run.begin() + i, run.begin() + i + merge.count}, *elem);
    } else {
      auto made = GemmPlan::create(device_.lt, d, *elem, device_.gemmWorkspaceBytes,
                                   device_.gemmWorkspace, device_.gemmTuneCandidates,
                                   device_.quantScratch);
      if (!made && merge.count > 1) { // no algorithm for the batch: one at a time
        merge.count = 1;
        d = run[i];
        made = GemmPlan::create(device_.lt, d, *elem, device_.gemmWorkspaceBytes,
                                device_.gemmWorkspace, device_.gemmTuneCandidates,
                                device_.quantScratch);
      }
      if (!made)
        return Status::error("step " + std::to_string(index) + " (gemm): " +
                             made.status().message());
      plan = std::move(*made);
    }
    const bool endsGroup = i + merge.count == run.size();
    if (merge.gemv && endsGroup && group.nextAttention)
      plan->setPrefetch(cachePrefetch(*group.nextAttention, *elem,
                                      attentionParamsOf(*group.nextAttention, pointer_)));
    if (merge.gemv && endsGroup && group.endsEntry)
      out_.finalGemv = plan.get();
    // fp8 GEMMs over one A (q, k, v; gate, up) quantize it once.
    if (previous)
      previous->shareFp8Activations(*plan);
    previous = plan.get();
    const GemmPlan *p = plan.get();
    out_.gemms.push_back(std::move(plan));
    void *workspace = recordingBeside_ ? device_.besideGemmWorkspace : device_.gemmWorkspace;
    size_t workspaceBytes = device_.gemmWorkspaceBytes;
    std::string name =
        "gemm " + std::to_string(d.m) + "x" + std::to_string(d.n) + "x" + std::to_string(d.k);
    if (merge.count > 1)
      name += (merge.gemv ? " with " : " batch ") + std::to_string(merge.count) +
              (merge.gemv ? " parts" : "");
    else if (d.batch > 1)
      name += " batch " + std::to_string(d.batch);
    if (const char *route = p->quantizedRoute())
      name += std::string(" ") + quantizedName(std::get<cmd::Gemm>(steps[index]).weightFormat) +
              " (" + route + ")";
    add([p, workspace, workspaceBytes](cudaStream_t s) {
          return p->run(workspace, workspaceBytes, s);
        },
        name + (d.gate ? " gated" : "") + (d.activation ? " act" : "") +
            (d.residual ? " residual" : ""));
    for (size_t merged = 1; merged < merge.count; ++merged)
      add([](cudaStream_t) { return Status::ok(); },
          "gemm (done by step " + std::to_string(index) + ")");
    i += merge.count;
  }
  return Status::ok();
}

Status CudaBackend::record(const cmd::Attention &a) {
  AttentionParams p = attentionParamsOf(a, pointer_);
  if (p.headDim > 256 || p.valueDim > 256)
    return Status::error("head dims above 256 are not supported");
  auto elem = elemOf(a.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  if (!packedLayout(p) && !attentionTakesStrides(e, p))
    return Status::error("attention over strided tensors runs only on the tensor-core kernel "
                         "(bf16, head dims both 64 or 128, at least 64 queries, rows 16-byte "
                         "aligned); recompile the model for this target");
  int splits = attentionSplits(e, p, device_.multiprocessors);
  float *workspace = device_.attentionWorkspace;
  ErrorWord *error = device_.error;
  int stepIndex = static_cast<int>(step());
  add([=](cudaStream_t s) {
        attention(e, p, splits, workspace, error, stepIndex, s);
        return Status::ok();
      },
      std::string(p.kNew ? "cached " : "") + "attention q" + std::to_string(p.queries) +
          " k" + std::to_string(p.keys) + " splits " + std::to_string(splits));
  return Status::ok();
}

Status CudaBackend::record(const cmd::Launch &l) {
  if (l.kernel >= device_.functions->size() || l.grid.size() != 2)
    return Status::error("a launch without a GPU kernel or grid");
  auto args = std::make_shared<std::vector<CUdeviceptr>>();
  for (const Buffer &b : l.args)
    args->push_back(reinterpret_cast<CUdeviceptr>(ptr(b)));
  auto params = std::make_shared<std::vector<void *>>();
  for (CUdeviceptr &a : *args)
    params->push_back(&a);
  CUfunction f = (*device_.functions)[l.kernel];
  auto grid = static_cast<unsigned>(l.grid[0]);
  auto block = static_cast<unsigned>(l.grid[1]);
  const Driver *driver = device_.driver;
  // Kernels built to wait for their predecessor may start while it
  // finishes, hiding most of the launch between two small kernels.
  const bool overlap = device_.overlapLaunches;
  add([=](cudaStream_t s) {
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
      },
      "kernel " + (device_.kernelNames && l.kernel < device_.kernelNames->size()
                       ? (*device_.kernelNames)[l.kernel]
                       : std::to_string(l.kernel)));
  return Status::ok();
}

Status CudaBackend::record(const cmd::Embedding &c) {
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *table = ptr(c.table), *ids = ptr(c.indices), *out = ptr(c.out);
  ErrorWord *error = device_.error;
  int stepIndex = static_cast<int>(step());
  int64_t rows = c.vocab, dim = c.dim, count = c.count;
  int64_t first = firstRow(c.rowShards, rows), vocab = rows * c.rowShards.shards;
  add([=](cudaStream_t s) {
        embedding(e, table, rows, dim, i32(ids), count, out, error, stepIndex, first, vocab, s);
        return Status::ok();
      },
      "embedding");
  return Status::ok();
}

Status CudaBackend::record(const cmd::EmbeddingGrad &c) {
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *grad = ptr(c.grad), *ids = ptr(c.indices), *out = ptr(c.out);
  float *scratch = device_.gradScratch;
  const bool fixedOrder = device_.deterministic;
  ErrorWord *error = device_.error;
  int stepIndex = static_cast<int>(step());
  int64_t rows = c.vocab, dim = c.dim, count = c.count;
  int64_t first = firstRow(c.rowShards, rows), vocab = rows * c.rowShards.shards;
  add([=](cudaStream_t s) {
        embeddingGrad(e, grad, rows, dim, i32(ids), count, out, scratch, fixedOrder, error,
                      stepIndex, first, vocab, s);
        return Status::ok();
      },
      "embedding_grad");
  return Status::ok();
}

Status CudaBackend::record(const cmd::CacheWrite &c) {
  return recordCacheWrites({&c}, static_cast<size_t>(step()));
}

Status CudaBackend::recordCacheWrites(const std::vector<const cmd::CacheWrite *> &commands,
                                      size_t index) {
  // groupSteps paired them: the same type, shape and positions as the first.
  const cmd::CacheWrite &c = *commands.front();
  auto elem = elemOf(c.dtype);
  if (!elem)
    return Status::error("step " + std::to_string(index) + " (cache_write): " +
                         elem.status().message());
  Elem e = *elem;
  std::vector<CacheWrite> writes;
  for (const cmd::CacheWrite *w : commands)
    writes.push_back({ptr(w->cache), ptr(w->update)});
  uint8_t *positions = ptr(c.positions);
  ErrorWord *error = device_.error;
  int stepIndex = static_cast<int>(index), count = static_cast<int>(writes.size());
  add([=](cudaStream_t s) {
        cacheWrite(e, writes.data(), count, i32(positions), c.batch, c.heads, c.slots, c.rows,
                   c.dim, error, stepIndex, s);
        return Status::ok();
      },
      count > 1 ? "cache_write (two caches)" : "cache_write");
  for (int merged = 1; merged < count; ++merged)
    add([](cudaStream_t) { return Status::ok(); },
        "cache_write (done by step " + std::to_string(index) + ")");
  return Status::ok();
}

Status CudaBackend::record(const cmd::Take &c) {
  uint8_t *in = ptr(c.input), *rows = ptr(c.indices), *out = ptr(c.out);
  ErrorWord *error = device_.error;
  int stepIndex = static_cast<int>(step());
  int64_t batch = c.batch, length = c.length, words = c.rowBytes / 4;
  add([=](cudaStream_t s) {
        take(reinterpret_cast<const uint32_t *>(in), i32(rows), batch, length, words,
             reinterpret_cast<uint32_t *>(out), error, stepIndex, s);
        return Status::ok();
      },
      "take");
  return Status::ok();
}

namespace {
Shape shapeOf(const std::vector<int64_t> &dims) {
  Shape s{};
  s.rank = static_cast<int64_t>(dims.size()); // at most kMostDims, as decoded
  for (size_t d = 0; d < dims.size(); ++d)
    s.dims[d] = dims[d];
  return s;
}
static_assert(cmd::kMostDims <= kMaxRank);
} // namespace

Status CudaBackend::record(const cmd::Transpose &c) {
  uint8_t *in = ptr(c.input), *out = ptr(c.out);
  Shape shape = shapeOf(c.shape), perm = shapeOf(c.permutation);
  int64_t bytes = c.elementBytes;
  add([=](cudaStream_t s) {
        transpose(in, out, bytes, shape, perm, s);
        return Status::ok();
      },
      "transpose");
  return Status::ok();
}

Status CudaBackend::record(const cmd::Slice &c) {
  uint8_t *in = ptr(c.input), *out = ptr(c.out);
  Shape shape = shapeOf(c.shape), offsets = shapeOf(c.offsets), sizes = shapeOf(c.sizes);
  int64_t bytes = c.elementBytes;
  add([=](cudaStream_t s) {
        slice(in, out, bytes, shape, offsets, sizes, s);
        return Status::ok();
      },
      "slice");
  return Status::ok();
}

Status CudaBackend::record(const cmd::TopK &c) {
  if (c.k > 32)
    return Status::error("k above 32 is not supported");
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *in = ptr(c.input), *values = ptr(c.values), *indices = ptr(c.indices);
  add([=](cudaStream_t s) {
        topk(e, in, c.rows, c.n, c.k, values, i32(indices), s);
        return Status::ok();
      },
      "topk");
  return Status::ok();
}

Status CudaBackend::record(const cmd::CrossEntropy &c) {
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *logits = ptr(c.logits), *labels = ptr(c.labels), *loss = ptr(c.loss);
  ErrorWord *error = device_.error;
  float *parts = device_.lossParts;
  int stepIndex = static_cast<int>(step());
  int reduction = static_cast<int>(c.reduction);
  add([=](cudaStream_t s) {
        crossEntropy(e, logits, i32(labels), c.rows, c.vocab, c.ignoreIndex, reduction,
                     reinterpret_cast<float *>(loss), parts, error, stepIndex, s);
        return Status::ok();
      },
      "cross_entropy");
  return Status::ok();
}

Status CudaBackend::record(const cmd::CrossEntropyGrad &c) {
  return recordCrossEntropyGrad(c, nullptr);
}

Status CudaBackend::recordCrossEntropyGrad(const cmd::CrossEntropyGrad &c,
                                           const cmd::CrossEntropy *withLoss) {
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *logits = ptr(c.logits), *labels = ptr(c.labels), *grad = ptr(c.lossGrad),
          *out = ptr(c.out);
  auto *loss = withLoss ? reinterpret_cast<float *>(ptr(withLoss->loss)) : nullptr;
  ErrorWord *error = device_.error;
  float *parts = device_.lossParts;
  int stepIndex = static_cast<int>(step());
  int reduction = static_cast<int>(c.reduction);
  add([=](cudaStream_t s) {
        crossEntropyGrad(e, logits, i32(labels), reinterpret_cast<float *>(grad), c.rows,
                         c.vocab, c.ignoreIndex, reduction, out, error, stepIndex, s, loss,
                         parts);
        return Status::ok();
      },
      withLoss ? "cross_entropy with its grad" : "cross_entropy_grad");
  return Status::ok();
}

Status CudaBackend::record(const cmd::AttentionGrad &a) {
  if (a.headDim > 256 || a.valueDim > 256)
    return Status::error("head dims above 256 are not supported");
  auto elem = elemOf(a.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  AttentionGradParams p = attentionGradParamsOf(a, pointer_);
  p.deterministic = device_.deterministic;
  p.blockSpread = device_.attentionGradSpread;
  float *workspace = device_.gradScratch;
  add([=](cudaStream_t s) {
        attentionGrad(e, p, workspace, s);
        return Status::ok();
      },
      std::string("attention_grad q") + std::to_string(a.queries) + " k" +
          std::to_string(a.keys) + (useFlashAttentionGrad(e, p) ? " (tensor cores)" : ""));
  return Status::ok();
}

Status CudaBackend::record(const cmd::Place &c) {
  uint8_t *in = ptr(c.input), *out = ptr(c.out);
  add([=](cudaStream_t s) {
        place(in, out, c.outer, c.chunkBytes, c.strideBytes, c.offsetBytes, s);
        return Status::ok();
      },
      "place");
  return Status::ok();
}

Status CudaBackend::record(const cmd::OneHot &c) {
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *indices = ptr(c.indices), *out = ptr(c.out);
  ErrorWord *error = device_.error;
  int stepIndex = static_cast<int>(step());
  int64_t count = c.count, depth = c.depth, first = firstRow(c.rowShards, depth),
          classes = depth * c.rowShards.shards;
  add([=](cudaStream_t s) {
        oneHot(e, i32(indices), count, depth, out, error, stepIndex, first, classes, s);
        return Status::ok();
      },
      "one_hot");
  return Status::ok();
}

Status CudaBackend::record(const cmd::Reduce &c) {
  auto elem = elemOf(c.dtype);
  if (!elem)
    return elem.status();
  Elem e = *elem;
  uint8_t *in = ptr(c.input), *out = ptr(c.out);
  // Partials in the GEMM workspace of the step's stream, which runs one step
  // at a time.
  float *workspace = static_cast<float *>(recordingBeside_ ? device_.besideGemmWorkspace
                                                           : device_.gemmWorkspace);
  const size_t workspaceBytes = device_.gemmWorkspaceBytes;
  if (columnSumsTake(static_cast<int>(c.kind), c.outer, c.n, c.inner, in, workspaceBytes)) {
    const float scale =
        c.kind == format::ReduceKind::Mean ? 1.0f / static_cast<float>(c.n) : 1.0f;
    add([=](cudaStream_t s) {
          columnSums(e, in, out, c.outer, c.n, c.inner, scale, workspace, workspaceBytes, s);
          return Status::ok();
        },
        "column sums " + std::to_string(c.n) + "x" + std::to_string(c.inner) +
            (c.outer > 1 ? " batch " + std::to_string(c.outer) : ""));
    return Status::ok();
  }
  int kind = static_cast<int>(c.kind);
  add([=](cudaStream_t s) {
        reduce(e, in, out, kind, c.outer, c.n, c.inner, s);
        return Status::ok();
      },
      "reduce");
  return Status::ok();
}

Status CudaBackend::record(const cmd::Copy &c) {
  uint8_t *in = ptr(c.input), *out = ptr(c.out);
  auto bytes = static_cast<size_t>(c.out.size);
  add([=](cudaStream_t s) {
        if (cudaError_t err = cudaMemcpyAsync(out, in, bytes, cudaMemcpyDeviceToDevice, s);
            err != cudaSuccess)
          return cudaError("copy", err);
        return Status::ok();
      },
      "copy");
  return Status::ok();
}

static CollectiveReduce hostReduceOf(format::CollectiveReduce r) {
  switch (r) {
  case format::CollectiveReduce::Average: return CollectiveReduce::Average;
  case format::CollectiveReduce::Max: return CollectiveReduce::Max;
  default: return CollectiveReduce::Sum;
  }
}

int64_t CudaBackend::firstRow(const cmd::RowShards &shards, int64_t rows) const {
  if (shards.shards == 1 || !device_.collectives)
    return 0; // a world of one is every group's first rank
  return device_.collectives->groupIndex(shards.axes) * rows;
}

Status CudaBackend::recordLocalCopy(const cmd::Collective &c, int64_t inputOffset,
                                    const char *name) {
  uint8_t *in = ptr(c.input) + inputOffset, *out = ptr(c.out);
  auto bytes = static_cast<size_t>(c.count * (dtypeBits(c.dtype) / 8));
  if (in == out)
    return Status::ok();
  // cudaMemcpyAsync's ranges must not overlap.
  if (in < out + bytes && out < in + bytes)
    return Status::error(std::string(name) + ": its input and output overlap");
  add([=](cudaStream_t s) {
        if (cudaError_t err = cudaMemcpyAsync(out, in, bytes, cudaMemcpyDeviceToDevice, s);
            err != cudaSuccess)
          return cudaError(name, err);
        return Status::ok();
      },
      name);
  return Status::ok();
}

Status CudaBackend::record(const cmd::AllReduce &c) {
  DeviceCollectives *nccl = device_.collectives;
  if (!nccl)
    return recordLocalCopy(c, 0, "all_reduce");
  const uint8_t *in = ptr(c.input);
  uint8_t *out = ptr(c.out);
  DType dtype = hostDType(c.dtype);
  CollectiveReduce op = hostReduceOf(c.reduction);
  int64_t count = c.count;
  uint32_t axes = c.axes;
  return recordBeside(
      c, [=](cudaStream_t s) { return nccl->allReduceOnDevice(in, out, count, dtype, op, axes, s); },
      "all_reduce");
}

Status CudaBackend::record(const cmd::AllGather &c) {
  DeviceCollectives *nccl = device_.collectives;
  if (!nccl)
    return recordLocalCopy(c, 0, "all_gather");
  const uint8_t *in = ptr(c.input);
  uint8_t *out = ptr(c.out);
  DType dtype = hostDType(c.dtype);
  int64_t count = c.count;
  uint32_t axes = c.axes;
  return recordBeside(
      c, [=](cudaStream_t s) { return nccl->allGatherOnDevice(in, out, count, dtype, axes, s); },
      "all_gather");
}

Status CudaBackend::record(const cmd::ReduceScatter &c) {
  DeviceCollectives *nccl = device_.collectives;
  if (!nccl)
    return recordLocalCopy(c, 0, "reduce_scatter");
  const uint8_t *in = ptr(c.input);
  uint8_t *out = ptr(c.out);
  DType dtype = hostDType(c.dtype);
  CollectiveReduce op = hostReduceOf(c.reduction);
  int64_t count = c.count;
  uint32_t axes = c.axes;
  return recordBeside(
      c,
      [=](cudaStream_t s) {
        return nccl->reduceScatterOnDevice(in, out, count, dtype, op, axes, s);
      },
      "reduce_scatter");
}

/// This rank's slice: no message, a copy from its offset in the input.
Status CudaBackend::record(const cmd::AllSlice &c) {
  int64_t index = device_.collectives ? device_.collectives->groupIndex(c.axes) : 0;
  return recordLocalCopy(c, index * c.count * (dtypeBits(c.dtype) / 8), "all_slice");
}

Status CudaBackend::record(const cmd::Fill &c) {
  int width = 0;
  switch (c.dtype) {
  case format::DType::F32: width = 4; break;
  case format::DType::BF16:
  case format::DType::F16: width = 2; break;
  default: return Status::error("fills f32, f16 or bf16 elements only");
  }
  uint8_t *out = ptr(c.out);
  int64_t bytes = c.out.size;
  auto bits = static_cast<uint32_t>(c.bits);
  add([=](cudaStream_t s) {
        fill(out, bytes, bits, width, s);
        return Status::ok();
      },
      "fill");
  return Status::ok();
}

} // namespace gai::cuda
