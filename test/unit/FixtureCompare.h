// What the tests that compare a changed model (quantized, pruned) with a
// float one start from: an HF fixture's prompt, a CPU session's logits, and
// the fixture's weights with some replaced.
#ifndef GAI_TEST_UNIT_FIXTURECOMPARE_H
#define GAI_TEST_UNIT_FIXTURECOMPARE_H

#include "FixtureSession.h"

#include "gai/Safetensors.h"
#include "gai/WeightSet.h"

#include <algorithm>
#include <map>
#include <unistd.h>
#include <vector>

namespace gai {

/// @forward alone, one row of `seqLen` tokens, in f32: what the logits
/// are compared on.
inline CompileOptions forwardOnly(int64_t seqLen) {
  CompileOptions options;
  options.build.entries = {true, false, false, false};
  options.build.batch = 1;
  options.build.seqLen = seqLen;
  options.build.dtype = "f32";
  return options;
}

/// The logits [vocab] at position `at` of @forward after `ids` (padded
/// with 0).
inline std::vector<float> logitsAt(Session &s, const std::vector<int32_t> &ids, int64_t at) {
  TensorRef tokens = s.inputs("forward").at(0);
  std::fill_n(tokens.as<int32_t>(), tokens.numElements(), 0);
  std::copy(ids.begin(), ids.end(), tokens.as<int32_t>());
  Status run = s.run("forward");
  EXPECT_TRUE(run.isOk()) << run.message();
  TensorRef logits = s.outputs("forward").at(0);
  int64_t vocab = logits.shape.back();
  const float *row = logits.as<float>() + at * vocab;
  return {row, row + vocab};
}

/// The prompt transformers' reference continuation starts from.
inline std::vector<int32_t> promptOf(const std::string &family) {
  auto expected = SafetensorsFile::open(fixtureDir(family) + "expected.safetensors");
  EXPECT_TRUE(expected.isOk());
  const TensorView *t = expected->find("prompt_ids");
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t->numElements(); ++i)
    ids.push_back(t->dtype == DType::I64 ? static_cast<int32_t>(
                                               reinterpret_cast<const int64_t *>(t->data)[i])
                                         : reinterpret_cast<const int32_t *>(t->data)[i]);
  return ids;
}

/// The fixture's weights with each tensor `replaced` names in f32 (its
/// shape as the file's), written to a temp file named after `tag`.
inline std::string writeFixtureWeights(const std::string &family, const std::string &tag,
                                       const std::map<std::string, std::vector<float>> &replaced) {
  auto weights = WeightSet::open(fixtureDir(family) + "model.safetensors");
  EXPECT_TRUE(weights.isOk());
  std::vector<TensorToWrite> out;
  for (const TensorView *t : weights->tensors()) {
    auto r = replaced.find(t->name);
    if (r == replaced.end()) {
      out.push_back({t->name, t->dtype, t->shape, t->data, t->byteSize});
      continue;
    }
    EXPECT_EQ(static_cast<int64_t>(r->second.size()), t->numElements()) << t->name;
    out.push_back({t->name, DType::F32, t->shape,
                   reinterpret_cast<const uint8_t *>(r->second.data()), r->second.size() * 4});
  }
  std::string path = ::testing::TempDir() + "gai-" + tag + "-" + family + "-" +
                     std::to_string(::getpid()) + ".safetensors";
  EXPECT_TRUE(writeSafetensors(path, out).isOk());
  return path;
}

} // namespace gai

#endif // GAI_TEST_UNIT_FIXTURECOMPARE_H
