// The reference interpreter: walks a function and evaluates each op through
// its InterpretOpInterface (the loops live with the ops, in dialects/Gai).
#include "compiler/reference/Interpreter.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"

#include "dialects/Gai/GaiOps.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <cstring>
#include <optional>
#include <string>

using namespace mlir;
using namespace mlir::gai;

namespace gai::reference {

namespace {

class Interpreter : public InterpretState {
public:
  Interpreter(const SafetensorsFile &weights,
              const std::function<std::string(llvm::StringRef)> &paramNameOf) {
    for (const TensorView &t : weights.tensors())
      params[paramNameOf ? paramNameOf(t.name) : t.name] = &t;
  }

  /// An interpreter for a nested region: same weights, fresh values.
  Interpreter(const llvm::StringMap<const TensorView *> &params, bool roundF32)
      : roundF32(roundF32), params(params) {}

  /// Runs the ops of `block` (all but its terminator), then returns the
  /// terminator's operands.
  llvm::Expected<std::vector<HostTensor>> runBlock(Block &block) {
    for (Operation &op : block.without_terminator())
      if (llvm::Error e = runOp(&op))
        return std::move(e);
    std::vector<HostTensor> results;
    for (Value v : block.getTerminator()->getOperands())
      results.push_back(values.lookup(v));
    return results;
  }

  /// Off: f32 results stay in double (finite-difference checks need it).
  bool roundF32 = true;

  void bind(Value v, HostTensor t) { values[v] = std::move(t); }

  const HostTensor &in(Value v) override { return values[v]; }
  void set(Value v, HostTensor t) override {
    Type elt = cast<RankedTensorType>(v.getType()).getElementType();
    if (roundF32 || !elt.isF32())
      for (double &x : t.data)
        x = roundTo(elt, x);
    values[v] = std::move(t);
  }
  std::optional<HostTensor> weight(llvm::StringRef name) override {
    auto it = params.find(name);
    if (it == params.end())
      return std::nullopt;
    return fromTensorView(*it->second);
  }
  llvm::Expected<std::vector<HostTensor>>
  run(Block &body, llvm::ArrayRef<HostTensor> arguments) override {
    Interpreter inner(params, roundF32);
    for (auto [arg, value] : llvm::zip(body.getArguments(), arguments))
      inner.bind(arg, value);
    return inner.runBlock(body);
  }

private:
  /// One op, through its interpretation.
  llvm::Error runOp(Operation *op) {
    // The reference is one process: a collective over a group of one
    // hands its input on.
    if (isa<shard::AllReduceOp, shard::AllGatherOp, shard::ReduceScatterOp,
            shard::AllSliceOp>(op)) {
      if (op->getOperand(0).getType() != op->getResult(0).getType())
        return interpretError(op, "the reference interpreter runs a world of one rank, "
                                  "where a collective keeps its input's shape");
      HostTensor value = in(op->getOperand(0));
      bind(op->getResult(0), std::move(value));
      return llvm::Error::success();
    }
    auto interpretable = dyn_cast<InterpretOpInterface>(op);
    if (!interpretable)
      return interpretError(op,
                            "the reference interpreter does not know this op");
    return interpretable.interpret(*this);
  }

  llvm::DenseMap<Value, HostTensor> values;
  llvm::StringMap<const TensorView *> params;
};

} // namespace

HostTensor fromTensorView(const TensorView &view) {
  HostTensor t(view.shape);
  for (int64_t i = 0; i < t.numElements(); ++i) {
    const uint8_t *p = view.data + i * dtypeSize(view.dtype);
    switch (view.dtype) {
    case DType::F64: {
      double v;
      std::memcpy(&v, p, 8);
      t.data[i] = v;
      break;
    }
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      t.data[i] = v;
      break;
    }
    case DType::BF16: {
      uint32_t bits = static_cast<uint32_t>(p[0] | (p[1] << 8)) << 16;
      float v;
      std::memcpy(&v, &bits, 4);
      t.data[i] = v;
      break;
    }
    case DType::F16: {
      uint16_t bits = static_cast<uint16_t>(p[0] | (p[1] << 8));
      llvm::APFloat v(llvm::APFloat::IEEEhalf(), llvm::APInt(16, bits));
      t.data[i] = v.convertToFloat();
      break;
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      t.data[i] = static_cast<double>(v);
      break;
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      t.data[i] = v;
      break;
    }
    case DType::I16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      t.data[i] = v;
      break;
    }
    case DType::I8:
      t.data[i] = static_cast<int8_t>(*p);
      break;
    case DType::U8:
    case DType::Bool:
      t.data[i] = *p;
      break;
    case DType::F8E4M3:
    case DType::F8E5M2: {
      llvm::APFloat v(view.dtype == DType::F8E4M3
                          ? llvm::APFloat::Float8E4M3FN()
                          : llvm::APFloat::Float8E5M2(),
                      llvm::APInt(8, *p));
      t.data[i] = v.convertToFloat();
      break;
    }
    }
  }
  return t;
}

llvm::Expected<std::vector<HostTensor>>
evaluate(func::FuncOp func, llvm::ArrayRef<HostTensor> arguments,
         const SafetensorsFile &weights,
         std::function<std::string(llvm::StringRef)> paramNameOf,
         bool roundF32) {
  Block &entry = func.getBody().front();
  if (arguments.size() != entry.getNumArguments())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "expected %u arguments, got %zu",
                                   entry.getNumArguments(), arguments.size());
  Interpreter interpreter(weights, paramNameOf);
  interpreter.roundF32 = roundF32;
  for (auto [i, pair] : llvm::enumerate(llvm::zip(entry.getArguments(), arguments))) {
    auto [arg, value] = pair;
    auto type = cast<RankedTensorType>(arg.getType());
    if (llvm::ArrayRef<int64_t>(value.shape) != type.getShape())
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "argument #%zu has shape %s, the function expects %s", i,
          formatShape(value.shape).c_str(),
          formatShape(type.getShape()).c_str());
    interpreter.bind(arg, value);
  }
  return interpreter.runBlock(entry);
}

} // namespace gai::reference
