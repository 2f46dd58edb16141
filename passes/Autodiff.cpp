// Reverse-mode differentiation of a gai function: a sweep over its ops, last
// first, through each op's VJP rule (VJPOpInterface, dialects/Gai/GaiVJP.cpp).
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIAUTODIFF
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// The reverse sweep: the adjoint of each value, and each op's VJP rule
/// (VJPOpInterface) run last op first.
class Differentiator : public VJPSweep {
public:
  explicit Differentiator(ImplicitLocOpBuilder &b) : b(b) {}

  LogicalResult backward(ArrayRef<Operation *> ops) override {
    for (Operation *op : llvm::reverse(ops))
      if (failed(backwardOp(op)))
        return failure();
    return success();
  }
  void accumulate(Value v, Value g) override {
    if (partialInput && v == partialInput) // a rank's share of the sum: add them up
      g = sumOverTensorAxis(g, partialGrid);
    Value &slot = adjoint[v];
    if (!slot)
      slot = g;
    else if (Value merged = mergeZeroPadded(slot, g))
      slot = merged;
    else
      slot = AddOp::create(b, slot, g).getResult();
  }
  Value adjointOf(Value v) const { return adjoint.lookup(v); }

private:
  LogicalResult backwardOp(Operation *op) {
    // Every user has run: the result's gradient is complete, each rank's
    // share of it summed over tp once.
    if (auto grid = op->getAttrOfType<FlatSymbolRefAttr>(kPartialResultGrad))
      if (Value &slot = adjoint[op->getResult(0)])
        slot = sumOverTensorAxis(slot, grid);
    SmallVector<Value> cotangents;
    for (Value result : op->getResults())
      cotangents.push_back(adjointOf(result));
    if (llvm::all_of(cotangents, [](Value g) { return !g; }) || op->hasAttr(kNoGrad))
      return success(); // does not reach the output, or is a constant for it
    if (auto sum = dyn_cast<shard::AllReduceOp>(op)) {
      // A sum over ranks whose result every rank uses alike: each rank's
      // input gets the whole cotangent.
      if (sum.getReduction() != shard::ReductionKind::Sum)
        return op->emitOpError("has no VJP rule yet for a reduction other than sum");
      accumulate(sum.getInput(), cotangents[0]);
      return success();
    }
    if (auto gather = dyn_cast<shard::AllGatherOp>(op)) {
      // Every rank uses the gathered whole alike: its own part's cotangent
      // is its slice of the whole's.
      accumulate(gather.getInput(),
                 shard::AllSliceOp::create(b, gather.getInput().getType(), gather.getGridAttr(),
                                           gather.getGridAxesAttr(), cotangents[0],
                                           gather.getGatherAxisAttr()));
      return success();
    }
    auto vjp = dyn_cast<VJPOpInterface>(op);
    if (!vjp)
      return op->emitOpError("has no VJP rule yet");
    auto grid = op->getAttrOfType<FlatSymbolRefAttr>(kPartialInputGrad);
    partialInput = grid ? op->getOperand(0) : Value();
    partialGrid = grid;
    LogicalResult done = vjp.vjp(b, cotangents, *this);
    partialInput = Value();
    return done;
  }

  /// a + c for two concats along one axis whose parts other than zero
  /// constants do not overlap (the gradients of slices of one tensor, as
  /// q, k and v of a fused projection): one concat of those parts, with
  /// zeros only where neither has one. Null when they do not fit.
  Value mergeZeroPadded(Value a, Value c) {
    auto left = a.getDefiningOp<ConcatOp>(), right = c.getDefiningOp<ConcatOp>();
    if (!left || !right || left.getAxis() != right.getAxis() || a.getType() != c.getType())
      return {};
    auto axis = static_cast<int64_t>(left.getAxis());
    struct Part {
      int64_t start, size;
      Value value;
    };
    SmallVector<Part> parts;
    for (ConcatOp concat : {left, right}) {
      int64_t at = 0;
      for (Value input : concat.getInputs()) {
        int64_t size = typeOf(input).getDimSize(axis);
        if (!isZeros(input))
          parts.push_back({at, size, input});
        at += size;
      }
    }
    llvm::sort(parts, [](const Part &x, const Part &y) { return x.start < y.start; });
    SmallVector<Value> inputs;
    int64_t at = 0;
    auto type = typeOf(a);
    for (const Part &part : parts) {
      if (part.start < at)
        return {}; // overlapping: a real sum
      if (part.start > at)
        inputs.push_back(zerosAlong(type, axis, part.start - at));
      inputs.push_back(part.value);
      at = part.start + part.size;
    }
    if (at < type.getDimSize(axis))
      inputs.push_back(zerosAlong(type, axis, type.getDimSize(axis) - at));
    return inputs.size() == 1 ? inputs[0] : ConcatOp::create(b, inputs, axis).getResult();
  }
  static bool isZeros(Value v) {
    auto constant = v.getDefiningOp<ConstantOp>();
    auto dense = constant ? dyn_cast<DenseElementsAttr>(constant.getValue()) : nullptr;
    return dense && dense.isSplat() && isa<FloatType>(dense.getElementType()) &&
           dense.getSplatValue<APFloat>().isZero();
  }
  Value zerosAlong(RankedTensorType like, int64_t axis, int64_t size) {
    SmallVector<int64_t> shape(like.getShape());
    shape[axis] = size;
    auto type = RankedTensorType::get(shape, like.getElementType());
    return ConstantOp::create(
        b, DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
  }

  Value sumOverTensorAxis(Value g, FlatSymbolRefAttr grid) {
    return shard::AllReduceOp::create(
        b, g.getType(), grid, b.getDenseI16ArrayAttr({kTensorAxis}), g,
        shard::ReductionKindAttr::get(b.getContext(), shard::ReductionKind::Sum));
  }
  ImplicitLocOpBuilder &b;
  DenseMap<Value, Value> adjoint;
  // While a column-parallel matmul's rule runs: its lhs and the grid.
  Value partialInput;
  FlatSymbolRefAttr partialGrid;
};

} // namespace

FailureOr<SmallVector<Value>>
mlir::gai::buildGradients(ImplicitLocOpBuilder &b, ArrayRef<Operation *> forward,
                          Value loss, ArrayRef<Value> wrt) {
  auto lossType = typeOf(loss);
  Differentiator diff(b);
  diff.accumulate(loss, ConstantOp::create(
                            b, DenseElementsAttr::get(
                                   lossType, b.getFloatAttr(lossType.getElementType(), 1.0))));
  if (failed(diff.backward(forward)))
    return failure();
  SmallVector<Value> grads;
  for (Value v : wrt)
    grads.push_back(diff.adjointOf(v));
  return grads;
}

namespace {

struct AutodiffPass : mlir::gai::impl::GaiAutodiffBase<AutodiffPass> {
  using GaiAutodiffBase::GaiAutodiffBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>(function);
    if (!func) {
      module.emitError("autodiff: no function @") << function;
      return signalPassFailure();
    }
    auto results = func.getResultTypes();
    auto lossType = results.empty() ? RankedTensorType()
                                    : dyn_cast<RankedTensorType>(results[0]);
    if (!lossType || lossType.getNumElements() != 1 ||
        !isa<FloatType>(lossType.getElementType())) {
      func.emitOpError("autodiff: the first result must be a scalar float loss");
      return signalPassFailure();
    }

    // @<f>_grad(args) -> (loss, d loss / d each float argument).
    SmallVector<Type> gradResults = {lossType};
    SmallVector<Value> wrt;
    OpBuilder builder(module.getContext());
    builder.setInsertionPointAfter(func);
    auto grad = func::FuncOp::create(builder, func.getLoc(), function + "_grad",
                                     builder.getFunctionType(func.getArgumentTypes(), {}));
    Block *entry = grad.addEntryBlock();
    for (BlockArgument arg : entry->getArguments())
      if (isa<FloatType>(typeOf(arg).getElementType())) {
        wrt.push_back(arg);
        gradResults.push_back(arg.getType());
      }
    grad.setType(builder.getFunctionType(func.getArgumentTypes(), gradResults));
    ImplicitLocOpBuilder b(func.getLoc(), module.getContext());
    b.setInsertionPointToStart(entry);
    IRMapping mapping;
    for (auto [from, to] : llvm::zip(func.getArguments(), entry->getArguments()))
      mapping.map(from, to);
    SmallVector<Operation *> forward;
    for (Operation &op : func.getBody().front().without_terminator())
      forward.push_back(b.clone(op, mapping));
    auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
    Value loss = mapping.lookup(ret.getOperand(0));
    FailureOr<SmallVector<Value>> grads = buildGradients(b, forward, loss, wrt);
    if (failed(grads))
      return signalPassFailure();
    SmallVector<Value> outputs = {loss};
    for (auto [arg, g] : llvm::zip(wrt, *grads))
      outputs.push_back(g ? g : zerosLike(b, arg));
    func::ReturnOp::create(b, outputs);
  }
};

} // namespace

Value mlir::gai::zerosLike(ImplicitLocOpBuilder &b, Value like) {
  auto type = typeOf(like);
  return ConstantOp::create(
      b, DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
}
