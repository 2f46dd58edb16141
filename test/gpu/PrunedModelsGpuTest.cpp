// 2:4 pruned HF fixtures on the GPU: at decode-sized rows the GEMV reads
// the kept values and their positions as stored (bf16; with folded norms
// and gated products), f32 values are decompressed for cuBLASLt; both give
// the CPU's logits for the same pruned model, and bf16 generation runs.
#include "GpuArtifacts.h"
#include "GpuTest.h"

#include "gai/Generate.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <tuple>

namespace gai {
namespace {

using Case = std::tuple<const char *, const char *>; // family, dtype
class CudaPruned : public ::testing::TestWithParam<Case> {};

// The CPU's f32 run of the same pruned model is the reference: f32 on the
// GPU agrees to f32 rounding, bf16 to bf16's (activations and outputs
// rounded), as the quantized models do.
void expectLogitsMatchTheCpu(const std::string &family, const std::string &dtype,
                             const std::string &form) {
  const std::string name = family + "-" + dtype + "-" + form + "-forward.gai";
  auto gpu = openArtifact(name, "cuda");
  auto cpu = openArtifact(family + "-cpu-" + form + "-forward.gai", "cpu");
  ASSERT_TRUE(gpu && cpu);
  const std::vector<int32_t> ids = fixtureIds(family, "input_ids");
  const std::vector<float> want = forwardLogits(*cpu, ids);
  for (int run = 0; run < 2; ++run) { // the second replays the CUDA graph
    const std::vector<float> got = forwardLogits(*gpu, ids);
    ASSERT_EQ(got.size(), want.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << name << " at " << i;
      diff = std::max(diff, std::fabs(double(got[i]) - want[i]));
      scale = std::max(scale, std::fabs(double(want[i])));
    }
    const double bound = dtype == "f32" ? 1e-4 * std::max(1.0, scale) : 2e-2 * scale;
    EXPECT_LE(diff, bound) << name << " (largest |logit| " << scale << ")";
    if (run == 1)
      std::printf("%s: max |gpu - cpu| = %.2e (relative %.2e)\n", name.c_str(), diff,
                  diff / scale);
  }
}

TEST_P(CudaPruned, ForwardLogitsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  expectLogitsMatchTheCpu(family, dtype, "p24");
}

// 64 rows: the GEMMs are prefill-sized (cuSPARSELt's, a bf16 product whose
// f32 residual add runs in the next norm's kernel).
TEST_P(CudaPruned, PrefillRowsMatchTheCpu) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  if (std::string(dtype) != "bf16")
    GTEST_SKIP() << "the 64-row pruned artifacts are bf16";
  expectLogitsMatchTheCpu(family, dtype, "p24-rows");
}

// bf16 generation over 2:4 weights: batched prompts, CUDA graphs and greedy
// decoding on the device, against the same model one prompt at a time.
TEST_P(CudaPruned, GenerationAgreesWithItself) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  if (std::string(dtype) != "bf16")
    GTEST_SKIP() << "the pruned generation artifacts are bf16";
  auto session = openArtifact(std::string(family) + "-bf16-p24-generate.gai", "cuda");
  ASSERT_TRUE(session);
  const std::vector<int32_t> prompt = fixtureIds(family, "prompt_ids");
  GenerateOptions options;
  options.maxNewTokens = 12;
  const std::vector<int32_t> shortPrompt(prompt.begin(), prompt.begin() + 5);
  auto both = generate(*session, {prompt, shortPrompt}, options);
  ASSERT_TRUE(both.isOk()) << both.status().message();
  auto alone = generate(*session, {shortPrompt}, options);
  ASSERT_TRUE(alone.isOk()) << alone.status().message();
  EXPECT_EQ((*alone)[0], (*both)[1]) << family;
  EXPECT_EQ((*both)[0].size(), 12u);
}

INSTANTIATE_TEST_SUITE_P(Families, CudaPruned,
                         ::testing::Combine(::testing::Values("llama", "gpt2", "gemma", "qwen2"),
                                            ::testing::Values("f32", "bf16")),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return std::string(std::get<0>(info.param)) + "_" +
                                  std::get<1>(info.param);
                         });

} // namespace
} // namespace gai
