// The spec and HF config parsers: what they read, and how they reject input.
#include "frontend/ModelSpec.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace gai;

namespace {

std::string errorOf(llvm::StringRef text) {
  llvm::Expected<ModelSpec> spec = parseAnySpec(text, "m.json");
  if (spec) {
    ADD_FAILURE() << "accepted: " << text.str();
    return "";
  }
  return llvm::toString(spec.takeError());
}

constexpr const char *kMinimal = R"({
  "vocab": 512, "d_model": 96, "layers": 3, "heads": 6, "max_seq_len": 64,
  "ffn": {"kind": "gated", "size": 256}
})";

TEST(SpecParser, MinimalSpecGetsDefaults) {
  llvm::Expected<ModelSpec> spec = parseModelSpec(kMinimal, "m.json");
  ASSERT_TRUE(!!spec) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->family, "gai");
  EXPECT_EQ(spec->vocab, 512);
  EXPECT_EQ(spec->kvHeads, 6);
  EXPECT_EQ(spec->headDim, 16);
  EXPECT_EQ(spec->ffn, FfnKind::Gated);
  EXPECT_EQ(spec->activation, Activation::Silu);
  EXPECT_EQ(spec->norm, NormKind::RmsNorm);
  EXPECT_EQ(spec->position, PositionKind::Rope);
  EXPECT_EQ(spec->slidingWindow, 0);
  EXPECT_EQ(spec->compile.target, "cpu");
  EXPECT_EQ(spec->compile.maxBatch, 1);
}

TEST(SpecParser, ReadsEverySection) {
  llvm::Expected<ModelSpec> spec = parseModelSpec(R"({
    "name": "m", "vocab": 256, "d_model": 64, "layers": 2, "heads": 4,
    "kv_heads": 1, "head_dim": 32, "max_seq_len": 128, "sliding_window": 16,
    "tied_embeddings": true, "scale_embeddings": true,
    "attn_softcap": 50, "final_softcap": 30,
    "ffn": {"kind": "gated", "size": 128, "activation": "gelu_tanh"},
    "norm": {"kind": "layer", "eps": 1e-6, "unit_offset": true},
    "position": {"kind": "rope", "theta": 5e5, "style": "interleaved"},
    "moe": {"experts": 8, "top_k": 2, "normalize_top_k": false},
    "bias": {"qkv": true, "out": false, "mlp": true},
    "compile": {"target": "cuda:sm_90", "dtype": "bf16", "max_batch": 8,
                "max_seq_len": 64},
    "train": {"steps": 10, "batch": 4, "seq_len": 64, "micro_batches": 2,
              "lr": 0.001, "min_lr": 1e-5, "warmup_steps": 2,
              "weight_decay": 0.0, "grad_clip": 0.5, "seed": 7,
              "eval_every": 5, "checkpoint_every": 5, "data": ["a.txt", "b.bin"]}
  })", "m.json");
  ASSERT_FALSE(!spec) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->kvHeads, 1);
  EXPECT_EQ(spec->headDim, 32);
  EXPECT_EQ(spec->slidingWindow, 16);
  EXPECT_TRUE(spec->tiedEmbeddings);
  EXPECT_TRUE(spec->scaleEmbeddings);
  EXPECT_EQ(spec->ffn, FfnKind::Gated);
  EXPECT_EQ(spec->activation, Activation::GeluTanh);
  EXPECT_EQ(spec->norm, NormKind::LayerNorm);
  EXPECT_DOUBLE_EQ(spec->normEps, 1e-6);
  EXPECT_TRUE(spec->normUnitOffset);
  EXPECT_DOUBLE_EQ(spec->ropeTheta, 5e5);
  EXPECT_EQ(spec->ropePairing, RopePairing::Interleaved);
  EXPECT_EQ(spec->experts, 8);
  EXPECT_EQ(spec->expertsPerToken, 2);
  EXPECT_FALSE(spec->normalizeTopK);
  EXPECT_TRUE(spec->qkvBias);
  EXPECT_FALSE(spec->outBias);
  EXPECT_TRUE(spec->mlpBias);
  EXPECT_DOUBLE_EQ(spec->attnSoftcap, 50);
  EXPECT_EQ(spec->compile.target, "cuda:sm_90");
  EXPECT_EQ(spec->compile.dtype, "bf16");
  EXPECT_EQ(spec->compile.maxSeqLen, 64);
  EXPECT_EQ(spec->train.microBatches, 2);
  EXPECT_EQ(spec->train.seed, 7u);
  EXPECT_EQ(spec->train.data, (std::vector<std::string>{"a.txt", "b.bin"}));
}

TEST(SpecParser, SyntaxErrorsGiveLineAndColumn) {
  EXPECT_EQ(errorOf("{\n  \"vocab\": 256,\n  oops\n}"),
            "m.json:3:3: invalid JSON: Expected object key");
}

TEST(SpecParser, FieldErrorsNameTheField) {
  EXPECT_EQ(errorOf(R"({"vocab": 256})"), "m.json: field 'd_model': is required");
  EXPECT_EQ(errorOf(R"({"vocab": 256, "d_model": 64, "layers": 0})"),
            "m.json: field 'layers': expected an integer >= 1, got 0");
  EXPECT_EQ(errorOf(R"({"vocab": 2.5})"),
            "m.json: field 'vocab': expected an integer, got 2.5");
  // Found by the fuzzer: huge numbers must be reported, not converted.
  EXPECT_EQ(errorOf(R"({"vocab": 6.4e49})"),
            "m.json: field 'vocab': expected an integer, got "
            "6.4000000000000003e+49");
  EXPECT_EQ(errorOf(R"({"vocab": 4294967296})"),
            "m.json: field 'vocab': expected an integer <= 2147483647, got "
            "4294967296");
  std::string text = kMinimal;
  text.insert(1, "\"ffn_size\": 3,");
  EXPECT_NE(errorOf(text).find("field 'ffn_size': unknown key"),
            std::string::npos);
}

TEST(SpecParser, CrossFieldChecks) {
  EXPECT_EQ(errorOf(R"({"vocab": 256, "d_model": 64, "layers": 2, "heads": 4,
    "max_seq_len": 64, "ffn": {"kind": "mlp", "size": 8},
    "moe": {"experts": 4, "top_k": 2}})"),
            "m.json: field 'ffn.kind': mixture of experts needs the gated "
            "kind");
  EXPECT_EQ(errorOf(R"({"vocab": 256, "d_model": 64, "layers": 2, "heads": 4,
    "max_seq_len": 64, "ffn": {"size": 8}, "compile": {"max_seq_len": 65}})"),
            "m.json: field 'compile.max_seq_len': must be at most the model's "
            "max_seq_len (64), got 65");
  EXPECT_EQ(errorOf(R"({"vocab": 256, "d_model": 64, "layers": 2, "heads": 4,
    "max_seq_len": 64})"),
            "m.json: field 'ffn': is required (an object with kind, size, "
            "activation)");
}

TEST(HFConfig, LlamaFixture) {
  llvm::Expected<ModelSpec> spec =
      loadSpecFile(GAI_FIXTURES_DIR "/hf/llama-tiny/config.json");
  ASSERT_FALSE(!spec) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->family, "llama");
  EXPECT_EQ(spec->naming, ParamNaming::HFDecoder);
  EXPECT_EQ(spec->dModel, 64);
  EXPECT_EQ(spec->heads, 4);
  EXPECT_EQ(spec->kvHeads, 2);
  EXPECT_EQ(spec->headDim, 16);
  EXPECT_EQ(spec->ffnDim, 176);
  EXPECT_EQ(spec->maxSeqLen, 128);
  EXPECT_DOUBLE_EQ(spec->ropeTheta, 10000.0); // from rope_parameters
  EXPECT_FALSE(spec->tiedEmbeddings);
}

TEST(HFConfig, Gpt2Fixture) {
  llvm::Expected<ModelSpec> spec =
      loadSpecFile(GAI_FIXTURES_DIR "/hf/gpt2-tiny/config.json");
  ASSERT_FALSE(!spec) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->naming, ParamNaming::GPT2);
  EXPECT_EQ(spec->norm, NormKind::LayerNorm);
  EXPECT_EQ(spec->position, PositionKind::Learned);
  EXPECT_EQ(spec->ffn, FfnKind::Mlp);
  EXPECT_EQ(spec->ffnDim, 256); // n_inner null: 4 * n_embd
  EXPECT_EQ(spec->activation, Activation::GeluTanh);
  EXPECT_TRUE(spec->tiedEmbeddings);
  EXPECT_TRUE(spec->qkvBias && spec->outBias && spec->mlpBias);
}

TEST(HFConfig, FamilyFeatures) {
  auto load = [](const char *name) {
    llvm::Expected<ModelSpec> spec = loadSpecFile(
        std::string(GAI_FIXTURES_DIR) + "/hf/" + name + "/config.json");
    EXPECT_FALSE(!spec) << llvm::toString(spec.takeError());
    return spec ? *spec : ModelSpec();
  };
  ModelSpec mistral = load("mistral-tiny");
  EXPECT_EQ(mistral.slidingWindow, 8);
  EXPECT_EQ(mistral.kvHeads, 1);
  ModelSpec qwen = load("qwen2-tiny");
  EXPECT_TRUE(qwen.qkvBias);
  EXPECT_FALSE(qwen.outBias);
  EXPECT_TRUE(qwen.tiedEmbeddings);
  EXPECT_EQ(qwen.slidingWindow, 0);
  ModelSpec mixtral = load("mixtral-tiny");
  EXPECT_EQ(mixtral.experts, 4);
  EXPECT_EQ(mixtral.expertsPerToken, 2);
  EXPECT_EQ(mixtral.headDim, 16); // head_dim: null
  ModelSpec gemma = load("gemma-tiny");
  EXPECT_TRUE(gemma.normUnitOffset);
  EXPECT_TRUE(gemma.scaleEmbeddings);
  EXPECT_TRUE(gemma.tiedEmbeddings);
  EXPECT_EQ(gemma.headDim, 32);
  EXPECT_EQ(gemma.activation, Activation::GeluTanh);
  ModelSpec gemma2 = load("gemma2-tiny");
  EXPECT_TRUE(gemma2.sandwichNorms);
  EXPECT_EQ(gemma2.layerWindows, (std::vector<int64_t>{8, 0, 8}));
  EXPECT_DOUBLE_EQ(gemma2.attnSoftcap, 2.0);
  EXPECT_DOUBLE_EQ(gemma2.finalSoftcap, 3.0);
  EXPECT_DOUBLE_EQ(gemma2.attnScale, 1.0 / std::sqrt(24.0));
  ModelSpec phi3 = load("phi3-tiny");
  EXPECT_TRUE(phi3.fusedQkv && phi3.fusedGateUp);
  ModelSpec qwen3 = load("qwen3-tiny");
  EXPECT_TRUE(qwen3.qkNorm);
  EXPECT_FALSE(qwen3.qkvBias);
  ModelSpec llama3 = load("llama3-tiny");
  EXPECT_EQ(llama3.ropeLlama3, (std::vector<double>{8.0, 0.5, 2.0, 16.0}));
}

TEST(HFConfig, LinearRopeScalingIsLlama3sRuleDividingEveryFrequency) {
  for (const char *key : {R"("rope_type": "linear")", R"("type": "linear")"}) {
    llvm::Expected<ModelSpec> spec = parseAnySpec(
        std::string(R"({"model_type": "llama", "vocab_size": 256, "hidden_size": 64,
          "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
          "max_position_embeddings": 64, "rope_scaling": {)") +
            key + R"(, "factor": 4.0}})",
        "m.json");
    ASSERT_TRUE(static_cast<bool>(spec)) << llvm::toString(spec.takeError());
    EXPECT_EQ(spec->ropeLlama3, linearRopeScaling(4.0));
  }
  EXPECT_EQ(errorOf(R"({"model_type": "llama", "vocab_size": 256, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 64, "rope_scaling": {"type": "linear", "factor": 0.5}})"),
            "m.json: field 'rope_scaling.factor': expected a number >= 1, got 0.5");
  // llama3's low_freq_factor divides the context: zero is named, not left
  // to the RoPE op's verifier.
  EXPECT_EQ(errorOf(R"({"model_type": "llama", "vocab_size": 256, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 64, "rope_scaling": {"rope_type": "llama3", "factor": 8,
    "low_freq_factor": 0, "high_freq_factor": 4, "original_max_position_embeddings": 64}})"),
            "m.json: field 'rope_scaling.low_freq_factor': expected a number > 0, got 0");
}

/// Every 9th of `inv` against transformers' values, to f32 rounding.
void expectEveryNinth(const std::vector<float> &inv, std::vector<double> want) {
  ASSERT_EQ(inv.size(), 64u);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(inv[9 * i], want[i], 2e-7 * want[i]) << "pair " << 9 * i;
}

// The tables against transformers 5's _compute_yarn_parameters and
// _compute_longrope_parameters (values printed by it for these configs).
TEST(HFConfig, YarnFrequenciesAreTransformers) {
  llvm::Expected<ModelSpec> qwen = parseAnySpec(R"({"model_type": "qwen2", "vocab_size": 256,
    "hidden_size": 1024, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 131072,
    "rope_scaling": {"type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
                     "original_max_position_embeddings": 32768}})",
                                                "m.json");
  ASSERT_TRUE(static_cast<bool>(qwen)) << llvm::toString(qwen.takeError());
  expectEveryNinth(qwen->ropeFrequencies,
                   {1.0, 0.14330126345157623, 0.02053525112569332, 0.002423422411084175,
                    0.0001798411540221423, 1.5107409126358107e-05, 2.1649109385180054e-06,
                    3.102344408034696e-07});
  EXPECT_NEAR(qwen->ropeAttentionFactor, 1.138629436111989, 1e-12);
  EXPECT_TRUE(qwen->ropeLongFrequencies.empty());
  // mscale and mscale_all_dim (DeepSeek's form) set the scale.
  llvm::Expected<ModelSpec> mscale = parseAnySpec(R"({"model_type": "qwen2", "vocab_size": 256,
    "hidden_size": 1024, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 8, "num_key_value_heads": 2, "max_position_embeddings": 131072,
    "rope_theta": 10000.0, "rope_scaling": {"rope_type": "yarn", "factor": 40.0,
    "original_max_position_embeddings": 4096, "mscale": 1.0, "mscale_all_dim": 0.707,
    "beta_fast": 32, "beta_slow": 1}})",
                                                  "m.json");
  ASSERT_TRUE(static_cast<bool>(mscale)) << llvm::toString(mscale.takeError());
  expectEveryNinth(mscale->ropeFrequencies,
                   {1.0, 0.2738419771194458, 0.07498941570520401, 0.015144746750593185,
                    0.002249365206807852, 9.624545054975897e-05, 1.0542412383074407e-05,
                    2.886954689529375e-06});
  EXPECT_NEAR(mscale->ropeAttentionFactor, 1.0857263992561355, 1e-12);
}

TEST(HFConfig, LongRopeTakesShortAndLongFactorsAndTheOriginalContext) {
  llvm::Expected<ModelSpec> phi = parseAnySpec(R"({"model_type": "phi3", "vocab_size": 256,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 131072,
    "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
    "rope_scaling": {"type": "longrope", "short_factor": [1, 1, 1, 1, 1, 1, 1, 2],
                     "long_factor": [1, 2, 4, 8, 16, 32, 64, 128]}})",
                                             "m.json");
  ASSERT_TRUE(static_cast<bool>(phi)) << llvm::toString(phi.takeError());
  ASSERT_EQ(phi->ropeFrequencies.size(), 8u);
  ASSERT_EQ(phi->ropeLongFrequencies.size(), 8u);
  EXPECT_FLOAT_EQ(phi->ropeFrequencies[0], 1.0f);
  EXPECT_FLOAT_EQ(phi->ropeFrequencies[7], 0.5f / std::pow(10000.0f, 14.0f / 16.0f));
  EXPECT_FLOAT_EQ(phi->ropeLongFrequencies[3], 1.0f / (8.0f * std::pow(10000.0f, 6.0f / 16.0f)));
  EXPECT_EQ(phi->ropeLongFrom, 4096);
  // sqrt(1 + ln(131072 / 4096) / ln(4096)), Phi-3.5's 1.19.
  EXPECT_NEAR(phi->ropeAttentionFactor, std::sqrt(1 + std::log(32.0) / std::log(4096.0)), 1e-12);
  // Dynamic NTK leaves theta's frequencies within max_position_embeddings.
  llvm::Expected<ModelSpec> dynamic = parseAnySpec(R"({"model_type": "llama", "vocab_size": 256,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 64,
    "rope_scaling": {"type": "dynamic", "factor": 2.0}})",
                                                 "m.json");
  ASSERT_TRUE(static_cast<bool>(dynamic)) << llvm::toString(dynamic.takeError());
  EXPECT_TRUE(dynamic->ropeFrequencies.empty() && dynamic->ropeLlama3.empty());
  EXPECT_EQ(dynamic->ropeAttentionFactor, 1.0);
}

// Gemma 3 as the hub's configs have it (transformers 4.x keys): global
// layers at rope_theta with the scaling, every sixth; the others slide with
// rope_local_base_freq.
TEST(HFConfig, Gemma3SlidingLayersTakeTheirOwnTheta) {
  llvm::Expected<ModelSpec> spec = parseAnySpec(R"({"model_type": "gemma3_text",
    "vocab_size": 256, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 7,
    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 32,
    "max_position_embeddings": 32768, "query_pre_attn_scalar": 32, "sliding_window": 512,
    "sliding_window_pattern": 6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "final_logit_softcapping": null, "attn_logit_softcapping": null})",
                                                "m.json");
  ASSERT_TRUE(static_cast<bool>(spec)) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->layerWindows, (std::vector<int64_t>{512, 512, 512, 512, 512, 0, 512}));
  EXPECT_EQ(spec->ropeTheta, 1000000.0);
  EXPECT_EQ(spec->ropeLocalTheta, 10000.0);
  EXPECT_EQ(spec->ropeLlama3, linearRopeScaling(8.0));
  EXPECT_TRUE(spec->qkNorm && spec->sandwichNorms && spec->normUnitOffset &&
              spec->scaleEmbeddings && spec->tiedEmbeddings);
  EXPECT_EQ(spec->attnSoftcap, 0.0);
  EXPECT_EQ(spec->finalSoftcap, 0.0);
  // transformers 5's form: one dict a layer type; the sliding layers' must
  // be unscaled.
  EXPECT_EQ(errorOf(R"({"model_type": "gemma3_text", "vocab_size": 256, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 64, "sliding_window": 8,
    "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                        "sliding_attention": {"rope_type": "linear", "factor": 2.0}}})"),
            "m.json: field 'rope_parameters.sliding_attention.rope_type': RoPE scaling "
            "'linear' of the sliding layers is not supported yet (need \"default\")");
}

TEST(HFConfig, PartialRotaryRotatesTheFirstElementsOfPhi3Heads) {
  llvm::Expected<ModelSpec> spec = parseAnySpec(R"({"model_type": "phi3", "vocab_size": 256,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 64, "partial_rotary_factor": 0.3,
    "rope_scaling": {"type": "longrope", "short_factor": [1, 2], "long_factor": [3, 4]},
    "original_max_position_embeddings": 32})",
                                                "m.json");
  ASSERT_TRUE(static_cast<bool>(spec)) << llvm::toString(spec.takeError());
  EXPECT_EQ(spec->ropeRotaryDim, 4); // int(16 × 0.3)
  ASSERT_EQ(spec->ropeFrequencies.size(), 2u);
  EXPECT_FLOAT_EQ(spec->ropeFrequencies[1], 1.0f / (2.0f * std::pow(10000.0f, 0.5f)));
}

// Qwen's windows: from max_window_layers on, and only with
// use_sliding_window (transformers 5 writes layer_types either way).
TEST(HFConfig, QwenSlidesFromMaxWindowLayersOn) {
  auto qwen = [](const char *extra) {
    return parseAnySpec(std::string(R"({"model_type": "qwen2", "vocab_size": 256,
      "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
      "num_attention_heads": 4, "max_position_embeddings": 64, "sliding_window": 16, )") +
                            extra + "}",
                        "m.json");
  };
  llvm::Expected<ModelSpec> sliding = qwen(R"("use_sliding_window": true, "max_window_layers": 2)");
  ASSERT_TRUE(static_cast<bool>(sliding)) << llvm::toString(sliding.takeError());
  EXPECT_EQ(sliding->layerWindows, (std::vector<int64_t>{0, 0, 16, 16}));
  llvm::Expected<ModelSpec> off = qwen(R"("use_sliding_window": false,
    "layer_types": ["full_attention", "full_attention", "sliding_attention", "sliding_attention"])");
  ASSERT_TRUE(static_cast<bool>(off)) << llvm::toString(off.takeError());
  EXPECT_TRUE(off->layerWindows.empty());
  EXPECT_EQ(off->slidingWindow, 0);
  EXPECT_EQ(errorOf(R"({"model_type": "qwen3", "vocab_size": 256, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "max_position_embeddings": 64, "use_sliding_window": true,
    "layer_types": ["full_attention"]})"),
            "m.json: field 'layer_types': expected one entry a layer (2), got 1");
}

// Where transformers' config classes fill in or rename, the spec follows.
TEST(HFConfig, DefaultsAndRenamingsFollowTransformers) {
  auto parse = [](const std::string &text) {
    llvm::Expected<ModelSpec> spec = parseAnySpec(text, "m.json");
    EXPECT_TRUE(static_cast<bool>(spec)) << llvm::toString(spec.takeError());
    return spec ? *spec : ModelSpec();
  };
  const std::string small = R"("vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 64)";
  // Phi-3's config class takes "yarn" (and "su") for LongRoPE.
  ModelSpec phi = parse(R"({"model_type": "phi3", )" + small + R"(, "original_max_position_embeddings": 32,
    "rope_scaling": {"type": "yarn", "short_factor": [1, 1, 1, 1, 1, 1, 1, 1],
                     "long_factor": [2, 2, 2, 2, 2, 2, 2, 2]}})");
  EXPECT_EQ(phi.ropeLongFrequencies.size(), 8u);
  EXPECT_EQ(phi.ropeLongFrom, 32);
  // A rope_parameters entry of 1.0 wins over a top-level partial factor.
  ModelSpec whole = parse(R"({"model_type": "phi3", )" + small + R"(, "partial_rotary_factor": 0.5,
    "rope_parameters": {"rope_type": "default", "partial_rotary_factor": 1.0}})");
  EXPECT_EQ(whole.ropeRotaryDim, 0);
  // Qwen: use_sliding_window with a null window slides nowhere.
  ModelSpec qwen = parse(R"({"model_type": "qwen2", )" + small +
                         R"(, "use_sliding_window": true, "sliding_window": null,
    "max_window_layers": 0})");
  EXPECT_TRUE(qwen.layerWindows.empty());
  // Gemma 3 without sliding_window or query_pre_attn_scalar: 4096 and 256.
  ModelSpec gemma = parse(R"({"model_type": "gemma3_text", )" + small +
                          R"(, "layer_types": ["sliding_attention", "full_attention"]})");
  EXPECT_EQ(gemma.layerWindows, (std::vector<int64_t>{4096, 0}));
  EXPECT_DOUBLE_EQ(gemma.attnScale, 1.0 / 16.0);
  // A null window: the sliding layers attend to all, with their own theta.
  ModelSpec unwindowed = parse(R"({"model_type": "gemma3_text", )" + small +
                               R"(, "sliding_window": null,
    "layer_types": ["sliding_attention", "full_attention"]})");
  EXPECT_EQ(unwindowed.layerWindows, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(unwindowed.slidingLayers, (std::vector<bool>{true, false}));
  EXPECT_EQ(unwindowed.ropeLocalTheta, 10000.0);
}

TEST(HFConfig, RejectsWhatWeDoNotBuild) {
  EXPECT_EQ(errorOf(R"({"model_type": "llama", "vocab_size": 256,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 64,
    "rope_theta": 1e4, "partial_rotary_factor": 0.5})"),
            "m.json: field 'partial_rotary_factor': partial rotary "
            "embeddings are supported for phi3 only (need 1.0)");
  // Phi-3's: head_dim 16 × 0.3 is 4.8, which transformers truncates to 4;
  // × 0.2 is 3, odd.
  EXPECT_EQ(errorOf(R"({"model_type": "phi3", "vocab_size": 256,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 64,
    "partial_rotary_factor": 0.2})"),
            "m.json: field 'partial_rotary_factor': expected head_dim (16) × the factor to give "
            "an even number of elements in [2, head_dim], got 3");
  EXPECT_EQ(errorOf(R"({"model_type": "gemma2", "vocab_size": 256,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "max_position_embeddings": 64, "sliding_window": 8,
    "layer_types": ["sliding_attention"]})"),
            "m.json: field 'layer_types': expected one entry a layer (2), got 1");
  EXPECT_EQ(errorOf(R"({"model_type": "gpt2", "vocab_size": 256, "n_embd": 60,
    "n_layer": 2, "n_head": 8, "n_positions": 64})"),
            "m.json: field 'n_head': must divide the hidden size 60 when "
            "head_dim is not given, got 8");
}

} // namespace
