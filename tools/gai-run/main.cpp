// gai-run: runs gai artifacts: generate, chat, train, eval, bench, and init (fresh weights);
// launch starts a sharded job's ranks.
#include "Bench.h"
#include "Chat.h"
#include "Eval.h"
#include "Flags.h"
#include "GenerateFlags.h"
#include "Launch.h"
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
#include <optional>
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
    "           [--chat [--system TEXT]] [--print-prompt-ids]\n"
    "       gai-run chat ARTIFACT [--system TEXT] ...  (a conversation; see chat --help)\n"
    "       gai-run launch -n N [--direct] [--] COMMAND ARGS...  (N local ranks of a\n"
    "           sharded job; --exec PROGRAM ARGS for a script; see launch --help)\n"
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
    "--chat makes each --prompt one user message in the model's chat template\n"
    "(after a system message, with --system), read as transformers reads a chat\n"
    "(the template's special tokens are tokens; the tokenizer adds none); the\n"
    "template's end of turn stops a row too, and only the reply is printed.\n"
    "--print-ids prints each prompt's generated ids on one line instead of\n"
    "text; --print-prompt-ids prints each prompt's ids on stderr (\"prompt: ...\").\n"
    "Throughput goes to stderr. --device is auto (the artifact's target:\n"
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

using gai::parseInt;

int generateCommand(int argc, char **argv) {
  gai::GenerateFlags flags;
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> idPrompts;
  std::vector<bool> promptIsText;
  std::optional<std::string> system;
  bool printIds = false, printPromptIds = false, stream = true, chat = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string &out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    std::string v, error;
    if (auto r = flags.parse(argc, argv, i, error); r != gai::FlagResult::NotMine) {
      if (r == gai::FlagResult::Bad)
        return fail(error);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::fputs(gai::kGenerateFlagsHelp, stdout);
      std::fputs(gai::kSessionFlagsHelp, stdout);
      std::exit(0);
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
    } else if (arg == "--chat") {
      chat = true;
    } else if (arg == "--system") {
      if (!value(v))
        return fail("--system needs text");
      system = v;
    } else if (arg == "--print-ids") {
      printIds = true;
    } else if (arg == "--print-prompt-ids") {
      printPromptIds = true;
    } else if (arg == "--no-stream") {
      stream = false;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (see gai-run generate --help)");
    } else if (flags.artifactPath.empty()) {
      flags.artifactPath = arg;
    } else {
      return fail("unexpected argument '" + arg + "'");
    }
  }
  if (flags.artifactPath.empty())
    return fail("no artifact given (see gai-run generate --help)");
  if (promptIsText.empty())
    return fail("no prompt: pass --prompt TEXT or --prompt-ids \"1 2 3\"");
  if (chat && !idPrompts.empty())
    return fail("--chat takes --prompt TEXT (each one a user message), not --prompt-ids");
  if (system && !chat)
    return fail("--system is for --chat");

  auto model = gai::loadModel(flags);
  if (!model)
    return fail(model.status().message());
  // Ranks of a tensor-parallel job compute the same tokens: rank 0 prints.
  if (model->comm->rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    return fail("cannot quiet this rank's output");
  gai::Session &s = *model->session;
  const gai::Tokenizer &tokenizer = *model->tokenizer;
  const int64_t vocab = model->vocab;
  if (model->knownVocab)
    for (const std::vector<int32_t> &ids : idPrompts)
      for (int32_t id : ids)
        if (id >= vocab)
          return fail("--prompt-ids: token id " + std::to_string(id) +
                      " is outside the model's vocabulary of " + std::to_string(vocab) +
                      " (ids 0 to " + std::to_string(vocab - 1) + ")");
  std::optional<gai::ChatFormat> format;
  if (chat) {
    auto found = gai::chatFormatOf(*model, flags.artifactPath);
    if (!found)
      return fail(found.status().message());
    format = std::move(*found);
  }

  std::vector<std::vector<int32_t>> prompts;
  size_t nextText = 0, nextIds = 0;
  for (bool isText : promptIsText) {
    if (!isText) {
      prompts.push_back(idPrompts[nextIds++]);
      continue;
    }
    std::vector<gai::ChatMessage> messages;
    if (system)
      messages.push_back({"system", *system});
    messages.push_back({"user", texts[nextText++]});
    // A chat prompt is the user message in the template; a plain one is the
    // text, with the tokenizer's own special tokens (a bos).
    auto ids = format ? format->prompt(messages, tokenizer)
                      : tokenizer.encode(messages.back().content);
    if (!ids)
      return fail(ids.status().message());
    prompts.push_back(*ids);
  }
  if (printPromptIds)
    for (const std::vector<int32_t> &prompt : prompts)
      std::fprintf(stderr, "prompt: %s\n", gai::idsText(prompt).c_str());

  size_t longest = 0;
  for (const std::vector<int32_t> &prompt : prompts)
    longest = std::max(longest, prompt.size());
  gai::GenerateOptions options =
      flags.withDefaults(s.artifact(), vocab, static_cast<int64_t>(longest));
  if (format)
    options = format->stoppingAtEndOfTurn(options);
  // A row ends when its context is full: say so when more was asked for.
  const gai::format::CompileOptions *compiled = s.artifact().root().options();
  int64_t room = (compiled ? compiled->max_seq_len() : 0) - static_cast<int64_t>(longest) + 1;
  if (room > 0 && options.maxNewTokens > room) {
    if (flags.givenLength || options.maxNewTokens != gai::GenerateOptions().maxNewTokens)
      std::fprintf(stderr,
                   "gai-run: note: %s %lld is clipped to %lld: the context holds %lld "
                   "tokens and the longest prompt has %zu\n",
                   flags.givenLength ? "--max-new-tokens" : "the generation config's length",
                   static_cast<long long>(options.maxNewTokens), static_cast<long long>(room),
                   static_cast<long long>(compiled->max_seq_len()), longest);
    options.maxNewTokens = room;
  }

  // One prompt streams its text as it is made (a plain prompt's own text
  // first); several print at the end.
  bool streaming = stream && !printIds && prompts.size() == 1;
  if (streaming && !chat) {
    gai::writeText(tokenizer.decode(prompts[0]));
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
          gai::writeText(decodeStream.step(token));
          std::fflush(stdout);
        }
      },
      &stats);
  if (streaming) {
    gai::writeText(decodeStream.finish());
    std::fputs("\n", stdout);
  }
  if (!results)
    return fail(results.status().message());
  for (size_t i = 0; i < results->size(); ++i) {
    if (printIds) {
      std::printf("%s\n", gai::idsText((*results)[i]).c_str());
    } else if (!streaming) {
      // A plain prompt prints with its continuation, decoded together (a
      // leading space kept); a chat prints the reply alone.
      std::vector<int32_t> all = chat ? std::vector<int32_t>() : prompts[i];
      all.insert(all.end(), (*results)[i].begin(), (*results)[i].end());
      std::printf("[%zu] ", i);
      gai::writeText(tokenizer.decode(all) + "\n");
    }
  }
  std::fprintf(stderr, "%s\n", gai::statsText(stats).c_str());
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
    if (command == "chat")
      return gai::chatCommand(argc - 2, argv + 2);
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
    if (command == "launch")
      return gai::launchCommand(argc - 2, argv + 2);
  } catch (const std::bad_alloc &) {
    return fail(command + ": out of memory");
  } catch (const std::exception &e) {
    return fail(command + ": unexpected " + e.what());
  }
  return fail("unknown command '" + command +
              "' (expected generate, chat, train, eval, bench, init, keygen, sign or "
              "launch)");
}
