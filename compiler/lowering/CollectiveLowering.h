// The shard dialect's collectives as exec commands.
#ifndef GAI_COMPILER_LOWERING_COLLECTIVELOWERING_H
#define GAI_COMPILER_LOWERING_COLLECTIVELOWERING_H

#include "dialects/Exec/ExecOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace gai {

/// Whether `op` is a collective of the shard dialect.
bool isCollective(mlir::Operation *op);

/// Emits the exec command of the collective `op` at `b`, its buffers given
/// by `ref`. Reports on the op what the runtime cannot run: a split or join
/// along an inner axis, a reduction other than sum, average or max.
mlir::LogicalResult lowerCollective(mlir::OpBuilder &b, mlir::Operation *op,
                                    llvm::function_ref<mlir::exec::RefAttr(mlir::Value)> ref);

/// The bytes a rank sends (and receives) for collective `op` on a ring
/// over its group of `mesh`: all-reduce 2(G-1)/G of the tensor,
/// reduce-scatter and all-gather (G-1)/G of the whole, all-slice none.
int64_t collectiveRingBytes(mlir::Operation *op, llvm::ArrayRef<int64_t> mesh);

/// The module's device grid (its `shard.grid`), empty when it has none.
llvm::SmallVector<int64_t> meshShapeOf(mlir::ModuleOp module);

} // namespace gai

#endif // GAI_COMPILER_LOWERING_COLLECTIVELOWERING_H
