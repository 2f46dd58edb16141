// What --gai-prune records on the parameters it changes (the `gai.prune`
// attribute), for gaic, which makes their weights at compile time.
#ifndef GAI_PASSES_PRUNEATTR_H
#define GAI_PASSES_PRUNEATTR_H

#include "dialects/Gai/GaiOps.h"

#include <optional>
#include <string>

namespace mlir::gai {

constexpr llvm::StringLiteral kPruneAttr = "gai.prune";
/// Tensor parallelism's split of a weight (--gai-shard-tensors): the same
/// slicing, each rank keeping its own `keep` units of every segment.
constexpr llvm::StringLiteral kTensorParallelAttr = "gai.tp";

/// `units` blocks of `size` indices from `offset` along a weight's axis:
/// block u is unit u of its group (a KV group of heads, an MLP channel).
struct PruneSegment {
  int64_t offset, units, size;
  int64_t end() const { return offset + units * size; }
  bool operator==(const PruneSegment &o) const {
    return offset == o.offset && units == o.units && size == o.size;
  }
};

/// Structured pruning of one weight: along `axis` of the file's tensor, the
/// `segments` lose all but `keep` units each, the same units across every
/// weight of `group`. `kind` says what a unit is: "heads" (one attention's
/// KV group, `perUnit` query heads) or "channels" (an MLP's, one each).
/// Under tensor parallelism, `replicas` consecutive ranks hold the same
/// units (a KV head shared by the query heads of several ranks): rank r
/// keeps units [(r / replicas)·keep, (r / replicas + 1)·keep).
struct WeightSlicing {
  std::string group, kind;
  int64_t axis = 0, keep = 0, perUnit = 1;
  SmallVector<PruneSegment> segments;
  int64_t replicas = 1;
};

/// The slicing --gai-prune{heads=… mlp=…} recorded on `p`, if any.
std::optional<WeightSlicing> weightSlicing(ParamOp p, StringRef attr = kPruneAttr);
void setWeightSlicing(ParamOp p, const WeightSlicing &slicing, StringRef attr = kPruneAttr);

/// A weight 2:4-masked in the graph (--gai-prune{pattern=2:4
/// masked=true}), whose pruned values gaic zeroes at compile time too:
/// `kn` when the file holds it [k, n] (the groups of four run down its
/// columns).
struct Masked24 {
  bool kn = false;
};
std::optional<Masked24> masked24(ParamOp p);
void setMasked24(ParamOp p, Masked24 masked);

} // namespace mlir::gai

#endif // GAI_PASSES_PRUNEATTR_H
