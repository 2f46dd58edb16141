// The ops and enums of the gai dialect.
#ifndef GAI_DIALECTS_GAI_GAIOPS_H
#define GAI_DIALECTS_GAI_GAIOPS_H

#include "dialects/Gai/GaiDialect.h"
#include "dialects/Gai/GaiInterfaces.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialects/Gai/GaiEnums.h.inc"

namespace mlir::gai {
/// "[2, 32, 64]": how diagnostics and reports print shapes.
std::string formatShape(ArrayRef<int64_t> shape);

/// Infers the NumPy broadcast of `lhs` and `rhs` for binary op `opName`;
/// reports which dimensions disagree.
LogicalResult inferBroadcastType(std::optional<Location> loc, StringRef opName,
                                 Value lhs, Value rhs,
                                 SmallVectorImpl<Type> &types);
} // namespace mlir::gai

#define GET_OP_CLASSES
#include "dialects/Gai/GaiOps.h.inc"

#endif // GAI_DIALECTS_GAI_GAIOPS_H
