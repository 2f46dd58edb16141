// gaic: compiles a model spec or HF config into gai IR, exec IR or an artifact.
#include "compiler/MemoryBudget.h"
#include "compiler/Pipeline.h"
#include "passes/Passes.h"
#include "gai/Signing.h"
#include "gai/Version.h"

#include "compiler/CompilerPasses.h"
#include "compiler/OutputFile.h"
#include "compiler/QuantizedWeights.h"
#include "gai/WeightSet.h"
#include "compiler/codegen/CpuCodegen.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"

namespace cl = llvm::cl;

namespace {

enum class Emit { Gai, Fused, Exec, LLVM, PTX, Artifact };

cl::OptionCategory category("gaic options");
cl::opt<std::string> specPath(cl::Positional, cl::Required,
                              cl::desc("<model spec .json | HF config.json | "
                                       "HF model directory>"),
                              cl::cat(category));
cl::opt<std::string> weightsPath(
    "weights",
    cl::desc("weights to check against the model: a safetensors file, a "
             "model.safetensors.index.json or a model directory (default: the "
             "model directory's)"),
    cl::value_desc("path"), cl::cat(category));
cl::opt<Emit> emit("emit", cl::desc("what to write (default: the artifact for -o *.gai, else gai IR)"), cl::init(Emit::Gai),
                   cl::values(clEnumValN(Emit::Gai, "gai",
                                         "the frontend's gai dialect IR"),
                              clEnumValN(Emit::Fused, "fused",
                                         "gai IR after attention rewriting "
                                         "and fusion"),
                              clEnumValN(Emit::Exec, "exec",
                                         "the exec dialect: planned buffers, "
                                         "commands and kernels"),
                              clEnumValN(Emit::LLVM, "llvm",
                                         "the CPU kernels' optimised LLVM IR"),
                              clEnumValN(Emit::PTX, "ptx",
                                         "the GPU kernels' PTX (cuda targets)"),
                              clEnumValN(Emit::Artifact, "artifact",
                                         "the artifact gai-run executes")),
                   cl::cat(category));
cl::opt<std::string> outputPath("o",
                                cl::desc("output file (- for stdout; an artifact "
                                         "goes there only with -o - given)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));
cl::opt<std::string> tokenizerFile(
    "tokenizer",
    cl::desc("a Hugging Face tokenizer.json to embed in the artifact (default: the one "
             "beside an HF config.json; none: no tokenizer, prompts are bytes)"),
    cl::value_desc("file|none"), cl::cat(category));
cl::opt<std::string> chatTemplateFile(
    "chat-template",
    cl::desc("a chat template to record for gai-run chat: a tokenizer_config.json or a "
             "Jinja file, refused unless gai renders it (default: the one beside an HF "
             "config.json, recorded whatever it is; none: no chat template)"),
    cl::value_desc("file|none"), cl::cat(category));
cl::opt<std::string> signingKey(
    "sign", cl::desc("sign the artifact with this Ed25519 secret key (gai-run keygen): "
                     "writes FILE.sig beside it, for gai-run --trusted-keys"),
    cl::value_desc("key"), cl::cat(category));
cl::opt<int64_t> batch("batch",
                       cl::desc("batch size (default: compile.max_batch)"),
                       cl::init(0), cl::cat(category));
cl::opt<int64_t> seqLen(
    "seq-len", cl::desc("sequence length (default: compile.max_seq_len)"),
    cl::init(0), cl::cat(category));
cl::list<std::string> entries(
    "entries",
    cl::desc("functions to build: forward, prefill, decode (default "
             "prefill,decode: what gai-run generate runs)"),
    cl::CommaSeparated, cl::cat(category));
cl::opt<int64_t> prefillLen(
    "prefill-len", cl::desc("tokens per @prefill row (default: --seq-len)"),
    cl::init(0), cl::cat(category));
cl::opt<std::string> mode(
    "mode",
    cl::desc("generate (default), or train: add @train_step, @optimizer_step, "
             "@zero_grads and @eval_loss, with the parameters as trainable state"),
    cl::init("generate"), cl::cat(category));
cl::opt<int64_t> trainBatch(
    "train-batch",
    cl::desc("rows per training micro-batch (default: train.batch / "
             "train.micro_batches)"),
    cl::init(0), cl::cat(category));
cl::opt<int64_t> trainSeqLen(
    "train-seq-len", cl::desc("tokens per training row (default: train.seq_len)"),
    cl::init(0), cl::cat(category));
cl::opt<bool> printReport(
    "report",
    cl::desc("print each function's arena size, buffer total and kernels "
             "(on stderr)"),
    cl::cat(category));
cl::opt<std::string> memoryBudget(
    "memory-budget",
    cl::desc("--mode=train: the device memory the plan may take (24GiB, 512MiB, bytes); "
             "activations are recomputed to fit (--remat=auto unless given)"),
    cl::value_desc("size"), cl::cat(category));
cl::opt<std::string> rematMode(
    "remat",
    cl::desc("--mode=train: none, auto (recompute the fewest FLOPs that fit "
             "--memory-budget) or full (recompute every layer from its input)"),
    cl::value_desc("none|auto|full"), cl::cat(category));
cl::opt<bool> fusedUpdate(
    "fused-update",
    cl::desc("--mode=train, one device: each step updates the weights in the same entry "
             "(@train_update), so the gradients take no memory of their own; the artifact "
             "then trains one micro-batch a step (no accumulation)"),
    cl::cat(category));
cl::opt<std::string> meshSpec(
    "mesh",
    cl::desc("shard over a device grid: dp=D with --mode=train (data parallel: each rank "
             "trains on 1/D of every micro-batch's rows), tp=T (tensor parallel: each rank "
             "computes 1/T of the heads and MLP channels; generation and training), or both"),
    cl::value_desc("dp=D[,tp=T]"), cl::cat(category));
cl::opt<int64_t> zeroStage(
    "zero",
    cl::desc("with --mesh dp=D: 1 shards the AdamW moments and gradients over the D ranks "
             "(ZeRO-1); 0 (default) keeps them whole on every rank"),
    cl::init(0), cl::value_desc("0|1"), cl::cat(category));
cl::opt<int64_t> bucketMiB(
    "bucket-mib",
    cl::desc("with --mesh dp=D: gradient MiB per all-reduce (default 25)"),
    cl::init(25), cl::value_desc("MiB"), cl::cat(category));
cl::opt<bool> printIRAfterAll("print-ir-after-all",
                              cl::desc("print the IR after every pass"),
                              cl::cat(category));
cl::opt<bool> timePasses("pass-timing",
                         cl::desc("print the time each compiler pass takes (stderr)"),
                         cl::cat(category));
cl::opt<int64_t> fusionMaxInputs(
    "fusion-max-inputs",
    cl::desc("the most tensors one generated kernel reads (default 64): fewer "
             "shortens code generation for deep models"),
    cl::init(gai::CompileOptions{}.fusionMaxInputs), cl::value_desc("N"), cl::cat(category));
cl::opt<bool> externalWeights(
    "external-weights",
    cl::desc("reference --weights by path, size and checksum instead of "
             "embedding them"),
    cl::cat(category));
cl::opt<std::string> target("target",
                            cl::desc("cpu (default), cuda, cuda:sm_80 or cuda:sm_90"),
                            cl::init("cpu"), cl::cat(category));
cl::opt<bool> foldNorms(
    "fold-norms",
    cl::desc("cuda: fold RMSNorms between decode-sized GEMMs into them (default on)"),
    cl::init(true), cl::cat(category));
cl::opt<bool> attentionLayout(
    "attention-layout",
    cl::desc("let attention read and write [B, T, H, D] rows in place of the head "
             "transposes around it (gai-attention-layout; default on)"),
    cl::init(true), cl::cat(category));
cl::opt<bool> ropeTokenMajor(
    "rope-token-major",
    cl::desc("--mode=train: rotate the q and k gradients after their head transpose, so "
             "the attention backward writes them [B, T, H, D] and no transpose runs "
             "(default on; =false keeps the transposes)"),
    cl::init(true), cl::cat(category));
cl::opt<bool> f32Residual(
    "f32-residual",
    cl::desc("bf16/f16: keep the residual stream and its norms' weights in f32 "
             "(default on)"),
    cl::init(true), cl::cat(category));
cl::opt<std::string> cpu("cpu",
                         cl::desc("x86-64 level the CPU kernels may assume: "
                                  "x86-64, x86-64-v2, x86-64-v3 or x86-64-v4"),
                         cl::init("x86-64-v3"), cl::cat(category));
cl::opt<std::string> dtype("dtype",
                           cl::desc("f32, bf16 or f16 (default: compile.dtype)"),
                           cl::cat(category));

cl::opt<std::string> quantize(
    "quantize",
    cl::desc("weight-only quantization of the weights that feed matmuls: int8 (per row), "
             "int4 (groups of --quant-group) or fp8 (e4m3); made from --weights"),
    cl::value_desc("int8|int4|fp8"), cl::cat(category));
cl::opt<int64_t> quantGroup("quant-group",
                            cl::desc("int4: the weights along k that share a scale and zero "
                                     "point (default 128)"),
                            cl::init(128), cl::cat(category));
cl::list<std::string> quantSkip(
    "quant-skip",
    cl::desc("globs of weight names to keep in float (default: *lm_head*, *embed*, *wte*, "
             "*wpe*, *.gate.weight, *router*; none: quantize them all). A head tied to the "
             "embeddings is quantized as a copy, lm_head.weight, unless skipped"),
    cl::CommaSeparated, cl::value_desc("glob"), cl::cat(category));
cl::opt<bool> quantFp8PerRow("quant-fp8-per-row",
                             cl::desc("fp8: a scale per row instead of one per tensor"),
                             cl::cat(category));
cl::opt<bool> fuseFp8Activations(
    "fuse-fp8-activations",
    cl::desc("cuda (sm_90), fp8: the kernel that makes a prefill GEMM's input writes it "
             "in e4m3 with a scale a row (default on); off: the GEMM converts it"),
    cl::init(true), cl::cat(category));

cl::opt<std::string> prunePattern(
    "prune",
    cl::desc("2:4 sparsity of the weights that feed matmuls: the two largest of every four "
             "along k stay, made from --weights (masked in the graph with --mode=train)"),
    cl::value_desc("2:4"), cl::cat(category));
cl::opt<int64_t> pruneHeads("prune-heads",
                            cl::desc("remove this many query heads from every attention "
                                     "(whole KV groups under grouped-query attention), the "
                                     "smallest by weight magnitude"),
                            cl::init(0), cl::cat(category));
cl::opt<double> pruneMlp("prune-mlp",
                         cl::desc("remove this fraction of every MLP's channels (kept count "
                                  "rounded to a multiple of 8), the smallest by weight "
                                  "magnitude"),
                         cl::init(0.0), cl::cat(category));
cl::list<std::string> pruneSkip(
    "prune-skip",
    cl::desc("--prune=2:4: globs of weight names that stay dense (default as --quant-skip's; "
             "none: prune them all)"),
    cl::CommaSeparated, cl::value_desc("glob"), cl::cat(category));

cl::opt<std::string> calibration(
    "calibration",
    cl::desc("--prune-heads/--prune-mlp: choose the heads and channels by activation-weighted "
             "magnitude (|w|² × the input's Σx²) measured by running the dense model on this "
             "text (byte-level, or .bin token ids) on the CPU"),
    cl::value_desc("FILE"), cl::cat(category));
cl::opt<int64_t> calibrationTokens(
    "calibration-tokens",
    cl::desc("--calibration: at most this many tokens of the file (default 16384)"),
    cl::init(16384), cl::cat(category));

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "gaic") << message << "\n";
  return 1;
}

/// The gaic flags `prune` stands for.
std::string pruneFlags(const gai::CompileOptions::Prune &prune) {
  std::string flags;
  if (!prune.pattern.empty())
    flags += "--prune=" + prune.pattern;
  if (prune.heads > 0)
    flags += (flags.empty() ? "" : " ") + std::string("--prune-heads ") +
             std::to_string(prune.heads);
  if (prune.mlp > 0)
    flags += (flags.empty() ? "" : " ") + std::string("--prune-mlp ") +
             llvm::formatv("{0}", prune.mlp).str();
  return flags;
}

/// " (at model.layers.0.attn)" for an op the frontend placed in a layer.
std::string where(mlir::Location loc) {
  auto name = mlir::dyn_cast<mlir::NameLoc>(loc);
  return name ? " (at " + name.getName().str() + ")" : std::string();
}

/// gai::optimize, its diagnostics gathered into the error (one line each,
/// without the op dumps the default handler adds).
llvm::Error optimizeReportingErrors(mlir::ModuleOp module, const gai::CompileOptions &options) {
  std::string messages;
  mlir::ScopedDiagnosticHandler handler(module.getContext(), [&](mlir::Diagnostic &d) {
    if (d.getSeverity() != mlir::DiagnosticSeverity::Error)
      return mlir::success();
    // The pass's flag is gaic's here.
    std::string text = d.str();
    llvm::StringRef passFlag = "--gai-quantize: ";
    if (llvm::StringRef(text).starts_with(passFlag))
      text = "--quantize=" + options.quantize.format +
             (options.quantize.format == "int4"
                  ? " --quant-group " + std::to_string(options.quantize.group)
                  : std::string()) +
             ": " + text.substr(passFlag.size());
    if (size_t at = text.find("--gai-prune: "); at != std::string::npos) {
      text = pruneFlags(options.prune) + ": " + text.substr(0, at) +
             text.substr(at + sizeof("--gai-prune: ") - 1) + where(d.getLocation());
      if (size_t skip = text.find("with skip="); skip != std::string::npos)
        text.replace(skip, sizeof("with skip=") - 1, "with --prune-skip");
    }
    messages += (messages.empty() ? "" : "\n") + text;
    return mlir::success();
  });
  if (mlir::succeeded(gai::optimize(module, options)))
    return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 messages.empty() ? "the gai passes failed" : messages);
}

llvm::Expected<gai::CompiledWeights> makeWeightsFrom(mlir::ModuleOp module,
                                                     const gai::CompileOptions &options) {
  gai::StatusOr<gai::WeightSet> weights = gai::WeightSet::open(options.weightsPath);
  if (!weights)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), weights.status().message());
  return gai::makeWeights(module, *weights, options.prune.calibration);
}

/// Writes `made` and the module's other weights to ARTIFACT.weights.safetensors.
llvm::Expected<std::string> writeMadeWeightsFile(mlir::ModuleOp module,
                                                 const gai::CompileOptions &options,
                                                 gai::MadeWeights &made) {
  auto failure = [](const std::string &m) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), m);
  };
  if (outputPath == "-")
    return failure("--external-weights with --quantize or --prune writes the weights beside "
                   "the artifact; give -o FILE");
  gai::StatusOr<gai::WeightSet> weights = gai::WeightSet::open(options.weightsPath);
  if (!weights)
    return failure(weights.status().message());
  if (llvm::Error e = gai::addFloatWeights(module, *weights, made))
    return std::move(e);
  std::string path = outputPath + ".weights.safetensors";
  std::map<std::string, std::string> metadata = {{"format", "gai"}};
  if (!quantize.empty())
    metadata["quantized"] = quantize;
  if (options.prune.any())
    metadata["pruned"] = pruneFlags(options.prune);
  if (gai::Status s = gai::writeSafetensors(path, made.tensors, metadata); !s)
    return failure(s.message());
  return path;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  cl::HideUnrelatedOptions(category);
  cl::SetVersionPrinter(
      [](llvm::raw_ostream &os) { os << gai::versionText() << "\n"; });
  cl::ParseCommandLineOptions(argc, argv,
                              "gaic: the gai model compiler\n\n"
                              "  gaic model.json --emit=gai -o model.mlir\n");
  // `gaic MODEL -o m.gai` means the artifact.
  if (emit.getNumOccurrences() == 0 && llvm::StringRef(outputPath).ends_with(".gai"))
    emit = Emit::Artifact;
  // A count given explicitly must be one; only an absent flag means "from the spec".
  for (cl::opt<int64_t> *count : {&batch, &seqLen, &prefillLen, &trainBatch, &trainSeqLen})
    if (count->getNumOccurrences() && (*count < 1 || *count > INT32_MAX))
      return fail("--" + count->ArgStr + ": expected a count in [1, " +
                  llvm::Twine(INT32_MAX) + "], got " + llvm::Twine(int64_t(*count)));
  if (llvm::Error e = gai::checkCpuLevel(cpu))
    return fail(llvm::toString(std::move(e)));
  if (mode != "generate" && mode != "train")
    return fail("--mode: expected generate or train, got '" + mode + "'");
  if (quantize.getNumOccurrences() && !gai::parseQuantFormat(quantize))
    return fail("--quantize: expected int8, int4 or fp8, got '" + quantize + "'");
  if (!quantize.empty() && mode == "train")
    return fail("--quantize: training updates float weights; quantize the trained weights "
                "for generation (leave out --mode=train)");
  if (quantGroup.getNumOccurrences() && (quantGroup < 8 || quantGroup % 8 != 0))
    return fail("--quant-group: expected a positive multiple of 8, got " +
                llvm::Twine(int64_t(quantGroup)));
  if (prunePattern.getNumOccurrences() && prunePattern != "2:4")
    return fail("--prune: expected 2:4, got '" + prunePattern + "'");
  if (!prunePattern.empty() && !quantize.empty())
    return fail("--prune=2:4 with --quantize: a weight is stored either 2:4 sparse or "
                "quantized; choose one (structured pruning, --prune-heads and --prune-mlp, "
                "combines with --quantize)");
  if (pruneHeads < 0)
    return fail("--prune-heads: expected a count >= 0, got " + llvm::Twine(int64_t(pruneHeads)));
  if (pruneMlp < 0 || pruneMlp >= 1)
    return fail("--prune-mlp: expected a fraction in [0, 1), got " +
                llvm::formatv("{0}", double(pruneMlp)).str());

  gai::CompileOptions options;
  if (!memoryBudget.empty()) {
    llvm::Expected<int64_t> bytes = gai::parseByteSize(memoryBudget);
    if (!bytes)
      return fail("--memory-budget: " + llvm::toString(bytes.takeError()));
    options.remat.budget = *bytes;
    options.remat.mode = "auto";
  }
  if (rematMode.getNumOccurrences()) {
    if (rematMode != "none" && rematMode != "auto" && rematMode != "full")
      return fail("--remat: expected none, auto or full, got '" + rematMode + "'");
    options.remat.mode = rematMode;
  }
  if (options.remat.mode == "auto" && options.remat.budget == 0)
    return fail("--remat=auto needs --memory-budget SIZE: the budget it fits");
  if ((options.remat.mode != "none" || options.remat.budget) && mode != "train")
    return fail("--remat and --memory-budget plan a training step: add --mode=train");
  options.specPath = specPath;
  options.weightsPath = weightsPath;
  options.tokenizerPath = tokenizerFile;
  options.chatTemplatePath = chatTemplateFile;
  gai::useModelDirectory(options);
  options.build.batch = batch;
  options.build.seqLen = seqLen;
  options.build.dtype = dtype;
  options.build.prefillLen = prefillLen;
  options.build.f32Residual = f32Residual;
  options.printIRAfterAll = printIRAfterAll;
  options.timePasses = timePasses;
  if (fusionMaxInputs < 1)
    return fail("--fusion-max-inputs: expected a positive count, got " +
                std::to_string(fusionMaxInputs));
  options.fusionMaxInputs = fusionMaxInputs;
  options.train = mode == "train";
  if (fusedUpdate && !options.train)
    return fail("--fused-update fuses a training step with its update: add --mode=train");
  if (fusedUpdate && meshSpec.getNumOccurrences())
    return fail("--fused-update trains on one device: leave out --mesh (a sharded step "
                "keeps its gradients as state for the all-reduce)");
  options.fusedUpdate = fusedUpdate;
  options.foldNorms = foldNorms;
  options.attentionLayout = attentionLayout;
  options.ropeTokenMajor = ropeTokenMajor;
  options.quantize.format = quantize;
  options.quantize.group = quantGroup;
  options.quantize.skip.assign(quantSkip.begin(), quantSkip.end());
  options.quantize.fp8PerRow = quantFp8PerRow;
  options.fuseFp8Activations = fuseFp8Activations;
  options.prune.pattern = prunePattern;
  options.prune.skip.assign(pruneSkip.begin(), pruneSkip.end());
  options.prune.heads = pruneHeads;
  options.prune.mlp = pruneMlp;
  std::optional<gai::ActivationSquares> measured;
  if (calibration.getNumOccurrences()) {
    if (pruneHeads == 0 && pruneMlp == 0)
      return fail("--calibration weighs which heads and channels structured pruning removes: "
                  "add --prune-heads N or --prune-mlp R");
    if (calibrationTokens < 1)
      return fail("--calibration-tokens: expected a positive count");
    llvm::Expected<gai::ActivationSquares> squares =
        gai::measureActivations(options, calibration, calibrationTokens);
    if (!squares)
      return fail(llvm::toString(squares.takeError()));
    measured = std::move(*squares);
    options.prune.calibration = &*measured;
  }
  options.build.trainBatch = trainBatch;
  options.build.trainSeqLen = trainSeqLen;
  if (meshSpec.getNumOccurrences() || zeroStage.getNumOccurrences()) {
    std::string error;
    std::optional<mlir::gai::MeshSpec> grid = mlir::gai::parseMeshSpec(meshSpec, error);
    if (!grid)
      return fail("--mesh: " + error);
    if (grid->tp > 1) {
      if (grid->dp > 1 && mode != "train")
        return fail("--mesh dp=" + std::to_string(grid->dp) +
                    ": data parallelism shards training; generation splits with tp alone");
      if (pruneHeads > 0 || pruneMlp > 0 || !prunePattern.empty() || !quantize.empty())
        return fail("--mesh tp: splitting a pruned or quantized model is not built yet");
      if (externalWeights)
        return fail("--mesh tp: each rank's slices of the weights are made at compile time "
                    "(embedded), or at run time from the whole weights (`gai-run --weights`, "
                    "compiled without --weights); --external-weights does neither");
      options.shard.tensorParallel = grid->tp;
    } else if (mode != "train") {
      return fail("--mesh shards a training step: add --mode=train");
    }
    if (zeroStage != 0 && zeroStage != 1)
      return fail("--zero: expected 0 or 1 (ZeRO-1), got " + std::to_string(zeroStage));
    if (zeroStage == 1 && !meshSpec.getNumOccurrences())
      return fail("--zero=1 shards the optimizer state over data-parallel ranks: add "
                  "--mesh dp=D (dp=1: a world of one, for checking the sharded steps)");
    if (bucketMiB < 1)
      return fail("--bucket-mib: expected a positive count");
    options.build.dataParallel = grid->dp;
    // dp=1 (a world of one) keeps the collectives: a sharded run's steps
    // on one device, to check them there.
    if (mode == "train")
      options.shard = {meshSpec, zeroStage, bucketMiB << 20, grid->tp};
  }
  // Both inputs default to what `gai-run generate` runs; @forward (every
  // position's logits) is for inspection and tests, on request.
  options.build.entries = {false, true, true, options.train};
  if (!entries.empty()) {
    options.build.entries = {false, false, false, options.train};
    for (const std::string &entry : entries) {
      if (entry == "forward")
        options.build.entries.forward = true;
      else if (entry == "prefill")
        options.build.entries.prefill = true;
      else if (entry == "decode")
        options.build.entries.decode = true;
      else
        return fail("--entries: unknown function '" + entry +
                    "' (expected forward, prefill or decode)");
    }
  }

  mlir::MLIRContext context;
  llvm::Expected<gai::ImportedModel> model = gai::importModel(context, options);
  if (!model)
    return fail(llvm::toString(model.takeError()));

  gai::GpuCodegenOptions gpuCodegen;
  if (target == "cuda" || llvm::StringRef(target).starts_with("cuda:")) {
    options.target = target;
    if (target != "cuda")
      gpuCodegen.chip = target.substr(5);
    if (gpuCodegen.chip != "sm_80" && gpuCodegen.chip != "sm_90")
      return fail("--target=" + target + ": the cuda target takes sm_80 or sm_90");
  } else if (target != "cpu") {
    return fail("--target=" + target + ": expected cpu, cuda, cuda:sm_80 or cuda:sm_90");
  }
  bool lowering = emit == Emit::Exec || emit == Emit::LLVM || emit == Emit::PTX ||
                  emit == Emit::Artifact;
  std::string dtypeName = dtype.empty() ? model->spec.compile.dtype : std::string(dtype);
  if (lowering && dtypeName != "f32" && !options.isCuda())
    return fail("--dtype=" + dtypeName + ": the cpu target computes in f32 only");
  if (lowering && dtypeName == "f16")
    return fail("--dtype=f16: the cuda target computes in f32 or bf16");
  if (options.train && dtypeName != "f32" && !(dtypeName == "bf16" && options.isCuda()))
    return fail("--mode=train --dtype=" + dtypeName +
                ": training computes in f32, or in bf16 with f32 master weights on "
                "--target=cuda");
  if (emit == Emit::LLVM && options.isCuda())
    return fail("--emit=llvm shows CPU kernels; use --emit=ptx for --target=" + target);
  if (emit == Emit::PTX && !options.isCuda())
    return fail("--emit=ptx needs --target=cuda");
  // Binary on a terminal by accident is worse than asking for -o.
  if (emit == Emit::Artifact && outputPath.getNumOccurrences() == 0)
    return fail("--emit=artifact needs -o FILE (or -o - for stdout)");
  if (!signingKey.empty() && outputPath == "-")
    return fail("--sign writes FILE.sig beside the artifact; give -o FILE");
  if (externalWeights && options.weightsPath.empty())
    return fail("--external-weights needs --weights FILE");

  std::optional<gai::CompiledWeights> made;
  const int64_t paramsBefore = gai::countParameters(*model->module);
  if (emit != Emit::Gai || printReport || printIRAfterAll) {
    // The frontend's IR is what --emit=gai shows; optimise a copy for the rest.
    mlir::OwningOpRef<mlir::ModuleOp> optimized =
        emit != Emit::Gai ? std::move(model->module)
                          : mlir::OwningOpRef<mlir::ModuleOp>(
                                model->module->clone());
    if (llvm::Error e = optimizeReportingErrors(*optimized, options))
      return fail(llvm::toString(std::move(e)));
    llvm::Expected<std::optional<gai::RematOutcome>> remat =
        gai::rematerialize(*optimized, options);
    if (!remat)
      return fail(llvm::toString(remat.takeError()));
    if (gai::needsMadeWeights(*optimized) && !options.weightsPath.empty()) {
      llvm::Expected<gai::CompiledWeights> compiled = makeWeightsFrom(*optimized, options);
      if (!compiled)
        return fail(llvm::toString(compiled.takeError()));
      made = std::move(*compiled);
    }
    if (printReport)
      gai::printReport(gai::report(*optimized), llvm::errs());
    if (printReport && *remat)
      gai::printRematReport(**remat, llvm::errs());
    if (printReport && options.prune.any())
      gai::printPruningReport(paramsBefore, gai::countParameters(*optimized),
                              made ? &made->pruned : nullptr, llvm::errs());
    if (printReport && !quantize.empty())
      gai::printQuantizationReport(*optimized, made ? &made->quantized : nullptr,
                                   llvm::errs());
    if (emit != Emit::Gai)
      model->module = std::move(optimized);
  }

  gai::WeightsMode weightsMode = options.weightsPath.empty() ? gai::WeightsMode::None
                                 : externalWeights   ? gai::WeightsMode::External
                                                     : gai::WeightsMode::Embedded;
  if (made && emit == Emit::Artifact) {
    if (weightsMode == gai::WeightsMode::External) {
      // The artifact references one file: the weights made and the file's
      // others, beside it.
      llvm::Expected<std::string> file = writeMadeWeightsFile(*model->module, options,
                                                              made->all);
      if (!file)
        return fail(llvm::toString(file.takeError()));
      options.weightsPath = *file;
    } else {
      options.madeWeights = &made->all;
    }
  }
  gai::CpuCodegenOptions codegen;
  codegen.cpu = cpu;
  std::string error;
  std::string text;
  std::vector<uint8_t> bytes;
  if (emit == Emit::PTX) {
    auto compiled = gai::compileKernels(*model->module, options, weightsMode,
                                        codegen, gpuCodegen);
    if (!compiled)
      return fail(llvm::toString(compiled.takeError()));
    auto kernels = gai::kernelLibraryOf(**compiled);
    if (mlir::failed(kernels))
      return fail("the codegen pass left no kernel library");
    text.assign(kernels->code.begin(), kernels->code.end());
    if (!text.empty() && text.back() == '\0')
      text.pop_back();
  } else if (emit == Emit::Exec || emit == Emit::LLVM) {
    auto lowered = gai::lowerModule(*model->module, options, weightsMode);
    if (!lowered)
      return fail(llvm::toString(lowered.takeError()));
    if (emit == Emit::Exec) {
      model->module = std::move(*lowered);
    } else {
      auto ir = gai::cpuKernelsLLVMIR(**lowered, codegen, error);
      if (mlir::failed(ir))
        return fail(error);
      text = std::move(*ir);
    }
  } else if (emit == Emit::Artifact) {
    auto artifact = gai::compileArtifact(*model->module, model->spec, options,
                                         weightsMode, outputPath, codegen,
                                         gpuCodegen);
    if (!artifact)
      return fail(llvm::toString(artifact.takeError()));
    bytes = std::move(*artifact);
  }

  llvm::Error written = gai::writeOutputFile(outputPath, [&](llvm::raw_ostream &os) {
    if (emit == Emit::Artifact)
      os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    else if (emit == Emit::LLVM || emit == Emit::PTX)
      os << text;
    else
      model->module->print(os), os << "\n";
  });
  if (written)
    return fail(llvm::toString(std::move(written)));
  if (!signingKey.empty()) {
    if (emit != Emit::Artifact)
      return fail("--sign signs artifacts; add --emit=artifact");
    if (gai::Status s = gai::signFile(outputPath, signingKey); !s)
      return fail(s.message());
  }
  return 0;
}
