// The arena planner never overlaps live buffers, and shares bytes between
// buffers that are not live together.
#include "passes/MemoryPlan.h"
#include "dialects/Gai/GaiDialect.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <random>

using namespace gai;

namespace {

bool liveTogether(const BufferRequest &a, const BufferRequest &b) {
  return a.firstUse <= b.lastUse && b.firstUse <= a.lastUse;
}

TEST(MemoryPlan, SequentialBuffersShareBytes) {
  ArenaPlan plan = planArena({{100, 0, 1}, {300, 2, 3}, {200, 4, 5}});
  EXPECT_EQ(plan.offsets, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(plan.arenaSize, 320); // 300 aligned to 64
  EXPECT_EQ(plan.totalSize, 128 + 320 + 256);
}

TEST(MemoryPlan, LiveBuffersGetTheirOwnBytes) {
  ArenaPlan plan = planArena({{64, 0, 5}, {64, 1, 2}, {128, 2, 4}});
  EXPECT_EQ(plan.arenaSize, 256);
  EXPECT_EQ(plan.arenaSize, plan.totalSize);
}

TEST(MemoryPlan, RandomLifetimesNeverOverlap) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> requests;
    int n = 1 + trial % 40;
    for (int i = 0; i < n; ++i) {
      int64_t first = rng() % 50;
      requests.push_back({1 + int64_t(rng() % 5000), first,
                          first + int64_t(rng() % 10)});
    }
    ArenaPlan plan = planArena(requests);
    ASSERT_LE(plan.arenaSize, plan.totalSize);
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(plan.offsets[i] % 64, 0);
      for (int j = i + 1; j < n; ++j) {
        if (!liveTogether(requests[i], requests[j]))
          continue;
        bool disjoint =
            plan.offsets[i] + requests[i].size <= plan.offsets[j] ||
            plan.offsets[j] + requests[j].size <= plan.offsets[i];
        ASSERT_TRUE(disjoint) << "trial " << trial << ": " << i << ", " << j;
      }
    }
  }
}

TEST(MemoryPlan, FunctionBuffersFollowTheIR) {
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(R"(
    func.func @f(%x: tensor<4x8xf32>, %c: tensor<1x1x8x8xf32>, %p: tensor<1xi32>) -> (tensor<32xf32>, tensor<1x1x8x8xf32>) {
      %w = gai.param "w" : tensor<8x8xf32>
      %0 = gai.matmul %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
      %1 = gai.exp %0 : tensor<4x8xf32>
      %2 = gai.reshape %1 : tensor<4x8xf32> to tensor<32xf32>
      %3 = gai.reshape %0 : tensor<4x8xf32> to tensor<1x1x4x8xf32>
      %4 = gai.cache_write %c, %3 at %p : (tensor<1x1x8x8xf32>, tensor<1x1x4x8xf32>, tensor<1xi32>) -> tensor<1x1x8x8xf32>
      return %2, %4 : tensor<32xf32>, tensor<1x1x8x8xf32>
    })", &context);
  ASSERT_TRUE(module);
  auto func = module->lookupSymbol<mlir::func::FuncOp>("f");
  FunctionBuffers buffers = collectBuffers(func);
  // The matmul and exp results: not the param, the reshapes (views) or the
  // in-place cache write.
  ASSERT_EQ(buffers.requests.size(), 2u);
  EXPECT_EQ(buffers.requests[0].size, 4 * 8 * 4);
  EXPECT_EQ(buffers.requests[0].firstUse, 1);
  EXPECT_EQ(buffers.requests[0].lastUse, 5); // read through %3 by the write
  EXPECT_EQ(buffers.requests[1].firstUse, 2);
  EXPECT_EQ(buffers.requests[1].lastUse, INT64_MAX); // returned through %2
}

} // namespace
