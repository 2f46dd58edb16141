// A reference interpreter for gai IR on the host: straightforward loops in
// double precision. It is the oracle the numerical tests compare the
// frontend, the passes and (later) generated code against; it is not a
// backend.
#ifndef GAI_COMPILER_REFERENCE_INTERPRETER_H
#define GAI_COMPILER_REFERENCE_INTERPRETER_H

#include "dialects/Gai/GaiInterfaces.h"
#include "gai/Safetensors.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace gai::reference {

/// The host tensor the gai ops' interpretations compute (see
/// InterpretOpInterface).
using HostTensor = mlir::gai::HostTensor;

/// Reads a tensor of a safetensors file (any float or integer dtype).
HostTensor fromTensorView(const TensorView &view);

/// Evaluates `func` on `arguments`, each op through its
/// InterpretOpInterface; `gai.param` reads `weights`, whose tensor names
/// `paramNameOf` maps to parameter names (identity when empty). Errors (an
/// op without an interpretation, a missing weight) come back as llvm::Error.
llvm::Expected<std::vector<HostTensor>>
evaluate(mlir::func::FuncOp func, llvm::ArrayRef<HostTensor> arguments,
         const SafetensorsFile &weights,
         std::function<std::string(llvm::StringRef)> paramNameOf = {},
         bool roundF32 = true);

} // namespace gai::reference

#endif // GAI_COMPILER_REFERENCE_INTERPRETER_H
