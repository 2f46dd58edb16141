// Reads a model's chat template: tokenizer_config.json's chat_template and
// special tokens, chat_template.jinja, or a file given to gaic.
#ifndef GAI_FRONTEND_CHATTEMPLATECONFIG_H
#define GAI_FRONTEND_CHATTEMPLATECONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>

namespace gai {

/// What gaic records of a chat template.
struct ChatTemplateConfig {
  std::string text; ///< the Jinja text
  /// tokenizer_config.json's bos_token and eos_token (which templates
  /// insert); nullopt where it has none.
  std::optional<std::string> bos, eos;
  std::string origin; ///< the file the text came from
};

/// The chat template of a tokenizer_config.json's text, as transformers
/// reads it: chat_template is a string, or a list of {name, template} of
/// which "default" is taken; bos_token and eos_token are strings or
/// AddedToken objects ({"content": ...}). nullopt: no chat_template.
llvm::Expected<std::optional<ChatTemplateConfig>>
parseTokenizerConfig(llvm::StringRef text, llvm::StringRef fileName);

/// The chat template beside an HF `config.json` at `specPath`:
/// chat_template.jinja (newer transformers save it there; it wins) or
/// tokenizer_config.json's, with tokenizer_config.json's special tokens.
llvm::Expected<std::optional<ChatTemplateConfig>>
loadChatTemplateBeside(llvm::StringRef specPath);

/// gaic --chat-template FILE: a JSON object with a chat_template (a
/// tokenizer_config.json), or the Jinja text itself, whose special tokens
/// are then those of the tokenizer_config.json beside `specPath`, if any.
llvm::Expected<ChatTemplateConfig>
loadChatTemplateFile(llvm::StringRef path, llvm::StringRef specPath);

} // namespace gai

#endif // GAI_FRONTEND_CHATTEMPLATECONFIG_H
