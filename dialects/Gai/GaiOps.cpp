// Shape rules, verifiers and folders of the gai ops, and which rows the row
// ops read.
#include "dialects/Gai/GaiOps.h"

#include "mlir/Dialect/Traits.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gai;

#include "dialects/Gai/GaiEnums.cpp.inc"

std::string mlir::gai::formatShape(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << '[';
  llvm::interleaveComma(shape, os);
  os << ']';
  return s;
}

namespace {

std::string typeStr(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << t;
  return s;
}

LogicalResult opError(std::optional<Location> loc, StringRef opName,
                      const Twine &message) {
  return emitOptionalError(loc, "'", opName, "' op ", message.str());
}

RankedTensorType tensorType(Value v) {
  return v ? dyn_cast<RankedTensorType>(v.getType()) : RankedTensorType();
}

/// Checks that every value of `axes` names a distinct dimension of a
/// rank-`rank` tensor.
LogicalResult checkAxes(std::optional<Location> loc, StringRef opName,
                        ArrayRef<int64_t> axes, int64_t rank,
                        StringRef attrName) {
  llvm::SmallSet<int64_t, 4> seen;
  for (int64_t axis : axes) {
    if (axis < 0 || axis >= rank)
      return opError(loc, opName,
                     Twine(attrName) + " value " + Twine(axis) +
                         " is out of range: expected 0 <= " + attrName +
                         " < " + Twine(rank) + " (the input's rank)");
    if (!seen.insert(axis).second)
      return opError(loc, opName,
                     Twine(attrName) + " names dimension " + Twine(axis) +
                         " twice");
  }
  return success();
}

} // namespace

LogicalResult mlir::gai::inferBroadcastType(std::optional<Location> loc,
                                            StringRef opName, Value lhs,
                                            Value rhs,
                                            SmallVectorImpl<Type> &types) {
  RankedTensorType l = tensorType(lhs), r = tensorType(rhs);
  if (!l || !r)
    return opError(loc, opName, "expects ranked tensor operands");
  if (l.getElementType() != r.getElementType())
    return opError(loc, opName,
                   "expects operands of one element type, got lhs " +
                       typeStr(l.getElementType()) + " and rhs " +
                       typeStr(r.getElementType()));
  SmallVector<int64_t> shape;
  if (!OpTrait::util::getBroadcastedShape(l.getShape(), r.getShape(), shape))
    return opError(loc, opName,
                   "operands of shapes " + formatShape(l.getShape()) + " and " +
                       formatShape(r.getShape()) +
                       " do not broadcast: aligned from the last dimension, "
                       "each pair of sizes must be equal or contain a 1");
  types.push_back(RankedTensorType::get(shape, l.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Values
//===----------------------------------------------------------------------===//

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("expects a non-empty parameter name");
  return success();
}

LogicalResult ConstantOp::inferReturnTypes(MLIRContext *,
                                           std::optional<Location> loc,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &types) {
  auto type = dyn_cast<RankedTensorType>(adaptor.getValue().getType());
  if (!type)
    return opError(loc, getOperationName(), "expects a ranked tensor value");
  types.push_back(type);
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult DequantizeOp::verify() {
  auto values = cast<RankedTensorType>(getValues().getType());
  auto scale = cast<RankedTensorType>(getScale().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  if (values.getRank() != 2)
    return emitOpError("values: expects a weight [n, k], got ") << values;
  if (result.getShape() != values.getShape())
    return emitOpError("result: expects the values' shape ")
           << values << ", got " << result;
  const int64_t n = values.getDimSize(0), k = values.getDimSize(1);
  Type element = values.getElementType();
  const QuantFormat format = getFormat();
  auto named = [](QuantFormat f) { return stringifyQuantFormat(f); };
  bool elementOk = format == QuantFormat::Int8   ? element.isInteger(8)
                   : format == QuantFormat::Int4 ? element.isInteger(4)
                                                 : isa<Float8E4M3FNType>(element);
  if (!elementOk)
    return emitOpError("values: ") << named(format) << " expects "
           << (format == QuantFormat::Int8   ? "i8"
               : format == QuantFormat::Int4 ? "i4"
                                             : "f8E4M3FN")
           << " elements, got " << element;
  if (!scale.getElementType().isF32())
    return emitOpError("scale: expects f32 scales, got ") << scale;
  if (format != QuantFormat::Int4 && (getGroup() || getZero()))
    return emitOpError(getGroup() ? "group" : "zero")
           << ": only int4 weights take a group and zero points";
  if (format == QuantFormat::Int8 && scale.getShape() != ArrayRef<int64_t>{n})
    return emitOpError("scale: int8 expects one scale a row, tensor<")
           << n << "xf32>, got " << scale;
  if (format == QuantFormat::Fp8E4M3 && scale.getShape() != ArrayRef<int64_t>{1} &&
      scale.getShape() != ArrayRef<int64_t>{n})
    return emitOpError("scale: fp8_e4m3 expects one scale, tensor<1xf32>, or one a row, "
                       "tensor<")
           << n << "xf32>, got " << scale;
  if (format != QuantFormat::Int4)
    return success();
  if (!getGroup() || *getGroup() <= 0 || k % static_cast<int64_t>(*getGroup()) != 0)
    return emitOpError("group: int4 expects a group that divides k = ") << k;
  const int64_t groups = k / static_cast<int64_t>(*getGroup());
  if (scale.getShape() != ArrayRef<int64_t>{n, groups})
    return emitOpError("scale: int4 expects a scale a group, tensor<")
           << n << "x" << groups << "xf32>, got " << scale;
  if (!getZero())
    return emitOpError("zero: int4 expects zero points");
  auto zero = cast<RankedTensorType>(getZero().getType());
  if (!zero.getElementType().isInteger(8) || zero.getShape() != ArrayRef<int64_t>{n, groups})
    return emitOpError("zero: int4 expects a zero point a group, tensor<")
           << n << "x" << groups << "xi8>, got " << zero;
  return success();
}

LogicalResult DecompressOp::verify() {
  auto values = cast<RankedTensorType>(getValues().getType());
  auto meta = cast<RankedTensorType>(getMeta().getType());
  auto result = cast<RankedTensorType>(getResult().getType());
  if (result.getRank() != 2 || result.getDimSize(1) % 8 != 0)
    return emitOpError("result: expects a weight [n, k] with k a multiple of 8, got ")
           << result;
  const int64_t n = result.getDimSize(0), k = result.getDimSize(1);
  auto half = RankedTensorType::get({n, k / 2}, result.getElementType());
  if (values != half) {
    std::string expected; // unquoted, as the other shapes here
    llvm::raw_string_ostream(expected) << half;
    return emitOpError("values: expects the kept half, ") << expected << ", got " << values;
  }
  if (meta.getShape() != ArrayRef<int64_t>{n, k / 8} || !meta.getElementType().isInteger(8))
    return emitOpError("meta: expects two positions a nibble, tensor<")
           << n << "x" << k / 8 << "xi8>, got " << meta;
  return success();
}

LogicalResult IotaOp::verify() {
  // I64Attr getters return uint64_t; read them signed.
  int64_t rank = getType().getRank(), dim = static_cast<int64_t>(getDim());
  if (dim < 0 || dim >= rank)
    return emitOpError("expects 0 <= dim < ")
           << rank << " (the result's rank), got dim = " << dim;
  return success();
}

//===----------------------------------------------------------------------===//
// Embedding and matmul
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  RankedTensorType table = tensorType(adaptor.getTable());
  RankedTensorType ids = tensorType(adaptor.getIndices());
  if (!table || !ids)
    return opError(loc, getOperationName(), "expects ranked tensor operands");
  if (table.getRank() != 2)
    return opError(loc, getOperationName(),
                   "expects operand #0 (table) of shape [vocab, dim], got " +
                       formatShape(table.getShape()));
  if (adaptor.getVocabShards() < 1)
    return opError(loc, getOperationName(),
                   "expects vocab_shards >= 1, got " + std::to_string(adaptor.getVocabShards()));
  SmallVector<int64_t> shape(ids.getShape());
  shape.push_back(table.getDimSize(1));
  types.push_back(RankedTensorType::get(shape, table.getElementType()));
  return success();
}

/// The shape rule shared by gai.matmul and gai.gemm.
static LogicalResult inferMatmulType(std::optional<Location> loc,
                                     StringRef name, Value lhs, Value rhs,
                                     bool tl, bool tr,
                                     SmallVectorImpl<Type> &types) {
  RankedTensorType l = tensorType(lhs);
  RankedTensorType r = tensorType(rhs);
  if (!l || !r)
    return opError(loc, name, "expects ranked tensor operands");
  if (l.getRank() < 2)
    return opError(loc, name,
                   "expects operand #0 (lhs) of rank >= 2 ([..., M, K]), got " +
                       formatShape(l.getShape()));
  if (r.getRank() < 2)
    return opError(loc, name,
                   "expects operand #1 (rhs) of rank >= 2 ([..., K, N]), got " +
                       formatShape(r.getShape()));
  if (l.getElementType() != r.getElementType())
    return opError(loc, name,
                   "expects operands of one element type, got lhs " +
                       typeStr(l.getElementType()) + " and rhs " +
                       typeStr(r.getElementType()));
  ArrayRef<int64_t> ls = l.getShape(), rs = r.getShape();
  int64_t m = tl ? ls.back() : ls[ls.size() - 2];
  int64_t lk = tl ? ls[ls.size() - 2] : ls.back();
  int64_t rk = tr ? rs.back() : rs[rs.size() - 2];
  int64_t n = tr ? rs[rs.size() - 2] : rs.back();
  if (lk != rk)
    return opError(loc, name,
                   "contraction sizes differ: lhs " + formatShape(ls) +
                       (tl ? " (transposed)" : "") + " has K = " + Twine(lk) +
                       " but rhs " + formatShape(rs) +
                       (tr ? " (transposed)" : "") + " has K = " + Twine(rk));
  SmallVector<int64_t> batch;
  if (!OpTrait::util::getBroadcastedShape(ls.drop_back(2), rs.drop_back(2),
                                          batch))
    return opError(loc, name,
                   "batch dimensions " + formatShape(ls.drop_back(2)) + " and " +
                       formatShape(rs.drop_back(2)) + " do not broadcast");
  batch.push_back(m);
  batch.push_back(n);
  types.push_back(RankedTensorType::get(batch, l.getElementType()));
  return success();
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  return inferMatmulType(loc, getOperationName(), adaptor.getLhs(),
                         adaptor.getRhs(), adaptor.getTransposeLhs(),
                         adaptor.getTransposeRhs(), types);
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

LogicalResult ConvertOp::verify() {
  if (getInput().getType().getShape() != getType().getShape())
    return emitOpError("expects the result shape ")
           << formatShape(getInput().getType().getShape())
           << " of the input, got " << formatShape(getType().getShape());
  return success();
}

LogicalResult SelectOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  SmallVector<Type, 1> valueType;
  if (failed(inferBroadcastType(loc, name, adaptor.getOnTrue(),
                                adaptor.getOnFalse(), valueType)))
    return failure();
  auto values = cast<RankedTensorType>(valueType.front());
  RankedTensorType cond = tensorType(adaptor.getCondition());
  if (!cond)
    return opError(loc, name, "expects a ranked condition");
  SmallVector<int64_t> shape;
  if (!OpTrait::util::getBroadcastedShape(cond.getShape(), values.getShape(),
                                          shape))
    return opError(loc, name,
                   "condition of shape " + formatShape(cond.getShape()) +
                       " does not broadcast with values of shape " +
                       formatShape(values.getShape()));
  types.push_back(RankedTensorType::get(shape, values.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions and normalisation
//===----------------------------------------------------------------------===//

LogicalResult ReduceOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in)
    return opError(loc, name, "expects a ranked input");
  ArrayRef<int64_t> axes = adaptor.getAxes();
  if (axes.empty())
    return opError(loc, name, "expects at least one axis");
  if (failed(checkAxes(loc, name, axes, in.getRank(), "axes")))
    return failure();
  SmallVector<int64_t> shape;
  for (auto [dim, size] : llvm::enumerate(in.getShape())) {
    if (!llvm::is_contained(axes, static_cast<int64_t>(dim)))
      shape.push_back(size);
    else if (adaptor.getKeepDims())
      shape.push_back(1);
  }
  types.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

LogicalResult SoftmaxOp::verify() {
  return checkAxes(getLoc(), getOperationName(),
                   {static_cast<int64_t>(getAxis())},
                   getType().getRank(), "axis");
}

bool ReduceOp::readsLastAxisRows() {
  return getAxes().size() == 1 &&
         getAxes()[0] == getInput().getType().getRank() - 1;
}

bool SoftmaxOp::readsLastAxisRows() {
  return static_cast<int64_t>(getAxis()) == getInput().getType().getRank() - 1;
}

/// Checks a per-feature vector (norm weight or bias) against the input.
static LogicalResult checkFeatureVector(std::optional<Location> loc,
                                        StringRef opName, StringRef operand,
                                        RankedTensorType in, Value vector) {
  RankedTensorType v = tensorType(vector);
  if (!v || in.getRank() == 0)
    return opError(loc, opName, "expects ranked operands");
  int64_t features = in.getShape().back();
  if (v.getRank() != 1 || v.getDimSize(0) != features)
    return opError(loc, opName,
                   "expects " + operand + " of shape [" + Twine(features) +
                       "] (the input's last dimension), got " +
                       formatShape(v.getShape()));
  if (v.getElementType() != in.getElementType())
    return opError(loc, opName,
                   "expects " + operand + " of element type " +
                       typeStr(in.getElementType()) + ", got " +
                       typeStr(v.getElementType()));
  return success();
}

LogicalResult RmsNormOp::inferReturnTypes(MLIRContext *,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &types) {
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in || failed(checkFeatureVector(loc, getOperationName(),
                                       "operand #1 (weight)", in,
                                       adaptor.getWeight())))
    return failure();
  types.push_back(in);
  return success();
}

LogicalResult LayerNormOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in || failed(checkFeatureVector(loc, getOperationName(),
                                       "operand #1 (weight)", in,
                                       adaptor.getWeight())))
    return failure();
  if (adaptor.getBias() &&
      failed(checkFeatureVector(loc, getOperationName(), "operand #2 (bias)",
                                in, adaptor.getBias())))
    return failure();
  types.push_back(in);
  return success();
}

//===----------------------------------------------------------------------===//
// Positions and masks
//===----------------------------------------------------------------------===//

LogicalResult RopeOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  RankedTensorType pos = tensorType(adaptor.getPositions());
  if (!in || !pos)
    return opError(loc, name, "expects ranked operands");
  const bool tokenMajor = static_cast<bool>(adaptor.getTokenMajor());
  if (in.getRank() != 4)
    return opError(loc, name,
                   Twine("expects operand #0 (input) of shape ") +
                       (tokenMajor ? "[batch, seq, heads, head_dim]"
                                   : "[batch, heads, seq, head_dim]") +
                       ", got " + formatShape(in.getShape()));
  if (in.getDimSize(3) % 2 != 0)
    return opError(loc, name,
                   "expects an even head_dim, got " + Twine(in.getDimSize(3)));
  int64_t batch = in.getDimSize(0), seq = in.getDimSize(tokenMajor ? 1 : 2);
  if (pos.getRank() != 2 || pos.getDimSize(1) != seq ||
      (pos.getDimSize(0) != batch && pos.getDimSize(0) != 1))
    return opError(loc, name,
                   "expects operand #1 (positions) of shape [" + Twine(batch) +
                       " or 1, " + Twine(seq) + "], got " +
                       formatShape(pos.getShape()));
  if (adaptor.getTheta().convertToDouble() <= 0.0)
    return opError(loc, name, "expects theta > 0");
  if (std::optional<ArrayRef<double>> s = adaptor.getLlama3Scaling();
      s && (s->size() != 4 || (*s)[0] < 1.0 || (*s)[1] <= 0.0 || (*s)[2] <= (*s)[1] ||
            (*s)[3] <= 0.0))
    return opError(loc, name,
                   "expects llama3_scaling = [factor >= 1, low_freq_factor > 0, "
                   "high_freq_factor > low_freq_factor, original context > 0]");
  const int64_t rotated = adaptor.getRotaryDim().value_or(in.getDimSize(3));
  if (rotated < 2 || rotated % 2 || rotated > in.getDimSize(3))
    return opError(loc, name,
                   "expects an even rotary_dim in [2, head_dim (" + Twine(in.getDimSize(3)) +
                       ")], got " + Twine(rotated));
  const int64_t pairs = rotated / 2;
  std::optional<ArrayRef<float>> table = adaptor.getFrequencies();
  if (table && (static_cast<int64_t>(table->size()) != pairs ||
                llvm::any_of(*table, [](float f) { return !(f > 0.0f) || std::isinf(f); })))
    return opError(loc, name,
                   Twine("expects frequencies of rotary_dim / 2 (") + Twine(pairs) +
                       ") finite values > 0");
  if (table && adaptor.getLlama3Scaling())
    return opError(loc, name, "expects frequencies or llama3_scaling, not both");
  if (std::optional<APFloat> a = adaptor.getAttentionFactor();
      a && !(a->convertToFloat() > 0.0f && std::isfinite(a->convertToFloat())))
    return opError(loc, name, "expects attention_factor > 0");
  types.push_back(in);
  return success();
}

float mlir::gai::llama3Frequency(float inv, ArrayRef<double> llama3) {
  if (llama3.size() != 4)
    return inv;
  const float factor = static_cast<float>(llama3[0]), low = static_cast<float>(llama3[1]),
              high = static_cast<float>(llama3[2]), context = static_cast<float>(llama3[3]);
  const float wavelength = 2.0f * static_cast<float>(M_PI) / inv;
  if (wavelength < context / high)
    return inv;
  if (wavelength > context / low)
    return inv / factor;
  float smooth = (context / wavelength - low) / (high - low);
  return (1.0f - smooth) * inv / factor + smooth * inv;
}

float mlir::gai::ropeFrequency(int64_t i, int64_t dim, double theta, ArrayRef<double> llama3) {
  float inv = 1.0f / static_cast<float>(std::pow(theta, static_cast<float>(2 * i) / dim));
  return llama3Frequency(inv, llama3);
}

LogicalResult CausalMaskOp::verify() {
  ArrayRef<int64_t> shape = getType().getShape();
  if (shape.size() < 2)
    return emitOpError("expects a result of shape [..., queries, keys], got ")
           << formatShape(shape);
  if (shape[shape.size() - 2] > shape.back())
    return emitOpError("expects no more queries than keys, got ")
           << formatShape(shape);
  if (static_cast<int64_t>(getWindow()) < 0)
    return emitOpError("expects window >= 0 (0: no window), got ")
           << static_cast<int64_t>(getWindow());
  return success();
}

LogicalResult PositionMaskOp::verify() {
  ArrayRef<int64_t> shape = getType().getShape();
  int64_t batch = getPositions().getType().getNumElements();
  if (getPositions().getType().getRank() != 1 || shape.size() != 4 ||
      shape[0] != batch || shape[1] != 1)
    return emitOpError("expects positions [B] and a result [B, 1, T, S], got ")
           << formatShape(getPositions().getType().getShape()) << " and "
           << formatShape(shape);
  if (static_cast<int64_t>(getWindow()) < 0)
    return emitOpError("expects window >= 0 (0: no window), got ")
           << static_cast<int64_t>(getWindow());
  return success();
}

LogicalResult CacheWriteOp::inferReturnTypes(MLIRContext *,
                                             std::optional<Location> loc,
                                             Adaptor adaptor,
                                             SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType cache = tensorType(adaptor.getCache());
  RankedTensorType update = tensorType(adaptor.getUpdate());
  RankedTensorType pos = tensorType(adaptor.getPositions());
  if (!cache || !update || !pos)
    return opError(loc, name, "expects ranked operands");
  ArrayRef<int64_t> c = cache.getShape(), u = update.getShape();
  if (c.size() != 4 || u.size() != 4 || c[0] != u[0] || c[1] != u[1] ||
      c[3] != u[3] || u[2] > c[2])
    return opError(loc, name,
                   "expects cache [B, H, S, D] and update [B, H, T <= S, D], "
                   "got " +
                       formatShape(c) + " and " + formatShape(u));
  if (cache.getElementType() != update.getElementType())
    return opError(loc, name, "expects cache and update of one element type");
  if (pos.getRank() != 1 || pos.getDimSize(0) != c[0])
    return opError(loc, name,
                   "expects positions of shape [" + Twine(c[0]) + "], got " +
                       formatShape(pos.getShape()));
  types.push_back(cache);
  return success();
}

LogicalResult TakeOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  RankedTensorType idx = tensorType(adaptor.getIndices());
  if (!in || !idx)
    return opError(loc, name, "expects ranked operands");
  if (in.getRank() < 2 || idx.getRank() != 1 ||
      idx.getDimSize(0) != in.getDimSize(0))
    return opError(loc, name,
                   "expects input [B, T, ...] and indices [B], got " +
                       formatShape(in.getShape()) + " and " +
                       formatShape(idx.getShape()));
  SmallVector<int64_t> shape(in.getShape());
  shape.erase(shape.begin() + 1);
  types.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Shape
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  RankedTensorType in = getInput().getType(), out = getType();
  if (in.getElementType() != out.getElementType())
    return emitOpError("expects the input's element type ")
           << in.getElementType() << ", got " << out.getElementType();
  if (in.getNumElements() != out.getNumElements())
    return emitOpError("cannot reshape ")
           << formatShape(in.getShape()) << " (" << in.getNumElements()
           << " elements) to " << formatShape(out.getShape()) << " ("
           << out.getNumElements() << " elements)";
  return success();
}

bool TransposeOp::movesOnlyUnitDims() {
  ArrayRef<int64_t> shape = getInput().getType().getShape();
  int64_t last = -1;
  for (int64_t d : getPermutation()) {
    if (shape[d] == 1)
      continue;
    if (d < last)
      return false;
    last = d;
  }
  return true;
}

namespace {
/// transpose → reshape when only unit dimensions move (decode's
/// [B, 1, H, D] → [B, H, 1, D]).
struct TransposeOfUnitDims : OpRewritePattern<TransposeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TransposeOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.movesOnlyUnitDims())
      return failure();
    rewriter.replaceOpWithNewOp<ReshapeOp>(op, op.getType(), op.getInput());
    return success();
  }
};
} // namespace

void TransposeOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                              MLIRContext *context) {
  patterns.add<TransposeOfUnitDims>(context);
}

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto previous = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(previous.getInput());
    return getResult();
  }
  if (auto splat = dyn_cast_if_present<SplatElementsAttr>(adaptor.getInput()))
    return splat.resizeSplat(getType());
  return {};
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in)
    return opError(loc, name, "expects a ranked input");
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (static_cast<int64_t>(perm.size()) != in.getRank())
    return opError(loc, name,
                   "expects a permutation of " + Twine(in.getRank()) +
                       " dimensions, got " + Twine(perm.size()));
  if (failed(checkAxes(loc, name, perm, in.getRank(), "permutation")))
    return failure();
  SmallVector<int64_t> shape;
  for (int64_t d : perm)
    shape.push_back(in.getDimSize(d));
  types.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in)
    return opError(loc, name, "expects a ranked input");
  ArrayRef<int64_t> offsets = adaptor.getOffsets(), sizes = adaptor.getSizes();
  if (static_cast<int64_t>(offsets.size()) != in.getRank() ||
      static_cast<int64_t>(sizes.size()) != in.getRank())
    return opError(loc, name,
                   "expects one offset and one size per dimension of " +
                       formatShape(in.getShape()));
  for (int64_t d = 0; d < in.getRank(); ++d) {
    if (offsets[d] < 0 || sizes[d] < 1 ||
        offsets[d] + sizes[d] > in.getDimSize(d))
      return opError(loc, name,
                     "dimension " + Twine(d) + ": [" + Twine(offsets[d]) +
                         ", " + Twine(offsets[d] + sizes[d]) +
                         ") is not a non-empty range inside [0, " +
                         Twine(in.getDimSize(d)) + ")");
  }
  types.push_back(RankedTensorType::get(sizes, in.getElementType()));
  return success();
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  ValueRange inputs = adaptor.getInputs();
  if (inputs.empty())
    return opError(loc, name, "expects at least one input");
  RankedTensorType first = tensorType(inputs.front());
  if (!first)
    return opError(loc, name, "expects ranked inputs");
  int64_t axis = static_cast<int64_t>(adaptor.getAxis());
  if (failed(checkAxes(loc, name, {axis}, first.getRank(), "axis")))
    return failure();
  SmallVector<int64_t> shape(first.getShape());
  for (auto [i, value] : llvm::enumerate(inputs.drop_front())) {
    RankedTensorType t = tensorType(value);
    if (!t || t.getElementType() != first.getElementType() ||
        t.getRank() != first.getRank())
      return opError(loc, name,
                     "expects input #" + Twine(i + 1) + " of rank " +
                         Twine(first.getRank()) + " and element type " +
                         typeStr(first.getElementType()) + ", got " +
                         typeStr(value.getType()));
    for (int64_t d = 0; d < t.getRank(); ++d) {
      if (d != axis && t.getDimSize(d) != shape[d])
        return opError(loc, name,
                       "input #" + Twine(i + 1) + " has shape " +
                           formatShape(t.getShape()) + " but input #0 has " +
                           formatShape(first.getShape()) +
                           ": all dimensions but the axis must match");
    }
    shape[axis] += t.getDimSize(axis);
  }
  types.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult RepeatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in)
    return opError(loc, name, "expects a ranked input");
  int64_t axis = static_cast<int64_t>(adaptor.getAxis());
  int64_t times = static_cast<int64_t>(adaptor.getTimes());
  if (failed(checkAxes(loc, name, {axis}, in.getRank(), "axis")))
    return failure();
  if (times < 1)
    return opError(loc, name, "expects times >= 1, got " + Twine(times));
  SmallVector<int64_t> shape(in.getShape());
  shape[axis] *= times;
  types.push_back(RankedTensorType::get(shape, in.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Mixture of experts and loss
//===----------------------------------------------------------------------===//

LogicalResult TopKOp::inferReturnTypes(MLIRContext *context,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType in = tensorType(adaptor.getInput());
  if (!in || in.getRank() == 0)
    return opError(loc, name, "expects an input of rank >= 1");
  int64_t k = static_cast<int64_t>(adaptor.getK());
  int64_t last = in.getShape().back();
  if (k < 1 || k > last)
    return opError(loc, name,
                   "expects 1 <= k <= " + Twine(last) +
                       " (the last dimension), got k = " + Twine(k));
  SmallVector<int64_t> shape(in.getShape());
  shape.back() = k;
  types.push_back(RankedTensorType::get(shape, in.getElementType()));
  types.push_back(RankedTensorType::get(shape, IntegerType::get(context, 32)));
  return success();
}

LogicalResult OneHotOp::verify() {
  int64_t depth = static_cast<int64_t>(getDepth());
  if (depth < 1)
    return emitOpError("expects depth >= 1, got ") << depth;
  if (getVocabShards() < 1)
    return emitOpError("expects vocab_shards >= 1, got ") << getVocabShards();
  SmallVector<int64_t> expected(getIndices().getType().getShape());
  expected.push_back(depth);
  if (getType().getShape() != ArrayRef<int64_t>(expected))
    return emitOpError("expects a result of shape ")
           << formatShape(expected) << ", got " << formatShape(getType().getShape());
  return success();
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *context,
                                               std::optional<Location> loc,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType logits = tensorType(adaptor.getLogits());
  RankedTensorType labels = tensorType(adaptor.getLabels());
  if (!logits || !labels)
    return opError(loc, name, "expects ranked operands");
  if (logits.getRank() < 2)
    return opError(loc, name,
                   "expects operand #0 (logits) of shape [..., vocab], got " +
                       formatShape(logits.getShape()));
  if (labels.getShape() != logits.getShape().drop_back())
    return opError(loc, name,
                   "expects operand #1 (labels) of shape " +
                       formatShape(logits.getShape().drop_back()) +
                       " (the logits' without vocab), got " +
                       formatShape(labels.getShape()));
  Type f32 = Float32Type::get(context);
  if (adaptor.getReduction() == LossReduction::None)
    types.push_back(RankedTensorType::get(labels.getShape(), f32));
  else
    types.push_back(RankedTensorType::get({}, f32));
  return success();
}

LogicalResult CrossEntropyGradOp::verify() {
  RankedTensorType logits = getLogits().getType();
  ArrayRef<int64_t> rows = logits.getShape().drop_back();
  if (logits.getRank() < 2 || getLabels().getType().getShape() != rows)
    return emitOpError("expects logits [..., vocab] and labels of the logits' "
                       "shape without vocab, got ")
           << formatShape(logits.getShape()) << " and "
           << formatShape(getLabels().getType().getShape());
  ArrayRef<int64_t> expected =
      getReduction() == LossReduction::None ? rows : ArrayRef<int64_t>{};
  if (getGrad().getType().getShape() != expected)
    return emitOpError("expects operand #2 (grad) of shape ")
           << formatShape(expected) << " (the loss's), got "
           << formatShape(getGrad().getType().getShape());
  if (getType() != logits)
    return emitOpError("expects a result of the logits' type");
  return success();
}

//===----------------------------------------------------------------------===//
// Composite ops
//===----------------------------------------------------------------------===//

/// The result type of attention over query [B, H, T, D], key [B, Hkv, S, D]
/// and value [B, Hkv, S, Dv], pushed onto `types` (shared by
/// flash_attention and cached_attention).
/// `type` with its axes 1 and 2 swapped when `swap` ([B, T, H, D] and
/// [B, H, T, D] into each other); unchanged when not of rank 4, for the
/// shape checks to report.
static RankedTensorType swapHeadAxes(Type type, bool swap) {
  auto t = dyn_cast<RankedTensorType>(type);
  if (!t || !swap || t.getRank() != 4)
    return t;
  ArrayRef<int64_t> s = t.getShape();
  return RankedTensorType::get({s[0], s[2], s[1], s[3]}, t.getElementType());
}

/// Whether entry `index` of an attention op's token_major flags is set.
static bool flagged(ArrayRef<bool> flags, unsigned index) {
  return index < flags.size() && flags[index];
}

static LogicalResult checkTokenMajorFlags(std::optional<Location> loc, StringRef name,
                                          ArrayRef<bool> flags, size_t tensors) {
  if (!flags.empty() && flags.size() != tensors)
    return opError(loc, name,
                   "expects token_major to have one flag for each of its " + Twine(tensors) +
                       " tensors, got " + Twine(flags.size()));
  return success();
}

/// The attention result type for head-major q, k and v ([B, H, T, D]).
static LogicalResult inferAttentionType(std::optional<Location> loc,
                                        StringRef name, RankedTensorType q,
                                        RankedTensorType k, RankedTensorType v,
                                        Value positions, uint64_t kvGroups, bool causal,
                                        uint64_t window, double softcap,
                                        SmallVectorImpl<Type> &types) {
  if (!q || !k || !v)
    return opError(loc, name, "expects ranked operands");
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4)
    return opError(loc, name,
                   "expects query [B, H, T, D], key [B, Hkv, S, D] and value "
                   "[B, Hkv, S, Dv], got " +
                       formatShape(q.getShape()) + ", " + formatShape(k.getShape()) +
                       " and " + formatShape(v.getShape()));
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType())
    return opError(loc, name, "expects query, key and value of one element "
                              "type");
  int64_t groups = static_cast<int64_t>(kvGroups);
  int64_t batch = q.getDimSize(0), heads = q.getDimSize(1),
          queries = q.getDimSize(2), dim = q.getDimSize(3);
  if (groups < 1 || heads % groups != 0)
    return opError(loc, name,
                   "expects kv_groups >= 1 dividing the " + Twine(heads) +
                       " query heads, got " + Twine(groups));
  SmallVector<int64_t> expectedKey = {batch, heads / groups, k.getDimSize(2),
                                      dim};
  if (k.getShape() != ArrayRef<int64_t>(expectedKey))
    return opError(loc, name,
                   "expects key of shape " + formatShape(expectedKey) +
                       " for query " + formatShape(q.getShape()) +
                       " and kv_groups = " + Twine(groups) + ", got " +
                       formatShape(k.getShape()));
  if (v.getShape().drop_back() != k.getShape().drop_back())
    return opError(loc, name,
                   "expects value of shape " +
                       formatShape(k.getShape().drop_back()) +
                       " + [Dv] like key, got " + formatShape(v.getShape()));
  if (positions) {
    RankedTensorType p = tensorType(positions);
    if (!p || p.getRank() != 1 || p.getDimSize(0) != batch ||
        !causal)
      return opError(loc, name,
                     "expects query positions of shape [" + Twine(batch) +
                         "], and only with causal");
  } else if (causal && queries > k.getDimSize(2))
    return opError(loc, name,
                   "causal attention expects no more queries (" +
                       Twine(queries) + ") than keys (" +
                       Twine(k.getDimSize(2)) + ")");
  if (static_cast<int64_t>(window) < 0 ||
      (window != 0 && !causal))
    return opError(loc, name, "expects window >= 0, and only with causal");
  if (softcap < 0.0)
    return opError(loc, name, "expects softcap >= 0 (0: none)");
  types.push_back(
      RankedTensorType::get({batch, heads, queries, v.getDimSize(3)},
                            q.getElementType()));
  return success();
}

LogicalResult FlashAttentionOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &types) {
  ArrayRef<bool> flags = adaptor.getTokenMajor();
  if (failed(checkTokenMajorFlags(loc, getOperationName(), flags, kTensors)))
    return failure();
  if (failed(inferAttentionType(
          loc, getOperationName(),
          swapHeadAxes(adaptor.getQuery().getType(), flagged(flags, kQuery)),
          swapHeadAxes(adaptor.getKey().getType(), flagged(flags, kKey)),
          swapHeadAxes(adaptor.getValue().getType(), flagged(flags, kValue)),
          adaptor.getQueryPositions(), adaptor.getKvGroups(), adaptor.getCausal(),
          adaptor.getWindow(), adaptor.getSoftcap().convertToDouble(), types)))
    return failure();
  // The row log-sum-exps are [B, H, T] whatever the layouts.
  ArrayRef<int64_t> out = cast<RankedTensorType>(types.back()).getShape();
  Type lse = RankedTensorType::get(out.drop_back(),
                                   Float32Type::get(adaptor.getQuery().getContext()));
  types.back() = swapHeadAxes(types.back(), flagged(flags, kResult));
  if (adaptor.getWithLse())
    types.push_back(lse);
  return success();
}

LogicalResult EmbeddingGradOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                                Adaptor adaptor,
                                                SmallVectorImpl<Type> &types) {
  RankedTensorType grad = tensorType(adaptor.getGrad());
  RankedTensorType ids = tensorType(adaptor.getIndices());
  if (!grad || !ids || grad.getRank() != ids.getRank() + 1 ||
      grad.getShape().drop_back() != ids.getShape())
    return opError(loc, getOperationName(),
                   "expects grad shaped as the ids followed by D, got " +
                       (grad ? formatShape(grad.getShape()) : std::string("unranked")) +
                       " for ids " +
                       (ids ? formatShape(ids.getShape()) : std::string("unranked")));
  auto rows = static_cast<int64_t>(adaptor.getRows());
  if (rows < 1 || adaptor.getVocabShards() < 1)
    return opError(loc, getOperationName(), "expects rows >= 1 and vocab_shards >= 1");
  types.push_back(
      RankedTensorType::get({rows, grad.getShape().back()}, grad.getElementType()));
  return success();
}

LogicalResult FlashAttentionGradOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  ArrayRef<bool> flags = adaptor.getTokenMajor();
  if (failed(checkTokenMajorFlags(loc, name, flags, kTensors)))
    return failure();
  RankedTensorType q = swapHeadAxes(adaptor.getQuery().getType(), flagged(flags, kQuery));
  RankedTensorType k = swapHeadAxes(adaptor.getKey().getType(), flagged(flags, kKey));
  RankedTensorType v = swapHeadAxes(adaptor.getValue().getType(), flagged(flags, kValue));
  SmallVector<Type> forward;
  if (failed(inferAttentionType(loc, name, q, k, v, Value(), adaptor.getKvGroups(),
                                adaptor.getCausal(), adaptor.getWindow(),
                                adaptor.getSoftcap().convertToDouble(), forward)))
    return failure();
  auto expectShape = [&](Value v, StringRef operand, Type expected) -> LogicalResult {
    if (v.getType() == expected)
      return success();
    std::string want;
    llvm::raw_string_ostream(want) << expected;
    std::string got;
    llvm::raw_string_ostream(got) << v.getType();
    return opError(loc, name, "expects " + operand + " of type " + want + ", got " + got);
  };
  auto outType = cast<RankedTensorType>(forward[0]);
  if (failed(expectShape(adaptor.getOut(), "out", swapHeadAxes(outType, flagged(flags, kOut)))) ||
      failed(expectShape(adaptor.getOutGrad(), "out_grad",
                         swapHeadAxes(outType, flagged(flags, kOutGrad)))) ||
      failed(expectShape(adaptor.getLse(), "lse",
                         RankedTensorType::get(outType.getShape().drop_back(),
                                               Float32Type::get(outType.getContext())))))
    return failure();
  types.push_back(swapHeadAxes(q, flagged(flags, kQueryGrad)));
  types.push_back(swapHeadAxes(k, flagged(flags, kKeyGrad)));
  types.push_back(swapHeadAxes(v, flagged(flags, kValueGrad)));
  return success();
}

LogicalResult CachedAttentionOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> loc, Adaptor adaptor,
    SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType q = tensorType(adaptor.getQuery());
  RankedTensorType k = tensorType(adaptor.getKey());
  RankedTensorType v = tensorType(adaptor.getValue());
  RankedTensorType kc = tensorType(adaptor.getKeyCache());
  RankedTensorType vc = tensorType(adaptor.getValueCache());
  if (!q || !k || !v || !kc || !vc)
    return opError(loc, name, "expects ranked operands");
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4 ||
      kc.getRank() != 4 || vc.getRank() != 4)
    return opError(loc, name,
                   "expects rank-4 query, key, value and caches, got " +
                       formatShape(q.getShape()) + ", " + formatShape(k.getShape()) + ", " +
                       formatShape(v.getShape()) + ", " + formatShape(kc.getShape()) +
                       " and " + formatShape(vc.getShape()));
  // The new rows are the caches' shape with the step's T for S.
  auto rowsOf = [](RankedTensorType cache, int64_t t) {
    SmallVector<int64_t> s(cache.getShape());
    s[2] = t;
    return s;
  };
  int64_t t = q.getDimSize(2);
  if (k.getShape() != ArrayRef<int64_t>(rowsOf(kc, t)) ||
      v.getShape() != ArrayRef<int64_t>(rowsOf(vc, t)) || t > kc.getDimSize(2))
    return opError(loc, name,
                   "expects new key and value rows [B, Hkv, " + Twine(t) +
                       ", D] like the caches, with no more rows than slots, got " +
                       formatShape(k.getShape()) + " and " +
                       formatShape(v.getShape()) + " for caches " +
                       formatShape(kc.getShape()) + " and " +
                       formatShape(vc.getShape()));
  if (k.getElementType() != kc.getElementType() ||
      v.getElementType() != vc.getElementType())
    return opError(loc, name,
                   "expects new key and value rows of the caches' element type, got " +
                       typeStr(k) + " and " + typeStr(v) + " for caches " + typeStr(kc) +
                       " and " + typeStr(vc));
  bool rope = adaptor.getRopeStyle().has_value();
  if (rope != static_cast<bool>(adaptor.getRopePositions()) ||
      rope != static_cast<bool>(adaptor.getRopeThetaAttr()))
    return opError(loc, name,
                   "expects rope style, positions and theta together");
  if (rope) {
    RankedTensorType p = tensorType(adaptor.getRopePositions());
    if (!p || p.getRank() != 2 || p.getDimSize(1) != t ||
        (p.getDimSize(0) != 1 && p.getDimSize(0) != q.getDimSize(0)))
      return opError(loc, name,
                     "expects rope positions of shape [" +
                         Twine(q.getDimSize(0)) + " or 1, " + Twine(t) + "]");
    const double theta = adaptor.getRopeThetaAttr().getValueAsDouble();
    if (q.getDimSize(3) % 2 || theta <= 0.0)
      return opError(loc, name,
                     "expects an even head_dim and theta > 0 for rope, got head_dim " +
                         Twine(q.getDimSize(3)) + " and theta " + llvm::formatv("{0:g}", theta).str());
  }
  if (failed(inferAttentionType(loc, name, tensorType(adaptor.getQuery()),
                                tensorType(adaptor.getKeyCache()),
                                tensorType(adaptor.getValueCache()), adaptor.getPositions(),
                                adaptor.getKvGroups(), adaptor.getCausal(),
                                adaptor.getWindow(),
                                adaptor.getSoftcap().convertToDouble(), types)))
    return failure();
  types.push_back(kc);
  types.push_back(vc);
  return success();
}

LogicalResult GemmOp::inferReturnTypes(MLIRContext *,
                                       std::optional<Location> loc,
                                       Adaptor adaptor,
                                       SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  SmallVector<Type, 1> product;
  if (failed(inferMatmulType(loc, name, adaptor.getLhs(), adaptor.getRhs(),
                             adaptor.getTransposeLhs(),
                             adaptor.getTransposeRhs(), product)))
    return failure();
  auto result = cast<RankedTensorType>(product.front());
  if (Value bias = adaptor.getBias()) {
    RankedTensorType b = tensorType(bias);
    SmallVector<int64_t> expected = {result.getShape().back()};
    if (!b || b.getShape() != ArrayRef<int64_t>(expected) ||
        b.getElementType() != result.getElementType())
      return opError(loc, name,
                     "expects bias of type " +
                         typeStr(RankedTensorType::get(
                             expected, result.getElementType())) +
                         ", got " + typeStr(bias.getType()));
  }
  RankedTensorType wide = result.clone(Float32Type::get(result.getContext()));
  bool mayWiden = wide != result && !adaptor.getBias();
  if (adaptor.getWide()) {
    if (!mayWiden)
      return opError(loc, name,
                     "expects 'wide' only over bf16 or f16 operands without a bias, got " +
                         typeStr(result));
    if (Value residual = adaptor.getResidual(); residual && residual.getType() != wide)
      return opError(loc, name,
                     "expects a 'wide' GEMM's residual of type " + typeStr(wide) + ", got " +
                         typeStr(residual.getType()));
    types.push_back(wide);
    return success();
  }
  if (Value residual = adaptor.getResidual()) {
    // An f32 residual stream over narrower operands: the sum is f32, and
    // the result takes the residual's type.
    RankedTensorType r = tensorType(residual);
    if (r != result && !(mayWiden && r == wide))
      return opError(loc, name,
                     "expects residual of the result type " + typeStr(result) +
                         (mayWiden ? " or " + typeStr(wide) : std::string()) +
                         ", got " + typeStr(residual.getType()));
    result = r;
  }
  types.push_back(result);
  return success();
}

LogicalResult GatedGemmOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &types) {
  StringRef name = getOperationName();
  RankedTensorType gate = tensorType(adaptor.getGate());
  if (!gate || gate.getRank() != 2)
    return opError(loc, name,
                   "expects gate weights of rank 2 ([N, K]), got " +
                       typeStr(adaptor.getGate().getType()));
  if (adaptor.getUp().getType() != gate)
    return opError(loc, name,
                   "expects up weights of the gate's type " + typeStr(gate) +
                       ", got " + typeStr(adaptor.getUp().getType()));
  if (adaptor.getActivation() == EpilogueActivation::None)
    return opError(loc, name, "expects an activation for the gate");
  return inferMatmulType(loc, name, adaptor.getLhs(), adaptor.getGate(),
                         /*tl=*/false, /*tr=*/true, types);
}

LogicalResult FusionOp::verifyRegions() {
  Block &body = getBody().front();
  if (body.getArgumentTypes() != getInputs().getTypes())
    return emitOpError("expects one block argument per input, of its type");
  auto yield = cast<YieldOp>(body.getTerminator());
  if (yield.getValues().size() != getNumResults())
    return emitOpError("expects gai.yield of one value per result");
  std::optional<ArrayRef<int64_t>> partials = getColumnPartials();
  std::optional<uint64_t> partialRows = getPartialRows();
  if (partials.has_value() != partialRows.has_value())
    return emitOpError("expects column_partials and partial_rows together");
  if (partials && partials->empty())
    return emitOpError("expects column_partials to name at least one result");
  if (partialRows && static_cast<int64_t>(*partialRows) < 2)
    return emitOpError("expects partial_rows of at least 2, got ")
           << static_cast<int64_t>(*partialRows);
  if (partials)
    for (auto [n, i] : llvm::enumerate(*partials))
      if (i < 0 || i >= static_cast<int64_t>(getNumResults()) ||
          llvm::is_contained(partials->take_front(n), i))
        return emitOpError("column_partials names result ")
               << i << ", which is out of range or named twice";
  for (auto [i, pair] : llvm::enumerate(llvm::zip(yield.getValues(), getResults()))) {
    auto yielded = cast<RankedTensorType>(std::get<0>(pair).getType());
    auto result = cast<RankedTensorType>(std::get<1>(pair).getType());
    if (!isColumnPartial(i)) {
      if (yielded != result)
        return emitOpError("expects gai.yield of the result types");
      continue;
    }
    // Column sums of `partialRows` consecutive rows each, in f32.
    int64_t rows = 1;
    for (int64_t d : yielded.getShape().drop_back())
      rows *= d;
    auto g = static_cast<int64_t>(*partialRows);
    auto first = cast<RankedTensorType>(yield.getValues().front().getType());
    if (yielded.getRank() < 2 || !isa<FloatType>(yielded.getElementType()) || rows % g != 0 ||
        yielded.getShape() != first.getShape())
      return emitOpError("column partial result ")
             << i << " needs float rows of the kernel's shape, in a multiple of partial_rows ("
             << g << "), got "
             << typeStr(yielded);
    auto expected = RankedTensorType::get({rows / g, yielded.getShape().back()},
                                          Float32Type::get(getContext()));
    if (result != expected)
      return emitOpError("column partial result ")
             << i << " must be " << typeStr(expected) << ", got " << typeStr(result);
  }
  return success();
}

#define GET_OP_CLASSES
#include "dialects/Gai/GaiOps.cpp.inc"
