// Hugging Face tensor names for the decoder families and GPT-2.
#include "frontend/ParamNames.h"

namespace gai {

std::string ParamNames::embedding() const {
  return gpt2() ? "transformer.wte.weight" : "model.embed_tokens.weight";
}
std::string ParamNames::positionEmbedding() const {
  return gpt2() ? "transformer.wpe.weight" : "model.embed_positions.weight";
}
std::string ParamNames::finalNorm() const {
  return gpt2() ? "transformer.ln_f.weight" : "model.norm.weight";
}
std::string ParamNames::finalNormBias() const {
  return gpt2() ? "transformer.ln_f.bias" : "model.norm.bias";
}
std::string ParamNames::lmHead() const { return "lm_head.weight"; }

std::string ParamNames::layerScope(int64_t layer) const {
  return "layers." + std::to_string(layer);
}

std::string ParamNames::prefix(int64_t layer) const {
  return (gpt2() ? "transformer.h." : "model.layers.") +
         std::to_string(layer) + ".";
}

LayerNames ParamNames::layer(int64_t layer) const {
  std::string p = prefix(layer);
  if (gpt2())
    return {p + "ln_1.weight", p + "ln_1.bias", p + "ln_2.weight",
            p + "ln_2.bias"};
  if (spec.sandwichNorms)
    return {p + "input_layernorm.weight", "", p + "pre_feedforward_layernorm.weight", "",
            p + "post_attention_layernorm.weight", p + "post_feedforward_layernorm.weight"};
  return {p + "input_layernorm.weight", p + "input_layernorm.bias",
          p + "post_attention_layernorm.weight",
          p + "post_attention_layernorm.bias"};
}

AttentionNames ParamNames::attention(int64_t layer) const {
  AttentionNames n;
  if (gpt2()) {
    std::string p = prefix(layer) + "attn.";
    n.qkvWeight = p + "c_attn.weight";
    n.qkvBias = p + "c_attn.bias";
    n.o = p + "c_proj.weight";
    n.oBias = p + "c_proj.bias";
    return n;
  }
  std::string p = prefix(layer) + "self_attn.";
  n.q = p + "q_proj.weight";
  n.k = p + "k_proj.weight";
  n.v = p + "v_proj.weight";
  n.o = p + "o_proj.weight";
  n.qBias = p + "q_proj.bias";
  n.kBias = p + "k_proj.bias";
  n.vBias = p + "v_proj.bias";
  n.oBias = p + "o_proj.bias";
  n.qkvWeight = p + "qkv_proj.weight";
  n.qNorm = p + "q_norm.weight";
  n.kNorm = p + "k_norm.weight";
  return n;
}

FeedForwardNames ParamNames::feedForward(int64_t layer, int64_t expert) const {
  if (gpt2()) {
    std::string p = prefix(layer) + "mlp.";
    return {"", p + "c_fc.weight", p + "c_proj.weight",
            "", p + "c_fc.bias",   p + "c_proj.bias"};
  }
  if (expert >= 0) { // Mixtral: w1 gate, w3 up, w2 down
    std::string p = prefix(layer) + "block_sparse_moe.experts." +
                    std::to_string(expert) + ".";
    return {p + "w1.weight", p + "w3.weight", p + "w2.weight",
            p + "w1.bias",   p + "w3.bias",   p + "w2.bias"};
  }
  std::string p = prefix(layer) + "mlp.";
  return {p + "gate_proj.weight", p + "up_proj.weight", p + "down_proj.weight",
          p + "gate_proj.bias",   p + "up_proj.bias",   p + "down_proj.bias",
          p + "gate_up_proj.weight"};
}

std::string ParamNames::router(int64_t layer) const {
  return prefix(layer) + "block_sparse_moe.gate.weight";
}

} // namespace gai
