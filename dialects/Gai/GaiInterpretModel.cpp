// The interpretation (InterpretOpInterface) of the gai ops of a model's
// layers: embedding, matmuls and GEMMs, RoPE, masks, KV caches and attention.
#include "dialects/Gai/GaiInterpretSupport.h"
#include "dialects/Gai/GaiOps.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>

using namespace mlir;
using namespace mlir::gai;
using namespace mlir::gai::host;

namespace {

double activate(EpilogueActivation act, double x) {
  switch (act) {
  case EpilogueActivation::None:
    return x;
  case EpilogueActivation::Silu:
    return x / (1.0 + std::exp(-x));
  case EpilogueActivation::Gelu:
    return gelu(x, false);
  case EpilogueActivation::GeluTanh:
    return gelu(x, true);
  case EpilogueActivation::Relu:
    return std::max(x, 0.0);
  }
  return x;
}

/// How a RoPE rotates: theta's frequencies (rescaled by `llama3`) or a
/// table, and the cosines' and sines' scale.
struct RopeFrequencies {
  double theta = 10000.0;
  ArrayRef<double> llama3;
  ArrayRef<float> table;
  float attentionFactor = 1.0f;
  int64_t rotaryDim = 0; ///< 0: the whole head rotates

  static RopeFrequencies of(RopeOp rope) {
    RopeFrequencies f;
    f.theta = rope.getTheta().convertToDouble();
    f.llama3 = rope.getLlama3Scaling().value_or(ArrayRef<double>());
    f.table = rope.getFrequencies().value_or(ArrayRef<float>());
    if (std::optional<APFloat> a = rope.getAttentionFactor())
      f.attentionFactor = a->convertToFloat();
    f.rotaryDim = rope.getRotaryDim().value_or(0);
    return f;
  }
  /// Pair i's inverse frequency.
  float at(int64_t i, int64_t dim) const {
    if (!table.empty())
      return table[i];
    return ropeFrequency(i, dim, theta, llama3);
  }
};

/// RoPE of t [B, H, T, D] (or [B, T, H, D]: `tokenMajor`) in place at
/// positions [B or 1, T].
void rotate(HostTensor &t, const HostTensor &pos, const RopeFrequencies &freq, bool half,
            bool tokenMajor = false) {
  int64_t b = t.shape[0], h = t.shape[tokenMajor ? 2 : 1], seq = t.shape[tokenMajor ? 1 : 2];
  // The rotated part of each head (the rest passes through).
  const int64_t d = freq.rotaryDim > 0 ? freq.rotaryDim : t.shape[3], stride = t.shape[3];
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t ti = 0; ti < seq; ++ti) {
        double p = pos.data[(pos.shape[0] == 1 ? 0 : bi) * seq + ti];
        int64_t row = tokenMajor ? (bi * seq + ti) * h + hi : (bi * h + hi) * seq + ti;
        double *x = t.data.data() + row * stride;
        for (int64_t i = 0; i < d / 2; ++i) {
          // HF computes inverse frequencies, angles, cosines and sines in f32.
          float inv = freq.at(i, d);
          float angle = static_cast<float>(p) * inv;
          double c = static_cast<float>(std::cos(angle)) * freq.attentionFactor;
          double s = static_cast<float>(std::sin(angle)) * freq.attentionFactor;
          int64_t i1 = half ? i : 2 * i, i2 = half ? i + d / 2 : 2 * i + 1;
          double x1 = x[i1], x2 = x[i2];
          x[i1] = x1 * c - x2 * s;
          x[i2] = x2 * c + x1 * s;
        }
      }
}

/// Row b of `update` [B, H, T, D] into slots start[b] .. start[b] + T - 1
/// of `cache` [B, H, S, D]; a message when a row does not fit.
std::optional<std::string> writeRows(HostTensor &t, const HostTensor &u,
                                     const HostTensor &start) {
  int64_t b = t.shape[0], h = t.shape[1], s = t.shape[2], d = t.shape[3];
  int64_t n = u.shape[2];
  for (int64_t bi = 0; bi < b; ++bi) {
    int64_t at = static_cast<int64_t>(start.data[bi]);
    if (at < 0 || at + n > s)
      return ("row " + Twine(bi) + " writes slots [" + Twine(at) + ", " +
              Twine(at + n) + ") of a cache of " + Twine(s))
          .str();
    for (int64_t hi = 0; hi < h; ++hi)
      std::copy_n(u.data.begin() + ((bi * h + hi) * n) * d, n * d,
                  t.data.begin() + ((bi * h + hi) * s + at) * d);
  }
  return std::nullopt;
}

/// Attention as gai.flash_attention defines it: query [B, H, T, D] over key
/// [B, Hkv, S, D] and value [B, Hkv, S, Dv], queries at positions[b] + i when
/// given; each row's log-sum-exp into `lse` ([B, H, T]) when given.
HostTensor attend(const HostTensor &q, const HostTensor &k, const HostTensor &v,
                  const HostTensor *positions, int64_t groups, bool causal,
                  int64_t window, double scale, double cap,
                  HostTensor *lse = nullptr) {
  int64_t b = q.shape[0], h = q.shape[1], tq = q.shape[2], d = q.shape[3];
  int64_t hkv = k.shape[1], s = k.shape[2], dv = v.shape[3];
  HostTensor t({b, h, tq, dv});
  if (lse)
    *lse = HostTensor({b, h, tq});
  std::vector<double> p(s);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t ti = 0; ti < tq; ++ti) {
        const double *qr = q.data.data() + ((bi * h + hi) * tq + ti) * d;
        int64_t kvh = hi / groups, pos = ti + s - tq;
        if (positions)
          pos = ti + static_cast<int64_t>(positions->data[bi]);
        double mx = -INFINITY;
        for (int64_t j = 0; j < s; ++j) {
          bool visible =
              !causal || (j <= pos && (window == 0 || pos - j < window));
          if (!visible) {
            p[j] = -INFINITY;
            continue;
          }
          const double *kr = k.data.data() + ((bi * hkv + kvh) * s + j) * d;
          double dot = 0.0;
          for (int64_t l = 0; l < d; ++l)
            dot += qr[l] * kr[l];
          dot *= scale;
          if (cap > 0)
            dot = cap * std::tanh(dot / cap);
          p[j] = dot;
          mx = std::max(mx, dot);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < s; ++j)
          sum += (p[j] = p[j] == -INFINITY ? 0.0 : std::exp(p[j] - mx));
        if (lse)
          lse->data[(bi * h + hi) * tq + ti] = sum > 0.0 ? mx + std::log(sum) : -INFINITY;
        double *o = t.data.data() + ((bi * h + hi) * tq + ti) * dv;
        for (int64_t j = 0; j < s; ++j) {
          if (p[j] == 0.0)
            continue;
          const double *vr = v.data.data() + ((bi * hkv + kvh) * s + j) * dv;
          for (int64_t l = 0; l < dv; ++l)
            o[l] += p[j] / sum * vr[l];
        }
      }
  return t;
}

/// The gradients of attend() (no query positions) as FlashAttention-2's
/// backward computes them: probabilities from the row log-sum-exps, and
/// D = rowsum(dO ⊙ O).
std::array<HostTensor, 3> attendGrad(const HostTensor &q, const HostTensor &k,
                                     const HostTensor &v, const HostTensor &o,
                                     const HostTensor &lse, const HostTensor &dout,
                                     int64_t groups, bool causal, int64_t window,
                                     double scale, double cap) {
  int64_t b = q.shape[0], h = q.shape[1], tq = q.shape[2], d = q.shape[3];
  int64_t hkv = k.shape[1], s = k.shape[2], dv = v.shape[3];
  HostTensor dq(q.shape), dk(k.shape), dvt(v.shape);
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t ti = 0; ti < tq; ++ti) {
        int64_t row = (bi * h + hi) * tq + ti, kvh = hi / groups, pos = ti + s - tq;
        const double *qr = q.data.data() + row * d;
        const double *gr = dout.data.data() + row * dv;
        const double *orow = o.data.data() + row * dv;
        double delta = 0.0;
        for (int64_t l = 0; l < dv; ++l)
          delta += gr[l] * orow[l];
        double rowLse = lse.data[row];
        if (rowLse == -INFINITY)
          continue;
        for (int64_t j = 0; j < s; ++j) {
          if (causal && (j > pos || (window != 0 && pos - j >= window)))
            continue;
          int64_t keyRow = (bi * hkv + kvh) * s + j;
          const double *kr = k.data.data() + keyRow * d;
          const double *vr = v.data.data() + keyRow * dv;
          double raw = 0.0;
          for (int64_t l = 0; l < d; ++l)
            raw += qr[l] * kr[l];
          raw *= scale;
          double score = raw, slope = 1.0;
          if (cap > 0) {
            double th = std::tanh(raw / cap);
            score = cap * th;
            slope = 1.0 - th * th;
          }
          double p = std::exp(score - rowLse), dp = 0.0;
          for (int64_t l = 0; l < dv; ++l) {
            dp += gr[l] * vr[l];
            dvt.data[keyRow * dv + l] += p * gr[l];
          }
          double ds = p * (dp - delta) * slope * scale;
          for (int64_t l = 0; l < d; ++l) {
            dq.data[row * d + l] += ds * kr[l];
            dk.data[keyRow * d + l] += ds * qr[l];
          }
        }
      }
  return {std::move(dq), std::move(dk), std::move(dvt)};
}

/// op(a)·op(b) with broadcast batch dims, shaped as `result`.
HostTensor matmul(const HostTensor &a, const HostTensor &b, bool ta, bool tb,
                  Value result) {
  std::vector<int64_t> outShape = shapeOf(result);
  HostTensor out(outShape);
  size_t r = outShape.size();
  int64_t m = outShape[r - 2], n = outShape[r - 1];
  int64_t k = ta ? a.shape[a.shape.size() - 2] : a.shape.back();
  std::vector<int64_t> batch(outShape.begin(), outShape.end() - 2);
  std::vector<int64_t> aBatch(a.shape.begin(), a.shape.end() - 2);
  std::vector<int64_t> bBatch(b.shape.begin(), b.shape.end() - 2);
  std::vector<int64_t> aIdx = broadcastIndices(aBatch, batch);
  std::vector<int64_t> bIdx = broadcastIndices(bBatch, batch);
  for (size_t bi = 0; bi < aIdx.size(); ++bi) {
    const double *pa = a.data.data() + aIdx[bi] * m * k;
    const double *pb = b.data.data() + bIdx[bi] * k * n;
    double *po = out.data.data() + bi * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0.0;
        for (int64_t l = 0; l < k; ++l)
          acc += (ta ? pa[l * m + i] : pa[i * k + l]) *
                 (tb ? pb[j * k + l] : pb[l * n + j]);
        po[i * n + j] = acc;
      }
  }
  return out;
}

} // namespace

//===----------------------------------------------------------------------===//
// Embedding and matmul
//===----------------------------------------------------------------------===//

llvm::Error EmbeddingOp::interpret(InterpretState &state) {
  const HostTensor &table = state.in(getTable());
  const HostTensor &ids = state.in(getIndices());
  // One process: a table of vocabulary shards is rank 0's, the first rows.
  int64_t rows = table.shape[0], d = table.shape[1], vocab = vocabulary();
  HostTensor t(shapeOf(getResult()));
  for (int64_t i = 0; i < ids.numElements(); ++i) {
    int64_t id = static_cast<int64_t>(ids.data[i]);
    if (id < 0 || id >= vocab)
      return interpretError(*this, "token id " + Twine(id) + " is not in [0, " +
                                       Twine(vocab) + ")");
    if (id < rows)
      std::copy_n(table.data.begin() + id * d, d, t.data.begin() + i * d);
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error EmbeddingGradOp::interpret(InterpretState &state) {
  const HostTensor &grad = state.in(getGrad());
  const HostTensor &ids = state.in(getIndices());
  // One process: a table of vocabulary shards is rank 0's, the first rows.
  auto rows = static_cast<int64_t>(getRows());
  int64_t d = grad.shape.back(), vocab = rows * static_cast<int64_t>(getVocabShards());
  HostTensor t(shapeOf(getResult()));
  for (int64_t i = 0; i < ids.numElements(); ++i) {
    int64_t id = static_cast<int64_t>(ids.data[i]);
    if (id < 0 || id >= vocab)
      return interpretError(*this, "token id " + Twine(id) + " is not in [0, " +
                                       Twine(vocab) + ")");
    if (id < rows)
      for (int64_t j = 0; j < d; ++j)
        t.data[id * d + j] += grad.data[i * d + j];
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error MatmulOp::interpret(InterpretState &state) {
  state.set(getResult(),
            matmul(state.in(getLhs()), state.in(getRhs()), getTransposeLhs(),
                   getTransposeRhs(), getResult()));
  return llvm::Error::success();
}

llvm::Error GatedGemmOp::interpret(InterpretState &state) {
  HostTensor t =
      matmul(state.in(getLhs()), state.in(getGate()), false, true, getResult());
  HostTensor up =
      matmul(state.in(getLhs()), state.in(getUp()), false, true, getResult());
  for (int64_t i = 0; i < t.numElements(); ++i)
    t.data[i] = activate(getActivation(), t.data[i]) * up.data[i];
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error GemmOp::interpret(InterpretState &state) {
  HostTensor t = matmul(state.in(getLhs()), state.in(getRhs()),
                        getTransposeLhs(), getTransposeRhs(), getResult());
  int64_t n = t.shape.back();
  for (int64_t i = 0; i < t.numElements(); ++i) {
    double x = t.data[i];
    if (getBias())
      x += state.in(getBias()).data[i % n];
    x = activate(getActivation(), x);
    if (getResidual())
      x += state.in(getResidual()).data[i];
    t.data[i] = x;
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Positions, masks and KV caches
//===----------------------------------------------------------------------===//

llvm::Error RopeOp::interpret(InterpretState &state) {
  HostTensor t = state.in(getInput());
  rotate(t, state.in(getPositions()), RopeFrequencies::of(*this),
         getStyle() == RopeStyle::Half, getTokenMajor());
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error CausalMaskOp::interpret(InterpretState &state) {
  HostTensor t(shapeOf(getResult()));
  int64_t s = t.shape.back(), q = t.shape[t.shape.size() - 2];
  int64_t window = static_cast<int64_t>(getWindow());
  for (int64_t i = 0; i < t.numElements(); ++i) {
    int64_t key = i % s, query = (i / s) % q + (s - q);
    t.data[i] = key <= query && (window == 0 || query - key < window);
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error PositionMaskOp::interpret(InterpretState &state) {
  const HostTensor &start = state.in(getPositions());
  HostTensor t(shapeOf(getResult()));
  int64_t s = t.shape[3], q = t.shape[2];
  int64_t window = static_cast<int64_t>(getWindow());
  for (int64_t i = 0; i < t.numElements(); ++i) {
    int64_t key = i % s, b = i / (q * s);
    int64_t query = static_cast<int64_t>(start.data[b]) + (i / s) % q;
    t.data[i] = key <= query && (window == 0 || query - key < window);
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error CacheWriteOp::interpret(InterpretState &state) {
  HostTensor t = state.in(getCache());
  if (std::optional<std::string> bad =
          writeRows(t, state.in(getUpdate()), state.in(getPositions())))
    return interpretError(*this, *bad);
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error TakeOp::interpret(InterpretState &state) {
  const HostTensor &x = state.in(getInput());
  const HostTensor &idx = state.in(getIndices());
  HostTensor t(shapeOf(getResult()));
  int64_t rows = x.shape[1], row = t.numElements() / x.shape[0];
  for (int64_t b = 0; b < x.shape[0]; ++b) {
    int64_t r = static_cast<int64_t>(idx.data[b]);
    if (r < 0 || r >= rows)
      return interpretError(*this, "index " + Twine(r) + " is not in [0, " +
                                       Twine(rows) + ")");
    std::copy_n(x.data.begin() + (b * rows + r) * row, row,
                t.data.begin() + b * row);
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// A rank-4 tensor with its axes 1 and 2 swapped when `swap`: a token-major
/// attention tensor ([B, T, H, D]) as the head-major one the kernels above
/// take, or back.
static HostTensor swapHeadAxes(const HostTensor &t, bool swap) {
  if (!swap)
    return t;
  int64_t b = t.shape[0], x = t.shape[1], y = t.shape[2], d = t.shape[3];
  HostTensor out({b, y, x, d});
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t i = 0; i < x; ++i)
      for (int64_t j = 0; j < y; ++j)
        std::copy_n(t.data.data() + ((bi * x + i) * y + j) * d, d,
                    out.data.data() + ((bi * y + j) * x + i) * d);
  return out;
}

llvm::Error FlashAttentionOp::interpret(InterpretState &state) {
  Value positions = getQueryPositions();
  HostTensor lse;
  auto in = [&](Value v, unsigned index) {
    return swapHeadAxes(state.in(v), isTokenMajor(index));
  };
  state.set(getResult(),
            swapHeadAxes(attend(in(getQuery(), kQuery), in(getKey(), kKey),
                                in(getValue(), kValue),
                                positions ? &state.in(positions) : nullptr,
                                static_cast<int64_t>(getKvGroups()),
                                getCausal(), static_cast<int64_t>(getWindow()),
                                getScale().convertToDouble(),
                                getSoftcap().convertToDouble(),
                                getWithLse() ? &lse : nullptr),
                         isTokenMajor(kResult)));
  if (getWithLse())
    state.set(getLse(), std::move(lse));
  return llvm::Error::success();
}

llvm::Error FlashAttentionGradOp::interpret(InterpretState &state) {
  auto in = [&](Value v, unsigned index) {
    return swapHeadAxes(state.in(v), isTokenMajor(index));
  };
  auto grads = attendGrad(in(getQuery(), kQuery), in(getKey(), kKey), in(getValue(), kValue),
                          in(getOut(), kOut), state.in(getLse()), in(getOutGrad(), kOutGrad),
                          static_cast<int64_t>(getKvGroups()), getCausal(),
                          static_cast<int64_t>(getWindow()), getScale().convertToDouble(),
                          getSoftcap().convertToDouble());
  state.set(getQueryGrad(), swapHeadAxes(grads[0], isTokenMajor(kQueryGrad)));
  state.set(getKeyGrad(), swapHeadAxes(grads[1], isTokenMajor(kKeyGrad)));
  state.set(getValueGrad(), swapHeadAxes(grads[2], isTokenMajor(kValueGrad)));
  return llvm::Error::success();
}

llvm::Error CachedAttentionOp::interpret(InterpretState &state) {
  // The ops it folds, each rounded to its type as when they were apart.
  HostTensor q = state.in(getQuery()), k = state.in(getKey());
  if (std::optional<RopeStyle> style = getRopeStyle()) {
    RopeFrequencies freq;
    freq.theta = getRopeThetaAttr().getValueAsDouble();
    rotate(q, state.in(getRopePositions()), freq, *style == RopeStyle::Half);
    rotate(k, state.in(getRopePositions()), freq, *style == RopeStyle::Half);
    Type elt = cast<RankedTensorType>(getQuery().getType()).getElementType();
    for (HostTensor *t : {&q, &k})
      for (double &x : t->data)
        x = roundTo(elt, x);
  }
  HostTensor keys = state.in(getKeyCache()), values = state.in(getValueCache());
  const HostTensor &start = state.in(getPositions());
  std::optional<std::string> bad = writeRows(keys, k, start);
  if (!bad)
    bad = writeRows(values, state.in(getValue()), start);
  if (bad)
    return interpretError(*this, *bad);
  state.set(getResult(),
            attend(q, keys, values, &start, static_cast<int64_t>(getKvGroups()),
                   getCausal(), static_cast<int64_t>(getWindow()),
                   getScale().convertToDouble(),
                   getSoftcap().convertToDouble()));
  state.set(getNewKeyCache(), std::move(keys));
  state.set(getNewValueCache(), std::move(values));
  return llvm::Error::success();
}
