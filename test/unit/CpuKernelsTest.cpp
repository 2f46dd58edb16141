// The CPU HAL's kernels compute what the reference interpreter computes for
// the ops they implement, on random inputs.
#include "compiler/reference/Interpreter.h"
#include "dialects/Gai/GaiDialect.h"
#include "hal/cpu/Kernels.h"
#include "SafetensorsImage.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <random>

using namespace gai;
using reference::HostTensor;

namespace {

HostTensor randomTensor(std::vector<int64_t> shape, std::mt19937 &rng) {
  HostTensor t(std::move(shape));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (double &x : t.data)
    x = normal(rng); // stored as the f32 value the kernel sees
  return t;
}

std::vector<float> f32(const HostTensor &t) {
  return {t.data.begin(), t.data.end()};
}

std::vector<int32_t> i32(const HostTensor &t) {
  return {t.data.begin(), t.data.end()};
}

/// Parses `source` and evaluates its @main on `args`.
std::vector<HostTensor> evaluate(const std::string &source,
                                 std::vector<HostTensor> args) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(source, &context);
  EXPECT_TRUE(module);
  std::vector<uint8_t> empty = test::safetensorsImage("{}", 0);
  auto weights = SafetensorsFile::fromBytes(empty.data(), empty.size(), "none");
  auto main = module->lookupSymbol<mlir::func::FuncOp>("main");
  auto results = reference::evaluate(main, args, *weights);
  EXPECT_FALSE(!results) << llvm::toString(results.takeError());
  return results ? *results : std::vector<HostTensor>{};
}

double maxDiff(const std::vector<float> &got, const HostTensor &want) {
  EXPECT_EQ(got.size(), want.data.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size() && i < want.data.size(); ++i)
    worst = std::max(worst, std::fabs(got[i] - want.data[i]));
  return worst;
}

TEST(CpuKernels, GemmWithEpilogueAndSharedWeights) {
  std::mt19937 rng(1);
  HostTensor x = randomTensor({3, 5, 7}, rng), w = randomTensor({6, 7}, rng);
  HostTensor bias = randomTensor({6}, rng), res = randomTensor({3, 5, 6}, rng);
  std::vector<HostTensor> want = evaluate(R"(
    func.func @main(%x: tensor<3x5x7xf32>, %w: tensor<6x7xf32>, %b: tensor<6xf32>, %r: tensor<3x5x6xf32>) -> tensor<3x5x6xf32> {
      %0 = gai.gemm %x, %w bias %b residual %r transpose_rhs activation = silu : (tensor<3x5x7xf32>, tensor<6x7xf32>, tensor<6xf32>, tensor<3x5x6xf32>) -> tensor<3x5x6xf32>
      return %0 : tensor<3x5x6xf32>
    })", {x, w, bias, res});
  ASSERT_EQ(want.size(), 1u);
  std::vector<float> a = f32(x), b = f32(w), c(3 * 5 * 6), bi = f32(bias),
                     r = f32(res);
  cpu::GemmArgs g;
  g.a = a.data();
  g.b = b.data();
  g.c = c.data();
  g.batch = 3;
  g.m = 5;
  g.n = 6;
  g.k = 7;
  g.transposeB = true;
  g.strideA = 5 * 7;
  g.strideB = 0; // one weight for the whole batch
  g.strideC = 5 * 6;
  g.bias = bi.data();
  g.residual = r.data();
  g.activation = cpu::Activation::Silu;
  cpu::gemm(g);
  EXPECT_LE(maxDiff(c, want[0]), 1e-5);
}

TEST(CpuKernels, GemmTransposedLhsGelu) {
  std::mt19937 rng(2);
  HostTensor x = randomTensor({2, 7, 5}, rng), w = randomTensor({2, 7, 4}, rng);
  for (auto [act, name] : {std::pair{cpu::Activation::Gelu, "gelu"},
                           std::pair{cpu::Activation::GeluTanh, "gelu_tanh"},
                           std::pair{cpu::Activation::Relu, "relu"}}) {
    std::vector<HostTensor> want = evaluate(
        std::string(R"(
      func.func @main(%x: tensor<2x7x5xf32>, %w: tensor<2x7x4xf32>) -> tensor<2x5x4xf32> {
        %0 = gai.gemm %x, %w transpose_lhs activation = )") +
            name + R"( : (tensor<2x7x5xf32>, tensor<2x7x4xf32>) -> tensor<2x5x4xf32>
        return %0 : tensor<2x5x4xf32>
      })",
        {x, w});
    ASSERT_EQ(want.size(), 1u);
    std::vector<float> a = f32(x), b = f32(w), c(2 * 5 * 4);
    cpu::GemmArgs g;
    g.a = a.data();
    g.b = b.data();
    g.c = c.data();
    g.batch = 2;
    g.m = 5;
    g.n = 4;
    g.k = 7;
    g.transposeA = true;
    g.strideA = 7 * 5;
    g.strideB = 7 * 4;
    g.strideC = 5 * 4;
    g.activation = act;
    cpu::gemm(g);
    EXPECT_LE(maxDiff(c, want[0]), 1e-5) << name;
  }
}

// A gated GEMM (decode's SwiGLU / GeGLU in one call) against the same
// gated linear unit written as two matmuls, the activation and a multiply.
TEST(CpuKernels, GatedGemmMatchesTheUnfusedUnit) {
  std::mt19937 rng(3);
  HostTensor x = randomTensor({3, 7}, rng), gate = randomTensor({6, 7}, rng),
             up = randomTensor({6, 7}, rng);
  for (auto [act, name] : {std::pair{cpu::Activation::Silu, "silu"},
                           std::pair{cpu::Activation::GeluTanh, "gelu_tanh"}}) {
    std::string types = "(tensor<3x7xf32>, tensor<6x7xf32>) -> tensor<3x6xf32>";
    std::string activation = std::string(name) == "silu" ? "gai.silu" : "gai.gelu tanh";
    std::vector<HostTensor> unfused = evaluate(
        R"(
      func.func @main(%x: tensor<3x7xf32>, %g: tensor<6x7xf32>, %u: tensor<6x7xf32>) -> tensor<3x6xf32> {
        %0 = gai.matmul %x, %g transpose_rhs : )" + types + R"(
        %1 = )" + activation + R"( %0 : tensor<3x6xf32>
        %2 = gai.matmul %x, %u transpose_rhs : )" + types + R"(
        %3 = gai.mul %1, %2 : (tensor<3x6xf32>, tensor<3x6xf32>) -> tensor<3x6xf32>
        return %3 : tensor<3x6xf32>
      })",
        {x, gate, up});
    std::vector<HostTensor> gated = evaluate(
        std::string(R"(
      func.func @main(%x: tensor<3x7xf32>, %g: tensor<6x7xf32>, %u: tensor<6x7xf32>) -> tensor<3x6xf32> {
        %0 = gai.gated_gemm %x, %g, %u activation = )") +
            name + R"( : (tensor<3x7xf32>, tensor<6x7xf32>, tensor<6x7xf32>) -> tensor<3x6xf32>
        return %0 : tensor<3x6xf32>
      })",
        {x, gate, up});
    ASSERT_EQ(unfused.size(), 1u);
    ASSERT_EQ(gated.size(), 1u);
    std::vector<float> a = f32(x), g = f32(gate), u = f32(up), c(3 * 6);
    // The unfused unit rounds the products to f32 before the activation.
    EXPECT_LE(maxDiff(f32(gated[0]), unfused[0]), 1e-5) << name;
    cpu::GemmArgs args;
    args.a = a.data();
    args.b = u.data();
    args.gate = g.data();
    args.c = c.data();
    args.m = 3;
    args.n = 6;
    args.k = 7;
    args.transposeB = true;
    args.activation = act;
    cpu::gemm(args);
    EXPECT_LE(maxDiff(c, unfused[0]), 1e-5) << name;
  }
}

/// Attention over a cache at per-row positions, with GQA, a window and a
/// softcap; and over a prompt with the static causal offset.
TEST(CpuKernels, AttentionMatchesTheReference) {
  std::mt19937 rng(3);
  HostTensor q = randomTensor({2, 4, 5, 8}, rng);
  HostTensor k = randomTensor({2, 2, 9, 8}, rng), v = randomTensor({2, 2, 9, 6}, rng);
  HostTensor start({2});
  start.data = {0, 4};
  std::vector<HostTensor> want = evaluate(R"(
    func.func @main(%q: tensor<2x4x5x8xf32>, %k: tensor<2x2x9x8xf32>, %v: tensor<2x2x9x6xf32>, %p: tensor<2xi32>) -> (tensor<2x4x5x6xf32>, tensor<2x4x5x6xf32>) {
      %0 = gai.flash_attention %q, %k, %v at %p scale = 0.35 kv_groups = 2 causal window = 3 softcap = 2.0 : (tensor<2x4x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x6xf32>, tensor<2xi32>) -> tensor<2x4x5x6xf32>
      %1 = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 2 causal : (tensor<2x4x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x6xf32>) -> tensor<2x4x5x6xf32>
      return %0, %1 : tensor<2x4x5x6xf32>, tensor<2x4x5x6xf32>
    })", {q, k, v, start});
  ASSERT_EQ(want.size(), 2u);
  std::vector<float> qf = f32(q), kf = f32(k), vf = f32(v);
  std::vector<int32_t> positions = i32(start);
  cpu::AttentionArgs a;
  a.q = qf.data();
  a.k = kf.data();
  a.v = vf.data();
  a.batch = 2;
  a.heads = 4;
  a.kvHeads = 2;
  a.queries = 5;
  a.keys = 9;
  a.headDim = 8;
  a.valueDim = 6;
  a.scale = 0.35f;
  std::vector<float> windowed(2 * 4 * 5 * 6, NAN), plain(2 * 4 * 5 * 6, NAN);
  a.out = windowed.data();
  a.window = 3;
  a.softcap = 2.0f;
  a.queryStart = positions.data();
  cpu::attention(a);
  EXPECT_LE(maxDiff(windowed, want[0]), 1e-5);
  a.out = plain.data();
  a.window = 0;
  a.softcap = 0.0f;
  a.queryStart = nullptr;
  cpu::attention(a);
  EXPECT_LE(maxDiff(plain, want[1]), 1e-5);
}

TEST(CpuKernels, DataMovementAndItsErrors) {
  std::mt19937 rng(4);
  HostTensor cache = randomTensor({2, 2, 6, 3}, rng);
  HostTensor update = randomTensor({2, 2, 2, 3}, rng);
  HostTensor x = randomTensor({2, 4, 3}, rng), table = randomTensor({10, 3}, rng);
  HostTensor start({2}), rows({2}), ids({2, 2});
  start.data = {1, 4};
  rows.data = {3, 0};
  ids.data = {9, 0, 4, 4};
  std::vector<HostTensor> want = evaluate(R"(
    func.func @main(%c: tensor<2x2x6x3xf32>, %u: tensor<2x2x2x3xf32>, %s: tensor<2xi32>, %x: tensor<2x4x3xf32>, %r: tensor<2xi32>, %t: tensor<10x3xf32>, %i: tensor<2x2xi32>) -> (tensor<2x2x6x3xf32>, tensor<2x3xf32>, tensor<2x2x3xf32>) {
      %0 = gai.cache_write %c, %u at %s : (tensor<2x2x6x3xf32>, tensor<2x2x2x3xf32>, tensor<2xi32>) -> tensor<2x2x6x3xf32>
      %1 = gai.take %x, %r : (tensor<2x4x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>
      %2 = gai.embedding %t, %i : (tensor<10x3xf32>, tensor<2x2xi32>) -> tensor<2x2x3xf32>
      return %0, %1, %2 : tensor<2x2x6x3xf32>, tensor<2x3xf32>, tensor<2x2x3xf32>
    })", {cache, update, start, x, rows, table, ids});
  ASSERT_EQ(want.size(), 3u);

  std::vector<float> c = f32(cache), u = f32(update), xf = f32(x),
                     tf = f32(table), taken(6), embedded(12);
  std::vector<int32_t> s = i32(start), r = i32(rows), id = i32(ids);
  EXPECT_EQ(cpu::cacheWrite(c.data(), u.data(), s.data(), 2, 2, 6, 2, 3), -1);
  EXPECT_EQ(maxDiff(c, want[0]), 0.0);
  EXPECT_EQ(cpu::take(xf.data(), r.data(), 2, 4, 3, taken.data()), -1);
  EXPECT_EQ(maxDiff(taken, want[1]), 0.0);
  EXPECT_EQ(cpu::embedding(tf.data(), 10, 3, id.data(), 4, embedded.data()), -1);
  EXPECT_EQ(maxDiff(embedded, want[2]), 0.0);

  // Out-of-range inputs are reported, not read or written.
  s = {1, 5}; // 5 + 2 > 6 slots
  EXPECT_EQ(cpu::cacheWrite(c.data(), u.data(), s.data(), 2, 2, 6, 2, 3), 1);
  r = {4, 0};
  EXPECT_EQ(cpu::take(xf.data(), r.data(), 2, 4, 3, taken.data()), 0);
  id = {1, 10, 2, 3};
  EXPECT_EQ(cpu::embedding(tf.data(), 10, 3, id.data(), 4, embedded.data()), 1);

  // A vocabulary shard: the table's 10 rows are ids 10..19 of 30; the
  // others' rows are zeros, and only ids past the whole vocabulary are bad.
  id = {12, 3, 19, 25};
  EXPECT_EQ(cpu::embedding(tf.data(), 10, 3, id.data(), 4, embedded.data(), 10, 30), -1);
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(embedded[j], tf[2 * 3 + j]);
    EXPECT_EQ(embedded[3 + j], 0.0f);
    EXPECT_EQ(embedded[6 + j], tf[9 * 3 + j]);
    EXPECT_EQ(embedded[9 + j], 0.0f);
  }
  id = {12, 30, 0, 0};
  EXPECT_EQ(cpu::embedding(tf.data(), 10, 3, id.data(), 4, embedded.data(), 10, 30), 1);
}

} // namespace

namespace {

struct QuantGemvCase {
  QuantFormat format;
  int64_t m, n, k, group;
  bool fp8PerRow, accumulate;
};

/// C (+ C) = A·dequant(W)ᵀ in double, W read back by dequantizeRow.
std::vector<float> quantizedReference(const QuantizedWeight &w, const std::vector<float> &a,
                                      std::vector<float> c, const QuantGemvCase &q) {
  std::vector<float> row(q.k);
  for (int64_t col = 0; col < q.n; ++col) {
    dequantizeRow(w.format, w.values.data(), w.scale.data(), w.zero.data(), col, q.k, w.group,
                  w.scale.size() == 1, row.data());
    for (int64_t r = 0; r < q.m; ++r) {
      double sum = 0;
      for (int64_t i = 0; i < q.k; ++i)
        sum += double(a[r * q.k + i]) * row[i];
      c[r * q.n + col] = static_cast<float>(q.accumulate ? c[r * q.n + col] + sum : sum);
    }
  }
  return c;
}

} // namespace

// The few-row quantized GEMV (decode on the CPU) computes A·dequant(W)ᵀ as
// the dequantized weight defines it: every format, k not a multiple of its
// eight-wide sums, int4 groups, accumulation, and a weight large enough to
// be split over two threads.
TEST(CpuKernels, QuantizedGemvMatchesTheDequantizedWeight) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const QuantGemvCase cases[] = {
      {QuantFormat::Int8, 1, 37, 44, 0, false, false},
      {QuantFormat::Int8, 8, 1024, 1032, 0, false, true},
      {QuantFormat::Int4, 3, 50, 48, 16, false, false},
      {QuantFormat::Int4, 1, 1100, 1024, 128, false, true},
      {QuantFormat::Fp8E4M3, 2, 33, 20, 0, false, false},
      {QuantFormat::Fp8E4M3, 5, 40, 64, 0, true, true},
  };
  for (const QuantGemvCase &q : cases) {
    std::vector<float> w(q.n * q.k), a(q.m * q.k), c(q.m * q.n);
    for (float &x : w)
      x = normal(rng);
    for (float &x : a)
      x = normal(rng);
    for (float &x : c)
      x = normal(rng);
    QuantizedWeight packed = quantizeWeight(w.data(), q.n, q.k, q.format, q.group, q.fp8PerRow);
    std::vector<float> want = quantizedReference(packed, a, c, q);
    cpu::QuantizedGemv g;
    g.a = a.data();
    g.c = c.data();
    g.m = q.m;
    g.n = q.n;
    g.k = q.k;
    g.lda = q.k;
    g.ldc = q.n;
    g.weight = {packed.format, packed.values.data(), packed.scale.data(),
                packed.zero.empty() ? nullptr : packed.zero.data(), packed.group,
                packed.scale.size() == 1};
    g.accumulate = q.accumulate;
    cpu::quantizedGemv(g);
    double worst = 0;
    for (size_t i = 0; i < c.size(); ++i)
      worst = std::max(worst, std::fabs(double(c[i]) - want[i]) /
                                  (1.0 + std::fabs(double(want[i]))));
    EXPECT_LT(worst, 2e-5) << quantFormatName(q.format) << " m=" << q.m << " n=" << q.n
                           << " k=" << q.k;
  }
}
