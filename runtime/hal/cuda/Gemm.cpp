// Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: cuBLASLt's A is our B and
// its B our A, and a row-major matrix read column-major is its transpose,
// so neither operand moves.
#include "hal/cuda/Gemm.h"

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace gai::cuda {
namespace {

Status lt(cublasStatus_t status, const char *what) {
  if (status == CUBLAS_STATUS_SUCCESS)
    return Status::ok();
  return Status::error(std::string("cuBLASLt ") + what + ": " +
                       cublasLtGetStatusString(status));
}

/// The largest power of two (up to 256) dividing the address.
uint32_t alignmentOf(const void *p) {
  auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a)
    a /= 2;
  return a;
}

bool aligned(const void *p, uintptr_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}
bool aligned16(const void *p) { return aligned(p, 16); }

// cuBLASLt's heuristic first pick is often not its fastest candidate for
// our prefill shapes (wide f32 outputs most of all), so those are timed.
constexpr int kMostTuneCandidates = 64;
constexpr double kTuneFlops = 1e9; // smaller GEMMs keep the first pick

/// Whether a GEMM is timed to pick its algorithm (and fp8 summing form).
bool tunedGemm(const GemmDesc &d, const void *tuneWorkspace, int candidates) {
  return tuneWorkspace && candidates > 1 && 2.0 * d.batch * d.m * d.n * d.k >= kTuneFlops;
}


/// Tuned choices by device and shape, for the process: the layers of a
/// model share a few shapes, and entries share them too.
std::mutex tunedMutex;
std::map<std::string, cublasLtMatmulAlgo_t> tunedAlgos;

/// What the choice depends on: the device, the problem, the epilogue and the
/// operands' alignments (A, B, C, D as cuBLASLt names them).
/// fp8: 0 none, 1 one scale each, 2 outer vectors; + 2 with fast accumulation.
std::string tuneKey(const GemmDesc &d, Elem elem, float beta, int fp8,
                    const uint32_t (&alignments)[4]) {
  int device = 0;
  cudaGetDevice(&device);
  std::string key =
      std::to_string(device) + ":" + std::to_string(static_cast<int>(elem)) +
      ":" + std::to_string(d.batch) + "x" + std::to_string(d.m) + "x" +
      std::to_string(d.n) + "x" + std::to_string(d.k) + ":" +
      std::to_string(d.transposeA) + std::to_string(d.transposeB) + ":" +
      std::to_string(d.strideA) + "," + std::to_string(d.strideB) + "," +
      std::to_string(d.strideC) + ":" + std::to_string(d.bias != nullptr) +
      std::to_string(beta != 0.0f) + std::to_string(d.wideC) + ":" +
      std::to_string(d.activation) + "," + std::to_string(d.activatedBatches) +
      (fp8 ? ":fp8-" + std::to_string(fp8) : "");
  for (uint32_t a : alignments)
    key += ":" + std::to_string(a);
  return key;
}

bool gemvShaped(const GemmDesc &d, Elem elem) {
  // Quantized weights take 4-byte loads where 16-byte ones do not fit.
  const uintptr_t weightAlignment = d.quant.quantized() ? 4 : 16;
  // The GEMV unpacks 2:4 values into bf16: f32 ones go through the dense
  // scratch and cuBLASLt.
  return (d.quant.format != WeightFormat::Sparse24 || elem == Elem::BF16) && d.alpha == 1.0f &&
         !d.aRowScales &&
         d.m <= kGemvRows && d.batch == 1 && d.transposeB &&
         !d.transposeA && d.k % 8 == 0 && aligned16(d.a) && aligned(d.b, weightAlignment) &&
         aligned(d.gate, weightAlignment);
}

int64_t roundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

/// The fp8 GEMM's scratch: A in e4m3, then floats: A's partial maxima and
/// scale (one scale), or a scale a row of A and one a weight row (outer
/// vectors), each 256-byte aligned.
int64_t fp8ScratchBytes(int64_t m, int64_t n, int64_t k) {
  return roundUp(m * k, 256) + (std::max<int64_t>(kFp8Partials + 64, roundUp(m, 64) +
                                                                         roundUp(n, 64))) *
                                   4;
}

/// Whether [p, p + bytes) and [q, q + bytes2) share a byte.
bool overlaps(const void *p, int64_t bytes, const void *q, int64_t bytes2) {
  if (!p || !q)
    return false;
  auto a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(q);
  return a < b + static_cast<uintptr_t>(bytes2) && b < a + static_cast<uintptr_t>(bytes);
}

} // namespace

GemmPlan::~GemmPlan() {
  if (a_) cublasLtMatrixLayoutDestroy(a_);
  if (b_) cublasLtMatrixLayoutDestroy(b_);
  if (c_) cublasLtMatrixLayoutDestroy(c_);
  if (op_) cublasLtMatmulDescDestroy(op_);
}

GemmMerge mergeGemms(const std::vector<GemmDesc> &run, Elem elem) {
  GemmMerge merge;
  if (run.empty())
    return merge;
  const GemmDesc &first = run[0];
  const int64_t eb = bytesOf(elem);
  const bool gemv = gemvShaped(first, elem);
  auto cBytes = [&](const GemmDesc &d) {
    return d.batch * d.m * d.n * (d.wideC ? int64_t{4} : eb);
  };
  auto byteGap = [](const void *from, const void *to) {
    return reinterpret_cast<intptr_t>(to) - reinterpret_cast<intptr_t>(from);
  };
  if (first.gate) { // a gated GEMM is its launch's only part
    merge.gemv = gemvShaped(first, elem);
    return merge;
  }
  size_t count = 1;
  for (; count < run.size() && count < static_cast<size_t>(kGemvParts); ++count) {
    const GemmDesc &d = run[count];
    bool same = !d.gate && d.a == first.a && d.wideC == first.wideC &&
                d.norm.aSquares == first.norm.aSquares &&
                d.norm.aEps == first.norm.aEps && d.m == first.m && d.k == first.k &&
                d.alpha == first.alpha && d.quant.format == first.quant.format &&
                d.transposeA == first.transposeA &&
                d.transposeB == first.transposeB && d.batch == 1 && first.batch == 1;
    if (!same)
      break;
    // Nothing this one reads or writes may be an earlier one's output.
    bool independent = true;
    for (size_t e = 0; e < count; ++e) {
      const GemmDesc &earlier = run[e];
      int64_t bytes = cBytes(earlier);
      independent = independent && !overlaps(earlier.c, bytes, d.a, d.m * d.k * eb) &&
                    !overlaps(earlier.c, bytes, d.bias, d.n * eb) &&
                    !overlaps(earlier.c, bytes, d.residual, cBytes(d)) &&
                    !overlaps(earlier.c, bytes, d.c, cBytes(d)) &&
                    !overlaps(earlier.c, bytes, d.b, d.n * d.k * eb) &&
                    !overlaps(earlier.norm.out, bytes, d.a, d.m * d.k * eb);
    }
    if (!independent)
      break;
    if (gemv) {
      if (!gemvShaped(d, elem))
        break;
      continue;
    }
    // A strided batch: same shape, no epilogue operands, weights and
    // outputs at one spacing, and activations only on a leading run.
    const GemmDesc &previous = run[count - 1];
    intptr_t bGap = byteGap(first.b, run[1].b), cGap = byteGap(first.c, run[1].c);
    bool evenlySpaced = !first.quant.quantized() && d.n == first.n && !d.bias &&
                        !d.residual && !first.bias &&
                        !first.residual && byteGap(previous.b, d.b) == bGap &&
                        byteGap(previous.c, d.c) == cGap && bGap % eb == 0 &&
                        cGap % eb == 0 && cGap >= cBytes(first) &&
                        (d.activation == previous.activation || d.activation == 0);
    if (!evenlySpaced)
      break;
  }
  merge.count = count;
  merge.gemv = gemv;
  if (gemv || count == 1)
    return merge;
  GemmDesc batched = first;
  batched.batch = static_cast<int64_t>(count);
  batched.strideA = 0;
  batched.strideB = byteGap(first.b, run[1].b) / eb;
  batched.strideC = byteGap(first.c, run[1].c) / eb;
  int64_t activated = 0;
  while (activated < batched.batch && run[activated].activation == first.activation)
    ++activated;
  batched.activatedBatches = activated == batched.batch ? -1 : activated;
  merge.batched = batched;
  return merge;
}

std::unique_ptr<GemmPlan> GemmPlan::createGemv(const std::vector<GemmDesc> &parts,
                                               Elem elem) {
  std::unique_ptr<GemmPlan> plan(new GemmPlan());
  plan->desc_ = parts.front();
  plan->elem_ = elem;
  plan->gemvWeightsConstant_ = true;
  for (const GemmDesc &d : parts) {
    plan->gemvParts_.push_back(
        GemvPart{d.b, d.c, d.bias, d.residual, d.n, d.activation, d.gate, d.norm, d.wideC,
                 d.quant});
    plan->gemvWeightsConstant_ = plan->gemvWeightsConstant_ && d.constantB;
  }
  return plan;
}

int64_t quantScratchBytes(int64_t m, int64_t n, int64_t k, Elem elem, bool fp8) {
  const int64_t dequantized = n * k * bytesOf(elem);
  return fp8 && elem == Elem::BF16 ? std::max(dequantized, fp8ScratchBytes(m, n, k))
                                   : dequantized;
}

StatusOr<std::unique_ptr<GemmPlan>> GemmPlan::create(cublasLtHandle_t handle,
                                                     const GemmDesc &desc,
                                                     Elem elem,
                                                     size_t workspaceBytes,
                                                     void *tuneWorkspace,
                                                     int tuneCandidates,
                                                     const QuantScratch &scratch) {
  // A few rows against a weight stored [n, k]: cuBLASLt's GEMV kernels
  // reach about a third of the memory bandwidth there, ours most of it.
  if (gemvShaped(desc, elem))
    return createGemv({desc}, elem);
  if (desc.gate || desc.norm.out || desc.norm.aSquares)
    return Status::error(std::string(desc.gate ? "a gated GEMM" : "a GEMM with a folded RMSNorm") +
                         " runs as the GEMV only: at most " + std::to_string(kGemvRows) +
                         " rows of A against weights stored [n, k] (k a multiple of 8, "
                         "16-byte aligned), batch 1; this one is " +
                         std::to_string(desc.m) + "x" + std::to_string(desc.n) + "x" +
                         std::to_string(desc.k) + " batch " + std::to_string(desc.batch));
  if (desc.quant.quantized())
    return createQuantized(handle, desc, elem, workspaceBytes, tuneWorkspace, tuneCandidates,
                           scratch);
  return createLt(handle, desc, elem, workspaceBytes, tuneWorkspace, tuneCandidates);
}

StatusOr<std::unique_ptr<GemmPlan>>
GemmPlan::createQuantized(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
                          size_t workspaceBytes, void *tuneWorkspace, int tuneCandidates,
                          const QuantScratch &scratch) {
  const QuantizedWeights &q = desc.quant;
  auto tooSmall = [&](int64_t needed) {
    return Status::error("a " + std::to_string(desc.m) + "x" + std::to_string(desc.n) + "x" +
                         std::to_string(desc.k) +
                         " GEMM over quantized weights needs " + std::to_string(needed) +
                         " bytes of scratch, the executor has " +
                         std::to_string(scratch.bytes));
  };
  if (desc.batch != 1 || desc.transposeA || !desc.transposeB || desc.k % 8 != 0)
    return Status::error("quantized weights are one matrix stored [n, k]");
  if (desc.aRowScales)
    return createFp8OverE4m3(handle, desc, elem, workspaceBytes, tuneWorkspace,
                             tuneCandidates, scratch);
  // cuBLASLt's fp8 GEMM wants both operands K-major (ours are), 16-byte
  // aligned, with K a multiple of 16. A gets a scale a row where cuBLASLt
  // takes vectors of scales (since 12.9 on Hopper): one launch to make it,
  // and a row's outlier no longer coarsens the others. Else, with one
  // weight scale, one scale for A; without an algorithm for the shape or
  // epilogue (or before sm_89) the weights are dequantized instead.
  if (q.format == WeightFormat::Fp8E4M3 && elem == Elem::BF16 && desc.k % 16 == 0 &&
      aligned16(desc.a) && aligned16(desc.b) && aligned16(scratch.data) &&
      scratch.bytes >= fp8ScratchBytes(desc.m, desc.n, desc.k)) {
    auto *base = static_cast<uint8_t *>(scratch.data);
    auto *floats = reinterpret_cast<float *>(base + roundUp(desc.m * desc.k, 256));
    GemmDesc d = desc;
    d.a = base;
    Fp8Activations rows{desc.a, desc.m, desc.k, base, nullptr, nullptr, 0};
    rows.rowScales = floats;
    rows.freeFloats = floats + roundUp(desc.m, 64);
    rows.floatsEnd = reinterpret_cast<float *>(base + scratch.bytes);
    const float *weightScales = q.scale;
    if (q.perTensor) {
      rows.fills[rows.fillCount++] = {q.scale, desc.n, rows.freeFloats};
      weightScales = rows.freeFloats;
      rows.freeFloats += roundUp(desc.n, 64);
    }
    const Fp8Scales rowScaled{weightScales, rows.rowScales, true, scratch.fastFp8Accumulation};
    auto plan = createFp8Lt(handle, d, elem, workspaceBytes, tuneWorkspace, tuneCandidates,
                            rowScaled);
    if (plan) {
      (*plan)->fp8_ = rows;
      return plan;
    }
    if (q.perTensor) {
      Fp8Activations one{desc.a, desc.m, desc.k, base, floats, floats + kFp8Partials, 1};
      int device = 0;
      if (cudaGetDevice(&device) != cudaSuccess ||
          cudaDeviceGetAttribute(&one.multiprocessors, cudaDevAttrMultiProcessorCount,
                                 device) != cudaSuccess)
        cudaGetLastError(); // one partial block is still right
      const Fp8Scales scaled{q.scale, one.scale, false, scratch.fastFp8Accumulation};
      plan = createLt(handle, d, elem, workspaceBytes, tuneWorkspace, tuneCandidates, &scaled);
      if (plan) {
        (*plan)->fp8_ = one;
        return plan;
      }
    }
  }
  const int64_t needed = desc.n * desc.k * bytesOf(elem);
  if (scratch.bytes < needed || !aligned16(scratch.data))
    return tooSmall(needed);
  if (q.format == WeightFormat::Sparse24) {
    auto sparse = createSparse(desc, elem, scratch);
    if (sparse)
      return sparse;
    // cuSPARSELt absent, or a GEMM it does not take: decompressed below.
    static bool told = false;
    if (!told && !sparse.status().message().empty()) {
      told = true;
      std::fprintf(stderr, "gai: 2:4 weights run as dense GEMMs: %s\n",
                   sparse.status().message().c_str());
    }
  }
  GemmDesc d = desc;
  d.b = scratch.data;
  d.quant = {};
  d.constantB = false; // a kernel of the step writes it
  auto plan = createLt(handle, d, elem, workspaceBytes, tuneWorkspace, tuneCandidates);
  if (plan)
    (*plan)->dequant_ = Dequantization{desc.b, q, desc.n, desc.k, scratch.data};
  return plan;
}

StatusOr<std::unique_ptr<GemmPlan>>
GemmPlan::createFp8OverE4m3(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
                            size_t workspaceBytes, void *tuneWorkspace, int tuneCandidates,
                            const QuantScratch &scratch) {
  const QuantizedWeights &q = desc.quant;
  const std::string shape = std::to_string(desc.m) + "x" + std::to_string(desc.n) + "x" +
                            std::to_string(desc.k);
  // No float copy of A exists to fall back on.
  const std::string recompile = "; recompile with gaic --fuse-fp8-activations=false";
  if (q.format != WeightFormat::Fp8E4M3 || elem != Elem::BF16 || desc.k % 16 != 0 ||
      !aligned16(desc.a) || !aligned16(desc.b) || !aligned16(desc.aRowScales))
    return Status::error("a " + shape + " GEMM reading A in e4m3 needs fp8 weights, bf16 "
                         "c, k a multiple of 16 and 16-byte aligned A, weights and scales" +
                         recompile);
  const float *weightScales = q.scale;
  std::shared_ptr<float> spread;
  if (q.perTensor) {
    // The weights are in place when plans are made (as for 2:4 weights):
    // the scale is spread once, here, not by a launch each step.
    if (!desc.constantB)
      return Status::error("a " + shape + " GEMM reading A in e4m3 takes weights that no step "
                           "writes" + recompile);
    float *out = nullptr;
    if (cudaError_t e = cudaMalloc(&out, static_cast<size_t>(desc.n) * sizeof(float));
        e != cudaSuccess)
      return Status::error(std::string("cudaMalloc (fp8 weight scales): ") +
                           cudaGetErrorString(e));
    spread.reset(out, [](float *p) { cudaFree(p); });
    const Fp8ScaleFill fill{q.scale, desc.n, out};
    fillFp8Scales(&fill, 1, nullptr);
    if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess)
      return Status::error(std::string("spreading an fp8 weight scale: ") +
                           cudaGetErrorString(e));
    weightScales = out;
  }
  const Fp8Scales scales{weightScales, desc.aRowScales, true, scratch.fastFp8Accumulation};
  auto plan = createFp8Lt(handle, desc, elem, workspaceBytes, tuneWorkspace, tuneCandidates,
                          scales);
  if (!plan)
    return Status::error("cuBLASLt has no fp8 GEMM with row scales for " + shape + " here (" +
                         plan.status().message() + ")" + recompile);
  (*plan)->spreadWeightScale_ = std::move(spread);
  return plan;
}

StatusOr<std::unique_ptr<GemmPlan>> GemmPlan::createSparse(const GemmDesc &desc, Elem elem,
                                                          const QuantScratch &scratch) {
  // cuSPARSELt here: bf16 in, bf16 or f32 (wideC) out with a residual of
  // that type at most, nothing else in the epilogue; an empty message
  // means "not this GEMM" (quietly).
  if (elem != Elem::BF16 || desc.bias || desc.activation != 0 ||
      desc.alpha != 1.0f || desc.m % 8 != 0 || desc.n % 8 != 0 || desc.k % 16 != 0 ||
      !aligned16(desc.a) || !aligned16(desc.c))
    return Status::error("");
  // The weights are in place when plans are made: decompress them once
  // into the scratch and let cuSPARSELt compress its own copy.
  decompress24(elem, desc.b, desc.quant.meta, desc.n, desc.k, scratch.data, nullptr);
  if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess)
    return Status::error(std::string("decompressing 2:4 weights: ") + cudaGetErrorString(e));
  auto sparse = SparseGemm::create(desc.m, desc.n, desc.k, scratch.data, desc.residual != nullptr,
                                   nullptr, desc.wideC);
  // A library without f32 output for bf16 input: decompressed, quietly.
  if (!sparse)
    return desc.wideC && sparseLt() ? Status::error("") : sparse.status();
  // cuSPARSELt's default configuration against its fastest on these
  // buffers (the arena's, not yet in use): as cuBLASLt's plans are tuned.
  // Left at the default where the search fails.
  if (Status tuned = (*sparse)->tune(desc.a, desc.c, nullptr); !tuned)
    cudaGetLastError();
  std::unique_ptr<GemmPlan> plan(new GemmPlan());
  plan->desc_ = desc;
  plan->elem_ = elem;
  plan->sparse_ = std::move(*sparse);
  return plan;
}

StatusOr<std::unique_ptr<GemmPlan>>
GemmPlan::createLt(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
                   size_t workspaceBytes, void *tuneWorkspace, int tuneCandidates,
                   const Fp8Scales *fp8Scales) {
  std::unique_ptr<GemmPlan> plan(new GemmPlan());
  plan->handle_ = handle;
  plan->desc_ = desc;
  plan->elem_ = elem;
  const bool fp8 = fp8Scales != nullptr;
  cudaDataType_t type = elem == Elem::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  cudaDataType_t abType = fp8 ? CUDA_R_8F_E4M3 : type;
  // An f32 residual stream: C and D in f32 over bf16 A and B, which
  // cuBLASLt's 32F compute supports.
  cudaDataType_t cType = desc.wideC ? CUDA_R_32F : type;
  if (Status s = lt(cublasLtMatmulDescCreate(&plan->op_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                    "descriptor");
      !s)
    return s;
  cublasOperation_t opA = desc.transposeB ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t opB = desc.transposeA ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA);
  cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB);
  if (fp8) {
    // cuBLASLt's A is our weights, its B our A.
    const void *weightScale = fp8Scales->weights, *activationScale = fp8Scales->activations;
    cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                   &weightScale, sizeof weightScale);
    cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                   &activationScale, sizeof activationScale);
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    for (auto attribute : {CUBLASLT_MATMUL_DESC_A_SCALE_MODE, CUBLASLT_MATMUL_DESC_B_SCALE_MODE})
      if (fp8Scales->outerVectors)
        if (Status s = lt(cublasLtMatmulDescSetAttribute(plan->op_, attribute, &mode,
                                                         sizeof mode),
                          "outer-vector scales");
            !s)
          return s;
    if (fp8Scales->fastAccumulation) {
      const int8_t fast = 1;
      if (Status s = lt(cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_FAST_ACCUM,
                                                       &fast, sizeof fast),
                        "fast fp8 accumulation");
          !s)
        return s;
    }
  }

  // Which part of the epilogue cuBLASLt can do.
  bool residual = desc.residual != nullptr;
  int act = desc.activation;
  bool ltActivation = !residual && (act == 0 || act == 3 || act == 4) &&
                      desc.activatedBatches < 0;
  plan->followUp_ = !ltActivation && act != 0;
  plan->beta_ = residual && !plan->followUp_ ? 1.0f : 0.0f;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  if (desc.bias)
    epilogue = !ltActivation || act == 0 ? CUBLASLT_EPILOGUE_BIAS
               : act == 3               ? CUBLASLT_EPILOGUE_GELU_BIAS
                                        : CUBLASLT_EPILOGUE_RELU_BIAS;
  else if (ltActivation && act == 3)
    epilogue = CUBLASLT_EPILOGUE_GELU;
  else if (ltActivation && act == 4)
    epilogue = CUBLASLT_EPILOGUE_RELU;
  cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                 sizeof epilogue);
  if (desc.bias) {
    cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                   &desc.bias, sizeof desc.bias);
    cublasLtMatmulDescSetAttribute(plan->op_, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                   &type, sizeof type);
  }

  auto layout = [&](cublasLtMatrixLayout_t *out, int64_t rows, int64_t cols,
                    int64_t ld, int64_t stride, cudaDataType_t type) -> Status {
    if (Status s = lt(cublasLtMatrixLayoutCreate(out, type, rows, cols, ld), "layout"); !s)
      return s;
    int32_t count = static_cast<int32_t>(desc.batch);
    cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count,
                                     sizeof count);
    cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                     &stride, sizeof stride);
    return Status::ok();
  };
  // cuBLASLt's A = our B (n × k), its B = our A (k × m), its D = Cᵀ (n × m).
  Status s = desc.transposeB ? layout(&plan->a_, desc.k, desc.n, desc.k, desc.strideB, abType)
                             : layout(&plan->a_, desc.n, desc.k, desc.n, desc.strideB, abType);
  if (s)
    s = desc.transposeA ? layout(&plan->b_, desc.m, desc.k, desc.m, desc.strideA, abType)
                        : layout(&plan->b_, desc.k, desc.m, desc.k, desc.strideA, abType);
  if (s)
    s = layout(&plan->c_, desc.n, desc.m, desc.n, desc.strideC, cType);
  if (!s)
    return s;

  cublasLtMatmulPreference_t preference;
  if (Status e = lt(cublasLtMatmulPreferenceCreate(&preference), "preference"); !e)
    return e;
  cublasLtMatmulPreferenceSetAttribute(preference,
                                       CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &workspaceBytes, sizeof workspaceBytes);
  const void *cPointer = plan->beta_ != 0.0f ? desc.residual : desc.c;
  // Every batch entry's address: the base's alignment and the stride's.
  auto alignment = [&](const void *base, int64_t stride, int64_t elementBytes) {
    uint32_t a = alignmentOf(base);
    if (desc.batch > 1 && stride != 0)
      a = std::min(a, alignmentOf(reinterpret_cast<const void *>(
                          static_cast<uintptr_t>(stride * elementBytes))));
    return a;
  };
  const int64_t cBytes = desc.wideC ? 4 : bytesOf(elem);
  uint32_t alignA = alignment(desc.b, desc.strideB, bytesOf(elem)),
           alignB = alignment(desc.a, desc.strideA, bytesOf(elem)),
           alignC = alignment(cPointer, desc.strideC, cBytes),
           alignD = alignment(desc.c, desc.strideC, cBytes);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                       &alignA, sizeof alignA);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                       &alignB, sizeof alignB);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                       &alignC, sizeof alignC);
  cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                       &alignD, sizeof alignD);
  const int candidates = std::clamp(tuneCandidates, 0, kMostTuneCandidates);
  const bool tune = tunedGemm(desc, tuneWorkspace, candidates);
  const std::string key =
      tune ? tuneKey(desc, elem, plan->beta_,
                     fp8 ? (fp8Scales->outerVectors ? 2 : 1) + 2 * fp8Scales->fastAccumulation
                         : 0,
                     {alignA, alignB, alignC, alignD})
           : std::string();
  if (tune) {
    std::lock_guard<std::mutex> lock(tunedMutex);
    if (auto it = tunedAlgos.find(key); it != tunedAlgos.end()) {
      cublasLtMatmulPreferenceDestroy(preference);
      plan->algo_ = it->second;
      return plan;
    }
  }
  cublasLtMatmulHeuristicResult_t results[kMostTuneCandidates] = {};
  int found = 0;
  cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      handle, plan->op_, plan->a_, plan->b_, plan->c_, plan->c_, preference,
      tune ? candidates : 1, results, &found);
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0)
    return Status::error("cuBLASLt has no algorithm for a " +
                         std::to_string(desc.m) + "x" + std::to_string(desc.n) +
                         "x" + std::to_string(desc.k) + " GEMM (batch " +
                         std::to_string(desc.batch) + ")");
  int pick = tune && found > 1 ? plan->fastest(results, found, tuneWorkspace, workspaceBytes)
                               : 0;
  plan->algo_ = results[std::max(pick, 0)].algo;
  if (tune) {
    std::lock_guard<std::mutex> lock(tunedMutex);
    tunedAlgos[key] = plan->algo_;
  }
  return plan;
}

int GemmPlan::fastest(const cublasLtMatmulHeuristicResult_t *candidates, int count,
                      void *workspace, size_t workspaceBytes, float *bestMs) const {
  // Scratch C and D: the plan's own may be state (a gradient accumulated
  // into) that a trial must not touch.
  const GemmDesc &d = desc_;
  const int64_t cBytes = d.wideC ? 4 : bytesOf(elem_);
  const int64_t span = ((d.batch - 1) * d.strideC + d.m * d.n) * cBytes;
  void *scratchC = nullptr, *scratchD = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  int best = -1;
  float bestTime = 0;
  if (cudaMalloc(&scratchC, span) == cudaSuccess && cudaMalloc(&scratchD, span) == cudaSuccess &&
      cudaMemset(scratchC, 0, span) == cudaSuccess &&
      cudaEventCreate(&start) == cudaSuccess && cudaEventCreate(&stop) == cudaSuccess) {
    float alpha = d.alpha;
    constexpr int kRuns = 3;
    for (int i = 0; i < count; ++i) {
      auto launch = [&] {
        return cublasLtMatmul(handle_, op_, &alpha, d.b, a_, d.a, b_, &beta_, scratchC, c_,
                              scratchD, c_, &candidates[i].algo, workspace, workspaceBytes,
                              nullptr);
      };
      if (launch() != CUBLAS_STATUS_SUCCESS) // also the warm-up
        continue;
      cudaEventRecord(start, nullptr);
      bool ran = true;
      for (int r = 0; r < kRuns && ran; ++r)
        ran = launch() == CUBLAS_STATUS_SUCCESS;
      cudaEventRecord(stop, nullptr);
      float ms = 0;
      if (!ran || cudaEventSynchronize(stop) != cudaSuccess ||
          cudaEventElapsedTime(&ms, start, stop) != cudaSuccess)
        continue;
      if (best < 0 || ms < bestTime) {
        best = i;
        bestTime = ms;
      }
    }
  }
  cudaGetLastError(); // a failed scratch allocation leaves the first pick
  if (bestMs)
    *bestMs = best < 0 ? -1.0f : bestTime;
  if (start)
    cudaEventDestroy(start);
  if (stop)
    cudaEventDestroy(stop);
  cudaFree(scratchC);
  cudaFree(scratchD);
  return best;
}

float GemmPlan::timeOfAlgorithm(void *workspace, size_t workspaceBytes) const {
  cublasLtMatmulHeuristicResult_t picked{};
  picked.algo = algo_;
  float ms = -1.0f;
  fastest(&picked, 1, workspace, workspaceBytes, &ms);
  return ms;
}

StatusOr<std::unique_ptr<GemmPlan>>
GemmPlan::createFp8Lt(cublasLtHandle_t handle, const GemmDesc &desc, Elem elem,
                      size_t workspaceBytes, void *tuneWorkspace, int tuneCandidates,
                      const Fp8Scales &scales) {
  auto fast = createLt(handle, desc, elem, workspaceBytes, tuneWorkspace, tuneCandidates,
                       &scales);
  if (!fast || !scales.fastAccumulation || !tunedGemm(desc, tuneWorkspace, tuneCandidates))
    return fast;
  Fp8Scales summedInF32 = scales;
  summedInF32.fastAccumulation = false;
  auto promoted = createLt(handle, desc, elem, workspaceBytes, tuneWorkspace, tuneCandidates,
                           &summedInF32);
  if (!promoted)
    return fast;
  const float fastMs = (*fast)->timeOfAlgorithm(tuneWorkspace, workspaceBytes),
              promotedMs = (*promoted)->timeOfAlgorithm(tuneWorkspace, workspaceBytes);
  return promotedMs >= 0 && (fastMs < 0 || promotedMs < fastMs) ? std::move(promoted)
                                                                 : std::move(fast);
}

bool GemmPlan::canPickGreedy(const void *logits, int64_t rows, int64_t vocab) const {
  return gemvParts_.size() == 1 && !gemvParts_[0].gate && gemvParts_[0].c == logits &&
         desc_.m == rows && gemvParts_[0].n == vocab;
}

bool GemmPlan::shareFp8Activations(GemmPlan &next) {
  if (!fp8_ || !fp8_->rowScales || !next.fp8_ || !next.fp8_->rowScales || next.fp8Head_ ||
      next.fp8_->a != fp8_->a || next.fp8_->m != fp8_->m || next.fp8_->k != fp8_->k ||
      next.fp8_->out != fp8_->out)
    return false;
  GemmPlan *head = fp8Head_ ? fp8Head_ : this;
  Fp8Activations &made = *head->fp8_;
  if (next.fp8_->fillCount > 0) {
    // Its weights' vector moves past the ones the head's launch fills.
    const Fp8ScaleFill own = next.fp8_->fills[0];
    if (made.fillCount == kFp8ScaleFills ||
        made.floatsEnd - made.freeFloats < roundUp(own.n, 64))
      return false;
    const void *slot = made.freeFloats;
    if (cublasLtMatmulDescSetAttribute(next.op_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &slot,
                                       sizeof slot) != CUBLAS_STATUS_SUCCESS)
      return false;
    made.fills[made.fillCount++] = {own.tensorScale, own.n, made.freeFloats};
    made.freeFloats += roundUp(own.n, 64);
  }
  next.fp8_->quantize = false;
  next.fp8Head_ = head;
  return true;
}

const char *GemmPlan::quantizedRoute() const {
  if (sparse_)
    return "2:4 cuSPARSELt";
  if (desc_.aRowScales)
    return "fp8 GEMM, e4m3 A from its kernel";
  if (fp8_)
    return fp8_->rowScales ? "fp8 GEMM, row scales" : "fp8 GEMM";
  if (dequant_)
    return "dequantized";
  return !gemvParts_.empty() && gemvParts_[0].quant.quantized() ? "GEMV" : nullptr;
}

Status GemmPlan::run(void *workspace, size_t workspaceBytes,
                     cudaStream_t stream) const {
  if (!gemvParts_.empty()) {
    gemvParts(elem_, desc_.a, gemvParts_.data(), static_cast<int>(gemvParts_.size()),
              desc_.m, desc_.k, gemvWeightsConstant_, stream, prefetch_,
              pick_ ? &*pick_ : nullptr);
    return Status::ok();
  }
  if (sparse_)
    return sparse_->run(desc_.a, desc_.residual, desc_.c, stream);
  if (dequant_)
    dequantize(elem_, dequant_->q, dequant_->quant, dequant_->n, dequant_->k, dequant_->out,
               stream);
  if (fp8_ && fp8_->rowScales && fp8_->quantize)
    quantizeFp8Rows(fp8_->a, fp8_->m, fp8_->k, fp8_->out, fp8_->rowScales, fp8_->fills,
                    fp8_->fillCount, stream);
  else if (fp8_ && !fp8_->rowScales)
    quantizeFp8(fp8_->a, fp8_->m * fp8_->k, fp8_->out, fp8_->partials, fp8_->scale,
                fp8_->multiprocessors, stream);
  float alpha = desc_.alpha;
  const void *cPointer = beta_ != 0.0f ? desc_.residual : desc_.c;
  if (Status s = lt(cublasLtMatmul(handle_, op_, &alpha, desc_.b, a_, desc_.a, b_,
                                   &beta_, cPointer, c_, desc_.c, c_, &algo_,
                                   workspace, workspaceBytes, stream),
                    "matmul");
      !s)
    return s;
  if (followUp_) {
    // Merged batches: the activated ones lead, spaced strideC apart.
    int64_t batches = desc_.activatedBatches < 0 ? desc_.batch : desc_.activatedBatches;
    const Elem cElem = desc_.wideC ? Elem::F32 : elem_;
    if (desc_.batch == 1 || desc_.strideC == desc_.m * desc_.n) {
      activationResidual(cElem, desc_.c, desc_.residual, desc_.activation,
                         batches * desc_.m * desc_.n, stream);
    } else {
      for (int64_t i = 0; i < batches; ++i)
        activationResidual(cElem, static_cast<char *>(desc_.c) + i * desc_.strideC * bytesOf(cElem),
                           desc_.residual ? static_cast<const char *>(desc_.residual) +
                                                i * desc_.strideC * bytesOf(cElem)
                                          : nullptr,
                           desc_.activation, desc_.m * desc_.n, stream);
    }
  }
  return Status::ok();
}

} // namespace gai::cuda
