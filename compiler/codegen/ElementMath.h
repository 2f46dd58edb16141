// The per-element math of fusion regions, shared by the CPU and GPU kernel
// builders. Every function works on scalars and on vectors alike: the
// vector width of a GPU kernel is the number of elements one 16-byte load
// brings in.
#ifndef GAI_COMPILER_CODEGEN_ELEMENTMATH_H
#define GAI_COMPILER_CODEGEN_ELEMENTMATH_H

#include "mlir/IR/Builders.h"

namespace gai {

/// A constant shaped like `like` (scalar, or a splat vector) of element
/// type `element`.
mlir::Value constantLike(mlir::OpBuilder &b, mlir::Location loc,
                         mlir::Type like, mlir::Type element, double value);

/// add, sub, mul, div, max, min and pow of `op`, on floats or integers.
mlir::Value emitBinaryMath(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Operation *op, mlir::Value x, mlir::Value y);

/// The unary elementwise ops (neg, abs, exp, …, silu, gelu). Float math
/// is in the type of `x` (f32 in kernels).
mlir::Value emitUnaryMath(mlir::OpBuilder &b, mlir::Location loc,
                          mlir::Operation *op, mlir::Value x);

/// `x` converted element by element to `to` (floats, integers, i1).
mlir::Value convertElements(mlir::OpBuilder &b, mlir::Location loc,
                            mlir::Value x, mlir::Type to);

/// The inverse RoPE frequencies `inv` (f32, scalar or vector) rescaled as
/// mlir::gai::llama3Frequency does, `llama3` being gai.rope's
/// llama3_scaling.
mlir::Value emitLlama3Frequency(mlir::OpBuilder &b, mlir::Location loc, mlir::Value inv,
                                llvm::ArrayRef<double> llama3);

/// A RoPE frequency table (gai.rope's frequencies) as a constant
/// memref.global in the module around the builder (one per distinct
/// table, named by its contents so that identical kernels stay identical),
/// read through memref.get_global.
mlir::Value emitRopeTable(mlir::OpBuilder &b, mlir::Location loc, llvm::ArrayRef<float> values);

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_ELEMENTMATH_H
