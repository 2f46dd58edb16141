// YaRN's and LongRoPE's frequency tables and scales for the HF config
// reader. The f32 arithmetic follows transformers' _compute_yarn_parameters
// and _compute_longrope_parameters step by step (each product and quotient
// rounded to f32 where torch's is), and the correction range in double as
// Python's math computes it.
#include "frontend/RopeScaling.h"

#include <algorithm>
#include <cmath>

namespace gai {

float ropeWavelengthScale(int64_t i, int64_t dim, double theta) {
  return static_cast<float>(
      std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(dim)));
}

std::vector<float> yarnFrequencies(int64_t dim, double theta,
                                   const YarnScaling &yarn) {
  // The pair index where a frequency turns `rotations` times over the
  // original context.
  auto correctionDim = [&](double rotations) {
    return (static_cast<double>(dim) *
            std::log(yarn.originalContext / (rotations * 2 * M_PI))) /
           (2 * std::log(theta));
  };
  double low = correctionDim(yarn.betaFast),
         high = correctionDim(yarn.betaSlow);
  if (yarn.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high)
    high += 0.001; // as HF: no division by zero
  const float factor = static_cast<float>(yarn.factor);
  std::vector<float> inv;
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float scale = ropeWavelengthScale(i, dim, theta);
    const float extrapolation = 1.0f / scale,
                interpolation = 1.0f / (factor * scale);
    const float ramp =
        std::clamp((static_cast<float>(i) - static_cast<float>(low)) /
                       static_cast<float>(high - low),
                   0.0f, 1.0f);
    const float extrapolationShare = 1.0f - ramp;
    inv.push_back(interpolation * (1.0f - extrapolationShare) +
                  extrapolation * extrapolationShare);
  }
  return inv;
}

double yarnAttentionFactor(const YarnScaling &yarn) {
  if (yarn.attentionFactor > 0)
    return yarn.attentionFactor;
  auto mscale = [&](double m) {
    return yarn.factor <= 1 ? 1.0 : 0.1 * m * std::log(yarn.factor) + 1.0;
  };
  if (yarn.mscale != 0 && yarn.mscaleAllDim != 0)
    return mscale(yarn.mscale) / mscale(yarn.mscaleAllDim);
  return mscale(1.0);
}

std::vector<float> longRopeFrequencies(int64_t dim, double theta,
                                       llvm::ArrayRef<double> factors) {
  std::vector<float> inv;
  for (int64_t i = 0; i < dim / 2; ++i)
    inv.push_back(1.0f / (static_cast<float>(factors[i]) *
                          ropeWavelengthScale(i, dim, theta)));
  return inv;
}

double longRopeAttentionFactor(double factor, double originalContext) {
  if (factor <= 1.0)
    return 1.0;
  return std::sqrt(1.0 + std::log(factor) / std::log(originalContext));
}

} // namespace gai
