// What the gai ops' interfaces speak: the reverse sweep a VJP rule adds to.
#ifndef GAI_DIALECTS_GAI_GAIINTERFACES_H
#define GAI_DIALECTS_GAI_GAIINTERFACES_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpDefinition.h"

namespace mlir::gai {

//===----------------------------------------------------------------------===//
// Autodiff
//===----------------------------------------------------------------------===//

/// The reverse sweep as one op's VJP rule sees it.
class VJPSweep {
public:
  virtual ~VJPSweep() = default;
  /// Adds `cotangent` (of `v`'s type) to the cotangent of `v`.
  virtual void accumulate(Value v, Value cotangent) = 0;
  /// Differentiates `ops` (in program order), last first: a composite op's
  /// rule writes the op out as primitive ones and sweeps back over them.
  virtual LogicalResult backward(ArrayRef<Operation *> ops) = 0;
};

} // namespace mlir::gai

#include "dialects/Gai/GaiInterfaces.h.inc"

#endif // GAI_DIALECTS_GAI_GAIINTERFACES_H
