// Text generation over an artifact's prefill and decode entry points.
#ifndef GAI_GENERATE_H
#define GAI_GENERATE_H

#include "gai/Session.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <vector>

namespace gai {

/// Temperatures below this are greedy: logits / T must stay finite (a
/// logit of 1e3 at 1e-5 is 1e8, far inside float's range), and at such a
/// temperature sampling is the argmax unless two logits tie to ~1e-4.
inline constexpr float kGreedyTemperature = 1e-5f;

struct SamplingOptions {
  float temperature = 0.0f; ///< below kGreedyTemperature: greedy (argmax)
  int64_t topK = 0;         ///< 0: all tokens
  float topP = 1.0f;        ///< nucleus: the smallest set with this mass
  uint64_t seed = 0;
  /// After top-p, drop the tokens less likely than this fraction of the
  /// likeliest (HF's min_p); 0: none.
  float minP = 0.0f;
  /// HF's repetition_penalty: before anything else, each token of the row so
  /// far (prompt and output) has its logit divided by this where positive,
  /// multiplied where negative; 1: none. Greedy decoding applies it too.
  float repetitionPenalty = 1.0f;
};

/// Applies `penalty` as SamplingOptions::repetitionPenalty says to `logits`
/// [vocab], once for each distinct id of `prompt` and `output`.
void applyRepetitionPenalty(float *logits, int64_t vocab, const std::vector<int32_t> &prompt,
                            const std::vector<int32_t> &output, float penalty);

/// Picks tokens from logits. Deterministic for a seed.
class Sampler {
public:
  explicit Sampler(const SamplingOptions &options);
  /// The token for one row of logits; -1 where every logit is NaN (the
  /// model computed no numbers: nothing to pick).
  int32_t sample(const float *logits, int64_t vocab);

private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

struct GenerateOptions {
  int64_t maxNewTokens = 32;
  /// Any of these ends a row; it is kept in the output.
  std::vector<int32_t> stopTokens;
  SamplingOptions sampling;
  /// Greedy decoding picks tokens on the device where the session can
  /// (Session::decodeGreedy), a chunk of steps per trip to the host; false:
  /// the host picks every token. The tokens are the same either way.
  bool greedyOnDevice = true;
};

struct GenerateStats {
  int64_t prefillTokens = 0; ///< prompt tokens processed
  /// Prompt tokens the KV cache already held (a conversation's earlier
  /// turns), which were not prefilled again.
  int64_t cachedTokens = 0;
  double prefillSeconds = 0;
  int64_t decodeTokens = 0; ///< tokens made by decode steps
  double decodeSeconds = 0;
};

/// Called with (prompt index, token) as each token is made.
using TokenCallback = std::function<void(size_t, int32_t)>;

/// Generates a continuation of each prompt. Prompts run in batches of the
/// artifact's batch size; each batch is prefilled in chunks of its prefill
/// length (the last chunk of a row ends at its last token, so no chunk
/// writes past it), then decoded one token per step over the KV cache.
/// A row ends at a stop token, after maxNewTokens, or when the context
/// is full. A prompt longer than the context is an error.
StatusOr<std::vector<std::vector<int32_t>>>
generate(Session &session, const std::vector<std::vector<int32_t>> &prompts,
         const GenerateOptions &options, const TokenCallback &onToken = {},
         GenerateStats *stats = nullptr);

/// A conversation with a model, kept in the session's KV cache across
/// replies (batch row 0; other rows repeat it). Each reply is given the
/// whole conversation so far as ids and prefills only what follows the
/// longest prefix of it the cache holds: the earlier turns and replies,
/// when the chat template renders them as they were, stay where they are.
/// The session is the conversation's alone while it lives.
class Conversation {
public:
  /// Empties the session's cache.
  explicit Conversation(Session &session);
  /// Continues `prompt` until a stop token, options.maxNewTokens or the end
  /// of the context, calling `onToken` with each token made; returns them.
  /// A prompt longer than the context is an error (drop earlier turns).
  StatusOr<std::vector<int32_t>>
  reply(const std::vector<int32_t> &prompt, const GenerateOptions &options,
        const std::function<void(int32_t)> &onToken = {},
        GenerateStats *stats = nullptr);
  /// The tokens whose keys and values the cache holds, in order: the last
  /// prompt and what was made but its last token, which was never fed back.
  const std::vector<int32_t> &cached() const { return cached_; }
  /// The positions the cache holds.
  int64_t context() const;

private:
  Session &session_;
  std::vector<int32_t> cached_;
};

/// The options an artifact's generation defaults (an HF
/// generation_config.json, recorded by gaic) give, as HF reads them: eos ids
/// become stop tokens (but for ids outside `vocab`, which no row can pick: a
/// small model may keep its tokenizer's ids); do_sample true samples at the
/// recorded temperature, top-k and top-p (HF's 1, 50 and 1 where absent),
/// otherwise decoding is greedy; max_new_tokens, or max_length less the
/// longest prompt, is the length. What they leave unset keeps `base`'s.
GenerateOptions withGenerationDefaults(const LoadedArtifact &artifact, int64_t vocab,
                                       int64_t longestPrompt, GenerateOptions base);

} // namespace gai

#endif // GAI_GENERATE_H
