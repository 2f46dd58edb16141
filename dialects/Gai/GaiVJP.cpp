// The VJP rule of each differentiable gai op (VJPOpInterface).
#include "dialects/Gai/GaiOps.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gai;

namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

Value splat(ImplicitLocOpBuilder &b, RankedTensorType type, double value) {
  auto scalar = RankedTensorType::get({}, type.getElementType());
  return ConstantOp::create(
      b, DenseElementsAttr::get(scalar,
                                b.getFloatAttr(type.getElementType(), value)));
}
Value sum(ImplicitLocOpBuilder &b, Value x, int64_t axis) {
  return ReduceOp::create(b, ReduceKind::Sum, x, ArrayRef<int64_t>{axis}, true);
}
Value mul(ImplicitLocOpBuilder &b, Value x, Value y) {
  return MulOp::create(b, x, y);
}
Value sub(ImplicitLocOpBuilder &b, Value x, Value y) {
  return SubOp::create(b, x, y);
}
Value matmul(ImplicitLocOpBuilder &b, Value x, Value y, bool tx, bool ty) {
  return MatmulOp::create(b, x, y, tx, ty);
}

/// `g` summed over the dimensions that broadcasting added to `to`: one
/// reduction a run of adjacent dimensions (a norm weight's gradient sums
/// batch and sequence at once, one pass over the rows instead of two). The
/// last axis stays a reduction of its own: summed with the axes before it
/// there would be no columns left to spread the sum over, and alone it is a
/// row reduction that fusion takes.
Value unbroadcast(ImplicitLocOpBuilder &b, Value g, Value to) {
  ArrayRef<int64_t> gs = typeOf(g).getShape(), ts = typeOf(to).getShape();
  if (gs == ts)
    return g;
  const auto rank = static_cast<int64_t>(gs.size());
  int64_t lead = rank - static_cast<int64_t>(ts.size());
  auto added = [&](int64_t d) { return d < lead || (ts[d - lead] == 1 && gs[d] != 1); };
  for (int64_t d = 0; d < rank; ++d) {
    if (!added(d))
      continue;
    SmallVector<int64_t> run;
    for (; d < rank - 1 && added(d); ++d)
      run.push_back(d);
    if (!run.empty())
      g = ReduceOp::create(b, ReduceKind::Sum, g, run, true);
    if (d == rank - 1 && added(d))
      g = ReduceOp::create(b, ReduceKind::Sum, g, ArrayRef<int64_t>{d}, true);
  }
  return ReshapeOp::create(b, typeOf(to), g);
}

/// `g` (of a reduction's keep-dims shape) broadcast back to `like`.
Value broadcastTo(ImplicitLocOpBuilder &b, Value g, Value like) {
  return AddOp::create(b, MulOp::create(b, like, splat(b, typeOf(like), 0.0)),
                       g);
}

/// The rule of a unary op y = f(x) whose derivative `dy` builds from x and y.
template <typename Derivative>
LogicalResult unaryVJP(Operation *op, ArrayRef<Value> cotangents,
                       VJPSweep &sweep, Derivative dy) {
  Value x = op->getOperand(0);
  sweep.accumulate(x, dy(x, op->getResult(0), cotangents[0]));
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Embedding and matmul
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::vjp(ImplicitLocOpBuilder &b,
                               ArrayRef<Value> cotangents, VJPSweep &sweep) {
  // Rows scatter-added back into the table (a table of vocabulary shards
  // gets the gradient of its own rows).
  sweep.accumulate(getTable(),
                   EmbeddingGradOp::create(b, cotangents[0], getIndices(),
                                           typeOf(getTable()).getDimSize(0),
                                           getVocabShards()));
  return success();
}

LogicalResult MatmulOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                            VJPSweep &sweep) {
  Value g = cotangents[0];
  Value a = getLhs(), w = getRhs();
  bool ta = getTransposeLhs(), tw = getTransposeRhs();
  // C = op(A)·op(W); each case keeps the operand's stored layout.
  Value ga = !ta ? matmul(b, g, w, false, !tw) : matmul(b, w, g, tw, true);
  Value gw;
  auto aType = typeOf(a), wType = typeOf(w);
  if (!ta && wType.getRank() == 2 && aType.getRank() > 2) {
    // A weight shared by every row of a batch: its gradient is one GEMM over
    // all rows, [rows·M, K]ᵀ·[rows·M, N], not a product per batch entry
    // summed afterwards (which holds a [rows, K, N] temporary).
    int64_t k = aType.getShape().back(), n = typeOf(g).getShape().back();
    int64_t rows = aType.getNumElements() / k;
    Value a2 = ReshapeOp::create(b, RankedTensorType::get({rows, k}, aType.getElementType()), a);
    Value g2 = ReshapeOp::create(
        b, RankedTensorType::get({rows, n}, typeOf(g).getElementType()), g);
    gw = !tw ? matmul(b, a2, g2, true, false) : matmul(b, g2, a2, true, false);
  } else {
    gw = !tw ? matmul(b, a, g, !ta, false) : matmul(b, g, a, true, ta);
  }
  sweep.accumulate(a, unbroadcast(b, ga, a));
  sweep.accumulate(w, unbroadcast(b, gw, w));
  return success();
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

LogicalResult AddOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  Value g = cotangents[0];
  sweep.accumulate(getLhs(), unbroadcast(b, g, getLhs()));
  sweep.accumulate(getRhs(), unbroadcast(b, g, getRhs()));
  return success();
}

LogicalResult SubOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  Value g = cotangents[0];
  sweep.accumulate(getLhs(), unbroadcast(b, g, getLhs()));
  sweep.accumulate(getRhs(), unbroadcast(b, NegOp::create(b, g), getRhs()));
  return success();
}

LogicalResult MulOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  Value g = cotangents[0];
  sweep.accumulate(getLhs(), unbroadcast(b, mul(b, g, getRhs()), getLhs()));
  sweep.accumulate(getRhs(), unbroadcast(b, mul(b, g, getLhs()), getRhs()));
  return success();
}

LogicalResult DivOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  Value g = cotangents[0], y = getResult();
  sweep.accumulate(getLhs(),
                   unbroadcast(b, DivOp::create(b, g, getRhs()), getLhs()));
  Value gy = NegOp::create(b, DivOp::create(b, mul(b, g, y), getRhs()));
  sweep.accumulate(getRhs(), unbroadcast(b, gy, getRhs()));
  return success();
}

LogicalResult NegOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep,
                  [&](Value, Value, Value g) { return NegOp::create(b, g); });
}

LogicalResult ExpOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep,
                  [&](Value, Value y, Value g) { return mul(b, g, y); });
}

LogicalResult LogOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                         VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep, [&](Value x, Value, Value g) {
    return DivOp::create(b, g, x);
  });
}

LogicalResult SqrtOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                          VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep, [&](Value x, Value y, Value g) {
    return DivOp::create(b, mul(b, g, splat(b, typeOf(x), 0.5)), y);
  });
}

LogicalResult RsqrtOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                           VJPSweep &sweep) {
  // d x^-1/2 = -x^-3/2 / 2
  return unaryVJP(*this, cotangents, sweep, [&](Value x, Value y, Value g) {
    return mul(b, g,
               mul(b, mul(b, y, mul(b, y, y)), splat(b, typeOf(x), -0.5)));
  });
}

LogicalResult ReciprocalOp::vjp(ImplicitLocOpBuilder &b,
                                ArrayRef<Value> cotangents, VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep, [&](Value, Value y, Value g) {
    return NegOp::create(b, mul(b, g, mul(b, y, y)));
  });
}

LogicalResult TanhOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                          VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep, [&](Value x, Value y, Value g) {
    return mul(b, g, sub(b, splat(b, typeOf(x), 1.0), mul(b, y, y)));
  });
}

LogicalResult SigmoidOp::vjp(ImplicitLocOpBuilder &b,
                             ArrayRef<Value> cotangents, VJPSweep &sweep) {
  return unaryVJP(*this, cotangents, sweep, [&](Value x, Value y, Value g) {
    return mul(b, g, mul(b, y, sub(b, splat(b, typeOf(x), 1.0), y)));
  });
}

LogicalResult SiluOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                          VJPSweep &sweep) {
  // s (1 + x (1 - s)) with s = sigmoid(x)
  return unaryVJP(*this, cotangents, sweep, [&](Value x, Value, Value g) {
    auto type = typeOf(x);
    Value s = SigmoidOp::create(b, x);
    Value inner = AddOp::create(b, splat(b, type, 1.0),
                                mul(b, x, sub(b, splat(b, type, 1.0), s)));
    return mul(b, g, mul(b, s, inner));
  });
}

LogicalResult GeluOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                          VJPSweep &sweep) {
  if (getApproximation() != GeluApproximation::Tanh)
    return emitOpError("has no VJP rule yet for the exact (erf) form");
  // y = x/2 (1 + tanh(u)), u = c (x + a x³): y' = (1 + t)/2 + x/2 (1 - t²) u'.
  Value g = cotangents[0];
  Value x = getInput();
  auto type = typeOf(x);
  double c = std::sqrt(2.0 / M_PI), a = 0.044715;
  Value x2 = mul(b, x, x);
  Value u = mul(b, splat(b, type, c),
                AddOp::create(b, x, mul(b, splat(b, type, a), mul(b, x2, x))));
  Value t = TanhOp::create(b, u);
  Value du = mul(
      b, splat(b, type, c),
      AddOp::create(b, splat(b, type, 1.0), mul(b, splat(b, type, 3 * a), x2)));
  Value half = splat(b, type, 0.5);
  Value dy =
      AddOp::create(b, mul(b, half, AddOp::create(b, splat(b, type, 1.0), t)),
                    mul(b, mul(b, half, x),
                        mul(b, sub(b, splat(b, type, 1.0), mul(b, t, t)), du)));
  sweep.accumulate(x, mul(b, g, dy));
  return success();
}

LogicalResult ConvertOp::vjp(ImplicitLocOpBuilder &b,
                             ArrayRef<Value> cotangents, VJPSweep &sweep) {
  if (isa<FloatType>(typeOf(getInput()).getElementType()))
    sweep.accumulate(getInput(),
                     ConvertOp::create(b, typeOf(getInput()), cotangents[0]));
  return success();
}

LogicalResult SelectOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                            VJPSweep &sweep) {
  Value g = cotangents[0];
  Value zero = splat(b, typeOf(g), 0.0);
  sweep.accumulate(getOnTrue(),
                   unbroadcast(b, SelectOp::create(b, getCondition(), g, zero),
                               getOnTrue()));
  sweep.accumulate(getOnFalse(),
                   unbroadcast(b, SelectOp::create(b, getCondition(), zero, g),
                               getOnFalse()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions and normalisation
//===----------------------------------------------------------------------===//

LogicalResult ReduceOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                            VJPSweep &sweep) {
  if (getKind() != ReduceKind::Sum && getKind() != ReduceKind::Mean)
    return emitOpError("has no VJP rule yet for max and min");
  Value g = cotangents[0];
  Value x = getInput();
  ArrayRef<int64_t> xs = typeOf(x).getShape();
  SmallVector<int64_t> kept(xs.begin(), xs.end());
  int64_t count = 1;
  for (int64_t axis : getAxes()) {
    kept[axis] = 1;
    count *= xs[axis];
  }
  Value gk = ReshapeOp::create(
      b, RankedTensorType::get(kept, typeOf(g).getElementType()), g);
  if (getKind() == ReduceKind::Mean)
    gk = mul(b, gk, splat(b, typeOf(gk), 1.0 / static_cast<double>(count)));
  sweep.accumulate(x, broadcastTo(b, gk, x));
  return success();
}

LogicalResult SoftmaxOp::vjp(ImplicitLocOpBuilder &b,
                             ArrayRef<Value> cotangents, VJPSweep &sweep) {
  Value g = cotangents[0], y = getResult();
  auto axis = static_cast<int64_t>(getAxis());
  sweep.accumulate(getInput(),
                   mul(b, y, sub(b, g, sum(b, mul(b, g, y), axis))));
  return success();
}

LogicalResult LayerNormOp::vjp(ImplicitLocOpBuilder &b,
                               ArrayRef<Value> cotangents, VJPSweep &sweep) {
  // x̂ = (x - μ) r, y = x̂ w + b: dx = r (g w - mean(g w) - x̂ mean(g w x̂)).
  Value g = cotangents[0];
  Value x = getInput(), w = getWeight();
  auto type = typeOf(x);
  int64_t last = type.getRank() - 1, d = type.getShape().back();
  Value inv = splat(b, type, 1.0 / d);
  Value centred = sub(b, x, mul(b, sum(b, x, last), inv));
  Value var = mul(b, sum(b, mul(b, centred, centred), last), inv);
  Value r = RsqrtOp::create(
      b, AddOp::create(b, var, splat(b, type, getEpsilon().convertToDouble())));
  Value xhat = mul(b, centred, r);
  Value gw = mul(b, g, w);
  Value gx =
      mul(b, r,
          sub(b, sub(b, gw, mul(b, sum(b, gw, last), inv)),
              mul(b, xhat, mul(b, sum(b, mul(b, gw, xhat), last), inv))));
  sweep.accumulate(x, gx);
  sweep.accumulate(w, unbroadcast(b, mul(b, g, xhat), w));
  if (Value bias = getBias())
    sweep.accumulate(bias, unbroadcast(b, g, bias));
  return success();
}

LogicalResult RmsNormOp::vjp(ImplicitLocOpBuilder &b,
                             ArrayRef<Value> cotangents, VJPSweep &sweep) {
  // y = x·r·s with r = rsqrt(mean(x²) + eps) per row and s = w or 1 + w:
  // dx = r·(g·s) - x·r³·mean(g·s·x), dw = Σ_rows g·x·r.
  Value g = cotangents[0];
  Value x = getInput(), w = getWeight();
  auto type = typeOf(x);
  int64_t last = type.getRank() - 1, d = type.getShape().back();
  Value meanSq = mul(b, sum(b, mul(b, x, x), last), splat(b, type, 1.0 / d));
  Value r = RsqrtOp::create(
      b,
      AddOp::create(b, meanSq, splat(b, type, getEpsilon().convertToDouble())));
  Value scale = getUnitOffset()
                    ? AddOp::create(b, w, splat(b, typeOf(w), 1.0)).getResult()
                    : w;
  Value gs = mul(b, g, scale);
  Value dot = mul(b, sum(b, mul(b, gs, x), last), splat(b, type, 1.0 / d));
  Value gx =
      sub(b, mul(b, gs, r), mul(b, mul(b, x, mul(b, r, mul(b, r, r))), dot));
  sweep.accumulate(x, gx);
  sweep.accumulate(w, unbroadcast(b, mul(b, g, mul(b, x, r)), w));
  return success();
}

//===----------------------------------------------------------------------===//
// Positions, shape, routing and loss
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                          VJPSweep &sweep) {
  // A rotation: its transpose rotates by the opposite angle.
  Value positions = getPositions();
  Type i32 = typeOf(positions).getElementType();
  Value zero = ConstantOp::create(
      b, DenseElementsAttr::get(RankedTensorType::get({}, i32),
                                b.getIntegerAttr(i32, 0)));
  Value negated = SubOp::create(b, zero, positions);
  // A clone keeps every attribute: the frequencies, their long form (chosen
  // by |position|) and the scale, which the transpose keeps.
  auto transposed = cast<RopeOp>(b.clone(*getOperation()));
  transposed->setOperands({cotangents[0], negated});
  sweep.accumulate(getInput(), transposed.getResult());
  return success();
}

LogicalResult ReshapeOp::vjp(ImplicitLocOpBuilder &b,
                             ArrayRef<Value> cotangents, VJPSweep &sweep) {
  sweep.accumulate(getInput(),
                   ReshapeOp::create(b, typeOf(getInput()), cotangents[0]));
  return success();
}

LogicalResult TransposeOp::vjp(ImplicitLocOpBuilder &b,
                               ArrayRef<Value> cotangents, VJPSweep &sweep) {
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = static_cast<int64_t>(i);
  sweep.accumulate(getInput(), TransposeOp::create(b, cotangents[0], inverse));
  return success();
}

LogicalResult SliceOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                           VJPSweep &sweep) {
  // The gradient padded with zeros back to the input's shape.
  Value x = getInput();
  ArrayRef<int64_t> xs = typeOf(x).getShape();
  Value padded = cotangents[0];
  for (int64_t d = 0; d < static_cast<int64_t>(xs.size()); ++d) {
    int64_t before = getOffsets()[d];
    int64_t after = xs[d] - before - getSizes()[d];
    SmallVector<Value> parts;
    auto zeros = [&](int64_t n) {
      SmallVector<int64_t> shape(typeOf(padded).getShape());
      shape[d] = n;
      auto type = RankedTensorType::get(shape, typeOf(padded).getElementType());
      return ConstantOp::create(
          b, DenseElementsAttr::get(
                 type, b.getFloatAttr(type.getElementType(), 0.0)));
    };
    if (before > 0)
      parts.push_back(zeros(before));
    parts.push_back(padded);
    if (after > 0)
      parts.push_back(zeros(after));
    if (parts.size() > 1)
      padded = ConcatOp::create(b, parts, d);
  }
  sweep.accumulate(x, padded);
  return success();
}

LogicalResult ConcatOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                            VJPSweep &sweep) {
  Value g = cotangents[0];
  auto axis = static_cast<int64_t>(getAxis());
  int64_t offset = 0;
  for (Value part : getInputs()) {
    SmallVector<int64_t> offsets(typeOf(g).getRank(), 0);
    offsets[axis] = offset;
    sweep.accumulate(part,
                     SliceOp::create(b, g, offsets, typeOf(part).getShape()));
    offset += typeOf(part).getDimSize(axis);
  }
  return success();
}

LogicalResult RepeatOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                            VJPSweep &sweep) {
  // [.., n·times, ..] -> [.., n, times, ..], summed over the copies.
  Value g = cotangents[0];
  Value x = getInput();
  auto axis = static_cast<int64_t>(getAxis());
  auto times = static_cast<int64_t>(getTimes());
  SmallVector<int64_t> split(typeOf(x).getShape());
  split.insert(split.begin() + axis + 1, times);
  Value copies = ReshapeOp::create(
      b, RankedTensorType::get(split, typeOf(g).getElementType()), g);
  sweep.accumulate(x,
                   ReshapeOp::create(b, typeOf(x), sum(b, copies, axis + 1)));
  return success();
}

LogicalResult TopKOp::vjp(ImplicitLocOpBuilder &b, ArrayRef<Value> cotangents,
                          VJPSweep &sweep) {
  // The values' adjoint goes back to the entries they were taken from.
  Value g = cotangents[0];
  if (!g)
    return success();
  auto gType = typeOf(g);
  SmallVector<int64_t> hotShape(gType.getShape());
  hotShape.push_back(typeOf(getInput()).getShape().back());
  Value hot = OneHotOp::create(
      b, RankedTensorType::get(hotShape, gType.getElementType()), getIndices(),
      hotShape.back());
  SmallVector<int64_t> column(gType.getShape());
  column.push_back(1);
  Value spread =
      mul(b, hot,
          ReshapeOp::create(
              b, RankedTensorType::get(column, gType.getElementType()), g));
  Value gx = ReduceOp::create(b, ReduceKind::Sum, spread,
                              ArrayRef<int64_t>{gType.getRank() - 1});
  sweep.accumulate(getInput(), gx);
  return success();
}

LogicalResult CrossEntropyOp::vjp(ImplicitLocOpBuilder &b,
                                  ArrayRef<Value> cotangents, VJPSweep &sweep) {
  sweep.accumulate(getLogits(), CrossEntropyGradOp::create(
                                    b, typeOf(getLogits()), getLogits(),
                                    getLabels(), cotangents[0],
                                    getIgnoreIndexAttr(), getReductionAttr()));
  return success();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// Attention over query positions (a generation step, never trained
/// through in practice): recomputes the probabilities from the naive form
/// the op stands for, then differentiates that.
static LogicalResult naiveAttentionVjp(FlashAttentionOp fa, ImplicitLocOpBuilder &b,
                                       ArrayRef<Value> cotangents, VJPSweep &sweep);

LogicalResult FlashAttentionOp::vjp(ImplicitLocOpBuilder &b,
                                    ArrayRef<Value> cotangents,
                                    VJPSweep &sweep) {
  if (!cotangents[0]) // only the lse reaches the loss: nothing here differentiates it
    return emitOpError("has no VJP rule for its lse result");
  if (getQueryPositions()) {
    if (llvm::is_contained(getTokenMajor(), true))
      return emitOpError("has no VJP rule over query positions with token_major tensors");
    return naiveAttentionVjp(*this, b, cotangents, sweep);
  }
  // The fused backward needs the forward's row log-sum-exps: a forward that
  // does not return them yet is replaced in place by one that does. Its
  // users' rules have all run, so nothing holds the old result any more.
  FlashAttentionOp forward = *this;
  if (!getWithLse()) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointAfter(getOperation());
    forward = FlashAttentionOp::create(b, getQuery(), getKey(), getValue(), Value(),
                                       getScaleAttr(), getKvGroupsAttr(), getCausalAttr(),
                                       getWindowAttr(), getSoftcapAttr(), b.getUnitAttr(),
                                       getTokenMajorAttr());
    forward->setDiscardableAttrs(getOperation()->getDiscardableAttrDictionary());
    getResult().replaceAllUsesWith(forward.getResult());
  }
  // Each gradient is laid out as its operand, the result's as the result.
  DenseBoolArrayAttr layouts;
  if (!getTokenMajor().empty()) {
    bool q = isTokenMajor(kQuery), k = isTokenMajor(kKey), v = isTokenMajor(kValue),
         o = isTokenMajor(kResult);
    layouts = b.getDenseBoolArrayAttr({q, k, v, o, o, q, k, v});
  }
  auto grad = FlashAttentionGradOp::create(
      b, getQuery(), getKey(), getValue(), forward.getResult(), forward.getLse(),
      cotangents[0], getScaleAttr(), getKvGroupsAttr(), getCausalAttr(), getWindowAttr(),
      getSoftcapAttr(), layouts);
  sweep.accumulate(getQuery(), grad.getQueryGrad());
  sweep.accumulate(getKey(), grad.getKeyGrad());
  sweep.accumulate(getValue(), grad.getValueGrad());
  if (forward != *this)
    erase(); // the sweep is past this op and keeps no reference to it
  return success();
}

static LogicalResult naiveAttentionVjp(FlashAttentionOp fa, ImplicitLocOpBuilder &b,
                                       ArrayRef<Value> cotangents, VJPSweep &sweep) {
  SmallVector<Operation *> ops;
  auto record = [&](Value v) {
    ops.push_back(v.getDefiningOp());
    return v;
  };
  Value q = fa.getQuery(), k = fa.getKey(), v = fa.getValue();
  auto qType = typeOf(q);
  Type elt = qType.getElementType();
  int64_t batch = qType.getDimSize(0);
  int64_t queries = qType.getDimSize(2), keys = typeOf(k).getDimSize(2);
  auto groups = static_cast<int64_t>(fa.getKvGroups());
  if (groups > 1) {
    k = record(RepeatOp::create(b, k, 1, groups));
    v = record(RepeatOp::create(b, v, 1, groups));
  }
  auto scalar = [&](double x) {
    return record(ConstantOp::create(
        b, DenseElementsAttr::get(RankedTensorType::get({}, elt),
                                  b.getFloatAttr(elt, x))));
  };
  Value s = record(matmul(b, q, k, false, true));
  s = record(mul(b, s, scalar(fa.getScale().convertToDouble())));
  if (double cap = fa.getSoftcap().convertToDouble(); cap > 0) {
    Value c = scalar(cap);
    s = record(
        mul(b, record(TanhOp::create(b, record(DivOp::create(b, s, c)))), c));
  }
  auto window = static_cast<int64_t>(fa.getWindow());
  Value mask;
  if (Value positions = fa.getQueryPositions())
    mask = record(PositionMaskOp::create(
        b, RankedTensorType::get({batch, 1, queries, keys}, b.getI1Type()),
        positions, window));
  else if (fa.getCausal())
    mask = record(CausalMaskOp::create(
        b, RankedTensorType::get({queries, keys}, b.getI1Type()), window));
  if (mask)
    s = record(SelectOp::create(b, mask, s, scalar(-INFINITY)));
  // From here by hand, as FlashAttention-2 does: with O = P·V,
  // dP = dO·Vᵀ and dS = P ⊙ (dP - D), where D = rowsum(P ⊙ dP) equals
  // rowsum(dO ⊙ O): a sum over the head dimension, not over the keys, so
  // no pass over the [T, S] matrices is spent on it.
  Value p = SoftmaxOp::create(b, s, 3);
  Value g = cotangents[0];
  sweep.accumulate(v, matmul(b, p, g, true, false));
  Value dp = matmul(b, g, v, false, true);
  Value d = sum(b, mul(b, g, fa.getResult()), 3);
  sweep.accumulate(s, mul(b, p, sub(b, dp, d)));
  return sweep.backward(ops);
}
