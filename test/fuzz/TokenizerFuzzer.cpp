// Fuzzes the tokenizer.json loader and the tokenizer it makes: any bytes
// give a tokenizer or an error, and an accepted tokenizer encodes any text
// into ids below its vocabulary size and decodes any ids.
// Input: a line of text to encode, then the tokenizer.json.
#include "gai/Tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string input(reinterpret_cast<const char *>(data), size);
  const size_t newline = input.find('\n');
  const std::string text = newline == std::string::npos ? std::string() : input.substr(0, newline);
  const std::string json = newline == std::string::npos ? input : input.substr(newline + 1);
  auto tokenizer = gai::HFTokenizer::fromJson(json, "fuzz/tokenizer.json");
  if (!tokenizer.isOk())
    return 0;
  const gai::HFTokenizer &t = **tokenizer;
  const int64_t vocab = t.vocabSize();
  for (bool special : {true, false}) {
    auto ids = t.encode(text, special, special);
    if (!ids.isOk())
      continue;
    for (int32_t id : *ids)
      if (id < 0 || id >= vocab) // the model's embedding has `vocab` rows
        __builtin_trap();
    (void)t.decode(*ids, special);
    gai::DecodeStream stream(t, special);
    for (int32_t id : *ids)
      (void)stream.step(id);
    (void)stream.finish();
  }
  // Ids the model may sample: every id below the vocabulary, and some past it.
  std::vector<int32_t> any;
  for (unsigned char c : text)
    any.push_back(static_cast<int32_t>(c) * 131 % static_cast<int32_t>(vocab + 8) - 4);
  (void)t.decode(any, false);
  return 0;
}
