// The compiler's stages, from a model file to IR and to an artifact.
#ifndef GAI_COMPILER_PIPELINE_H
#define GAI_COMPILER_PIPELINE_H

#include "compiler/ArtifactWriter.h"
#include "compiler/PrunedWeights.h"
#include "compiler/QuantizedWeights.h"
#include "compiler/codegen/GpuCodegen.h"
#include "frontend/GraphBuilder.h"
#include "frontend/ModelSpec.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>
#include <vector>

namespace gai {


struct CompileOptions {
  std::string specPath; ///< our spec or an HF config.json
  /// A safetensors file, an index of shards or a model directory
  /// (WeightSet::open); empty: no weights check.
  std::string weightsPath;
  /// A tokenizer.json to embed in the artifact; empty: the one beside an
  /// HF config.json, if any; "none": no tokenizer.
  std::string tokenizerPath;
  /// A chat template to record (a tokenizer_config.json or a Jinja file),
  /// which must be one gai renders; empty: the one beside an HF
  /// config.json, if any, recorded whatever it is; "none": none.
  std::string chatTemplatePath;
  BuildOptions build;
  bool printIRAfterAll = false;
  /// Print each pass manager's pass times to stderr (--pass-timing).
  bool timePasses = false;
  /// The most tensors one generated kernel reads (--gai-fusion max-inputs).
  int64_t fusionMaxInputs = 64;
  /// cpu, or cuda:sm_80 / cuda:sm_90 (cuda alone means sm_90).
  std::string target = "cpu";
  bool isCuda() const { return llvm::StringRef(target).starts_with("cuda"); }
  /// Adds the training entries (@eval_loss, @train_step, @optimizer_step,
  /// @zero_grads); parameters become trainable state.
  bool train = false;
  /// --mode=train on one device: one @train_update entry does a step and
  /// its AdamW update, its gradients values rather than state (one
  /// micro-batch a step; --gai-fused-update).
  bool fusedUpdate = false;
  /// CUDA: fold RMSNorms between decode-sized GEMMs into them (see
  /// NormFold.h); off only to measure what that brings.
  bool foldNorms = true;
  /// CUDA sm_90, fp8 weights: the kernel that makes a prefill GEMM's A
  /// writes it in e4m3 with a scale a row (ExecOptions::e4m3ActivationRows);
  /// off, the GEMM makes A e4m3 in a launch of its own (llama-1b's
  /// prefill: 7.29 against 6.89 ms on an H100).
  bool fuseFp8Activations = true;
  /// Run gai-attention-layout (attention over [B, T, H, D] rows in place).
  bool attentionLayout = true;
  /// Its rope-token-major option (the backward's RoPE after the head
  /// transpose).
  bool ropeTokenMajor = true;
  /// Weight-only quantization (--gai-quantize); an empty format: none.
  struct Quantize {
    std::string format; ///< int8, int4 or fp8
    int64_t group = 128;
    std::vector<std::string> skip; ///< globs; empty: the pass's default
    bool fp8PerRow = false;
  } quantize;
  /// Pruning (--gai-prune): 2:4 sparsity of the matmul weights (masked
  /// in the graph when training) and structured pruning; empty: none.
  struct Prune {
    std::string pattern;           ///< "2:4" or empty
    std::vector<std::string> skip; ///< globs; empty: the pass's default
    int64_t heads = 0;             ///< query heads removed per attention
    double mlp = 0;                ///< fraction of MLP channels removed
    /// --calibration's measurements (structured pruning by activation-
    /// weighted magnitude); null: by magnitude.
    const ActivationSquares *calibration = nullptr;
    bool any() const { return !pattern.empty() || heads > 0 || mlp > 0; }
  } prune;
  /// The weights made from weightsPath (makeWeights): the artifact stores
  /// these instead of the file's weights of those names.
  const MadeWeights *madeWeights = nullptr;
  /// Rematerialization of @train_step (--gai-remat): none, auto or full,
  /// and the bytes the planned peak may take (0: no budget).
  struct Remat {
    std::string mode = "none";
    int64_t budget = 0;
  } remat;
  /// Sharding of the training entries over a device grid (--gai-shard):
  /// "dp=D[,tp=T]", empty for one device; zero: ZeRO-1.
  struct Shard {
    std::string mesh;
    int64_t zero = 0;
    int64_t bucketBytes = 25 << 20;
    int64_t tensorParallel = 1; ///< generation split over tp ranks
  } shard;
};

struct ImportedModel {
  ModelSpec spec;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

/// A model directory as `save_pretrained` writes it (config.json beside
/// the weights) given as the spec stands for its config.json and, unless
/// weights are named, its weights.
void useModelDirectory(CompileOptions &options);

/// Parses the spec, builds the forward graph and, when weights are given,
/// checks them against the graph's parameters.
llvm::Expected<ImportedModel> importModel(mlir::MLIRContext &context,
                                          const CompileOptions &options);

/// The gai-level optimisations: attention rewriting, fusion (GEMM epilogues
/// and one-kernel regions), canonicalisation and CSE.
mlir::LogicalResult optimize(mlir::ModuleOp module,
                             const CompileOptions &options);

/// What the weights file becomes for an optimised module: pruned weights
/// (pruneWeights), then quantized ones made from those. `weights` gets
/// each overlaid as it is made; `all` holds both, the later in place of
/// the earlier.
struct CompiledWeights {
  PrunedWeights pruned;
  QuantizedWeights quantized;
  MadeWeights all;
};
/// Whether `module` needs weights made (makeWeights) before it runs.
bool needsMadeWeights(mlir::ModuleOp optimized);
llvm::Expected<CompiledWeights> makeWeights(mlir::ModuleOp optimized, WeightSet &weights,
                                            const ActivationSquares *calibration = nullptr);

/// Lowers a copy of an optimised module to the exec dialect with
/// --gai-lower-to-exec (for `--emit=exec`).
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
lowerModule(mlir::ModuleOp optimized, const CompileOptions &options,
            WeightsMode weightsMode);

/// --gai-lower-to-exec, then --gai-cpu-codegen or --gai-gpu-codegen, on a
/// copy of an optimised module: the exec module, with its kernels compiled
/// into the exec.kernel_library attribute (kernelLibraryOf reads it).
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
compileKernels(mlir::ModuleOp optimized, const CompileOptions &options,
               WeightsMode weightsMode, const CpuCodegenOptions &codegen = {},
               const GpuCodegenOptions &gpuCodegen = {});

/// The rest of the way: compileKernels, then the artifact's bytes from the
/// exec module and the kernel library the codegen pass left on it. `artifactPath` places
/// an external weights path.
llvm::Expected<std::vector<uint8_t>>
compileArtifact(mlir::ModuleOp optimized, const ModelSpec &spec,
                const CompileOptions &options, WeightsMode weightsMode,
                const std::string &artifactPath,
                const CpuCodegenOptions &codegen = {},
                const GpuCodegenOptions &gpuCodegen = {});

/// What each function of an optimised module needs: its arena (the static
/// memory plan of its intermediates) and the kernels it runs.
struct FunctionReport {
  std::string name;
  int64_t buffers = 0, arenaBytes = 0, bufferBytes = 0;
  int64_t livePeakBytes = 0;  ///< the most bytes live at once: the arena's floor
  /// What is live at that peak: the op there (its name and location), and
  /// the kinds of value that take most of it (type and maker), largest first.
  std::string peakOp;
  struct LiveKind {
    std::string what;
    int64_t count = 0, bytes = 0;
  };
  std::vector<LiveKind> peakKinds;
  int64_t fusedKernels = 0;   ///< gai.fusion regions: generated code
  int64_t gemms = 0;          ///< gai.gemm and gai.matmul: GEMM calls
  int64_t attentions = 0;     ///< gai.flash_attention: library kernel
  int64_t libraryCalls = 0;   ///< other ops the runtime library runs
  int64_t collectives = 0;    ///< shard collectives (one rank's program)
  int64_t collectiveBytes = 0; ///< what they send per rank, on a ring
};
std::vector<FunctionReport> report(mlir::ModuleOp module);
void printReport(llvm::ArrayRef<FunctionReport> reports,
                 llvm::raw_ostream &os);

} // namespace gai

#endif // GAI_COMPILER_PIPELINE_H
