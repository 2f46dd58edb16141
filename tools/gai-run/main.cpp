// gai-run: runs gai artifacts: generate, train, bench, and init (fresh weights).
#include "Bench.h"
#include "Eval.h"
#include "Flags.h"
#include "SessionFlags.h"
#include "Train.h"

#include "gai/Generate.h"
#include "gai/Init.h"
#include "gai/Session.h"
#include "gai/Signing.h"
#include "gai/Tokenizer.h"
#include "format/artifact_generated.h"
#include "gai/Version.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char *kUsage =
    "usage: gai-run init ARTIFACT -o WEIGHTS.safetensors [--seed S]\n"
    "       gai-run train ARTIFACT --data FILE... (see train --help)\n"
    "       gai-run eval ARTIFACT --data FILE... (loss and perplexity; see eval --help)\n"
    "       gai-run bench ARTIFACT --workload prefill|decode ... (see bench --help)\n"
    "       gai-run keygen -o PREFIX         (PREFIX.key, PREFIX.pub: an Ed25519 pair)\n"
    "       gai-run sign FILE --key PREFIX.key   (FILE.sig, for --trusted-keys)\n"
    "       gai-run generate ARTIFACT [--weights FILE] [--device D] [--tokenizer FILE]\n"
    "           (--prompt TEXT | --prompt-ids \"1 2 3\")...\n"
    "           [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]\n"
    "           [--repetition-penalty R]\n"
    "           [--seed S] [--stop-token ID]... [--print-ids] [--no-stream]\n"
    "\n"
    "Each --prompt or --prompt-ids adds one prompt; they run as one batch\n"
    "(in groups of the artifact's batch size). Text is byte-tokenized, or\n"
    "with --tokenizer by a Hugging Face tokenizer.json (special tokens in the\n"
    "text and the tokenizer's own, such as a BOS, included; special tokens are\n"
    "left out of the printed text).\n"
    "--temperature 0 (the default), or any below 1e-5, is greedy. Token ids\n"
    "(--prompt-ids, --stop-token) must be inside the model's vocabulary.\n"
    "--weights takes a safetensors file, a model.safetensors.index.json (its\n"
    "shards) or a model directory.\n"
    "The artifact's generation_config.json (if its model had one) gives the\n"
    "defaults of the sampling flags and --max-new-tokens, and its eos ids stop\n"
    "a row as --stop-token does; each --stop-token adds one more. A length past\n"
    "what the context holds is clipped, with a note.\n"
    "--print-ids prints each prompt's generated ids on one line instead of\n"
    "text. Throughput goes to stderr. --device is auto (the artifact's target:\n"
    "a GPU for --target=cuda), cpu, cuda or cuda:N.\n"
    "\n"
    "init writes fresh weights for every tensor the artifact names (norm\n"
    "scales 1, biases 0, the rest N(0, 0.02)) for use with --weights.\n"
    "\n"
    "gai-run --version prints gai's version and the artifact schema it reads.\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "gai-run: error: %s\n", message.c_str());
  return 1;
}

using gai::parseFloat;
using gai::parseInt;

/// Text to stdout whole: a NUL byte (a byte-fallback token's) included.
void writeText(const std::string &text) { std::fwrite(text.data(), 1, text.size(), stdout); }

int generateCommand(int argc, char **argv) {
  std::string artifactPath, weightsPath, tokenizerPath;
  gai::SessionOptions sessionOptions = gai::SessionOptions::fromEnvironment();
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> idPrompts;
  std::vector<bool> promptIsText;
  gai::GenerateOptions options;
  bool printIds = false, stream = true;
  // Flags given win over the artifact's generation defaults.
  bool givenLength = false, givenTemperature = false, givenTopK = false, givenTopP = false,
       givenMinP = false, givenPenalty = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string &out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    std::string v, error;
    if (auto r = gai::parseSessionFlag(argc, argv, i, sessionOptions, error);
        r != gai::FlagResult::NotMine) {
      if (r == gai::FlagResult::Bad)
        return fail(error);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::fputs(gai::kSessionFlagsHelp, stdout);
      std::exit(0);
    } else if (arg == "--weights") {
      if (!value(weightsPath))
        return fail("--weights needs a file");
    } else if (arg == "--tokenizer") {
      if (!value(tokenizerPath))
        return fail("--tokenizer needs a tokenizer.json");
    } else if (arg == "--prompt") {
      if (!value(v))
        return fail("--prompt needs text");
      texts.push_back(v);
      promptIsText.push_back(true);
    } else if (arg == "--prompt-ids") {
      if (!value(v))
        return fail("--prompt-ids needs ids, e.g. \"1 2 3\"");
      std::istringstream in(v);
      std::vector<int32_t> ids;
      std::string word;
      while (in >> word) {
        int64_t id;
        if (!parseInt(word, id) || id < 0 || id > INT32_MAX)
          return fail("--prompt-ids: '" + word + "' is not a token id");
        ids.push_back(static_cast<int32_t>(id));
      }
      if (ids.empty())
        return fail("--prompt-ids: no ids in \"" + v + "\"");
      idPrompts.push_back(ids);
      promptIsText.push_back(false);
    } else if (arg == "--max-new-tokens") {
      if (!value(v) || !parseInt(v, options.maxNewTokens) || options.maxNewTokens < 0)
        return fail("--max-new-tokens needs a count >= 0");
      givenLength = true;
    } else if (arg == "--temperature") {
      if (!value(v) || !parseFloat(v, options.sampling.temperature) ||
          options.sampling.temperature < 0)
        return fail("--temperature needs a number >= 0");
      givenTemperature = true;
    } else if (arg == "--top-k") {
      if (!value(v) || !parseInt(v, options.sampling.topK) || options.sampling.topK < 0)
        return fail("--top-k needs a count >= 0");
      givenTopK = true;
    } else if (arg == "--top-p") {
      if (!value(v) || !parseFloat(v, options.sampling.topP) ||
          options.sampling.topP <= 0 || options.sampling.topP > 1)
        return fail("--top-p needs a number in (0, 1]");
      givenTopP = true;
    } else if (arg == "--repetition-penalty") {
      if (!value(v) || !parseFloat(v, options.sampling.repetitionPenalty) ||
          !(options.sampling.repetitionPenalty > 0))
        return fail("--repetition-penalty needs a number > 0 (1: none)");
      givenPenalty = true;
    } else if (arg == "--min-p") {
      if (!value(v) || !parseFloat(v, options.sampling.minP) || options.sampling.minP < 0 ||
          options.sampling.minP > 1)
        return fail("--min-p needs a number in [0, 1]");
      givenMinP = true;
    } else if (arg == "--seed") {
      int64_t seed;
      if (!value(v) || !parseInt(v, seed))
        return fail("--seed needs an integer");
      options.sampling.seed = static_cast<uint64_t>(seed);
    } else if (arg == "--stop-token") {
      int64_t id;
      if (!value(v) || !parseInt(v, id) || id < 0 || id > INT32_MAX)
        return fail("--stop-token needs a token id");
      options.stopTokens.push_back(static_cast<int32_t>(id));
    } else if (arg == "--print-ids") {
      printIds = true;
    } else if (arg == "--no-stream") {
      stream = false;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (see gai-run generate --help)");
    } else if (artifactPath.empty()) {
      artifactPath = arg;
    } else {
      return fail("unexpected argument '" + arg + "'");
    }
  }
  if (artifactPath.empty())
    return fail("no artifact given (see gai-run generate --help)");
  if (promptIsText.empty())
    return fail("no prompt: pass --prompt TEXT or --prompt-ids \"1 2 3\"");

  auto artifact = gai::loadArtifact(artifactPath, weightsPath, sessionOptions.trustedKeys);
  if (!artifact)
    return fail(artifact.status().message());
  // The tokenizer gaic embedded, unless --tokenizer names another.
  const flatbuffers::String *embedded = artifact->root().tokenizer_json();
  std::string embeddedTokenizer = embedded ? embedded->str() : "";
  auto session = gai::Session::create(std::move(*artifact), sessionOptions);
  if (!session)
    return fail(session.status().message());
  gai::Session &s = **session;
  std::vector<gai::TensorRef> logits = s.outputs("prefill");
  bool knownVocab = !logits.empty() && logits[0].shape.size() == 2;
  int64_t vocab = knownVocab ? logits[0].shape[1] : 256;
  gai::ByteTokenizer byteTokenizer(vocab);
  std::unique_ptr<gai::HFTokenizer> hfTokenizer;
  if (!tokenizerPath.empty()) {
    auto loaded = gai::HFTokenizer::load(tokenizerPath);
    if (!loaded)
      return fail(loaded.status().message());
    hfTokenizer = std::move(*loaded);
    if (knownVocab && hfTokenizer->vocabSize() > vocab)
      return fail(tokenizerPath + ": the tokenizer has ids up to " +
                  std::to_string(hfTokenizer->vocabSize() - 1) +
                  ", outside the model's vocabulary of " + std::to_string(vocab));
  } else if (!embeddedTokenizer.empty()) {
    auto loaded = gai::HFTokenizer::fromJson(embeddedTokenizer, artifactPath + " (its tokenizer)");
    if (!loaded)
      return fail(loaded.status().message());
    hfTokenizer = std::move(*loaded);
  }
  const gai::Tokenizer &tokenizer =
      hfTokenizer ? static_cast<const gai::Tokenizer &>(*hfTokenizer) : byteTokenizer;
  if (knownVocab) {
    auto outside = [&](const char *flag, int64_t id) {
      return fail(std::string(flag) + ": token id " + std::to_string(id) +
                  " is outside the model's vocabulary of " + std::to_string(vocab) +
                  " (ids 0 to " + std::to_string(vocab - 1) + ")");
    };
    for (int32_t stop : options.stopTokens)
      if (stop >= vocab)
        return outside("--stop-token", stop);
    for (const std::vector<int32_t> &ids : idPrompts)
      for (int32_t id : ids)
        if (id >= vocab)
          return outside("--prompt-ids", id);
  }

  std::vector<std::vector<int32_t>> prompts;
  size_t nextText = 0, nextIds = 0;
  for (bool isText : promptIsText) {
    if (isText) {
      auto ids = tokenizer.encode(texts[nextText++]);
      if (!ids)
        return fail(ids.status().message());
      prompts.push_back(*ids);
    } else {
      prompts.push_back(idPrompts[nextIds++]);
    }
  }

  size_t longest = 0;
  for (const std::vector<int32_t> &prompt : prompts)
    longest = std::max(longest, prompt.size());
  gai::GenerateOptions defaults = gai::withGenerationDefaults(
      s.artifact(), vocab, static_cast<int64_t>(longest), gai::GenerateOptions());
  if (!givenTemperature)
    options.sampling.temperature = defaults.sampling.temperature;
  if (!givenTopK)
    options.sampling.topK = defaults.sampling.topK;
  if (!givenTopP)
    options.sampling.topP = defaults.sampling.topP;
  if (!givenMinP)
    options.sampling.minP = defaults.sampling.minP;
  if (!givenPenalty)
    options.sampling.repetitionPenalty = defaults.sampling.repetitionPenalty;
  if (!givenLength)
    options.maxNewTokens = defaults.maxNewTokens;
  options.stopTokens.insert(options.stopTokens.end(), defaults.stopTokens.begin(),
                            defaults.stopTokens.end());
  // A row ends when its context is full: say so when more was asked for.
  const gai::format::CompileOptions *compiled = s.artifact().root().options();
  int64_t room = (compiled ? compiled->max_seq_len() : 0) - static_cast<int64_t>(longest) + 1;
  if (room > 0 && options.maxNewTokens > room) {
    if (givenLength || options.maxNewTokens != gai::GenerateOptions().maxNewTokens)
      std::fprintf(stderr,
                   "gai-run: note: %s %lld is clipped to %lld: the context holds %lld "
                   "tokens and the longest prompt has %zu\n",
                   givenLength ? "--max-new-tokens" : "the generation config's length",
                   static_cast<long long>(options.maxNewTokens), static_cast<long long>(room),
                   static_cast<long long>(compiled->max_seq_len()), longest);
    options.maxNewTokens = room;
  }

  // One prompt streams its text as it is made; several print at the end.
  bool streaming = stream && !printIds && prompts.size() == 1;
  if (streaming) {
    writeText(tokenizer.decode(prompts[0]));
    std::fflush(stdout);
  }
  gai::DecodeStream decodeStream(tokenizer);
  if (streaming)
    decodeStream.prime(prompts[0]);
  gai::GenerateStats stats;
  auto results = gai::generate(
      s, prompts, options,
      [&](size_t, int32_t token) {
        if (streaming) {
          writeText(decodeStream.step(token));
          std::fflush(stdout);
        }
      },
      &stats);
  if (streaming) {
    writeText(decodeStream.finish());
    std::fputs("\n", stdout);
  }
  if (!results)
    return fail(results.status().message());
  for (size_t i = 0; i < results->size(); ++i) {
    if (printIds) {
      std::string line;
      for (int32_t id : (*results)[i])
        line += (line.empty() ? "" : " ") + std::to_string(id);
      std::printf("%s\n", line.c_str());
    } else if (!streaming) {
      std::vector<int32_t> all = prompts[i];
      all.insert(all.end(), (*results)[i].begin(), (*results)[i].end());
      std::printf("[%zu] ", i);
      writeText(tokenizer.decode(all) + "\n");
    }
  }
  auto rate = [](int64_t n, double s) { return s > 0 ? n / s : 0.0; };
  std::fprintf(stderr,
               "prefill: %lld tokens in %.1f ms (%.1f tokens/s); decode: %lld "
               "tokens in %.1f ms (%.1f tokens/s)\n",
               static_cast<long long>(stats.prefillTokens),
               stats.prefillSeconds * 1e3, rate(stats.prefillTokens, stats.prefillSeconds),
               static_cast<long long>(stats.decodeTokens), stats.decodeSeconds * 1e3,
               rate(stats.decodeTokens, stats.decodeSeconds));
  return 0;
}

int initCommand(int argc, char **argv) {
  std::string artifactPath, outputPath;
  int64_t seed = 0;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-o" && i + 1 < argc) {
      outputPath = argv[++i];
    } else if (arg == "--seed" && i + 1 < argc) {
      if (!parseInt(argv[++i], seed))
        return fail("--seed needs an integer");
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown or incomplete option '" + arg + "' (see gai-run --help)");
    } else if (artifactPath.empty()) {
      artifactPath = arg;
    } else {
      return fail("unexpected argument '" + arg + "'");
    }
  }
  if (artifactPath.empty() || outputPath.empty())
    return fail("usage: gai-run init ARTIFACT -o WEIGHTS.safetensors [--seed S]");
  if (gai::Status s = gai::writeInitialWeights(artifactPath, outputPath,
                                               static_cast<uint64_t>(seed));
      !s)
    return fail(s.message());
  return 0;
}

} // namespace

/// keygen -o PREFIX | sign FILE --key KEY: signatures for --trusted-keys.
int signingCommand(const std::string &command, int argc, char **argv) {
  std::string file, key, prefix;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "-o" || arg == "--key") && i + 1 < argc)
      (arg == "-o" ? prefix : key) = argv[++i];
    else if (!arg.empty() && arg[0] != '-' && file.empty())
      file = arg;
    else
      return fail(command + ": unexpected argument '" + arg + "' (see gai-run --help)");
  }
  if (command == "keygen") {
    if (prefix.empty() || !file.empty())
      return fail("keygen needs -o PREFIX (writes PREFIX.key and PREFIX.pub)");
    gai::Status s = gai::generateSigningKey(prefix);
    return s ? 0 : fail(s.message());
  }
  if (file.empty() || key.empty())
    return fail("sign needs FILE and --key PREFIX.key (writes FILE.sig)");
  gai::Status s = gai::signFile(file, key);
  return s ? 0 : fail(s.message());
}

int main(int argc, char **argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 ||
      std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 1 : 0;
  }
  std::string command = argv[1];
  if (command == "--version") {
    std::printf("%s\n", gai::versionText().c_str());
    return 0;
  }
  // The runtime reports failures as Status; an exception reaching here is a
  // bug (or memory running out), still reported as one error line.
  try {
    if (command == "generate")
      return generateCommand(argc - 2, argv + 2);
    if (command == "init")
      return initCommand(argc - 2, argv + 2);
    if (command == "bench")
      return gai::benchCommand(argc - 2, argv + 2);
    if (command == "train")
      return gai::trainCommand(argc - 2, argv + 2);
    if (command == "eval")
      return gai::evalCommand(argc - 2, argv + 2);
    if (command == "keygen" || command == "sign")
      return signingCommand(command, argc - 2, argv + 2);
  } catch (const std::bad_alloc &) {
    return fail(command + ": out of memory");
  } catch (const std::exception &e) {
    return fail(command + ": unexpected " + e.what());
  }
  return fail("unknown command '" + command +
              "' (expected generate, train, eval, bench, init, keygen or sign)");
}
