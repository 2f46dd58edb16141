// Parameter names of the weights file, per naming scheme (HF decoder, GPT-2).
#ifndef GAI_FRONTEND_PARAMNAMES_H
#define GAI_FRONTEND_PARAMNAMES_H

#include "frontend/ModelSpec.h"

#include <string>

namespace gai {

struct AttentionNames {
  std::string q, k, v, o, qBias, kBias, vBias, oBias;
  std::string qkvWeight, qkvBias; ///< GPT-2's (and Phi-3's) fused projection
  std::string qNorm, kNorm;       ///< Qwen3's per-head norms
};

struct FeedForwardNames {
  std::string gate, up, down, gateBias, upBias, downBias;
  std::string gateUp; ///< Phi-3's fused gate and up projection
};

struct LayerNames {
  std::string attnNorm, attnNormBias, ffnNorm, ffnNormBias;
  std::string postAttnNorm, postFfnNorm; ///< Gemma 2's norms of each block's output
};

class ParamNames {
public:
  explicit ParamNames(const ModelSpec &spec) : spec(spec) {}

  std::string embedding() const;
  std::string positionEmbedding() const;
  std::string finalNorm() const;
  std::string finalNormBias() const;
  std::string lmHead() const;
  /// A short scope for locations, e.g. "layers.3".
  std::string layerScope(int64_t layer) const;
  LayerNames layer(int64_t layer) const;
  AttentionNames attention(int64_t layer) const;
  /// `expert` < 0: the dense feed-forward of the layer.
  FeedForwardNames feedForward(int64_t layer, int64_t expert) const;
  std::string router(int64_t layer) const;

private:
  std::string prefix(int64_t layer) const;
  bool gpt2() const { return spec.naming == ParamNaming::GPT2; }
  const ModelSpec &spec;
};

} // namespace gai

#endif // GAI_FRONTEND_PARAMNAMES_H
