// Pruning: 2:4 sparsity of the weights that feed matmuls (compressed, read
// back by a gai.decompress the exec lowering folds into the GEMM, or, for
// training, masked in the graph) and structured pruning of heads and MLP
// channels (StructuredPrune).
#include "dialects/Gai/GaiOps.h"
#include "passes/MatmulWeights.h"
#include "passes/Passes.h"
#include "passes/PruneAttr.h"
#include "passes/StructuredPrune.h"

#include "llvm/Support/FormatVariadic.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIPRUNE
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

/// 2:4 groups run along k; the metadata packs two groups a byte.
constexpr int64_t kSparseKMultiple = 8;

/// `w`, stored [n, k], times its 2:4 mask: 1 at the two largest |w| of
/// each four along k (ties to the lower position, as gai.topk picks), 0
/// elsewhere. The mask carries no gradient (one_hot has none).
Value masked24(ImplicitLocOpBuilder &b, Value w, int64_t n, int64_t k) {
  Type element = cast<RankedTensorType>(w.getType()).getElementType();
  auto tensor = [&](ArrayRef<int64_t> shape, Type type) {
    return RankedTensorType::get(shape, type);
  };
  Value magnitude = AbsOp::create(b, w);
  Value groups = ReshapeOp::create(b, tensor({n, k / 4, 4}, element), magnitude);
  auto top = TopKOp::create(b, groups, 2);
  Value hot = OneHotOp::create(b, tensor({n, k / 4, 2, 4}, element), top.getIndices(), 4);
  Value kept = ReduceOp::create(b, ReduceKind::Sum, hot, ArrayRef<int64_t>{2});
  Value mask = ReshapeOp::create(b, tensor({n, k}, element), kept);
  return MulOp::create(b, w, mask);
}

struct PrunePass : mlir::gai::impl::GaiPruneBase<PrunePass> {
  using GaiPruneBase::GaiPruneBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!pattern.empty() && pattern != "2:4") {
      module.emitError() << "--gai-prune: pattern='" << pattern << "' is not 2:4";
      return signalPassFailure();
    }
    const double fraction = mlp;
    if (heads < 0 || fraction < 0 || fraction >= 1) {
      module.emitError() << "--gai-prune: heads=" << static_cast<int64_t>(heads) << " mlp="
                         << llvm::formatv("{0}", fraction).str()
                         << ": expects heads >= 0 and 0 <= mlp < 1";
      return signalPassFailure();
    }
    if ((heads > 0 || fraction > 0) &&
        failed(pruneHeadsAndChannels(module, heads, fraction)))
      return signalPassFailure();
    if (pattern.empty())
      return;
    std::vector<std::string> skipped(skip.begin(), skip.end());
    FailureOr<SmallVector<MatmulWeight>> chosen = matmulWeights(module, skipped, getArgument());
    if (failed(chosen))
      return signalPassFailure();
    for (const MatmulWeight &w : *chosen)
      if (failed(masked ? mask(w) : compress(w)))
        return signalPassFailure();
  }

private:
  LogicalResult checkK(const MatmulWeight &w) {
    if (w.k % kSparseKMultiple == 0)
      return success();
    ParamOp p = w.param;
    return p.emitError() << "--gai-prune: '" << p.getName() << "' has k = " << w.k
                         << ", not a multiple of " << kSparseKMultiple
                         << ": 2:4 keeps two of each four along k, and its metadata packs two "
                            "groups a byte (skip it with skip=)";
  }

  LogicalResult compress(const MatmulWeight &w) {
    if (failed(checkK(w)))
      return failure();
    ParamOp p = w.param;
    ImplicitLocOpBuilder b(p.getLoc(), p);
    Type element = p.getType().getElementType();
    auto values = ParamOp::create(b, RankedTensorType::get({w.n, w.k / 2}, element),
                                  p.getNameAttr(),
                                  w.orientation == Orientation::KN ? b.getUnitAttr() : nullptr);
    // A structured pruning's slicing, if any, comes first at compile time.
    values->setDiscardableAttrs(p->getDiscardableAttrDictionary());
    auto meta = ParamOp::create(b, RankedTensorType::get({w.n, w.k / 8}, b.getI8Type()),
                                b.getStringAttr(p.getName() + ".meta"), nullptr);
    auto weight = DecompressOp::create(b, RankedTensorType::get({w.n, w.k}, element),
                                       values, meta);
    readAsWeight(p, weight);
    p.erase();
    return success();
  }

  LogicalResult mask(const MatmulWeight &w) {
    if (failed(checkK(w)))
      return failure();
    ParamOp p = w.param;
    ImplicitLocOpBuilder b(p.getLoc(), p->getBlock(), std::next(p->getIterator()));
    SmallVector<MatmulOp> readers;
    for (Operation *user : p->getUsers())
      readers.push_back(cast<MatmulOp>(user));
    Value nk = p.getResult();
    if (w.orientation == Orientation::KN)
      nk = TransposeOp::create(b, nk, ArrayRef<int64_t>{1, 0});
    Value weight = masked24(b, nk, w.n, w.k);
    for (MatmulOp m : readers) {
      m.getRhsMutable().assign(weight);
      m.setTransposeRhs(true);
    }
    setMasked24(p, {w.orientation == Orientation::KN});
    return success();
  }
};

} // namespace
