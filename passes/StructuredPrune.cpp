// Structured pruning. A group (one attention's heads, one MLP's channels)
// is found from a seed value and followed op by op, both ways, recording
// for each value the axis and the blocks of it each unit occupies; then
// every such value loses the same units. The walk stops at the weights
// that make or contract the axis, which gaic slices.
#include "passes/StructuredPrune.h"

#include "dialects/Gai/GaiOps.h"
#include "passes/PruneAttr.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"

#include <cmath>

namespace mlir::gai {
namespace {

using Segment = PruneSegment;

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }

/// Where a group's units lie in one value: blocks along `axis`, sorted and
/// disjoint; other parts of the axis are not the group's.
struct Layout {
  int64_t axis = -1;
  SmallVector<Segment> segments;
};

/// One group: every value it reaches, in the order reached.
class Group {
public:
  explicit Group(const DenseMap<Value, Layout> &taken) : taken(taken) {}

  LogicalResult grow(Value seed, Layout layout, Operation *at);

  DenseMap<Value, Layout> layouts;
  SmallVector<Value> order;
  SmallVector<ParamOp> params;
  SmallVector<ConstantOp> constants;
  SmallVector<SliceOp> slices;
  /// With `stopAtRepeats`, the group ends at every repeat of heads (axis
  /// 1) and lists them here: query heads split apart from their KV heads.
  bool stopAtRepeats = false;
  SmallVector<RepeatOp> repeats;

private:
  LogicalResult assign(Value v, int64_t axis, ArrayRef<Segment> segments, Operation *at);
  LogicalResult spread(Operation *op, Value from);
  LogicalResult spreadElementwise(Operation *op, Value from, const Layout &l);
  LogicalResult spreadReshape(ReshapeOp op, Value from, const Layout &l);
  LogicalResult spreadSlice(SliceOp op, Value from, const Layout &l);
  LogicalResult spreadMatmul(MatmulOp op, Value from, const Layout &l);

  const DenseMap<Value, Layout> &taken; // earlier groups' values
  SmallVector<Value> work;
};

InFlightDiagnostic pruneError(Operation *op) { return op->emitOpError("--gai-prune: "); }

LogicalResult Group::assign(Value v, int64_t axis, ArrayRef<Segment> segments, Operation *at) {
  if (taken.count(v))
    return pruneError(at) << "two groups of heads or channels meet here";
  auto [it, inserted] = layouts.try_emplace(v, Layout{axis, {}});
  Layout &l = it->second;
  if (inserted)
    order.push_back(v);
  else if (l.axis != axis)
    return pruneError(at) << "the heads or channels reach this op along two axes ("
                          << l.axis << " and " << axis << ")";
  bool grew = inserted;
  for (const Segment &s : segments) {
    if (llvm::is_contained(l.segments, s))
      continue;
    if (s.end() > typeOf(v).getDimSize(axis) ||
        llvm::any_of(l.segments, [&](const Segment &o) {
          return s.offset < o.end() && o.offset < s.end();
        }))
      return pruneError(at) << "the heads or channels reach this op in two layouts";
    l.segments.insert(llvm::upper_bound(l.segments, s,
                                        [](const Segment &a, const Segment &b) {
                                          return a.offset < b.offset;
                                        }),
                      s);
    grew = true;
  }
  if (grew)
    work.push_back(v);
  return success();
}

LogicalResult Group::grow(Value seed, Layout layout, Operation *at) {
  if (failed(assign(seed, layout.axis, layout.segments, at)))
    return failure();
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (Operation *def = v.getDefiningOp())
      if (failed(spread(def, v)))
        return failure();
    for (Operation *user : v.getUsers())
      if (failed(spread(user, v)))
        return failure();
  }
  return success();
}

LogicalResult Group::spread(Operation *op, Value from) {
  const Layout l = layouts.lookup(from);
  if (auto r = dyn_cast<RepeatOp>(op); r && stopAtRepeats && r.getAxis() == 1) {
    if (!llvm::is_contained(repeats, r))
      repeats.push_back(r);
    return success();
  }
  auto same = [&](Value to) { return assign(to, l.axis, l.segments, op); };
  if (auto p = dyn_cast<ParamOp>(op)) {
    if (!llvm::is_contained(params, p))
      params.push_back(p);
    return success();
  }
  if (isa<func::ReturnOp>(op))
    return success(); // the function's type follows its values
  if (auto c = dyn_cast<ConstantOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!dense || !dense.isSplat())
      return pruneError(op) << "cannot slice a constant that is not a splat";
    if (!llvm::is_contained(constants, c))
      constants.push_back(c);
    return success();
  }
  if (op->hasTrait<OpTrait::Elementwise>() || op->hasTrait<BroadcastElementwise>())
    return spreadElementwise(op, from, l);
  if (isa<RmsNormOp, LayerNormOp, SoftmaxOp, RopeOp>(op)) {
    Value input = op->getOperand(0), result = op->getResult(0);
    if (from != input && from != result)
      return pruneError(op) << "the heads or channels reach a norm's or RoPE's parameters";
    int64_t rowAxis = typeOf(input).getRank() - 1;
    if (auto softmax = dyn_cast<SoftmaxOp>(op))
      rowAxis = static_cast<int64_t>(softmax.getAxis());
    if (l.axis == rowAxis)
      return pruneError(op) << "cannot remove heads or channels along the axis this op "
                               "normalises";
    return failure(failed(same(input)) || failed(same(result)));
  }
  if (auto t = dyn_cast<TransposeOp>(op)) {
    ArrayRef<int64_t> perm = t.getPermutation();
    if (from == t.getInput())
      return assign(t.getResult(), llvm::find(perm, l.axis) - perm.begin(), l.segments, op);
    return assign(t.getInput(), perm[l.axis], l.segments, op);
  }
  if (auto r = dyn_cast<ReshapeOp>(op))
    return spreadReshape(r, from, l);
  if (auto s = dyn_cast<SliceOp>(op))
    return spreadSlice(s, from, l);
  if (auto r = dyn_cast<RepeatOp>(op)) {
    const auto axis = static_cast<int64_t>(r.getAxis());
    const auto times = static_cast<int64_t>(r.getTimes());
    if (l.axis != axis)
      return failure(failed(same(r.getInput())) || failed(same(r.getResult())));
    SmallVector<Segment> scaled;
    for (const Segment &s : l.segments) {
      if (from == r.getInput()) {
        scaled.push_back({s.offset * times, s.units, s.size * times});
      } else if (s.offset % times == 0 && s.size % times == 0) {
        scaled.push_back({s.offset / times, s.units, s.size / times});
      } else {
        return pruneError(op) << "heads repeated " << times
                              << " times do not come from whole heads";
      }
    }
    return assign(from == r.getInput() ? r.getResult() : r.getInput(), l.axis, scaled, op);
  }
  if (auto w = dyn_cast<CacheWriteOp>(op)) {
    if (from != w.getCache() && from != w.getUpdate() && from != w.getResult())
      return pruneError(op) << "the heads reach a cache write's positions";
    return failure(failed(same(w.getCache())) || failed(same(w.getUpdate())) ||
                   failed(same(w.getResult())));
  }
  if (auto m = dyn_cast<MatmulOp>(op))
    return spreadMatmul(m, from, l);
  return pruneError(op) << "cannot remove heads or channels through this op (--gai-prune runs "
                           "on the frontend's graph, before --gai-attention-rewrite)";
}

/// NumPy broadcasting: axes align from the right; an extent of 1 under a
/// larger one is broadcast and keeps its shape.
LogicalResult Group::spreadElementwise(Operation *op, Value from, const Layout &l) {
  RankedTensorType result = typeOf(op->getResult(0));
  const int64_t rank = result.getRank();
  const int64_t axis = l.axis + rank - typeOf(from).getRank();
  const int64_t extent = result.getDimSize(axis);
  SmallVector<Value> values(op->getOperands());
  values.push_back(op->getResult(0));
  for (Value v : values) {
    const int64_t at = axis - (rank - typeOf(v).getRank());
    if (at < 0 || (typeOf(v).getDimSize(at) == 1 && extent != 1))
      continue;
    if (failed(assign(v, at, l.segments, op)))
      return failure();
  }
  return success();
}

/// The axis keeps its place in the flattened order: a unit of s indices
/// on an axis whose inner dimensions hold `inner` elements is s · inner
/// consecutive elements of each outer slice, found again in the other
/// shape on the axis with the same outer product whose inner size divides
/// it. Axes of extent 1 make several fit (a single KV head [1, T, 1, D]
/// from [1, T, D]); the axis is then one of the leading axes both shapes
/// share, kept, or else the first past them with the smallest units (a
/// head an index).
LogicalResult Group::spreadReshape(ReshapeOp op, Value from, const Layout &l) {
  Value to = from == op.getInput() ? op.getResult() : op.getInput();
  ArrayRef<int64_t> fs = typeOf(from).getShape(), ts = typeOf(to).getShape();
  auto product = [](ArrayRef<int64_t> dims) {
    int64_t p = 1;
    for (int64_t d : dims)
      p *= d;
    return p;
  };
  const int64_t outer = product(fs.take_front(l.axis));
  const int64_t inner = product(fs.drop_front(l.axis + 1));
  int64_t shared = 0;
  while (shared < static_cast<int64_t>(std::min(fs.size(), ts.size())) &&
         fs[shared] == ts[shared])
    ++shared;
  std::optional<std::pair<int64_t, SmallVector<Segment>>> best;
  int64_t bestUnit = 0;
  for (int64_t axis = 0; axis < static_cast<int64_t>(ts.size()); ++axis) {
    if (product(ts.take_front(axis)) != outer)
      continue;
    const int64_t toInner = product(ts.drop_front(axis + 1));
    if (ts[axis] * toInner != fs[l.axis] * inner)
      continue;
    SmallVector<Segment> mapped;
    for (const Segment &s : l.segments) {
      if ((s.size * inner) % toInner != 0 || (s.offset * inner) % toInner != 0)
        break;
      mapped.push_back({s.offset * inner / toInner, s.units, s.size * inner / toInner});
    }
    if (mapped.size() != l.segments.size())
      continue;
    if (l.axis < shared && axis == l.axis)
      return assign(to, axis, mapped, op);
    if (l.axis < shared || axis < shared)
      continue;
    int64_t unit = 0;
    for (const Segment &s : mapped)
      unit = std::max(unit, s.size);
    if (!best || unit < bestUnit) {
      best = {axis, mapped};
      bestUnit = unit;
    }
  }
  if (best)
    return assign(to, best->first, best->second, op);
  return pruneError(op) << "cannot follow whole heads or channels through this reshape";
}

LogicalResult Group::spreadSlice(SliceOp op, Value from, const Layout &l) {
  const int64_t offset = op.getOffsets()[l.axis], size = op.getSizes()[l.axis];
  if (!llvm::is_contained(slices, op))
    slices.push_back(op);
  if (from == op.getResult()) {
    SmallVector<Segment> shifted;
    for (const Segment &s : l.segments)
      shifted.push_back({s.offset + offset, s.units, s.size});
    return assign(op.getInput(), l.axis, shifted, op);
  }
  SmallVector<Segment> inside;
  for (const Segment &s : l.segments) {
    if (s.end() <= offset || s.offset >= offset + size)
      continue;
    if (s.offset < offset || s.end() > offset + size)
      return pruneError(op) << "the slice cuts through a head or a channel block";
    inside.push_back({s.offset - offset, s.units, s.size});
  }
  if (inside.empty())
    return success();
  return assign(op.getResult(), l.axis, inside, op);
}

/// Batch axes broadcast as elementwise ones do; M follows the lhs to the
/// result, N the rhs, and K joins lhs and rhs only (the group ends there).
LogicalResult Group::spreadMatmul(MatmulOp op, Value from, const Layout &l) {
  Value lhs = op.getLhs(), rhs = op.getRhs(), result = op.getResult();
  const int64_t rl = typeOf(lhs).getRank(), rr = typeOf(rhs).getRank(),
                rank = typeOf(result).getRank();
  const int64_t ml = op.getTransposeLhs() ? rl - 1 : rl - 2;
  const int64_t kl = op.getTransposeLhs() ? rl - 2 : rl - 1;
  const int64_t kr = op.getTransposeRhs() ? rr - 1 : rr - 2;
  const int64_t nr = op.getTransposeRhs() ? rr - 2 : rr - 1;
  auto set = [&](Value v, int64_t axis) { return assign(v, axis, l.segments, op); };
  auto batch = [&](int64_t resultAxis) -> LogicalResult {
    for (Value v : {lhs, rhs, result}) {
      const int64_t at = resultAxis - (rank - typeOf(v).getRank());
      if (v == from || at < 0 ||
          (typeOf(v).getDimSize(at) == 1 && typeOf(result).getDimSize(resultAxis) != 1))
        continue;
      if (failed(set(v, at)))
        return failure();
    }
    return success();
  };
  if (from == lhs) {
    if (l.axis == kl)
      return set(rhs, kr);
    if (l.axis == ml)
      return set(result, rank - 2);
    return batch(l.axis + rank - rl);
  }
  if (from == rhs) {
    if (l.axis == kr)
      return set(lhs, kl);
    if (l.axis == nr)
      return set(result, rank - 1);
    return batch(l.axis + rank - rr);
  }
  if (l.axis == rank - 2)
    return set(lhs, ml);
  if (l.axis == rank - 1)
    return set(rhs, nr);
  return batch(l.axis);
}

/// The names' common prefix up to its last '.': the group's name in the
/// report (`model.layers.0.self_attn.`).
std::string groupName(ArrayRef<ParamOp> params) {
  if (params.empty())
    return "";
  ParamOp first = params.front();
  std::string prefix = first.getName().str();
  for (ParamOp p : params) {
    StringRef name = p.getName();
    size_t i = 0;
    while (i < prefix.size() && i < name.size() && prefix[i] == name[i])
      ++i;
    prefix.resize(i);
  }
  size_t dot = prefix.rfind('.');
  return dot == std::string::npos ? first.getName().str() : prefix.substr(0, dot + 1);
}

/// A group and how many of its units go.
struct Plan {
  Group group;
  std::string kind; // heads or channels
  int64_t units = 0, keep = 0, perUnit = 1, replicas = 1;
};

/// Shrinks every value of `plan`'s group and records the weights' slicing
/// in the parameters' attribute `attr`.
void shrink(Plan &plan, StringRef attr = kPruneAttr) {
  Group &g = plan.group;
  const int64_t removed = plan.units - plan.keep;
  auto removedIn = [&](const Layout &l, int64_t from, int64_t to) {
    int64_t r = 0;
    for (const Segment &s : l.segments)
      if (s.offset >= from && s.end() <= to)
        r += removed * s.size;
    return r;
  };
  // Slices first: their offsets are read in the input's old coordinates.
  for (SliceOp s : g.slices) {
    const Layout &in = g.layouts.find(s.getInput())->second;
    SmallVector<int64_t> offsets(s.getOffsets()), sizes(s.getSizes());
    int64_t &offset = offsets[in.axis], &size = sizes[in.axis];
    size -= removedIn(in, offset, offset + size);
    offset -= removedIn(in, 0, offset);
    s.setOffsets(offsets);
    s.setSizes(sizes);
  }
  std::string name = groupName(g.params);
  for (ParamOp p : g.params) {
    const Layout &l = g.layouts.find(p.getResult())->second;
    setWeightSlicing(
        p, {name, plan.kind, l.axis, plan.keep, plan.perUnit, l.segments, plan.replicas}, attr);
  }
  for (Value v : g.order) {
    const Layout &l = g.layouts.find(v)->second;
    SmallVector<int64_t> shape(typeOf(v).getShape());
    shape[l.axis] -= removedIn(l, 0, shape[l.axis]);
    v.setType(typeOf(v).clone(shape));
  }
  for (ConstantOp c : g.constants)
    c.setValueAttr(cast<DenseElementsAttr>(c.getValue()).resizeSplat(
        cast<ShapedType>(c.getType())));
}

bool isActivation(Operation *op) {
  return isa_and_nonnull<SiluOp, GeluOp, ReluOp, SigmoidOp>(op);
}

/// Tensor parallelism over `parts` ranks of an attention whose `kvHeads`
/// are fewer: its `h` query heads (from `queries`, the scores' lhs) split,
/// and each KV head, repeated for the query heads of `parts / kvHeads`
/// ranks, becomes one head a rank; the repeats then repeat it h / parts
/// times. Nothing changes unless every group grows (a fused QKV
/// projection joins queries and keys, and the attention stays whole).
void planReplicatedKv(Value queries, int64_t h, int64_t kvHeads, int64_t parts,
                      std::vector<Plan> &plans, DenseMap<Value, Layout> &taken,
                      Operation *at) {
  ScopedDiagnosticHandler quiet(at->getContext(), [](Diagnostic &) { return success(); });
  std::vector<Plan> found;
  DenseMap<Value, Layout> trial = taken;
  auto grow = [&](Value seed, int64_t units, int64_t keep, Operation *from) {
    Plan plan{Group(trial)};
    plan.group.stopAtRepeats = true;
    if (failed(plan.group.grow(seed, {1, {{0, units, 1}}}, from)))
      return false;
    for (auto &[v, l] : plan.group.layouts)
      trial[v] = l;
    plan.kind = "heads";
    plan.units = units;
    plan.keep = keep;
    found.push_back(std::move(plan));
    return true;
  };
  if (!grow(queries, h, h / parts, at))
    return;
  SmallVector<RepeatOp> repeats = found.front().group.repeats;
  if (repeats.empty())
    return;
  for (RepeatOp r : repeats) {
    if (trial.count(r.getInput()))
      continue; // K and V of one value
    if (!grow(r.getInput(), kvHeads, 1, r))
      return;
    found.back().replicas = parts / kvHeads;
    if (!found.back().group.repeats.empty() &&
        llvm::any_of(found.back().group.repeats,
                     [&](RepeatOp other) { return !llvm::is_contained(repeats, other); }))
      return; // a KV head reaching another attention's repeat
  }
  taken = std::move(trial);
  for (Plan &plan : found)
    plans.push_back(std::move(plan));
  for (RepeatOp r : repeats)
    r.setTimes(h / parts);
}

/// Finds every group of `func` and what it keeps.
LogicalResult planGroups(func::FuncOp func, int64_t heads, double mlp, int64_t parts,
                         std::vector<Plan> &plans, DenseMap<Value, Layout> &taken) {
  auto add = [&](Value seed, Layout layout, Operation *at) -> FailureOr<Plan *> {
    Plan plan{Group(taken)};
    if (failed(plan.group.grow(seed, std::move(layout), at)))
      return failure();
    for (auto &[v, l] : plan.group.layouts) {
      taken[v] = l;
      for (const Segment &s : l.segments) {
        if (plan.units && s.units != plan.units) {
          pruneError(at) << "the heads or channels come in groups of different counts";
          return failure();
        }
        plan.units = s.units;
      }
    }
    plans.push_back(std::move(plan));
    return &plans.back();
  };
  WalkResult walk = func.walk([&](MatmulOp m) {
    Value lhs = m.getLhs(), rhs = m.getRhs();
    RankedTensorType l = typeOf(lhs);
    // Attention scores q·kᵀ [B, H, T, S], K and V maybe repeated per group.
    if ((heads > 0 || parts > 0) && l.getRank() == 4 && m.getTransposeRhs() &&
        !m.getTransposeLhs() && !lhs.getDefiningOp<ParamOp>() &&
        !rhs.getDefiningOp<ParamOp>() && !taken.count(lhs)) {
      auto repeat = rhs.getDefiningOp<RepeatOp>();
      const int64_t perGroup = repeat && repeat.getAxis() == 1 ? repeat.getTimes() : 1;
      Operation *at = repeat ? repeat.getOperation() : m.getOperation();
      const int64_t h = l.getDimSize(1);
      if (parts > 0) {
        const int64_t kvHeads = h / perGroup;
        // Fewer KV heads than ranks (multi-query attention at tp=2, two KV
        // heads at tp=4): the query heads split and each rank keeps the
        // one KV head they read, replicated (Megatron's). Where even that
        // cannot be (KV heads that neither divide nor are divided by the
        // ranks, a projection fusing queries with keys), the whole
        // attention is replicated, every rank computing it.
        if (kvHeads % parts != 0) {
          if (repeat && parts % kvHeads == 0 && h % parts == 0)
            planReplicatedKv(lhs, h, kvHeads, parts, plans, taken, m);
          return WalkResult::advance();
        }
        FailureOr<Plan *> plan = add(lhs, {1, {{0, kvHeads, perGroup}}}, m);
        if (failed(plan))
          return WalkResult::interrupt();
        (*plan)->kind = "heads";
        (*plan)->perUnit = perGroup;
        (*plan)->keep = kvHeads / parts;
        return WalkResult::advance();
      }
      if (heads % perGroup != 0) {
        pruneError(at) << "heads=" << heads << ": " << perGroup
                       << " query heads share each KV head here (grouped-query attention); "
                          "remove a multiple of "
                       << perGroup;
        return WalkResult::interrupt();
      }
      if (heads >= h) {
        pruneError(at) << "heads=" << heads << " removes every one of this attention's " << h
                       << " heads";
        return WalkResult::interrupt();
      }
      FailureOr<Plan *> plan = add(lhs, {1, {{0, h / perGroup, perGroup}}}, m);
      if (failed(plan))
        return WalkResult::interrupt();
      (*plan)->kind = "heads";
      (*plan)->perUnit = perGroup;
      (*plan)->keep = (h - heads) / perGroup;
      return WalkResult::advance();
    }
    // An MLP's down projection, over act(x·W1) or act(x·W1) ⊙ (x·W2).
    Operation *def = lhs.getDefiningOp();
    bool hidden = isActivation(def) ||
                  (isa_and_nonnull<MulOp>(def) &&
                   llvm::any_of(def->getOperands(),
                                [](Value v) { return isActivation(v.getDefiningOp()); }));
    if ((mlp > 0 || parts > 0) && hidden && rhs.getDefiningOp<ParamOp>() &&
        !m.getTransposeLhs() && !taken.count(lhs)) {
      const int64_t width = l.getShape().back();
      if (parts > 0 && width % parts != 0) {
        m.emitOpError("--gai-shard-tensors: tp=")
            << parts << ": the " << width << " channels of this MLP (axis "
            << l.getRank() - 1 << " of " << lhs.getType() << ") do not divide over "
            << parts << " ranks";
        return WalkResult::interrupt();
      }
      FailureOr<Plan *> plan = add(lhs, {l.getRank() - 1, {{0, width, 1}}}, m);
      if (failed(plan))
        return WalkResult::interrupt();
      (*plan)->kind = "channels";
      (*plan)->keep = parts > 0 ? width / parts : keptChannels(width, mlp);
    }
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

/// Every function's type from its arguments and returned values.
void retypeFunctions(ModuleOp module) {
  module.walk([](func::FuncOp func) {
    if (func.isExternal())
      return;
    SmallVector<Type> results(func.getBody().front().getTerminator()->getOperandTypes());
    func.setType(FunctionType::get(func.getContext(),
                                   func.getBody().front().getArgumentTypes(), results));
  });
}

/// A weight sliced in one function must be sliced alike in every other.
LogicalResult checkAlike(ModuleOp module, StringRef attr = kPruneAttr) {
  llvm::StringMap<ParamOp> first;
  WalkResult walk = module.walk([&](ParamOp p) {
    auto [it, inserted] = first.try_emplace(p.getName(), p);
    ParamOp other = it->second;
    if (inserted || (other.getType() == p.getType() &&
                     other->getAttr(attr) == p->getAttr(attr)))
      return WalkResult::advance();
    pruneError(p) << "'" << p.getName() << "' is pruned differently in two places";
    return WalkResult::interrupt();
  });
  return failure(walk.wasInterrupted());
}

} // namespace

int64_t keptChannels(int64_t width, double mlp) {
  const double want = (1.0 - mlp) * static_cast<double>(width);
  if (width % 8 == 0)
    return std::clamp<int64_t>(std::llround(want / 8) * 8, 8, width);
  return std::clamp<int64_t>(std::llround(want), 1, width);
}

/// Plans and shrinks every function's groups: pruning (`parts` 0) or a
/// tensor-parallel split; `what` is the pass and its option, for the error
/// when attention is rewritten already (its heads are inside one op).
static LogicalResult shrinkGroups(ModuleOp module, int64_t heads, double mlp, int64_t parts,
                           const Twine &what, SmallVectorImpl<Operation *> *contractions,
                           SmallVectorImpl<Operation *> *columns) {
  if (heads > 0 || parts > 0) {
    WalkResult rewritten = module.walk([&](Operation *op) {
      if (!isa<FlashAttentionOp, CachedAttentionOp>(op))
        return WalkResult::advance();
      op->emitOpError(what) << ": attention is rewritten already; run "
                            << (parts > 0 ? "--gai-shard-tensors" : "--gai-prune")
                            << " before --gai-attention-rewrite";
      return WalkResult::interrupt();
    });
    if (rewritten.wasInterrupted())
      return failure();
  }
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal())
      continue;
    std::vector<Plan> plans;
    DenseMap<Value, Layout> taken;
    if (failed(planGroups(func, heads, mlp, parts, plans, taken)))
      return failure();
    if (contractions) {
      // A matmul that contracts a split axis of its lhs ends the group:
      // its result is each rank's partial sum.
      func.walk([&](MatmulOp m) {
        auto l = taken.find(m.getLhs());
        const int64_t rank = typeOf(m.getLhs()).getRank();
        const int64_t contracted = m.getTransposeLhs() ? rank - 2 : rank - 1;
        if (l != taken.end() && l->second.axis == contracted && !taken.count(m.getResult()))
          contractions->push_back(m);
        if (l == taken.end() && taken.count(m.getRhs()) && taken.count(m.getResult()))
          columns->push_back(m);
      });
    }
    for (Plan &plan : plans)
      if (plan.keep < plan.units || plan.replicas > 1)
        shrink(plan, parts > 0 ? kTensorParallelAttr : kPruneAttr);
  }
  retypeFunctions(module);
  return checkAlike(module, parts > 0 ? kTensorParallelAttr : kPruneAttr);
}

LogicalResult pruneHeadsAndChannels(ModuleOp module, int64_t heads, double mlp) {
  return shrinkGroups(module, heads, mlp, 0, "--gai-prune: heads=" + Twine(heads), nullptr,
                      nullptr);
}

LogicalResult splitHeadsAndChannels(ModuleOp module, int64_t parts,
                                    SmallVectorImpl<Operation *> &contractions,
                                    SmallVectorImpl<Operation *> &columns) {
  return shrinkGroups(module, 0, 0, parts, "--gai-shard-tensors: tp=" + Twine(parts),
                      &contractions, &columns);
}


} // namespace mlir::gai
