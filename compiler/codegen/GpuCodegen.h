// The CUDA backend's code generation: kernels → gpu → NVVM → PTX, all
// through MLIR's own pipeline and LLVM's NVPTX backend.
#ifndef GAI_COMPILER_CODEGEN_GPUCODEGEN_H
#define GAI_COMPILER_CODEGEN_GPUCODEGEN_H

#include "compiler/codegen/CpuCodegen.h"

namespace gai {

struct GpuCodegenOptions {
  /// The SM the PTX is for: sm_80 or sm_90. The driver compiles it at load.
  std::string chip = "sm_90";
  /// The CUDA toolkit whose libdevice supplies the math functions; empty:
  /// $GAI_CUDA_PATH, else the one found when gai was built.
  std::string toolkitPath;
};

/// Compiles the exec module's GPU kernels (func.funcs with `gai.grid` and
/// `gai.block`, from buildGpuFusionKernel) into one PTX module: each
/// becomes a `gpu.func` kernel taking one pointer per buffer. The library's
/// `code` is the PTX text and `launch` the grid and block per kernel.
mlir::FailureOr<KernelLibrary> buildGpuKernels(mlir::ModuleOp execModule,
                                               const GpuCodegenOptions &options,
                                               std::string &error);

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_GPUCODEGEN_H
