// The CPU backend's code generation: kernels → LLVM → a shared object.
#ifndef GAI_COMPILER_CODEGEN_CPUCODEGEN_H
#define GAI_COMPILER_CODEGEN_CPUCODEGEN_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gai {

struct CpuCodegenOptions {
  /// The x86-64 level the code may assume; the runtime checks it on load.
  std::string cpu = "x86-64-v3";
  /// `ld.lld`, found when gaic was built; GAI_LD overrides it.
  std::string linker;
};

/// A shared object with one exported `void gai_<kernel>(void **buffers)` per
/// kernel: the buffers are the launch's arguments in order.
struct KernelLibrary {
  std::string format = "elf-shared-object"; ///< or "ptx"
  std::vector<uint8_t> code; ///< in `format`
  std::vector<std::string> kernels; ///< the exec module's kernel names
  std::vector<std::string> symbols; ///< their exported symbols, same order
  /// GPU kernels only: {grid, block} of each kernel's 1-D launch.
  std::vector<std::pair<int64_t, int64_t>> launch;
  /// GPU kernels only: each waits for the kernel before it in the stream
  /// (griddepcontrol.wait) before touching memory, so the runtime may
  /// launch it as a programmatic dependent.
  bool programmaticLaunch = false;
};

/// Succeeds for the x86-64 levels the runtime can check on load (x86-64,
/// x86-64-v2, -v3, -v4); the error names the choices.
llvm::Error checkCpuLevel(llvm::StringRef cpu);

/// Compiles the `func.func` kernels of an exec module: scf → cf, then
/// arith, math and memref to the LLVM dialect (memrefs as bare pointers),
/// LLVM IR at O3 for `options.cpu`, an object file, linked by lld. Errors
/// are returned in `error`.
mlir::FailureOr<KernelLibrary> buildCpuKernels(mlir::ModuleOp execModule,
                                               const CpuCodegenOptions &options,
                                               std::string &error);

/// The LLVM IR of the kernels, for `gaic --emit=llvm`.
mlir::FailureOr<std::string> cpuKernelsLLVMIR(mlir::ModuleOp execModule,
                                              const CpuCodegenOptions &options,
                                              std::string &error);

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_CPUCODEGEN_H
