// Maps Hugging Face config.json files onto ModelSpec.
#include "frontend/HFConfig.h"

#include "frontend/JsonFields.h"
#include "frontend/RopeScaling.h"

#include "llvm/ADT/StringSwitch.h"

#include <cmath>

using namespace llvm;

namespace gai {
namespace {

constexpr StringRef kSupportedTypes[] = {"llama", "mistral", "qwen2", "qwen3", "mixtral", "gemma",
                                         "gemma2", "gemma3_text", "phi3", "gpt2"};

void readActivation(JsonFields &fields, StringRef key, StringRef fallback,
                    ModelSpec &spec) {
  std::string act = fallback.str();
  fields.string(key, act,
                {"silu", "swish", "gelu", "gelu_new", "gelu_pytorch_tanh",
                 "gelu_fast", "relu"});
  spec.activation = StringSwitch<Activation>(act)
                        .Cases({"silu", "swish"}, Activation::Silu)
                        .Case("gelu", Activation::Gelu)
                        .Case("relu", Activation::Relu)
                        .Default(Activation::GeluTanh);
}

/// The head elements RoPE rotates: head_dim, or the first
/// int(head_dim × partial_rotary_factor) of Phi-3's family (Phi-4-mini);
/// transformers' other families here rotate whole heads.
void readPartialRotary(JsonFields &where, StringRef modelType, ModelSpec &spec) {
  double partial = 1.0;
  where.number("partial_rotary_factor", partial, 0.0);
  if (!where.has("partial_rotary_factor"))
    return;
  spec.ropeRotaryDim = 0;
  if (partial == 1.0)
    return;
  if (modelType != "phi3")
    return where.report("partial_rotary_factor",
                        "partial rotary embeddings are supported for phi3 only (need 1.0)");
  const auto rotated = static_cast<int64_t>(static_cast<double>(spec.headDim) * partial);
  if (rotated < 2 || rotated % 2 || rotated > spec.headDim)
    return where.report("partial_rotary_factor",
                        "expected head_dim (" + Twine(spec.headDim) +
                            ") × the factor to give an even number of elements in [2, head_dim], "
                            "got " + Twine(rotated));
  spec.ropeRotaryDim = rotated == spec.headDim ? 0 : rotated;
}

/// The elements of a head RoPE rotates, whose frequencies it takes.
int64_t ropeDim(const ModelSpec &spec) {
  return spec.ropeRotaryDim > 0 ? spec.ropeRotaryDim : spec.headDim;
}

/// The original context of YaRN and LongRoPE, where transformers takes it:
/// the config's own original_max_position_embeddings first (Phi-3's
/// config class defaults it to 4096), then the scaling's, then
/// max_position_embeddings.
double originalContext(JsonFields &fields, JsonFields &scaling, StringRef type,
                       const ModelSpec &spec) {
  double context = 0;
  fields.number("original_max_position_embeddings", context, 1.0);
  if (context == 0 && type == "phi3")
    context = 4096;
  if (context == 0)
    scaling.number("original_max_position_embeddings", context, 1.0);
  return context > 0 ? context : static_cast<double>(spec.maxSeqLen);
}

/// YaRN (rope_type "yarn"): a frequency table and a scale.
void readYarn(JsonFields &fields, JsonFields &r, StringRef modelType, ModelSpec &spec) {
  YarnScaling yarn;
  yarn.originalContext = originalContext(fields, r, modelType, spec);
  yarn.factor = static_cast<double>(spec.maxSeqLen) / yarn.originalContext;
  r.number("factor", yarn.factor, 1.0);
  r.number("beta_fast", yarn.betaFast, 0.0);
  r.number("beta_slow", yarn.betaSlow, 0.0);
  if (yarn.betaFast == 0) // HF: `or 32`, `or 1`
    yarn.betaFast = 32;
  if (yarn.betaSlow == 0)
    yarn.betaSlow = 1;
  r.boolean("truncate", yarn.truncate);
  r.number("attention_factor", yarn.attentionFactor, 0.0);
  r.number("mscale", yarn.mscale, 0.0);
  r.number("mscale_all_dim", yarn.mscaleAllDim, 0.0);
  spec.ropeFrequencies = yarnFrequencies(ropeDim(spec), spec.ropeTheta, yarn);
  spec.ropeAttentionFactor = yarnAttentionFactor(yarn);
}

/// LongRoPE (rope_type "longrope", Phi-3 and Phi-3.5's long-context forms):
/// short factors up to the original context, long ones past it.
void readLongRope(JsonFields &fields, JsonFields &r, StringRef modelType, ModelSpec &spec) {
  std::vector<double> shortFactors, longFactors;
  r.numbers("short_factor", shortFactors, 0.0, true);
  r.numbers("long_factor", longFactors, 0.0, true);
  const size_t pairs = static_cast<size_t>(ropeDim(spec) / 2);
  for (auto [key, factors] : {std::pair<StringRef, std::vector<double> *>{"short_factor", &shortFactors},
                              {"long_factor", &longFactors}})
    if (r.has(key) && factors->size() != pairs)
      return r.report(key, "expected the rotated dimensions / 2 (" + Twine(pairs) + ") factors, got " +
                               Twine(factors->size()));
  if (shortFactors.size() != pairs || longFactors.size() != pairs)
    return;
  const double context = originalContext(fields, r, modelType, spec);
  double factor = static_cast<double>(spec.maxSeqLen) / context, attention = 0;
  r.number("factor", factor, 0.0);
  r.number("attention_factor", attention, 0.0);
  spec.ropeFrequencies = longRopeFrequencies(ropeDim(spec), spec.ropeTheta, shortFactors);
  spec.ropeLongFrequencies = longRopeFrequencies(ropeDim(spec), spec.ropeTheta, longFactors);
  spec.ropeLongFrom = static_cast<int64_t>(context);
  spec.ropeAttentionFactor = attention > 0 ? attention : longRopeAttentionFactor(factor, context);
}

/// One RoPE parameter dict (rope_parameters, rope_scaling, or Gemma 3's
/// full_attention entry): theta and the scaling type.
void readRopeParameters(JsonFields &fields, JsonFields &r, StringRef modelType, ModelSpec &spec) {
  r.number("rope_theta", spec.ropeTheta, 1.0);
  readPartialRotary(r, modelType, spec);
  std::string type = "default";
  r.string("rope_type", type);
  if (!r.has("rope_type"))
    r.string("type", type);
  if (modelType == "phi3" && (type == "su" || type == "yarn"))
    type = "longrope"; // as Phi-3's config class renames them
  if (type == "llama3") {
    double factor = 0, low = 0, high = 0, context = 0;
    r.number("factor", factor, 1.0, true);
    r.number("low_freq_factor", low, 0.0, true);
    r.number("high_freq_factor", high, 0.0, true);
    r.number("original_max_position_embeddings", context, 1.0, true);
    if (r.has("low_freq_factor") && low <= 0)
      r.report("low_freq_factor", "expected a number > 0, got " + describeJson(low));
    else if (high <= low)
      r.report("high_freq_factor",
               "expected more than low_freq_factor (" + describeJson(low) + ")");
    spec.ropeLlama3 = {factor, low, high, context};
  } else if (type == "linear") {
    double factor = 0;
    r.number("factor", factor, 1.0, true);
    spec.ropeLlama3 = linearRopeScaling(factor);
  } else if (type == "yarn") {
    readYarn(fields, r, modelType, spec);
  } else if (type == "longrope" || type == "su") {
    readLongRope(fields, r, modelType, spec);
  } else if (type == "dynamic") {
    // Dynamic NTK changes theta only past max_position_embeddings, which
    // is also the longest sequence gaic compiles for.
    double factor = 0;
    r.number("factor", factor, 1.0, true);
  } else if (type != "default") {
    r.report(r.has("rope_type") ? "rope_type" : "type",
             "RoPE scaling '" + type +
                 "' is not supported yet; \"default\", \"linear\", \"llama3\", \"yarn\", "
                 "\"longrope\" and \"dynamic\" are");
  }
}

/// Gemma 3's sliding layers' RoPE (rope_parameters.sliding_attention, or
/// rope_local_base_freq in older configs): theta alone.
void readLocalRope(JsonFields &r, ModelSpec &spec) {
  r.number("rope_theta", spec.ropeLocalTheta, 1.0);
  std::string type = "default";
  r.string("rope_type", type);
  if (type != "default")
    r.report("rope_type", "RoPE scaling '" + type +
                              "' of the sliding layers is not supported yet (need \"default\")");
}

/// RoPE theta lives at the top level in older configs and in rope_parameters
/// (or rope_scaling) in newer ones, with the scaling type; Gemma 3's newer
/// configs hold one dict a layer type.
void readRope(JsonFields &fields, JsonErrors &errors, StringRef modelType, ModelSpec &spec) {
  fields.number("rope_theta", spec.ropeTheta, 1.0);
  readPartialRotary(fields, modelType, spec); // a rope_parameters entry wins
  if (modelType == "gemma3_text")
    fields.number("rope_local_base_freq", spec.ropeLocalTheta, 1.0);
  for (StringRef key : {"rope_parameters", "rope_scaling"}) {
    const json::Object *rope = fields.nested(key);
    if (!rope)
      continue;
    JsonFields r(*rope, key.str(), errors);
    if (modelType == "gemma3_text" && (r.has("full_attention") || r.has("sliding_attention"))) {
      if (const json::Object *full = r.nested("full_attention")) {
        JsonFields f(*full, key.str() + ".full_attention", errors);
        readRopeParameters(fields, f, modelType, spec);
      }
      if (const json::Object *local = r.nested("sliding_attention")) {
        JsonFields l(*local, key.str() + ".sliding_attention", errors);
        readLocalRope(l, spec);
      }
      continue;
    }
    readRopeParameters(fields, r, modelType, spec);
  }
}

/// Each layer's window from its layer type: `window` (0: none) where it
/// is "sliding_attention", else 0; and which layers slide.
void readLayerWindows(JsonFields &f, const std::vector<std::string> &types, int64_t window,
                      ModelSpec &spec) {
  if (static_cast<int64_t>(types.size()) != spec.layers)
    return f.report("layer_types", "expected one entry a layer (" +
                                       std::to_string(spec.layers) + "), got " +
                                       std::to_string(types.size()));
  for (const std::string &t : types) {
    if (t != "sliding_attention" && t != "full_attention")
      return f.report("layer_types", "expected sliding_attention or full_attention, got '" +
                                         t + "'");
    spec.layerWindows.push_back(t == "sliding_attention" ? window : 0);
    spec.slidingLayers.push_back(t == "sliding_attention");
  }
}

/// The window of sliding layers: sliding_window, transformers' 4096 when
/// absent, none when null.
int64_t slidingWindowOf(JsonFields &f) {
  if (f.isNull("sliding_window"))
    return 0;
  int64_t window = 4096;
  f.integer("sliding_window", window, 1);
  return window;
}

/// Gemma 2 and 3: soft-capped scores and logits (Gemma 3: none by
/// default), the scores scaled by query_pre_attn_scalar (default 256),
/// norms around both blocks, and sliding-window layers among global ones
/// (layer_types, or transformers' defaults).
void readGemmaLayers(JsonFields &f, StringRef type, ModelSpec &spec) {
  spec.sandwichNorms = true;
  f.number("attn_logit_softcapping", spec.attnSoftcap, 0.0);
  f.number("final_logit_softcapping", spec.finalSoftcap, 0.0);
  double queryScalar = 256;
  f.number("query_pre_attn_scalar", queryScalar, 0.0);
  if (queryScalar > 0)
    spec.attnScale = 1.0 / std::sqrt(queryScalar);
  const int64_t window = slidingWindowOf(f);
  std::vector<std::string> types;
  f.strings("layer_types", types);
  // Without layer_types: Gemma 2 slides on even layers; Gemma 3 on all but
  // every sliding_window_pattern-th (6).
  int64_t pattern = 6;
  if (type == "gemma3_text")
    f.integer("sliding_window_pattern", pattern, 1);
  if (types.empty())
    for (int64_t i = 0; i < spec.layers; ++i)
      types.push_back((type == "gemma3_text" ? (i + 1) % pattern != 0 : i % 2 == 0)
                          ? "sliding_attention"
                          : "full_attention");
  readLayerWindows(f, types, window, spec);
}

/// Qwen2 and Qwen3: with use_sliding_window, the layers from
/// max_window_layers on (or those layer_types names) attend within
/// sliding_window; without it, or with a null window, every layer attends
/// to all.
void readQwenWindows(JsonFields &f, ModelSpec &spec) {
  bool useSlidingWindow = false;
  f.boolean("use_sliding_window", useSlidingWindow);
  const int64_t window = slidingWindowOf(f);
  if (!useSlidingWindow || window == 0)
    return;
  int64_t firstSliding = 28;
  f.integer("max_window_layers", firstSliding, 0);
  std::vector<std::string> types;
  f.strings("layer_types", types);
  if (types.empty())
    for (int64_t i = 0; i < spec.layers; ++i)
      types.push_back(i >= firstSliding ? "sliding_attention" : "full_attention");
  readLayerWindows(f, types, window, spec);
}

void readDecoder(JsonFields &f, JsonErrors &errors, StringRef type,
                 ModelSpec &spec) {
  spec.naming = ParamNaming::HFDecoder;
  spec.norm = NormKind::RmsNorm;
  spec.ffn = FfnKind::Gated;
  spec.position = PositionKind::Rope;
  f.integer("vocab_size", spec.vocab, 1, true);
  f.integer("hidden_size", spec.dModel, 1, true);
  f.integer("intermediate_size", spec.ffnDim, 1, true);
  f.integer("num_hidden_layers", spec.layers, 1, true);
  readHeads(f, {"num_attention_heads", "num_key_value_heads", "head_dim"},
            spec);
  f.integer("max_position_embeddings", spec.maxSeqLen, 1, true);
  f.number("rms_norm_eps", spec.normEps, 0.0);
  if (type == "gemma3_text") { // transformers' defaults when the config has none
    spec.ropeTheta = 1000000.0;
    spec.ropeLocalTheta = 10000.0;
  }
  readRope(f, errors, type, spec);

  const bool gemma3 = type == "gemma3_text";
  if (type == "gemma" || type == "gemma2" || gemma3) {
    spec.tiedEmbeddings = true;
    spec.normUnitOffset = true;
    spec.scaleEmbeddings = true;
    // Gemma reads hidden_activation and falls back to the tanh gelu.
    readActivation(f, "hidden_activation", "gelu_pytorch_tanh", spec);
  } else {
    readActivation(f, "hidden_act", "silu", spec);
  }
  f.boolean("tie_word_embeddings", spec.tiedEmbeddings);

  if (type == "llama" || type == "gemma" || type == "gemma2" || gemma3 || type == "qwen3") {
    bool attentionBias = false;
    f.boolean("attention_bias", attentionBias);
    spec.qkvBias = spec.outBias = attentionBias;
  }
  if (type == "llama")
    f.boolean("mlp_bias", spec.mlpBias);
  if (type == "qwen3" || gemma3)
    spec.qkNorm = true;
  if (type == "phi3") {
    spec.fusedQkv = spec.fusedGateUp = true;
    f.integer("sliding_window", spec.slidingWindow, 1);
  }
  if (type == "gemma2" || gemma3)
    readGemmaLayers(f, type, spec);
  if (gemma3) {
    bool bidirectional = false;
    f.boolean("use_bidirectional_attention", bidirectional);
    if (bidirectional)
      f.report("use_bidirectional_attention",
               "bidirectional attention is not supported (need false)");
  }
  if (type == "qwen2" || type == "qwen3") {
    spec.qkvBias = type == "qwen2" || spec.qkvBias;
    readQwenWindows(f, spec);
  }
  if (type == "mistral" || type == "mixtral")
    f.integer("sliding_window", spec.slidingWindow, 1);
  if (type == "mixtral") {
    f.integer("num_local_experts", spec.experts, 2, true);
    f.integer("num_experts_per_tok", spec.expertsPerToken, 1, true);
  }
}

void readGPT2(JsonFields &f, ModelSpec &spec) {
  spec.naming = ParamNaming::GPT2;
  spec.norm = NormKind::LayerNorm;
  spec.ffn = FfnKind::Mlp;
  spec.position = PositionKind::Learned;
  spec.tiedEmbeddings = true;
  spec.qkvBias = spec.outBias = spec.mlpBias = true;
  f.integer("vocab_size", spec.vocab, 1, true);
  f.integer("n_embd", spec.dModel, 1, true);
  f.integer("n_layer", spec.layers, 1, true);
  readHeads(f, {"n_head", "", ""}, spec);
  spec.ffnDim = 4 * spec.dModel;
  f.integer("n_inner", spec.ffnDim, 1);
  f.integer("n_positions", spec.maxSeqLen, 1, true);
  f.number("layer_norm_epsilon", spec.normEps, 0.0);
  readActivation(f, "activation_function", "gelu_new", spec);
  f.boolean("tie_word_embeddings", spec.tiedEmbeddings);
  bool scaleWeights = true, byLayer = false;
  f.boolean("scale_attn_weights", scaleWeights);
  f.boolean("scale_attn_by_inverse_layer_idx", byLayer);
  if (!scaleWeights)
    f.report("scale_attn_weights", "unscaled attention is not supported");
  if (byLayer)
    f.report("scale_attn_by_inverse_layer_idx",
             "per-layer attention scaling is not supported");
}

} // namespace

Expected<ModelSpec> parseHFConfig(const json::Object &config,
                                  StringRef fileName) {
  JsonErrors errors(fileName);
  JsonFields fields(config, "", errors);
  std::string type;
  fields.string("model_type", type, kSupportedTypes, /*required=*/true);
  if (errors.failed())
    return errors.takeError();

  ModelSpec spec;
  spec.family = type;
  spec.name = type;
  if (type == "gpt2")
    readGPT2(fields, spec);
  else
    readDecoder(fields, errors, type, spec);
  if (errors.failed())
    return errors.takeError();
  if (Error e = spec.validate())
    return createStringError(inconvertibleErrorCode(), "%s: %s",
                             fileName.str().c_str(),
                             toString(std::move(e)).c_str());
  return spec;
}

} // namespace gai
