// Calibration for structured pruning (gaic --calibration FILE): how large
// each input feature of every matmul weight is on real text, measured by
// running the dense model on the CPU at compile time.
#ifndef GAI_COMPILER_CALIBRATION_H
#define GAI_COMPILER_CALIBRATION_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gai {

struct CompileOptions;

/// For each weight a matmul reads as its right-hand side: Σ over the
/// calibration tokens of the square of each input feature (the k axis),
/// summed over the matmuls that read it, and which axis of the stored
/// weight is k. Structured pruning weighs each weight element w by
/// w² × its feature's sum (Wanda's |w|·‖x‖, squared), a bias element by w²
/// × the token count (its input is 1).
struct ActivationSquares {
  struct Weight {
    int64_t kAxis = 1;
    std::vector<double> sums;
  };
  std::map<std::string, Weight> weights;
  int64_t tokens = 0;
};

/// Runs the dense model of `options` (its spec and weights; pruning,
/// quantization, training and sharding left out) over `path` (byte-level
/// text or .bin token ids, as gai-run train reads them) in windows of the
/// model's length, at most `maxTokens` tokens, on the CPU.
llvm::Expected<ActivationSquares> measureActivations(const CompileOptions &options,
                                                     const std::string &path,
                                                     int64_t maxTokens);

} // namespace gai

#endif // GAI_COMPILER_CALIBRATION_H
