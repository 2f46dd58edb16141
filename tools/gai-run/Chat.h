// gai-run chat, and what generate --chat shares with it: prompts in the
// model's chat template.
#ifndef GAI_TOOLS_GAI_RUN_CHAT_H
#define GAI_TOOLS_GAI_RUN_CHAT_H

#include "GenerateFlags.h"

#include "gai/ChatTemplate.h"

#include <optional>
#include <vector>

namespace gai {

/// A model's chat template and the token that ends its replies.
struct ChatFormat {
  ChatTemplate chat;
  /// The template's end of turn as one token of the tokenizer (none when
  /// the tokenizer splits it: then only the eos ids end a reply).
  std::optional<int32_t> endOfTurn;

  /// The ids of `messages` rendered with the generation prompt, read as
  /// transformers reads a chat: special tokens in the text are tokens, and
  /// the tokenizer adds none (the template has its own bos).
  StatusOr<std::vector<int32_t>>
  prompt(const std::vector<ChatMessage> &messages,
         const Tokenizer &tokenizer) const;
  /// `options` with the end of turn among its stop tokens.
  GenerateOptions stoppingAtEndOfTurn(GenerateOptions options) const;
};

/// The chat template gaic recorded in the artifact at `artifactPath`.
StatusOr<ChatFormat> chatFormatOf(const LoadedModel &model,
                                  const std::string &artifactPath);

int chatCommand(int argc, char **argv);

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_CHAT_H
