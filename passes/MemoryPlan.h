// The static memory plan: every intermediate buffer of a function gets an
// offset in one arena, so buffers that are never live together share bytes.
#ifndef GAI_PASSES_MEMORYPLAN_H
#define GAI_PASSES_MEMORYPLAN_H

#include "dialects/Gai/GaiOps.h"

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

/// The most bytes live at once: no placement of `requests` needs less.
int64_t livePeakBytes(const std::vector<BufferRequest> &requests);

/// Where that peak is: the first op numbered `at` with `bytes` live, and
/// the requests live there (indices into `requests`).
struct LivePeak {
  int64_t bytes = 0, at = 0;
  std::vector<size_t> live;
};
LivePeak livePeak(const std::vector<BufferRequest> &requests);

/// Bytes a tensor takes in memory (masks: one byte per element).
int64_t tensorBytes(mlir::RankedTensorType type);

/// Whether `slice` is read in place, as a view of its input: it cuts only
/// the last axis of a [B, T, C] tensor (a packed q/k/v projection), and
/// only token-major attention operands read it (through reshapes), whose
/// kernels take its rows at the input's stride. Offsets and widths are
/// multiples of 8 elements, so rows stay 16-byte aligned.
bool isAttentionSliceView(mlir::gai::SliceOp slice);

/// Where a token-major attention gradient is written in place: the concat
/// that reads it (through one reshape, along the last axis of [B, T, C])
/// and its offset along that axis. A null concat when it is not.
struct ConcatPart {
  mlir::gai::ConcatOp concat;
  int64_t offset = 0;
};
ConcatPart concatPartOf(mlir::Value gradient);

/// The buffers of a gai function: one per op result that needs memory.
/// Parameters, constants and arguments live elsewhere; a reshape reuses its
/// input's buffer, a cache write updates its cache in place, an attention
/// slice view (isAttentionSliceView) reads its input's, and a gradient
/// written into a concat (concatPartOf) lives in the concat's, from the
/// gradient on; results stay live to the end. With `besideWindow` > 0 a
/// GEMM or reduce whose result nothing reads within that many ops, but one
/// small reduction of it right after (a weight gradient and its squared sum,
/// or a norm weight's gradient: only the update reads them), keeps its
/// operands live for that many ops more, so that the ops after it may run
/// while it does (the CUDA runtime's second stream) without reusing its
/// inputs' bytes.
struct FunctionBuffers {
  std::vector<mlir::Value> values;
  std::vector<BufferRequest> requests;
};
FunctionBuffers collectBuffers(mlir::func::FuncOp func, int64_t besideWindow = 0);

/// The arena `func` needs: its buffers less the ones it returns (those go
/// to the state or the outputs), placed by planArena.
int64_t plannedArenaBytes(mlir::func::FuncOp func);

} // namespace gai

#endif // GAI_PASSES_MEMORYPLAN_H
