// Bytes in, bytes out.
#include "gai/Tokenizer.h"

namespace gai {

StatusOr<std::vector<int32_t>> ByteTokenizer::encode(const std::string &text) const {
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

std::string ByteTokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string text;
  for (int32_t id : ids) {
    if (id >= 0 && id < 256)
      text.push_back(static_cast<char>(id));
    else
      text += "<" + std::to_string(id) + ">";
  }
  return text;
}

} // namespace gai
