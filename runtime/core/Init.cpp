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

int64_t elementsOf(const std::vector<int64_t> &shape) {
  int64_t count = 1;
  for (int64_t d : shape)
    count *= d;
  return count;
}

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
  const int64_t count = elementsOf(shape);
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

namespace {

/// One weight of the file and the tensors it is written as: itself (2:4:
/// its kept half and positions; quantized: its values, scales and, for
/// int4, zeros).
struct InitialWeight {
  enum Kind { Float, Sparse, Quantized } kind = Float;
  std::string name;
  std::vector<int64_t> shape; // as drawn: [n, k] for 2:4 and quantized ones
  DType dtype = DType::F32;   // Float and Sparse: the values' type
  QuantFormat format = QuantFormat::Int8;
  int64_t group = 0;
  bool perRow = false;
  std::vector<TensorToWrite> tensors; // their layout, in the file's order
};

TensorToWrite layoutOf(std::string name, DType dtype, std::vector<int64_t> shape) {
  const auto bytes = static_cast<size_t>(elementsOf(shape)) * dtypeSize(dtype);
  return {std::move(name), dtype, std::move(shape), nullptr, bytes};
}

/// The bytes of each of w's tensors, drawn from `rng` (in the file's order).
std::vector<std::vector<uint8_t>> drawWeight(const InitialWeight &w, std::mt19937_64 &rng) {
  std::vector<std::vector<uint8_t>> out;
  std::vector<float> values = initialValues(w.name, w.shape, rng);
  auto converted = [&](const float *from, size_t count, DType dtype) {
    std::vector<uint8_t> bytes(count * dtypeSize(dtype));
    convertFloats(reinterpret_cast<const uint8_t *>(from), DType::F32, bytes.data(), dtype,
                  count);
    return bytes;
  };
  switch (w.kind) {
  case InitialWeight::Float:
    // Stored in the model's precision: the same draws, rounded for bf16.
    out.push_back(converted(values.data(), values.size(), w.dtype));
    break;
  case InitialWeight::Sparse: {
    // Drawn dense [n, k], then 2:4-pruned (gai/Sparsity.h), like gaic's.
    Sparse24Weight sparse = compress24(values.data(), w.shape[0], w.shape[1]);
    out.push_back(converted(sparse.values.data(), sparse.values.size(), w.dtype));
    out.push_back(std::move(sparse.meta));
    break;
  }
  case InitialWeight::Quantized: {
    // Drawn as a float weight, then quantized (gai/Quantize.h).
    QuantizedWeight q =
        quantizeWeight(values.data(), w.shape[0], w.shape[1], w.format, w.group, w.perRow);
    out.push_back(std::move(q.values));
    std::vector<uint8_t> scales(q.scale.size() * 4);
    std::memcpy(scales.data(), q.scale.data(), scales.size());
    out.push_back(std::move(scales));
    if (w.format == QuantFormat::Int4)
      out.push_back(std::move(q.zero));
    break;
  }
  }
  return out;
}

} // namespace

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
  // What to draw, in the artifact's order (the order of the draws), and the
  // file's layout; each weight is drawn as the file is written, so the host
  // holds one weight at a time.
  std::vector<InitialWeight> weights;
  for (const format::TensorDesc *t : *root->weights()->tensors()) {
    InitialWeight w;
    w.name = t->name()->str();
    w.shape.assign(t->shape()->begin(), t->shape()->end());
    // A tensor-parallel weight bound at run time: the file holds it whole.
    if (t->tp_shape() && !t->rank_offsets())
      w.shape.assign(t->tp_shape()->begin(), t->tp_shape()->end());
    const std::string &name = w.name;
    if (endsWith(name, ".meta") && sparse(name.substr(0, name.size() - 5)))
      continue;
    const bool floats = t->dtype() == format::DType::F32 || t->dtype() == format::DType::BF16;
    const DType floatType = t->dtype() == format::DType::BF16 ? DType::BF16 : DType::F32;
    if (sparse(name) && w.shape.size() == 2 && floats) {
      const int64_t n = w.shape[0], k = 2 * w.shape[1];
      w.kind = InitialWeight::Sparse;
      w.dtype = floatType;
      w.tensors = {layoutOf(name, floatType, w.shape),
                   layoutOf(sparseMetaName(name), DType::I8, {n, k / 8})};
      w.shape = {n, k};
      weights.push_back(std::move(w));
      continue;
    }
    // A quantized weight's scales and zeros are written with it.
    size_t dot = name.rfind('.');
    if (dot != std::string::npos && quantized(name.substr(0, dot)) &&
        (name.substr(dot) == ".scale" || name.substr(dot) == ".zero"))
      continue;
    if (quantized(name)) {
      auto scale = byName.find(quantScaleName(name));
      if (w.shape.size() != 2 || scale == byName.end() || !scale->second->shape())
        return Status::error("quantized weight '" + name +
                             "' has no scales or is not 2-D");
      std::vector<int64_t> scaleShape(scale->second->shape()->begin(),
                                      scale->second->shape()->end());
      w.kind = InitialWeight::Quantized;
      w.format = t->dtype() == format::DType::I8   ? QuantFormat::Int8
                 : t->dtype() == format::DType::I4 ? QuantFormat::Int4
                                                   : QuantFormat::Fp8E4M3;
      const int64_t n = w.shape[0], k = w.shape[1];
      if (w.format == QuantFormat::Int4) {
        if (scaleShape.size() != 2 || scaleShape[1] < 1 || k % scaleShape[1] != 0 ||
            k % 2 != 0)
          return Status::error("int4 weight '" + name + "' has scales of another shape");
        w.group = k / scaleShape[1];
        w.tensors = {layoutOf(name, DType::U8, {n, k / 2}),
                     layoutOf(quantScaleName(name), DType::F32, scaleShape),
                     layoutOf(quantZeroName(name), DType::I8, {n, k / w.group})};
      } else {
        w.perRow = w.format == QuantFormat::Fp8E4M3 && scaleShape[0] == n && n != 1;
        w.tensors = {layoutOf(name,
                              w.format == QuantFormat::Int8 ? DType::I8 : DType::F8E4M3,
                              w.shape),
                     layoutOf(quantScaleName(name), DType::F32, scaleShape)};
      }
      weights.push_back(std::move(w));
      continue;
    }
    if (!floats)
      return Status::error("weight '" + name + "' is not f32, bf16 or a quantized weight's");
    w.dtype = floatType;
    w.tensors = {layoutOf(name, floatType, w.shape)};
    weights.push_back(std::move(w));
  }

  std::vector<TensorToWrite> layout;
  for (const InitialWeight &w : weights)
    layout.insert(layout.end(), w.tensors.begin(), w.tensors.end());
  std::mt19937_64 rng(seed);
  size_t nextWeight = 0;
  std::vector<std::vector<uint8_t>> pending; // the drawn weight's tensors left
  size_t nextPending = 0;
  auto source = [&](size_t, std::vector<uint8_t> &bytes) {
    if (nextPending == pending.size()) {
      pending = drawWeight(weights[nextWeight++], rng);
      nextPending = 0;
    }
    bytes = std::move(pending[nextPending++]);
    return Status::ok();
  };
  return writeSafetensorsStreamed(
      outputPath, layout,
      {{"format", "pt"}, {"init", "gai normal(0.02) seed " + std::to_string(seed)}}, source);
}

} // namespace gai
