// Every VJP rule of --gai-autodiff against central finite differences of
// the forward function, both evaluated by the reference interpreter in
// double precision.
#include "SmallModules.h"
#include "compiler/reference/Interpreter.h"
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace gai;
using reference::HostTensor;

namespace {

struct Case {
  const char *name;
  const char *ir; // @loss(...) -> tensor<f32>
  /// The values of the integer arguments (ids, labels), in order.
  std::vector<std::vector<double>> ints = {};
};

// Each loss is Σ (f(x) · c) with a random c, so every output element counts.
const Case kCases[] = {
    {"broadcasting_arithmetic", R"(
func.func @loss(%a: tensor<2x3xf32>, %b: tensor<3xf32>, %c: tensor<2x1xf32>, %k: tensor<2x3xf32>) -> tensor<f32> {
  %0 = gai.add %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %1 = gai.mul %0, %c : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
  %e = gai.exp %c : tensor<2x1xf32>
  %2 = gai.div %a, %e : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x3xf32>
  %3 = gai.sub %1, %2 : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %4 = gai.mul %3, %k : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %5 = gai.reduce sum %4 axes = [0, 1] : (tensor<2x3xf32>) -> tensor<f32>
  return %5 : tensor<f32>
})"},
    {"unary", R"(
func.func @loss(%x: tensor<7xf32>, %k: tensor<7xf32>) -> tensor<f32> {
  %e = gai.exp %x : tensor<7xf32>
  %p = gai.sqrt %e : tensor<7xf32>
  %l = gai.log %p : tensor<7xf32>
  %r = gai.rsqrt %e : tensor<7xf32>
  %q = gai.reciprocal %e : tensor<7xf32>
  %t = gai.tanh %x : tensor<7xf32>
  %s = gai.sigmoid %x : tensor<7xf32>
  %u = gai.silu %x : tensor<7xf32>
  %n = gai.neg %x : tensor<7xf32>
  %a = gai.add %l, %r : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %b = gai.add %q, %t : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %c = gai.mul %s, %u : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %d = gai.add %a, %b : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %f = gai.add %c, %n : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %g = gai.mul %d, %f : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %h = gai.mul %g, %k : (tensor<7xf32>, tensor<7xf32>) -> tensor<7xf32>
  %z = gai.reduce sum %h axes = [0] : (tensor<7xf32>) -> tensor<f32>
  return %z : tensor<f32>
})"},
    {"matmul_layouts_and_batch_broadcast", R"(
func.func @loss(%x: tensor<2x3x4xf32>, %w: tensor<5x4xf32>, %v: tensor<5x6xf32>, %u: tensor<6x2xf32>, %k: tensor<2x2x3xf32>) -> tensor<f32> {
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<2x3x4xf32>, tensor<5x4xf32>) -> tensor<2x3x5xf32>
  %1 = gai.matmul %0, %v : (tensor<2x3x5xf32>, tensor<5x6xf32>) -> tensor<2x3x6xf32>
  %2 = gai.matmul %u, %1 transpose_lhs transpose_rhs : (tensor<6x2xf32>, tensor<2x3x6xf32>) -> tensor<2x2x3xf32>
  %3 = gai.mul %2, %k : (tensor<2x2x3xf32>, tensor<2x2x3xf32>) -> tensor<2x2x3xf32>
  %4 = gai.reduce sum %3 axes = [0, 1, 2] : (tensor<2x2x3xf32>) -> tensor<f32>
  return %4 : tensor<f32>
})"},
    {"matmul_transposed_lhs", R"(
func.func @loss(%a: tensor<4x3xf32>, %b: tensor<4x5xf32>, %k: tensor<3x5xf32>) -> tensor<f32> {
  %0 = gai.matmul %a, %b transpose_lhs : (tensor<4x3xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  %1 = gai.mul %0, %k : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %2 = gai.reduce sum %1 axes = [0, 1] : (tensor<3x5xf32>) -> tensor<f32>
  return %2 : tensor<f32>
})"},
    {"softmax_reduce_reshape_transpose", R"(
func.func @loss(%x: tensor<2x3x4xf32>, %k: tensor<4x6xf32>) -> tensor<f32> {
  %0 = gai.softmax %x axis = 2 : tensor<2x3x4xf32>
  %1 = gai.softmax %0 axis = 0 : tensor<2x3x4xf32>
  %2 = gai.transpose %1 permutation = [2, 0, 1] : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
  %3 = gai.reshape %2 : tensor<4x2x3xf32> to tensor<4x6xf32>
  %m = gai.reduce mean %3 axes = [1] keep_dims : (tensor<4x6xf32>) -> tensor<4x1xf32>
  %4 = gai.sub %3, %m : (tensor<4x6xf32>, tensor<4x1xf32>) -> tensor<4x6xf32>
  %5 = gai.mul %4, %k : (tensor<4x6xf32>, tensor<4x6xf32>) -> tensor<4x6xf32>
  %6 = gai.reduce sum %5 axes = [0, 1] : (tensor<4x6xf32>) -> tensor<f32>
  return %6 : tensor<f32>
})"},
    {"rms_norm", R"(
func.func @loss(%x: tensor<3x8xf32>, %w: tensor<8xf32>, %k: tensor<3x8xf32>) -> tensor<f32> {
  %0 = gai.rms_norm %x, %w eps = 1.000000e-05 : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  %1 = gai.rms_norm %0, %w eps = 1.000000e-06 unit_offset : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  %2 = gai.mul %1, %k : (tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<3x8xf32>
  %3 = gai.reduce sum %2 axes = [0, 1] : (tensor<3x8xf32>) -> tensor<f32>
  return %3 : tensor<f32>
})"},
    {"layer_norm_gelu_tanh", R"(
func.func @loss(%x: tensor<3x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>, %k: tensor<3x8xf32>) -> tensor<f32> {
  %0 = gai.layer_norm %x, %w, %b eps = 1.000000e-05 : (tensor<3x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  %1 = gai.gelu tanh %0 : tensor<3x8xf32>
  %2 = gai.mul %1, %k : (tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<3x8xf32>
  %3 = gai.reduce sum %2 axes = [0, 1] : (tensor<3x8xf32>) -> tensor<f32>
  return %3 : tensor<f32>
})"},
    {"rope_slice_repeat_select", R"(
func.func @loss(%x: tensor<1x2x3x8xf32>, %k: tensor<1x4x3x4xf32>, %f: tensor<1x4x3x4xf32>) -> tensor<f32> {
  %p = gai.iota dim = 1 : tensor<1x3xi32>
  %0 = gai.rope half %x, %p theta = 1.000000e+04 : (tensor<1x2x3x8xf32>, tensor<1x3xi32>) -> tensor<1x2x3x8xf32>
  %1 = gai.slice %0 offsets = [0, 0, 0, 2] sizes = [1, 2, 3, 4] : (tensor<1x2x3x8xf32>) -> tensor<1x2x3x4xf32>
  %2 = gai.repeat %1 axis = 1 times = 2 : (tensor<1x2x3x4xf32>) -> tensor<1x4x3x4xf32>
  %m = gai.causal_mask : tensor<3x4xi1>
  %3 = gai.select %m, %2, %f : (tensor<3x4xi1>, tensor<1x4x3x4xf32>, tensor<1x4x3x4xf32>) -> tensor<1x4x3x4xf32>
  %4 = gai.mul %3, %k : (tensor<1x4x3x4xf32>, tensor<1x4x3x4xf32>) -> tensor<1x4x3x4xf32>
  %5 = gai.reduce sum %4 axes = [0, 1, 2, 3] : (tensor<1x4x3x4xf32>) -> tensor<f32>
  return %5 : tensor<f32>
})"},
    // Frequency tables, each rope scaled.
    {"rope_tables_scaled", R"(
func.func @loss(%x: tensor<1x2x3x4xf32>, %k: tensor<1x2x3x4xf32>) -> tensor<f32> {
  %p = gai.iota dim = 1 : tensor<1x3xi32>
  %0 = gai.rope half %x, %p theta = 1.000000e+04 {frequencies = array<f32: 1.0, 0.3>, attention_factor = 1.2 : f32} : (tensor<1x2x3x4xf32>, tensor<1x3xi32>) -> tensor<1x2x3x4xf32>
  %1 = gai.rope interleaved %0, %p theta = 1.000000e+04 {frequencies = array<f32: 0.9, 0.2>, attention_factor = 0.8 : f32} : (tensor<1x2x3x4xf32>, tensor<1x3xi32>) -> tensor<1x2x3x4xf32>
  %2 = gai.mul %1, %k : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  %3 = gai.mul %2, %0 : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  %4 = gai.reduce sum %3 axes = [0, 1, 2, 3] : (tensor<1x2x3x4xf32>) -> tensor<f32>
  return %4 : tensor<f32>
})"},
    {"rope_partial", R"(
func.func @loss(%x: tensor<1x2x3x8xf32>, %k: tensor<1x2x3x8xf32>) -> tensor<f32> {
  %p = gai.iota dim = 1 : tensor<1x3xi32>
  %0 = gai.rope half %x, %p theta = 1.000000e+02 {rotary_dim = 4 : i64} : (tensor<1x2x3x8xf32>, tensor<1x3xi32>) -> tensor<1x2x3x8xf32>
  %1 = gai.mul %0, %k : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %2 = gai.mul %1, %0 : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
  %3 = gai.reduce sum %2 axes = [0, 1, 2, 3] : (tensor<1x2x3x8xf32>) -> tensor<f32>
  return %3 : tensor<f32>
})"},
    {"embedding_and_cross_entropy", R"(
func.func @loss(%t: tensor<5x3xf32>, %ids: tensor<2x3xi32>, %w: tensor<4x3xf32>, %labels: tensor<2x3xi32>) -> tensor<f32> {
  %x = gai.embedding %t, %ids : (tensor<5x3xf32>, tensor<2x3xi32>) -> tensor<2x3x3xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<2x3x3xf32>, tensor<4x3xf32>) -> tensor<2x3x4xf32>
  %l = gai.cross_entropy mean %y, %labels : (tensor<2x3x4xf32>, tensor<2x3xi32>) -> tensor<f32>
  %s = gai.cross_entropy sum %y, %labels : (tensor<2x3x4xf32>, tensor<2x3xi32>) -> tensor<f32>
  %n = gai.cross_entropy none %y, %labels : (tensor<2x3x4xf32>, tensor<2x3xi32>) -> tensor<2x3xf32>
  %k = gai.constant dense<[[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]> : tensor<2x3xf32>
  %m = gai.mul %n, %k : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %r = gai.reduce sum %m axes = [0, 1] : (tensor<2x3xf32>) -> tensor<f32>
  %c = gai.constant dense<0.3> : tensor<f32>
  %sc = gai.mul %s, %c : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %a = gai.add %l, %sc : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %z = gai.add %a, %r : (tensor<f32>, tensor<f32>) -> tensor<f32>
  return %z : tensor<f32>
})", {{0, 4, 2, 4, 1, 0}, {3, -100, 0, 1, 2, 3}}},
    {"flash_attention_causal_gqa_window_softcap", R"(
func.func @loss(%q: tensor<1x4x5x4xf32>, %k: tensor<1x2x5x4xf32>, %v: tensor<1x2x5x3xf32>, %c: tensor<1x4x5x3xf32>) -> tensor<f32> {
  %o = gai.flash_attention %q, %k, %v scale = 0.5 kv_groups = 2 causal window = 3 softcap = 2.0 : (tensor<1x4x5x4xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x3xf32>) -> tensor<1x4x5x3xf32>
  %m = gai.mul %o, %c : (tensor<1x4x5x3xf32>, tensor<1x4x5x3xf32>) -> tensor<1x4x5x3xf32>
  %r = gai.reduce sum %m axes = [0, 1, 2, 3] : (tensor<1x4x5x3xf32>) -> tensor<f32>
  return %r : tensor<f32>
})"},
    {"flash_attention_at_positions", R"(
func.func @loss(%q: tensor<2x2x2x4xf32>, %k: tensor<2x2x6x4xf32>, %v: tensor<2x2x6x4xf32>, %pos: tensor<2xi32>, %c: tensor<2x2x2x4xf32>) -> tensor<f32> {
  %o = gai.flash_attention %q, %k, %v at %pos scale = 0.5 kv_groups = 1 causal : (tensor<2x2x2x4xf32>, tensor<2x2x6x4xf32>, tensor<2x2x6x4xf32>, tensor<2xi32>) -> tensor<2x2x2x4xf32>
  %m = gai.mul %o, %c : (tensor<2x2x2x4xf32>, tensor<2x2x2x4xf32>) -> tensor<2x2x2x4xf32>
  %r = gai.reduce sum %m axes = [0, 1, 2, 3] : (tensor<2x2x2x4xf32>) -> tensor<f32>
  return %r : tensor<f32>
})", {{1, 4}}},
    {"topk_routing_and_concat", R"(
func.func @loss(%x: tensor<3x4xf32>, %y: tensor<3x2xf32>, %c: tensor<3x6xf32>) -> tensor<f32> {
  %p = gai.softmax %x axis = 1 : tensor<3x4xf32>
  %w, %i = gai.topk %p k = 2 : (tensor<3x4xf32>) -> (tensor<3x2xf32>, tensor<3x2xi32>)
  %h = gai.one_hot %i depth = 4 : (tensor<3x2xi32>) -> tensor<3x2x4xf32>
  %s = gai.reduce sum %h axes = [1] : (tensor<3x2x4xf32>) -> tensor<3x4xf32>
  %g = gai.mul %s, %p : (tensor<3x4xf32>, tensor<3x4xf32>) -> tensor<3x4xf32>
  %j = gai.concat %g, %w, %y axis = 1 : (tensor<3x4xf32>, tensor<3x2xf32>, tensor<3x2xf32>) -> tensor<3x8xf32>
  %t = gai.slice %j offsets = [0, 1] sizes = [3, 6] : (tensor<3x8xf32>) -> tensor<3x6xf32>
  %m = gai.mul %t, %c : (tensor<3x6xf32>, tensor<3x6xf32>) -> tensor<3x6xf32>
  %r = gai.reduce sum %m axes = [0, 1] : (tensor<3x6xf32>) -> tensor<f32>
  return %r : tensor<f32>
})"},
};


class Autodiff : public ::testing::TestWithParam<Case> {};

TEST_P(Autodiff, GradientsMatchCentralDifferences) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(GetParam().ir, &context);
  ASSERT_TRUE(module);
  mlir::PassManager pm(&context);
  pm.addPass(mlir::gai::createGaiAutodiff());
  ASSERT_TRUE(mlir::succeeded(pm.run(*module)));
  auto loss = module->lookupSymbol<mlir::func::FuncOp>("loss");
  auto grad = module->lookupSymbol<mlir::func::FuncOp>("loss_grad");
  ASSERT_TRUE(grad);

  std::vector<HostTensor> args = test::randomArguments(loss, 7, 1.0);
  std::vector<bool> isFloat;
  size_t nextInts = 0;
  for (auto [a, type] : llvm::enumerate(loss.getArgumentTypes())) {
    isFloat.push_back(mlir::isa<mlir::FloatType>(
        mlir::cast<mlir::RankedTensorType>(type).getElementType()));
    if (isFloat.back())
      continue;
    ASSERT_LT(nextInts, GetParam().ints.size()) << "no values for integer argument " << a;
    ASSERT_EQ(static_cast<int64_t>(GetParam().ints[nextInts].size()), args[a].numElements());
    args[a].data = GetParam().ints[nextInts++];
  }
  auto grads = reference::evaluate(grad, args, test::noWeights(), {}, /*roundF32=*/false);
  ASSERT_TRUE(!!grads) << llvm::toString(grads.takeError());
  auto value = [&](const std::vector<HostTensor> &at) {
    auto out = reference::evaluate(loss, at, test::noWeights(), {}, /*roundF32=*/false);
    EXPECT_TRUE(!!out);
    return out ? (*out)[0].data[0] : 0.0;
  };
  EXPECT_NEAR((*grads)[0].data[0], value(args), 1e-12);
  const double h = 1e-6;
  size_t gradIndex = 0;
  for (size_t a = 0; a < args.size(); ++a) {
    if (!isFloat[a])
      continue;
    ++gradIndex;
    for (int64_t i = 0; i < args[a].numElements(); ++i) {
      std::vector<HostTensor> plus = args, minus = args;
      plus[a].data[i] += h;
      minus[a].data[i] -= h;
      double numeric = (value(plus) - value(minus)) / (2 * h);
      double analytic = (*grads)[gradIndex].data[i];
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
          << GetParam().name << ": argument " << a << ", element " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, Autodiff, ::testing::ValuesIn(kCases),
                         [](const auto &info) { return std::string(info.param.name); });

TEST(AutodiffErrors, AnOpWithoutARuleIsReported) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(R"(
func.func @loss(%x: tensor<4xf32>) -> tensor<f32> {
  %0 = gai.reduce max %x axes = [0] : (tensor<4xf32>) -> tensor<f32>
  return %0 : tensor<f32>
})", &context);
  ASSERT_TRUE(module);
  std::string message;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    message = d.str();
    return mlir::success();
  });
  mlir::PassManager pm(&context);
  pm.addPass(mlir::gai::createGaiAutodiff());
  EXPECT_TRUE(mlir::failed(pm.run(*module)));
  EXPECT_EQ(message, "'gai.reduce' op has no VJP rule yet for max and min");
}

} // namespace
