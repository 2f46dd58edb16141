// Liveness of a function's buffers, and their placement in one arena.
#include "passes/MemoryPlan.h"

#include "dialects/Gai/GaiOps.h"

#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <numeric>

namespace gai {

ArenaPlan planArena(const std::vector<BufferRequest> &requests,
                    int64_t alignment) {
  auto align = [&](int64_t n) { return (n + alignment - 1) / alignment * alignment; };
  ArenaPlan plan;
  plan.offsets.assign(requests.size(), 0);
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return requests[a].size > requests[b].size;
  });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferRequest &r = requests[i];
    int64_t size = align(r.size);
    plan.totalSize += size;
    // The placed buffers live at the same time, by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const BufferRequest &o = requests[j];
      if (o.firstUse <= r.lastUse && r.firstUse <= o.lastUse)
        busy.emplace_back(plan.offsets[j], plan.offsets[j] + align(o.size));
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (auto [begin, end] : busy) {
      if (offset + size <= begin)
        break;
      offset = std::max(offset, end);
    }
    plan.offsets[i] = offset;
    plan.arenaSize = std::max(plan.arenaSize, offset + size);
    placed.push_back(i);
  }
  return plan;
}

LivePeak livePeak(const std::vector<BufferRequest> &requests) {
  // Sizes join at their first use and leave after their last.
  std::vector<std::pair<int64_t, int64_t>> events;
  for (const BufferRequest &r : requests) {
    events.emplace_back(r.firstUse, r.size);
    if (r.lastUse != INT64_MAX)
      events.emplace_back(r.lastUse + 1, -r.size);
  }
  std::sort(events.begin(), events.end()); // at one index, frees come first
  LivePeak peak;
  int64_t live = 0;
  for (auto [at, delta] : events)
    if ((live += delta) > peak.bytes) {
      peak.bytes = live;
      peak.at = at;
    }
  for (size_t i = 0; i < requests.size(); ++i)
    if (requests[i].firstUse <= peak.at && peak.at <= requests[i].lastUse)
      peak.live.push_back(i);
  return peak;
}

int64_t livePeakBytes(const std::vector<BufferRequest> &requests) {
  return livePeak(requests).bytes;
}

int64_t tensorBytes(mlir::RankedTensorType type) {
  // Masks take a byte per element, as loads and stores address them.
  int64_t bits = type.getElementType().getIntOrFloatBitWidth();
  return (type.getNumElements() * (bits == 1 ? 8 : bits) + 7) / 8;
}

namespace {

/// Whether `use` is a token-major tensor operand of an attention op.
bool readsTokenMajor(mlir::OpOperand &use) {
  using namespace mlir::gai;
  mlir::Operation *user = use.getOwner();
  unsigned n = use.getOperandNumber();
  if (auto fa = mlir::dyn_cast<FlashAttentionOp>(user))
    return n < 3 && fa.isTokenMajor(n); // q, k, v lead, as their flags
  if (auto grad = mlir::dyn_cast<FlashAttentionGradOp>(user)) {
    // Operands q, k, v, out, lse, out_grad; lse has no flag.
    constexpr int kFlagOf[] = {FlashAttentionGradOp::kQuery, FlashAttentionGradOp::kKey,
                               FlashAttentionGradOp::kValue, FlashAttentionGradOp::kOut,
                               -1, FlashAttentionGradOp::kOutGrad};
    return n < 6 && kFlagOf[n] >= 0 && grad.isTokenMajor(static_cast<unsigned>(kFlagOf[n]));
  }
  return false;
}

mlir::ArrayRef<int64_t> shapeOf(mlir::Value v) {
  return mlir::cast<mlir::RankedTensorType>(v.getType()).getShape();
}

} // namespace

bool isAttentionSliceView(mlir::gai::SliceOp slice) {
  using namespace mlir;
  ArrayRef<int64_t> in = shapeOf(slice.getInput()), out = shapeOf(slice.getResult());
  ArrayRef<int64_t> offsets = slice.getOffsets();
  if (in.size() != 3 || offsets[0] != 0 || offsets[1] != 0 || in.drop_back() != out.drop_back() ||
      offsets[2] % 8 != 0 || in[2] % 8 != 0 || slice->use_empty())
    return false;
  return llvm::all_of(slice->getUsers(), [&](Operation *user) {
    auto reshape = dyn_cast<mlir::gai::ReshapeOp>(user);
    if (!reshape || shapeOf(reshape.getResult()).size() != 4 ||
        shapeOf(reshape.getResult()).take_front(2) != out.take_front(2) ||
        reshape->use_empty())
      return false;
    return llvm::all_of(reshape->getUses(), [](OpOperand &use) { return readsTokenMajor(use); });
  });
}

ConcatPart concatPartOf(mlir::Value gradient) {
  using namespace mlir;
  auto grad = gradient.getDefiningOp<mlir::gai::FlashAttentionGradOp>();
  if (!grad || !gradient.hasOneUse())
    return {};
  unsigned index = cast<OpResult>(gradient).getResultNumber();
  if (!grad.isTokenMajor(mlir::gai::FlashAttentionGradOp::kQueryGrad + index))
    return {};
  auto reshape = dyn_cast<mlir::gai::ReshapeOp>(*gradient.getUsers().begin());
  if (!reshape || !reshape->hasOneUse())
    return {};
  auto concat = dyn_cast<mlir::gai::ConcatOp>(*reshape->getUsers().begin());
  ArrayRef<int64_t> part = shapeOf(reshape.getResult());
  if (!concat || part.size() != 3 || concat.getAxis() != 2 ||
      part.take_front(2) != shapeOf(gradient).take_front(2))
    return {};
  int64_t offset = 0;
  for (Value input : concat.getInputs()) {
    if (input == reshape.getResult())
      break;
    offset += shapeOf(input)[2];
  }
  if (offset % 8 != 0 || shapeOf(concat.getResult())[2] % 8 != 0 ||
      llvm::count(concat.getInputs(), reshape.getResult()) != 1)
    return {};
  return {concat, offset};
}

namespace {

/// The ops that read `v`, through reshapes (which share its buffer).
void readersOf(mlir::Value v, llvm::SmallVectorImpl<mlir::Operation *> &readers) {
  for (mlir::Operation *user : v.getUsers()) {
    if (auto reshape = mlir::dyn_cast<mlir::gai::ReshapeOp>(user))
      readersOf(reshape.getResult(), readers);
    else
      readers.push_back(user);
  }
}

/// Whether the GEMM or reduce `op` (numbered in `index`) may run beside the
/// ops after it (collectBuffers' besideWindow).
bool runsBesideNextOps(mlir::Operation &op, const llvm::DenseMap<mlir::Operation *, int64_t> &index,
                       int64_t window) {
  using namespace mlir;
  if (!isa<mlir::gai::GemmOp, mlir::gai::MatmulOp, mlir::gai::ReduceOp>(op) ||
      op.getNumResults() != 1)
    return false;
  const int64_t at = index.lookup(&op);
  // Whether every reader of `v` comes after `from + window`.
  auto readLate = [&](Value v, int64_t from) {
    SmallVector<Operation *> readers;
    readersOf(v, readers);
    return llvm::all_of(readers, [&](Operation *r) {
      auto it = index.find(r);
      return it != index.end() && it->second > from + window;
    });
  };
  Value result = op.getResult(0);
  const int64_t resultBytes = tensorBytes(cast<RankedTensorType>(result.getType()));
  SmallVector<Operation *> readers;
  readersOf(result, readers);
  Operation *reduction = nullptr;
  for (Operation *r : readers) {
    auto it = index.find(r);
    if (it == index.end())
      return false;
    if (it->second > at + window)
      continue;
    // One small reduction of it, read late itself.
    if (reduction || !isa<mlir::gai::FusionOp, mlir::gai::ReduceOp>(r))
      return false;
    for (Value v : r->getResults())
      if (tensorBytes(cast<RankedTensorType>(v.getType())) * 16 > resultBytes ||
          !readLate(v, it->second))
        return false;
    reduction = r;
  }
  return true;
}

} // namespace

FunctionBuffers collectBuffers(mlir::func::FuncOp func, int64_t besideWindow) {
  using namespace mlir;
  FunctionBuffers result;
  llvm::DenseMap<Value, size_t> bufferOf; // value -> index in result
  Block &body = func.getBody().front();
  llvm::DenseMap<Operation *, int64_t> opIndex;
  if (besideWindow > 0)
    for (auto [i, op] : llvm::enumerate(body))
      opIndex[&op] = static_cast<int64_t>(i);
  int64_t index = 0;
  // A new buffer for v, first used here; v sharing `from`'s buffer.
  auto request = [&](Value v) {
    bufferOf[v] = result.requests.size();
    result.values.push_back(v);
    result.requests.push_back({tensorBytes(cast<RankedTensorType>(v.getType())), index, index});
  };
  auto alias = [&](Value v, Value from) {
    if (auto it = bufferOf.find(from); it != bufferOf.end())
      bufferOf[v] = it->second;
  };
  for (Operation &op : body) {
    const int64_t readUntil =
        besideWindow > 0 && runsBesideNextOps(op, opIndex, besideWindow) ? index + besideWindow
                                                                         : index;
    for (Value operand : op.getOperands()) {
      auto it = bufferOf.find(operand);
      if (it != bufferOf.end())
        result.requests[it->second].lastUse =
            std::max(result.requests[it->second].lastUse, readUntil);
    }
    if (isa<func::ReturnOp>(op)) {
      for (Value operand : op.getOperands())
        if (auto it = bufferOf.find(operand); it != bufferOf.end())
          result.requests[it->second].lastUse = INT64_MAX;
    } else if (auto reshape = dyn_cast<mlir::gai::ReshapeOp>(op)) {
      alias(reshape.getResult(), reshape.getInput());
    } else if (auto write = dyn_cast<mlir::gai::CacheWriteOp>(op)) {
      // Updated in place: the cache is the caller's state (an argument) or
      // the buffer of an earlier write.
      alias(write.getResult(), write.getCache());
    } else if (auto cached = dyn_cast<mlir::gai::CachedAttentionOp>(op)) {
      // Its caches are written in place, as by cache_write; the output is new.
      request(cached.getResult());
      alias(cached.getNewKeyCache(), cached.getKeyCache());
      alias(cached.getNewValueCache(), cached.getValueCache());
    } else if (auto slice = dyn_cast<mlir::gai::SliceOp>(op);
               slice && isAttentionSliceView(slice)) {
      alias(slice.getResult(), slice.getInput());
    } else if (auto grad = dyn_cast<mlir::gai::FlashAttentionGradOp>(op)) {
      // A gradient written into its concat makes the concat's buffer live.
      for (Value v : grad->getResults()) {
        ConcatPart part = concatPartOf(v);
        if (!part.concat) {
          request(v);
          continue;
        }
        if (!bufferOf.count(part.concat.getResult()))
          request(part.concat.getResult());
        alias(v, part.concat.getResult());
      }
    } else if (auto concat = dyn_cast<mlir::gai::ConcatOp>(op);
               concat && bufferOf.count(concat.getResult())) {
      // Its buffer is live since the gradients written into it.
    } else if (!isa<mlir::gai::ParamOp, mlir::gai::DequantizeOp>(op) &&
               !(isa<mlir::gai::ConstantOp>(op) && op.use_empty())) {
      // Constants still outside regions feed library calls: filled in place.
      for (Value v : op.getResults())
        request(v);
    }
    ++index;
  }
  return result;
}

int64_t plannedArenaBytes(mlir::func::FuncOp func) {
  FunctionBuffers buffers = collectBuffers(func);
  std::vector<BufferRequest> requests;
  for (auto [v, request] : llvm::zip(buffers.values, buffers.requests))
    if (request.lastUse != INT64_MAX)
      requests.push_back(request);
  return planArena(requests).arenaSize;
}

} // namespace gai
