// The one decoder from the artifact's steps to typed commands: every field
// validated here, so that backends index with what they are given.
#include "core/Commands.h"

#include "gai/Artifact.h"

namespace gai {
namespace {

/// The exec ops' names, in the variant's (and the schema union's) order.
constexpr const char *kCommandNames[] = {
    "gemm",  "attention", "launch",        "embedding",          "cache_write", "take",
    "transpose", "slice", "topk",          "cross_entropy",      "cross_entropy_grad",
    "place", "one_hot",   "reduce",        "copy",               "fill",
    "all_reduce", "all_gather", "reduce_scatter", "all_slice", "attention_grad",
    "embedding_grad"};
static_assert(std::size(kCommandNames) == std::variant_size_v<Command> &&
              std::size(kCommandNames) == static_cast<size_t>(format::Command::MAX));

/// Collects the first error of one step; sizes are products taken in
/// checked arithmetic.
class Checker {
public:
  Checker(std::string at, const SpaceSizes &sizes) : at_(std::move(at)), sizes_(sizes) {}

  /// The buffer `ref` names, checked against its space; optional ones may
  /// be absent or empty.
  Buffer buffer(const format::BufferRef *ref, const char *field, bool optional = false) {
    if (!ref) {
      if (!optional)
        fail(std::string(field) + " has no buffer");
      return {};
    }
    Buffer b{ref->space(), ref->offset(), ref->size()};
    if (optional && b.size == 0)
      return b;
    auto space = static_cast<size_t>(b.space);
    if (space >= sizes_.size()) {
      fail(std::string(field) + " names an unknown space");
      return {};
    }
    int64_t limit = sizes_[space];
    if (b.offset < 0 || b.size < 0 || b.offset > limit || b.size > limit - b.offset)
      fail(std::string(field) + " [" + format::EnumNameSpace(b.space) + " " +
           std::to_string(b.offset) + " + " + std::to_string(b.size) +
           "] is outside its space of " + std::to_string(limit) + " bytes");
    return b;
  }

  /// The product of `factors`, or -1 (and an error) when one is negative
  /// or the product overflows.
  int64_t product(std::initializer_list<int64_t> factors, const char *what) {
    int64_t p = 1;
    for (int64_t f : factors)
      if (f < 0 || __builtin_mul_overflow(p, f, &p)) {
        fail(std::string(what) + ": a size is negative or the product overflows");
        return -1;
      }
    return p;
  }

  /// `b` holds at least the product of `factors` bytes.
  void holds(const Buffer &b, const char *field, std::initializer_list<int64_t> factors) {
    int64_t bytes = product(factors, field);
    if (bytes >= 0 && b.size < bytes)
      fail(std::string(field) + " needs " + std::to_string(bytes) + " bytes, its buffer has " +
           std::to_string(b.size));
  }

  /// A [batch, heads, rows, dim] tensor of `e`-byte elements, its rows at
  /// `strides`, lies inside `b`; rows and heads do not overlap. An output's
  /// batches do not overlap either (a batch stride of 0 would let a small
  /// buffer hold any batch, and a run take as long as the batch is large).
  void holdsStrided(const Buffer &b, const char *field, int64_t batch, int64_t heads,
                    int64_t rows, int64_t dim, const cmd::RowStrides &strides, int64_t e,
                    bool output = false) {
    if (strides.batch < 0 || strides.head < dim || strides.row < dim) {
      fail(std::string(field) + " strides must be >= 0 between batches and >= the dim (" +
           std::to_string(dim) + ") between heads and rows");
      return;
    }
    // One batch's extent (its last head's last row, plus the dim), then the
    // whole tensor's: the last batch's start plus that.
    int64_t item = dim, term = 0;
    bool overflow = false;
    for (auto [count, stride] : {std::pair{heads, strides.head}, {rows, strides.row}})
      overflow |= count < 1 || __builtin_mul_overflow(count - 1, stride, &term) ||
                  __builtin_add_overflow(item, term, &item);
    int64_t last = 0, bytes = 0;
    overflow |= batch < 1 || __builtin_mul_overflow(batch - 1, strides.batch, &last) ||
                __builtin_add_overflow(last, item, &last) ||
                __builtin_mul_overflow(last, e, &bytes);
    if (overflow)
      fail(std::string(field) + ": a size is not positive or its extent overflows");
    else if (b.size < bytes)
      fail(std::string(field) + " reaches " + std::to_string(bytes) +
           " bytes at its strides, its buffer has " + std::to_string(b.size));
    else if (output && batch > 1 && strides.batch < item)
      fail(std::string(field) + "'s batch stride (" + std::to_string(strides.batch) +
           ") must be at least one batch's extent (" + std::to_string(item) +
           "): the batches of an output may not overlap");
  }

  void positive(int64_t value, const char *field) {
    if (value <= 0)
      fail(std::string(field) + " must be positive, not " + std::to_string(value));
  }
  void nonNegative(int64_t value, const char *field) {
    if (value < 0)
      fail(std::string(field) + " must not be negative, not " + std::to_string(value));
  }
  void require(bool ok, const std::string &what) {
    if (!ok)
      fail(what);
  }

  /// Bytes per element of a float operand's dtype, 0 (and an error) for
  /// another type.
  int64_t floatBytes(format::DType dtype) {
    switch (dtype) {
    case format::DType::F32: return 4;
    case format::DType::BF16:
    case format::DType::F16: return 2;
    default:
      fail(std::string("dtype ") + format::EnumNameDType(dtype) +
           " is not a float type (f32, f16 or bf16)");
      return 0;
    }
  }

  template <typename Enum> void known(Enum value, Enum max, const char *field) {
    if (static_cast<int>(value) < 0 || static_cast<int>(value) > static_cast<int>(max))
      fail(std::string(field) + " has the unknown value " +
           std::to_string(static_cast<int>(value)));
  }

  Status status() const {
    return error_.empty() ? Status::ok() : Status::error(at_ + ": " + error_);
  }

private:
  void fail(const std::string &what) {
    if (error_.empty())
      error_ = what;
  }
  std::string at_;
  const SpaceSizes &sizes_;
  std::string error_;
};

std::vector<int64_t> longs(const flatbuffers::Vector<int64_t> *v) {
  return v ? std::vector<int64_t>(v->begin(), v->end()) : std::vector<int64_t>{};
}

/// A GEMM with an RMSNorm folded in (see artifact.fbs) has the rows, the
/// weight layout and the operand sizes the CUDA GEMV runs.
void checkNormFold(Checker &check, const cmd::Gemm &g, int64_t element) {
  const bool makes = g.normWeight.present() || g.normOut.present() || g.normSquares.present();
  const bool reads = g.aSquares.present();
  if (!makes && !reads)
    return;
  const int64_t cElement = g.wideC ? 4 : element; // the norm's input and weight
  const int64_t rows = g.m;
  auto sized = [](const Buffer &b, int64_t bytes) { return b.size == bytes; };
  // n is not bounded yet: a product that overflows saturates and matches no
  // buffer.
  bool ok = g.batch == 1 && !g.transposeA && g.transposeB && rows >= 1 &&
            rows <= kMostNormFoldRows && g.k % 8 == 0 &&
            (g.dtype == format::DType::BF16 || g.dtype == format::DType::F32);
  if (ok && makes)
    ok = !g.gate.present() && sized(g.normWeight, saturatingProduct(g.n, cElement)) &&
         sized(g.normOut, saturatingProduct(saturatingProduct(rows, g.n), element)) &&
         sized(g.normSquares, rows * 8);
  if (ok && reads)
    ok = sized(g.aSquares, rows * 8) && g.aNormEps >= 0.0f;
  check.require(ok, "a folded RMSNorm takes 1 to " + std::to_string(kMostNormFoldRows) +
                        " rows of f32 or bf16 A by weights stored [n, k] (transpose_b, k a "
                        "multiple of 8), batch 1, no gate where it makes the norm's input, "
                        "norm_weight [n] of c's type, norm_out [m, n] of a's, f64 sums of "
                        "squares [m] and an eps >= 0");
}

/// Quantized weights (see artifact.fbs's WeightFormat): one matrix stored
/// [n, k], with scales (and int4's zeros) of the sizes its format gives,
/// for b and for a gate alike.
void checkQuantized(Checker &check, const cmd::Gemm &g) {
  using format::WeightFormat;
  const bool int4 = g.weightFormat == WeightFormat::Int4;
  check.require(g.batch == 1 && !g.transposeA && g.transposeB && g.k % 8 == 0 &&
                    (g.dtype == format::DType::BF16 || g.dtype == format::DType::F32),
                "quantized weights are one matrix stored [n, k] (transpose_b, batch 1, k a "
                "multiple of 8) under f32 or bf16 a and c");
  if (int4)
    check.require(g.group >= 8 && g.group % 8 == 0 && g.k % g.group == 0,
                  "int4 weights take a group that is a multiple of 8 and divides k (" +
                      std::to_string(g.k) + "), not " + std::to_string(g.group));
  else
    check.require(g.group == 0, "only int4 weights take a group");
  const int64_t groups = int4 && g.group > 0 ? g.k / g.group : 1;
  auto weights = [&](const Buffer &q, const Buffer &scale, const Buffer &zero,
                     const char *qName, const char *scaleName, const char *zeroName) {
    check.holds(q, qName, {g.n, int4 ? g.k / 2 : g.k});
    if (g.weightFormat == WeightFormat::Fp8E4M3 && scale.size == 4)
      check.holds(scale, scaleName, {1, 4}); // per tensor
    else
      check.holds(scale, scaleName, {g.n, groups, 4});
    if (int4)
      check.holds(zero, zeroName, {g.n, groups});
    else
      check.require(!zero.present(), std::string(zeroName) + ": only int4 weights take zeros");
  };
  weights(g.b, g.bScale, g.bZero, "b", "b_scale", "b_zero");
  if (g.gate.present())
    weights(g.gate, g.gateScale, g.gateZero, "gate", "gate_scale", "gate_zero");
  else
    check.require(!g.gateScale.present() && !g.gateZero.present(),
                  "gate_scale and gate_zero need a gate");
}

/// 2:4 weights (see artifact.fbs's WeightFormat): kept values [n, k / 2]
/// in the GEMM's type and their positions [n, k / 8], one matrix stored
/// [n, k], no scales; a gate is stored alike.
void checkSparse24(Checker &check, const cmd::Gemm &g, int64_t element) {
  check.require(g.batch == 1 && !g.transposeA && g.transposeB && g.k % 8 == 0 &&
                    (g.dtype == format::DType::BF16 || g.dtype == format::DType::F32) &&
                    !g.bScale.present() && !g.bZero.present() && !g.gateScale.present() &&
                    !g.gateZero.present() && g.group == 0,
                "2:4 weights are one matrix stored [n, k] (transpose_b, batch 1, k a multiple "
                "of 8) under f32 or bf16 a and c, without scales, zeros or group");
  check.holds(g.b, "b", {g.n, g.k / 2, element});
  check.holds(g.bMeta, "b_meta", {g.n, g.k / 8});
  check.require(g.gate.present() == g.gateMeta.present(),
                "a 2:4 gated GEMM's gate takes gate_meta, and only a gate does");
  if (g.gate.present()) {
    check.holds(g.gate, "gate", {g.n, g.k / 2, element});
    check.holds(g.gateMeta, "gate_meta", {g.n, g.k / 8});
  }
}

cmd::Gemm decodeGemm(Checker &check, const format::Gemm &t) {
  cmd::Gemm g;
  g.a = check.buffer(t.a(), "a");
  g.b = check.buffer(t.b(), "b");
  g.c = check.buffer(t.c(), "c");
  g.bias = check.buffer(t.bias(), "bias", true);
  g.residual = check.buffer(t.residual(), "residual", true);
  g.gate = check.buffer(t.gate(), "gate", true);
  g.normWeight = check.buffer(t.norm_weight(), "norm_weight", true);
  g.normOut = check.buffer(t.norm_out(), "norm_out", true);
  g.normSquares = check.buffer(t.norm_squares(), "norm_squares", true);
  g.aSquares = check.buffer(t.a_squares(), "a_squares", true);
  g.batch = t.batch();
  g.m = t.m();
  g.n = t.n();
  g.k = t.k();
  g.transposeA = t.transpose_a();
  g.transposeB = t.transpose_b();
  g.strideA = t.stride_a();
  g.strideB = t.stride_b();
  g.strideC = t.stride_c();
  g.activation = t.activation();
  g.dtype = t.dtype();
  g.normOffset = t.norm_offset();
  g.aNormEps = t.a_norm_eps();
  g.wideC = t.wide_c();
  g.weightFormat = t.weight_format();
  g.bScale = check.buffer(t.b_scale(), "b_scale", true);
  g.bZero = check.buffer(t.b_zero(), "b_zero", true);
  g.gateScale = check.buffer(t.gate_scale(), "gate_scale", true);
  g.gateZero = check.buffer(t.gate_zero(), "gate_zero", true);
  g.group = t.group();
  g.bMeta = check.buffer(t.b_meta(), "b_meta", true);
  g.gateMeta = check.buffer(t.gate_meta(), "gate_meta", true);
  g.aScale = check.buffer(t.a_scale(), "a_scale", true);
  check.known(g.activation, format::Activation::MAX, "activation");
  check.known(g.weightFormat, format::WeightFormat::MAX, "weight_format");
  int64_t e = check.floatBytes(g.dtype);
  int64_t ce = g.wideC ? 4 : e;
  for (auto [v, name] : {std::pair{g.batch, "batch"}, {g.m, "m"}, {g.n, "n"}, {g.k, "k"}})
    check.positive(v, name);
  for (auto [v, name] : {std::pair{g.strideA, "stride_a"}, {g.strideB, "stride_b"},
                         {g.strideC, "stride_c"}})
    check.nonNegative(v, name); // unused for one matrix (batch 1)
  // Matrix i starts at i * stride: the last one ends (batch - 1) * stride +
  // its size elements in.
  auto lastEnd = [&](int64_t stride, int64_t rows, int64_t cols, const char *what) {
    int64_t last = check.product({g.batch - 1, stride}, what);
    int64_t size = check.product({rows, cols}, what);
    int64_t end = 0;
    if (last < 0 || size < 0 || __builtin_add_overflow(last, size, &end))
      return int64_t{-1};
    return end;
  };
  checkNormFold(check, g, e);
  check.require(!g.wideC || (g.dtype == format::DType::BF16 && !g.bias.present() &&
                             !g.gate.present()),
                "wide_c (an f32 c and residual) takes bf16 a and b, and no bias or gate");
  check.require(!g.gate.present() ||
                    (!g.bias.present() && !g.residual.present() && g.batch == 1 &&
                     !g.transposeA && g.transposeB &&
                     g.activation != format::Activation::None && g.m <= kMostGatedGemmRows &&
                     g.k % 8 == 0),
                "a gated GEMM takes at most " + std::to_string(kMostGatedGemmRows) +
                    " rows of A by weights stored [n, k] (transpose_b, k a multiple of 8), "
                    "an activation, and no bias or residual");
  if (g.aScale.present()) {
    check.require(g.weightFormat == format::WeightFormat::Fp8E4M3 &&
                      g.dtype == format::DType::BF16 && g.batch == 1 && !g.transposeA &&
                      g.transposeB && !g.gate.present() && !g.wideC &&
                      !g.aSquares.present() && g.k % 16 == 0 && g.m > kMostGatedGemmRows,
                  "a_scale (A in e4m3 with a scale a row) takes fp8 weights stored [n, k] "
                  "under bf16 a and c, batch 1, no gate, f32 c or folded norm, k a multiple "
                  "of 16 and more than " + std::to_string(kMostGatedGemmRows) + " rows");
    check.holds(g.aScale, "a_scale", {g.m, 4});
  }
  check.holds(g.a, "a", {lastEnd(g.strideA, g.m, g.k, "a"), g.aScale.present() ? 1 : e});
  check.require(g.sparse24() || (!g.bMeta.present() && !g.gateMeta.present()),
                "only 2:4 weights take b_meta and gate_meta");
  if (g.sparse24()) {
    checkSparse24(check, g, e);
  } else if (g.quantized()) {
    checkQuantized(check, g);
  } else {
    check.require(!g.bScale.present() && !g.bZero.present() && !g.gateScale.present() &&
                      !g.gateZero.present() && g.group == 0,
                  "float weights take no scales, zeros or group");
    check.holds(g.b, "b", {lastEnd(g.strideB, g.k, g.n, "b"), e});
  }
  check.holds(g.c, "c", {lastEnd(g.strideC, g.m, g.n, "c"), ce});
  // Outputs that overlap would let a small buffer hold any batch (stride 0),
  // and a run as long as the batch is large.
  const int64_t outputSize = check.product({g.m, g.n}, "c");
  check.require(g.batch == 1 || outputSize < 0 || g.strideC >= outputSize,
                "stride_c (" + std::to_string(g.strideC) + ") must be at least m x n (" +
                    std::to_string(outputSize) +
                    ") when batch > 1: the batch's outputs may not overlap");
  if (g.residual.present())
    check.holds(g.residual, "residual", {lastEnd(g.strideC, g.m, g.n, "residual"), ce});
  if (g.bias.present())
    check.holds(g.bias, "bias", {g.n, e});
  if (g.gate.present() && !g.quantized())
    check.holds(g.gate, "gate", {g.n, g.k, e});
  return g;
}

/// An attention command's strides: `tensors` triples (batch, head, row),
/// or none when the vector is absent (packed). False with an error when
/// there are not 3 · tensors of them.
bool decodeStrides(Checker &check, const flatbuffers::Vector<int64_t> *strides,
                   std::initializer_list<cmd::RowStrides *> tensors) {
  if (!strides)
    return false;
  if (strides->size() != 3 * tensors.size()) {
    check.require(false, "strides has " + std::to_string(strides->size()) +
                             " values, not three for each of its " +
                             std::to_string(tensors.size()) + " tensors");
    return false;
  }
  size_t i = 0;
  for (cmd::RowStrides *s : tensors) {
    *s = {strides->Get(static_cast<flatbuffers::uoffset_t>(i)),
          strides->Get(static_cast<flatbuffers::uoffset_t>(i + 1)),
          strides->Get(static_cast<flatbuffers::uoffset_t>(i + 2))};
    i += 3;
  }
  return true;
}

cmd::Attention decodeAttention(Checker &check, const format::Attention &t) {
  cmd::Attention a;
  a.q = check.buffer(t.q(), "q");
  a.k = check.buffer(t.k(), "k");
  a.v = check.buffer(t.v(), "v");
  a.out = check.buffer(t.out(), "out");
  a.queryStart = check.buffer(t.query_start(), "query_start", true);
  a.kNew = check.buffer(t.k_new(), "k_new", true);
  a.vNew = check.buffer(t.v_new(), "v_new", true);
  a.ropePositions = check.buffer(t.rope_positions(), "rope_positions", true);
  a.lse = check.buffer(t.lse(), "lse", true);
  a.batch = t.batch();
  a.heads = t.heads();
  a.kvHeads = t.kv_heads();
  a.queries = t.queries();
  a.keys = t.keys();
  a.headDim = t.head_dim();
  a.valueDim = t.value_dim();
  a.window = t.window();
  a.scale = t.scale();
  a.softcap = t.softcap();
  a.causal = t.causal();
  a.dtype = t.dtype();
  a.rope = t.rope();
  a.ropeTheta = t.rope_theta();
  a.cacheReady = t.cache_ready();
  check.known(a.rope, format::RopeStyle::MAX, "rope");
  int64_t e = check.floatBytes(a.dtype);
  for (auto [v, name] : {std::pair{a.batch, "batch"}, {a.heads, "heads"},
                         {a.kvHeads, "kv_heads"}, {a.queries, "queries"}, {a.keys, "keys"},
                         {a.headDim, "head_dim"}, {a.valueDim, "value_dim"}})
    check.positive(v, name);
  check.nonNegative(a.window, "window");
  check.require(a.kvHeads <= 0 || a.heads % a.kvHeads == 0, "kv_heads must divide heads");
  const bool folded = a.kNew.present();
  check.require(folded == a.vNew.present() &&
                    (!folded || (a.queryStart.present() && a.causal)),
                "new rows need both k_new and v_new, query_start and causal");
  if (folded) {
    check.require(a.queries <= kMostFoldedQueries,
                  "folded cache writes take at most " + std::to_string(kMostFoldedQueries) +
                      " new rows, not " + std::to_string(a.queries));
    check.holds(a.kNew, "k_new", {a.batch, a.kvHeads, a.queries, a.headDim, e});
    check.holds(a.vNew, "v_new", {a.batch, a.kvHeads, a.queries, a.valueDim, e});
  }
  if (a.rope != format::RopeStyle::None) {
    const int64_t rowBytes = 4 * a.queries;
    a.ropeRows = rowBytes > 0 && a.ropePositions.present() &&
                         a.ropePositions.size % rowBytes == 0
                     ? a.ropePositions.size / rowBytes
                     : 0;
    check.require(folded && (a.ropeRows == 1 || a.ropeRows == a.batch) &&
                      a.headDim % 2 == 0 && a.ropeTheta > 0.0f,
                  "rope needs new rows, positions of [batch or 1, queries] int32, an even "
                  "head_dim and theta > 0");
  }
  a.qStrides = cmd::packedStrides(a.heads, a.queries, a.headDim);
  a.kStrides = cmd::packedStrides(a.kvHeads, a.keys, a.headDim);
  a.vStrides = cmd::packedStrides(a.kvHeads, a.keys, a.valueDim);
  a.outStrides = cmd::packedStrides(a.heads, a.queries, a.valueDim);
  const bool strided = decodeStrides(check, t.strides(),
                                     {&a.qStrides, &a.kStrides, &a.vStrides, &a.outStrides});
  check.require(!strided || !folded, "strides are not for folded cache writes (k_new)");
  if (strided) {
    check.holdsStrided(a.q, "q", a.batch, a.heads, a.queries, a.headDim, a.qStrides, e);
    check.holdsStrided(a.k, "k", a.batch, a.kvHeads, a.keys, a.headDim, a.kStrides, e);
    check.holdsStrided(a.v, "v", a.batch, a.kvHeads, a.keys, a.valueDim, a.vStrides, e);
    check.holdsStrided(a.out, "out", a.batch, a.heads, a.queries, a.valueDim, a.outStrides, e,
                       /*output=*/true);
  } else {
    check.holds(a.q, "q", {a.batch, a.heads, a.queries, a.headDim, e});
    check.holds(a.k, "k", {a.batch, a.kvHeads, a.keys, a.headDim, e});
    check.holds(a.v, "v", {a.batch, a.kvHeads, a.keys, a.valueDim, e});
    check.holds(a.out, "out", {a.batch, a.heads, a.queries, a.valueDim, e});
  }
  if (a.lse.present()) {
    check.require(!folded && !a.queryStart.present(), "lse is for training attention: no "
                                                      "query_start or new rows");
    check.holds(a.lse, "lse", {a.batch, a.heads, a.queries, 4});
  }
  if (a.queryStart.present())
    check.holds(a.queryStart, "query_start", {a.batch, 4});
  else
    check.require(a.queries <= a.keys, "without query_start, queries (" +
                                           std::to_string(a.queries) +
                                           ") must not outnumber keys (" +
                                           std::to_string(a.keys) + ")");
  return a;
}

cmd::Launch decodeLaunch(Checker &check, const format::Launch &t,
                         const KernelSignatures &kernels) {
  cmd::Launch l;
  l.kernel = t.kernel();
  check.require(l.kernel < kernels.size(), "launches kernel " + std::to_string(l.kernel) +
                                               " of " + std::to_string(kernels.size()));
  if (t.args())
    for (const format::BufferRef *ref : *t.args())
      l.args.push_back(check.buffer(ref, "argument"));
  if (l.kernel < kernels.size()) {
    const std::vector<int64_t> &wants = kernels[l.kernel];
    check.require(l.args.size() == wants.size(),
                  "passes " + std::to_string(l.args.size()) + " buffers to kernel " +
                      std::to_string(l.kernel) + ", which takes " +
                      std::to_string(wants.size()));
    for (size_t i = 0; i < l.args.size() && i < wants.size(); ++i)
      check.require(l.args[i].size >= wants[i],
                    "argument " + std::to_string(i) + " has " +
                        std::to_string(l.args[i].size) + " bytes, kernel " +
                        std::to_string(l.kernel) + " reads " + std::to_string(wants[i]));
  }
  l.grid = longs(t.grid());
  check.require(l.grid.empty() ||
                    (l.grid.size() == 2 && l.grid[0] > 0 && l.grid[0] <= INT32_MAX &&
                     l.grid[1] > 0 && l.grid[1] <= 1024),
                "a grid is two positive numbers (blocks, at most 2^31 - 1, and threads, "
                "at most 1024)");
  return l;
}

/// Sharded rows: `shards` must be the size of the group along `axes`.
cmd::RowShards decodeRowShards(Checker &check, int64_t shards, uint32_t axes,
                               const std::vector<int64_t> &mesh) {
  cmd::RowShards r{shards, axes};
  if (shards == 1 && axes == 0)
    return r;
  int64_t group = 1;
  for (size_t axis = 0; axis < 32; ++axis)
    if (axes >> axis & 1u) {
      if (axis >= mesh.size()) {
        check.require(false, "row_shard_axes names axis " + std::to_string(axis) +
                                 ", not an axis of the artifact's mesh of " +
                                 std::to_string(mesh.size()) + " axes");
        return r;
      }
      group *= mesh[axis];
    }
  check.require(shards == group, "row_shards " + std::to_string(shards) +
                                     " is not the size of its group along row_shard_axes (" +
                                     std::to_string(group) + ")");
  return r;
}

cmd::Embedding decodeEmbedding(Checker &check, const format::Embedding &t,
                               const std::vector<int64_t> &mesh) {
  cmd::Embedding c{check.buffer(t.table(), "table"), check.buffer(t.indices(), "indices"),
                   check.buffer(t.out(), "out"), t.vocab(), t.dim(), t.count(), t.dtype(),
                   decodeRowShards(check, t.row_shards(), t.row_shard_axes(), mesh)};
  int64_t e = check.floatBytes(c.dtype);
  check.positive(c.vocab, "vocab");
  check.positive(c.dim, "dim");
  check.nonNegative(c.count, "count");
  check.holds(c.table, "table", {c.vocab, c.dim, e});
  check.holds(c.indices, "indices", {c.count, 4});
  check.holds(c.out, "out", {c.count, c.dim, e});
  return c;
}

cmd::EmbeddingGrad decodeEmbeddingGrad(Checker &check, const format::EmbeddingGrad &t,
                                       const std::vector<int64_t> &mesh) {
  cmd::EmbeddingGrad c{check.buffer(t.grad(), "grad"), check.buffer(t.indices(), "indices"),
                       check.buffer(t.out(), "out"), t.vocab(), t.dim(), t.count(), t.dtype(),
                       decodeRowShards(check, t.row_shards(), t.row_shard_axes(), mesh)};
  int64_t e = check.floatBytes(c.dtype);
  check.positive(c.vocab, "vocab");
  check.positive(c.dim, "dim");
  check.nonNegative(c.count, "count");
  check.holds(c.grad, "grad", {c.count, c.dim, e});
  check.holds(c.indices, "indices", {c.count, 4});
  check.holds(c.out, "out", {c.vocab, c.dim, e});
  check.require(!c.out.overlaps(c.grad) && !c.out.overlaps(c.indices),
                "out overlaps grad or indices");
  return c;
}

cmd::CacheWrite decodeCacheWrite(Checker &check, const format::CacheWrite &t) {
  cmd::CacheWrite c{check.buffer(t.cache(), "cache"), check.buffer(t.update(), "update"),
                    check.buffer(t.positions(), "positions"), t.batch(), t.heads(), t.slots(),
                    t.rows(), t.dim(), t.dtype()};
  int64_t e = check.floatBytes(c.dtype);
  for (auto [v, name] : {std::pair{c.batch, "batch"}, {c.heads, "heads"}, {c.slots, "slots"},
                         {c.rows, "rows"}, {c.dim, "dim"}})
    check.positive(v, name);
  check.require(c.rows <= c.slots, "rows (" + std::to_string(c.rows) +
                                       ") must not outnumber slots (" +
                                       std::to_string(c.slots) + ")");
  check.holds(c.cache, "cache", {c.batch, c.heads, c.slots, c.dim, e});
  check.holds(c.update, "update", {c.batch, c.heads, c.rows, c.dim, e});
  check.holds(c.positions, "positions", {c.batch, 4});
  check.require(!c.cache.overlaps(c.update), "update overlaps the cache");
  return c;
}

cmd::Take decodeTake(Checker &check, const format::Take &t) {
  cmd::Take c{check.buffer(t.input(), "input"), check.buffer(t.indices(), "indices"),
              check.buffer(t.out(), "out"), t.batch(), t.length(), t.row_bytes()};
  check.positive(c.batch, "batch");
  check.positive(c.length, "length");
  check.positive(c.rowBytes, "row_bytes");
  check.require(c.rowBytes % 4 == 0, "row_bytes must be a multiple of 4");
  check.holds(c.input, "input", {c.batch, c.length, c.rowBytes});
  check.holds(c.indices, "indices", {c.batch, 4});
  check.holds(c.out, "out", {c.batch, c.rowBytes});
  return c;
}

/// A transpose's or slice's element width and rank.
void checkLayout(Checker &check, int64_t elementBytes, const std::vector<int64_t> &shape) {
  check.require(elementBytes == 1 || elementBytes == 2 || elementBytes == 4 ||
                    elementBytes == 8,
                "element_bytes must be 1, 2, 4 or 8, not " + std::to_string(elementBytes));
  check.require(!shape.empty() && static_cast<int64_t>(shape.size()) <= cmd::kMostDims,
                "a shape of 1 to " + std::to_string(cmd::kMostDims) + " dimensions, not " +
                    std::to_string(shape.size()));
  for (int64_t d : shape)
    check.nonNegative(d, "a dimension");
}

/// Elements of `shape`, -1 on overflow.
int64_t elements(Checker &check, const std::vector<int64_t> &shape, const char *what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    n = check.product({n, d}, what);
    if (n < 0)
      return -1;
  }
  return n;
}

cmd::Transpose decodeTranspose(Checker &check, const format::Transpose &t) {
  cmd::Transpose c{check.buffer(t.input(), "input"), check.buffer(t.out(), "out"),
                   t.element_bytes(), longs(t.shape()), longs(t.permutation())};
  checkLayout(check, c.elementBytes, c.shape);
  std::vector<bool> seen(c.shape.size(), false);
  bool permutes = c.permutation.size() == c.shape.size();
  for (int64_t p : c.permutation) {
    permutes = permutes && p >= 0 && p < static_cast<int64_t>(seen.size()) && !seen[p];
    if (permutes)
      seen[p] = true;
  }
  check.require(permutes, "permutation must order the shape's dimensions, each once");
  int64_t n = elements(check, c.shape, "shape");
  check.holds(c.input, "input", {n, c.elementBytes});
  check.holds(c.out, "out", {n, c.elementBytes});
  return c;
}

cmd::Slice decodeSlice(Checker &check, const format::Slice &t) {
  cmd::Slice c{check.buffer(t.input(), "input"), check.buffer(t.out(), "out"), t.element_bytes(),
               longs(t.shape()), longs(t.offsets()), longs(t.sizes())};
  checkLayout(check, c.elementBytes, c.shape);
  bool inside = c.offsets.size() == c.shape.size() && c.sizes.size() == c.shape.size();
  for (size_t d = 0; inside && d < c.shape.size(); ++d)
    inside = c.offsets[d] >= 0 && c.sizes[d] >= 0 && c.offsets[d] <= c.shape[d] &&
             c.sizes[d] <= c.shape[d] - c.offsets[d];
  check.require(inside, "offsets and sizes must lie inside the shape, one per dimension");
  check.holds(c.input, "input", {elements(check, c.shape, "shape"), c.elementBytes});
  if (inside)
    check.holds(c.out, "out", {elements(check, c.sizes, "sizes"), c.elementBytes});
  return c;
}

cmd::TopK decodeTopK(Checker &check, const format::TopK &t) {
  cmd::TopK c{check.buffer(t.input(), "input"), check.buffer(t.values(), "values"),
              check.buffer(t.indices(), "indices"), t.rows(), t.n(), t.k(), t.dtype()};
  int64_t e = check.floatBytes(c.dtype);
  check.nonNegative(c.rows, "rows");
  check.positive(c.k, "k");
  check.require(c.k <= c.n, "k (" + std::to_string(c.k) + ") must not exceed n (" +
                                std::to_string(c.n) + ")");
  check.holds(c.input, "input", {c.rows, c.n, e});
  check.holds(c.values, "values", {c.rows, c.k, e});
  check.holds(c.indices, "indices", {c.rows, c.k, 4});
  return c;
}

/// What a loss's rows and reduction need of its buffers.
template <typename Loss> void checkLoss(Checker &check, const Loss &c, const Buffer &loss,
                                        const char *lossField) {
  int64_t e = check.floatBytes(c.dtype);
  check.known(c.reduction, format::LossReduction::MAX, "reduction");
  check.nonNegative(c.rows, "rows");
  check.positive(c.vocab, "vocab");
  check.holds(c.logits, "logits", {c.rows, c.vocab, e});
  check.holds(c.labels, "labels", {c.rows, 4});
  check.holds(loss, lossField, {c.reduction == format::LossReduction::None ? c.rows : 1, 4});
}

cmd::AttentionGrad decodeAttentionGrad(Checker &check, const format::AttentionGrad &t) {
  cmd::AttentionGrad a;
  a.q = check.buffer(t.q(), "q");
  a.k = check.buffer(t.k(), "k");
  a.v = check.buffer(t.v(), "v");
  a.out = check.buffer(t.out(), "out");
  a.lse = check.buffer(t.lse(), "lse");
  a.outGrad = check.buffer(t.out_grad(), "out_grad");
  a.qGrad = check.buffer(t.q_grad(), "q_grad");
  a.kGrad = check.buffer(t.k_grad(), "k_grad");
  a.vGrad = check.buffer(t.v_grad(), "v_grad");
  a.batch = t.batch();
  a.heads = t.heads();
  a.kvHeads = t.kv_heads();
  a.queries = t.queries();
  a.keys = t.keys();
  a.headDim = t.head_dim();
  a.valueDim = t.value_dim();
  a.window = t.window();
  a.scale = t.scale();
  a.softcap = t.softcap();
  a.causal = t.causal();
  a.dtype = t.dtype();
  int64_t e = check.floatBytes(a.dtype);
  for (auto [v, name] : {std::pair{a.batch, "batch"}, {a.heads, "heads"},
                         {a.kvHeads, "kv_heads"}, {a.queries, "queries"}, {a.keys, "keys"},
                         {a.headDim, "head_dim"}, {a.valueDim, "value_dim"}})
    check.positive(v, name);
  check.nonNegative(a.window, "window");
  check.require(a.softcap >= 0.0f, "softcap must be >= 0");
  check.require(a.kvHeads <= 0 || a.heads % a.kvHeads == 0, "kv_heads must divide heads");
  check.require(a.window == 0 || a.causal, "window needs causal");
  check.require(!a.causal || a.queries <= a.keys,
                "causal attention needs queries <= keys");
  a.qStrides = a.qGradStrides = cmd::packedStrides(a.heads, a.queries, a.headDim);
  a.outStrides = a.outGradStrides = cmd::packedStrides(a.heads, a.queries, a.valueDim);
  a.kStrides = a.kGradStrides = cmd::packedStrides(a.kvHeads, a.keys, a.headDim);
  a.vStrides = a.vGradStrides = cmd::packedStrides(a.kvHeads, a.keys, a.valueDim);
  decodeStrides(check, t.strides(),
                {&a.qStrides, &a.kStrides, &a.vStrides, &a.outStrides, &a.outGradStrides,
                 &a.qGradStrides, &a.kGradStrides, &a.vGradStrides});
  // Query-side tensors have heads × queries rows, key-side kv_heads × keys;
  // the gradients are the outputs.
  const int64_t qh = a.heads, qt = a.queries, kh = a.kvHeads, kt = a.keys;
  for (auto [buffer, name, heads, rows, dim, strides, output] :
       {std::tuple{a.q, "q", qh, qt, a.headDim, a.qStrides, false},
        {a.qGrad, "q_grad", qh, qt, a.headDim, a.qGradStrides, true},
        {a.out, "out", qh, qt, a.valueDim, a.outStrides, false},
        {a.outGrad, "out_grad", qh, qt, a.valueDim, a.outGradStrides, false},
        {a.k, "k", kh, kt, a.headDim, a.kStrides, false},
        {a.kGrad, "k_grad", kh, kt, a.headDim, a.kGradStrides, true},
        {a.v, "v", kh, kt, a.valueDim, a.vStrides, false},
        {a.vGrad, "v_grad", kh, kt, a.valueDim, a.vGradStrides, true}})
    check.holdsStrided(buffer, name, a.batch, heads, rows, dim, strides, e, output);
  check.holds(a.lse, "lse", {a.batch, a.heads, a.queries, 4});
  return a;
}

cmd::CrossEntropy decodeCrossEntropy(Checker &check, const format::CrossEntropy &t) {
  cmd::CrossEntropy c{check.buffer(t.logits(), "logits"), check.buffer(t.labels(), "labels"),
                      check.buffer(t.loss(), "loss"), t.rows(), t.vocab(), t.ignore_index(),
                      t.reduction(), t.dtype()};
  checkLoss(check, c, c.loss, "loss");
  return c;
}

cmd::CrossEntropyGrad decodeCrossEntropyGrad(Checker &check,
                                             const format::CrossEntropyGrad &t) {
  cmd::CrossEntropyGrad c{check.buffer(t.logits(), "logits"),
                          check.buffer(t.labels(), "labels"),
                          check.buffer(t.loss_grad(), "loss_grad"),
                          check.buffer(t.out(), "out"),
                          t.rows(),
                          t.vocab(),
                          t.ignore_index(),
                          t.reduction(),
                          t.dtype()};
  checkLoss(check, c, c.lossGrad, "loss_grad");
  check.holds(c.out, "out", {c.rows, c.vocab, check.floatBytes(c.dtype)});
  return c;
}

cmd::Place decodePlace(Checker &check, const format::Place &t) {
  cmd::Place c{check.buffer(t.input(), "input"), check.buffer(t.out(), "out"), t.outer(),
               t.chunk_bytes(), t.stride_bytes(), t.offset_bytes()};
  check.nonNegative(c.outer, "outer");
  check.nonNegative(c.chunkBytes, "chunk_bytes");
  check.nonNegative(c.strideBytes, "stride_bytes");
  check.nonNegative(c.offsetBytes, "offset_bytes");
  // Empty chunks would let any outer fit the buffers, and a run loop that long.
  check.require(c.outer == 0 || c.chunkBytes > 0, "chunk_bytes must be positive when outer > 0");
  check.holds(c.input, "input", {c.outer, c.chunkBytes});
  if (c.outer > 0) {
    // The last block ends at (outer - 1) * stride + offset + chunk.
    int64_t last = check.product({c.outer - 1, c.strideBytes}, "out");
    int64_t end = 0;
    bool fits = last >= 0 && !__builtin_add_overflow(last, c.offsetBytes, &end) &&
                !__builtin_add_overflow(end, c.chunkBytes, &end);
    check.require(fits && end <= c.out.size, "the blocks fall outside out");
  }
  return c;
}

cmd::OneHot decodeOneHot(Checker &check, const format::OneHot &t,
                         const std::vector<int64_t> &mesh) {
  cmd::OneHot c{check.buffer(t.indices(), "indices"), check.buffer(t.out(), "out"), t.count(),
                t.depth(), t.dtype(),
                decodeRowShards(check, t.row_shards(), t.row_shard_axes(), mesh)};
  int64_t e = check.floatBytes(c.dtype);
  check.nonNegative(c.count, "count");
  check.positive(c.depth, "depth");
  check.holds(c.indices, "indices", {c.count, 4});
  check.holds(c.out, "out", {c.count, c.depth, e});
  return c;
}

cmd::Reduce decodeReduce(Checker &check, const format::Reduce &t) {
  cmd::Reduce c{check.buffer(t.input(), "input"), check.buffer(t.out(), "out"), t.kind(),
                t.outer(), t.n(), t.inner(), t.dtype()};
  int64_t e = check.floatBytes(c.dtype);
  check.known(c.kind, format::ReduceKind::MAX, "kind");
  check.nonNegative(c.outer, "outer");
  check.positive(c.n, "n");
  check.nonNegative(c.inner, "inner");
  // As Place's chunks: an empty inner would let any outer and n fit.
  check.require(c.outer == 0 || c.inner > 0, "inner must be positive when outer > 0");
  check.holds(c.input, "input", {c.outer, c.n, c.inner, e});
  check.holds(c.out, "out", {c.outer, c.inner, e});
  return c;
}

cmd::Copy decodeCopy(Checker &check, const format::Copy &t) {
  cmd::Copy c{check.buffer(t.input(), "input"), check.buffer(t.out(), "out")};
  check.require(c.input.size == c.out.size, "input and out must have the same size");
  return c;
}

cmd::Fill decodeFill(Checker &check, const format::Fill &t) {
  cmd::Fill c{check.buffer(t.out(), "out"), t.bits(), t.dtype()};
  int64_t e = check.floatBytes(c.dtype);
  check.require(e == 0 || c.out.size % e == 0, "out must hold whole elements");
  check.require(e == 0 || e == 8 || c.bits >> (8 * e) == 0,
                "bits has more bits than one element");
  return c;
}

/// The fields every collective shares: its group on `mesh` and its
/// buffers, `inRanks` and `outRanks` the group sizes input and out span.
template <typename Table, typename C>
void decodeCollective(Checker &check, const Table &t, const std::vector<int64_t> &mesh,
                      C &c, bool inWhole, bool outWhole) {
  c.input = check.buffer(t.input(), "input");
  c.out = check.buffer(t.out(), "out");
  c.count = t.count();
  c.dtype = t.dtype();
  int64_t e = check.floatBytes(c.dtype);
  check.nonNegative(c.count, "count");
  c.groupSize = 1;
  if (!t.grid_axes() || t.grid_axes()->size() == 0)
    check.require(false, "grid_axes is empty");
  else
    for (int16_t axis : *t.grid_axes()) {
      if (axis < 0 || static_cast<size_t>(axis) >= mesh.size() || (c.axes >> axis & 1u)) {
        check.require(false, "grid axis " + std::to_string(axis) +
                                 " is repeated or not an axis of the artifact's mesh of " +
                                 std::to_string(mesh.size()) + " axes");
        return;
      }
      c.axes |= 1u << axis;
      c.groupSize = check.product({c.groupSize, mesh[static_cast<size_t>(axis)]}, "group");
    }
  check.holds(c.input, "input", {c.count, inWhole ? c.groupSize : 1, e});
  check.holds(c.out, "out", {c.count, outWhole ? c.groupSize : 1, e});
  check.require(!c.input.overlaps(c.out) || c.input == c.out,
                "input and out overlap without being the same buffer");
}

cmd::AllReduce decodeAllReduce(Checker &check, const format::AllReduce &t,
                               const std::vector<int64_t> &mesh) {
  cmd::AllReduce c;
  decodeCollective(check, t, mesh, c, false, false);
  c.reduction = t.reduction();
  check.known(c.reduction, format::CollectiveReduce::MAX, "reduction");
  return c;
}

cmd::AllGather decodeAllGather(Checker &check, const format::AllGather &t,
                               const std::vector<int64_t> &mesh) {
  cmd::AllGather c;
  decodeCollective(check, t, mesh, c, false, true);
  return c;
}

cmd::ReduceScatter decodeReduceScatter(Checker &check, const format::ReduceScatter &t,
                                       const std::vector<int64_t> &mesh) {
  cmd::ReduceScatter c;
  decodeCollective(check, t, mesh, c, true, false);
  c.reduction = t.reduction();
  check.known(c.reduction, format::CollectiveReduce::MAX, "reduction");
  return c;
}

cmd::AllSlice decodeAllSlice(Checker &check, const format::AllSlice &t,
                             const std::vector<int64_t> &mesh) {
  cmd::AllSlice c;
  decodeCollective(check, t, mesh, c, true, false);
  return c;
}

} // namespace

const char *commandName(const Command &command) { return kCommandNames[command.index()]; }

std::vector<std::string> commandNames() {
  return std::vector<std::string>(std::begin(kCommandNames), std::end(kCommandNames));
}

StatusOr<DecodedEntry> decodeEntry(const format::EntryPoint &entry, const SpaceSizes &sizes,
                                   const KernelSignatures &kernels,
                                   const std::vector<int64_t> &mesh) {
  DecodedEntry decoded;
  decoded.name = entry.name() ? entry.name()->str() : "?";
  const bool hasOutputs = entry.outputs() && entry.outputs()->size() > 0;
  if (!entry.steps() || entry.steps()->size() == 0) {
    if (hasOutputs)
      return Status::error("entry '" + decoded.name +
                           "': it has outputs but no steps to compute them");
    return decoded;
  }
  if (entry.steps()->size() > kMostSteps)
    return Status::error("entry '" + decoded.name + "': " +
                         std::to_string(entry.steps()->size()) + " steps, more than the " +
                         std::to_string(kMostSteps) + " an entry may have");
  decoded.steps.reserve(entry.steps()->size());
  for (size_t i = 0; i < entry.steps()->size(); ++i) {
    const format::Step *step = entry.steps()->Get(i);
    std::string at = "entry '" + decoded.name + "': step " + std::to_string(i);
    format::Command kind = step->command_type();
    if (kind == format::Command::NONE || kind > format::Command::MAX)
      return Status::error(at + ": no command this runtime knows");
    if (!step->command())
      return Status::error(at + ": the command's table is missing");
    Checker check(at + " (" + kCommandNames[static_cast<size_t>(kind) - 1] + ")", sizes);
    Command command;
    switch (kind) {
    case format::Command::Gemm: command = decodeGemm(check, *step->command_as_Gemm()); break;
    case format::Command::Attention:
      command = decodeAttention(check, *step->command_as_Attention());
      break;
    case format::Command::Launch:
      command = decodeLaunch(check, *step->command_as_Launch(), kernels);
      break;
    case format::Command::Embedding:
      command = decodeEmbedding(check, *step->command_as_Embedding(), mesh);
      break;
    case format::Command::CacheWrite:
      command = decodeCacheWrite(check, *step->command_as_CacheWrite());
      break;
    case format::Command::Take: command = decodeTake(check, *step->command_as_Take()); break;
    case format::Command::Transpose:
      command = decodeTranspose(check, *step->command_as_Transpose());
      break;
    case format::Command::Slice: command = decodeSlice(check, *step->command_as_Slice()); break;
    case format::Command::TopK: command = decodeTopK(check, *step->command_as_TopK()); break;
    case format::Command::CrossEntropy:
      command = decodeCrossEntropy(check, *step->command_as_CrossEntropy());
      break;
    case format::Command::CrossEntropyGrad:
      command = decodeCrossEntropyGrad(check, *step->command_as_CrossEntropyGrad());
      break;
    case format::Command::Place: command = decodePlace(check, *step->command_as_Place()); break;
    case format::Command::OneHot:
      command = decodeOneHot(check, *step->command_as_OneHot(), mesh);
      break;
    case format::Command::Reduce:
      command = decodeReduce(check, *step->command_as_Reduce());
      break;
    case format::Command::Copy: command = decodeCopy(check, *step->command_as_Copy()); break;
    case format::Command::Fill: command = decodeFill(check, *step->command_as_Fill()); break;
    case format::Command::AllReduce:
      command = decodeAllReduce(check, *step->command_as_AllReduce(), mesh);
      break;
    case format::Command::AllGather:
      command = decodeAllGather(check, *step->command_as_AllGather(), mesh);
      break;
    case format::Command::ReduceScatter:
      command = decodeReduceScatter(check, *step->command_as_ReduceScatter(), mesh);
      break;
    case format::Command::AllSlice:
      command = decodeAllSlice(check, *step->command_as_AllSlice(), mesh);
      break;
    case format::Command::EmbeddingGrad:
      command = decodeEmbeddingGrad(check, *step->command_as_EmbeddingGrad(), mesh);
      break;
    case format::Command::AttentionGrad:
      command = decodeAttentionGrad(check, *step->command_as_AttentionGrad());
      break;
    case format::Command::NONE: break;
    }
    if (Status s = check.status(); !s)
      return s;
    decoded.steps.push_back(std::move(command));
  }
  return decoded;
}

namespace {

/// Appends the present ones of `buffers` to `to`.
void addPresent(std::vector<Buffer> &to, std::initializer_list<Buffer> buffers) {
  for (const Buffer &b : buffers)
    if (b.present())
      to.push_back(b);
}

} // namespace

std::vector<Buffer> buffersOf(const Command &command) {
  std::vector<Buffer> all;
  auto add = [&](std::initializer_list<Buffer> buffers) { addPresent(all, buffers); };
  std::visit(
      [&](const auto &c) {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, cmd::Gemm>)
          add({c.a, c.b, c.c, c.bias, c.residual, c.gate, c.normWeight, c.normOut,
               c.normSquares, c.aSquares, c.bScale, c.bZero, c.gateScale, c.gateZero, c.bMeta,
               c.gateMeta, c.aScale});
        else if constexpr (std::is_same_v<C, cmd::Attention>)
          add({c.q, c.k, c.v, c.out, c.queryStart, c.kNew, c.vNew, c.ropePositions, c.lse});
        else if constexpr (std::is_same_v<C, cmd::AttentionGrad>)
          add({c.q, c.k, c.v, c.out, c.lse, c.outGrad, c.qGrad, c.kGrad, c.vGrad});
        else if constexpr (std::is_same_v<C, cmd::Launch>)
          for (const Buffer &b : c.args)
            add({b});
        else if constexpr (std::is_same_v<C, cmd::Embedding>)
          add({c.table, c.indices, c.out});
        else if constexpr (std::is_same_v<C, cmd::EmbeddingGrad>)
          add({c.grad, c.indices, c.out});
        else if constexpr (std::is_same_v<C, cmd::CacheWrite>)
          add({c.cache, c.update, c.positions});
        else if constexpr (std::is_same_v<C, cmd::Take>)
          add({c.input, c.indices, c.out});
        else if constexpr (std::is_same_v<C, cmd::TopK>)
          add({c.input, c.values, c.indices});
        else if constexpr (std::is_same_v<C, cmd::CrossEntropy>)
          add({c.logits, c.labels, c.loss});
        else if constexpr (std::is_same_v<C, cmd::CrossEntropyGrad>)
          add({c.logits, c.labels, c.lossGrad, c.out});
        else if constexpr (std::is_same_v<C, cmd::OneHot>)
          add({c.indices, c.out});
        else if constexpr (std::is_same_v<C, cmd::Fill>)
          add({c.out});
        else // input and out: transpose, slice, place, reduce, copy, collectives
          add({c.input, c.out});
      },
      command);
  return all;
}

std::vector<Buffer> writesOf(const Command &command) {
  std::vector<Buffer> written;
  auto add = [&](std::initializer_list<Buffer> buffers) { addPresent(written, buffers); };
  std::visit(
      [&](const auto &c) {
        using C = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<C, cmd::Gemm>)
          add({c.c, c.normOut, c.normSquares});
        else if constexpr (std::is_same_v<C, cmd::AttentionGrad>)
          add({c.qGrad, c.kGrad, c.vGrad});
        else if constexpr (std::is_same_v<C, cmd::Embedding> || std::is_same_v<C, cmd::Take> ||
                           std::is_same_v<C, cmd::EmbeddingGrad> ||
                           std::is_same_v<C, cmd::OneHot> || std::is_same_v<C, cmd::Fill> ||
                           std::is_same_v<C, cmd::Transpose> || std::is_same_v<C, cmd::Slice> ||
                           std::is_same_v<C, cmd::Place> || std::is_same_v<C, cmd::Reduce> ||
                           std::is_same_v<C, cmd::Copy>)
          add({c.out});
        else if constexpr (std::is_same_v<C, cmd::TopK>)
          add({c.values, c.indices});
        else // launches, attention (its caches), losses, collectives: all of them
          written = buffersOf(command);
      },
      command);
  return written;
}

} // namespace gai
