// The known chat templates (their published texts and renderers) and the
// Python string operations the renderers share.
#ifndef GAI_CORE_CHATPARTS_H
#define GAI_CORE_CHATPARTS_H

#include "gai/ChatTemplate.h"

#include <optional>
#include <string>
#include <vector>

namespace gai {

/// The special tokens a template reads: tokenizer_config.json's.
struct ChatTokens {
  const std::optional<std::string> &bos;
  const std::optional<std::string> &eos;
};

using ChatRenderer = StatusOr<std::string> (*)(
    const std::vector<ChatMessage> &messages, const ChatTokens &tokens,
    const ChatRenderOptions &options);

struct KnownChatTemplate {
  const char *name;      ///< "Llama 3.1"
  const char *family;    ///< "Llama 3", for the error naming a near miss
  const char *model;     ///< whose tokenizer_config.json published the text
  const char *endOfTurn; ///< null: the eos token
  ChatRenderer render;
  const char *text; ///< the template as published
};

/// Each family's templates (ChatLlama.cpp: Llama 3 and the [INST] formats;
/// ChatOthers.cpp: ChatML, Gemma and Phi-3).
void addLlamaChatTemplates(std::vector<KnownChatTemplate> &out);
void addOtherChatTemplates(std::vector<KnownChatTemplate> &out);

namespace chat {

/// Python's str.strip(), lstrip() and rstrip() without arguments (Jinja's
/// trim): Unicode whitespace as str.isspace() defines it, in UTF-8.
std::string strip(const std::string &s);
std::string lstrip(const std::string &s);
std::string rstrip(const std::string &s);
/// str.strip(chars) and friends with an explicit set of ASCII characters.
std::string stripChars(const std::string &s, const char *chars);
std::string lstripChars(const std::string &s, const char *chars);
std::string rstripChars(const std::string &s, const char *chars);
/// s.split(sep)[0] and s.split(sep)[-1].
std::string beforeFirst(const std::string &s, const std::string &sep);
std::string afterLast(const std::string &s, const std::string &sep);

/// The error a template's raise_exception(message) gives.
Status raised(const std::string &message);
/// A special token the template concatenates: Jinja fails on an undefined
/// one; `name` is bos_token or eos_token.
StatusOr<std::string> required(const std::optional<std::string> &token,
                               const char *name);
/// One the template prints alone: undefined prints nothing.
inline std::string orEmpty(const std::optional<std::string> &token) {
  return token ? *token : std::string();
}
/// Messages of roles other than system, user and assistant (tools), which
/// gai renders for no template, are refused; so is an empty conversation.
Status checkRoles(const std::vector<ChatMessage> &messages);

} // namespace chat
} // namespace gai

#endif // GAI_CORE_CHATPARTS_H
