// --gai-lower-to-exec: lowerToExec as a pass that rewrites the module in place.
#include "compiler/CompilerPasses.h"

#include "dialects/Exec/ExecOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace gai {

#define GEN_PASS_DEF_GAILOWERTOEXEC
#include "compiler/CompilerPasses.h.inc"

namespace {

struct LowerToExecPass : impl::GaiLowerToExecBase<LowerToExecPass> {
  using Base::Base;
  explicit LowerToExecPass(ExecOptions options)
      : weightOffsets(std::move(options.weightOffsets)) {
    gpuKernels = options.gpuKernels;
    foldNormRows = options.foldNormRows;
    besideWindow = options.besideWindow;
    paramsInState = options.paramsInState;
    e4m3ActivationRows = options.e4m3ActivationRows;
  }

  void runOnOperation() override {
    ExecOptions options;
    options.weightOffsets = weightOffsets;
    options.gpuKernels = gpuKernels;
    options.foldNormRows = foldNormRows;
    options.besideWindow = besideWindow;
    options.paramsInState = paramsInState;
    options.e4m3ActivationRows = gpuKernels ? static_cast<int64_t>(e4m3ActivationRows) : 0;
    mlir::ModuleOp module = getOperation();
    mlir::FailureOr<mlir::OwningOpRef<mlir::ModuleOp>> lowered =
        lowerToExec(module, options);
    if (mlir::failed(lowered))
      return signalPassFailure();
    // The exec module reads the gai one while it is built, so it is built
    // beside it and then takes its place.
    mlir::Block *body = module.getBody();
    body->clear();
    body->getOperations().splice(body->end(),
                                 (**lowered).getBody()->getOperations());
    module->setAttrs((**lowered)->getAttrDictionary());
  }

  /// Not a command-line option: only gaic knows the weights file.
  llvm::StringMap<int64_t> weightOffsets;
};

} // namespace

std::unique_ptr<mlir::Pass> createGaiLowerToExec(ExecOptions options) {
  return std::make_unique<LowerToExecPass>(std::move(options));
}

} // namespace gai
