// Emits the forward graph of a ModelSpec as primitive gai ops.
#include "frontend/GraphBuilder.h"

#include "dialects/Gai/GaiOps.h"
#include "frontend/ParamNames.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/Verifier.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::gai;

namespace gai {
namespace {

class ForwardBuilder {
public:
  ForwardBuilder(MLIRContext &context, const ModelSpec &spec, ParamNames names,
                 Type elementType, Type residualType, int64_t batch)
      : b(UnknownLoc::get(&context), &context), spec(spec),
        names(std::move(names)), elt(elementType), residualElt(residualType),
        batch(batch) {}

  /// @forward(tokens [B, T]) -> logits [B, T, V]: no cache.
  void buildForward(ModuleOp module, int64_t seqLen);
  /// @name(tokens [B, T], start [B], last [B], k caches, v caches)
  ///   -> (logits [B, V], k caches, v caches)
  /// Token t of row b sits at position start[b] + t; its K and V are
  /// written to the caches ([B, Hkv, S, D] per layer) there. The logits are
  /// those of token last[b]; for LongRoPE the input is prompt_last[b], the
  /// prompt's last token (past a chunk before the final one, by whose
  /// position LongRoPE chooses), and the logits those of token
  /// min(prompt_last[b], T - 1).
  void buildStep(ModuleOp module, StringRef name, int64_t seqLen,
                 int64_t context);
  /// @eval_loss(tokens [B, T], targets [B, T]) -> mean cross-entropy (f32).
  void buildLoss(ModuleOp module, int64_t rows, int64_t seqLen);

private:
  void at(const std::string &scope) {
    b.setLoc(NameLoc::get(b.getStringAttr(scope)));
  }
  RankedTensorType tensor(ArrayRef<int64_t> shape, Type type = {}) {
    return RankedTensorType::get(shape, type ? type : elt);
  }
  Value param(const std::string &name, ArrayRef<int64_t> shape, Type type = {}) {
    return ParamOp::create(b, tensor(shape, type), name);
  }
  /// `v` converted to `type` (none where it has that type already).
  Value convertTo(Value v, Type type) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getElementType() == type)
      return v;
    return ConvertOp::create(b, t.clone(type), v);
  }
  Value scalar(double value) {
    auto type = tensor({});
    return ConstantOp::create(
        b, DenseElementsAttr::get(type, b.getFloatAttr(elt, value)));
  }
  Value indexScalar(int64_t value) {
    return ConstantOp::create(b, DenseElementsAttr::get(RankedTensorType::get({}, b.getI32Type()),
                                                        b.getI32IntegerAttr(value)));
  }
  /// x · Wᵀ (+ bias) for a [out, in] weight, or x · W for GPT-2's [in, out].
  Value linear(Value x, const std::string &weight, int64_t in, int64_t out,
               const std::string &bias = "");
  Value activation(Value x);
  /// The norm of the residual stream `x`, in the model's type; `wide`, if
  /// given, gets it in the residual stream's.
  Value norm(Value x, const std::string &weight, const std::string &bias,
             Value *wide = nullptr);
  /// The KV cache of one generation step: per-layer state in and out.
  struct Cache {
    Value start;
    SmallVector<Value> keys, values;
  };
  Value attention(Value x, int64_t layer, Value positions, Cache *cache);
  /// Embeddings, decoder layers, final norm; `cache` for steps.
  Value decoder(Value tokens, Value positions, Cache *cache);
  Value logits(Value hidden);
  Value feedForward(Value x, int64_t layer, const std::string &prefix,
                    int64_t expert);
  /// `x` in the model's type feeds the experts, `wide` (the same in the
  /// residual stream's type) the router.
  Value mixtureOfExperts(Value x, Value wide, int64_t layer);
  /// [B, T, H*D] -> [B, H, T, D]
  Value splitHeads(Value x, int64_t heads);

  ImplicitLocOpBuilder b;
  const ModelSpec &spec;
  ParamNames names;
  Type elt;
  /// The residual stream's (the hidden state between layers) and its norms'
  /// weights: f32 over a bf16 or f16 model, where rounding it every layer
  /// costs more accuracy than its bytes are worth.
  Type residualElt;
  int64_t batch;
  int64_t seq = 0; ///< tokens per row of the function being built
  Value embeddingTable;
  /// LongRoPE's choice, as transformers makes it by the largest position a
  /// forward pass sees: fixed in a function over positions 0.. seq - 1
  /// (longRope), or per row in a generation step (longShare: [B, 1, 1, 1],
  /// 1 where the prompt's last position reaches the original context).
  bool longRope = false;
  Value longShare;
  /// Sets the choice for a function whose rows end at seq - 1 (null
  /// `lastPosition`), or at `lastPosition` [B] (a generation step).
  void chooseLongRope(Value lastPosition);
};

void ForwardBuilder::chooseLongRope(Value lastPosition) {
  longShare = nullptr;
  longRope = seq - 1 >= spec.ropeLongFrom;
  if (spec.ropeLongFrequencies.empty() || !lastPosition)
    return;
  // clamp(last - (from - 1), 0, 1), exact 0 or 1 in the model's type.
  Value past = SubOp::create(b, lastPosition, indexScalar(spec.ropeLongFrom - 1));
  Value share = MinOp::create(b, MaxOp::create(b, past, indexScalar(0)), indexScalar(1));
  longShare =
      convertTo(ReshapeOp::create(b, tensor({batch, 1, 1, 1}, b.getI32Type()), share), elt);
}

Value ForwardBuilder::linear(Value x, const std::string &weight, int64_t in,
                             int64_t out, const std::string &bias) {
  Value y;
  if (spec.naming == ParamNaming::GPT2)
    y = MatmulOp::create(b, x, param(weight, {in, out}));
  else
    y = MatmulOp::create(b, x, param(weight, {out, in}), false, true);
  if (!bias.empty())
    y = AddOp::create(b, y, param(bias, {out}));
  return y;
}

Value ForwardBuilder::activation(Value x) {
  switch (spec.activation) {
  case Activation::Silu:
    return SiluOp::create(b, x);
  case Activation::Gelu:
    return GeluOp::create(b, x, GeluApproximation::None);
  case Activation::GeluTanh:
    return GeluOp::create(b, x, GeluApproximation::Tanh);
  case Activation::Relu:
    return ReluOp::create(b, x);
  }
  llvm_unreachable("unknown activation");
}

Value ForwardBuilder::norm(Value x, const std::string &weight,
                           const std::string &bias, Value *wide) {
  int64_t d = spec.dModel;
  llvm::APFloat eps(spec.normEps);
  Value y = spec.norm == NormKind::RmsNorm
                ? RmsNormOp::create(b, x, param(weight, {d}, residualElt), eps,
                                    spec.normUnitOffset)
                      .getResult()
                : LayerNormOp::create(b, x, param(weight, {d}, residualElt),
                                      param(bias, {d}, residualElt), eps)
                      .getResult();
  if (wide)
    *wide = y;
  return convertTo(y, elt);
}

Value ForwardBuilder::splitHeads(Value x, int64_t heads) {
  Value r = ReshapeOp::create(b, tensor({batch, seq, heads, spec.headDim}), x);
  return TransposeOp::create(b, r, ArrayRef<int64_t>{0, 2, 1, 3});
}

Value ForwardBuilder::attention(Value x, int64_t layer, Value positions,
                                Cache *cache) {
  int64_t d = spec.dModel, hd = spec.headDim;
  int64_t qDim = spec.heads * hd, kvDim = spec.kvHeads * hd;
  AttentionNames n = names.attention(layer);
  Value q, k, v;
  if (spec.naming == ParamNaming::GPT2 || spec.fusedQkv) {
    Value qkv = linear(x, n.qkvWeight, d, qDim + 2 * kvDim,
                       spec.naming == ParamNaming::GPT2 ? n.qkvBias : "");
    q = SliceOp::create(b, qkv, ArrayRef<int64_t>{0, 0, 0},
                        ArrayRef<int64_t>{batch, seq, qDim});
    k = SliceOp::create(b, qkv, ArrayRef<int64_t>{0, 0, qDim},
                        ArrayRef<int64_t>{batch, seq, kvDim});
    v = SliceOp::create(b, qkv, ArrayRef<int64_t>{0, 0, qDim + kvDim},
                        ArrayRef<int64_t>{batch, seq, kvDim});
  } else {
    q = linear(x, n.q, d, qDim, spec.qkvBias ? n.qBias : "");
    k = linear(x, n.k, d, kvDim, spec.qkvBias ? n.kBias : "");
    v = linear(x, n.v, d, kvDim, spec.qkvBias ? n.vBias : "");
  }
  q = splitHeads(q, spec.heads);
  k = splitHeads(k, spec.kvHeads);
  v = splitHeads(v, spec.kvHeads);
  if (spec.qkNorm) { // over each head's vector, before RoPE
    llvm::APFloat eps(spec.normEps);
    q = RmsNormOp::create(b, q, param(n.qNorm, {hd}), eps, spec.normUnitOffset);
    k = RmsNormOp::create(b, k, param(n.kNorm, {hd}), eps, spec.normUnitOffset);
  }
  const int64_t window =
      spec.layerWindows.empty() ? spec.slidingWindow : spec.layerWindows[layer];
  if (spec.position == PositionKind::Rope) {
    // Gemma 3's sliding layers take their own theta, unscaled.
    const bool local = spec.ropeLocalTheta > 0 &&
                       layer < static_cast<int64_t>(spec.slidingLayers.size()) &&
                       spec.slidingLayers[layer];
    llvm::APFloat theta(local ? spec.ropeLocalTheta : spec.ropeTheta);
    RopeStyle style = spec.ropePairing == RopePairing::Half
                          ? RopeStyle::Half
                          : RopeStyle::Interleaved;
    DenseF64ArrayAttr llama3 = spec.ropeLlama3.empty() || local
                                   ? nullptr
                                   : b.getDenseF64ArrayAttr(spec.ropeLlama3);
    auto table = [&](const std::vector<float> &t) {
      return t.empty() || local ? nullptr : b.getDenseF32ArrayAttr(t);
    };
    FloatAttr attentionFactor =
        spec.ropeAttentionFactor == 1.0 || local
            ? nullptr
            : b.getF32FloatAttr(static_cast<float>(spec.ropeAttentionFactor));
    IntegerAttr rotaryDim =
        spec.ropeRotaryDim > 0 ? b.getI64IntegerAttr(spec.ropeRotaryDim) : nullptr;
    auto rotate = [&](Value x, const std::vector<float> &frequencies) -> Value {
      return RopeOp::create(b, x, positions, theta, style, llama3, /*token_major=*/false,
                            table(frequencies), attentionFactor, rotaryDim);
    };
    const bool longForm = !spec.ropeLongFrequencies.empty() && !local;
    for (Value *x : {&q, &k}) {
      if (!longForm || !longShare) {
        *x = rotate(*x, longForm && longRope ? spec.ropeLongFrequencies : spec.ropeFrequencies);
        continue;
      }
      // A generation step: each row's factors by its prompt's last position,
      // as share · long + (1 - share) · short (exact for a share of 0 or 1).
      Value longPart = MulOp::create(b, rotate(*x, spec.ropeLongFrequencies), longShare);
      Value shortShare = SubOp::create(b, scalar(1.0), longShare);
      Value shortPart = MulOp::create(b, rotate(*x, spec.ropeFrequencies), shortShare);
      *x = AddOp::create(b, longPart, shortPart);
    }
  }
  Value mask;
  if (cache) {
    k = cache->keys[layer] =
        CacheWriteOp::create(b, cache->keys[layer], k, cache->start);
    v = cache->values[layer] =
        CacheWriteOp::create(b, cache->values[layer], v, cache->start);
    int64_t slots = cast<RankedTensorType>(k.getType()).getDimSize(2);
    mask = PositionMaskOp::create(
        b, tensor({batch, 1, seq, slots}, b.getI1Type()), cache->start, window);
  } else {
    mask = CausalMaskOp::create(b, tensor({seq, seq}, b.getI1Type()), window);
  }
  if (spec.kvHeads != spec.heads) {
    int64_t groups = spec.heads / spec.kvHeads;
    k = RepeatOp::create(b, k, 1, groups);
    v = RepeatOp::create(b, v, 1, groups);
  }
  Value scores = MatmulOp::create(b, q, k, false, true);
  scores = MulOp::create(
      b, scores, scalar(spec.attnScale > 0 ? spec.attnScale : 1.0 / std::sqrt(double(hd))));
  if (spec.attnSoftcap > 0) {
    Value cap = scalar(spec.attnSoftcap);
    scores = MulOp::create(b, TanhOp::create(b, DivOp::create(b, scores, cap)),
                           cap);
  }
  scores = SelectOp::create(b, mask, scores, scalar(-INFINITY));
  Value probs = SoftmaxOp::create(b, scores, 3);
  Value out = MatmulOp::create(b, probs, v); // [B, H, T, D]
  out = TransposeOp::create(b, out, ArrayRef<int64_t>{0, 2, 1, 3});
  out = ReshapeOp::create(b, tensor({batch, seq, qDim}), out);
  return linear(out, n.o, qDim, d, spec.outBias ? n.oBias : "");
}

Value ForwardBuilder::feedForward(Value x, int64_t layer,
                                  const std::string &scope, int64_t expert) {
  int64_t d = spec.dModel, f = spec.ffnDim;
  FeedForwardNames n = names.feedForward(layer, expert);
  auto bias = [&](const std::string &name) {
    return spec.mlpBias ? name : std::string();
  };
  at(scope);
  if (spec.ffn == FfnKind::Mlp) {
    Value h = activation(linear(x, n.up, d, f, bias(n.upBias)));
    return linear(h, n.down, f, d, bias(n.downBias));
  }
  Value gate, up;
  if (spec.fusedGateUp) {
    Value both = linear(x, n.gateUp, d, 2 * f, "");
    gate = SliceOp::create(b, both, ArrayRef<int64_t>{0, 0, 0}, ArrayRef<int64_t>{batch, seq, f});
    up = SliceOp::create(b, both, ArrayRef<int64_t>{0, 0, f}, ArrayRef<int64_t>{batch, seq, f});
    gate = activation(gate);
  } else {
    gate = activation(linear(x, n.gate, d, f, bias(n.gateBias)));
    up = linear(x, n.up, d, f, bias(n.upBias));
  }
  return linear(MulOp::create(b, gate, up), n.down, f, d, bias(n.downBias));
}

// Dense formulation: every expert runs on every token and is weighted by its
// routing probability, zero for experts outside the top k. Exact, and simple
// to differentiate; a grouped-GEMM rewrite makes it sparse.
Value ForwardBuilder::mixtureOfExperts(Value x, Value wide, int64_t layer) {
  int64_t e = spec.experts, k = spec.expertsPerToken;
  std::string scope = names.layerScope(layer) + ".moe";
  at(scope);
  // Routing in the residual stream's type: two experts' scores often sit
  // within a bf16 rounding of each other, and a swap moves the token's
  // output by the whole difference of the two experts.
  Value logits = MatmulOp::create(
      b, wide, param(names.router(layer), {e, spec.dModel}, residualElt), false, true);
  Value probs = SoftmaxOp::create(b, logits, 2);
  auto topk = TopKOp::create(b, probs, k);
  Value weights = topk.getValues(); // [B, T, k]
  if (spec.normalizeTopK)
    weights = DivOp::create(
        b, weights,
        ReduceOp::create(b, ReduceKind::Sum, weights, ArrayRef<int64_t>{2},
                         true));
  // The experts' outputs are weighted and summed in that type too.
  Value oneHot = OneHotOp::create(b, tensor({batch, seq, k, e}, residualElt),
                                  topk.getIndices(), e);
  Value spread = MulOp::create(
      b, oneHot, ReshapeOp::create(b, tensor({batch, seq, k, 1}, residualElt), weights));
  Value gates = ReduceOp::create(b, ReduceKind::Sum, spread,
                                 ArrayRef<int64_t>{2}); // [B, T, E]
  Value sum;
  for (int64_t i = 0; i < e; ++i) {
    Value y = feedForward(x, layer, scope + ".expert" + std::to_string(i), i);
    at(scope);
    Value gate = SliceOp::create(b, gates, ArrayRef<int64_t>{0, 0, i},
                                 ArrayRef<int64_t>{batch, seq, 1});
    Value weighted = MulOp::create(b, convertTo(y, residualElt), gate);
    sum = sum ? Value(AddOp::create(b, sum, weighted)) : weighted;
  }
  return sum;
}

Value ForwardBuilder::decoder(Value tokens, Value positions, Cache *cache) {
  at("embed");
  int64_t d = spec.dModel;
  embeddingTable = param(names.embedding(), {spec.vocab, d});
  Value x = EmbeddingOp::create(b, embeddingTable, tokens);
  if (spec.scaleEmbeddings) // Gemma rounds sqrt(d) to the compute type
    x = MulOp::create(b, x, scalar(std::sqrt(double(d))));
  if (spec.position == PositionKind::Learned) {
    Value pe = EmbeddingOp::create(
        b, param(names.positionEmbedding(), {spec.maxSeqLen, d}), positions);
    x = AddOp::create(b, x, pe);
  }
  x = convertTo(x, residualElt);
  for (int64_t layer = 0; layer < spec.layers; ++layer) {
    LayerNames n = names.layer(layer);
    at(names.layerScope(layer) + ".attn");
    Value h = norm(x, n.attnNorm, n.attnNormBias);
    Value a = convertTo(attention(h, layer, positions, cache), residualElt);
    if (spec.sandwichNorms) // normed in the residual stream's type, as HF in f32
      a = convertTo(norm(a, n.postAttnNorm, ""), residualElt);
    x = AddOp::create(b, x, a);
    at(names.layerScope(layer) + ".ffn");
    Value wide;
    h = norm(x, n.ffnNorm, n.ffnNormBias, &wide);
    Value y = spec.experts > 0
                  ? mixtureOfExperts(h, wide, layer)
                  : feedForward(h, layer, names.layerScope(layer) + ".ffn", -1);
    y = convertTo(y, residualElt);
    if (spec.sandwichNorms)
      y = convertTo(norm(y, n.postFfnNorm, ""), residualElt);
    x = AddOp::create(b, x, y);
  }
  return x;
}

Value ForwardBuilder::logits(Value hidden) {
  at("head");
  Value x = norm(hidden, names.finalNorm(), names.finalNormBias());
  Value head = spec.tiedEmbeddings
                   ? embeddingTable
                   : param(names.lmHead(), {spec.vocab, spec.dModel});
  Value out = MatmulOp::create(b, x, head, false, true);
  if (spec.finalSoftcap > 0) {
    Value cap = scalar(spec.finalSoftcap);
    out = MulOp::create(b, TanhOp::create(b, DivOp::create(b, out, cap)), cap);
  }
  return out;
}

void ForwardBuilder::buildForward(ModuleOp module, int64_t seqLen) {
  seq = seqLen;
  b.setInsertionPointToEnd(module.getBody());
  auto tokensType = tensor({batch, seq}, b.getI32Type());
  auto logitsType = tensor({batch, seq, spec.vocab});
  auto func = func::FuncOp::create(
      b, "forward", b.getFunctionType({tokensType}, {logitsType}));
  func.setArgAttr(0, "gai.name", b.getStringAttr("tokens"));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value positions = IotaOp::create(b, tensor({1, seq}, b.getI32Type()), 1);
  chooseLongRope(nullptr);
  Value hidden = decoder(entry->getArgument(0), positions, nullptr);
  func::ReturnOp::create(b, logits(hidden));
}

void ForwardBuilder::buildLoss(ModuleOp module, int64_t rows, int64_t seqLen) {
  seq = seqLen;
  batch = rows;
  b.setInsertionPointToEnd(module.getBody());
  auto ids = tensor({batch, seq}, b.getI32Type());
  auto lossType = RankedTensorType::get({}, b.getF32Type());
  auto func = func::FuncOp::create(b, "eval_loss",
                                   b.getFunctionType({ids, ids}, {lossType}));
  func.setArgAttr(0, "gai.name", b.getStringAttr("tokens"));
  func.setArgAttr(1, "gai.name", b.getStringAttr("targets"));
  func.setResultAttr(0, "gai.name", b.getStringAttr("loss"));
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  Value positions = IotaOp::create(b, tensor({1, seq}, b.getI32Type()), 1);
  chooseLongRope(nullptr);
  Value logitsValue = logits(decoder(entry->getArgument(0), positions, nullptr));
  at("loss");
  // The loss reads the logits in their own type and sums in f32: no f32
  // copy of [B, T, V].
  Value loss = CrossEntropyOp::create(b, logitsValue, entry->getArgument(1),
                                      /*ignore_index=*/-100, LossReduction::Mean);
  func::ReturnOp::create(b, loss);
}

void ForwardBuilder::buildStep(ModuleOp module, StringRef name,
                               int64_t seqLen, int64_t context) {
  seq = seqLen;
  b.setInsertionPointToEnd(module.getBody());
  Type i32 = b.getI32Type();
  auto cacheType = tensor({batch, spec.kvHeads, context, spec.headDim});
  SmallVector<Type> inputs = {tensor({batch, seq}, i32), tensor({batch}, i32),
                              tensor({batch}, i32)};
  SmallVector<Type> results = {tensor({batch, spec.vocab})};
  for (int64_t i = 0; i < 2 * spec.layers; ++i) {
    inputs.push_back(cacheType);
    results.push_back(cacheType);
  }
  auto func =
      func::FuncOp::create(b, name, b.getFunctionType(inputs, results));
  // LongRoPE's steps take the prompt's last token (prompt_last), which may
  // lie past a prefill chunk; the others the logits' row (last).
  const bool promptLast = !spec.ropeLongFrequencies.empty();
  const char *argNames[] = {"tokens", "start", promptLast ? "prompt_last" : "last"};
  for (int i = 0; i < 3; ++i)
    func.setArgAttr(i, "gai.name", b.getStringAttr(argNames[i]));
  for (int64_t l = 0; l < spec.layers; ++l) {
    func.setArgAttr(3 + l, "gai.name",
                    b.getStringAttr("cache.k." + std::to_string(l)));
    func.setArgAttr(3 + spec.layers + l, "gai.name",
                    b.getStringAttr("cache.v." + std::to_string(l)));
  }
  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);

  Cache cache;
  cache.start = entry->getArgument(1);
  for (int64_t l = 0; l < spec.layers; ++l) {
    cache.keys.push_back(entry->getArgument(3 + l));
    cache.values.push_back(entry->getArgument(3 + spec.layers + l));
  }
  at("positions");
  // A one-token step's positions are its start: no kernel to add a zero.
  Value positions = ReshapeOp::create(b, tensor({batch, 1}, i32), cache.start);
  if (seq > 1)
    positions = AddOp::create(b, IotaOp::create(b, tensor({1, seq}, i32), 1), positions);
  Value lastToken = entry->getArgument(2);
  Value promptEnd; // LongRoPE's rows' last positions
  if (promptLast)
    promptEnd = seq > 1 ? AddOp::create(b, cache.start, lastToken).getResult() : cache.start;
  chooseLongRope(promptEnd);
  Value hidden = decoder(entry->getArgument(0), positions, &cache);
  at("head");
  // Only the requested token of each row reaches the vocabulary projection.
  // A one-token step has no other: `last` is then unused, and no kernel
  // copies the row.
  int64_t width = cast<RankedTensorType>(hidden.getType()).getShape().back();
  Value last;
  if (seq > 1) // prompt_last: the chunk's last row at most
    last = TakeOp::create(b, hidden,
                          promptLast ? Value(MinOp::create(b, lastToken, indexScalar(seq - 1)))
                                     : lastToken);
  else
    last = ReshapeOp::create(b, tensor({batch, width}, residualElt), hidden);
  SmallVector<Value> outs = {logits(last)};
  outs.append(cache.keys.begin(), cache.keys.end());
  outs.append(cache.values.begin(), cache.values.end());
  func::ReturnOp::create(b, outs);
}

/// Refuses shapes whose buffers could not be allocated, before any IR is
/// built: the weights (with gradients and two Adam moments when training),
/// the KV caches, and the largest activation (logits or hidden rows) of each
/// function, all in saturating arithmetic.
llvm::Error checkSizes(const ModelSpec &spec, const BuildOptions &options,
                       llvm::StringRef dtype, int64_t batch, int64_t seq,
                       int64_t trainRows, int64_t trainLength) {
  int64_t elt = dtypeBytes(dtype);
  int64_t params = parameterCount(spec);
  bool training = options.entries.loss;
  if (llvm::Error e = checkByteLimit(
          training ? "the weights, gradients and optimizer state"
                   : "the weights",
          saturatingProduct({params, training ? 16 : elt}),
          countText(params) + " parameters of " +
              (training ? "f32, times 4" : dtype)))
    return e;
  if (options.entries.prefill || options.entries.decode)
    if (llvm::Error e = checkByteLimit(
            "the KV caches",
            saturatingProduct({2, spec.layers, batch, spec.kvHeads, seq,
                               spec.headDim, elt}),
            "2 x " + llvm::Twine(spec.layers) + " layers x batch " +
                llvm::Twine(batch) + " x " + llvm::Twine(spec.kvHeads) +
                " heads x " + llvm::Twine(seq) + " positions x " +
                llvm::Twine(spec.headDim) + " x " + dtype))
      return e;
  int64_t width = std::max({spec.vocab, spec.dModel, spec.ffnDim,
                            spec.heads * spec.headDim});
  auto activation = [&](llvm::StringRef entry, int64_t rows,
                        int64_t length) -> llvm::Error {
    return checkByteLimit(
        "@" + entry + "'s largest activation",
        saturatingProduct({rows, length, width, 4}),
        llvm::Twine(rows) + " rows x " + llvm::Twine(length) + " tokens x " +
            llvm::Twine(width) + " x f32");
  };
  if (options.entries.forward)
    if (llvm::Error e = activation("forward", batch, seq))
      return e;
  if (options.entries.prefill)
    if (llvm::Error e = activation(
            "prefill", batch, options.prefillLen ? options.prefillLen : seq))
      return e;
  if (training)
    if (llvm::Error e = activation("eval_loss", trainRows, trainLength))
      return e;
  return llvm::Error::success();
}

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
buildForward(MLIRContext &context, const ModelSpec &spec,
             const BuildOptions &options) {
  context.loadDialect<GaiDialect, func::FuncDialect>();
  auto fail = [](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   message.str());
  };
  int64_t batch = options.batch ? options.batch : spec.compile.maxBatch;
  int64_t seq = options.seqLen      ? options.seqLen
                : spec.compile.maxSeqLen ? spec.compile.maxSeqLen
                                         : spec.maxSeqLen;
  if (batch < 1)
    return fail("batch must be at least 1, got " + llvm::Twine(batch));
  if (options.prefillLen < 0 || options.prefillLen > seq)
    return fail("the prefill length must be in [1, " + llvm::Twine(seq) +
                "] (the context), got " + llvm::Twine(options.prefillLen));
  if (seq < 1 || seq > spec.maxSeqLen)
    return fail("sequence length must be in [1, " +
                llvm::Twine(spec.maxSeqLen) + "] (the model's max_seq_len), "
                "got " + llvm::Twine(seq));
  std::string dtype = options.dtype.empty() ? spec.compile.dtype : options.dtype;
  Type elt = dtype == "f32"    ? Type(Float32Type::get(&context))
             : dtype == "bf16" ? Type(BFloat16Type::get(&context))
             : dtype == "f16"  ? Type(Float16Type::get(&context))
                               : Type();
  if (!elt)
    return fail("dtype must be f32, bf16 or f16, got '" + dtype + "'");

  const TrainSection &train = spec.train;
  int64_t rows = options.trainBatch ? options.trainBatch
                 : train.batch      ? train.batch / std::max<int64_t>(train.microBatches, 1)
                                    : batch;
  int64_t length = options.trainSeqLen ? options.trainSeqLen
                   : train.seqLen      ? train.seqLen
                                       : seq;
  if (options.entries.loss && (rows < 1 || length < 1 || length > spec.maxSeqLen))
    return fail("training needs a micro-batch of at least one row and a length in "
                "[1, " + llvm::Twine(spec.maxSeqLen) + "], got " + llvm::Twine(rows) +
                " rows of " + llvm::Twine(length));
  if (options.entries.loss && options.dataParallel > 1) {
    if (rows % options.dataParallel != 0)
      return fail("a micro-batch of " + llvm::Twine(rows) + " rows does not divide over dp=" +
                  llvm::Twine(options.dataParallel) + " ranks; give a multiple of " +
                  llvm::Twine(options.dataParallel) + " rows (--train-batch)");
    rows /= options.dataParallel;
  }
  if (llvm::Error e = checkSizes(spec, options, dtype, batch, seq, rows, length))
    return std::move(e);

  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  module->setName(spec.name.empty() ? StringRef("model") : spec.name);
  Type residual = options.f32Residual ? Type(Float32Type::get(&context)) : elt;
  ForwardBuilder builder(context, spec, ParamNames(spec), elt, residual, batch);
  if (options.entries.forward)
    builder.buildForward(*module, seq);
  if (options.entries.prefill)
    builder.buildStep(*module, "prefill",
                      options.prefillLen ? options.prefillLen : seq, seq);
  if (options.entries.decode)
    builder.buildStep(*module, "decode", 1, seq);
  if (options.entries.loss)
    builder.buildLoss(*module, rows, length);
  // The builder is ours: a module that fails to verify is a bug, not input.
  if (failed(verify(*module)))
    return fail("internal error: the built IR does not verify");
  return std::move(module);
}

} // namespace gai
