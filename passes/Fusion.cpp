// Attaches GEMM epilogues and groups elementwise and row ops into
// gai.fusion regions, one kernel each.
#include "dialects/Gai/GaiOps.h"
#include "passes/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/SetVector.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIFUSION
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

//===----------------------------------------------------------------------===//
// GEMM epilogues
//===----------------------------------------------------------------------===//

Operation *onlyUser(Value v) {
  return v.hasOneUse() ? *v.getUsers().begin() : nullptr;
}

/// If `add` adds `acc` to something else, returns the other operand.
Value otherAddend(Operation *op, Value acc) {
  auto add = dyn_cast_if_present<AddOp>(op);
  if (!add || add.getType() != acc.getType())
    return {};
  return add.getLhs() == acc ? add.getRhs() : add.getLhs();
}

/// The result of `op` when it converts a bf16 or f16 tensor to f32.
Value widenedToF32(Operation *op) {
  auto convert = dyn_cast_if_present<ConvertOp>(op);
  if (!convert)
    return {};
  auto from = cast<RankedTensorType>(convert.getInput().getType()).getElementType();
  auto to = cast<RankedTensorType>(convert.getType()).getElementType();
  return (from.isBF16() || from.isF16()) && to.isF32() ? convert.getResult() : Value();
}

std::optional<EpilogueActivation> epilogueActivation(Operation *op) {
  if (isa_and_present<SiluOp>(op))
    return EpilogueActivation::Silu;
  if (isa_and_present<ReluOp>(op))
    return EpilogueActivation::Relu;
  if (auto gelu = dyn_cast_if_present<GeluOp>(op))
    return gelu.getApproximation() == GeluApproximation::Tanh
               ? EpilogueActivation::GeluTanh
               : EpilogueActivation::Gelu;
  return std::nullopt;
}

/// The rows of a value of type `type`: the product of every axis but the last.
int64_t rowsOf(Type type) {
  int64_t rows = 1;
  for (int64_t d : cast<RankedTensorType>(type).getShape().drop_back())
    rows *= d;
  return rows;
}


/// A product over 2:4 weights (a gai.decompress).
bool sparse24(MatmulOp product) {
  return static_cast<bool>(product.getRhs().getDefiningOp<DecompressOp>());
}

/// Products whose library GEMM is fast only with a bf16 result: 2:4
/// weights (cuSPARSELt writes bf16 only) and fp8 ones (cuBLASLt's fp8
/// GEMM with an f32 C runs at about bf16's speed).
bool writesNarrowOnly(MatmulOp matmul) {
  auto dequantize = matmul.getRhs().getDefiningOp<DequantizeOp>();
  return sparse24(matmul) || (dequantize && dequantize.getFormat() == QuantFormat::Fp8E4M3);
}

struct GemmEpiloguePattern : OpRewritePattern<MatmulOp> {
  GemmEpiloguePattern(MLIRContext *context, bool libraryActivations,
                      int64_t narrowResidualRows)
      : OpRewritePattern(context), libraryActivations(libraryActivations),
        narrowResidualRows(narrowResidualRows) {}

  /// Only relu and tanh-gelu: what cuBLASLt's epilogue computes.
  bool libraryActivations;
  /// > 0: a 2:4 product of more rows keeps an f32 residual add apart.
  int64_t narrowResidualRows;

  LogicalResult matchAndRewrite(MatmulOp matmul,
                                PatternRewriter &rewriter) const override {
    auto type = matmul.getType();
    Value acc = matmul.getResult();
    Operation *last = matmul;
    Value bias, residual;
    EpilogueActivation activation = EpilogueActivation::None;

    if (Value other = otherAddend(onlyUser(acc), acc)) {
      auto b = cast<RankedTensorType>(other.getType());
      if (b.getRank() == 1 && b.getDimSize(0) == type.getShape().back() &&
          b.getElementType() == type.getElementType() && other != acc) {
        bias = other;
        last = onlyUser(acc);
        acc = last->getResult(0);
      }
    }
    std::optional<EpilogueActivation> act = epilogueActivation(onlyUser(acc));
    if (act && libraryActivations && *act != EpilogueActivation::Relu &&
        *act != EpilogueActivation::GeluTanh)
      act.reset();
    if (act) {
      activation = *act;
      last = onlyUser(acc);
      acc = last->getResult(0);
    }
    if (Value other = otherAddend(onlyUser(acc), acc)) {
      if (other.getType() == type && other != acc) {
        residual = other;
        last = onlyUser(acc);
        acc = last->getResult(0);
      }
    } else if (Value widened = widenedToF32(onlyUser(acc));
               widened && !bias &&
               !(narrowResidualRows > 0 && writesNarrowOnly(matmul) &&
                 rowsOf(matmul.getType()) > narrowResidualRows)) {
      // An f32 residual stream: the GEMM adds its unrounded product. Not a
      // 2:4 or fp8 GEMM's (narrowResidualRows): the add costs nothing in the
      // next kernel, where a wide epilogue would decompress a 2:4 weight
      // every run for cuBLASLt, or take cuBLASLt's slow f32-C fp8 kernels
      // (llama-1b's fp8 prefill on an H100: 7.83 -> 7.62 ms).
      if (Value other = otherAddend(onlyUser(widened), widened); other && other != widened) {
        residual = other;
        last = onlyUser(widened);
        acc = last->getResult(0);
      }
    }
    if (last == matmul.getOperation())
      return rewriter.notifyMatchFailure(matmul, "no epilogue to attach");

    // At the last absorbed op: the bias and residual may be defined after
    // the matmul.
    rewriter.setInsertionPoint(last);
    rewriter.replaceOpWithNewOp<GemmOp>(
        last, matmul.getLhs(), matmul.getRhs(), bias, residual,
        matmul.getTransposeLhs(), matmul.getTransposeRhs(), activation);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Gated linear units
//===----------------------------------------------------------------------===//

/// x·Wᵀ with W a [N, K] weight: the products a gated GEMM takes. 2:4
/// weights only in bf16: the gated GEMV reads their values as bf16.
MatmulOp linearProduct(Value v) {
  auto matmul = v.getDefiningOp<MatmulOp>();
  auto weight = matmul ? dyn_cast<RankedTensorType>(matmul.getRhs().getType())
                       : RankedTensorType();
  if (!matmul || !v.hasOneUse() || matmul.getTransposeLhs() ||
      !matmul.getTransposeRhs() || !weight || weight.getRank() != 2 ||
      (matmul.getRhs().getDefiningOp<DecompressOp>() && !weight.getElementType().isBF16()))
    return {};
  return matmul;
}

constexpr int64_t kGatedGemmKMultiple = 8;

/// act(x·Wgᵀ) * (x·Wuᵀ) -> gai.gated_gemm, for x of at most `maxRows` rows.
struct GatedGemmPattern : OpRewritePattern<MulOp> {
  GatedGemmPattern(MLIRContext *context, int64_t maxRows)
      : OpRewritePattern(context), maxRows(maxRows) {}
  int64_t maxRows;

  LogicalResult matchAndRewrite(MulOp mul, PatternRewriter &rewriter) const override {
    for (int gateSide = 0; gateSide < 2; ++gateSide) {
      Value activated = mul->getOperand(gateSide), other = mul->getOperand(1 - gateSide);
      Operation *act = activated.getDefiningOp();
      std::optional<EpilogueActivation> kind = epilogueActivation(act);
      if (!kind || !activated.hasOneUse())
        continue;
      MatmulOp gate = linearProduct(act->getOperand(0));
      MatmulOp up = linearProduct(other);
      if (!gate || !up || gate.getLhs() != up.getLhs() ||
          gate.getRhs().getType() != up.getRhs().getType() || sparse24(gate) != sparse24(up) ||
          mul.getType() != up.getType())
        continue;
      Type x = gate.getLhs().getType();
      // The GEMV that runs it streams K in 16-byte pieces of bf16.
      if (rowsOf(x) > maxRows ||
          cast<RankedTensorType>(x).getShape().back() % kGatedGemmKMultiple != 0)
        return rewriter.notifyMatchFailure(mul, "not a gated GEMV's shape");
      rewriter.replaceOpWithNewOp<GatedGemmOp>(mul, mul.getType(), gate.getLhs(),
                                               gate.getRhs(), up.getRhs(), *kind);
      rewriter.eraseOp(act);
      rewriter.eraseOp(gate);
      rewriter.eraseOp(up);
      return success();
    }
    return rewriter.notifyMatchFailure(mul, "not act(x·Wgᵀ) * (x·Wuᵀ)");
  }
};

//===----------------------------------------------------------------------===//
// Fusion regions
//===----------------------------------------------------------------------===//

bool isSplatConstant(Operation *op) {
  auto constant = dyn_cast_if_present<ConstantOp>(op);
  return constant && isa<SplatElementsAttr>(constant.getValue());
}

/// Ops a generated kernel computes: elementwise, or reading rows of the
/// last axis. The ops say which they are through their traits.
bool isFusible(Operation *op) {
  if (op->hasTrait<mlir::OpTrait::Elementwise>() ||
      op->hasTrait<BroadcastElementwise>() || op->hasTrait<IndexFunction>())
    return true;
  auto rowOp = dyn_cast<RowOpInterface>(op);
  return rowOp && rowOp.readsLastAxisRows();
}

/// A transpose a kernel can read through: rows stay contiguous, and it
/// moves data (one that only moves unit dimensions becomes a reshape).
bool keepsRows(Operation *op) {
  auto transpose = dyn_cast_if_present<TransposeOp>(op);
  if (!transpose)
    return false;
  ArrayRef<int64_t> permutation = transpose.getPermutation();
  return !permutation.empty() &&
         permutation.back() == static_cast<int64_t>(permutation.size()) - 1 &&
         !transpose.movesOnlyUnitDims();
}

/// Whether the user of `use` computes the value in its own kernel when
/// they fuse: RoPE reads its positions per row, not as a computed operand.
bool readsInKernel(OpOperand &use) {
  auto rope = dyn_cast<RopeOp>(use.getOwner());
  return isFusible(use.getOwner()) && !(rope && use.get() == rope.getPositions());
}

/// The bytes of a tensor value.
int64_t bytesOf(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  return type.getNumElements() * std::max<int64_t>(1, type.getElementTypeBitWidth() / 8);
}

/// Whether `v` is read after every op of `users`: a block argument always
/// is (it lives through the function), a value only if one of its users
/// other than `except` comes after them all.
bool outlives(Value v, Operation *except, ArrayRef<Operation *> users) {
  if (isa<BlockArgument>(v))
    return true;
  Operation *last = nullptr;
  for (Operation *user : v.getUsers())
    if (user != except && (!last || last->isBeforeInBlock(user)))
      last = user;
  return last && llvm::all_of(users, [&](Operation *user) {
           return user == last || user->isBeforeInBlock(last);
         });
}

/// Gives every fusible user of a cheap elementwise op its own copy, when
/// the op reads one tensor (and scalars) and its result is never smaller
/// than that tensor or the tensor stays live anyway: each copy fuses into
/// its user, which reads the tensor itself, so the result is never written
/// out and nothing lives longer in bytes. AdamW's gradient times the
/// clipping scale, read by both moments' updates, is one; SiLU's output,
/// read by the forward product and again by the backward's, another; a
/// bf16 gradient widened to f32 for two consumers a third.
void copyCheapOpsIntoUsers(Block &block) {
  auto isScalar = [](Value v) {
    return cast<RankedTensorType>(v.getType()).getNumElements() == 1;
  };
  // A copy's operand may itself be such an op: repeat until none is left.
  // This ends: each round leaves its candidates with one use each, and only
  // ops further up a chain can gain uses.
  while (true) {
    SmallVector<Operation *> candidates;
    for (Operation &op : block) {
      if (op.getNumResults() != 1 || op.hasOneUse() || op.use_empty() ||
          !(op.hasTrait<mlir::OpTrait::Elementwise>() ||
            op.hasTrait<BroadcastElementwise>()))
        continue;
      auto type = dyn_cast<RankedTensorType>(op.getResult(0).getType());
      if (!type || type.getNumElements() == 1)
        continue;
      Value tensor;
      int tensors = 0;
      for (Value operand : op.getOperands()) {
        if (isScalar(operand))
          continue;
        ++tensors;
        tensor = operand;
      }
      if (tensors != 1 ||
          cast<RankedTensorType>(tensor.getType()).getNumElements() != type.getNumElements())
        continue;
      SmallVector<Operation *> users(op.getUsers());
      if (!llvm::all_of(op.getUses(), [&](OpOperand &use) {
            return use.getOwner()->getBlock() == &block && readsInKernel(use);
          }))
        continue;
      if (bytesOf(tensor) <= bytesOf(op.getResult(0)) || outlives(tensor, &op, users))
        candidates.push_back(&op);
    }
    if (candidates.empty())
      return;
    OpBuilder builder(block.getParentOp()->getContext());
    for (Operation *op : candidates) {
      SmallVector<OpOperand *> uses;
      for (OpOperand &use : op->getUses())
        uses.push_back(&use);
      for (OpOperand *use : ArrayRef<OpOperand *>(uses).drop_front()) {
        builder.setInsertionPoint(use->getOwner());
        use->set(builder.clone(*op)->getResult(0));
      }
    }
  }
}

/// The tensors a growing region reads from outside it (splat constants are
/// copied in, so they do not count), kept as ops join.
class RegionInputs {
public:
  /// How many there would be once `op` joined `members`.
  int64_t countWith(Operation *op, const DenseSet<Operation *> &members) const {
    int64_t count = static_cast<int64_t>(outside.size());
    for (Value result : op->getResults())
      count -= outside.contains(result);
    SmallVector<Value, 8> added;
    for (Value operand : op->getOperands())
      if (external(operand, members) && !outside.contains(operand) &&
          !llvm::is_contained(added, operand))
        added.push_back(operand);
    return count + static_cast<int64_t>(added.size());
  }
  int64_t count() const { return static_cast<int64_t>(outside.size()); }
  /// `op` has joined `members`.
  void add(Operation *op, const DenseSet<Operation *> &members) {
    for (Value result : op->getResults())
      outside.erase(result);
    for (Value operand : op->getOperands())
      if (external(operand, members))
        outside.insert(operand);
  }

private:
  static bool external(Value v, const DenseSet<Operation *> &members) {
    Operation *producer = v.getDefiningOp();
    return !(producer && members.contains(producer)) && !isSplatConstant(producer);
  }
  DenseSet<Value> outside;
};

/// Groups of ops, each rooted at its last op, in reverse block order. A
/// producer joins once every user it has is in the group, so a value read
/// twice inside one kernel (a sigmoid in SiLU's gradient) is computed there
/// rather than written out. With `absorbTransposes`, a row-keeping
/// transpose joins as a leaf: its input is read from memory, never
/// computed in the region.
SmallVector<SmallVector<Operation *>> formGroups(Block &block, bool absorbTransposes,
                                                int64_t maxInputs) {
  DenseSet<Operation *> grouped;
  SmallVector<SmallVector<Operation *>> groups;
  for (Operation &root : llvm::reverse(block)) {
    if (!isFusible(&root) || grouped.contains(&root))
      continue;
    SmallVector<Operation *> group, worklist = {&root}, waiting;
    DenseSet<Operation *> members = {&root};
    grouped.insert(&root);
    RegionInputs inputs;
    inputs.add(&root, members);
    auto join = [&](Operation *op) {
      grouped.insert(op);
      members.insert(op);
      inputs.add(op, members);
      worklist.push_back(op);
    };
    // A reduction inside a reduction's row would run serially in that
    // row's threads; the inner one gets its own kernel, parallel by row.
    auto mayJoin = [](Operation *producer) {
      return !isa<ReduceOp>(producer) ||
             llvm::none_of(producer->getUsers(), [](Operation *u) { return isa<ReduceOp>(u); });
    };
    while (!worklist.empty() || !waiting.empty()) {
      if (worklist.empty()) {
        // Producers whose every user has joined since they were met.
        SmallVector<Operation *> still;
        for (Operation *producer : waiting) {
          if (grouped.contains(producer))
            continue;
          if (inputs.countWith(producer, members) > maxInputs)
            continue;
          if (llvm::all_of(producer->getUsers(),
                           [&](Operation *user) { return members.contains(user); }))
            join(producer);
          else
            still.push_back(producer);
        }
        if (worklist.empty())
          break;
        waiting = std::move(still);
        continue;
      }
      Operation *op = worklist.pop_back_val();
      group.push_back(op);
      for (Value operand : op->getOperands()) {
        Operation *producer = operand.getDefiningOp();
        // Kernels read RoPE positions per row, not as a broadcast operand.
        auto rope = dyn_cast<RopeOp>(op);
        if (rope && operand == rope.getPositions())
          continue;
        if (absorbTransposes && !isa<TransposeOp>(op) && keepsRows(producer) &&
            producer->hasOneUse() && !grouped.contains(producer) &&
            inputs.countWith(producer, members) <= maxInputs) {
          grouped.insert(producer);
          members.insert(producer);
          inputs.add(producer, members);
          group.push_back(producer);
          continue;
        }
        if (!producer || grouped.contains(producer) || !isFusible(producer) ||
            producer->getBlock() != &block || !mayJoin(producer) ||
            inputs.countWith(producer, members) > maxInputs)
          continue;
        if (llvm::all_of(producer->getUsers(),
                         [&](Operation *user) { return members.contains(user); }))
          join(producer);
        else if (!llvm::is_contained(waiting, producer))
          waiting.push_back(producer);
      }
    }
    llvm::sort(group,
               [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    groups.push_back(std::move(group));
  }
  return groups;
}

/// Where two groups (`early`'s root before `late`'s) may run as one kernel:
/// at late's root, at early's root (late's ops move up to just after it),
/// or nowhere.
enum class MergePlace { None, AtLate, AtEarly };

/// The bytes in the arena while each op of a function's body runs, once its
/// groups are kernels: the memory plan's buffers (collectBuffers, with its
/// aliases and without the returned values, which have places of their own)
/// less the values read only inside their own group. A merge may keep
/// buffers longer where this stays below the most.
struct LiveProfile {
  DenseMap<Operation *, int64_t> index; // the op's place in the body
  std::vector<int64_t> live;            // bytes live at each place
  int64_t peak = 0;

  LiveProfile(func::FuncOp func, const DenseMap<Operation *, size_t> &groupOf) {
    Block &body = func.getBody().front();
    for (Operation &op : body)
      index[&op] = static_cast<int64_t>(index.size());
    auto groupOfOp = [&](Operation *op) -> int64_t {
      auto it = op ? groupOf.find(op) : groupOf.end();
      return it == groupOf.end() ? -1 : static_cast<int64_t>(it->second);
    };
    std::vector<int64_t> change(index.size() + 1, 0);
    ::gai::FunctionBuffers buffers = ::gai::collectBuffers(func);
    for (auto [value, request] : llvm::zip(buffers.values, buffers.requests)) {
      if (request.lastUse == INT64_MAX)
        continue;
      const int64_t group = groupOfOp(value.getDefiningOp());
      const bool stored = group < 0 || llvm::any_of(value.getUsers(), [&](Operation *user) {
                            return groupOfOp(body.findAncestorOpInBlock(*user)) != group;
                          });
      if (!stored)
        continue;
      change[request.firstUse] += request.size;
      change[request.lastUse + 1] -= request.size;
    }
    int64_t running = 0;
    for (size_t i = 0; i < index.size(); ++i) {
      running += change[i];
      live.push_back(running);
      peak = std::max(peak, running);
    }
  }

  /// Whether `extra` bytes more over [from, to) keep under the peak (never
  /// for ops outside the body).
  bool roomFor(Operation *from, Operation *to, int64_t extra) const {
    auto begin = index.find(from), end = index.find(to);
    if (begin == index.end() || end == index.end())
      return false;
    for (int64_t i = begin->second; i < end->second; ++i)
      if (live[i] + extra > peak)
        return false;
    return true;
  }
};

/// Decides MergePlace; never where the pair would read more than
/// `maxInputs` tensors. The kernel's results are the members' values read
/// outside the pair: all of the root's shape (a kernel stores every result
/// at the root's indices) and read only after the kernel. Moving a group's
/// kernel to the other root makes some buffers live longer over the span
/// between the roots and others shorter; a place is taken where the bytes
/// that live longer are at most those that live shorter, or where the
/// longer-lived bytes fit under the block's peak all over the span (a norm's
/// bf16 gradient made with its f32 one, late in the backward pass), so
/// that the most memory in use at once never grows.
MergePlace mergePlace(ArrayRef<Operation *> early, ArrayRef<Operation *> late,
                      int64_t maxInputs, llvm::function_ref<const LiveProfile &()> profile) {
  Operation *earlyRoot = early.back(), *lateRoot = late.back();
  DenseSet<Operation *> both(early.begin(), early.end());
  both.insert(late.begin(), late.end());
  RegionInputs pairInputs;
  for (Operation *op : both)
    pairInputs.add(op, both);
  if (pairInputs.count() > maxInputs)
    return MergePlace::None;
  ArrayRef<int64_t> rootShape =
      cast<RankedTensorType>(lateRoot->getResult(0).getType()).getShape();
  auto after = [&](Operation *user, Operation *point) {
    return user->getBlock() == point->getBlock() && point->isBeforeInBlock(user);
  };
  // The results, by group; any result read before the later root rules out
  // the late place.
  // A returned value has a place of its own, outside the profile's memory.
  auto inArena = [](Value v) {
    return !isa<BlockArgument>(v) && llvm::none_of(v.getUsers(), [](Operation *user) {
      return user->hasTrait<OpTrait::IsTerminator>();
    });
  };
  int64_t earlyResults = 0, lateResults = 0, lateResultsInArena = 0;
  bool readBeforeLateRoot = false;
  for (Operation *op : both) {
    for (Value result : op->getResults()) {
      bool read = false;
      for (OpOperand &use : result.getUses()) {
        Operation *user = use.getOwner();
        if (both.contains(user)) {
          // A value the kernel cannot compute for its reader (RoPE's
          // positions, an absorbed transpose's input), or a reduction over
          // a reduction's rows, which would run serially.
          if (!readsInKernel(use) || (isa<ReduceOp>(op) && isa<ReduceOp>(user)))
            return MergePlace::None;
          continue;
        }
        if (cast<RankedTensorType>(result.getType()).getShape() != rootShape)
          return MergePlace::None;
        readBeforeLateRoot |= !after(user, lateRoot);
        read = true;
      }
      if (!read)
        continue;
      (llvm::is_contained(early, op) ? earlyResults : lateResults) += bytesOf(result);
      if (!llvm::is_contained(early, op) && inArena(result))
        lateResultsInArena += bytesOf(result);
    }
  }
  // The tensors a group reads from outside the pair.
  auto inputs = [&](ArrayRef<Operation *> group) {
    SetVector<Value> found;
    for (Operation *op : group)
      for (Value input : op->getOperands()) {
        Operation *def = input.getDefiningOp();
        if ((def && both.contains(def)) || isSplatConstant(def) ||
            cast<RankedTensorType>(input.getType()).getNumElements() == 1)
          continue;
        found.insert(input);
      }
    return found;
  };
  auto readOutsideAfter = [&](Value v, Operation *point) {
    return llvm::any_of(v.getUsers(),
                        [&](Operation *user) { return !both.contains(user) && after(user, point); });
  };
  auto readBy = [&](Value v, ArrayRef<Operation *> group) {
    return llvm::any_of(v.getUsers(),
                        [&](Operation *user) { return llvm::is_contained(group, user); });
  };
  SetVector<Value> earlyInputs = inputs(early), lateInputs = inputs(late);
  if (!readBeforeLateRoot) {
    // At the late root: early's inputs that died at its root live on to it;
    // early's results are made later.
    int64_t longer = 0, longerInArena = 0;
    for (Value input : earlyInputs)
      if (!isa<BlockArgument>(input) && !readBy(input, late) && !readOutsideAfter(input, lateRoot)) {
        longer += bytesOf(input);
        if (inArena(input))
          longerInArena += bytesOf(input);
      }
    if (longer <= earlyResults || profile().roomFor(earlyRoot, lateRoot, longerInArena))
      return MergePlace::AtLate;
  }
  // At the early root (late's ops follow it at once): every value late
  // reads must exist there, scalars included (only splat constants are
  // copied into the kernel); its results are made sooner, and its inputs
  // that died at its root die sooner.
  for (Operation *op : late)
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (def && !both.contains(def) && !isSplatConstant(def) && !def->isBeforeInBlock(earlyRoot))
        return MergePlace::None;
    }
  int64_t shorter = 0;
  for (Value input : lateInputs) {
    if (!isa<BlockArgument>(input) && !readOutsideAfter(input, earlyRoot))
      shorter += bytesOf(input);
  }
  return lateResults <= shorter || profile().roomFor(earlyRoot, lateRoot, lateResultsInArena)
             ? MergePlace::AtEarly
             : MergePlace::None;
}

/// An RMSNorm alone, perhaps converted, of at most `foldRows` rows (< 0: any):
/// the lowering folds such a kernel into the decode GEMV that reads it
/// (NormFold), which a merge would hide.
bool isFoldableNorm(ArrayRef<Operation *> group, int64_t foldRows) {
  if (group.empty() || group.size() > 2 || !isa<RmsNormOp>(group.front()) ||
      (group.size() == 2 && !isa<ConvertOp>(group.back())))
    return false;
  return foldRows < 0 || rowsOf(group.front()->getResult(0).getType()) <= foldRows;
}

/// Merges groups into one kernel where that saves a pass over memory:
/// - a group whose result another reads, when the result has readers after
///   that one too (AdamW's new moments, read by the parameter update and
///   written back as state; a norm's f32 gradient, read by its bf16
///   conversion and by the next layer's norm): written once, not written
///   and read back;
/// - groups that read the same tensor of their results' size (SwiGLU's two
///   input gradients, both over the gate and the incoming gradient; a
///   norm's input gradient and its weight's per-element terms): read once.
/// Only where mergePlace finds a place, and never a foldable norm.
void mergeGroups(func::FuncOp func, SmallVector<SmallVector<Operation *>> &groups,
                 int64_t maxInputs, int64_t normFoldRows) {
  DenseMap<Operation *, size_t> groupOf;
  for (auto [i, group] : llvm::enumerate(groups))
    for (Operation *op : group)
      groupOf[op] = i;
  // Made when a merge first asks for it after the groups changed.
  std::optional<LiveProfile> profile;
  auto currentProfile = [&]() -> const LiveProfile & {
    if (!profile)
      profile.emplace(func, groupOf);
    return *profile;
  };
  auto elements = [](Value v) { return cast<RankedTensorType>(v.getType()).getNumElements(); };
  // Merges `early` into groups[h] if mergePlace finds a place.
  auto tryMerge = [&](size_t h, size_t g) {
    SmallVector<Operation *> &late = groups[h], &early = groups[g];
    Operation *root = late.back();
    if (g == h || early.empty() || isFoldableNorm(early, normFoldRows) ||
        early.back()->getBlock() != root->getBlock() || !early.back()->isBeforeInBlock(root))
      return false;
    MergePlace place = mergePlace(early, late, maxInputs, currentProfile);
    if (place == MergePlace::None)
      return false;
    if (place == MergePlace::AtEarly) {
      // Collected first: each move makes the block renumber its ops.
      SmallVector<Operation *> moving;
      for (Operation *op : late)
        if (early.back()->isBeforeInBlock(op))
          moving.push_back(op);
      Operation *last = early.back();
      for (Operation *op : moving) {
        op->moveAfter(last);
        last = op;
      }
    }
    for (Operation *op : early)
      groupOf[op] = h;
    late.append(early.begin(), early.end());
    llvm::sort(late, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    early.clear();
    profile.reset();
    return true;
  };
  // Each group takes what merges it can, again after each merge (its new
  // members bring new candidates); the scan repeats until one merges
  // nothing. A merge changes only the two groups and the profile, so a
  // scan need not restart after each one.
  bool merged = true;
  while (merged) {
    merged = false;
    for (size_t h = 0; h < groups.size(); ++h) {
      bool grew = true;
      while (grew) {
        grew = false;
        SmallVector<Operation *> &late = groups[h];
        if (late.empty() || isFoldableNorm(late, normFoldRows))
          break;
        Operation *root = late.back();
        DenseSet<Operation *> members(late.begin(), late.end());
        // Earlier groups that feed this one or read one of its big inputs.
        SetVector<size_t> candidates;
        for (Operation *member : late)
          for (Value operand : member->getOperands()) {
            Operation *producer = operand.getDefiningOp();
            if (producer && members.contains(producer))
              continue;
            if (auto it = producer ? groupOf.find(producer) : groupOf.end(); it != groupOf.end())
              candidates.insert(it->second);
            if (elements(operand) != elements(root->getResult(0)))
              continue;
            for (Operation *user : operand.getUsers())
              if (auto it = groupOf.find(user); it != groupOf.end())
                candidates.insert(it->second);
          }
        for (size_t g : candidates)
          if (tryMerge(h, g)) {
            merged = grew = true;
            break;
          }
      }
    }
  }
  llvm::erase_if(groups, [](const SmallVector<Operation *> &g) { return g.empty(); });
}

/// Replaces a group by one gai.fusion placed at its root. Its results are
/// the root's and those of members read outside the group (merged groups).
void outlineGroup(ArrayRef<Operation *> group, OpBuilder &builder) {
  DenseSet<Operation *> members(group.begin(), group.end());
  SmallVector<Value> inputs;
  SmallVector<Operation *> constants;
  for (Operation *op : group)
    for (Value operand : op->getOperands()) {
      Operation *producer = operand.getDefiningOp();
      if (producer && members.contains(producer))
        continue;
      if (isSplatConstant(producer)) {
        if (!llvm::is_contained(constants, producer))
          constants.push_back(producer);
      } else if (!llvm::is_contained(inputs, operand)) {
        inputs.push_back(operand);
      }
    }

  Operation *root = group.back();
  SmallVector<Value> outputs = {root->getResult(0)};
  for (Operation *op : group.drop_back())
    if (llvm::any_of(op->getResult(0).getUsers(),
                     [&](Operation *user) { return !members.contains(user); }))
      outputs.push_back(op->getResult(0));
  SmallVector<Type> types;
  for (Value v : outputs)
    types.push_back(v.getType());
  builder.setInsertionPoint(root);
  auto fusion = FusionOp::create(builder, root->getLoc(), types, inputs);
  Block *body = builder.createBlock(&fusion.getBody());
  IRMapping mapping;
  for (Value input : inputs)
    mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
  for (Operation *constant : constants)
    builder.clone(*constant, mapping);
  for (Operation *op : group)
    builder.clone(*op, mapping);
  SmallVector<Value> yielded;
  for (Value v : outputs)
    yielded.push_back(mapping.lookup(v));
  YieldOp::create(builder, root->getLoc(), yielded);

  for (auto [v, result] : llvm::zip(outputs, fusion.getResults()))
    v.replaceAllUsesWith(result);
  for (Operation *op : llvm::reverse(group))
    op->erase();
  for (Operation *constant : constants)
    if (constant->use_empty())
      constant->erase();
}

/// Whether `reduce` sums `v` over every axis but the last (a norm weight's
/// or a bias's gradient).
bool sumsColumns(ReduceOp reduce, Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  if (reduce.getInput() != v || reduce.getKind() != ReduceKind::Sum)
    return false;
  ArrayRef<int64_t> axes = reduce.getAxes();
  if (static_cast<int64_t>(axes.size()) != type.getRank() - 1)
    return false;
  for (auto [i, axis] : llvm::enumerate(axes))
    if (axis != static_cast<int64_t>(i))
      return false;
  return true;
}

/// Column sums of f32 region results, over every row, are read from
/// partial sums of `most` (or fewer, dividing the rows) rows that the
/// region's kernel adds as it goes: the rows never reach memory when the
/// sum is their only reader, and the sum reads `most` times fewer rows.
void useColumnPartials(func::FuncOp func, int64_t most) {
  SmallVector<FusionOp> fusions;
  func.walk([&](FusionOp f) {
    if (!f.getColumnPartials())
      fusions.push_back(f);
  });
  OpBuilder builder(func.getContext());
  for (FusionOp fusion : fusions) {
    ArrayRef<int64_t> rowShape =
        cast<RankedTensorType>(fusion.getBody().front().getTerminator()->getOperand(0).getType())
            .getShape();
    if (rowShape.size() < 2)
      continue;
    int64_t rows = rowsOf(fusion.getBody().front().getTerminator()->getOperand(0).getType());
    int64_t group = most;
    while (group > 1 && rows % group != 0)
      group /= 2;
    if (group < 2 || rows <= group)
      continue;
    SmallVector<std::pair<unsigned, ReduceOp>> sums;
    for (auto [i, result] : llvm::enumerate(fusion.getResults())) {
      auto type = cast<RankedTensorType>(result.getType());
      if (!type.getElementType().isF32() || type.getShape() != rowShape)
        continue;
      for (Operation *user : result.getUsers())
        if (auto reduce = dyn_cast<ReduceOp>(user); reduce && sumsColumns(reduce, result))
          sums.emplace_back(i, reduce);
    }
    if (sums.empty())
      continue;
    auto yield = cast<YieldOp>(fusion.getBody().front().getTerminator());
    SmallVector<Value> yielded;
    SmallVector<Type> types;
    SmallVector<int64_t> keptAt(fusion.getNumResults(), -1), partialAt(fusion.getNumResults(), -1);
    SmallVector<int64_t> partials;
    for (auto [i, result] : llvm::enumerate(fusion.getResults())) {
      bool readElsewhere = llvm::any_of(result.getUsers(), [&](Operation *user) {
        return !llvm::is_contained(sums, std::make_pair(static_cast<unsigned>(i),
                                                        dyn_cast<ReduceOp>(user)));
      });
      if (!readElsewhere)
        continue;
      keptAt[i] = static_cast<int64_t>(types.size());
      types.push_back(result.getType());
      yielded.push_back(yield.getOperand(i));
    }
    for (auto [i, reduce] : sums) {
      if (partialAt[i] >= 0)
        continue;
      partialAt[i] = static_cast<int64_t>(types.size());
      partials.push_back(partialAt[i]);
      types.push_back(RankedTensorType::get({rows / group, rowShape.back()},
                                            builder.getF32Type()));
      yielded.push_back(yield.getOperand(i));
    }
    builder.setInsertionPoint(fusion);
    auto next = FusionOp::create(builder, fusion.getLoc(), types, fusion.getInputs(),
                                 builder.getDenseI64ArrayAttr(partials),
                                 builder.getI64IntegerAttr(group));
    next.getBody().takeBody(fusion.getBody());
    yield->setOperands(yielded);
    for (auto [i, reduce] : sums) {
      builder.setInsertionPoint(reduce);
      Value partial = next.getResult(static_cast<unsigned>(partialAt[i]));
      Value total = ReduceOp::create(
          builder, reduce.getLoc(),
          RankedTensorType::get({rowShape.back()}, builder.getF32Type()),
          reduce.getKindAttr(), partial, builder.getDenseI64ArrayAttr({0}), UnitAttr());
      if (total.getType() != reduce.getType())
        total = ReshapeOp::create(builder, reduce.getLoc(), reduce.getType(), total);
      reduce.replaceAllUsesWith(total);
      reduce.erase();
    }
    for (auto [i, result] : llvm::enumerate(fusion.getResults()))
      if (keptAt[i] >= 0)
        result.replaceAllUsesWith(next.getResult(static_cast<unsigned>(keptAt[i])));
    fusion.erase();
  }
}

/// A last-axis reduce that drops its axis becomes one that keeps it and a
/// reshape (a view): a kernel's rows are its result's leading dimensions,
/// so the region's result must keep the reduced axis as its last.
struct KeepReducedAxisPattern : OpRewritePattern<ReduceOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(ReduceOp reduce, PatternRewriter &rewriter) const override {
    RankedTensorType in = reduce.getInput().getType();
    // A vector's total is a scalar row already.
    if (reduce.getKeepDims() || !reduce.readsLastAxisRows() || in.getRank() < 2)
      return rewriter.notifyMatchFailure(reduce, "keeps its axis, or not rows of a matrix");
    SmallVector<int64_t> kept(in.getShape());
    kept.back() = 1;
    auto keptType = RankedTensorType::get(kept, in.getElementType());
    auto keeping = ReduceOp::create(rewriter, reduce.getLoc(), keptType, reduce.getKindAttr(),
                                    reduce.getInput(), reduce.getAxesAttr(),
                                    rewriter.getUnitAttr());
    rewriter.replaceOpWithNewOp<ReshapeOp>(reduce, reduce.getType(), keeping.getResult());
    return success();
  }
};

struct FusionPass : mlir::gai::impl::GaiFusionBase<FusionPass> {
  using GaiFusionBase::GaiFusionBase;

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (gatedGemmRows < 0) {
      func.emitError("gai-fusion: gated-gemm-rows must be 0 (off) or a row count, not ")
          << static_cast<int64_t>(gatedGemmRows);
      return signalPassFailure();
    }
    if (narrowResidualRows < 0) {
      func.emitError("gai-fusion: narrow-residual-rows must be 0 (off) or a row count, not ")
          << static_cast<int64_t>(narrowResidualRows);
      return signalPassFailure();
    }
    if (normFoldRows < -1) {
      func.emitError("gai-fusion: norm-fold-rows must be -1 (every norm) or a row count, not ")
          << static_cast<int64_t>(normFoldRows);
      return signalPassFailure();
    }
    if (columnPartialRows < 0) {
      func.emitError("gai-fusion: column-partial-rows must be 0 (off) or a row count, not ")
          << static_cast<int64_t>(columnPartialRows);
      return signalPassFailure();
    }
    if (maxInputs < 1) {
      func.emitError("gai-fusion: max-inputs must be at least 1, not ")
          << static_cast<int64_t>(maxInputs);
      return signalPassFailure();
    }
    if (gatedGemmRows > 0) {
      RewritePatternSet patterns(&getContext());
      patterns.add<GatedGemmPattern>(&getContext(), gatedGemmRows);
      if (failed(applyPatternsGreedily(func, std::move(patterns))))
        return signalPassFailure();
    }
    if (epilogues) {
      RewritePatternSet patterns(&getContext());
      populateGemmEpiloguePatterns(patterns, libraryActivations, narrowResidualRows);
      if (failed(applyPatternsGreedily(func, std::move(patterns))))
        return signalPassFailure();
    }
    {
      RewritePatternSet patterns(&getContext());
      patterns.add<KeepReducedAxisPattern>(&getContext());
      if (failed(applyPatternsGreedily(func, std::move(patterns))))
        return signalPassFailure();
    }
    OpBuilder builder(&getContext());
    for (Block &block : func.getBody()) {
      copyCheapOpsIntoUsers(block);
      // Groups are collected first: no mutation while walking.
      SmallVector<SmallVector<Operation *>> groups =
          formGroups(block, absorbTransposes, maxInputs);
      mergeGroups(func, groups, maxInputs, normFoldRows);
      for (ArrayRef<Operation *> group : llvm::reverse(groups))
        outlineGroup(group, builder);
    }
    if (columnPartialRows > 1)
      useColumnPartials(func, columnPartialRows);
  }
};

} // namespace

void mlir::gai::populateGemmEpiloguePatterns(RewritePatternSet &patterns,
                                             bool libraryActivations,
                                             int64_t narrowResidualRows) {
  patterns.add<GemmEpiloguePattern>(patterns.getContext(), libraryActivations,
                                    narrowResidualRows);
}
