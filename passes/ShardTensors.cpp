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

/// Whether `m` is an LM head that can split over the vocabulary: the
/// transposed product of a [V, C] weight whose result becomes the logits.
bool isLmHead(MatmulOp m, int64_t parts) {
  auto p = m.getRhs().getDefiningOp<ParamOp>();
  return p && m.getRhs() == m->getOperand(1) && m.getTransposeRhs() && !m.getTransposeLhs() &&
         typeOf(p).getRank() == 2 && typeOf(p).getDimSize(0) % parts == 0 &&
         becomesLogits(m.getResult());
}

/// Whether parameter `name` is read only by embeddings (as their table)
/// and by LM heads: then every reader can take its vocabulary shard.
bool splitsOverVocabulary(ModuleOp module, StringRef name, int64_t parts) {
  bool all = true, any = false;
  module.walk([&](ParamOp p) {
    if (p.getName() != name)
      return;
    if (p->hasAttr(kTensorParallelAttr) || typeOf(p).getRank() != 2 ||
        typeOf(p).getDimSize(0) % parts != 0)
      all = false;
    for (OpOperand &use : p->getUses()) {
      any = true;
      auto e = dyn_cast<EmbeddingOp>(use.getOwner());
      auto m = dyn_cast<MatmulOp>(use.getOwner());
      all = all && ((e && use.getOperandNumber() == 0) ||
                    (m && use.getOperandNumber() == 1 && isLmHead(m, parts)));
    }
  });
  return all && any;
}

/// The LM heads of `module` that split over `parts` ranks along the
/// vocabulary: every matmul that reads a weight splitsOverVocabulary allows
/// (its own, or the embedding's it is tied to).
SmallVector<MatmulOp> lmHeads(ModuleOp module, int64_t parts) {
  llvm::StringMap<bool> splits;
  SmallVector<MatmulOp> heads;
  module.walk([&](MatmulOp m) {
    auto p = m.getRhs().getDefiningOp<ParamOp>();
    if (!p || !isLmHead(m, parts))
      return;
    auto [it, fresh] = splits.try_emplace(p.getName(), false);
    if (fresh)
      it->second = splitsOverVocabulary(module, p.getName(), parts);
    if (it->second)
      heads.push_back(m);
  });
  return heads;
}

/// The embeddings whose tables split over the vocabulary: the largest
/// tables (the vocabulary's; a position table of GPT-2's stays whole, its
/// all-reduce a step would cost more than its rows).
SmallVector<EmbeddingOp> vocabularyEmbeddings(ModuleOp module, int64_t parts) {
  int64_t vocabulary = 0;
  module.walk([&](EmbeddingOp e) {
    vocabulary = std::max(vocabulary, typeOf(e.getTable()).getDimSize(0));
  });
  llvm::StringMap<bool> splits;
  SmallVector<EmbeddingOp> found;
  module.walk([&](EmbeddingOp e) {
    auto p = e.getTable().getDefiningOp<ParamOp>();
    if (!p || e.getVocabShards() != 1 || typeOf(p).getDimSize(0) != vocabulary)
      return;
    auto [it, fresh] = splits.try_emplace(p.getName(), false);
    if (fresh)
      it->second = splitsOverVocabulary(module, p.getName(), parts);
    if (it->second)
      found.push_back(e);
  });
  return found;
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
    // Both are decided before anything is sliced.
    SmallVector<MatmulOp> heads = lmHeads(module, tp);
    SmallVector<EmbeddingOp> embeddings = vocabularyEmbeddings(module, tp);
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
    for (EmbeddingOp e : embeddings)
      splitEmbedding(b, e, grid);
  }

  /// The weight's rows over the vocabulary: each rank keeps V/T of them
  /// (recorded for gaic and checkpoints), once for all its readers.
  void sliceVocabulary(ParamOp p) {
    if (p->hasAttr(kTensorParallelAttr))
      return;
    RankedTensorType whole = typeOf(p);
    const int64_t mine = whole.getDimSize(0) / tp;
    setWeightSlicing(p, {p.getName().str(), "vocabulary", 0, 1, 1, {{0, tp, mine}}},
                     kTensorParallelAttr);
    p.getResult().setType(
        RankedTensorType::get({mine, whole.getDimSize(1)}, whole.getElementType()));
  }

  /// A vocabulary-parallel embedding (Megatron's): each rank looks up the
  /// ids of its rows, zeros for the others, and a sum over tp gives every
  /// rank the whole lookup.
  void splitEmbedding(OpBuilder &b, EmbeddingOp e, FlatSymbolRefAttr grid) {
    sliceVocabulary(e.getTable().getDefiningOp<ParamOp>());
    e.setVocabShards(tp);
    b.setInsertionPointAfter(e);
    Value mine = e.getResult();
    auto sum = shard::AllReduceOp::create(
        b, e.getLoc(), mine.getType(), grid, b.getDenseI16ArrayAttr({kTensorAxis}), mine,
        shard::ReductionKindAttr::get(b.getContext(), shard::ReductionKind::Sum));
    mine.replaceAllUsesExcept(sum.getResult(), sum);
  }

  /// The LM head column-parallel over the vocabulary: each rank computes
  /// V/T logits with its rows of the weight, and an all-gather (along the
  /// outermost axis, the vocabulary moved there and back) gives every rank
  /// all of them; the weight records its slicing for gaic and checkpoints.
  void splitVocabulary(OpBuilder &b, MatmulOp m, FlatSymbolRefAttr grid) {
    auto p = m.getRhs().getDefiningOp<ParamOp>();
    RankedTensorType logits = typeOf(m.getResult());
    const int64_t mine = logits.getShape().back() / tp;
    sliceVocabulary(p);
    SmallVector<int64_t> shape(logits.getShape());
    const int64_t rank = logits.getRank();
    shape.back() = mine;
    m.getResult().setType(logits.clone(shape));
    // A softcap (gemma2's divide, tanh, multiply by a scalar) works column by
    // column: it runs on each rank's logits, and the gather comes after it.
    Value local = m.getResult();
    Operation *last = m;
    while (local.hasOneUse()) {
      Operation *user = *local.getUsers().begin();
      auto scalarOther = [&](Operation *op) {
        Value other = op->getOperand(0) == local ? op->getOperand(1) : op->getOperand(0);
        return op->getOperand(0) == local && typeOf(other).getNumElements() == 1;
      };
      if (!isa<TanhOp>(user) && !(isa<MulOp, DivOp>(user) && scalarOther(user)))
        break;
      user->getResult(0).setType(typeOf(user->getResult(0)).clone(shape));
      local = user->getResult(0);
      last = user;
    }
    b.setInsertionPointAfter(last);
    SmallVector<int64_t> toFront = {rank - 1}, toBack;
    for (int64_t d = 0; d + 1 < rank; ++d) {
      toFront.push_back(d);
      toBack.push_back(d + 1);
    }
    toBack.push_back(0);
    Value front = TransposeOp::create(b, m.getLoc(), local, b.getDenseI64ArrayAttr(toFront));
    SmallVector<int64_t> gathered(typeOf(front).getShape());
    gathered[0] = logits.getShape().back();
    Value all = shard::AllGatherOp::create(
        b, m.getLoc(), typeOf(front).clone(gathered), grid,
        b.getDenseI16ArrayAttr({kTensorAxis}), front, b.getIndexAttr(0));
    Value back = TransposeOp::create(b, m.getLoc(), all, b.getDenseI64ArrayAttr(toBack));
    local.replaceAllUsesExcept(back, front.getDefiningOp());
    // A loss straight over the logits needs no gathered copy of them.
    for (Operation *user : llvm::make_early_inc_range(back.getUsers()))
      if (auto loss = dyn_cast<CrossEntropyOp>(user); loss && loss.getLogits() == back)
        splitCrossEntropy(b, loss, local, grid);
    if (back.use_empty()) {
      back.getDefiningOp()->erase();
      all.getDefiningOp()->erase();
      front.getDefiningOp()->erase();
    }
  }

  /// Megatron's vocabulary-parallel cross-entropy over each rank's V/T
  /// logits `mine`: the row maxima, the sums of exponentials and the
  /// labels' logits each all-reduced over tp, never the logits. The loss
  /// of a row is log Σ exp(l − m) − (l_label − m), m the row's maximum: a
  /// shift that cancels, so autodiff takes it as a constant (gai.no_grad)
  /// and the gradient is softmax − one-hot on each rank's own columns.
  /// Rows whose label is the ignore_index count as the whole loss counts
  /// them: zero, and left out of the mean's count (its label becomes 0 for
  /// the one-hot, so a negative ignore_index is no bad class id).
  void splitCrossEntropy(OpBuilder &b, CrossEntropyOp loss, Value mine,
                         FlatSymbolRefAttr grid) {
    b.setInsertionPoint(loss);
    Location loc = loss.getLoc();
    RankedTensorType local = typeOf(mine);
    const int64_t rank = local.getRank(), columns = local.getShape().back();
    Type f32 = b.getF32Type();
    Value logits = mine;
    if (!local.getElementType().isF32())
      logits = ConvertOp::create(b, loc, local.clone(f32), mine);
    auto overTp = [&](Value v, shard::ReductionKind kind) {
      return shard::AllReduceOp::create(b, loc, v.getType(), grid,
                                        b.getDenseI16ArrayAttr({kTensorAxis}), v,
                                        shard::ReductionKindAttr::get(b.getContext(), kind))
          .getResult();
    };
    auto rowSum = [&](Value v) {
      return ReduceOp::create(b, loc, ReduceKind::Sum, v, ArrayRef<int64_t>{rank - 1},
                              /*keep_dims=*/true)
          .getResult();
    };
    Value labels = loss.getLabels();
    RankedTensorType labelType = typeOf(labels);
    SmallVector<int64_t> labelShape(labelType.getShape());
    auto splat = [&](RankedTensorType type, Attribute value) -> Value {
      return ConstantOp::create(b, loc, DenseElementsAttr::get(type, value));
    };
    // counted = (label != ignore_index), as a mask and as 0/1 per row.
    Value counted, countedRows;
    const auto ignore = static_cast<int64_t>(loss.getIgnoreIndex());
    Type labelElement = labelType.getElementType();
    if (ignore == static_cast<int32_t>(ignore)) {
      Value offset = SubOp::create(
          b, loc, labels, splat(labelType, b.getIntegerAttr(labelElement, ignore)));
      counted = ConvertOp::create(b, loc, labelType.clone(b.getI1Type()), offset);
      labels = SelectOp::create(b, loc, counted, labels,
                                splat(labelType, b.getIntegerAttr(labelElement, 0)));
      SmallVector<int64_t> rowShape(labelShape);
      rowShape.push_back(1);
      countedRows = ReshapeOp::create(
          b, loc, RankedTensorType::get(rowShape, f32),
          ConvertOp::create(b, loc, labelType.clone(f32), counted));
    }
    auto rowMax = ReduceOp::create(b, loc, ReduceKind::Max, logits, ArrayRef<int64_t>{rank - 1},
                                   /*keep_dims=*/true);
    rowMax->setAttr(kNoGrad, b.getUnitAttr());
    Value shift = overTp(rowMax, shard::ReductionKind::Max);
    shift.getDefiningOp()->setAttr(kNoGrad, b.getUnitAttr());
    Value shifted = SubOp::create(b, loc, logits, shift);
    Value total = overTp(rowSum(ExpOp::create(b, loc, shifted)), shard::ReductionKind::Sum);
    Value hot = OneHotOp::create(b, loc, local.clone(f32), labels, columns, tp);
    Value picked = overTp(rowSum(MulOp::create(b, loc, hot, shifted)), shard::ReductionKind::Sum);
    Value rows = SubOp::create(b, loc, LogOp::create(b, loc, total), picked); // [..., 1]
    if (countedRows)
      rows = MulOp::create(b, loc, rows, countedRows);
    const int64_t count = labelType.getNumElements();
    auto flat = [&](Value v) {
      return ReshapeOp::create(b, loc, RankedTensorType::get({count}, f32), v).getResult();
    };
    auto sum = [&](Value v) {
      return ReduceOp::create(b, loc, ReduceKind::Sum, flat(v), ArrayRef<int64_t>{0})
          .getResult();
    };
    Value result;
    if (loss.getReduction() == LossReduction::None) {
      result = ReshapeOp::create(b, loc, RankedTensorType::get(labelShape, f32), rows);
    } else if (loss.getReduction() == LossReduction::Sum) {
      result = sum(rows);
    } else if (!countedRows) {
      result = ReduceOp::create(b, loc, ReduceKind::Mean, flat(rows), ArrayRef<int64_t>{0});
    } else {
      // The mean over counted labels; none counted gives 0 (as the whole loss).
      RankedTensorType scalar = RankedTensorType::get({}, f32);
      auto labelsCounted = MaxOp::create(b, loc, sum(countedRows),
                                         splat(scalar, b.getF32FloatAttr(1.0)));
      labelsCounted->setAttr(kNoGrad, b.getUnitAttr()); // the labels' count
      result = DivOp::create(b, loc, sum(rows), labelsCounted);
    }
    loss.getResult().replaceAllUsesWith(result);
    loss.erase();
  }
};

} // namespace
