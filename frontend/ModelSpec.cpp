// Parses and validates our JSON model spec (docs/spec.md).
#include "frontend/ModelSpec.h"

#include "frontend/HFConfig.h"
#include "frontend/JsonFields.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <optional>

using namespace llvm;

namespace gai {

/// The offset of the first bracket nested deeper than kMaxJsonDepth, if any.
/// Brackets inside strings do not count; unbalanced ones are the parser's to
/// report.
static std::optional<size_t> tooDeep(StringRef text) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

Expected<json::Value> parseJsonText(StringRef text, StringRef fileName) {
  if (std::optional<size_t> offset = tooDeep(text)) {
    StringRef before = text.take_front(*offset);
    size_t line = before.count('\n') + 1;
    size_t lineStart = before.rfind('\n');
    size_t column = lineStart == StringRef::npos ? *offset + 1 : *offset - lineStart;
    return createStringError(inconvertibleErrorCode(),
                             "%s:%zu:%zu: invalid JSON: nested deeper than %d levels",
                             fileName.str().c_str(), line, column, kMaxJsonDepth);
  }
  Expected<json::Value> value = json::parse(text);
  if (value)
    return value;
  // json::ParseError logs as "[LINE:COL, byte=N]: MESSAGE"; re-shape it into
  // the FILE:LINE:COL: form editors jump to.
  std::string logged = toString(value.takeError());
  StringRef rest(logged);
  std::string where;
  if (rest.consume_front("[")) {
    auto [lineCol, tail] = rest.split(", byte=");
    auto [line, column] = lineCol.split(':');
    // An error before the first character reports column 0.
    where = ":" + line.str() + ":" + (column == "0" ? "1" : column.str());
    rest = tail.split("]: ").second;
  }
  return createStringError(inconvertibleErrorCode(),
                           "%s%s: invalid JSON: %s", fileName.str().c_str(),
                           where.c_str(), rest.str().c_str());
}

void readHeads(JsonFields &fields, const HeadKeys &keys, ModelSpec &spec) {
  fields.integer(keys.heads, spec.heads, 1, /*required=*/true);
  spec.kvHeads = spec.heads;
  if (!keys.kvHeads.empty())
    fields.integer(keys.kvHeads, spec.kvHeads, 1);
  if (spec.heads > 0 && spec.kvHeads > 0 && spec.heads % spec.kvHeads != 0)
    fields.report(keys.kvHeads, "must divide " + keys.heads + " (" +
                                    Twine(spec.heads) + "), got " +
                                    Twine(spec.kvHeads));
  if (!keys.headDim.empty() && fields.has(keys.headDim)) {
    fields.integer(keys.headDim, spec.headDim, 1);
    return;
  }
  if (spec.heads <= 0)
    return;
  if (spec.dModel % spec.heads != 0)
    fields.report(keys.heads, "must divide the hidden size " +
                                  Twine(spec.dModel) +
                                  " when head_dim is not given, got " +
                                  Twine(spec.heads));
  spec.headDim = spec.dModel / spec.heads;
}

static void readCompile(JsonFields &fields, CompileSection &out) {
  fields.string("target", out.target,
                {"cpu", "cuda", "cuda:sm_80", "cuda:sm_90"});
  fields.string("dtype", out.dtype, {"f32", "bf16", "f16"});
  fields.integer("max_batch", out.maxBatch, 1);
  fields.integer("max_seq_len", out.maxSeqLen, 1);
  fields.rejectUnknownKeys();
}

static void readTrain(JsonFields &fields, TrainSection &out) {
  fields.integer("steps", out.steps, 1);
  fields.integer("batch", out.batch, 1);
  fields.integer("seq_len", out.seqLen, 1);
  fields.integer("micro_batches", out.microBatches, 1);
  fields.number("lr", out.learningRate, 0.0);
  fields.number("min_lr", out.minLearningRate, 0.0);
  fields.integer("warmup_steps", out.warmupSteps, 0);
  fields.number("weight_decay", out.weightDecay, 0.0);
  fields.number("grad_clip", out.gradClip, 0.0);
  int64_t seed = static_cast<int64_t>(out.seed);
  fields.integer("seed", seed, 0, false, INT64_MAX);
  out.seed = static_cast<uint64_t>(seed);
  fields.integer("eval_every", out.evalEvery, 0);
  fields.integer("checkpoint_every", out.checkpointEvery, 0);
  fields.strings("data", out.data);
  fields.rejectUnknownKeys();
}

static Expected<ModelSpec> parseSpecObject(const json::Object &top,
                                           StringRef fileName) {
  JsonErrors errors(fileName);
  JsonFields root(top, "", errors);
  ModelSpec spec;
  spec.family = "gai";
  root.string("name", spec.name);
  root.integer("vocab", spec.vocab, 1, /*required=*/true);
  root.integer("d_model", spec.dModel, 1, true);
  root.integer("layers", spec.layers, 1, true);
  readHeads(root, {"heads", "kv_heads", "head_dim"}, spec);
  root.integer("max_seq_len", spec.maxSeqLen, 1, true);
  root.integer("sliding_window", spec.slidingWindow, 0);
  root.boolean("tied_embeddings", spec.tiedEmbeddings);
  root.boolean("scale_embeddings", spec.scaleEmbeddings);
  root.number("attn_softcap", spec.attnSoftcap, 0.0);
  root.number("final_softcap", spec.finalSoftcap, 0.0);

  if (const json::Object *ffn = root.nested("ffn")) {
    JsonFields f(*ffn, "ffn", errors);
    std::string kind = "gated", act = "silu";
    f.string("kind", kind, {"gated", "mlp"});
    f.string("activation", act, {"silu", "gelu", "gelu_tanh", "relu"});
    f.integer("size", spec.ffnDim, 1, true);
    f.rejectUnknownKeys();
    spec.ffn = kind == "mlp" ? FfnKind::Mlp : FfnKind::Gated;
    spec.activation = act == "gelu"        ? Activation::Gelu
                      : act == "gelu_tanh" ? Activation::GeluTanh
                      : act == "relu"      ? Activation::Relu
                                           : Activation::Silu;
  } else if (!errors.failed()) {
    root.report("ffn", "is required (an object with kind, size, activation)");
  }

  if (const json::Object *norm = root.nested("norm")) {
    JsonFields f(*norm, "norm", errors);
    std::string kind = "rms";
    f.string("kind", kind, {"rms", "layer"});
    f.number("eps", spec.normEps, 0.0);
    f.boolean("unit_offset", spec.normUnitOffset);
    f.rejectUnknownKeys();
    spec.norm = kind == "layer" ? NormKind::LayerNorm : NormKind::RmsNorm;
  }

  if (const json::Object *pos = root.nested("position")) {
    JsonFields f(*pos, "position", errors);
    std::string kind = "rope", style = "half";
    f.string("kind", kind, {"rope", "learned", "none"});
    f.number("theta", spec.ropeTheta, 1.0);
    f.string("style", style, {"half", "interleaved"});
    f.rejectUnknownKeys();
    spec.position = kind == "learned" ? PositionKind::Learned
                    : kind == "none"  ? PositionKind::None
                                      : PositionKind::Rope;
    spec.ropePairing =
        style == "interleaved" ? RopePairing::Interleaved : RopePairing::Half;
  }

  if (const json::Object *moe = root.nested("moe")) {
    JsonFields f(*moe, "moe", errors);
    f.integer("experts", spec.experts, 2, true);
    f.integer("top_k", spec.expertsPerToken, 1, true);
    f.boolean("normalize_top_k", spec.normalizeTopK);
    f.rejectUnknownKeys();
  }

  if (const json::Object *bias = root.nested("bias")) {
    JsonFields f(*bias, "bias", errors);
    f.boolean("qkv", spec.qkvBias);
    f.boolean("out", spec.outBias);
    f.boolean("mlp", spec.mlpBias);
    f.rejectUnknownKeys();
  }

  if (const json::Object *c = root.nested("compile")) {
    JsonFields fields(*c, "compile", errors);
    readCompile(fields, spec.compile);
  }
  if (const json::Object *t = root.nested("train")) {
    JsonFields fields(*t, "train", errors);
    readTrain(fields, spec.train);
  }
  root.rejectUnknownKeys();
  if (errors.failed())
    return errors.takeError();
  if (Error e = spec.validate())
    return createStringError(inconvertibleErrorCode(), "%s: %s",
                             fileName.str().c_str(),
                             toString(std::move(e)).c_str());
  return spec;
}

Error ModelSpec::validate() const {
  auto bad = [](const Twine &field, const Twine &message) {
    return createStringError(inconvertibleErrorCode(),
                             ("field '" + field + "': " + message).str());
  };
  if (heads % kvHeads != 0)
    return bad("kv_heads", "must divide heads (" + Twine(heads) + "), got " +
                               Twine(kvHeads));
  if (position == PositionKind::Rope && headDim % 2 != 0)
    return bad("head_dim", "must be even for rotary positions, got " +
                               Twine(headDim));
  if (experts > 0 && expertsPerToken > experts)
    return bad("moe.top_k", "must be at most moe.experts (" + Twine(experts) +
                                "), got " + Twine(expertsPerToken));
  if (compile.maxSeqLen > maxSeqLen)
    return bad("compile.max_seq_len",
               "must be at most the model's max_seq_len (" + Twine(maxSeqLen) +
                   "), got " + Twine(compile.maxSeqLen));
  if (ffn == FfnKind::Mlp && experts > 0)
    return bad("ffn.kind", "mixture of experts needs the gated kind");
  if (layers > kMaxLayers)
    return bad("layers", "expected at most " + Twine(kMaxLayers) + ", got " +
                             Twine(layers));
  if (experts > kMaxExperts)
    return bad("moe.experts", "expected at most " + Twine(kMaxExperts) +
                                  ", got " + Twine(experts));
  // Each expert of each layer is built as its own ops.
  if (layers * experts > kMaxExpertBlocks)
    return bad("moe.experts", "layers x experts must be at most " +
                                  Twine(kMaxExpertBlocks) + ", got " +
                                  Twine(layers) + " x " + Twine(experts));
  int64_t params = parameterCount(*this);
  return checkByteLimit("the weights",
                        saturatingProduct({params, dtypeBytes(compile.dtype)}),
                        countText(params) + " parameters of " + compile.dtype);
}

int64_t saturatingProduct(std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(product, f, &product))
      return INT64_MAX;
  return product;
}

int64_t saturatingSum(int64_t a, int64_t b) {
  int64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? INT64_MAX : sum;
}

int64_t parameterCount(const ModelSpec &spec) {
  int64_t q = saturatingProduct({spec.heads, spec.headDim});
  int64_t kv = saturatingProduct({spec.kvHeads, spec.headDim});
  // Q and O are d_model x q; K and V d_model x kv.
  int64_t attention = saturatingProduct(
      {2, spec.dModel, saturatingSum(q, kv)});
  int64_t ffn = saturatingProduct(
      {spec.ffn == FfnKind::Gated ? 3 : 2, spec.dModel, spec.ffnDim});
  if (spec.experts > 0)
    ffn = saturatingSum(saturatingProduct({ffn, spec.experts}),
                        saturatingProduct({spec.dModel, spec.experts}));
  int64_t norms = saturatingProduct({4, spec.dModel});
  int64_t layer = saturatingSum(saturatingSum(attention, ffn), norms);
  int64_t total = saturatingProduct({spec.layers, layer});
  total = saturatingSum(total, saturatingProduct({spec.tiedEmbeddings ? 1 : 2,
                                                  spec.vocab, spec.dModel}));
  if (spec.position == PositionKind::Learned)
    total = saturatingSum(total, saturatingProduct({spec.maxSeqLen, spec.dModel}));
  return total;
}

std::string countText(int64_t n) {
  return n == INT64_MAX ? "more than 2^63" : std::to_string(n);
}

int64_t dtypeBytes(StringRef dtype) { return dtype == "f32" ? 4 : 2; }

Error checkByteLimit(const Twine &what, int64_t bytes, const Twine &detail) {
  if (bytes <= kMaxBytes)
    return Error::success();
  return createStringError(inconvertibleErrorCode(),
                           (what + " would need " + countText(bytes) +
                            " bytes (" + detail +
                            "), more than the limit of 2^40 bytes")
                               .str());
}

static Expected<const json::Object *> topObject(const json::Value &value,
                                                StringRef fileName) {
  if (const json::Object *top = value.getAsObject())
    return top;
  return createStringError(inconvertibleErrorCode(),
                           "%s: expected a JSON object at the top level",
                           fileName.str().c_str());
}

/// Parses `text`; HF configs are recognised by "model_type" when allowed.
static Expected<ModelSpec> parseSpec(StringRef text, StringRef fileName,
                                     bool allowHFConfig) {
  Expected<json::Value> value = parseJsonText(text, fileName);
  if (!value)
    return value.takeError();
  Expected<const json::Object *> top = topObject(*value, fileName);
  if (!top)
    return top.takeError();
  if (allowHFConfig && (*top)->get("model_type"))
    return parseHFConfig(**top, fileName);
  return parseSpecObject(**top, fileName);
}

Expected<ModelSpec> parseModelSpec(StringRef text, StringRef fileName) {
  return parseSpec(text, fileName, /*allowHFConfig=*/false);
}

Expected<ModelSpec> parseAnySpec(StringRef text, StringRef fileName) {
  return parseSpec(text, fileName, /*allowHFConfig=*/true);
}

Expected<ModelSpec> loadSpecFile(StringRef path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return createStringError(buffer.getError(), "%s: cannot read: %s",
                             path.str().c_str(),
                             buffer.getError().message().c_str());
  return parseAnySpec((*buffer)->getBuffer(), path);
}

} // namespace gai
