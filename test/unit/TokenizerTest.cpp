// HFTokenizer against Hugging Face `tokenizers`: ids and decoded text for
// 2,000 strings per kind (test/fixtures/make_tokenizer_fixtures.py), and 600
// per kind with added tokens that strip whitespace or match whole words only
// (test/fixtures/make_added_token_fixtures.py).
#include "gai/Tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

using namespace gai;

namespace {

const std::string kDir = std::string(GAI_FIXTURES_DIR) + "/tokenizers/";

std::vector<std::string> readLines(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::string unescape(const std::string &s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    if (c == 'n')
      out += '\n';
    else if (c == 'r')
      out += '\r';
    else if (c == 't')
      out += '\t';
    else if (c == 'x')
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)), i += 2;
    else
      out += c;
  }
  return out;
}

std::vector<std::string> splitTabs(const std::string &line) {
  std::vector<std::string> fields;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, '\t');)
    fields.push_back(f);
  if (!line.empty() && line.back() == '\t')
    fields.push_back("");
  return fields;
}

std::vector<int32_t> parseIds(const std::string &s) {
  std::vector<int32_t> ids;
  std::istringstream in(s);
  for (int32_t id; in >> id;)
    ids.push_back(id);
  return ids;
}

std::string show(const std::vector<int32_t> &ids) {
  std::string s;
  for (int32_t id : ids)
    s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

struct Kind {
  const char *name, *strings;
  size_t count;
};

void PrintTo(const Kind &kind, std::ostream *out) { *out << kind.name; }

class HFTokenizerMatches : public ::testing::TestWithParam<Kind> {};

TEST_P(HFTokenizerMatches, EveryStringsIdsAndDecode) {
  std::string kind = GetParam().name;
  auto tokenizer = HFTokenizer::load(kDir + kind + ".json");
  ASSERT_TRUE(tokenizer.isOk()) << tokenizer.status().message();
  std::vector<std::string> strings = readLines(kDir + GetParam().strings);
  std::vector<std::string> expected = readLines(kDir + kind + ".expected");
  ASSERT_EQ(strings.size(), GetParam().count);
  ASSERT_EQ(expected.size(), strings.size());
  int idsMatch = 0, plainMatch = 0, decodeMatch = 0, streamMatch = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    std::string text = unescape(strings[i]);
    std::vector<std::string> want = splitTabs(expected[i]);
    ASSERT_EQ(want.size(), 3u) << kind << ".expected line " << i + 1;
    std::vector<int32_t> wantIds = parseIds(want[0]);
    auto ids = (*tokenizer)->encode(text);
    ASSERT_TRUE(ids.isOk()) << ids.status().message();
    if (*ids == wantIds)
      ++idsMatch;
    else
      ADD_FAILURE() << kind << " string " << i + 1 << " '" << strings[i] << "': ids "
                    << show(*ids) << ", HF " << want[0];

    std::vector<int32_t> wantPlain = want[1] == "=" ? wantIds : parseIds(want[1]);
    auto plain = (*tokenizer)->encode(text, /*allowSpecial=*/false);
    ASSERT_TRUE(plain.isOk()) << plain.status().message();
    if (*plain == wantPlain)
      ++plainMatch;
    else
      ADD_FAILURE() << kind << " string " << i + 1 << " '" << strings[i]
                    << "' with special tokens as text: ids " << show(*plain) << ", HF "
                    << show(wantPlain);

    // "\=": HF decoded the string back to its bytes.
    std::string wantText = want[2] == "\\=" ? text : unescape(want[2]);
    std::string decoded = (*tokenizer)->decode(wantIds);
    if (decoded == wantText)
      ++decodeMatch;
    else
      ADD_FAILURE() << kind << " string " << i + 1 << " '" << strings[i] << "': decoded '"
                    << decoded << "', HF '" << want[2] << "'";

    DecodeStream stream(**tokenizer);
    std::string streamed;
    for (int32_t id : wantIds)
      streamed += stream.step(id);
    bool complete = decoded.size() < 3 || decoded.compare(decoded.size() - 3, 3, "\xEF\xBF\xBD");
    if (complete ? streamed == decoded : decoded.compare(0, streamed.size(), streamed) == 0)
      ++streamMatch;
    else
      ADD_FAILURE() << kind << " string " << i + 1 << ": streamed '" << streamed
                    << "', decoded '" << decoded << "'";
  }
  size_t n = strings.size();
  std::printf("%s: ids %d/%zu, ids with special tokens as text %d/%zu, decode %d/%zu, "
              "stream %d/%zu\n",
              kind.c_str(), idsMatch, n, plainMatch, n, decodeMatch, n, streamMatch, n);
}

TEST_P(HFTokenizerMatches, RandomIdsDecode) {
  std::string kind = GetParam().name;
  auto tokenizer = HFTokenizer::load(kDir + kind + ".json");
  ASSERT_TRUE(tokenizer.isOk()) << tokenizer.status().message();
  int matches = 0;
  std::vector<std::string> lines = readLines(kDir + kind + ".decode");
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> want = splitTabs(lines[i]);
    ASSERT_EQ(want.size(), 3u) << kind << ".decode line " << i + 1;
    std::vector<int32_t> ids = parseIds(want[0]);
    std::string skip = (*tokenizer)->decode(ids), keep = (*tokenizer)->decode(ids, false);
    if (skip == unescape(want[1]) && keep == unescape(want[2]))
      ++matches;
    else
      ADD_FAILURE() << kind << " ids " << want[0] << ": decoded '" << skip << "' / '" << keep
                    << "', HF '" << want[1] << "' / '" << want[2] << "'";
  }
  std::printf("%s: random ids decode %d/%zu\n", kind.c_str(), matches, lines.size());
}

TEST(HFTokenizer, RefusesComponentsItDoesNotImplementByName) {
  const std::string model = R"("model": {"type": "BPE", "vocab": {"a": 0}, "merges": []})";
  auto refusal = [&](const std::string &fields) {
    auto t = HFTokenizer::fromJson("{" + model + fields + "}", "t.json");
    return t.isOk() ? std::string("loaded") : t.status().message();
  };
  EXPECT_EQ(refusal(R"(, "normalizer": {"type": "NFC"})"),
            "t.json: normalizer 'NFC' is not supported");
  EXPECT_EQ(refusal(R"(, "pre_tokenizer": {"type": "Whitespace"})"),
            "t.json: pre_tokenizer 'Whitespace' is not supported");
  EXPECT_EQ(refusal(R"(, "decoder": {"type": "Sequence", "decoders": [{"type": "WordPiece"}]})"),
            "t.json: decoder 'WordPiece' is not supported");
  EXPECT_EQ(refusal(R"(, "post_processor": {"type": "BertProcessing"})"),
            "t.json: post_processor 'BertProcessing' is not supported");
  EXPECT_EQ(refusal(R"(, "added_tokens": [{"id": 1, "content": "<m>", "lstrip": 1}])"),
            "t.json: added token '<m>': field 'lstrip' should be true or false");
  EXPECT_EQ(refusal(R"(, "truncation": {"max_length": 8})"),
            "t.json: truncation is not supported (expected null)");
  auto wordPiece = HFTokenizer::fromJson(R"({"model": {"type": "WordPiece"}})", "w.json");
  ASSERT_FALSE(wordPiece.isOk());
  EXPECT_EQ(wordPiece.status().message(), "w.json: model 'WordPiece' is not supported (only BPE)");
  EXPECT_EQ(refusal(""), "loaded");
}

TEST(HFTokenizer, MergesNamingUnknownTokensAreRefused) {
  auto t = HFTokenizer::fromJson(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}})", "m.json");
  ASSERT_FALSE(t.isOk());
  EXPECT_EQ(t.status().message(),
            "m.json: model: merge 0 ('a', 'b') names a token that is not in the vocab");
}

TEST(HFTokenizer, IdsFarPastTheTokensAreRefused) {
  auto refusal = [](const std::string &json) {
    auto t = HFTokenizer::fromJson(json, "t.json");
    return t.isOk() ? std::string("loaded") : t.status().message();
  };
  // An id of 2^31 - 1 in a two-token file once asked for a 2^31-entry table.
  EXPECT_EQ(
      refusal(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2147483647}, "merges": []}})"),
      "t.json: model: vocab id 2147483647 of 'b' should be below 65538 (the vocab's 2 "
      "tokens and at most 65536 unused ids)");
  EXPECT_EQ(refusal(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                        "added_tokens": [{"id": 70000, "content": "<x>"}]})"),
            "t.json: added token id 70000 should be below 65538 (the 1 of the model, 1 added "
            "and at most 65536 unused ids)");
  // A few holes, as files with reserved ids have, still load.
  auto holes = HFTokenizer::fromJson(
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5000}, "merges": []},
          "added_tokens": [{"id": 9000, "content": "<x>", "special": true}]})",
      "h.json");
  ASSERT_TRUE(holes.isOk()) << holes.status().message();
  EXPECT_EQ((*holes)->vocabSize(), 9001);
  EXPECT_EQ(*(*holes)->encode("ab<x>"), (std::vector<int32_t>{0, 5000, 9000}));
}

TEST(HFTokenizer, StrippingTokensTakeTheWhitespaceBesideThem) {
  // Phi-3's chat tokens are rstrip: the template's newlines go with them.
  auto t = HFTokenizer::load(kDir + "added-sentencepiece.json");
  ASSERT_TRUE(t.isOk()) << t.status().message();
  auto withNewlines = (*t)->encode("<|user|>\nHi<|end|>\n<|assistant|>\n");
  auto without = (*t)->encode("<|user|>Hi<|end|><|assistant|>");
  ASSERT_TRUE(withNewlines.isOk() && without.isOk());
  EXPECT_EQ(*withNewlines, *without);
  // RoBERTa's <mask> is lstrip: the space before it goes with it.
  EXPECT_EQ(*(*t)->encode("The \t<mask>"), *(*t)->encode("The<mask>"));
}

TEST(HFTokenizer, ATokenInsideWhitespaceAnotherStrippedIsAnError) {
  // <b> strips " \t  ", which holds a tab token; that one strips to its left
  // up to where <b> ended, past its own end. HF panics ("AddedVocabulary bad
  // split"); gai says so.
  auto t = HFTokenizer::fromJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "added_tokens": [{"id": 1, "content": "<b>", "rstrip": true},
                       {"id": 2, "content": "\t", "lstrip": true}]})",
                                 "t.json");
  ASSERT_TRUE(t.isOk()) << t.status().message();
  auto ids = (*t)->encode("<b> \t  a");
  ASSERT_FALSE(ids.isOk());
  EXPECT_EQ(ids.status().message(), "added token '\t' lies inside whitespace the token before "
                                    "it stripped, which HF tokenizers cannot split either");
  // Where its span is empty (it ends where <b>'s does) HF drops it.
  EXPECT_EQ(*(*t)->encode("<b> \ta"), (std::vector<int32_t>{1, 0}));
}

INSTANTIATE_TEST_SUITE_P(Kinds, HFTokenizerMatches,
                         ::testing::Values(Kind{"gpt2", "strings.txt", 2000},
                                           Kind{"llama3", "strings.txt", 2000},
                                           Kind{"sentencepiece", "strings.txt", 2000},
                                           Kind{"added-gpt2", "added-strings.txt", 600},
                                           Kind{"added-sentencepiece", "added-strings.txt", 600}),
                         [](const auto &info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

} // namespace
