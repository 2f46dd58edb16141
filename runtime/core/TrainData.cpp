// Training tokens: files read whole, split into train and held-out parts,
// and rows drawn by a counter-based generator of (seed, step, micro, row),
// so that resuming needs no generator state.
#include "gai/Train.h"

#include "gai/SafeFile.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace gai {
namespace {

/// SplitMix64: a good 64-bit mix, and a counter-based generator.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// llm.c's token file header: 256 int32s, the magic, a version and the
// number of uint16 tokens that follow.
constexpr int32_t kLlmcMagic = 20240520;
constexpr size_t kLlmcHeaderBytes = 256 * 4;

} // namespace

StatusOr<TrainData> TrainData::load(const std::vector<std::string> &paths,
                                    const std::string &format, int64_t vocab,
                                    double heldOut) {
  if (paths.empty())
    return Status::error("no training data: pass --data FILE (or the spec's train.data)");
  if (format != "auto" && format != "text" && format != "u16" && format != "u32")
    return Status::error("--data-format: expected auto, text, u16 or u32, got '" + format + "'");
  if (heldOut < 0 || heldOut >= 1)
    return Status::error("the held-out fraction must be in [0, 1)");
  TrainData data;
  for (const std::string &path : paths) {
    StatusOr<std::vector<uint8_t>> read = readRegularFile(path);
    if (!read)
      return read.status();
    const std::vector<uint8_t> &bytes = *read;
    std::string kind = format;
    size_t header = 0;
    if (kind == "auto")
      kind = endsWith(path, ".bin") ? "u16" : "text";
    if (kind == "u16" && bytes.size() >= kLlmcHeaderBytes) {
      int32_t magic, count;
      std::memcpy(&magic, bytes.data(), 4);
      std::memcpy(&count, bytes.data() + 8, 4);
      if (magic == kLlmcMagic) {
        header = kLlmcHeaderBytes;
        uint64_t held = (bytes.size() - header) / 2;
        if (count < 0 || static_cast<uint64_t>(count) != held ||
            (bytes.size() - header) % 2 != 0)
          return Status::error(path + ": the llm.c header says " + std::to_string(count) +
                               " tokens, but " + std::to_string(bytes.size() - header) +
                               " bytes follow it (" + std::to_string(held) +
                               " tokens): truncated, or not an llm.c token file");
      }
    }
    size_t width = kind == "text" ? 1 : kind == "u16" ? 2 : 4;
    data.text_ &= kind == "text";
    if ((bytes.size() - header) % width != 0)
      return Status::error(path + ": " + std::to_string(bytes.size() - header) +
                           " bytes of tokens is not a whole number of " + kind + " tokens");
    if (kind == "text" && vocab < 256)
      return Status::error(path + ": byte-level text needs a vocabulary of at least 256, "
                                  "the model has " + std::to_string(vocab));
    for (size_t at = header; at < bytes.size(); at += width) {
      uint32_t token = 0;
      std::memcpy(&token, bytes.data() + at, width); // little-endian
      if (token >= static_cast<uint64_t>(vocab))
        return Status::error(path + ": token " + std::to_string(token) + " at byte " +
                             std::to_string(at) + " (index " +
                             std::to_string((at - header) / width) +
                             ") is outside the vocabulary of " + std::to_string(vocab));
      data.tokens_.push_back(static_cast<int32_t>(token));
    }
  }
  auto total = static_cast<int64_t>(data.tokens_.size());
  data.splitAt_ = total - static_cast<int64_t>(static_cast<double>(total) * heldOut);
  return data;
}

Status TrainData::batch(uint64_t seed, int64_t step, int64_t micro, int64_t rows,
                        int64_t seqLen, std::vector<int32_t> &tokens,
                        std::vector<int32_t> &targets, bool evaluation) const {
  int64_t begin = evaluation ? splitAt_ : 0;
  int64_t end = evaluation ? static_cast<int64_t>(tokens_.size()) : splitAt_;
  int64_t starts = end - begin - seqLen; // a row reads seqLen + 1 tokens
  if (starts < 1)
    return Status::error(std::string("the ") + (evaluation ? "held-out" : "training") +
                         " data has " + std::to_string(end - begin) +
                         " tokens, too few for rows of " + std::to_string(seqLen + 1));
  tokens.resize(static_cast<size_t>(rows * seqLen));
  targets.resize(tokens.size());
  uint64_t stream = mix(seed ^ (evaluation ? 0x6576616cull : 0)) ^ mix(static_cast<uint64_t>(step));
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t draw = mix(stream ^ mix(static_cast<uint64_t>(micro) << 32 | static_cast<uint64_t>(r)));
    int64_t at = begin + static_cast<int64_t>(draw % static_cast<uint64_t>(starts));
    std::copy_n(tokens_.begin() + at, seqLen, tokens.begin() + r * seqLen);
    std::copy_n(tokens_.begin() + at + 1, seqLen, targets.begin() + r * seqLen);
  }
  return Status::ok();
}

} // namespace gai
