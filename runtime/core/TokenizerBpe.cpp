// The BPE model of tokenizer.json: lowest-ranked merge first, leftmost on ties.
#include "TokenizerParts.h"

#include <cstdio>
#include <queue>

namespace gai::tok {

StatusOr<Bpe> Bpe::parse(const Json &model) {
  const std::string where = "model";
  std::string type = model.is_object() ? model.value("type", std::string()) : "";
  if (type.empty() && model.is_object() && model.contains("merges"))
    type = "BPE"; // older files leave the type out
  if (type != "BPE")
    return Status::error(where + " '" + type + "' is not supported (only BPE)");
  auto nullOr = [&](const char *field, auto isDefault) {
    return !model.contains(field) || model[field].is_null() || isDefault(model[field]);
  };
  if (!nullOr("dropout", [](const Json &j) { return j.is_number() && j.get<double>() == 0; }))
    return Status::error(where + ": BPE dropout is not supported (it makes ids random)");
  for (const char *field : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (!nullOr(field, [](const Json &j) { return j.is_string() && j.get<std::string>().empty(); }))
      return Status::error(where + ": BPE " + field + " is not supported");

  Bpe bpe;
  auto flag = [&](const char *field, bool &out) {
    if (!model.contains(field) || model[field].is_null())
      return true;
    if (!model[field].is_boolean())
      return false;
    out = model[field].get<bool>();
    return true;
  };
  for (auto [field, out] : {std::pair<const char *, bool *>{"byte_fallback", &bpe.byteFallback_},
                            {"fuse_unk", &bpe.fuseUnk_},
                            {"ignore_merges", &bpe.ignoreMerges_}})
    if (!flag(field, *out))
      return Status::error(where + ": field '" + field + "' should be true or false");

  if (!model.contains("vocab") || !model["vocab"].is_object())
    return Status::error(where + ": field 'vocab' should be an object of token: id");
  const uint64_t mostId = model["vocab"].size() + kMostUnusedIds;
  for (auto &[token, id] : model["vocab"].items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() > INT32_MAX)
      return Status::error(where + ": vocab id of '" + token + "' should be an id >= 0");
    if (id.get<uint64_t>() >= mostId)
      return Status::error(where + ": vocab id " + std::to_string(id.get<uint64_t>()) +
                           " of '" + token + "' should be below " + std::to_string(mostId) +
                           " (the vocab's " + std::to_string(model["vocab"].size()) +
                           " tokens and at most " + std::to_string(kMostUnusedIds) +
                           " unused ids)");
    auto i = static_cast<int32_t>(id.get<uint64_t>());
    bpe.vocab_[token] = i;
    if (static_cast<size_t>(i) >= bpe.tokens_.size())
      bpe.tokens_.resize(static_cast<size_t>(i) + 1);
    bpe.tokens_[static_cast<size_t>(i)] = token;
  }

  if (!model.contains("merges") || !model["merges"].is_array())
    return Status::error(where + ": field 'merges' should be an array");
  int32_t rank = 0;
  for (const Json &merge : model["merges"]) {
    std::string a, b;
    if (merge.is_string()) { // "a b"
      std::string s = merge.get<std::string>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        return Status::error(where + ": merge " + std::to_string(rank) + " '" + s +
                             "' should be two tokens split by one space");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      a = merge[0].get<std::string>();
      b = merge[1].get<std::string>();
    } else {
      return Status::error(where + ": merge " + std::to_string(rank) +
                           " should be \"a b\" or [\"a\", \"b\"]");
    }
    int32_t left = bpe.id(a), right = bpe.id(b), result = bpe.id(a + b);
    if (left < 0 || right < 0 || result < 0)
      return Status::error(where + ": merge " + std::to_string(rank) + " ('" + a + "', '" + b +
                           "') names a token that is not in the vocab");
    // Of two equal merges the later ranks, as in HF's map.
    bpe.merges_[key(left, right)] = Merge{rank, result};
    ++rank;
  }

  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    if (!model["unk_token"].is_string())
      return Status::error(where + ": field 'unk_token' should be a string");
    std::string unk = model["unk_token"].get<std::string>();
    bpe.unk_ = bpe.id(unk);
    if (bpe.unk_ < 0)
      return Status::error(where + ": unk_token '" + unk + "' is not in the vocab");
  }
  return bpe;
}

int32_t Bpe::id(const std::string &token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string *Bpe::token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size())
    return nullptr;
  auto it = vocab_.find(tokens_[static_cast<size_t>(id)]);
  return it != vocab_.end() && it->second == id ? &tokens_[static_cast<size_t>(id)] : nullptr;
}

void Bpe::encodeWord(const std::string &word, std::vector<int32_t> &ids) const {
  if (word.empty())
    return;
  if (ignoreMerges_) {
    int32_t whole = id(word);
    if (whole >= 0)
      return ids.push_back(whole);
  }
  std::vector<int32_t> symbols;
  // Unknown characters wait so that a run of them fuses into one <unk>.
  bool unkPending = false;
  for (const std::string &c : utf8Chars(word)) {
    int32_t i = id(c);
    if (i >= 0) {
      if (unkPending)
        symbols.push_back(unk_);
      unkPending = false;
      symbols.push_back(i);
      continue;
    }
    if (byteFallback_) {
      std::vector<int32_t> bytes;
      for (char b : c) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", static_cast<uint8_t>(b));
        int32_t byteId = id(name);
        if (byteId < 0)
          break;
        bytes.push_back(byteId);
      }
      if (bytes.size() == c.size()) {
        symbols.insert(symbols.end(), bytes.begin(), bytes.end());
        continue;
      }
    }
    if (unk_ >= 0) {
      if (unkPending && !fuseUnk_)
        symbols.push_back(unk_);
      unkPending = true;
    }
    // Without an unk_token HF drops the character.
  }
  if (unkPending)
    symbols.push_back(unk_);

  // A linked list of symbols and a queue of candidate merges by (rank, left
  // position); entries made stale by an earlier merge are skipped.
  size_t n = symbols.size();
  std::vector<int64_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<int64_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int64_t>(i) + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    size_t pos;
    int32_t result;
    bool operator>(const Candidate &o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int64_t left) {
    if (left < 0 || next[static_cast<size_t>(left)] < 0)
      return;
    auto l = static_cast<size_t>(left);
    auto it = merges_.find(key(symbols[l], symbols[static_cast<size_t>(next[l])]));
    if (it != merges_.end())
      queue.push({it->second.rank, l, it->second.result});
  };
  for (size_t i = 0; i + 1 < n; ++i)
    consider(static_cast<int64_t>(i));
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0)
      continue;
    auto right = static_cast<size_t>(next[top.pos]);
    auto it = merges_.find(key(symbols[top.pos], symbols[right]));
    if (it == merges_.end() || it->second.result != top.result)
      continue;
    symbols[top.pos] = top.result;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0)
      prev[static_cast<size_t>(next[right])] = static_cast<int64_t>(top.pos);
    consider(prev[top.pos]);
    consider(static_cast<int64_t>(top.pos));
  }
  for (size_t i = 0; i < n; ++i)
    if (alive[i])
      ids.push_back(symbols[i]);
}

} // namespace gai::tok
