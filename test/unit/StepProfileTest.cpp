// `--profile`'s report: times per run of each entry, by kind and by step.
#include "core/StepProfile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using namespace gai;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

StepProfile threeTrainingSteps() {
  StepProfile p;
  for (int run = 0; run < 3; ++run) {
    p.addStep("train_step", "gemm 8x8x8 residual", 2.0);
    p.addStep("train_step", "kernel k1_add", 0.25);
    p.addStep("train_step", "kernel k1_add", 0.75);
    p.addRun("train_step");
  }
  p.addStep("decode", "gemm 1x8x8", 0.25);
  p.addRun("decode");
  return p;
}

TEST(StepProfile, ReportsEachEntryPerRun) {
  std::string report = threeTrainingSteps().report("cpu");
  EXPECT_THAT(report, HasSubstr("gai profile (cpu): 3.250 ms in steps, a run of each entry"));
  EXPECT_THAT(report, HasSubstr("     3.000 ms a run, 3 runs  train_step\n"));
  EXPECT_THAT(report, HasSubstr("     0.250 ms a run, 1 runs  decode\n"));
  // Kinds are the step description's first word, within each entry.
  EXPECT_THAT(report, HasSubstr("     2.000 ms  61.5%  train_step gemm\n"));
  EXPECT_THAT(report, HasSubstr("     1.000 ms  30.8%  train_step kernel\n"));
  EXPECT_THAT(report, HasSubstr("     0.250 ms   7.7%  decode gemm\n"));
  // A step's calls a run: the kernel ran twice in each training step.
  EXPECT_THAT(report, HasSubstr("     2.000 ms      1.0  train_step: gemm 8x8x8 residual\n"));
  EXPECT_THAT(report, HasSubstr("     1.000 ms      2.0  train_step: kernel k1_add\n"));
}

TEST(StepProfile, ListsTheCostliestFirst) {
  std::string report = threeTrainingSteps().report("cpu");
  size_t kinds = report.find("by kind");
  size_t gemm = report.find("train_step gemm"), kernel = report.find("train_step kernel"),
         decode = report.find("decode gemm");
  ASSERT_NE(kinds, std::string::npos);
  EXPECT_LT(kinds, gemm);
  EXPECT_LT(gemm, kernel);
  EXPECT_LT(kernel, decode);
  // Only the costliest `n` steps are listed.
  std::string two = threeTrainingSteps().report("cpu", 2);
  EXPECT_THAT(two, HasSubstr("train_step: kernel k1_add"));
  EXPECT_THAT(two, Not(HasSubstr("decode: gemm 1x8x8")));
  // 0: every step.
  std::string all = threeTrainingSteps().report("cpu", 0);
  EXPECT_THAT(all, HasSubstr("train_step: kernel k1_add"));
  EXPECT_THAT(all, HasSubstr("     0.250 ms      1.0  decode: gemm 1x8x8\n"));
}

TEST(StepProfile, AnEntryWithNoCountedRunCountsOnce) {
  StepProfile p;
  EXPECT_TRUE(p.empty());
  p.addStep("prefill", "attention q8 k8", 1.5);
  p.addStep("prefill", "attention q8 k8", 1.5);
  EXPECT_FALSE(p.empty());
  std::string report = p.report("cuda:0");
  EXPECT_THAT(report, HasSubstr("     3.000 ms a run, 0 runs  prefill\n"));
  EXPECT_THAT(report, HasSubstr("     3.000 ms      2.0  prefill: attention q8 k8\n"));
}

} // namespace
