// exec module → FlatBuffers artifact (runtime/format/artifact.fbs).
#include "compiler/ArtifactWriter.h"

#include "dialects/Exec/ExecOps.h"
#include "gai/Artifact.h"
#include "gai/FloatConvert.h"
#include "format/artifact_generated.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cstring>

using namespace mlir;
namespace fmt = gai::format;

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
         (t.isInteger(32) && file == DType::I32);
}

fmt::BufferRef toRef(exec::RefAttr ref) {
  return fmt::BufferRef(static_cast<fmt::Space>(ref.getSpace()),
                        ref.getOffset(), ref.getSize());
}

fmt::Activation activationOf(StringRef name) {
  return llvm::StringSwitch<fmt::Activation>(name)
      .Case("silu", fmt::Activation::Silu)
      .Case("gelu", fmt::Activation::Gelu)
      .Case("gelu_tanh", fmt::Activation::GeluTanh)
      .Case("relu", fmt::Activation::Relu)
      .Default(fmt::Activation::None);
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
                                              exec::RefAttr ref) {
    auto shaped = cast<RankedTensorType>(type);
    std::vector<int64_t> shape(shaped.getShape().begin(), shaped.getShape().end());
    fmt::BufferRef buffer = toRef(ref);
    return fmt::CreateTensorDescDirect(fbb, name.str().c_str(),
                                       *dtypeOf(shaped.getElementType()), &shape,
                                       &buffer);
  }
  template <typename T> flatbuffers::Offset<fmt::TensorDesc> tensor(T op) {
    return tensor(op.getName(), op.getType(), op.getRef());
  }
  FailureOr<flatbuffers::Offset<fmt::Weights>> weights();
  FailureOr<flatbuffers::Offset<fmt::Step>> step(Operation &op);

  ModuleOp module;
  const KernelLibrary &kernels;
  const ArtifactOptions &options;
  std::string &error;
  flatbuffers::FlatBufferBuilder fbb{1 << 16};
};

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
    tensors.push_back(tensor(w));
  }
  flatbuffers::Offset<fmt::ExternalWeights> external = 0;
  if (options.weightsMode == WeightsMode::External) {
    SmallString<256> weightsPath(options.weights->path()),
        artifactDir(options.artifactPath);
    llvm::sys::fs::make_absolute(weightsPath);
    llvm::sys::fs::make_absolute(artifactDir);
    llvm::sys::path::remove_filename(artifactDir);
    std::string path = relativePath(weightsPath, artifactDir);
    external = fmt::CreateExternalWeightsDirect(
        fbb, path.c_str(), static_cast<int64_t>(options.weights->fileSize()),
        fnv1a64(options.weights->fileData(), options.weights->fileSize()));
  } else if (options.weightsMode == WeightsMode::None) {
    // No file yet: the runtime binds weights by name (`--weights`).
    external = fmt::CreateExternalWeightsDirect(fbb, "", size, 0);
  }
  return fmt::CreateWeightsDirect(
      fbb, options.weightsMode == WeightsMode::Embedded ? &blob : nullptr,
      external, &tensors);
}

FailureOr<flatbuffers::Offset<fmt::Step>> Writer::step(Operation &op) {
  if (auto g = dyn_cast<exec::GemmOp>(op)) {
    fmt::BufferRef a = toRef(g.getA()), b = toRef(g.getB()), c = toRef(g.getC()),
                   bias = toRef(g.getBias()), res = toRef(g.getResidual()),
                   gate = g.getGate() ? toRef(*g.getGate()) : fmt::BufferRef();
    auto optionalRef = [&](std::optional<exec::RefAttr> r) {
      return r ? toRef(*r) : fmt::BufferRef();
    };
    fmt::BufferRef normWeight = optionalRef(g.getNormWeight()),
                   normOut = optionalRef(g.getNormOut()),
                   normSquares = optionalRef(g.getNormSquares()),
                   aSquares = optionalRef(g.getASquares());
    auto gemm = fmt::CreateGemm(
        fbb, &a, &b, &c, &bias, &res, g.getBatch(), g.getM(), g.getN(),
        g.getK(), g.getTransposeA(), g.getTransposeB(), g.getStrideA(),
        g.getStrideB(), g.getStrideC(), activationOf(g.getActivation()),
        stepDType(g.getElement()), &gate, &normWeight, &normOut, &normSquares,
        g.getNormOffset().convertToFloat(), &aSquares, g.getANormEps().convertToFloat(),
        g.getWideC());
    return fmt::CreateStep(fbb, fmt::Command::Gemm, gemm.Union());
  }
  if (auto a = dyn_cast<exec::AttentionOp>(op)) {
    fmt::BufferRef q = toRef(a.getQ()), k = toRef(a.getK()), v = toRef(a.getV()),
                   out = toRef(a.getOut()), start = toRef(a.getQueryStart());
    auto optionalRef = [&](std::optional<exec::RefAttr> r) {
      return r ? toRef(*r) : fmt::BufferRef();
    };
    fmt::BufferRef kNew = optionalRef(a.getKNew()), vNew = optionalRef(a.getVNew()),
                   ropePositions = optionalRef(a.getRopePositions());
    auto attention = fmt::CreateAttention(
        fbb, &q, &k, &v, &out, &start, a.getBatch(), a.getHeads(),
        a.getKvHeads(), a.getQueries(), a.getKeys(), a.getHeadDim(),
        a.getValueDim(), a.getScale().convertToFloat(),
        a.getSoftcap().convertToFloat(), a.getCausal(), a.getWindow(),
        stepDType(a.getElement()), &kNew, &vNew,
        static_cast<fmt::RopeStyle>(a.getRopeStyle()), &ropePositions,
        a.getRopeTheta().convertToFloat(), a.getCacheReady());
    return fmt::CreateStep(fbb, fmt::Command::Attention, attention.Union());
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
    auto launch = fmt::CreateLaunchDirect(fbb, static_cast<uint32_t>(index),
                                          &args, grid.empty() ? nullptr : &grid);
    return fmt::CreateStep(fbb, fmt::Command::Launch, launch.Union());
  }
  if (auto c = dyn_cast<exec::CallOp>(op)) {
    std::vector<fmt::BufferRef> args;
    for (Attribute arg : c.getArgs())
      args.push_back(toRef(cast<exec::RefAttr>(arg)));
    std::vector<int64_t> ints(c.getInts().begin(), c.getInts().end());
    auto call = fmt::CreateLibraryCallDirect(fbb, c.getCallee().str().c_str(),
                                             &args, &ints, stepDType(c.getElement()));
    return fmt::CreateStep(fbb, fmt::Command::LibraryCall, call.Union());
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
  for (auto s : module.getOps<exec::StateOp>())
    state.push_back(tensor(s));
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
  auto kernelModule = fmt::CreateKernelModuleDirect(
      fbb, kernels.format.c_str(), &kernels.code, &symbols, kernels.programmaticLaunch);
  auto compileOptions = fmt::CreateCompileOptionsDirect(
      fbb, options.target.c_str(), options.dtype.c_str(), options.maxBatch,
      options.maxSeqLen, options.prefillLen, options.model.c_str(),
      GAI_VERSION_STRING);
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
  auto root = fmt::CreateArtifactDirect(
      fbb, kArtifactSchemaVersion, compileOptions, *w, &state,
      cast<IntegerAttr>(module->getAttr("exec.state_size")).getInt(), &entries,
      kernelModule, train);
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
