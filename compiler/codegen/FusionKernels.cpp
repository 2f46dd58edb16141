// gai.fusion → scf loops over memrefs, row by row.
//
// A region's result is walked one row (its last dimension) at a time. Every
// value in the region lines up with those rows: its leading dimensions
// broadcast to the result's leading dimensions (right-aligned, NumPy style)
// and its own last dimension is its row. Row ops read a whole row, so their
// inputs may be longer than the result's row (a reduction to one element).
#include "compiler/codegen/FusionKernels.h"

#include "compiler/codegen/ElementMath.h"
#include "compiler/codegen/FusionRows.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "llvm/ADT/DenseMap.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gai;

namespace gai {

void loadKernelDialects(MLIRContext &context) {
  context.loadDialect<func::FuncDialect, arith::ArithDialect,
                      math::MathDialect, memref::MemRefDialect,
                      scf::SCFDialect, gpu::GPUDialect,
                      vector::VectorDialect, NVVM::NVVMDialect>();
}

namespace {

class KernelBuilder {
public:
  KernelBuilder(FusionOp fusion, OpBuilder &b)
      : fusion(fusion), b(b), loc(fusion.getLoc()) {
    outer = shapeOf(fusion->getResult(0));
    if (!outer.empty())
      outer = outer.drop_back();
  }

  FailureOr<func::FuncOp> build(StringRef name);

private:
  Type computeType(Type element) {
    return isa<FloatType>(element) ? b.getF32Type() : element;
  }
  Value index(int64_t i) { return arith::ConstantIndexOp::create(b, loc, i); }
  Value f32(double x) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(x));
  }
  /// The row's indices into `v`'s leading dimensions (0 where it broadcasts).
  SmallVector<Value> leadingIndices(Value v);
  /// Element `j` of `v`'s current row, in its compute type.
  Value load(Value v, Value j);
  Value emitElement(Operation *op, Value j);
  Value convert(Value x, Type to) { return convertElements(b, loc, x, to); }
  void emitRowOp(Operation *op);
  /// for j in [0, n): body(j), optionally carrying one f32 accumulator.
  void forEach(int64_t n, function_ref<void(Value)> body);
  Value accumulate(int64_t n, Value init,
                   function_ref<Value(Value j, Value acc)> body);

  FusionOp fusion;
  OpBuilder &b;
  Location loc;
  ArrayRef<int64_t> outer;
  SmallVector<Value> outerIvs;
  DenseMap<Value, Value> memrefOf;  // region inputs and the result
  DenseMap<Value, Value> rowBuffer; // materialised values
  DenseSet<Value> inlined;          // computed where used
};

SmallVector<Value> KernelBuilder::leadingIndices(Value v) {
  ArrayRef<int64_t> shape = shapeOf(v);
  SmallVector<Value> indices;
  if (shape.empty())
    return indices;
  size_t lead = shape.size() - 1, shift = outer.size() - lead;
  for (size_t i = 0; i < lead; ++i)
    indices.push_back(shape[i] == 1 ? index(0) : outerIvs[i + shift]);
  return indices;
}

Value KernelBuilder::load(Value v, Value j) {
  if (rowLength(v) == 1)
    j = index(0);
  if (inlined.contains(v))
    return emitElement(v.getDefiningOp(), j);
  if (Value row = rowBuffer.lookup(v))
    return memref::LoadOp::create(b, loc, row, ValueRange{j});
  // Splat constants cloned into the region.
  if (auto constant = v.getDefiningOp<ConstantOp>()) {
    auto splat = cast<SplatElementsAttr>(constant.getValue());
    Type element = computeType(elementOf(v));
    if (auto f = dyn_cast<FloatType>(element))
      return arith::ConstantOp::create(
          b, loc,
          b.getFloatAttr(f, splat.getSplatValue<APFloat>().convertToDouble()));
    return arith::ConstantOp::create(
        b, loc,
        b.getIntegerAttr(element, splat.getSplatValue<APInt>().getSExtValue()));
  }
  SmallVector<Value> indices = leadingIndices(v);
  if (!shapeOf(v).empty())
    indices.push_back(j);
  Value x = memref::LoadOp::create(b, loc, memrefOf.lookup(v), indices);
  return convert(x, computeType(elementOf(v)));
}

void KernelBuilder::forEach(int64_t n, function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, loc, index(0), index(n), index(1));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  body(loop.getInductionVar());
}

Value KernelBuilder::accumulate(int64_t n, Value init,
                                function_ref<Value(Value, Value)> body) {
  auto loop = scf::ForOp::create(b, loc, index(0), index(n), index(1),
                                 ValueRange{init});
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value next = body(loop.getInductionVar(), loop.getRegionIterArgs()[0]);
  scf::YieldOp::create(b, loc, next);
  return loop.getResult(0);
}

Value KernelBuilder::emitElement(Operation *op, Value j) {
  Value result = op->getResult(0);
  if (isa<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, PowOp>(op))
    return emitBinaryMath(b, loc, op, load(op->getOperand(0), j),
                          load(op->getOperand(1), j));
  if (isa<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp,
          SigmoidOp, SiluOp, ReluOp, GeluOp>(op))
    return emitUnaryMath(b, loc, op, load(op->getOperand(0), j));
  if (auto c = dyn_cast<ConvertOp>(op))
    return convert(load(c.getInput(), j), computeType(elementOf(result)));
  if (auto s = dyn_cast<SelectOp>(op)) {
    Type type = computeType(elementOf(result));
    return arith::SelectOp::create(b, loc, load(s.getCondition(), j),
                                   convert(load(s.getOnTrue(), j), type),
                                   convert(load(s.getOnFalse(), j), type));
  }
  ArrayRef<int64_t> shape = shapeOf(result);
  if (auto iota = dyn_cast<IotaOp>(op)) {
    auto dim = static_cast<int64_t>(iota.getDim());
    Value i = dim + 1 == static_cast<int64_t>(shape.size())
                  ? j
                  : leadingIndices(result)[dim];
    return arith::IndexCastOp::create(b, loc, elementOf(result), i);
  }
  auto mask = cast<CausalMaskOp>(op);
  // Query i sits at position i + S - T and sees keys j <= position, and with
  // a window W only those with position - j < W.
  int64_t keys = shape.back(), queries = shape[shape.size() - 2];
  Value query = leadingIndices(result).back();
  Value position = arith::AddIOp::create(b, loc, query, index(keys - queries));
  Value visible =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, j, position);
  if (int64_t window = static_cast<int64_t>(mask.getWindow())) {
    Value distance = arith::SubIOp::create(b, loc, position, j);
    Value inside = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                         distance, index(window));
    visible = arith::AndIOp::create(b, loc, visible, inside);
  }
  return visible;
}

void KernelBuilder::emitRowOp(Operation *op) {
  Value result = op->getResult(0);
  Value out = rowBuffer.lookup(result);
  auto store = [&](Value x, Value j) {
    memref::StoreOp::create(b, loc, x, out, ValueRange{j});
  };
  Value zero = f32(0.0);
  if (isa<RmsNormOp, LayerNormOp>(op)) {
    Value x = op->getOperand(0), w = op->getOperand(1);
    int64_t d = rowLength(x);
    Value n = f32(static_cast<double>(d));
    auto rms = dyn_cast<RmsNormOp>(op);
    auto ln = dyn_cast<LayerNormOp>(op);
    double eps = rms ? rms.getEpsilon().convertToDouble()
                     : ln.getEpsilon().convertToDouble();
    Value mean = zero;
    if (ln)
      mean = arith::DivFOp::create(
          b, loc,
          accumulate(d, zero,
                     [&](Value j, Value acc) {
                       return arith::AddFOp::create(b, loc, acc, load(x, j));
                     }),
          n);
    Value sq = accumulate(d, zero, [&](Value j, Value acc) {
      Value c = load(x, j);
      if (ln)
        c = arith::SubFOp::create(b, loc, c, mean);
      return arith::AddFOp::create(b, loc, acc,
                                   arith::MulFOp::create(b, loc, c, c));
    });
    Value inv = math::RsqrtOp::create(
        b, loc,
        arith::AddFOp::create(b, loc, arith::DivFOp::create(b, loc, sq, n),
                              f32(eps)));
    forEach(rowLength(result), [&](Value j) {
      Value c = load(x, j);
      if (ln)
        c = arith::SubFOp::create(b, loc, c, mean);
      Value scale = load(w, j);
      if (rms && rms.getUnitOffset())
        scale = arith::AddFOp::create(b, loc, scale, f32(1.0));
      Value y = arith::MulFOp::create(
          b, loc, arith::MulFOp::create(b, loc, c, inv), scale);
      if (ln && ln.getBias())
        y = arith::AddFOp::create(b, loc, y, load(ln.getBias(), j));
      store(y, j);
    });
    return;
  }
  if (auto softmax = dyn_cast<SoftmaxOp>(op)) {
    Value x = softmax.getInput();
    int64_t d = rowLength(x);
    Value lowest = f32(-std::numeric_limits<double>::infinity());
    Value max = accumulate(d, lowest, [&](Value j, Value acc) {
      return arith::MaximumFOp::create(b, loc, acc, load(x, j));
    });
    forEach(d, [&](Value j) {
      store(math::ExpOp::create(b, loc,
                                arith::SubFOp::create(b, loc, load(x, j), max)),
            j);
    });
    Value sum = accumulate(d, zero, [&](Value j, Value acc) {
      return arith::AddFOp::create(
          b, loc, acc, memref::LoadOp::create(b, loc, out, ValueRange{j}));
    });
    forEach(d, [&](Value j) {
      Value e = memref::LoadOp::create(b, loc, out, ValueRange{j});
      store(arith::DivFOp::create(b, loc, e, sum), j);
    });
    return;
  }
  if (auto reduce = dyn_cast<ReduceOp>(op)) {
    Value x = reduce.getInput();
    int64_t d = rowLength(x);
    ReduceKind kind = reduce.getKind();
    double init = kind == ReduceKind::Max   ? -INFINITY
                  : kind == ReduceKind::Min ? INFINITY
                                            : 0.0;
    Value acc = accumulate(d, f32(init), [&](Value j, Value acc) -> Value {
      Value v = load(x, j);
      if (kind == ReduceKind::Max)
        return arith::MaximumFOp::create(b, loc, acc, v);
      if (kind == ReduceKind::Min)
        return arith::MinimumFOp::create(b, loc, acc, v);
      return arith::AddFOp::create(b, loc, acc, v);
    });
    if (kind == ReduceKind::Mean)
      acc = arith::DivFOp::create(b, loc, acc, f32(static_cast<double>(d)));
    store(acc, index(0));
    return;
  }
  auto rope = cast<RopeOp>(op);
  // HF computes inverse frequencies and angles in f32.
  Value x = rope.getInput(), positions = rope.getPositions();
  ArrayRef<int64_t> posShape = shapeOf(positions);
  SmallVector<Value> lead = leadingIndices(x); // [b, h, t] or [b, t, h]
  Value position = memref::LoadOp::create(
      b, loc, memrefOf.lookup(positions),
      ValueRange{posShape[0] == 1 ? index(0) : lead[0], lead[rope.tokenAxis()]});
  Value p = arith::SIToFPOp::create(b, loc, b.getF32Type(), position);
  // The rotated part of the row: rotary_dim (the rest passes through).
  const int64_t d = rope.rotatedLength(), rowLen = rowLength(x);
  if (d < rowLen)
    forEach(rowLen - d, [&](Value i) {
      Value j = arith::AddIOp::create(b, loc, i, index(d));
      store(load(x, j), j);
    });
  bool half = rope.getStyle() == RopeStyle::Half;
  float theta = static_cast<float>(rope.getTheta().convertToDouble());
  Value table;
  if (std::optional<ArrayRef<float>> frequencies = rope.getFrequencies())
    table = emitRopeTable(b, loc, *frequencies);
  std::optional<APFloat> attentionFactor = rope.getAttentionFactor();
  forEach(d / 2, [&](Value i) {
    Value inv;
    if (table) {
      inv = memref::LoadOp::create(b, loc, table, ValueRange{i});
    } else {
      Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), i);
      Value two_i = arith::SIToFPOp::create(
          b, loc, b.getF32Type(),
          arith::MulIOp::create(b, loc, i64,
                                arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(2))));
      Value exponent = arith::DivFOp::create(b, loc, two_i, f32(static_cast<double>(d)));
      inv = arith::DivFOp::create(b, loc, f32(1.0),
                                  math::PowFOp::create(b, loc, f32(theta), exponent));
      if (std::optional<ArrayRef<double>> llama3 = rope.getLlama3Scaling())
        inv = emitLlama3Frequency(b, loc, inv, *llama3);
    }
    Value angle = arith::MulFOp::create(b, loc, p, inv);
    Value c = math::CosOp::create(b, loc, angle);
    Value s = math::SinOp::create(b, loc, angle);
    if (attentionFactor) { // HF scales the f32 cosines and sines
      c = arith::MulFOp::create(b, loc, c, f32(attentionFactor->convertToDouble()));
      s = arith::MulFOp::create(b, loc, s, f32(attentionFactor->convertToDouble()));
    }
    Value i1 = half ? i : arith::MulIOp::create(b, loc, i, index(2)).getResult();
    Value i2 = half ? arith::AddIOp::create(b, loc, i, index(d / 2)).getResult()
                    : arith::AddIOp::create(b, loc, i1, index(1)).getResult();
    Value x1 = load(x, i1), x2 = load(x, i2);
    store(arith::SubFOp::create(b, loc, arith::MulFOp::create(b, loc, x1, c),
                                arith::MulFOp::create(b, loc, x2, s)),
          i1);
    store(arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, x2, c),
                                arith::MulFOp::create(b, loc, x1, s)),
          i2);
  });
}

FailureOr<func::FuncOp> KernelBuilder::build(StringRef name) {
  Block &body = fusion.getBody().front();
  auto memrefType = [](Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    return MemRefType::get(t.getShape(), t.getElementType());
  };
  ValueRange yielded = cast<YieldOp>(body.getTerminator()).getValues();
  if (failed(checkFusionRows(fusion, "CPU")))
    return failure();
  if (fusion.getColumnPartials())
    return fusion.emitOpError("column partial results have no CPU kernel (a GPU form: "
                              "gai-fusion's column-partial-rows is for the CUDA target)");

  SmallVector<Type> argTypes;
  for (Value arg : body.getArguments())
    argTypes.push_back(memrefType(arg));
  for (Value result : fusion->getResults())
    argTypes.push_back(memrefType(result));
  auto func = func::FuncOp::create(b, loc, name,
                                   b.getFunctionType(argTypes, {}));
  Block *entry = func.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(entry);
  for (auto [arg, memref] : llvm::zip(body.getArguments(), entry->getArguments()))
    memrefOf[arg] = memref;
  ValueRange outputs = entry->getArguments().take_back(fusion->getNumResults());

  // Row buffers for the values read more than once or by a row op; the
  // rest are computed where they are used.
  for (Operation &op : body.without_terminator()) {
    Value v = op.getResult(0);
    if (isa<ConstantOp>(op))
      continue;
    bool readByRowOp = llvm::any_of(v.getUsers(), isRowOp);
    if (isRowOp(&op) || llvm::is_contained(yielded, v) || !v.hasOneUse() || readByRowOp) {
      auto type = MemRefType::get({rowLength(v)}, computeType(elementOf(v)));
      rowBuffer[v] = memref::AllocaOp::create(b, loc, type);
    } else {
      inlined.insert(v);
    }
  }

  // The loops over the result's rows.
  for (int64_t d : outer) {
    auto loop = scf::ForOp::create(b, loc, index(0), index(d), index(1));
    outerIvs.push_back(loop.getInductionVar());
    b.setInsertionPointToStart(loop.getBody());
  }
  for (Operation &op : body.without_terminator()) {
    Value v = op.getResult(0);
    if (!rowBuffer.count(v))
      continue;
    if (isRowOp(&op)) {
      emitRowOp(&op);
      continue;
    }
    Value row = rowBuffer.lookup(v);
    forEach(rowLength(v), [&](Value j) {
      memref::StoreOp::create(b, loc, emitElement(&op, j), row, ValueRange{j});
    });
  }
  // The result rows to the outputs, in their element types. `load` reads
  // a result's row buffer (every result has one, filled above before any
  // output is written: a result may be written in place over an input
  // another reads), or the region input a yield passes through.
  for (auto [value, output, result] : llvm::zip(yielded, outputs, fusion->getResults()))
    forEach(rowLength(value), [&](Value j) {
      SmallVector<Value> indices(outerIvs.begin(), outerIvs.end());
      if (!shapeOf(value).empty())
        indices.push_back(j);
      memref::StoreOp::create(b, loc, convert(load(value, j), elementOf(result)), output,
                              indices);
    });
  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b, loc);
  return func;
}

} // namespace

FailureOr<func::FuncOp> buildFusionKernel(FusionOp fusion, StringRef name,
                                          OpBuilder &builder) {
  return KernelBuilder(fusion, builder).build(name);
}

} // namespace gai
