// Low-precision copies of f32 master weights kept as state: the AdamW
// update writes each new copy in its own kernel (2 bytes a parameter), so
// the next step reads it instead of converting the master again (4 bytes
// read and 2 written a parameter, a kernel each).
#include "dialects/Gai/GaiOps.h"
#include "dialects/Gai/StateNames.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIPARAMCOPIES
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

/// A copy: the master's name and the compute type it is read in.
using CopyKey = std::pair<StringRef, Type>;

/// The `gai.name` of a master's copy, as an argument or result attribute.
DictionaryAttr copyNameAttr(MLIRContext *context, StringRef param) {
  Builder b(context);
  return b.getDictionaryAttr(
      {b.getNamedAttr("gai.name", b.getStringAttr((kParamCopyPrefix + param).str()))});
}

/// The copies `func` reads: every `gai.convert` of an f32 `gai.param` to a
/// narrower float, by master and type.
llvm::MapVector<CopyKey, SmallVector<ConvertOp>> convertedParams(func::FuncOp func) {
  llvm::MapVector<CopyKey, SmallVector<ConvertOp>> found;
  func.walk([&](ConvertOp convert) {
    auto param = convert.getInput().getDefiningOp<ParamOp>();
    auto to = dyn_cast<FloatType>(convert.getType().getElementType());
    if (!param || !param.getType().getElementType().isF32() || !to || to.getWidth() >= 32)
      return;
    found[{param.getName(), convert.getType()}].push_back(convert);
  });
  return found;
}

/// The value `func` returns for state `name`, if it does.
Value returnedState(func::FuncOp func, StringRef name) {
  if (func.isExternal())
    return {};
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (unsigned i = 0; i < func.getNumResults(); ++i)
    if (auto n = func.getResultAttrOfType<StringAttr>(i, "gai.name"); n && n.getValue() == name)
      return ret.getOperand(i);
  return {};
}

struct ParamCopiesPass : mlir::gai::impl::GaiParamCopiesBase<ParamCopiesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto update = module.lookupSymbol<func::FuncOp>("train_update");
    if (!update || module.lookupSymbol(kRefreshParamCopies))
      return;
    // Only masters that @train_update alone writes: a copy is made new
    // wherever its master is.
    llvm::MapVector<CopyKey, SmallVector<ConvertOp>> copies = convertedParams(update);
    llvm::MapVector<CopyKey, Value> updated;
    llvm::StringSet<> copied;
    for (auto &[key, converts] : copies)
      if (Value v = returnedState(update, (kParamPrefix + key.first).str())) {
        // One copy a master: its state name says nothing of its type.
        if (!copied.insert(key.first).second) {
          converts.front().emitError("gai-param-copies: '")
              << key.first << "' is converted to two types; one copy a weight";
          return signalPassFailure();
        }
        updated[key] = v;
      }
    for (func::FuncOp func : module.getOps<func::FuncOp>())
      if (func != update)
        for (auto &[key, v] : updated)
          if (returnedState(func, (kParamPrefix + key.first).str())) {
            func.emitError("gai-param-copies: @")
                << func.getSymName() << " writes '" << kParamPrefix << key.first
                << "' too; only @train_update may";
            return signalPassFailure();
          }
    if (updated.empty())
      return;

    // Each function reads the copies as state arguments.
    for (func::FuncOp func : llvm::to_vector(module.getOps<func::FuncOp>())) {
      llvm::MapVector<CopyKey, SmallVector<ConvertOp>> reads = convertedParams(func);
      for (auto &[key, converts] : reads) {
        if (!updated.count(key))
          continue;
        unsigned index = func.getNumArguments();
        if (failed(func.insertArgument(index, key.second,
                                       copyNameAttr(&getContext(), key.first), func.getLoc())))
          return signalPassFailure();
        for (ConvertOp convert : converts) {
          convert.getResult().replaceAllUsesWith(func.getArgument(index));
          Operation *param = convert.getInput().getDefiningOp();
          convert.erase();
          if (param->use_empty())
            param->erase();
        }
      }
    }

    // @train_update returns each new copy beside its new master.
    OpBuilder b(&getContext());
    auto ret = cast<func::ReturnOp>(update.getBody().front().getTerminator());
    b.setInsertionPoint(ret);
    SmallVector<Value> values(ret.getOperands());
    SmallVector<Attribute> names;
    for (unsigned i = 0; i < update.getNumResults(); ++i)
      names.push_back(update.getResultAttrDict(i));
    for (auto &[key, master] : updated) {
      values.push_back(ConvertOp::create(b, ret.getLoc(), key.second, master));
      names.push_back(copyNameAttr(&getContext(), key.first));
    }
    func::ReturnOp::create(b, ret.getLoc(), values);
    ret.erase();
    update.setType(b.getFunctionType(update.getArgumentTypes(), ValueRange(values).getTypes()));
    update.setAllResultAttrs(names);

    // @refresh_param_copies makes every copy from its master: the runtime
    // runs it before an entry whenever a master was written from the host.
    b.setInsertionPointAfter(update);
    SmallVector<Value> made;
    SmallVector<Attribute> madeNames;
    SmallVector<Type> madeTypes;
    auto refresh = func::FuncOp::create(b, update.getLoc(), kRefreshParamCopies,
                                        b.getFunctionType({}, {}));
    Block *body = refresh.addEntryBlock();
    b.setInsertionPointToEnd(body);
    for (auto &[key, master] : updated) {
      auto type = cast<RankedTensorType>(key.second);
      Value param = ParamOp::create(b, update.getLoc(), type.clone(b.getF32Type()), key.first);
      made.push_back(ConvertOp::create(b, update.getLoc(), type, param));
      madeTypes.push_back(type);
      madeNames.push_back(copyNameAttr(&getContext(), key.first));
    }
    func::ReturnOp::create(b, update.getLoc(), made);
    refresh.setType(b.getFunctionType({}, madeTypes));
    refresh.setAllResultAttrs(madeNames);
  }
};

} // namespace
