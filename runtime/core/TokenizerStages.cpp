// Normalizers, pre-tokenizers and decoders of tokenizer.json, as HF
// `tokenizers` applies them. Any other type is refused by name.
#include "TokenizerParts.h"

#include <cctype>

namespace gai::tok {

namespace {

const char *kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string typeOf(const Json &json) {
  return json.is_object() && json.contains("type") && json["type"].is_string()
             ? json["type"].get<std::string>()
             : std::string();
}

Status unsupported(const std::string &stage, const Json &json) {
  std::string type = typeOf(json);
  if (type.empty())
    return Status::error(stage + ": expected an object with a \"type\"");
  return Status::error(stage + " '" + type + "' is not supported");
}

Status badField(const std::string &where, const char *field, const char *expected) {
  return Status::error(where + ": field '" + field + "' should be " + expected);
}

/// A string field; `fallback` when absent (nullptr: required).
StatusOr<std::string> stringField(const Json &json, const char *field, const std::string &where,
                                  const char *fallback = nullptr) {
  if (!json.contains(field) || json[field].is_null()) {
    if (fallback)
      return std::string(fallback);
    return badField(where, field, "a string");
  }
  if (!json[field].is_string())
    return badField(where, field, "a string");
  return json[field].get<std::string>();
}

StatusOr<bool> boolField(const Json &json, const char *field, const std::string &where,
                         bool fallback) {
  if (!json.contains(field) || json[field].is_null())
    return fallback;
  if (!json[field].is_boolean())
    return badField(where, field, "true or false");
  return json[field].get<bool>();
}

/// A Sequence: its children, each parsed by `parse`, applied in order.
template <typename Stage, typename Parse>
StatusOr<Stage> sequence(const Json &json, const char *field, const std::string &where,
                         Parse parse) {
  if (!json.contains(field) || !json[field].is_array())
    return badField(where, field, "an array");
  std::vector<Stage> stages;
  for (const Json &child : json[field]) {
    auto stage = parse(child);
    if (!stage)
      return stage.status();
    if (*stage)
      stages.push_back(std::move(*stage));
  }
  return Stage([stages = std::move(stages)](auto value) {
    for (const Stage &stage : stages)
      value = stage(std::move(value));
    return value;
  });
}

enum class Prepend { Always, First, Never };

StatusOr<Prepend> prependScheme(const Json &json, const std::string &where) {
  if (json.contains("prepend_scheme") && !json["prepend_scheme"].is_null()) {
    std::string s = json["prepend_scheme"].is_string() ? json["prepend_scheme"].get<std::string>() : "";
    if (s == "always")
      return Prepend::Always;
    if (s == "first")
      return Prepend::First;
    if (s == "never")
      return Prepend::Never;
    return badField(where, "prepend_scheme", "\"always\", \"first\" or \"never\"");
  }
  // Files from before prepend_scheme say add_prefix_space.
  auto add = boolField(json, "add_prefix_space", where, true);
  if (!add)
    return add.status();
  return *add ? Prepend::Always : Prepend::Never;
}

StatusOr<std::string> metaspaceReplacement(const Json &json, const std::string &where) {
  auto r = stringField(json, "replacement", where, "\xE2\x96\x81");
  if (r && utf8Chars(*r).size() != 1)
    return badField(where, "replacement", "one character");
  return r;
}

} // namespace

StatusOr<Normalizer> parseNormalizer(const Json &json) {
  const std::string where = "normalizer";
  if (json.is_null())
    return Normalizer();
  std::string type = typeOf(json);
  if (type == "Sequence") {
    return sequence<Normalizer>(json, "normalizers", where, parseNormalizer);
  }
  if (type == "Prepend") {
    auto prepend = stringField(json, "prepend", where + " Prepend");
    if (!prepend)
      return prepend.status();
    return Normalizer([prepend = *prepend](const std::string &text) {
      return text.empty() ? text : prepend + text;
    });
  }
  if (type == "Replace") {
    auto pattern = Pattern::parse(json.value("pattern", Json()), where + " Replace");
    auto content = stringField(json, "content", where + " Replace");
    if (!pattern)
      return pattern.status();
    if (!content)
      return content.status();
    return Normalizer([pattern = *pattern, content = *content](const std::string &text) {
      return pattern.replaceAll(text, content);
    });
  }
  return unsupported(where, json);
}

StatusOr<PreTokenizer> parsePreTokenizer(const Json &json) {
  const std::string where = "pre_tokenizer";
  if (json.is_null())
    return PreTokenizer();
  std::string type = typeOf(json);
  if (type == "Sequence") {
    return sequence<PreTokenizer>(json, "pretokenizers", where, parsePreTokenizer);
  }
  if (type == "Split") {
    auto pattern = Pattern::parse(json.value("pattern", Json()), where + " Split");
    auto behavior = parseSplitBehavior(json.value("behavior", Json()), where + " Split");
    auto invert = boolField(json, "invert", where + " Split", false);
    if (!pattern)
      return pattern.status();
    if (!behavior)
      return behavior.status();
    if (!invert)
      return invert.status();
    return PreTokenizer([pattern = *pattern, behavior = *behavior,
                         invert = *invert](std::vector<Piece> pieces) {
      std::vector<Piece> out;
      for (Piece &piece : pieces) {
        bool first = piece.atStart;
        for (std::string &s : split(piece.text, pattern, behavior, invert)) {
          out.push_back({std::move(s), first});
          first = false;
        }
      }
      return out;
    });
  }
  if (type == "ByteLevel") {
    auto addPrefixSpace = boolField(json, "add_prefix_space", where + " ByteLevel", true);
    auto useRegex = boolField(json, "use_regex", where + " ByteLevel", true);
    if (!addPrefixSpace)
      return addPrefixSpace.status();
    if (!useRegex)
      return useRegex.status();
    auto gpt2 = Pattern::parse(Json{{"Regex", kGpt2Pattern}}, where + " ByteLevel");
    if (!gpt2)
      return gpt2.status();
    return PreTokenizer([addPrefixSpace = *addPrefixSpace, useRegex = *useRegex,
                         gpt2 = *gpt2](std::vector<Piece> pieces) {
      std::vector<Piece> out;
      for (Piece &piece : pieces) {
        if (addPrefixSpace && piece.text.rfind(' ', 0) != 0)
          piece.text = " " + piece.text;
        std::vector<std::string> parts;
        if (useRegex)
          parts = split(piece.text, gpt2, SplitBehavior::Isolated, false);
        else
          parts.push_back(std::move(piece.text));
        bool first = piece.atStart;
        for (const std::string &part : parts) {
          std::string mapped;
          for (char c : part)
            mapped += byteLevelChars()[static_cast<uint8_t>(c)];
          out.push_back({std::move(mapped), first});
          first = false;
        }
      }
      return out;
    });
  }
  if (type == "Metaspace") {
    auto replacement = metaspaceReplacement(json, where + " Metaspace");
    auto prepend = prependScheme(json, where + " Metaspace");
    auto splits = boolField(json, "split", where + " Metaspace", true);
    if (!replacement)
      return replacement.status();
    if (!prepend)
      return prepend.status();
    if (!splits)
      return splits.status();
    auto onReplacement = Pattern::parse(Json{{"String", *replacement}}, where);
    auto space = Pattern::parse(Json{{"String", " "}}, where);
    return PreTokenizer([replacement = *replacement, prepend = *prepend, splits = *splits,
                         onReplacement = *onReplacement,
                         space = *space](std::vector<Piece> pieces) {
      std::vector<Piece> out;
      for (Piece &piece : pieces) {
        std::string text = space.replaceAll(piece.text, replacement);
        bool starts = text.rfind(replacement, 0) == 0;
        if (!starts && (prepend == Prepend::Always || (prepend == Prepend::First && piece.atStart)))
          text = replacement + text;
        if (!splits) {
          out.push_back({std::move(text), piece.atStart});
          continue;
        }
        bool first = piece.atStart;
        for (std::string &s : split(text, onReplacement, SplitBehavior::MergedWithNext, false)) {
          out.push_back({std::move(s), first});
          first = false;
        }
      }
      return out;
    });
  }
  return unsupported(where, json);
}

StatusOr<Decoder> parseDecoder(const Json &json) {
  const std::string where = "decoder";
  if (json.is_null())
    return Decoder();
  std::string type = typeOf(json);
  if (type == "Sequence") {
    return sequence<Decoder>(json, "decoders", where, parseDecoder);
  }
  if (type == "ByteLevel") {
    // A token with a character outside the byte map (an added token) keeps its bytes.
    return Decoder([](std::vector<std::string> tokens) {
      std::string bytes;
      for (const std::string &token : tokens) {
        std::string mapped;
        bool all = true;
        for (const std::string &c : utf8Chars(token)) {
          auto it = byteLevelBytes().find(c);
          if (it == byteLevelBytes().end()) {
            all = false;
            break;
          }
          mapped += static_cast<char>(it->second);
        }
        bytes += all ? mapped : token;
      }
      return std::vector<std::string>{utf8Lossy(bytes)};
    });
  }
  if (type == "Replace") {
    auto pattern = Pattern::parse(json.value("pattern", Json()), where + " Replace");
    auto content = stringField(json, "content", where + " Replace");
    if (!pattern)
      return pattern.status();
    if (!content)
      return content.status();
    return Decoder([pattern = *pattern, content = *content](std::vector<std::string> tokens) {
      for (std::string &t : tokens)
        t = pattern.replaceAll(t, content);
      return tokens;
    });
  }
  if (type == "ByteFallback") {
    // A run of <0xHH> tokens becomes its text if valid UTF-8, else one
    // U+FFFD per byte.
    return Decoder([](std::vector<std::string> tokens) {
      std::vector<std::string> out;
      std::string run;
      auto flush = [&] {
        if (run.empty())
          return;
        if (isValidUtf8(run)) {
          out.push_back(run);
        } else {
          for (size_t i = 0; i < run.size(); ++i)
            out.push_back("\xEF\xBF\xBD");
        }
        run.clear();
      };
      for (std::string &t : tokens) {
        bool isByte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
                      std::isxdigit(static_cast<uint8_t>(t[3])) &&
                      std::isxdigit(static_cast<uint8_t>(t[4]));
        if (isByte) {
          run += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      return out;
    });
  }
  if (type == "Fuse") {
    return Decoder([](std::vector<std::string> tokens) {
      std::string all;
      for (const std::string &t : tokens)
        all += t;
      return std::vector<std::string>{all};
    });
  }
  if (type == "Strip") {
    auto content = stringField(json, "content", where + " Strip");
    if (!content)
      return content.status();
    if (utf8Chars(*content).size() != 1)
      return badField(where + " Strip", "content", "one character");
    if (!json.value("start", Json()).is_number_unsigned() ||
        !json.value("stop", Json()).is_number_unsigned())
      return badField(where + " Strip", "start and stop", "counts >= 0");
    size_t start = json["start"].get<size_t>(), stop = json["stop"].get<size_t>();
    return Decoder([content = *content, start, stop](std::vector<std::string> tokens) {
      for (std::string &t : tokens) {
        std::vector<std::string> chars = utf8Chars(t);
        size_t begin = 0, end = chars.size();
        while (begin < start && begin < chars.size() && chars[begin] == content)
          ++begin;
        for (size_t i = 0; i < stop && end > begin && chars[end - 1] == content; ++i)
          --end;
        std::string kept;
        for (size_t i = begin; i < end; ++i)
          kept += chars[i];
        t = kept;
      }
      return tokens;
    });
  }
  if (type == "Metaspace") {
    auto replacement = metaspaceReplacement(json, where + " Metaspace");
    auto prepend = prependScheme(json, where + " Metaspace");
    if (!replacement)
      return replacement.status();
    if (!prepend)
      return prepend.status();
    // The first token loses its replacement characters; the rest become spaces.
    return Decoder([replacement = *replacement, prepend = *prepend](std::vector<std::string> tokens) {
      for (size_t i = 0; i < tokens.size(); ++i) {
        std::string out;
        for (const std::string &c : utf8Chars(tokens[i])) {
          if (c != replacement)
            out += c;
          else if (i != 0 || prepend == Prepend::Never)
            out += ' ';
        }
        tokens[i] = out;
      }
      return tokens;
    });
  }
  return unsupported(where, json);
}

} // namespace gai::tok
