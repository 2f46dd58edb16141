// Parses generation_config.json (eos and bos ids, sampling, lengths).
#include "frontend/GenerationConfig.h"

#include "frontend/JsonFields.h"
#include "frontend/ModelSpec.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace llvm;

namespace gai {

Expected<GenerationDefaults> parseGenerationConfig(StringRef text, StringRef fileName) {
  Expected<json::Value> value = parseJsonText(text, fileName);
  if (!value)
    return value.takeError();
  JsonErrors errors(fileName);
  const json::Object *object = value->getAsObject();
  if (!object)
    return createStringError(inconvertibleErrorCode(), "%s: expected a JSON object",
                             fileName.str().c_str());
  JsonFields fields(*object, "", errors);
  GenerationDefaults out;
  // Token ids are non-negative int32s; the vocabulary is checked at run time.
  if (const json::Value *eos = object->get("eos_token_id"); eos && !eos->getAsNull()) {
    std::vector<const json::Value *> ids;
    if (const json::Array *list = eos->getAsArray())
      for (const json::Value &id : *list)
        ids.push_back(&id);
    else
      ids.push_back(eos);
    for (const json::Value *id : ids) {
      std::optional<int64_t> n = id->getAsInteger();
      if (!n || *n < 0 || *n > INT32_MAX) {
        fields.report("eos_token_id", "expected a token id or a list of token ids "
                                      "in [0, 2147483647]");
        break;
      }
      out.eos.push_back(*n);
    }
  }
  auto integer = [&](StringRef key, std::optional<int64_t> &slot, int64_t min) {
    if (!fields.has(key))
      return;
    int64_t n = 0;
    fields.integer(key, n, min);
    slot = n;
  };
  auto number = [&](StringRef key, std::optional<double> &slot, double min) {
    if (!fields.has(key))
      return;
    double x = 0;
    fields.number(key, x, min);
    slot = x;
  };
  integer("bos_token_id", out.bos, 0);
  integer("top_k", out.topK, 0);
  integer("max_new_tokens", out.maxNewTokens, 0);
  integer("max_length", out.maxLength, 1);
  number("temperature", out.temperature, 0);
  number("top_p", out.topP, 0);
  number("min_p", out.minP, 0);
  number("repetition_penalty", out.repetitionPenalty, 0);
  if (out.minP && *out.minP > 1)
    fields.report("min_p", "expected a number in [0, 1], got " + std::to_string(*out.minP));
  if (out.repetitionPenalty && !(*out.repetitionPenalty > 0))
    fields.report("repetition_penalty", "expected a number > 0 (1: none)");
  if (out.topP && (*out.topP <= 0 || *out.topP > 1))
    fields.report("top_p", "expected a number in (0, 1], got " + std::to_string(*out.topP));
  if (fields.has("do_sample")) {
    bool sample = false;
    fields.boolean("do_sample", sample);
    out.doSample = sample;
  }
  if (Error e = errors.takeError())
    return std::move(e);
  return out;
}

/// Without a generation_config.json, transformers takes the eos and bos ids
/// of config.json itself (GenerationConfig.from_model_config): so do we,
/// and nothing else of it.
static Expected<std::optional<GenerationDefaults>> eosOfModelConfig(StringRef configPath) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer = MemoryBuffer::getFile(configPath, true);
  if (!buffer)
    return createStringError(buffer.getError(), "%s: cannot read: %s", configPath.str().c_str(),
                             buffer.getError().message().c_str());
  Expected<json::Value> value = parseJsonText((*buffer)->getBuffer(), configPath);
  if (!value)
    return value.takeError();
  const json::Object *object = value->getAsObject();
  if (!object)
    return std::nullopt; // the spec parser says what is wrong with it
  json::Object ids;
  for (const char *key : {"eos_token_id", "bos_token_id"})
    if (const json::Value *id = object->get(key); id && !id->getAsNull())
      ids[key] = *id;
  if (ids.empty())
    return std::nullopt;
  std::string text;
  raw_string_ostream os(text);
  os << json::Value(std::move(ids));
  Expected<GenerationDefaults> parsed = parseGenerationConfig(os.str(), configPath);
  if (!parsed)
    return parsed.takeError();
  return std::optional<GenerationDefaults>(std::move(*parsed));
}

Expected<std::optional<GenerationDefaults>> loadGenerationConfigBeside(StringRef specPath) {
  if (sys::path::filename(specPath) != "config.json")
    return std::nullopt;
  SmallString<256> path = sys::path::parent_path(specPath);
  sys::path::append(path, "generation_config.json");
  if (!sys::fs::exists(path))
    return eosOfModelConfig(specPath);
  ErrorOr<std::unique_ptr<MemoryBuffer>> buffer = MemoryBuffer::getFile(path, true);
  if (!buffer)
    return createStringError(buffer.getError(), "%s: cannot read: %s", path.c_str(),
                             buffer.getError().message().c_str());
  Expected<GenerationDefaults> parsed = parseGenerationConfig((*buffer)->getBuffer(), path);
  if (!parsed)
    return parsed.takeError();
  return std::optional<GenerationDefaults>(std::move(*parsed));
}

} // namespace gai
