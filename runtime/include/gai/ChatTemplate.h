// Chat templates: the Jinja chat_template texts of the model families gai
// supports, recognised and rendered in C++ as transformers renders them.
#ifndef GAI_CHATTEMPLATE_H
#define GAI_CHATTEMPLATE_H

#include "gai/Status.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gai {

class LoadedArtifact;
struct KnownChatTemplate; // core/ChatParts.h

struct ChatMessage {
  std::string role; ///< system, user or assistant
  std::string content;
};

struct ChatRenderOptions {
  /// Ends the text with the header of the assistant's turn, where the
  /// template has one (transformers' add_generation_prompt).
  bool addGenerationPrompt = true;
  /// transformers' strftime_now helper, for a template that dates its
  /// system prompt (Llama 3.2's); empty: the local time.
  std::function<std::string(const std::string &format)> strftimeNow;
};

/// A model's chat template, recognised as one of the templates gai knows.
/// A template is known by its text, compared after reading it as Jinja
/// reads it (whitespace between tokens, quoting, escapes and comments do not
/// count; text that reaches the output does): fine-tunes often keep their
/// base model's template, and those that change it (a default system prompt,
/// other role headers) carry the same markers but render other text, which
/// no format guessed from the markers would reproduce.
class ChatTemplate {
public:
  /// `bos` and `eos` are tokenizer_config.json's bos_token and eos_token,
  /// which templates insert (nullopt: it has none); `origin` names the
  /// template in the error for one gai does not know.
  static StatusOr<ChatTemplate> recognise(const std::string &text,
                                          std::optional<std::string> bos,
                                          std::optional<std::string> eos,
                                          const std::string &origin);
  /// The template gaic recorded in `artifact`; `name` (its path) appears in
  /// errors, which an artifact without a template also is.
  static StatusOr<ChatTemplate> fromArtifact(const LoadedArtifact &artifact,
                                             const std::string &name);
  /// The formats gai renders, for messages and --help.
  static std::string knownFormats();

  /// The text transformers' apply_chat_template(messages, tokenize=False,
  /// add_generation_prompt=...) gives, or the error the template raises
  /// (roles out of turn; a system message where it has no place).
  StatusOr<std::string> render(const std::vector<ChatMessage> &messages,
                               const ChatRenderOptions &options = {}) const;
  /// What the template is: "Llama 3.1", "ChatML (Qwen2.5)", ...
  std::string name() const;
  /// The text that ends an assistant's turn in this format (<|eot_id|>,
  /// <|im_end|>, <end_of_turn>, <|end|>, or the eos token after [INST]):
  /// a reply ends at it.
  std::string endOfTurn() const;

private:
  ChatTemplate(const KnownChatTemplate *known, std::optional<std::string> bos,
               std::optional<std::string> eos)
      : known_(known), bos_(std::move(bos)), eos_(std::move(eos)) {}
  const KnownChatTemplate *known_;
  std::optional<std::string> bos_, eos_;
};

} // namespace gai

#endif // GAI_CHATTEMPLATE_H
