// Which commands the CUDA backend records together: runs of GEMMs (merged
// into one batched GEMM or one multi-part GEMV where their operands allow)
// and a layer's key and value cache writes (one launch, one dependent step
// fewer before the attention that reads both).
#include "hal/cuda/CommandGroups.h"

namespace gai::cuda {
namespace {

/// Whether `b` can share `a`'s launch: the same type, shape and positions,
/// caches of one size, and no write of one touching what the other reads
/// or writes.
bool pairsWith(const cmd::CacheWrite &a, const cmd::CacheWrite &b) {
  return a.dtype == b.dtype && a.batch == b.batch && a.heads == b.heads &&
         a.slots == b.slots && a.rows == b.rows && a.dim == b.dim &&
         a.positions == b.positions && a.cache.size == b.cache.size &&
         !a.cache.overlaps(b.cache) && !a.cache.overlaps(b.update) &&
         !b.cache.overlaps(a.update);
}

/// Whether `grad` (the next step) can give `loss`'s result too: the same
/// logits, labels and reduction, and nothing `grad` reads or writes is the
/// loss.
bool pairsWith(const cmd::CrossEntropy &loss, const cmd::CrossEntropyGrad &grad) {
  return loss.logits == grad.logits && loss.labels == grad.labels && loss.rows == grad.rows &&
         loss.vocab == grad.vocab && loss.ignoreIndex == grad.ignoreIndex &&
         loss.reduction == grad.reduction && loss.dtype == grad.dtype &&
         !loss.loss.overlaps(grad.logits) && !loss.loss.overlaps(grad.labels) &&
         !loss.loss.overlaps(grad.lossGrad) && !loss.loss.overlaps(grad.out);
}

} // namespace

std::vector<StepGroup> groupSteps(const std::vector<Command> &steps,
                                  const std::vector<bool> &beside) {
  auto isBeside = [&](size_t i) { return i < beside.size() && beside[i]; };
  std::vector<StepGroup> groups;
  for (size_t i = 0; i < steps.size();) {
    StepGroup group;
    group.first = i;
    group.beside = isBeside(i);
    if (const auto *gemm = std::get_if<cmd::Gemm>(&steps[i])) {
      group.kind = StepGroup::Kind::Gemms;
      size_t end = i + 1;
      while (end < steps.size() && !group.beside) {
        const auto *next = std::get_if<cmd::Gemm>(&steps[end]);
        if (!next || next->dtype != gemm->dtype || isBeside(end))
          break;
        ++end;
      }
      group.count = end - i;
      group.endsEntry = end == steps.size();
      if (!group.endsEntry)
        group.nextAttention = std::get_if<cmd::Attention>(&steps[end]);
    } else if (group.beside) {
      // A launch or reduce beside a GEMM: alone.
    } else if (const auto *write = std::get_if<cmd::CacheWrite>(&steps[i])) {
      const auto *next = i + 1 < steps.size() ? std::get_if<cmd::CacheWrite>(&steps[i + 1])
                                              : nullptr;
      if (next && pairsWith(*write, *next)) {
        group.kind = StepGroup::Kind::CacheWrites;
        group.count = 2;
      }
    } else if (const auto *loss = std::get_if<cmd::CrossEntropy>(&steps[i])) {
      const auto *grad = i + 1 < steps.size()
                             ? std::get_if<cmd::CrossEntropyGrad>(&steps[i + 1])
                             : nullptr;
      if (grad && pairsWith(*loss, *grad)) {
        group.kind = StepGroup::Kind::LossWithGrad;
        group.count = 2;
      }
    }
    groups.push_back(group);
    i += group.count;
  }
  return groups;
}

} // namespace gai::cuda
