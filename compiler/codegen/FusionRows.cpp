#include "compiler/codegen/FusionRows.h"

using namespace mlir;
using namespace mlir::gai;

namespace gai {

LogicalResult checkFusionRows(FusionOp fusion, StringRef target) {
  ArrayRef<int64_t> outer = rowShapeOf(fusion);
  if (!outer.empty())
    outer = outer.drop_back();
  auto lineUp = [&](Value v) -> LogicalResult {
    ArrayRef<int64_t> shape = shapeOf(v);
    if (shape.empty())
      return success();
    ArrayRef<int64_t> lead = shape.drop_back();
    bool ok = lead.size() <= outer.size();
    for (size_t i = 0; ok && i < lead.size(); ++i)
      ok = lead[i] == 1 || lead[i] == outer[i + outer.size() - lead.size()];
    if (!ok)
      return fusion.emitOpError("value of shape ")
             << formatShape(shape) << " does not line up with the rows of "
             << formatShape(rowShapeOf(fusion));
    return success();
  };
  Block &body = fusion.getBody().front();
  for (BlockArgument arg : body.getArguments()) {
    // RoPE reads its positions per row, whatever their shape; a transpose's
    // input is read through the permutation (its result must line up).
    bool readIndirectly = llvm::all_of(arg.getUsers(), [&](Operation *user) {
      auto rope = dyn_cast<RopeOp>(user);
      return (rope && rope.getPositions() == arg && rope.getInput() != arg) ||
             isa<TransposeOp>(user);
    });
    if (!readIndirectly && failed(lineUp(arg)))
      return failure();
  }
  for (Operation &op : body.without_terminator()) {
    if (isa<ConstantOp>(op))
      continue;
    if (auto transpose = dyn_cast<TransposeOp>(op)) {
      ArrayRef<int64_t> permutation = transpose.getPermutation();
      if (target != "GPU")
        return fusion.emitOpError("a transpose inside a fusion region has no ")
               << target << " kernel (only GPU kernels read through one)";
      if (!isa<BlockArgument>(transpose.getInput()) ||
          permutation.back() != static_cast<int64_t>(permutation.size()) - 1)
        return fusion.emitOpError("a transpose inside a fusion region must read a "
                                  "region input and keep the last axis");
    }
    if (failed(lineUp(op.getResult(0))))
      return failure();
    for (Type t : op.getOperandTypes())
      if (auto f = dyn_cast<FloatType>(cast<RankedTensorType>(t).getElementType());
          f && f.getWidth() < 16)
        return fusion.emitOpError("8-bit floats have no ") << target << " kernels yet";
    if (auto rope = dyn_cast<RopeOp>(op);
        rope && !isa<BlockArgument>(rope.getPositions()))
      return fusion.emitOpError("RoPE positions must be a region input");
  }
  return success();
}

} // namespace gai
