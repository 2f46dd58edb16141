// What an op costs to run, from its shapes alone: the remat pass's measure
// of recomputation, and gaic's report of it.
#ifndef GAI_PASSES_COSTMODEL_H
#define GAI_PASSES_COSTMODEL_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <cstdint>

namespace gai {

/// The FLOPs of `op`: 2·M·N·K for products, 2·T·S·(D+Dv) per head for
/// attention (half of it causal), one per element otherwise (one per
/// element and per op of a fusion region). At least 1.
int64_t flopsOf(mlir::Operation *op);

/// The FLOPs of every op of `func`'s body.
int64_t flopsOf(mlir::func::FuncOp func);

} // namespace gai

#endif // GAI_PASSES_COSTMODEL_H
