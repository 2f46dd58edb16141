// Declarations and registration of the compiler's passes: lowering to the
// exec dialect and kernel codegen (compiler/CompilerPasses.td).
#ifndef GAI_COMPILER_COMPILERPASSES_H
#define GAI_COMPILER_COMPILERPASSES_H

#include "compiler/codegen/CpuCodegen.h"
#include "compiler/lowering/ExecLowering.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Pass/Pass.h"

namespace gai {

#define GEN_PASS_DECL
#include "compiler/CompilerPasses.h.inc"

/// --gai-lower-to-exec with every ExecOptions field, the weight offsets of
/// an external weights file included.
std::unique_ptr<mlir::Pass> createGaiLowerToExec(ExecOptions options);

/// The module attribute the codegen passes leave: a KernelLibrary as a
/// dictionary (format, code, kernels, symbols, launch, programmatic_launch).
inline constexpr llvm::StringLiteral kKernelLibraryAttr = "exec.kernel_library";

mlir::DictionaryAttr kernelLibraryAttr(mlir::MLIRContext *context,
                                       const KernelLibrary &library);

/// What a codegen pass leaves: the library as kKernelLibraryAttr, or
/// `error` on the module and failure.
mlir::LogicalResult attachKernelLibrary(mlir::ModuleOp module,
                                        mlir::FailureOr<KernelLibrary> library,
                                        const std::string &error);

/// The library a codegen pass left on `module`; a missing or malformed
/// attribute is reported on the module.
mlir::FailureOr<KernelLibrary> kernelLibraryOf(mlir::ModuleOp module);

#define GEN_PASS_REGISTRATION
#include "compiler/CompilerPasses.h.inc"

} // namespace gai

#endif // GAI_COMPILER_COMPILERPASSES_H
