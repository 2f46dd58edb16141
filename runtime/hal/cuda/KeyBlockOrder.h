// The order in which attention's backward runs its key-side blocks. Under a
// causal mask a block's work falls with its keys' place (the first keys are
// seen by every query), so the order sets how long the last blocks run
// alone. Head after head keeps a few heads' Q, dO and dQ sums warm in L2
// but ends on the last head's heaviest blocks; longest first over all heads
// ends evenly but spreads those reads over every head. Between the two:
// heads in groups, each group's blocks longest first.
#ifndef GAI_RUNTIME_HAL_CUDA_KEYBLOCKORDER_H
#define GAI_RUNTIME_HAL_CUDA_KEYBLOCKORDER_H

#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define GAI_HOST_DEVICE __host__ __device__
#else
#define GAI_HOST_DEVICE
#endif

namespace gai::cuda {

/// Which block a linear block index is: `index` among its head's key blocks
/// (0 the first keys) and `pair` = batch · heads + head.
struct KeyBlock {
  int index, pair;
};

/// Block `linear` of keyBlocks × pairs, the pairs in `groups` groups of
/// [pairs·g / groups, pairs·(g + 1) / groups): a group's blocks come after
/// the earlier groups', its pairs fastest, then its key blocks in order.
/// groups = pairs is head after head; 1 is longest first over all pairs.
GAI_HOST_DEVICE inline KeyBlock keyBlockOf(int linear, int keyBlocks, int pairs,
                                           int groups) {
  auto firstPair = [&](int g) {
    return static_cast<int>(static_cast<int64_t>(pairs) * g / groups);
  };
  // The groups' blocks come in the pairs' order, so the group of `linear`
  // holds the pair linear / keyBlocks would be in a head-after-head order.
  const int pair = linear / keyBlocks;
  int g = static_cast<int>(static_cast<int64_t>(pair) * groups / pairs);
  while (g + 1 < groups && firstPair(g + 1) <= pair)
    ++g;
  while (firstPair(g) > pair)
    --g;
  const int first = firstPair(g), size = firstPair(g + 1) - first;
  const int within = linear - keyBlocks * first;
  return {within / size, first + within % size};
}

/// The groups for `pairs` × `keyBlocks` blocks of which the GPU holds
/// `held` at once: under a causal mask groups of about `spread` waves (0:
/// one a pair); otherwise one a pair, as the blocks' work is even.
inline int keyBlockGroups(int64_t pairs, int64_t keyBlocks, int64_t held,
                          float spread, bool causal) {
  if (!causal || spread <= 0 || pairs <= 1)
    return static_cast<int>(std::max<int64_t>(pairs, 1));
  const double waves = static_cast<double>(pairs * keyBlocks) /
                       (static_cast<double>(spread) *
                        static_cast<double>(std::max<int64_t>(held, 1)));
  return static_cast<int>(
      std::clamp<int64_t>(static_cast<int64_t>(waves), 1, pairs));
}

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_KEYBLOCKORDER_H
