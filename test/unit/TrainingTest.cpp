// Training against PyTorch: the gradients of llama-tiny and gpt2-tiny on one
// batch, micro-batch accumulation, and 50 AdamW steps with clipping and the
// warm-up/cosine schedule, all from fixtures that PyTorch made
// (test/fixtures/make_train_fixtures.py).
#include "compiler/Pipeline.h"
#include "gai/Safetensors.h"
#include "gai/Session.h"
#include "gai/Train.h"
#include "../TrainFixture.h"
#include "FixtureSession.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

using namespace gai;

namespace {

/// The family's training artifact (micro-batches of `rows` × 16 tokens),
/// starting from the fixture's weights, on the CPU; `fused`: one
/// @train_update entry (gaic --fused-update).
std::unique_ptr<Session> compileForTraining(const std::string &family, int64_t rows,
                                            bool fused = false, const char *dtype = "f32") {
  CompileOptions options;
  options.train = true;
  options.fusedUpdate = fused;
  options.build.dtype = dtype;
  options.build.batch = 1;
  options.build.seqLen = 32;
  options.build.entries = {false, true, true, true};
  options.build.trainBatch = rows;
  options.build.trainSeqLen = 16;
  return compileFixture(family, options);
}

std::vector<int32_t> ints(const TensorView &t, int64_t first = 0, int64_t count = -1) {
  const auto *p = reinterpret_cast<const int32_t *>(t.data);
  if (count < 0)
    count = t.numElements() - first;
  return std::vector<int32_t>(p + first, p + first + count);
}

const float *floats(const TensorView &t) { return reinterpret_cast<const float *>(t.data); }

/// Every parameter's gradient state against the fixture's, times `scale`:
/// max |Δ| / max |reference| per tensor.
void expectGradients(Session &s, const SafetensorsFile &fixture, double scale,
                     double tolerance) {
  int checked = 0;
  for (const TensorRef &r : s.stateTensors()) {
    if (r.name.rfind("grad.", 0) != 0)
      continue;
    const TensorView *want = fixture.find(r.name);
    ASSERT_NE(want, nullptr) << "the fixture has no " << r.name;
    ASSERT_EQ(want->numElements(), r.numElements()) << r.name;
    std::vector<float> got(static_cast<size_t>(r.numElements()));
    ASSERT_TRUE(s.readState(r.name, got.data()).isOk());
    double maxRef = 0, maxDiff = 0;
    for (int64_t i = 0; i < r.numElements(); ++i) {
      double ref = floats(*want)[i] * scale;
      maxRef = std::max(maxRef, std::abs(ref));
      maxDiff = std::max(maxDiff, std::abs(got[i] - ref));
    }
    EXPECT_LE(maxDiff, tolerance * maxRef) << r.name << ": max |ref| " << maxRef;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

class Training : public ::testing::TestWithParam<std::string> {};

TEST_P(Training, GradientsMatchPyTorch) {
  auto fixture = SafetensorsFile::open(fixtureDir(GetParam()) + "train.safetensors");
  ASSERT_TRUE(fixture.isOk()) << fixture.status().message();
  auto session = compileForTraining(GetParam(), 2);
  ASSERT_TRUE(session);
  auto trainer = Trainer::create(*session, {});
  ASSERT_TRUE(trainer.isOk()) << trainer.status().message();
  // train_step alone: the gradients land in the state.
  std::vector<TensorRef> in = session->inputs("train_step");
  std::vector<int32_t> tokens = ints(*fixture->find("tokens")),
                       targets = ints(*fixture->find("targets"));
  for (const TensorRef &r : in) {
    const auto &src = r.name == "tokens" ? tokens : targets;
    std::memcpy(r.data, src.data(), static_cast<size_t>(r.size));
  }
  ASSERT_TRUE(session->run("train_step").isOk());
  float loss = *session->outputs("train_step")[0].as<float>();
  EXPECT_NEAR(loss, *floats(*fixture->find("loss")), 1e-5 * std::abs(loss));
  expectGradients(*session, *fixture, 1.0, 1e-4);
}

TEST_P(Training, MicroBatchesAccumulate) {
  // Two micro-batches of one row: the state holds the sum of their mean
  // gradients, twice the two-row batch's mean gradient.
  auto fixture = SafetensorsFile::open(fixtureDir(GetParam()) + "train.safetensors");
  ASSERT_TRUE(fixture.isOk());
  auto session = compileForTraining(GetParam(), 1);
  ASSERT_TRUE(session);
  for (int64_t row = 0; row < 2; ++row) {
    std::vector<int32_t> tokens = ints(*fixture->find("tokens"), row * 16, 16),
                         targets = ints(*fixture->find("targets"), row * 16, 16);
    for (const TensorRef &r : session->inputs("train_step"))
      std::memcpy(r.data, (r.name == "tokens" ? tokens : targets).data(),
                  static_cast<size_t>(r.size));
    ASSERT_TRUE(session->run("train_step").isOk());
  }
  expectGradients(*session, *fixture, 2.0, 1e-4);
  // zero_grads clears them.
  ASSERT_TRUE(session->run("zero_grads").isOk());
  std::vector<float> g(64 * 256);
  for (const TensorRef &r : session->stateTensors())
    if (r.name.rfind("grad.", 0) == 0) {
      g.resize(static_cast<size_t>(r.numElements()));
      ASSERT_TRUE(session->readState(r.name, g.data()).isOk());
      for (float v : g)
        ASSERT_EQ(v, 0.0f) << r.name;
    }
}

/// 50 steps of `family` against PyTorch's losses and learning rates.
void expectFiftyStepsMatch(const std::string &family, bool fused) {
  auto fixture = SafetensorsFile::open(fixtureDir(family) + "train.safetensors");
  ASSERT_TRUE(fixture.isOk());
  OptimizerOptions o = fixtureOptimizerOptions(*fixture);
  auto session = compileForTraining(family, 2, fused);
  ASSERT_TRUE(session);
  auto trainer = Trainer::create(*session, o);
  ASSERT_TRUE(trainer.isOk()) << trainer.status().message();
  const TensorView &batches = *fixture->find("steps.tokens");
  const TensorView &labels = *fixture->find("steps.targets");
  const float *losses = floats(*fixture->find("steps.loss"));
  const float *lrs = floats(*fixture->find("steps.lr"));
  double worst = 0;
  for (int64_t step = 0; step < o.totalSteps; ++step) {
    std::vector<int32_t> tokens = ints(batches, step * 32, 32),
                         targets = ints(labels, step * 32, 32);
    auto result = trainer->trainStep({tokens.data()}, {targets.data()});
    ASSERT_TRUE(result.isOk()) << result.status().message();
    EXPECT_FALSE(result->skipped);
    EXPECT_NEAR(result->lr, lrs[step], 1e-7) << "step " << step;
    double relative = std::abs(result->loss - losses[step]) / std::abs(losses[step]);
    worst = std::max(worst, relative);
    EXPECT_LE(relative, 1e-4) << "step " << step << ": " << result->loss << " vs PyTorch's "
                              << losses[step];
  }
  std::printf("%s%s: 50 steps, worst relative loss difference %.3g\n", family.c_str(),
              fused ? " (fused update)" : "", worst);
}

TEST_P(Training, FiftyAdamWStepsMatchPyTorch) { expectFiftyStepsMatch(GetParam(), false); }

// The device clips and updates in the step's own entry: the same losses.
TEST_P(Training, FusedUpdateFiftyStepsMatchPyTorch) { expectFiftyStepsMatch(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(Families, Training, ::testing::Values("llama", "gpt2"),
                         [](const auto &info) { return info.param; });

} // namespace

namespace {

class TrainingBadSteps : public ::testing::TestWithParam<bool> {};

TEST_P(TrainingBadSteps, NonFiniteStepsAreSkippedThenStop) {
  auto fixture = SafetensorsFile::open(fixtureDir("llama") + "train.safetensors");
  ASSERT_TRUE(fixture.isOk());
  auto session = compileForTraining("llama", 2, /*fused=*/GetParam());
  ASSERT_TRUE(session);
  OptimizerOptions o;
  o.maxBadSteps = 3;
  auto trainer = Trainer::create(*session, o);
  ASSERT_TRUE(trainer.isOk());
  std::vector<int32_t> tokens = ints(*fixture->find("tokens")),
                       targets = ints(*fixture->find("targets"));
  // One good step, so the moments are not zero.
  ASSERT_TRUE(trainer->trainStep({tokens.data()}, {targets.data()}).isOk());
  auto snapshot = [&]() {
    std::map<std::string, std::vector<float>> values;
    for (const TensorRef &r : session->stateTensors()) {
      if (r.name.rfind("cache.", 0) == 0)
        continue;
      std::vector<float> v(static_cast<size_t>(r.numElements()));
      EXPECT_TRUE(session->readState(r.name, v.data()).isOk());
      values[r.name] = std::move(v);
    }
    return values;
  };
  // An infinite norm scale: the loss becomes NaN.
  const std::string poisoned = "param.model.norm.weight";
  auto before = snapshot();
  std::vector<float> bad = before.at(poisoned);
  bad[0] = INFINITY;
  ASSERT_TRUE(session->writeState(poisoned, bad.data()).isOk());
  before[poisoned] = bad;
  for (int i = 0; i < 2; ++i) {
    auto result = trainer->trainStep({tokens.data()}, {targets.data()});
    ASSERT_TRUE(result.isOk()) << result.status().message();
    EXPECT_TRUE(result->skipped);
    EXPECT_FALSE(std::isfinite(result->loss) && std::isfinite(result->gradNorm));
  }
  // Nothing moved: parameters and moments as before, gradients zero.
  auto after = snapshot();
  for (auto &[name, values] : after) {
    if (name.rfind("grad.", 0) == 0) {
      for (float v : values)
        ASSERT_EQ(v, 0.0f) << name;
      continue;
    }
    ASSERT_EQ(std::memcmp(values.data(), before.at(name).data(), values.size() * 4), 0)
        << name << " changed on a skipped step";
  }
  auto third = trainer->trainStep({tokens.data()}, {targets.data()});
  ASSERT_FALSE(third.isOk());
  EXPECT_NE(third.status().message().find("not finite for 3 steps in a row"), std::string::npos)
      << third.status().message();
  EXPECT_EQ(trainer->step(), 4);
}

INSTANTIATE_TEST_SUITE_P(Update, TrainingBadSteps, ::testing::Bool(),
                         [](const auto &info) { return info.param ? "Fused" : "Separate"; });

// A fused artifact keeps no gradients as state, and refuses accumulation.
TEST(TrainingFusedUpdate, NoGradientStateAndOneMicroBatch) {
  auto fixture = SafetensorsFile::open(fixtureDir("llama") + "train.safetensors");
  ASSERT_TRUE(fixture.isOk());
  auto separate = compileForTraining("llama", 2), fused = compileForTraining("llama", 2, true);
  ASSERT_TRUE(separate && fused);
  auto stateBytes = [](Session &s, const char *prefix) {
    int64_t bytes = 0;
    for (const TensorRef &r : s.stateTensors())
      if (r.name.rfind(prefix, 0) == 0)
        bytes += r.size;
    return bytes;
  };
  EXPECT_GT(stateBytes(*separate, "grad."), 0);
  EXPECT_EQ(stateBytes(*fused, "grad."), 0);
  EXPECT_EQ(stateBytes(*fused, "param."), stateBytes(*separate, "param."));
  EXPECT_EQ(stateBytes(*fused, "adam."), stateBytes(*separate, "adam."));
  EXPECT_FALSE(fused->hasEntry("optimizer_step"));
  auto trainer = Trainer::create(*fused, OptimizerOptions{});
  ASSERT_TRUE(trainer.isOk()) << trainer.status().message();
  std::vector<int32_t> tokens = ints(*fixture->find("tokens")),
                       targets = ints(*fixture->find("targets"));
  auto two = trainer->trainStep({tokens.data(), tokens.data()}, {targets.data(), targets.data()});
  ASSERT_FALSE(two.isOk());
  EXPECT_NE(two.status().message().find("one micro-batch a step"), std::string::npos)
      << two.status().message();
  EXPECT_EQ(trainer->step(), 0);
}

// In bf16 the fused step reads each weight's bf16 copy, kept as state
// (the update writes it with the master; CudaFusedUpdate checks that). A
// master written from the host has its copy made again before the next
// entry runs, even one that the CPU then refuses (it computes in f32 only),
// and before a copy is read.
TEST(TrainingFusedUpdate, Bf16CopiesAreMadeAgainAfterAHostWrite) {
  auto fused = compileForTraining("llama", 2, true, "bf16");
  ASSERT_TRUE(fused);
  EXPECT_TRUE(fused->hasEntry("refresh_param_copies"));
  std::vector<TensorRef> copies = paramCopies(*fused);
  ASSERT_GT(copies.size(), 1u);
  auto runRefused = [&] {
    Status ran = fused->run("eval_loss");
    ASSERT_FALSE(ran.isOk());
    EXPECT_NE(ran.message().find("the CPU computes in f32"), std::string::npos)
        << ran.message();
  };
  runRefused();
  EXPECT_TRUE(copyMarkSurvives(*fused)) << "the first entry did not make the copies";
  expectCopiesOfMasters(*fused, "after the first entry", 1);
  runRefused(); // a copy written from the host stays while no master is
  EXPECT_TRUE(copyMarkSurvives(*fused));

  halveMastersWithCopies(*fused);
  runRefused();
  EXPECT_TRUE(copyMarkSurvives(*fused)) << "the entry did not make the copies again";
  expectCopiesOfMasters(*fused, "after an entry, the masters written before it", 1);

  // Read with no entry run in between: the read makes them.
  halveMastersWithCopies(*fused);
  expectCopiesOfMasters(*fused, "read right after the masters were written");
}

} // namespace
