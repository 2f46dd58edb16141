// The CUDA backend's rewrites over an entry's commands: which ones it
// records together rather than one by one.
#ifndef GAI_RUNTIME_HAL_CUDA_COMMANDGROUPS_H
#define GAI_RUNTIME_HAL_CUDA_COMMANDGROUPS_H

#include "core/Commands.h"

#include <vector>

namespace gai::cuda {

struct StepGroup {
  enum class Kind {
    Single,      // one command, recorded alone
    Gemms,       // consecutive GEMMs of one type, which mergeGemms may join
    CacheWrites, // two cache writes of one shape and positions, one launch
    LossWithGrad, // a cross-entropy and then its gradient over the same
                  // logits: one kernel gives both
  };
  Kind kind = Kind::Single;
  size_t first = 0, count = 1;
  /// Gemms: the attention right after the group, whose caches a decode
  /// GEMV may pull into L2 (null: none).
  const cmd::Attention *nextAttention = nullptr;
  /// Gemms: the group ends the entry (its GEMV may pick greedy tokens).
  bool endsEntry = false;
  /// The step runs beside the others (stepsBeside): a group of its own.
  bool beside = false;
};

/// Splits `steps` into groups, in order, covering every step once; a step
/// that `beside` marks (empty: none) is a group alone.
std::vector<StepGroup> groupSteps(const std::vector<Command> &steps,
                                  const std::vector<bool> &beside = {});

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_COMMANDGROUPS_H
