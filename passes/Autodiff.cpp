// Reverse-mode differentiation of a gai function: one VJP rule per op.
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>

namespace mlir::gai {
#define GEN_PASS_DEF_GAIAUTODIFF
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

class Differentiator {
public:
  explicit Differentiator(ImplicitLocOpBuilder &b) : b(b) {}
  /// Runs the VJPs of `ops` (in program order) in reverse.
  LogicalResult backwardAll(ArrayRef<Operation *> ops) {
    for (Operation *op : llvm::reverse(ops))
      if (failed(backward(op)))
        return failure();
    return success();
  }

  /// Adds `g` to the adjoint of `v`; `g` has `v`'s shape.
  void accumulate(Value v, Value g) {
    Value &slot = adjoint[v];
    slot = slot ? AddOp::create(b, slot, g).getResult() : g;
  }
  Value adjointOf(Value v) const { return adjoint.lookup(v); }
  LogicalResult backward(Operation *op);

private:
  Value splat(RankedTensorType type, double value) {
    auto scalar = RankedTensorType::get({}, type.getElementType());
    return ConstantOp::create(
        b, DenseElementsAttr::get(scalar, b.getFloatAttr(type.getElementType(), value)));
  }
  /// `g` summed over the dimensions that broadcasting added to `to`.
  Value unbroadcast(Value g, Value to);
  /// `g` (of a reduction's keep-dims shape) broadcast back to `like`.
  Value broadcastTo(Value g, Value like) {
    return AddOp::create(b, MulOp::create(b, like, splat(typeOf(like), 0.0)), g);
  }
  Value sum(Value x, int64_t axis) {
    return ReduceOp::create(b, ReduceKind::Sum, x, ArrayRef<int64_t>{axis}, true);
  }
  Value mul(Value x, Value y) { return MulOp::create(b, x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, x, y); }
  Value matmul(Value x, Value y, bool tx, bool ty) {
    return MatmulOp::create(b, x, y, tx, ty);
  }
  /// flash_attention written out as the naive ops it stands for; the ops
  /// made are appended to `ops`.
  Value expandAttention(FlashAttentionOp fa, SmallVectorImpl<Operation *> &ops);

  ImplicitLocOpBuilder &b;
  DenseMap<Value, Value> adjoint;
};

Value Differentiator::unbroadcast(Value g, Value to) {
  ArrayRef<int64_t> gs = typeOf(g).getShape(), ts = typeOf(to).getShape();
  if (gs == ts)
    return g;
  int64_t lead = static_cast<int64_t>(gs.size() - ts.size());
  for (int64_t d = 0; d < static_cast<int64_t>(gs.size()); ++d) {
    bool added = d < lead || (ts[d - lead] == 1 && gs[d] != 1);
    if (added)
      g = sum(g, d);
  }
  return ReshapeOp::create(b, typeOf(to), g);
}

Value Differentiator::expandAttention(FlashAttentionOp fa,
                                      SmallVectorImpl<Operation *> &ops) {
  auto record = [&](Value v) {
    ops.push_back(v.getDefiningOp());
    return v;
  };
  Value q = fa.getQuery(), k = fa.getKey(), v = fa.getValue();
  auto qType = typeOf(q);
  Type elt = qType.getElementType();
  int64_t batch = qType.getDimSize(0), heads = qType.getDimSize(1);
  int64_t queries = qType.getDimSize(2), keys = typeOf(k).getDimSize(2);
  auto groups = static_cast<int64_t>(fa.getKvGroups());
  if (groups > 1) {
    k = record(RepeatOp::create(b, k, 1, groups));
    v = record(RepeatOp::create(b, v, 1, groups));
  }
  auto scalar = [&](double x) {
    return record(ConstantOp::create(
        b, DenseElementsAttr::get(RankedTensorType::get({}, elt), b.getFloatAttr(elt, x))));
  };
  Value s = record(matmul(q, k, false, true));
  s = record(mul(s, scalar(fa.getScale().convertToDouble())));
  if (double cap = fa.getSoftcap().convertToDouble(); cap > 0) {
    Value c = scalar(cap);
    s = record(mul(record(TanhOp::create(b, record(DivOp::create(b, s, c)))), c));
  }
  auto window = static_cast<int64_t>(fa.getWindow());
  Value mask;
  if (Value positions = fa.getQueryPositions())
    mask = record(PositionMaskOp::create(
        b, RankedTensorType::get({batch, 1, queries, keys}, b.getI1Type()), positions,
        window));
  else if (fa.getCausal())
    mask = record(CausalMaskOp::create(
        b, RankedTensorType::get({queries, keys}, b.getI1Type()), window));
  if (mask)
    s = record(SelectOp::create(b, mask, s, scalar(-INFINITY)));
  Value p = record(SoftmaxOp::create(b, s, 3));
  (void)heads;
  return record(MatmulOp::create(b, p, v));
}

LogicalResult Differentiator::backward(Operation *op) {
  if (auto topk = dyn_cast<TopKOp>(op)) {
    // The values' adjoint goes back to the entries they were taken from.
    Value g = adjointOf(topk.getValues());
    if (!g)
      return success();
    auto gType = typeOf(g);
    SmallVector<int64_t> hotShape(gType.getShape());
    hotShape.push_back(typeOf(topk.getInput()).getShape().back());
    Value hot = OneHotOp::create(
        b, RankedTensorType::get(hotShape, gType.getElementType()),
        topk.getIndices(), hotShape.back());
    SmallVector<int64_t> column(gType.getShape());
    column.push_back(1);
    Value spread = mul(hot, ReshapeOp::create(
                                b, RankedTensorType::get(column, gType.getElementType()), g));
    Value gx = ReduceOp::create(b, ReduceKind::Sum, spread,
                                ArrayRef<int64_t>{gType.getRank() - 1});
    accumulate(topk.getInput(), gx);
    return success();
  }
  if (op->getNumResults() != 1)
    return op->emitOpError("has no VJP rule yet");
  Value y = op->getResult(0);
  Value g = adjointOf(y);
  if (!g)
    return success(); // does not reach the output
  if (auto e = dyn_cast<EmbeddingOp>(op)) {
    // Rows scatter-added back into the table: one_hot(ids)ᵀ · g.
    Value table = e.getTable();
    auto tableType = typeOf(table);
    int64_t vocab = tableType.getDimSize(0), d = tableType.getDimSize(1);
    int64_t n = typeOf(e.getIndices()).getNumElements();
    Type elt = tableType.getElementType();
    Value ids = ReshapeOp::create(
        b, RankedTensorType::get({n}, typeOf(e.getIndices()).getElementType()),
        e.getIndices());
    Value hot = OneHotOp::create(b, RankedTensorType::get({n, vocab}, elt), ids, vocab);
    Value rows = ReshapeOp::create(b, RankedTensorType::get({n, d}, elt), g);
    accumulate(table, matmul(hot, rows, true, false));
    return success();
  }
  if (auto ce = dyn_cast<CrossEntropyOp>(op)) {
    accumulate(ce.getLogits(),
               CrossEntropyGradOp::create(b, typeOf(ce.getLogits()), ce.getLogits(),
                                          ce.getLabels(), g, ce.getIgnoreIndexAttr(),
                                          ce.getReductionAttr()));
    return success();
  }
  if (auto fa = dyn_cast<FlashAttentionOp>(op)) {
    // Recomputes the probabilities, then differentiates the naive form.
    SmallVector<Operation *> ops;
    Value out = expandAttention(fa, ops);
    accumulate(out, g);
    return backwardAll(ops);
  }
  if (auto c = dyn_cast<ConcatOp>(op)) {
    auto axis = static_cast<int64_t>(c.getAxis());
    int64_t offset = 0;
    for (Value part : c.getInputs()) {
      SmallVector<int64_t> offsets(typeOf(g).getRank(), 0);
      offsets[axis] = offset;
      accumulate(part, SliceOp::create(b, g, offsets, typeOf(part).getShape()));
      offset += typeOf(part).getDimSize(axis);
    }
    return success();
  }
  if (isa<ParamOp, ConstantOp, IotaOp, CausalMaskOp, PositionMaskOp, OneHotOp>(op))
    return success(); // constant in the inputs that can carry a gradient
  if (auto sel = dyn_cast<SelectOp>(op)) {
    Value zero = splat(typeOf(g), 0.0);
    accumulate(sel.getOnTrue(),
               unbroadcast(SelectOp::create(b, sel.getCondition(), g, zero), sel.getOnTrue()));
    accumulate(sel.getOnFalse(),
               unbroadcast(SelectOp::create(b, sel.getCondition(), zero, g), sel.getOnFalse()));
    return success();
  }
  if (auto c = dyn_cast<ConvertOp>(op)) {
    if (isa<FloatType>(typeOf(c.getInput()).getElementType()))
      accumulate(c.getInput(), ConvertOp::create(b, typeOf(c.getInput()), g));
    return success();
  }
  if (auto rope = dyn_cast<RopeOp>(op)) {
    // A rotation: its transpose rotates by the opposite angle.
    Value positions = rope.getPositions();
    Type i32 = typeOf(positions).getElementType();
    Value zero = ConstantOp::create(
        b, DenseElementsAttr::get(RankedTensorType::get({}, i32), b.getIntegerAttr(i32, 0)));
    Value negated = SubOp::create(b, zero, positions);
    accumulate(rope.getInput(),
               RopeOp::create(b, g, negated, rope.getThetaAttr(), rope.getStyleAttr()));
    return success();
  }
  if (auto slice = dyn_cast<SliceOp>(op)) {
    // The gradient padded with zeros back to the input's shape.
    Value x = slice.getInput();
    ArrayRef<int64_t> xs = typeOf(x).getShape();
    Value padded = g;
    for (int64_t d = 0; d < static_cast<int64_t>(xs.size()); ++d) {
      int64_t before = slice.getOffsets()[d];
      int64_t after = xs[d] - before - slice.getSizes()[d];
      SmallVector<Value> parts;
      auto zeros = [&](int64_t n) {
        SmallVector<int64_t> shape(typeOf(padded).getShape());
        shape[d] = n;
        auto type = RankedTensorType::get(shape, typeOf(padded).getElementType());
        return ConstantOp::create(
            b, DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
      };
      if (before > 0)
        parts.push_back(zeros(before));
      parts.push_back(padded);
      if (after > 0)
        parts.push_back(zeros(after));
      if (parts.size() > 1)
        padded = ConcatOp::create(b, parts, d);
    }
    accumulate(x, padded);
    return success();
  }
  if (auto rep = dyn_cast<RepeatOp>(op)) {
    // [.., n·times, ..] -> [.., n, times, ..], summed over the copies.
    Value x = rep.getInput();
    auto axis = static_cast<int64_t>(rep.getAxis());
    auto times = static_cast<int64_t>(rep.getTimes());
    SmallVector<int64_t> split(typeOf(x).getShape());
    split.insert(split.begin() + axis + 1, times);
    Value copies = ReshapeOp::create(
        b, RankedTensorType::get(split, typeOf(g).getElementType()), g);
    accumulate(x, ReshapeOp::create(b, typeOf(x), sum(copies, axis + 1)));
    return success();
  }
  if (auto add = dyn_cast<AddOp>(op)) {
    accumulate(add.getLhs(), unbroadcast(g, add.getLhs()));
    accumulate(add.getRhs(), unbroadcast(g, add.getRhs()));
    return success();
  }
  if (auto s = dyn_cast<SubOp>(op)) {
    accumulate(s.getLhs(), unbroadcast(g, s.getLhs()));
    accumulate(s.getRhs(), unbroadcast(NegOp::create(b, g), s.getRhs()));
    return success();
  }
  if (auto m = dyn_cast<MulOp>(op)) {
    accumulate(m.getLhs(), unbroadcast(mul(g, m.getRhs()), m.getLhs()));
    accumulate(m.getRhs(), unbroadcast(mul(g, m.getLhs()), m.getRhs()));
    return success();
  }
  if (auto d = dyn_cast<DivOp>(op)) {
    accumulate(d.getLhs(), unbroadcast(DivOp::create(b, g, d.getRhs()), d.getLhs()));
    Value gy = NegOp::create(b, DivOp::create(b, mul(g, y), d.getRhs()));
    accumulate(d.getRhs(), unbroadcast(gy, d.getRhs()));
    return success();
  }
  if (op->getNumOperands() == 1 &&
      isa<NegOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp, SigmoidOp,
          SiluOp>(op)) {
    Value x = op->getOperand(0);
    auto type = typeOf(x);
    Value gx;
    if (isa<NegOp>(op))
      gx = NegOp::create(b, g);
    else if (isa<ExpOp>(op))
      gx = mul(g, y);
    else if (isa<LogOp>(op))
      gx = DivOp::create(b, g, x);
    else if (isa<SqrtOp>(op))
      gx = DivOp::create(b, mul(g, splat(type, 0.5)), y);
    else if (isa<RsqrtOp>(op)) // d x^-1/2 = -x^-3/2 / 2
      gx = mul(g, mul(mul(y, mul(y, y)), splat(type, -0.5)));
    else if (isa<ReciprocalOp>(op))
      gx = NegOp::create(b, mul(g, mul(y, y)));
    else if (isa<TanhOp>(op))
      gx = mul(g, sub(splat(type, 1.0), mul(y, y)));
    else if (isa<SigmoidOp>(op))
      gx = mul(g, mul(y, sub(splat(type, 1.0), y)));
    else { // silu: s (1 + x (1 - s))
      Value s = SigmoidOp::create(b, x);
      Value inner = AddOp::create(b, splat(type, 1.0), mul(x, sub(splat(type, 1.0), s)));
      gx = mul(g, mul(s, inner));
    }
    accumulate(x, gx);
    return success();
  }
  if (auto m = dyn_cast<MatmulOp>(op)) {
    Value a = m.getLhs(), w = m.getRhs();
    bool ta = m.getTransposeLhs(), tw = m.getTransposeRhs();
    // C = op(A)·op(W); each case keeps the operand's stored layout.
    Value ga = !ta ? matmul(g, w, false, !tw) : matmul(w, g, tw, true);
    Value gw = !tw ? matmul(a, g, !ta, false) : matmul(g, a, true, ta);
    accumulate(a, unbroadcast(ga, a));
    accumulate(w, unbroadcast(gw, w));
    return success();
  }
  if (auto r = dyn_cast<ReduceOp>(op)) {
    if (r.getKind() != ReduceKind::Sum && r.getKind() != ReduceKind::Mean)
      return op->emitOpError("has no VJP rule yet for max and min");
    Value x = r.getInput();
    ArrayRef<int64_t> xs = typeOf(x).getShape();
    SmallVector<int64_t> kept(xs.begin(), xs.end());
    int64_t count = 1;
    for (int64_t axis : r.getAxes()) {
      kept[axis] = 1;
      count *= xs[axis];
    }
    Value gk = ReshapeOp::create(
        b, RankedTensorType::get(kept, typeOf(g).getElementType()), g);
    if (r.getKind() == ReduceKind::Mean)
      gk = mul(gk, splat(typeOf(gk), 1.0 / static_cast<double>(count)));
    accumulate(x, broadcastTo(gk, x));
    return success();
  }
  if (auto s = dyn_cast<SoftmaxOp>(op)) {
    auto axis = static_cast<int64_t>(s.getAxis());
    accumulate(s.getInput(), mul(y, sub(g, sum(mul(g, y), axis))));
    return success();
  }
  if (auto r = dyn_cast<ReshapeOp>(op)) {
    accumulate(r.getInput(), ReshapeOp::create(b, typeOf(r.getInput()), g));
    return success();
  }
  if (auto t = dyn_cast<TransposeOp>(op)) {
    ArrayRef<int64_t> perm = t.getPermutation();
    SmallVector<int64_t> inverse(perm.size());
    for (auto [i, p] : llvm::enumerate(perm))
      inverse[p] = static_cast<int64_t>(i);
    accumulate(t.getInput(), TransposeOp::create(b, g, inverse));
    return success();
  }
  if (auto gelu = dyn_cast<GeluOp>(op)) {
    if (gelu.getApproximation() != GeluApproximation::Tanh)
      return op->emitOpError("has no VJP rule yet for the exact (erf) form");
    // y = x/2 (1 + tanh(u)), u = c (x + a x³): y' = (1 + t)/2 + x/2 (1 - t²) u'.
    Value x = gelu.getInput();
    auto type = typeOf(x);
    double c = std::sqrt(2.0 / M_PI), a = 0.044715;
    Value x2 = mul(x, x);
    Value u = mul(splat(type, c), AddOp::create(b, x, mul(splat(type, a), mul(x2, x))));
    Value t = TanhOp::create(b, u);
    Value du = mul(splat(type, c), AddOp::create(b, splat(type, 1.0), mul(splat(type, 3 * a), x2)));
    Value half = splat(type, 0.5);
    Value dy = AddOp::create(
        b, mul(half, AddOp::create(b, splat(type, 1.0), t)),
        mul(mul(half, x), mul(sub(splat(type, 1.0), mul(t, t)), du)));
    accumulate(x, mul(g, dy));
    return success();
  }
  if (auto n = dyn_cast<LayerNormOp>(op)) {
    // x̂ = (x - μ) r, y = x̂ w + b: dx = r (g w - mean(g w) - x̂ mean(g w x̂)).
    Value x = n.getInput(), w = n.getWeight();
    auto type = typeOf(x);
    int64_t last = type.getRank() - 1, d = type.getShape().back();
    Value inv = splat(type, 1.0 / d);
    Value centred = sub(x, mul(sum(x, last), inv));
    Value var = mul(sum(mul(centred, centred), last), inv);
    Value r = RsqrtOp::create(
        b, AddOp::create(b, var, splat(type, n.getEpsilon().convertToDouble())));
    Value xhat = mul(centred, r);
    Value gw = mul(g, w);
    Value gx = mul(r, sub(sub(gw, mul(sum(gw, last), inv)),
                          mul(xhat, mul(sum(mul(gw, xhat), last), inv))));
    accumulate(x, gx);
    accumulate(w, unbroadcast(mul(g, xhat), w));
    if (Value bias = n.getBias())
      accumulate(bias, unbroadcast(g, bias));
    return success();
  }
  if (auto n = dyn_cast<RmsNormOp>(op)) {
    // y = x·r·s with r = rsqrt(mean(x²) + eps) per row and s = w or 1 + w:
    // dx = r·(g·s) - x·r³·mean(g·s·x), dw = Σ_rows g·x·r.
    Value x = n.getInput(), w = n.getWeight();
    auto type = typeOf(x);
    int64_t last = type.getRank() - 1, d = type.getShape().back();
    Value meanSq = mul(sum(mul(x, x), last), splat(type, 1.0 / d));
    Value r = RsqrtOp::create(
        b, AddOp::create(b, meanSq, splat(type, n.getEpsilon().convertToDouble())));
    Value scale = n.getUnitOffset()
                      ? AddOp::create(b, w, splat(typeOf(w), 1.0)).getResult()
                      : w;
    Value gs = mul(g, scale);
    Value dot = mul(sum(mul(gs, x), last), splat(type, 1.0 / d));
    Value gx = sub(mul(gs, r), mul(mul(x, mul(r, mul(r, r))), dot));
    accumulate(x, gx);
    accumulate(w, unbroadcast(mul(g, mul(x, r)), w));
    return success();
  }
  return op->emitOpError("has no VJP rule yet");
}

} // namespace

FailureOr<SmallVector<Value>>
mlir::gai::buildGradients(ImplicitLocOpBuilder &b, ArrayRef<Operation *> forward,
                          Value loss, ArrayRef<Value> wrt) {
  auto lossType = typeOf(loss);
  Differentiator diff(b);
  diff.accumulate(loss, ConstantOp::create(
                            b, DenseElementsAttr::get(
                                   lossType, b.getFloatAttr(lossType.getElementType(), 1.0))));
  if (failed(diff.backwardAll(forward)))
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
