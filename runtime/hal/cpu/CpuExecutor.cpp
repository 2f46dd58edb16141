// The CPU executor: resolves each step's buffers and runs its command.
#include "core/Executor.h"

#include "core/StepProfile.h"
#include "core/Tables.h"
#include "format/artifact_generated.h"
#include "hal/Backend.h"
#include "hal/cpu/AsyncSteps.h"
#include "hal/cpu/KernelModule.h"
#include "hal/cpu/Kernels.h"
#include "gai/Comm.h"
#include "gai/Quantize.h"
#include "gai/Sparsity.h"

#include <chrono>
#include <map>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace gai {
namespace {

/// Quantized GEMMs of at most this many rows (decode steps) read their
/// weights row by row (cpu::quantizedGemv); larger ones read them back whole
/// once and run BLAS, which the rows repay.
constexpr int64_t kQuantizedGemvRows = 8;

/// Zeroed, 64-byte aligned memory.
struct AlignedBuffer {
  std::unique_ptr<uint8_t, decltype(&std::free)> ptr{nullptr, &std::free};
  int64_t size = 0;

  bool allocate(int64_t bytes) {
    size = bytes;
    size_t rounded = static_cast<size_t>((bytes + 63) / 64 * 64 + 64);
    ptr.reset(static_cast<uint8_t *>(std::aligned_alloc(64, rounded)));
    if (ptr)
      std::memset(ptr.get(), 0, rounded);
    return ptr != nullptr;
  }
  uint8_t *get() const { return ptr.get(); }
};


cpu::Activation activationOf(format::Activation a) {
  switch (a) {
  case format::Activation::Silu: return cpu::Activation::Silu;
  case format::Activation::Gelu: return cpu::Activation::Gelu;
  case format::Activation::GeluTanh: return cpu::Activation::GeluTanh;
  case format::Activation::Relu: return cpu::Activation::Relu;
  default: return cpu::Activation::None;
  }
}

/// Runs each command as it is recorded, on host memory: the CPU computes
/// in f32 only (ids and positions in i32).
class CpuBackend final : public Backend {
public:
  CpuBackend(uint8_t *const *base, Communicator &comm) : base_(base), comm_(comm) {}

  /// A quantized weight [n, k] of `g`'s format where it lies.
  cpu::QuantizedWeightView quantizedView(const cmd::Gemm &g, const Buffer &values,
                                         const Buffer &scale, const Buffer &zero) {
    cpu::QuantizedWeightView w;
    w.format = g.weightFormat == format::WeightFormat::Int8   ? QuantFormat::Int8
               : g.weightFormat == format::WeightFormat::Int4 ? QuantFormat::Int4
                                                              : QuantFormat::Fp8E4M3;
    w.values = ptr(values);
    w.scale = f32(scale);
    w.zero = ptr(zero);
    w.group = g.group;
    w.perTensorScale = scale.size == 4;
    return w;
  }

  /// Quantized weights [n, k] of `g`'s format, as f32 in `out`.
  const float *dequantize(const cmd::Gemm &g, const Buffer &values, const Buffer &scale,
                          const Buffer &zero, std::vector<float> &out) {
    const cpu::QuantizedWeightView w = quantizedView(g, values, scale, zero);
    out.resize(static_cast<size_t>(g.n * g.k));
    for (int64_t row = 0; row < g.n; ++row)
      dequantizeRow(w.format, w.values, w.scale, w.zero, row, g.k, w.group, w.perTensorScale,
                    out.data() + row * g.k);
    return out.data();
  }

  Status record(const cmd::Gemm &g) override {
    if (g.normOut.present() || g.aSquares.present())
      return Status::error("an RMSNorm folded into GEMMs has no CPU kernel (the cuda "
                           "target's decode GEMV does it)");
    if (g.aScale.present())
      return Status::error("an e4m3 A with row scales (a_scale) has no CPU kernel (the cuda "
                           "target's fp8 GEMM reads it)");
    if (g.wideC)
      return Status::error("an f32 residual over bf16 operands (wide_c) has no CPU kernel "
                           "(the CPU computes in f32 only)");
    if (Status s = f32Only(g.dtype); !s)
      return s;
    cpu::GemmArgs args;
    args.a = f32(g.a);
    args.b = f32(g.b);
    args.c = f32(g.c);
    args.batch = g.batch;
    args.m = g.m;
    args.n = g.n;
    args.k = g.k;
    args.transposeA = g.transposeA;
    args.transposeB = g.transposeB;
    args.strideA = g.strideA;
    args.strideB = g.strideB;
    args.strideC = g.strideC;
    args.bias = f32(g.bias);
    args.residual = f32(g.residual);
    args.activation = activationOf(g.activation);
    args.gate = f32(g.gate);
    if (g.sparse24()) {
      // Correctness, not speed: the dense weight, zeros and all
      // (gai/Sparsity.h's definition), then the float GEMM.
      auto dense = [&](const Buffer &values, const Buffer &meta, std::vector<float> &out) {
        out.resize(static_cast<size_t>(g.n * g.k));
        for (int64_t row = 0; row < g.n; ++row)
          decompress24Row(f32(values), ptr(meta), row, g.k, out.data() + row * g.k);
        return out.data();
      };
      args.b = dense(g.b, g.bMeta, denseB_);
      if (g.gate.present())
        args.gate = dense(g.gate, g.gateMeta, denseGate_);
    } else if (g.quantized() && g.m <= kQuantizedGemvRows && !g.transposeA &&
               g.transposeB) {
      // Few rows (decode): each weight row is read back where it is used,
      // so only the quantized bytes stream.
      quantizedB_ = quantizedView(g, g.b, g.bScale, g.bZero);
      args.quantizedB = &quantizedB_;
      args.b = nullptr;
      if (g.gate.present()) {
        quantizedGate_ = quantizedView(g, g.gate, g.gateScale, g.gateZero);
        args.quantizedGate = &quantizedGate_;
        args.gate = nullptr;
      }
    } else if (g.quantized()) {
      // Many rows: each quantized weight is read back to f32 once
      // (gai/Quantize.h's definition), then BLAS's GEMM runs over it.
      args.b = dequantize(g, g.b, g.bScale, g.bZero, denseB_);
      if (g.gate.present())
        args.gate = dequantize(g, g.gate, g.gateScale, g.gateZero, denseGate_);
    }
    cpu::gemm(args);
    return Status::ok();
  }

  Status record(const cmd::Attention &a) override {
    if (a.kNew.present())
      return Status::error("folded cache writes and RoPE have no CPU kernel (the cuda "
                           "target's gai.cached_attention)");
    if (Status s = f32Only(a.dtype); !s)
      return s;
    cpu::AttentionArgs args;
    args.q = f32(a.q);
    args.k = f32(a.k);
    args.v = f32(a.v);
    args.out = f32(a.out);
    args.batch = a.batch;
    args.heads = a.heads;
    args.kvHeads = a.kvHeads;
    args.queries = a.queries;
    args.keys = a.keys;
    args.headDim = a.headDim;
    args.valueDim = a.valueDim;
    args.scale = a.scale;
    args.softcap = a.softcap;
    args.causal = a.causal;
    args.window = a.window;
    args.queryStart = i32(a.queryStart);
    if (args.queryStart)
      for (int64_t b = 0; b < args.batch; ++b)
        if (args.queryStart[b] < 0 || args.queryStart[b] > args.keys - args.queries)
          return Status::error("row " + std::to_string(b) + " starts at position " +
                               std::to_string(args.queryStart[b]) + ", outside the " +
                               std::to_string(args.keys) + " cache slots");
    args.lse = a.lse.present() ? f32(a.lse) : nullptr;
    args.qStrides = a.qStrides;
    args.kStrides = a.kStrides;
    args.vStrides = a.vStrides;
    args.outStrides = a.outStrides;
    cpu::attention(args);
    return Status::ok();
  }

  Status record(const cmd::AttentionGrad &a) override {
    if (Status s = f32Only(a.dtype); !s)
      return s;
    cpu::AttentionGradArgs args;
    cpu::AttentionArgs &f = args.forward;
    f.q = f32(a.q);
    f.k = f32(a.k);
    f.v = f32(a.v);
    f.out = f32(a.out);
    f.lse = f32(a.lse);
    f.batch = a.batch;
    f.heads = a.heads;
    f.kvHeads = a.kvHeads;
    f.queries = a.queries;
    f.keys = a.keys;
    f.headDim = a.headDim;
    f.valueDim = a.valueDim;
    f.scale = a.scale;
    f.softcap = a.softcap;
    f.causal = a.causal;
    f.window = a.window;
    args.outGrad = f32(a.outGrad);
    args.qGrad = f32(a.qGrad);
    args.kGrad = f32(a.kGrad);
    args.vGrad = f32(a.vGrad);
    f.qStrides = a.qStrides;
    f.kStrides = a.kStrides;
    f.vStrides = a.vStrides;
    f.outStrides = a.outStrides;
    args.outGradStrides = a.outGradStrides;
    args.qGradStrides = a.qGradStrides;
    args.kGradStrides = a.kGradStrides;
    args.vGradStrides = a.vGradStrides;
    cpu::attentionGrad(args);
    return Status::ok();
  }

  Status record(const cmd::Launch &l) override {
    // On the stack up to 64; a deep model's gradient norm reads hundreds of
    // gradients in one kernel.
    constexpr size_t kOnStack = 64;
    void *onStack[kOnStack];
    std::vector<void *> onHeap;
    void **buffers = onStack;
    if (l.args.size() > kOnStack) {
      onHeap.resize(l.args.size());
      buffers = onHeap.data();
    }
    for (size_t i = 0; i < l.args.size(); ++i)
      buffers[i] = ptr(l.args[i]);
    kernels_->kernel(l.kernel)(buffers);
    return Status::ok();
  }

  Status record(const cmd::Embedding &e) override {
    if (Status s = f32Only(e.dtype); !s)
      return s;
    int64_t first = firstRow(e.rowShards, e.vocab), vocab = e.vocab * e.rowShards.shards;
    int64_t bad = cpu::embedding(f32(e.table), e.vocab, e.dim, i32(e.indices), e.count,
                                 f32(e.out), first, vocab);
    if (bad >= 0)
      return Status::error("token id " + std::to_string(i32(e.indices)[bad]) +
                           " is outside the vocabulary of " + std::to_string(vocab));
    return Status::ok();
  }

  Status record(const cmd::EmbeddingGrad &e) override {
    if (Status s = f32Only(e.dtype); !s)
      return s;
    int64_t first = firstRow(e.rowShards, e.vocab), vocab = e.vocab * e.rowShards.shards;
    int64_t bad = cpu::embeddingGrad(f32(e.grad), e.vocab, e.dim, i32(e.indices), e.count,
                                     f32(e.out), first, vocab);
    if (bad >= 0)
      return Status::error("token id " + std::to_string(i32(e.indices)[bad]) +
                           " is outside the vocabulary of " + std::to_string(vocab));
    return Status::ok();
  }

  Status record(const cmd::CacheWrite &w) override {
    if (Status s = f32Only(w.dtype); !s)
      return s;
    int64_t bad = cpu::cacheWrite(f32(w.cache), f32(w.update), i32(w.positions), w.batch,
                                  w.heads, w.slots, w.rows, w.dim);
    if (bad >= 0)
      return Status::error("row " + std::to_string(bad) + " writes " +
                           std::to_string(w.rows) + " tokens at position " +
                           std::to_string(i32(w.positions)[bad]) + ", past the " +
                           std::to_string(w.slots) + " cache slots");
    return Status::ok();
  }

  Status record(const cmd::Take &t) override {
    int64_t bad = cpu::take(f32(t.input), i32(t.indices), t.batch, t.length, t.rowBytes / 4,
                            f32(t.out));
    if (bad >= 0)
      return Status::error("row " + std::to_string(bad) + " picks position " +
                           std::to_string(i32(t.indices)[bad]) + " of " +
                           std::to_string(t.length));
    return Status::ok();
  }

  Status record(const cmd::Transpose &t) override {
    cpu::transpose(ptr(t.input), ptr(t.out), t.elementBytes, t.shape.data(),
                   t.permutation.data(), static_cast<int64_t>(t.shape.size()));
    return Status::ok();
  }

  Status record(const cmd::Slice &s) override {
    cpu::slice(ptr(s.input), ptr(s.out), s.elementBytes, s.shape.data(), s.offsets.data(),
               s.sizes.data(), static_cast<int64_t>(s.shape.size()));
    return Status::ok();
  }

  Status record(const cmd::TopK &t) override {
    if (Status s = f32Only(t.dtype); !s)
      return s;
    cpu::topk(f32(t.input), t.rows, t.n, t.k, f32(t.values), i32(t.indices));
    return Status::ok();
  }

  Status record(const cmd::CrossEntropy &c) override {
    if (Status s = f32Only(c.dtype); !s)
      return s;
    return badLabel(c.labels, c.vocab,
                    cpu::crossEntropy(f32(c.logits), i32(c.labels), c.rows, c.vocab,
                                      c.ignoreIndex, static_cast<int>(c.reduction),
                                      f32(c.loss)));
  }

  Status record(const cmd::CrossEntropyGrad &c) override {
    if (Status s = f32Only(c.dtype); !s)
      return s;
    return badLabel(c.labels, c.vocab,
                    cpu::crossEntropyGrad(f32(c.logits), i32(c.labels), f32(c.lossGrad),
                                          c.rows, c.vocab, c.ignoreIndex,
                                          static_cast<int>(c.reduction), f32(c.out)));
  }

  Status record(const cmd::Place &p) override {
    cpu::place(ptr(p.input), ptr(p.out), p.outer, p.chunkBytes, p.strideBytes, p.offsetBytes);
    return Status::ok();
  }

  Status record(const cmd::OneHot &h) override {
    if (Status s = f32Only(h.dtype); !s)
      return s;
    int64_t classes = h.depth * h.rowShards.shards;
    if (cpu::oneHot(i32(h.indices), h.count, h.depth, f32(h.out),
                    firstRow(h.rowShards, h.depth), classes) >= 0)
      return Status::error("an index is outside [0, " + std::to_string(classes) + ")");
    return Status::ok();
  }

  Status record(const cmd::Reduce &r) override {
    if (Status s = f32Only(r.dtype); !s)
      return s;
    cpu::reduce(f32(r.input), f32(r.out), static_cast<cpu::ReduceKind>(r.kind), r.outer, r.n,
                r.inner);
    return Status::ok();
  }

  Status record(const cmd::Copy &c) override {
    std::memmove(ptr(c.out), ptr(c.input), static_cast<size_t>(c.out.size));
    return Status::ok();
  }

  Status record(const cmd::Fill &f) override {
    if (f.dtype != format::DType::F32)
      return Status::error("the CPU fills f32 elements only, not " +
                           std::string(format::EnumNameDType(f.dtype)));
    std::fill_n(i32(f.out), f.out.size / 4, static_cast<int32_t>(f.bits));
    return Status::ok();
  }

  // Collectives: the host communicator's, between the job's processes.
  Status record(const cmd::AllReduce &c) override {
    return comm_.allReduce(ptr(c.input), ptr(c.out), c.count, hostDType(c.dtype),
                           reduceOf(c.reduction), c.axes);
  }
  Status record(const cmd::AllGather &c) override {
    return comm_.allGather(ptr(c.input), ptr(c.out), c.count, hostDType(c.dtype), c.axes);
  }
  Status record(const cmd::ReduceScatter &c) override {
    return comm_.reduceScatter(ptr(c.input), ptr(c.out), c.count, hostDType(c.dtype),
                               reduceOf(c.reduction), c.axes);
  }
  Status record(const cmd::AllSlice &c) override {
    int64_t bytes = c.count * (dtypeBits(c.dtype) / 8);
    int64_t index = comm_.mesh().groupIndex(comm_.rank(), c.axes);
    std::memmove(ptr(c.out), ptr(c.input) + index * bytes, static_cast<size_t>(bytes));
    return Status::ok();
  }

  std::shared_ptr<cpu::KernelModule> kernels_;

private:
  static CollectiveReduce reduceOf(format::CollectiveReduce r) {
    switch (r) {
    case format::CollectiveReduce::Average: return CollectiveReduce::Average;
    case format::CollectiveReduce::Max: return CollectiveReduce::Max;
    default: return CollectiveReduce::Sum;
    }
  }
  /// The first of this rank's `rows` sharded rows.
  int64_t firstRow(const cmd::RowShards &shards, int64_t rows) const {
    return shards.shards > 1 ? comm_.mesh().groupIndex(comm_.rank(), shards.axes) * rows : 0;
  }
  std::vector<float> denseB_, denseGate_;
  cpu::QuantizedWeightView quantizedB_, quantizedGate_;
  uint8_t *ptr(const Buffer &b) const {
    return b.present() ? base_[static_cast<int>(b.space)] + b.offset : nullptr;
  }
  float *f32(const Buffer &b) const { return reinterpret_cast<float *>(ptr(b)); }
  int32_t *i32(const Buffer &b) const { return reinterpret_cast<int32_t *>(ptr(b)); }
  static Status f32Only(format::DType dtype) {
    if (dtype == format::DType::F32)
      return Status::ok();
    return Status::error(std::string("the CPU computes in f32, not ") +
                         format::EnumNameDType(dtype) + "; compile for --target=cuda");
  }
  Status badLabel(const Buffer &labels, int64_t vocab, int64_t row) const {
    if (row < 0)
      return Status::ok();
    return Status::error("label " + std::to_string(i32(labels)[row]) + " of row " +
                         std::to_string(row) + " is outside the vocabulary of " +
                         std::to_string(vocab));
  }

  uint8_t *const *base_;
  Communicator &comm_;
};

class CpuExecutor final : public Executor {
public:
  CpuExecutor(const LoadedArtifact &artifact, Communicator &comm, const SessionOptions &options)
      : artifact_(artifact), comm_(comm), profile_(options.profile),
        profileSteps_(options.profileSteps) {}
  ~CpuExecutor() override {
    if (profile_ && !stepTimes_.empty())
      std::fputs(stepTimes_.report("cpu", profileSteps_).c_str(), stderr);
  }
  Status init(bool overlapCollectives);
  bool hasEntry(const std::string &name) const override {
    return entries_.count(name) != 0;
  }
  std::vector<TensorRef> inputs(const std::string &entry) override;
  std::vector<TensorRef> outputs(const std::string &entry) override;
  Status run(const std::string &entry) override;
  Status readState(int64_t offset, int64_t size, void *dst) override {
    std::memcpy(dst, state_.data() + offset, static_cast<size_t>(size));
    return Status::ok();
  }
  Status writeState(int64_t offset, int64_t size, const void *src) override {
    std::memcpy(state_.data() + offset, src, static_cast<size_t>(size));
    return Status::ok();
  }
  void zeroState(int64_t offset, int64_t size) override {
    std::memset(state_.data() + offset, 0, static_cast<size_t>(size));
  }
  std::string deviceName() const override { return "cpu"; }
  MemoryUse memoryUse() const override { return {allocated_, -1}; }

private:
  struct Entry {
    const format::EntryPoint *desc = nullptr;
    const DecodedEntry *commands = nullptr;
    AlignedBuffer arena, input, output;
    uint8_t *base[5] = {}; // by format::Space
    std::unique_ptr<CpuBackend> backend;
  };

  /// Whether step `c` is a collective that talks to other ranks: run
  /// beside the compute steps (asyncSteps_).
  static bool sendsMessages(const Command &c) {
    return std::holds_alternative<cmd::AllReduce>(c) ||
           std::holds_alternative<cmd::AllGather>(c) ||
           std::holds_alternative<cmd::ReduceScatter>(c);
  }
  Status runSteps(Entry &entry);
  /// Runs step `i` of `entry`, timed with `profile_`.
  Status runStep(Entry &entry, size_t i);
  /// A step as the profile names it: its command, a GEMM's shape, a kernel's name.
  std::string describe(const Command &step) const;

  const LoadedArtifact &artifact_;
  Communicator &comm_;
  bool profile_ = false;
  size_t profileSteps_; // SessionOptions::profileSteps
  StepProfile stepTimes_;
  std::vector<std::string> kernelNames_;
  std::shared_ptr<cpu::KernelModule> kernels_;
  std::vector<uint8_t> state_;
  int64_t allocated_ = 0; // state, arenas, inputs and outputs
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  /// A job of more than one rank: its collectives' thread. Declared after
  /// the entries, so that it stops before their buffers go.
  std::unique_ptr<cpu::AsyncSteps> asyncSteps_;
};

} // namespace

StatusOr<std::unique_ptr<Executor>> createCpuExecutor(const LoadedArtifact &artifact,
                                                      Communicator &comm,
                                                      const SessionOptions &options) {
  auto executor = std::make_unique<CpuExecutor>(artifact, comm, options);
  if (Status s = executor->init(options.overlapCollectives); !s)
    return s;
  return std::unique_ptr<Executor>(std::move(executor));
}

Status CpuExecutor::init(bool overlapCollectives) {
  if (comm_.size() > 1 && overlapCollectives)
    asyncSteps_ = std::make_unique<cpu::AsyncSteps>();
  CpuExecutor *session = this;
  const format::Artifact &root = session->artifact_.root();
  // The whole plan, in checked arithmetic, before any of it is allocated.
  int64_t planned = root.state_size();
  if (root.entries())
    for (const format::EntryPoint *desc : *root.entries())
      for (int64_t bytes : {desc->arena_size(), packedSize(desc->inputs()),
                            packedSize(desc->outputs())})
        if (planned >= 0 && __builtin_add_overflow(planned, bytes, &planned))
          planned = -1;
  if (Status s = fitsHostMemory(planned, "the artifact's state, arenas, inputs and outputs");
      !s)
    return s;
  allocated_ = planned;
  std::vector<std::string> symbols;
  const uint8_t *code = nullptr;
  size_t codeSize = 0;
  if (const format::KernelModule *k = root.kernels()) {
    if (k->symbols())
      for (const flatbuffers::String *s : *k->symbols())
        symbols.push_back(s->str());
    kernelNames_ = symbols;
    if (k->code()) {
      code = k->code()->data();
      codeSize = k->code()->size();
    }
    if (!symbols.empty() && (!k->format() || k->format()->str() != "elf-shared-object"))
      return Status::error("the artifact was compiled for " +
                           (root.options() && root.options()->target()
                                ? root.options()->target()->str()
                                : std::string("another target")) +
                           ": its kernels cannot run on the CPU");
  }
  std::string target = root.options() && root.options()->target()
                           ? root.options()->target()->str()
                           : "cpu";
  auto kernels = cpu::KernelModule::load(code, codeSize, symbols, target);
  if (!kernels)
    return kernels.status();
  session->kernels_ = *kernels;
  if (target.rfind("cpu", 0) != 0)
    return Status::error("the artifact was compiled for " + target +
                         ", not the CPU");

  session->state_.assign(static_cast<size_t>(root.state_size()), 0);
  if (root.entries())
    for (size_t index = 0; index < root.entries()->size(); ++index) {
      const format::EntryPoint *desc = root.entries()->Get(index);
      auto entry = std::make_unique<Entry>();
      entry->desc = desc;
      entry->commands = &session->artifact_.entries()[index];
      if (!entry->arena.allocate(desc->arena_size()) ||
          !entry->input.allocate(packedSize(desc->inputs())) ||
          !entry->output.allocate(packedSize(desc->outputs())))
        return Status::error("out of memory for entry '" + desc->name()->str() + "'");
      entry->base[static_cast<int>(format::Space::Arena)] = entry->arena.get();
      entry->base[static_cast<int>(format::Space::Weights)] =
          const_cast<uint8_t *>(session->artifact_.weights());
      entry->base[static_cast<int>(format::Space::State)] = session->state_.data();
      entry->base[static_cast<int>(format::Space::Input)] = entry->input.get();
      entry->base[static_cast<int>(format::Space::Output)] = entry->output.get();
      entry->backend = std::make_unique<CpuBackend>(entry->base, session->comm_);
      entry->backend->kernels_ = session->kernels_;
      session->entries_[desc->name()->str()] = std::move(entry);
    }
  return Status::ok();
}

std::vector<TensorRef> tensorRefs(
    const flatbuffers::Vector<flatbuffers::Offset<format::TensorDesc>> *list,
    uint8_t *base) {
  std::vector<TensorRef> out;
  if (!list)
    return out;
  for (const format::TensorDesc *t : *list) {
    TensorRef r;
    r.name = t->name() ? t->name()->str() : "";
    static_assert(static_cast<int>(TensorRole::ParameterCopy) ==
                      static_cast<int>(format::TensorRole::ParameterCopy),
                  "the runtime's tensor roles follow the schema's");
    r.role = static_cast<TensorRole>(t->role());
    r.weight = t->weight() ? t->weight()->str() : "";
    if (t->shape())
      r.shape.assign(t->shape()->begin(), t->shape()->end());
    r.elementBytes = static_cast<int>(std::max<int64_t>(dtypeBits(t->dtype()) / 8, 1));
    r.dtype = hostDType(t->dtype());
    if (t->shard_shape() && t->shard_axes()) {
      r.shardShape.assign(t->shard_shape()->begin(), t->shard_shape()->end());
      for (int16_t axis : *t->shard_axes())
        r.shardAxes |= 1u << axis; // checked by the loader
    }
    if (t->tp_shape() && t->tp_segments()) {
      r.tpShape.assign(t->tp_shape()->begin(), t->tp_shape()->end());
      r.tpSegments.assign(t->tp_segments()->begin(), t->tp_segments()->end());
      r.tpAxis = t->tp_axis();
      r.tpKeep = t->tp_keep();
      r.tpReplicas = t->tp_replicas();
    }
    r.data = base + t->buffer()->offset();
    r.size = t->buffer()->size();
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<TensorRef> CpuExecutor::inputs(const std::string &entry) {
  auto it = entries_.find(entry);
  return it == entries_.end()
             ? std::vector<TensorRef>{}
             : tensorRefs(it->second->desc->inputs(), it->second->input.get());
}

std::vector<TensorRef> CpuExecutor::outputs(const std::string &entry) {
  auto it = entries_.find(entry);
  return it == entries_.end()
             ? std::vector<TensorRef>{}
             : tensorRefs(it->second->desc->outputs(), it->second->output.get());
}



Status CpuExecutor::run(const std::string &name) {
  auto it = entries_.find(name);
  if (it == entries_.end())
    return Status::error("the artifact has no entry point '" + name + "'");
  if (Status s = runSteps(*it->second); !s)
    return Status::error("entry '" + name + "', " + s.message());
  if (profile_)
    stepTimes_.addRun(name);
  return Status::ok();
}

Status CpuExecutor::runStep(Entry &entry, size_t i) {
  const Command &step = entry.commands->steps[i];
  if (!profile_)
    return entry.backend->recordStep(i, step);
  auto start = std::chrono::steady_clock::now();
  Status s = entry.backend->recordStep(i, step);
  std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - start;
  stepTimes_.addStep(entry.desc->name() ? entry.desc->name()->str() : std::string(),
                     describe(step), ms.count());
  return s;
}

std::string CpuExecutor::describe(const Command &step) const {
  if (const auto *launch = std::get_if<cmd::Launch>(&step)) {
    std::string name = launch->kernel < kernelNames_.size() ? kernelNames_[launch->kernel]
                                                            : std::to_string(launch->kernel);
    return "kernel " + (name.rfind("gai_", 0) == 0 ? name.substr(4) : name);
  }
  if (const auto *gemm = std::get_if<cmd::Gemm>(&step))
    return "gemm " + std::to_string(gemm->batch * gemm->m) + "x" + std::to_string(gemm->n) +
           "x" + std::to_string(gemm->k) + (gemm->residual.present() ? " residual" : "");
  return commandName(step);
}

/// The steps in order; in a job of several ranks each collective starts on
/// the collectives' thread and a later step waits for it only when it
/// touches its buffers (the gradient buckets' all-reduces go on while the
/// backward pass computes).
Status CpuExecutor::runSteps(Entry &entry) {
  const std::vector<Command> &steps = entry.commands->steps;
  if (!asyncSteps_) {
    for (size_t i = 0; i < steps.size(); ++i)
      if (Status s = runStep(entry, i); !s)
        return s;
    return Status::ok();
  }
  Status failed = Status::ok();
  for (size_t i = 0; i < steps.size() && failed; ++i) {
    std::vector<Buffer> touched = buffersOf(steps[i]);
    if (Status s = asyncSteps_->waitFor(touched); !s) {
      failed = s;
      break;
    }
    if (sendsMessages(steps[i])) {
      CpuBackend *backend = entry.backend.get();
      const Command &step = steps[i];
      asyncSteps_->start(std::move(touched), [backend, &step, i]() -> Status {
        Status s = std::visit(
            [backend](const auto &c) -> Status {
              if constexpr (std::is_base_of_v<cmd::Collective, std::decay_t<decltype(c)>>)
                return backend->record(c);
              else
                return Status::ok();
            },
            step);
        if (!s)
          return Status::error("step " + std::to_string(i) + " (" + commandName(step) +
                               "): " + s.message());
        return s;
      });
      continue;
    }
    failed = runStep(entry, i);
  }
  // Nothing may run on after the entry: the collectives' thread writes its
  // buffers.
  Status pending = asyncSteps_->waitAll();
  return !failed ? failed : pending;
}

} // namespace gai
