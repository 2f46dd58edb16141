// Tensor parallelism of generation: heads and MLP channels split over the
// tp ranks, the row-parallel products summed with the shard dialect.
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"
#include "passes/StructuredPrune.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

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
    if (module.lookupSymbol("train_step")) {
      module.emitError("--gai-shard-tensors: split the loss before --gai-train-step "
                       "differentiates it");
      return signalPassFailure();
    }
    SmallVector<Operation *> contractions, columns;
    if (failed(splitHeadsAndChannels(module, tp, contractions, columns)))
      return signalPassFailure();
    // Each rank's gradient of a column-parallel product's input is a
    // partial sum (Megatron's "f"): autodiff sums it over tp, once for a
    // value only column-parallel products read (q, k and v's input), else
    // for each product.
    auto gridRef = FlatSymbolRefAttr::get(module.getContext(), kGrid);
    DenseSet<Operation *> isColumn(columns.begin(), columns.end());
    llvm::SetVector<Value> inputs;
    for (Operation *op : columns)
      inputs.insert(op->getOperand(0));
    for (Value input : inputs) {
      Operation *def = input.getDefiningOp();
      bool onlyColumns = llvm::all_of(input.getUses(), [&](OpOperand &use) {
        return use.getOperandNumber() == 0 && isColumn.count(use.getOwner());
      });
      if (def && def->getNumResults() == 1 && onlyColumns) {
        def->setAttr(kPartialResultGrad, gridRef);
        continue;
      }
      for (Operation *user : input.getUsers())
        if (isColumn.count(user) && user->getOperand(0) == input)
          user->setAttr(kPartialInputGrad, gridRef);
    }
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
