// --gai-gpu-codegen: buildGpuKernels as a pass; the PTX is left on the module
// as exec.kernel_library.
#include "compiler/CompilerPasses.h"
#include "compiler/codegen/GpuCodegen.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace gai {

#define GEN_PASS_DEF_GAIGPUCODEGEN
#include "compiler/CompilerPasses.h.inc"

namespace {

struct GpuCodegenPass : impl::GaiGpuCodegenBase<GpuCodegenPass> {
  using Base::Base;

  void runOnOperation() override {
    GpuCodegenOptions options;
    options.chip = chip;
    options.toolkitPath = toolkitPath;
    std::string error;
    mlir::ModuleOp module = getOperation();
    if (mlir::failed(attachKernelLibrary(module, buildGpuKernels(module, options, error), error)))
      signalPassFailure();
  }
};

} // namespace
} // namespace gai
