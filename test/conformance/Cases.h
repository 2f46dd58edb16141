// The conformance cases: small gai functions, each covering one or more
// commands, with how their inputs are drawn.
#ifndef GAI_TEST_CONFORMANCE_CASES_H
#define GAI_TEST_CONFORMANCE_CASES_H

#include "compiler/reference/Interpreter.h"

#include <cstdint>
#include <vector>

namespace gai::conformance {

/// Which targets compile a case: every case runs on the CPU and CUDA
/// backends, except the few that only the cuda target lowers (gated GEMMs,
/// folded cache writes, bf16).
enum class Targets { All, CudaOnly };

/// Integers drawn uniformly from [lo, hi).
struct IntRange {
  int64_t lo = 0, hi = 1;
};

struct Case {
  const char *name;
  Targets targets;
  /// The commands the compiled artifact must contain (core/Commands.h names).
  std::vector<const char *> covers;
  /// A module with one function @forward. Arguments named by a state name
  /// (`cache.`...) are state, as are results so named.
  const char *ir;
  /// The i32 arguments' ranges, in argument order; floats are uniform in
  /// [-1.5, 1.5].
  std::vector<IntRange> ints = {};
  /// Changes the drawn arguments (to ignore some labels, say), or null.
  void (*adjust)(std::vector<reference::HostTensor> &args) = nullptr;
  unsigned seed = 1;
};

const std::vector<Case> &cases();

} // namespace gai::conformance

#endif // GAI_TEST_CONFORMANCE_CASES_H
