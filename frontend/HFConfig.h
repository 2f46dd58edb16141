// Reads a Hugging Face config.json into a ModelSpec.
#ifndef GAI_FRONTEND_HFCONFIG_H
#define GAI_FRONTEND_HFCONFIG_H

#include "frontend/ModelSpec.h"

#include "llvm/Support/JSON.h"

namespace gai {

/// Supports model_type llama, mistral, qwen2, mixtral, gemma and gpt2; other
/// types, and features of these we do not build (rope scaling, per-layer
/// windows …), are reported by name.
llvm::Expected<ModelSpec> parseHFConfig(const llvm::json::Object &config,
                                        llvm::StringRef fileName);

} // namespace gai

#endif // GAI_FRONTEND_HFCONFIG_H
