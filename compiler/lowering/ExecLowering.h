// Lowers the fused gai module to the exec dialect: buffers in spaces,
// a static arena plan per entry point, and one command per op.
#ifndef GAI_COMPILER_LOWERING_EXECLOWERING_H
#define GAI_COMPILER_LOWERING_EXECLOWERING_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringMap.h"

namespace gai {

struct ExecOptions {
  /// Byte offsets of the weights in an external file, by name. When empty,
  /// the weights are packed in order of first use, 64-byte aligned.
  llvm::StringMap<int64_t> weightOffsets;
  /// Build kernels for the GPU (buildGpuFusionKernel) instead of the CPU.
  bool gpuKernels = false;
  /// Parameters are state named `param.<name>` (trainable), initialised from
  /// the weight of their name, instead of read-only weights.
  bool paramsInState = false;
  /// Fold RMSNorms between GEMMs of at most this many rows into them
  /// (findNormFolds; the CUDA GEMV's rows); 0: never.
  int64_t foldNormRows = 0;
  /// Keep a GEMM's inputs live this many ops past it where nothing reads its
  /// result sooner (collectBuffers), for the ops after it to run beside it
  /// on another stream; 0: never.
  int64_t besideWindow = 0;
  /// A kernel's bf16 result that only fp8 GEMMs of more than this many rows
  /// read, as their A, is written by the kernel in e4m3 with a scale a row
  /// (buildGpuFusionKernel), and the GEMMs read that (exec.gemm's a_scale)
  /// instead of making A e4m3 in a launch of their own; 0: never.
  int64_t e4m3ActivationRows = 0;
};

/// The beside window gaic uses for the CUDA target: a weight gradient's GEMM
/// overlaps about a dozen ops, the next layer's input gradients and norms.
constexpr int64_t kCudaBesideWindow = 12;

/// Every `func.func` of `fused` becomes an `exec.entry`: arguments named
/// `cache.*`, `grad.*`, `adam.*` or `param.*` become state shared by all
/// entries, other arguments inputs; results named for state update it (in
/// place when safe), the others are outputs; parameters are weights. Intermediate
/// buffers get offsets in one arena from the liveness plan; reshapes are
/// views and cache writes happen in place. Each gai.fusion becomes a
/// `func.func` kernel (identical regions share one) and an `exec.launch`.
/// Ops with no lowering are reported on the op.
mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>>
lowerToExec(mlir::ModuleOp fused, const ExecOptions &options = {});

} // namespace gai

#endif // GAI_COMPILER_LOWERING_EXECLOWERING_H
