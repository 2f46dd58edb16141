// A decode step's GEMMs over quantized weights, recorded by the CUDA
// backend as the executor records them: the o projection making a folded
// RMSNorm over an f32 residual stream, q/k/v reading it (one GEMV of three
// parts, each int4 part with its own group), the gated MLP, the down
// projection and the logits, whose GEMV may also pick greedy tokens. The
// step must give the same bits eagerly and as a CUDA graph (overlapped
// launches in both on sm_90), and each GEMM must match the host's product
// of what the device stored before it (NormFoldTest's way).
#include "QuantizedHarness.h"

namespace gai {
namespace {

struct DecodeCase {
  Quant kind;
  int64_t rows;
};

class CudaQuantizedDecode : public ::testing::TestWithParam<DecodeCase> {};

/// Σ a[r]·w[col] over k, in double, and the size Σ|a·w|.
std::pair<double, double> dot(const std::vector<float> &a, int64_t r,
                              const QuantizedMatrix &w, int64_t col, int64_t k) {
  double sum = 0, size = 0;
  for (int64_t i = 0; i < k; ++i) {
    const double term = double(a[r * k + i]) * w.w[col * k + i];
    sum += term;
    size += std::fabs(term);
  }
  return {sum, size};
}

TEST_P(CudaQuantizedDecode, GraphAndEagerRunsAgreeWithTheHost) {
  SKIP_WITHOUT_GPU();
  const DecodeCase c = GetParam();
  const int64_t m = c.rows, dim = 256, hidden = 512, vocab = 1000, kvDim = 128;
  const float eps = 1e-5f;
  std::mt19937 rng(static_cast<unsigned>(41 + 7 * m + static_cast<int>(c.kind)));
  const auto arena = format::Space::Arena, weights = format::Space::Weights;
  Spaces spaces;
  // int4 groups: 128, 32 and 64 for q, k and v (one launch takes the
  // narrowest chunks all three allow), 32 elsewhere.
  auto matrix = [&](int64_t n, int64_t k, int64_t group) {
    return quantizedMatrix(c.kind, n, k, group, rng);
  };
  const QuantizedMatrix o = matrix(dim, dim, 32), q = matrix(dim, dim, 128),
                        kProj = matrix(kvDim, dim, 32), v = matrix(kvDim, dim, 64),
                        gate = matrix(hidden, dim, 32), up = matrix(hidden, dim, 32),
                        down = matrix(dim, hidden, 32), head = matrix(vocab, dim, 32);
  std::vector<float> attention = bf16Normals(rng, m * dim), stream = bf16Normals(rng, m * dim),
                     normWeight = bf16Normals(rng, dim);
  for (float &x : stream) // off the bf16 grid: an f32 residual stream
    x *= 1.0f + 1.0f / 1024;

  auto gemm = [&](const QuantizedMatrix &w, int64_t group, const Buffer &a, int64_t n,
                  int64_t k, DType cType) {
    return quantizedProduct(spaces, a, w, c.kind, group, m, n, k, cType);
  };
  cmd::Fill zeroSquares;
  zeroSquares.out = spaces.put(arena, nullptr, m * 8);
  zeroSquares.dtype = format::DType::F32;
  cmd::Gemm oProj = gemm(o, 32, spaces.floats(arena, attention, DType::BF16), dim, dim,
                         DType::F32);
  oProj.residual = spaces.floats(arena, stream, DType::F32);
  oProj.wideC = true;
  oProj.normWeight = spaces.floats(weights, normWeight, DType::F32);
  oProj.normOut = spaces.floats(arena, std::vector<float>(m * dim, NAN), DType::BF16);
  oProj.normSquares = zeroSquares.out;
  auto reading = [&](cmd::Gemm g) {
    g.aSquares = zeroSquares.out;
    g.aNormEps = eps;
    return g;
  };
  cmd::Gemm qProj = reading(gemm(q, 128, oProj.normOut, dim, dim, DType::BF16)),
            kvK = reading(gemm(kProj, 32, oProj.normOut, kvDim, dim, DType::BF16)),
            kvV = reading(gemm(v, 64, oProj.normOut, kvDim, dim, DType::BF16)),
            mlp = reading(gemm(up, 32, oProj.normOut, hidden, dim, DType::BF16));
  placeWeights(spaces, mlp, gate, c.kind, 32, true);
  mlp.activation = format::Activation::Silu;
  cmd::Gemm downProj = gemm(down, 32, mlp.c, dim, hidden, DType::BF16);
  downProj.residual = oProj.normOut;
  cmd::Gemm logits = gemm(head, 32, downProj.c, vocab, dim, DType::BF16);
  const std::vector<Command> steps = {zeroSquares, oProj, qProj, kvK, kvV, mlp, downProj, logits};

  Recorder recorder(spaces);
  Status s = recorder.record(steps);
  ASSERT_TRUE(s.isOk()) << s.message();
  const auto &names = recorder.entry().stepNames;
  EXPECT_NE(names.at(2).find("with 3 parts"), std::string::npos) << names.at(2);
  for (size_t i = 1; i < steps.size(); ++i)
    if (i < 3 || i > 4)
      EXPECT_NE(names.at(i).find("(GEMV)"), std::string::npos) << names.at(i);

  // Each output with its type, cleared to NaN before each run.
  const std::vector<std::pair<Buffer, DType>> outputs = {
      {oProj.c, DType::F32},    {oProj.normOut, DType::BF16}, {qProj.c, DType::BF16},
      {kvK.c, DType::BF16},     {kvV.c, DType::BF16},         {mlp.c, DType::BF16},
      {downProj.c, DType::BF16}, {logits.c, DType::BF16}};
  auto runOnce = [&](bool graph) {
    for (const auto &[b, type] : outputs)
      cudaMemset(spaces.pointer(b), 0xff, static_cast<size_t>(b.size));
    Status st = graph ? recorder.runGraph() : recorder.run();
    EXPECT_TRUE(st.isOk()) << st.message();
    std::vector<std::vector<uint8_t>> bits;
    for (const auto &[b, type] : outputs) {
      bits.emplace_back(static_cast<size_t>(b.size));
      cudaMemcpy(bits.back().data(), spaces.pointer(b), bits.back().size(),
                 cudaMemcpyDeviceToHost);
    }
    return bits;
  };
  // The norm's sums of f32 squares may round differently as the blocks'
  // atomics land (NormFold's note); everything else is bit for bit.
  const auto eager = runOnce(false);
  std::vector<double> eagerSums(static_cast<size_t>(m));
  cudaMemcpy(eagerSums.data(), spaces.pointer(zeroSquares.out), m * 8, cudaMemcpyDeviceToHost);
  const auto graph = runOnce(true);
  const auto again = runOnce(true);
  for (size_t i = 0; i < eager.size(); ++i) {
    EXPECT_EQ(graph[i], eager[i]) << "output " << i << " differs in the graph";
    EXPECT_EQ(again[i], eager[i]) << "output " << i << " differs in the graph's second run";
  }

  // The host's products of what the device stored before each GEMM. The
  // GEMV sums exact weights in f32 (1e-5 of Σ|a·w| with room) and rounds a
  // bf16 C once (2^-9, 2^-8 with room).
  auto near = [&](float got, double want, double size, const std::string &what) {
    EXPECT_NEAR(got, want, std::fabs(want) / 256 + 1e-5 * size + 1e-6) << what;
    return std::fabs(got - want) <= std::fabs(want) / 256 + 1e-5 * size + 1e-6;
  };
  const std::vector<float> x = spaces.read(oProj.c, DType::F32),
                           normed = spaces.read(oProj.normOut, DType::BF16),
                           unit = spaces.read(mlp.c, DType::BF16),
                           projected = spaces.read(downProj.c, DType::BF16),
                           scores = spaces.read(logits.c, DType::BF16);
  std::vector<double> sums(static_cast<size_t>(m));
  cudaMemcpy(sums.data(), spaces.pointer(zeroSquares.out), m * 8, cudaMemcpyDeviceToHost);
  std::vector<double> inverseRms(static_cast<size_t>(m));
  for (int64_t r = 0; r < m; ++r) {
    double sum = 0;
    for (int64_t col = 0; col < dim; ++col) {
      auto [product, size] = dot(attention, r, o, col, dim);
      const float stored = x[r * dim + col];
      ASSERT_NEAR(stored, product + stream[r * dim + col], 1e-5 * size + 1e-6)
          << "x at " << r << ", " << col;
      sum += double(stored) * stored;
      const float scaled = stored * normWeight[col];
      ASSERT_EQ(normed[r * dim + col], bf16ToFloat(floatToBf16(scaled)))
          << "the norm's output at " << r << ", " << col;
    }
    EXPECT_NEAR(sums[r], sum, 1e-12 * sum) << "row " << r;
    EXPECT_NEAR(eagerSums[r], sums[r], 1e-14 * sum) << "row " << r;
    inverseRms[r] = 1.0 / std::sqrt(sum / dim + eps);
  }
  for (const auto &[g, w] : {std::pair{&qProj, &q}, {&kvK, &kProj}, {&kvV, &v}}) {
    const std::vector<float> got = spaces.read(g->c, DType::BF16);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t col = 0; col < g->n; ++col) {
        auto [product, size] = dot(normed, r, *w, col, dim);
        if (!near(got[r * g->n + col], product * inverseRms[r], size * inverseRms[r],
                  "a reader of the norm, n " + std::to_string(g->n)))
          return;
      }
  }
  for (int64_t r = 0; r < m; ++r)
    for (int64_t col = 0; col < hidden; ++col) {
      auto [u, uSize] = dot(normed, r, up, col, dim);
      auto [gt, gSize] = dot(normed, r, gate, col, dim);
      u *= inverseRms[r];
      gt *= inverseRms[r];
      const double silu = gt / (1.0 + std::exp(-gt));
      if (!near(unit[r * hidden + col], silu * u,
                inverseRms[r] * (uSize * std::fabs(silu) + 1.2 * gSize * std::fabs(u)),
                "the gated unit"))
        return;
    }
  for (int64_t r = 0; r < m; ++r)
    for (int64_t col = 0; col < dim; ++col) {
      auto [product, size] = dot(unit, r, down, col, hidden);
      if (!near(projected[r * dim + col], product + normed[r * dim + col], size,
                "the down projection"))
        return;
    }
  for (int64_t r = 0; r < m; ++r)
    for (int64_t col = 0; col < vocab; ++col) {
      auto [product, size] = dot(projected, r, head, col, dim);
      if (!near(scores[r * vocab + col], product, size, "the logits"))
        return;
    }

  // The logits' GEMV picks each row's first largest logit as it writes.
  cuda::GemmPlan *picker = recorder.entry().finalGemv;
  ASSERT_NE(picker, nullptr);
  ASSERT_TRUE(picker->canPickGreedy(spaces.pointer(logits.c), m, vocab));
  int32_t *tokens = nullptr, *positions = nullptr, *ring = nullptr;
  cuda::GreedyCounters *counters = nullptr;
  cudaMalloc(&tokens, m * 4);
  cudaMalloc(&positions, m * 4);
  cudaMalloc(&ring, m * 4);
  cudaMalloc(&counters, sizeof(cuda::GreedyCounters));
  cudaMemset(positions, 0, m * 4);
  cudaMemset(counters, 0, sizeof(cuda::GreedyCounters));
  picker->setGreedyPick(cuda::GreedyPick{tokens, positions, 100, ring, counters});
  s = recorder.run();
  picker->setGreedyPick(std::nullopt);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::vector<int32_t> picked(static_cast<size_t>(m));
  cudaMemcpy(picked.data(), tokens, m * 4, cudaMemcpyDeviceToHost);
  for (int64_t r = 0; r < m; ++r) {
    int64_t best = 0;
    for (int64_t col = 1; col < vocab; ++col)
      if (scores[r * vocab + col] > scores[r * vocab + best])
        best = col;
    EXPECT_EQ(picked[r], best) << "row " << r;
  }
  for (void *p : {static_cast<void *>(tokens), static_cast<void *>(positions),
                  static_cast<void *>(ring), static_cast<void *>(counters)})
    cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(Formats, CudaQuantizedDecode,
                         ::testing::Values(DecodeCase{Quant::Int8, 1}, DecodeCase{Quant::Int4, 1},
                                           DecodeCase{Quant::Fp8Tensor, 1},
                                           DecodeCase{Quant::Fp8Row, 1},
                                           DecodeCase{Quant::Int4, 4},
                                           DecodeCase{Quant::Int8, 8}),
                         [](const ::testing::TestParamInfo<DecodeCase> &info) {
                           return std::string(quantName(info.param.kind)) +
                                  std::to_string(info.param.rows) + "Rows";
                         });

} // namespace
} // namespace gai
