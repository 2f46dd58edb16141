// The GPU tests' artifacts (compile-artifacts.sh) and fixture ids, shared
// by the model-level tests.
#ifndef GAI_TEST_GPU_GPUARTIFACTS_H
#define GAI_TEST_GPU_GPUARTIFACTS_H

#include "gai/FloatConvert.h"
#include "gai/Safetensors.h"
#include "gai/Session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace gai {

inline std::string artifactsDir() {
  const char *env = std::getenv("GAI_GPU_ARTIFACTS");
  return env ? env : GAI_GPU_ARTIFACTS_DIR;
}

/// Artifact `name` of artifactsDir() in a session on `device` (with
/// `options` otherwise); null (with the test failed) on any error.
inline std::unique_ptr<Session> openArtifact(const std::string &name,
                                             const std::string &device = "cuda",
                                             SessionOptions options = {}) {
  auto artifact = LoadedArtifact::load(artifactsDir() + "/" + name);
  EXPECT_TRUE(artifact.isOk()) << artifact.status().message();
  if (!artifact)
    return nullptr;
  options.device = device;
  auto session = Session::create(std::move(*artifact), options);
  EXPECT_TRUE(session.isOk()) << session.status().message();
  return session ? std::move(*session) : nullptr;
}

/// Token ids stored as i32 or i64.
inline std::vector<int32_t> idsOf(const TensorView &t) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t.numElements(); ++i)
    ids.push_back(t.dtype == DType::I64
                      ? static_cast<int32_t>(reinterpret_cast<const int64_t *>(t.data)[i])
                      : reinterpret_cast<const int32_t *>(t.data)[i]);
  return ids;
}

/// Token ids `tensor` of HF fixture `family`'s transformers outputs.
inline std::vector<int32_t> fixtureIds(const std::string &family, const char *tensor) {
  auto expected = SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) + "/hf/" + family +
                                        "-tiny/expected.safetensors");
  EXPECT_TRUE(expected.isOk());
  return expected ? idsOf(*expected->find(tensor)) : std::vector<int32_t>{};
}

/// The logits of `s`'s forward entry over `ids` (zeros past them), as f32.
inline std::vector<float> forwardLogits(Session &s, const std::vector<int32_t> &ids) {
  TensorRef in = s.inputs("forward").at(0);
  std::fill_n(in.as<int32_t>(), in.numElements(), 0);
  std::copy_n(ids.begin(), std::min<int64_t>(ids.size(), in.numElements()), in.as<int32_t>());
  Status run = s.run("forward");
  EXPECT_TRUE(run.isOk()) << run.message();
  TensorRef out = s.outputs("forward").at(0);
  std::vector<float> logits(static_cast<size_t>(out.numElements()));
  convertFloats(out.data, out.dtype, logits.data(), DType::F32, logits.size());
  return logits;
}

} // namespace gai

#endif // GAI_TEST_GPU_GPUARTIFACTS_H
