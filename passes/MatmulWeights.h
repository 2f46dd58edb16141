// The parameters that matmuls read as weights, for the passes that store
// such weights in another form (--gai-quantize, --gai-prune).
#ifndef GAI_PASSES_MATMULWEIGHTS_H
#define GAI_PASSES_MATMULWEIGHTS_H

#include "dialects/Gai/GaiOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>

namespace mlir::gai {

/// How every use of a weight reads it: [n, k] (transpose_rhs) or [k, n].
enum class Orientation { Unusable, NK, KN };

struct MatmulWeight {
  ParamOp param;
  Orientation orientation;
  int64_t n, k;
};

/// The 2-D float parameters whose every use, in every function, is the rhs
/// of a matmul (lhs not transposed) read alike, and whose names match no
/// glob of `skip`: by default the LM head, the embeddings and MoE routers;
/// "none" skips nothing. A bad glob is an error naming `pass`.
FailureOr<SmallVector<MatmulWeight>> matmulWeights(ModuleOp module,
                                                   ArrayRef<std::string> skip,
                                                   StringRef pass);

/// Where a tied embedding table is also the LM head (every use of it a
/// gai.embedding lookup or a matmul's [n, k] rhs), gives its matmuls a
/// parameter of their own named `lm_head.weight` (the name a separate head
/// has) that records the table it copies (tiedTo), so that a pass storing
/// weights in another form can take the head while the lookups keep the
/// table. Only where no parameter has that name, the name matches no glob
/// of `skip` (as matmulWeights reads them: by default it stays tied), and
/// the table carries no slicing of its own (tensor parallelism, pruning).
LogicalResult untieHead(ModuleOp module, ArrayRef<std::string> skip, StringRef pass);

/// The table a parameter made by untieHead copies, if it is one.
std::optional<StringRef> tiedTo(ParamOp p);

/// Makes every matmul that reads `p` read `weight` instead, stored [n, k].
void readAsWeight(ParamOp p, Value weight);

} // namespace mlir::gai

#endif // GAI_PASSES_MATMULWEIGHTS_H
