// The flags gai-run generate and chat share, and loading their model.
#include "GenerateFlags.h"

#include "gai/Comm.h"

#include "Flags.h"

#include "format/artifact_generated.h"

#include <cstdio>

namespace gai {

const char *const kGenerateFlagsHelp =
    "Model and sampling flags (generate and chat):\n"
    "  --weights FILE        a safetensors file, a "
    "model.safetensors.index.json (its\n"
    "                        shards) or a model directory\n"
    "  --tokenizer FILE      a Hugging Face tokenizer.json (default: the one "
    "gaic\n"
    "                        embedded; without either, text is bytes)\n"
    "  --max-new-tokens N    tokens per reply (default 32, or the generation "
    "config's)\n"
    "  --temperature T       0 (the default) or below 1e-5: greedy\n"
    "  --top-k K, --top-p P, --min-p P, --repetition-penalty R, --seed S\n"
    "  --stop-token ID       a reply ends at this id (kept); repeat for "
    "several\n"
    "The artifact's generation_config.json (if its model had one) gives the\n"
    "defaults of the sampling flags and --max-new-tokens, and its eos ids "
    "stop\n"
    "a reply as --stop-token does; a flag given wins.\n"
    "\n";

FlagResult GenerateFlags::parse(int argc, char **argv, int &i,
                                std::string &error) {
  if (FlagResult r = parseSessionFlag(argc, argv, i, session, error);
      r != FlagResult::NotMine)
    return r;
  std::string arg = argv[i], v;
  auto value = [&]() {
    if (i + 1 >= argc)
      return false;
    v = argv[++i];
    return true;
  };
  auto bad = [&](const char *message) {
    error = message;
    return FlagResult::Bad;
  };
  SamplingOptions &s = options.sampling;
  if (arg == "--weights") {
    if (!value())
      return bad("--weights needs a file");
    weightsPath = v;
  } else if (arg == "--tokenizer") {
    if (!value())
      return bad("--tokenizer needs a tokenizer.json");
    tokenizerPath = v;
  } else if (arg == "--max-new-tokens") {
    if (!value() || !parseInt(v, options.maxNewTokens) ||
        options.maxNewTokens < 0)
      return bad("--max-new-tokens needs a count >= 0");
    givenLength = true;
  } else if (arg == "--temperature") {
    if (!value() || !parseFloat(v, s.temperature) || s.temperature < 0)
      return bad("--temperature needs a number >= 0");
    givenTemperature = true;
  } else if (arg == "--top-k") {
    if (!value() || !parseInt(v, s.topK) || s.topK < 0)
      return bad("--top-k needs a count >= 0");
    givenTopK = true;
  } else if (arg == "--top-p") {
    if (!value() || !parseFloat(v, s.topP) || s.topP <= 0 || s.topP > 1)
      return bad("--top-p needs a number in (0, 1]");
    givenTopP = true;
  } else if (arg == "--repetition-penalty") {
    if (!value() || !parseFloat(v, s.repetitionPenalty) ||
        !(s.repetitionPenalty > 0))
      return bad("--repetition-penalty needs a number > 0 (1: none)");
    givenPenalty = true;
  } else if (arg == "--min-p") {
    if (!value() || !parseFloat(v, s.minP) || s.minP < 0 || s.minP > 1)
      return bad("--min-p needs a number in [0, 1]");
    givenMinP = true;
  } else if (arg == "--seed") {
    int64_t seed;
    if (!value() || !parseInt(v, seed))
      return bad("--seed needs an integer");
    s.seed = static_cast<uint64_t>(seed);
  } else if (arg == "--stop-token") {
    int64_t id;
    if (!value() || !parseInt(v, id) || id < 0 || id > INT32_MAX)
      return bad("--stop-token needs a token id");
    options.stopTokens.push_back(static_cast<int32_t>(id));
  } else {
    return FlagResult::NotMine;
  }
  return FlagResult::Taken;
}

GenerateOptions GenerateFlags::withDefaults(const LoadedArtifact &artifact,
                                            int64_t vocab,
                                            int64_t longestPrompt) const {
  GenerateOptions defaults =
      withGenerationDefaults(artifact, vocab, longestPrompt, GenerateOptions());
  GenerateOptions out = options;
  SamplingOptions &s = out.sampling;
  if (!givenTemperature)
    s.temperature = defaults.sampling.temperature;
  if (!givenTopK)
    s.topK = defaults.sampling.topK;
  if (!givenTopP)
    s.topP = defaults.sampling.topP;
  if (!givenMinP)
    s.minP = defaults.sampling.minP;
  if (!givenPenalty)
    s.repetitionPenalty = defaults.sampling.repetitionPenalty;
  if (!givenLength)
    out.maxNewTokens = defaults.maxNewTokens;
  out.stopTokens.insert(out.stopTokens.end(), defaults.stopTokens.begin(),
                        defaults.stopTokens.end());
  return out;
}

StatusOr<LoadedModel> loadModel(const GenerateFlags &flags) {
  auto artifact = loadArtifact(flags.artifactPath, flags.weightsPath,
                               flags.session.trustedKeys);
  if (!artifact)
    return artifact.status();
  // The tokenizer gaic embedded, unless --tokenizer names another.
  const flatbuffers::String *embedded = artifact->root().tokenizer_json();
  std::string embeddedTokenizer = embedded ? embedded->str() : "";
  // A tensor-parallel artifact runs as one rank of a job (gai-run launch,
  // mpirun, srun, torchrun); every rank computes the same tokens.
  LoadedModel model;
  SessionOptions options = flags.session;
  auto comm = joinJob(options, *artifact);
  if (!comm)
    return comm.status();
  model.comm = std::move(*comm);
  auto session = Session::create(std::move(*artifact), options);
  if (!session)
    return session.status();
  model.session = std::move(*session);
  std::vector<TensorRef> logits = model.session->outputs("prefill");
  model.knownVocab = !logits.empty() && logits[0].shape.size() == 2;
  if (model.knownVocab)
    model.vocab = logits[0].shape[1];
  if (!flags.tokenizerPath.empty()) {
    auto loaded = HFTokenizer::load(flags.tokenizerPath);
    if (!loaded)
      return loaded.status();
    if (model.knownVocab && (*loaded)->vocabSize() > model.vocab)
      return Status::error(
          flags.tokenizerPath + ": the tokenizer has ids up to " +
          std::to_string((*loaded)->vocabSize() - 1) +
          ", outside the model's vocabulary of " + std::to_string(model.vocab));
    model.tokenizer = std::move(*loaded);
  } else if (!embeddedTokenizer.empty()) {
    auto loaded = HFTokenizer::fromJson(
        embeddedTokenizer, flags.artifactPath + " (its tokenizer)");
    if (!loaded)
      return loaded.status();
    model.tokenizer = std::move(*loaded);
  } else {
    model.tokenizer = std::make_unique<ByteTokenizer>(model.vocab);
  }
  if (model.knownVocab)
    for (int32_t stop : flags.options.stopTokens)
      if (stop >= model.vocab)
        return Status::error("--stop-token: token id " + std::to_string(stop) +
                             " is outside the model's vocabulary of " +
                             std::to_string(model.vocab) + " (ids 0 to " +
                             std::to_string(model.vocab - 1) + ")");
  return model;
}

void writeText(const std::string &text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

std::string idsText(const std::vector<int32_t> &ids) {
  std::string line;
  for (int32_t id : ids)
    line += (line.empty() ? "" : " ") + std::to_string(id);
  return line;
}

std::string statsText(const GenerateStats &stats) {
  auto rate = [](int64_t n, double s) { return s > 0 ? n / s : 0.0; };
  char cached[64] = "";
  if (stats.cachedTokens > 0)
    std::snprintf(cached, sizeof cached, " (%lld cached)",
                  static_cast<long long>(stats.cachedTokens));
  char line[256];
  std::snprintf(
      line, sizeof line,
      "prefill: %lld tokens%s in %.1f ms (%.1f tokens/s); decode: %lld "
      "tokens in %.1f ms (%.1f tokens/s)",
      static_cast<long long>(stats.prefillTokens), cached,
      stats.prefillSeconds * 1e3,
      rate(stats.prefillTokens, stats.prefillSeconds),
      static_cast<long long>(stats.decodeTokens), stats.decodeSeconds * 1e3,
      rate(stats.decodeTokens, stats.decodeSeconds));
  return line;
}

} // namespace gai
