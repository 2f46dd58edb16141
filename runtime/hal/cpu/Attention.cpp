// Attention on the CPU: online softmax over the keys, one query row at a
// time, so memory stays O(head_dim) whatever the context.
// Per (b, h, t): reads D + S·(D + Dv) floats, does 2·S·(D + Dv) flops.
#include "hal/cpu/Kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace gai::cpu {

void attention(const AttentionArgs &a) {
  int64_t groups = a.heads / a.kvHeads;
  std::vector<float> acc(a.valueDim);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h) {
      int64_t kvh = h / groups;
      const float *kBase = a.k + (b * a.kvHeads + kvh) * a.keys * a.headDim;
      const float *vBase = a.v + (b * a.kvHeads + kvh) * a.keys * a.valueDim;
      for (int64_t t = 0; t < a.queries; ++t) {
        const float *q = a.q + ((b * a.heads + h) * a.queries + t) * a.headDim;
        float *out = a.out + ((b * a.heads + h) * a.queries + t) * a.valueDim;
        int64_t pos = t + (a.queryStart ? a.queryStart[b] : a.keys - a.queries);
        int64_t first = 0, last = a.keys - 1;
        if (a.causal) {
          last = std::min(last, pos);
          if (a.window > 0)
            first = std::max<int64_t>(0, pos - a.window + 1);
        }
        float running = -std::numeric_limits<float>::infinity(), sum = 0.0f;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t j = first; j <= last; ++j) {
          const float *k = kBase + j * a.headDim;
          float s = 0.0f;
          for (int64_t d = 0; d < a.headDim; ++d)
            s += q[d] * k[d];
          s *= a.scale;
          if (a.softcap > 0.0f)
            s = a.softcap * std::tanh(s / a.softcap);
          // Rescale what was summed so far when the maximum grows.
          float newMax = std::max(running, s);
          float correction = std::exp(running - newMax);
          float p = std::exp(s - newMax);
          sum = sum * correction + p;
          const float *v = vBase + j * a.valueDim;
          for (int64_t d = 0; d < a.valueDim; ++d)
            acc[d] = acc[d] * correction + p * v[d];
          running = newMax;
        }
        for (int64_t d = 0; d < a.valueDim; ++d)
          out[d] = sum > 0.0f ? acc[d] / sum : 0.0f;
      }
    }
}

} // namespace gai::cpu
