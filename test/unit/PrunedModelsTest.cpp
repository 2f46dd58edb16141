// Pruned HF fixtures on the CPU: a 2:4 model computes what the dense model
// over the same weights zeroed by the 2:4 rule does, a structured-pruned
// one what the dense model with those heads and channels zeroed does, and
// masked training keeps every pruned weight at exactly zero, its weights
// then running in a 2:4 generation artifact.
#include "FixtureCompare.h"

#include "../TrainFixture.h"
#include "compiler/PrunedWeights.h"
#include "dialects/Gai/GaiOps.h"
#include "gai/Sparsity.h"
#include "gai/Train.h"
#include "gai/WeightSet.h"
#include "passes/PruneAttr.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

namespace gai {
namespace {

constexpr int64_t kSeqLen = 40;

using mlir::gai::ParamOp;

CompileOptions forwardOptions(const CompileOptions::Prune &prune) {
  CompileOptions options = forwardOnly(kSeqLen);
  options.prune = prune;
  return options;
}

CompileOptions::Prune twoFour() {
  CompileOptions::Prune p;
  p.pattern = "2:4";
  return p;
}

/// The fixture's module after the gai passes: what they chose to prune.
mlir::OwningOpRef<mlir::ModuleOp> optimized(mlir::MLIRContext &context,
                                            const std::string &family,
                                            CompileOptions options) {
  options.specPath = fixtureDir(family) + "config.json";
  options.weightsPath = fixtureDir(family) + "model.safetensors";
  auto model = importModel(context, options);
  EXPECT_TRUE(!!model);
  if (!model)
    return nullptr;
  EXPECT_TRUE(mlir::succeeded(optimize(*model->module, options)));
  return std::move(model->module);
}

/// A change to one weight: its f32 values in the file's layout and shape.
using Change = std::function<void(std::vector<float> &, const std::vector<int64_t> &)>;

/// The fixture's weights with `changes` applied, written to a temp file.
std::string changedWeights(const std::string &family, const std::string &tag,
                           const std::map<std::string, Change> &changes) {
  auto weights = WeightSet::open(fixtureDir(family) + "model.safetensors");
  EXPECT_TRUE(weights.isOk());
  std::map<std::string, std::vector<float>> replaced;
  for (const auto &[name, change] : changes) {
    const TensorView *t = weights->find(name);
    EXPECT_TRUE(t && t->dtype == DType::F32) << name;
    if (!t)
      continue;
    const auto *f = reinterpret_cast<const float *>(t->data);
    std::vector<float> w(f, f + t->numElements());
    change(w, t->shape);
    replaced[name] = std::move(w);
  }
  return writeFixtureWeights(family, "pruned-" + tag, replaced);
}

/// The 2:4 rule on a weight the file holds [n, k], or [k, n] (`kn`).
Change prune24Change(bool kn) {
  return [kn](std::vector<float> &w, const std::vector<int64_t> &shape) {
    const int64_t n = shape[kn ? 1 : 0], k = shape[kn ? 0 : 1];
    std::vector<float> nk(w.size());
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c)
        nk[r * k + c] = kn ? w[c * n + r] : w[r * k + c];
    prune24(nk.data(), n, k);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c)
        (kn ? w[c * n + r] : w[r * k + c]) = nk[r * k + c];
  };
}

/// Every 2:4 weight of `module`, compressed or masked, and its layout.
std::map<std::string, Change> twoFourChanges(mlir::ModuleOp module) {
  std::map<std::string, Change> changes;
  module.walk([&](mlir::gai::DecompressOp d) {
    auto values = d.getValues().getDefiningOp<ParamOp>();
    changes[values.getName().str()] = prune24Change(values.getTransposed());
  });
  module.walk([&](ParamOp p) {
    if (auto masked = mlir::gai::masked24(p))
      changes[p.getName().str()] = prune24Change(masked->kn);
  });
  return changes;
}

/// Zeroes the units of `slicing` in `removed` along its axis.
Change zeroUnits(const mlir::gai::WeightSlicing &slicing, std::vector<int64_t> removed) {
  return [slicing, removed](std::vector<float> &w, const std::vector<int64_t> &shape) {
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < slicing.axis; ++d)
      outer *= shape[d];
    for (size_t d = slicing.axis + 1; d < shape.size(); ++d)
      inner *= shape[d];
    const int64_t extent = shape[slicing.axis];
    for (const mlir::gai::PruneSegment &s : slicing.segments)
      for (int64_t u : removed)
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = s.offset + u * s.size; i < s.offset + (u + 1) * s.size; ++i)
            std::fill_n(w.begin() + (o * extent + i) * inner, inner, 0.0f);
  };
}

/// The heads and channels the pruned module removes (chosen from the
/// fixture's weights), zeroed in every weight of their groups.
std::map<std::string, Change> structuredChanges(mlir::ModuleOp module,
                                                const std::string &family) {
  auto weights = WeightSet::open(fixtureDir(family) + "model.safetensors");
  EXPECT_TRUE(weights.isOk());
  auto pruned = pruneWeights(module, *weights);
  EXPECT_TRUE(!!pruned) << (pruned ? "" : llvm::toString(pruned.takeError()));
  std::map<std::string, std::vector<int64_t>> removed;
  for (const PrunedGroup &g : pruned->groups) {
    EXPECT_FALSE(g.removed.empty()) << g.name;
    removed[g.name] = g.removed;
  }
  std::map<std::string, Change> changes;
  module.walk([&](ParamOp p) {
    if (auto slicing = mlir::gai::weightSlicing(p))
      changes[p.getName().str()] = zeroUnits(*slicing, removed[slicing->group]);
  });
  return changes;
}

/// Every prompt position's logits of `got` within 1e-5 of `want`'s.
void expectSameLogits(Session &got, Session &want, const std::string &family,
                      const std::string &what) {
  std::vector<int32_t> ids = promptOf(family);
  double diff = 0, scale = 0;
  for (size_t at = 0; at < ids.size(); ++at) {
    std::vector<float> g = logitsAt(got, ids, at), w = logitsAt(want, ids, at);
    for (size_t i = 0; i < g.size(); ++i) {
      diff = std::max(diff, std::fabs(double(g[i]) - w[i]));
      scale = std::max(scale, std::fabs(double(w[i])));
    }
  }
  EXPECT_GT(scale, 1e-3) << what;
  EXPECT_LE(diff, 1e-5) << what << ": logits up to " << scale;
  std::printf("%s: largest logit difference %.3g (logits up to %.3f)\n", what.c_str(), diff,
              scale);
}

class PrunedModels : public ::testing::TestWithParam<const char *> {};

// A 2:4 GEMM multiplies the values the dense model over the zeroed
// weights does.
TEST_P(PrunedModels, TwoFourEqualsTheDenseModelZeroedByTheSameRule) {
  std::string family = GetParam();
  CompileOptions options = forwardOptions(twoFour());
  mlir::MLIRContext context;
  auto module = optimized(context, family, options);
  ASSERT_TRUE(module);
  std::map<std::string, Change> changes = twoFourChanges(*module);
  EXPECT_GE(changes.size(), 8u) << "the q/k/v/o and MLP weights of two layers";
  std::string zeroed = changedWeights(family, "24", changes);
  auto sparse = compileFixture(family, options);
  auto dense = compileFixture(family, forwardOptions({}), zeroed);
  ASSERT_TRUE(sparse && dense);
  expectSameLogits(*sparse, *dense, family, family + " 2:4");
  std::remove(zeroed.c_str());
}

INSTANTIATE_TEST_SUITE_P(Families, PrunedModels,
                         ::testing::Values("llama", "gpt2", "mistral", "qwen2", "mixtral",
                                           "gemma"));

class StructuredModels
    : public ::testing::TestWithParam<std::tuple<const char *, int64_t, double>> {};

// Fewer heads and channels compute what the full model computes with them
// zeroed: a zeroed head's o columns, and a zeroed channel's down column,
// add nothing.
TEST_P(StructuredModels, EqualTheDenseModelWithThoseHeadsAndChannelsZeroed) {
  auto [family, heads, mlp] = GetParam();
  CompileOptions::Prune prune;
  prune.heads = heads;
  prune.mlp = mlp;
  CompileOptions options = forwardOptions(prune);
  mlir::MLIRContext context;
  auto module = optimized(context, family, options);
  ASSERT_TRUE(module);
  std::map<std::string, Change> changes = structuredChanges(*module, family);
  std::string zeroed = changedWeights(family, "structured", changes);
  auto pruned = compileFixture(family, options);
  auto dense = compileFixture(family, forwardOptions({}), zeroed);
  ASSERT_TRUE(pruned && dense);
  expectSameLogits(*pruned, *dense, family,
                   std::string(family) + " heads=" + std::to_string(heads) +
                       " mlp=" + std::to_string(mlp));
  std::remove(zeroed.c_str());
}

// llama and qwen2 lose one of two KV groups (qwen2 with q/k/v biases),
// gpt2 one of four heads from its fused q/k/v, mixtral a quarter of each
// expert's channels; gemma (one KV head) keeps its heads.
INSTANTIATE_TEST_SUITE_P(Families, StructuredModels,
                         ::testing::Values(std::make_tuple("llama", 2, 0.25),
                                           std::make_tuple("gpt2", 1, 0.5),
                                           std::make_tuple("qwen2", 2, 0.25),
                                           std::make_tuple("mixtral", 2, 0.25),
                                           std::make_tuple("gemma", 0, 0.5)));

class MaskedTraining : public ::testing::TestWithParam<const char *> {};

// 50 AdamW steps (weight decay included) move every kept weight and no
// pruned one; the trained weights, compressed into a 2:4 generation
// artifact, give the training artifact's logits.
TEST_P(MaskedTraining, KeepsPrunedWeightsExactlyZero) {
  std::string family = GetParam();
  CompileOptions options;
  options.train = true;
  options.prune = twoFour();
  options.build.dtype = "f32";
  options.build.batch = 1;
  options.build.seqLen = kSeqLen;
  options.build.entries = {true, false, false, true};
  options.build.trainBatch = 2;
  options.build.trainSeqLen = 16;
  mlir::MLIRContext context;
  auto module = optimized(context, family, options);
  ASSERT_TRUE(module);
  std::map<std::string, Change> changes = twoFourChanges(*module);
  ASSERT_GE(changes.size(), 8u);
  auto session = compileFixture(family, options);
  ASSERT_TRUE(session);

  auto fixture = SafetensorsFile::open(fixtureDir(family) + "train.safetensors");
  ASSERT_TRUE(fixture.isOk());
  OptimizerOptions o = fixtureOptimizerOptions(*fixture);
  auto trainer = Trainer::create(*session, o);
  ASSERT_TRUE(trainer.isOk()) << trainer.status().message();
  const auto *batches = reinterpret_cast<const int32_t *>(fixture->find("steps.tokens")->data);
  const auto *labels = reinterpret_cast<const int32_t *>(fixture->find("steps.targets")->data);
  for (int64_t step = 0; step < 50; ++step) {
    auto result = trainer->trainStep({batches + step * 32}, {labels + step * 32});
    ASSERT_TRUE(result.isOk()) << result.status().message();
    ASSERT_FALSE(result->skipped);
  }

  auto original = WeightSet::open(fixtureDir(family) + "model.safetensors");
  ASSERT_TRUE(original.isOk());
  for (auto &[name, change] : changes) {
    const TensorView *t = original->find(name);
    ASSERT_NE(t, nullptr) << name;
    const auto *f = reinterpret_cast<const float *>(t->data);
    std::vector<float> rule(f, f + t->numElements()), trained(rule.size());
    change(rule, t->shape);
    ASSERT_TRUE(session->readState("param." + name, trained.data()).isOk()) << name;
    int64_t pruned = 0, moved = 0;
    for (size_t i = 0; i < rule.size(); ++i) {
      if (rule[i] == 0.0f) {
        ++pruned;
        EXPECT_EQ(trained[i], 0.0f) << name << " element " << i;
      } else {
        moved += trained[i] != rule[i];
      }
    }
    EXPECT_EQ(pruned, t->numElements() / 2) << name;
    EXPECT_GT(moved, t->numElements() / 4) << name << ": training barely moved it";
  }

  std::string trained = ::testing::TempDir() + "gai-masked-" + family + "-" +
                        std::to_string(::getpid()) + ".safetensors";
  ASSERT_TRUE(trainer->saveWeights(trained).isOk());
  auto generation = compileFixture(family, forwardOptions(twoFour()), trained);
  ASSERT_TRUE(generation);
  expectSameLogits(*generation, *session, family, family + " trained 2:4");
  std::remove(trained.c_str());
}

INSTANTIATE_TEST_SUITE_P(Families, MaskedTraining, ::testing::Values("llama", "gpt2"));

} // namespace
} // namespace gai
