// Writes an exec module, its kernels and its weights as a gai artifact.
#ifndef GAI_COMPILER_ARTIFACTWRITER_H
#define GAI_COMPILER_ARTIFACTWRITER_H

#include "compiler/codegen/CpuCodegen.h"
#include "frontend/ChatTemplateConfig.h"
#include "frontend/ModelSpec.h"
#include "gai/WeightSet.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace gai {

enum class WeightsMode {
  Embedded, ///< copied into the artifact
  External, ///< referenced by path, size and checksum
  None,     ///< supplied when the artifact is run (`gai-run --weights`)
};

struct ArtifactOptions {
  std::string target = "cpu";
  std::string dtype = "f32";
  int64_t maxBatch = 0, maxSeqLen = 0, prefillLen = 0;
  std::string model;
  WeightsMode weightsMode = WeightsMode::Embedded;
  /// For Embedded and External (External takes a single file).
  const WeightSet *weights = nullptr;
  /// For External: the artifact's own path, so the weights path can be
  /// stored relative to it.
  std::string artifactPath;
  /// The spec's train section, for artifacts with training entries.
  const TrainSection *train = nullptr;
  /// generation_config.json's defaults, when the model has one.
  const GenerationDefaults *generation = nullptr;
  /// A tokenizer.json to embed, or empty.
  std::string tokenizerJson;
  /// The model's chat template, when it has one.
  std::optional<ChatTemplateConfig> chatTemplate;
};

/// The artifact's bytes (FlatBuffer and footer), or an error message.
mlir::FailureOr<std::vector<uint8_t>>
writeArtifact(mlir::ModuleOp execModule, const KernelLibrary &kernels,
              const ArtifactOptions &options, std::string &error);

} // namespace gai

#endif // GAI_COMPILER_ARTIFACTWRITER_H
