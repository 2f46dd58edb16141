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

int64_t tensorBytes(mlir::RankedTensorType type) {
  // Masks take a byte per element, as loads and stores address them.
  int64_t bits = type.getElementType().getIntOrFloatBitWidth();
  return (type.getNumElements() * (bits == 1 ? 8 : bits) + 7) / 8;
}

FunctionBuffers collectBuffers(mlir::func::FuncOp func) {
  using namespace mlir;
  FunctionBuffers result;
  llvm::DenseMap<Value, size_t> bufferOf; // value -> index in result
  Block &body = func.getBody().front();
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
    for (Value operand : op.getOperands()) {
      auto it = bufferOf.find(operand);
      if (it != bufferOf.end())
        result.requests[it->second].lastUse = index;
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
