// One quantized GEMM through the CUDA backend against the host's product
// with the dequantized weights, in double: int8, int4 (groups of 16 to
// 128), fp8 per tensor and per row; decode rows (the quantized GEMV) and
// prefill rows (cuBLASLt over dequantized weights, or its fp8 GEMM); bias,
// residual and activations, a gate, f32 residual streams and f32 models;
// and 2:4 sparse weights (the GEMV reads bf16 ones as stored; prefill
// rows and f32 values go through cuSPARSELt or the dense scratch).
// Each tolerance is the rounding the route does (its step name says which).
#include "QuantizedHarness.h"

namespace gai {
namespace {

enum class Epilogue { None, BiasSilu, ResidualGelu, BiasResidualRelu, Wide, Gated };

struct QuantCase {
  Quant kind;
  int64_t m, n, k, group; // group: int4's
  Epilogue epilogue = Epilogue::None;
  bool bf16 = true;
  int64_t skewA = 0; // bytes past A's 256-byte alignment
};

int activationOf(Epilogue e) {
  switch (e) {
  case Epilogue::BiasSilu:
  case Epilogue::Gated: return 1;
  case Epilogue::ResidualGelu: return 3;
  case Epilogue::BiasResidualRelu: return 4;
  default: return 0;
  }
}

double activate(double x, int activation) {
  switch (activation) {
  case 1: return x / (1.0 + std::exp(-x));
  case 3:
    return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  case 4: return std::max(x, 0.0);
  default: return x;
  }
}

/// A's values as cuBLASLt's fp8 GEMM sees them: each run of `span` values
/// (all of A, or a row) scaled by 448 / its amax into e4m3 (saturating, to
/// nearest even), times amax / 448, as quantizeFp8 and quantizeFp8Rows.
std::vector<double> asFp8(const std::vector<float> &a, size_t span) {
  std::vector<double> out(a.size());
  for (size_t start = 0; start < a.size(); start += span) {
    float amax = 0.0f;
    for (size_t i = start; i < start + span; ++i)
      amax = std::max(amax, std::fabs(a[i]));
    const float inverse = amax > 0.0f ? 448.0f / amax : 1.0f;
    const float scale = amax > 0.0f ? amax / 448.0f : 1.0f;
    for (size_t i = start; i < start + span; ++i)
      out[i] = e4m3Value(__nv_cvt_float_to_fp8(a[i] * inverse, __NV_SATFINITE, __NV_E4M3)) *
               double(scale);
  }
  return out;
}

class CudaQuantizedGemm : public ::testing::TestWithParam<QuantCase> {};

TEST_P(CudaQuantizedGemm, MatchesTheDequantizedProduct) {
  SKIP_WITHOUT_GPU();
  const QuantCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.m * 131 + c.n * 7 + c.k * 3 + c.group +
                                         static_cast<int>(c.kind) * 1000 +
                                         static_cast<int>(c.epilogue) * 17));
  const bool gated = c.epilogue == Epilogue::Gated, wide = c.epilogue == Epilogue::Wide;
  const bool bias = c.epilogue == Epilogue::BiasSilu || c.epilogue == Epilogue::BiasResidualRelu;
  const bool residual = wide || c.epilogue == Epilogue::ResidualGelu ||
                        c.epilogue == Epilogue::BiasResidualRelu;
  const DType dtype = c.bf16 ? DType::BF16 : DType::F32, cType = wide ? DType::F32 : dtype;
  const auto arena = format::Space::Arena;
  Spaces spaces;
  std::vector<float> a = bf16Normals(rng, c.m * c.k), biasValues = bf16Normals(rng, c.n),
                     residualValues = bf16Normals(rng, c.m * c.n);
  if (wide) // residuals off the bf16 grid
    for (float &r : residualValues)
      r *= 1.0f + 1.0f / 1024;
  const bool sparse = c.kind == Quant::Sparse24;
  const QuantizedMatrix up = quantizedMatrix(c.kind, c.n, c.k, c.group, rng, !c.bf16);
  // An fp8 gate may be scaled per row under an up product scaled per tensor.
  const QuantizedMatrix gate =
      gated ? quantizedMatrix(c.kind == Quant::Fp8Tensor ? Quant::Fp8Row : c.kind, c.n, c.k,
                              c.group, rng, !c.bf16)
            : QuantizedMatrix{};

  cmd::Gemm g;
  g.a = spaces.floats(arena, a, dtype, c.skewA);
  placeWeights(spaces, g, up, c.kind, c.group, false);
  if (gated)
    placeWeights(spaces, g, gate, c.kind, c.group, true);
  g.c = spaces.floats(arena, std::vector<float>(c.m * c.n, NAN), cType);
  if (bias)
    g.bias = spaces.floats(format::Space::Weights, biasValues, dtype);
  if (residual)
    g.residual = spaces.floats(arena, residualValues, cType);
  g.m = c.m;
  g.n = c.n;
  g.k = c.k;
  g.transposeB = true;
  g.dtype = c.bf16 ? format::DType::BF16 : format::DType::F32;
  g.activation = static_cast<format::Activation>(activationOf(c.epilogue));
  g.wideC = wide;
  Recorder recorder(spaces);
  Status s = recorder.record({g});
  ASSERT_TRUE(s.isOk()) << s.message();
  s = recorder.run();
  ASSERT_TRUE(s.isOk()) << s.message();

  const std::string route = recorder.entry().stepNames.at(0);
  const bool gemv = route.find("(GEMV)") != std::string::npos,
             fp8Rows = route.find("(fp8 GEMM, row scales)") != std::string::npos,
             fp8 = fp8Rows || route.find("(fp8 GEMM)") != std::string::npos;
  // The GEMV unpacks 2:4 values into bf16 only.
  EXPECT_EQ(gemv, c.m <= cuda::kGemvRows && c.skewA % 16 == 0 && (!sparse || c.bf16)) << route;
  if (!gemv && !fp8)
    EXPECT_TRUE(route.find("(dequantized)") != std::string::npos ||
                (sparse && route.find("(2:4 cuSPARSELt)") != std::string::npos))
        << route;
  if (sparse && !gemv) // which prefill route the library took
    std::printf("%s\n", route.c_str());
  // The plain fp8 product on Hopper must be cuBLASLt's fp8 GEMM, with a
  // scale a row of A (cuBLASLt 12.9 and later).
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major >= 9 && (c.kind == Quant::Fp8Tensor || c.kind == Quant::Fp8Row) && c.bf16 &&
      !gemv && c.k % 16 == 0 && c.skewA == 0 && c.epilogue == Epilogue::None)
    EXPECT_TRUE(fp8Rows) << route;

  // What each route rounds, relative to Σ|a·w|: the GEMV and f32 cuBLASLt
  // sum exact weights in f32; dequantized bf16 weights are rounded once
  // (2^-9); the fp8 GEMM reads A quantized as the reference does, and
  // Hopper's fp8 MMA aligns a k-step's 32 products to the largest and
  // keeps about 14 bits of each (DeepSeek-V3's report): up to 32 · 2^-13
  // = 2^-8 of the step's Σ|a·w| (fp8's heavy tails make one product most
  // of it). A bf16 C is rounded once more (2^-9, 2^-8 with room); an
  // activation's slope is at most 1.2. cuBLASLt's routes leave an
  // activation it lacks (silu), or one before a residual, to a second
  // kernel, which reads act's argument as C stored it: one more rounding,
  // of the argument.
  const double sums = fp8 ? 1.0 / 256 : !gemv && c.bf16 ? 1.0 / 512 + 1e-5 : 1e-5;
  const double output = cType == DType::BF16 ? 1.0 / 256 : 1e-6;
  const int activation = activationOf(c.epilogue);
  const bool followUp = !gemv && activation != 0 && (residual || activation == 1);
  const double argument = followUp ? output : 0.0;
  const std::vector<double> aRef =
      fp8 ? asFp8(a, fp8Rows ? c.k : a.size()) : std::vector<double>(a.begin(), a.end());
  const std::vector<float> got = spaces.read(g.c, cType);
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t col = 0; col < c.n; ++col) {
      double u = 0, uSize = 0, gt = 0, gSize = 0;
      for (int64_t i = 0; i < c.k; ++i) {
        const double x = aRef[r * c.k + i];
        u += x * up.w[col * c.k + i];
        uSize += std::fabs(x * up.w[col * c.k + i]);
        if (gated) {
          gt += x * gate.w[col * c.k + i];
          gSize += std::fabs(x * gate.w[col * c.k + i]);
        }
      }
      double want, bound;
      if (gated) {
        want = activate(gt, activation) * u;
        bound = output * std::fabs(want) + sums * uSize * std::fabs(activate(gt, activation)) +
                1.2 * sums * gSize * (std::fabs(u) + sums * uSize);
      } else {
        double x = u + (bias ? biasValues[col] : 0.0);
        want = activate(x, activation) + (residual ? residualValues[r * c.n + col] : 0.0);
        bound = output * std::fabs(want) + 1.2 * (sums * uSize + argument * std::fabs(x));
      }
      ASSERT_NEAR(got[r * c.n + col], want, bound + 1e-6)
          << route << ", row " << r << " column " << col;
    }
}

// q, k and v over one A in fp8 (one scale, a scale a row, one scale): the
// first GEMM's launch makes the e4m3 A and each weight's scale vector, the
// others read them; each product is still its own.
TEST(CudaQuantizedGemmShared, Fp8GemmsOverOneAQuantizeItOnce) {
  SKIP_WITHOUT_GPU();
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major < 9)
    GTEST_SKIP() << "cuBLASLt's row-scaled fp8 GEMM needs sm_90";
  const int64_t m = 64, k = 176;
  const int64_t widths[] = {176, 48, 96};
  const Quant kinds[] = {Quant::Fp8Tensor, Quant::Fp8Row, Quant::Fp8Tensor};
  std::mt19937 rng(2024);
  Spaces spaces;
  const auto arena = format::Space::Arena;
  const std::vector<float> a = bf16Normals(rng, m * k);
  const Buffer aBuffer = spaces.floats(arena, a, DType::BF16);
  std::vector<QuantizedMatrix> weights;
  std::vector<Command> steps;
  for (int i = 0; i < 3; ++i) {
    weights.push_back(quantizedMatrix(kinds[i], widths[i], k, 0, rng));
    steps.push_back(quantizedProduct(spaces, aBuffer, weights.back(), kinds[i], 0, m,
                                     widths[i], k, DType::BF16));
  }
  Recorder recorder(spaces);
  Status s = recorder.record(steps);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(recorder.entry().gemms.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const std::string &route = recorder.entry().stepNames.at(i);
    ASSERT_NE(route.find("(fp8 GEMM, row scales)"), std::string::npos) << route;
    EXPECT_EQ(recorder.entry().gemms[i]->makesFp8Activations(), i == 0) << route;
  }
  const std::vector<double> aRef = asFp8(a, k);
  for (bool graph : {false, true}) {
    s = graph ? recorder.runGraph() : recorder.run();
    ASSERT_TRUE(s.isOk()) << s.message();
    for (int i = 0; i < 3; ++i) {
      const auto &g = std::get<cmd::Gemm>(steps[i]);
      const std::vector<float> got = spaces.read(g.c, DType::BF16);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t col = 0; col < widths[i]; ++col) {
          double want = 0, size = 0;
          for (int64_t j = 0; j < k; ++j) {
            want += aRef[r * k + j] * weights[i].w[col * k + j];
            size += std::fabs(aRef[r * k + j] * weights[i].w[col * k + j]);
          }
          // As the single GEMM's fp8 bound, with a bf16 C.
          ASSERT_NEAR(got[r * widths[i] + col], want,
                      std::fabs(want) / 256 + size / 256 + 1e-6)
              << "GEMM " << i << (graph ? " (graph)" : "") << ", row " << r << " column "
              << col;
        }
    }
  }
}

// cuBLASLt's fast fp8 accumulation (SessionOptions::fastFp8Accumulation)
// on a llama-sized prefill product: without the promotion to f32 every few
// k-steps, each of the k / 32 MMA steps may round the running sum to the
// tensor cores' ~14 bits as well as align its own products (2^-8 of the
// step's Σ|a·w|, as above). The bound is that sum of roundings; the
// measured error of both forms is printed for the record.
TEST(CudaQuantizedGemmFastAccumulation, StaysWithinTheUnpromotedSumsBound) {
  SKIP_WITHOUT_GPU();
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
  if (major < 9)
    GTEST_SKIP() << "cuBLASLt's row-scaled fp8 GEMM needs sm_90";
  const int64_t m = 256, n = 2048, k = 2048;
  std::mt19937 rng(77);
  const std::vector<float> a = bf16Normals(rng, m * k);
  const QuantizedMatrix w = quantizedMatrix(Quant::Fp8Row, n, k, 0, rng);
  const std::vector<double> aRef = asFp8(a, k);
  double worst[2] = {0, 0}, squares[2] = {0, 0};
  std::vector<float> outputs[2];
  for (bool fast : {false, true}) {
    Spaces spaces;
    cmd::Gemm g = quantizedProduct(spaces, spaces.floats(format::Space::Arena, a, DType::BF16),
                                   w, Quant::Fp8Row, 0, m, n, k, DType::F32);
    g.wideC = true; // f32 out: the sums' own error, not C's rounding
    Recorder recorder(spaces);
    recorder.setFastFp8Accumulation(fast);
    Status s = recorder.record({g});
    ASSERT_TRUE(s.isOk()) << s.message();
    const std::string route = recorder.entry().stepNames.at(0);
    ASSERT_NE(route.find("(fp8 GEMM, row scales)"), std::string::npos) << route;
    s = recorder.run();
    ASSERT_TRUE(s.isOk()) << s.message();
    const std::vector<float> &got = outputs[fast] = spaces.read(g.c, DType::F32);
    const double bound = 1.0 / 256 + static_cast<double>(k / 32) / 8192;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t col = 0; col < n; ++col) {
        double want = 0, size = 0;
        for (int64_t j = 0; j < k; ++j) {
          want += aRef[r * k + j] * w.w[col * k + j];
          size += std::fabs(aRef[r * k + j] * w.w[col * k + j]);
        }
        const double error = std::fabs(got[r * n + col] - want) / size;
        worst[fast] = std::max(worst[fast], error);
        squares[fast] += error * error;
        ASSERT_LE(error, bound) << (fast ? "fast" : "promoted") << ", row " << r
                                << " column " << col;
      }
  }
  // The option reaches cuBLASLt: the two forms do not sum alike everywhere.
  EXPECT_NE(outputs[0], outputs[1]);
  std::printf("fp8 %lldx%lldx%lld, error / sum|a*w|: promoted max %.3g rms %.3g, fast max "
              "%.3g rms %.3g\n",
              static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(k),
              worst[0], std::sqrt(squares[0] / (m * n)), worst[1],
              std::sqrt(squares[1] / (m * n)));
}

// Metadata a tampered file may hold: a group naming one slot twice keeps
// its second value there, and one naming them in reverse order places
// them so, in both decode kernels (k = 64: rows of 16-byte pieces; k = 40:
// a group a chunk), as decompress24 and the CPU read them.
TEST(CudaSparseGemv, MalformedGroupsReadAsDecompressed) {
  SKIP_WITHOUT_GPU();
  for (int64_t k : {64, 40}) {
    const int64_t m = 2, n = 48;
    std::mt19937 rng(static_cast<unsigned>(k));
    QuantizedMatrix w = quantizedMatrix(Quant::Sparse24, n, k, 0, rng);
    std::uniform_int_distribution<int> nibble(0, 15);
    for (uint8_t &byte : w.meta)
      byte = static_cast<uint8_t>(nibble(rng) | nibble(rng) << 4);
    std::vector<float> values(static_cast<size_t>(n * k / 2)), dense(static_cast<size_t>(k));
    convertFloats(w.q.data(), DType::BF16, values.data(), DType::F32, values.size());
    for (int64_t row = 0; row < n; ++row) {
      decompress24Row(values.data(), w.meta.data(), row, k, dense.data());
      std::copy(dense.begin(), dense.end(), w.w.begin() + row * k);
    }
    Spaces spaces;
    const std::vector<float> a = bf16Normals(rng, m * k);
    const cmd::Gemm g = quantizedProduct(
        spaces, spaces.floats(format::Space::Arena, a, DType::BF16), w, Quant::Sparse24, 0, m,
        n, k, DType::BF16);
    Recorder recorder(spaces);
    Status s = recorder.record({g});
    ASSERT_TRUE(s.isOk()) << s.message();
    ASSERT_NE(recorder.entry().stepNames.at(0).find("(GEMV)"), std::string::npos);
    s = recorder.run();
    ASSERT_TRUE(s.isOk()) << s.message();
    const std::vector<float> got = spaces.read(g.c, DType::BF16);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t col = 0; col < n; ++col) {
        double want = 0, size = 0;
        for (int64_t i = 0; i < k; ++i) {
          want += double(a[r * k + i]) * w.w[col * k + i];
          size += std::fabs(double(a[r * k + i]) * w.w[col * k + i]);
        }
        ASSERT_NEAR(got[r * n + col], want, std::fabs(want) / 256 + 1e-5 * size + 1e-6)
            << "k " << k << ", row " << r << " column " << col;
      }
  }
}

std::vector<QuantCase> quantCases() {
  using E = Epilogue;
  const Quant kinds[] = {Quant::Int8, Quant::Int4, Quant::Fp8Tensor, Quant::Fp8Row};
  const E epilogues[] = {E::None, E::BiasSilu, E::ResidualGelu, E::BiasResidualRelu};
  std::vector<QuantCase> cases;
  for (Quant q : kinds) {
    // Decode rows (the GEMV) and prefill rows (cuBLASLt), every epilogue:
    // k = 64 (int4: 8-byte chunks at group 64), 176 (a row of 11 16-byte
    // pieces; int4 rows of 88 bytes, groups of 16).
    int e = 0;
    for (int64_t m : {1, 3, 8, 64, 200}) {
      cases.push_back({q, m, 176, 64, 64, epilogues[e++ % 4]});
      cases.push_back({q, m, 176, 176, 16, epilogues[e++ % 4]});
    }
    // Llama-sized projections (int4: 16-byte chunks at group 128).
    cases.push_back({q, 1, 2048, 2048, 128});
    cases.push_back({q, 8, 2048, 2048, 128, E::BiasResidualRelu});
    cases.push_back({q, 200, 2048, 2048, 128, E::ResidualGelu});
    // Tiles past an H200's 132 SMs and past twice them (llama-1b's q/k/v,
    // its gate and up): the GEMV's blocks of 8 warps, two and three an SM.
    cases.push_back({q, 1, 2560, 2048, 128});
    cases.push_back({q, 2, 4608, 1024, 128, E::BiasSilu});
    cases.push_back({q, 3, 5632, 2048, 128, E::Gated});
    // A gate (decode only), an f32 residual stream.
    cases.push_back({q, 1, 176, 64, 32, E::Gated});
    cases.push_back({q, 3, 176, 176, 16, E::Gated});
    cases.push_back({q, 8, 2048, 2048, 128, E::Gated});
    cases.push_back({q, 1, 2048, 2048, 128, E::Wide});
    cases.push_back({q, 64, 176, 176, 16, E::Wide});
    // f32 models: three bf16 pieces of A in the GEMV, f32 weights beyond.
    cases.push_back({q, 1, 176, 64, 32, E::BiasSilu, false});
    cases.push_back({q, 3, 176, 176, 16, E::Gated, false});
    cases.push_back({q, 64, 176, 64, 32, E::BiasResidualRelu, false});
  }
  // int4 groups at k = 2048: 16 (one mma a quad), 32 (4-byte chunks), 64
  // (8-byte), 128 (16-byte).
  for (int64_t group : {16, 32, 64, 128})
    cases.push_back({Quant::Int4, 3, 176, 2048, group, E::BiasSilu});
  cases.push_back({Quant::Int4, 1, 2048, 2048, 16});
  cases.push_back({Quant::Int4, 1, 176, 2048, 32});
  // Rows not a multiple of 16 bytes: 4-byte chunks (k = 40), and fp8's
  // own GEMM needing k a multiple of 16 (it dequantizes instead).
  cases.push_back({Quant::Int8, 2, 176, 40, 0, E::BiasSilu});
  cases.push_back({Quant::Fp8Row, 5, 176, 40, 0});
  cases.push_back({Quant::Fp8Tensor, 64, 176, 40, 0, E::ResidualGelu});
  cases.push_back({Quant::Int4, 1, 176, 40, 8});
  // Prefill rows of A made e4m3 with each lane holding 16 or 24 of a row's
  // 8-value vectors (k = 4096, 5632), and rows past what lanes hold (8192).
  cases.push_back({Quant::Fp8Row, 200, 48, 4096, 0});
  cases.push_back({Quant::Fp8Row, 64, 176, 5632, 0});
  cases.push_back({Quant::Fp8Tensor, 64, 48, 8192, 0});
  // A not 16-byte aligned: decode rows go the prefill way.
  cases.push_back({Quant::Int4, 2, 176, 64, 32, E::None, true, 8});
  cases.push_back({Quant::Fp8Tensor, 1, 176, 64, 0, E::None, true, 8});
  // 2:4: the GEMV over bf16 values (16-byte chunks with two metadata bytes;
  // k = 40: one group a word and a nibble of metadata), every epilogue, a
  // gate, llama-1b's shapes; prefill rows, f32 values and an unaligned A
  // through cuSPARSELt or the dense scratch. A gate over f32 values is
  // never made (gai-fusion).
  const Quant s = Quant::Sparse24;
  int e = 0;
  for (int64_t m : {1, 3, 8, 64, 200}) {
    cases.push_back({s, m, 176, 64, 0, epilogues[e++ % 4]});
    cases.push_back({s, m, 176, 176, 0, epilogues[e++ % 4]});
  }
  for (QuantCase c : std::vector<QuantCase>{{s, 1, 2048, 2048, 0},
                                            {s, 8, 2048, 2048, 0, E::BiasResidualRelu},
                                            {s, 256, 2048, 2048, 0},
                                            {s, 200, 2048, 2048, 0, E::ResidualGelu},
                                            {s, 1, 2560, 2048, 0},
                                            {s, 1, 2048, 5632, 0},
                                            {s, 3, 5632, 2048, 0, E::Gated},
                                            {s, 8, 2048, 2048, 0, E::Gated},
                                            {s, 1, 176, 64, 0, E::Gated},
                                            {s, 1, 2048, 2048, 0, E::Wide},
                                            {s, 64, 176, 176, 0, E::Wide},
                                            {s, 256, 2048, 2048, 0, E::Wide},
                                            {s, 2, 176, 40, 0, E::BiasSilu},
                                            {s, 1, 176, 40, 0, E::Gated},
                                            {s, 1, 176, 64, 0, E::BiasSilu, false},
                                            {s, 64, 176, 64, 0, E::BiasResidualRelu, false},
                                            {s, 2, 176, 64, 0, E::None, true, 8}})
    cases.push_back(c);
  return cases;
}

std::string caseName(const ::testing::TestParamInfo<QuantCase> &info) {
  const QuantCase &c = info.param;
  static const char *const kEpilogues[] = {"",     "BiasSilu", "ResidualGelu", "BiasResidualRelu",
                                           "Wide", "Gated"};
  return std::string(quantName(c.kind)) + "m" + std::to_string(c.m) + "n" +
         std::to_string(c.n) + "k" + std::to_string(c.k) +
         (c.kind == Quant::Int4 ? "g" + std::to_string(c.group) : "") +
         kEpilogues[static_cast<int>(c.epilogue)] + (c.bf16 ? "" : "F32") +
         (c.skewA ? "Unaligned" : "") + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaQuantizedGemm, ::testing::ValuesIn(quantCases()),
                         caseName);

} // namespace
} // namespace gai
