// The device memory an artifact plans, and rematerialization of its
// training step to fit a budget (gaic --memory-budget, --remat).
#ifndef GAI_COMPILER_MEMORYBUDGET_H
#define GAI_COMPILER_MEMORYBUDGET_H

#include "compiler/Pipeline.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gai {

/// What the runtime allocates for an artifact, from its exec lowering: the
/// weights (unused when the parameters are trainable state), the state,
/// each entry's inputs and outputs, and one arena for the largest entry.
/// The device's own workspaces (GEMM, attention) come on top.
struct PlannedMemory {
  int64_t weights = 0, state = 0, io = 0;
  std::vector<std::pair<std::string, int64_t>> arenas; ///< per entry
  int64_t arena() const;
  int64_t arenaOf(llvm::StringRef entry) const;
  int64_t total() const { return weights + state + io + arena(); }
};

/// Lowers a copy of `optimized` to learn its plan.
llvm::Expected<PlannedMemory> planMemory(mlir::ModuleOp optimized,
                                         const CompileOptions &options);

struct RematOutcome {
  std::string mode;
  std::string stepName; ///< the step whose FLOPs the extra is a share of
  int64_t budget = 0;
  PlannedMemory before, after;
  int64_t recomputedOps = 0, recomputedFlops = 0, stepFlops = 0;
};

/// Runs --gai-remat on @train_step as options.remat asks, refined until the
/// exec lowering's plan fits the budget (the pass plans the gai function's
/// buffers; the lowering may place a few more). Nothing to do: nullopt.
/// Over budget with --remat=none, or beyond reach: an error giving the
/// planned and the smallest reached peaks.
llvm::Expected<std::optional<RematOutcome>> rematerialize(mlir::ModuleOp optimized,
                                                          const CompileOptions &options);

void printRematReport(const RematOutcome &outcome, llvm::raw_ostream &os);

/// "24GiB", "512MiB", "1.5GB", "1000000": bytes; an error otherwise.
llvm::Expected<int64_t> parseByteSize(llvm::StringRef text);

} // namespace gai

#endif // GAI_COMPILER_MEMORYBUDGET_H
