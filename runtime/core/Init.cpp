// GPT-2 style initialisation of an artifact's weights.
#include "gai/Init.h"

#include "format/artifact_generated.h"
#include "gai/FloatConvert.h"
#include "gai/Quantize.h"
#include "gai/SafeFile.h"
#include "gai/Safetensors.h"
#include "gai/Sparsity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <system_error>
#include <thread>

namespace gai {
namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Normal(0, 0.02) by Box-Muller from pairs of 53-bit uniforms, the pairs'
/// draws `raw[2p]` and `raw[2p + 1]`, into out[2p] and out[2p + 1] (< count).
void boxMuller(const uint64_t *raw, float *out, int64_t firstPair,
               int64_t endPair, int64_t count) {
  for (int64_t p = firstPair; p < endPair; ++p) {
    double u1 = (static_cast<double>(raw[2 * p] >> 11) + 1.0) * 0x1.0p-53;
    double u2 = static_cast<double>(raw[2 * p + 1] >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1)) * 0.02;
    out[2 * p] = static_cast<float>(r * std::cos(2 * M_PI * u2));
    if (2 * p + 1 < count)
      out[2 * p + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
  }
}

/// `count` normal draws from one mt19937_64 stream (the same values on every
/// machine, device and rank). The stream's draws are cheap and stay in order;
/// the transform, about 20 s for a 1.1B-parameter model on one core, runs on
/// up to 8 threads over chunks of them.
void drawNormals(float *out, int64_t count, std::mt19937_64 &rng) {
  constexpr int64_t kChunk = int64_t{1} << 22; // values; even, so pairs align
  const int64_t threads =
      count < (int64_t{1} << 18)
          ? 1
          : std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 8);
  std::vector<uint64_t> raw;
  for (int64_t start = 0; start < count; start += kChunk) {
    const int64_t n = std::min(kChunk, count - start), pairs = (n + 1) / 2;
    raw.resize(static_cast<size_t>(2 * pairs));
    for (uint64_t &r : raw)
      r = rng();
    float *chunk = out + start;
    std::vector<std::thread> helpers;
    // [0, per) is this thread's; a part no thread can be had for, too.
    const int64_t per = (pairs + threads - 1) / threads;
    for (int64_t begin = per; begin < pairs; begin += per) {
      const int64_t end = std::min(pairs, begin + per);
      try {
        helpers.emplace_back(boxMuller, raw.data(), chunk, begin, end, n);
      } catch (const std::system_error &) {
        boxMuller(raw.data(), chunk, begin, end, n);
      }
    }
    boxMuller(raw.data(), chunk, 0, std::min(per, pairs), n);
    for (std::thread &h : helpers)
      h.join();
  }
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
    drawNormals(values.data(), count, rng);
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
  std::map<std::string, const format::TensorDesc *> byName;
  for (const format::TensorDesc *t : *root->weights()->tensors())
    byName[t->name()->str()] = t;
  auto quantized = [&](const std::string &name) {
    auto it = byName.find(name);
    return it != byName.end() && (it->second->dtype() == format::DType::I8 ||
                                  it->second->dtype() == format::DType::I4 ||
                                  it->second->dtype() == format::DType::F8E4M3);
  };
  // A 2:4 weight's kept half [n, k / 2], beside its positions (i8 [n, k / 8]).
  auto sparse = [&](const std::string &name) {
    auto meta = byName.find(sparseMetaName(name));
    return meta != byName.end() && meta->second->dtype() == format::DType::I8;
  };
  auto keep = [&](std::string name, DType dtype, std::vector<int64_t> shape,
                  std::vector<uint8_t> bytes) {
    storage.push_back(std::move(bytes));
    tensors.push_back({std::move(name), dtype, std::move(shape),
                       storage.back().data(), storage.back().size()});
  };
  storage.reserve(byName.size());
  for (const format::TensorDesc *t : *root->weights()->tensors()) {
    std::string name = t->name()->str();
    std::vector<int64_t> shape(t->shape()->begin(), t->shape()->end());
    // A tensor-parallel weight bound at run time: the file holds it whole.
    if (t->tp_shape() && !t->rank_offsets())
      shape.assign(t->tp_shape()->begin(), t->tp_shape()->end());
    if (endsWith(name, ".meta") && sparse(name.substr(0, name.size() - 5)))
      continue;
    if (sparse(name) && shape.size() == 2 &&
        (t->dtype() == format::DType::F32 ||
         t->dtype() == format::DType::BF16)) {
      // Drawn dense [n, k], then 2:4-pruned (gai/Sparsity.h), like gaic's.
      const int64_t n = shape[0], k = 2 * shape[1];
      std::vector<float> dense = initialValues(name, {n, k}, rng);
      Sparse24Weight s = compress24(dense.data(), n, k);
      const DType dtype =
          t->dtype() == format::DType::BF16 ? DType::BF16 : DType::F32;
      std::vector<uint8_t> bytes(s.values.size() * dtypeSize(dtype));
      convertFloats(reinterpret_cast<const uint8_t *>(s.values.data()),
                    DType::F32, bytes.data(), dtype, s.values.size());
      keep(name, dtype, shape, std::move(bytes));
      keep(sparseMetaName(name), DType::I8, {n, k / 8}, std::move(s.meta));
      continue;
    }
    // A quantized weight: drawn as a float one, then quantized (gai/Quantize.h)
    // into its values, scales and zeros, which are written with it.
    size_t dot = name.rfind('.');
    if (dot != std::string::npos && quantized(name.substr(0, dot)) &&
        (name.substr(dot) == ".scale" || name.substr(dot) == ".zero"))
      continue;
    if (quantized(name)) {
      auto scale = byName.find(quantScaleName(name));
      if (shape.size() != 2 || scale == byName.end() || !scale->second->shape())
        return Status::error("quantized weight '" + name +
                             "' has no scales or is not 2-D");
      std::vector<int64_t> scaleShape(scale->second->shape()->begin(),
                                      scale->second->shape()->end());
      QuantFormat format = t->dtype() == format::DType::I8 ? QuantFormat::Int8
                           : t->dtype() == format::DType::I4
                               ? QuantFormat::Int4
                               : QuantFormat::Fp8E4M3;
      int64_t group = 0;
      if (format == QuantFormat::Int4) {
        if (scaleShape.size() != 2 || scaleShape[1] < 1 ||
            shape[1] % scaleShape[1] != 0)
          return Status::error("int4 weight '" + name +
                               "' has scales of another shape");
        group = shape[1] / scaleShape[1];
      }
      const bool perRow = format == QuantFormat::Fp8E4M3 &&
                          scaleShape[0] == shape[0] && shape[0] != 1;
      std::vector<float> values = initialValues(name, shape, rng);
      QuantizedWeight q = quantizeWeight(values.data(), shape[0], shape[1],
                                         format, group, perRow);
      if (format == QuantFormat::Int4)
        keep(name, DType::U8, {shape[0], shape[1] / 2}, std::move(q.values));
      else
        keep(name, format == QuantFormat::Int8 ? DType::I8 : DType::F8E4M3,
             shape, std::move(q.values));
      std::vector<uint8_t> scaleBytes(q.scale.size() * 4);
      std::memcpy(scaleBytes.data(), q.scale.data(), scaleBytes.size());
      keep(quantScaleName(name), DType::F32, scaleShape, std::move(scaleBytes));
      if (format == QuantFormat::Int4)
        keep(quantZeroName(name), DType::I8, {shape[0], shape[1] / group},
             std::move(q.zero));
      continue;
    }
    bool bf16 = t->dtype() == format::DType::BF16;
    if (t->dtype() != format::DType::F32 && !bf16)
      return Status::error("weight '" + t->name()->str() +
                           "' is not f32, bf16 or a quantized weight's");
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
    tensors.push_back(
        {name, dtype, shape, storage.back().data(), storage.back().size()});
  }
  return writeSafetensors(
      outputPath, tensors,
      {{"format", "pt"},
       {"init", "gai normal(0.02) seed " + std::to_string(seed)}});
}

} // namespace gai
