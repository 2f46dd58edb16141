// The model description every frontend produces: architecture, and the
// compile and train options of the spec file.
#ifndef GAI_FRONTEND_MODELSPEC_H
#define GAI_FRONTEND_MODELSPEC_H

#include "frontend/GenerationConfig.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace llvm::json {
class Value;
} // namespace llvm::json

namespace gai {

enum class NormKind { RmsNorm, LayerNorm };
/// Gated feed-forward (act(x Wg) * (x Wu)) Wd, or a plain two-layer MLP.
enum class FfnKind { Gated, Mlp };
enum class Activation { Silu, Gelu, GeluTanh, Relu };
enum class PositionKind { Rope, Learned, None };
enum class RopePairing { Half, Interleaved };
/// How parameters are named in the weights file.
enum class ParamNaming {
  HFDecoder, ///< model.layers.N.self_attn.q_proj.weight, … (LLaMA and kin)
  GPT2,      ///< transformer.h.N.attn.c_attn.weight, … (Conv1D: [in, out])
};

/// Options of the spec's `compile` section; gaic flags override them.
struct CompileSection {
  std::string target = "cpu"; ///< cpu, cuda, cuda:sm_80, cuda:sm_90
  std::string dtype = "f32";  ///< f32, bf16, f16
  int64_t maxBatch = 1;
  int64_t maxSeqLen = 0; ///< 0: the model's max_seq_len
};

/// Options of the spec's `train` section; gai-run flags override them.
struct TrainSection {
  int64_t steps = 0;
  int64_t batch = 0;
  int64_t seqLen = 0;
  int64_t microBatches = 1;
  double learningRate = 3e-4;
  double minLearningRate = 0.0;
  int64_t warmupSteps = 0;
  double weightDecay = 0.1;
  double gradClip = 1.0;
  uint64_t seed = 0;
  int64_t evalEvery = 0;
  int64_t checkpointEvery = 0;
  std::vector<std::string> data;
};

/// Linear RoPE scaling (HF's "linear": every inverse frequency divided by
/// `factor`) as Llama 3's rule takes it: with low_freq_factor 1e30 and a
/// context of 1, every wavelength (2π at least) is past context / low and
/// is divided; none is under context / high. One lowering serves both.
inline std::vector<double> linearRopeScaling(double factor) {
  return {factor, 1e30, 2e30, 1.0};
}

struct ModelSpec {
  std::string name;
  std::string family; ///< "gai" for our spec, else the HF model_type
  int64_t vocab = 0;
  int64_t dModel = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kvHeads = 0;
  int64_t headDim = 0;
  FfnKind ffn = FfnKind::Gated;
  Activation activation = Activation::Silu;
  int64_t ffnDim = 0;
  NormKind norm = NormKind::RmsNorm;
  double normEps = 1e-5;
  bool normUnitOffset = false; ///< scale by (1 + w), as Gemma stores it
  PositionKind position = PositionKind::Rope;
  double ropeTheta = 10000.0;
  /// Llama 3.x RoPE scaling: [factor, low_freq_factor, high_freq_factor,
  /// original_max_position_embeddings]; empty: none. Linear scaling is its
  /// special case (linearRopeScaling).
  std::vector<double> ropeLlama3;
  /// Inverse frequencies in place of theta's (YaRN, LongRoPE's short
  /// factors); empty: theta's.
  std::vector<float> ropeFrequencies;
  /// LongRoPE's long factors' frequencies, for a forward pass whose last
  /// position reaches ropeLongFrom (its original context).
  std::vector<float> ropeLongFrequencies;
  int64_t ropeLongFrom = 0;
  double ropeAttentionFactor = 1.0; ///< scales RoPE's cosines and sines
  /// > 0: the sliding-window layers' own RoPE theta, unscaled (Gemma 3's
  /// local layers); the others take the fields above.
  double ropeLocalTheta = 0.0;
  /// > 0: RoPE rotates only the first ropeRotaryDim elements of each head
  /// (partial_rotary_factor); the tables above are that long / 2.
  int64_t ropeRotaryDim = 0;
  RopePairing ropePairing = RopePairing::Half;
  int64_t maxSeqLen = 0;
  int64_t slidingWindow = 0; ///< 0: full causal attention
  bool tiedEmbeddings = false;
  bool scaleEmbeddings = false; ///< multiply embeddings by sqrt(d_model)
  int64_t experts = 0;          ///< 0: dense feed-forward
  int64_t expertsPerToken = 0;
  bool normalizeTopK = true; ///< renormalise the chosen experts' weights
  bool qkvBias = false;
  bool outBias = false;
  bool mlpBias = false;
  double attnSoftcap = 0.0;  ///< 0: none; else c * tanh(s / c)
  double finalSoftcap = 0.0; ///< likewise for the logits
  double attnScale = 0.0;    ///< the scores' scale; 0: 1 / sqrt(head_dim)
  /// Each layer's window (0: full causal); empty: slidingWindow for all.
  std::vector<int64_t> layerWindows;
  /// The layers layer_types calls sliding (their window may be none):
  /// Gemma 3's take ropeLocalTheta. Empty: none named.
  std::vector<bool> slidingLayers;
  bool fusedQkv = false;      ///< one qkv_proj [q + 2 kv, d] (Phi-3)
  bool fusedGateUp = false;   ///< one gate_up_proj [2 ffn, d], gate first (Phi-3)
  bool qkNorm = false;        ///< an RMSNorm over each head's queries and keys (Qwen3)
  bool sandwichNorms = false; ///< norms after attention and the FFN too (Gemma 2)
  ParamNaming naming = ParamNaming::HFDecoder;

  CompileSection compile;
  TrainSection train;
  /// From the generation_config.json beside an HF config (importModel).
  std::optional<GenerationDefaults> generation;

  /// Checks the numbers against each other (heads divide, sizes positive …);
  /// the message names the field.
  llvm::Error validate() const;
};

/// Bounds on what gaic accepts, checked before anything is built or
/// allocated. Real models sit far below them; beyond them a typo (an extra
/// digit in `layers`) would exhaust memory instead of failing.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxExperts = 256;
constexpr int64_t kMaxExpertBlocks = 65536; ///< layers x experts
constexpr int64_t kMaxBytes = int64_t(1) << 40;
/// llvm::json::parse recurses once per level; deeper input exhausts the stack.
constexpr int kMaxJsonDepth = 256;

/// The product of `factors` (all >= 0), or INT64_MAX when it overflows.
int64_t saturatingProduct(std::initializer_list<int64_t> factors);
/// a + b, or INT64_MAX when it overflows (both >= 0).
int64_t saturatingSum(int64_t a, int64_t b);

/// `n` in decimal, or "more than 2^63" when it saturated.
std::string countText(int64_t n);

/// The model's parameter count (biases aside), saturating at INT64_MAX.
int64_t parameterCount(const ModelSpec &spec);

/// Bytes of one element of "f32", "bf16" or "f16".
int64_t dtypeBytes(llvm::StringRef dtype);

/// An error when `bytes` exceeds kMaxBytes: "WHAT would need N bytes (DETAIL),
/// more than the limit of 2^40".
llvm::Error checkByteLimit(const llvm::Twine &what, int64_t bytes,
                           const llvm::Twine &detail);

/// Parses our JSON model spec (docs/spec.md). `fileName` prefixes messages.
llvm::Expected<ModelSpec> parseModelSpec(llvm::StringRef text,
                                         llvm::StringRef fileName);

/// Parses either format: a Hugging Face config.json (it has "model_type") or
/// our spec.
llvm::Expected<ModelSpec> parseAnySpec(llvm::StringRef text,
                                       llvm::StringRef fileName);

/// Reads and parses a spec file.
llvm::Expected<ModelSpec> loadSpecFile(llvm::StringRef path);

/// Parses JSON text, reporting syntax errors as FILE:LINE:COL.
llvm::Expected<llvm::json::Value> parseJsonText(llvm::StringRef text,
                                                llvm::StringRef fileName);

} // namespace gai

#endif // GAI_FRONTEND_MODELSPEC_H
