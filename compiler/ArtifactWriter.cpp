// exec module → FlatBuffers artifact (runtime/format/artifact.fbs).
#include "compiler/ArtifactWriter.h"

#include "dialects/Exec/ExecOps.h"
#include "dialects/Gai/StateNames.h"
#include "gai/Artifact.h"
#include "gai/FloatConvert.h"
#include "gai/Version.h"
#include "format/artifact_generated.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cstring>
#include <string_view>

using namespace mlir;
namespace fmt = ::gai::format;

namespace gai {
namespace {

std::optional<fmt::DType> dtypeOf(Type t) {
  if (t.isF32()) return fmt::DType::F32;
  if (t.isF16()) return fmt::DType::F16;
  if (t.isBF16()) return fmt::DType::BF16;
  if (isa<Float8E4M3FNType>(t)) return fmt::DType::F8E4M3;
  if (t.isInteger(8)) return fmt::DType::I8;
  if (t.isInteger(4)) return fmt::DType::I4;
  if (t.isInteger(32)) return fmt::DType::I32;
  if (t.isInteger(1)) return fmt::DType::I1;
  return std::nullopt;
}

/// A step's element type. The format names every type gai tensors have.
fmt::DType stepDType(Type t) { return dtypeOf(t).value_or(fmt::DType::F32); }

/// The safetensors dtype of float element type `t`.
std::optional<DType> floatDTypeOf(Type t) {
  if (t.isF32()) return DType::F32;
  if (t.isF16()) return DType::F16;
  if (t.isBF16()) return DType::BF16;
  return std::nullopt;
}

/// What a safetensors dtype must be for a weight of element type `t`.
bool sameDType(Type t, DType file) {
  return (t.isF32() && file == DType::F32) ||
         (t.isF16() && file == DType::F16) ||
         (t.isBF16() && file == DType::BF16) ||
         (isa<Float8E4M3FNType>(t) && file == DType::F8E4M3) ||
         (t.isInteger(8) && file == DType::I8) ||
         (t.isInteger(4) && file == DType::U8) || // two a byte
         (t.isInteger(32) && file == DType::I32);
}

fmt::BufferRef toRef(exec::RefAttr ref) {
  return fmt::BufferRef(static_cast<fmt::Space>(ref.getSpace()),
                        ref.getOffset(), ref.getSize());
}

fmt::BufferRef toRef(std::optional<exec::RefAttr> ref) {
  return ref ? toRef(*ref) : fmt::BufferRef();
}

// The exec enums and the schema's have the same values (ExecOps.td says so;
// these checks keep it true).
static_assert(static_cast<int>(exec::Activation::Relu) ==
              static_cast<int>(fmt::Activation::Relu));
static_assert(static_cast<int>(exec::RopeStyle::Interleaved) ==
              static_cast<int>(fmt::RopeStyle::Interleaved));
static_assert(static_cast<int>(exec::ReduceKind::Min) == static_cast<int>(fmt::ReduceKind::Min));
static_assert(static_cast<int>(exec::LossReduction::None) ==
              static_cast<int>(fmt::LossReduction::None));
static_assert(static_cast<int>(exec::StateRole::ParameterCopy) ==
              static_cast<int>(fmt::TensorRole::ParameterCopy));
static_assert(std::string_view(mlir::gai::kRefreshParamCopies.data(),
                               mlir::gai::kRefreshParamCopies.size()) ==
              std::string_view(::gai::kRefreshParamCopiesEntry));
template <typename To, typename From> To sameEnum(From value) {
  return static_cast<To>(static_cast<int>(value));
}

std::vector<int64_t> toVector(ArrayRef<int64_t> values) {
  return std::vector<int64_t>(values.begin(), values.end());
}

/// A FlatBuffers optional scalar; the frontend keeps ids and counts in int32.
template <typename To, typename From>
flatbuffers::Optional<To> optionalOf(const std::optional<From> &value) {
  if (!value)
    return flatbuffers::nullopt;
  return static_cast<To>(*value);
}

/// `target` relative to `fromDir` when both are absolute paths.
std::string relativePath(StringRef target, StringRef fromDir) {
  SmallVector<StringRef> to(llvm::sys::path::begin(target),
                            llvm::sys::path::end(target));
  SmallVector<StringRef> from(llvm::sys::path::begin(fromDir),
                              llvm::sys::path::end(fromDir));
  size_t common = 0;
  while (common < to.size() && common < from.size() &&
         to[common] == from[common])
    ++common;
  SmallString<256> result;
  for (size_t i = common; i < from.size(); ++i)
    llvm::sys::path::append(result, "..");
  for (size_t i = common; i < to.size(); ++i)
    llvm::sys::path::append(result, to[i]);
  return std::string(result);
}

class Writer {
public:
  Writer(ModuleOp module, const KernelLibrary &kernels,
         const ArtifactOptions &options, std::string &error)
      : module(module), kernels(kernels), options(options), error(error) {}
  FailureOr<std::vector<uint8_t>> write();

private:
  flatbuffers::Offset<fmt::TensorDesc> tensor(StringRef name, Type type,
                                              exec::RefAttr ref,
                                              DictionaryAttr shard = {},
                                              const std::vector<int64_t> *rankOffsets = nullptr,
                                              DictionaryAttr tp = {}) {
    auto shaped = cast<RankedTensorType>(type);
    std::vector<int64_t> shape(shaped.getShape().begin(), shaped.getShape().end());
    fmt::BufferRef buffer = toRef(ref);
    auto role = fmt::TensorRole::Other;
    std::string weight;
    if (std::optional<exec::StateName> state = exec::parseStateName(name)) {
      role = sameEnum<fmt::TensorRole>(state->role);
      weight = state->weight.str();
    }
    std::vector<int64_t> shardShape;
    std::vector<int16_t> shardAxes;
    if (shard) {
      auto whole = shard.getAs<DenseI64ArrayAttr>("shape");
      auto axes = shard.getAs<DenseI16ArrayAttr>("axes");
      shardShape.assign(whole.asArrayRef().begin(), whole.asArrayRef().end());
      shardAxes.assign(axes.asArrayRef().begin(), axes.asArrayRef().end());
    }
    // A tensor-parallel slice: the whole tensor's shape from this rank's
    // (its ZeRO share's whole, if sharded) and the segments it lost.
    std::vector<int64_t> tpShape, tpSegments;
    int64_t tpAxis = 0, tpKeep = 0, tpReplicas = 1;
    if (tp) {
      tpShape = shard ? shardShape : shape;
      tpAxis = tp.getAs<IntegerAttr>("axis").getInt();
      tpKeep = tp.getAs<IntegerAttr>("keep").getInt();
      if (auto replicas = tp.getAs<IntegerAttr>("replicas"))
        tpReplicas = replicas.getInt();
      ArrayRef<int64_t> segments = tp.getAs<DenseI64ArrayAttr>("segments").asArrayRef();
      tpSegments.assign(segments.begin(), segments.end());
      for (size_t i = 0; i + 2 < segments.size(); i += 3)
        tpShape[tpAxis] += (segments[i + 1] - tpKeep) * segments[i + 2];
    }
    return fmt::CreateTensorDescDirect(fbb, name.str().c_str(),
                                       *dtypeOf(shaped.getElementType()), &shape,
                                       &buffer, role, weight.empty() ? nullptr : weight.c_str(),
                                       shard ? &shardShape : nullptr,
                                       shard ? &shardAxes : nullptr, rankOffsets,
                                       tp ? &tpShape : nullptr, tpAxis, tpKeep,
                                       tp ? &tpSegments : nullptr, tpReplicas);
  }
  template <typename T> flatbuffers::Offset<fmt::TensorDesc> tensor(T op) {
    return tensor(op.getName(), op.getType(), op.getRef());
  }
  FailureOr<flatbuffers::Offset<fmt::Weights>> weights();
  /// A weight split over the tp ranks: the other ranks' slices (made as
  /// NAME@tpR) appended to `blob`; the offsets of every rank's.
  FailureOr<std::vector<int64_t>> rankSlices(exec::WeightOp w, std::vector<uint8_t> &blob);
  FailureOr<flatbuffers::Offset<fmt::Step>> step(Operation &op);

  ModuleOp module;
  const KernelLibrary &kernels;
  const ArtifactOptions &options;
  std::string &error;
  flatbuffers::FlatBufferBuilder fbb{1 << 16};
};

FailureOr<std::vector<int64_t>> Writer::rankSlices(exec::WeightOp w,
                                                   std::vector<uint8_t> &blob) {
  auto mesh = module->getAttrOfType<DenseI64ArrayAttr>("exec.mesh");
  if (options.weightsMode != WeightsMode::Embedded || !mesh || mesh.size() != 2) {
    error = "weight '" + w.getName().str() + "' is split over tensor-parallel ranks: the "
            "artifact needs a tp mesh and its weights embedded (leave out --external-weights)";
    return failure();
  }
  std::vector<int64_t> offsets = {w.getRef().getOffset()};
  Type element = cast<RankedTensorType>(w.getType()).getElementType();
  std::optional<DType> convertTo = floatDTypeOf(element);
  for (int64_t rank = 1; rank < mesh[1]; ++rank) {
    std::string name = w.getName().str() + "@tp" + std::to_string(rank);
    const TensorView *t = options.weights->find(name);
    if (!t || !convertTo || !canConvertFloats(t->dtype, *convertTo) ||
        t->numElements() * static_cast<int64_t>(dtypeSize(*convertTo)) !=
            w.getRef().getSize()) {
      error = "tensor-parallel slice '" + name + "' is missing or does not match the model";
      return failure();
    }
    int64_t at = static_cast<int64_t>((blob.size() + 63) / 64 * 64);
    blob.resize(static_cast<size_t>(at + w.getRef().getSize()), 0);
    convertFloats(t->data, t->dtype, blob.data() + at, *convertTo,
                  static_cast<size_t>(t->numElements()));
    offsets.push_back(at);
  }
  return offsets;
}

FailureOr<flatbuffers::Offset<fmt::Weights>> Writer::weights() {
  std::vector<flatbuffers::Offset<fmt::TensorDesc>> tensors;
  auto size = cast<IntegerAttr>(module->getAttr("exec.weights_size")).getInt();
  std::vector<uint8_t> blob;
  if (options.weightsMode == WeightsMode::Embedded)
    blob.assign(size, 0);
  for (auto w : module.getOps<exec::WeightOp>()) {
    if (options.weightsMode != WeightsMode::None) {
      const TensorView *t = options.weights->find(w.getName().str());
      Type element = cast<RankedTensorType>(w.getType()).getElementType();
      // Embedded float weights may come in another precision (f32 for a
      // bf16 model): they are converted. External ones are used as stored.
      std::optional<DType> convertTo = floatDTypeOf(element);
      bool same = t && sameDType(element, t->dtype);
      bool converts = t && !same && options.weightsMode == WeightsMode::Embedded &&
                      convertTo && canConvertFloats(t->dtype, *convertTo) &&
                      t->numElements() * static_cast<int64_t>(dtypeSize(*convertTo)) ==
                          w.getRef().getSize();
      if (!t || (!converts && (!same || static_cast<int64_t>(t->byteSize) !=
                                            w.getRef().getSize()))) {
        error = options.weights->path() + ": tensor '" + w.getName().str() +
                "' is missing or does not match the model";
        return failure();
      }
      if (converts)
        convertFloats(t->data, t->dtype, blob.data() + w.getRef().getOffset(),
                      *convertTo, static_cast<size_t>(t->numElements()));
      else if (options.weightsMode == WeightsMode::Embedded)
        std::memcpy(blob.data() + w.getRef().getOffset(), t->data, t->byteSize);
    }
    if (!w->hasAttr("exec.tensor_parallel")) {
      tensors.push_back(tensor(w));
      continue;
    }
    // Without weights, the split itself: the runtime slices the weights
    // bound at run time (or training draws them whole and keeps its slice).
    if (options.weightsMode == WeightsMode::None) {
      tensors.push_back(tensor(w.getName(), w.getType(), w.getRef(), {}, nullptr,
                               w->getAttrOfType<DictionaryAttr>("exec.tensor_parallel")));
      continue;
    }
    FailureOr<std::vector<int64_t>> offsets = rankSlices(w, blob);
    if (failed(offsets))
      return failure();
    tensors.push_back(tensor(w.getName(), w.getType(), w.getRef(), {}, &*offsets));
  }
  flatbuffers::Offset<fmt::ExternalWeights> external = 0;
  if (options.weightsMode == WeightsMode::External) {
    // The runtime maps one external file as the weights blob.
    if (options.weights->sharded()) {
      error = options.weights->path() + ": --external-weights references one safetensors "
              "file; these weights are in shards: embed them (leave out --external-weights)";
      return failure();
    }
    const SafetensorsFile &file = options.weights->files()[0];
    SmallString<256> weightsPath(file.path()),
        artifactDir(options.artifactPath);
    llvm::sys::fs::make_absolute(weightsPath);
    llvm::sys::fs::make_absolute(artifactDir);
    llvm::sys::path::remove_filename(artifactDir);
    std::string path = relativePath(weightsPath, artifactDir);
    external = fmt::CreateExternalWeightsDirect(
        fbb, path.c_str(), static_cast<int64_t>(file.fileSize()),
        checksum64(file.fileData(), file.fileSize()));
  } else if (options.weightsMode == WeightsMode::None) {
    // No file yet: the runtime binds weights by name (`--weights`).
    external = fmt::CreateExternalWeightsDirect(fbb, "", size, 0);
  }
  return fmt::CreateWeightsDirect(
      fbb, options.weightsMode == WeightsMode::Embedded ? &blob : nullptr,
      external, &tensors);
}

FailureOr<flatbuffers::Offset<fmt::Step>> Writer::step(Operation &op) {
  auto made = [&](fmt::Command kind, auto table) {
    return fmt::CreateStep(fbb, kind, table.Union());
  };
  auto dtype = [](TypeAttr element) { return stepDType(element.getValue()); };
  if (auto g = dyn_cast<exec::GemmOp>(op)) {
    fmt::BufferRef a = toRef(g.getA()), b = toRef(g.getB()), c = toRef(g.getC()),
                   bias = toRef(g.getBias()), res = toRef(g.getResidual()),
                   gate = toRef(g.getGate()), normWeight = toRef(g.getNormWeight()),
                   normOut = toRef(g.getNormOut()), normSquares = toRef(g.getNormSquares()),
                   aSquares = toRef(g.getASquares()), bScale = toRef(g.getBScale()),
                   bZero = toRef(g.getBZero()), gateScale = toRef(g.getGateScale()),
                   gateZero = toRef(g.getGateZero()), bMeta = toRef(g.getBMeta()),
                   gateMeta = toRef(g.getGateMeta()), aScale = toRef(g.getAScale());
    return made(fmt::Command::Gemm,
                fmt::CreateGemm(fbb, &a, &b, &c, &bias, &res, g.getBatch(), g.getM(), g.getN(),
                                g.getK(), g.getTransposeA(), g.getTransposeB(),
                                g.getStrideA(), g.getStrideB(), g.getStrideC(),
                                sameEnum<fmt::Activation>(g.getActivation()),
                                dtype(g.getElementAttr()), &gate, &normWeight, &normOut,
                                &normSquares, g.getNormOffset().convertToFloat(), &aSquares,
                                g.getANormEps().convertToFloat(), g.getWideC(),
                                sameEnum<fmt::WeightFormat>(g.getWeightFormat()), &bScale,
                                &bZero, &gateScale, &gateZero, g.getGroup(), &bMeta,
                                &gateMeta, &aScale));
  }
  // An attention command's strides, when it has any.
  auto stridesOf = [&](std::optional<ArrayRef<int64_t>> strides) {
    return strides ? fbb.CreateVector(strides->data(), strides->size())
                   : flatbuffers::Offset<flatbuffers::Vector<int64_t>>();
  };
  if (auto a = dyn_cast<exec::AttentionOp>(op)) {
    fmt::BufferRef q = toRef(a.getQ()), k = toRef(a.getK()), v = toRef(a.getV()),
                   out = toRef(a.getOut()), start = toRef(a.getQueryStart()),
                   kNew = toRef(a.getKNew()), vNew = toRef(a.getVNew()),
                   ropePositions = toRef(a.getRopePositions()), lse = toRef(a.getLse());
    return made(fmt::Command::Attention,
                fmt::CreateAttention(
                    fbb, &q, &k, &v, &out, &start, a.getBatch(), a.getHeads(),
                    a.getKvHeads(), a.getQueries(), a.getKeys(), a.getHeadDim(),
                    a.getValueDim(), a.getScale().convertToFloat(),
                    a.getSoftcap().convertToFloat(), a.getCausal(), a.getWindow(),
                    dtype(a.getElementAttr()), &kNew, &vNew,
                    sameEnum<fmt::RopeStyle>(a.getRope()), &ropePositions,
                    a.getRopeTheta().convertToFloat(), a.getCacheReady(), &lse,
                    stridesOf(a.getStrides())));
  }
  if (auto a = dyn_cast<exec::AttentionGradOp>(op)) {
    fmt::BufferRef q = toRef(a.getQ()), k = toRef(a.getK()), v = toRef(a.getV()),
                   out = toRef(a.getOut()), lse = toRef(a.getLse()),
                   outGrad = toRef(a.getOutGrad()), qGrad = toRef(a.getQGrad()),
                   kGrad = toRef(a.getKGrad()), vGrad = toRef(a.getVGrad());
    return made(fmt::Command::AttentionGrad,
                fmt::CreateAttentionGrad(
                    fbb, &q, &k, &v, &out, &lse, &outGrad, &qGrad, &kGrad, &vGrad,
                    a.getBatch(), a.getHeads(), a.getKvHeads(), a.getQueries(), a.getKeys(),
                    a.getHeadDim(), a.getValueDim(), a.getScale().convertToFloat(),
                    a.getSoftcap().convertToFloat(), a.getCausal(), a.getWindow(),
                    dtype(a.getElementAttr()), stridesOf(a.getStrides())));
  }
  if (auto l = dyn_cast<exec::LaunchOp>(op)) {
    auto it = llvm::find(kernels.kernels, l.getKernel().str());
    if (it == kernels.kernels.end()) {
      error = "launch of unknown kernel '" + l.getKernel().str() + "'";
      return failure();
    }
    std::vector<fmt::BufferRef> args;
    for (Attribute arg : l.getArgs())
      args.push_back(toRef(cast<exec::RefAttr>(arg)));
    size_t index = static_cast<size_t>(it - kernels.kernels.begin());
    std::vector<int64_t> grid;
    if (index < kernels.launch.size())
      grid = {kernels.launch[index].first, kernels.launch[index].second};
    return made(fmt::Command::Launch,
                fmt::CreateLaunchDirect(fbb, static_cast<uint32_t>(index), &args,
                                        grid.empty() ? nullptr : &grid));
  }
  if (auto e = dyn_cast<exec::EmbeddingOp>(op)) {
    fmt::BufferRef table = toRef(e.getTable()), indices = toRef(e.getIndices()),
                   out = toRef(e.getOut());
    return made(fmt::Command::Embedding,
                fmt::CreateEmbedding(fbb, &table, &indices, &out, e.getVocab(), e.getDim(),
                                     e.getCount(), dtype(e.getElementAttr()), e.getRowShards(),
                                     e.getRowShardAxes()));
  }
  if (auto e = dyn_cast<exec::EmbeddingGradOp>(op)) {
    fmt::BufferRef grad = toRef(e.getGrad()), indices = toRef(e.getIndices()),
                   out = toRef(e.getOut());
    return made(fmt::Command::EmbeddingGrad,
                fmt::CreateEmbeddingGrad(fbb, &grad, &indices, &out, e.getVocab(), e.getDim(),
                                         e.getCount(), dtype(e.getElementAttr()),
                                         e.getRowShards(), e.getRowShardAxes()));
  }
  if (auto w = dyn_cast<exec::CacheWriteOp>(op)) {
    fmt::BufferRef cache = toRef(w.getCache()), update = toRef(w.getUpdate()),
                   positions = toRef(w.getPositions());
    return made(fmt::Command::CacheWrite,
                fmt::CreateCacheWrite(fbb, &cache, &update, &positions, w.getBatch(),
                                      w.getHeads(), w.getSlots(), w.getRows(), w.getDim(),
                                      dtype(w.getElementAttr())));
  }
  if (auto t = dyn_cast<exec::TakeOp>(op)) {
    fmt::BufferRef input = toRef(t.getInput()), indices = toRef(t.getIndices()),
                   out = toRef(t.getOut());
    return made(fmt::Command::Take,
                fmt::CreateTake(fbb, &input, &indices, &out, t.getBatch(), t.getLength(),
                                t.getRowBytes()));
  }
  if (auto t = dyn_cast<exec::TransposeOp>(op)) {
    fmt::BufferRef input = toRef(t.getInput()), out = toRef(t.getOut());
    std::vector<int64_t> shape = toVector(t.getShape()), permutation = toVector(t.getPermutation());
    return made(fmt::Command::Transpose,
                fmt::CreateTransposeDirect(fbb, &input, &out, t.getElementBytes(), &shape,
                                           &permutation));
  }
  if (auto sl = dyn_cast<exec::SliceOp>(op)) {
    fmt::BufferRef input = toRef(sl.getInput()), out = toRef(sl.getOut());
    std::vector<int64_t> shape = toVector(sl.getShape()), offsets = toVector(sl.getOffsets()),
                         sizes = toVector(sl.getSizes());
    return made(fmt::Command::Slice,
                fmt::CreateSliceDirect(fbb, &input, &out, sl.getElementBytes(), &shape,
                                       &offsets, &sizes));
  }
  if (auto t = dyn_cast<exec::TopKOp>(op)) {
    fmt::BufferRef input = toRef(t.getInput()), values = toRef(t.getValues()),
                   indices = toRef(t.getIndices());
    return made(fmt::Command::TopK,
                fmt::CreateTopK(fbb, &input, &values, &indices, t.getRows(), t.getN(),
                                t.getK(), dtype(t.getElementAttr())));
  }
  if (auto ce = dyn_cast<exec::CrossEntropyOp>(op)) {
    fmt::BufferRef logits = toRef(ce.getLogits()), labels = toRef(ce.getLabels()),
                   loss = toRef(ce.getLoss());
    return made(fmt::Command::CrossEntropy,
                fmt::CreateCrossEntropy(fbb, &logits, &labels, &loss, ce.getRows(),
                                        ce.getVocab(), ce.getIgnoreIndex(),
                                        sameEnum<fmt::LossReduction>(ce.getReduction()),
                                        dtype(ce.getElementAttr())));
  }
  if (auto ce = dyn_cast<exec::CrossEntropyGradOp>(op)) {
    fmt::BufferRef logits = toRef(ce.getLogits()), labels = toRef(ce.getLabels()),
                   lossGrad = toRef(ce.getLossGrad()), out = toRef(ce.getOut());
    return made(fmt::Command::CrossEntropyGrad,
                fmt::CreateCrossEntropyGrad(fbb, &logits, &labels, &lossGrad, &out,
                                            ce.getRows(), ce.getVocab(), ce.getIgnoreIndex(),
                                            sameEnum<fmt::LossReduction>(ce.getReduction()),
                                            dtype(ce.getElementAttr())));
  }
  if (auto p = dyn_cast<exec::PlaceOp>(op)) {
    fmt::BufferRef input = toRef(p.getInput()), out = toRef(p.getOut());
    return made(fmt::Command::Place,
                fmt::CreatePlace(fbb, &input, &out, p.getOuter(), p.getChunkBytes(),
                                 p.getStrideBytes(), p.getOffsetBytes()));
  }
  if (auto h = dyn_cast<exec::OneHotOp>(op)) {
    fmt::BufferRef indices = toRef(h.getIndices()), out = toRef(h.getOut());
    return made(fmt::Command::OneHot,
                fmt::CreateOneHot(fbb, &indices, &out, h.getCount(), h.getDepth(),
                                  dtype(h.getElementAttr()), h.getRowShards(),
                                  h.getRowShardAxes()));
  }
  if (auto r = dyn_cast<exec::ReduceOp>(op)) {
    fmt::BufferRef input = toRef(r.getInput()), out = toRef(r.getOut());
    return made(fmt::Command::Reduce,
                fmt::CreateReduce(fbb, &input, &out, sameEnum<fmt::ReduceKind>(r.getKind()),
                                  r.getOuter(), r.getN(), r.getInner(),
                                  dtype(r.getElementAttr())));
  }
  if (auto c = dyn_cast<exec::CopyOp>(op)) {
    fmt::BufferRef input = toRef(c.getInput()), out = toRef(c.getOut());
    return made(fmt::Command::Copy, fmt::CreateCopy(fbb, &input, &out));
  }
  if (auto c = dyn_cast<exec::AllReduceOp>(op)) {
    fmt::BufferRef input = toRef(c.getInput()), out = toRef(c.getOut());
    std::vector<int16_t> axes(c.getGridAxes().begin(), c.getGridAxes().end());
    return made(fmt::Command::AllReduce,
                fmt::CreateAllReduceDirect(fbb, &input, &out, c.getCount(),
                                           sameEnum<fmt::CollectiveReduce>(c.getReduction()),
                                           &axes, dtype(c.getElementAttr())));
  }
  if (auto c = dyn_cast<exec::AllGatherOp>(op)) {
    fmt::BufferRef input = toRef(c.getInput()), out = toRef(c.getOut());
    std::vector<int16_t> axes(c.getGridAxes().begin(), c.getGridAxes().end());
    return made(fmt::Command::AllGather,
                fmt::CreateAllGatherDirect(fbb, &input, &out, c.getCount(), &axes,
                                           dtype(c.getElementAttr())));
  }
  if (auto c = dyn_cast<exec::ReduceScatterOp>(op)) {
    fmt::BufferRef input = toRef(c.getInput()), out = toRef(c.getOut());
    std::vector<int16_t> axes(c.getGridAxes().begin(), c.getGridAxes().end());
    return made(fmt::Command::ReduceScatter,
                fmt::CreateReduceScatterDirect(
                    fbb, &input, &out, c.getCount(),
                    sameEnum<fmt::CollectiveReduce>(c.getReduction()), &axes,
                    dtype(c.getElementAttr())));
  }
  if (auto c = dyn_cast<exec::AllSliceOp>(op)) {
    fmt::BufferRef input = toRef(c.getInput()), out = toRef(c.getOut());
    std::vector<int16_t> axes(c.getGridAxes().begin(), c.getGridAxes().end());
    return made(fmt::Command::AllSlice,
                fmt::CreateAllSliceDirect(fbb, &input, &out, c.getCount(), &axes,
                                          dtype(c.getElementAttr())));
  }
  if (auto f = dyn_cast<exec::FillOp>(op)) {
    fmt::BufferRef out = toRef(f.getOut());
    return made(fmt::Command::Fill,
                fmt::CreateFill(fbb, &out, static_cast<uint64_t>(f.getBits()),
                                dtype(f.getElementAttr())));
  }
  error = "unexpected op in an entry: " + op.getName().getStringRef().str();
  return failure();
}

FailureOr<std::vector<uint8_t>> Writer::write() {
  if (options.weightsMode != WeightsMode::None && !options.weights) {
    error = "no weights file to embed or reference";
    return failure();
  }
  FailureOr<flatbuffers::Offset<fmt::Weights>> w = weights();
  if (failed(w))
    return failure();
  std::vector<flatbuffers::Offset<fmt::TensorDesc>> state;
  bool zero = false;
  for (auto s : module.getOps<exec::StateOp>()) {
    auto shard = s->getAttrOfType<DictionaryAttr>("exec.shard");
    zero |= static_cast<bool>(shard);
    state.push_back(tensor(s.getName(), s.getType(), s.getRef(), shard, nullptr,
                           s->getAttrOfType<DictionaryAttr>("exec.tp")));
  }
  std::vector<flatbuffers::Offset<fmt::EntryPoint>> entries;
  for (auto entry : module.getOps<exec::EntryOp>()) {
    std::vector<flatbuffers::Offset<fmt::TensorDesc>> inputs, outputs;
    std::vector<flatbuffers::Offset<fmt::Step>> steps;
    for (Operation &op : entry.getBody().front()) {
      if (auto in = dyn_cast<exec::InputOp>(op)) {
        inputs.push_back(tensor(in));
      } else if (auto out = dyn_cast<exec::OutputOp>(op)) {
        outputs.push_back(tensor(out));
      } else {
        FailureOr<flatbuffers::Offset<fmt::Step>> s = step(op);
        if (failed(s))
          return failure();
        steps.push_back(*s);
      }
    }
    entries.push_back(fmt::CreateEntryPointDirect(
        fbb, entry.getSymName().str().c_str(), &inputs, &outputs,
        entry.getArenaSize(), &steps));
  }
  std::vector<flatbuffers::Offset<flatbuffers::String>> symbols;
  for (const std::string &s : kernels.symbols)
    symbols.push_back(fbb.CreateString(s));
  std::vector<flatbuffers::Offset<fmt::KernelSignature>> signatures;
  for (const std::string &name : kernels.kernels) {
    auto kernel = module.lookupSymbol<func::FuncOp>(name);
    if (!kernel) {
      error = "kernel '" + name + "' is not in the exec module";
      return failure();
    }
    std::vector<int64_t> argBytes;
    for (Type t : kernel.getArgumentTypes()) {
      auto memref = dyn_cast<MemRefType>(t);
      if (!memref || !memref.hasStaticShape() || !memref.getElementType().isIntOrFloat()) {
        error = "kernel '" + name + "' takes an argument without a static shape";
        return failure();
      }
      argBytes.push_back((memref.getNumElements() *
                              memref.getElementType().getIntOrFloatBitWidth() + 7) / 8);
    }
    signatures.push_back(fmt::CreateKernelSignatureDirect(fbb, &argBytes));
  }
  auto kernelModule = fmt::CreateKernelModuleDirect(
      fbb, kernels.format.c_str(), &kernels.code, &symbols, kernels.programmaticLaunch,
      &signatures);
  std::vector<int64_t> mesh;
  if (auto shape = module->getAttrOfType<DenseI64ArrayAttr>("exec.mesh"))
    mesh.assign(shape.asArrayRef().begin(), shape.asArrayRef().end());
  auto compileOptions = fmt::CreateCompileOptionsDirect(
      fbb, options.target.c_str(), options.dtype.c_str(), options.maxBatch,
      options.maxSeqLen, options.prefillLen, options.model.c_str(),
      versionString(), mesh.empty() ? nullptr : &mesh, zero ? 1 : 0);
  flatbuffers::Offset<fmt::TrainDefaults> train = 0;
  if (const TrainSection *t = options.train) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> data;
    for (const std::string &path : t->data)
      data.push_back(fbb.CreateString(path));
    train = fmt::CreateTrainDefaultsDirect(
        fbb, t->steps, t->batch, t->microBatches, t->learningRate, t->minLearningRate,
        t->warmupSteps, t->weightDecay, t->gradClip, t->seed, t->evalEvery,
        t->checkpointEvery, &data);
  }
  flatbuffers::Offset<fmt::GenerationDefaults> generation = 0;
  if (const GenerationDefaults *g = options.generation) {
    std::vector<int32_t> eos(g->eos.begin(), g->eos.end()); // ids fit int32 (parsed so)
    generation = fmt::CreateGenerationDefaultsDirect(
        fbb, &eos, optionalOf<int32_t>(g->bos), optionalOf<bool>(g->doSample),
        optionalOf<float>(g->temperature), optionalOf<int32_t>(g->topK),
        optionalOf<float>(g->topP), optionalOf<int64_t>(g->maxNewTokens),
        optionalOf<int64_t>(g->maxLength), optionalOf<float>(g->minP),
        optionalOf<float>(g->repetitionPenalty));
  }
  flatbuffers::Offset<fmt::ChatTemplateSource> chat = 0;
  if (const std::optional<ChatTemplateConfig> &c = options.chatTemplate) {
    auto token = [&](const std::optional<std::string> &t) {
      return t ? fbb.CreateString(*t)
               : flatbuffers::Offset<flatbuffers::String>();
    };
    chat = fmt::CreateChatTemplateSource(fbb, fbb.CreateString(c->text),
                                         token(c->bos), token(c->eos));
  }
  auto root = fmt::CreateArtifactDirect(
      fbb, kArtifactSchemaVersion, compileOptions, *w, &state,
      cast<IntegerAttr>(module->getAttr("exec.state_size")).getInt(), &entries,
      kernelModule, train, generation,
      options.tokenizerJson.empty() ? nullptr : options.tokenizerJson.c_str(),
      chat);
  fmt::FinishArtifactBuffer(fbb, root);
  return sealArtifact(fbb.GetBufferPointer(), fbb.GetSize());
}

} // namespace

FailureOr<std::vector<uint8_t>> writeArtifact(ModuleOp execModule,
                                              const KernelLibrary &kernels,
                                              const ArtifactOptions &options,
                                              std::string &error) {
  return Writer(execModule, kernels, options, error).write();
}

} // namespace gai
