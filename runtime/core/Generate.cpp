// Prefill and decode over the KV cache, with sampling.
#include "gai/Generate.h"

#include "gai/FloatConvert.h"
#include "format/artifact_generated.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace gai {

Sampler::Sampler(const SamplingOptions &options)
    : options_(options), rng_(options.seed) {}

namespace {

/// The first index of the largest logit (NaNs never win), as
/// std::max_element picks it. Two passes, the first over independent lanes,
/// because max_element's running index keeps it scalar and a step's vocabulary
/// is large.
int64_t firstLargest(const float *x, int64_t n) {
  constexpr int kLanes = 16;
  float lane[kLanes];
  for (float &l : lane)
    l = -INFINITY;
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j)
      lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  float best = -INFINITY;
  for (float l : lane)
    best = l > best ? l : best;
  for (; i < n; ++i)
    best = x[i] > best ? x[i] : best;
  for (int64_t k = 0; k < n; ++k)
    if (x[k] == best)
      return k;
  return -1; // every logit is NaN
}

} // namespace

void applyRepetitionPenalty(float *logits, int64_t vocab, const std::vector<int32_t> &prompt,
                            const std::vector<int32_t> &output, float penalty) {
  std::vector<bool> seen(static_cast<size_t>(vocab), false);
  for (const std::vector<int32_t> *ids : {&prompt, &output})
    for (int32_t id : *ids) {
      if (id < 0 || id >= vocab || seen[id])
        continue;
      seen[id] = true;
      logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
    }
}

int32_t Sampler::sample(const float *logits, int64_t vocab) {
  if (!(options_.temperature >= kGreedyTemperature))
    return static_cast<int32_t>(firstLargest(logits, vocab));
  candidates_.clear();
  int64_t nans = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    // NaN would break the sort's ordering; it can never be drawn.
    float scaled = logits[i] / options_.temperature;
    nans += std::isnan(scaled);
    candidates_.emplace_back(std::isnan(scaled) ? -INFINITY : scaled,
                             static_cast<int32_t>(i));
  }
  if (nans == vocab)
    return -1;
  // Largest first; ties to the lower id, so a seed always gives one result.
  auto byLogit = [](const auto &a, const auto &b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  int64_t keep = options_.topK > 0 ? std::min<int64_t>(options_.topK, vocab) : vocab;
  std::partial_sort(candidates_.begin(), candidates_.begin() + keep,
                    candidates_.end(), byLogit);
  candidates_.resize(keep);
  double max = candidates_.front().first, total = 0.0;
  if (!std::isfinite(max)) // an infinite logit (or all -inf): exp cannot weigh it
    return candidates_.front().second;
  std::vector<double> weight(keep);
  for (int64_t i = 0; i < keep; ++i)
    total += weight[i] = std::exp(candidates_[i].first - max);
  if (options_.topP < 1.0f) {
    double mass = 0.0;
    int64_t cut = 0;
    while (cut < keep && mass < options_.topP * total)
      mass += weight[cut++];
    keep = std::max<int64_t>(cut, 1);
    total = mass > 0 ? mass : weight[0];
  }
  if (options_.minP > 0.0f) {
    // Sorted largest first, so the survivors are a prefix; weight[0] is the
    // likeliest's, and the ratios are the probabilities' whatever the sum.
    int64_t cut = 1;
    double mass = weight[0];
    while (cut < keep && weight[cut] >= options_.minP * weight[0])
      mass += weight[cut++];
    keep = cut;
    total = mass;
  }
  // A uniform double in [0, 1) from 53 random bits: the same on every
  // platform, unlike std::uniform_real_distribution.
  double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  for (int64_t i = 0; i < keep; ++i) {
    if (u < weight[i])
      return candidates_[i].second;
    u -= weight[i];
  }
  return candidates_[keep - 1].second;
}

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

/// Row `b` of the logits as floats (bf16 and f16 logits are widened).
const float *logitsRow(const TensorRef &logits, int64_t b, int64_t vocab,
                       std::vector<float> &scratch) {
  if (logits.dtype == DType::F32)
    return logits.as<float>() + b * vocab;
  scratch.resize(static_cast<size_t>(vocab));
  convertFloats(logits.data + b * vocab * logits.elementBytes, logits.dtype,
                scratch.data(), DType::F32, static_cast<size_t>(vocab));
  return scratch.data();
}

} // namespace

namespace {

/// The prefill and decode entry points' tensors and sizes.
struct Entries {
  std::vector<TensorRef> prefillIn, decodeIn;
  TensorRef prefillLogits, decodeLogits;
  int64_t batch = 0, chunk = 0, vocab = 0, context = 0;
  bool promptLast = false; ///< prefill's third input is `prompt_last` (LongRoPE)

  static StatusOr<Entries> of(Session &session) {
    if (!session.hasEntry("prefill") || !session.hasEntry("decode"))
      return Status::error("the artifact has no prefill and decode entry "
                           "points; compile it with --entries=prefill,decode");
    Entries e;
    e.prefillIn = session.inputs("prefill");
    e.decodeIn = session.inputs("decode");
    e.prefillLogits = session.outputs("prefill").at(0);
    e.decodeLogits = session.outputs("decode").at(0);
    if (e.prefillIn.size() < 3 || e.decodeIn.size() < 3 ||
        e.prefillIn[0].shape.size() != 2 || e.prefillLogits.shape.size() != 2)
      return Status::error("the prefill and decode entry points do not have "
                           "the expected (tokens, start, last) → logits form");
    e.promptLast = e.prefillIn[2].name == "prompt_last";
    e.batch = e.prefillIn[0].shape[0];
    e.chunk = e.prefillIn[0].shape[1];
    e.vocab = e.prefillLogits.shape[1];
    const format::CompileOptions *compiled =
        session.artifact().root().options();
    e.context = compiled ? compiled->max_seq_len() : 0;
    return e;
  }

  /// A prompt this model can take: not empty, inside the context and the
  /// vocabulary; `name` says which in errors.
  Status check(const std::vector<int32_t> &prompt,
               const std::string &name) const {
    if (prompt.empty())
      return Status::error(name + " is empty");
    if (static_cast<int64_t>(prompt.size()) > context)
      return Status::error(name + " has " + std::to_string(prompt.size()) +
                           " tokens; the context holds " +
                           std::to_string(context) +
                           " (recompile with a larger --seq-len)");
    for (int32_t id : prompt)
      if (id < 0 || id >= vocab)
        return Status::error(name + " has token id " + std::to_string(id) +
                             ", outside the vocabulary of " +
                             std::to_string(vocab));
    return Status::ok();
  }

  Status checkStops(const std::vector<int32_t> &stops) const {
    for (int32_t stop : stops)
      if (stop < 0 || stop >= vocab)
        return Status::error("the stop token " + std::to_string(stop) +
                             " is outside the vocabulary of " +
                             std::to_string(vocab));
    return Status::ok();
  }
};

/// One batch of rows, each a prompt of which the cache already holds the
/// first `held` tokens (less than its length): prefills the rest and
/// decodes each row's continuation into `results`. Rows past the last
/// prompt repeat the first; their output is dropped.
struct BatchRun {
  Session &session;
  const Entries &e;
  const GenerateOptions &options;
  Sampler &sampler;
  std::vector<const std::vector<int32_t> *> prompts;
  std::vector<int64_t> held;
  std::vector<std::vector<int32_t>> results;

  Status run(const std::function<void(size_t, int32_t)> &onToken,
             GenerateStats *stats);
};

Status BatchRun::run(const std::function<void(size_t, int32_t)> &onToken,
                     GenerateStats *stats) {
  const int64_t batch = e.batch, chunk = e.chunk, vocab = e.vocab,
                context = e.context;
  const size_t rows = prompts.size();
  results.assign(rows, {});
  auto stops = [&](int32_t token) {
    return std::find(options.stopTokens.begin(), options.stopTokens.end(),
                     token) != options.stopTokens.end();
  };
  // The device's greedy pick sees raw logits: a penalty needs the host.
  const float penalty = options.sampling.repetitionPenalty;
  const bool onDevice = options.greedyOnDevice &&
                        !(options.sampling.temperature >= kGreedyTemperature) &&
                        penalty == 1.0f && session.greedyStepsAtOnce() > 0;
  std::vector<float> scratch, penalized;
  // Row `row`'s logits, penalised for its tokens so far where asked.
  auto scored = [&](const float *logits, size_t row) {
    if (penalty == 1.0f)
      return logits;
    penalized.assign(logits, logits + vocab);
    applyRepetitionPenalty(penalized.data(), vocab, *prompts[row], results[row],
                           penalty);
    return static_cast<const float *>(penalized.data());
  };
  auto rowOf = [&](int64_t b) { return static_cast<size_t>(b) < rows ? b : 0; };
  auto promptOf = [&](int64_t b) -> const std::vector<int32_t> & {
    return *prompts[rowOf(b)];
  };

  // Prefill the tokens after those held, in chunks. A row's last chunk ends
  // at its last token (it may start before, recomputing cache slots the
  // tokens before it already fill, with the same tokens), so no row writes
  // past its prompt unless the prompt is shorter than a chunk.
  auto chunksOf = [&](int64_t b) {
    int64_t fresh = static_cast<int64_t>(promptOf(b).size()) - held[rowOf(b)];
    return (fresh + chunk - 1) / chunk;
  };
  int64_t chunks = 0;
  for (int64_t b = 0; b < batch; ++b)
    chunks = std::max(chunks, chunksOf(b));
  auto start = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < chunks; ++c) {
    int32_t *tokens = e.prefillIn[0].as<int32_t>();
    int32_t *starts = e.prefillIn[1].as<int32_t>();
    int32_t *lasts = e.prefillIn[2].as<int32_t>();
    for (int64_t b = 0; b < batch; ++b) {
      const std::vector<int32_t> &prompt = promptOf(b);
      int64_t n = static_cast<int64_t>(prompt.size());
      int64_t own = std::min(c, chunksOf(b) - 1);
      bool final = own == chunksOf(b) - 1;
      int64_t at = final ? std::max<int64_t>(0, n - chunk)
                         : held[rowOf(b)] + own * chunk;
      for (int64_t t = 0; t < chunk; ++t)
        tokens[b * chunk + t] = at + t < n ? prompt[at + t] : 0;
      starts[b] = static_cast<int32_t>(at);
      // `last`: the logits' row. A LongRoPE artifact's `prompt_last` is the
      // prompt's last token from this chunk's start, past a chunk before
      // the final one (the logits take the chunk's last row at most): its
      // factors follow the prompt's last position, as transformers' do.
      lasts[b] = static_cast<int32_t>(final || e.promptLast ? n - 1 - at : chunk - 1);
    }
    if (Status s = session.run("prefill"); !s)
      return s;
  }
  if (stats) {
    stats->prefillSeconds += secondsSince(start);
    for (size_t r = 0; r < rows; ++r) {
      stats->prefillTokens +=
          static_cast<int64_t>(prompts[r]->size()) - held[r];
      stats->cachedTokens += held[r];
    }
  }

  // A row whose logits are all NaN: an error, not token 0 (a weight file
  // holding NaN or Inf gives these).
  auto sample = [&](const float *logits, int64_t b) -> StatusOr<int32_t> {
    int32_t token = sampler.sample(scored(logits, b), vocab);
    if (token < 0)
      return Status::error("generation: every logit of prompt " + std::to_string(b) +
                           " at new token " + std::to_string(results[b].size()) +
                           " is NaN: the weights or the prompt make the model compute "
                           "NaN (check the weights for NaN or Inf values)");
    return token;
  };
  std::vector<bool> done(batch, false);
  for (int64_t b = 0; b < batch; ++b) {
    if (static_cast<size_t>(b) >= rows || options.maxNewTokens <= 0) {
      done[b] = true;
      continue;
    }
    StatusOr<int32_t> sampled = sample(logitsRow(e.prefillLogits, b, vocab, scratch), b);
    if (!sampled)
      return sampled.status();
    const int32_t token = *sampled;
    results[b].push_back(token);
    if (onToken)
      onToken(b, token);
    done[b] = options.maxNewTokens == 1 || stops(token);
  }

  // Decode: each step feeds every row's newest token at its position.
  start = std::chrono::steady_clock::now();
  int64_t made = 0;
  auto take = [&](int64_t b, int32_t token) {
    results[b].push_back(token);
    ++made;
    if (onToken)
      onToken(b, token);
    if (static_cast<int64_t>(results[b].size()) >= options.maxNewTokens ||
        stops(token))
      done[b] = true;
  };
  for (;;) {
    // Steps each unfinished row may still take: a step feeds position
    // prompt + made - 1, which must be inside the context.
    int64_t most = std::numeric_limits<int64_t>::max();
    for (int64_t b = 0; b < static_cast<int64_t>(rows); ++b) {
      int64_t used =
          static_cast<int64_t>(prompts[b]->size() + results[b].size());
      if (!done[b] && used > context)
        done[b] = true; // the context is full
      if (!done[b])
        most = std::min(
            {most, context - used + 1,
             options.maxNewTokens - static_cast<int64_t>(results[b].size())});
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }))
      break;
    int32_t *tokens = e.decodeIn[0].as<int32_t>();
    int32_t *starts = e.decodeIn[1].as<int32_t>();
    int32_t *lasts = e.decodeIn[2].as<int32_t>();
    for (int64_t b = 0; b < batch; ++b) {
      size_t row = rowOf(b);
      const std::vector<int32_t> &gen = results[row];
      // Finished rows (and padding rows) rewrite a valid slot; nothing
      // reads their output.
      int64_t pos = static_cast<int64_t>(prompts[row]->size() + gen.size()) - 1;
      starts[b] = static_cast<int32_t>(std::min(pos, context - 1));
      tokens[b] = gen.empty() ? prompts[row]->back() : gen.back();
      lasts[b] = 0;
    }
    if (onDevice) {
      // Tokens past a row's end (a stop token mid-chunk) are dropped.
      int64_t steps = std::min(most, session.greedyStepsAtOnce());
      auto picked = session.decodeGreedy("decode", steps,
                                         static_cast<int32_t>(context - 1));
      if (!picked)
        return picked.status();
      for (int64_t i = 0; i < steps; ++i)
        for (int64_t b = 0; b < static_cast<int64_t>(rows); ++b)
          if (!done[b])
            take(b, (*picked)[i * batch + b]);
      continue;
    }
    if (Status s = session.run("decode"); !s)
      return s;
    for (int64_t b = 0; b < static_cast<int64_t>(rows); ++b)
      if (!done[b]) {
        StatusOr<int32_t> sampled = sample(logitsRow(e.decodeLogits, b, vocab, scratch), b);
        if (!sampled)
          return sampled.status();
        take(b, *sampled);
      }
  }
  if (stats) {
    stats->decodeSeconds += secondsSince(start);
    stats->decodeTokens += made;
  }
  return Status::ok();
}

} // namespace

StatusOr<std::vector<std::vector<int32_t>>>
generate(Session &session, const std::vector<std::vector<int32_t>> &prompts,
         const GenerateOptions &options, const TokenCallback &onToken,
         GenerateStats *stats) {
  auto e = Entries::of(session);
  if (!e)
    return e.status();
  if (Status s = e->checkStops(options.stopTokens); !s)
    return s;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (Status s = e->check(prompts[i], "prompt " + std::to_string(i)); !s)
      return s;
  Sampler sampler(options.sampling);
  std::vector<std::vector<int32_t>> results(prompts.size());
  for (size_t first = 0; first < prompts.size(); first += e->batch) {
    size_t rows = std::min<size_t>(e->batch, prompts.size() - first);
    BatchRun batch{session, *e, options, sampler};
    batch.held.assign(rows, 0);
    for (size_t r = 0; r < rows; ++r)
      batch.prompts.push_back(&prompts[first + r]);
    session.resetState();
    Status s = batch.run(
        [&](size_t row, int32_t token) {
          if (onToken)
            onToken(first + row, token);
        },
        stats);
    if (!s)
      return s;
    for (size_t r = 0; r < rows; ++r)
      results[first + r] = std::move(batch.results[r]);
  }
  return results;
}

Conversation::Conversation(Session &session) : session_(session) {
  session_.resetState();
}

int64_t Conversation::context() const {
  const format::CompileOptions *compiled = session_.artifact().root().options();
  return compiled ? compiled->max_seq_len() : 0;
}

StatusOr<std::vector<int32_t>> Conversation::reply(
    const std::vector<int32_t> &prompt, const GenerateOptions &options,
    const std::function<void(int32_t)> &onToken, GenerateStats *stats) {
  auto e = Entries::of(session_);
  if (!e)
    return e.status();
  if (Status s = e->checkStops(options.stopTokens); !s)
    return s;
  if (Status s = e->check(prompt, "the conversation"); !s)
    return s;
  // The cache holds cached_; the prompt's tokens up to where they first
  // differ need no prefill (one at least is run, for its logits).
  size_t held = 0;
  while (held < cached_.size() && held + 1 < prompt.size() &&
         cached_[held] == prompt[held])
    ++held;
  Sampler sampler(options.sampling);
  BatchRun batch{session_, *e, options, sampler};
  batch.prompts = {&prompt};
  batch.held = {static_cast<int64_t>(held)};
  // Whatever happens next, the cache is trusted no further than `held`.
  cached_.resize(held);
  Status s = batch.run(
      [&](size_t, int32_t token) {
        if (onToken)
          onToken(token);
      },
      stats);
  if (!s)
    return s;
  // The last token made was never fed back: the cache holds the rest.
  std::vector<int32_t> &made = batch.results[0];
  cached_ = prompt;
  if (!made.empty())
    cached_.insert(cached_.end(), made.begin(), made.end() - 1);
  return std::move(made);
}

GenerateOptions withGenerationDefaults(const LoadedArtifact &artifact, int64_t vocab,
                                       int64_t longestPrompt, GenerateOptions base) {
  const format::GenerationDefaults *g = artifact.root().generation();
  if (!g)
    return base;
  if (g->eos())
    for (int32_t id : *g->eos())
      if (id >= 0 && id < vocab)
        base.stopTokens.push_back(id);
  if (g->do_sample().has_value()) {
    bool sample = g->do_sample().value();
    float temperature = g->temperature().value_or(1.0f), topP = g->top_p().value_or(1.0f);
    int32_t topK = g->top_k().value_or(50);
    // Values gai-run's flags would refuse are left out, as if absent.
    base.sampling.temperature = sample && temperature >= 0 ? temperature : 0.0f;
    base.sampling.topK = sample && topK >= 0 ? topK : 0;
    base.sampling.topP = sample && topP > 0 && topP <= 1 ? topP : 1.0f;
    float minP = g->min_p().value_or(0.0f);
    base.sampling.minP = sample && minP >= 0 && minP <= 1 ? minP : 0.0f;
  }
  // HF applies the penalty in greedy runs as well.
  if (float penalty = g->repetition_penalty().value_or(1.0f); penalty > 0)
    base.sampling.repetitionPenalty = penalty;
  if (g->max_new_tokens().has_value())
    base.maxNewTokens = std::max<int64_t>(0, g->max_new_tokens().value());
  else if (g->max_length().has_value())
    base.maxNewTokens = std::max<int64_t>(0, g->max_length().value() - longestPrompt);
  return base;
}

} // namespace gai
