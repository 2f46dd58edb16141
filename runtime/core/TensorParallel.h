// How a weight split over tensor-parallel ranks lies in the whole tensor:
// the one rule that slices weights for a rank (checkpoints, weights bound at
// run time) and gathers the slices back.
#ifndef GAI_CORE_TENSORPARALLEL_H
#define GAI_CORE_TENSORPARALLEL_H

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace gai {

/// Along `axis` of the whole tensor `wholeShape`, each (offset, units,
/// size) triple of `segments` is `units` blocks of `size`; tp rank r holds
/// blocks [r·keep, (r+1)·keep) of each, and the rest of the axis whole;
/// with `replicas` > 1, ranks r of one r / replicas hold the same blocks.
struct TensorParallelSplit {
  std::vector<int64_t> wholeShape, segments;
  int64_t axis = 0, keep = 0, replicas = 1;

  /// For each index along the whole axis: the replica group that holds it
  /// (-1: every rank) and its index in that group's slice.
  std::vector<std::pair<int64_t, int64_t>> where() const;
  /// The slice's extent along the axis.
  int64_t localExtent() const;
  /// `rank`'s slice of `whole`, elements of `elementBytes`.
  std::vector<uint8_t> slice(const uint8_t *whole, size_t elementBytes, int64_t rank) const;
  /// The whole tensor from every rank's slice of `sliceBytes`, one after
  /// another (a replica group's first rank gives its blocks).
  std::vector<uint8_t> gather(const uint8_t *slices, size_t sliceBytes,
                              size_t elementBytes) const;

private:
  int64_t outer() const;
  int64_t inner() const;
};

} // namespace gai

#endif // GAI_CORE_TENSORPARALLEL_H
