// The compiler's stages, from a model file to IR.
#include "compiler/Pipeline.h"

#include "compiler/CompilerPasses.h"
#include "compiler/QuantizedWeights.h"
#include "compiler/lowering/CollectiveLowering.h"
#include "compiler/lowering/ExecLowering.h"
#include "passes/MemoryPlan.h"
#include "dialects/Gai/GaiOps.h"
#include "frontend/WeightCheck.h"
#include "gai/Artifact.h"
#include "gai/ChatTemplate.h"
#include "gai/SafeFile.h"
#include "gai/Tokenizer.h"
#include "gai/WeightSet.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/Path.h"

#include <map>

namespace gai {

void useModelDirectory(CompileOptions &options) {
  if (!llvm::sys::fs::is_directory(options.specPath))
    return;
  if (options.weightsPath.empty())
    options.weightsPath = options.specPath;
  llvm::SmallString<256> config(options.specPath);
  llvm::sys::path::append(config, "config.json");
  options.specPath = std::string(config);
}

llvm::Expected<ImportedModel> importModel(mlir::MLIRContext &context,
                                          const CompileOptions &options) {
  llvm::Expected<ModelSpec> spec = loadSpecFile(options.specPath);
  if (!spec)
    return spec.takeError();
  auto generation = loadGenerationConfigBeside(options.specPath);
  if (!generation)
    return generation.takeError();
  spec->generation = std::move(*generation);
  auto module = buildForward(context, *spec, options.build);
  if (!module)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: %s", options.specPath.c_str(),
        llvm::toString(module.takeError()).c_str());
  if (!options.weightsPath.empty()) {
    StatusOr<WeightSet> weights = WeightSet::open(options.weightsPath);
    if (!weights)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     weights.status().message());
    if (llvm::Error e = checkWeights(**module, *weights, *spec))
      return std::move(e);
  }
  return ImportedModel{std::move(*spec), std::move(*module)};
}

/// With --pass-timing, `pm` reports its passes' times when it is done; with
/// --print-ir-after-all it prints the whole module after each pass.
static void instrument(mlir::PassManager &pm,
                          const CompileOptions &options) {
  if (options.timePasses)
    pm.enableTiming();
  if (!options.printIRAfterAll)
    return;
  pm.getContext()->disableMultithreading();
  pm.enableIRPrinting(
      /*shouldPrintBeforePass=*/[](mlir::Pass *, mlir::Operation *) {
        return false;
      },
      /*shouldPrintAfterPass=*/[](mlir::Pass *, mlir::Operation *) {
        return true;
      },
      /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
}

mlir::LogicalResult optimize(mlir::ModuleOp module,
                             const CompileOptions &options) {
  mlir::PassManager pm(module.getContext());
  instrument(pm, options);
  if (options.shard.tensorParallel > 1) {
    // On the frontend's attention, before it is rewritten, as pruning.
    mlir::gai::GaiShardTensorsOptions tp;
    tp.tp = options.shard.tensorParallel;
    pm.addPass(mlir::gai::createGaiShardTensors(tp));
  }
  if (options.prune.any()) {
    // On the frontend's attention, before it is rewritten; masked when
    // training, so that the weights stay dense and trainable.
    mlir::gai::GaiPruneOptions prune;
    prune.pattern = options.prune.pattern;
    prune.masked = options.train;
    prune.skip.assign(options.prune.skip.begin(), options.prune.skip.end());
    prune.heads = options.prune.heads;
    prune.mlp = options.prune.mlp;
    pm.addPass(mlir::gai::createGaiPrune(prune));
  }
  mlir::gai::GaiAttentionRewriteOptions attention;
  attention.foldCacheWrites = options.isCuda();
  attention.foldedRows = gai::kMostFoldedQueries;
  pm.addNestedPass<mlir::func::FuncOp>(
      mlir::gai::createGaiAttentionRewrite(attention));
  if (!options.quantize.format.empty()) {
    mlir::gai::GaiQuantizeOptions quantize;
    quantize.weights = options.quantize.format;
    quantize.group = options.quantize.group;
    quantize.skip.assign(options.quantize.skip.begin(), options.quantize.skip.end());
    quantize.fp8PerRow = options.quantize.fp8PerRow;
    pm.addPass(mlir::gai::createGaiQuantize(quantize));
  }
  if (options.train && module.lookupSymbol("eval_loss")) {
    pm.addPass(mlir::gai::createGaiMasterWeights());
    pm.addPass(mlir::gai::createGaiTrainStep());
    if (!options.shard.mesh.empty()) {
      mlir::gai::GaiShardOptions shard;
      shard.mesh = options.shard.mesh;
      shard.zero = options.shard.zero;
      shard.bucketBytes = options.shard.bucketBytes;
      pm.addPass(mlir::gai::createGaiShard(shard));
    } else {
      // One device: a step's first micro-batch writes the gradients.
      pm.addPass(mlir::gai::createGaiFirstMicroBatch());
      if (options.fusedUpdate) {
        pm.addPass(mlir::gai::createGaiFusedUpdate());
        pm.addPass(mlir::gai::createGaiParamCopies());
      }
    }
  }
  // After autodiff, so that the backward's transposes go too.
  if (options.attentionLayout) {
    mlir::gai::GaiAttentionLayoutOptions layout;
    layout.tensorCoreForward = options.isCuda();
    layout.ropeTokenMajor = options.ropeTokenMajor;
    pm.addNestedPass<mlir::func::FuncOp>(mlir::gai::createGaiAttentionLayout(layout));
  }
  mlir::gai::GaiFusionOptions fusion;
  fusion.libraryActivations = options.isCuda();
  fusion.absorbTransposes = options.isCuda();
  fusion.gatedGemmRows = options.isCuda() ? gai::kMostGatedGemmRows : 0;
  fusion.narrowResidualRows = options.isCuda() ? gai::kMostGatedGemmRows : 0;
  // Norms stay apart only for the decode GEMV's fold; without one (the CPU,
  // --fold-norms=false) they merge as other regions do.
  fusion.normFoldRows = options.isCuda() && options.foldNorms ? gai::kMostNormFoldRows : 0;
  // Eight rows a block: a training step's 8192 rows still fill the GPU.
  fusion.columnPartialRows = options.isCuda() ? 8 : 0;
  fusion.maxInputs = options.fusionMaxInputs;
  pm.addNestedPass<mlir::func::FuncOp>(mlir::gai::createGaiFusion(fusion));
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(mlir::createCSEPass());
  return pm.run(module);
}

static llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The tensor-parallel ranks of a module's grid (1 without one).
static int64_t tensorParallelRanks(mlir::ModuleOp module) {
  llvm::SmallVector<int64_t> mesh = meshShapeOf(module);
  return mesh.size() == 2 ? mesh[1] : 1;
}

bool needsMadeWeights(mlir::ModuleOp optimized) {
  if (tensorParallelRanks(optimized) > 1)
    return true;
  bool quantized = false;
  optimized.walk([&](mlir::gai::DequantizeOp) { quantized = true; });
  return quantized || hasPrunedWeights(optimized);
}

llvm::Expected<CompiledWeights> makeWeights(mlir::ModuleOp optimized, WeightSet &weights,
                                            const ActivationSquares *calibration) {
  CompiledWeights made;
  if (int64_t parts = tensorParallelRanks(optimized); parts > 1) {
    auto split = splitTensorParallelWeights(optimized, weights, parts);
    if (!split)
      return split.takeError();
    if (llvm::Error e = split->overlayOn(weights))
      return std::move(e);
    made.all.addAll(*split);
  }
  auto pruned = pruneWeights(optimized, weights, calibration);
  if (!pruned)
    return pruned.takeError();
  made.pruned = std::move(*pruned);
  if (llvm::Error e = made.pruned.overlayOn(weights))
    return std::move(e);
  auto quantized = quantizeWeights(optimized, weights);
  if (!quantized)
    return quantized.takeError();
  made.quantized = std::move(*quantized);
  if (llvm::Error e = made.quantized.overlayOn(weights))
    return std::move(e);
  made.all.addAll(made.pruned);
  made.all.addAll(made.quantized);
  return made;
}

/// The exec lowering's options for `options`' target.
static llvm::Expected<ExecOptions> execOptions(const CompileOptions &options,
                                               WeightsMode weightsMode) {
  ExecOptions exec;
  exec.gpuKernels = options.isCuda();
  exec.foldNormRows = options.isCuda() && options.foldNorms ? kMostNormFoldRows : 0;
  exec.besideWindow = options.isCuda() ? kCudaBesideWindow : 0;
  // e4m3 conversion (cvt.e4m3x2) and cuBLASLt's fp8 GEMM need sm_89 or later.
  const bool fp8Chip = options.target == "cuda" || options.target == "cuda:sm_90";
  exec.e4m3ActivationRows = fp8Chip && options.fuseFp8Activations ? kMostGatedGemmRows : 0;
  exec.paramsInState = options.train;
  if (weightsMode == WeightsMode::External) {
    StatusOr<WeightSet> weights = WeightSet::open(options.weightsPath);
    if (!weights)
      return error(weights.status().message());
    if (weights->sharded())
      return error(weights->path() + ": --external-weights references one safetensors "
                   "file; these weights are in shards: embed them (leave out "
                   "--external-weights)");
    const SafetensorsFile &file = weights->files()[0];
    for (const TensorView &t : file.tensors())
      exec.weightOffsets[t.name] = file.fileOffset(t);
  }
  return exec;
}

namespace {
/// Remembers which pass failed, so that the error can name the stage.
struct FailedPass : mlir::PassInstrumentation {
  explicit FailedPass(std::string &argument) : argument(argument) {}
  void runAfterPassFailed(mlir::Pass *pass, mlir::Operation *) override {
    argument = pass->getArgument().str();
  }
  std::string &argument;
};
} // namespace

/// Runs the lowering pipeline `pm` on `module`. The diagnostics become the
/// error: a lowering failure lists them with their locations (the ops at
/// fault); a codegen pass's own message already says what failed.
static llvm::Error runLowering(mlir::PassManager &pm, mlir::ModuleOp module) {
  std::string located, plain, failed;
  llvm::raw_string_ostream locatedOs(located), plainOs(plain);
  mlir::ScopedDiagnosticHandler handler(
      module.getContext(), [&](mlir::Diagnostic &d) {
        locatedOs << d.getLocation() << ": " << d << "\n";
        plainOs << (plain.empty() ? "" : "\n") << d;
        return mlir::success();
      });
  pm.addInstrumentation(std::make_unique<FailedPass>(failed));
  if (mlir::succeeded(pm.run(module)))
    return llvm::Error::success();
  if (failed == "gai-lower-to-exec")
    return error("lowering to the exec dialect failed:\n" + located);
  return error(plain);
}

/// A copy of `optimized` lowered to the exec dialect and, given a codegen
/// pass, with its kernels compiled.
static llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
lowerCopy(mlir::ModuleOp optimized, const CompileOptions &options,
          WeightsMode weightsMode,
          std::unique_ptr<mlir::Pass> codegen = nullptr) {
  llvm::Expected<ExecOptions> exec = execOptions(options, weightsMode);
  if (!exec)
    return exec.takeError();
  mlir::OwningOpRef<mlir::ModuleOp> module(optimized.clone());
  mlir::PassManager pm(module->getContext());
  instrument(pm, options);
  pm.addPass(createGaiLowerToExec(std::move(*exec)));
  if (codegen)
    pm.addPass(std::move(codegen));
  if (llvm::Error e = runLowering(pm, *module))
    return std::move(e);
  return std::move(module);
}

llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
lowerModule(mlir::ModuleOp optimized, const CompileOptions &options,
            WeightsMode weightsMode) {
  return lowerCopy(optimized, options, weightsMode);
}

/// --gai-gpu-codegen or --gai-cpu-codegen, as `options` target.
static std::unique_ptr<mlir::Pass> codegenPass(const CompileOptions &options,
                                               const CpuCodegenOptions &cpu,
                                               const GpuCodegenOptions &gpu) {
  if (options.isCuda()) {
    GaiGpuCodegenOptions pass;
    pass.chip = gpu.chip;
    pass.toolkitPath = gpu.toolkitPath;
    return createGaiGpuCodegen(pass);
  }
  GaiCpuCodegenOptions pass;
  pass.cpu = cpu.cpu;
  pass.linker = cpu.linker;
  return createGaiCpuCodegen(pass);
}

llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
compileKernels(mlir::ModuleOp optimized, const CompileOptions &options,
               WeightsMode weightsMode, const CpuCodegenOptions &codegen,
               const GpuCodegenOptions &gpuCodegen) {
  return lowerCopy(optimized, options, weightsMode,
                   codegenPass(options, codegen, gpuCodegen));
}

/// Batch, context and prefill length, read back from the entry points.
static void entryBounds(mlir::ModuleOp module, ArtifactOptions &out) {
  for (auto func : module.getOps<mlir::func::FuncOp>()) {
    llvm::StringRef name = func.getName();
    if (name != "forward" && name != "prefill" && name != "decode")
      continue; // the training entries have their own batch and length
    auto tokens = mlir::cast<mlir::RankedTensorType>(func.getArgumentTypes()[0]);
    out.maxBatch = tokens.getDimSize(0);
    if (func.getName() == "forward")
      out.maxSeqLen = std::max(out.maxSeqLen, tokens.getDimSize(1));
    if (func.getName() == "prefill")
      out.prefillLen = tokens.getDimSize(1);
    if (func.getNumArguments() > 3) // a KV cache [B, Hkv, S, D]
      out.maxSeqLen = mlir::cast<mlir::RankedTensorType>(
                          func.getArgumentTypes()[3]).getDimSize(2);
  }
}

/// The tokenizer.json to embed: --tokenizer, or the one beside an HF config.
static llvm::Expected<std::string> tokenizerJsonFor(const CompileOptions &options,
                                             const ModelSpec &spec) {
  if (options.tokenizerPath == "none")
    return std::string();
  std::string path = options.tokenizerPath;
  if (path.empty()) {
    // An HF model's tokenizer sits beside its config.json.
    if (spec.family == "gai")
      return std::string();
    llvm::SmallString<256> beside(options.specPath);
    llvm::sys::path::remove_filename(beside);
    llvm::sys::path::append(beside, "tokenizer.json");
    if (!llvm::sys::fs::exists(beside))
      return std::string();
    path = std::string(beside);
  }
  StatusOr<std::vector<uint8_t>> bytes = readRegularFile(path);
  if (!bytes)
    return error(bytes.status().message());
  std::string json(bytes->begin(), bytes->end());
  // Embedded only if the runtime can use it exactly: a component it lacks
  // is an error here, not byte prompts later.
  auto tokenizer = HFTokenizer::fromJson(json, path);
  if (!tokenizer)
    return error(tokenizer.status().message() + " (gaic --tokenizer none compiles without it)");
  if ((*tokenizer)->vocabSize() > spec.vocab)
    return error(path + ": the tokenizer has ids up to " +
                 std::to_string((*tokenizer)->vocabSize() - 1) +
                 ", outside the model's vocabulary of " + std::to_string(spec.vocab));
  return json;
}

/// The chat template to record: --chat-template FILE, which must be one gai
/// renders, or the one beside an HF config, recorded whatever it is (gai-run
/// refuses one it does not know when chat is used).
static llvm::Expected<std::optional<ChatTemplateConfig>>
chatTemplateFor(const CompileOptions &options, const ModelSpec &spec) {
  if (options.chatTemplatePath == "none")
    return std::nullopt;
  if (options.chatTemplatePath.empty())
    return spec.family == "gai" ? std::nullopt
                                : loadChatTemplateBeside(options.specPath);
  auto given = loadChatTemplateFile(options.chatTemplatePath, options.specPath);
  if (!given)
    return given.takeError();
  auto known = ChatTemplate::recognise(given->text, given->bos, given->eos,
                                       given->origin);
  if (!known)
    return error(known.status().message());
  return std::optional<ChatTemplateConfig>(std::move(*given));
}

llvm::Expected<std::vector<uint8_t>>
compileArtifact(mlir::ModuleOp optimized, const ModelSpec &spec,
                const CompileOptions &options, WeightsMode weightsMode,
                const std::string &artifactPath,
                const CpuCodegenOptions &codegen,
                const GpuCodegenOptions &gpuCodegen) {
  auto execModule =
      compileKernels(optimized, options, weightsMode, codegen, gpuCodegen);
  if (!execModule)
    return execModule.takeError();
  mlir::FailureOr<KernelLibrary> kernels = kernelLibraryOf(**execModule);
  if (mlir::failed(kernels))
    return error("the codegen pass left no kernel library");
  std::string message;
  ArtifactOptions artifact;
  artifact.model = spec.name;
  artifact.dtype = options.build.dtype.empty() ? spec.compile.dtype : options.build.dtype;
  artifact.target = options.isCuda() ? "cuda:" + gpuCodegen.chip
                                     : "cpu:" + codegen.cpu;
  entryBounds(optimized, artifact);
  artifact.weightsMode = weightsMode;
  if (options.train)
    artifact.train = &spec.train;
  artifact.artifactPath = artifactPath;
  if (spec.generation)
    artifact.generation = &*spec.generation;
  auto tokenizer = tokenizerJsonFor(options, spec);
  if (!tokenizer)
    return tokenizer.takeError();
  artifact.tokenizerJson = std::move(*tokenizer);
  auto chat = chatTemplateFor(options, spec);
  if (!chat)
    return chat.takeError();
  artifact.chatTemplate = std::move(*chat);
  std::optional<StatusOr<WeightSet>> weights;
  if (weightsMode != WeightsMode::None) {
    weights.emplace(WeightSet::open(options.weightsPath));
    if (!*weights)
      return error((*weights).status().message());
    // Pruned and quantized weights stand in for the file's of their names.
    if (weightsMode == WeightsMode::Embedded && options.madeWeights) {
      if (llvm::Error e = options.madeWeights->overlayOn(**weights))
        return std::move(e);
    } else if (weightsMode == WeightsMode::Embedded && needsMadeWeights(optimized)) {
      if (auto made = makeWeights(optimized, **weights, options.prune.calibration); !made)
        return made.takeError();
    }
    artifact.weights = &(*weights).value();
  }
  auto bytes = writeArtifact(**execModule, *kernels, artifact, message);
  if (mlir::failed(bytes))
    return error(message);
  return std::move(*bytes);
}

/// The op at `peak` and the kinds of value live there (a value's type and
/// the op that makes it), the four largest by their bytes.
static void describePeak(mlir::func::FuncOp func, const FunctionBuffers &buffers,
                         const LivePeak &peak, FunctionReport &r) {
  int64_t index = 0;
  for (mlir::Operation &op : func.getBody().front())
    if (index++ == peak.at) {
      std::string text;
      llvm::raw_string_ostream os(text);
      os << op.getName();
      if (auto loc = mlir::dyn_cast<mlir::NameLoc>(op.getLoc()))
        os << " at \"" << loc.getName().getValue() << "\"";
      r.peakOp = text;
      break;
    }
  std::map<std::string, FunctionReport::LiveKind> kinds;
  for (size_t i : peak.live) {
    mlir::Value v = buffers.values[i];
    std::string what;
    llvm::raw_string_ostream os(what);
    os << v.getType() << " of ";
    if (mlir::Operation *maker = v.getDefiningOp())
      os << maker->getName();
    else
      os << "an argument";
    FunctionReport::LiveKind &kind = kinds[what];
    kind.what = what;
    ++kind.count;
    kind.bytes += buffers.requests[i].size;
  }
  for (auto &[what, kind] : kinds)
    r.peakKinds.push_back(kind);
  llvm::sort(r.peakKinds, [](const auto &a, const auto &b) { return a.bytes > b.bytes; });
  if (r.peakKinds.size() > 4)
    r.peakKinds.resize(4);
}

std::vector<FunctionReport> report(mlir::ModuleOp module) {
  std::vector<FunctionReport> reports;
  llvm::SmallVector<int64_t> mesh = meshShapeOf(module);
  for (auto func : module.getOps<mlir::func::FuncOp>()) {
    FunctionReport r;
    r.name = func.getName().str();
    FunctionBuffers buffers = collectBuffers(func);
    ArenaPlan plan = planArena(buffers.requests);
    r.buffers = static_cast<int64_t>(buffers.requests.size());
    r.arenaBytes = plan.arenaSize;
    r.bufferBytes = plan.totalSize;
    LivePeak peak = livePeak(buffers.requests);
    r.livePeakBytes = peak.bytes;
    describePeak(func, buffers, peak, r);
    for (mlir::Operation &op : func.getBody().front()) {
      if (mlir::isa<mlir::gai::FusionOp>(op))
        ++r.fusedKernels;
      else if (mlir::isa<mlir::gai::GemmOp, mlir::gai::GatedGemmOp, mlir::gai::MatmulOp>(op))
        ++r.gemms;
      else if (mlir::isa<mlir::gai::FlashAttentionOp, mlir::gai::CachedAttentionOp>(op))
        ++r.attentions;
      else if (isCollective(&op)) {
        ++r.collectives;
        r.collectiveBytes += collectiveRingBytes(&op, mesh);
      }
      else if (!mlir::isa<mlir::gai::ParamOp, mlir::gai::ConstantOp, mlir::gai::ReshapeOp,
                          mlir::gai::DequantizeOp, mlir::gai::DecompressOp,
                          mlir::func::ReturnOp>(op)) // the last two fold into GEMMs
        ++r.libraryCalls;
    }
    reports.push_back(r);
  }
  return reports;
}

void printReport(llvm::ArrayRef<FunctionReport> reports,
                 llvm::raw_ostream &os) {
  auto mib = [](int64_t bytes) { return bytes / (1024.0 * 1024.0); };
  for (const FunctionReport &r : reports) {
    os << "@" << r.name << ": arena "
       << llvm::format("%.3f MiB", mib(r.arenaBytes)) << " for " << r.buffers
       << " buffers of " << llvm::format("%.3f MiB", mib(r.bufferBytes))
       << " (" << llvm::format("%.1f", r.bufferBytes ? 100.0 * r.arenaBytes / r.bufferBytes : 0.0)
       << "%, at most " << llvm::format("%.3f MiB", mib(r.livePeakBytes))
       << " live at once); kernels: " << r.fusedKernels << " generated, " << r.gemms
       << " GEMM, " << r.attentions << " attention, " << r.libraryCalls
       << " library";
    if (r.collectives)
      os << "; " << r.collectives << " collectives sending "
         << llvm::format("%.3f MiB", mib(r.collectiveBytes)) << " per rank (ring)";
    os << "\n";
    if (r.peakKinds.empty())
      continue;
    os << "  at its peak (" << r.peakOp << "):";
    for (auto [i, kind] : llvm::enumerate(r.peakKinds))
      os << (i ? "," : "") << " " << kind.count << " x " << kind.what << " ("
         << llvm::format("%.3f MiB", mib(kind.bytes)) << ")";
    os << "\n";
  }
}

} // namespace gai
