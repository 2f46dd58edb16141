// Data parallelism and ZeRO-1 of the training entries: the collectives a
// rank of a dp grid needs, as MLIR's shard dialect spells them.
#include "dialects/Gai/GaiOps.h"
#include "dialects/Gai/StateNames.h"
#include "passes/Passes.h"
#include "passes/PruneAttr.h"

#include "mlir/Analysis/TopologicalSortUtils.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAISHARD
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

constexpr StringLiteral kGrid = kMeshSymbol;

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

using Grid = MeshSpec;

class Sharder {
public:
  Sharder(ModuleOp module, Grid grid, int64_t zero, int64_t bucketBytes)
      : module(module), grid(grid), zero(zero), bucketBytes(bucketBytes),
        b(module.getLoc(), module.getContext()) {}

  LogicalResult run();

private:
  FlatSymbolRefAttr gridRef() { return FlatSymbolRefAttr::get(b.getContext(), kGrid); }
  DenseI16ArrayAttr dataAxes() { return b.getDenseI16ArrayAttr({kDataAxis}); }
  Value averageOverData(Value v, shard::ReductionKind kind = shard::ReductionKind::Average) {
    return shard::AllReduceOp::create(b, v.getType(), gridRef(), dataAxes(), v,
                                      shard::ReductionKindAttr::get(b.getContext(), kind));
  }
  Value reshape(Value v, ArrayRef<int64_t> shape) {
    return ReshapeOp::create(b, RankedTensorType::get(shape, typeOf(v).getElementType()), v);
  }
  Value zeros(RankedTensorType type) {
    return ConstantOp::create(
        b, DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
  }
  /// The elements of one rank's share of a tensor of `count` elements.
  int64_t shareOf(int64_t count) const { return (count + grid.dp - 1) / grid.dp; }
  /// `v` flattened and padded with zeros to a multiple of the dp size.
  Value flattenPadded(Value v) {
    int64_t count = typeOf(v).getNumElements(), padded = shareOf(count) * grid.dp;
    Value flat = reshape(v, {count});
    if (padded == count)
      return flat;
    Value pad = zeros(RankedTensorType::get({padded - count}, typeOf(v).getElementType()));
    return ConcatOp::create(b, ValueRange{flat, pad}, /*axis=*/0);
  }
  DictionaryAttr shardAttr(RankedTensorType whole) {
    return b.getDictionaryAttr({b.getNamedAttr("shape", b.getDenseI64ArrayAttr(whole.getShape())),
                                b.getNamedAttr("axes", dataAxes())});
  }

  LogicalResult shardTrainStep(func::FuncOp step);
  void bucketAllReduce(MutableArrayRef<std::pair<Value, AddOp>> fresh);
  LogicalResult reduceScatterGradients(func::FuncOp step, MutableArrayRef<std::pair<Value, AddOp>> fresh,
                                       unsigned squaresIndex);
  void buildShardedOptimizer(func::FuncOp old);
  void buildShardedZeroGrads(func::FuncOp old);
  void averageResult(func::FuncOp func, unsigned index);
  /// A weight's gradient summed over the tp ranks that hold the same slice
  /// of it (a KV head replicated for several ranks' query heads).
  Value sumOverReplicas(Value g, int64_t replicas);
  /// grad_sq anew: the squares of the gradients, slices summed over tp and
  /// ZeRO's shares over dp.
  void rebuildSquares(func::FuncOp step, unsigned squaresIndex);

  ModuleOp module;
  Grid grid;
  int64_t zero, bucketBytes;
  /// Whether the dp axis gets its collectives: when it has ranks to talk
  /// to, and on a grid of one, whose collectives are each a copy (so that
  /// one device runs the steps a sharded job has).
  bool shardsData() const { return grid.dp > 1 || grid.tp == 1; }
  ImplicitLocOpBuilder b;
  /// Each parameter's whole type, by name, in the step's order.
  SmallVector<std::pair<std::string, RankedTensorType>> params;
  /// The weights whose tp slices are replicated, by name: over how many ranks.
  llvm::StringMap<int64_t> replicasOf;
};

StringRef resultName(func::FuncOp func, unsigned i) {
  auto name = func.getResultAttrOfType<StringAttr>(i, "gai.name");
  return name ? name.getValue() : StringRef();
}

/// Erases the ops of `func` that nothing reads and that have no effects.
void eraseDeadOps(func::FuncOp func) {
  Block &body = func.getBody().front();
  // Users come after what they read: one backward sweep erases chains.
  for (Operation *op = body.getTerminator()->getPrevNode(); op;) {
    Operation *before = op->getPrevNode();
    if (isOpTriviallyDead(op))
      op->erase();
    op = before;
  }
}

void Sharder::averageResult(func::FuncOp func, unsigned index) {
  Operation *ret = func.getBody().front().getTerminator();
  b.setInsertionPoint(ret);
  ret->setOperand(index, averageOverData(ret->getOperand(index)));
}

Value Sharder::sumOverReplicas(Value g, int64_t replicas) {
  auto tpAxis = b.getDenseI16ArrayAttr({kTensorAxis});
  auto sum = shard::ReductionKindAttr::get(b.getContext(), shard::ReductionKind::Sum);
  if (replicas == grid.tp)
    return shard::AllReduceOp::create(b, g.getType(), gridRef(), tpAxis, g, sum);
  // Every rank's gradient, each group of replicas summed, this rank's
  // group's sum kept: [tp, n] → [tp / r, n] → (each r times) [tp, n] → [1, n].
  RankedTensorType type = typeOf(g);
  Type element = type.getElementType();
  const int64_t n = type.getNumElements(), groups = grid.tp / replicas;
  Value all = shard::AllGatherOp::create(b, RankedTensorType::get({grid.tp, n}, element),
                                         gridRef(), tpAxis, reshape(g, {1, n}),
                                         b.getIndexAttr(0));
  Value rows = reshape(all, {groups, replicas * n});
  Value summed;
  for (int64_t r = 0; r < replicas; ++r) {
    Value part = SliceOp::create(b, RankedTensorType::get({groups, n}, element), rows,
                                 b.getDenseI64ArrayAttr({0, r * n}),
                                 b.getDenseI64ArrayAttr({groups, n}));
    summed = summed ? AddOp::create(b, summed, part).getResult() : part;
  }
  SmallVector<Value> copies(replicas, summed);
  Value spread = reshape(ConcatOp::create(b, copies, /*axis=*/1), {grid.tp, n});
  Value mine = shard::AllSliceOp::create(b, RankedTensorType::get({1, n}, element), gridRef(),
                                         tpAxis, spread, b.getIndexAttr(0));
  return reshape(mine, type.getShape());
}

LogicalResult Sharder::run() {
  auto step = module.lookupSymbol<func::FuncOp>("train_step");
  module.walk([&](ParamOp p) {
    if (std::optional<WeightSlicing> s = weightSlicing(p, kTensorParallelAttr);
        s && s->replicas > 1)
      replicasOf[p.getName()] = s->replicas;
  });
  auto optimizer = module.lookupSymbol<func::FuncOp>("optimizer_step");
  auto zeroGrads = module.lookupSymbol<func::FuncOp>("zero_grads");
  if (!step || !optimizer || !zeroGrads)
    return module.emitError("--gai-shard: dp=")
           << grid.dp << " shards training: expected @train_step, @optimizer_step and "
           << "@zero_grads (run --gai-train-step first)";
  // --gai-shard-tensors made the grid of a tensor-parallel loss already.
  if (auto existing = module.lookupSymbol<shard::GridOp>(kGrid)) {
    if (existing.getShape().size() != 2 || existing.getShape()[1] != grid.tp)
      return existing.emitOpError("--gai-shard: tp=")
             << grid.tp << " but the loss was split for another grid";
    existing.setShape(ArrayRef<int64_t>{grid.dp, grid.tp});
  } else if (grid.tp > 1) {
    return module.emitError("--gai-shard: tp=")
           << grid.tp << ": split the loss with --gai-shard-tensors first";
  } else {
    b.setInsertionPointToStart(module.getBody());
    shard::GridOp::create(b, kGrid, ArrayRef<int64_t>{grid.dp, grid.tp});
  }
  if (failed(shardTrainStep(step)))
    return failure();
  if (zero) {
    buildShardedOptimizer(optimizer);
    buildShardedZeroGrads(zeroGrads);
  }
  if (auto eval = module.lookupSymbol<func::FuncOp>("eval_loss"); eval && shardsData())
    averageResult(eval, 0);
  return success();
}

void Sharder::rebuildSquares(func::FuncOp step, unsigned squaresIndex) {
  Operation *ret = step.getBody().front().getTerminator();
  llvm::StringSet<> split; // weights each tp rank holds a slice of
  step.walk([&](ParamOp p) {
    if (p->hasAttr(kTensorParallelAttr))
      split.insert(p.getName());
  });
  b.setInsertionPoint(ret);
  Value whole, sliced;
  for (unsigned i = 0; i < ret->getNumOperands(); ++i) {
    StringRef name = resultName(step, i);
    if (!name.starts_with(kGradPrefix))
      continue;
    Value sq = buildSumOfSquares(b, ret->getOperand(i));
    // A replicated slice's squares arrive from each of its replicas.
    if (int64_t replicas = replicasOf.lookup(name.drop_front(5)); replicas > 1)
      sq = MulOp::create(b, sq,
                         ConstantOp::create(b, DenseElementsAttr::get(
                                                   RankedTensorType::get({}, b.getF32Type()),
                                                   1.0f / static_cast<float>(replicas))));
    Value &sum = split.count(name.drop_front(5)) ? sliced : whole;
    sum = sum ? AddOp::create(b, sum, sq).getResult() : sq;
  }
  if (sliced) { // the slices' squares summed over the tp ranks
    sliced = shard::AllReduceOp::create(
        b, sliced.getType(), gridRef(), b.getDenseI16ArrayAttr({kTensorAxis}), sliced,
        shard::ReductionKindAttr::get(b.getContext(), shard::ReductionKind::Sum));
    whole = whole ? AddOp::create(b, whole, sliced).getResult() : sliced;
  }
  if (zero) // every gradient is a share over dp
    whole = averageOverData(whole, shard::ReductionKind::Sum);
  ret->setOperand(squaresIndex, whole);
}

LogicalResult Sharder::shardTrainStep(func::FuncOp step) {
  Block &body = step.getBody().front();
  Operation *ret = body.getTerminator();
  int lossIndex = -1, squaresIndex = -1;
  SmallVector<std::pair<Value, AddOp>> fresh; // each new gradient, and its accumulation
  for (unsigned i = 0; i < ret->getNumOperands(); ++i) {
    StringRef name = resultName(step, i);
    if (name == "loss")
      lossIndex = i;
    else if (name == "grad_sq")
      squaresIndex = i;
    if (!name.starts_with(kGradPrefix))
      continue;
    Value result = ret->getOperand(i);
    params.push_back({name.drop_front(5).str(), typeOf(result)});
    if (isa<BlockArgument>(result))
      continue; // the loss does not read this parameter
    auto add = result.getDefiningOp<AddOp>();
    if (!add || !isa<BlockArgument>(add.getLhs()))
      return step.emitOpError("--gai-shard: result '")
             << name << "' is not its state plus a new gradient, as --gai-train-step makes it";
    Value g = add.getRhs();
    if (int64_t replicas = replicasOf.lookup(name.drop_front(5)); replicas > 1) {
      if (Operation *def = g.getDefiningOp())
        b.setInsertionPointAfter(def);
      else
        b.setInsertionPointToStart(&body);
      g = sumOverReplicas(g, replicas);
      add.setOperand(1, g);
    }
    fresh.push_back({g, add});
  }
  if (lossIndex < 0 || squaresIndex < 0)
    return step.emitOpError("--gai-shard: expected the results 'loss' and 'grad_sq'");
  // Buckets follow the backward pass: the gradient made first goes first.
  llvm::sort(fresh, [](auto &x, auto &y) {
    Operation *a = x.first.getDefiningOp(), *c = y.first.getDefiningOp();
    return a && c ? a->isBeforeInBlock(c) : (!a && c);
  });
  if (zero) {
    if (failed(reduceScatterGradients(step, fresh, squaresIndex)))
      return failure();
  } else if (shardsData()) {
    bucketAllReduce(fresh);
  }
  if (grid.tp > 1 && !zero)
    rebuildSquares(step, squaresIndex);
  eraseDeadOps(step);
  if (shardsData())
    averageResult(step, lossIndex);
  if (!sortTopologically(&body))
    return step.emitOpError("--gai-shard: the sharded step has a cycle");
  return success();
}

void Sharder::bucketAllReduce(MutableArrayRef<std::pair<Value, AddOp>> fresh) {
  auto flush = [&](MutableArrayRef<std::pair<Value, AddOp>> bucket) {
    if (bucket.empty())
      return;
    Value last = bucket.back().first;
    if (Operation *def = last.getDefiningOp())
      b.setInsertionPointAfter(def);
    else
      b.setInsertionPointToStart(cast<BlockArgument>(last).getOwner());
    if (bucket.size() == 1) {
      bucket[0].second.setOperand(1, averageOverData(bucket[0].first));
      return;
    }
    SmallVector<Value> flats;
    for (auto &[g, add] : bucket)
      flats.push_back(reshape(g, {typeOf(g).getNumElements()}));
    Value reduced = averageOverData(ConcatOp::create(b, flats, /*axis=*/0));
    int64_t offset = 0;
    for (auto &[g, add] : bucket) {
      int64_t count = typeOf(g).getNumElements();
      Value piece = SliceOp::create(b, RankedTensorType::get({count}, typeOf(g).getElementType()),
                                    reduced, b.getDenseI64ArrayAttr({offset}),
                                    b.getDenseI64ArrayAttr({count}));
      add.setOperand(1, reshape(piece, typeOf(g).getShape()));
      offset += count;
    }
  };
  SmallVector<std::pair<Value, AddOp>> bucket;
  int64_t bytes = 0;
  for (auto &entry : fresh) {
    RankedTensorType type = typeOf(entry.first);
    if (!bucket.empty() && type.getElementType() != typeOf(bucket[0].first).getElementType()) {
      flush(bucket);
      bucket.clear();
      bytes = 0;
    }
    bucket.push_back(entry);
    bytes += type.getNumElements() * std::max<int64_t>(type.getElementTypeBitWidth() / 8, 1);
    if (bytes >= bucketBytes) {
      flush(bucket);
      bucket.clear();
      bytes = 0;
    }
  }
  flush(bucket);
}

LogicalResult Sharder::reduceScatterGradients(func::FuncOp step,
                                              MutableArrayRef<std::pair<Value, AddOp>> fresh,
                                              unsigned squaresIndex) {
  Block &body = step.getBody().front();
  Operation *ret = body.getTerminator();
  // The state's new shape: this rank's share of each flattened gradient.
  for (unsigned i = 0; i < ret->getNumOperands(); ++i) {
    if (!resultName(step, i).starts_with(kGradPrefix))
      continue;
    Value result = ret->getOperand(i);
    auto arg = isa<BlockArgument>(result) ? cast<BlockArgument>(result)
                                          : cast<BlockArgument>(result.getDefiningOp<AddOp>().getLhs());
    RankedTensorType whole = typeOf(arg);
    arg.setType(RankedTensorType::get({shareOf(whole.getNumElements())}, whole.getElementType()));
    step.setArgAttr(arg.getArgNumber(), "gai.shard", shardAttr(whole));
  }
  SmallVector<Value> shares;
  for (auto &[g, add] : fresh) {
    b.setInsertionPointAfter(add);
    Value flat = flattenPadded(g);
    auto shareType = RankedTensorType::get({shareOf(typeOf(g).getNumElements())},
                                           typeOf(g).getElementType());
    Value scattered = shard::ReduceScatterOp::create(
        b, shareType, gridRef(), dataAxes(), flat,
        shard::ReductionKindAttr::get(b.getContext(), shard::ReductionKind::Average),
        b.getIndexAttr(0));
    Value accumulated = AddOp::create(b, add.getLhs(), scattered);
    add.getResult().replaceAllUsesWith(accumulated);
  }
  // grad_sq: the squares of every rank's shares, summed over the ranks.
  rebuildSquares(step, squaresIndex);
  eraseDeadOps(step);
  step.setType(FunctionType::get(b.getContext(), body.getArgumentTypes(), ret->getOperandTypes()));
  if (failed(step.verifyBody()))
    return failure();
  return success();
}

void Sharder::buildShardedOptimizer(func::FuncOp old) {
  constexpr unsigned kCount = AdamwScalars::kCount;
  SmallVector<Type> inputs(kCount, RankedTensorType::get({}, b.getF32Type()));
  SmallVector<RankedTensorType> shareTypes;
  for (auto &[name, whole] : params)
    shareTypes.push_back(
        RankedTensorType::get({shareOf(whole.getNumElements())}, whole.getElementType()));
  for (int kind = 0; kind < 3; ++kind)
    inputs.append(shareTypes.begin(), shareTypes.end());
  b.setInsertionPoint(old);
  auto step = func::FuncOp::create(b, old.getSymName(), b.getFunctionType(inputs, {}));
  for (unsigned i = 0; i < old.getNumArguments(); ++i) {
    step.setArgAttr(i, "gai.name", old.getArgAttr(i, "gai.name"));
    if (i >= kCount)
      step.setArgAttr(i, "gai.shard", shardAttr(params[(i - kCount) % params.size()].second));
  }
  old.erase();
  Block *body = step.addEntryBlock();
  b.setInsertionPointToStart(body);
  AdamwScalars scalars = AdamwScalars::fromArguments(body->getArguments());
  SmallVector<Value> updated, moments1, moments2, cleared;
  for (auto [i, entry] : llvm::enumerate(params)) {
    auto &[name, whole] = entry;
    int64_t count = whole.getNumElements();
    Value p = ParamOp::create(b, whole, name);
    Value mine = shard::AllSliceOp::create(b, shareTypes[i], gridRef(), dataAxes(),
                                           flattenPadded(p), b.getIndexAttr(0));
    AdamwUpdate next = buildAdamwUpdate(
        b, scalars, mine, body->getArgument(kCount + i),
        body->getArgument(kCount + params.size() + i),
        body->getArgument(kCount + 2 * params.size() + i), whole.getRank() >= 2);
    int64_t padded = shareOf(count) * grid.dp;
    Value all = shard::AllGatherOp::create(
        b, RankedTensorType::get({padded}, whole.getElementType()), gridRef(), dataAxes(),
        next.param, b.getIndexAttr(0));
    if (padded != count)
      all = SliceOp::create(b, RankedTensorType::get({count}, whole.getElementType()), all,
                            b.getDenseI64ArrayAttr({0}), b.getDenseI64ArrayAttr({count}));
    updated.push_back(reshape(all, whole.getShape()));
    moments1.push_back(next.m);
    moments2.push_back(next.v);
    cleared.push_back(zeros(shareTypes[i]));
  }
  SmallVector<Value> results;
  for (auto *list : {&updated, &moments1, &moments2, &cleared})
    results.append(list->begin(), list->end());
  func::ReturnOp::create(b, results);
  SmallVector<Type> resultTypes(ValueRange(results).getTypes());
  step.setType(b.getFunctionType(inputs, resultTypes));
  const StringRef prefixes[] = {kParamPrefix, kFirstMomentPrefix, kSecondMomentPrefix,
                               kGradPrefix};
  for (unsigned i = 0; i < results.size(); ++i) {
    unsigned kind = i / params.size();
    auto &[name, whole] = params[i % params.size()];
    step.setResultAttr(i, "gai.name", b.getStringAttr(prefixes[kind] + name));
  }
}

void Sharder::buildShardedZeroGrads(func::FuncOp zeroGrads) {
  Operation *ret = zeroGrads.getBody().front().getTerminator();
  b.setInsertionPoint(ret);
  for (auto [i, entry] : llvm::enumerate(params)) {
    RankedTensorType whole = entry.second;
    ret->setOperand(i, zeros(RankedTensorType::get({shareOf(whole.getNumElements())},
                                                    whole.getElementType())));
  }
  eraseDeadOps(zeroGrads);
  zeroGrads.setType(b.getFunctionType({}, ret->getOperandTypes()));
}

} // namespace

namespace mlir::gai {

std::optional<MeshSpec> parseMeshSpec(StringRef text, std::string &error) {
  MeshSpec grid;
  SmallVector<StringRef> parts;
  text.split(parts, ',', -1, /*KeepEmpty=*/false);
  bool seenDp = false, seenTp = false;
  for (StringRef part : parts) {
    auto [name, count] = part.trim().split('=');
    int64_t value = 0;
    bool &seen = name == "dp" ? seenDp : seenTp;
    if ((name != "dp" && name != "tp") || count.getAsInteger(10, value) || value < 1 || seen) {
      error = ("mesh '" + text + "': expected dp=D and/or tp=T, each once, with positive "
               "counts; got '" + part + "'").str();
      return std::nullopt;
    }
    seen = true;
    (name == "dp" ? grid.dp : grid.tp) = value;
  }
  return grid;
}

} // namespace mlir::gai

namespace {

struct ShardPass : mlir::gai::impl::GaiShardBase<ShardPass> {
  using GaiShardBase::GaiShardBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::string error;
    std::optional<MeshSpec> grid = parseMeshSpec(mesh, error);
    if (!grid) {
      module.emitError("--gai-shard: ") << error;
      return signalPassFailure();
    }
    if (zero != 0 && zero != 1) {
      module.emitError("--gai-shard: zero=") << static_cast<int64_t>(zero) << ": expected 0 or 1 (ZeRO-1)";
      return signalPassFailure();
    }
    // A grid of one still gets its collectives (each a copy): the steps a
    // sharded run has, on one device.
    if (failed(Sharder(module, *grid, zero, bucketBytes).run()))
      signalPassFailure();
  }
};

} // namespace
