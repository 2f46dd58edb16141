// Reading an HF fixture's prompt and a CPU session's logits: what the
// tests that compare a changed model (quantized, pruned) with a float one
// start from.
#ifndef GAI_TEST_UNIT_FIXTURELOGITS_H
#define GAI_TEST_UNIT_FIXTURELOGITS_H

#include "FixtureSession.h"

#include "gai/Safetensors.h"

#include <algorithm>
#include <vector>

namespace gai {

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

} // namespace gai

#endif // GAI_TEST_UNIT_FIXTURELOGITS_H
