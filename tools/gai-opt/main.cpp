// gai-opt: mlir-opt with the gai and exec dialects and every gai pass, the
// lowering and codegen ones included, for lit tests and pass debugging.
#include "compiler/CompilerPasses.h"
#include "dialects/Exec/ExecOps.h"
#include "dialects/Gai/GaiDialect.h"
#include "gai/Version.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  llvm::cl::SetVersionPrinter(
      [](llvm::raw_ostream &os) { os << gai::versionText() << "\n"; });
  mlir::registerTransformsPasses();
  mlir::gai::registerGaiPasses();
  gai::registerGaiCompilerPasses();
  mlir::DialectRegistry registry;
  registry.insert<mlir::gai::GaiDialect, mlir::exec::ExecDialect,
                  mlir::func::FuncDialect, mlir::arith::ArithDialect,
                  mlir::tensor::TensorDialect, mlir::math::MathDialect,
                  mlir::memref::MemRefDialect, mlir::scf::SCFDialect,
                  mlir::gpu::GPUDialect, mlir::vector::VectorDialect,
                  mlir::shard::ShardDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "gai optimizer driver\n", registry));
}
