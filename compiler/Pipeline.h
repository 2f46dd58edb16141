// The compiler's stages, from a model file to IR (later: to an artifact).
#ifndef GAI_COMPILER_PIPELINE_H
#define GAI_COMPILER_PIPELINE_H

#include "frontend/GraphBuilder.h"
#include "frontend/ModelSpec.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace gai {

struct CompileOptions {
  std::string specPath;    ///< our spec or an HF config.json
  std::string weightsPath; ///< safetensors; empty: no weights check
  BuildOptions build;
};

struct ImportedModel {
  ModelSpec spec;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

/// Parses the spec, builds the forward graph and, when weights are given,
/// checks them against the graph's parameters.
llvm::Expected<ImportedModel> importModel(mlir::MLIRContext &context,
                                          const CompileOptions &options);

} // namespace gai

#endif // GAI_COMPILER_PIPELINE_H
