// Index arithmetic and scalar math the gai ops' interpretations share.
#ifndef GAI_DIALECTS_GAI_GAIINTERPRETSUPPORT_H
#define GAI_DIALECTS_GAI_GAIINTERPRETSUPPORT_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"

#include <cstdint>
#include <vector>

namespace mlir::gai::host {

inline std::vector<int64_t> shapeOf(Value v) {
  auto s = cast<RankedTensorType>(v.getType()).getShape();
  return {s.begin(), s.end()};
}

/// Row-major strides of `shape`.
std::vector<int64_t> stridesOf(ArrayRef<int64_t> shape);

/// For each element of `out`, the flat index of the element of a tensor of
/// shape `in` that NumPy broadcasting reads.
std::vector<int64_t> broadcastIndices(ArrayRef<int64_t> in,
                                      ArrayRef<int64_t> out);

/// x·Φ(x), exactly or by the tanh approximation.
double gelu(double x, bool tanhApprox);

} // namespace mlir::gai::host

#endif // GAI_DIALECTS_GAI_GAIINTERPRETSUPPORT_H
