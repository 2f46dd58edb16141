// Helpers for tests that run small hand-written gai modules through the
// reference interpreter: no weights, and random arguments.
#ifndef GAI_TEST_UNIT_SMALLMODULES_H
#define GAI_TEST_UNIT_SMALLMODULES_H

#include "compiler/reference/Interpreter.h"

#include <random>

namespace gai::test {

/// An empty safetensors file, for modules without parameters.
inline const SafetensorsFile &noWeights() {
  static const SafetensorsFile file = [] {
    const uint8_t bytes[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    return std::move(*SafetensorsFile::fromBytes(bytes, sizeof(bytes), "none"));
  }();
  return file;
}

/// Uniform values in [-range, range] for each of `func`'s arguments,
/// representable in f32.
inline std::vector<reference::HostTensor>
randomArguments(mlir::func::FuncOp func, unsigned seed, double range) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-range, range);
  std::vector<reference::HostTensor> args;
  for (mlir::Type t : func.getArgumentTypes()) {
    auto shaped = mlir::cast<mlir::RankedTensorType>(t);
    reference::HostTensor h(
        std::vector<int64_t>(shaped.getShape().begin(), shaped.getShape().end()));
    for (double &v : h.data)
      v = static_cast<float>(uniform(rng));
    args.push_back(std::move(h));
  }
  return args;
}

} // namespace gai::test

#endif // GAI_TEST_UNIT_SMALLMODULES_H
