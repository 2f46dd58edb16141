// What the gai ops' interfaces speak: the reverse sweep a VJP rule adds to,
// the host tensors an interpretation computes, and the fusion traits.
#ifndef GAI_DIALECTS_GAI_GAIINTERFACES_H
#define GAI_DIALECTS_GAI_GAIINTERFACES_H

#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpDefinition.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <vector>

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

//===----------------------------------------------------------------------===//
// Reference interpretation
//===----------------------------------------------------------------------===//

/// A dense row-major host tensor. Every element type is held as double;
/// results of f32/f16/bf16 ops are rounded to that type first.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<double> data;

  HostTensor() = default;
  explicit HostTensor(std::vector<int64_t> shape, double fill = 0.0);
  int64_t numElements() const { return static_cast<int64_t>(data.size()); }
};

/// The interpreter as one op's interpretation sees it.
class InterpretState {
public:
  virtual ~InterpretState() = default;
  /// The value computed for `v`.
  virtual const HostTensor &in(Value v) = 0;
  /// Makes `t` the value of `v`, rounded to `v`'s element type.
  virtual void set(Value v, HostTensor t) = 0;
  /// The weight a gai.param of that name reads, if there is one.
  virtual std::optional<HostTensor> weight(StringRef name) = 0;
  /// Runs a nested block (all but its terminator) with its arguments bound
  /// to `arguments`; the terminator's operands.
  virtual llvm::Expected<std::vector<HostTensor>>
  run(Block &body, ArrayRef<HostTensor> arguments) = 0;
};

/// An interpretation error: "gai.<op>: message".
llvm::Error interpretError(Operation *op, const Twine &message);

/// `v` rounded to what `type` holds.
double roundTo(Type type, double v);

//===----------------------------------------------------------------------===//
// Fusion traits
//===----------------------------------------------------------------------===//

/// See Gai_BroadcastElementwise in GaiInterfaces.td.
template <typename ConcreteType>
class BroadcastElementwise
    : public mlir::OpTrait::TraitBase<ConcreteType, BroadcastElementwise> {};
/// See Gai_IndexFunction in GaiInterfaces.td.
template <typename ConcreteType>
class IndexFunction
    : public mlir::OpTrait::TraitBase<ConcreteType, IndexFunction> {};

} // namespace mlir::gai

#include "dialects/Gai/GaiInterfaces.h.inc"

#endif // GAI_DIALECTS_GAI_GAIINTERFACES_H
