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

/// Makes every matmul that reads `p` read `weight` instead, stored [n, k].
void readAsWeight(ParamOp p, Value weight);

} // namespace mlir::gai

#endif // GAI_PASSES_MATMULWEIGHTS_H
