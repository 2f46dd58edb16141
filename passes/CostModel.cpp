// FLOPs of the gai ops, from their shapes.
#include "passes/CostModel.h"

#include "dialects/Gai/GaiOps.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::gai;

namespace gai {
namespace {

int64_t elements(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  return type ? type.getNumElements() : 0;
}

/// The size of `v`'s dimension `fromBack` places from the end (1: the last).
int64_t dim(Value v, int64_t fromBack) {
  auto shape = cast<RankedTensorType>(v.getType()).getShape();
  return shape[shape.size() - fromBack];
}

} // namespace

int64_t flopsOf(Operation *op) {
  if (auto m = dyn_cast<MatmulOp>(op))
    return 2 * elements(m.getResult()) * dim(m.getLhs(), m.getTransposeLhs() ? 2 : 1);
  if (auto g = dyn_cast<GemmOp>(op))
    return 2 * elements(g.getResult()) * dim(g.getLhs(), g.getTransposeLhs() ? 2 : 1);
  if (auto g = dyn_cast<GatedGemmOp>(op))
    return 4 * elements(g.getResult()) * dim(g.getLhs(), 1);
  if (auto a = dyn_cast<FlashAttentionOp>(op)) {
    // Rows of Q times keys, each a dot over D and a sum over Dv.
    int64_t keys = dim(a.getKey(), a.isTokenMajor(FlashAttentionOp::kKey) ? 3 : 2);
    int64_t products = elements(a.getQuery()) / dim(a.getQuery(), 1) * keys *
                       (dim(a.getQuery(), 1) + dim(a.getValue(), 1)) * 2;
    return std::max<int64_t>(1, a.getCausal() ? products / 2 : products);
  }
  if (isa<ParamOp, ConstantOp, ReshapeOp, func::ReturnOp>(op))
    return 0;
  int64_t perElement = 1;
  if (auto fusion = dyn_cast<FusionOp>(op))
    perElement = std::max<int64_t>(
        1, static_cast<int64_t>(fusion.getBody().front().getOperations().size()) - 1);
  int64_t count = 0;
  for (Value r : op->getResults())
    count += elements(r);
  return std::max<int64_t>(1, count * perElement);
}

int64_t flopsOf(func::FuncOp func) {
  int64_t total = 0;
  for (Operation &op : func.getBody().front())
    total += flopsOf(&op);
  return total;
}

} // namespace gai
