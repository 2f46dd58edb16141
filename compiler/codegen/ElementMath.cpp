#include "compiler/codegen/ElementMath.h"

#include "dialects/Gai/GaiOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/xxhash.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gai;

namespace gai {

static Type sameShape(Type like, Type element) {
  if (auto v = dyn_cast<VectorType>(like))
    return VectorType::get(v.getShape(), element);
  return element;
}

Value constantLike(OpBuilder &b, Location loc, Type like, Type element,
                   double value) {
  TypedAttr scalar =
      isa<FloatType>(element)
          ? TypedAttr(b.getFloatAttr(element, value))
          : TypedAttr(b.getIntegerAttr(element, static_cast<int64_t>(value)));
  Type type = sameShape(like, element);
  if (auto v = dyn_cast<VectorType>(type))
    return arith::ConstantOp::create(b, loc, DenseElementsAttr::get(v, scalar));
  return arith::ConstantOp::create(b, loc, scalar);
}

Value emitBinaryMath(OpBuilder &b, Location loc, Operation *op, Value x,
                     Value y) {
  if (isa<FloatType>(getElementTypeOrSelf(x.getType()))) {
    if (isa<AddOp>(op)) return arith::AddFOp::create(b, loc, x, y);
    if (isa<SubOp>(op)) return arith::SubFOp::create(b, loc, x, y);
    if (isa<MulOp>(op)) return arith::MulFOp::create(b, loc, x, y);
    if (isa<DivOp>(op)) return arith::DivFOp::create(b, loc, x, y);
    if (isa<MaxOp>(op)) return arith::MaximumFOp::create(b, loc, x, y);
    if (isa<MinOp>(op)) return arith::MinimumFOp::create(b, loc, x, y);
    return math::PowFOp::create(b, loc, x, y);
  }
  if (isa<AddOp>(op)) return arith::AddIOp::create(b, loc, x, y);
  if (isa<SubOp>(op)) return arith::SubIOp::create(b, loc, x, y);
  if (isa<MulOp>(op)) return arith::MulIOp::create(b, loc, x, y);
  if (isa<DivOp>(op)) return arith::DivSIOp::create(b, loc, x, y);
  if (isa<MaxOp>(op)) return arith::MaxSIOp::create(b, loc, x, y);
  return arith::MinSIOp::create(b, loc, x, y);
}

Value emitUnaryMath(OpBuilder &b, Location loc, Operation *op, Value x) {
  Type type = x.getType(), element = getElementTypeOrSelf(type);
  auto constant = [&](double v) { return constantLike(b, loc, type, element, v); };
  if (!isa<FloatType>(element)) {
    Value zero = constant(0);
    if (isa<NegOp>(op))
      return arith::SubIOp::create(b, loc, zero, x);
    if (isa<ReluOp>(op))
      return arith::MaxSIOp::create(b, loc, x, zero);
    return math::AbsIOp::create(b, loc, x);
  }
  Value one = constant(1.0);
  auto sigmoid = [&](Value v) {
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, v));
    return arith::DivFOp::create(b, loc, one, arith::AddFOp::create(b, loc, one, e));
  };
  if (isa<NegOp>(op)) return arith::NegFOp::create(b, loc, x);
  if (isa<AbsOp>(op)) return math::AbsFOp::create(b, loc, x);
  if (isa<ExpOp>(op)) return math::ExpOp::create(b, loc, x);
  if (isa<LogOp>(op)) return math::LogOp::create(b, loc, x);
  if (isa<SqrtOp>(op)) return math::SqrtOp::create(b, loc, x);
  if (isa<RsqrtOp>(op)) return math::RsqrtOp::create(b, loc, x);
  if (isa<ReciprocalOp>(op)) return arith::DivFOp::create(b, loc, one, x);
  if (isa<TanhOp>(op)) return math::TanhOp::create(b, loc, x);
  if (isa<SigmoidOp>(op)) return sigmoid(x);
  if (isa<SiluOp>(op)) return arith::MulFOp::create(b, loc, x, sigmoid(x));
  if (isa<ReluOp>(op)) return arith::MaximumFOp::create(b, loc, x, constant(0.0));
  auto gelu = cast<GeluOp>(op);
  Value half = arith::MulFOp::create(b, loc, constant(0.5), x);
  Value inner;
  if (gelu.getApproximation() == GeluApproximation::Tanh) {
    Value cube = arith::MulFOp::create(
        b, loc, x, arith::MulFOp::create(b, loc, x, x));
    Value poly = arith::AddFOp::create(
        b, loc, x, arith::MulFOp::create(b, loc, constant(0.044715), cube));
    inner = math::TanhOp::create(
        b, loc,
        arith::MulFOp::create(b, loc, constant(std::sqrt(2.0 / M_PI)), poly));
  } else {
    inner = math::ErfOp::create(
        b, loc, arith::MulFOp::create(b, loc, x, constant(M_SQRT1_2)));
  }
  return arith::MulFOp::create(b, loc, half,
                               arith::AddFOp::create(b, loc, one, inner));
}

Value convertElements(OpBuilder &b, Location loc, Value x, Type to) {
  Type fromType = x.getType();
  Type from = getElementTypeOrSelf(fromType);
  if (from == to)
    return x;
  Type toType = sameShape(fromType, to);
  auto fromFloat = dyn_cast<FloatType>(from), toFloat = dyn_cast<FloatType>(to);
  if (fromFloat && toFloat)
    return fromFloat.getWidth() < toFloat.getWidth()
               ? arith::ExtFOp::create(b, loc, toType, x).getResult()
               : arith::TruncFOp::create(b, loc, toType, x).getResult();
  if (fromFloat)
    return to.isInteger(1)
               ? arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNE, x,
                                       constantLike(b, loc, fromType, from, 0.0))
                     .getResult()
               : arith::FPToSIOp::create(b, loc, toType, x).getResult();
  if (toFloat)
    return from.isInteger(1)
               ? arith::UIToFPOp::create(b, loc, toType, x).getResult()
               : arith::SIToFPOp::create(b, loc, toType, x).getResult();
  unsigned fromBits = from.getIntOrFloatBitWidth(),
           toBits = to.getIntOrFloatBitWidth();
  if (toBits == 1)
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, x,
                                 constantLike(b, loc, fromType, from, 0));
  if (fromBits < toBits)
    return fromBits == 1
               ? arith::ExtUIOp::create(b, loc, toType, x).getResult()
               : arith::ExtSIOp::create(b, loc, toType, x).getResult();
  return arith::TruncIOp::create(b, loc, toType, x);
}

Value emitLlama3Frequency(OpBuilder &b, Location loc, Value inv, ArrayRef<double> llama3) {
  Type f32 = b.getF32Type();
  auto c = [&](double v) { return constantLike(b, loc, inv.getType(), f32, v); };
  const double factor = llama3[0], low = llama3[1], high = llama3[2], context = llama3[3];
  Value wavelength = arith::DivFOp::create(b, loc, c(2.0 * M_PI), inv);
  Value divided = arith::DivFOp::create(b, loc, inv, c(factor));
  // smooth = (context / wavelength - low) / (high - low)
  Value smooth = arith::DivFOp::create(
      b, loc,
      arith::SubFOp::create(b, loc, arith::DivFOp::create(b, loc, c(context), wavelength),
                            c(low)),
      c(high - low));
  Value blended = arith::AddFOp::create(
      b, loc,
      arith::MulFOp::create(b, loc, arith::SubFOp::create(b, loc, c(1.0), smooth), divided),
      arith::MulFOp::create(b, loc, smooth, inv));
  Value isShort = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, wavelength,
                                        c(context / high));
  Value isLong = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, wavelength,
                                       c(context / low));
  Value result = arith::SelectOp::create(b, loc, isLong, divided, blended);
  return arith::SelectOp::create(b, loc, isShort, inv, result);
}

Value emitRopeTable(OpBuilder &b, Location loc, ArrayRef<float> values) {
  ArrayRef<uint8_t> bytes(reinterpret_cast<const uint8_t *>(values.data()),
                          values.size() * sizeof(float));
  std::string name;
  llvm::raw_string_ostream(name) << "gai_rope_frequencies_"
                                 << llvm::format_hex_no_prefix(llvm::xxh3_64bits(bytes), 16);
  auto type = MemRefType::get({static_cast<int64_t>(values.size())}, b.getF32Type());
  Operation *scope = b.getInsertionBlock()->getParentOp();
  auto module = isa<ModuleOp>(scope) ? cast<ModuleOp>(scope) : scope->getParentOfType<ModuleOp>();
  if (!SymbolTable::lookupSymbolIn(module, name)) {
    OpBuilder top = OpBuilder::atBlockBegin(module.getBody());
    auto data = DenseElementsAttr::get(RankedTensorType::get(type.getShape(), b.getF32Type()),
                                       ArrayRef<float>(values));
    memref::GlobalOp::create(top, loc, name, top.getStringAttr("private"), type, data,
                             /*constant=*/true, /*alignment=*/IntegerAttr());
  }
  return memref::GetGlobalOp::create(b, loc, type, name);
}

} // namespace gai
