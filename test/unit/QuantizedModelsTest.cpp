// Quantized HF fixtures on the CPU: the quantized GEMMs compute exactly
// what a float model over the dequantized weights does, and int8 greedy
// decoding keeps the float model's tokens (or leaves them only at a
// near-tie).
#include "FixtureCompare.h"

#include "compiler/QuantizedWeights.h"
#include "gai/FloatConvert.h"
#include "gai/WeightSet.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

namespace gai {
namespace {

constexpr int64_t kNewTokens = 24, kSeqLen = 40;

CompileOptions forwardOptions(const std::string &format) {
  CompileOptions options = forwardOnly(kSeqLen);
  options.quantize.format = format;
  options.quantize.group = 16; // divides every fixture's k (64, 176, 256 …)
  return options;
}

std::vector<int32_t> greedy(Session &s, std::vector<int32_t> ids) {
  for (int64_t step = 0; step < kNewTokens; ++step) {
    std::vector<float> l = logitsAt(s, ids, static_cast<int64_t>(ids.size()) - 1);
    ids.push_back(static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin()));
  }
  return ids;
}

/// The fixture's weights with each quantized one replaced by its
/// dequantized floats (in the file's layout), written to a temp file. A
/// tied LM head's copy, which the file does not hold, goes to `tied`.
struct TiedCopy {
  std::string table;
  std::vector<float> values; ///< [vocab, d]
  std::vector<int64_t> shape;
};
std::string dequantizedWeights(const std::string &family, const std::string &format,
                               CompileOptions options, TiedCopy *tied = nullptr) {
  options.specPath = fixtureDir(family) + "config.json";
  options.weightsPath = fixtureDir(family) + "model.safetensors";
  mlir::MLIRContext context;
  auto model = importModel(context, options);
  EXPECT_TRUE(!!model);
  EXPECT_TRUE(mlir::succeeded(optimize(*model->module, options)));
  auto weights = WeightSet::open(options.weightsPath);
  EXPECT_TRUE(weights.isOk());
  auto packed = quantizeWeights(*model->module, *weights);
  EXPECT_TRUE(!!packed) << (packed ? "" : llvm::toString(packed.takeError()));
  auto find = [&](const std::string &name) { return packed->find(name); };
  std::map<std::string, std::vector<float>> replaced;
  for (const QuantizedMatrix &m : packed->matrices) {
    const TensorToWrite *values = find(m.name), *scale = find(quantScaleName(m.name)),
                        *zero = find(quantZeroName(m.name));
    std::vector<float> rows(m.rows * m.cols), file(m.rows * m.cols);
    for (int64_t r = 0; r < m.rows; ++r)
      dequantizeRow(m.format, values->data, reinterpret_cast<const float *>(scale->data),
                    zero ? zero->data : nullptr, r, m.cols, m.group, scale->byteSize == 4,
                    rows.data() + r * m.cols);
    for (int64_t r = 0; r < m.rows; ++r)
      for (int64_t c = 0; c < m.cols; ++c)
        (m.transposed ? file[c * m.rows + r] : file[r * m.cols + c]) = rows[r * m.cols + c];
    if (!m.tiedTo.empty()) {
      EXPECT_NE(tied, nullptr) << "an unexpected tied head";
      if (tied)
        *tied = {m.tiedTo, std::move(file), {m.rows, m.cols}};
      continue;
    }
    replaced[m.name] = std::move(file);
  }
  return writeFixtureWeights(family, "dequantized-" + format, replaced);
}
std::string dequantizedWeights(const std::string &family, const std::string &format) {
  return dequantizedWeights(family, format, forwardOptions(format));
}

/// The last position's logits of `quantized` and `reference` agree to f32
/// rounding.
void expectSameLogits(Session &quantized, Session &reference, const std::vector<int32_t> &ids,
                      const std::string &what) {
  std::vector<float> q = logitsAt(quantized, ids, ids.size() - 1),
                     f = logitsAt(reference, ids, ids.size() - 1);
  double diff = 0, scale = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    diff = std::max(diff, std::fabs(double(q[i]) - f[i]));
    scale = std::max(scale, std::fabs(double(f[i])));
  }
  EXPECT_GT(scale, 1e-3) << what;
  EXPECT_LE(diff, 1e-5 * scale) << what;
}

class QuantizedModels : public ::testing::TestWithParam<const char *> {};

// The quantized GEMMs read the same numbers a float model over the
// dequantized weights multiplies: the logits agree to f32 rounding.
TEST_P(QuantizedModels, EqualTheFloatModelOverDequantizedWeights) {
  std::string family = GetParam();
  std::vector<int32_t> ids = promptOf(family);
  for (const char *format : {"int8", "int4", "fp8"}) {
    std::string dequantized = dequantizedWeights(family, format);
    auto quantized = compileFixture(family, forwardOptions(format));
    auto reference = compileFixture(family, forwardOptions(""), dequantized);
    ASSERT_TRUE(quantized && reference);
    expectSameLogits(*quantized, *reference, ids, family + " " + format);
    std::remove(dequantized.c_str());
  }
}

// int8 greedy tokens are the float model's, or differ first where the
// float logits' top two are closer than the logit error int8 makes along
// the float continuation (its largest: a flip needs a gap below twice it
// at that very step, so this asks for a gap half as wide as any flip
// could have).
TEST_P(QuantizedModels, Int8GreedyKeepsTheFloatTokensBarNearTies) {
  std::string family = GetParam();
  auto reference = compileFixture(family, forwardOptions(""));
  auto int8 = compileFixture(family, forwardOptions("int8"));
  ASSERT_TRUE(reference && int8);
  std::vector<int32_t> prompt = promptOf(family);
  std::vector<int32_t> want = greedy(*reference, prompt), got = greedy(*int8, prompt);
  // The rms logit error along the float model's own continuation.
  double squares = 0, largest = 0;
  int64_t count = 0;
  for (size_t at = prompt.size() - 1; at + 1 < want.size(); ++at) {
    std::vector<float> f = logitsAt(*reference, want, at), q = logitsAt(*int8, want, at);
    for (size_t i = 0; i < f.size(); ++i, ++count) {
      squares += (double(q[i]) - f[i]) * (double(q[i]) - f[i]);
      largest = std::max(largest, std::fabs(double(q[i]) - f[i]));
    }
  }
  double rms = std::sqrt(squares / count);
  auto first = std::mismatch(want.begin(), want.end(), got.begin());
  if (first.first == want.end()) {
    std::printf("%s int8: all %lld tokens equal; logit error rms %.3e, max %.3e\n",
                family.c_str(), static_cast<long long>(kNewTokens), rms, largest);
    return;
  }
  size_t step = first.first - want.begin();
  std::vector<int32_t> prefix(want.begin(), want.begin() + step);
  std::vector<float> f = logitsAt(*reference, prefix, step - 1);
  std::vector<float> sorted = f;
  std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
  double gap = sorted[0] - sorted[1];
  std::printf("%s int8: first differs at new token %zu; float top-2 gap %.3e, logit error "
              "rms %.3e, max %.3e\n",
              family.c_str(), step - prompt.size(), gap, rms, largest);
  EXPECT_LT(gap, largest) << family << ": int8 changed a token the float model chose clearly";
}

// Each format's logit error along the float continuation, printed for
// the docs' table; more bits, less error.
TEST_P(QuantizedModels, LogitErrorsShrinkWithMoreBits) {
  std::string family = GetParam();
  auto reference = compileFixture(family, forwardOptions(""));
  ASSERT_TRUE(reference);
  std::vector<int32_t> prompt = promptOf(family);
  std::vector<int32_t> want = greedy(*reference, prompt);
  std::map<std::string, double> rmsOf;
  for (const char *format : {"int8", "int4", "fp8"}) {
    auto quantized = compileFixture(family, forwardOptions(format));
    ASSERT_TRUE(quantized);
    double squares = 0, largest = 0, scale = 0;
    int64_t count = 0;
    for (size_t at = prompt.size() - 1; at + 1 < want.size(); ++at) {
      std::vector<float> f = logitsAt(*reference, want, at), q = logitsAt(*quantized, want, at);
      for (size_t i = 0; i < f.size(); ++i, ++count) {
        double d = double(q[i]) - f[i];
        squares += d * d;
        largest = std::max(largest, std::fabs(d));
        scale = std::max(scale, std::fabs(double(f[i])));
      }
    }
    rmsOf[format] = std::sqrt(squares / count);
    std::printf("%s %s: logit error rms %.3e, max %.3e (logits up to %.3f)\n", family.c_str(),
                format, rmsOf[format], largest, scale);
  }
  EXPECT_LT(rmsOf["int8"], rmsOf["int4"]) << family;
  EXPECT_LT(rmsOf["int8"], rmsOf["fp8"]) << family;
}

/// The family's config with its embeddings untied, in a temp directory.
std::string untiedConfig(const std::string &family) {
  std::ifstream in(fixtureDir(family) + "config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string tied = "\"tie_word_embeddings\": true";
  const size_t at = text.find(tied);
  EXPECT_NE(at, std::string::npos) << family << " ties its embeddings in its config";
  if (at != std::string::npos)
    text.replace(at, tied.size(), "\"tie_word_embeddings\": false");
  std::string dir = ::testing::TempDir() + "gai-untied-" + family + "-" +
                    std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << text;
  return dir + "/config.json";
}

class TiedHeads : public ::testing::TestWithParam<const char *> {};

// With the head not skipped, a tied model's head is a quantized copy of
// the table while its lookups keep the float table: the logits are those
// of the untied float model whose head is the dequantized copy.
TEST_P(TiedHeads, QuantizeAsACopyOfTheirTable) {
  std::string family = GetParam();
  std::vector<int32_t> ids = promptOf(family);
  for (const char *format : {"int8", "int4"}) {
    CompileOptions options = forwardOptions(format);
    options.quantize.skip = {"*embed*", "*wte*", "*wpe*"};
    TiedCopy copy;
    std::string dequantized = dequantizedWeights(family, format, options, &copy);
    ASSERT_FALSE(copy.table.empty()) << family << " " << format << ": the head was not quantized";
    // The reference: untied, lm_head.weight the copy's dequantized floats.
    auto file = WeightSet::open(dequantized);
    ASSERT_TRUE(file.isOk());
    const TensorView *table = file->find(copy.table);
    ASSERT_NE(table, nullptr);
    ASSERT_EQ(table->numElements(), static_cast<int64_t>(copy.values.size()));
    std::vector<float> tableFloats(copy.values.size());
    convertFloats(table->data, table->dtype, tableFloats.data(), DType::F32, tableFloats.size());
    EXPECT_NE(tableFloats, copy.values) << "the head's copy is the float table: nothing quantized";
    std::vector<TensorToWrite> tensors;
    for (const TensorView *t : file->tensors())
      tensors.push_back({t->name, t->dtype, t->shape, t->data, t->byteSize});
    tensors.push_back({"lm_head.weight", DType::F32, copy.shape,
                       reinterpret_cast<const uint8_t *>(copy.values.data()),
                       copy.values.size() * 4});
    std::string untiedWeights = dequantized + ".untied.safetensors";
    ASSERT_TRUE(writeSafetensors(untiedWeights, tensors).isOk());
    auto quantized = compileFixture(family, options);
    CompileOptions untied = forwardOptions("");
    untied.specPath = untiedConfig(family);
    auto reference = compileFixture(family, untied, untiedWeights);
    ASSERT_TRUE(quantized && reference);
    expectSameLogits(*quantized, *reference, ids, family + " " + format);
    std::remove(dequantized.c_str());
    std::remove(untiedWeights.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Families, TiedHeads,
                         ::testing::Values("gpt2", "qwen2", "gemma", "llama3"));

INSTANTIATE_TEST_SUITE_P(Families, QuantizedModels,
                         ::testing::Values("llama", "gpt2", "mistral", "qwen2", "mixtral",
                                           "gemma"));

} // namespace
} // namespace gai
