// Which steps run beside the others (core/StepOverlap.h): a weight
// gradient's GEMM and its squared sum do, and a norm weight's column sums;
// a GEMM whose result is read soon, or whose inputs are overwritten soon,
// does not; the order between two steps follows from what each reads and
// writes.
#include "core/StepOverlap.h"

#include <gtest/gtest.h>

namespace {

using gai::Buffer;
using gai::Command;

Buffer arena(int64_t offset, int64_t size) {
  return {gai::format::Space::Arena, offset, size};
}

Command gemm(Buffer a, Buffer b, Buffer c) {
  gai::cmd::Gemm g;
  g.a = a;
  g.b = b;
  g.c = c;
  g.m = g.n = g.k = 16;
  g.dtype = gai::format::DType::BF16;
  return g;
}

Command launch(std::vector<Buffer> args) {
  gai::cmd::Launch l;
  l.args = std::move(args);
  return l;
}

// Buffers of one backward layer: dY, the saved input X, dX, dW, its squared
// sum, the next layer's activations.
const Buffer dY = arena(0, 1024), x = arena(1024, 1024), dX = arena(2048, 1024),
             dW = arena(3072, 512), squares = arena(3584, 16),
             next = arena(4096, 1024), nextOut = arena(5120, 1024);

TEST(StepOverlap, WeightGradientAndItsSquaredSumRunBeside) {
  std::vector<Command> steps = {
      gemm(dY, x, dX),                // dX: read by the launch after the sum
      gemm(dY, x, dW),                // dW: only the update reads it
      launch({dW, squares}),          // its squared sum
      launch({dX, next}),             // the next layer's norm
      gemm(next, x, nextOut),         // reads X too: no order
      launch({nextOut, dY}),          // overwrites dY, far enough
      launch({dW, squares, nextOut}), // the update
  };
  std::vector<bool> beside = gai::stepsBeside(steps, /*window=*/3);
  EXPECT_EQ(beside,
            (std::vector<bool>{false, true, true, false, false, false, false}));
}

TEST(StepOverlap, InputOverwrittenSoonStaysOnTheComputeStream) {
  std::vector<Command> steps = {
      gemm(dY, x, dW), launch({dW, squares}),
      launch({dX, x}), // writes over X (a launch may write any argument)
      launch({next}),  launch({nextOut}),
  };
  EXPECT_EQ(gai::stepsBeside(steps, 3), std::vector<bool>(5, false));
  // Past the window it no longer holds the GEMM back.
  EXPECT_EQ(gai::stepsBeside(steps, 0)[0], true);
}

TEST(StepOverlap, ResultReadSoonStaysOnTheComputeStream) {
  std::vector<Command> steps = {
      gemm(dY, x, dW),
      launch({next}),
      gemm(dW, x, nextOut), // reads the result
      launch({nextOut}),
  };
  EXPECT_EQ(gai::stepsBeside(steps, 3), std::vector<bool>(4, false));
}

TEST(StepOverlap, OnlyFloatGemmsWithWorkAfterThem) {
  auto quantized = std::get<gai::cmd::Gemm>(gemm(dY, x, dW));
  quantized.weightFormat = gai::format::WeightFormat::Int8;
  auto gated = std::get<gai::cmd::Gemm>(gemm(dY, x, dW));
  gated.gate = next;
  auto folded = std::get<gai::cmd::Gemm>(gemm(dY, x, dW));
  folded.normWeight = arena(8192, 64);
  auto normed =
      std::get<gai::cmd::Gemm>(gemm(dY, x, dW)); // reads a folded norm's sums
  normed.aSquares = arena(8192, 64);
  auto half = std::get<gai::cmd::Gemm>(gemm(dY, x, dW));
  half.dtype = gai::format::DType::F16;
  for (const Command &g : {Command(quantized), Command(gated), Command(folded),
                           Command(normed), Command(half)})
    EXPECT_EQ(gai::stepsBeside({g, launch({nextOut})}, 3),
              (std::vector<bool>{false, false}));
  // Nothing after it (but its own sum) to overlap: not beside.
  EXPECT_EQ(gai::stepsBeside({gemm(dY, x, dW), launch({dW, squares})}, 3),
            (std::vector<bool>{false, false}));
  EXPECT_EQ(gai::stepsBeside({gemm(dY, x, dW)}, 3), std::vector<bool>{false});
}

TEST(StepOverlap, NormWeightGradientRunsBeside) {
  // A norm weight's gradient: column sums of the norm backward's partials,
  // read by the update only.
  gai::cmd::Reduce sums;
  sums.input = x;
  sums.out = squares;
  std::vector<Command> steps = {launch({dY, x, dX}), sums, launch({dX, next}),
                                gemm(next, dY, nextOut)};
  EXPECT_EQ(gai::stepsBeside(steps, 3),
            (std::vector<bool>{false, true, false, false}));
  // Its partials overwritten by the next launch, whose result the step
  // after reads: it stays.
  steps[2] = launch({dX, x});
  steps[3] = gemm(dX, dY, nextOut);
  EXPECT_EQ(gai::stepsBeside(steps, 3), std::vector<bool>(4, false));
}

TEST(StepOverlap, MustFollowReadsAndWrites) {
  // Two reads of one buffer need no order; a write and a read, or two
  // writes, do, either way round.
  EXPECT_FALSE(gai::mustFollow(gemm(dY, x, dW), gemm(dY, x, dX)));
  EXPECT_TRUE(gai::mustFollow(gemm(dY, x, dW), gemm(dW, x, dX)));
  EXPECT_TRUE(gai::mustFollow(gemm(dY, x, dW), gemm(next, nextOut, x)));
  EXPECT_TRUE(gai::mustFollow(gemm(dY, x, dW), gemm(next, nextOut, dW)));
  // A launch counts as writing every argument.
  EXPECT_TRUE(gai::mustFollow(gemm(dY, x, dW), launch({x})));
  EXPECT_FALSE(gai::mustFollow(gemm(dY, x, dW), launch({next})));
  // Overlap is by byte: a range that ends where another starts is apart.
  EXPECT_FALSE(gai::mustFollow(gemm(dY, x, arena(3072, 512)),
                               launch({arena(3584, 512)})));
  EXPECT_TRUE(
      gai::mustFollow(gemm(dY, x, arena(3072, 512)), launch({arena(3583, 2)})));
}

TEST(StepOverlap, WritesOf) {
  EXPECT_EQ(gai::writesOf(gemm(dY, x, dW)), std::vector<Buffer>{dW});
  EXPECT_EQ(gai::writesOf(launch({dY, x})), (std::vector<Buffer>{dY, x}));
  gai::cmd::Reduce r;
  r.input = dW;
  r.out = squares;
  EXPECT_EQ(gai::writesOf(r), std::vector<Buffer>{squares});
}

} // namespace
