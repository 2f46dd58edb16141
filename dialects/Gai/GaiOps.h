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

/// RoPE's inverse frequency of pair i of a head of `dim`, theta^(-2i/dim)
/// in f32 as HF computes it, rescaled by `llama3` ([factor, low_freq_factor,
/// high_freq_factor, original context], empty: none) as HF's
/// _compute_llama3_parameters does: wavelengths shorter than
/// context / high_freq_factor keep theirs, longer than context /
/// low_freq_factor are divided by factor, and those between blend the two.
float ropeFrequency(int64_t i, int64_t dim, double theta, ArrayRef<double> llama3);
/// The llama3 rescaling alone, of an inverse frequency `inv`.
float llama3Frequency(float inv, ArrayRef<double> llama3);

/// Infers the NumPy broadcast of `lhs` and `rhs` for binary op `opName`;
/// reports which dimensions disagree.
LogicalResult inferBroadcastType(std::optional<Location> loc, StringRef opName,
                                 Value lhs, Value rhs,
                                 SmallVectorImpl<Type> &types);
} // namespace mlir::gai

#define GET_OP_CLASSES
#include "dialects/Gai/GaiOps.h.inc"

#endif // GAI_DIALECTS_GAI_GAIOPS_H
