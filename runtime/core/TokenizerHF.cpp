// HFTokenizer: tokenizer.json's added tokens, normalizer, pre-tokenizer, BPE,
// post-processor and decoder put together in HF's order.
#include "TokenizerParts.h"

#include "gai/SafeFile.h"
#include "gai/Tokenizer.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace gai {

using tok::Json;

namespace {

struct AddedToken {
  std::string content; // matched as is, or normalized when `normalized`
  int32_t id;
  bool special = false, normalized = false;
  bool singleWord = false, lstrip = false, rstrip = false; // as in HF's added_vocabulary.rs
};

/// Bytes in the UTF-8 character that starts at `at`, or that ends at `end`.
size_t charSizeAt(const std::string &text, size_t at) {
  auto c = static_cast<uint8_t>(text[at]);
  return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
size_t charSizeBefore(const std::string &text, size_t end) {
  size_t begin = end - 1;
  while (begin > 0 && (static_cast<uint8_t>(text[begin]) & 0xC0) == 0x80)
    --begin;
  return end - begin;
}

/// Rust regex's Unicode \s (the White_Space property), which lstrip and
/// rstrip take: is the character at `at` one?
bool isWhiteSpace(const std::string &text, size_t at) {
  auto byte = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(text[at + i])); };
  uint32_t c;
  switch (charSizeAt(text, at)) {
  case 1:
    c = byte(0);
    break;
  case 2:
    c = (byte(0) & 0x1F) << 6 | (byte(1) & 0x3F);
    break;
  case 3:
    c = (byte(0) & 0x0F) << 12 | (byte(1) & 0x3F) << 6 | (byte(2) & 0x3F);
    break;
  default: // none above U+FFFF
    return false;
  }
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/// Rust regex's Unicode \w, which single_word takes for a word character.
const char *kWordChar = R"(\A[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]\z)";

/// Text between added tokens, or an added token.
struct Segment {
  std::string text;
  int32_t id; // -1: text
  bool atStart;
};

/// Text split around added tokens as HF's find_matches splits it, step for
/// step. Tokens are matched leftmost-longest, as its Aho-Corasick does; a
/// match that is not taken (a special token that is not allowed, a
/// single_word token inside a word) still hides what overlaps it and stays
/// text. lstrip takes the whitespace before a match back to where the
/// previous token ended; rstrip all the whitespace after it, even whitespace
/// that holds the next match: that one is a token too, and the text after it
/// is read again from its end.
StatusOr<std::vector<Segment>> splitAdded(const std::string &text,
                                          const std::vector<AddedToken> &tokens,
                                          const tok::Pattern *wordChar, bool allowSpecial,
                                          bool atStart) {
  auto isWord = [&](size_t at) {
    return !wordChar->find(text.substr(at, charSizeAt(text, at))).empty();
  };
  std::vector<Segment> out;
  size_t last = 0; // where the previous token's span ended
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
    size_t start = i, stop = i + best->content.size();
    i = stop;
    if (best->special && !allowSpecial)
      continue;
    if (best->singleWord && ((start > 0 && isWord(start - charSizeBefore(text, start))) ||
                             (stop < text.size() && isWord(stop))))
      continue;
    if (best->lstrip) {
      size_t from = start;
      while (from > 0 && isWhiteSpace(text, from - charSizeBefore(text, from)))
        from -= charSizeBefore(text, from);
      start = std::max(from, last);
    }
    if (best->rstrip)
      while (stop < text.size() && isWhiteSpace(text, stop))
        stop += charSizeAt(text, stop);
    if (start > stop) // HF panics ("AddedVocabulary bad split")
      return Status::error("added token '" + best->content +
                           "' lies inside whitespace the token before it stripped, which HF "
                           "tokenizers cannot split either");
    if (last < start)
      out.push_back({text.substr(last, start - last), -1, atStart && last == 0});
    if (start < stop) // HF drops empty spans, a token's too
      out.push_back({best->content, best->id, false});
    last = stop;
  }
  if (last != text.size())
    out.push_back({text.substr(last), -1, atStart && last == 0});
  return out;
}

} // namespace

struct HFTokenizer::Impl {
  tok::Bpe model;
  tok::Normalizer normalizer;
  tok::PreTokenizer preTokenizer;
  tok::Decoder decoder;
  std::vector<AddedToken> rawTokens, normalizedTokens;
  std::optional<tok::Pattern> wordChar; // when a token is single_word
  // As HF decodes: an added token as it is matched (normalized when
  // `normalized`), and a token is special when its text is a special one's.
  std::unordered_map<int32_t, std::string> addedText;
  std::unordered_set<std::string> specialText;
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
    const uint64_t mostId = impl->model.size() + added.size() + tok::kMostUnusedIds;
    if (t["id"].get<uint64_t>() >= mostId)
      return fail(Status::error("added token id " + std::to_string(t["id"].get<uint64_t>()) +
                                " should be below " + std::to_string(mostId) + " (the " +
                                std::to_string(impl->model.size()) + " of the model, " +
                                std::to_string(added.size()) + " added and at most " +
                                std::to_string(tok::kMostUnusedIds) + " unused ids)"));
    AddedToken token{t["content"].get<std::string>(),
                     static_cast<int32_t>(t["id"].get<uint64_t>())};
    if (token.content.empty())
      return fail(Status::error("added token " + std::to_string(token.id) + " is empty"));
    for (auto [field, out] : {std::pair<const char *, bool *>{"special", &token.special},
                              {"normalized", &token.normalized},
                              {"single_word", &token.singleWord},
                              {"lstrip", &token.lstrip},
                              {"rstrip", &token.rstrip}}) {
      Json value = t.value(field, Json());
      if (!value.is_null() && !value.is_boolean())
        return fail(Status::error("added token '" + token.content + "': field '" + field +
                                  "' should be true or false"));
      *out = value.is_boolean() && value.get<bool>();
    }
    if (token.singleWord && !impl->wordChar) {
      auto wordChar = tok::Pattern::parse(Json{{"Regex", kWordChar}}, "single_word");
      if (!wordChar)
        return fail(wordChar.status());
      impl->wordChar = std::move(*wordChar);
    }
    if (token.special)
      impl->specialText.insert(token.content);
    impl->vocab = std::max<int64_t>(impl->vocab, int64_t(token.id) + 1);
    if (token.normalized && impl->normalizer)
      token.content = impl->normalizer(token.content);
    impl->addedText[token.id] = token.content;
    (token.normalized ? impl->normalizedTokens : impl->rawTokens).push_back(std::move(token));
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
  const tok::Pattern *wordChar = m.wordChar ? &*m.wordChar : nullptr;
  std::vector<int32_t> ids;
  if (addSpecial)
    ids = m.prefix;
  auto raws = splitAdded(tok::utf8Lossy(text), m.rawTokens, wordChar, allowSpecial, true);
  if (!raws)
    return raws.status();
  for (Segment &raw : *raws) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string normalized = m.normalizer ? m.normalizer(raw.text) : raw.text;
    auto segs = splitAdded(normalized, m.normalizedTokens, wordChar, allowSpecial, raw.atStart);
    if (!segs)
      return segs.status();
    for (Segment &seg : *segs) {
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
    auto added = m.addedText.find(id);
    const std::string *token = added != m.addedText.end() ? &added->second : m.model.token(id);
    if (token && !(skipSpecial && m.specialText.count(*token)))
      tokens.push_back(*token);
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
