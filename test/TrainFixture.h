// The optimizer settings PyTorch used for a training fixture's steps
// (test/fixtures/make_train_fixtures.py writes them as metadata), shared by
// the CPU and GPU training tests.
#ifndef GAI_TEST_TRAINFIXTURE_H
#define GAI_TEST_TRAINFIXTURE_H

#include "gai/Safetensors.h"
#include "gai/Train.h"

#include <cstdlib>

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

} // namespace gai

#endif // GAI_TEST_TRAINFIXTURE_H
