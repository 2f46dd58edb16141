// UTF-8, PCRE2 patterns and HF's split behaviours.
#include "TokenizerParts.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

namespace gai::tok {

namespace {

/// Length of the valid UTF-8 sequence at `i`, or 0 and in `bad` the length
/// of the maximal subpart to replace (at least 1).
size_t validSequence(const std::string &s, size_t i, size_t &bad) {
  auto at = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = at(i);
  bad = 1;
  if (c < 0x80)
    return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0)
      lo = 0xA0;
    if (c == 0xED)
      hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0)
      lo = 0x90;
    if (c == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size())
      return bad = k, 0;
    uint8_t b = at(i + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF))
      return bad = k, 0;
  }
  return need + 1;
}

} // namespace

std::string utf8Lossy(const std::string &bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    size_t bad, n = validSequence(bytes, i, bad);
    if (n) {
      out.append(bytes, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

bool isValidUtf8(const std::string &bytes) {
  for (size_t i = 0; i < bytes.size();) {
    size_t bad, n = validSequence(bytes, i, bad);
    if (!n)
      return false;
    i += n;
  }
  return true;
}

std::vector<std::string> utf8Chars(const std::string &text) {
  std::vector<std::string> chars;
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<uint8_t>(text[i]);
    size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    chars.push_back(text.substr(i, n));
    i += n;
  }
  return chars;
}

/// A compiled PCRE2 pattern, Unicode-aware (\p{L}, \s, \d over all of Unicode).
class Regex {
public:
  explicit Regex(pcre2_code *code) : code_(code) {
    jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;

  std::vector<Span> find(const std::string &text) const {
    std::vector<Span> spans;
    pcre2_match_data *data = pcre2_match_data_create_from_pattern(code_, nullptr);
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t at = 0;
    while (at <= text.size()) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), at, 0, data, nullptr)
                    : pcre2_match(code_, subject, text.size(), at, 0, data, nullptr);
      if (rc < 0)
        break;
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(data);
      spans.emplace_back(ov[0], ov[1]);
      if (ov[1] > ov[0]) {
        at = ov[1];
        continue;
      }
      // An empty match: go on from the next character.
      at = ov[1] + 1;
      while (at < text.size() && (static_cast<uint8_t>(text[at]) & 0xC0) == 0x80)
        ++at;
    }
    pcre2_match_data_free(data);
    return spans;
  }

private:
  pcre2_code *code_;
  bool jit_;
};

StatusOr<Pattern> Pattern::parse(const Json &json, const std::string &where) {
  Pattern p;
  if (json.is_object() && json.contains("String") && json["String"].is_string()) {
    p.literal_ = json["String"].get<std::string>();
    if (p.literal_.empty())
      return Status::error(where + ": the pattern's String is empty");
    return p;
  }
  if (!json.is_object() || !json.contains("Regex") || !json["Regex"].is_string())
    return Status::error(where + ": expected a pattern {\"String\": ...} or {\"Regex\": ...}");
  std::string source = json["Regex"].get<std::string>();
  int error;
  PCRE2_SIZE offset;
  pcre2_code *code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    return Status::error(where + ": the regex does not compile at offset " +
                         std::to_string(offset) + ": " + reinterpret_cast<char *>(message));
  }
  p.regex_ = std::make_shared<Regex>(code);
  return p;
}

std::vector<Span> Pattern::find(const std::string &text) const {
  if (regex_)
    return regex_->find(text);
  std::vector<Span> spans;
  for (size_t at = text.find(literal_); at != std::string::npos;
       at = text.find(literal_, at + literal_.size()))
    spans.emplace_back(at, at + literal_.size());
  return spans;
}

std::string Pattern::replaceAll(const std::string &text, const std::string &with) const {
  std::string out;
  size_t last = 0;
  for (auto [b, e] : find(text)) {
    out.append(text, last, b - last);
    out += with;
    last = e;
  }
  out.append(text, last, std::string::npos);
  return out;
}

StatusOr<SplitBehavior> parseSplitBehavior(const Json &json, const std::string &where) {
  std::string name = json.is_string() ? json.get<std::string>() : "";
  if (name == "Removed")
    return SplitBehavior::Removed;
  if (name == "Isolated")
    return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious")
    return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext")
    return SplitBehavior::MergedWithNext;
  if (name == "Contiguous")
    return SplitBehavior::Contiguous;
  return Status::error(where + ": behavior '" + name +
                       "' is not one of Removed, Isolated, MergedWithPrevious, "
                       "MergedWithNext, Contiguous");
}

std::vector<std::string> split(const std::string &text, const Pattern &pattern,
                               SplitBehavior behavior, bool invert) {
  // The whole text as alternating spans, each marked match or not.
  std::vector<std::pair<Span, bool>> parts;
  size_t last = 0;
  for (auto [b, e] : pattern.find(text)) {
    if (b != last)
      parts.push_back({{last, b}, invert});
    parts.push_back({{b, e}, !invert});
    last = e;
  }
  if (last != text.size() || text.empty())
    parts.push_back({{last, text.size()}, invert});

  std::vector<std::pair<Span, bool>> kept; // span, remove
  bool previous = false;
  switch (behavior) {
  case SplitBehavior::Removed:
    kept = parts;
    break;
  case SplitBehavior::Isolated:
    for (auto &[span, match] : parts)
      kept.push_back({span, false});
    break;
  case SplitBehavior::Contiguous:
    for (auto &[span, match] : parts) {
      if (match == previous && !kept.empty())
        kept.back().first.second = span.second;
      else
        kept.push_back({span, false});
      previous = match;
    }
    break;
  case SplitBehavior::MergedWithPrevious:
    for (auto &[span, match] : parts) {
      if (match && !previous && !kept.empty())
        kept.back().first.second = span.second;
      else
        kept.push_back({span, false});
      previous = match;
    }
    break;
  case SplitBehavior::MergedWithNext:
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (it->second && !previous && !kept.empty())
        kept.back().first.first = it->first.first;
      else
        kept.push_back({it->first, false});
      previous = it->second;
    }
    std::reverse(kept.begin(), kept.end());
    break;
  }
  std::vector<std::string> pieces;
  for (auto &[span, remove] : kept)
    if (!remove && span.second > span.first)
      pieces.push_back(text.substr(span.first, span.second - span.first));
  return pieces;
}

const std::vector<std::string> &byteLevelChars() {
  static const std::vector<std::string> chars = [] {
    std::vector<std::string> out(256);
    auto encode = [](uint32_t cp) {
      std::string s;
      if (cp < 0x80) {
        s += static_cast<char>(cp);
      } else {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
      }
      return s;
    };
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      out[b] = encode(printable ? b : next++);
    }
    return out;
  }();
  return chars;
}

const std::unordered_map<std::string, uint8_t> &byteLevelBytes() {
  static const std::unordered_map<std::string, uint8_t> bytes = [] {
    std::unordered_map<std::string, uint8_t> out;
    for (int b = 0; b < 256; ++b)
      out[byteLevelChars()[b]] = static_cast<uint8_t>(b);
    return out;
  }();
  return bytes;
}

} // namespace gai::tok
