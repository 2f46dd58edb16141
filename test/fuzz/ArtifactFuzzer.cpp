// Fuzzes the artifact loader and the CPU executor: any payload, sealed with a
// correct footer, is refused with a message or loads and runs without a fault.
#include "format/artifact_generated.h"
#include "gai/Artifact.h"
#include "gai/Session.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace {

/// Larger arenas or state are loaded but not run: each run would allocate them.
constexpr int64_t kMostRunBytes = int64_t(64) << 20;

/// Checksums of the kernel libraries gaic made (the seeds'). A mutant whose
/// code differs is loaded but never run: the loader cannot vet machine code,
/// and dlopen of a corrupt ELF faults inside the C library.
std::set<uint64_t> &trustedKernels() {
  static std::set<uint64_t> hashes;
  return hashes;
}

const flatbuffers::Vector<uint8_t> *kernelCode(const gai::LoadedArtifact &a) {
  const gai::format::KernelModule *kernels = a.root().kernels();
  return kernels ? kernels->code() : nullptr;
}

void trustSeed(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> payload((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  auto loaded = gai::LoadedArtifact::fromBytes(
      gai::sealArtifact(payload.data(), payload.size()), path, "");
  if (!loaded)
    return;
  if (const flatbuffers::Vector<uint8_t> *code = kernelCode(*loaded))
    trustedKernels().insert(gai::checksum64(code->data(), code->size()));
}

bool smallEnoughToRun(const gai::LoadedArtifact &a) {
  if (a.root().state_size() > kMostRunBytes)
    return false;
  if (const auto *entries = a.root().entries())
    for (const gai::format::EntryPoint *entry : *entries)
      if (entry->arena_size() > kMostRunBytes)
        return false;
  return true;
}

} // namespace

/// GAI_FUZZ_SEEDS names a directory of gaic's artifact payloads (see
/// test/fuzz/make_artifact_corpus.sh) whose kernel libraries may run.
extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  const char *seeds = std::getenv("GAI_FUZZ_SEEDS");
  if (!seeds)
    return 0;
  if (DIR *dir = opendir(seeds)) {
    while (dirent *entry = readdir(dir))
      if (entry->d_name[0] != '.')
        trustSeed(std::string(seeds) + "/" + entry->d_name);
    closedir(dir);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto artifact = gai::LoadedArtifact::fromBytes(gai::sealArtifact(data, size),
                                                 "fuzz.gai", "");
  if (!artifact)
    return 0;
  const flatbuffers::Vector<uint8_t> *code = kernelCode(*artifact);
  if (code && !trustedKernels().count(gai::checksum64(code->data(), code->size())))
    return 0;
  if (!smallEnoughToRun(*artifact))
    return 0;
  gai::SessionOptions options;
  options.device = "cpu";
  auto session = gai::Session::create(std::move(*artifact), options);
  if (!session)
    return 0;
  std::vector<std::string> names;
  if (const auto *entries = (*session)->artifact().root().entries())
    for (const gai::format::EntryPoint *entry : *entries)
      if (entry->name())
        names.push_back(entry->name()->str());
  for (const std::string &name : names) {
    for (const gai::TensorRef &input : (*session)->inputs(name))
      std::memset(input.data, 0, input.size);
    (void)(*session)->run(name); // an error is a clean refusal
  }
  return 0;
}
