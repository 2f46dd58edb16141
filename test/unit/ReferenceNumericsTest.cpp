// The frontend's IR, run by the reference interpreter, reproduces what
// Hugging Face transformers computed for each fixture: logits within 1e-4 and
// the same greedy continuation. The passes must not change the numbers.
#include "compiler/reference/Interpreter.h"
#include "frontend/GraphBuilder.h"
#include "frontend/WeightCheck.h"
#include "passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include <gtest/gtest.h>

#include <cstdio>

using namespace gai;
using gai::reference::HostTensor;

namespace {

struct Fixture {
  ModelSpec spec;
  std::unique_ptr<SafetensorsFile> weights, expected;
};

Fixture load(const std::string &family) {
  std::string dir = std::string(GAI_FIXTURES_DIR) + "/hf/" + family + "-tiny/";
  Fixture f;
  llvm::Expected<ModelSpec> spec = loadSpecFile(dir + "config.json");
  EXPECT_FALSE(!spec) << llvm::toString(spec.takeError());
  if (spec)
    f.spec = *spec;
  auto weights = SafetensorsFile::open(dir + "model.safetensors");
  auto expected = SafetensorsFile::open(dir + "expected.safetensors");
  EXPECT_TRUE(weights.isOk() && expected.isOk());
  if (weights.isOk() && expected.isOk()) {
    f.weights = std::make_unique<SafetensorsFile>(std::move(weights.value()));
    f.expected = std::make_unique<SafetensorsFile>(std::move(expected.value()));
  }
  return f;
}

/// Builds @forward for [batch, seq]; with `optimize`, also runs the
/// attention rewrite and fusion.
mlir::OwningOpRef<mlir::ModuleOp> build(mlir::MLIRContext &context,
                                        const ModelSpec &spec, int64_t batch,
                                        int64_t seq, bool optimize) {
  auto module = buildForward(context, spec, BuildOptions{batch, seq, "f32"});
  EXPECT_FALSE(!module) << llvm::toString(module.takeError());
  if (!module)
    return {};
  if (optimize) {
    mlir::PassManager pm(&context);
    pm.addNestedPass<mlir::func::FuncOp>(
        mlir::gai::createGaiAttentionRewrite());
    pm.addNestedPass<mlir::func::FuncOp>(mlir::gai::createGaiFusion());
    pm.addPass(mlir::createCanonicalizerPass());
    EXPECT_TRUE(mlir::succeeded(pm.run(**module)));
  }
  return std::move(*module);
}

std::vector<HostTensor> run(mlir::ModuleOp module, const Fixture &f,
                            const HostTensor &tokens) {
  auto forward = module.lookupSymbol<mlir::func::FuncOp>("forward");
  auto result = reference::evaluate(
      forward, {tokens}, *f.weights,
      [&](llvm::StringRef name) { return paramNameOf(f.spec, name); });
  EXPECT_FALSE(!result) << llvm::toString(result.takeError());
  return result ? *result : std::vector<HostTensor>{};
}

class HFNumerics : public ::testing::TestWithParam<std::tuple<const char *, bool>> {};

TEST_P(HFNumerics, LogitsMatchTransformers) {
  auto [family, optimize] = GetParam();
  Fixture f = load(family);
  ASSERT_TRUE(f.weights);
  HostTensor ids = reference::fromTensorView(*f.expected->find("input_ids"));
  HostTensor want = reference::fromTensorView(*f.expected->find("logits"));
  mlir::MLIRContext context;
  auto module = build(context, f.spec, ids.shape[0], ids.shape[1], optimize);
  ASSERT_TRUE(module);
  std::vector<HostTensor> got = run(*module, f, ids);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].shape, want.shape);
  double maxDiff = 0.0;
  for (int64_t i = 0; i < want.numElements(); ++i)
    maxDiff = std::max(maxDiff, std::fabs(got[0].data[i] - want.data[i]));
  EXPECT_LE(maxDiff, 1e-4) << family;
  char figure[32];
  std::snprintf(figure, sizeof(figure), "%.2e", maxDiff);
  RecordProperty("max_abs_logit_diff", figure);
}

TEST_P(HFNumerics, GreedyContinuationMatchesTransformers) {
  auto [family, optimize] = GetParam();
  Fixture f = load(family);
  ASSERT_TRUE(f.weights);
  HostTensor prompt = reference::fromTensorView(*f.expected->find("prompt_ids"));
  HostTensor want = reference::fromTensorView(*f.expected->find("greedy_ids"));
  int64_t total = want.shape[1], promptLen = prompt.shape[1];
  mlir::MLIRContext context;
  // One causal forward over the whole length: position t only sees tokens
  // up to t, so the not-yet-generated tail can hold anything.
  auto module = build(context, f.spec, 1, total, optimize);
  ASSERT_TRUE(module);
  HostTensor tokens({1, total}, 0.0);
  std::copy(prompt.data.begin(), prompt.data.end(), tokens.data.begin());
  int64_t vocab = f.spec.vocab;
  for (int64_t t = promptLen; t < total; ++t) {
    std::vector<HostTensor> logits = run(*module, f, tokens);
    ASSERT_EQ(logits.size(), 1u);
    const double *row = logits[0].data.data() + (t - 1) * vocab;
    tokens.data[t] = static_cast<double>(std::max_element(row, row + vocab) - row);
  }
  EXPECT_EQ(tokens.data, want.data) << family;
}

INSTANTIATE_TEST_SUITE_P(
    Families, HFNumerics,
    ::testing::Combine(::testing::Values("llama", "gpt2", "mistral", "qwen2",
                                         "mixtral", "gemma"),
                       ::testing::Bool()),
    [](const auto &info) {
      return std::string(std::get<0>(info.param)) +
             (std::get<1>(info.param) ? "_optimized" : "_frontend");
    });

} // namespace
