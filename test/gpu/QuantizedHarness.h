// Quantized GEMMs through the CUDA backend, for the gpu tests: weights in
// each format with their host dequantization, device memory standing in for
// an executor's spaces, and a recorder that records cmd::Gemm steps the way
// the executor does and runs them eagerly or as a CUDA graph.
#ifndef GAI_TEST_GPU_QUANTIZEDHARNESS_H
#define GAI_TEST_GPU_QUANTIZEDHARNESS_H

#include "GpuTest.h"
#include "hal/cuda/CudaBackend.h"

#include <cuda_fp8.h>

#include <cstring>
#include <functional>
#include <string>

namespace gai {

/// How a test's weights are stored; fp8 scaled per tensor or per row;
/// 2:4 sparse (kept values in the GEMM's type).
enum class Quant { Int8, Int4, Fp8Tensor, Fp8Row, Sparse24 };

inline const char *quantName(Quant q) {
  switch (q) {
  case Quant::Int8: return "Int8";
  case Quant::Int4: return "Int4";
  case Quant::Fp8Tensor: return "Fp8Tensor";
  case Quant::Fp8Row: return "Fp8Row";
  case Quant::Sparse24: return "Sparse24";
  }
  return "?";
}

inline format::WeightFormat formatOf(Quant q) {
  switch (q) {
  case Quant::Int8: return format::WeightFormat::Int8;
  case Quant::Int4: return format::WeightFormat::Int4;
  case Quant::Sparse24: return format::WeightFormat::Sparse24;
  default: return format::WeightFormat::Fp8E4M3;
  }
}

/// An e4m3fn byte's value (no infinities; 0x7F and 0xFF are NaN).
inline double e4m3Value(uint8_t byte) {
  const double sign = byte & 0x80 ? -1.0 : 1.0;
  const int exponent = byte >> 3 & 0xF, mantissa = byte & 7;
  if (exponent == 0)
    return sign * mantissa / 8.0 * std::ldexp(1.0, -6);
  if (exponent == 15 && mantissa == 7)
    return NAN;
  return sign * (1.0 + mantissa / 8.0) * std::ldexp(1.0, exponent - 7);
}

/// One quantized matrix [n, k] as the artifact stores it, and its values.
struct QuantizedMatrix {
  std::vector<uint8_t> q;    // [n, k] (int4: [n, k / 2])
  std::vector<float> scale;  // [n, k / group] int4, [n] or [1]
  std::vector<uint8_t> zero; // int4: [n, k / group]
  std::vector<uint8_t> meta; // 2:4: [n, k / 8] (q: kept values [n, k / 2])
  std::vector<double> w;     // dequantized, [n, k]
};

/// Random weights of about unit size in `kind`; int4 with `group`; 2:4
/// values in bf16, or f32 with `f32Values`.
inline QuantizedMatrix quantizedMatrix(Quant kind, int64_t n, int64_t k, int64_t group,
                                       std::mt19937 &rng, bool f32Values = false) {
  QuantizedMatrix m;
  std::uniform_int_distribution<int> byte(0, 255), nibble(0, 15);
  std::uniform_real_distribution<float> spread(0.5f, 1.5f);
  m.w.resize(static_cast<size_t>(n * k));
  switch (kind) {
  case Quant::Int8:
    m.q.resize(static_cast<size_t>(n * k));
    for (int64_t j = 0; j < n; ++j) {
      m.scale.push_back(spread(rng) / 64.0f);
      for (int64_t i = 0; i < k; ++i) {
        const auto v = static_cast<int8_t>(byte(rng));
        m.q[j * k + i] = static_cast<uint8_t>(v);
        m.w[j * k + i] = double(v) * m.scale[j];
      }
    }
    break;
  case Quant::Int4: {
    const int64_t groups = k / group;
    m.q.assign(static_cast<size_t>(n * k / 2), 0);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t t = 0; t < groups; ++t) {
        m.scale.push_back(spread(rng) / 4.0f);
        m.zero.push_back(static_cast<uint8_t>(nibble(rng)));
      }
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i) {
        const int v = nibble(rng);
        m.q[(j * k + i) / 2] |= static_cast<uint8_t>(i % 2 ? v << 4 : v);
        const int64_t at = j * groups + i / group;
        m.w[j * k + i] = (v - double(m.zero[at])) * m.scale[at];
      }
    break;
  }
  case Quant::Fp8Tensor:
  case Quant::Fp8Row:
    m.q.resize(static_cast<size_t>(n * k));
    for (int64_t j = 0; j < (kind == Quant::Fp8Row ? n : 1); ++j)
      m.scale.push_back(spread(rng) / 128.0f);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = 0; i < k; ++i) {
        int b;
        do
          b = byte(rng);
        while ((b & 0x7F) == 0x7F); // NaN
        m.q[j * k + i] = static_cast<uint8_t>(b);
        m.w[j * k + i] =
            e4m3Value(static_cast<uint8_t>(b)) * m.scale[kind == Quant::Fp8Row ? j : 0];
      }
    break;
  case Quant::Sparse24: {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> dense(static_cast<size_t>(n * k));
    for (float &x : dense)
      x = bf16ToFloat(floatToBf16(normal(rng)));
    const Sparse24Weight s = compress24(dense.data(), n, k);
    prune24(dense.data(), n, k);
    m.w.assign(dense.begin(), dense.end());
    m.meta = s.meta;
    m.q.resize(s.values.size() * (f32Values ? 4 : 2));
    convertFloats(s.values.data(), DType::F32, m.q.data(), f32Values ? DType::F32 : DType::BF16,
                  s.values.size());
    break;
  }
  }
  return m;
}

/// Device memory standing in for an executor's weights and arena: buffers
/// placed one after another, 256-byte aligned plus `skew` bytes.
class Spaces {
public:
  static constexpr int64_t kBytes = 96 << 20;
  Spaces() {
    EXPECT_EQ(cudaMalloc(&weights_, kBytes), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&arena_, kBytes), cudaSuccess);
  }
  ~Spaces() {
    cudaFree(weights_);
    cudaFree(arena_);
  }
  Spaces(const Spaces &) = delete;
  Spaces &operator=(const Spaces &) = delete;

  Buffer put(format::Space space, const void *bytes, int64_t size, int64_t skew = 0) {
    int64_t &next = space == format::Space::Weights ? nextWeights_ : nextArena_;
    Buffer b{space, next + skew, size};
    next = (next + skew + size + 255) / 256 * 256;
    EXPECT_LE(next, kBytes) << "the test's spaces are too small";
    if (bytes)
      cudaMemcpy(pointer(b), bytes, static_cast<size_t>(size), cudaMemcpyHostToDevice);
    return b;
  }
  template <typename T>
  Buffer put(format::Space space, const std::vector<T> &v, int64_t skew = 0) {
    return put(space, v.data(), static_cast<int64_t>(v.size() * sizeof(T)), skew);
  }
  /// Floats stored as `dtype` (f32 or bf16).
  Buffer floats(format::Space space, const std::vector<float> &v, DType dtype,
                int64_t skew = 0) {
    std::vector<uint8_t> bytes(v.size() * (dtype == DType::BF16 ? 2 : 4));
    convertFloats(v.data(), DType::F32, bytes.data(), dtype, v.size());
    return put(space, bytes, skew);
  }
  std::vector<float> read(const Buffer &b, DType dtype) const {
    const int64_t elementBytes = dtype == DType::BF16 ? 2 : 4;
    return downloadAs(pointer(b), dtype, static_cast<size_t>(b.size / elementBytes));
  }
  uint8_t *pointer(const Buffer &b) const {
    return (b.space == format::Space::Weights ? weights_ : arena_) + b.offset;
  }

private:
  uint8_t *weights_ = nullptr, *arena_ = nullptr;
  int64_t nextWeights_ = 0, nextArena_ = 0;
};

/// Weights of `kind` placed in the weights space: b (or gate) with its
/// scales and zeros set on `g`.
inline void placeWeights(Spaces &spaces, cmd::Gemm &g, const QuantizedMatrix &m, Quant kind,
                         int64_t group, bool gate) {
  const auto weights = format::Space::Weights;
  g.weightFormat = formatOf(kind);
  g.group = kind == Quant::Int4 ? group : 0;
  (gate ? g.gate : g.b) = spaces.put(weights, m.q);
  if (kind == Quant::Sparse24) {
    (gate ? g.gateMeta : g.bMeta) = spaces.put(weights, m.meta);
    return;
  }
  (gate ? g.gateScale : g.bScale) = spaces.put(weights, m.scale);
  if (kind == Quant::Int4)
    (gate ? g.gateZero : g.bZero) = spaces.put(weights, m.zero);
}

/// C[m, n] = A·dequant(W)ᵀ over bf16 `a` (a buffer of `spaces`) and `w`
/// placed as `kind`, into a new NaN-filled C of `cType` in the arena.
inline cmd::Gemm quantizedProduct(Spaces &spaces, const Buffer &a, const QuantizedMatrix &w,
                                  Quant kind, int64_t group, int64_t m, int64_t n, int64_t k,
                                  DType cType) {
  cmd::Gemm g;
  g.a = a;
  placeWeights(spaces, g, w, kind, group, false);
  g.c = spaces.floats(format::Space::Arena, std::vector<float>(m * n, NAN), cType);
  g.m = m;
  g.n = n;
  g.k = k;
  g.transposeB = true;
  g.dtype = format::DType::BF16;
  return g;
}

/// The backend's device resources and a recorded entry over `spaces`.
class Recorder {
public:
  explicit Recorder(Spaces &spaces) : spaces_(spaces) {
    EXPECT_EQ(cublasLtCreate(&lt_), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(cudaMalloc(&workspace_, kWorkspaceBytes), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&error_, sizeof(cuda::ErrorWord)), cudaSuccess);
    cudaMemset(error_, 0, sizeof(cuda::ErrorWord));
    cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    int device = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&resources_.multiprocessors, cudaDevAttrMultiProcessorCount, device);
  }
  ~Recorder() {
    if (graph_)
      cudaGraphExecDestroy(graph_);
    cudaStreamDestroy(stream_);
    cudaFree(scratch_);
    cudaFree(workspace_);
    cudaFree(error_);
    cublasLtDestroy(lt_);
  }
  Recorder(const Recorder &) = delete;
  Recorder &operator=(const Recorder &) = delete;

  /// Records `steps` as the executor does, with the quantized GEMMs'
  /// scratch sized as the executor sizes it.
  Status record(const std::vector<Command> &steps) {
    int64_t scratchBytes = 0;
    for (const Command &c : steps)
      if (const auto *g = std::get_if<cmd::Gemm>(&c))
        scratchBytes = std::max(scratchBytes, cuda::quantScratchBytes(*g));
    if (scratchBytes > 0 && cudaMalloc(&scratch_, static_cast<size_t>(scratchBytes)) != cudaSuccess)
      return Status::error("no memory for the scratch");
    resources_.lt = lt_;
    resources_.gemmWorkspace = workspace_;
    resources_.gemmWorkspaceBytes = kWorkspaceBytes;
    resources_.error = error_;
    resources_.gemmTuneCandidates = 0;
    resources_.quantScratch = {scratch_, scratchBytes, fastFp8Accumulation_};
    cuda::CudaBackend backend(resources_, [this](const Buffer &b) { return spaces_.pointer(b); },
                              entry_);
    return backend.recordAll(steps);
  }
  /// fp8 GEMMs recorded after this sum as SessionOptions::fastFp8Accumulation says.
  void setFastFp8Accumulation(bool fast) { fastFp8Accumulation_ = fast; }
  /// Runs the recorded steps on the stream, then waits for them.
  Status run() {
    if (Status s = enqueue(); !s)
      return s;
    return synchronize();
  }
  /// The same steps captured as a CUDA graph (once), then launched.
  Status runGraph() {
    if (!graph_) {
      cudaGraph_t graph = nullptr;
      if (cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal) != cudaSuccess)
        return Status::error("capture did not begin");
      Status s = enqueue();
      if (cudaStreamEndCapture(stream_, &graph) != cudaSuccess || !s)
        return Status::error("capture failed: " + s.message());
      cudaError_t e = cudaGraphInstantiate(&graph_, graph, 0);
      cudaGraphDestroy(graph);
      if (e != cudaSuccess)
        return Status::error(std::string("instantiating: ") + cudaGetErrorString(e));
    }
    if (cudaGraphLaunch(graph_, stream_) != cudaSuccess)
      return Status::error("graph launch failed");
    return synchronize();
  }
  const cuda::RecordedEntry &entry() const { return entry_; }
  cuda::RecordedEntry &entry() { return entry_; }
  cudaStream_t stream() const { return stream_; }

private:
  static constexpr size_t kWorkspaceBytes = 32 << 20;
  Status enqueue() {
    for (const auto &step : entry_.steps)
      if (Status s = step(stream_); !s)
        return s;
    return Status::ok();
  }
  Status synchronize() {
    cudaError_t e = cudaStreamSynchronize(stream_);
    if (e == cudaSuccess)
      e = cudaGetLastError();
    return e == cudaSuccess ? Status::ok()
                            : Status::error(std::string("running: ") + cudaGetErrorString(e));
  }
  Spaces &spaces_;
  cublasLtHandle_t lt_ = nullptr;
  void *workspace_ = nullptr, *scratch_ = nullptr;
  bool fastFp8Accumulation_ = false;
  cuda::ErrorWord *error_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cuda::CudaResources resources_;
  cuda::RecordedEntry entry_;
  cudaGraphExec_t graph_ = nullptr;
};

} // namespace gai

#endif // GAI_TEST_GPU_QUANTIZEDHARNESS_H
