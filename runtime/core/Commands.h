// The artifact's steps as typed commands: one struct per exec op, decoded
// and validated once (every size against its buffer, in checked arithmetic)
// before any backend sees them.
#ifndef GAI_RUNTIME_CORE_COMMANDS_H
#define GAI_RUNTIME_CORE_COMMANDS_H

#include "format/artifact_generated.h"
#include "gai/Status.h"
#include "hal/RowStrides.h"

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace gai {

/// A byte range of one space; size 0 is "none" for optional operands.
struct Buffer {
  format::Space space = format::Space::Arena;
  int64_t offset = 0;
  int64_t size = 0;
  bool present() const { return size > 0; }
  bool operator==(const Buffer &o) const {
    return space == o.space && offset == o.offset && size == o.size;
  }
  /// Whether the two ranges share a byte (same space).
  bool overlaps(const Buffer &o) const {
    return space == o.space && offset < o.offset + o.size && o.offset < offset + size;
  }
};

namespace cmd {

/// c = act(a·b + bias) + residual, batched (ExecOps.td: exec.gemm).
struct Gemm {
  Buffer a, b, c, bias, residual, gate;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transposeA = false, transposeB = false;
  int64_t strideA = 0, strideB = 0, strideC = 0; // elements
  format::Activation activation = format::Activation::None;
  format::DType dtype = format::DType::F32;
  /// An RMSNorm folded in: making its input (normWeight/normOut/normSquares)
  /// and reading it (aSquares, aNormEps).
  Buffer normWeight, normOut, normSquares, aSquares;
  float normOffset = 0, aNormEps = 0;
  bool wideC = false;
  /// Quantized b and gate (artifact.fbs's WeightFormat): stored [n, k]
  /// with f32 scales, and for int4 a zero byte, per `group` of k.
  format::WeightFormat weightFormat = format::WeightFormat::Float;
  Buffer bScale, bZero, gateScale, gateZero;
  int64_t group = 0;
  /// 2:4 sparse b (WeightFormat::Sparse24): b holds the kept values
  /// [n, k / 2] in dtype, bMeta their positions [n, k / 8]; a gate's are
  /// stored alike, with gateMeta.
  Buffer bMeta, gateMeta;
  /// Fp8 b over bf16 a and c: a is e4m3 [m, k] with aScale f32 [m] its
  /// rows' scales, made by the kernel that made A. Size 0: none.
  Buffer aScale;
  /// Not float: quantized or 2:4 (both stored [n, k] as one matrix).
  bool quantized() const { return weightFormat != format::WeightFormat::Float; }
  bool sparse24() const { return weightFormat == format::WeightFormat::Sparse24; }
  /// Fp8: one scale for the whole weight (else one a row).
  bool perTensorScale() const { return bScale.size == 4; }
};

using gai::packedStrides;
using gai::RowStrides;

/// Flash attention, maybe with its cache writes and RoPE folded in.
struct Attention {
  Buffer q, k, v, out, queryStart, kNew, vNew, ropePositions;
  Buffer lse; // f32 [batch, heads, queries] when present
  int64_t batch = 0, heads = 0, kvHeads = 0, queries = 0, keys = 0, headDim = 0,
          valueDim = 0, window = 0;
  float scale = 1, softcap = 0, ropeTheta = 0;
  bool causal = false, cacheReady = false;
  format::DType dtype = format::DType::F32;
  format::RopeStyle rope = format::RopeStyle::None;
  int64_t ropeRows = 0; // rows of rope positions: 1 or batch
  RowStrides qStrides, kStrides, vStrides, outStrides; // packed unless strided
};

/// Attention's backward: q, k, v, out, out_grad and the gradients in dtype,
/// lse f32 [batch, heads, queries].
struct AttentionGrad {
  Buffer q, k, v, out, lse, outGrad, qGrad, kGrad, vGrad;
  int64_t batch = 0, heads = 0, kvHeads = 0, queries = 0, keys = 0, headDim = 0,
          valueDim = 0, window = 0;
  float scale = 1, softcap = 0;
  bool causal = false;
  format::DType dtype = format::DType::F32;
  RowStrides qStrides, kStrides, vStrides, outStrides, outGradStrides, qGradStrides,
      kGradStrides, vGradStrides; // packed unless strided
};

/// A generated kernel over buffers.
struct Launch {
  uint32_t kernel = 0;
  std::vector<Buffer> args;
  std::vector<int64_t> grid; // CUDA grid and block; empty on the CPU
};

/// A table (or one-hot depth) of sharded rows: this rank's are rows
/// [g·rows, (g+1)·rows) of rows × shards, g its index in its group along
/// the mesh axes of the bitmask `axes`; other ids give zeros.
struct RowShards {
  int64_t shards = 1;
  uint32_t axes = 0;
};

struct Embedding {
  Buffer table, indices, out;
  int64_t vocab = 0, dim = 0, count = 0; // vocab: this rank's rows
  format::DType dtype = format::DType::F32;
  RowShards rowShards;
};

/// Embedding's backward: out [vocab, dim] = zeros, plus grad's row i at
/// indices[i] (this rank's rows only, with row shards).
struct EmbeddingGrad {
  Buffer grad, indices, out;
  int64_t vocab = 0, dim = 0, count = 0; // vocab: this rank's rows
  format::DType dtype = format::DType::F32;
  RowShards rowShards;
};

struct CacheWrite {
  Buffer cache, update, positions;
  int64_t batch = 0, heads = 0, slots = 0, rows = 0, dim = 0;
  format::DType dtype = format::DType::F32;
};

struct Take {
  Buffer input, indices, out;
  int64_t batch = 0, length = 0, rowBytes = 0;
};

/// At most this many dimensions in a transpose or slice (the CUDA kernels').
inline constexpr int64_t kMostDims = 8;

struct Transpose {
  Buffer input, out;
  int64_t elementBytes = 4;
  std::vector<int64_t> shape, permutation;
};

struct Slice {
  Buffer input, out;
  int64_t elementBytes = 4;
  std::vector<int64_t> shape, offsets, sizes;
};

struct TopK {
  Buffer input, values, indices;
  int64_t rows = 0, n = 0, k = 0;
  format::DType dtype = format::DType::F32;
};

struct CrossEntropy {
  Buffer logits, labels, loss;
  int64_t rows = 0, vocab = 0, ignoreIndex = -100;
  format::LossReduction reduction = format::LossReduction::Mean;
  format::DType dtype = format::DType::F32;
};

struct CrossEntropyGrad {
  Buffer logits, labels, lossGrad, out;
  int64_t rows = 0, vocab = 0, ignoreIndex = -100;
  format::LossReduction reduction = format::LossReduction::Mean;
  format::DType dtype = format::DType::F32;
};

struct Place {
  Buffer input, out;
  int64_t outer = 0, chunkBytes = 0, strideBytes = 0, offsetBytes = 0;
};

struct OneHot {
  Buffer indices, out;
  int64_t count = 0, depth = 0; // depth: this rank's classes
  format::DType dtype = format::DType::F32;
  RowShards rowShards;
};

struct Reduce {
  Buffer input, out;
  format::ReduceKind kind = format::ReduceKind::Sum;
  int64_t outer = 0, n = 0, inner = 0;
  format::DType dtype = format::DType::F32;
};

struct Copy {
  Buffer input, out;
};

struct Fill {
  Buffer out;
  uint64_t bits = 0;
  format::DType dtype = format::DType::F32;
};

/// Collectives over a group of the artifact's mesh: `axes` is a bitmask of
/// grid axes, `groupSize` the ranks in the group (artifact.fbs).
struct Collective {
  Buffer input, out;
  int64_t count = 0; // elements per rank (AllReduce: of the tensor)
  uint32_t axes = 0;
  int64_t groupSize = 1;
  format::DType dtype = format::DType::F32;
};
struct AllReduce : Collective {
  format::CollectiveReduce reduction = format::CollectiveReduce::Sum;
};
struct AllGather : Collective {};
struct ReduceScatter : Collective {
  format::CollectiveReduce reduction = format::CollectiveReduce::Sum;
};
struct AllSlice : Collective {};

} // namespace cmd

/// One alternative per exec op and per member of the schema's `Command`
/// union, in the union's order.
using Command =
    std::variant<cmd::Gemm, cmd::Attention, cmd::Launch, cmd::Embedding, cmd::CacheWrite,
                 cmd::Take, cmd::Transpose, cmd::Slice, cmd::TopK, cmd::CrossEntropy,
                 cmd::CrossEntropyGrad, cmd::Place, cmd::OneHot, cmd::Reduce, cmd::Copy,
                 cmd::Fill, cmd::AllReduce, cmd::AllGather, cmd::ReduceScatter, cmd::AllSlice,
                 cmd::AttentionGrad, cmd::EmbeddingGrad>;

/// Every present buffer a command reads or writes (a backend that runs a
/// step beside the others orders later steps by these).
std::vector<Buffer> buffersOf(const Command &command);

/// The present buffers of buffersOf(command) that it may write: a launch's
/// every argument (a kernel does not say which it writes), a collective's
/// input too (all-reduces run in place).
std::vector<Buffer> writesOf(const Command &command);

/// The schema's name of a command (gemm, cache_write, ...).
const char *commandName(const Command &command);
/// Every command's name, in the variant's order.
std::vector<std::string> commandNames();

/// An entry point's commands, in order.
struct DecodedEntry {
  std::string name;
  std::vector<Command> steps;
};

/// The byte sizes of the five spaces an entry's buffers live in, by
/// format::Space.
using SpaceSizes = std::array<int64_t, 5>;

/// The bytes each generated kernel's buffer arguments span, by kernel.
using KernelSignatures = std::vector<std::vector<int64_t>>;

/// The most steps an entry may have: far past any model's, short of what a
/// tampered count could make the loader allocate.
inline constexpr size_t kMostSteps = size_t{1} << 20;

/// Decodes and validates `entry`'s steps: every buffer inside its space and
/// large enough for the sizes the command gives, every enum known, with
/// no arithmetic overflow; a launch names a kernel of `kernels` and passes
/// the buffers its signature takes. Errors name the entry, the step and the
/// field. Collectives name axes of `mesh` (the artifact's device grid).
StatusOr<DecodedEntry> decodeEntry(const format::EntryPoint &entry, const SpaceSizes &sizes,
                                   const KernelSignatures &kernels,
                                   const std::vector<int64_t> &mesh = {});

} // namespace gai

#endif // GAI_RUNTIME_CORE_COMMANDS_H
