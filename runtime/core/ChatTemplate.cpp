// Recognising a chat template: its text read as Jinja reads it (with
// transformers' trim_blocks and lstrip_blocks), compared with the templates
// gai knows; and the Python string operations their renderers use.
#include "ChatParts.h"

#include "format/artifact_generated.h"
#include "gai/Artifact.h"

#include <cctype>
#include <cstdint>
#include <cstring>

namespace gai {
namespace chat {
namespace {

/// The code point of the UTF-8 sequence at s[i] and its length; an invalid
/// byte reads as itself with length 1 (it is never whitespace).
uint32_t codePointAt(const std::string &s, size_t i, size_t &length) {
  unsigned char b = static_cast<unsigned char>(s[i]);
  int more = b < 0x80             ? 0
             : (b & 0xE0) == 0xC0 ? 1
             : (b & 0xF0) == 0xE0 ? 2
             : (b & 0xF8) == 0xF0 ? 3
                                  : -1;
  length = 1;
  if (more <= 0 || i + more >= s.size())
    return b;
  uint32_t cp = b & (0x3F >> more);
  for (int k = 1; k <= more; ++k) {
    unsigned char next = static_cast<unsigned char>(s[i + k]);
    if ((next & 0xC0) != 0x80)
      return b;
    cp = cp << 6 | (next & 0x3F);
  }
  length = more + 1;
  return cp;
}

/// Python's str.isspace(): bidirectional class WS, B or S, or category Zs.
bool isPythonSpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
         c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

/// Bytes of leading whitespace.
size_t leadingSpace(const std::string &s) {
  size_t i = 0, length = 0;
  while (i < s.size() && isPythonSpace(codePointAt(s, i, length)))
    i += length;
  return i;
}

/// Where trailing whitespace begins.
size_t trailingSpace(const std::string &s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && end - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    size_t length = 0;
    uint32_t c = codePointAt(s, start, length);
    if (start + length != end || !isPythonSpace(c))
      break;
    end = start;
  }
  return end;
}

} // namespace

std::string lstrip(const std::string &s) { return s.substr(leadingSpace(s)); }
std::string rstrip(const std::string &s) {
  return s.substr(0, trailingSpace(s));
}
std::string strip(const std::string &s) { return lstrip(rstrip(s)); }

std::string lstripChars(const std::string &s, const char *chars) {
  size_t i = s.find_first_not_of(chars);
  return i == std::string::npos ? std::string() : s.substr(i);
}
std::string rstripChars(const std::string &s, const char *chars) {
  size_t i = s.find_last_not_of(chars);
  return i == std::string::npos ? std::string() : s.substr(0, i + 1);
}
std::string stripChars(const std::string &s, const char *chars) {
  return lstripChars(rstripChars(s, chars), chars);
}

std::string beforeFirst(const std::string &s, const std::string &sep) {
  return s.substr(0, s.find(sep));
}
std::string afterLast(const std::string &s, const std::string &sep) {
  size_t at = s.rfind(sep);
  return at == std::string::npos ? s : s.substr(at + sep.size());
}

Status raised(const std::string &message) {
  return Status::error("the chat template refuses the conversation: " +
                       message);
}

StatusOr<std::string> required(const std::optional<std::string> &token,
                               const char *name) {
  if (!token)
    return Status::error(std::string("the chat template needs ") + name +
                         ", which tokenizer_config.json does not give");
  return *token;
}

Status checkRoles(const std::vector<ChatMessage> &messages) {
  if (messages.empty())
    return Status::error("a chat needs at least one message");
  for (const ChatMessage &m : messages)
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      return Status::error(
          "chat messages are system, user or assistant; got role '" + m.role +
          "'");
  return Status::ok();
}

} // namespace chat

namespace {

/// One piece of a template as Jinja's lexer splits it.
struct Piece {
  enum Kind { Data, Expression, Statement, Comment } kind;
  std::string text;
  bool trimBefore = false; ///< {{- {%- {#-
  bool keepBefore = false; ///< {%+: no lstrip_blocks
  bool trimAfter = false;  ///< -}} -%} -#}
  bool isBlock() const { return kind == Statement || kind == Comment; }
};

bool isJinjaSpace(const std::string &s, size_t i, size_t &length) {
  return chat::isPythonSpace(chat::codePointAt(s, i, length));
}

/// Appends code point `c` as UTF-8.
void appendUtf8(std::string &out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | c >> 6);
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | c >> 12);
    out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | c >> 18);
    out += static_cast<char>(0x80 | (c >> 12 & 0x3F));
    out += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

/// The value of a Jinja string literal's body: Python's unicode-escape
/// decoding, which Jinja applies. Unknown escapes stay as written.
std::string decodeLiteral(const std::string &body) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      out += body[i];
      continue;
    }
    char e = body[++i];
    auto hex = [&](int digits) -> bool {
      if (i + digits >= body.size())
        return false;
      uint32_t c = 0;
      for (int k = 1; k <= digits; ++k) {
        char h = body[i + k];
        if (!std::isxdigit(static_cast<unsigned char>(h)))
          return false;
        c = c * 16 + (std::isdigit(static_cast<unsigned char>(h))
                          ? h - '0'
                          : (h | 0x20) - 'a' + 10);
      }
      appendUtf8(out, c);
      i += digits;
      return true;
    };
    switch (e) {
    case '\n':
      break; // a line continuation
    case '\\':
      out += '\\';
      break;
    case '\'':
      out += '\'';
      break;
    case '"':
      out += '"';
      break;
    case 'a':
      out += '\a';
      break;
    case 'b':
      out += '\b';
      break;
    case 'f':
      out += '\f';
      break;
    case 'n':
      out += '\n';
      break;
    case 'r':
      out += '\r';
      break;
    case 't':
      out += '\t';
      break;
    case 'v':
      out += '\v';
      break;
    case 'x':
      if (!hex(2))
        out += "\\x";
      break;
    case 'u':
      if (!hex(4))
        out += "\\u";
      break;
    case 'U':
      if (!hex(8))
        out += "\\U";
      break;
    default:
      if (e >= '0' && e <= '7') {
        uint32_t c = 0;
        int digits = 0;
        while (digits < 3 && i < body.size() && body[i] >= '0' &&
               body[i] <= '7')
          c = c * 8 + (body[i++] - '0'), ++digits;
        --i;
        appendUtf8(out, c);
      } else {
        out += '\\';
        out += e;
      }
    }
  }
  return out;
}

/// The end of the string literal that opens at code[i] (one past its quote).
size_t literalEnd(const std::string &code, size_t i) {
  char quote = code[i];
  for (++i; i < code.size(); ++i) {
    if (code[i] == '\\')
      ++i;
    else if (code[i] == quote)
      return i + 1;
  }
  return std::string::npos;
}

bool isWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80);
}

/// The tags and text of a template, or an error for one Jinja could not
/// read (an unterminated tag or string).
StatusOr<std::vector<Piece>> lex(std::string source) {
  // Jinja reads \r\n and \r as \n and drops one trailing newline.
  std::string normal;
  for (size_t i = 0; i < source.size(); ++i)
    if (source[i] != '\r')
      normal += source[i];
    else if (i + 1 == source.size() || source[i + 1] != '\n')
      normal += '\n';
  if (!normal.empty() && normal.back() == '\n')
    normal.pop_back();
  source = std::move(normal);

  std::vector<Piece> pieces;
  size_t i = 0;
  while (i < source.size()) {
    size_t open = i;
    auto opensTag = [&](size_t at) {
      char next = source[at + 1];
      return source[at] == '{' && (next == '{' || next == '%' || next == '#');
    };
    while (open + 1 < source.size() && !opensTag(open))
      ++open;
    if (open + 1 >= source.size()) {
      pieces.push_back({Piece::Data, source.substr(i)});
      break;
    }
    if (open > i)
      pieces.push_back({Piece::Data, source.substr(i, open - i)});
    char kind = source[open + 1];
    Piece tag{kind == '{'   ? Piece::Expression
              : kind == '%' ? Piece::Statement
                            : Piece::Comment};
    size_t k = open + 2;
    if (k < source.size() && source[k] == '-')
      tag.trimBefore = true, ++k;
    else if (k < source.size() && source[k] == '+' && kind != '{')
      tag.keepBefore = true, ++k;
    const char *close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t end = std::string::npos;
    if (kind == '#') {
      end = source.find(close, k);
    } else {
      int depth = 0;
      for (size_t c = k; c < source.size(); ++c) {
        char ch = source[c];
        if (ch == '\'' || ch == '"') {
          c = literalEnd(source, c);
          if (c == std::string::npos)
            return Status::error("a string literal is not closed");
          --c;
        } else if (depth == 0 && source.compare(c, 2, close) == 0) {
          end = c;
          break;
        } else if (ch && std::strchr("([{", ch)) {
          ++depth;
        } else if (ch && std::strchr(")]}", ch) && depth > 0) {
          --depth;
        }
      }
    }
    if (end == std::string::npos)
      return Status::error(std::string("a tag opened with '{") + kind +
                           "' is not closed");
    size_t bodyEnd = end;
    if (bodyEnd > k && source[bodyEnd - 1] == '-')
      tag.trimAfter = true, --bodyEnd;
    tag.text = source.substr(k, bodyEnd - k);
    pieces.push_back(std::move(tag));
    i = end + 2;
  }
  return pieces;
}

/// The text of a data piece that reaches the output, after the tags around
/// it strip it as Jinja does with transformers' trim_blocks and
/// lstrip_blocks.
std::string survivingText(const std::vector<Piece> &pieces, size_t d) {
  std::string text = pieces[d].text;
  const Piece *before = d > 0 ? &pieces[d - 1] : nullptr;
  const Piece *after = d + 1 < pieces.size() ? &pieces[d + 1] : nullptr;
  // Whether the text starts a line: the template's start, or a tag whose
  // end consumed a newline.
  bool lineStarting = !before;
  if (before && before->trimAfter) {
    size_t n = 0, length = 0;
    while (n < text.size() && isJinjaSpace(text, n, length))
      n += length;
    lineStarting = n > 0 && text[n - 1] == '\n';
    text = text.substr(n);
  } else if (before && before->isBlock() && !text.empty() && text[0] == '\n') {
    lineStarting = true;
    text = text.substr(1);
  }
  if (after && after->trimBefore) {
    text = chat::rstrip(text);
  } else if (after && after->isBlock() && !after->keepBefore) {
    size_t lineStart = text.rfind('\n');
    lineStart = lineStart == std::string::npos ? 0 : lineStart + 1;
    if ((lineStart > 0 || lineStarting) &&
        text.find_first_not_of(" \t\v\f", lineStart) == std::string::npos)
      text = text.substr(0, lineStart);
  }
  return text;
}

/// A literal's value in one quoting.
std::string quoted(const std::string &value) {
  std::string out = "'";
  for (char v : value)
    out += v == '\\'   ? "\\\\"
           : v == '\'' ? "\\'"
           : v == '\n' ? "\\n"
                       : std::string(1, v);
  return out + "'";
}

/// A tag's code with whitespace between tokens dropped (one space kept
/// between two words) and each string literal rewritten in one quoting:
/// code that reads the same gets the same text.
std::string canonicalCode(const std::string &code,
                          std::vector<std::string> &literals) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < code.size();) {
    char c = code[i];
    if (c == '\'' || c == '"') {
      size_t end = literalEnd(code, i);
      std::string value = decodeLiteral(code.substr(i + 1, end - i - 2));
      literals.push_back(value);
      out += quoted(value);
      i = end;
      space = false;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      ++i;
      continue;
    }
    if (space && !out.empty() && isWordChar(out.back()) && isWordChar(c))
      out += ' ';
    space = false;
    out += c;
    ++i;
  }
  return out;
}

/// A template as Jinja will run it: its tags' code and the text it prints
/// outside them, without comments or the whitespace Jinja drops. Two
/// templates with the same form render the same.
struct TemplateForm {
  std::string form;
  std::vector<std::string> literals; ///< string literals and printed text
};

StatusOr<TemplateForm> formOf(const std::string &text) {
  auto pieces = lex(text);
  if (!pieces)
    return pieces.status();
  TemplateForm out;
  for (size_t i = 0; i < pieces->size(); ++i) {
    const Piece &p = (*pieces)[i];
    switch (p.kind) {
    case Piece::Data:
      if (std::string kept = survivingText(*pieces, i); !kept.empty()) {
        out.literals.push_back(kept);
        out.form += "{@" + quoted(kept) + "@}";
      }
      break;
    case Piece::Expression:
      out.form += "{{" + canonicalCode(p.text, out.literals) + "}}";
      break;
    case Piece::Statement:
      out.form += "{%" + canonicalCode(p.text, out.literals) + "%}";
      break;
    case Piece::Comment:
      break;
    }
  }
  return out;
}

struct KnownForm {
  KnownChatTemplate known;
  std::string form;
};

const std::vector<KnownForm> &knownForms() {
  static const std::vector<KnownForm> forms = [] {
    std::vector<KnownChatTemplate> known;
    addLlamaChatTemplates(known);
    addOtherChatTemplates(known);
    std::vector<KnownForm> out;
    for (const KnownChatTemplate &k : known) {
      auto form = formOf(k.text);
      out.push_back({k, form ? form->form : std::string()});
    }
    return out;
  }();
  return forms;
}

/// The family a template's text points to, by the markers of its format.
std::string familyOf(const std::vector<std::string> &literals) {
  auto has = [&](const char *marker) {
    for (const std::string &l : literals)
      if (l.find(marker) != std::string::npos)
        return true;
    return false;
  };
  if (has("<|start_header_id|>"))
    return "Llama 3";
  if (has("<|im_start|>"))
    return "ChatML";
  if (has("<start_of_turn>"))
    return "Gemma";
  if (has("<|user|>") || has("<|assistant|>"))
    return "Phi-3";
  if (has("<<SYS>>"))
    return "Llama 2";
  if (has("[INST]"))
    return "Mistral";
  return "";
}

} // namespace

std::string ChatTemplate::knownFormats() {
  std::string out;
  for (const KnownForm &k : knownForms())
    out += (out.empty() ? "" : ", ") + std::string(k.known.name);
  return out;
}

StatusOr<ChatTemplate> ChatTemplate::recognise(const std::string &text,
                                               std::optional<std::string> bos,
                                               std::optional<std::string> eos,
                                               const std::string &origin) {
  auto form = formOf(text);
  if (!form)
    return Status::error(origin +
                         ": the chat template cannot be read as Jinja (" +
                         form.status().message() + ")");
  for (const KnownForm &k : knownForms())
    if (k.form == form->form)
      return ChatTemplate(&k.known, std::move(bos), std::move(eos));
  std::string family = familyOf(form->literals), near;
  for (const KnownForm &k : knownForms())
    if (family == k.known.family)
      near += (near.empty() ? "" : ", ") + std::string(k.known.name);
  std::string why = near.empty() ? "it is in no format gai renders"
                                 : "it has the markers of " + family +
                                       " but is none of the " + family +
                                       " templates gai knows (" + near +
                                       "): a template that differs from them "
                                       "(a default system prompt, other "
                                       "headers) would render other text";
  return Status::error(origin + ": the chat template is not one gai renders: " +
                       why + ". gai renders the published templates of " +
                       knownFormats() + " (docs/runtime.md, \"Chat\")");
}

StatusOr<ChatTemplate>
ChatTemplate::fromArtifact(const LoadedArtifact &artifact,
                           const std::string &name) {
  const format::ChatTemplateSource *source = artifact.root().chat_template();
  if (!source || !source->text())
    return Status::error(
        name + " has no chat template: compile it from a model directory "
               "with a tokenizer_config.json that has one, or give one "
               "with gaic --chat-template FILE");
  auto token = [](const flatbuffers::String *s) {
    return s ? std::optional<std::string>(s->str()) : std::nullopt;
  };
  return recognise(source->text()->str(), token(source->bos_token()),
                   token(source->eos_token()), name + " (its chat template)");
}

StatusOr<std::string>
ChatTemplate::render(const std::vector<ChatMessage> &messages,
                     const ChatRenderOptions &options) const {
  if (Status s = chat::checkRoles(messages); !s)
    return s;
  return known_->render(messages, ChatTokens{bos_, eos_}, options);
}

std::string ChatTemplate::name() const { return known_->name; }

std::string ChatTemplate::endOfTurn() const {
  return known_->endOfTurn ? known_->endOfTurn : chat::orEmpty(eos_);
}

} // namespace gai
