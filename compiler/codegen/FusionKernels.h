// Lowers a gai.fusion region to one loop-nest kernel over memrefs.
#ifndef GAI_COMPILER_CODEGEN_FUSIONKERNELS_H
#define GAI_COMPILER_CODEGEN_FUSIONKERNELS_H

#include "dialects/Gai/GaiOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace gai {

/// Builds `func.func @name(inputs..., output)` at the builder's insertion
/// point: memrefs of the region's inputs in order, then its result. The
/// body walks the result's rows (every dimension but the last) in scf.for
/// loops; each row evaluates the region's ops in order. Elementwise values
/// with one use are computed where they are used; row ops (norms, softmax,
/// reductions), RoPE and values with several uses get a row buffer. Float
/// math is done in f32. Fails with a diagnostic on the fusion op for
/// regions whose operands do not line up with the result's rows.
mlir::FailureOr<mlir::func::FuncOp>
buildFusionKernel(mlir::gai::FusionOp fusion, llvm::StringRef name,
                  mlir::OpBuilder &builder);

/// The dialects the kernels use; load them before building.
void loadKernelDialects(mlir::MLIRContext &context);

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_FUSIONKERNELS_H
