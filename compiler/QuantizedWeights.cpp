// Quantized weights made at compile time from the float ones.
#include "compiler/QuantizedWeights.h"

#include "passes/MemoryPlan.h"
#include "dialects/Gai/GaiOps.h"
#include "gai/FloatConvert.h"
#include "gai/WeightSet.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

#include <cstring>

namespace gai {
namespace {

using mlir::gai::DequantizeOp;
using mlir::gai::ParamOp;

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

QuantFormat formatOf(mlir::gai::QuantFormat f) {
  switch (f) {
  case mlir::gai::QuantFormat::Int8:
    return QuantFormat::Int8;
  case mlir::gai::QuantFormat::Int4:
    return QuantFormat::Int4;
  case mlir::gai::QuantFormat::Fp8E4M3:
    return QuantFormat::Fp8E4M3;
  }
  llvm_unreachable("unknown format");
}

std::string shapeText(const std::vector<int64_t> &shape) {
  return mlir::gai::formatShape(shape);
}

/// `t` as f32 [rows, cols], transposed from the file's [cols, rows] when
/// `transposed`.
llvm::Expected<std::vector<float>> floatMatrix(const TensorView &t, const std::string &file,
                                               int64_t rows, int64_t cols, bool transposed) {
  std::vector<int64_t> want = transposed ? std::vector<int64_t>{cols, rows}
                                         : std::vector<int64_t>{rows, cols};
  if (t.shape != want || !canConvertFloats(t.dtype, DType::F32))
    return error(file + ": tensor '" + t.name + "' is " + dtypeName(t.dtype) + " " +
                 shapeText(t.shape) + "; quantizing it needs floats " + shapeText(want));
  std::vector<float> values(static_cast<size_t>(rows * cols));
  convertFloats(t.data, t.dtype, values.data(), DType::F32, values.size());
  if (!transposed)
    return values;
  std::vector<float> out(values.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = values[c * rows + r];
  return out;
}

template <typename T>
void add(QuantizedWeights &packed, const std::string &name, DType dtype,
         std::vector<int64_t> shape, const std::vector<T> &data) {
  auto bytes = std::make_shared<std::vector<uint8_t>>(data.size() * sizeof(T));
  std::memcpy(bytes->data(), data.data(), bytes->size());
  packed.tensors.push_back({name, dtype, std::move(shape), bytes->data(), bytes->size()});
  packed.storage.push_back(std::move(bytes));
}

} // namespace

WeightBytes weightBytes(mlir::ModuleOp module) {
  WeightBytes bytes;
  llvm::StringSet<> seen;
  llvm::StringMap<int64_t> floatBytes; // a quantized weight's, before
  module.walk([&](DequantizeOp d) {
    if (auto values = d.getValues().getDefiningOp<ParamOp>()) {
      auto type = mlir::cast<mlir::RankedTensorType>(d.getType());
      floatBytes[values.getName()] = tensorBytes(type);
    }
  });
  module.walk([&](ParamOp p) {
    if (!seen.insert(p.getName()).second)
      return;
    int64_t now = tensorBytes(p.getType());
    bytes.after += now;
    auto before = floatBytes.find(p.getName());
    // A quantized weight's scales and zeros did not exist before.
    bool companion = llvm::StringRef(p.getName()).ends_with(".scale") ||
                     llvm::StringRef(p.getName()).ends_with(".zero");
    if (before != floatBytes.end())
      bytes.before += before->second;
    else if (!(companion && floatBytes.count(llvm::StringRef(p.getName()).rsplit('.').first)))
      bytes.before += now;
  });
  return bytes;
}

llvm::Expected<QuantizedWeights> quantizeWeights(mlir::ModuleOp module,
                                                 const WeightSet &weights) {
  QuantizedWeights packed;
  llvm::StringSet<> done;
  llvm::Error failed = llvm::Error::success();
  module.walk([&](DequantizeOp d) {
    auto values = d.getValues().getDefiningOp<ParamOp>();
    auto scale = d.getScale().getDefiningOp<ParamOp>();
    auto zero = d.getZero() ? d.getZero().getDefiningOp<ParamOp>() : ParamOp();
    if (!values || !scale || (d.getZero() && !zero)) {
      failed = error("a gai.dequantize reads something other than parameters");
      return mlir::WalkResult::interrupt();
    }
    std::string name = values.getName().str();
    if (!done.insert(name).second)
      return mlir::WalkResult::advance();
    const TensorView *t = weights.find(name);
    if (!t) {
      failed = error(weights.path() + ": no tensor '" + name + "' to quantize");
      return mlir::WalkResult::interrupt();
    }
    auto type = values.getType();
    const int64_t rows = type.getDimSize(0), cols = type.getDimSize(1);
    auto w = floatMatrix(*t, weights.path(), rows, cols, values.getTransposed());
    if (!w) {
      failed = w.takeError();
      return mlir::WalkResult::interrupt();
    }
    const QuantFormat format = formatOf(d.getFormat());
    const int64_t group = d.getGroup() ? static_cast<int64_t>(*d.getGroup()) : 0;
    const bool perRow = format == QuantFormat::Fp8E4M3 && scale.getType().getDimSize(0) == rows &&
                        rows != 1;
    QuantizedWeight q = quantizeWeight(w->data(), rows, cols, format, group, perRow);
    packed.matrices.push_back({name, format, rows, cols, group, values.getTransposed(),
                               quantizationError(w->data(), q)});
    if (format == QuantFormat::Int4)
      add(packed, name, DType::U8, {rows, cols / 2}, q.values); // two a byte
    else
      add(packed, name, format == QuantFormat::Int8 ? DType::I8 : DType::F8E4M3, {rows, cols},
          q.values);
    auto scaleShape = scale.getType().getShape();
    add(packed, scale.getName().str(), DType::F32, {scaleShape.begin(), scaleShape.end()},
        q.scale);
    if (zero)
      add(packed, zero.getName().str(), DType::I8, {rows, cols / group}, q.zero);
    return mlir::WalkResult::advance();
  });
  if (failed)
    return std::move(failed);
  return packed;
}

llvm::Error addFloatWeights(mlir::ModuleOp module, const WeightSet &weights,
                            QuantizedWeights &packed) {
  llvm::StringSet<> have;
  for (const TensorToWrite &t : packed.tensors)
    have.insert(t.name);
  llvm::Error failed = llvm::Error::success();
  module.walk([&](ParamOp p) {
    std::string name = p.getName().str();
    if (!have.insert(name).second)
      return mlir::WalkResult::advance();
    const TensorView *t = weights.find(name);
    mlir::Type element = p.getType().getElementType();
    DType dtype = element.isF32()    ? DType::F32
                  : element.isBF16() ? DType::BF16
                  : element.isF16()  ? DType::F16
                                     : t ? t->dtype : DType::F32;
    if (!t || (t->dtype != dtype && !canConvertFloats(t->dtype, dtype))) {
      failed = error(weights.path() + ": tensor '" + name + "' is missing or not " +
                     dtypeName(dtype));
      return mlir::WalkResult::interrupt();
    }
    auto bytes = std::make_shared<std::vector<uint8_t>>(
        static_cast<size_t>(t->numElements()) * dtypeSize(dtype));
    if (t->dtype == dtype)
      std::memcpy(bytes->data(), t->data, bytes->size());
    else
      convertFloats(t->data, t->dtype, bytes->data(), dtype, static_cast<size_t>(t->numElements()));
    packed.tensors.push_back({name, dtype, t->shape, bytes->data(), bytes->size()});
    packed.storage.push_back(std::move(bytes));
    return mlir::WalkResult::advance();
  });
  return failed;
}

void printQuantizationReport(mlir::ModuleOp module, const QuantizedWeights *packed,
                             llvm::raw_ostream &os) {
  WeightBytes bytes = weightBytes(module);
  auto mib = [](int64_t b) { return b / (1024.0 * 1024.0); };
  os << "quantized weights: "
     << llvm::format("%.3f MiB before, %.3f MiB after (%.1f%%)", mib(bytes.before),
                     mib(bytes.after), bytes.before ? 100.0 * bytes.after / bytes.before : 0.0)
     << "\n";
  if (!packed) {
    os << "  (no --weights: the quantization error is measured on real weights only)\n";
    return;
  }
  double worstRms = 0;
  for (const QuantizedMatrix &m : packed->matrices) {
    os << "  " << m.name << " [" << m.rows << ", " << m.cols << "] " << quantFormatName(m.format);
    if (m.group)
      os << " group " << m.group;
    os << llvm::format(": max relative error %.3e, rms relative error %.3e\n",
                       m.error.maxRelative, m.error.rmsRelative);
    worstRms = std::max(worstRms, m.error.rmsRelative);
  }
  os << "  " << packed->matrices.size() << " matrices, worst rms relative error "
     << llvm::format("%.3e", worstRms) << "\n";
}

} // namespace gai
