// Structured pruning: whole attention heads and MLP channels removed by
// shrinking the shapes that carry them (--gai-prune{heads=N mlp=R}).
#ifndef GAI_PASSES_STRUCTUREDPRUNE_H
#define GAI_PASSES_STRUCTUREDPRUNE_H

#include "mlir/IR/BuiltinOps.h"

namespace mlir::gai {

/// Removes `heads` query heads from every attention (whole KV groups under
/// grouped-query attention, so a multiple of the query heads per KV head)
/// and the fraction `mlp` of every MLP's channels, in every function of
/// `module`. Every value that carries the heads or channels, from the
/// projections' outputs to the contraction of the output projection
/// (caches included), shrinks along that axis; each weight sliced gets a
/// `gai.prune` attribute (PruneAttr.h). Errors name the op at fault.
LogicalResult pruneHeadsAndChannels(ModuleOp module, int64_t heads, double mlp);

/// Tensor parallelism (Megatron's): every attention's heads (whole KV
/// groups) and every MLP's channels split into `parts` equal shares, each
/// rank computing one. Values that carry them shrink as pruning shrinks
/// them, and each weight sliced gets `gai.tp` (the slicing of rank 0; rank
/// r keeps units [r·keep, (r+1)·keep) of each segment). `contractions`
/// gets the matmuls that sum over a split axis (the output and down
/// projections): each rank's result is a partial sum. An attention whose
/// KV heads do not divide stays whole (replicated on every rank); an MLP
/// whose channels do not divide is an error naming the op and the axis.
/// `columns` gets the column-parallel matmuls (replicated lhs, split
/// result): in training, each rank's gradient of their lhs is partial.
LogicalResult splitHeadsAndChannels(ModuleOp module, int64_t parts,
                                    SmallVectorImpl<Operation *> &contractions,
                                    SmallVectorImpl<Operation *> &columns);

/// The channels an MLP of `width` keeps after pruning the fraction `mlp`:
/// rounded to a multiple of 8 where `width` is one (GEMMs keep k a multiple
/// of 8: the CUDA GEMV's loads, 2:4's metadata bytes), at least one unit.
int64_t keptChannels(int64_t width, double mlp);

} // namespace mlir::gai

#endif // GAI_PASSES_STRUCTUREDPRUNE_H
