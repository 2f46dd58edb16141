// The whole path — spec → passes → exec → generated CPU kernels → artifact →
// runtime — reproduces what Hugging Face transformers computed for each
// fixture: logits within 1e-4 and the same greedy continuation.
#include "compiler/Pipeline.h"
#include "compiler/reference/Interpreter.h"
#include "FixtureSession.h"
#include "frontend/WeightCheck.h"
#include "gai/Generate.h"
#include "gai/Init.h"
#include "gai/Session.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <unistd.h>

using namespace gai;

namespace {

/// The family's fixture, f32, compiled for `build` and opened on the CPU.
std::unique_ptr<Session> compile(const std::string &family, BuildOptions build) {
  CompileOptions options;
  build.dtype = "f32";
  options.build = build;
  return compileFixture(family, options);
}

std::vector<int32_t> idsOf(const TensorView &t) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numElements(); ++i) {
    if (t.dtype == DType::I64)
      ids.push_back(static_cast<int32_t>(reinterpret_cast<const int64_t *>(t.data)[i]));
    else
      ids.push_back(reinterpret_cast<const int32_t *>(t.data)[i]);
  }
  return ids;
}

std::unique_ptr<SafetensorsFile> expectedOf(const std::string &family) {
  auto file = SafetensorsFile::open(fixtureDir(family) + "expected.safetensors");
  EXPECT_TRUE(file.isOk()) << file.status().message();
  return file ? std::make_unique<SafetensorsFile>(std::move(*file)) : nullptr;
}

class RuntimeNumerics : public ::testing::TestWithParam<const char *> {};

TEST_P(RuntimeNumerics, ForwardLogitsMatchTransformers) {
  std::string family = GetParam();
  auto expected = expectedOf(family);
  ASSERT_TRUE(expected);
  std::vector<int32_t> ids = idsOf(*expected->find("input_ids"));
  const TensorView &want = *expected->find("logits");
  ASSERT_EQ(want.dtype, DType::F32);
  const TensorView &idsView = *expected->find("input_ids");
  ASSERT_EQ(idsView.shape.size(), 2u);
  BuildOptions build;
  build.batch = idsView.shape[0];
  build.seqLen = idsView.shape[1];
  auto session = compile(family, build);
  ASSERT_TRUE(session);
  std::vector<TensorRef> in = session->inputs("forward");
  ASSERT_EQ(in.size(), 1u);
  ASSERT_EQ(in[0].numElements(), static_cast<int64_t>(ids.size()));
  std::copy(ids.begin(), ids.end(), in[0].as<int32_t>());
  Status s = session->run("forward");
  ASSERT_TRUE(s.isOk()) << s.message();
  TensorRef got = session->outputs("forward").at(0);
  ASSERT_EQ(got.numElements(), want.numElements());
  const auto *w = reinterpret_cast<const float *>(want.data);
  double maxDiff = 0;
  for (int64_t i = 0; i < got.numElements(); ++i)
    maxDiff = std::max(maxDiff, std::abs(double(got.as<float>()[i]) - w[i]));
  EXPECT_LE(maxDiff, 1e-4) << family;
  char figure[32];
  std::snprintf(figure, sizeof(figure), "%.2e", maxDiff);
  RecordProperty("max_abs_logit_diff", figure);
  std::printf("%s: max |logits - transformers| = %s\n", family.c_str(), figure);
}

// Prefill in chunks of 3 (so a prompt of 8 takes three, the last one
// overlapping) and decode over the KV cache, two prompts of different
// lengths in one batch.
TEST_P(RuntimeNumerics, GreedyGenerationMatchesTransformers) {
  std::string family = GetParam();
  auto expected = expectedOf(family);
  ASSERT_TRUE(expected);
  std::vector<int32_t> prompt = idsOf(*expected->find("prompt_ids"));
  std::vector<int32_t> greedy = idsOf(*expected->find("greedy_ids"));
  BuildOptions build;
  build.batch = 2;
  build.seqLen = static_cast<int64_t>(greedy.size());
  build.prefillLen = 3;
  build.entries = {false, true, true};
  auto session = compile(family, build);
  ASSERT_TRUE(session);

  GenerateOptions options;
  options.maxNewTokens = static_cast<int64_t>(greedy.size() - prompt.size());
  std::vector<int32_t> shortPrompt(prompt.begin(), prompt.begin() + 5);
  auto both = generate(*session, {prompt, shortPrompt}, options);
  ASSERT_TRUE(both.isOk()) << both.status().message();
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), (*both)[0].begin(), (*both)[0].end());
  EXPECT_EQ(full, greedy) << family;

  // The short row's tokens do not depend on its neighbour in the batch.
  auto alone = generate(*session, {shortPrompt}, options);
  ASSERT_TRUE(alone.isOk()) << alone.status().message();
  EXPECT_EQ((*alone)[0], (*both)[1]) << family;
  EXPECT_EQ((*both)[1].size(), static_cast<size_t>(options.maxNewTokens));

  // The CPU picks every token on the host: it has no device greedy loop,
  // and says so when asked for one.
  EXPECT_EQ(session->greedyStepsAtOnce(), 0);
  auto onDevice = session->decodeGreedy("decode", 1, 0);
  ASSERT_FALSE(onDevice.isOk());
  EXPECT_NE(onDevice.status().message().find("at most 0"), std::string::npos)
      << onDevice.status().message();
  // Prefill feeds 3 tokens a row: not a decode step.
  auto notDecode = session->decodeGreedy("prefill", 1, 0);
  ASSERT_FALSE(notDecode.isOk());
  EXPECT_NE(notDecode.status().message().find("entry 'prefill' is not a decode step"),
            std::string::npos)
      << notDecode.status().message();
}

// A conversation continues the KV cache: each reply prefills only what
// follows the prefix the cache holds, and makes the tokens a fresh prefill
// of the whole prompt makes.
TEST_P(RuntimeNumerics, ConversationContinuesTheCache) {
  std::string family = GetParam();
  auto expected = expectedOf(family);
  ASSERT_TRUE(expected);
  std::vector<int32_t> prompt = idsOf(*expected->find("prompt_ids"));
  BuildOptions build;
  build.batch = 2;
  build.seqLen = 32;
  build.prefillLen = 3;
  build.entries = {false, true, true};
  auto session = compile(family, build);
  ASSERT_TRUE(session);
  GenerateOptions options;
  options.maxNewTokens = 4;
  auto fresh = [&](const std::vector<int32_t> &ids) {
    auto out = generate(*session, {ids}, options);
    EXPECT_TRUE(out.isOk()) << out.status().message();
    return out ? (*out)[0] : std::vector<int32_t>();
  };
  std::vector<int32_t> first(prompt.begin(), prompt.begin() + 5);
  std::vector<int32_t> want1 = fresh(first);
  // The next turns: the first, its reply and three more tokens; then one
  // that differs from the third token on.
  std::vector<int32_t> second = first;
  second.insert(second.end(), want1.begin(), want1.end());
  second.insert(second.end(), prompt.begin() + 5, prompt.begin() + 8);
  std::vector<int32_t> want2 = fresh(second);
  std::vector<int32_t> third(prompt.begin(), prompt.begin() + 2);
  third.insert(third.end(), prompt.rbegin(), prompt.rbegin() + 4);
  std::vector<int32_t> want3 = fresh(third);

  Conversation conversation(*session);
  GenerateStats stats1, stats2, stats3;
  auto got1 = conversation.reply(first, options, {}, &stats1);
  ASSERT_TRUE(got1.isOk()) << got1.status().message();
  EXPECT_EQ(*got1, want1) << family;
  EXPECT_EQ(stats1.cachedTokens, 0);
  // The cache holds the prompt and the reply but its last token.
  std::vector<int32_t> held = first;
  held.insert(held.end(), got1->begin(), got1->end() - 1);
  EXPECT_EQ(conversation.cached(), held);

  auto got2 = conversation.reply(second, options, {}, &stats2);
  ASSERT_TRUE(got2.isOk()) << got2.status().message();
  EXPECT_EQ(*got2, want2) << family;
  EXPECT_EQ(stats2.cachedTokens, static_cast<int64_t>(held.size()));
  EXPECT_EQ(stats2.prefillTokens,
            static_cast<int64_t>(second.size() - held.size()));

  size_t common = 0;
  while (common < third.size() &&
         conversation.cached()[common] == third[common])
    ++common;
  auto got3 = conversation.reply(third, options, {}, &stats3);
  ASSERT_TRUE(got3.isOk()) << got3.status().message();
  EXPECT_EQ(*got3, want3) << family;
  EXPECT_EQ(stats3.cachedTokens, static_cast<int64_t>(common));
  EXPECT_LT(common, third.size());

  std::vector<int32_t> tooLong(33, prompt[0]);
  auto refused = conversation.reply(tooLong, options);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().message(),
            "the conversation has 33 tokens; the context holds "
            "32 (recompile with a larger --seq-len)");
}

// Our own specs, with fresh weights from `gai-run init`'s initialiser: the
// runtime agrees with the reference interpreter on the frontend's IR.
class OwnSpecNumerics : public ::testing::TestWithParam<const char *> {};

TEST_P(OwnSpecNumerics, RuntimeMatchesTheReferenceInterpreter) {
  std::string example = GetParam();
  std::string dir = ::testing::TempDir() + "gai-own-" + example + "-" +
                    std::to_string(::getpid());
  std::string artifactPath = dir + ".gai", weightsPath = dir + ".safetensors";
  CompileOptions options;
  options.specPath = std::string(GAI_EXAMPLES_DIR) + "/" + example + ".json";
  options.build.batch = 2;
  options.build.seqLen = 24;
  options.build.dtype = "f32";
  mlir::MLIRContext context;
  auto model = importModel(context, options);
  ASSERT_TRUE(!!model) << llvm::toString(model.takeError());
  mlir::OwningOpRef<mlir::ModuleOp> frontend = model->module->clone();
  ASSERT_TRUE(mlir::succeeded(optimize(*model->module, options)));
  auto bytes = compileArtifact(*model->module, model->spec, options,
                               WeightsMode::None, artifactPath);
  ASSERT_TRUE(!!bytes) << llvm::toString(bytes.takeError());
  std::ofstream(artifactPath, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes->data()), bytes->size());
  Status init = writeInitialWeights(artifactPath, weightsPath, 11);
  ASSERT_TRUE(init.isOk()) << init.message();

  auto artifact = LoadedArtifact::load(artifactPath, weightsPath);
  ASSERT_TRUE(artifact.isOk()) << artifact.status().message();
  auto session = Session::create(std::move(*artifact));
  ASSERT_TRUE(session.isOk()) << session.status().message();
  TensorRef tokens = (*session)->inputs("forward").at(0);
  std::vector<double> ids;
  for (int64_t i = 0; i < tokens.numElements(); ++i) {
    tokens.as<int32_t>()[i] = static_cast<int32_t>((i * 37 + 11) % model->spec.vocab);
    ids.push_back(tokens.as<int32_t>()[i]);
  }
  Status run = (*session)->run("forward");
  ASSERT_TRUE(run.isOk()) << run.message();
  TensorRef got = (*session)->outputs("forward").at(0);

  auto weights = SafetensorsFile::open(weightsPath);
  ASSERT_TRUE(weights.isOk());
  reference::HostTensor input({2, 24});
  input.data = ids;
  auto want = reference::evaluate(
      (*frontend).lookupSymbol<mlir::func::FuncOp>("forward"), {input}, *weights,
      [&](llvm::StringRef name) { return paramNameOf(model->spec, name); });
  ASSERT_TRUE(!!want) << llvm::toString(want.takeError());
  ASSERT_EQ((*want)[0].numElements(), got.numElements());
  double maxDiff = 0, maxAbs = 0;
  for (int64_t i = 0; i < got.numElements(); ++i) {
    maxDiff = std::max(maxDiff, std::abs(got.as<float>()[i] - (*want)[0].data[i]));
    maxAbs = std::max(maxAbs, std::abs((*want)[0].data[i]));
  }
  EXPECT_GT(maxAbs, 1e-3); // not a vacuous comparison of zeros
  EXPECT_LE(maxDiff, 1e-4) << example;
  std::printf("%s: max |runtime - reference| = %.2e (logits up to %.2f)\n",
              example.c_str(), maxDiff, maxAbs);
  std::remove(artifactPath.c_str());
  std::remove(weightsPath.c_str());
}

INSTANTIATE_TEST_SUITE_P(Examples, OwnSpecNumerics,
                         ::testing::Values("tiny-llama", "tiny-gpt", "tiny-moe"));

INSTANTIATE_TEST_SUITE_P(Families, RuntimeNumerics,
                         ::testing::Values("llama", "gpt2", "mistral", "qwen2",
                                           "mixtral", "gemma", "phi3", "gemma2", "qwen3", "llama3",
                                           "qwen2yarn", "phi3longrope", "gemma3", "phi3partial",
                                         "qwen2window"));

} // namespace
