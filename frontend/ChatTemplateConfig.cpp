// Reads chat templates from tokenizer_config.json, chat_template.jinja or a
// file given to gaic.
#include "frontend/ChatTemplateConfig.h"

#include "frontend/ModelSpec.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace gai {
namespace {

Error fail(StringRef fileName, const Twine &message) {
  return createStringError(inconvertibleErrorCode(), "%s: %s",
                           fileName.str().c_str(), message.str().c_str());
}

Expected<std::string> readText(StringRef path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer =
      MemoryBuffer::getFile(path, true);
  if (!buffer)
    return fail(path, "cannot read: " + buffer.getError().message());
  return (*buffer)->getBuffer().str();
}

/// tokenizer_config.json's parts: a chat template (if any) and the tokens.
struct TokenizerConfig {
  std::optional<std::string> text, bos, eos;
};

/// A special token: a string, an AddedToken object ({"content": ...}) or
/// null.
Expected<std::optional<std::string>>
tokenOf(const json::Object &config, StringRef key, StringRef fileName) {
  const json::Value *value = config.get(key);
  if (!value || value->getAsNull())
    return std::nullopt;
  if (std::optional<StringRef> s = value->getAsString())
    return std::optional<std::string>(s->str());
  if (const json::Object *added = value->getAsObject())
    if (std::optional<StringRef> content = added->getString("content"))
      return std::optional<std::string>(content->str());
  return fail(fileName,
              key +
                  ": expected a string or an object with a \"content\" string");
}

/// chat_template: a string, or a list of {name, template} of which
/// transformers takes "default".
Expected<std::optional<std::string>> templateOf(const json::Object &config,
                                                StringRef fileName) {
  const json::Value *value = config.get("chat_template");
  if (!value || value->getAsNull())
    return std::nullopt;
  if (std::optional<StringRef> s = value->getAsString())
    return std::optional<std::string>(s->str());
  const json::Array *list = value->getAsArray();
  if (!list)
    return fail(
        fileName,
        "chat_template: expected a string or a list of {name, template}");
  std::string names;
  for (const json::Value &entry : *list) {
    const json::Object *object = entry.getAsObject();
    std::optional<StringRef> name =
        object ? object->getString("name") : std::nullopt;
    std::optional<StringRef> text =
        object ? object->getString("template") : std::nullopt;
    if (!name || !text)
      return fail(
          fileName,
          "chat_template: expected a string or a list of {name, template}");
    if (*name == "default")
      return std::optional<std::string>(text->str());
    names += (names.empty() ? "" : ", ") + name->str();
  }
  return fail(
      fileName,
      "chat_template: none of its templates is named \"default\" (it has " +
          names + ")");
}

Expected<TokenizerConfig> readTokenizerConfig(StringRef text,
                                              StringRef fileName) {
  Expected<json::Value> value = parseJsonText(text, fileName);
  if (!value)
    return value.takeError();
  const json::Object *config = value->getAsObject();
  if (!config)
    return fail(fileName, "expected a JSON object");
  TokenizerConfig out;
  auto chat = templateOf(*config, fileName);
  if (!chat)
    return chat.takeError();
  auto bos = tokenOf(*config, "bos_token", fileName);
  if (!bos)
    return bos.takeError();
  auto eos = tokenOf(*config, "eos_token", fileName);
  if (!eos)
    return eos.takeError();
  return TokenizerConfig{std::move(*chat), std::move(*bos), std::move(*eos)};
}

/// The file `name` beside an HF config.json, or empty.
std::string beside(StringRef specPath, StringRef name) {
  if (sys::path::filename(specPath) != "config.json")
    return "";
  SmallString<256> path = sys::path::parent_path(specPath);
  sys::path::append(path, name);
  return sys::fs::exists(path) ? std::string(path) : "";
}

/// The tokenizer_config.json beside an HF config.json, if any.
Expected<std::optional<TokenizerConfig>>
tokenizerConfigBeside(StringRef specPath, std::string &path) {
  path = beside(specPath, "tokenizer_config.json");
  if (path.empty())
    return std::nullopt;
  auto text = readText(path);
  if (!text)
    return text.takeError();
  auto config = readTokenizerConfig(*text, path);
  if (!config)
    return config.takeError();
  return std::optional<TokenizerConfig>(std::move(*config));
}

} // namespace

Expected<std::optional<ChatTemplateConfig>>
parseTokenizerConfig(StringRef text, StringRef fileName) {
  auto config = readTokenizerConfig(text, fileName);
  if (!config)
    return config.takeError();
  if (!config->text)
    return std::nullopt;
  return std::optional<ChatTemplateConfig>(ChatTemplateConfig{
      *config->text, config->bos, config->eos, fileName.str()});
}

Expected<std::optional<ChatTemplateConfig>>
loadChatTemplateBeside(StringRef specPath) {
  std::string configPath;
  auto config = tokenizerConfigBeside(specPath, configPath);
  if (!config)
    return config.takeError();
  ChatTemplateConfig out;
  if (*config)
    out.bos = (*config)->bos, out.eos = (*config)->eos;
  if (std::string jinja = beside(specPath, "chat_template.jinja");
      !jinja.empty()) {
    auto text = readText(jinja);
    if (!text)
      return text.takeError();
    out.text = std::move(*text), out.origin = jinja;
    return std::optional<ChatTemplateConfig>(std::move(out));
  }
  if (!*config || !(*config)->text)
    return std::nullopt;
  out.text = *(*config)->text, out.origin = configPath;
  return std::optional<ChatTemplateConfig>(std::move(out));
}

Expected<ChatTemplateConfig> loadChatTemplateFile(StringRef path,
                                                  StringRef specPath) {
  auto text = readText(path);
  if (!text)
    return text.takeError();
  // A JSON object is a tokenizer_config.json; anything else is Jinja.
  Expected<json::Value> value = json::parse(*text);
  if (value && value->getAsObject()) {
    auto config = parseTokenizerConfig(*text, path);
    if (!config)
      return config.takeError();
    if (!*config)
      return fail(path, "a JSON object without a chat_template");
    return std::move(**config);
  }
  consumeError(value.takeError());
  std::string configPath;
  auto config = tokenizerConfigBeside(specPath, configPath);
  if (!config)
    return config.takeError();
  ChatTemplateConfig out{std::move(*text), std::nullopt, std::nullopt,
                         path.str()};
  if (*config)
    out.bos = (*config)->bos, out.eos = (*config)->eos;
  return out;
}

} // namespace gai
