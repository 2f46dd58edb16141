// Tokenizers: bytes (our own specs) and Hugging Face tokenizer.json files.
#ifndef GAI_TOKENIZER_H
#define GAI_TOKENIZER_H

#include "gai/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gai {

class Tokenizer {
public:
  virtual ~Tokenizer() = default;
  /// `allowSpecial`: the text of a special token becomes its id; otherwise
  /// it is read as ordinary text. `addSpecial`: the post-processor's tokens
  /// (a BOS) are added.
  virtual StatusOr<std::vector<int32_t>> encode(const std::string &text,
                                                bool allowSpecial = true,
                                                bool addSpecial = true) const = 0;
  /// Text that may end in part of a UTF-8 character; see DecodeStream.
  virtual std::string decode(const std::vector<int32_t> &ids,
                             bool skipSpecial = true) const = 0;
  std::string decode(int32_t id) const { return decode(std::vector<int32_t>{id}); }
  /// One past the largest id.
  virtual int64_t vocabSize() const = 0;
};

/// One token per byte (vocabulary 256).
class ByteTokenizer final : public Tokenizer {
public:
  /// `vocab` is the model's; bytes at or above it cannot be encoded.
  explicit ByteTokenizer(int64_t vocab) : vocab_(vocab) {}
  StatusOr<std::vector<int32_t>> encode(const std::string &text, bool allowSpecial = true,
                                        bool addSpecial = true) const override;
  /// Ids above 255 have no byte; they print as <id>.
  std::string decode(const std::vector<int32_t> &ids, bool skipSpecial = true) const override;
  using Tokenizer::decode;
  int64_t vocabSize() const override { return 256; }

private:
  int64_t vocab_;
};

/// A Hugging Face `tokenizers` tokenizer.json: BPE (byte-level or with byte
/// fallback), its normalizer, pre-tokenizer, decoder, post-processor and
/// added tokens, giving the ids HF gives. A component it does not implement
/// is refused by name when the file is loaded.
class HFTokenizer final : public Tokenizer {
public:
  static StatusOr<std::unique_ptr<HFTokenizer>> load(const std::string &path);
  /// `origin` names the text in errors.
  static StatusOr<std::unique_ptr<HFTokenizer>> fromJson(const std::string &json,
                                                         const std::string &origin);
  ~HFTokenizer() override;
  /// Text that is not valid UTF-8 is read with U+FFFD for each bad sequence.
  StatusOr<std::vector<int32_t>> encode(const std::string &text, bool allowSpecial = true,
                                        bool addSpecial = true) const override;
  /// Unknown ids are left out, as HF does.
  std::string decode(const std::vector<int32_t> &ids, bool skipSpecial = true) const override;
  using Tokenizer::decode;
  int64_t vocabSize() const override;

  struct Impl;

private:
  explicit HFTokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Decodes one token at a time, returning only whole characters: text that
/// ends in an incomplete UTF-8 sequence (U+FFFD) waits for the next token.
/// Keeps one token of context so decoders that look at neighbours (strip,
/// metaspace) print what decoding the whole sequence prints.
class DecodeStream {
public:
  explicit DecodeStream(const Tokenizer &tokenizer, bool skipSpecial = true)
      : tokenizer_(tokenizer), skipSpecial_(skipSpecial) {}
  /// Starts after `context` (a prompt, already printed): the first tokens
  /// then decode as they do after it (a leading space kept, say).
  void prime(const std::vector<int32_t> &context);
  /// The new text this token completes (often empty).
  std::string step(int32_t id);
  /// At the end: what is still held back (an incomplete UTF-8 sequence), as
  /// decoding the whole sequence prints it (U+FFFD).
  std::string finish();

private:
  const Tokenizer &tokenizer_;
  bool skipSpecial_;
  std::vector<int32_t> ids_;
  std::string prefix_;
  size_t prefixIndex_ = 0;
};

} // namespace gai

#endif // GAI_TOKENIZER_H
