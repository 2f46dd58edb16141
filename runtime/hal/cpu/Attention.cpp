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
  const RowStrides qs = orPacked(a.qStrides, a.heads, a.queries, a.headDim),
                   ks = orPacked(a.kStrides, a.kvHeads, a.keys, a.headDim),
                   vs = orPacked(a.vStrides, a.kvHeads, a.keys, a.valueDim),
                   os = orPacked(a.outStrides, a.heads, a.queries, a.valueDim);
  std::vector<float> acc(a.valueDim);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h) {
      int64_t kvh = h / groups;
      const float *kBase = a.k + ks.at(b, kvh, 0);
      const float *vBase = a.v + vs.at(b, kvh, 0);
      for (int64_t t = 0; t < a.queries; ++t) {
        const float *q = a.q + qs.at(b, h, t);
        float *out = a.out + os.at(b, h, t);
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
          const float *k = kBase + j * ks.row;
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
          const float *v = vBase + j * vs.row;
          for (int64_t d = 0; d < a.valueDim; ++d)
            acc[d] = acc[d] * correction + p * v[d];
          running = newMax;
        }
        for (int64_t d = 0; d < a.valueDim; ++d)
          out[d] = sum > 0.0f ? acc[d] / sum : 0.0f;
        if (a.lse)
          a.lse[(b * a.heads + h) * a.queries + t] =
              sum > 0.0f ? running + std::log(sum) : -std::numeric_limits<float>::infinity();
      }
    }
}

// FlashAttention-2's backward, one query row at a time: the probabilities
// come back from the row's log-sum-exp, and D = rowsum(dO ⊙ O) replaces the
// sum over the keys, so nothing [T, S]-sized exists.
void attentionGrad(const AttentionGradArgs &g) {
  const AttentionArgs &a = g.forward;
  int64_t groups = a.heads / a.kvHeads;
  const RowStrides qs = orPacked(a.qStrides, a.heads, a.queries, a.headDim),
                   ks = orPacked(a.kStrides, a.kvHeads, a.keys, a.headDim),
                   vs = orPacked(a.vStrides, a.kvHeads, a.keys, a.valueDim),
                   os = orPacked(a.outStrides, a.heads, a.queries, a.valueDim),
                   dos = orPacked(g.outGradStrides, a.heads, a.queries, a.valueDim),
                   dqs = orPacked(g.qGradStrides, a.heads, a.queries, a.headDim),
                   dks = orPacked(g.kGradStrides, a.kvHeads, a.keys, a.headDim),
                   dvs = orPacked(g.vGradStrides, a.kvHeads, a.keys, a.valueDim);
  // Zero the gradients' rows, wherever their strides put them.
  auto zero = [](float *base, const RowStrides &s, int64_t batch, int64_t heads, int64_t rows,
                 int64_t dim) {
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t t = 0; t < rows; ++t)
          std::fill_n(base + s.at(b, h, t), dim, 0.0f);
  };
  zero(g.qGrad, dqs, a.batch, a.heads, a.queries, a.headDim);
  zero(g.kGrad, dks, a.batch, a.kvHeads, a.keys, a.headDim);
  zero(g.vGrad, dvs, a.batch, a.kvHeads, a.keys, a.valueDim);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h) {
      int64_t kvh = h / groups;
      for (int64_t t = 0; t < a.queries; ++t) {
        int64_t row = (b * a.heads + h) * a.queries + t;
        float rowLse = a.lse[row];
        if (std::isinf(rowLse))
          continue; // sees no key
        const float *q = a.q + qs.at(b, h, t);
        const float *dout = g.outGrad + dos.at(b, h, t);
        const float *out = a.out + os.at(b, h, t);
        float *dq = g.qGrad + dqs.at(b, h, t);
        float delta = 0.0f;
        for (int64_t d = 0; d < a.valueDim; ++d)
          delta += dout[d] * out[d];
        int64_t pos = t + a.keys - a.queries, first = 0, last = a.keys - 1;
        if (a.causal) {
          last = std::min(last, pos);
          if (a.window > 0)
            first = std::max<int64_t>(0, pos - a.window + 1);
        }
        for (int64_t j = first; j <= last; ++j) {
          const float *k = a.k + ks.at(b, kvh, j);
          const float *v = a.v + vs.at(b, kvh, j);
          float *dk = g.kGrad + dks.at(b, kvh, j);
          float *dv = g.vGrad + dvs.at(b, kvh, j);
          float s = 0.0f, dp = 0.0f;
          for (int64_t d = 0; d < a.headDim; ++d)
            s += q[d] * k[d];
          s *= a.scale;
          float slope = 1.0f;
          if (a.softcap > 0.0f) {
            float th = std::tanh(s / a.softcap);
            s = a.softcap * th;
            slope = 1.0f - th * th;
          }
          float p = std::exp(s - rowLse);
          for (int64_t d = 0; d < a.valueDim; ++d) {
            dp += dout[d] * v[d];
            dv[d] += p * dout[d];
          }
          float ds = p * (dp - delta) * slope * a.scale;
          for (int64_t d = 0; d < a.headDim; ++d) {
            dq[d] += ds * k[d];
            dk[d] += ds * q[d];
          }
        }
      }
    }
}

} // namespace gai::cpu
