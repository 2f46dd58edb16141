// gai.fusion → one GPU kernel (see GpuFusionKernels.h for the mapping).
//
// Unlike the CPU builder, nothing is kept in row buffers: a thread owns the
// vectors j ≡ lane (mod threads per row) of its row, so an element a later
// op needs would usually sit in another thread. Row ops are split into
// their statistics (one value per row, reduced across the threads) and a
// per-element formula over those statistics; everything else is recomputed
// where it is read. The inputs are read from L1/L2 once per statistic,
// unless a thread holds its part of the row in one vector: then each input's
// row is loaded once into registers (preloadRowInputs).
#include "compiler/codegen/GpuFusionKernels.h"

#include "compiler/codegen/ElementMath.h"
#include "compiler/codegen/FusionRows.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::gai;

namespace gai {
namespace {

constexpr int64_t kWarp = 32;
constexpr int64_t kMaxBlock = 256;
constexpr int64_t kVectorBytes = 16;
// The most bytes of one value a thread of a row kernel holds for its row.
constexpr int64_t kMostOwnedBytes = 32;

int64_t elementBytes(Type t) {
  return std::max<int64_t>(t.getIntOrFloatBitWidth() / 8, 1);
}

enum class Combine { Add, Max, Min };

class GpuKernelBuilder {
public:
  GpuKernelBuilder(FusionOp fusion, OpBuilder &b, ArrayRef<unsigned> e4m3Results)
      : fusion(fusion), b(b), loc(fusion.getLoc()) {
    e4m3.assign(fusion->getNumResults(), false);
    for (unsigned i : e4m3Results)
      e4m3[i] = true;
    outer = rowShapeOf(fusion);
    if (!outer.empty())
      outer = outer.drop_back();
    if (std::optional<uint64_t> g = fusion.getPartialRows())
      partialRows = static_cast<int64_t>(*g);
  }

  FailureOr<func::FuncOp> build(StringRef name);

private:
  void chooseShape();
  Type computeType(Type element) {
    return isa<FloatType>(element) ? b.getF32Type() : element;
  }
  /// The type of `lanes` elements of `element` (a scalar when 1).
  Type laneType(Type element) {
    return lanes == 1 ? element : VectorType::get({lanes}, element);
  }
  Value index(int64_t i) { return arith::ConstantIndexOp::create(b, loc, i); }
  Value f32(double x) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(x));
  }
  /// A constant with the current lane count.
  Value lanesOf(Type element, double x) {
    return constantLike(b, loc, laneType(element), element, x);
  }
  Value broadcast(Value scalar) {
    if (lanes == 1)
      return scalar;
    return vector::BroadcastOp::create(
        b, loc, VectorType::get({lanes}, scalar.getType()), scalar);
  }
  /// j, j + 1, …, j + lanes - 1 as an index vector (or j).
  Value laneIndices(Value j) {
    if (lanes == 1)
      return j;
    // A constant rather than vector.step, which the NVVM lowering lacks.
    SmallVector<APInt> steps;
    for (int64_t i = 0; i < lanes; ++i)
      steps.emplace_back(64, i);
    Value step = arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(VectorType::get({lanes}, b.getIndexType()), steps));
    return arith::AddIOp::create(b, loc, broadcast(j), step);
  }
  SmallVector<Value> leadingIndices(Value v);
  Value load(Value v, Value j);
  /// Element j of the row of region input `v` at leading indices `lead`,
  /// in the compute type (loadRaw: as stored).
  Value loadMemory(Value v, SmallVector<Value> lead, Value j);
  Value loadRaw(Value v, SmallVector<Value> lead, Value j);
  Value emitElement(Operation *op, Value j);
  Value emitRowElement(Operation *op, Value j);
  void emitStatistics(Operation *op);
  /// The row's `combine` of value(j) over j in [0, n), on every thread.
  Value reduceRow(int64_t n, Combine combine, function_ref<Value(Value)> value);
  /// The row's max and Σ exp(x - max) in one pass (online, as flash
  /// attention keeps them): a softmax's input is read twice, not three times.
  std::pair<Value, Value> softmaxStatistics(int64_t n, function_ref<Value(Value)> value);
  Value combineValues(Combine combine, Value x, Value y);
  Value crossThreadReduce(Combine combine, Value partial);
  /// for each vector j of the row owned by this thread: body(j).
  void forEachOwned(int64_t n, function_ref<void(Value)> body);
  int64_t lanesFor(int64_t n) const { return n % vectorWidth == 0 ? vectorWidth : 1; }
  /// Loads, at the kernel's start, each input that every row shares (a
  /// norm's weight) when a thread owns at most one vector of the row.
  void preloadSharedRows(Value root);
  /// Loads, at each row's start, the row of each input that only this
  /// row's elements read, when a thread owns one vector of the row: the
  /// statistics and the results then read registers, not L1/L2 again.
  void preloadRowInputs(Value root);
  /// Loads this thread's `width`-lane vector of input `arg`'s row at `lead`
  /// into `preloaded`; returns the load.
  Operation *preloadOwned(Value arg, SmallVector<Value> lead, int64_t width);
  /// Whether `width` lanes divide every row the kernel reads or writes.
  bool widthFits(int64_t width);
  /// The alignment of a `lanes`-wide (or `count`-wide) access: a vector's
  /// bytes, at most 16 (wider ones are issued as 16-byte accesses).
  llvm::Align vectorAlign(Type element, int64_t count = 0) const {
    int64_t bytes = (count ? count : lanes) * elementBytes(element);
    return llvm::Align(std::min<int64_t>(bytes, kVectorBytes));
  }
  /// Adds `x` into the block's row of column partial `output`: the first
  /// of the block's rows stores it.
  void accumulatePartial(Value x, Value output, Value column);
  /// Result `value`'s row maximum of |x| (x rounded to bf16, as it would be
  /// stored): stores the row's scale amax / 448 (1 for a zero row) from the
  /// row's first thread and returns 448 / amax (1), the factor to e4m3.
  Value e4m3Factor(Value value, Value scales);
  /// Stores `x` (f32, `lanes` wide) times `factor` as e4m3 at `indices`.
  void storeE4m3(Value x, Value factor, Value output, ValueRange indices);

  FusionOp fusion;
  OpBuilder &b;
  Location loc;
  ArrayRef<int64_t> outer;
  int64_t rows = 1, vectorWidth = 1, threadsPerRow = kWarp, rowsPerBlock = 1;
  int64_t blocksPerRow = 1; // > 1: an elementwise row longer than a block
  int64_t partialRows = 1;  // > 1: a block's rows, summed in column partials
  bool hasStatistics = false, hasRope = false;
  SmallVector<bool> e4m3; // by result: stored in e4m3 with a scale a row
  Value block, rowInBlock;
  int64_t lanes = 1; // of the loop being emitted
  Value lane;        // this thread's index within its row's threads
  SmallVector<Value> outerIvs;
  DenseMap<Value, Value> memrefOf;
  DenseMap<Operation *, SmallVector<Value, 2>> stats;
  DenseMap<Value, Value> preloaded; // input → its owned vector, in compute type
  int64_t preloadedLanes = 0;
};

void GpuKernelBuilder::chooseShape() {
  Block &body = fusion.getBody().front();
  rows = 1;
  for (int64_t d : outer)
    rows *= d;
  // The vector width: 16 bytes of the widest element in memory, if every
  // row (and every RoPE half) divides into such vectors; i1 memory is
  // read a byte at a time.
  int64_t widest = 1;
  bool scalarOnly = false;
  // RoPE positions are one element per row (loaded by row index), not a
  // row: they neither set the vector width nor the row length.
  llvm::SmallPtrSet<Value, 2> positions;
  for (Operation &op : body.without_terminator()) {
    if (auto rope = dyn_cast<RopeOp>(op))
      positions.insert(rope.getPositions());
    else if (isRowOp(&op))
      hasStatistics = true;
  }
  // An e4m3 result's row maximum is a statistic too.
  hasStatistics |= llvm::is_contained(e4m3, true);
  hasRope = !positions.empty();
  SmallVector<Value> memoryValues;
  for (Value arg : body.getArguments())
    if (!positions.contains(arg))
      memoryValues.push_back(arg);
  for (Value result : fusion->getResults())
    memoryValues.push_back(result);
  for (Value v : memoryValues) {
    if (rowLength(v) <= 1)
      continue;
    Type e = elementOf(v);
    scalarOnly |= e.isInteger(1);
    widest = std::max(widest, elementBytes(e));
  }
  vectorWidth = scalarOnly ? 1 : kVectorBytes / widest;
  auto fits = [&](int64_t n) { return n <= 1 || n % vectorWidth == 0; };
  int64_t longest = 1;
  for (Value v : memoryValues)
    if (!fits(rowLength(v)))
      vectorWidth = 1;
  for (Operation &op : body.without_terminator()) {
    int64_t n = rowLength(op.getResult(0));
    for (Value operand : op.getOperands())
      if (!positions.contains(operand))
        longest = std::max(longest, rowLength(operand));
    longest = std::max(longest, n);
    if (!fits(n))
      vectorWidth = 1;
    if (auto rope = dyn_cast<RopeOp>(op)) {
      // A vector lies wholly in a half of the rotated part, or in the part
      // that passes through.
      const int64_t rotated = rope.rotatedLength();
      if (rope.getStyle() == RopeStyle::Half ? !fits(rotated / 2) : vectorWidth % 2)
        vectorWidth = 1;
      if (!fits(rotated))
        vectorWidth = 1;
    }
  }
  longest = std::max(longest, rowLength(fusion->getResult(0)));
  int64_t vectors = llvm::divideCeil(longest, vectorWidth);
  if (vectors <= kWarp && !hasStatistics) {
    // Nothing crosses threads: a thread per vector, rows packed into the
    // block (a RoPE over 64-wide heads is 8 threads a row, not a warp).
    threadsPerRow = static_cast<int64_t>(llvm::PowerOf2Ceil(vectors));
    rowsPerBlock = std::min<int64_t>(kMaxBlock / threadsPerRow, rows);
  } else if (vectors <= kWarp) {
    threadsPerRow = kWarp;
    rowsPerBlock = std::min<int64_t>(kMaxBlock / kWarp, rows);
  } else if (!hasStatistics && vectors > kMaxBlock) {
    // A long elementwise row (decode's SiLU·up over 5632) spreads over
    // blocks, a vector a thread: one block looping over it serializes the
    // loads that a few blocks issue at once.
    blocksPerRow = llvm::divideCeil(vectors, kMaxBlock);
    threadsPerRow = blocksPerRow * kMaxBlock;
    rowsPerBlock = 1;
  } else {
    threadsPerRow = std::min<int64_t>(kMaxBlock, llvm::PowerOf2Ceil(vectors));
    rowsPerBlock = 1;
  }
  if (partialRows > 1) {
    // A block's threads own the same columns in each of its rows, so a
    // column's partial sum stays with one thread.
    rowsPerBlock = 1;
    if (blocksPerRow > 1) {
      blocksPerRow = 1;
      threadsPerRow = kMaxBlock;
    }
  }
  // A row kernel reads its inputs once per statistic and once for the
  // results. Where a block's threads hold the row in one wider vector each
  // (at most kMostOwnedBytes a value), the row is loaded once, into
  // registers (preloadRowInputs), and bf16 rows load 16 bytes at a time
  // beside f32 ones. RMSNorm's backward at llama-1b's 2048 columns read
  // each input three times before.
  if (hasStatistics && !hasRope && blocksPerRow == 1 && rowsPerBlock == 1 &&
      vectorWidth > 1 && longest > threadsPerRow * vectorWidth &&
      longest % threadsPerRow == 0) {
    int64_t owned = longest / threadsPerRow;
    if (llvm::isPowerOf2_64(owned) && owned * widest <= kMostOwnedBytes && widthFits(owned))
      vectorWidth = owned;
  }
}

bool GpuKernelBuilder::widthFits(int64_t width) {
  auto fits = [&](Value v) {
    int64_t n = rowLength(v);
    return n <= 1 || n % width == 0;
  };
  Block &body = fusion.getBody().front();
  for (Value arg : body.getArguments())
    if (!fits(arg))
      return false;
  for (Value result : fusion->getResults())
    if (!fits(result))
      return false;
  for (Operation &op : body.without_terminator()) {
    if (!fits(op.getResult(0)))
      return false;
    for (Value operand : op.getOperands())
      if (!fits(operand))
        return false;
  }
  return true;
}

void GpuKernelBuilder::accumulatePartial(Value x, Value output, Value column) {
  SmallVector<Value> indices = {block, column};
  auto store = [&](Value v) {
    if (lanes == 1)
      memref::StoreOp::create(b, loc, v, output, indices);
    else
      vector::StoreOp::create(b, loc, v, output, indices, false, vectorAlign(b.getF32Type()));
  };
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, rowInBlock, index(0));
  auto ifFirst = scf::IfOp::create(b, loc, first, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(&ifFirst.getThenRegion().front());
  store(x);
  b.setInsertionPointToStart(&ifFirst.getElseRegion().front());
  Value sum = lanes == 1 ? memref::LoadOp::create(b, loc, output, indices).getResult()
                         : vector::LoadOp::create(b, loc, x.getType(), output, indices,
                                                  false, vectorAlign(b.getF32Type()))
                               .getResult();
  store(arith::AddFOp::create(b, loc, sum, x));
}

SmallVector<Value> GpuKernelBuilder::leadingIndices(Value v) {
  ArrayRef<int64_t> shape = shapeOf(v);
  SmallVector<Value> indices;
  if (shape.empty())
    return indices;
  size_t lead = shape.size() - 1, shift = outer.size() - lead;
  for (size_t i = 0; i < lead; ++i)
    indices.push_back(shape[i] == 1 ? index(0) : outerIvs[i + shift]);
  return indices;
}

Value GpuKernelBuilder::load(Value v, Value j) {
  if (rowLength(v) == 1 && lanes > 1) {
    // One element per row, the same for every lane.
    int64_t saved = lanes;
    lanes = 1;
    Value x = load(v, index(0));
    lanes = saved;
    return broadcast(x);
  }
  if (rowLength(v) == 1)
    j = index(0);
  Operation *def = v.getDefiningOp();
  if (auto constant = dyn_cast_or_null<ConstantOp>(def)) {
    auto splat = cast<SplatElementsAttr>(constant.getValue());
    Type element = computeType(elementOf(v));
    double value = isa<FloatType>(element)
                       ? splat.getSplatValue<APFloat>().convertToDouble()
                       : static_cast<double>(splat.getSplatValue<APInt>().getSExtValue());
    return lanesOf(element, value);
  }
  if (auto transpose = dyn_cast_or_null<TransposeOp>(def)) {
    // Result dim i is input dim permutation[i]; the row (last axis) stays.
    SmallVector<Value> resultLead = leadingIndices(v);
    ArrayRef<int64_t> permutation = transpose.getPermutation();
    SmallVector<Value> lead(resultLead.size());
    for (size_t i = 0; i < resultLead.size(); ++i)
      lead[permutation[i]] = resultLead[i];
    return loadMemory(transpose.getInput(), lead, j);
  }
  if (def)
    return isRowOp(def) ? emitRowElement(def, j) : emitElement(def, j);
  return loadMemory(v, leadingIndices(v), j);
}

void GpuKernelBuilder::preloadSharedRows(Value root) {
  const int64_t n = rowLength(root);
  const int64_t width = lanesFor(n);
  // RoPE reads a row at its partners' indices, not only the owned ones.
  if (blocksPerRow != 1 || threadsPerRow * width < n || n <= 1 || hasRope)
    return;
  Block &body = fusion.getBody().front();
  for (auto [i, arg] : llvm::enumerate(body.getArguments())) {
    if (shapeOf(arg).size() != 1 || rowLength(arg) != n || arg.use_empty())
      continue;
    preloadOwned(arg, {}, width)->setAttr(kPreloadAttr,
                                          b.getI64IntegerAttr(static_cast<int64_t>(i)));
  }
}

Operation *GpuKernelBuilder::preloadOwned(Value arg, SmallVector<Value> lead, int64_t width) {
  const int64_t n = rowLength(arg);
  // A thread past the row's end loads its last vector, unused.
  Value j = arith::MinUIOp::create(b, loc, arith::MulIOp::create(b, loc, lane, index(width)),
                                   index(n - width));
  int64_t saved = lanes;
  lanes = width;
  Value x = loadRaw(arg, std::move(lead), j);
  lanes = saved;
  preloaded[arg] = convertElements(b, loc, x, computeType(elementOf(arg)));
  preloadedLanes = width;
  return x.getDefiningOp();
}

void GpuKernelBuilder::preloadRowInputs(Value root) {
  const int64_t n = rowLength(root);
  const int64_t width = lanesFor(n);
  if (!hasStatistics || hasRope || blocksPerRow != 1 || threadsPerRow * width < n || n <= 1 ||
      width == 1)
    return;
  Block &body = fusion.getBody().front();
  for (Value arg : body.getArguments()) {
    if (shapeOf(arg).size() < 2 || rowLength(arg) != n || arg.use_empty() ||
        preloaded.count(arg))
      continue;
    // A transpose reads the input at other rows than this one's.
    if (llvm::any_of(arg.getUsers(), [](Operation *user) { return isa<TransposeOp>(user); }))
      continue;
    preloadOwned(arg, leadingIndices(arg), width);
  }
}

Value GpuKernelBuilder::loadMemory(Value v, SmallVector<Value> indices, Value j) {
  if (auto it = preloaded.find(v); it != preloaded.end() && lanes == preloadedLanes)
    return it->second;
  return convertElements(b, loc, loadRaw(v, std::move(indices), j), computeType(elementOf(v)));
}

Value GpuKernelBuilder::loadRaw(Value v, SmallVector<Value> indices, Value j) {
  if (!shapeOf(v).empty())
    indices.push_back(j);
  Value memref = memrefOf.lookup(v);
  Value x;
  if (lanes == 1) {
    x = memref::LoadOp::create(b, loc, memref, indices);
  } else {
    auto type = VectorType::get({lanes}, elementOf(v));
    x = vector::LoadOp::create(b, loc, type, memref, indices, false,
                               vectorAlign(elementOf(v)));
  }
  return x;
}

Value GpuKernelBuilder::emitElement(Operation *op, Value j) {
  Value result = op->getResult(0);
  if (isa<AddOp, SubOp, MulOp, DivOp, MaxOp, MinOp, PowOp>(op))
    return emitBinaryMath(b, loc, op, load(op->getOperand(0), j),
                          load(op->getOperand(1), j));
  if (isa<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp,
          SigmoidOp, SiluOp, ReluOp, GeluOp>(op))
    return emitUnaryMath(b, loc, op, load(op->getOperand(0), j));
  if (auto c = dyn_cast<ConvertOp>(op))
    return convertElements(b, loc, load(c.getInput(), j),
                           computeType(elementOf(result)));
  if (auto s = dyn_cast<SelectOp>(op)) {
    Type type = computeType(elementOf(result));
    return arith::SelectOp::create(
        b, loc, load(s.getCondition(), j),
        convertElements(b, loc, load(s.getOnTrue(), j), type),
        convertElements(b, loc, load(s.getOnFalse(), j), type));
  }
  ArrayRef<int64_t> shape = shapeOf(result);
  if (auto iota = dyn_cast<IotaOp>(op)) {
    auto dim = static_cast<int64_t>(iota.getDim());
    Value i = dim + 1 == static_cast<int64_t>(shape.size())
                  ? laneIndices(j)
                  : broadcast(leadingIndices(result)[dim]);
    return arith::IndexCastOp::create(b, loc, laneType(elementOf(result)), i);
  }
  auto mask = cast<CausalMaskOp>(op);
  // As on the CPU: query i sits at position i + S - T.
  int64_t keys = shape.back(), queries = shape[shape.size() - 2];
  Value query = leadingIndices(result).back();
  Value position =
      broadcast(arith::AddIOp::create(b, loc, query, index(keys - queries)));
  Value key = laneIndices(j);
  Value visible =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, key, position);
  if (int64_t window = static_cast<int64_t>(mask.getWindow())) {
    Value distance = arith::SubIOp::create(b, loc, position, key);
    Value inside = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                         distance, broadcast(index(window)));
    visible = arith::AndIOp::create(b, loc, visible, inside);
  }
  return visible;
}

Value GpuKernelBuilder::combineValues(Combine combine, Value x, Value y) {
  switch (combine) {
  case Combine::Add: return arith::AddFOp::create(b, loc, x, y);
  case Combine::Max: return arith::MaximumFOp::create(b, loc, x, y);
  case Combine::Min: return arith::MinimumFOp::create(b, loc, x, y);
  }
  llvm_unreachable("combine");
}

Value GpuKernelBuilder::crossThreadReduce(Combine combine, Value partial) {
  if (threadsPerRow == kWarp) {
    // Butterfly within the row's warp: every lane ends with the result.
    Value width = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(kWarp));
    for (int32_t offset = kWarp / 2; offset > 0; offset /= 2) {
      Value o = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(offset));
      Value other = gpu::ShuffleOp::create(b, loc, partial, o, width,
                                           gpu::ShuffleMode::XOR)
                        .getShuffleResult();
      partial = combineValues(combine, partial, other);
    }
    return partial;
  }
  gpu::AllReduceOperation kind = combine == Combine::Add ? gpu::AllReduceOperation::ADD
                                 : combine == Combine::Max
                                     ? gpu::AllReduceOperation::MAXIMUMF
                                     : gpu::AllReduceOperation::MINIMUMF;
  return gpu::AllReduceOp::create(
      b, loc, partial, gpu::AllReduceOperationAttr::get(b.getContext(), kind),
      b.getUnitAttr());
}

void GpuKernelBuilder::forEachOwned(int64_t n, function_ref<void(Value)> body) {
  int64_t saved = lanes;
  lanes = lanesFor(n);
  Value start = arith::MulIOp::create(b, loc, lane, index(lanes));
  auto loop = scf::ForOp::create(b, loc, start, index(n),
                                 index(threadsPerRow * lanes));
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    body(loop.getInductionVar());
  }
  lanes = saved;
}

Value GpuKernelBuilder::reduceRow(int64_t n, Combine combine,
                                  function_ref<Value(Value)> value) {
  double init = combine == Combine::Add   ? 0.0
                : combine == Combine::Max ? -INFINITY
                                          : INFINITY;
  int64_t saved = lanes;
  lanes = lanesFor(n);
  Value start = arith::MulIOp::create(b, loc, lane, index(lanes));
  auto loop = scf::ForOp::create(b, loc, start, index(n),
                                 index(threadsPerRow * lanes),
                                 ValueRange{f32(init)});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value x = value(loop.getInductionVar());
    if (lanes > 1) {
      vector::CombiningKind kind = combine == Combine::Add ? vector::CombiningKind::ADD
                                   : combine == Combine::Max
                                       ? vector::CombiningKind::MAXIMUMF
                                       : vector::CombiningKind::MINIMUMF;
      x = vector::ReductionOp::create(b, loc, kind, x);
    }
    scf::YieldOp::create(
        b, loc, combineValues(combine, loop.getRegionIterArgs()[0], x));
  }
  lanes = saved;
  return crossThreadReduce(combine, loop.getResult(0));
}

std::pair<Value, Value>
GpuKernelBuilder::softmaxStatistics(int64_t n, function_ref<Value(Value)> value) {
  // exp(x - m) with m = -inf counted as 0: a row (so far) of -inf adds 0,
  // never exp(-inf + inf).
  auto finite = [&](Value m) {
    Value isInf = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, m, f32(-INFINITY));
    return arith::SelectOp::create(b, loc, isInf, f32(0.0), m).getResult();
  };
  int64_t saved = lanes;
  lanes = lanesFor(n);
  Value start = arith::MulIOp::create(b, loc, lane, index(lanes));
  auto loop = scf::ForOp::create(b, loc, start, index(n), index(threadsPerRow * lanes),
                                 ValueRange{f32(-INFINITY), f32(0.0)});
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value m = loop.getRegionIterArgs()[0], s = loop.getRegionIterArgs()[1];
    Value x = value(loop.getInductionVar());
    Value top = lanes > 1 ? vector::ReductionOp::create(b, loc, vector::CombiningKind::MAXIMUMF, x)
                                .getResult()
                          : x;
    Value next = arith::MaximumFOp::create(b, loc, m, top);
    Value base = finite(next);
    Value e = math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, x, broadcast(base)));
    if (lanes > 1)
      e = vector::ReductionOp::create(b, loc, vector::CombiningKind::ADD, e);
    Value rescaled = arith::MulFOp::create(
        b, loc, s, math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, m, base)));
    scf::YieldOp::create(b, loc, ValueRange{next, arith::AddFOp::create(b, loc, rescaled, e)});
  }
  lanes = saved;
  Value threadMax = loop.getResult(0), threadSum = loop.getResult(1);
  Value max = crossThreadReduce(Combine::Max, threadMax);
  Value scaled = arith::MulFOp::create(
      b, loc, threadSum,
      math::ExpOp::create(b, loc, arith::SubFOp::create(b, loc, threadMax, finite(max))));
  return {max, crossThreadReduce(Combine::Add, scaled)};
}

void GpuKernelBuilder::emitStatistics(Operation *op) {
  if (isa<RmsNormOp, LayerNormOp>(op)) {
    Value x = op->getOperand(0);
    int64_t d = rowLength(x);
    Value n = f32(static_cast<double>(d));
    auto rms = dyn_cast<RmsNormOp>(op);
    double eps = rms ? rms.getEpsilon().convertToDouble()
                     : cast<LayerNormOp>(op).getEpsilon().convertToDouble();
    Value mean = f32(0.0);
    if (!rms)
      mean = arith::DivFOp::create(
          b, loc, reduceRow(d, Combine::Add, [&](Value j) { return load(x, j); }),
          n);
    Value sq = reduceRow(d, Combine::Add, [&](Value j) {
      Value c = load(x, j);
      if (!rms)
        c = arith::SubFOp::create(b, loc, c, broadcast(mean));
      return arith::MulFOp::create(b, loc, c, c);
    });
    Value inv = math::RsqrtOp::create(
        b, loc,
        arith::AddFOp::create(b, loc, arith::DivFOp::create(b, loc, sq, n),
                              f32(eps)));
    stats[op] = {mean, inv};
    return;
  }
  if (auto softmax = dyn_cast<SoftmaxOp>(op)) {
    Value x = softmax.getInput();
    auto [max, sum] = softmaxStatistics(rowLength(x), [&](Value j) { return load(x, j); });
    stats[op] = {max, sum};
    return;
  }
  if (auto reduce = dyn_cast<ReduceOp>(op)) {
    Value x = reduce.getInput();
    int64_t d = rowLength(x);
    ReduceKind kind = reduce.getKind();
    Combine combine = kind == ReduceKind::Max   ? Combine::Max
                      : kind == ReduceKind::Min ? Combine::Min
                                                : Combine::Add;
    Value acc = reduceRow(d, combine, [&](Value j) { return load(x, j); });
    if (kind == ReduceKind::Mean)
      acc = arith::DivFOp::create(b, loc, acc, f32(static_cast<double>(d)));
    stats[op] = {acc};
    return;
  }
  // RoPE's per-row statistic is the position.
  auto rope = cast<RopeOp>(op);
  Value positions = rope.getPositions();
  ArrayRef<int64_t> posShape = shapeOf(positions);
  int64_t saved = lanes;
  lanes = 1;
  SmallVector<Value> lead = leadingIndices(rope.getInput()); // [b, h, t] or [b, t, h]
  lanes = saved;
  Value position = memref::LoadOp::create(
      b, loc, memrefOf.lookup(positions),
      ValueRange{posShape[0] == 1 ? index(0) : lead[0], lead[rope.tokenAxis()]});
  stats[op] = {arith::SIToFPOp::create(b, loc, b.getF32Type(), position)};
}

Value GpuKernelBuilder::emitRowElement(Operation *op, Value j) {
  SmallVector<Value, 2> s = stats.lookup(op);
  if (isa<RmsNormOp, LayerNormOp>(op)) {
    auto rms = dyn_cast<RmsNormOp>(op);
    auto ln = dyn_cast<LayerNormOp>(op);
    Value c = load(op->getOperand(0), j);
    if (ln)
      c = arith::SubFOp::create(b, loc, c, broadcast(s[0]));
    Value scale = load(op->getOperand(1), j);
    if (rms && rms.getUnitOffset())
      scale = arith::AddFOp::create(b, loc, scale, lanesOf(b.getF32Type(), 1.0));
    Value y = arith::MulFOp::create(
        b, loc, arith::MulFOp::create(b, loc, c, broadcast(s[1])), scale);
    if (ln && ln.getBias())
      y = arith::AddFOp::create(b, loc, y, load(ln.getBias(), j));
    return y;
  }
  if (auto softmax = dyn_cast<SoftmaxOp>(op)) {
    Value e = math::ExpOp::create(
        b, loc,
        arith::SubFOp::create(b, loc, load(softmax.getInput(), j),
                              broadcast(s[0])));
    return arith::DivFOp::create(b, loc, e, broadcast(s[1]));
  }
  if (isa<ReduceOp>(op))
    return broadcast(s[0]);
  // RoPE, the CPU kernel's formula per element: element i of a row of d
  // pairs with i ± d/2 (half) or i ^ 1 (interleaved) at frequency
  // theta^(-2f/d), f = i mod d/2 (half) or i / 2.
  auto rope = cast<RopeOp>(op);
  Value x = rope.getInput();
  // The rotated part (rotary_dim); the rest of the row passes through.
  const int64_t d = rope.rotatedLength();
  const bool partial = d < rowLength(x);
  bool half = rope.getStyle() == RopeStyle::Half;
  Value idx = laneIndices(j);
  Value partner, sign, freq;
  Type f32Lanes = laneType(b.getF32Type());
  if (half) {
    Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, j,
                                        index(d / 2));
    Value partnerJ = arith::SelectOp::create(
        b, loc, first, arith::AddIOp::create(b, loc, j, index(d / 2)),
        arith::SubIOp::create(b, loc, j, index(d / 2)));
    partner = load(x, partnerJ);
    sign = broadcast(arith::SelectOp::create(b, loc, first, f32(-1.0), f32(1.0)));
    freq = arith::RemUIOp::create(b, loc, idx,
                                  constantLike(b, loc, idx.getType(),
                                               b.getIndexType(), d / 2));
  } else {
    Value self = load(x, j);
    if (lanes == 1) {
      Value partnerJ = arith::XOrIOp::create(b, loc, j, index(1));
      partner = load(x, partnerJ);
    } else {
      SmallVector<int64_t> swap;
      for (int64_t i = 0; i < lanes; ++i)
        swap.push_back(i ^ 1);
      partner = vector::ShuffleOp::create(b, loc, self, self, swap);
    }
    Value odd = arith::AndIOp::create(
        b, loc, idx, constantLike(b, loc, idx.getType(), b.getIndexType(), 1));
    Value isOdd = arith::CmpIOp::create(
        b, loc, arith::CmpIPredicate::ne, odd,
        constantLike(b, loc, idx.getType(), b.getIndexType(), 0));
    sign = arith::SelectOp::create(b, loc, isOdd, lanesOf(b.getF32Type(), 1.0),
                                   lanesOf(b.getF32Type(), -1.0));
    freq = arith::ShRUIOp::create(
        b, loc, idx, constantLike(b, loc, idx.getType(), b.getIndexType(), 1));
  }
  if (partial) // the passing-through lanes' pairs stay in the table
    freq = arith::MinUIOp::create(
        b, loc, freq, constantLike(b, loc, freq.getType(), b.getIndexType(), d / 2 - 1));
  Value inv;
  if (std::optional<ArrayRef<float>> frequencies = rope.getFrequencies()) {
    // The table's entry of each lane's pair (a scalar load a lane: the
    // table is a few hundred bytes, in L1 after the first row).
    Value table = emitRopeTable(b, loc, *frequencies);
    auto entry = [&](Value pair) {
      return memref::LoadOp::create(b, loc, table, ValueRange{pair}).getResult();
    };
    if (lanes == 1) {
      inv = entry(freq);
    } else {
      inv = lanesOf(b.getF32Type(), 0.0);
      for (int64_t l = 0; l < lanes; ++l)
        inv = vector::InsertOp::create(b, loc, entry(vector::ExtractOp::create(b, loc, freq, l)),
                                       inv, l);
    }
  } else {
    Value i64 = arith::IndexCastOp::create(b, loc, laneType(b.getI64Type()), freq);
    Value twoF = arith::SIToFPOp::create(
        b, loc, f32Lanes,
        arith::MulIOp::create(b, loc, i64,
                              constantLike(b, loc, i64.getType(), b.getI64Type(), 2)));
    // theta^(-2f/d) as exp2(2f · (-log2(theta) / d)): one ex2 instead of
    // powf and a division, per element of every head.
    double theta = rope.getTheta().convertToDouble();
    inv = math::Exp2Op::create(
        b, loc,
        arith::MulFOp::create(b, loc, twoF,
                              lanesOf(b.getF32Type(), -std::log2(theta) / static_cast<double>(d))));
    if (std::optional<ArrayRef<double>> llama3 = rope.getLlama3Scaling())
      inv = emitLlama3Frequency(b, loc, inv, *llama3);
  }
  Value angle = arith::MulFOp::create(b, loc, broadcast(s[0]), inv);
  // Reduced to [-pi, pi] (Cody-Waite, 2pi split in an exact high part and a
  // low part) so that the fast sine and cosine keep their accuracy at any
  // position; libdevice's accurate ones made RoPE compute-bound.
  constexpr double kTwoPi = 6.283185307179586, kTwoPiHigh = 6.28125;
  Value turns = math::RoundEvenOp::create(
      b, loc, arith::MulFOp::create(b, loc, angle, lanesOf(b.getF32Type(), 1.0 / kTwoPi)));
  Value minusTurns = arith::NegFOp::create(b, loc, turns);
  Value reduced = math::FmaOp::create(b, loc, minusTurns,
                                      lanesOf(b.getF32Type(), kTwoPiHigh), angle);
  reduced = math::FmaOp::create(b, loc, minusTurns,
                                lanesOf(b.getF32Type(), kTwoPi - kTwoPiHigh), reduced);
  auto fast = arith::FastMathFlagsAttr::get(b.getContext(), arith::FastMathFlags::afn);
  Value c = math::CosOp::create(b, loc, reduced, fast);
  Value sn = math::SinOp::create(b, loc, reduced, fast);
  if (std::optional<APFloat> factor = rope.getAttentionFactor()) {
    Value scale = lanesOf(b.getF32Type(), factor->convertToDouble());
    c = arith::MulFOp::create(b, loc, c, scale);
    sn = arith::MulFOp::create(b, loc, sn, scale);
  }
  Value self = load(x, j);
  Value rotatedValue = arith::AddFOp::create(
      b, loc, arith::MulFOp::create(b, loc, self, c),
      arith::MulFOp::create(b, loc, arith::MulFOp::create(b, loc, sign, partner), sn));
  if (!partial)
    return rotatedValue;
  // A vector's lanes all lie on one side of rotary_dim (chooseShape).
  Value inRotated = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, j, index(d));
  return arith::SelectOp::create(b, loc, inRotated, rotatedValue, self);
}

Value GpuKernelBuilder::e4m3Factor(Value value, Value scales) {
  Type stored = elementOf(value);
  Value amax = reduceRow(rowLength(value), Combine::Max, [&](Value j) {
    Value x = convertElements(b, loc, load(value, j), stored);
    return math::AbsFOp::create(b, loc, convertElements(b, loc, x, b.getF32Type()));
  });
  // As the runtime's conversion (hal/cuda/Dequantize.cu): 448 is e4m3's
  // largest finite value.
  Value positive = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, amax, f32(0.0));
  Value factor = arith::SelectOp::create(
      b, loc, positive, arith::DivFOp::create(b, loc, f32(448.0), amax), f32(1.0));
  Value scale = arith::SelectOp::create(
      b, loc, positive, arith::DivFOp::create(b, loc, amax, f32(448.0)), f32(1.0));
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lane, index(0));
  auto ifFirst = scf::IfOp::create(b, loc, first, false);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&ifFirst.getThenRegion().front());
    memref::StoreOp::create(b, loc, scale, scales, leadingIndices(value));
  }
  return factor;
}

void GpuKernelBuilder::storeE4m3(Value x, Value factor, Value output, ValueRange indices) {
  x = arith::MulFOp::create(b, loc, x, broadcast(factor));
  // cvt.rn.satfinite.e4m3x2.f32 puts its first operand in the high byte.
  auto pair = [&](Value low, Value high) -> Value {
    return NVVM::ConvertF32x2ToF8x2Op::create(
        b, loc, b.getI16Type(), high, low, NVVM::FPRoundingMode::RN,
        NVVM::SaturationMode::SATFINITE, false, Float8E4M3FNType::get(b.getContext()));
  };
  if (lanes == 1) {
    Value byte = arith::TruncIOp::create(b, loc, b.getI8Type(), pair(x, f32(0.0)));
    memref::StoreOp::create(b, loc, byte, output, indices);
    return;
  }
  SmallVector<Value> pairs;
  for (int64_t i = 0; i < lanes; i += 2)
    pairs.push_back(pair(vector::ExtractOp::create(b, loc, x, i),
                         vector::ExtractOp::create(b, loc, x, i + 1)));
  Value halves = vector::FromElementsOp::create(
      b, loc, VectorType::get({lanes / 2}, b.getI16Type()), pairs);
  Value bytes =
      vector::BitCastOp::create(b, loc, VectorType::get({lanes}, b.getI8Type()), halves);
  vector::StoreOp::create(b, loc, bytes, output, indices, false,
                          vectorAlign(b.getI8Type()));
}

FailureOr<func::FuncOp> GpuKernelBuilder::build(StringRef name) {
  if (failed(checkFusionRows(fusion, "GPU")))
    return failure();
  chooseShape();
  Block &body = fusion.getBody().front();
  ValueRange yielded = cast<YieldOp>(body.getTerminator()).getValues();
  Value root = yielded.front();
  auto memrefType = [](Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    return MemRefType::get(t.getShape(), t.getElementType());
  };
  SmallVector<Type> argTypes;
  for (Value arg : body.getArguments())
    argTypes.push_back(memrefType(arg));
  for (auto [i, result] : llvm::enumerate(fusion->getResults()))
    argTypes.push_back(e4m3[i] ? MemRefType::get(shapeOf(result), b.getI8Type())
                               : memrefType(result));
  // After the results: each e4m3 result's scales, one a row.
  for (auto [i, result] : llvm::enumerate(fusion->getResults()))
    if (e4m3[i])
      argTypes.push_back(MemRefType::get(shapeOf(result).drop_back(), b.getF32Type()));
  auto func = func::FuncOp::create(b, loc, name, b.getFunctionType(argTypes, {}));
  int64_t blockThreads = threadsPerRow / blocksPerRow * rowsPerBlock;
  func->setAttr(kGridAttr, b.getI64IntegerAttr(llvm::divideCeil(rows, rowsPerBlock) *
                                               blocksPerRow / partialRows));
  func->setAttr(kBlockAttr, b.getI64IntegerAttr(blockThreads));
  Block *entry = func.addEntryBlock();
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(entry);
  for (auto [arg, memref] : llvm::zip(body.getArguments(), entry->getArguments()))
    memrefOf[arg] = memref;
  ValueRange outputs =
      entry->getArguments().drop_front(body.getNumArguments()).take_front(fusion->getNumResults());
  ValueRange scaleArgs =
      entry->getArguments().drop_front(body.getNumArguments() + fusion->getNumResults());

  Value tid = gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x);
  block = gpu::BlockIdOp::create(b, loc, gpu::Dimension::x);
  Value row = block;
  lane = tid;
  if (blocksPerRow > 1) {
    row = arith::DivUIOp::create(b, loc, block, index(blocksPerRow));
    lane = arith::AddIOp::create(
        b, loc,
        arith::MulIOp::create(b, loc,
                              arith::RemUIOp::create(b, loc, block, index(blocksPerRow)),
                              index(kMaxBlock)),
        tid);
  }
  if (rowsPerBlock > 1) {
    lane = arith::RemUIOp::create(b, loc, tid, index(threadsPerRow));
    row = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, block, index(rowsPerBlock)),
        arith::DivUIOp::create(b, loc, tid, index(threadsPerRow)));
  }
  preloadSharedRows(root);
  // Where a thread owns one vector of the row, its column partials stay in
  // registers across the block's rows (the loop's values) and are stored
  // once; else each row adds into the partials in memory.
  const int64_t rootLength = rowLength(root);
  const int64_t ownedLanes = lanesFor(rootLength);
  const bool registerPartials =
      partialRows > 1 && ownedLanes > 1 && threadsPerRow * ownedLanes == rootLength;
  SmallVector<unsigned> partialIndices;
  for (unsigned i = 0; i < fusion->getNumResults(); ++i)
    if (fusion.isColumnPartial(i))
      partialIndices.push_back(i);
  auto partialType = VectorType::get({ownedLanes}, b.getF32Type());
  // The first column of this thread's vector (register partials only).
  Value ownedColumn =
      registerPartials ? arith::MulIOp::create(b, loc, lane, index(ownedLanes)).getResult()
                       : Value();
  scf::ForOp rowLoop;
  if (partialRows > 1) {
    // The block's rows one after another (the verifier holds rows to a
    // multiple of partialRows).
    SmallVector<Value> initial;
    if (registerPartials)
      initial.assign(partialIndices.size(),
                     constantLike(b, loc, partialType, b.getF32Type(), 0.0));
    rowLoop = scf::ForOp::create(b, loc, index(0), index(partialRows), index(1), initial);
    b.setInsertionPointToStart(rowLoop.getBody());
    rowInBlock = rowLoop.getInductionVar();
    row = arith::AddIOp::create(b, loc, arith::MulIOp::create(b, loc, block, index(partialRows)),
                                rowInBlock);
  }
  // A warp past the last row has nothing to do; a whole warp leaves, so
  // the shuffles of the others stay full.
  if (rows % rowsPerBlock != 0) {
    Value inside =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, row, index(rows));
    auto guardIf = scf::IfOp::create(b, loc, inside, false);
    b.setInsertionPointToStart(&guardIf.getThenRegion().front());
  }
  // The row's indices into the result's leading dimensions.
  Value rest = row;
  outerIvs.assign(outer.size(), Value());
  for (int64_t i = static_cast<int64_t>(outer.size()) - 1; i >= 0; --i) {
    if (i == 0) {
      outerIvs[i] = rest;
      break;
    }
    outerIvs[i] = arith::RemUIOp::create(b, loc, rest, index(outer[i]));
    rest = arith::DivUIOp::create(b, loc, rest, index(outer[i]));
  }

  preloadRowInputs(root);
  for (Operation &op : body.without_terminator())
    if (isRowOp(&op))
      emitStatistics(&op);
  DenseMap<unsigned, Value> e4m3Factors;
  for (auto [i, value] : llvm::enumerate(yielded))
    if (e4m3[i])
      e4m3Factors[i] = e4m3Factor(value, scaleArgs[e4m3Factors.size()]);
  // Every result is computed before any is stored: a result may be written
  // in place over an input that another result still reads (AdamW's new
  // moment over the old, read again by the parameter's update).
  SmallVector<Value> newPartials;
  auto storeResults = [&](Value j) {
    SmallVector<Value> indices(outerIvs.begin(), outerIvs.end());
    if (!rowShapeOf(fusion).empty())
      indices.push_back(j);
    SmallVector<Value> values;
    for (auto [i, value, result] : llvm::enumerate(yielded, fusion->getResults())) {
      Value x = convertElements(b, loc, load(value, j), elementOf(result));
      values.push_back(e4m3[i] ? convertElements(b, loc, x, b.getF32Type()) : x);
    }
    for (auto [i, x, output, result] :
         llvm::enumerate(values, outputs, fusion->getResults())) {
      if (fusion.isColumnPartial(i)) {
        if (registerPartials)
          newPartials.push_back(arith::AddFOp::create(
              b, loc, rowLoop.getRegionIterArgs()[newPartials.size()], x));
        else
          accumulatePartial(x, output, j);
        continue;
      }
      if (e4m3[i])
        storeE4m3(x, e4m3Factors.lookup(i), output, indices);
      else if (lanes == 1)
        memref::StoreOp::create(b, loc, x, output, indices);
      else
        vector::StoreOp::create(b, loc, x, output, indices, false,
                                vectorAlign(elementOf(result)));
    }
  };
  if (registerPartials) {
    // Every thread owns exactly one vector: no loop, no bounds.
    int64_t saved = lanes;
    lanes = ownedLanes;
    storeResults(ownedColumn);
    lanes = saved;
  } else {
    forEachOwned(rootLength, storeResults);
  }
  // A block-wide reduction's shared buffer is written again by the next
  // row's: every warp must have read this row's total first.
  if (partialRows > 1 && threadsPerRow > kWarp)
    gpu::BarrierOp::create(b, loc);
  if (registerPartials) {
    scf::YieldOp::create(b, loc, newPartials);
    b.setInsertionPointAfter(rowLoop);
    for (auto [k, i] : llvm::enumerate(partialIndices))
      vector::StoreOp::create(b, loc, rowLoop.getResult(k), outputs[i],
                              ValueRange{block, ownedColumn}, false,
                              vectorAlign(b.getF32Type(), ownedLanes));
  }
  b.setInsertionPointToEnd(entry);
  func::ReturnOp::create(b, loc);
  return func;
}

} // namespace

FailureOr<func::FuncOp> buildGpuFusionKernel(FusionOp fusion, StringRef name,
                                             OpBuilder &builder,
                                             ArrayRef<unsigned> e4m3Results) {
  return GpuKernelBuilder(fusion, builder, e4m3Results).build(name);
}

} // namespace gai
