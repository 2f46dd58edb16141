// Which steps of an entry may run beside the others: on a second stream,
// after the steps before them, and before the first later step that touches
// what they read or write.
#ifndef GAI_RUNTIME_CORE_STEPOVERLAP_H
#define GAI_RUNTIME_CORE_STEPOVERLAP_H

#include "core/Commands.h"

#include <cstddef>
#include <vector>

namespace gai {

/// Whether `later` must wait for `earlier` if both could run at once: one
/// writes a byte that the other reads or writes (writesOf, buffersOf).
bool mustFollow(const Command &earlier, const Command &later);

/// The steps that may run beside the rest: a reduce, or a GEMM over float
/// operands (no folded norm, no gate), that no step within `window` after it
/// must follow, except one launch or reduce right after it, which then goes
/// beside too. That is a weight gradient and its squared sum, or a norm
/// weight's gradient (column sums): nothing but the update reads them, and
/// the compiler keeps their inputs live past them (collectBuffers'
/// besideWindow), so the next input gradients and norms run while they do.
std::vector<bool> stepsBeside(const std::vector<Command> &steps,
                              size_t window = 4);

} // namespace gai

#endif // GAI_RUNTIME_CORE_STEPOVERLAP_H
