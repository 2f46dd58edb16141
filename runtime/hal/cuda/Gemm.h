// GEMMs through cuBLASLt: the plan is made once per step (layouts,
// epilogue, algorithm) and replayed every run.
#ifndef GAI_RUNTIME_HAL_CUDA_GEMM_H
#define GAI_RUNTIME_HAL_CUDA_GEMM_H

#include "gai/Status.h"
#include "hal/cuda/Kernels.h"
#include "hal/cuda/SparseGemm.h"

#include <cublasLt.h>

#include <memory>
#include <optional>
#include <vector>

namespace gai::cuda {

/// C[i] = act(A[i]·B[i] + bias) + residual[i], row-major, as the CPU's
/// GemmArgs (hal/cpu/Kernels.h), on device pointers.
struct GemmDesc {
  const void *a = nullptr, *b = nullptr;
  void *c = nullptr;
  const void *bias = nullptr, *residual = nullptr;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  bool transposeA = false, transposeB = false;
  int64_t strideA = 0, strideB = 0, strideC = 0;
  int activation = 0; // the artifact's Activation
  /// How many leading batch entries take the activation; -1: all. Set
  /// where GEMMs of different activations were merged into one batch.
  int64_t activatedBatches = -1;
  float alpha = 1.0f;  // scales A·B (gemv and cuBLASLt paths alike: no epilogue)
  /// B (and the gate) are model weights, which no kernel writes while an
  /// entry runs.
  bool constantB = false;
  /// A gated linear unit: C = act(A·gateᵀ) ⊙ (A·Bᵀ), gate [n, k] like B.
  /// Runs as our GEMV only (decode-sized A), never merged with others.
  const void *gate = nullptr;
  /// An RMSNorm folded in (see FoldedNorm). Our GEMV only.
  FoldedNorm norm;
  /// C and the residual are f32 over bf16 A and B (see GemvPart::wideC).
  bool wideC = false;
  /// B and the gate quantized (transposeB, batch 1). Our GEMV dequantizes
  /// them as it reads them; a larger GEMM dequantizes B into the plan's
  /// scratch for cuBLASLt, or (fp8, bf16 A) runs cuBLASLt's fp8 GEMM on A
  /// scaled into e4m3 there.
  QuantizedWeights quant;
  /// Fp8 weights: A is e4m3 already, with these f32 scales a row (made by
  /// the kernel that made A); else null.
  const float *aRowScales = nullptr;
};

/// Device memory that prefill-sized GEMMs over quantized weights work in:
/// one region for all of an executor's GEMMs, which run one at a time;
/// and how those that become fp8 GEMMs sum.
struct QuantScratch {
  void *data = nullptr;
  int64_t bytes = 0;
  /// fp8 GEMMs sum in the tensor cores' own accumulators, without
  /// cuBLASLt's periodic promotion to f32 (SessionOptions).
  bool fastFp8Accumulation = false;
};
/// The scratch such a GEMM of m rows over [n, k] weights needs in `elem`.
/// `fp8`: the weights are e4m3 (A may be made e4m3 too).
int64_t quantScratchBytes(int64_t m, int64_t n, int64_t k, Elem elem, bool fp8);

/// How many GEMMs from the front of `run` (consecutive plan steps) one
/// launch can do, and the batched GEMM that does them where the launch is
/// cuBLASLt's: they read the same A and none reads what an earlier one
/// writes; decode-sized ones become one multi-part GEMV, larger ones whose
/// weights and outputs are evenly spaced (q/k/v, gate/up stored one after
/// another) one strided batch.
struct GemmMerge {
  size_t count = 1;
  bool gemv = false;
  GemmDesc batched; // when !gemv and count > 1
};
GemmMerge mergeGemms(const std::vector<GemmDesc> &run, Elem elem);

class GemmPlan {
public:
  /// Bias, ReLU and tanh-GELU go in cuBLASLt's epilogue and a residual in
  /// its C operand; SiLU, exact GELU and an activation with a residual
  /// follow as one elementwise kernel.
  /// With `tuneWorkspace` (workspaceBytes of device memory), a prefill-sized
  /// GEMM times cuBLASLt's candidate algorithms on scratch outputs and keeps
  /// the fastest (remembered per shape for the process).
  /// `tuneCandidates`: how many candidates to time (SessionOptions).
  /// Quantized weights beyond our GEMV need `scratch` (quantScratchBytes).
  static StatusOr<std::unique_ptr<GemmPlan>>
  create(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
         size_t workspaceBytes, void *tuneWorkspace = nullptr, int tuneCandidates = 8,
         const QuantScratch &scratch = {});
  /// One launch of our GEMV for up to kGemvParts decode-sized GEMMs over
  /// the same A (mergeGemms said they may share it).
  static std::unique_ptr<GemmPlan> createGemv(const std::vector<GemmDesc> &parts,
                                              Elem elem);
  ~GemmPlan();
  Status run(void *workspace, size_t workspaceBytes, cudaStream_t stream) const;
  /// For our GEMV: what the next kernel reads first (see GemvPrefetch).
  void setPrefetch(const GemvPrefetch &prefetch) { prefetch_ = prefetch; }
  /// Whether run() can also do greedy decoding's pick (gemvParts' `pick`):
  /// it is our GEMV of one part without a gate, writing `logits` [rows, vocab].
  bool canPickGreedy(const void *logits, int64_t rows, int64_t vocab) const;
  /// Until cleared (nullopt), run() picks with `pick`.
  void setGreedyPick(std::optional<GreedyPick> pick) { pick_ = pick; }
  /// `next`, a row-scaled fp8 GEMM right after this one over the same A,
  /// reuses the e4m3 A this one's launch makes (which also fills next's
  /// weight scales): q, k and v, or gate and up, quantize A once. False,
  /// and nothing changed, where they cannot share.
  bool shareFp8Activations(GemmPlan &next);
  /// Whether run() makes an e4m3 A before its fp8 GEMM.
  bool makesFp8Activations() const { return fp8_ && fp8_->quantize; }
  /// How quantized weights are multiplied ("GEMV", "fp8 GEMM", "fp8 GEMM,
  /// row scales", "dequantized"), for step names; null for float weights.
  const char *quantizedRoute() const;

private:
  GemmPlan() = default;
  /// An fp8 GEMM's device scales: cuBLASLt's A is our B (the weights),
  /// its B our A. One scale each, or (outerVectors) one a weight row and
  /// one a row of A.
  struct Fp8Scales {
    const float *weights = nullptr, *activations = nullptr;
    bool outerVectors = false;
    bool fastAccumulation = false; // CUBLASLT_MATMUL_DESC_FAST_ACCUM
  };
  /// The cuBLASLt plan proper. `fp8`: A and B are e4m3, scaled as it says.
  static StatusOr<std::unique_ptr<GemmPlan>>
  createLt(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem, size_t workspaceBytes,
           void *tuneWorkspace, int tuneCandidates, const Fp8Scales *fp8 = nullptr);
  /// A prefill-sized GEMM over quantized weights: fp8 through cuBLASLt
  /// where it can, else the weights dequantized into `scratch` first.
  static StatusOr<std::unique_ptr<GemmPlan>>
  createQuantized(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
                  size_t workspaceBytes, void *tuneWorkspace, int tuneCandidates,
                  const QuantScratch &scratch);
  /// A 2:4 GEMM through cuSPARSELt (decompressing its weights into
  /// `scratch` once, at creation); an error where it cannot.
  static StatusOr<std::unique_ptr<GemmPlan>>
  createSparse(const GemmDesc &desc, Elem elem, const QuantScratch &scratch);
  /// Fp8 weights over an A already in e4m3 with row scales (aRowScales).
  static StatusOr<std::unique_ptr<GemmPlan>>
  createFp8OverE4m3(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
                    size_t workspaceBytes, void *tuneWorkspace, int tuneCandidates,
                    const QuantScratch &scratch);
  /// The fastest of `candidates` over scratch outputs; -1 if none ran.
  int fastest(const cublasLtMatmulHeuristicResult_t *candidates, int count,
              void *workspace, size_t workspaceBytes, float *bestMs = nullptr) const;
  /// The time (ms) of three runs of the plan's algorithm; negative where
  /// it did not run.
  float timeOfAlgorithm(void *workspace, size_t workspaceBytes) const;
  /// createLt over fp8 `scales`. Asked for fast accumulation where GEMMs
  /// are tuned, the faster of that and the promoted form: cuBLASLt's fast
  /// accumulation is slower on some shapes (llama-1b's k and v, 256 x 2048).
  static StatusOr<std::unique_ptr<GemmPlan>>
  createFp8Lt(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem, size_t workspaceBytes,
              void *tuneWorkspace, int tuneCandidates, const Fp8Scales &scales);
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
  GemmDesc desc_;
  Elem elem_ = Elem::F32;
  float beta_ = 0.0f;
  bool followUp_ = false; // the elementwise kernel after the GEMM
  std::vector<GemvPart> gemvParts_; // decode-sized: our GEMV, not cuBLASLt
  bool gemvWeightsConstant_ = false;
  GemvPrefetch prefetch_;
  std::optional<GreedyPick> pick_;
  /// Quantized weights: what run() does before the cuBLASLt GEMM.
  struct Dequantization {
    const void *q;
    QuantizedWeights quant;
    int64_t n, k;
    void *out;
  };
  std::optional<Dequantization> dequant_;
  /// 2:4 weights multiplied by cuSPARSELt, from its own compressed copy.
  std::unique_ptr<SparseGemm> sparse_;
  /// A made e4m3 before the GEMM: with a scale a row (rowScales, and the
  /// weights' vectors in `fills`), or with one (partials, then scale).
  struct Fp8Activations {
    const void *a;
    int64_t m, k;
    uint8_t *out;
    float *partials, *scale;
    int multiprocessors;
    float *rowScales = nullptr;
    Fp8ScaleFill fills[kFp8ScaleFills];
    int fillCount = 0;
    bool quantize = true; // false: the GEMM before made this A
    float *freeFloats = nullptr, *floatsEnd = nullptr; // scratch left for fills
  };
  std::optional<Fp8Activations> fp8_;
  /// A per-tensor weight scale spread over the n entries cuBLASLt's row
  /// scaling reads, filled once when A comes e4m3 (no launch to fill it).
  std::shared_ptr<float> spreadWeightScale_;
  GemmPlan *fp8Head_ = nullptr; // the plan whose launch makes our e4m3 A
};

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_GEMM_H
