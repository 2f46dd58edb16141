// GPT-2 style initialisation of an artifact's weights.
#include "gai/Init.h"

#include "gai/FloatConvert.h"
#include "gai/SafeFile.h"
#include "gai/Safetensors.h"
#include "format/artifact_generated.h"

#include <cmath>
#include <random>

namespace gai {
namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

std::vector<float> initialValues(const std::string &name,
                                 const std::vector<int64_t> &shape,
                                 std::mt19937_64 &rng) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  std::vector<float> values(static_cast<size_t>(count));
  bool vector = shape.size() == 1;
  bool scale = vector && (name.find("norm") != std::string::npos ||
                          name.find(".ln_") != std::string::npos);
  if (vector && endsWith(name, ".bias")) {
    std::fill(values.begin(), values.end(), 0.0f);
  } else if (scale) {
    std::fill(values.begin(), values.end(), 1.0f);
  } else {
    for (int64_t i = 0; i < count; i += 2) {
      double u1 = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
      double u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
      double r = std::sqrt(-2.0 * std::log(u1)) * 0.02;
      values[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
      if (i + 1 < count)
        values[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
    }
  }
  return values;
}

Status writeInitialWeights(const std::string &artifactPath,
                           const std::string &outputPath, uint64_t seed) {
  if (Status s = checkRegularFile(artifactPath); !s)
    return s;
  // The tables only: the artifact may have no weights yet.
  StatusOr<LoadedArtifact> artifact = LoadedArtifact::loadTables(artifactPath);
  if (!artifact)
    return artifact.status();
  const format::Artifact *root = &artifact->root();
  if (!root->weights() || !root->weights()->tensors())
    return Status::error(artifactPath + ": the artifact names no weights");

  std::mt19937_64 rng(seed);
  std::vector<std::vector<uint8_t>> storage;
  std::vector<TensorToWrite> tensors;
  for (const format::TensorDesc *t : *root->weights()->tensors()) {
    bool bf16 = t->dtype() == format::DType::BF16;
    if (t->dtype() != format::DType::F32 && !bf16)
      return Status::error("weight '" + t->name()->str() +
                           "' is not f32 or bf16; initialise float models only");
    std::string name = t->name()->str();
    std::vector<int64_t> shape(t->shape()->begin(), t->shape()->end());
    int64_t count = 1;
    for (int64_t d : shape)
      count *= d;
    std::vector<float> values = initialValues(name, shape, rng);
    // Stored in the model's precision: the same draws, rounded for bf16.
    DType dtype = bf16 ? DType::BF16 : DType::F32;
    std::vector<uint8_t> bytes(static_cast<size_t>(count) * dtypeSize(dtype));
    convertFloats(values.data(), DType::F32, bytes.data(), dtype,
                  static_cast<size_t>(count));
    storage.push_back(std::move(bytes));
    tensors.push_back({name, dtype, shape, storage.back().data(),
                       storage.back().size()});
  }
  return writeSafetensors(outputPath, tensors,
                          {{"format", "pt"}, {"init", "gai normal(0.02) seed " +
                                                          std::to_string(seed)}});
}

} // namespace gai
