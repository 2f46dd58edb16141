// RoPE frequency tables of the HF scaling types that are not a closed
// rule of each frequency alone (YaRN, LongRoPE), computed in f32 as
// transformers' modeling_rope_utils does, so that the angles match its.
#ifndef GAI_FRONTEND_ROPESCALING_H
#define GAI_FRONTEND_ROPESCALING_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace gai {

/// theta^(2i/dim) for pair i, in f32.
float ropeWavelengthScale(int64_t i, int64_t dim, double theta);

/// YaRN's parameters (HF rope_type "yarn").
struct YarnScaling {
  double factor = 1.0;
  double originalContext = 0; ///< original_max_position_embeddings
  double betaFast = 32, betaSlow = 1;
  bool truncate = true;
  double attentionFactor = 0; ///< 0: from factor, mscale and mscale_all_dim
  double mscale = 0, mscaleAllDim = 0;
};
/// YaRN's inverse frequencies: theta's where a pair turns more than
/// beta_fast times over the original context, theta's / factor where it
/// turns fewer than beta_slow times, a linear blend between.
std::vector<float> yarnFrequencies(int64_t dim, double theta,
                                   const YarnScaling &yarn);
/// The scale of YaRN's cosines and sines (0.1 ln(factor) + 1 by default).
double yarnAttentionFactor(const YarnScaling &yarn);

/// LongRoPE's inverse frequencies 1 / (factors[i] · theta^(2i/dim)), for
/// one of its factor lists (short or long).
std::vector<float> longRopeFrequencies(int64_t dim, double theta,
                                       llvm::ArrayRef<double> factors);
/// LongRoPE's default scale of the cosines and sines:
/// sqrt(1 + ln(factor) / ln(original context)), 1 where factor <= 1.
double longRopeAttentionFactor(double factor, double originalContext);

} // namespace gai

#endif // GAI_FRONTEND_ROPESCALING_H
