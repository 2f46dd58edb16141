// --gai-cpu-codegen: buildCpuKernels as a pass; the shared object is left on
// the module as exec.kernel_library.
#include "compiler/CompilerPasses.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

namespace gai {

#define GEN_PASS_DEF_GAICPUCODEGEN
#include "compiler/CompilerPasses.h.inc"

namespace {

struct CpuCodegenPass : impl::GaiCpuCodegenBase<CpuCodegenPass> {
  using Base::Base;

  void runOnOperation() override {
    CpuCodegenOptions options;
    options.cpu = cpu;
    options.linker = linker;
    std::string error;
    mlir::ModuleOp module = getOperation();
    if (mlir::failed(attachKernelLibrary(module, buildCpuKernels(module, options, error), error)))
      signalPassFailure();
  }
};

} // namespace
} // namespace gai
