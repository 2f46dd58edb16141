// The training entries: gradients of a loss over parameters, AdamW, and
// zeroing of the gradients, with everything that persists as named state.
#include "dialects/Gai/GaiOps.h"
#include "dialects/Gai/StateNames.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAITRAINSTEP
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// A parameter: its name and type, in order of first use.
using ParamTypes = llvm::MapVector<StringRef, RankedTensorType>;

class TrainStepBuilder {
public:
  TrainStepBuilder(ModuleOp module, func::FuncOp loss)
      : module(module), loss(loss), b(loss.getLoc(), module.getContext()) {}

  LogicalResult run() {
    loss.walk([&](ParamOp p) { params.insert({p.getName(), p.getType()}); });
    if (params.empty())
      return loss.emitOpError("train step: the loss reads no parameters");
    if (failed(buildTrainStep()))
      return failure();
    buildOptimizerStep();
    buildZeroGrads();
    return success();
  }

private:
  func::FuncOp addFunction(StringRef name, ArrayRef<Type> inputs) {
    b.setInsertionPointToEnd(module.getBody());
    auto func = func::FuncOp::create(b, name, b.getFunctionType(inputs, {}));
    b.setInsertionPointToStart(func.addEntryBlock());
    return func;
  }
  /// Ends `func` with `results`, each named.
  void finish(func::FuncOp func, ArrayRef<std::pair<std::string, Value>> results) {
    SmallVector<Value> values;
    SmallVector<Type> types;
    for (auto &[name, v] : results) {
      values.push_back(v);
      types.push_back(v.getType());
    }
    func::ReturnOp::create(b, values);
    func.setType(b.getFunctionType(func.getArgumentTypes(), types));
    for (auto [i, r] : llvm::enumerate(results))
      func.setResultAttr(i, "gai.name", b.getStringAttr(r.first));
  }
  void nameArgument(func::FuncOp func, unsigned i, const Twine &name) {
    func.setArgAttr(i, "gai.name", b.getStringAttr(name.str()));
  }
  Value zeros(RankedTensorType type) {
    return ConstantOp::create(
        b, DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
  }
  LogicalResult buildTrainStep();
  void scheduleEarly(Operation *from, func::FuncOp step);
  void buildOptimizerStep();
  void buildZeroGrads();

  ModuleOp module;
  func::FuncOp loss;
  ImplicitLocOpBuilder b;
  ParamTypes params;
};

LogicalResult TrainStepBuilder::buildTrainStep() {
  SmallVector<Type> inputs(loss.getArgumentTypes());
  unsigned firstGrad = inputs.size();
  for (auto &[name, type] : params)
    inputs.push_back(type);
  func::FuncOp step = addFunction("train_step", inputs);
  for (unsigned i = 0; i < loss.getNumArguments(); ++i)
    if (auto name = loss.getArgAttrOfType<StringAttr>(i, "gai.name"))
      nameArgument(step, i, name.getValue());
  for (auto [i, entry] : llvm::enumerate(params))
    nameArgument(step, firstGrad + i, kGradPrefix + entry.first);

  Block *body = &step.getBody().front();
  IRMapping mapping;
  for (auto [from, to] : llvm::zip(loss.getArguments(), body->getArguments()))
    mapping.map(from, to);
  SmallVector<Operation *> forward;
  SmallVector<Value> wrt;
  for (Operation &op : loss.getBody().front().without_terminator()) {
    Operation *copy = b.clone(op, mapping);
    forward.push_back(copy);
    if (auto p = dyn_cast<ParamOp>(copy))
      wrt.push_back(p.getResult());
  }
  Value lossValue =
      mapping.lookup(loss.getBody().front().getTerminator()->getOperand(0));
  FailureOr<SmallVector<Value>> grads = buildGradients(b, forward, lossValue, wrt);
  if (failed(grads))
    return failure();
  Operation *lastBackward = body->empty() ? nullptr : &body->back();
  llvm::StringMap<Value> gradOf;
  for (auto [p, g] : llvm::zip(wrt, *grads)) {
    if (!g)
      continue;
    Value &sum = gradOf[cast<ParamOp>(p.getDefiningOp()).getName()];
    sum = sum ? AddOp::create(b, sum, g).getResult() : g;
  }
  SmallVector<std::pair<std::string, Value>> results = {{"loss", lossValue}, {"grad_sq", {}}};
  Value squares;
  for (auto [i, entry] : llvm::enumerate(params)) {
    Value accumulated = body->getArgument(firstGrad + i);
    if (Value g = gradOf.lookup(entry.first))
      accumulated = AddOp::create(b, accumulated, g);
    Value sq = buildSumOfSquares(b, accumulated);
    squares = squares ? AddOp::create(b, squares, sq).getResult() : sq;
    results.push_back({(kGradPrefix + entry.first).str(), accumulated});
  }
  results[1].second = squares;
  finish(step, results);
  scheduleEarly(lastBackward, step);
  return success();
}

/// Moves each op after `from` (the accumulations into grad.<name> and their
/// squares) to just after the op that makes its last operand, in order, so
/// that each gradient dies as soon as it is added to its state instead of
/// living to the end of the step.
void TrainStepBuilder::scheduleEarly(Operation *from, func::FuncOp step) {
  Block &body = step.getBody().front();
  SmallVector<Operation *> late;
  for (Operation *op = from ? from->getNextNode() : &body.front();
       op && op != body.getTerminator(); op = op->getNextNode())
    late.push_back(op);
  for (Operation *op : late) {
    Operation *after = nullptr;
    for (Value operand : op->getOperands())
      if (Operation *def = operand.getDefiningOp())
        if (!after || after->isBeforeInBlock(def))
          after = def;
    if (after)
      op->moveAfter(after);
  }
}

void TrainStepBuilder::buildOptimizerStep() {
  constexpr unsigned kCount = AdamwScalars::kCount;
  SmallVector<Type> inputs(kCount, RankedTensorType::get({}, b.getF32Type()));
  for (int kind = 0; kind < 3; ++kind)
    for (auto &[name, type] : params)
      inputs.push_back(type);
  func::FuncOp step = addFunction("optimizer_step", inputs);
  for (unsigned i = 0; i < kCount; ++i)
    nameArgument(step, i, AdamwScalars::kNames[i]);
  const StringRef prefixes[] = {kGradPrefix, kFirstMomentPrefix, kSecondMomentPrefix};
  for (int kind = 0; kind < 3; ++kind)
    for (auto [i, entry] : llvm::enumerate(params))
      nameArgument(step, kCount + kind * params.size() + i, prefixes[kind] + entry.first);

  Block *body = &step.getBody().front();
  AdamwScalars scalars = AdamwScalars::fromArguments(body->getArguments());
  SmallVector<std::pair<std::string, Value>> updated, moments1, moments2, cleared;
  for (auto [i, entry] : llvm::enumerate(params)) {
    std::string name = entry.first.str();
    RankedTensorType type = entry.second;
    Value g = body->getArgument(kCount + i);
    Value m = body->getArgument(kCount + params.size() + i);
    Value v = body->getArgument(kCount + 2 * params.size() + i);
    Value p = ParamOp::create(b, type, name);
    AdamwUpdate next = buildAdamwUpdate(b, scalars, p, g, m, v, type.getRank() >= 2);
    updated.push_back({(kParamPrefix + name).str(), next.param});
    moments1.push_back({(kFirstMomentPrefix + name).str(), next.m});
    moments2.push_back({(kSecondMomentPrefix + name).str(), next.v});
    cleared.push_back({(kGradPrefix + name).str(), zeros(type)});
  }
  SmallVector<std::pair<std::string, Value>> results;
  for (auto *list : {&updated, &moments1, &moments2, &cleared})
    results.append(list->begin(), list->end());
  finish(step, results);
}

void TrainStepBuilder::buildZeroGrads() {
  func::FuncOp zero = addFunction("zero_grads", {});
  SmallVector<std::pair<std::string, Value>> results;
  for (auto &[name, type] : params)
    results.push_back({(kGradPrefix + name).str(), zeros(type)});
  finish(zero, results);
}

struct TrainStepPass : mlir::gai::impl::GaiTrainStepBase<TrainStepPass> {
  using GaiTrainStepBase::GaiTrainStepBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto loss = module.lookupSymbol<func::FuncOp>(function);
    if (!loss) {
      module.emitError("train step: no loss function @") << function;
      return signalPassFailure();
    }
    auto results = loss.getResultTypes();
    auto lossType = results.size() == 1 ? dyn_cast<RankedTensorType>(results[0])
                                        : RankedTensorType();
    if (!lossType || lossType.getRank() != 0 || !lossType.getElementType().isF32()) {
      loss.emitOpError("train step: the loss function must return one f32 scalar");
      return signalPassFailure();
    }
    if (failed(TrainStepBuilder(module, loss).run()))
      signalPassFailure();
  }
};

} // namespace

namespace mlir::gai {

Value buildSumOfSquares(ImplicitLocOpBuilder &b, Value x) {
  // First along the rows of x's last axis (a kernel row each, in
  // parallel), then over the rows' sums.
  auto type = typeOf(x);
  int64_t count = type.getNumElements();
  int64_t row = type.getRank() > 0 ? type.getShape().back() : 1;
  SmallVector<int64_t> shape = {count};
  if (row >= 64 && count > row)
    shape = {count / row, row};
  Value flat = ReshapeOp::create(b, RankedTensorType::get(shape, type.getElementType()), x);
  if (!type.getElementType().isF32())
    flat = ConvertOp::create(b, RankedTensorType::get(shape, b.getF32Type()), flat);
  Value squares = MulOp::create(b, flat, flat);
  if (shape.size() == 1)
    return ReduceOp::create(b, ReduceKind::Sum, squares, ArrayRef<int64_t>{0});
  // Kept dims: [R, 1] is R kernel rows, where [R] would be one.
  Value rows = ReduceOp::create(b, RankedTensorType::get({shape[0], 1}, b.getF32Type()),
                                ReduceKind::Sum, squares, ArrayRef<int64_t>{1},
                                /*keep_dims=*/true);
  Value column = ReshapeOp::create(b, RankedTensorType::get({shape[0]}, b.getF32Type()), rows);
  return ReduceOp::create(b, ReduceKind::Sum, column, ArrayRef<int64_t>{0});
}

AdamwScalars AdamwScalars::fromArguments(ValueRange args) {
  return {args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7]};
}

AdamwUpdate buildAdamwUpdate(ImplicitLocOpBuilder &b, const AdamwScalars &s, Value p,
                             Value g, Value m, Value v, bool decay) {
  auto scalar = [&](double value) -> Value {
    auto type = RankedTensorType::get({}, b.getF32Type());
    return ConstantOp::create(b, DenseElementsAttr::get(type, b.getF32FloatAttr(value)));
  };
  Value one = scalar(1.0);
  Value stepSize = DivOp::create(b, s.lr, s.correction1);
  g = MulOp::create(b, g, s.gradScale);
  // PyTorch's order: m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g²,
  // p = p·(1 - lr·wd) - (lr / c1)·m / (sqrt(v) / sqrt(c2) + eps).
  Value m2 = AddOp::create(b, MulOp::create(b, m, s.beta1),
                           MulOp::create(b, g, SubOp::create(b, one, s.beta1)));
  Value v2 = AddOp::create(b, MulOp::create(b, v, s.beta2),
                           MulOp::create(b, MulOp::create(b, g, g),
                                         SubOp::create(b, one, s.beta2)));
  Value denom =
      AddOp::create(b, DivOp::create(b, SqrtOp::create(b, v2), s.correction2Sqrt), s.eps);
  Value decayed = p;
  if (decay) {
    Value keep = SubOp::create(b, one, MulOp::create(b, s.lr, s.decay)); // 1 - lr·wd
    decayed = MulOp::create(b, p, keep);
  }
  Value p2 =
      SubOp::create(b, decayed, MulOp::create(b, stepSize, DivOp::create(b, m2, denom)));
  return {p2, m2, v2};
}

} // namespace mlir::gai
