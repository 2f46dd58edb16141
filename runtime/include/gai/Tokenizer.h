// The byte-level tokenizer: one token per byte (vocabulary 256).
#ifndef GAI_TOKENIZER_H
#define GAI_TOKENIZER_H

#include "gai/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gai {

class ByteTokenizer {
public:
  /// `vocab` is the model's; bytes at or above it cannot be encoded.
  explicit ByteTokenizer(int64_t vocab) : vocab_(vocab) {}
  StatusOr<std::vector<int32_t>> encode(const std::string &text) const;
  /// Ids above 255 have no byte; they print as <id>.
  std::string decode(const std::vector<int32_t> &ids) const;
  std::string decode(int32_t id) const { return decode(std::vector<int32_t>{id}); }

private:
  int64_t vocab_;
};

} // namespace gai

#endif // GAI_TOKENIZER_H
