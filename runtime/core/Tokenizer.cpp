// The byte tokenizer (bytes in, bytes out) and streaming decode.
#include "gai/Tokenizer.h"

namespace gai {

StatusOr<std::vector<int32_t>> ByteTokenizer::encode(const std::string &text, bool,
                                                     bool) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto byte = static_cast<uint8_t>(text[i]);
    if (byte >= vocab_)
      return Status::error("byte " + std::to_string(byte) + " at offset " +
                           std::to_string(i) + " of the prompt is outside "
                           "the model's vocabulary of " + std::to_string(vocab_));
    ids.push_back(byte);
  }
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t> &ids, bool) const {
  std::string text;
  for (int32_t id : ids) {
    if (id >= 0 && id < 256)
      text.push_back(static_cast<char>(id));
    else
      text += "<" + std::to_string(id) + ">";
  }
  return text;
}

// HF's DecodeStream: decode the ids since the last printed token plus one
// before it, print what is new unless it ends in U+FFFD (a character whose
// bytes have not all come), then drop the ids no longer needed as context.
void DecodeStream::prime(const std::vector<int32_t> &context) {
  ids_ = context;
  prefix_ = tokenizer_.decode(ids_, skipSpecial_);
  prefixIndex_ = ids_.size();
}

std::string DecodeStream::finish() {
  std::string text = tokenizer_.decode(ids_, skipSpecial_);
  size_t common = 0;
  while (common < prefix_.size() && common < text.size() && text[common] == prefix_[common])
    ++common;
  // Only what step() held back: the text past the last whole character.
  std::string rest = text.size() > prefix_.size() ? text.substr(common) : std::string();
  ids_.clear();
  prefix_.clear();
  prefixIndex_ = 0;
  return rest;
}

std::string DecodeStream::step(int32_t id) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  ids_.push_back(id);
  std::string text = tokenizer_.decode(ids_, skipSpecial_);
  bool incomplete = text.size() >= kReplacement.size() &&
                    text.compare(text.size() - kReplacement.size(), kReplacement.size(),
                                 kReplacement) == 0;
  if (text.size() <= prefix_.size() || incomplete)
    return "";
  size_t common = 0;
  while (common < prefix_.size() && text[common] == prefix_[common])
    ++common;
  std::string fresh = text.substr(common);
  size_t newPrefixIndex = ids_.size() - prefixIndex_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefixIndex_));
  prefix_ = tokenizer_.decode(ids_, skipSpecial_);
  prefixIndex_ = newPrefixIndex;
  return fresh;
}

} // namespace gai
