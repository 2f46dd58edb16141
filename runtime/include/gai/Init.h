// Fresh weights for an artifact, for training from scratch or for tests.
#ifndef GAI_INIT_H
#define GAI_INIT_H

#include "gai/Artifact.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace gai {

/// The initial values of weight `name`: 0 for biases, 1 for norm scales,
/// normal(0, 0.02) otherwise, drawn from `rng` (Box-Muller on 53-bit
/// uniforms: the same numbers on every platform).
std::vector<float> initialValues(const std::string &name,
                                 const std::vector<int64_t> &shape,
                                 std::mt19937_64 &rng);

/// Writes a safetensors file with every weight the artifact names:
/// normalisation scales 1, biases 0, everything else N(0, 0.02) (GPT-2's
/// initialisation), from a seeded generator, so a seed always gives the
/// same file; quantized and 2:4 weights are drawn dense, then quantized or
/// pruned as gaic does. Needs only the artifact's tables, not its weights,
/// and holds one weight at a time.
Status writeInitialWeights(const std::string &artifactPath,
                           const std::string &outputPath, uint64_t seed);

} // namespace gai

#endif // GAI_INIT_H
