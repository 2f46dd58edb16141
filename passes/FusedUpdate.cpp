// @train_update: a step's forward, backward and AdamW update in one entry,
// for training with one micro-batch a step. Its gradients are values of the
// entry, not state, so the memory plan gives them bytes that the backward's
// freed activations held: llama-1b's 4.4 GB of f32 gradients stop adding
// to its peak. Clipping and the skip of a non-finite step, which the host
// decides between @train_step and @optimizer_step, move to the device.
#include "dialects/Gai/GaiOps.h"
#include "dialects/Gai/StateNames.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIFUSEDUPDATE
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

constexpr StringLiteral kGradScale = "grad_scale";
constexpr StringLiteral kGradClip = "grad_clip";

StringAttr nameOfArgument(func::FuncOp f, unsigned i) {
  return f.getArgAttrOfType<StringAttr>(i, "gai.name");
}
StringAttr nameOfResult(func::FuncOp f, unsigned i) {
  return f.getResultAttrOfType<StringAttr>(i, "gai.name");
}

Value scalar(OpBuilder &b, Location loc, float value) {
  auto type = RankedTensorType::get({}, b.getF32Type());
  return ConstantOp::create(b, loc, DenseElementsAttr::get(type, b.getF32FloatAttr(value)));
}

/// What the host computed between the two entries: PyTorch's
/// clip_grad_norm_ factor min(1, clip / (norm + 1e-6)) (a clip of +inf
/// gives 1), and whether the step is bad: loss + grad_sq is not finite,
/// which (x·0 ≠ 0, true for NaN and ±inf) says without a compare op.
struct DeviceDecisions {
  Value scale, bad;
};
DeviceDecisions decide(OpBuilder &b, Location loc, Value loss, Value gradSq, Value clip) {
  Value norm = SqrtOp::create(b, loc, gradSq);
  Value ratio = DivOp::create(b, loc, clip, AddOp::create(b, loc, norm, scalar(b, loc, 1e-6f)));
  Value scale = MinOp::create(b, loc, ratio, scalar(b, loc, 1.0f));
  Value both = AddOp::create(b, loc, loss, gradSq);
  Value zeroed = MulOp::create(b, loc, both, scalar(b, loc, 0.0f));
  Value bad = ConvertOp::create(b, loc, RankedTensorType::get({}, b.getI1Type()), zeroed);
  return {scale, bad};
}

LogicalResult buildUpdate(ModuleOp module) {
  auto first = module.lookupSymbol<func::FuncOp>("train_step_first");
  auto optimizer = module.lookupSymbol<func::FuncOp>("optimizer_step");
  if (!first || !optimizer)
    return module.emitError("fused update: expected @train_step_first and @optimizer_step "
                            "(run --gai-train-step and --gai-first-micro-batch first)");
  Location loc = first.getLoc();
  OpBuilder b(module.getContext());

  // Arguments: the first step's, then the optimizer's less the gradients,
  // with the clip's max norm where the host's scale was.
  SmallVector<Type> types;
  SmallVector<StringAttr> names;
  for (unsigned i = 0; i < first.getNumArguments(); ++i) {
    types.push_back(first.getArgumentTypes()[i]);
    names.push_back(nameOfArgument(first, i));
  }
  for (unsigned i = 0; i < optimizer.getNumArguments(); ++i) {
    StringAttr name = nameOfArgument(optimizer, i);
    if (!name)
      return optimizer.emitError("fused update: optimizer argument #") << i << " has no name";
    if (name.getValue().starts_with(kGradPrefix))
      continue;
    types.push_back(optimizer.getArgumentTypes()[i]);
    names.push_back(name.getValue() == kGradScale ? b.getStringAttr(kGradClip) : name);
  }
  b.setInsertionPointAfter(optimizer);
  auto update = func::FuncOp::create(b, loc, "train_update", b.getFunctionType(types, {}));
  Block *body = update.addEntryBlock();
  for (auto [i, name] : llvm::enumerate(names))
    if (name)
      update.setArgAttr(i, "gai.name", name);
  b.setInsertionPointToEnd(body);

  IRMapping mapping;
  for (unsigned i = 0; i < first.getNumArguments(); ++i)
    mapping.map(first.getArgument(i), body->getArgument(i));
  for (Operation &op : first.getBody().front().without_terminator())
    b.clone(op, mapping);
  SmallVector<std::pair<StringAttr, Value>> results;
  llvm::StringMap<Value> grads;
  Value loss, gradSq;
  auto firstReturn = cast<func::ReturnOp>(first.getBody().front().getTerminator());
  for (auto [i, v] : llvm::enumerate(firstReturn.getOperands())) {
    StringAttr name = nameOfResult(first, i);
    Value made = mapping.lookupOrDefault(v);
    if (name && name.getValue().starts_with(kGradPrefix)) {
      grads[name.getValue()] = made;
      continue;
    }
    if (name && name.getValue() == "loss")
      loss = made;
    if (name && name.getValue() == "grad_sq")
      gradSq = made;
    results.push_back({name, made});
  }
  if (!loss || !gradSq)
    return first.emitError("fused update: expected 'loss' and 'grad_sq' results");

  // The optimizer's arguments in @train_update (grads: none).
  SmallVector<Value> entryArgs;
  Value clip;
  unsigned next = first.getNumArguments();
  for (unsigned i = 0; i < optimizer.getNumArguments(); ++i) {
    StringRef name = nameOfArgument(optimizer, i).getValue();
    entryArgs.push_back(name.starts_with(kGradPrefix) ? Value() : body->getArgument(next++));
    if (name == kGradScale)
      clip = entryArgs.back();
  }
  if (!clip)
    return optimizer.emitError("fused update: expected a 'grad_scale' argument");
  DeviceDecisions decisions = decide(b, loc, loss, gradSq, clip);
  llvm::StringMap<Value> atEntry; // a moment's value before the update
  for (unsigned i = 0; i < optimizer.getNumArguments(); ++i) {
    StringRef name = nameOfArgument(optimizer, i).getValue();
    if (name.starts_with(kGradPrefix)) {
      Value g = grads.lookup(name);
      if (!g)
        return optimizer.emitError("fused update: no '") << name << "' from @train_step_first";
      mapping.map(optimizer.getArgument(i), g);
    } else {
      mapping.map(optimizer.getArgument(i), name == kGradScale ? decisions.scale : entryArgs[i]);
      atEntry[name] = entryArgs[i];
    }
  }
  for (Operation &op : optimizer.getBody().front().without_terminator())
    b.clone(op, mapping);
  // A bad step keeps every state tensor as it was.
  auto optimizerReturn = cast<func::ReturnOp>(optimizer.getBody().front().getTerminator());
  for (auto [i, v] : llvm::enumerate(optimizerReturn.getOperands())) {
    StringAttr name = nameOfResult(optimizer, i);
    if (!name)
      return optimizer.emitError("fused update: optimizer result #") << i << " has no name";
    Value updated = mapping.lookupOrDefault(v);
    StringRef n = name.getValue();
    Value old = n.starts_with(kParamPrefix)
                    ? ParamOp::create(b, loc, cast<RankedTensorType>(updated.getType()),
                                      n.drop_front(kParamPrefix.size()))
                    : atEntry.lookup(n);
    if (!old)
      return optimizer.emitError("fused update: no value at entry for '") << n << "'";
    results.push_back({name, SelectOp::create(b, loc, decisions.bad, old, updated)});
  }

  SmallVector<Value> values;
  SmallVector<Type> resultTypes;
  for (auto &[name, v] : results) {
    values.push_back(v);
    resultTypes.push_back(v.getType());
  }
  func::ReturnOp::create(b, loc, values);
  update.setType(b.getFunctionType(update.getArgumentTypes(), resultTypes));
  for (auto [i, r] : llvm::enumerate(results))
    if (r.first)
      update.setResultAttr(i, "gai.name", r.first);

  for (StringRef gone : {"train_step", "train_step_first", "optimizer_step", "zero_grads"})
    if (Operation *f = module.lookupSymbol(gone))
      f->erase();
  return success();
}

struct FusedUpdatePass : mlir::gai::impl::GaiFusedUpdateBase<FusedUpdatePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (module.lookupSymbol("train_update"))
      return; // already there
    if (failed(buildUpdate(module)))
      signalPassFailure();
  }
};

} // namespace
