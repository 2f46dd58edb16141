// Weight-only quantization: the parameters that feed matmuls become
// quantized values and scales, read back by a gai.dequantize that the
// exec lowering folds into the GEMM (so no float copy of them is made).
#include "dialects/Gai/GaiOps.h"
#include "passes/Passes.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/GlobPattern.h"

namespace mlir::gai {
#define GEN_PASS_DEF_GAIQUANTIZE
#include "passes/Passes.h.inc"
} // namespace mlir::gai

using namespace mlir;
using namespace mlir::gai;

namespace {

/// The LM head, the embeddings and MoE routers (whose top-k choice a small
/// error flips): what users keep in float unless asked.
constexpr const char *kDefaultSkip[] = {"*lm_head*", "*embed*", "*wte*",
                                        "*wpe*",     "*.gate.weight", "*router*"};

/// How every use of a parameter reads it, when each is a matmul's rhs.
enum class Orientation { Unusable, NK, KN };

Orientation orientationOf(ParamOp p) {
  auto type = p.getType();
  if (type.getRank() != 2 || !isa<FloatType>(type.getElementType()) || p.getTransposed())
    return Orientation::Unusable;
  std::optional<Orientation> seen;
  for (OpOperand &use : p->getUses()) {
    auto m = dyn_cast<MatmulOp>(use.getOwner());
    if (!m || use.getOperandNumber() != 1 || m.getLhs() == p.getResult() || m.getTransposeLhs())
      return Orientation::Unusable;
    Orientation o = m.getTransposeRhs() ? Orientation::NK : Orientation::KN;
    if (seen && *seen != o)
      return Orientation::Unusable;
    seen = o;
  }
  return seen.value_or(Orientation::Unusable);
}

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
    if (failed(buildSkip()))
      return signalPassFailure();

    // A name is quantized only if every parameter of that name, in every
    // function, is read by matmuls alike: an entry point's copy of a
    // weight must be the same bytes as another's.
    llvm::StringMap<Orientation> byName;
    module.walk([&](ParamOp p) {
      Orientation o = orientationOf(p);
      auto [it, inserted] = byName.try_emplace(p.getName(), o);
      if (!inserted && it->second != o)
        it->second = Orientation::Unusable;
    });
    SmallVector<ParamOp> chosen;
    module.walk([&](ParamOp p) {
      if (byName.lookup(p.getName()) != Orientation::Unusable && !skipped(p.getName()))
        chosen.push_back(p);
    });
    for (ParamOp p : chosen)
      if (failed(quantize(p, *format, byName.lookup(p.getName()))))
        return signalPassFailure();
  }

private:
  LogicalResult buildSkip() {
    std::vector<std::string> patterns(skip.begin(), skip.end());
    if (patterns.empty())
      patterns.assign(std::begin(kDefaultSkip), std::end(kDefaultSkip));
    if (patterns.size() == 1 && patterns[0] == "none")
      patterns.clear();
    for (const std::string &text : patterns) {
      auto glob = llvm::GlobPattern::create(text);
      if (!glob) {
        getOperation().emitError() << "--gai-quantize: skip='" << text
                                   << "' is not a glob: " << llvm::toString(glob.takeError());
        return failure();
      }
      skipGlobs.push_back(std::move(*glob));
    }
    return success();
  }

  bool skipped(StringRef name) const {
    return llvm::any_of(skipGlobs, [&](const llvm::GlobPattern &g) { return g.match(name); });
  }

  LogicalResult quantize(ParamOp p, QuantFormat format, Orientation orientation) {
    RankedTensorType type = p.getType();
    const bool transposed = orientation == Orientation::KN;
    const int64_t n = type.getDimSize(transposed ? 1 : 0), k = type.getDimSize(transposed ? 0 : 1);
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
    for (OpOperand &use : llvm::make_early_inc_range(p->getUses())) {
      auto m = cast<MatmulOp>(use.getOwner());
      m.getRhsMutable().assign(weight);
      m.setTransposeRhs(true);
    }
    p.erase();
    return success();
  }

  std::vector<llvm::GlobPattern> skipGlobs;
};

} // namespace
