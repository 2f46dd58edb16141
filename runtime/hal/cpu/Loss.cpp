// The fused softmax cross-entropy and its gradient: one row of logits at a
// time, in double for the sums, so the vocabulary's probabilities are never
// stored.
#include "hal/cpu/Kernels.h"

#include <algorithm>
#include <cmath>

namespace gai::cpu {
namespace {

/// max and log Σ exp(x - max) of one row.
void logSumExp(const float *x, int64_t n, double &max, double &logSum) {
  max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t j = 0; j < n; ++j)
    sum += std::exp(static_cast<double>(x[j]) - max);
  logSum = std::log(sum);
}

int64_t firstBadLabel(const int32_t *labels, int64_t rows, int64_t vocab,
                      int64_t ignore, int64_t &counted) {
  counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (labels[r] == ignore)
      continue;
    if (labels[r] < 0 || labels[r] >= vocab)
      return r;
    ++counted;
  }
  return -1;
}

} // namespace

int64_t crossEntropy(const float *logits, const int32_t *labels, int64_t rows,
                     int64_t vocab, int64_t ignore, int reduction, float *loss) {
  int64_t counted;
  if (int64_t bad = firstBadLabel(labels, rows, vocab, ignore, counted); bad >= 0)
    return bad;
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    double value = 0.0;
    if (labels[r] != ignore) {
      const float *x = logits + r * vocab;
      double max, logSum;
      logSumExp(x, vocab, max, logSum);
      value = max + logSum - x[labels[r]];
    }
    if (reduction == 2)
      loss[r] = static_cast<float>(value);
    total += value;
  }
  if (reduction == 0)
    loss[0] = static_cast<float>(total / static_cast<double>(std::max<int64_t>(counted, 1)));
  else if (reduction == 1)
    loss[0] = static_cast<float>(total);
  return -1;
}

int64_t crossEntropyGrad(const float *logits, const int32_t *labels,
                         const float *grad, int64_t rows, int64_t vocab,
                         int64_t ignore, int reduction, float *out) {
  int64_t counted;
  if (int64_t bad = firstBadLabel(labels, rows, vocab, ignore, counted); bad >= 0)
    return bad;
  for (int64_t r = 0; r < rows; ++r) {
    float *o = out + r * vocab;
    if (labels[r] == ignore) {
      std::fill_n(o, vocab, 0.0f);
      continue;
    }
    double scale = reduction == 2 ? grad[r] : grad[0];
    if (reduction == 0)
      scale /= static_cast<double>(std::max<int64_t>(counted, 1));
    const float *x = logits + r * vocab;
    double max, logSum;
    logSumExp(x, vocab, max, logSum);
    for (int64_t j = 0; j < vocab; ++j)
      o[j] = static_cast<float>(std::exp(static_cast<double>(x[j]) - max - logSum) * scale);
    o[labels[r]] -= static_cast<float>(scale);
  }
  return -1;
}

} // namespace gai::cpu
