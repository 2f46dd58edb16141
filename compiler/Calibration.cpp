// measureActivations: the dense model's @forward, given one more result per
// matmul weight (its input squared and summed over the tokens), compiled
// for the CPU and run by the runtime over the calibration text.
#include "compiler/Calibration.h"

#include "compiler/Pipeline.h"
#include "dialects/Gai/GaiOps.h"
#include "gai/Session.h"
#include "gai/Train.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"

#include <algorithm>

namespace gai {
namespace {

using namespace mlir;
using namespace mlir::gai;

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// Adds to @forward, for each 2-D parameter read as a matmul's rhs, a result
/// "calibration.NAME" [k]: Σ over the rows of its input's squares (summed
/// over its matmuls). Returns the names in result order, each with its k
/// axis in the stored weight.
llvm::Expected<std::vector<std::pair<std::string, int64_t>>> addSquareSums(ModuleOp module) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return error("the calibration model has no @forward");
  llvm::MapVector<llvm::StringRef, std::pair<Value, int64_t>> sums;
  OpBuilder b(module.getContext());
  forward.walk([&](MatmulOp m) {
    auto p = m.getRhs().getDefiningOp<ParamOp>();
    auto x = cast<RankedTensorType>(m.getLhs().getType());
    if (!p || m.getTransposeLhs() || cast<RankedTensorType>(p.getType()).getRank() != 2 ||
        !x.getElementType().isF32())
      return;
    b.setInsertionPointAfter(m);
    Value squares = MulOp::create(b, m.getLoc(), m.getLhs(), m.getLhs());
    // Rows first, as one axis: the backends reduce one axis at a time.
    int64_t k = x.getShape().back(), rows = x.getNumElements() / k;
    Value table = ReshapeOp::create(b, m.getLoc(), RankedTensorType::get({rows, k}, x.getElementType()),
                                    squares);
    Value sum = ReduceOp::create(b, m.getLoc(), ReduceKind::Sum, table, ArrayRef<int64_t>{0});
    auto [it, fresh] = sums.insert({p.getName(), {sum, m.getTransposeRhs() ? 1 : 0}});
    if (!fresh) {
      if (it->second.first.getType() != sum.getType())
        return; // the same weight read at another k: keep the first
      it->second.first = AddOp::create(b, m.getLoc(), it->second.first, sum);
    }
  });
  Operation *ret = forward.getBody().front().getTerminator();
  std::vector<std::pair<std::string, int64_t>> names;
  SmallVector<Value> results(ret->getOperands());
  SmallVector<Type> types(forward.getFunctionType().getResults());
  // Sums made after an op that uses them would be out of order; the return
  // is last, so every sum dominates it.
  for (auto &[name, sum] : sums) {
    results.push_back(sum.first);
    types.push_back(sum.first.getType());
    names.push_back({name.str(), sum.second});
  }
  unsigned first = ret->getNumOperands();
  ret->setOperands(results);
  forward.setType(FunctionType::get(module.getContext(),
                                    forward.getFunctionType().getInputs(), types));
  for (unsigned i = first; i < types.size(); ++i)
    forward.setResultAttr(i, "gai.name",
                          b.getStringAttr("calibration." + names[i - first].first));
  return names;
}

} // namespace

llvm::Expected<ActivationSquares> measureActivations(const CompileOptions &options,
                                                     const std::string &path,
                                                     int64_t maxTokens) {
  if (options.weightsPath.empty())
    return error("--calibration runs the model on its text: give --weights");
  CompileOptions dense;
  dense.specPath = options.specPath;
  dense.weightsPath = options.weightsPath;
  dense.tokenizerPath = "none";
  dense.chatTemplatePath = "none";
  dense.target = "cpu";
  dense.build.dtype = "f32";
  dense.build.batch = 1;
  dense.build.seqLen = options.build.seqLen;
  dense.build.entries = {true, false, false, false};
  MLIRContext context;
  llvm::Expected<ImportedModel> model = importModel(context, dense);
  if (!model)
    return model.takeError();
  auto names = addSquareSums(*model->module);
  if (!names)
    return names.takeError();
  if (failed(optimize(*model->module, dense)))
    return error("--calibration: optimizing the dense model failed");
  auto bytes = compileArtifact(*model->module, model->spec, dense, WeightsMode::Embedded, "");
  if (!bytes)
    return bytes.takeError();
  auto artifact = LoadedArtifact::fromBytes(std::move(*bytes), "the calibration model", ".");
  if (!artifact)
    return error("--calibration: " + artifact.status().message());
  SessionOptions sessionOptions;
  sessionOptions.device = "cpu";
  auto session = Session::create(std::move(*artifact), sessionOptions);
  if (!session)
    return error("--calibration: " + session.status().message());
  std::vector<TensorRef> inputs = (*session)->inputs("forward"),
                         outputs = (*session)->outputs("forward");
  if (inputs.size() != 1 || outputs.size() != 1 + names->size())
    return error("--calibration: the calibration model's forward entry is not as built");
  const int64_t length = inputs[0].shape.back();
  const int64_t vocab = outputs[0].shape.back();
  auto data = TrainData::load({path}, "auto", vocab, 0.0);
  if (!data)
    return error("--calibration " + path + ": " + data.status().message());
  int64_t available = std::min(data->trainTokens(), maxTokens);
  if (data->trainTokens() < length)
    return error("--calibration " + path + ": " + std::to_string(data->trainTokens()) +
                 " tokens, fewer than the model's window of " + std::to_string(length) +
                 " (--seq-len)");
  if (available < length)
    return error("--calibration-tokens " + std::to_string(maxTokens) +
                 ": fewer than the model's window of " + std::to_string(length) +
                 " tokens (--seq-len)");
  ActivationSquares measured;
  for (size_t i = 0; i < names->size(); ++i) {
    const TensorRef &out = outputs[1 + i];
    measured.weights[(*names)[i].first] = {(*names)[i].second,
                                           std::vector<double>(out.size / 4, 0.0)};
  }
  const int32_t *tokens = data->splitTokens(false);
  for (int64_t at = 0; at + length <= available; at += length) {
    std::copy(tokens + at, tokens + at + length, reinterpret_cast<int32_t *>(inputs[0].data));
    if (Status s = (*session)->run("forward"); !s)
      return error("--calibration: running the dense model: " + s.message());
    for (size_t i = 0; i < names->size(); ++i) {
      const auto *sums = reinterpret_cast<const float *>(outputs[1 + i].data);
      std::vector<double> &into = measured.weights[(*names)[i].first].sums;
      for (size_t j = 0; j < into.size(); ++j)
        into[j] += sums[j];
    }
    measured.tokens += length;
  }
  return measured;
}

} // namespace gai
