// The exec dialect: planned buffers and the commands an artifact stores.
#ifndef GAI_DIALECTS_EXEC_EXECOPS_H
#define GAI_DIALECTS_EXEC_EXECOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::exec {
/// The spaces a buffer can live in; the artifact schema's Space, in order.
enum class Space : int64_t { Arena, Weights, State, Input, Output };
StringRef spaceName(Space space);
} // namespace mlir::exec

#include "dialects/Exec/ExecDialect.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialects/Exec/ExecAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialects/Exec/ExecOps.h.inc"

#endif // GAI_DIALECTS_EXEC_EXECOPS_H
