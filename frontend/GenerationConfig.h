// Reads an HF generation_config.json: the defaults of `gai-run generate`.
#ifndef GAI_FRONTEND_GENERATIONCONFIG_H
#define GAI_FRONTEND_GENERATIONCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace gai {

/// What generation_config.json sets; an absent field is the runtime's default.
struct GenerationDefaults {
  std::vector<int64_t> eos; ///< eos_token_id: one id or a list
  std::optional<int64_t> bos, topK, maxNewTokens, maxLength;
  std::optional<double> temperature, topP, minP, repetitionPenalty;
  std::optional<bool> doSample;
};

/// Parses the text of a generation_config.json; errors name `fileName` and
/// the field.
llvm::Expected<GenerationDefaults> parseGenerationConfig(llvm::StringRef text,
                                                         llvm::StringRef fileName);

/// The generation_config.json beside an HF `config.json` at `specPath`, if
/// there is one (save_pretrained writes both).
llvm::Expected<std::optional<GenerationDefaults>>
loadGenerationConfigBeside(llvm::StringRef specPath);

} // namespace gai

#endif // GAI_FRONTEND_GENERATIONCONFIG_H
