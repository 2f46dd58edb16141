// The static memory plan: every intermediate buffer of a function gets an
// offset in one arena, so buffers that are never live together share bytes.
#ifndef GAI_PASSES_MEMORYPLAN_H
#define GAI_PASSES_MEMORYPLAN_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>
#include <vector>

namespace gai {

/// A buffer of `size` bytes, live from the op numbered `firstUse` to the op
/// numbered `lastUse` (inclusive).
struct BufferRequest {
  int64_t size = 0;
  int64_t firstUse = 0;
  int64_t lastUse = 0;
};

struct ArenaPlan {
  std::vector<int64_t> offsets; ///< one per request, aligned
  int64_t arenaSize = 0;        ///< bytes the arena needs
  int64_t totalSize = 0;        ///< sum of the (aligned) requests
};

/// Greedy by size: the largest buffers are placed first, each at the lowest
/// aligned offset that no buffer live at the same time overlaps. The result
/// never places two simultaneously live buffers on the same bytes.
ArenaPlan planArena(const std::vector<BufferRequest> &requests,
                    int64_t alignment = 64);

/// Bytes a tensor takes in memory (masks: one byte per element).
int64_t tensorBytes(mlir::RankedTensorType type);

/// The buffers of a gai function: one per op result that needs memory.
/// Parameters, constants and arguments live elsewhere; a reshape reuses its
/// input's buffer, a cache write updates its cache in place; results stay
/// live to the end.
struct FunctionBuffers {
  std::vector<mlir::Value> values;
  std::vector<BufferRequest> requests;
};
FunctionBuffers collectBuffers(mlir::func::FuncOp func);

/// The arena `func` needs: its buffers less the ones it returns (those go
/// to the state or the outputs), placed by planArena.
int64_t plannedArenaBytes(mlir::func::FuncOp func);

} // namespace gai

#endif // GAI_PASSES_MEMORYPLAN_H
