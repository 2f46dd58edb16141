// gai (after fusion) → exec: every tensor gets a home, every op a command.
#include "compiler/lowering/ExecLowering.h"

#include "compiler/lowering/CollectiveLowering.h"

#include "compiler/codegen/FusionKernels.h"
#include "compiler/codegen/FusionRows.h"
#include "compiler/codegen/GpuFusionKernels.h"
#include "passes/MemoryPlan.h"
#include "passes/Passes.h"
#include "passes/PruneAttr.h"
#include "compiler/lowering/NormFold.h"
#include "dialects/Exec/ExecOps.h"
#include "dialects/Gai/GaiOps.h"
#include "dialects/Gai/StateNames.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::gai;
using mlir::exec::RefAttr;
using mlir::exec::Space;

namespace gai {
namespace {

constexpr int64_t kAlignment = 64;
int64_t alignUp(int64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

RankedTensorType tensorOf(Value v) { return cast<RankedTensorType>(v.getType()); }
int64_t bytesOf(Value v) { return tensorBytes(tensorOf(v)); }
bool isStateName(StringRef name) { return exec::parseStateName(name).has_value(); }

/// Whether `producer` may write its result over the state whose value at
/// entry is `olds`: every other reader of the old value (or of a view of
/// it) runs before, and the producer itself reads it element for element
/// (an elementwise region) or only as a GEMM's residual.
bool writesStateInPlace(Operation *producer, ArrayRef<Value> olds) {
  // No old value read in this entry (a first micro-batch's gradients): a
  // reduction, a plain matmul or an embedding gradient (each writes its
  // whole result) may write the state as well.
  if (olds.empty() && isa<ReduceOp, MatmulOp, EmbeddingGradOp>(producer))
    return true;
  // An all-gather (ZeRO-1's updated parameters) writes whole state once
  // every reader of the old value is done.
  if (!isa<FusionOp, GemmOp, shard::AllGatherOp>(producer))
    return false;
  SmallVector<Value> pending(olds.begin(), olds.end());
  while (!pending.empty()) {
    Value old = pending.pop_back_val();
    for (OpOperand &use : old.getUses()) {
      Operation *user = use.getOwner();
      if (auto view = dyn_cast<ReshapeOp>(user)) {
        pending.push_back(view.getResult());
        continue;
      }
      if (user == producer) {
        if (isa<shard::AllGatherOp>(producer))
          return false; // gathering the old value over itself
        if (auto gemm = dyn_cast<GemmOp>(producer)) {
          // C += A·B: the residual read as C, with no activation between.
          if (use.get() != gemm.getResidual() || gemm.getLhs() == use.get() ||
              gemm.getRhs() == use.get() ||
              gemm.getActivation() != EpilogueActivation::None)
            return false;
          continue;
        }
        auto fusion = cast<FusionOp>(producer);
        if (cast<RankedTensorType>(use.get().getType()).getShape() !=
            cast<RankedTensorType>(fusion->getResult(0).getType()).getShape())
          return false;
        bool elementwise = true;
        fusion.getBody().walk([&](Operation *op) { elementwise &= !isRowOp(op); });
        if (!elementwise)
          return false;
        continue;
      }
      if (user->getBlock() != producer->getBlock() || !user->isBeforeInBlock(producer))
        return false;
    }
  }
  return true;
}

int64_t product(ArrayRef<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims)
    n *= d;
  return n;
}

exec::Activation activationOf(EpilogueActivation a) {
  switch (a) {
  case EpilogueActivation::None: return exec::Activation::None;
  case EpilogueActivation::Silu: return exec::Activation::Silu;
  case EpilogueActivation::Gelu: return exec::Activation::Gelu;
  case EpilogueActivation::GeluTanh: return exec::Activation::GeluTanh;
  case EpilogueActivation::Relu: return exec::Activation::Relu;
  }
  llvm_unreachable("every epilogue activation has a command form");
}

exec::ReduceKind reduceKindOf(ReduceKind kind) {
  switch (kind) {
  case ReduceKind::Sum: return exec::ReduceKind::Sum;
  case ReduceKind::Mean: return exec::ReduceKind::Mean;
  case ReduceKind::Max: return exec::ReduceKind::Max;
  case ReduceKind::Min: return exec::ReduceKind::Min;
  }
  llvm_unreachable("every reduction has a command form");
}

exec::LossReduction reductionOf(LossReduction reduction) {
  switch (reduction) {
  case LossReduction::Mean: return exec::LossReduction::Mean;
  case LossReduction::Sum: return exec::LossReduction::Sum;
  case LossReduction::None: return exec::LossReduction::None;
  }
  llvm_unreachable("every loss reduction has a command form");
}

/// An attention tensor's shape as [B, H, T, D], whichever its layout.
SmallVector<int64_t> headMajorShape(Value v, bool tokenMajor) {
  SmallVector<int64_t> s(tensorOf(v).getShape());
  if (tokenMajor)
    std::swap(s[1], s[2]);
  return s;
}

/// Appends the strides (batch, head, row; elements) of attention tensor
/// `v`: [B, H, T, D] packed or, when `tokenMajor`, [B, T, H, D], whose rows
/// may be those of a wider tensor it is a view of (a packed projection's
/// slice, or the concat a gradient is written into).
void appendAttentionStrides(SmallVectorImpl<int64_t> &strides, Value v, bool tokenMajor) {
  ArrayRef<int64_t> s = tensorOf(v).getShape();
  const int64_t dim = s[3];
  if (!tokenMajor) {
    strides.append({s[1] * s[2] * dim, s[2] * dim, dim});
    return;
  }
  int64_t row = s[2] * dim;
  Value base = v;
  while (auto reshape = base.getDefiningOp<ReshapeOp>())
    base = reshape.getInput();
  if (auto slice = base.getDefiningOp<SliceOp>(); slice && isAttentionSliceView(slice))
    row = tensorOf(slice.getInput()).getShape().back();
  if (ConcatPart part = concatPartOf(v); part.concat)
    row = tensorOf(part.concat.getResult()).getShape().back();
  strides.append({s[1] * row, dim, row});
}

class Lowering {
public:
  Lowering(ModuleOp fused, const ExecOptions &options)
      : fused(fused), options(options), b(fused.getContext()) {}
  FailureOr<OwningOpRef<ModuleOp>> run();

private:
  LogicalResult lowerFunction(func::FuncOp func);
  LogicalResult lowerOp(Operation *op);
  /// With `gate`: c = act(lhs·gateᵀ) ⊙ (lhs·rhsᵀ) (a gai.gated_gemm).
  LogicalResult lowerMatmul(Operation *op, Value lhs, Value rhs, Value bias,
                            Value residual, bool transposeLhs,
                            bool transposeRhs, exec::Activation activation,
                            Value gate = {});
  FailureOr<FlatSymbolRefAttr> kernelFor(FusionOp fusion, ArrayRef<unsigned> e4m3Results);
  /// Whether fusion result `v` is read only by fp8 GEMMs as their A, so
  /// that its kernel may write it in e4m3 with row scales (ExecOptions).
  bool onlyFp8GemmsRead(Value v);
  /// Finds the fusion results written in e4m3 and places their scales
  /// after the e4m3 bytes, in the result's own (bf16-sized) buffer.
  void placeE4m3Results(func::FuncOp func);
  /// The folded-norm operands of the exec.gemm just emitted for `op`.
  void addNormFolds(Operation *op);
  RefAttr weightRef(ParamOp param);
  /// Marks the GEMM just emitted as reading `weight` (and `gate`)
  /// quantized: their values, scales and zeros instead of floats.
  void setQuantized(Operation &emitted, DequantizeOp weight, DequantizeOp gate);
  /// Marks `emitted` as reading `weight`'s 2:4 compressed form.
  void setSparse(Operation &emitted, DecompressOp weight, DecompressOp gate);
  /// The state buffer `name`, made on first use.
  /// `shard`: the arguments' gai.shard (a share of a bigger tensor), if any.
  FailureOr<RefAttr> stateRef(StringRef name, Type type, Location loc,
                              DictionaryAttr shard = {});
  RefAttr ref(Value v) { return refOf.lookup(v); }
  RefAttr none() { return RefAttr::get(b.getContext(), Space::Arena, 0, 0); }
  /// `size` bytes of `base`, starting `offset` bytes in.
  RefAttr slice(RefAttr base, int64_t offset, int64_t size) {
    return RefAttr::get(b.getContext(), base.getSpace(),
                        base.getOffset() + offset, size);
  }
  IntegerAttr i64(int64_t v) { return b.getI64IntegerAttr(v); }
  /// The grid axes whose rank picks a vocabulary shard: the tensor-parallel
  /// axis, when there are shards.
  static IntegerAttr vocabShardAxes(OpBuilder &b, int64_t shards) {
    return b.getI32IntegerAttr(shards > 1 ? 1 << kTensorAxis : 0);
  }
  /// The element type of `v`, as a command's `element`.
  TypeAttr elementOf(Value v) {
    return TypeAttr::get(cast<ShapedType>(v.getType()).getElementType());
  }
  /// Sets `r` to the splat `constant`'s value.
  void fill(RefAttr r, ConstantOp constant) {
    APInt bits =
        cast<SplatElementsAttr>(constant.getValue()).getSplatValue<APFloat>().bitcastToAPInt();
    exec::FillOp::create(b, constant.getLoc(), r, i64(static_cast<int64_t>(bits.getZExtValue())),
                         elementOf(constant.getResult()));
  }

  ModuleOp fused;
  const ExecOptions &options;
  OpBuilder b;
  OwningOpRef<ModuleOp> out;
  Block *moduleBody = nullptr;
  llvm::StringMap<RefAttr> weights, state;
  /// The `gai.tp` slicing of each split weight, by name: its state's too.
  llvm::StringMap<DictionaryAttr> tensorParallelOf;
  llvm::StringMap<Type> stateTypes;
  Operation *currentEntry = nullptr;
  int64_t weightsEnd = 0, stateEnd = 0;
  llvm::StringMap<func::FuncOp> kernels; // by their generic text
  DenseMap<Value, RefAttr> refOf;
  // The entry's folded norms (findNormFolds) by their region, the GEMM
  // making their input, and the GEMMs reading them; their row sums of
  // squares, all in one buffer the entry zeroes first.
  DenseMap<Operation *, const NormFold *> foldOfNorm, foldOfProducer, foldOfConsumer;
  RefAttr squares;
  /// The row scales of each fusion result written in e4m3.
  DenseMap<Value, RefAttr> e4m3ScalesOf;
};

RefAttr Lowering::weightRef(ParamOp param) {
  StringRef name = param.getName();
  if (RefAttr known = weights.lookup(name))
    return known;
  int64_t size = bytesOf(param.getResult());
  int64_t offset;
  auto it = options.weightOffsets.find(name);
  if (it != options.weightOffsets.end()) {
    offset = it->second;
  } else {
    offset = alignUp(weightsEnd);
  }
  weightsEnd = std::max(weightsEnd, offset + size);
  RefAttr ref = RefAttr::get(b.getContext(), Space::Weights, offset, size);
  weights[name] = ref;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(moduleBody);
  auto decl = exec::WeightOp::create(b, param.getLoc(), b.getStringAttr(name),
                                     TypeAttr::get(param.getType()), ref);
  // A slice a rank: gaic stores them all, or the runtime slices the weights
  // bound at run time by the same split.
  if (Attribute tp = param->getAttr(kTensorParallelAttr))
    decl->setAttr("exec.tensor_parallel", tp);
  return ref;
}

FailureOr<RefAttr> Lowering::stateRef(StringRef name, Type type, Location loc,
                                      DictionaryAttr shard) {
  int64_t size = tensorBytes(cast<RankedTensorType>(type));
  if (RefAttr known = state.lookup(name)) {
    if (stateTypes.lookup(name) != type)
      return emitError(loc, "state '") << name << "' is " << type << " here and "
                                       << stateTypes.lookup(name) << " in another entry";
    return known;
  }
  RefAttr ref = RefAttr::get(b.getContext(), Space::State, alignUp(stateEnd), size);
  stateEnd = ref.getOffset() + size;
  state[name] = ref;
  stateTypes[name] = type;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(currentEntry);
  auto decl = exec::StateOp::create(
      b, loc, b.getStringAttr(name), TypeAttr::get(type), ref,
      exec::StateRoleAttr::get(b.getContext(), exec::parseStateName(name)->role));
  if (shard)
    decl->setAttr("exec.shard", shard);
  if (std::optional<exec::StateName> state = exec::parseStateName(name))
    if (auto tp = tensorParallelOf.lookup(state->weight))
      decl->setAttr("exec.tp", tp);
  return ref;
}

FailureOr<FlatSymbolRefAttr> Lowering::kernelFor(FusionOp fusion,
                                                 ArrayRef<unsigned> e4m3Results) {
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(moduleBody);
  FailureOr<func::FuncOp> kernel =
      options.gpuKernels ? buildGpuFusionKernel(fusion, "kernel", b, e4m3Results)
                         : buildFusionKernel(fusion, "kernel", b);
  if (failed(kernel))
    return failure();
  // The kernel's own scope: printing it in the module's would number the
  // whole module again for each kernel.
  std::string text;
  llvm::raw_string_ostream os(text);
  kernel->print(os, OpPrintingFlags().printGenericOpForm().useLocalScope());
  if (auto known = kernels.find(text); known != kernels.end()) {
    kernel->erase();
    return FlatSymbolRefAttr::get(known->second.getSymNameAttr());
  }
  // Named after what it computes, for profiles: k12_exp_mul_reduce.
  std::string name = "k" + std::to_string(kernels.size());
  llvm::SmallVector<llvm::StringRef> seen;
  fusion.getBody().walk([&](Operation *op) {
    llvm::StringRef what = op->getName().stripDialect();
    if (isa<YieldOp>(op) || llvm::is_contained(seen, what) || seen.size() == 4)
      return;
    seen.push_back(what);
    name += "_" + what.str();
  });
  kernel->setSymName(name);
  kernels.try_emplace(text, *kernel);
  return FlatSymbolRefAttr::get(kernel->getSymNameAttr());
}

bool Lowering::onlyFp8GemmsRead(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!options.e4m3ActivationRows || !type || !type.getElementType().isBF16() ||
      type.getRank() < 2)
    return false;
  const int64_t k = type.getShape().back(), rows = product(type.getShape().drop_back());
  // cuBLASLt's fp8 GEMM takes K in multiples of 16; GEMV-sized GEMMs read
  // bf16 A.
  if (k % 16 != 0 || rows <= options.e4m3ActivationRows)
    return false;
  SmallVector<Value> values{v};
  while (!values.empty()) {
    Value x = values.pop_back_val();
    for (OpOperand &use : x.getUses()) {
      Operation *user = use.getOwner();
      if (auto reshape = dyn_cast<ReshapeOp>(user)) {
        if (tensorOf(reshape.getResult()).getShape().back() != k)
          return false;
        values.push_back(reshape.getResult());
        continue;
      }
      // A plain product: no bias, residual or activation in its epilogue.
      auto gemm = dyn_cast<GemmOp>(user);
      auto matmul = dyn_cast<MatmulOp>(user);
      if (gemm && (gemm.getBias() || gemm.getResidual() ||
                   gemm.getActivation() != EpilogueActivation::None))
        return false;
      if ((!gemm && !matmul) || use.getOperandNumber() != 0 || foldOfConsumer.count(user))
        return false;
      Value rhs = user->getOperand(1);
      bool transposeLhs = gemm ? gemm.getTransposeLhs() : matmul.getTransposeLhs();
      bool transposeRhs = gemm ? gemm.getTransposeRhs() : matmul.getTransposeRhs();
      auto weight = rhs.getDefiningOp<DequantizeOp>();
      if (transposeLhs || !transposeRhs || rhs == x || !weight ||
          weight.getFormat() != QuantFormat::Fp8E4M3 || tensorOf(rhs).getRank() != 2 ||
          !tensorOf(user->getResult(0)).getElementType().isBF16())
        return false;
    }
  }
  return true;
}

void Lowering::placeE4m3Results(func::FuncOp func) {
  e4m3ScalesOf.clear();
  if (!options.e4m3ActivationRows)
    return;
  func.walk([&](FusionOp fusion) {
    if (fusion.getPartialRows() || foldOfNorm.count(fusion))
      return;
    for (auto [i, result] : llvm::enumerate(fusion->getResults())) {
      RefAttr r = ref(result);
      if (fusion.isColumnPartial(i) || !r || r.getSpace() != Space::Arena ||
          !onlyFp8GemmsRead(result))
        continue;
      ArrayRef<int64_t> shape = tensorOf(result).getShape();
      const int64_t rows = product(shape.drop_back()), bytes = rows * shape.back();
      // The e4m3 bytes take half the bf16 buffer; the scales go after them.
      const int64_t scalesAt = alignUp(bytes);
      if (scalesAt + rows * 4 > r.getSize())
        continue;
      e4m3ScalesOf[result] = slice(r, scalesAt, rows * 4);
    }
  });
}

static exec::WeightFormat weightFormatOf(QuantFormat format) {
  switch (format) {
  case QuantFormat::Int8:
    return exec::WeightFormat::Int8;
  case QuantFormat::Int4:
    return exec::WeightFormat::Int4;
  case QuantFormat::Fp8E4M3:
    return exec::WeightFormat::Fp8E4M3;
  }
  llvm_unreachable("unknown quantized format");
}

void Lowering::setQuantized(Operation &emitted, DequantizeOp weight, DequantizeOp gate) {
  auto gemm = cast<exec::GemmOp>(emitted);
  gemm.setWeightFormatAttr(
      exec::WeightFormatAttr::get(b.getContext(), weightFormatOf(weight.getFormat())));
  gemm.setBScaleAttr(ref(weight.getScale()));
  if (weight.getZero())
    gemm.setBZeroAttr(ref(weight.getZero()));
  if (std::optional<uint64_t> group = weight.getGroup())
    gemm.setGroupAttr(b.getI64IntegerAttr(static_cast<int64_t>(*group)));
  if (!gate)
    return;
  gemm.setGateScaleAttr(ref(gate.getScale()));
  if (gate.getZero())
    gemm.setGateZeroAttr(ref(gate.getZero()));
}

void Lowering::setSparse(Operation &emitted, DecompressOp weight, DecompressOp gate) {
  auto gemm = cast<exec::GemmOp>(emitted);
  gemm.setWeightFormatAttr(
      exec::WeightFormatAttr::get(b.getContext(), exec::WeightFormat::Sparse24));
  gemm.setBMetaAttr(ref(weight.getMeta()));
  if (gate)
    gemm.setGateMetaAttr(ref(gate.getMeta()));
}

void Lowering::addNormFolds(Operation *op) {
  auto gemm = cast<exec::GemmOp>(b.getInsertionBlock()->back());
  auto squaresOf = [&](const NormFold *fold) {
    return slice(squares, fold->squaresOffset, fold->rows * 8);
  };
  if (const NormFold *fold = foldOfProducer.lookup(op)) {
    gemm.setNormWeightAttr(ref(fold->weight));
    gemm.setNormOutAttr(ref(fold->norm->getResult(0)));
    gemm.setNormSquaresAttr(squaresOf(fold));
    gemm.setNormOffsetAttr(b.getF32FloatAttr(fold->unitOffset ? 1.0f : 0.0f));
  }
  if (const NormFold *fold = foldOfConsumer.lookup(op)) {
    gemm.setASquaresAttr(squaresOf(fold));
    gemm.setANormEpsAttr(b.getF32FloatAttr(static_cast<float>(fold->epsilon)));
  }
}

LogicalResult Lowering::lowerMatmul(Operation *op, Value lhs, Value rhs,
                                    Value bias, Value residual,
                                    bool transposeLhs, bool transposeRhs,
                                    exec::Activation activation, Value gate) {
  ArrayRef<int64_t> ls = tensorOf(lhs).getShape(), rs = tensorOf(rhs).getShape(),
                    os = tensorOf(op->getResult(0)).getShape();
  int64_t m = os[os.size() - 2], n = os.back();
  int64_t k = transposeLhs ? ls[ls.size() - 2] : ls.back();
  ArrayRef<int64_t> outBatch = os.drop_back(2), lhsBatch = ls.drop_back(2),
                    rhsBatch = rs.drop_back(2);
  int64_t batch = product(outBatch);
  auto quantB = rhs.getDefiningOp<DequantizeOp>();
  auto quantGate = gate ? gate.getDefiningOp<DequantizeOp>() : DequantizeOp();
  if (quantB || quantGate) {
    if (!quantB || (gate && !quantGate) ||
        (quantGate && quantGate.getFormat() != quantB.getFormat()))
      return op->emitOpError("a gated GEMM's two weights must be quantized alike");
    if (transposeLhs || !transposeRhs || product(rhsBatch) != 1)
      return op->emitOpError("quantized weights are read as one matrix stored [n, k]");
  }
  auto sparseB = rhs.getDefiningOp<DecompressOp>();
  auto sparseGate = gate ? gate.getDefiningOp<DecompressOp>() : DecompressOp();
  if (sparseB || sparseGate) {
    if (gate && (!sparseB || !sparseGate))
      return op->emitOpError("a gated GEMM's two weights must be 2:4 alike");
    if (transposeLhs || !transposeRhs || product(rhsBatch) != 1)
      return op->emitOpError("2:4 weights are read as one matrix stored [n, k]");
  }
  Value stored = quantB ? quantB.getValues() : sparseB ? sparseB.getValues() : rhs;
  Value storedGate = quantGate    ? quantGate.getValues()
                     : sparseGate ? sparseGate.getValues()
                                  : gate;
  RefAttr a = ref(lhs), bRef = ref(stored), c = ref(op->getResult(0));
  Value lhsOrigin = lhs;
  while (auto reshape = lhsOrigin.getDefiningOp<ReshapeOp>())
    lhsOrigin = reshape.getInput();
  RefAttr aScale = e4m3ScalesOf.lookup(lhsOrigin);
  if (aScale)
    a = slice(a, 0, product(ls)); // e4m3: a byte an element
  RefAttr biasRef = bias ? ref(bias) : none();
  RefAttr residualRef = residual ? ref(residual) : none();
  Type element = tensorOf(lhs).getElementType();
  bool wideC = tensorOf(op->getResult(0)).getElementType() != element;
  auto emit = [&](RefAttr a, RefAttr bb, RefAttr c, RefAttr res, int64_t batch,
                  int64_t m, int64_t strideA, int64_t strideB,
                  int64_t strideC) {
    exec::GemmOp::create(
        b, op->getLoc(), a, bb, c, biasRef, res, b.getI64IntegerAttr(batch),
        b.getI64IntegerAttr(m), b.getI64IntegerAttr(n), b.getI64IntegerAttr(k),
        b.getBoolAttr(transposeLhs), b.getBoolAttr(transposeRhs),
        b.getI64IntegerAttr(strideA), b.getI64IntegerAttr(strideB),
        b.getI64IntegerAttr(strideC),
        exec::ActivationAttr::get(b.getContext(), activation),
        TypeAttr::get(element),
        gate ? ref(storedGate) : RefAttr(), /*norm_weight=*/RefAttr(),
        /*norm_out=*/RefAttr(), /*norm_squares=*/RefAttr(), /*norm_offset=*/nullptr,
        /*a_squares=*/RefAttr(), /*a_norm_eps=*/nullptr, b.getBoolAttr(wideC),
        /*weight_format=*/nullptr, /*b_scale=*/RefAttr(), /*b_zero=*/RefAttr(),
        /*gate_scale=*/RefAttr(), /*gate_zero=*/RefAttr(), /*group=*/nullptr,
        /*b_meta=*/RefAttr(), /*gate_meta=*/RefAttr(), /*a_scale=*/RefAttr());
    if (quantB)
      setQuantized(b.getInsertionBlock()->back(), quantB, quantGate);
    if (aScale)
      cast<exec::GemmOp>(b.getInsertionBlock()->back()).setAScaleAttr(aScale);
    if (sparseB)
      setSparse(b.getInsertionBlock()->back(), sparseB, sparseGate);
  };
  // One weight for all rows: the batch folds into M. (A gated GEMM's
  // weights are [N, K], so it always lowers here.)
  if (product(rhsBatch) == 1 && !transposeLhs) {
    emit(a, bRef, c, residualRef, 1, batch * m, 0, 0, 0);
    addNormFolds(op);
    return success();
  }
  assert(!foldOfProducer.count(op) && !foldOfConsumer.count(op) &&
         "findNormFolds takes only GEMMs over one weight for all rows");
  if (gate)
    return op->emitOpError("a gated GEMM needs weights shared by all rows");
  auto strideOf = [&](ArrayRef<int64_t> dims, int64_t matrix) -> int64_t {
    if (product(dims) == 1)
      return 0;
    return product(dims) == batch ? matrix : -1;
  };
  int64_t strideA = strideOf(lhsBatch, m * k), strideB = strideOf(rhsBatch, k * n);
  if (strideA >= 0 && strideB >= 0) {
    emit(a, bRef, c, residualRef, batch, m, strideA, strideB, m * n);
    return success();
  }
  // Partly broadcast batch dimensions: one GEMM per output matrix.
  SmallVector<int64_t> index(outBatch.size(), 0);
  auto linear = [&](ArrayRef<int64_t> dims) {
    int64_t at = 0, shift = outBatch.size() - dims.size();
    for (size_t i = 0; i < dims.size(); ++i)
      at = at * dims[i] + (dims[i] == 1 ? 0 : index[i + shift]);
    return at;
  };
  for (int64_t i = 0; i < batch; ++i) {
    int64_t rem = i;
    for (size_t d = outBatch.size(); d-- > 0;) {
      index[d] = rem % outBatch[d];
      rem /= outBatch[d];
    }
    int64_t bytes = tensorBytes(tensorOf(lhs)) / product(ls);
    int64_t cBytes = tensorBytes(tensorOf(op->getResult(0))) / product(os);
    RefAttr res = residual ? slice(residualRef, i * m * n * cBytes, m * n * cBytes) : none();
    emit(slice(a, linear(lhsBatch) * m * k * bytes, m * k * bytes),
         slice(bRef, linear(rhsBatch) * k * n * bytes, k * n * bytes),
         slice(c, i * m * n * cBytes, m * n * cBytes), res, 1, m, 0, 0, 0);
  }
  return success();
}

LogicalResult Lowering::lowerOp(Operation *op) {
  Location loc = op->getLoc();
  auto shape = [](Value v) { return tensorOf(v).getShape(); };
  auto elementBytes = [](Value v) {
    return std::max<int64_t>(
        tensorOf(v).getElementType().getIntOrFloatBitWidth() / 8, 1);
  };
  if (isCollective(op))
    return lowerCollective(b, op, [&](Value v) { return ref(v); });
  if (auto param = dyn_cast<ParamOp>(op)) {
    RefAttr weight = weightRef(param);
    if (!options.paramsInState) {
      refOf[param.getResult()] = weight;
      return success();
    }
    // A trainable parameter: state, initialised from the weight of its name.
    FailureOr<RefAttr> r =
        stateRef((mlir::gai::kParamPrefix + param.getName()).str(), param.getType(), loc);
    if (failed(r))
      return failure();
    refOf[param.getResult()] = *r;
    return success();
  }
  if (auto reshape = dyn_cast<ReshapeOp>(op)) {
    refOf[reshape.getResult()] = ref(reshape.getInput());
    return success();
  }
  if (isa<DequantizeOp, DecompressOp>(op)) {
    // Folded into the GEMMs that read it (lowerMatmul); nothing else may.
    for (OpOperand &use : op->getUses()) {
      Operation *user = use.getOwner();
      bool weight = (isa<MatmulOp, GemmOp>(user) && use.getOperandNumber() == 1) ||
                    (isa<GatedGemmOp>(user) && use.get() != user->getOperand(0));
      if (!weight)
        return user->emitOpError("reads a dequantized or 2:4 weight other than as a GEMM's "
                                 "weight; the runtime has no float copy of it");
    }
    return success();
  }
  if (auto fusion = dyn_cast<FusionOp>(op)) {
    if (foldOfNorm.count(op))
      return success(); // the GEMMs around it do its work
    SmallVector<unsigned> e4m3Results;
    SmallVector<Attribute> args, scales;
    for (Value input : fusion.getInputs())
      args.push_back(ref(input));
    for (auto [i, result] : llvm::enumerate(fusion->getResults())) {
      RefAttr scale = e4m3ScalesOf.lookup(result);
      if (!scale) {
        args.push_back(ref(result));
        continue;
      }
      e4m3Results.push_back(static_cast<unsigned>(i));
      args.push_back(slice(ref(result), 0, product(tensorOf(result).getShape())));
      scales.push_back(scale);
    }
    llvm::append_range(args, scales);
    FailureOr<FlatSymbolRefAttr> kernel = kernelFor(fusion, e4m3Results);
    if (failed(kernel))
      return failure();
    exec::LaunchOp::create(b, loc, *kernel, b.getArrayAttr(args));
    return success();
  }
  if (auto matmul = dyn_cast<MatmulOp>(op))
    return lowerMatmul(op, matmul.getLhs(), matmul.getRhs(), {}, {},
                       matmul.getTransposeLhs(), matmul.getTransposeRhs(),
                       exec::Activation::None);
  if (auto gated = dyn_cast<GatedGemmOp>(op))
    return lowerMatmul(op, gated.getLhs(), gated.getUp(), {}, {}, false, true,
                       activationOf(gated.getActivation()),
                       gated.getGate());
  if (auto gemm = dyn_cast<GemmOp>(op))
    return lowerMatmul(op, gemm.getLhs(), gemm.getRhs(), gemm.getBias(),
                       gemm.getResidual(), gemm.getTransposeLhs(),
                       gemm.getTransposeRhs(),
                       activationOf(gemm.getActivation()));
  if (auto fa = dyn_cast<FlashAttentionOp>(op)) {
    using T = FlashAttentionOp;
    SmallVector<int64_t> q = headMajorShape(fa.getQuery(), fa.isTokenMajor(T::kQuery)),
                         k = headMajorShape(fa.getKey(), fa.isTokenMajor(T::kKey)),
                         v = headMajorShape(fa.getValue(), fa.isTokenMajor(T::kValue));
    DenseI64ArrayAttr strides;
    if (llvm::is_contained(fa.getTokenMajor(), true)) {
      SmallVector<int64_t> all;
      for (auto [x, flag] : {std::pair{fa.getQuery(), T::kQuery}, {fa.getKey(), T::kKey},
                             {fa.getValue(), T::kValue}, {fa.getResult(), T::kResult}})
        appendAttentionStrides(all, x, fa.isTokenMajor(flag));
      strides = b.getDenseI64ArrayAttr(all);
    }
    Value positions = fa.getQueryPositions();
    exec::AttentionOp::create(
        b, loc, ref(fa.getQuery()), ref(fa.getKey()), ref(fa.getValue()),
        ref(fa.getResult()), positions ? ref(positions) : none(),
        b.getI64IntegerAttr(q[0]), b.getI64IntegerAttr(q[1]),
        b.getI64IntegerAttr(k[1]), b.getI64IntegerAttr(q[2]),
        b.getI64IntegerAttr(k[2]), b.getI64IntegerAttr(q[3]),
        b.getI64IntegerAttr(v[3]),
        b.getF32FloatAttr(fa.getScale().convertToDouble()),
        b.getF32FloatAttr(fa.getSoftcap().convertToDouble()),
        b.getBoolAttr(fa.getCausal()),
        b.getI64IntegerAttr(static_cast<int64_t>(fa.getWindow())),
        TypeAttr::get(tensorOf(fa.getResult()).getElementType()),
        /*k_new=*/nullptr, /*v_new=*/nullptr, /*rope_positions=*/nullptr,
        /*rope=*/nullptr, /*rope_theta=*/nullptr, /*cache_ready=*/nullptr,
        fa.getWithLse() ? ref(fa.getLse()) : RefAttr(), strides);
    return success();
  }
  if (auto grad = dyn_cast<FlashAttentionGradOp>(op)) {
    using T = FlashAttentionGradOp;
    SmallVector<int64_t> q = headMajorShape(grad.getQuery(), grad.isTokenMajor(T::kQuery)),
                         k = headMajorShape(grad.getKey(), grad.isTokenMajor(T::kKey)),
                         v = headMajorShape(grad.getValue(), grad.isTokenMajor(T::kValue));
    // Gradients written into their concat: views of its buffer.
    for (Value g : grad->getResults())
      if (ConcatPart part = concatPartOf(g); part.concat) {
        RefAttr whole = ref(part.concat.getResult());
        int64_t at = part.offset * elementBytes(g);
        refOf[g] = slice(whole, at, whole.getSize() - at);
      }
    DenseI64ArrayAttr strides;
    if (llvm::is_contained(grad.getTokenMajor(), true)) {
      SmallVector<int64_t> all;
      for (auto [x, flag] :
           {std::pair{grad.getQuery(), T::kQuery}, {grad.getKey(), T::kKey},
            {grad.getValue(), T::kValue}, {grad.getOut(), T::kOut},
            {grad.getOutGrad(), T::kOutGrad}, {grad.getQueryGrad(), T::kQueryGrad},
            {grad.getKeyGrad(), T::kKeyGrad}, {grad.getValueGrad(), T::kValueGrad}})
        appendAttentionStrides(all, x, grad.isTokenMajor(flag));
      strides = b.getDenseI64ArrayAttr(all);
    }
    exec::AttentionGradOp::create(
        b, loc, ref(grad.getQuery()), ref(grad.getKey()), ref(grad.getValue()),
        ref(grad.getOut()), ref(grad.getLse()), ref(grad.getOutGrad()),
        ref(grad.getQueryGrad()), ref(grad.getKeyGrad()), ref(grad.getValueGrad()),
        i64(q[0]), i64(q[1]), i64(k[1]), i64(q[2]), i64(k[2]), i64(q[3]), i64(v[3]),
        b.getF32FloatAttr(grad.getScale().convertToDouble()),
        b.getF32FloatAttr(grad.getSoftcap().convertToDouble()),
        b.getBoolAttr(grad.getCausal()),
        i64(static_cast<int64_t>(grad.getWindow())),
        TypeAttr::get(tensorOf(grad.getQuery()).getElementType()), strides);
    return success();
  }
  if (auto ca = dyn_cast<CachedAttentionOp>(op)) {
    ArrayRef<int64_t> q = shape(ca.getQuery()), k = shape(ca.getKeyCache()),
                      v = shape(ca.getValueCache());
    // The caches are written in place, as by cache_write.
    refOf[ca.getNewKeyCache()] = ref(ca.getKeyCache());
    refOf[ca.getNewValueCache()] = ref(ca.getValueCache());
    Value ropePositions = ca.getRopePositions();
    exec::RopeStyle style = exec::RopeStyle::None;
    if (std::optional<RopeStyle> s = ca.getRopeStyle())
      style = *s == RopeStyle::Half ? exec::RopeStyle::Half : exec::RopeStyle::Interleaved;
    bool rotates = style != exec::RopeStyle::None;
    exec::AttentionOp::create(
        b, loc, ref(ca.getQuery()),
        ref(ca.getKeyCache()), ref(ca.getValueCache()), ref(ca.getResult()),
        ref(ca.getPositions()), b.getI64IntegerAttr(q[0]),
        b.getI64IntegerAttr(q[1]), b.getI64IntegerAttr(k[1]),
        b.getI64IntegerAttr(q[2]), b.getI64IntegerAttr(k[2]),
        b.getI64IntegerAttr(q[3]), b.getI64IntegerAttr(v[3]),
        b.getF32FloatAttr(ca.getScale().convertToDouble()),
        b.getF32FloatAttr(ca.getSoftcap().convertToDouble()),
        b.getBoolAttr(ca.getCausal()),
        b.getI64IntegerAttr(static_cast<int64_t>(ca.getWindow())),
        TypeAttr::get(tensorOf(ca.getResult()).getElementType()),
        ref(ca.getKey()), ref(ca.getValue()),
        ropePositions ? ref(ropePositions) : RefAttr(),
        exec::RopeStyleAttr::get(b.getContext(), style),
        b.getF32FloatAttr(rotates ? ca.getRopeThetaAttr().getValueAsDouble() : 0.0),
        // The entry's own caches and positions, not values an earlier op wrote.
        b.getBoolAttr(isa<BlockArgument>(ca.getKeyCache()) &&
                      isa<BlockArgument>(ca.getValueCache()) &&
                      isa<BlockArgument>(ca.getPositions())),
        /*lse=*/RefAttr(), /*strides=*/DenseI64ArrayAttr());
    return success();
  }
  if (auto e = dyn_cast<EmbeddingOp>(op)) {
    ArrayRef<int64_t> table = shape(e.getTable());
    exec::EmbeddingOp::create(b, loc, ref(e.getTable()), ref(e.getIndices()),
                              ref(e.getResult()), i64(table[0]), i64(table[1]),
                              i64(product(shape(e.getIndices()))), elementOf(e.getTable()),
                              i64(e.getVocabShards()), vocabShardAxes(b, e.getVocabShards()));
    return success();
  }
  if (auto e = dyn_cast<EmbeddingGradOp>(op)) {
    ArrayRef<int64_t> table = shape(e.getResult());
    exec::EmbeddingGradOp::create(b, loc, ref(e.getGrad()), ref(e.getIndices()),
                                  ref(e.getResult()), i64(table[0]), i64(table[1]),
                                  i64(product(shape(e.getIndices()))), elementOf(e.getResult()),
                                  i64(e.getVocabShards()),
                                  vocabShardAxes(b, e.getVocabShards()));
    return success();
  }
  if (auto w = dyn_cast<CacheWriteOp>(op)) {
    ArrayRef<int64_t> cache = shape(w.getCache()), update = shape(w.getUpdate());
    refOf[w.getResult()] = ref(w.getCache());
    exec::CacheWriteOp::create(b, loc, ref(w.getCache()), ref(w.getUpdate()),
                               ref(w.getPositions()), i64(cache[0]), i64(cache[1]),
                               i64(cache[2]), i64(update[2]), i64(cache[3]),
                               elementOf(w.getCache()));
    return success();
  }
  if (auto take = dyn_cast<TakeOp>(op)) {
    ArrayRef<int64_t> in = shape(take.getInput());
    exec::TakeOp::create(b, loc, ref(take.getInput()), ref(take.getIndices()),
                         ref(take.getResult()), i64(in[0]), i64(in[1]),
                         i64(product(in.drop_front(2)) * elementBytes(take.getInput())));
    return success();
  }
  if (auto t = dyn_cast<TransposeOp>(op)) {
    exec::TransposeOp::create(b, loc, ref(t.getInput()), ref(t.getResult()),
                              i64(elementBytes(t.getInput())),
                              b.getDenseI64ArrayAttr(shape(t.getInput())),
                              b.getDenseI64ArrayAttr(t.getPermutation()));
    return success();
  }
  if (auto s = dyn_cast<SliceOp>(op)) {
    if (isAttentionSliceView(s)) { // attention reads its rows in place
      RefAttr whole = ref(s.getInput());
      int64_t at = s.getOffsets().back() * elementBytes(s.getInput());
      refOf[s.getResult()] = slice(whole, at, whole.getSize() - at);
      return success();
    }
    exec::SliceOp::create(b, loc, ref(s.getInput()), ref(s.getResult()),
                          i64(elementBytes(s.getInput())),
                          b.getDenseI64ArrayAttr(shape(s.getInput())),
                          b.getDenseI64ArrayAttr(s.getOffsets()),
                          b.getDenseI64ArrayAttr(s.getSizes()));
    return success();
  }
  if (auto topk = dyn_cast<TopKOp>(op)) {
    ArrayRef<int64_t> in = shape(topk.getInput());
    exec::TopKOp::create(b, loc, ref(topk.getInput()), ref(topk.getValues()),
                         ref(topk.getIndices()), i64(product(in.drop_back())), i64(in.back()),
                         i64(static_cast<int64_t>(topk.getK())), elementOf(topk.getInput()));
    return success();
  }
  if (auto ce = dyn_cast<CrossEntropyOp>(op)) {
    ArrayRef<int64_t> logits = shape(ce.getLogits());
    exec::CrossEntropyOp::create(
        b, loc, ref(ce.getLogits()), ref(ce.getLabels()), ref(ce.getResult()),
        i64(product(logits.drop_back())), i64(logits.back()),
        i64(static_cast<int64_t>(ce.getIgnoreIndex())),
        exec::LossReductionAttr::get(b.getContext(), reductionOf(ce.getReduction())),
        elementOf(ce.getLogits()));
    return success();
  }
  if (auto ce = dyn_cast<CrossEntropyGradOp>(op)) {
    ArrayRef<int64_t> logits = shape(ce.getLogits());
    exec::CrossEntropyGradOp::create(
        b, loc, ref(ce.getLogits()), ref(ce.getLabels()), ref(ce.getGrad()),
        ref(ce.getResult()), i64(product(logits.drop_back())), i64(logits.back()),
        i64(static_cast<int64_t>(ce.getIgnoreIndex())),
        exec::LossReductionAttr::get(b.getContext(), reductionOf(ce.getReduction())),
        elementOf(ce.getLogits()));
    return success();
  }
  if (auto concat = dyn_cast<ConcatOp>(op)) {
    // Each part is a block of rows placed at its offset in every output row.
    auto axis = static_cast<int64_t>(concat.getAxis());
    ArrayRef<int64_t> out = shape(concat.getResult());
    int64_t outer = product(out.take_front(axis));
    int64_t unit = product(out.drop_front(axis + 1)) * elementBytes(concat.getResult());
    int64_t offset = 0;
    for (Value part : concat.getInputs()) {
      int64_t n = shape(part)[axis];
      auto reshape = part.getDefiningOp<ReshapeOp>();
      bool inPlace = reshape && concatPartOf(reshape.getInput()).concat == concat;
      if (!inPlace) // else the attention backward wrote it there
        exec::PlaceOp::create(b, loc, ref(part), ref(concat.getResult()), i64(outer),
                              i64(n * unit), i64(out[axis] * unit), i64(offset * unit));
      offset += n;
    }
    return success();
  }
  if (auto repeat = dyn_cast<RepeatOp>(op)) {
    // Copy r of every slice lands at r within its group of `times`.
    auto axis = static_cast<int64_t>(repeat.getAxis());
    auto times = static_cast<int64_t>(repeat.getTimes());
    ArrayRef<int64_t> in = shape(repeat.getInput());
    int64_t unit = product(in.drop_front(axis + 1)) * elementBytes(repeat.getInput());
    for (int64_t r = 0; r < times; ++r)
      exec::PlaceOp::create(b, loc, ref(repeat.getInput()), ref(repeat.getResult()),
                            i64(product(in.take_front(axis + 1))), i64(unit),
                            i64(times * unit), i64(r * unit));
    return success();
  }
  if (auto oneHot = dyn_cast<OneHotOp>(op)) {
    exec::OneHotOp::create(b, loc, ref(oneHot.getIndices()), ref(oneHot.getResult()),
                           i64(product(shape(oneHot.getIndices()))),
                           i64(static_cast<int64_t>(oneHot.getDepth())),
                           elementOf(oneHot.getResult()), i64(oneHot.getVocabShards()),
                           vocabShardAxes(b, oneHot.getVocabShards()));
    return success();
  }
  if (auto reduce = dyn_cast<ReduceOp>(op)) {
    // Adjacent axes are one axis of their product's length.
    ArrayRef<int64_t> axes = reduce.getAxes();
    for (size_t i = 1; i < axes.size(); ++i)
      if (axes[i] != axes[i - 1] + 1)
        return op->emitOpError("reduces over axes that are not adjacent; the runtimes "
                               "reduce over one run of axes");
    if (axes.empty())
      return op->emitOpError("reduces over no axis");
    ArrayRef<int64_t> in = shape(reduce.getInput());
    int64_t first = axes.front(), last = axes.back();
    exec::ReduceOp::create(
        b, loc, ref(reduce.getInput()), ref(reduce.getResult()),
        exec::ReduceKindAttr::get(b.getContext(), reduceKindOf(reduce.getKind())),
        i64(product(in.take_front(first))), i64(product(in.slice(first, last - first + 1))),
        i64(product(in.drop_front(last + 1))), elementOf(reduce.getInput()));
    return success();
  }
  if (auto constant = dyn_cast<ConstantOp>(op)) {
    if (!ref(constant.getResult()))
      return success(); // a state fill, emitted at the end
    auto splat = dyn_cast<SplatElementsAttr>(constant.getValue());
    Type element = constant.getType().getElementType();
    if (!splat || !(element.isF32() || element.isBF16()))
      return op->emitOpError("only f32 and bf16 splat constants have a "
                             "lowering outside fusion regions");
    fill(ref(constant.getResult()), constant);
    return success();
  }
  return op->emitOpError("has no lowering to the exec dialect yet");
}

LogicalResult Lowering::lowerFunction(func::FuncOp func) {
  refOf.clear();
  Location loc = func.getLoc();
  b.setInsertionPointToEnd(moduleBody);
  auto entry = exec::EntryOp::create(b, loc, b.getStringAttr(func.getSymName()),
                                     b.getI64IntegerAttr(0));
  b.setInsertionPointToStart(&entry.getBody().emplaceBlock());

  // Arguments: state (caches, gradients, optimizer moments) is shared by all
  // entries, the rest are inputs.
  currentEntry = entry;
  int64_t inputEnd = 0;
  llvm::StringMap<SmallVector<Value>> stateAtEntry; // name -> its values on entry
  for (BlockArgument arg : func.getArguments()) {
    auto nameAttr = func.getArgAttrOfType<StringAttr>(arg.getArgNumber(), "gai.name");
    std::string name = nameAttr ? nameAttr.str()
                                : "arg" + std::to_string(arg.getArgNumber());
    int64_t size = bytesOf(arg);
    if (isStateName(name)) {
      FailureOr<RefAttr> known = stateRef(
          name, arg.getType(), loc,
          func.getArgAttrOfType<DictionaryAttr>(arg.getArgNumber(), "gai.shard"));
      if (failed(known))
        return failure();
      refOf[arg] = *known;
      stateAtEntry[name].push_back(arg);
      continue;
    }
    RefAttr r = RefAttr::get(b.getContext(), Space::Input, alignUp(inputEnd), size);
    inputEnd = r.getOffset() + size;
    refOf[arg] = r;
    exec::InputOp::create(b, loc, b.getStringAttr(name), TypeAttr::get(arg.getType()), r);
  }
  if (options.paramsInState)
    func.walk([&](ParamOp p) {
      stateAtEntry[(mlir::gai::kParamPrefix + p.getName()).str()].push_back(p);
    });

  // Results that are not state are written straight into the output space
  // by the op that makes them, unless that value needs a copy.
  auto returnOp = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  auto originOf = [](Value v) {
    while (auto reshape = v.getDefiningOp<ReshapeOp>())
      v = reshape.getInput();
    while (true) {
      if (auto write = v.getDefiningOp<CacheWriteOp>())
        v = write.getCache();
      else if (auto cached = v.getDefiningOp<CachedAttentionOp>();
               cached && v != cached.getResult())
        v = v == cached.getNewKeyCache() ? cached.getKeyCache() : cached.getValueCache();
      else
        return v;
    }
  };
  DenseMap<Value, RefAttr> outputOf; // origin -> its output buffer
  SmallVector<std::pair<Value, RefAttr>> copies;
  SmallVector<std::pair<ConstantOp, RefAttr>> fills;
  int64_t outputEnd = 0;
  for (auto [i, v] : llvm::enumerate(returnOp.getOperands())) {
    Value origin = originOf(v);
    auto nameAttr = func.getResultAttrOfType<StringAttr>(i, "gai.name");
    if (auto arg = dyn_cast<BlockArgument>(origin); arg && refOf.lookup(arg) &&
        refOf.lookup(arg).getSpace() == Space::State &&
        (!nameAttr || !isStateName(nameAttr.getValue()) ||
         state.lookup(nameAttr.getValue()) == refOf.lookup(arg)))
      continue;
    if (nameAttr && isStateName(nameAttr.getValue())) {
      // A new value of a state tensor: written over it in place when that
      // is safe, else after every op has run.
      FailureOr<RefAttr> target = stateRef(nameAttr.getValue(), v.getType(), loc);
      if (failed(target))
        return failure();
      Operation *producer = origin.getDefiningOp();
      auto splat = dyn_cast_or_null<ConstantOp>(producer);
      if (splat && isa<SplatElementsAttr>(splat.getValue()))
        fills.emplace_back(splat, *target);
      else if (producer && !outputOf.count(origin) &&
               writesStateInPlace(producer, stateAtEntry.lookup(nameAttr.getValue())))
        outputOf[origin] = *target;
      else
        copies.emplace_back(v, *target);
      continue;
    }
    std::string name = nameAttr ? nameAttr.str()
                                : (i == 0 ? "logits" : "result" + std::to_string(i));
    RefAttr r = RefAttr::get(b.getContext(), Space::Output, alignUp(outputEnd),
                             bytesOf(v));
    outputEnd = r.getOffset() + r.getSize();
    exec::OutputOp::create(b, loc, b.getStringAttr(name), TypeAttr::get(v.getType()), r);
    if (origin.getDefiningOp() && !isa<ParamOp, ConstantOp>(origin.getDefiningOp()) &&
        !outputOf.count(origin))
      outputOf[origin] = r;
    else
      copies.emplace_back(v, r);
  }

  // Norms folded into the GEMMs around them: the GEMM making the input
  // writes the norm's result, so that buffer is live from there on.
  SmallVector<NormFold> folds =
      options.gpuKernels ? findNormFolds(func, options.foldNormRows) : SmallVector<NormFold>();
  foldOfNorm.clear();
  foldOfProducer.clear();
  foldOfConsumer.clear();
  DenseMap<Operation *, int64_t> opIndex;
  for (auto [i, op] : llvm::enumerate(func.getBody().front()))
    opIndex[&op] = static_cast<int64_t>(i);
  DenseMap<Value, int64_t> writtenEarlier;
  int64_t squaresBytes = 0;
  for (const NormFold &fold : folds) {
    foldOfNorm[fold.norm] = &fold;
    foldOfProducer[fold.producer] = &fold;
    for (Operation *user : fold.norm->getResult(0).getUsers())
      foldOfConsumer[user] = &fold;
    writtenEarlier[fold.norm->getResult(0)] = opIndex.lookup(fold.producer);
    squaresBytes = fold.squaresOffset + fold.rows * 8;
  }

  // The arena: every other intermediate buffer, placed by liveness.
  FunctionBuffers buffers = collectBuffers(func, options.besideWindow);
  for (auto [v, request] : llvm::zip(buffers.values, buffers.requests))
    if (auto it = writtenEarlier.find(v); it != writtenEarlier.end())
      request.firstUse = std::min(request.firstUse, it->second);
  std::vector<BufferRequest> requests;
  std::vector<Value> planned;
  if (squaresBytes > 0) // live throughout: zeroed before the first step
    requests.push_back({squaresBytes, 0, INT64_MAX});
  for (auto [v, request] : llvm::zip(buffers.values, buffers.requests)) {
    if (RefAttr r = outputOf.lookup(v)) {
      refOf[v] = r;
      continue;
    }
    if (v.getDefiningOp<ConstantOp>() &&
        llvm::all_of(v.getUsers(), [](Operation *u) { return isa<func::ReturnOp>(u); }) &&
        llvm::any_of(fills, [&](auto &fill) { return fill.first.getResult() == v; }))
      continue; // only fills state: needs no buffer of its own
    requests.push_back(request);
    planned.push_back(v);
  }
  ArenaPlan plan = planArena(requests, kAlignment);
  size_t first = 0;
  squares = RefAttr();
  if (squaresBytes > 0)
    squares = RefAttr::get(b.getContext(), Space::Arena, plan.offsets[first++], squaresBytes);
  for (auto [v, offset, request] :
       llvm::zip(planned, ArrayRef(plan.offsets).drop_front(first),
                 ArrayRef(requests).drop_front(first)))
    refOf[v] = RefAttr::get(b.getContext(), Space::Arena, offset, request.size);
  entry.setArenaSizeAttr(b.getI64IntegerAttr(plan.arenaSize));
  if (squares) // the folded norms' f64 sums start at zero (0.0 has zero bits in any width)
    exec::FillOp::create(b, loc, squares, i64(0), TypeAttr::get(b.getF32Type()));

  placeE4m3Results(func);

  // A folded norm's weight is read by the GEMM before the norm: placed first.
  for (const NormFold &fold : folds)
    if (Operation *param = fold.weight.getDefiningOp())
      if (failed(lowerOp(param)))
        return failure();
  for (Operation &op : func.getBody().front().without_terminator())
    if (failed(lowerOp(&op)))
      return failure();
  for (auto [v, r] : copies)
    exec::CopyOp::create(b, loc, ref(v), r);
  for (auto [constant, r] : fills)
    fill(r, constant);
  return success();
}

FailureOr<OwningOpRef<ModuleOp>> Lowering::run() {
  MLIRContext *context = fused.getContext();
  context->loadDialect<exec::ExecDialect>();
  loadKernelDialects(*context);
  out = ModuleOp::create(fused.getLoc(), fused.getSymName());
  moduleBody = out->getBody();
  fused.walk([&](ParamOp p) {
    if (auto tp = p->getAttrOfType<DictionaryAttr>(kTensorParallelAttr))
      tensorParallelOf[p.getName()] = tp;
  });
  for (auto func : fused.getOps<func::FuncOp>())
    if (failed(lowerFunction(func)))
      return failure();
  OpBuilder::InsertionGuard guard(b);
  (*out)->setAttr("exec.weights_size", b.getI64IntegerAttr(weightsEnd));
  (*out)->setAttr("exec.state_size", b.getI64IntegerAttr(stateEnd));
  if (SmallVector<int64_t> mesh = meshShapeOf(fused); !mesh.empty())
    (*out)->setAttr("exec.mesh", b.getDenseI64ArrayAttr(mesh));
  return std::move(out);
}

} // namespace

FailureOr<OwningOpRef<ModuleOp>> lowerToExec(ModuleOp fused,
                                             const ExecOptions &options) {
  return Lowering(fused, options).run();
}

} // namespace gai
