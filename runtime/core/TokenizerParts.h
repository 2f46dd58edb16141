// The stages of a Hugging Face tokenizer: UTF-8, PCRE2 patterns, normalizers,
// pre-tokenizers, the BPE model and decoders, each built from its JSON.
#ifndef GAI_CORE_TOKENIZERPARTS_H
#define GAI_CORE_TOKENIZERPARTS_H

#include "gai/Status.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gai::tok {

using Json = nlohmann::json;
using Span = std::pair<size_t, size_t>; // [begin, end) in bytes

/// How far past its tokens a file's ids may reach: ids index tables (the
/// tokens, the model's embedding rows), so a few holes are fine and a table
/// mostly of holes (an id of 2^31 in a 100-token file) is a broken file.
constexpr uint64_t kMostUnusedIds = 65536;

/// Valid UTF-8 with U+FFFD for each maximal bad subsequence (Rust's
/// from_utf8_lossy, which HF applies to decoded bytes).
std::string utf8Lossy(const std::string &bytes);
/// The characters of valid UTF-8 text.
std::vector<std::string> utf8Chars(const std::string &text);
bool isValidUtf8(const std::string &bytes);

class Regex;

/// A Split or Replace pattern: {"String": s} or {"Regex": r}.
class Pattern {
public:
  static StatusOr<Pattern> parse(const Json &json, const std::string &where);
  /// Non-overlapping matches, left to right.
  std::vector<Span> find(const std::string &text) const;
  std::string replaceAll(const std::string &text, const std::string &with) const;

private:
  std::string literal_;
  std::shared_ptr<Regex> regex_;
};

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
StatusOr<SplitBehavior> parseSplitBehavior(const Json &json, const std::string &where);
/// The non-empty pieces of `text` around `pattern`'s matches, as HF's
/// NormalizedString::split keeps them.
std::vector<std::string> split(const std::string &text, const Pattern &pattern,
                               SplitBehavior behavior, bool invert);

/// Text between stages. `atStart`: it begins at offset 0 of the input (for
/// Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool atStart;
};

using Normalizer = std::function<std::string(const std::string &)>;
using PreTokenizer = std::function<std::vector<Piece>(std::vector<Piece>)>;
using Decoder = std::function<std::vector<std::string>(std::vector<std::string>)>;

/// Null JSON gives no stage (an empty function).
StatusOr<Normalizer> parseNormalizer(const Json &json);
StatusOr<PreTokenizer> parsePreTokenizer(const Json &json);
StatusOr<Decoder> parseDecoder(const Json &json);

/// GPT-2's map from bytes to printable characters, and back.
const std::vector<std::string> &byteLevelChars();
const std::unordered_map<std::string, uint8_t> &byteLevelBytes();

/// The BPE model: merges by rank, byte fallback, unknown tokens.
class Bpe {
public:
  static StatusOr<Bpe> parse(const Json &model);
  void encodeWord(const std::string &word, std::vector<int32_t> &ids) const;
  const std::string *token(int32_t id) const;
  int32_t id(const std::string &token) const;
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }

private:
  struct Merge {
    int32_t rank, result;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_; // by id; "" where no token has the id
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t unk_ = -1;
  bool byteFallback_ = false, fuseUnk_ = false, ignoreMerges_ = false;
};

} // namespace gai::tok

#endif // GAI_CORE_TOKENIZERPARTS_H
