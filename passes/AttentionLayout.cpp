// Drops the head transposes around attention: its kernels read and write
// [B, T, H, D] rows at any stride (token_major).
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIATTENTIONLAYOUT
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

/// Whether `op` swaps the head and token axes of a rank-4 tensor.
bool swapsHeadAxes(Operation *op) {
  auto t = dyn_cast_or_null<TransposeOp>(op);
  return t && t.getPermutation() == ArrayRef<int64_t>{0, 2, 1, 3};
}

/// The flags of an op's token_major, one per tensor.
SmallVector<bool> flagsOf(ArrayRef<bool> current, unsigned tensors) {
  SmallVector<bool> flags(current.begin(), current.end());
  flags.resize(tensors, false);
  return flags;
}

/// Replaces each head-major operand (listed by operand number, with its
/// flag index) made by a head transpose with the transpose's input.
void foldOperandTransposes(Operation *op,
                           ArrayRef<std::pair<unsigned, unsigned>> slots,
                           SmallVector<bool> &flags) {
  for (auto [operand, flag] : slots) {
    if (flags[flag])
      continue;
    Operation *producer = op->getOperand(operand).getDefiningOp();
    if (!swapsHeadAxes(producer))
      continue;
    op->setOperand(operand, producer->getOperand(0));
    flags[flag] = true;
  }
}

/// Whether every use of `v` is a head transpose, or is accepted by `also`.
template <typename Also> bool readOnlyThroughTransposes(Value v, Also also) {
  return !v.use_empty() && llvm::all_of(v.getUses(), [&](OpOperand &use) {
    return swapsHeadAxes(use.getOwner()) || also(use);
  });
}

/// Points the users of `old` (all head transposes, or accepted by `also`)
/// at `fresh`, its [B, T, H, D] replacement: a transpose's readers read
/// `fresh` itself, the others get it through `retarget`.
template <typename Retarget>
void replaceSwapped(Value old, Value fresh, Retarget retarget) {
  for (OpOperand &use : llvm::make_early_inc_range(old.getUses())) {
    Operation *user = use.getOwner();
    if (swapsHeadAxes(user)) {
      user->getResult(0).replaceAllUsesWith(fresh);
      user->erase();
    } else
      retarget(use, fresh);
  }
}

/// Whether the CUDA runtime's tensor-core forward kernel runs `fa`: the one
/// forward kernel that takes strides.
bool runsOnTensorCores(FlashAttentionOp fa) {
  auto q = cast<RankedTensorType>(fa.getQuery().getType());
  auto v = cast<RankedTensorType>(fa.getValue().getType());
  int64_t dim = q.getDimSize(3),
          queries =
              q.getDimSize(fa.isTokenMajor(FlashAttentionOp::kQuery) ? 1 : 2);
  return q.getElementType().isBF16() && dim == v.getDimSize(3) &&
         (dim == 64 || dim == 128) && queries >= 64;
}

void rewriteForward(FlashAttentionOp fa, bool tensorCoreForward) {
  if (tensorCoreForward && !runsOnTensorCores(fa))
    return;
  using T = FlashAttentionOp;
  SmallVector<bool> flags = flagsOf(fa.getTokenMajor(), T::kTensors);
  foldOperandTransposes(fa, {{0, T::kQuery}, {1, T::kKey}, {2, T::kValue}},
                        flags);
  // The backward may read the output in either layout.
  auto gradReadsOut = [](OpOperand &use) {
    auto grad = dyn_cast<FlashAttentionGradOp>(use.getOwner());
    return grad && use.get() == grad.getOut() && use.get() != grad.getQuery() &&
           use.get() != grad.getKey() && use.get() != grad.getValue() &&
           use.get() != grad.getOutGrad();
  };
  bool result = !flags[T::kResult] &&
                readOnlyThroughTransposes(fa.getResult(), gradReadsOut);
  if (!result) {
    if (llvm::is_contained(flags, true))
      fa.setTokenMajor(flags);
    return;
  }
  flags[T::kResult] = true;
  OpBuilder b(fa);
  auto fresh =
      T::create(b, fa.getLoc(), fa.getQuery(), fa.getKey(), fa.getValue(),
                fa.getQueryPositions(), fa.getScaleAttr(), fa.getKvGroupsAttr(),
                fa.getCausalAttr(), fa.getWindowAttr(), fa.getSoftcapAttr(),
                fa.getWithLseAttr(), b.getDenseBoolArrayAttr(flags));
  fresh->setDiscardableAttrs(fa->getDiscardableAttrDictionary());
  replaceSwapped(
      fa.getResult(), fresh.getResult(), [](OpOperand &use, Value v) {
        auto grad = cast<FlashAttentionGradOp>(use.getOwner());
        SmallVector<bool> gradFlags =
            flagsOf(grad.getTokenMajor(), FlashAttentionGradOp::kTensors);
        gradFlags[FlashAttentionGradOp::kOut] = true;
        use.set(v);
        grad.setTokenMajor(gradFlags);
      });
  if (fa.getWithLse())
    fa.getLse().replaceAllUsesWith(fresh.getLse());
  fa.erase();
}

/// A q or k gradient that RoPE rotates back before a head transpose: the
/// transposed gradient is rotated instead (gai.rope token_major), so that
/// only head transposes read the gradient, which the backward then writes
/// [B, T, H, D] (no transpose kernel).
void rotateTokenMajor(Value gradient) {
  auto none = [](OpOperand &) { return false; };
  SmallVector<RopeOp> ropes;
  for (OpOperand &use : gradient.getUses()) {
    if (swapsHeadAxes(use.getOwner()))
      continue;
    auto rope = dyn_cast<RopeOp>(use.getOwner());
    if (!rope || rope.getTokenMajor() || use.get() != rope.getInput() ||
        !readOnlyThroughTransposes(rope.getResult(), none))
      return;
    ropes.push_back(rope);
  }
  for (RopeOp rope : ropes) {
    OpBuilder b(rope);
    Value swapped = TransposeOp::create(b, rope.getLoc(), gradient,
                                        b.getDenseI64ArrayAttr({0, 2, 1, 3}));
    // Every attribute of the original (its frequencies and scale too).
    auto fresh = RopeOp::create(b, rope.getLoc(), TypeRange{swapped.getType()},
                                ValueRange{swapped, rope.getPositions()}, rope->getAttrs());
    fresh.setTokenMajor(true);
    replaceSwapped(rope.getResult(), fresh.getResult(), [](OpOperand &, Value) {
      llvm_unreachable("only head transposes read the rotated gradient");
    });
    rope.erase();
  }
}

void rewriteBackward(FlashAttentionGradOp grad, bool ropeTokenMajor) {
  using T = FlashAttentionGradOp;
  if (ropeTokenMajor) {
    rotateTokenMajor(grad.getResult(0)); // dq
    rotateTokenMajor(grad.getResult(1)); // dk
  }
  SmallVector<bool> flags = flagsOf(grad.getTokenMajor(), T::kTensors);
  foldOperandTransposes(grad,
                        {{0, T::kQuery},
                         {1, T::kKey},
                         {2, T::kValue},
                         {3, T::kOut},
                         {5, T::kOutGrad}},
                        flags);
  auto none = [](OpOperand &) { return false; };
  bool changed = false;
  for (auto [result, flag] :
       {std::pair{0u, T::kQueryGrad}, {1u, T::kKeyGrad}, {2u, T::kValueGrad}})
    if (!flags[flag] &&
        readOnlyThroughTransposes(grad->getResult(result), none)) {
      flags[flag] = true;
      changed = true;
    }
  if (!changed) {
    if (llvm::is_contained(flags, true))
      grad.setTokenMajor(flags);
    return;
  }
  OpBuilder b(grad);
  auto fresh = T::create(
      b, grad.getLoc(), grad.getQuery(), grad.getKey(), grad.getValue(),
      grad.getOut(), grad.getLse(), grad.getOutGrad(), grad.getScaleAttr(),
      grad.getKvGroupsAttr(), grad.getCausalAttr(), grad.getWindowAttr(),
      grad.getSoftcapAttr(), b.getDenseBoolArrayAttr(flags));
  fresh->setDiscardableAttrs(grad->getDiscardableAttrDictionary());
  for (unsigned i = 0; i < 3; ++i) {
    Value old = grad->getResult(i), now = fresh->getResult(i);
    if (old.getType() == now.getType())
      old.replaceAllUsesWith(now);
    else
      replaceSwapped(old, now, [](OpOperand &, Value) {
        llvm_unreachable(
            "only head transposes read a gradient made token-major");
      });
  }
  grad.erase();
}

struct AttentionLayoutPass
    : mlir::gai::impl::GaiAttentionLayoutBase<AttentionLayoutPass> {
  using GaiAttentionLayoutBase::GaiAttentionLayoutBase;
  void runOnOperation() override {
    SmallVector<Operation *> attention;
    getOperation().walk([&](Operation *op) {
      if (isa<FlashAttentionOp, FlashAttentionGradOp>(op))
        attention.push_back(op);
    });
    // Forwards first: they decide the layout of the `out` their backwards read.
    for (Operation *op : attention)
      if (auto fa = dyn_cast<FlashAttentionOp>(op))
        rewriteForward(fa, tensorCoreForward);
    for (Operation *op : attention)
      if (auto grad = dyn_cast<FlashAttentionGradOp>(op))
        rewriteBackward(grad, ropeTokenMajor);
    // The transposes nothing reads any more.
    SmallVector<Operation *> dead;
    getOperation().walk([&](TransposeOp t) {
      if (t->use_empty())
        dead.push_back(t);
    });
    for (Operation *op : llvm::reverse(dead))
      op->erase();
  }
};

} // namespace
