// The row model both kernel builders share (see FusionKernels.cpp): every
// value of a gai.fusion region lines up with the result's rows.
#ifndef GAI_COMPILER_CODEGEN_FUSIONROWS_H
#define GAI_COMPILER_CODEGEN_FUSIONROWS_H

#include "dialects/Gai/GaiOps.h"

namespace gai {

inline llvm::ArrayRef<int64_t> shapeOf(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType()).getShape();
}
inline mlir::Type elementOf(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType()).getElementType();
}
/// The last dimension (1 for a scalar).
inline int64_t rowLength(mlir::Value v) {
  llvm::ArrayRef<int64_t> shape = shapeOf(v);
  return shape.empty() ? 1 : shape.back();
}
/// Ops that read a whole row of an operand, or (RoPE) another element of it.
inline bool isRowOp(mlir::Operation *op) {
  return mlir::isa<mlir::gai::RowOpInterface>(op);
}

/// The rows every value lines up with: the first yielded value's shape (a
/// column-partial result's own shape has fewer rows).
inline llvm::ArrayRef<int64_t> rowShapeOf(mlir::gai::FusionOp fusion) {
  return shapeOf(fusion.getBody().front().getTerminator()->getOperand(0));
}

/// Checks that the region fits the row model: every value's leading
/// dimensions broadcast to the result's, no 8-bit floats, RoPE positions
/// are region inputs. Diagnostics go on the fusion op; `target` names the
/// backend in them ("CPU", "GPU").
mlir::LogicalResult checkFusionRows(mlir::gai::FusionOp fusion,
                                    llvm::StringRef target);

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_FUSIONROWS_H
