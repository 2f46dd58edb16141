// The CPU executor: resolves each step's buffers and runs its command.
#include "core/Executor.h"

#include "core/Tables.h"
#include "format/artifact_generated.h"
#include "hal/cpu/KernelModule.h"
#include "hal/cpu/Kernels.h"

#include <map>

#include <cstdlib>
#include <cstring>

namespace gai {
namespace {

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

class CpuExecutor final : public Executor {
public:
  explicit CpuExecutor(const LoadedArtifact &artifact) : artifact_(artifact) {}
  Status init();
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

private:
  struct Entry {
    const format::EntryPoint *desc = nullptr;
    AlignedBuffer arena, input, output;
    uint8_t *base[5] = {}; // by format::Space
  };
  Status runStep(const Entry &entry, size_t index);

  const LoadedArtifact &artifact_;
  std::shared_ptr<cpu::KernelModule> kernels_;
  std::vector<uint8_t> state_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

} // namespace

StatusOr<std::unique_ptr<Executor>> createCpuExecutor(const LoadedArtifact &artifact) {
  auto executor = std::make_unique<CpuExecutor>(artifact);
  if (Status s = executor->init(); !s)
    return s;
  return std::unique_ptr<Executor>(std::move(executor));
}

Status CpuExecutor::init() {
  CpuExecutor *session = this;
  const format::Artifact &root = session->artifact_.root();
  std::vector<std::string> symbols;
  const uint8_t *code = nullptr;
  size_t codeSize = 0;
  if (const format::KernelModule *k = root.kernels()) {
    if (k->symbols())
      for (const flatbuffers::String *s : *k->symbols())
        symbols.push_back(s->str());
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
    for (const format::EntryPoint *desc : *root.entries()) {
      auto entry = std::make_unique<Entry>();
      entry->desc = desc;
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
    if (t->shape())
      r.shape.assign(t->shape()->begin(), t->shape()->end());
    r.elementBytes = static_cast<int>(std::max<int64_t>(dtypeBits(t->dtype()) / 8, 1));
    r.dtype = hostDType(t->dtype());
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
  const Entry &entry = *it->second;
  if (!entry.desc->steps())
    return Status::ok();
  for (size_t i = 0; i < entry.desc->steps()->size(); ++i)
    if (Status s = runStep(entry, i); !s)
      return s;
  return Status::ok();
}

Status CpuExecutor::runStep(const Entry &entry, size_t index) {
  const format::Step *step = entry.desc->steps()->Get(index);
  auto ptr = [&](const format::BufferRef *ref) -> uint8_t * {
    if (!ref || ref->size() == 0)
      return nullptr;
    return entry.base[static_cast<int>(ref->space())] + ref->offset();
  };
  auto f32 = [&](const format::BufferRef *ref) {
    return reinterpret_cast<float *>(ptr(ref));
  };
  auto i32 = [&](const format::BufferRef *ref) {
    return reinterpret_cast<int32_t *>(ptr(ref));
  };
  std::string at = "entry '" + entry.desc->name()->str() + "', step " +
                   std::to_string(index);
  switch (step->command_type()) {
  case format::Command::Gemm: {
    const format::Gemm *g = step->command_as_Gemm();
    if ((g->norm_out() && g->norm_out()->size() > 0) ||
        (g->a_squares() && g->a_squares()->size() > 0))
      return Status::error(at + " (gemm): an RMSNorm folded into GEMMs has no CPU kernel "
                                "(the cuda target's decode GEMV does it)");
    if (g->wide_c())
      return Status::error(at + " (gemm): an f32 residual over bf16 operands (wide_c) "
                                "has no CPU kernel (the CPU computes in f32 only)");
    cpu::GemmArgs args;
    args.a = f32(g->a());
    args.b = f32(g->b());
    args.c = f32(g->c());
    args.batch = g->batch();
    args.m = g->m();
    args.n = g->n();
    args.k = g->k();
    args.transposeA = g->transpose_a();
    args.transposeB = g->transpose_b();
    args.strideA = g->stride_a();
    args.strideB = g->stride_b();
    args.strideC = g->stride_c();
    args.bias = f32(g->bias());
    args.residual = f32(g->residual());
    args.activation = activationOf(g->activation());
    args.gate = f32(g->gate()); // its form checked when the artifact loaded
    cpu::gemm(args);
    return Status::ok();
  }
  case format::Command::Attention: {
    const format::Attention *a = step->command_as_Attention();
    if (a->k_new() && a->k_new()->size() > 0)
      return Status::error(at + " (attention): folded cache writes and RoPE have no CPU "
                                "kernel (the cuda target's gai.cached_attention)");
    cpu::AttentionArgs args;
    args.q = f32(a->q());
    args.k = f32(a->k());
    args.v = f32(a->v());
    args.out = f32(a->out());
    args.batch = a->batch();
    args.heads = a->heads();
    args.kvHeads = a->kv_heads();
    args.queries = a->queries();
    args.keys = a->keys();
    args.headDim = a->head_dim();
    args.valueDim = a->value_dim();
    args.scale = a->scale();
    args.softcap = a->softcap();
    args.causal = a->causal();
    args.window = a->window();
    args.queryStart = i32(a->query_start());
    if (args.queryStart)
      for (int64_t b = 0; b < args.batch; ++b)
        if (args.queryStart[b] < 0 || args.queryStart[b] + args.queries > args.keys)
          return Status::error(at + " (attention): row " + std::to_string(b) +
                               " starts at position " +
                               std::to_string(args.queryStart[b]) +
                               ", outside the " + std::to_string(args.keys) +
                               " cache slots");
    cpu::attention(args);
    return Status::ok();
  }
  case format::Command::Launch: {
    const format::Launch *l = step->command_as_Launch();
    void *buffers[64];
    size_t count = l->args() ? l->args()->size() : 0;
    if (count > 64)
      return Status::error(at + ": a launch with more than 64 buffers");
    for (size_t i = 0; i < count; ++i)
      buffers[i] = ptr(l->args()->Get(i));
    kernels_->kernel(l->kernel())(buffers);
    return Status::ok();
  }
  case format::Command::LibraryCall:
    break;
  default:
    return Status::error(at + ": unknown command");
  }

  const format::LibraryCall *c = step->command_as_LibraryCall();
  std::string callee = c->name()->str();
  auto arg = [&](size_t i) {
    return c->args() && i < c->args()->size() ? c->args()->Get(i) : nullptr;
  };
  std::vector<int64_t> ints;
  if (c->ints())
    ints.assign(c->ints()->begin(), c->ints()->end());
  size_t argCount = c->args() ? c->args()->size() : 0;
  auto need = [&](size_t nArgs, size_t nInts) -> Status {
    if (argCount != nArgs || ints.size() < nInts)
      return Status::error(at + " (" + callee + "): expected " +
                           std::to_string(nArgs) + " buffers and " +
                           std::to_string(nInts) + " integers");
    return Status::ok();
  };
  at += " (" + callee + ")";
  if (callee == "embedding") {
    if (Status s = need(3, 3); !s)
      return s;
    int64_t bad = cpu::embedding(f32(arg(0)), ints[0], ints[1], i32(arg(1)),
                                 ints[2], f32(arg(2)));
    if (bad >= 0)
      return Status::error(at + ": token id " + std::to_string(i32(arg(1))[bad]) +
                           " is outside the vocabulary of " +
                           std::to_string(ints[0]));
    return Status::ok();
  }
  if (callee == "cache_write") {
    if (Status s = need(3, 5); !s)
      return s;
    int64_t bad = cpu::cacheWrite(f32(arg(0)), f32(arg(1)), i32(arg(2)), ints[0],
                                  ints[1], ints[2], ints[3], ints[4]);
    if (bad >= 0)
      return Status::error(at + ": row " + std::to_string(bad) + " writes " +
                           std::to_string(ints[3]) + " tokens at position " +
                           std::to_string(i32(arg(2))[bad]) + ", past the " +
                           std::to_string(ints[2]) + " cache slots");
    return Status::ok();
  }
  if (callee == "take") {
    if (Status s = need(3, 3); !s)
      return s;
    int64_t bad = cpu::take(f32(arg(0)), i32(arg(1)), ints[0], ints[1], ints[2],
                            f32(arg(2)));
    if (bad >= 0)
      return Status::error(at + ": row " + std::to_string(bad) + " picks position " +
                           std::to_string(i32(arg(1))[bad]) + " of " +
                           std::to_string(ints[1]));
    return Status::ok();
  }
  if (callee == "transpose" || callee == "slice") {
    if (Status s = need(2, 2); !s)
      return s;
    int64_t rank = ints[1];
    size_t want = 2 + (callee == "slice" ? 3 : 2) * static_cast<size_t>(rank);
    if (rank < 0 || ints.size() != want)
      return Status::error(at + ": malformed shape");
    if (callee == "transpose")
      cpu::transpose(ptr(arg(0)), ptr(arg(1)), ints[0], &ints[2], &ints[2 + rank],
                     rank);
    else
      cpu::slice(ptr(arg(0)), ptr(arg(1)), ints[0], &ints[2], &ints[2 + rank],
                 &ints[2 + 2 * rank], rank);
    return Status::ok();
  }
  if (callee == "place") {
    if (Status s = need(2, 4); !s)
      return s;
    int64_t outer = ints[0], chunk = ints[1], stride = ints[2], offset = ints[3];
    if (outer < 0 || chunk < 0 || outer * chunk > arg(0)->size() ||
        (outer > 0 && (outer - 1) * stride + offset + chunk > arg(1)->size()))
      return Status::error(at + ": the blocks fall outside the buffers");
    cpu::place(ptr(arg(0)), ptr(arg(1)), outer, chunk, stride, offset);
    return Status::ok();
  }
  if (callee == "cross_entropy" || callee == "cross_entropy_grad") {
    bool grad = callee == "cross_entropy_grad";
    if (Status s = need(grad ? 4 : 3, 4); !s)
      return s;
    int64_t rows = ints[0], vocab = ints[1];
    int reduction = static_cast<int>(ints[3]);
    int64_t bad = grad ? cpu::crossEntropyGrad(f32(arg(0)), i32(arg(1)), f32(arg(2)), rows,
                                               vocab, ints[2], reduction, f32(arg(3)))
                       : cpu::crossEntropy(f32(arg(0)), i32(arg(1)), rows, vocab, ints[2],
                                           reduction, f32(arg(2)));
    if (bad >= 0)
      return Status::error(at + ": label " + std::to_string(i32(arg(1))[bad]) + " of row " +
                           std::to_string(bad) + " is outside the vocabulary of " +
                           std::to_string(vocab));
    return Status::ok();
  }
  if (callee == "topk") {
    if (Status s = need(3, 3); !s)
      return s;
    cpu::topk(f32(arg(0)), ints[0], ints[1], ints[2], f32(arg(1)), i32(arg(2)));
    return Status::ok();
  }
  if (callee == "one_hot") {
    if (Status s = need(2, 2); !s)
      return s;
    if (cpu::oneHot(i32(arg(0)), ints[0], ints[1], f32(arg(1))) >= 0)
      return Status::error(at + ": an index is outside [0, " +
                           std::to_string(ints[1]) + ")");
    return Status::ok();
  }
  if (callee == "reduce") {
    if (Status s = need(2, 4); !s)
      return s;
    cpu::reduce(f32(arg(0)), f32(arg(1)), static_cast<cpu::ReduceKind>(ints[0]),
                ints[1], ints[2], ints[3]);
    return Status::ok();
  }
  if (callee == "copy") {
    if (Status s = need(2, 0); !s)
      return s;
    std::memmove(ptr(arg(1)), ptr(arg(0)),
                 static_cast<size_t>(std::min(arg(0)->size(), arg(1)->size())));
    return Status::ok();
  }
  if (callee == "fill") {
    if (Status s = need(1, 1); !s)
      return s;
    if (ints.size() > 1 && ints[1] != 4)
      return Status::error(at + ": the CPU fills 4-byte elements only");
    auto bits = static_cast<int32_t>(ints[0]);
    int32_t *out = i32(arg(0));
    std::fill_n(out, arg(0)->size() / 4, bits);
    return Status::ok();
  }
  return Status::error(at + ": no such library kernel in this runtime");
}

} // namespace gai
