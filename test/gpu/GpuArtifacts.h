// The GPU tests' artifacts (compile-artifacts.sh) and fixture ids, shared
// by the model-level tests.
#ifndef GAI_TEST_GPU_GPUARTIFACTS_H
#define GAI_TEST_GPU_GPUARTIFACTS_H

#include "gai/Safetensors.h"
#include "gai/Session.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace gai {

inline std::string artifactsDir() {
  const char *env = std::getenv("GAI_GPU_ARTIFACTS");
  return env ? env : GAI_GPU_ARTIFACTS_DIR;
}

/// Artifact `name` of artifactsDir() in a session on `device`; null (with
/// the test failed) on any error.
inline std::unique_ptr<Session> openArtifact(const std::string &name,
                                             const std::string &device = "cuda") {
  auto artifact = LoadedArtifact::load(artifactsDir() + "/" + name);
  EXPECT_TRUE(artifact.isOk()) << artifact.status().message();
  if (!artifact)
    return nullptr;
  SessionOptions options;
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

} // namespace gai

#endif // GAI_TEST_GPU_GPUARTIFACTS_H
