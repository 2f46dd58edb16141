// Tensor parallelism of generation: heads and MLP channels split over the
// tp ranks, the row-parallel products summed with the shard dialect.
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"
#include "passes/PruneAttr.h"
#include "passes/StructuredPrune.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAISHARDTENSORS
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

constexpr StringLiteral kGrid = kMeshSymbol;

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Whether `v` reaches the function's results or a loss through ops that
/// keep its last axis (a softcap, a reshape, the last position taken).
bool becomesLogits(Value v) {
  SmallVector<Value> work = {v};
  DenseSet<Value> seen;
  while (!work.empty()) {
    Value at = work.pop_back_val();
    if (!seen.insert(at).second)
      continue;
    for (Operation *user : at.getUsers()) {
      if (isa<func::ReturnOp, CrossEntropyOp>(user))
        return true;
      if (isa<MulOp, DivOp, TanhOp, ReshapeOp, SliceOp, TakeOp>(user))
        work.push_back(user->getResult(0));
    }
  }
  return false;
}

/// The LM heads of `module` that split over `parts` ranks along the
/// vocabulary: a weight [V, C] of its own (not an embedding's, which every
/// rank's lookup needs whole) read only as the transposed rhs of matmuls
/// whose products become the logits.
SmallVector<MatmulOp> lmHeads(ModuleOp module, int64_t parts) {
  llvm::StringSet<> embeddings;
  module.walk([&](EmbeddingOp e) {
    if (auto p = e->getOperand(0).getDefiningOp<ParamOp>())
      embeddings.insert(p.getName());
  });
  SmallVector<MatmulOp> heads;
  module.walk([&](MatmulOp m) {
    auto p = m.getRhs().getDefiningOp<ParamOp>();
    if (!p || !m.getTransposeRhs() || m.getTransposeLhs() || p->hasAttr(kTensorParallelAttr) ||
        embeddings.count(p.getName()) || typeOf(p).getRank() != 2 ||
        typeOf(p).getDimSize(0) % parts != 0 || !becomesLogits(m.getResult()) ||
        !llvm::all_of(p->getUsers(), [](Operation *u) { return isa<MatmulOp>(u); }))
      return;
    heads.push_back(m);
  });
  return heads;
}

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
    SmallVector<MatmulOp> heads = lmHeads(module, tp);
    for (MatmulOp m : heads)
      columns.push_back(m);
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
    for (MatmulOp m : heads)
      splitVocabulary(b, m, grid);
  }

  /// The LM head column-parallel over the vocabulary: each rank computes
  /// V/T logits with its rows of the weight, and an all-gather (along the
  /// outermost axis, the vocabulary moved there and back) gives every rank
  /// all of them; the weight records its slicing for gaic and checkpoints.
  void splitVocabulary(OpBuilder &b, MatmulOp m, FlatSymbolRefAttr grid) {
    auto p = m.getRhs().getDefiningOp<ParamOp>();
    RankedTensorType whole = typeOf(p), logits = typeOf(m.getResult());
    const int64_t vocab = whole.getDimSize(0), mine = vocab / tp;
    if (!p->hasAttr(kTensorParallelAttr)) {
      setWeightSlicing(p, {p.getName().str(), "vocabulary", 0, 1, 1, {{0, tp, mine}}},
                       kTensorParallelAttr);
      p.getResult().setType(RankedTensorType::get({mine, whole.getDimSize(1)},
                                                  whole.getElementType()));
    }
    SmallVector<int64_t> shape(logits.getShape());
    const int64_t rank = logits.getRank();
    shape.back() = mine;
    m.getResult().setType(logits.clone(shape));
    b.setInsertionPointAfter(m);
    SmallVector<int64_t> toFront = {rank - 1}, toBack;
    for (int64_t d = 0; d + 1 < rank; ++d) {
      toFront.push_back(d);
      toBack.push_back(d + 1);
    }
    toBack.push_back(0);
    Value front = TransposeOp::create(b, m.getLoc(), m.getResult(),
                                      b.getDenseI64ArrayAttr(toFront));
    SmallVector<int64_t> gathered(typeOf(front).getShape());
    gathered[0] = logits.getShape().back();
    Value all = shard::AllGatherOp::create(
        b, m.getLoc(), typeOf(front).clone(gathered), grid,
        b.getDenseI16ArrayAttr({kTensorAxis}), front, b.getIndexAttr(0));
    Value back = TransposeOp::create(b, m.getLoc(), all, b.getDenseI64ArrayAttr(toBack));
    m.getResult().replaceAllUsesExcept(back, front.getDefiningOp());
  }
};

} // namespace
