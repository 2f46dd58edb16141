// HFTokenizer: tokenizer.json's added tokens, normalizer, pre-tokenizer, BPE,
// post-processor and decoder put together in HF's order.
#include "TokenizerParts.h"

#include "gai/SafeFile.h"
#include "gai/Tokenizer.h"

#include <algorithm>

namespace gai {

using tok::Json;

namespace {

struct AddedToken {
  std::string content; // matched as is, or normalized when `normalized`
  int32_t id;
  bool special, normalized;
};

/// Text split around added tokens, matched leftmost-longest as HF's
/// Aho-Corasick does. A special token that is not allowed is still matched
/// (so it hides what overlaps it) but stays text.
struct Segment {
  std::string text;
  int32_t id; // -1: text
  bool atStart;
};

std::vector<Segment> splitAdded(const std::string &text, const std::vector<AddedToken> &tokens,
                                bool allowSpecial, bool atStart) {
  std::vector<Segment> out;
  size_t last = 0;
  auto addText = [&](size_t end) {
    if (end > last)
      out.push_back({text.substr(last, end - last), -1, atStart && last == 0});
  };
  for (size_t i = 0; i < text.size();) {
    const AddedToken *best = nullptr;
    for (const AddedToken &t : tokens)
      if (t.content.size() > (best ? best->content.size() : 0) &&
          text.compare(i, t.content.size(), t.content) == 0)
        best = &t;
    if (!best) {
      ++i;
      continue;
    }
    if (best->special && !allowSpecial) {
      i += best->content.size();
      continue;
    }
    addText(i);
    out.push_back({best->content, best->id, false});
    i += best->content.size();
    last = i;
  }
  addText(text.size());
  return out;
}

} // namespace

struct HFTokenizer::Impl {
  tok::Bpe model;
  tok::Normalizer normalizer;
  tok::PreTokenizer preTokenizer;
  tok::Decoder decoder;
  std::vector<AddedToken> rawTokens, normalizedTokens;
  std::unordered_map<int32_t, AddedToken> addedById;
  std::vector<int32_t> prefix, suffix; // the post-processor's tokens
  int64_t vocab = 0;
};

namespace {

Status parsePostProcessor(const Json &json, std::vector<int32_t> &prefix,
                          std::vector<int32_t> &suffix) {
  const std::string where = "post_processor";
  if (json.is_null())
    return Status::ok();
  std::string type = json.is_object() ? json.value("type", std::string()) : "";
  if (type == "ByteLevel") // offsets only
    return Status::ok();
  if (type == "Sequence") {
    if (!json.contains("processors") || !json["processors"].is_array())
      return Status::error(where + ": field 'processors' should be an array");
    for (const Json &child : json["processors"]) {
      std::vector<int32_t> p, s;
      if (Status st = parsePostProcessor(child, p, s); !st)
        return st;
      prefix.insert(prefix.begin(), p.begin(), p.end());
      suffix.insert(suffix.end(), s.begin(), s.end());
    }
    return Status::ok();
  }
  if (type == "TemplateProcessing") {
    const Json &single = json.value("single", Json());
    const Json &specials = json.value("special_tokens", Json::object());
    if (!single.is_array())
      return Status::error(where + " TemplateProcessing: field 'single' should be an array");
    bool seenSequence = false;
    for (const Json &item : single) {
      if (item.contains("Sequence")) {
        seenSequence = true;
        continue;
      }
      std::string name = item.contains("SpecialToken") && item["SpecialToken"].is_object()
                             ? item["SpecialToken"].value("id", std::string())
                             : "";
      if (!specials.contains(name) || !specials[name].contains("ids") ||
          !specials[name]["ids"].is_array())
        return Status::error(where + " TemplateProcessing: special token '" + name +
                             "' of 'single' has no ids in 'special_tokens'");
      for (const Json &id : specials[name]["ids"]) {
        if (!id.is_number_unsigned() || id.get<uint64_t>() > INT32_MAX)
          return Status::error(where + " TemplateProcessing: an id of '" + name +
                               "' should be an id >= 0");
        (seenSequence ? suffix : prefix).push_back(static_cast<int32_t>(id.get<uint64_t>()));
      }
    }
    return Status::ok();
  }
  if (type.empty())
    return Status::error(where + ": expected an object with a \"type\"");
  return Status::error(where + " '" + type + "' is not supported");
}

} // namespace

HFTokenizer::HFTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HFTokenizer::~HFTokenizer() = default;

StatusOr<std::unique_ptr<HFTokenizer>> HFTokenizer::load(const std::string &path) {
  auto bytes = readRegularFile(path);
  if (!bytes)
    return bytes.status();
  return fromJson(std::string(bytes->begin(), bytes->end()), path);
}

StatusOr<std::unique_ptr<HFTokenizer>> HFTokenizer::fromJson(const std::string &text,
                                                             const std::string &origin) {
  auto fail = [&](const Status &s) { return Status::error(origin + ": " + s.message()); };
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return fail(Status::error("not a tokenizer.json (expected a JSON object)"));
  for (const char *field : {"truncation", "padding"})
    if (json.contains(field) && !json[field].is_null())
      return fail(Status::error(std::string(field) + " is not supported (expected null)"));

  auto impl = std::make_unique<Impl>();
  auto model = tok::Bpe::parse(json.value("model", Json()));
  if (!model)
    return fail(model.status());
  impl->model = std::move(*model);
  auto normalizer = tok::parseNormalizer(json.value("normalizer", Json()));
  if (!normalizer)
    return fail(normalizer.status());
  impl->normalizer = std::move(*normalizer);
  auto preTokenizer = tok::parsePreTokenizer(json.value("pre_tokenizer", Json()));
  if (!preTokenizer)
    return fail(preTokenizer.status());
  impl->preTokenizer = std::move(*preTokenizer);
  auto decoder = tok::parseDecoder(json.value("decoder", Json()));
  if (!decoder)
    return fail(decoder.status());
  impl->decoder = std::move(*decoder);
  if (Status s = parsePostProcessor(json.value("post_processor", Json()), impl->prefix,
                                    impl->suffix);
      !s)
    return fail(s);

  impl->vocab = impl->model.size();
  const Json &added = json.value("added_tokens", Json::array());
  if (!added.is_array())
    return fail(Status::error("field 'added_tokens' should be an array"));
  for (const Json &t : added) {
    if (!t.is_object() || !t.value("content", Json()).is_string() ||
        !t.value("id", Json()).is_number_unsigned() || t["id"].get<uint64_t>() > INT32_MAX)
      return fail(Status::error("each of 'added_tokens' should have a string 'content' and an id"));
    AddedToken token{t["content"].get<std::string>(), static_cast<int32_t>(t["id"].get<uint64_t>()),
                     t.value("special", false), t.value("normalized", false)};
    for (const char *option : {"single_word", "lstrip", "rstrip"})
      if (t.value(option, false))
        return fail(Status::error("added token '" + token.content + "': " + option +
                                  " is not supported"));
    if (token.content.empty())
      return fail(Status::error("added token " + std::to_string(token.id) + " is empty"));
    impl->addedById[token.id] = token;
    impl->vocab = std::max<int64_t>(impl->vocab, int64_t(token.id) + 1);
    if (token.normalized) {
      if (impl->normalizer)
        token.content = impl->normalizer(token.content);
      impl->normalizedTokens.push_back(token);
    } else {
      impl->rawTokens.push_back(token);
    }
  }
  for (int32_t id : impl->prefix)
    impl->vocab = std::max<int64_t>(impl->vocab, int64_t(id) + 1);
  for (int32_t id : impl->suffix)
    impl->vocab = std::max<int64_t>(impl->vocab, int64_t(id) + 1);
  return std::unique_ptr<HFTokenizer>(new HFTokenizer(std::move(impl)));
}

int64_t HFTokenizer::vocabSize() const { return impl_->vocab; }

StatusOr<std::vector<int32_t>> HFTokenizer::encode(const std::string &text, bool allowSpecial,
                                                   bool addSpecial) const {
  const Impl &m = *impl_;
  std::vector<int32_t> ids;
  if (addSpecial)
    ids = m.prefix;
  for (Segment &raw : splitAdded(tok::utf8Lossy(text), m.rawTokens, allowSpecial, true)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string normalized = m.normalizer ? m.normalizer(raw.text) : raw.text;
    for (Segment &seg : splitAdded(normalized, m.normalizedTokens, allowSpecial, raw.atStart)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      std::vector<tok::Piece> pieces{{std::move(seg.text), seg.atStart}};
      if (m.preTokenizer)
        pieces = m.preTokenizer(std::move(pieces));
      for (const tok::Piece &piece : pieces)
        m.model.encodeWord(piece.text, ids);
    }
  }
  if (addSpecial)
    ids.insert(ids.end(), m.suffix.begin(), m.suffix.end());
  return ids;
}

std::string HFTokenizer::decode(const std::vector<int32_t> &ids, bool skipSpecial) const {
  const Impl &m = *impl_;
  std::vector<std::string> tokens;
  for (int32_t id : ids) {
    auto added = m.addedById.find(id);
    if (added != m.addedById.end()) {
      if (!skipSpecial || !added->second.special)
        tokens.push_back(added->second.content);
    } else if (const std::string *token = m.model.token(id)) {
      tokens.push_back(*token);
    }
  }
  if (m.decoder)
    tokens = m.decoder(std::move(tokens));
  else if (tokens.size() > 1) // HF joins with spaces when there is no decoder
    for (size_t i = 1; i < tokens.size(); ++i)
      tokens[i] = " " + tokens[i];
  std::string text;
  for (const std::string &t : tokens)
    text += t;
  return text;
}

} // namespace gai
