#include "core/StepOverlap.h"

#include <algorithm>

namespace gai {
namespace {

bool anyOverlap(const std::vector<Buffer> &a, const std::vector<Buffer> &b) {
  for (const Buffer &x : a)
    for (const Buffer &y : b)
      if (x.overlaps(y))
        return true;
  return false;
}

/// A step the second stream can run alone: a reduce, or a GEMM over float
/// operands with nothing folded in that shares scratch or state with the
/// steps around it.
bool leadsBeside(const Command &command) {
  if (std::holds_alternative<cmd::Reduce>(command))
    return true;
  const auto *g = std::get_if<cmd::Gemm>(&command);
  return g && !g->quantized() && !g->gate.present() &&
         !g->normWeight.present() && !g->aSquares.present() &&
         (g->dtype == format::DType::F32 || g->dtype == format::DType::BF16);
}

} // namespace

bool mustFollow(const Command &earlier, const Command &later) {
  const std::vector<Buffer> earlierWrites = writesOf(earlier),
                            laterWrites = writesOf(later);
  return anyOverlap(earlierWrites, buffersOf(later)) ||
         anyOverlap(buffersOf(earlier), laterWrites);
}

std::vector<bool> stepsBeside(const std::vector<Command> &steps,
                              size_t window) {
  const size_t n = steps.size();
  std::vector<bool> beside(n, false);
  // Whether no step in (at, at + window] must follow step `at`, other than
  // step `except`.
  auto freeAfter = [&](size_t at, size_t except) {
    for (size_t j = at + 1; j < n && j <= at + window; ++j)
      if (j != except && mustFollow(steps[at], steps[j]))
        return false;
    return true;
  };
  for (size_t i = 0; i < n; ++i) {
    if (!leadsBeside(steps[i]))
      continue;
    const size_t next = i + 1;
    const bool follower = next < n &&
                          (std::holds_alternative<cmd::Launch>(steps[next]) ||
                           std::holds_alternative<cmd::Reduce>(steps[next])) &&
                          mustFollow(steps[i], steps[next]) &&
                          freeAfter(next, n);
    // Something must be left to run beside it.
    if ((follower ? next + 1 : next) >= n || !freeAfter(i, follower ? next : n))
      continue;
    beside[i] = true;
    if (follower)
      beside[next] = true;
  }
  return beside;
}

} // namespace gai
