// Running a codegen pass pipeline with its diagnostics kept as text, so a
// failure reaches the user as one error instead of stray stderr lines.
#ifndef GAI_COMPILER_CODEGEN_RUNPASSES_H
#define GAI_COMPILER_CODEGEN_RUNPASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/Support/raw_ostream.h"

#include <string>

namespace gai {

/// Runs `pm` on `module`; on failure sets `error` to `what` followed by the
/// diagnostics the passes emitted.
inline mlir::LogicalResult runPasses(mlir::PassManager &pm, mlir::ModuleOp module,
                                     const std::string &what, std::string &error) {
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  mlir::ScopedDiagnosticHandler handler(module.getContext(), [&](mlir::Diagnostic &d) {
    os << d << "\n";
    return mlir::success();
  });
  if (mlir::succeeded(pm.run(module)))
    return mlir::success();
  error = what + ": " + diagnostics;
  return mlir::failure();
}

} // namespace gai

#endif // GAI_COMPILER_CODEGEN_RUNPASSES_H
