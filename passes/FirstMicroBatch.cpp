// @train_step_first: the training step of a step's first micro-batch,
// which writes the gradients where @train_step adds to them. Zeroing 4.4 GB
// of f32 gradients and reading them back in every weight GEMM's epilogue
// cost llama-1b about 4 ms a step on an H100, for sums that start at zero.
#include "dialects/Gai/GaiOps.h"
#include "dialects/Gai/StateNames.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIFIRSTMICROBATCH
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

bool isGradName(StringAttr name) { return name && name.getValue().starts_with(kGradPrefix); }

/// A product widened to f32 (a bf16 weight's gradient) becomes one GEMM
/// with an f32 result, as the GEMM adding it to the gradient was: the
/// product stays unrounded, and no convert kernel runs.
void widenProduct(Value g) {
  auto convert = g.getDefiningOp<ConvertOp>();
  auto matmul = convert ? convert.getInput().getDefiningOp<MatmulOp>() : MatmulOp();
  if (!matmul || !matmul->hasOneUse())
    return;
  auto from = cast<RankedTensorType>(matmul.getType()).getElementType();
  if (!(from.isBF16() || from.isF16()) ||
      !cast<RankedTensorType>(convert.getType()).getElementType().isF32())
    return;
  OpBuilder b(convert);
  auto gemm = GemmOp::create(b, convert.getLoc(), matmul.getLhs(), matmul.getRhs(),
                             /*bias=*/Value(), /*residual=*/Value(), matmul.getTransposeLhs(),
                             matmul.getTransposeRhs(), EpilogueActivation::None,
                             /*wide=*/true);
  convert.getResult().replaceAllUsesWith(gemm.getResult());
  convert.erase();
  matmul.erase();
}

/// Replaces each gradient argument of `step` by what is added to it (or
/// zeros, where nothing is), then drops the arguments.
LogicalResult writeInsteadOfAdd(func::FuncOp step) {
  Block &body = step.getBody().front();
  llvm::BitVector dropped(step.getNumArguments());
  for (BlockArgument arg : body.getArguments()) {
    if (!isGradName(step.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "gai.name")))
      continue;
    for (OpOperand &use : llvm::make_early_inc_range(arg.getUses())) {
      auto add = dyn_cast<AddOp>(use.getOwner());
      if (!add || add.getLhs() == add.getRhs() || add.getType() != arg.getType())
        continue;
      Value g = add.getLhs() == arg ? add.getRhs() : add.getLhs();
      add.getResult().replaceAllUsesWith(g);
      add.erase();
      widenProduct(g);
    }
    if (!arg.use_empty()) {
      // A parameter without a gradient: its state is returned (and squared
      // into grad_sq) as it was, which at a first micro-batch is zeros.
      auto type = cast<RankedTensorType>(arg.getType());
      OpBuilder b(&body, body.begin());
      Value zeros = ConstantOp::create(
          b, step.getLoc(),
          DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
      arg.replaceAllUsesWith(zeros);
    }
    dropped.set(arg.getArgNumber());
  }
  return step.eraseArguments(dropped);
}

/// Drops @optimizer_step's zeroed gradients from its results.
LogicalResult stopZeroing(func::FuncOp optimizer) {
  auto ret = cast<func::ReturnOp>(optimizer.getBody().front().getTerminator());
  llvm::BitVector dropped(optimizer.getNumResults());
  for (unsigned i = 0; i < optimizer.getNumResults(); ++i)
    if (isGradName(optimizer.getResultAttrOfType<StringAttr>(i, "gai.name")))
      dropped.set(i);
  SmallVector<Value> kept;
  llvm::SetVector<Operation *> zeros; // one constant may zero several
  for (auto [i, v] : llvm::enumerate(ret.getOperands()))
    if (!dropped.test(i))
      kept.push_back(v);
    else if (auto constant = v.getDefiningOp<ConstantOp>())
      zeros.insert(constant);
  OpBuilder b(ret);
  func::ReturnOp::create(b, ret.getLoc(), kept);
  ret.erase();
  for (Operation *op : zeros)
    if (op->use_empty())
      op->erase();
  return optimizer.eraseResults(dropped);
}

struct FirstMicroBatchPass
    : mlir::gai::impl::GaiFirstMicroBatchBase<FirstMicroBatchPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto step = module.lookupSymbol<func::FuncOp>("train_step");
    auto optimizer = module.lookupSymbol<func::FuncOp>("optimizer_step");
    if (!step || !optimizer) {
      module.emitError("first micro-batch: expected @train_step and @optimizer_step "
                       "(run --gai-train-step first)");
      return signalPassFailure();
    }
    if (module.lookupSymbol("train_step_first"))
      return; // already there
    OpBuilder b(module.getContext());
    b.setInsertionPointAfter(step);
    auto first = cast<func::FuncOp>(b.clone(*step));
    first.setSymName("train_step_first");
    if (failed(writeInsteadOfAdd(first)) || failed(stopZeroing(optimizer)))
      return signalPassFailure();
  }
};

} // namespace
