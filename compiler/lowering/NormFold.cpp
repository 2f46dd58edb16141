#include "compiler/lowering/NormFold.h"

using namespace mlir;
using namespace mlir::gai;

namespace gai {
namespace {

RankedTensorType tensorOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// A GEMM the CUDA GEMV runs, with `a` as its A: at most `maxRows` rows
/// (batch dimensions folded into M) against a weight [n, k] stored
/// transposed, k a multiple of 8, in `element`, writing `outElement`.
bool gemvOver(Operation *op, Value a, int64_t maxRows, Type element, Type outElement) {
  Value lhs, rhs;
  bool transposeLhs = false, transposeRhs = true;
  if (auto m = dyn_cast<MatmulOp>(op)) {
    lhs = m.getLhs();
    rhs = m.getRhs();
    transposeLhs = m.getTransposeLhs();
    transposeRhs = m.getTransposeRhs();
  } else if (auto g = dyn_cast<GemmOp>(op)) {
    lhs = g.getLhs();
    rhs = g.getRhs();
    transposeLhs = g.getTransposeLhs();
    transposeRhs = g.getTransposeRhs();
    // A is read once, as A.
    if (g.getBias() == a || g.getResidual() == a)
      return false;
  } else if (auto g = dyn_cast<GatedGemmOp>(op)) {
    lhs = g.getLhs();
    rhs = g.getUp();
    if (g.getGate() == a)
      return false;
  } else {
    return false;
  }
  // The GEMV that folds norms reads 2:4 values as bf16 only.
  if (lhs != a || rhs == a || transposeLhs || !transposeRhs ||
      (rhs.getDefiningOp<DecompressOp>() && !element.isBF16()))
    return false;
  RankedTensorType l = tensorOf(lhs), r = tensorOf(rhs), out = tensorOf(op->getResult(0));
  int64_t rows = l.getNumElements() / l.getShape().back();
  return r.getRank() == 2 && l.getShape().back() % 8 == 0 && rows <= maxRows &&
         l.getElementType() == element && r.getElementType() == element &&
         out.getElementType() == outElement;
}

/// The region's rms_norm when that is all it does (then perhaps converts
/// its result: the norm of an f32 residual stream), over its input `input`
/// and weight (fusion inputs, not computed in the region).
RmsNormOp soleRmsNorm(FusionOp fusion, Value &input, Value &weight) {
  Block &body = fusion.getBody().front();
  auto ops = body.without_terminator();
  int64_t count = std::distance(ops.begin(), ops.end());
  auto norm = dyn_cast<RmsNormOp>(body.front());
  if (!norm || count > 2)
    return {};
  Value result = norm.getResult();
  if (count == 2) {
    auto convert = dyn_cast<ConvertOp>(*std::next(ops.begin()));
    if (!convert || convert.getInput() != result)
      return {};
    result = convert.getResult();
  }
  if (body.getTerminator()->getOperand(0) != result)
    return {};
  auto in = dyn_cast<BlockArgument>(norm.getInput());
  auto w = dyn_cast<BlockArgument>(norm.getWeight());
  if (!in || !w || in == w)
    return {};
  input = fusion.getInputs()[in.getArgNumber()];
  weight = fusion.getInputs()[w.getArgNumber()];
  return norm;
}

} // namespace

SmallVector<NormFold> findNormFolds(func::FuncOp func, int64_t maxRows) {
  SmallVector<NormFold> folds;
  if (maxRows <= 0)
    return folds;
  llvm::SmallPtrSet<Operation *, 16> producers;
  int64_t squaresBytes = 0;
  func.walk([&](FusionOp fusion) {
    Value input, weight;
    RmsNormOp norm = soleRmsNorm(fusion, input, weight);
    if (!norm || fusion.getColumnPartials())
      return;
    while (auto reshape = input.getDefiningOp<ReshapeOp>())
      input = reshape.getInput();
    Operation *producer = input.getDefiningOp();
    // The GEMMs' type; the norm's input and weight are it or, over bf16,
    // f32 (the residual stream's).
    Value result = fusion->getResult(0);
    Type element = tensorOf(result).getElementType();
    Type wide = tensorOf(input).getElementType();
    if (!producer || producers.contains(producer) || !(element.isF32() || element.isBF16()) ||
        !(wide == element || (element.isBF16() && wide.isF32())) ||
        tensorOf(weight).getElementType() != wide || tensorOf(weight).getRank() != 1 ||
        !(isa<BlockArgument>(weight) || weight.getDefiningOp<ParamOp>()) ||
        producer->getBlock() != fusion->getBlock())
      return;
    Value producerA = producer->getNumOperands() ? producer->getOperand(0) : Value();
    if (!isa<GemmOp, MatmulOp>(producer) ||
        !gemvOver(producer, producerA, maxRows, element, wide))
      return;
    if (result.use_empty() || !llvm::all_of(result.getUsers(), [&](Operation *user) {
          return gemvOver(user, result, maxRows, element, element);
        }))
      return;
    RankedTensorType in = tensorOf(input);
    int64_t rows = in.getNumElements() / in.getShape().back();
    producers.insert(producer);
    folds.push_back({producer, fusion, weight, norm.getEpsilon().convertToDouble(),
                     norm.getUnitOffset(), rows, squaresBytes});
    squaresBytes += rows * 8; // f64 sums: exact, so the order of the adds does not matter
  });
  return folds;
}

} // namespace gai
