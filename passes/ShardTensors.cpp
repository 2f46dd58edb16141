// Tensor parallelism of generation: heads and MLP channels split over the
// tp ranks, the row-parallel products summed with the shard dialect.
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"
#include "passes/StructuredPrune.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAISHARDTENSORS
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

constexpr StringLiteral kGrid = "mesh";
constexpr int16_t kTensorAxis = 1;

struct ShardTensorsPass : mlir::gai::impl::GaiShardTensorsBase<ShardTensorsPass> {
  using GaiShardTensorsBase::GaiShardTensorsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (tp < 1) {
      module.emitError("--gai-shard-tensors: tp=") << static_cast<int64_t>(tp)
                                                   << ": expected a positive count";
      return signalPassFailure();
    }
    if (tp == 1)
      return;
    for (StringRef training : {"eval_loss", "train_step"})
      if (module.lookupSymbol(training)) {
        module.emitError("--gai-shard-tensors: tensor parallelism splits generation only; "
                         "training with tp is not built yet (shard training with dp)");
        return signalPassFailure();
      }
    SmallVector<Operation *> contractions;
    if (failed(splitHeadsAndChannels(module, tp, contractions)))
      return signalPassFailure();
    OpBuilder b(module.getContext());
    b.setInsertionPointToStart(module.getBody());
    shard::GridOp::create(b, module.getLoc(), kGrid, ArrayRef<int64_t>{1, tp});
    auto grid = FlatSymbolRefAttr::get(module.getContext(), kGrid);
    for (Operation *op : contractions) {
      b.setInsertionPointAfter(op);
      Value partial = op->getResult(0);
      auto sum = shard::AllReduceOp::create(
          b, op->getLoc(), partial.getType(), grid, b.getDenseI16ArrayAttr({kTensorAxis}),
          partial, shard::ReductionKindAttr::get(b.getContext(), shard::ReductionKind::Sum));
      partial.replaceAllUsesExcept(sum.getResult(), sum);
    }
  }
};

} // namespace
