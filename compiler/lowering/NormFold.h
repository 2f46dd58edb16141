// Which RMSNorms of a decode step fold into the GEMMs around them: the GEMM
// that makes the norm's input also writes x ⊙ weight and each row's sum of
// squares, and the GEMMs that read the norm scale their products by the
// row's 1/rms. The norm then costs no kernel, and no dependency, of its own.
#ifndef GAI_COMPILER_LOWERING_NORMFOLD_H
#define GAI_COMPILER_LOWERING_NORMFOLD_H

#include "dialects/Gai/GaiOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallVector.h"

namespace gai {

struct NormFold {
  mlir::Operation *producer;  // a gai.gemm or gai.matmul: the norm's input
  mlir::gai::FusionOp norm;   // a region of one rms_norm (and its conversion), lowered to nothing
  mlir::Value weight;         // [n], the norm's scale: a parameter or argument
  double epsilon;
  bool unitOffset;            // scale by weight + 1 (Gemma)
  int64_t rows;               // of the input, all batch dimensions folded in
  int64_t squaresOffset;      // bytes into the entry's squares buffer
};

/// The norms of `func` that fold, in order. Each is a gai.fusion of exactly
/// one rms_norm (perhaps converted after) whose input (through reshapes) is
/// made by a GEMM of at most `maxRows` rows against a weight stored [n, k]
/// (k a multiple of 8), and whose result feeds only such GEMMs as their A
/// (gai.gemm, gai.matmul, gai.gated_gemm), all in one float type; the
/// norm's input and weight are that type or, over bf16, f32 (an f32
/// residual stream): the shapes the CUDA GEMV runs.
llvm::SmallVector<NormFold> findNormFolds(mlir::func::FuncOp func, int64_t maxRows);

} // namespace gai

#endif // GAI_COMPILER_LOWERING_NORMFOLD_H
