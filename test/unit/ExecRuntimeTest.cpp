// Small gai modules through the passes, exec lowering, CPU codegen, the
// artifact and the runtime, against the reference interpreter: the lowering
// paths and kernel ops that no model family reaches.
#include "compiler/Pipeline.h"
#include "compiler/lowering/ExecLowering.h"
#include "SmallModules.h"
#include "compiler/reference/Interpreter.h"
#include "dialects/Gai/GaiDialect.h"
#include "dialects/Gai/GaiOps.h"
#include "gai/Session.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace gai;
using reference::HostTensor;

namespace {

struct Case {
  const char *name;
  const char *ir; // @forward(f32 args...) -> one f32 result
};

const Case kCases[] = {
    // Batch dimensions that broadcast on both sides: one GEMM per matrix.
    {"matmul_partial_broadcast", R"(
func.func @forward(%a: tensor<2x1x3x4xf32>, %b: tensor<1x2x4x5xf32>) -> tensor<2x2x3x5xf32> {
  %0 = gai.matmul %a, %b : (tensor<2x1x3x4xf32>, tensor<1x2x4x5xf32>) -> tensor<2x2x3x5xf32>
  return %0 : tensor<2x2x3x5xf32>
})"},
    // A transposed left side cannot fold its batch into M.
    {"matmul_transposed_lhs_batched", R"(
func.func @forward(%a: tensor<2x4x3xf32>, %b: tensor<2x5x4xf32>) -> tensor<2x3x5xf32> {
  %0 = gai.matmul %a, %b transpose_lhs transpose_rhs : (tensor<2x4x3xf32>, tensor<2x5x4xf32>) -> tensor<2x3x5xf32>
  return %0 : tensor<2x3x5xf32>
})"},
    // A gated linear unit as the cuda target folds a decode step's SwiGLU:
    // through exec.gemm's gate operand, the artifact and the CPU executor.
    {"gated_gemm", R"(
func.func @forward(%x: tensor<2x1x8xf32>, %g: tensor<5x8xf32>, %u: tensor<5x8xf32>) -> tensor<2x1x5xf32> {
  %0 = gai.gated_gemm %x, %g, %u activation = silu : (tensor<2x1x8xf32>, tensor<5x8xf32>, tensor<5x8xf32>) -> tensor<2x1x5xf32>
  return %0 : tensor<2x1x5xf32>
})"},
    // Elementwise ops the families do not use, in one region.
    {"elementwise_kernel", R"(
func.func @forward(%x: tensor<3x16xf32>, %y: tensor<16xf32>) -> tensor<3x16xf32> {
  %0 = gai.gelu none %x : tensor<3x16xf32>
  %1 = gai.abs %x : tensor<3x16xf32>
  %2 = gai.max %1, %y : (tensor<3x16xf32>, tensor<16xf32>) -> tensor<3x16xf32>
  %3 = gai.min %0, %2 : (tensor<3x16xf32>, tensor<3x16xf32>) -> tensor<3x16xf32>
  %e = gai.exp %y : tensor<16xf32>
  %4 = gai.pow %e, %x : (tensor<16xf32>, tensor<3x16xf32>) -> tensor<3x16xf32>
  %5 = gai.relu %x : tensor<3x16xf32>
  %6 = gai.sigmoid %5 : tensor<3x16xf32>
  %7 = gai.tanh %4 : tensor<3x16xf32>
  %8 = gai.sub %3, %6 : (tensor<3x16xf32>, tensor<3x16xf32>) -> tensor<3x16xf32>
  %9 = gai.add %8, %7 : (tensor<3x16xf32>, tensor<3x16xf32>) -> tensor<3x16xf32>
  return %9 : tensor<3x16xf32>
})"},
    // Row ops: layer norm without bias, a keep-dims max, a causal select.
    {"row_kernel", R"(
func.func @forward(%x: tensor<2x4x4xf32>, %w: tensor<4xf32>) -> tensor<2x4x4xf32> {
  %0 = gai.layer_norm %x, %w eps = 1.000000e-05 : (tensor<2x4x4xf32>, tensor<4xf32>) -> tensor<2x4x4xf32>
  %m = gai.reduce max %0 axes = [2] keep_dims : (tensor<2x4x4xf32>) -> tensor<2x4x1xf32>
  %1 = gai.sub %0, %m : (tensor<2x4x4xf32>, tensor<2x4x1xf32>) -> tensor<2x4x4xf32>
  %c = gai.causal_mask window = 2 : tensor<4x4xi1>
  %z = gai.constant dense<-5.000000e+00> : tensor<f32>
  %2 = gai.select %c, %1, %z : (tensor<4x4xi1>, tensor<2x4x4xf32>, tensor<f32>) -> tensor<2x4x4xf32>
  return %2 : tensor<2x4x4xf32>
})"},
    // Attention over a packed q/k/v projection: gai-attention-layout drops
    // the head transposes, the slices become views of the projection's rows
    // and the output is written [B, T, H·D] (strided CPU kernel).
    {"attention_packed_projection", R"(
func.func @forward(%qkv: tensor<2x8x48xf32>) -> tensor<2x8x16xf32> {
  %qs = gai.slice %qkv offsets = [0, 0, 0] sizes = [2, 8, 16] : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
  %ks = gai.slice %qkv offsets = [0, 0, 16] sizes = [2, 8, 16] : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
  %vs = gai.slice %qkv offsets = [0, 0, 32] sizes = [2, 8, 16] : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
  %q4 = gai.reshape %qs : tensor<2x8x16xf32> to tensor<2x8x2x8xf32>
  %k4 = gai.reshape %ks : tensor<2x8x16xf32> to tensor<2x8x2x8xf32>
  %v4 = gai.reshape %vs : tensor<2x8x16xf32> to tensor<2x8x2x8xf32>
  %q = gai.transpose %q4 permutation = [0, 2, 1, 3] : (tensor<2x8x2x8xf32>) -> tensor<2x2x8x8xf32>
  %k = gai.transpose %k4 permutation = [0, 2, 1, 3] : (tensor<2x8x2x8xf32>) -> tensor<2x2x8x8xf32>
  %v = gai.transpose %v4 permutation = [0, 2, 1, 3] : (tensor<2x8x2x8xf32>) -> tensor<2x2x8x8xf32>
  %o = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 1 causal window = 5 : (tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>, tensor<2x2x8x8xf32>) -> tensor<2x2x8x8xf32>
  %ot = gai.transpose %o permutation = [0, 2, 1, 3] : (tensor<2x2x8x8xf32>) -> tensor<2x8x2x8xf32>
  %r = gai.reshape %ot : tensor<2x8x2x8xf32> to tensor<2x8x16xf32>
  return %r : tensor<2x8x16xf32>
})"},
    // Its backward under GQA (two query heads, one KV head): the gradients
    // are written straight into their concat, the packed projection's
    // gradient.
    {"attention_backward_into_concat", R"(
func.func @forward(%qkv: tensor<1x8x32xf32>, %dy: tensor<1x8x16xf32>) -> tensor<1x8x32xf32> {
  %qs = gai.slice %qkv offsets = [0, 0, 0] sizes = [1, 8, 16] : (tensor<1x8x32xf32>) -> tensor<1x8x16xf32>
  %ks = gai.slice %qkv offsets = [0, 0, 16] sizes = [1, 8, 8] : (tensor<1x8x32xf32>) -> tensor<1x8x8xf32>
  %vs = gai.slice %qkv offsets = [0, 0, 24] sizes = [1, 8, 8] : (tensor<1x8x32xf32>) -> tensor<1x8x8xf32>
  %q4 = gai.reshape %qs : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
  %k4 = gai.reshape %ks : tensor<1x8x8xf32> to tensor<1x8x1x8xf32>
  %v4 = gai.reshape %vs : tensor<1x8x8xf32> to tensor<1x8x1x8xf32>
  %q = gai.transpose %q4 permutation = [0, 2, 1, 3] : (tensor<1x8x2x8xf32>) -> tensor<1x2x8x8xf32>
  %k = gai.transpose %k4 permutation = [0, 2, 1, 3] : (tensor<1x8x1x8xf32>) -> tensor<1x1x8x8xf32>
  %v = gai.transpose %v4 permutation = [0, 2, 1, 3] : (tensor<1x8x1x8xf32>) -> tensor<1x1x8x8xf32>
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 2 causal with_lse : (tensor<1x2x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> (tensor<1x2x8x8xf32>, tensor<1x2x8xf32>)
  %dy4 = gai.reshape %dy : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
  %do = gai.transpose %dy4 permutation = [0, 2, 1, 3] : (tensor<1x8x2x8xf32>) -> tensor<1x2x8x8xf32>
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %do scale = 0.35 kv_groups = 2 causal : (tensor<1x2x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8xf32>, tensor<1x2x8x8xf32>) -> (tensor<1x2x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>)
  %dqt = gai.transpose %dq permutation = [0, 2, 1, 3] : (tensor<1x2x8x8xf32>) -> tensor<1x8x2x8xf32>
  %dkt = gai.transpose %dk permutation = [0, 2, 1, 3] : (tensor<1x1x8x8xf32>) -> tensor<1x8x1x8xf32>
  %dvt = gai.transpose %dv permutation = [0, 2, 1, 3] : (tensor<1x1x8x8xf32>) -> tensor<1x8x1x8xf32>
  %dqr = gai.reshape %dqt : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
  %dkr = gai.reshape %dkt : tensor<1x8x1x8xf32> to tensor<1x8x8xf32>
  %dvr = gai.reshape %dvt : tensor<1x8x1x8xf32> to tensor<1x8x8xf32>
  %g = gai.concat %dqr, %dkr, %dvr axis = 2 : (tensor<1x8x16xf32>, tensor<1x8x8xf32>, tensor<1x8x8xf32>) -> tensor<1x8x32xf32>
  return %g : tensor<1x8x32xf32>
})"},
};


class ExecRuntime : public ::testing::TestWithParam<Case> {};

TEST_P(ExecRuntime, MatchesTheReferenceInterpreter) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(GetParam().ir, &context);
  ASSERT_TRUE(module);
  auto forward = module->lookupSymbol<mlir::func::FuncOp>("forward");

  std::vector<HostTensor> args = test::randomArguments(forward, 3, 1.5);
  auto want = reference::evaluate(forward, args, test::noWeights());
  ASSERT_TRUE(!!want) << llvm::toString(want.takeError());

  CompileOptions options;
  ASSERT_TRUE(mlir::succeeded(optimize(*module, options)));
  // The attention cases keep no head transpose (their slices and concat
  // become views at lowering).
  if (llvm::StringRef(GetParam().name).starts_with("attention"))
    module->walk([&](mlir::gai::TransposeOp t) { ADD_FAILURE() << "a transpose is left"; });
  auto bytes = compileArtifact(*module, ModelSpec{}, options, WeightsMode::None, "");
  ASSERT_TRUE(!!bytes) << llvm::toString(bytes.takeError());
  auto artifact = LoadedArtifact::fromBytes(std::move(*bytes), GetParam().name, ".");
  ASSERT_TRUE(artifact.isOk()) << artifact.status().message();
  auto session = Session::create(std::move(*artifact));
  ASSERT_TRUE(session.isOk()) << session.status().message();
  std::vector<TensorRef> inputs = (*session)->inputs("forward");
  ASSERT_EQ(inputs.size(), args.size());
  for (size_t i = 0; i < args.size(); ++i)
    for (int64_t j = 0; j < inputs[i].numElements(); ++j)
      inputs[i].as<float>()[j] = static_cast<float>(args[i].data[j]);
  Status s = (*session)->run("forward");
  ASSERT_TRUE(s.isOk()) << s.message();
  TensorRef got = (*session)->outputs("forward").at(0);
  ASSERT_EQ(got.numElements(), (*want)[0].numElements());
  for (int64_t j = 0; j < got.numElements(); ++j)
    EXPECT_NEAR(got.as<float>()[j], (*want)[0].data[j],
                2e-5 * std::max(1.0, std::abs((*want)[0].data[j])))
        << GetParam().name << ", element " << j;
}

INSTANTIATE_TEST_SUITE_P(Modules, ExecRuntime, ::testing::ValuesIn(kCases),
                         [](const auto &info) { return std::string(info.param.name); });

TEST(ExecLowering, AnOpWithoutALoweringIsReportedOnTheOp) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(R"(
func.func @forward(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = gai.pow %a, %b : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
})", &context);
  ASSERT_TRUE(module);
  auto lowered = lowerModule(*module, CompileOptions{}, WeightsMode::None);
  ASSERT_FALSE(!!lowered);
  std::string message = llvm::toString(lowered.takeError());
  EXPECT_NE(message.find("'gai.pow' op has no lowering to the exec dialect yet"),
            std::string::npos)
      << message;
}

// A region outside the row model is reported on the fusion op by both
// kernel builders, not miscompiled.
TEST(ExecLowering, AFusionOffTheRowModelIsReportedForEveryTarget) {
  for (const char *target : {"cpu", "cuda"}) {
    mlir::MLIRContext context;
    context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
    auto module = mlir::parseSourceString<mlir::ModuleOp>(R"(
func.func @forward(%a: tensor<3x8xf32>) -> tensor<8xf32> {
  %0 = gai.fusion %a : (tensor<3x8xf32>) -> tensor<8xf32> {
  ^bb0(%x: tensor<3x8xf32>):
    %1 = gai.reduce sum %x axes = [0] : (tensor<3x8xf32>) -> tensor<8xf32>
    gai.yield %1 : tensor<8xf32>
  }
  return %0 : tensor<8xf32>
})", &context);
    ASSERT_TRUE(module);
    CompileOptions options;
    options.target = target;
    auto lowered = lowerModule(*module, options, WeightsMode::None);
    ASSERT_FALSE(!!lowered) << target;
    std::string message = llvm::toString(lowered.takeError());
    EXPECT_NE(message.find("value of shape [3, 8] does not line up with the rows of [8]"),
              std::string::npos)
        << target << ": " << message;
  }
}

// Only GPU kernels read a region input through a transpose, and only one
// that keeps rows whole: the CPU builder and any other transpose are
// reported on the fusion op.
TEST(ExecLowering, TransposesInsideARegionAreCheckedPerTarget) {
  struct Case {
    const char *target, *permutation, *resultType, *expected;
  };
  const Case cases[] = {
      {"cpu", "[1, 0, 2]", "tensor<4x2x8xf32>",
       "a transpose inside a fusion region has no CPU kernel"},
      {"cuda", "[0, 2, 1]", "tensor<2x8x4xf32>",
       "a transpose inside a fusion region must read a region input and keep the last axis"},
  };
  for (const Case &c : cases) {
    mlir::MLIRContext context;
    context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
    std::string source = std::string(R"(
func.func @forward(%a: tensor<2x4x8xf32>) -> RESULT {
  %0 = gai.fusion %a : (tensor<2x4x8xf32>) -> RESULT {
  ^bb0(%x: tensor<2x4x8xf32>):
    %1 = gai.transpose %x permutation = PERM : (tensor<2x4x8xf32>) -> RESULT
    %2 = gai.exp %1 : RESULT
    gai.yield %2 : RESULT
  }
  return %0 : RESULT
})");
    auto replaceAll = [&](const std::string &from, const std::string &to) {
      for (size_t at; (at = source.find(from)) != std::string::npos;)
        source.replace(at, from.size(), to);
    };
    replaceAll("RESULT", c.resultType);
    replaceAll("PERM", c.permutation);
    auto module = mlir::parseSourceString<mlir::ModuleOp>(source, &context);
    ASSERT_TRUE(module) << c.target;
    CompileOptions options;
    options.target = c.target;
    auto lowered = lowerModule(*module, options, WeightsMode::None);
    ASSERT_FALSE(!!lowered) << c.target;
    std::string message = llvm::toString(lowered.takeError());
    EXPECT_NE(message.find(c.expected), std::string::npos) << c.target << ": " << message;
  }
}

} // namespace
