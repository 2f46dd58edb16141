// gai-run chat: a conversation on stdin and stdout in the model's chat
// template, kept in the KV cache from turn to turn (gai::Conversation).
#include "Chat.h"

#include "format/artifact_generated.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace gai {
namespace {

const char *kChatUsage =
    "usage: gai-run chat ARTIFACT [--system TEXT] [--print-prompt-ids]\n"
    "           [model and sampling flags] [session flags]\n"
    "\n"
    "Reads one user message a line from stdin (empty lines are skipped) and\n"
    "streams each reply to stdout, in the chat template gaic recorded (the\n"
    "model's tokenizer_config.json, or gaic --chat-template). The "
    "conversation\n"
    "stays in the KV cache: a turn prefills only the tokens after what the "
    "cache\n"
    "holds. A reply ends at the template's end of turn, an eos id of the\n"
    "generation config, --max-new-tokens, or the end of the context; when the\n"
    "conversation no longer leaves room for a reply (--max-new-tokens, at "
    "most\n"
    "half the context), its oldest exchanges are dropped, with a note, and "
    "the\n"
    "cache is prefilled again from there. Each turn's throughput goes to\n"
    "stderr; --print-prompt-ids prints each turn's prompt ids there too.\n"
    "--system TEXT starts the conversation with a system message.\n"
    "\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "gai-run chat: error: %s\n", message.c_str());
  return 1;
}

} // namespace

StatusOr<std::vector<int32_t>>
ChatFormat::prompt(const std::vector<ChatMessage> &messages,
                   const Tokenizer &tokenizer) const {
  auto text = chat.render(messages);
  if (!text)
    return text.status();
  return tokenizer.encode(*text, /*allowSpecial=*/true, /*addSpecial=*/false);
}

GenerateOptions ChatFormat::stoppingAtEndOfTurn(GenerateOptions options) const {
  if (endOfTurn &&
      std::find(options.stopTokens.begin(), options.stopTokens.end(),
                *endOfTurn) == options.stopTokens.end())
    options.stopTokens.push_back(*endOfTurn);
  return options;
}

StatusOr<ChatFormat> chatFormatOf(const LoadedModel &model,
                                  const std::string &artifactPath) {
  auto chat =
      ChatTemplate::fromArtifact(model.session->artifact(), artifactPath);
  if (!chat)
    return chat.status();
  ChatFormat format{std::move(*chat), std::nullopt};
  std::string end = format.chat.endOfTurn();
  auto ids =
      model.tokenizer->encode(end, /*allowSpecial=*/true, /*addSpecial=*/false);
  if (ids && ids->size() == 1 && (*ids)[0] < model.vocab)
    format.endOfTurn = (*ids)[0];
  else if (!end.empty())
    std::fprintf(stderr,
                 "gai-run: note: the tokenizer has no token for the chat "
                 "template's end of "
                 "turn '%s'; only the eos ids and --stop-token end a reply\n",
                 end.c_str());
  return format;
}

int chatCommand(int argc, char **argv) {
  GenerateFlags flags;
  std::optional<std::string> system;
  bool printPromptIds = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i], error;
    if (FlagResult r = flags.parse(argc, argv, i, error);
        r != FlagResult::NotMine) {
      if (r == FlagResult::Bad)
        return fail(error);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kChatUsage, stdout);
      std::fputs(kGenerateFlagsHelp, stdout);
      std::fputs(kSessionFlagsHelp, stdout);
      return 0;
    } else if (arg == "--system") {
      if (i + 1 >= argc)
        return fail("--system needs text");
      system = argv[++i];
    } else if (arg == "--print-prompt-ids") {
      printPromptIds = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (see gai-run chat --help)");
    } else if (flags.artifactPath.empty()) {
      flags.artifactPath = arg;
    } else {
      return fail("unexpected argument '" + arg + "'");
    }
  }
  if (flags.artifactPath.empty())
    return fail("no artifact given (see gai-run chat --help)");
  auto model = loadModel(flags);
  if (!model)
    return fail(model.status().message());
  auto format = chatFormatOf(*model, flags.artifactPath);
  if (!format)
    return fail(format.status().message());
  const Tokenizer &tokenizer = *model->tokenizer;
  Conversation conversation(*model->session);
  const int64_t context = conversation.context();

  std::vector<ChatMessage> messages;
  if (system)
    messages.push_back({"system", *system});
  const size_t firstExchange = messages.size();
  const bool interactive = isatty(STDIN_FILENO);
  int turn = 0;
  for (std::string line;;) {
    if (interactive) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    if (!std::getline(std::cin, line)) {
      if (interactive)
        std::fputs("\n", stdout);
      break;
    }
    if (line.empty())
      continue;
    messages.push_back({"user", line});
    auto ids = format->prompt(messages, tokenizer);
    if (!ids)
      return fail(ids.status().message());
    GenerateOptions options = format->stoppingAtEndOfTurn(
        flags.withDefaults(model->session->artifact(), model->vocab,
                           static_cast<int64_t>(ids->size())));
    // Room for a reply: drop the oldest exchanges (a user message and its
    // reply) while the conversation leaves less.
    const int64_t room =
        std::max<int64_t>(1, std::min(options.maxNewTokens, context / 2));
    while (static_cast<int64_t>(ids->size()) + room > context &&
           messages.size() > firstExchange + 1) {
      messages.erase(messages.begin() + firstExchange,
                     messages.begin() +
                         std::min(firstExchange + 2, messages.size() - 1));
      std::fprintf(
          stderr,
          "gai-run: note: the conversation outgrew the context of %lld tokens: "
          "dropped its oldest exchange\n",
          static_cast<long long>(context));
      ids = format->prompt(messages, tokenizer);
      if (!ids)
        return fail(ids.status().message());
    }
    if (static_cast<int64_t>(ids->size()) > context)
      return fail(
          "the message makes a prompt of " + std::to_string(ids->size()) +
          " tokens in the chat template; the context holds " +
          std::to_string(context) + " (recompile with a larger --seq-len)");
    if (printPromptIds)
      std::fprintf(stderr, "prompt: %s\n", idsText(*ids).c_str());

    DecodeStream stream(tokenizer);
    stream.prime(*ids);
    GenerateStats stats;
    auto made = conversation.reply(
        *ids, options,
        [&](int32_t token) {
          writeText(stream.step(token));
          std::fflush(stdout);
        },
        &stats);
    writeText(stream.finish());
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (!made)
      return fail(made.status().message());
    // The reply as the template will show it next turn: its text, without
    // the token that ended it.
    std::vector<int32_t> reply = *made;
    bool stopped =
        !reply.empty() &&
        std::find(options.stopTokens.begin(), options.stopTokens.end(),
                  reply.back()) != options.stopTokens.end();
    if (stopped)
      reply.pop_back();
    else if (static_cast<int64_t>(made->size()) < options.maxNewTokens)
      std::fprintf(stderr,
                   "gai-run: note: the reply reached the end of the context\n");
    messages.push_back({"assistant", tokenizer.decode(reply)});
    std::fprintf(stderr, "turn %d: %s\n", ++turn, statsText(stats).c_str());
  }
  return 0;
}

} // namespace gai
