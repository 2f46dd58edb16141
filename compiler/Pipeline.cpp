// The compiler's stages, from a model file to IR.
#include "compiler/Pipeline.h"

#include "frontend/WeightCheck.h"
#include "gai/Safetensors.h"

namespace gai {

llvm::Expected<ImportedModel> importModel(mlir::MLIRContext &context,
                                          const CompileOptions &options) {
  llvm::Expected<ModelSpec> spec = loadSpecFile(options.specPath);
  if (!spec)
    return spec.takeError();
  auto module = buildForward(context, *spec, options.build);
  if (!module)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: %s", options.specPath.c_str(),
        llvm::toString(module.takeError()).c_str());
  if (!options.weightsPath.empty()) {
    StatusOr<SafetensorsFile> weights =
        SafetensorsFile::open(options.weightsPath);
    if (!weights)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     weights.status().message());
    if (llvm::Error e = checkWeights(**module, *weights, *spec))
      return std::move(e);
  }
  return ImportedModel{std::move(*spec), std::move(*module)};
}

} // namespace gai
