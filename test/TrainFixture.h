// The optimizer settings PyTorch used for a training fixture's steps
// (test/fixtures/make_train_fixtures.py writes them as metadata), shared by
// the CPU and GPU training tests.
#ifndef GAI_TEST_TRAINFIXTURE_H
#define GAI_TEST_TRAINFIXTURE_H

#include "gai/FloatConvert.h"
#include "gai/Safetensors.h"
#include "gai/Session.h"
#include "gai/Train.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace gai {

inline OptimizerOptions fixtureOptimizerOptions(const SafetensorsFile &fixture) {
  auto number = [&](const char *key) {
    return std::strtod(fixture.metadata().at(key).c_str(), nullptr);
  };
  OptimizerOptions o;
  o.lr = number("lr");
  o.minLr = number("min_lr");
  o.warmupSteps = static_cast<int64_t>(number("warmup_steps"));
  o.totalSteps = static_cast<int64_t>(number("steps"));
  o.weightDecay = number("weight_decay");
  o.gradClip = number("grad_clip");
  o.beta1 = number("beta1");
  o.beta2 = number("beta2");
  o.eps = number("eps");
  return o;
}

/// A fused bf16 artifact's weight copies (role ParameterCopy).
inline std::vector<TensorRef> paramCopies(Session &s) {
  std::vector<TensorRef> copies;
  for (const TensorRef &r : s.stateTensors())
    if (r.role == TensorRole::ParameterCopy)
      copies.push_back(r);
  return copies;
}
inline std::string masterOf(const TensorRef &copy) {
  return "param." + copy.name.substr(std::string("param_copy.").size());
}
/// Each copy (from the `first`) is its master rounded to bf16 (to nearest
/// even), to the bit.
inline void expectCopiesOfMasters(Session &s, const char *when, size_t first = 0) {
  std::vector<TensorRef> copies = paramCopies(s);
  for (size_t c = first; c < copies.size(); ++c) {
    const TensorRef &r = copies[c];
    std::vector<float> f32(static_cast<size_t>(r.numElements()));
    std::vector<uint16_t> bf16(f32.size());
    ASSERT_TRUE(s.readState(masterOf(r), f32.data()).isOk()) << masterOf(r);
    ASSERT_TRUE(s.readState(r.name, bf16.data()).isOk()) << r.name;
    for (size_t i = 0; i < f32.size(); ++i)
      ASSERT_EQ(bf16[i], floatToBf16(f32[i])) << when << ": " << r.name << "[" << i << "]";
  }
}
/// Writes a mark into copy 0 from the host and reads it back: it reads as
/// written only if no copy is stale (a read makes stale copies first), so
/// only if the entry run before made them all.
inline bool copyMarkSurvives(Session &s) {
  std::vector<TensorRef> copies = paramCopies(s);
  if (copies.empty())
    return false;
  std::vector<uint16_t> marked(static_cast<size_t>(copies[0].numElements()), 0x3f80);
  std::vector<uint16_t> read(marked.size());
  EXPECT_TRUE(s.writeState(copies[0].name, marked.data()).isOk());
  EXPECT_TRUE(s.readState(copies[0].name, read.data()).isOk());
  return read == marked;
}
/// Halves every master that has a copy, from the host.
inline void halveMastersWithCopies(Session &s) {
  for (const TensorRef &r : paramCopies(s)) {
    std::vector<float> values(static_cast<size_t>(r.numElements()));
    ASSERT_TRUE(s.readState(masterOf(r), values.data()).isOk());
    for (float &v : values)
      v *= 0.5f;
    ASSERT_TRUE(s.writeState(masterOf(r), values.data()).isOk());
  }
}

} // namespace gai

#endif // GAI_TEST_TRAINFIXTURE_H
