// Fresh weights for an artifact, for training from scratch or for tests.
#ifndef GAI_INIT_H
#define GAI_INIT_H

#include "gai/Artifact.h"

#include <cstdint>
#include <string>

namespace gai {

/// Writes a safetensors file with every weight the artifact names:
/// normalisation scales 1, biases 0, everything else N(0, 0.02) (GPT-2's
/// initialisation), from a seeded generator, so a seed always gives the
/// same file. Needs only the artifact's tables, not its weights.
Status writeInitialWeights(const std::string &artifactPath,
                           const std::string &outputPath, uint64_t seed);

} // namespace gai

#endif // GAI_INIT_H
