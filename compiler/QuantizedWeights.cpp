// Quantized weights made at compile time from the float ones.
#include "compiler/QuantizedWeights.h"

#include "passes/MatmulWeights.h"
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

} // namespace

WeightBytes weightBytes(mlir::ModuleOp module) {
  WeightBytes bytes;
  llvm::StringSet<> seen;
  llvm::StringMap<int64_t> floatBytes; // a quantized weight's, before
  module.walk([&](DequantizeOp d) {
    if (auto values = d.getValues().getDefiningOp<ParamOp>()) {
      auto type = mlir::cast<mlir::RankedTensorType>(d.getType());
      // A tied head's copy had no bytes of its own: its table counts.
      floatBytes[values.getName()] = mlir::gai::tiedTo(values) ? 0 : tensorBytes(type);
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
    std::optional<llvm::StringRef> table = mlir::gai::tiedTo(values);
    const std::string source = table ? table->str() : name;
    const TensorView *t = weights.find(source);
    if (!t) {
      failed = error(weights.path() + ": no tensor '" + source + "' to quantize" +
                     (table ? " (the LM head '" + name + "' is tied to it)" : ""));
      return mlir::WalkResult::interrupt();
    }
    auto type = values.getType();
    const int64_t rows = type.getDimSize(0), cols = type.getDimSize(1);
    auto w = floatMatrix(*t, weights.path(), rows, cols, values.getTransposed(), "quantizing");
    if (!w) {
      failed = w.takeError();
      return mlir::WalkResult::interrupt();
    }
    const QuantFormat format = formatOf(d.getFormat());
    const int64_t group = d.getGroup() ? static_cast<int64_t>(*d.getGroup()) : 0;
    const bool perRow = format == QuantFormat::Fp8E4M3 && scale.getType().getDimSize(0) == rows &&
                        rows != 1;
    QuantizedWeight q = quantizeWeight(w->data(), rows, cols, format, group, perRow);
    packed.matrices.push_back({name, table ? source : std::string(), format, rows, cols, group,
                               values.getTransposed(), quantizationError(w->data(), q)});
    if (format == QuantFormat::Int4)
      packed.add(name, DType::U8, {rows, cols / 2}, q.values); // two a byte
    else
      packed.add(name, format == QuantFormat::Int8 ? DType::I8 : DType::F8E4M3, {rows, cols},
                 q.values);
    auto scaleShape = scale.getType().getShape();
    packed.add(scale.getName().str(), DType::F32, {scaleShape.begin(), scaleShape.end()},
               q.scale);
    if (zero)
      packed.add(zero.getName().str(), DType::I8, {rows, cols / group}, q.zero);
    return mlir::WalkResult::advance();
  });
  if (failed)
    return std::move(failed);
  return packed;
}

llvm::Error addFloatWeights(mlir::ModuleOp module, const WeightSet &weights, MadeWeights &made) {
  llvm::StringSet<> have;
  for (const TensorToWrite &t : made.tensors)
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
    made.addBytes(name, dtype, t->shape, std::move(bytes));
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
    if (!m.tiedTo.empty())
      os << " (a copy of the tied '" << m.tiedTo << "', which the embedding keeps in float)";
    os << llvm::format(": max relative error %.3e, rms relative error %.3e\n",
                       m.error.maxRelative, m.error.rmsRelative);
    worstRms = std::max(worstRms, m.error.rmsRelative);
  }
  os << "  " << packed->matrices.size() << " matrices, worst rms relative error "
     << llvm::format("%.3e", worstRms) << "\n";
}

} // namespace gai
