// Rematerialization: forward values that the backward pass reads are
// recomputed next to their first backward use instead of kept alive, so
// that a training step's planned memory fits a budget.
#include "dialects/Gai/GaiOps.h"
#include "passes/CostModel.h"
#include "passes/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIREMAT
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;
using ::gai::BufferRequest;
using ::gai::FunctionBuffers;
using ::gai::collectBuffers;
using ::gai::plannedArenaBytes;

namespace {

/// Whether a clone of `op` computes the same values with no other effect:
/// pure ops only, never the KV cache's writes. Parameters and constants need
/// no buffer of their own, so there is nothing to gain.
bool recomputable(Operation *op) {
  if (isa<CacheWriteOp, CachedAttentionOp, ParamOp, ConstantOp, ReshapeOp, func::ReturnOp>(op))
    return false;
  if (op->getNumRegions() > 0 && !isa<FusionOp>(op))
    return false;
  return isMemoryEffectFree(op);
}

/// The value whose buffer `v` lives in: reshapes share their input's.
Value bufferOwner(Value v) {
  while (auto reshape = v.getDefiningOp<ReshapeOp>())
    v = reshape.getInput();
  return v;
}

/// The layer an op belongs to, from its location (`layers.3.attn` is layer
/// `layers.3`); empty when it has no name.
std::string layerOf(Operation *op) {
  std::string name;
  op->getLoc()->walk([&](Location loc) {
    if (auto named = dyn_cast<NameLoc>(loc)) {
      name = named.getName().str();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  size_t first = name.find('.');
  if (first == std::string::npos)
    return name;
  size_t second = name.find('.', first + 1);
  return second == std::string::npos ? name : name.substr(0, second);
}

/// One forward op that the backward pass reads a result of.
struct Candidate {
  Operation *op = nullptr;
  SmallVector<OpOperand *> backwardUses; // of its results or their reshapes
  int64_t firstBackwardUse = 0;
  int64_t netSaving = 0; // bytes freed at the peak, less inputs kept longer
  int64_t flops = 0;
};

class Rematerializer {
public:
  explicit Rematerializer(func::FuncOp func) : func(func) {}

  /// Analyses the function as it is now. Fails when it has no forward pass
  /// to tell apart (the loss is not made by an op of its body).
  LogicalResult analyse();
  /// The saved forward ops, scored against the current peak.
  SmallVector<Candidate> candidates();
  /// Clones `c.op` (and the reshapes of its results the backward pass
  /// reads) before its first backward use, which then read the clones.
  void recompute(const Candidate &c);

  int64_t livePeak() const { return peakBytes; }
  bool inBackward(Operation *op) const { return position.lookup(op) > boundary; }
  int64_t recomputedOps = 0, recomputedFlops = 0;

private:
  func::FuncOp func;
  DenseMap<Operation *, int64_t> position;
  int64_t boundary = 0; // the loss's op: the last of the forward pass
  DenseMap<Value, BufferRequest> requestOf;
  DenseMap<Operation *, Operation *> cloneOf; // forward op -> its clone
  int64_t peakIndex = 0, peakBytes = 0;
};

LogicalResult Rematerializer::analyse() {
  Block &body = func.getBody().front();
  position.clear();
  for (auto [i, op] : llvm::enumerate(body))
    position[&op] = static_cast<int64_t>(i);
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  Operation *lossOp = ret.getNumOperands() ? ret.getOperand(0).getDefiningOp() : nullptr;
  if (!lossOp)
    return func.emitError("--gai-remat: the first result (the loss) must be made by an op of the "
                            "body, which ends the forward pass");
  boundary = position.lookup(lossOp);

  FunctionBuffers buffers = collectBuffers(func);
  requestOf.clear();
  std::vector<int64_t> delta(body.getOperations().size() + 1, 0);
  for (auto [v, r] : llvm::zip(buffers.values, buffers.requests)) {
    requestOf[v] = r;
    if (r.lastUse == INT64_MAX)
      continue; // returned: state or outputs, not the arena
    delta[r.firstUse] += r.size;
    delta[r.lastUse + 1] -= r.size;
  }
  int64_t live = 0;
  peakBytes = 0;
  for (auto [i, d] : llvm::enumerate(delta)) {
    live += d;
    if (live > peakBytes) {
      peakBytes = live;
      peakIndex = static_cast<int64_t>(i);
    }
  }
  return success();
}

SmallVector<Candidate> Rematerializer::candidates() {
  SmallVector<Candidate> found;
  for (Operation &op : func.getBody().front()) {
    if (position.lookup(&op) > boundary)
      break;
    if (!recomputable(&op))
      continue;
    Candidate c;
    c.op = &op;
    bool returned = false;
    // Each result's uses, through the reshapes of it made in the forward
    // pass: which are backward, and where its forward life ends.
    SmallVector<std::pair<int64_t, int64_t>> lifeOf; // (bytes, last forward use)
    for (Value result : op.getResults()) {
      auto it = requestOf.find(result);
      if (it == requestOf.end())
        continue;
      int64_t lastForward = position.lookup(&op);
      SmallVector<Value> views = {result};
      for (size_t i = 0; i < views.size(); ++i)
        for (OpOperand &use : views[i].getUses()) {
          Operation *user = use.getOwner();
          int64_t at = position.lookup(user);
          if (isa<func::ReturnOp>(user))
            returned = true;
          else if (at > boundary)
            c.backwardUses.push_back(&use);
          else if (auto reshape = dyn_cast<ReshapeOp>(user))
            views.push_back(reshape.getResult());
          else
            lastForward = std::max(lastForward, at);
        }
      lifeOf.push_back({it->second.size, lastForward});
    }
    if (returned || c.backwardUses.empty())
      continue;
    c.firstBackwardUse = INT64_MAX;
    for (OpOperand *use : c.backwardUses)
      c.firstBackwardUse = std::min(c.firstBackwardUse, position.lookup(use->getOwner()));
    int64_t saving = 0;
    for (auto [bytes, lastForward] : lifeOf)
      if (lastForward < peakIndex && peakIndex < c.firstBackwardUse)
        saving += bytes;
    // Inputs whose buffers must now live until the clone.
    int64_t cost = 0;
    llvm::SmallDenseSet<Value> counted;
    for (Value operand : op.getOperands()) {
      Value owner = bufferOwner(operand);
      auto it = requestOf.find(owner);
      if (it == requestOf.end() || !counted.insert(owner).second)
        continue;
      if (it->second.lastUse < peakIndex && peakIndex < c.firstBackwardUse)
        cost += it->second.size;
    }
    c.netSaving = saving - cost;
    c.flops = ::gai::flopsOf(&op);
    found.push_back(std::move(c));
  }
  return found;
}

/// Moves `op` before `point` unless it is already before it, first moving
/// the ops after `point` that make its operands.
void hoistBefore(Operation *op, Operation *point) {
  if (op->isBeforeInBlock(point))
    return;
  for (Value operand : op->getOperands())
    if (Operation *def = operand.getDefiningOp(); def && def->getBlock() == point->getBlock())
      hoistBefore(def, point);
  op->moveBefore(point);
}

void Rematerializer::recompute(const Candidate &c) {
  Operation *before = nullptr;
  for (OpOperand *use : c.backwardUses)
    if (position.lookup(use->getOwner()) == c.firstBackwardUse)
      before = use->getOwner();
  OpBuilder b(before);
  IRMapping mapping;
  // A value recomputed before serves these uses too: its clone moves up
  // (with the clones it reads) rather than being made twice.
  if (Operation *existing = cloneOf.lookup(c.op)) {
    hoistBefore(existing, before);
    mapping.map(c.op->getResults(), existing->getResults());
  } else {
    cloneOf[c.op] = b.clone(*c.op, mapping);
    ++recomputedOps;
    recomputedFlops += c.flops;
  }
  // The reshapes of the results, in program order, then each backward use
  // reads its clone; clones nothing reads are dropped.
  SmallVector<Operation *> reshapes;
  for (OpOperand *use : c.backwardUses) {
    Value v = use->get();
    while (auto reshape = v.getDefiningOp<ReshapeOp>()) {
      reshapes.push_back(reshape);
      v = reshape.getInput();
    }
  }
  llvm::sort(reshapes, [&](Operation *x, Operation *y) { return x->isBeforeInBlock(y); });
  reshapes.erase(std::unique(reshapes.begin(), reshapes.end()), reshapes.end());
  SmallVector<Operation *> cloned;
  for (Operation *reshape : reshapes)
    cloned.push_back(b.clone(*reshape, mapping));
  for (OpOperand *use : c.backwardUses)
    use->set(mapping.lookup(use->get()));
  for (Operation *op : llvm::reverse(cloned))
    if (op->use_empty())
      op->erase();
}

struct RematPass : mlir::gai::impl::GaiRematBase<RematPass> {
  using GaiRematBase::GaiRematBase;

  int64_t budgetBytes() const { return budget; }
  int64_t fixed() const { return fixedBytes; }

  void runOnOperation() override {
    auto step = getOperation().lookupSymbol<func::FuncOp>(function);
    if (!step) {
      getOperation().emitError("--gai-remat: no function @") << function;
      return signalPassFailure();
    }
    if (mode != "auto" && mode != "full") {
      step.emitError("--gai-remat: mode '") << mode << "' is not auto or full";
      return signalPassFailure();
    }
    int64_t arenaBefore = plannedArenaBytes(step);
    Rematerializer remat(step);
    if (failed(remat.analyse()))
      return signalPassFailure();
    if (mode == "full")
      recomputeLayers(remat);
    else if (budget > 0 && failed(fitBudget(step, remat)))
      return signalPassFailure();
    int64_t arenaAfter = plannedArenaBytes(step);
    if (mode == "full" && budget > 0 && fixedBytes + arenaAfter > budget) {
      step.emitError("--gai-remat: full recomputation plans a peak of ")
          << fixed() + arenaAfter << " bytes (" << fixed() << " outside the arena, "
          << arenaAfter << " arena), over the budget of " << budgetBytes() << " bytes";
      return signalPassFailure();
    }
    Builder b(step.getContext());
    step->setAttr("gai.remat",
                  b.getDictionaryAttr({
                      b.getNamedAttr("arena_before", b.getI64IntegerAttr(arenaBefore)),
                      b.getNamedAttr("arena_after", b.getI64IntegerAttr(arenaAfter)),
                      b.getNamedAttr("recomputed_ops", b.getI64IntegerAttr(remat.recomputedOps)),
                      b.getNamedAttr("recomputed_flops",
                                     b.getI64IntegerAttr(remat.recomputedFlops)),
                  }));
  }

  /// Greedy by bytes freed at the peak per FLOP, refined against the
  /// planned arena: the live bytes are a lower bound of the arena, so the
  /// planner is asked once they fit.
  LogicalResult fitBudget(func::FuncOp step, Rematerializer &remat) {
    int64_t arenaBudget = budget - fixedBytes;
    if (arenaBudget < 0)
      return step.emitError("--gai-remat: the memory budget of ")
             << budgetBytes() << " bytes is below the " << fixed()
             << " bytes outside the arena (parameters, optimizer state, inputs and outputs)";
    while (true) {
      if (remat.livePeak() <= arenaBudget && plannedArenaBytes(step) <= arenaBudget)
        return success();
      const Candidate *best = nullptr;
      SmallVector<Candidate> all = remat.candidates();
      for (const Candidate &c : all)
        if (c.netSaving > 0 &&
            (!best || static_cast<double>(c.netSaving) / c.flops >
                          static_cast<double>(best->netSaving) / best->flops))
          best = &c;
      if (!best) {
        int64_t reached = plannedArenaBytes(step);
        return step.emitError("--gai-remat: the memory budget of ")
               << budgetBytes() << " bytes cannot be met: the smallest peak reached is "
               << fixed() + reached << " bytes (" << fixed() << " outside the arena, "
               << reached << " arena)";
      }
      remat.recompute(*best);
      if (failed(remat.analyse()))
        return failure();
    }
  }

  /// Per-layer checkpointing: a value that a later layer reads (the layer's
  /// output, the residual stream) is kept; the rest is recomputed.
  void recomputeLayers(Rematerializer &remat) {
    llvm::DenseSet<Operation *> checkpoints;
    while (true) {
      const Candidate *pick = nullptr;
      SmallVector<Candidate> all = remat.candidates();
      for (const Candidate &c : all) {
        if (checkpoints.contains(c.op))
          continue;
        std::string layer = layerOf(c.op);
        bool crosses = false;
        for (Value r : c.op->getResults()) {
          SmallVector<Value> views = {r};
          for (size_t i = 0; i < views.size(); ++i)
            for (Operation *user : views[i].getUsers()) {
              if (auto reshape = dyn_cast<ReshapeOp>(user))
                views.push_back(reshape.getResult());
              else if (!isa<func::ReturnOp>(user) && !remat.inBackward(user))
                crosses |= layerOf(user) != layer;
            }
        }
        if (crosses) {
          checkpoints.insert(c.op);
          continue;
        }
        pick = &c;
        break;
      }
      if (!pick)
        return;
      remat.recompute(*pick);
      (void)remat.analyse();
    }
  }
};

} // namespace
