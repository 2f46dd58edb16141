// Weight-only quantization: the parameters that feed matmuls become
// quantized values and scales, read back by a gai.dequantize that the
// exec lowering folds into the GEMM (so no float copy of them is made).
#include "dialects/Gai/GaiOps.h"
#include "passes/MatmulWeights.h"
#include "passes/Passes.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIQUANTIZE
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

struct QuantizePass : mlir::gai::impl::GaiQuantizeBase<QuantizePass> {
  using GaiQuantizeBase::GaiQuantizeBase;
  int64_t groupSize() const { return group; }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::optional<QuantFormat> format = symbolizeQuantFormat(
        weights == "fp8" ? std::string("fp8_e4m3") : std::string(weights));
    if (!format) {
      module.emitError() << "--gai-quantize: weights='" << weights
                         << "' is not one of int8, int4, fp8";
      return signalPassFailure();
    }
    if (*format == QuantFormat::Int4 && (group <= 0 || group % 8 != 0)) {
      module.emitError() << "--gai-quantize: group=" << groupSize()
                         << " must be a positive multiple of 8";
      return signalPassFailure();
    }
    std::vector<std::string> skipGlobs(skip.begin(), skip.end());
    // A tied head is quantized as a copy of its own, the lookups keep the
    // float table: decode streams the head, and reads one row of the table.
    if (failed(untieHead(module, skipGlobs, getArgument())))
      return signalPassFailure();
    FailureOr<SmallVector<MatmulWeight>> chosen =
        matmulWeights(module, skipGlobs, getArgument());
    if (failed(chosen))
      return signalPassFailure();
    for (const MatmulWeight &w : *chosen)
      if (failed(quantize(w, *format)))
        return signalPassFailure();
  }

private:
  LogicalResult quantize(const MatmulWeight &w, QuantFormat format) {
    ParamOp p = w.param;
    RankedTensorType type = p.getType();
    const bool transposed = w.orientation == Orientation::KN;
    const int64_t n = w.n, k = w.k;
    if (k % 8 != 0)
      return p.emitError() << "--gai-quantize: '" << p.getName() << "' has k = " << k
                           << ", not a multiple of 8 (skip it with skip=)";
    const int64_t groupK = groupSize();
    if (format == QuantFormat::Int4 && k % groupK != 0)
      return p.emitError() << "--gai-quantize: int4 group " << groupK << " does not divide k = "
                           << k << " of '" << p.getName() << "' (choose a group that divides "
                           << k << ", or skip it with skip=)";
    OpBuilder b(p);
    Location loc = p.getLoc();
    Type storage = format == QuantFormat::Int8   ? Type(b.getIntegerType(8))
                   : format == QuantFormat::Int4 ? Type(b.getIntegerType(4))
                                                 : Type(b.getType<Float8E4M3FNType>());
    auto values = ParamOp::create(b, loc, RankedTensorType::get({n, k}, storage),
                                  p.getNameAttr(), transposed ? b.getUnitAttr() : nullptr);
    // A structured pruning's slicing, if any, comes first at compile time.
    values->setDiscardableAttrs(p->getDiscardableAttrDictionary());
    const bool grouped = format == QuantFormat::Int4;
    const int64_t groups = grouped ? k / groupK : 1;
    SmallVector<int64_t> scaleShape = grouped ? SmallVector<int64_t>{n, groups}
                                      : format == QuantFormat::Fp8E4M3 && !fp8PerRow
                                          ? SmallVector<int64_t>{1}
                                          : SmallVector<int64_t>{n};
    auto scale = ParamOp::create(b, loc, RankedTensorType::get(scaleShape, b.getF32Type()),
                                 b.getStringAttr(p.getName() + ".scale"), nullptr);
    Value zero;
    if (grouped)
      zero = ParamOp::create(b, loc, RankedTensorType::get({n, groups}, b.getIntegerType(8)),
                             b.getStringAttr(p.getName() + ".zero"), nullptr);
    auto weight = DequantizeOp::create(
        b, loc, RankedTensorType::get({n, k}, type.getElementType()), format,
        grouped ? b.getI64IntegerAttr(groupK) : nullptr, values, scale, zero);
    readAsWeight(p, weight);
    p.erase();
    return success();
  }
};

} // namespace
