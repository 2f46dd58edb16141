// The reference interpreter: one straightforward loop nest per gai op.
#include "compiler/reference/Interpreter.h"

#include "dialects/Gai/GaiOps.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>

using namespace mlir;
using namespace mlir::gai;

namespace gai::reference {

HostTensor::HostTensor(std::vector<int64_t> s, double fill) : shape(std::move(s)) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  data.assign(n, fill);
}

namespace {

llvm::Error fail(Operation *op, const llvm::Twine &message) {
  std::string name = op->getName().getStringRef().str();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (name + ": " + message).str());
}

std::vector<int64_t> stridesOf(llvm::ArrayRef<int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

/// For each element of `out`, the flat index of the element of a tensor of
/// shape `in` that NumPy broadcasting reads.
std::vector<int64_t> broadcastIndices(llvm::ArrayRef<int64_t> in,
                                      llvm::ArrayRef<int64_t> out) {
  int64_t n = 1;
  for (int64_t d : out)
    n *= d;
  std::vector<int64_t> inStrides = stridesOf(in), result(n);
  size_t offset = out.size() - in.size();
  std::vector<int64_t> index(out.size(), 0);
  for (int64_t flat = 0; flat < n; ++flat) {
    int64_t src = 0;
    for (size_t d = 0; d < in.size(); ++d)
      if (in[d] != 1)
        src += index[d + offset] * inStrides[d];
    result[flat] = src;
    for (int64_t d = static_cast<int64_t>(out.size()) - 1; d >= 0; --d) {
      if (++index[d] < out[d])
        break;
      index[d] = 0;
    }
  }
  return result;
}

/// Rounds to what the element type can hold.
double roundTo(Type type, double v) {
  if (type.isF32())
    return static_cast<float>(v);
  if (auto f = dyn_cast<FloatType>(type)) {
    llvm::APFloat x(v);
    bool lost = false;
    x.convert(f.getFloatSemantics(), llvm::APFloat::rmNearestTiesToEven, &lost);
    x.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven,
              &lost);
    return x.convertToDouble();
  }
  return v;
}

double gelu(double x, bool tanhApprox) {
  if (tanhApprox)
    return 0.5 * x *
           (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

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

/// RoPE of t [B, H, T, D] in place at positions [B or 1, T].
void rotate(HostTensor &t, const HostTensor &pos, double theta, bool half) {
  int64_t b = t.shape[0], h = t.shape[1], seq = t.shape[2], d = t.shape[3];
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t ti = 0; ti < seq; ++ti) {
        double p = pos.data[(pos.shape[0] == 1 ? 0 : bi) * seq + ti];
        double *x = t.data.data() + ((bi * h + hi) * seq + ti) * d;
        for (int64_t i = 0; i < d / 2; ++i) {
          // HF computes inverse frequencies and angles in f32.
          float inv = 1.0f / static_cast<float>(std::pow(
                                 theta, static_cast<float>(2 * i) / d));
          float angle = static_cast<float>(p) * inv;
          double c = static_cast<float>(std::cos(angle));
          double s = static_cast<float>(std::sin(angle));
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
      return ("row " + llvm::Twine(bi) + " writes slots [" + llvm::Twine(at) + ", " +
              llvm::Twine(at + n) + ") of a cache of " + llvm::Twine(s))
          .str();
    for (int64_t hi = 0; hi < h; ++hi)
      std::copy_n(u.data.begin() + ((bi * h + hi) * n) * d, n * d,
                  t.data.begin() + ((bi * h + hi) * s + at) * d);
  }
  return std::nullopt;
}

/// Attention as gai.flash_attention defines it: query [B, H, T, D] over key
/// [B, Hkv, S, D] and value [B, Hkv, S, Dv], queries at positions[b] + i when
/// given.
HostTensor attend(const HostTensor &q, const HostTensor &k, const HostTensor &v,
                  const HostTensor *positions, int64_t groups, bool causal,
                  int64_t window, double scale, double cap) {
  int64_t b = q.shape[0], h = q.shape[1], tq = q.shape[2], d = q.shape[3];
  int64_t hkv = k.shape[1], s = k.shape[2], dv = v.shape[3];
  HostTensor t({b, h, tq, dv});
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
          bool visible = !causal ||
                         (j <= pos && (window == 0 || pos - j < window));
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

class Interpreter {
public:
  Interpreter(const SafetensorsFile &weights,
              const std::function<std::string(llvm::StringRef)> &paramNameOf) {
    for (const TensorView &t : weights.tensors())
      params[paramNameOf ? paramNameOf(t.name) : t.name] = &t;
  }

  /// Runs the ops of `block` (all but its terminator), then returns the
  /// terminator's operands.
  llvm::Expected<std::vector<HostTensor>> runBlock(Block &block) {
    for (Operation &op : block.without_terminator())
      if (llvm::Error e = run(&op))
        return std::move(e);
    std::vector<HostTensor> results;
    for (Value v : block.getTerminator()->getOperands())
      results.push_back(values.lookup(v));
    return results;
  }

  /// An interpreter for a nested region: same weights, fresh values.
  explicit Interpreter(const llvm::StringMap<const TensorView *> &params,
                       bool roundF32)
      : params(params), roundF32(roundF32) {}

  /// Off: f32 results stay in double (finite-difference checks need it).
  bool roundF32 = true;

  void bind(Value v, HostTensor t) { values[v] = std::move(t); }

private:
  const HostTensor &in(Value v) { return values[v]; }
  void set(Value v, HostTensor t) {
    Type elt = cast<RankedTensorType>(v.getType()).getElementType();
    if (roundF32 || !elt.isF32())
      for (double &x : t.data)
        x = roundTo(elt, x);
    values[v] = std::move(t);
  }
  static std::vector<int64_t> shapeOf(Value v) {
    auto s = cast<RankedTensorType>(v.getType()).getShape();
    return {s.begin(), s.end()};
  }

  llvm::Error run(Operation *op);
  HostTensor matmul(const HostTensor &a, const HostTensor &b, bool ta,
                    bool tb, Value result);

  llvm::DenseMap<Value, HostTensor> values;
  llvm::StringMap<const TensorView *> params;
};

HostTensor Interpreter::matmul(const HostTensor &a, const HostTensor &b,
                               bool ta, bool tb, Value result) {
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

llvm::Error Interpreter::run(Operation *op) {
  if (auto param = dyn_cast<ParamOp>(op)) {
    auto it = params.find(param.getName());
    if (it == params.end())
      return fail(op, "no weight named '" + param.getName() + "'");
    HostTensor t = fromTensorView(*it->second);
    if (t.shape != shapeOf(param))
      return fail(op, "weight '" + param.getName() + "' has another shape");
    set(param, std::move(t));
    return llvm::Error::success();
  }
  if (auto constant = dyn_cast<ConstantOp>(op)) {
    auto dense = dyn_cast<DenseElementsAttr>(constant.getValue());
    if (!dense)
      return fail(op, "only dense constants are supported");
    HostTensor t(shapeOf(constant));
    if (isa<FloatType>(dense.getElementType())) {
      auto values = dense.getValues<llvm::APFloat>();
      for (int64_t i = 0; i < t.numElements(); ++i) {
        llvm::APFloat v = dense.isSplat() ? values[0] : values[i];
        bool lost = false;
        v.convert(llvm::APFloat::IEEEdouble(),
                  llvm::APFloat::rmNearestTiesToEven, &lost);
        t.data[i] = v.convertToDouble();
      }
    } else {
      auto values = dense.getValues<llvm::APInt>();
      for (int64_t i = 0; i < t.numElements(); ++i)
        t.data[i] = (dense.isSplat() ? values[0] : values[i]).getSExtValue();
    }
    set(constant, std::move(t));
    return llvm::Error::success();
  }
  if (auto iota = dyn_cast<IotaOp>(op)) {
    HostTensor t(shapeOf(iota));
    std::vector<int64_t> strides = stridesOf(t.shape);
    int64_t dim = static_cast<int64_t>(iota.getDim());
    for (int64_t i = 0; i < t.numElements(); ++i)
      t.data[i] = (i / strides[dim]) % t.shape[dim];
    set(iota, std::move(t));
    return llvm::Error::success();
  }
  if (auto embed = dyn_cast<EmbeddingOp>(op)) {
    const HostTensor &table = in(embed.getTable());
    const HostTensor &ids = in(embed.getIndices());
    int64_t vocab = table.shape[0], d = table.shape[1];
    HostTensor t(shapeOf(embed));
    for (int64_t i = 0; i < ids.numElements(); ++i) {
      int64_t id = static_cast<int64_t>(ids.data[i]);
      if (id < 0 || id >= vocab)
        return fail(op, "token id " + llvm::Twine(id) + " is not in [0, " +
                            llvm::Twine(vocab) + ")");
      std::copy_n(table.data.begin() + id * d, d, t.data.begin() + i * d);
    }
    set(embed, std::move(t));
    return llvm::Error::success();
  }
  if (auto mm = dyn_cast<MatmulOp>(op)) {
    set(mm, matmul(in(mm.getLhs()), in(mm.getRhs()), mm.getTransposeLhs(),
                   mm.getTransposeRhs(), mm));
    return llvm::Error::success();
  }
  if (auto gated = dyn_cast<GatedGemmOp>(op)) {
    HostTensor t = matmul(in(gated.getLhs()), in(gated.getGate()), false, true, gated);
    HostTensor up = matmul(in(gated.getLhs()), in(gated.getUp()), false, true, gated);
    for (int64_t i = 0; i < t.numElements(); ++i)
      t.data[i] = activate(gated.getActivation(), t.data[i]) * up.data[i];
    set(gated, std::move(t));
    return llvm::Error::success();
  }
  if (auto gemm = dyn_cast<GemmOp>(op)) {
    HostTensor t = matmul(in(gemm.getLhs()), in(gemm.getRhs()),
                          gemm.getTransposeLhs(), gemm.getTransposeRhs(), gemm);
    int64_t n = t.shape.back();
    for (int64_t i = 0; i < t.numElements(); ++i) {
      double x = t.data[i];
      if (gemm.getBias())
        x += in(gemm.getBias()).data[i % n];
      x = activate(gemm.getActivation(), x);
      if (gemm.getResidual())
        x += in(gemm.getResidual()).data[i];
      t.data[i] = x;
    }
    set(gemm, std::move(t));
    return llvm::Error::success();
  }
  if (isa<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, PowOp>(op)) {
    std::vector<int64_t> outShape = shapeOf(op->getResult(0));
    const HostTensor &a = in(op->getOperand(0)), &b = in(op->getOperand(1));
    std::vector<int64_t> ai = broadcastIndices(a.shape, outShape);
    std::vector<int64_t> bi = broadcastIndices(b.shape, outShape);
    HostTensor t(outShape);
    for (int64_t i = 0; i < t.numElements(); ++i) {
      double x = a.data[ai[i]], y = b.data[bi[i]];
      t.data[i] = isa<AddOp>(op)   ? x + y
                  : isa<SubOp>(op) ? x - y
                  : isa<MulOp>(op) ? x * y
                  : isa<DivOp>(op) ? x / y
                  : isa<MaxOp>(op) ? std::max(x, y)
                  : isa<MinOp>(op) ? std::min(x, y)
                                   : std::pow(x, y);
    }
    set(op->getResult(0), std::move(t));
    return llvm::Error::success();
  }
  if (isa<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp,
          SigmoidOp, SiluOp, ReluOp, GeluOp, ConvertOp>(op)) {
    HostTensor t = in(op->getOperand(0));
    for (double &x : t.data) {
      if (isa<NegOp>(op)) x = -x;
      else if (isa<AbsOp>(op)) x = std::fabs(x);
      else if (isa<ExpOp>(op)) x = std::exp(x);
      else if (isa<LogOp>(op)) x = std::log(x);
      else if (isa<SqrtOp>(op)) x = std::sqrt(x);
      else if (isa<RsqrtOp>(op)) x = 1.0 / std::sqrt(x);
      else if (isa<ReciprocalOp>(op)) x = 1.0 / x;
      else if (isa<TanhOp>(op)) x = std::tanh(x);
      else if (isa<SigmoidOp>(op)) x = 1.0 / (1.0 + std::exp(-x));
      else if (isa<SiluOp>(op)) x = x / (1.0 + std::exp(-x));
      else if (isa<ReluOp>(op)) x = std::max(x, 0.0);
      else if (auto g = dyn_cast<GeluOp>(op))
        x = gelu(x, g.getApproximation() == GeluApproximation::Tanh);
    }
    set(op->getResult(0), std::move(t));
    return llvm::Error::success();
  }
  if (auto select = dyn_cast<SelectOp>(op)) {
    std::vector<int64_t> outShape = shapeOf(select);
    const HostTensor &c = in(select.getCondition());
    const HostTensor &a = in(select.getOnTrue()), &b = in(select.getOnFalse());
    std::vector<int64_t> ci = broadcastIndices(c.shape, outShape);
    std::vector<int64_t> ai = broadcastIndices(a.shape, outShape);
    std::vector<int64_t> bi = broadcastIndices(b.shape, outShape);
    HostTensor t(outShape);
    for (int64_t i = 0; i < t.numElements(); ++i)
      t.data[i] = c.data[ci[i]] != 0.0 ? a.data[ai[i]] : b.data[bi[i]];
    set(select, std::move(t));
    return llvm::Error::success();
  }
  if (auto reduce = dyn_cast<ReduceOp>(op)) {
    const HostTensor &x = in(reduce.getInput());
    std::vector<int64_t> keptShape = x.shape;
    for (int64_t axis : reduce.getAxes())
      keptShape[axis] = 1;
    HostTensor t(keptShape, reduce.getKind() == ReduceKind::Max   ? -INFINITY
                            : reduce.getKind() == ReduceKind::Min ? INFINITY
                                                                  : 0.0);
    std::vector<int64_t> xs = stridesOf(x.shape), ts = stridesOf(keptShape);
    for (int64_t i = 0; i < x.numElements(); ++i) {
      int64_t dst = 0;
      for (size_t d = 0; d < x.shape.size(); ++d)
        if (keptShape[d] != 1)
          dst += (i / xs[d]) % x.shape[d] * ts[d];
      double &acc = t.data[dst];
      double v = x.data[i];
      acc = reduce.getKind() == ReduceKind::Max   ? std::max(acc, v)
            : reduce.getKind() == ReduceKind::Min ? std::min(acc, v)
                                                  : acc + v;
    }
    if (reduce.getKind() == ReduceKind::Mean)
      for (double &v : t.data)
        v /= static_cast<double>(x.numElements() / t.numElements());
    t.shape = shapeOf(reduce);
    set(reduce, std::move(t));
    return llvm::Error::success();
  }
  if (auto softmax = dyn_cast<SoftmaxOp>(op)) {
    HostTensor t = in(softmax.getInput());
    int64_t axis = static_cast<int64_t>(softmax.getAxis());
    int64_t len = t.shape[axis], inner = stridesOf(t.shape)[axis];
    int64_t outer = t.numElements() / (len * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        double *base = t.data.data() + o * len * inner + i;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < len; ++j)
          mx = std::max(mx, base[j * inner]);
        for (int64_t j = 0; j < len; ++j)
          sum += (base[j * inner] = std::exp(base[j * inner] - mx));
        for (int64_t j = 0; j < len; ++j)
          base[j * inner] /= sum;
      }
    set(softmax, std::move(t));
    return llvm::Error::success();
  }
  if (isa<RmsNormOp, LayerNormOp>(op)) {
    HostTensor t = in(op->getOperand(0));
    const HostTensor &w = in(op->getOperand(1));
    auto rms = dyn_cast<RmsNormOp>(op);
    auto ln = dyn_cast<LayerNormOp>(op);
    double eps = rms ? rms.getEpsilon().convertToDouble()
                     : ln.getEpsilon().convertToDouble();
    int64_t d = t.shape.back();
    for (int64_t row = 0; row < t.numElements() / d; ++row) {
      double *x = t.data.data() + row * d;
      double mean = 0.0, sq = 0.0;
      for (int64_t i = 0; i < d; ++i)
        mean += x[i] / d;
      for (int64_t i = 0; i < d; ++i) {
        double c = rms ? x[i] : x[i] - mean;
        sq += c * c / d;
      }
      double inv = 1.0 / std::sqrt(sq + eps);
      for (int64_t i = 0; i < d; ++i) {
        if (rms) {
          x[i] = x[i] * inv * (rms.getUnitOffset() ? 1.0 + w.data[i] : w.data[i]);
        } else {
          x[i] = (x[i] - mean) * inv * w.data[i];
          if (ln.getBias())
            x[i] += in(ln.getBias()).data[i];
        }
      }
    }
    set(op->getResult(0), std::move(t));
    return llvm::Error::success();
  }
  if (auto rope = dyn_cast<RopeOp>(op)) {
    HostTensor t = in(rope.getInput());
    rotate(t, in(rope.getPositions()), rope.getTheta().convertToDouble(),
           rope.getStyle() == RopeStyle::Half);
    set(rope, std::move(t));
    return llvm::Error::success();
  }
  if (auto mask = dyn_cast<CausalMaskOp>(op)) {
    HostTensor t(shapeOf(mask));
    int64_t s = t.shape.back(), q = t.shape[t.shape.size() - 2];
    int64_t window = static_cast<int64_t>(mask.getWindow());
    for (int64_t i = 0; i < t.numElements(); ++i) {
      int64_t key = i % s, query = (i / s) % q + (s - q);
      t.data[i] = key <= query && (window == 0 || query - key < window);
    }
    set(mask, std::move(t));
    return llvm::Error::success();
  }
  if (auto mask = dyn_cast<PositionMaskOp>(op)) {
    const HostTensor &start = in(mask.getPositions());
    HostTensor t(shapeOf(mask));
    int64_t s = t.shape[3], q = t.shape[2];
    int64_t window = static_cast<int64_t>(mask.getWindow());
    for (int64_t i = 0; i < t.numElements(); ++i) {
      int64_t key = i % s, b = i / (q * s);
      int64_t query = static_cast<int64_t>(start.data[b]) + (i / s) % q;
      t.data[i] = key <= query && (window == 0 || query - key < window);
    }
    set(mask, std::move(t));
    return llvm::Error::success();
  }
  if (auto write = dyn_cast<CacheWriteOp>(op)) {
    HostTensor t = in(write.getCache());
    if (std::optional<std::string> bad =
            writeRows(t, in(write.getUpdate()), in(write.getPositions())))
      return fail(op, *bad);
    set(write, std::move(t));
    return llvm::Error::success();
  }
  if (auto take = dyn_cast<TakeOp>(op)) {
    const HostTensor &x = in(take.getInput());
    const HostTensor &idx = in(take.getIndices());
    HostTensor t(shapeOf(take));
    int64_t rows = x.shape[1], row = t.numElements() / x.shape[0];
    for (int64_t b = 0; b < x.shape[0]; ++b) {
      int64_t r = static_cast<int64_t>(idx.data[b]);
      if (r < 0 || r >= rows)
        return fail(op, "index " + llvm::Twine(r) + " is not in [0, " +
                            llvm::Twine(rows) + ")");
      std::copy_n(x.data.begin() + (b * rows + r) * row, row,
                  t.data.begin() + b * row);
    }
    set(take, std::move(t));
    return llvm::Error::success();
  }
  if (auto reshape = dyn_cast<ReshapeOp>(op)) {
    HostTensor t = in(reshape.getInput());
    t.shape = shapeOf(reshape);
    set(reshape, std::move(t));
    return llvm::Error::success();
  }
  if (auto transpose = dyn_cast<TransposeOp>(op)) {
    const HostTensor &x = in(transpose.getInput());
    HostTensor t(shapeOf(transpose));
    std::vector<int64_t> xs = stridesOf(x.shape), ts = stridesOf(t.shape);
    llvm::ArrayRef<int64_t> perm = transpose.getPermutation();
    for (int64_t i = 0; i < t.numElements(); ++i) {
      int64_t src = 0;
      for (size_t d = 0; d < perm.size(); ++d)
        src += (i / ts[d]) % t.shape[d] * xs[perm[d]];
      t.data[i] = x.data[src];
    }
    set(transpose, std::move(t));
    return llvm::Error::success();
  }
  if (auto slice = dyn_cast<SliceOp>(op)) {
    const HostTensor &x = in(slice.getInput());
    HostTensor t(shapeOf(slice));
    std::vector<int64_t> xs = stridesOf(x.shape), ts = stridesOf(t.shape);
    llvm::ArrayRef<int64_t> offsets = slice.getOffsets();
    for (int64_t i = 0; i < t.numElements(); ++i) {
      int64_t src = 0;
      for (size_t d = 0; d < t.shape.size(); ++d)
        src += ((i / ts[d]) % t.shape[d] + offsets[d]) * xs[d];
      t.data[i] = x.data[src];
    }
    set(slice, std::move(t));
    return llvm::Error::success();
  }
  if (auto concat = dyn_cast<ConcatOp>(op)) {
    HostTensor t(shapeOf(concat));
    int64_t axis = static_cast<int64_t>(concat.getAxis());
    int64_t inner = stridesOf(t.shape)[axis];
    int64_t outer = t.numElements() / (t.shape[axis] * inner);
    int64_t at = 0;
    for (Value v : concat.getInputs()) {
      const HostTensor &x = in(v);
      int64_t chunk = x.shape[axis] * inner;
      for (int64_t o = 0; o < outer; ++o)
        std::copy_n(x.data.begin() + o * chunk, chunk,
                    t.data.begin() + o * t.shape[axis] * inner + at);
      at += chunk;
    }
    set(concat, std::move(t));
    return llvm::Error::success();
  }
  if (auto repeat = dyn_cast<RepeatOp>(op)) {
    const HostTensor &x = in(repeat.getInput());
    HostTensor t(shapeOf(repeat));
    int64_t axis = static_cast<int64_t>(repeat.getAxis());
    int64_t times = static_cast<int64_t>(repeat.getTimes());
    std::vector<int64_t> xs = stridesOf(x.shape), ts = stridesOf(t.shape);
    for (int64_t i = 0; i < t.numElements(); ++i) {
      int64_t src = 0;
      for (size_t d = 0; d < t.shape.size(); ++d) {
        int64_t idx = (i / ts[d]) % t.shape[d];
        src += (static_cast<int64_t>(d) == axis ? idx / times : idx) * xs[d];
      }
      t.data[i] = x.data[src];
    }
    set(repeat, std::move(t));
    return llvm::Error::success();
  }
  if (auto topk = dyn_cast<TopKOp>(op)) {
    const HostTensor &x = in(topk.getInput());
    int64_t n = x.shape.back(), k = static_cast<int64_t>(topk.getK());
    HostTensor values(shapeOf(topk.getValues())),
        indices(shapeOf(topk.getIndices()));
    std::vector<int64_t> order(n);
    for (int64_t row = 0; row < x.numElements() / n; ++row) {
      const double *v = x.data.data() + row * n;
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return v[a] > v[b]; });
      for (int64_t j = 0; j < k; ++j) {
        values.data[row * k + j] = v[order[j]];
        indices.data[row * k + j] = static_cast<double>(order[j]);
      }
    }
    set(topk.getValues(), std::move(values));
    set(topk.getIndices(), std::move(indices));
    return llvm::Error::success();
  }
  if (auto oneHot = dyn_cast<OneHotOp>(op)) {
    const HostTensor &idx = in(oneHot.getIndices());
    HostTensor t(shapeOf(oneHot));
    int64_t depth = static_cast<int64_t>(oneHot.getDepth());
    for (int64_t i = 0; i < idx.numElements(); ++i) {
      int64_t c = static_cast<int64_t>(idx.data[i]);
      if (c >= 0 && c < depth)
        t.data[i * depth + c] = 1.0;
    }
    set(oneHot, std::move(t));
    return llvm::Error::success();
  }
  if (auto ce = dyn_cast<CrossEntropyOp>(op)) {
    const HostTensor &logits = in(ce.getLogits());
    const HostTensor &labels = in(ce.getLabels());
    int64_t v = logits.shape.back(), rows = labels.numElements();
    int64_t ignore = static_cast<int64_t>(ce.getIgnoreIndex());
    std::vector<double> losses(rows, 0.0);
    int64_t counted = 0;
    for (int64_t r = 0; r < rows; ++r) {
      int64_t label = static_cast<int64_t>(labels.data[r]);
      if (label == ignore)
        continue;
      if (label < 0 || label >= v)
        return fail(op, "label " + llvm::Twine(label) + " is out of range");
      const double *x = logits.data.data() + r * v;
      double mx = *std::max_element(x, x + v), sum = 0.0;
      for (int64_t j = 0; j < v; ++j)
        sum += std::exp(x[j] - mx);
      losses[r] = mx + std::log(sum) - x[label];
      ++counted;
    }
    HostTensor t(shapeOf(ce));
    if (ce.getReduction() == LossReduction::None) {
      t.data = losses;
    } else {
      double total = std::accumulate(losses.begin(), losses.end(), 0.0);
      t.data[0] = ce.getReduction() == LossReduction::Sum
                      ? total
                      : total / std::max<int64_t>(counted, 1);
    }
    set(ce, std::move(t));
    return llvm::Error::success();
  }
  if (auto ceGrad = dyn_cast<CrossEntropyGradOp>(op)) {
    const HostTensor &logits = in(ceGrad.getLogits());
    const HostTensor &labels = in(ceGrad.getLabels());
    const HostTensor &seed = in(ceGrad.getGrad());
    int64_t v = logits.shape.back(), rows = labels.numElements();
    int64_t ignore = static_cast<int64_t>(ceGrad.getIgnoreIndex());
    int64_t counted = 0;
    for (int64_t r = 0; r < rows; ++r)
      counted += static_cast<int64_t>(labels.data[r]) != ignore;
    LossReduction reduction = ceGrad.getReduction();
    HostTensor t(shapeOf(ceGrad));
    for (int64_t r = 0; r < rows; ++r) {
      int64_t label = static_cast<int64_t>(labels.data[r]);
      if (label == ignore)
        continue;
      if (label < 0 || label >= v)
        return fail(op, "label " + llvm::Twine(label) + " is out of range");
      double scale = reduction == LossReduction::None ? seed.data[r] : seed.data[0];
      if (reduction == LossReduction::Mean)
        scale /= static_cast<double>(std::max<int64_t>(counted, 1));
      const double *x = logits.data.data() + r * v;
      double mx = *std::max_element(x, x + v), sum = 0.0;
      for (int64_t j = 0; j < v; ++j)
        sum += std::exp(x[j] - mx);
      for (int64_t j = 0; j < v; ++j)
        t.data[r * v + j] = (std::exp(x[j] - mx) / sum - (j == label)) * scale;
    }
    set(ceGrad, std::move(t));
    return llvm::Error::success();
  }
  if (auto fa = dyn_cast<FlashAttentionOp>(op)) {
    Value positions = fa.getQueryPositions();
    set(fa, attend(in(fa.getQuery()), in(fa.getKey()), in(fa.getValue()),
                   positions ? &in(positions) : nullptr,
                   static_cast<int64_t>(fa.getKvGroups()), fa.getCausal(),
                   static_cast<int64_t>(fa.getWindow()),
                   fa.getScale().convertToDouble(),
                   fa.getSoftcap().convertToDouble()));
    return llvm::Error::success();
  }
  if (auto ca = dyn_cast<CachedAttentionOp>(op)) {
    // The ops it folds, each rounded to its type as when they were apart.
    HostTensor q = in(ca.getQuery()), k = in(ca.getKey());
    if (std::optional<RopeStyle> style = ca.getRopeStyle()) {
      double theta = ca.getRopeThetaAttr().getValueAsDouble();
      rotate(q, in(ca.getRopePositions()), theta, *style == RopeStyle::Half);
      rotate(k, in(ca.getRopePositions()), theta, *style == RopeStyle::Half);
      Type elt = cast<RankedTensorType>(ca.getQuery().getType()).getElementType();
      for (HostTensor *t : {&q, &k})
        for (double &x : t->data)
          x = roundTo(elt, x);
    }
    HostTensor keys = in(ca.getKeyCache()), values = in(ca.getValueCache());
    const HostTensor &start = in(ca.getPositions());
    std::optional<std::string> bad = writeRows(keys, k, start);
    if (!bad)
      bad = writeRows(values, in(ca.getValue()), start);
    if (bad)
      return fail(op, *bad);
    set(ca.getResult(),
        attend(q, keys, values, &start, static_cast<int64_t>(ca.getKvGroups()),
               ca.getCausal(), static_cast<int64_t>(ca.getWindow()),
               ca.getScale().convertToDouble(), ca.getSoftcap().convertToDouble()));
    set(ca.getNewKeyCache(), std::move(keys));
    set(ca.getNewValueCache(), std::move(values));
    return llvm::Error::success();
  }
  if (auto fusion = dyn_cast<FusionOp>(op)) {
    Block &body = fusion.getBody().front();
    Interpreter inner(params, roundF32);
    for (auto [arg, input] : llvm::zip(body.getArguments(), fusion.getInputs()))
      inner.bind(arg, in(input));
    llvm::Expected<std::vector<HostTensor>> results = inner.runBlock(body);
    if (!results)
      return results.takeError();
    for (auto [result, value] : llvm::zip(fusion.getResults(), *results))
      set(result, std::move(value));
    return llvm::Error::success();
  }
  return fail(op, "the reference interpreter does not know this op");
}

} // namespace

HostTensor fromTensorView(const TensorView &view) {
  HostTensor t(view.shape);
  for (int64_t i = 0; i < t.numElements(); ++i) {
    const uint8_t *p = view.data + i * dtypeSize(view.dtype);
    switch (view.dtype) {
    case DType::F64: {
      double v;
      std::memcpy(&v, p, 8);
      t.data[i] = v;
      break;
    }
    case DType::F32: {
      float v;
      std::memcpy(&v, p, 4);
      t.data[i] = v;
      break;
    }
    case DType::BF16: {
      uint32_t bits = static_cast<uint32_t>(p[0] | (p[1] << 8)) << 16;
      float v;
      std::memcpy(&v, &bits, 4);
      t.data[i] = v;
      break;
    }
    case DType::F16: {
      uint16_t bits = static_cast<uint16_t>(p[0] | (p[1] << 8));
      llvm::APFloat v(llvm::APFloat::IEEEhalf(), llvm::APInt(16, bits));
      t.data[i] = v.convertToFloat();
      break;
    }
    case DType::I64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      t.data[i] = static_cast<double>(v);
      break;
    }
    case DType::I32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      t.data[i] = v;
      break;
    }
    case DType::I16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      t.data[i] = v;
      break;
    }
    case DType::I8:
      t.data[i] = static_cast<int8_t>(*p);
      break;
    case DType::U8:
    case DType::Bool:
      t.data[i] = *p;
      break;
    case DType::F8E4M3:
    case DType::F8E5M2: {
      llvm::APFloat v(view.dtype == DType::F8E4M3
                          ? llvm::APFloat::Float8E4M3FN()
                          : llvm::APFloat::Float8E5M2(),
                      llvm::APInt(8, *p));
      t.data[i] = v.convertToFloat();
      break;
    }
    }
  }
  return t;
}

llvm::Expected<std::vector<HostTensor>>
evaluate(func::FuncOp func, llvm::ArrayRef<HostTensor> arguments,
         const SafetensorsFile &weights,
         std::function<std::string(llvm::StringRef)> paramNameOf,
         bool roundF32) {
  Block &entry = func.getBody().front();
  if (arguments.size() != entry.getNumArguments())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "expected %u arguments, got %zu",
                                   entry.getNumArguments(), arguments.size());
  Interpreter interpreter(weights, paramNameOf);
  interpreter.roundF32 = roundF32;
  for (auto [i, pair] : llvm::enumerate(llvm::zip(entry.getArguments(), arguments))) {
    auto [arg, value] = pair;
    auto type = cast<RankedTensorType>(arg.getType());
    if (llvm::ArrayRef<int64_t>(value.shape) != type.getShape())
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "argument #%zu has shape %s, the function expects %s", i,
          formatShape(value.shape).c_str(),
          formatShape(type.getShape()).c_str());
    interpreter.bind(arg, value);
  }
  return interpreter.runBlock(entry);
}

} // namespace gai::reference
