// Lowers a gai.fusion region to one GPU kernel: rows to thread groups,
// 16-byte vector loads, warp and block reductions for row ops.
#ifndef GAI_COMPILER_CODEGEN_GPUFUSIONKERNELS_H
#define GAI_COMPILER_CODEGEN_GPUFUSIONKERNELS_H

#include "dialects/Gai/GaiOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace gai {

/// The launch shape a GPU kernel was built for, kept as attributes on it.
inline constexpr llvm::StringLiteral kGridAttr = "gai.grid";
inline constexpr llvm::StringLiteral kBlockAttr = "gai.block";
/// On a load of kernel argument N (the attribute's value) that every row
/// shares, issued before any other memory access: when every launch passes
/// weights there, the load may go before the wait for the kernel before.
inline constexpr llvm::StringLiteral kPreloadAttr = "gai.preload";

/// Builds `func.func @name(inputs..., output)` over memrefs, like the CPU
/// kernel, whose body is one thread's work in a 1-D launch (gpu.block_id,
/// gpu.thread_id): `gai.grid` and `gai.block` (i64) give the launch.
///
/// Rows of the result go to thread groups: a warp per row when a row is at
/// most 32 vectors, else a block per row. Each thread walks its row in
/// vectors of 16 bytes (when every row length allows), or holds it in one
/// wider vector a row kernel loads once into registers; nothing is buffered
/// in memory: row ops keep only their statistics (a norm's mean and scale,
/// softmax's max and sum, a reduction's value), computed with warp shuffles
/// or gpu.all_reduce, and every element is computed where it is stored.
/// Fails with a diagnostic on the fusion op like the CPU builder.
///
/// Each result in `e4m3Results` (a bf16 row result that only fp8 GEMMs
/// read) is stored as e4m3 [..., k] (i8 memory) times 448 / its row's
/// largest |x|, and an f32 argument after the results gets each row's
/// scale (largest / 448): the fp8 GEMM's A and its row scales, made where
/// A is made instead of by a kernel of the GEMM's own.
mlir::FailureOr<mlir::func::FuncOp>
buildGpuFusionKernel(mlir::gai::FusionOp fusion, llvm::StringRef name,
                     mlir::OpBuilder &builder,
                     llvm::ArrayRef<unsigned> e4m3Results = {});

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_GPUFUSIONKERNELS_H
