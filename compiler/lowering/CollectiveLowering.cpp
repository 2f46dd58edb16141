// The shard dialect's collectives as exec commands.
#include "compiler/lowering/CollectiveLowering.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace gai {
namespace {

RankedTensorType tensorOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Splitting or joining along `axis` is along the outermost one when every
/// axis before it has one element: then each rank's part is contiguous.
LogicalResult checkOutermost(Operation *op, Value v, int64_t axis, StringRef what) {
  if (llvm::all_of(tensorOf(v).getShape().take_front(axis), [](int64_t d) { return d == 1; }))
    return success();
  return op->emitOpError() << what << " along axis " << axis
                           << " of " << v.getType()
                           << "; the runtime splits and joins along the outermost axis only";
}

FailureOr<exec::CollectiveReduceAttr> reductionOf(Operation *op, shard::ReductionKind kind) {
  exec::CollectiveReduce to;
  switch (kind) {
  case shard::ReductionKind::Sum: to = exec::CollectiveReduce::Sum; break;
  case shard::ReductionKind::Average: to = exec::CollectiveReduce::Average; break;
  case shard::ReductionKind::Max: to = exec::CollectiveReduce::Max; break;
  default:
    return op->emitOpError("reduces by ")
           << shard::stringifyReductionKind(kind) << "; the runtime sums, averages or takes the max";
  }
  return exec::CollectiveReduceAttr::get(op->getContext(), to);
}

} // namespace

bool isCollective(Operation *op) {
  return isa<shard::AllReduceOp, shard::AllGatherOp, shard::ReduceScatterOp, shard::AllSliceOp>(
      op);
}

LogicalResult lowerCollective(OpBuilder &b, Operation *op,
                              llvm::function_ref<exec::RefAttr(Value)> ref) {
  Location loc = op->getLoc();
  auto count = [&](Value v) { return b.getI64IntegerAttr(tensorOf(v).getNumElements()); };
  auto element = [&](Value v) { return TypeAttr::get(tensorOf(v).getElementType()); };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](shard::AllReduceOp c) -> LogicalResult {
        FailureOr<exec::CollectiveReduceAttr> reduction = reductionOf(op, c.getReduction());
        if (failed(reduction))
          return failure();
        if (tensorOf(c.getInput()).getElementType() != tensorOf(c.getResult()).getElementType())
          return c.emitOpError("changes the element type; the runtime reduces in the input's");
        exec::AllReduceOp::create(b, loc, ref(c.getInput()), ref(c.getResult()),
                                  count(c.getInput()), element(c.getInput()), *reduction,
                                  c.getGridAxesAttr());
        return success();
      })
      .Case([&](shard::AllGatherOp c) -> LogicalResult {
        if (failed(checkOutermost(op, c.getResult(), c.getGatherAxis().getSExtValue(),
                                  "gathers")))
          return failure();
        exec::AllGatherOp::create(b, loc, ref(c.getInput()), ref(c.getResult()),
                                  count(c.getInput()), element(c.getInput()),
                                  c.getGridAxesAttr());
        return success();
      })
      .Case([&](shard::ReduceScatterOp c) -> LogicalResult {
        FailureOr<exec::CollectiveReduceAttr> reduction = reductionOf(op, c.getReduction());
        if (failed(reduction) ||
            failed(checkOutermost(op, c.getInput(), c.getScatterAxis().getSExtValue(),
                                  "scatters")))
          return failure();
        if (tensorOf(c.getInput()).getElementType() != tensorOf(c.getResult()).getElementType())
          return c.emitOpError("changes the element type; the runtime reduces in the input's");
        exec::ReduceScatterOp::create(b, loc, ref(c.getInput()), ref(c.getResult()),
                                      count(c.getResult()), element(c.getInput()), *reduction,
                                      c.getGridAxesAttr());
        return success();
      })
      .Case([&](shard::AllSliceOp c) -> LogicalResult {
        if (failed(checkOutermost(op, c.getInput(), c.getSliceAxis().getSExtValue(), "slices")))
          return failure();
        exec::AllSliceOp::create(b, loc, ref(c.getInput()), ref(c.getResult()),
                                 count(c.getResult()), element(c.getInput()),
                                 c.getGridAxesAttr());
        return success();
      })
      .Default([](Operation *op) { return op->emitOpError("is not a collective"); });
}

int64_t collectiveRingBytes(Operation *op, ArrayRef<int64_t> mesh) {
  auto bytes = [](Value v) {
    auto t = tensorOf(v);
    return t.getNumElements() * std::max<int64_t>(t.getElementTypeBitWidth() / 8, 1);
  };
  auto groupOf = [&](ArrayRef<int16_t> axes) {
    int64_t g = 1;
    for (int16_t a : axes)
      if (a >= 0 && static_cast<size_t>(a) < mesh.size())
        g *= mesh[a];
    return g;
  };
  return llvm::TypeSwitch<Operation *, int64_t>(op)
      .Case([&](shard::AllReduceOp c) {
        int64_t g = groupOf(c.getGridAxes());
        return 2 * (g - 1) * bytes(c.getInput()) / g;
      })
      .Case([&](shard::ReduceScatterOp c) {
        int64_t g = groupOf(c.getGridAxes());
        return (g - 1) * bytes(c.getInput()) / g;
      })
      .Case([&](shard::AllGatherOp c) {
        int64_t g = groupOf(c.getGridAxes());
        return (g - 1) * bytes(c.getResult()) / g;
      })
      .Default([](Operation *) { return int64_t{0}; });
}

SmallVector<int64_t> meshShapeOf(ModuleOp module) {
  for (auto grid : module.getOps<shard::GridOp>())
    return SmallVector<int64_t>(grid.getShape());
  return {};
}

} // namespace gai
