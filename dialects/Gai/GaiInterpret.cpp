// The interpretation (InterpretOpInterface) of the gai ops that compute
// values, elementwise math, reductions, norms, shapes, routing and losses:
// one straightforward loop nest each, in double precision.
#include "dialects/Gai/GaiInterpretSupport.h"
#include "dialects/Gai/GaiOps.h"

#include "llvm/ADT/APFloat.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace mlir;
using namespace mlir::gai;
using namespace mlir::gai::host;

HostTensor::HostTensor(std::vector<int64_t> s, double fill)
    : shape(std::move(s)) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  data.assign(n, fill);
}

llvm::Error mlir::gai::interpretError(Operation *op, const Twine &message) {
  std::string name = op->getName().getStringRef().str();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (name + ": " + message).str());
}

double mlir::gai::roundTo(Type type, double v) {
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

std::vector<int64_t> host::stridesOf(ArrayRef<int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return strides;
}

std::vector<int64_t> host::broadcastIndices(ArrayRef<int64_t> in,
                                            ArrayRef<int64_t> out) {
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

double host::gelu(double x, bool tanhApprox) {
  if (tanhApprox)
    return 0.5 * x *
           (1.0 +
            std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

namespace {

/// y = f(x) for each element of operand 0.
template <typename F>
llvm::Error mapElements(Operation *op, InterpretState &state, F f) {
  HostTensor t = state.in(op->getOperand(0));
  for (double &x : t.data)
    x = f(x);
  state.set(op->getResult(0), std::move(t));
  return llvm::Error::success();
}

/// z = f(x, y) over the broadcast of operands 0 and 1.
template <typename F>
llvm::Error combineElements(Operation *op, InterpretState &state, F f) {
  std::vector<int64_t> outShape = shapeOf(op->getResult(0));
  const HostTensor &a = state.in(op->getOperand(0)),
                   &b = state.in(op->getOperand(1));
  std::vector<int64_t> ai = broadcastIndices(a.shape, outShape);
  std::vector<int64_t> bi = broadcastIndices(b.shape, outShape);
  HostTensor t(outShape);
  for (int64_t i = 0; i < t.numElements(); ++i)
    t.data[i] = f(a.data[ai[i]], b.data[bi[i]]);
  state.set(op->getResult(0), std::move(t));
  return llvm::Error::success();
}

/// Each result element read from operand 0 at the flat index that sums
/// `part(d, i, strides)` over the result's dimensions d, i being the
/// element's index along d and `strides` the operand's.
template <typename Part>
llvm::Error gatherElements(Operation *op, InterpretState &state, Part part) {
  const HostTensor &x = state.in(op->getOperand(0));
  HostTensor t(shapeOf(op->getResult(0)));
  std::vector<int64_t> xs = stridesOf(x.shape), ts = stridesOf(t.shape);
  for (int64_t i = 0; i < t.numElements(); ++i) {
    int64_t src = 0;
    for (size_t d = 0; d < t.shape.size(); ++d)
      src += part(d, (i / ts[d]) % t.shape[d], xs);
    t.data[i] = x.data[src];
  }
  state.set(op->getResult(0), std::move(t));
  return llvm::Error::success();
}

/// An error for the first label, other than `ignore`, outside [0, v).
llvm::Error checkLabels(Operation *op, const HostTensor &labels, int64_t ignore,
                        int64_t v) {
  for (double x : labels.data) {
    auto label = static_cast<int64_t>(x);
    if (label != ignore && (label < 0 || label >= v))
      return interpretError(op, "label " + Twine(label) + " is out of range");
  }
  return llvm::Error::success();
}

/// The max of a row of logits and the sum of exp(x - max): its softmax's
/// normaliser.
std::pair<double, double> softmaxStats(const double *x, int64_t v) {
  double mx = *std::max_element(x, x + v), sum = 0.0;
  for (int64_t j = 0; j < v; ++j)
    sum += std::exp(x[j] - mx);
  return {mx, sum};
}

/// RMSNorm (`rms`) or LayerNorm of each last-axis row of operand 0, scaled
/// by operand 1.
llvm::Error normalizeRows(Operation *op, InterpretState &state, double eps,
                          bool rms, bool unitOffset, Value bias) {
  HostTensor t = state.in(op->getOperand(0));
  const HostTensor &w = state.in(op->getOperand(1));
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
        x[i] = x[i] * inv * (unitOffset ? 1.0 + w.data[i] : w.data[i]);
      } else {
        x[i] = (x[i] - mean) * inv * w.data[i];
        if (bias)
          x[i] += state.in(bias).data[i];
      }
    }
  }
  state.set(op->getResult(0), std::move(t));
  return llvm::Error::success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

llvm::Error ParamOp::interpret(InterpretState &state) {
  std::optional<HostTensor> t = state.weight(getName());
  if (!t)
    return interpretError(*this, "no weight named '" + getName() + "'");
  if (t->shape != shapeOf(getResult()))
    return interpretError(*this,
                          "weight '" + getName() + "' has another shape");
  state.set(getResult(), std::move(*t));
  return llvm::Error::success();
}

// Values are the stored integers (int4: 0..15) or, fp8, the e4m3 numbers.
llvm::Error DequantizeOp::interpret(InterpretState &state) {
  const HostTensor &values = state.in(getValues()), &scale = state.in(getScale());
  const int64_t n = values.shape[0], k = values.shape[1];
  const int64_t group = getFormat() == QuantFormat::Int4 ? static_cast<int64_t>(*getGroup()) : k;
  const bool perTensor = scale.numElements() == 1;
  HostTensor out(values.shape);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      int64_t g = r * (k / group) + c / group;
      double s = perTensor ? scale.data[0] : getFormat() == QuantFormat::Int4 ? scale.data[g]
                                                                              : scale.data[r];
      double z = getZero() ? state.in(getZero()).data[g] : 0.0;
      out.data[r * k + c] = (values.data[r * k + c] - z) * s; // set() rounds
    }
  state.set(getResult(), std::move(out));
  return llvm::Error::success();
}

// Meta bytes come as the signed values of their i8s.
llvm::Error DecompressOp::interpret(InterpretState &state) {
  const HostTensor &values = state.in(getValues()), &meta = state.in(getMeta());
  const int64_t n = values.shape[0], k = 2 * values.shape[1];
  HostTensor out({n, k});
  for (int64_t r = 0; r < n; ++r)
    for (int64_t g = 0; g < k / 4; ++g) {
      auto byte = static_cast<uint8_t>(static_cast<int>(meta.data[r * (k / 8) + g / 2]));
      int nibble = g % 2 ? byte >> 4 : byte & 15;
      double *group = out.data.data() + r * k + 4 * g;
      group[nibble & 3] = values.data[r * (k / 2) + 2 * g];
      group[nibble >> 2] = values.data[r * (k / 2) + 2 * g + 1];
    }
  state.set(getResult(), std::move(out));
  return llvm::Error::success();
}

llvm::Error ConstantOp::interpret(InterpretState &state) {
  auto dense = dyn_cast<DenseElementsAttr>(getValue());
  if (!dense)
    return interpretError(*this, "only dense constants are supported");
  HostTensor t(shapeOf(getResult()));
  if (isa<FloatType>(dense.getElementType())) {
    auto values = dense.getValues<llvm::APFloat>();
    for (int64_t i = 0; i < t.numElements(); ++i) {
      llvm::APFloat v = dense.isSplat() ? values[0] : values[i];
      bool lost = false;
      v.convert(llvm::APFloat::IEEEdouble(), llvm::APFloat::rmNearestTiesToEven,
                &lost);
      t.data[i] = v.convertToDouble();
    }
  } else {
    auto values = dense.getValues<llvm::APInt>();
    for (int64_t i = 0; i < t.numElements(); ++i)
      t.data[i] = (dense.isSplat() ? values[0] : values[i]).getSExtValue();
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error IotaOp::interpret(InterpretState &state) {
  HostTensor t(shapeOf(getResult()));
  std::vector<int64_t> strides = stridesOf(t.shape);
  int64_t dim = static_cast<int64_t>(getDim());
  for (int64_t i = 0; i < t.numElements(); ++i)
    t.data[i] = (i / strides[dim]) % t.shape[dim];
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

llvm::Error AddOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return x + y; });
}
llvm::Error SubOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return x - y; });
}
llvm::Error MulOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return x * y; });
}
llvm::Error DivOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return x / y; });
}
llvm::Error MaxOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return std::max(x, y); });
}
llvm::Error MinOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return std::min(x, y); });
}
llvm::Error PowOp::interpret(InterpretState &state) {
  return combineElements(*this, state,
                         [](double x, double y) { return std::pow(x, y); });
}

llvm::Error NegOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return -x; });
}
llvm::Error AbsOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return std::fabs(x); });
}
llvm::Error ExpOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return std::exp(x); });
}
llvm::Error LogOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return std::log(x); });
}
llvm::Error SqrtOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return std::sqrt(x); });
}
llvm::Error RsqrtOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return 1.0 / std::sqrt(x); });
}
llvm::Error ReciprocalOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return 1.0 / x; });
}
llvm::Error TanhOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return std::tanh(x); });
}
llvm::Error SigmoidOp::interpret(InterpretState &state) {
  return mapElements(*this, state,
                     [](double x) { return 1.0 / (1.0 + std::exp(-x)); });
}
llvm::Error SiluOp::interpret(InterpretState &state) {
  return mapElements(*this, state,
                     [](double x) { return x / (1.0 + std::exp(-x)); });
}
llvm::Error ReluOp::interpret(InterpretState &state) {
  return mapElements(*this, state, [](double x) { return std::max(x, 0.0); });
}
llvm::Error GeluOp::interpret(InterpretState &state) {
  bool tanhApprox = getApproximation() == GeluApproximation::Tanh;
  return mapElements(*this, state,
                     [&](double x) { return gelu(x, tanhApprox); });
}
llvm::Error ConvertOp::interpret(InterpretState &state) {
  // Setting the result rounds to its element type.
  return mapElements(*this, state, [](double x) { return x; });
}

llvm::Error SelectOp::interpret(InterpretState &state) {
  std::vector<int64_t> outShape = shapeOf(getResult());
  const HostTensor &c = state.in(getCondition());
  const HostTensor &a = state.in(getOnTrue()), &b = state.in(getOnFalse());
  std::vector<int64_t> ci = broadcastIndices(c.shape, outShape);
  std::vector<int64_t> ai = broadcastIndices(a.shape, outShape);
  std::vector<int64_t> bi = broadcastIndices(b.shape, outShape);
  HostTensor t(outShape);
  for (int64_t i = 0; i < t.numElements(); ++i)
    t.data[i] = c.data[ci[i]] != 0.0 ? a.data[ai[i]] : b.data[bi[i]];
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Reductions and normalisation
//===----------------------------------------------------------------------===//

llvm::Error ReduceOp::interpret(InterpretState &state) {
  const HostTensor &x = state.in(getInput());
  std::vector<int64_t> keptShape = x.shape;
  for (int64_t axis : getAxes())
    keptShape[axis] = 1;
  ReduceKind kind = getKind();
  HostTensor t(keptShape, kind == ReduceKind::Max   ? -INFINITY
                          : kind == ReduceKind::Min ? INFINITY
                                                    : 0.0);
  std::vector<int64_t> xs = stridesOf(x.shape), ts = stridesOf(keptShape);
  for (int64_t i = 0; i < x.numElements(); ++i) {
    int64_t dst = 0;
    for (size_t d = 0; d < x.shape.size(); ++d)
      if (keptShape[d] != 1)
        dst += (i / xs[d]) % x.shape[d] * ts[d];
    double &acc = t.data[dst];
    double v = x.data[i];
    acc = kind == ReduceKind::Max   ? std::max(acc, v)
          : kind == ReduceKind::Min ? std::min(acc, v)
                                    : acc + v;
  }
  if (kind == ReduceKind::Mean)
    for (double &v : t.data)
      v /= static_cast<double>(x.numElements() / t.numElements());
  t.shape = shapeOf(getResult());
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error SoftmaxOp::interpret(InterpretState &state) {
  HostTensor t = state.in(getInput());
  int64_t axis = static_cast<int64_t>(getAxis());
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
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error RmsNormOp::interpret(InterpretState &state) {
  return normalizeRows(*this, state, getEpsilon().convertToDouble(),
                       /*rms=*/true, getUnitOffset(), Value());
}

llvm::Error LayerNormOp::interpret(InterpretState &state) {
  return normalizeRows(*this, state, getEpsilon().convertToDouble(),
                       /*rms=*/false,
                       /*unitOffset=*/false, getBias());
}

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

llvm::Error ReshapeOp::interpret(InterpretState &state) {
  HostTensor t = state.in(getInput());
  t.shape = shapeOf(getResult());
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error TransposeOp::interpret(InterpretState &state) {
  ArrayRef<int64_t> perm = getPermutation();
  return gatherElements(*this, state,
                        [&](size_t d, int64_t i, ArrayRef<int64_t> xs) {
                          return i * xs[perm[d]];
                        });
}

llvm::Error SliceOp::interpret(InterpretState &state) {
  ArrayRef<int64_t> offsets = getOffsets();
  return gatherElements(*this, state,
                        [&](size_t d, int64_t i, ArrayRef<int64_t> xs) {
                          return (i + offsets[d]) * xs[d];
                        });
}

llvm::Error ConcatOp::interpret(InterpretState &state) {
  HostTensor t(shapeOf(getResult()));
  int64_t axis = static_cast<int64_t>(getAxis());
  int64_t inner = stridesOf(t.shape)[axis];
  int64_t outer = t.numElements() / (t.shape[axis] * inner);
  int64_t at = 0;
  for (Value v : getInputs()) {
    const HostTensor &x = state.in(v);
    int64_t chunk = x.shape[axis] * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(x.data.begin() + o * chunk, chunk,
                  t.data.begin() + o * t.shape[axis] * inner + at);
    at += chunk;
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error RepeatOp::interpret(InterpretState &state) {
  auto axis = static_cast<size_t>(getAxis());
  auto times = static_cast<int64_t>(getTimes());
  return gatherElements(*this, state,
                        [&](size_t d, int64_t i, ArrayRef<int64_t> xs) {
                          return (d == axis ? i / times : i) * xs[d];
                        });
}

//===----------------------------------------------------------------------===//
// Mixture of experts and loss
//===----------------------------------------------------------------------===//

llvm::Error TopKOp::interpret(InterpretState &state) {
  const HostTensor &x = state.in(getInput());
  int64_t n = x.shape.back(), k = static_cast<int64_t>(getK());
  HostTensor values(shapeOf(getValues())), indices(shapeOf(getIndices()));
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
  state.set(getValues(), std::move(values));
  state.set(getIndices(), std::move(indices));
  return llvm::Error::success();
}

llvm::Error OneHotOp::interpret(InterpretState &state) {
  const HostTensor &idx = state.in(getIndices());
  HostTensor t(shapeOf(getResult()));
  int64_t depth = static_cast<int64_t>(getDepth());
  for (int64_t i = 0; i < idx.numElements(); ++i) {
    int64_t c = static_cast<int64_t>(idx.data[i]);
    if (c >= 0 && c < depth)
      t.data[i * depth + c] = 1.0;
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error CrossEntropyOp::interpret(InterpretState &state) {
  const HostTensor &logits = state.in(getLogits());
  const HostTensor &labels = state.in(getLabels());
  int64_t v = logits.shape.back(), rows = labels.numElements();
  int64_t ignore = static_cast<int64_t>(getIgnoreIndex());
  if (llvm::Error e = checkLabels(*this, labels, ignore, v))
    return e;
  std::vector<double> losses(rows, 0.0);
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t label = static_cast<int64_t>(labels.data[r]);
    if (label == ignore)
      continue;
    const double *x = logits.data.data() + r * v;
    auto [mx, sum] = softmaxStats(x, v);
    losses[r] = mx + std::log(sum) - x[label];
    ++counted;
  }
  HostTensor t(shapeOf(getResult()));
  if (getReduction() == LossReduction::None) {
    t.data = losses;
  } else {
    double total = std::accumulate(losses.begin(), losses.end(), 0.0);
    t.data[0] = getReduction() == LossReduction::Sum
                    ? total
                    : total / std::max<int64_t>(counted, 1);
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

llvm::Error CrossEntropyGradOp::interpret(InterpretState &state) {
  const HostTensor &logits = state.in(getLogits());
  const HostTensor &labels = state.in(getLabels());
  const HostTensor &seed = state.in(getGrad());
  int64_t v = logits.shape.back(), rows = labels.numElements();
  int64_t ignore = static_cast<int64_t>(getIgnoreIndex());
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r)
    counted += static_cast<int64_t>(labels.data[r]) != ignore;
  if (llvm::Error e = checkLabels(*this, labels, ignore, v))
    return e;
  LossReduction reduction = getReduction();
  HostTensor t(shapeOf(getResult()));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t label = static_cast<int64_t>(labels.data[r]);
    if (label == ignore)
      continue;
    double scale =
        reduction == LossReduction::None ? seed.data[r] : seed.data[0];
    if (reduction == LossReduction::Mean)
      scale /= static_cast<double>(std::max<int64_t>(counted, 1));
    const double *x = logits.data.data() + r * v;
    auto [mx, sum] = softmaxStats(x, v);
    for (int64_t j = 0; j < v; ++j)
      t.data[r * v + j] = (std::exp(x[j] - mx) / sum - (j == label)) * scale;
  }
  state.set(getResult(), std::move(t));
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// Fusion regions
//===----------------------------------------------------------------------===//

llvm::Error FusionOp::interpret(InterpretState &state) {
  std::vector<HostTensor> inputs;
  for (Value input : getInputs())
    inputs.push_back(state.in(input));
  llvm::Expected<std::vector<HostTensor>> results =
      state.run(getBody().front(), inputs);
  if (!results)
    return results.takeError();
  for (auto [i, pair] : llvm::enumerate(llvm::zip(getResults(), *results))) {
    auto &[result, value] = pair;
    if (!isColumnPartial(i)) {
      state.set(result, std::move(value));
      continue;
    }
    // Each result row sums partial_rows consecutive rows of the value.
    auto shape = cast<RankedTensorType>(result.getType()).getShape();
    int64_t columns = shape[1], group = static_cast<int64_t>(*getPartialRows());
    HostTensor sums({shape[0], columns});
    for (int64_t row = 0; row < shape[0] * group; ++row)
      for (int64_t c = 0; c < columns; ++c)
        sums.data[(row / group) * columns + c] += value.data[row * columns + c];
    state.set(result, std::move(sums));
  }
  return llvm::Error::success();
}
