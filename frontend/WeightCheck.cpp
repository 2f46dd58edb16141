// Matches the parameters of a module with the tensors of a weights file.
#include "frontend/WeightCheck.h"

#include "dialects/Gai/GaiOps.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;

namespace gai {

std::string paramNameOf(const ModelSpec &spec, llvm::StringRef tensorName) {
  if (spec.naming != ParamNaming::GPT2)
    return tensorName.str();
  if (tensorName.ends_with(".attn.bias") ||
      tensorName.ends_with(".attn.masked_bias"))
    return "";
  if (!tensorName.starts_with("transformer.") &&
      !tensorName.starts_with("lm_head."))
    return "transformer." + tensorName.str();
  return tensorName.str();
}

llvm::Error checkWeights(ModuleOp module, const WeightSet &weights,
                         const ModelSpec &spec) {
  // Ordered maps keep the report stable.
  std::map<std::string, RankedTensorType> params;
  module.walk([&](mlir::gai::ParamOp op) { params[op.getName().str()] = op.getType(); });

  std::map<std::string, const TensorView *> tensors;
  for (const TensorView *t : weights.tensors()) {
    std::string name = paramNameOf(spec, t->name);
    if (!name.empty())
      tensors[name] = t;
  }

  std::vector<std::string> problems;
  for (const auto &[name, type] : params) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      problems.push_back("missing: " + name + " " +
                         mlir::gai::formatShape(type.getShape()));
      continue;
    }
    const TensorView &t = *it->second;
    if (llvm::ArrayRef<int64_t>(t.shape) != type.getShape())
      problems.push_back("mis-shaped: " + t.name + " is " +
                         mlir::gai::formatShape(t.shape) + " in the file, the model "
                         "expects " + mlir::gai::formatShape(type.getShape()));
    else if (isa<FloatType>(type.getElementType()) && !isFloat(t.dtype))
      problems.push_back("wrong dtype: " + t.name + " is " +
                         dtypeName(t.dtype) + ", the model expects floats");
  }
  for (const auto &[name, t] : tensors)
    if (!params.count(name))
      problems.push_back("extra: " + t->name + " " + mlir::gai::formatShape(t->shape) +
                         " is not a parameter of the model");
  if (problems.empty())
    return llvm::Error::success();

  std::string message;
  llvm::raw_string_ostream os(message);
  os << weights.path() << ": the weights do not match the model ("
     << problems.size() << (problems.size() == 1 ? " problem" : " problems")
     << "):";
  for (const std::string &p : problems)
    os << "\n  " << p;
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

} // namespace gai
