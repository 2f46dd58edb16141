// Fuzzes the spec and HF config parsers: any bytes give a spec or an error.
#include "frontend/ModelSpec.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<gai::ModelSpec> spec = gai::parseAnySpec(text, "fuzz.json");
  if (!spec) {
    llvm::consumeError(spec.takeError());
    return 0;
  }
  // An accepted spec must be self-consistent.
  if (llvm::Error e = spec->validate())
    __builtin_trap();
  if (spec->heads % spec->kvHeads != 0 || spec->dModel < 1 || spec->layers < 1)
    __builtin_trap();
  return 0;
}
