// The weights --gai-prune's changes need, made at compile time from the
// float ones (sliced for structured pruning, zeroed or compressed for
// 2:4), and what was removed, for gaic --report.
#ifndef GAI_COMPILER_PRUNEDWEIGHTS_H
#define GAI_COMPILER_PRUNEDWEIGHTS_H

#include "compiler/Calibration.h"
#include "compiler/MadeWeights.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace gai {

/// One attention's heads or one MLP's channels, and the units that went.
struct PrunedGroup {
  std::string name, kind;   ///< `model.layers.0.self_attn.`; heads or channels
  int64_t units = 0;        ///< KV groups (heads) or channels
  int64_t perUnit = 1;      ///< query heads in a KV group
  std::vector<int64_t> removed; ///< ascending
  bool calibrated = false;      ///< chosen by activation-weighted magnitude
};

struct PrunedWeights : MadeWeights {
  std::vector<PrunedGroup> groups;
  int64_t sparseMatrices = 0; ///< 2:4, compressed or masked
  int64_t calibrationTokens = 0; ///< --calibration's tokens; 0: none
};

/// Whether `module` has weights that pruneWeights makes.
bool hasPrunedWeights(mlir::ModuleOp module);

/// Makes, from `weights`, every weight that --gai-prune changed in
/// `module`. Structured pruning keeps the units of each group whose
/// weights have the largest Σw² over all of the group's weights (ties to
/// the lower unit), the same units in every weight of the group; with
/// `calibration`, each w² weighted by its input feature's Σx² (a bias's by
/// the token count), for the groups whose weights were all measured. 2:4 keeps
/// the two largest |w| of each four along k (gai/Sparsity.h), from the
/// sliced weight where both apply. A missing or mis-shaped weight is an
/// error naming it and the file.
llvm::Expected<PrunedWeights> pruneWeights(mlir::ModuleOp module, const WeightSet &weights,
                                           const ActivationSquares *calibration = nullptr);

/// Tensor parallelism's weights (--gai-shard-tensors' `gai.tp`): each
/// split weight's slice for every one of `parts` ranks, rank 0's under the
/// weight's name, rank r's as NAME@tpR.
llvm::Expected<MadeWeights> splitTensorParallelWeights(mlir::ModuleOp module,
                                                      const WeightSet &weights, int64_t parts);

/// The model's parameters, each name once: not 2:4 metadata, nor scales or
/// zero points; a 2:4 weight counts its kept half (compressed or masked).
int64_t countParameters(mlir::ModuleOp module);

/// gaic --report's lines: parameters before and after, and what was
/// removed (which units need `pruned`, made from real weights).
void printPruningReport(int64_t before, int64_t after, const PrunedWeights *pruned,
                        llvm::raw_ostream &os);

} // namespace gai

#endif // GAI_COMPILER_PRUNEDWEIGHTS_H
