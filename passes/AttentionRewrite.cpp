// Rewrites the naive attention pattern into gai.flash_attention.
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIATTENTIONREWRITE
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

/// The value of a splat float constant, as a double.
std::optional<double> splatValue(Value v) {
  auto constant = v.getDefiningOp<ConstantOp>();
  if (!constant)
    return std::nullopt;
  auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
  if (!dense || !dense.isSplat() ||
      !isa<FloatType>(dense.getElementType()))
    return std::nullopt;
  APFloat value = dense.getSplatValue<APFloat>();
  bool lost = false;
  value.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
  return value.convertToDouble();
}

/// -inf, or a value so negative that exp() of it minus any finite score is 0
/// in every float type (HF fills masks with the type's lowest value).
bool isMaskFill(Value v) {
  std::optional<double> fill = splatValue(v);
  if (!fill)
    return false;
  auto type = cast<FloatType>(cast<RankedTensorType>(v.getType()).getElementType());
  double lowest = APFloat::getLargest(type.getFloatSemantics(), true)
                      .convertToDouble();
  return *fill == -INFINITY || *fill <= std::max(lowest, -1e30);
}

/// `x * s`, `s * x` or `x / d` by a splat that keeps x's type: returns x and
/// the factor.
std::optional<std::pair<Value, double>> scaledBySplat(Value v) {
  Operation *op = v.getDefiningOp();
  if (!op || op->getResult(0).getType() != op->getOperand(0).getType())
    return std::nullopt;
  if (auto mul = dyn_cast<MulOp>(op)) {
    if (std::optional<double> s = splatValue(mul.getRhs()))
      return std::make_pair(mul.getLhs(), *s);
    if (mul.getLhs().getType() == mul.getType())
      return std::nullopt;
  }
  if (auto div = dyn_cast<DivOp>(op))
    if (std::optional<double> d = splatValue(div.getRhs()); d && *d != 0.0)
      return std::make_pair(div.getLhs(), 1.0 / *d);
  return std::nullopt;
}

/// `c * tanh(x / c)`: returns x and c.
std::optional<std::pair<Value, double>> softcapped(Value v) {
  auto outer = v.getDefiningOp<MulOp>();
  if (!outer || outer.getType() != outer.getLhs().getType())
    return std::nullopt;
  std::optional<double> cap = splatValue(outer.getRhs());
  auto tanh = outer.getLhs().getDefiningOp<TanhOp>();
  if (!cap || *cap <= 0.0 || !tanh)
    return std::nullopt;
  auto inner = tanh.getInput().getDefiningOp<DivOp>();
  if (!inner || inner.getType() != inner.getLhs().getType() ||
      splatValue(inner.getRhs()) != cap)
    return std::nullopt;
  return std::make_pair(inner.getLhs(), *cap);
}

/// K or V before `gai.repeat` along the head axis, and the repeat count.
std::pair<Value, int64_t> unrepeated(Value v) {
  if (auto repeat = v.getDefiningOp<RepeatOp>())
    if (repeat.getAxis() == 1)
      return {repeat.getInput(), static_cast<int64_t>(repeat.getTimes())};
  return {v, 1};
}

/// Rooted at the `P·V` matmul, walks up to Q, K and V.
struct NaiveAttentionPattern : OpRewritePattern<MatmulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MatmulOp out,
                                PatternRewriter &rewriter) const override {
    if (out.getTransposeLhs() || out.getTransposeRhs() ||
        out.getType().getRank() != 4)
      return rewriter.notifyMatchFailure(out, "not a rank-4 P·V product");
    auto softmax = out.getLhs().getDefiningOp<SoftmaxOp>();
    if (!softmax || softmax.getAxis() != 3)
      return rewriter.notifyMatchFailure(out, "no softmax over the keys");
    auto select = softmax.getInput().getDefiningOp<SelectOp>();
    if (!select || select.getType() != select.getOnTrue().getType() ||
        !isMaskFill(select.getOnFalse()))
      return rewriter.notifyMatchFailure(out, "no select(mask, s, -inf)");
    // A static causal mask, or one for queries at per-row positions; either
    // must have the scores' own [T, S], not broadcast to it.
    Value positions;
    int64_t window = 0;
    Value condition = select.getCondition();
    if (auto mask = condition.getDefiningOp<CausalMaskOp>()) {
      window = static_cast<int64_t>(mask.getWindow());
    } else if (auto mask = condition.getDefiningOp<PositionMaskOp>()) {
      window = static_cast<int64_t>(mask.getWindow());
      positions = mask.getPositions();
    } else {
      return rewriter.notifyMatchFailure(out, "the mask is not causal");
    }
    auto maskShape = cast<RankedTensorType>(condition.getType()).getShape();
    auto scoreShape = select.getType().getShape();
    if (maskShape.take_back(2) != scoreShape.take_back(2))
      return rewriter.notifyMatchFailure(out, "the mask is broadcast");

    Value scores = select.getOnTrue();
    double softcap = 0.0;
    if (auto capped = softcapped(scores))
      std::tie(scores, softcap) = *capped;
    double scale = 1.0;
    if (auto scaled = scaledBySplat(scores))
      std::tie(scores, scale) = *scaled;
    auto qk = scores.getDefiningOp<MatmulOp>();
    if (!qk || qk.getTransposeLhs() || !qk.getTransposeRhs())
      return rewriter.notifyMatchFailure(out, "no Q·Kᵀ product");

    auto [key, keyGroups] = unrepeated(qk.getRhs());
    auto [value, valueGroups] = unrepeated(out.getRhs());
    if (keyGroups != valueGroups)
      return rewriter.notifyMatchFailure(out, "K and V repeated differently");
    Value query = qk.getLhs();
    auto qType = cast<RankedTensorType>(query.getType());
    auto kType = cast<RankedTensorType>(key.getType());
    auto vType = cast<RankedTensorType>(value.getType());
    // Batch dims must match exactly: a broadcast batch is not attention.
    if (kType.getRank() != 4 || vType.getRank() != 4 ||
        qType.getDimSize(0) != kType.getDimSize(0) ||
        kType.getDimSize(0) != vType.getDimSize(0) ||
        kType.getDimSize(1) * keyGroups != qType.getDimSize(1) ||
        vType.getDimSize(1) != kType.getDimSize(1) ||
        out.getType().getDimSize(0) != qType.getDimSize(0))
      return rewriter.notifyMatchFailure(out, "Q, K, V shapes do not line up");

    rewriter.replaceOpWithNewOp<FlashAttentionOp>(
        out, query, key, value, positions, APFloat(scale), keyGroups,
        /*causal=*/true, window, APFloat(softcap));
    return success();
  }
};

/// flash_attention(rope(q), cache_write(kc, rope(k), p), cache_write(vc, v, p)
/// at p) -> cached_attention, so that a decode step runs one kernel where it
/// ran four (two RoPEs, the paired cache writes, the attention).
struct FoldCacheWritesPattern : OpRewritePattern<FlashAttentionOp> {
  FoldCacheWritesPattern(MLIRContext *context, int64_t mostNewRows)
      : OpRewritePattern(context), mostNewRows(mostNewRows) {}
  int64_t mostNewRows;

  LogicalResult matchAndRewrite(FlashAttentionOp fa,
                                PatternRewriter &rewriter) const override {
    Value start = fa.getQueryPositions();
    auto keyWrite = fa.getKey().getDefiningOp<CacheWriteOp>();
    auto valueWrite = fa.getValue().getDefiningOp<CacheWriteOp>();
    if (!start || !keyWrite || !valueWrite || keyWrite == valueWrite ||
        keyWrite.getPositions() != start || valueWrite.getPositions() != start)
      return rewriter.notifyMatchFailure(fa, "K and V are not two cache writes at its positions");
    const int64_t queries = fa.getQuery().getType().getDimSize(2);
    auto rowsOf = [](CacheWriteOp write) {
      return cast<RankedTensorType>(write.getUpdate().getType()).getDimSize(2);
    };
    if (rowsOf(keyWrite) != queries || rowsOf(valueWrite) != queries || queries > mostNewRows)
      return rewriter.notifyMatchFailure(fa, "not a generation step's few new rows");
    // The caches' other readers (or the ops holding them) must come after
    // the attention, where the folded op's results are defined.
    for (CacheWriteOp write : {keyWrite, valueWrite})
      for (Operation *user : write->getUsers()) {
        Operation *reader = fa->getBlock()->findAncestorOpInBlock(*user);
        if (user != fa && (!reader || reader->isBeforeInBlock(fa)))
          return rewriter.notifyMatchFailure(fa, "a cache is read before the attention");
      }

    Value query = fa.getQuery(), key = keyWrite.getUpdate();
    auto queryRope = query.getDefiningOp<RopeOp>();
    auto keyRope = key.getDefiningOp<RopeOp>();
    bool rotated = queryRope && keyRope && !queryRope.getTokenMajor() &&
                   !keyRope.getTokenMajor() && queryRope->hasOneUse() &&
                   keyRope->hasOneUse() &&
                   queryRope.getPositions() == keyRope.getPositions() &&
                   queryRope.getStyle() == keyRope.getStyle() &&
                   queryRope.getTheta() == keyRope.getTheta() &&
                   // The attention kernel rotates whole heads by theta only.
                   !queryRope.rotatesBeyondTheta() && !keyRope.rotatesBeyondTheta();
    Value ropePositions;
    RopeStyleAttr style;
    FloatAttr theta;
    if (rotated) {
      query = queryRope.getInput();
      key = keyRope.getInput();
      ropePositions = queryRope.getPositions();
      style = queryRope.getStyleAttr();
      theta = queryRope.getThetaAttr();
    }
    auto cached = CachedAttentionOp::create(
        rewriter, fa.getLoc(), query, key, valueWrite.getUpdate(),
        keyWrite.getCache(), valueWrite.getCache(), start, ropePositions, style,
        theta, fa.getScaleAttr(), fa.getKvGroupsAttr(), fa.getCausalAttr(),
        fa.getWindowAttr(), fa.getSoftcapAttr());
    rewriter.replaceAllUsesWith(keyWrite.getResult(), cached.getNewKeyCache());
    rewriter.replaceAllUsesWith(valueWrite.getResult(), cached.getNewValueCache());
    rewriter.replaceOp(fa, cached.getResult());
    rewriter.eraseOp(keyWrite);
    rewriter.eraseOp(valueWrite);
    if (rotated) {
      rewriter.eraseOp(keyRope);
      rewriter.eraseOp(queryRope);
    }
    return success();
  }
};

struct AttentionRewritePass
    : mlir::gai::impl::GaiAttentionRewriteBase<AttentionRewritePass> {
  using GaiAttentionRewriteBase::GaiAttentionRewriteBase;
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateAttentionRewritePatterns(patterns);
    if (foldCacheWrites)
      patterns.add<FoldCacheWritesPattern>(&getContext(), foldedRows);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::gai::populateAttentionRewritePatterns(RewritePatternSet &patterns) {
  patterns.add<NaiveAttentionPattern>(patterns.getContext());
}
