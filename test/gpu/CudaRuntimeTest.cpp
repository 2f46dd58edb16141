// The CUDA backend end to end: artifacts gaic compiled for --target=cuda
// (compile-artifacts.sh) run on the GPU and reproduce what Hugging Face
// transformers computed for each fixture; and the attention kernels agree
// with the CPU's at prefill sizes the fixtures do not reach. Needs only the
// runtime, so it runs on GPU machines without MLIR. Skips without a GPU.
#include "core/Executor.h"
#include "core/StepOverlap.h"
#include "gai/FloatConvert.h"
#include "gai/Generate.h"
#include "gai/Session.h"
#include "gai/Train.h"
#include "../TrainFixture.h"
#include "GpuArtifacts.h"
#include "GpuTest.h"
#include "hal/cpu/Kernels.h"
#include "hal/cuda/Gemm.h"
#include "hal/cuda/Kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <random>

using namespace gai;

namespace {

std::unique_ptr<Session> open(const std::string &name) { return openArtifact(name); }

/// transformers' logits and greedy tokens for a family's tiny fixture.
StatusOr<SafetensorsFile> expectedOf(const std::string &family) {
  return SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) + "/hf/" + family +
                               "-tiny/expected.safetensors");
}

std::vector<float> floatsOf(const TensorRef &t) {
  std::vector<float> out(static_cast<size_t>(t.numElements()));
  convertFloats(t.data, t.dtype, out.data(), DType::F32, out.size());
  return out;
}

using Case = std::tuple<const char *, const char *>; // family, dtype
class CudaNumerics : public ::testing::TestWithParam<Case> {};

TEST_P(CudaNumerics, ForwardLogitsMatchTransformers) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  auto expected = expectedOf(family);
  ASSERT_TRUE(expected.isOk()) << expected.status().message();
  auto session = open(std::string(family) + "-" + dtype + "-forward.gai");
  ASSERT_TRUE(session);
  std::vector<int32_t> ids = idsOf(*expected->find("input_ids"));
  TensorRef in = session->inputs("forward").at(0);
  ASSERT_EQ(in.numElements(), static_cast<int64_t>(ids.size()));
  std::copy(ids.begin(), ids.end(), in.as<int32_t>());
  // Twice: the second run replays the CUDA graph and must agree.
  for (int run = 0; run < 2; ++run) {
    Status s = session->run("forward");
    ASSERT_TRUE(s.isOk()) << s.message();
    std::vector<float> got = floatsOf(session->outputs("forward").at(0));
    const TensorView &want = *expected->find("logits");
    ASSERT_EQ(static_cast<int64_t>(got.size()), want.numElements());
    const auto *w = reinterpret_cast<const float *>(want.data);
    double maxDiff = 0, maxWant = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << family << " " << dtype << " at " << i;
      maxDiff = std::max(maxDiff, std::abs(double(got[i]) - w[i]));
      maxWant = std::max(maxWant, std::abs(double(w[i])));
    }
    if (std::string(dtype) == "f32")
      EXPECT_LE(maxDiff, 1e-4) << family;
    else
      EXPECT_LE(maxDiff / maxWant, 2e-2) << family;
    if (run == 1)
      std::printf("%s %s on %s: max |logits - transformers| = %.2e (relative %.2e)\n",
                  family, dtype, session->deviceName().c_str(), maxDiff,
                  maxDiff / maxWant);
  }
}

// Chunked prefill and decode over the KV cache, two prompts of different
// lengths in one batch, every decode step after the first a graph replay.
TEST_P(CudaNumerics, GreedyGenerationMatchesTransformers) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  auto expected = expectedOf(family);
  ASSERT_TRUE(expected.isOk());
  std::vector<int32_t> prompt = idsOf(*expected->find("prompt_ids"));
  std::vector<int32_t> greedy = idsOf(*expected->find("greedy_ids"));
  auto session = open(std::string(family) + "-" + dtype + "-generate.gai");
  ASSERT_TRUE(session);
  GenerateOptions options;
  options.maxNewTokens = static_cast<int64_t>(greedy.size() - prompt.size());
  std::vector<int32_t> shortPrompt(prompt.begin(), prompt.begin() + 5);
  auto both = generate(*session, {prompt, shortPrompt}, options);
  ASSERT_TRUE(both.isOk()) << both.status().message();
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), (*both)[0].begin(), (*both)[0].end());
  if (std::string(dtype) == "f32")
    EXPECT_EQ(full, greedy) << family;
  auto alone = generate(*session, {shortPrompt}, options);
  ASSERT_TRUE(alone.isOk()) << alone.status().message();
  EXPECT_EQ((*alone)[0], (*both)[1]) << family << " " << dtype;
}

// Greedy decoding on the device (chunks of steps, each argmax fed to the
// next step without the host) picks the host's tokens: to the end of the
// context (32), a stop token mid-chunk, and two rows of different lengths.
TEST_P(CudaNumerics, DeviceGreedyDecodingPicksTheHostsTokens) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  auto expected = expectedOf(family);
  ASSERT_TRUE(expected.isOk());
  std::vector<int32_t> prompt = idsOf(*expected->find("prompt_ids"));
  std::vector<int32_t> shortPrompt(prompt.begin(), prompt.begin() + 5);
  auto session = open(std::string(family) + "-" + dtype + "-generate.gai");
  ASSERT_TRUE(session);
  ASSERT_GT(session->greedyStepsAtOnce(), 1);
  GenerateOptions host;
  host.maxNewTokens = 1000; // the context ends the rows
  host.greedyOnDevice = false;
  GenerateOptions device = host;
  device.greedyOnDevice = true;
  auto want = generate(*session, {prompt, shortPrompt}, host);
  auto got = generate(*session, {prompt, shortPrompt}, device);
  ASSERT_TRUE(want.isOk()) << want.status().message();
  ASSERT_TRUE(got.isOk()) << got.status().message();
  EXPECT_EQ(*got, *want) << family << " " << dtype;
  EXPECT_EQ((*got)[1].size(), 32u - shortPrompt.size() + 1);

  // Stop at the short row's 7th token: it ends there (or earlier, where the
  // token came before), inside the first chunk.
  host.stopTokens = device.stopTokens = {(*want)[1][6]};
  want = generate(*session, {prompt, shortPrompt}, host);
  got = generate(*session, {prompt, shortPrompt}, device);
  ASSERT_TRUE(want.isOk() && got.isOk());
  EXPECT_EQ(*got, *want) << family << " " << dtype;
  EXPECT_LE((*got)[1].size(), 7u);
  EXPECT_EQ((*got)[1].back(), host.stopTokens[0]);

  auto tooMany = session->decodeGreedy("decode", session->greedyStepsAtOnce() + 1, 31);
  ASSERT_FALSE(tooMany.isOk());
  EXPECT_NE(tooMany.status().message().find("greedy steps at once"), std::string::npos);
}

// A token id outside the vocabulary is reported by the device, with the
// step, instead of reading past the table.
TEST(CudaErrors, BadTokenIdIsReported) {
  SKIP_WITHOUT_GPU();
  auto session = open("llama-f32-forward.gai");
  ASSERT_TRUE(session);
  TensorRef in = session->inputs("forward").at(0);
  std::fill_n(in.as<int32_t>(), in.numElements(), 1);
  in.as<int32_t>()[3] = 1 << 20;
  Status s = session->run("forward");
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("token id 1048576 is outside the vocabulary"),
            std::string::npos)
      << s.message();
  in.as<int32_t>()[3] = 1; // and the session recovers
  Status again = session->run("forward");
  EXPECT_TRUE(again.isOk()) << again.message();
}

// Attention kernels against the CPU kernel on the same (bf16-rounded)
// inputs: prefill sizes (the tensor-core flash kernel), decode with split
// keys, GQA, windows and per-row start positions.
struct AttentionCase {
  int64_t batch, heads, kvHeads, queries, keys, dim;
  bool causal;
  int64_t window;
  bool starts; // per-row query starts (a cache) rather than keys - queries
  bool bf16;
  float softcap = 0.0f; // Gemma 2's c·tanh(s / c) on the scaled scores
};

class CudaAttention : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(CudaAttention, MatchesTheCpuKernel) {
  SKIP_WITHOUT_GPU();
  const AttentionCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.queries * 131 + c.keys + c.dim));
  auto make = [&](int64_t n) { return bf16Normals(rng, n); };
  int64_t qn = c.batch * c.heads * c.queries * c.dim,
          kn = c.batch * c.kvHeads * c.keys * c.dim;
  std::vector<float> q = make(qn), k = make(kn), v = make(kn);
  std::vector<int32_t> starts;
  for (int64_t b = 0; b < c.batch; ++b)
    starts.push_back(static_cast<int32_t>((c.keys - c.queries) * (b + 1) / c.batch));

  cpu::AttentionArgs ref;
  ref.q = q.data();
  ref.k = k.data();
  ref.v = v.data();
  std::vector<float> want(static_cast<size_t>(qn));
  ref.out = want.data();
  describeAttention(ref, c, c.causal, c.starts ? starts.data() : nullptr);
  cpu::attention(ref);

  size_t elem = c.bf16 ? 2 : 4;
  DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  void *dq = uploadAs(q, dtype), *dk = uploadAs(k, dtype), *dv = uploadAs(v, dtype),
       *dout = nullptr;
  cudaMalloc(&dout, qn * elem);
  int32_t *dstarts = nullptr;
  cudaMalloc(&dstarts, starts.size() * 4);
  cudaMemcpy(dstarts, starts.data(), starts.size() * 4, cudaMemcpyHostToDevice);
  cuda::ErrorWord *error = nullptr;
  cudaMalloc(&error, sizeof(cuda::ErrorWord));
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));

  cuda::AttentionParams p{};
  p.q = dq;
  p.k = dk;
  p.v = dv;
  p.out = dout;
  describeAttention(p, c, c.causal, c.starts ? dstarts : nullptr);
  cudaDeviceProp props{};
  cudaGetDeviceProperties(&props, 0);
  int splits = cuda::attentionSplits(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, p,
                                     props.multiProcessorCount);
  float *workspace = nullptr;
  int64_t floats = cuda::attentionWorkspaceFloats(p, splits);
  if (floats) {
    cudaMalloc(&workspace, floats * 4);
    cudaMemset(workspace, 0, floats * 4); // the split counters start at zero
  }
  // Twice: a split launch must leave its counters ready for the next. A
  // third time on mma.sync alone, where the flash kernel runs on wgmma.
  for (int launch = 0; launch < 3; ++launch) {
    p.mmaSyncOnly = launch == 2;
    cudaMemset(dout, 0xff, qn * elem); // NaN: every element must be written
    cuda::attention(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, p, splits, workspace,
                    error, 0, nullptr);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<uint8_t> bytes(qn * elem);
    cudaMemcpy(bytes.data(), dout, bytes.size(), cudaMemcpyDeviceToHost);
    cuda::ErrorWord word{};
    cudaMemcpy(&word, error, sizeof word, cudaMemcpyDeviceToHost);
    EXPECT_EQ(word.flag, 0);
    std::vector<float> got(static_cast<size_t>(qn));
    convertFloats(bytes.data(), dtype, got.data(), DType::F32, got.size());
    double num = 0, den = 0;
    for (int64_t i = 0; i < qn; ++i) {
      ASSERT_TRUE(std::isfinite(got[i])) << "element " << i << " not written, launch " << launch;
      num += (got[i] - want[i]) * double(got[i] - want[i]);
      den += double(want[i]) * want[i];
    }
    double relative = std::sqrt(num / den);
    EXPECT_LE(relative, c.bf16 ? 1e-2 : 1e-5) << "queries " << c.queries << " keys "
                                             << c.keys << " dim " << c.dim << " splits "
                                             << splits << " launch " << launch;
  }
  for (void *ptr : {dq, dk, dv, dout, static_cast<void *>(dstarts),
                    static_cast<void *>(error), static_cast<void *>(workspace)})
    cudaFree(ptr);
}

// The decode GEMV against a double-precision host product: the unrolled
// weight stream and its remainder (k = 2056 is 8 chunks of 256 plus one;
// 16400 streams 16 unrolled rounds), several rows, bias, activation and residual, and up to 4 parts in one
// launch (part p: n + 7p columns, the activation switched on every other
// part), as the executor runs q/k/v and gate/up.
struct GemvCase {
  int64_t m, n, k;
  int activation; // of part 0
  bool bias, residual, bf16;
  int parts;
};

class CudaGemv : public ::testing::TestWithParam<GemvCase> {};

TEST_P(CudaGemv, MatchesTheHostProduct) {
  SKIP_WITHOUT_GPU();
  const GemvCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.m * 7 + c.n * 13 + c.k + c.parts));
  auto make = [&](int64_t count) { return bf16Normals(rng, count); };
  DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  std::vector<void *> buffers;
  auto upload = [&](const std::vector<float> &host) {
    buffers.push_back(uploadAs(host, dtype));
    return buffers.back();
  };
  std::vector<float> a = make(c.m * c.k);
  void *da = upload(a);
  std::vector<cuda::GemvPart> parts;
  std::vector<std::vector<double>> wants;
  for (int p = 0; p < c.parts; ++p) {
    int64_t n = c.n + 7 * p;
    int activation = (c.activation + p) % 2; // 0 none, 1 silu
    std::vector<float> w = make(n * c.k), bias = make(n), residual = make(c.m * n);
    std::vector<double> want(static_cast<size_t>(c.m * n));
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t col = 0; col < n; ++col) {
        double x = 0;
        for (int64_t i = 0; i < c.k; ++i)
          x += double(a[r * c.k + i]) * w[col * c.k + i];
        if (c.bias)
          x += bias[col];
        if (activation == 1)
          x = x / (1.0 + std::exp(-x));
        if (c.residual)
          x += residual[r * n + col];
        want[r * n + col] = x;
      }
    wants.push_back(std::move(want));
    void *dw = upload(w), *dbias = upload(bias), *dres = upload(residual);
    void *dc = upload(std::vector<float>(static_cast<size_t>(c.m * n), NAN));
    parts.push_back(cuda::GemvPart{dw, dc, c.bias ? dbias : nullptr,
                                   c.residual ? dres : nullptr, n, activation});
  }
  cuda::gemvParts(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, da, parts.data(),
                  c.parts, c.m, c.k, /*constantWeights=*/true, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  // f32 sums in a different order; bf16 also rounds the result.
  double bound = c.bf16 ? 1e-2 : 1e-5;
  size_t elem = c.bf16 ? 2 : 4;
  for (int p = 0; p < c.parts; ++p) {
    const std::vector<double> &want = wants[p];
    std::vector<uint8_t> bytes(want.size() * elem);
    cudaMemcpy(bytes.data(), parts[p].c, bytes.size(), cudaMemcpyDeviceToHost);
    std::vector<float> got(want.size());
    convertFloats(bytes.data(), dtype, got.data(), DType::F32, got.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i],
                  bound * (1.0 + std::fabs(want[i]) + std::sqrt(double(c.k))))
          << "part " << p << " row " << i / parts[p].n << " column " << i % parts[p].n;
  }
  for (void *ptr : buffers)
    cudaFree(ptr);
}

// A gated GEMV (decode's SwiGLU or GeGLU, one launch streaming both weight
// rows of a column) against act(A·Gᵀ) ⊙ (A·Uᵀ) on the host in double:
// rows, the unrolled stream's remainders (k = 2056, 5632) and both types.
struct GatedGemvCase {
  int64_t m, n, k;
  int activation; // as in the artifact: 1 silu, 3 gelu_tanh
  bool bf16;
};

class CudaGatedGemv : public ::testing::TestWithParam<GatedGemvCase> {};

TEST_P(CudaGatedGemv, MatchesTheHostUnit) {
  SKIP_WITHOUT_GPU();
  const GatedGemvCase c = GetParam();
  std::mt19937 rng(static_cast<unsigned>(c.m * 5 + c.n * 11 + c.k));
  auto make = [&](int64_t count) { return bf16Normals(rng, count); };
  DType dtype = c.bf16 ? DType::BF16 : DType::F32;
  std::vector<float> a = make(c.m * c.k), gate = make(c.n * c.k), up = make(c.n * c.k);
  auto act = [&](double x) {
    if (c.activation == 1)
      return x / (1.0 + std::exp(-x));
    return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
  };
  // f32 sums differ from these in order, by about sqrt(k)·eps a term; each
  // scales with the other factor. bf16 also rounds the result.
  std::vector<double> want(static_cast<size_t>(c.m * c.n)), tolerance(want.size());
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t col = 0; col < c.n; ++col) {
      double g = 0, u = 0;
      for (int64_t i = 0; i < c.k; ++i) {
        g += double(a[r * c.k + i]) * gate[col * c.k + i];
        u += double(a[r * c.k + i]) * up[col * c.k + i];
      }
      double x = act(g) * u;
      want[r * c.n + col] = x;
      tolerance[r * c.n + col] =
          c.bf16 ? 1e-2 * (1.0 + std::fabs(x))
                 : 1e-5 * (1.0 + std::fabs(x) +
                           std::sqrt(double(c.k)) * (std::fabs(act(g)) + std::fabs(u)));
    }
  void *da = uploadAs(a, dtype), *dg = uploadAs(gate, dtype), *du = uploadAs(up, dtype);
  void *dc = uploadAs(std::vector<float>(want.size(), NAN), dtype);
  cuda::GemvPart part{du, dc, nullptr, nullptr, c.n, c.activation, dg};
  cuda::gemvParts(c.bf16 ? cuda::Elem::BF16 : cuda::Elem::F32, da, &part, 1, c.m, c.k,
                  /*constantWeights=*/true, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got = downloadAs(dc, dtype, want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tolerance[i]) << "row " << i / c.n << " column " << i % c.n;
  for (void *ptr : {da, dg, du, dc})
    cudaFree(ptr);
}

// The GEMV loads constant weights before the kernel before it finishes (on
// sm_90 it starts early), but its activations only after: here they are
// the last row of a 64 MB transpose launched just before it.
TEST(CudaGemv, ReadsActivationsOnlyAfterTheKernelBefore) {
  SKIP_WITHOUT_GPU();
  const int64_t k = 2048, rows = 16384, n = 512;
  std::mt19937 rng(7);
  std::vector<float> source = bf16Normals(rng, k * rows), w = bf16Normals(rng, n * k);
  void *dsource = uploadAs(source, DType::BF16), *dw = uploadAs(w, DType::BF16);
  void *dtransposed = nullptr, *dc = nullptr;
  cudaMalloc(&dtransposed, k * rows * 2);
  cudaMemset(dtransposed, 0, k * rows * 2);
  cudaMalloc(&dc, n * 2);
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  // [k, rows] → [rows, k]: the activations are source's last column.
  cuda::Shape shape{{k, rows}, 2}, perm{{1, 0}, 2};
  cuda::transpose(dsource, dtransposed, 2, shape, perm, stream);
  const void *a = static_cast<const uint8_t *>(dtransposed) + (rows - 1) * k * 2;
  cuda::GemvPart part{dw, dc, nullptr, nullptr, n, 0};
  cuda::gemvParts(cuda::Elem::BF16, a, &part, 1, 1, k, /*constantWeights=*/true, stream);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  std::vector<uint16_t> bits(static_cast<size_t>(n));
  cudaMemcpy(bits.data(), dc, n * 2, cudaMemcpyDeviceToHost);
  for (int64_t col = 0; col < n; ++col) {
    double want = 0;
    for (int64_t i = 0; i < k; ++i)
      want += double(source[i * rows + rows - 1]) * w[col * k + i];
    ASSERT_NEAR(bf16ToFloat(bits[col]), want, 1e-2 * (1.0 + std::fabs(want) + std::sqrt(double(k))))
        << "column " << col;
  }
  cudaStreamDestroy(stream);
  for (void *ptr : {dsource, dw, dtransposed, dc})
    cudaFree(ptr);
}

// A decode GEMV may pull the next attention's cache into L2 before its
// wait (GemvPrefetch): a hint that must leave the product bit for bit as
// it was, here with regions of odd sizes and more 16 KB chunks (10) than
// the GEMV has blocks (8).
TEST(CudaGemv, CachePrefetchLeavesTheProductAlone) {
  SKIP_WITHOUT_GPU();
  const int64_t k = 2048, n = 64;
  std::mt19937 rng(11);
  std::vector<float> a = bf16Normals(rng, k), w = bf16Normals(rng, n * k);
  void *da = uploadAs(a, DType::BF16), *dw = uploadAs(w, DType::BF16);
  const int64_t keyBytes = 100 * 1024 + 48, valueBytes = 40000;
  void *keys = nullptr, *values = nullptr, *plain = nullptr, *hinted = nullptr;
  cudaMalloc(&keys, keyBytes);
  cudaMalloc(&values, valueBytes);
  cudaMalloc(&plain, n * 2);
  cudaMalloc(&hinted, n * 2);
  cuda::GemvPart part{dw, plain, nullptr, nullptr, n, 0};
  cuda::gemvParts(cuda::Elem::BF16, da, &part, 1, 1, k, /*constantWeights=*/true, nullptr);
  cuda::GemvPrefetch prefetch;
  prefetch.region[0] = keys;
  prefetch.region[1] = values;
  prefetch.bytes[0] = keyBytes;
  prefetch.bytes[1] = valueBytes;
  part.c = hinted;
  cuda::gemvParts(cuda::Elem::BF16, da, &part, 1, 1, k, /*constantWeights=*/true, nullptr,
                  prefetch);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> want(n), got(n);
  cudaMemcpy(want.data(), plain, n * 2, cudaMemcpyDeviceToHost);
  cudaMemcpy(got.data(), hinted, n * 2, cudaMemcpyDeviceToHost);
  EXPECT_EQ(got, want);
  double first = 0;
  for (int64_t i = 0; i < k; ++i)
    first += double(a[i]) * w[i];
  EXPECT_NEAR(bf16ToFloat(got[0]), first, 1e-2 * (1.0 + std::fabs(first) + std::sqrt(double(k))));
  for (void *ptr : {da, dw, keys, values, plain, hinted})
    cudaFree(ptr);
}

// A layer's key and value cache writes in one launch: each row lands at
// its own position in both caches, the other slots keep their bytes, and a
// position past the end is reported, with nothing written.
TEST(CudaCacheWrite, TwoCachesInOneLaunch) {
  SKIP_WITHOUT_GPU();
  const int64_t batch = 2, heads = 3, slots = 10, tokens = 2, dim = 64;
  const int64_t cacheCount = batch * heads * slots * dim, updateCount = batch * heads * tokens * dim;
  std::vector<float> cacheK(cacheCount), cacheV(cacheCount), updateK(updateCount),
      updateV(updateCount);
  for (int64_t i = 0; i < cacheCount; ++i) {
    cacheK[i] = static_cast<float>(i % 97);
    cacheV[i] = -static_cast<float>(i % 89);
  }
  for (int64_t i = 0; i < updateCount; ++i) {
    updateK[i] = 1000.0f + i;
    updateV[i] = 5000.0f + i;
  }
  void *dk = uploadAs(cacheK, DType::BF16), *dv = uploadAs(cacheV, DType::BF16),
       *uk = uploadAs(updateK, DType::BF16), *uv = uploadAs(updateV, DType::BF16);
  std::vector<int32_t> starts = {3, 8};
  int32_t *dstarts = nullptr;
  cudaMalloc(&dstarts, 8);
  cudaMemcpy(dstarts, starts.data(), 8, cudaMemcpyHostToDevice);
  cuda::ErrorWord *error = nullptr;
  cudaMalloc(&error, sizeof(cuda::ErrorWord));
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));
  cuda::CacheWrite writes[2] = {{dk, uk}, {dv, uv}};
  cuda::cacheWrite(cuda::Elem::BF16, writes, 2, dstarts, batch, heads, slots, tokens, dim,
                   error, 7, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  auto download = [&](void *p) {
    std::vector<uint16_t> bits(static_cast<size_t>(cacheCount));
    cudaMemcpy(bits.data(), p, bits.size() * 2, cudaMemcpyDeviceToHost);
    std::vector<float> out(bits.size());
    convertFloats(bits.data(), DType::BF16, out.data(), DType::F32, out.size());
    return out;
  };
  std::vector<float> gotK = download(dk), gotV = download(dv);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t s = 0; s < slots; ++s)
        for (int64_t d = 0; d < dim; ++d) {
          int64_t at = ((b * heads + h) * slots + s) * dim + d, t = s - starts[b];
          bool written = t >= 0 && t < tokens;
          int64_t from = ((b * heads + h) * tokens + t) * dim + d;
          float wantK = written ? bf16ToFloat(floatToBf16(updateK[from])) : cacheK[at];
          float wantV = written ? bf16ToFloat(floatToBf16(updateV[from])) : cacheV[at];
          ASSERT_EQ(gotK[at], wantK) << "k at " << at;
          ASSERT_EQ(gotV[at], wantV) << "v at " << at;
        }
  cuda::ErrorWord word{};
  cudaMemcpy(&word, error, sizeof word, cudaMemcpyDeviceToHost);
  EXPECT_EQ(word.flag, 0);

  // Row 1 at slot 9 of 10 with 2 tokens: past the end.
  starts[1] = 9;
  cudaMemcpy(dstarts, starts.data(), 8, cudaMemcpyHostToDevice);
  cuda::cacheWrite(cuda::Elem::BF16, writes, 2, dstarts, batch, heads, slots, tokens, dim,
                   error, 7, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaMemcpy(&word, error, sizeof word, cudaMemcpyDeviceToHost);
  EXPECT_EQ(word.flag, cuda::kBadCacheWrite);
  EXPECT_EQ(word.step, 7);
  EXPECT_EQ(word.a, 1);
  EXPECT_EQ(word.b, 9);
  EXPECT_EQ(download(dv)[((1 * heads + 0) * slots + 9) * dim], gotV[((1 * heads + 0) * slots + 9) * dim]);
  for (void *ptr : {dk, dv, uk, uv, static_cast<void *>(dstarts), static_cast<void *>(error)})
    cudaFree(ptr);
}

// Which consecutive GEMMs the CUDA executor runs as one launch. Host logic
// on made-up addresses: runs without a GPU.
cuda::GemmDesc gemmAt(uintptr_t a, uintptr_t b, uintptr_t c, int64_t m, int64_t n,
                      int64_t k, int activation = 0) {
  cuda::GemmDesc d;
  d.a = reinterpret_cast<const void *>(a);
  d.b = reinterpret_cast<const void *>(b);
  d.c = reinterpret_cast<void *>(c);
  d.m = m;
  d.n = n;
  d.k = k;
  d.transposeB = true;
  d.activation = activation;
  return d;
}

/// A cuBLASLt handle and workspace for GemmPlan tests, and the buffers of
/// C = A·Wᵀ + residual (A [m, k] and W [n, k] bf16; the residual and C, NaN
/// until written, in `cType`).
struct LtProduct {
  cublasLtHandle_t lt = nullptr;
  static constexpr size_t kWorkspaceBytes = 32 << 20;
  void *workspace = nullptr;
  std::vector<void *> buffers;
  cuda::GemmDesc desc;

  LtProduct(const std::vector<float> &a, const std::vector<float> &w,
            const std::vector<float> &residual, int64_t m, int64_t n, int64_t k, DType cType) {
    cublasLtCreate(&lt);
    cudaMalloc(&workspace, kWorkspaceBytes);
    buffers = {uploadAs(a, DType::BF16), uploadAs(w, DType::BF16), uploadAs(residual, cType),
               uploadAs(std::vector<float>(m * n, NAN), cType)};
    desc.a = buffers[0];
    desc.b = buffers[1];
    desc.residual = buffers[2];
    desc.c = buffers[3];
    desc.m = m;
    desc.n = n;
    desc.k = k;
    desc.transposeB = true;
  }
  ~LtProduct() {
    for (void *p : buffers)
      cudaFree(p);
    cudaFree(workspace);
    if (lt)
      cublasLtDestroy(lt);
  }
  bool ready() const { return lt && workspace; }
};

// An f32 residual stream over bf16 GEMMs (GemmDesc::wideC), through
// cuBLASLt (64 rows) and our GEMV (1 row), with and without an activation
// (cuBLASLt then adds the residual in the follow-up kernel): C is the f32
// sum of the residual and the product, never rounded to bf16. Without a
// residual (a first micro-batch's weight gradient, `gai.gemm ... wide`),
// C is the f32 product alone.
TEST(CudaGemm, WideResidualStaysF32) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(17);
  for (bool withResidual : {true, false})
    for (int64_t m : {64, 1})
      for (int activation : {0, 1}) {
        const int64_t n = 96, k = 256;
        std::vector<float> a = bf16Normals(rng, m * k), w = bf16Normals(rng, n * k),
                           residual = bf16Normals(rng, m * n);
        for (float &r : residual) // off the bf16 grid
          r *= 1.0f + 1.0f / 1024;
        LtProduct product(a, w, residual, m, n, k, DType::F32);
        ASSERT_TRUE(product.ready());
        cuda::GemmDesc &d = product.desc;
        d.activation = activation;
        d.constantB = true;
        d.wideC = true;
        if (!withResidual)
          d.residual = nullptr;
        auto plan =
            cuda::GemmPlan::create(product.lt, d, cuda::Elem::BF16, product.kWorkspaceBytes);
        ASSERT_TRUE(plan.isOk()) << plan.status().message();
        Status s = (*plan)->run(product.workspace, product.kWorkspaceBytes, nullptr);
        ASSERT_TRUE(s.isOk()) << s.message();
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<float> got = downloadAs(d.c, DType::F32, m * n);
        int64_t offGrid = 0;
        for (int64_t r = 0; r < m; ++r)
          for (int64_t col = 0; col < n; ++col) {
            double x = 0, size = 0;
            for (int64_t i = 0; i < k; ++i) {
              x += double(a[r * k + i]) * w[col * k + i];
              size += std::fabs(double(a[r * k + i]) * w[col * k + i]);
            }
            if (activation == 1)
              x = x / (1.0 + std::exp(-x));
            const double added = withResidual ? residual[r * n + col] : 0.0;
            const float c = got[r * n + col];
            ASSERT_NEAR(c, x + added, 1e-5 * (size + std::fabs(added)))
                << m << " rows, activation " << activation << ", residual " << withResidual
                << ", at " << r << ", " << col;
            offGrid += bf16ToFloat(floatToBf16(c)) != c;
          }
        EXPECT_GT(offGrid, m * n * 9 / 10)
            << m << " rows, activation " << activation << ", residual " << withResidual;
      }
}

// A prefill-sized GEMM times cuBLASLt's candidates when planned with a
// workspace: the trials write scratch outputs, never C (which may be state,
// such as a gradient accumulated into), and the algorithm kept computes
// the product.
TEST(CudaGemm, TunedPlanLeavesItsOutputAloneAndComputesTheProduct) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 512, n = 1024, k = 1024; // 1.07 GFLOP: tuned
  std::mt19937 rng(23);
  std::vector<float> a = bf16Normals(rng, m * k), w = bf16Normals(rng, n * k),
                     residual = bf16Normals(rng, m * n);
  LtProduct product(a, w, residual, m, n, k, DType::BF16);
  ASSERT_TRUE(product.ready());
  const cuda::GemmDesc &d = product.desc;
  auto plan = cuda::GemmPlan::create(product.lt, d, cuda::Elem::BF16, product.kWorkspaceBytes,
                                     product.workspace);
  ASSERT_TRUE(plan.isOk()) << plan.status().message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (float c : downloadAs(d.c, DType::BF16, m * n))
    ASSERT_TRUE(std::isnan(c)) << "a trial wrote the plan's C";
  EXPECT_EQ(downloadAs(d.residual, DType::BF16, m * n), residual);
  Status s = (*plan)->run(product.workspace, product.kWorkspaceBytes, nullptr);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got = downloadAs(d.c, DType::BF16, m * n);
  for (int64_t at = 0; at < m * n; at += 97) {
    int64_t r = at / n, col = at % n;
    double want = residual[at], size = std::fabs(want);
    for (int64_t i = 0; i < k; ++i) {
      want += double(a[r * k + i]) * w[col * k + i];
      size += std::fabs(double(a[r * k + i]) * w[col * k + i]);
    }
    ASSERT_NEAR(got[at], want, 1e-2 * std::fabs(want) + 1e-5 * size) << r << ", " << col;
  }
}

TEST(CudaGemmMerge, DecodeProjectionsOfOneInputShareAGemv) {
  // q, k, v of one normalised row; then o reads the attention output.
  std::vector<cuda::GemmDesc> run = {gemmAt(0x1000, 0x100000, 0x2000, 1, 2048, 2048),
                                     gemmAt(0x1000, 0x900000, 0x3000, 1, 256, 2048),
                                     gemmAt(0x1000, 0xa00000, 0x3200, 1, 256, 2048),
                                     gemmAt(0x2000, 0xb00000, 0x4000, 1, 2048, 2048)};
  cuda::GemmMerge merge = cuda::mergeGemms(run, cuda::Elem::BF16);
  EXPECT_TRUE(merge.gemv);
  EXPECT_EQ(merge.count, 3u);
}

TEST(CudaGemmMerge, AGemmReadingAnEarlierOutputStaysApart) {
  std::vector<cuda::GemmDesc> run = {gemmAt(0x1000, 0x100000, 0x2000, 1, 64, 64),
                                     gemmAt(0x1000, 0x200000, 0x3000, 1, 64, 64)};
  run[1].residual = reinterpret_cast<const void *>(0x2000); // the first one's C
  EXPECT_EQ(cuda::mergeGemms(run, cuda::Elem::BF16).count, 1u);
  run[1].residual = nullptr;
  run[1].c = reinterpret_cast<void *>(0x2040); // overlapping outputs
  EXPECT_EQ(cuda::mergeGemms(run, cuda::Elem::BF16).count, 1u);
}

TEST(CudaGemmMerge, EvenlySpacedPrefillGemmsBecomeOneBatch) {
  // gate (silu) and up, weights and outputs one after the other.
  const int64_t m = 2048, n = 5632, k = 2048, eb = 2;
  std::vector<cuda::GemmDesc> run = {
      gemmAt(0x10000000, 0x40000000, 0x20000000, m, n, k, 1),
      gemmAt(0x10000000, 0x40000000 + n * k * eb, 0x20000000 + m * n * eb, m, n, k, 0)};
  cuda::GemmMerge merge = cuda::mergeGemms(run, cuda::Elem::BF16);
  ASSERT_EQ(merge.count, 2u);
  EXPECT_FALSE(merge.gemv);
  EXPECT_EQ(merge.batched.batch, 2);
  EXPECT_EQ(merge.batched.strideA, 0);
  EXPECT_EQ(merge.batched.strideB, n * k);
  EXPECT_EQ(merge.batched.strideC, m * n);
  EXPECT_EQ(merge.batched.activatedBatches, 1); // silu on gate only

  // The activation must lead: up then gate is two launches.
  std::swap(run[0].activation, run[1].activation);
  EXPECT_EQ(cuda::mergeGemms(run, cuda::Elem::BF16).count, 1u);
  // Different widths (q beside k) are two launches.
  run[1].activation = 0;
  run[1].n = 256;
  EXPECT_EQ(cuda::mergeGemms(run, cuda::Elem::BF16).count, 1u);
}

/// An int4 (or `format`) decode GEMM at made-up addresses.
cuda::GemmDesc quantizedAt(uintptr_t a, uintptr_t b, uintptr_t c, int64_t m, int64_t n,
                           cuda::WeightFormat format = cuda::WeightFormat::Int4) {
  cuda::GemmDesc d = gemmAt(a, b, c, m, n, 2048);
  d.quant.format = format;
  d.quant.group = 128;
  return d;
}

TEST(CudaGemmMerge, QuantizedProjectionsShareAGemvOfOneFormat) {
  // q, k, v in int4 (weights 4-byte aligned, not 16: the GEMV reads words),
  // then one in int8, then one in bf16.
  std::vector<cuda::GemmDesc> run = {
      quantizedAt(0x1000, 0x100004, 0x20000, 1, 2048),
      quantizedAt(0x1000, 0x900004, 0x30000, 1, 256),
      quantizedAt(0x1000, 0xa00004, 0x32000, 1, 256),
      quantizedAt(0x1000, 0xb00000, 0x34000, 1, 256, cuda::WeightFormat::Int8),
      quantizedAt(0x1000, 0xc00000, 0x36000, 1, 256, cuda::WeightFormat::Float)};
  cuda::GemmMerge merge = cuda::mergeGemms(run, cuda::Elem::BF16);
  EXPECT_TRUE(merge.gemv);
  EXPECT_EQ(merge.count, 3u);
  merge = cuda::mergeGemms({run.begin() + 3, run.end()}, cuda::Elem::BF16);
  EXPECT_TRUE(merge.gemv);
  EXPECT_EQ(merge.count, 1u);
}

TEST(CudaGemmMerge, QuantizedPrefillGemmsStayApart) {
  // gate and up of a prefill, weights one after the other: float ones
  // would be one strided batch, quantized ones are dequantized one by one.
  const int64_t m = 2048, n = 5632;
  std::vector<cuda::GemmDesc> run = {
      quantizedAt(0x10000000, 0x40000000, 0x20000000, m, n),
      quantizedAt(0x10000000, 0x40000000 + n * 1024, 0x20000000 + m * n * 2, m, n)};
  EXPECT_EQ(cuda::mergeGemms(run, cuda::Elem::BF16).count, 1u);
}

// Training on the GPU from the fixture weights: the 50 AdamW steps that
// PyTorch took in fp32 (test/fixtures/make_train_fixtures.py). In f32 the
// losses agree as closely as on the CPU; in bf16 (bf16 compute, f32 master
// weights, gradients and moments) within bf16's precision, and the
// optimizer's state stays f32. The others rotate the q and k gradients
// token-major (the default); the `transposed` artifacts rotate them before
// their head transposes (gaic --rope-token-major=false).
class CudaTraining : public ::testing::TestWithParam<Case> {};

TEST_P(CudaTraining, FiftyAdamWStepsMatchPyTorch) {
  SKIP_WITHOUT_GPU();
  auto [family, dtype] = GetParam();
  bool bf16 = std::string(dtype).rfind("bf16", 0) == 0; // bf16-fused too
  auto fixture = SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) + "/hf/" + family +
                                       "-tiny/train.safetensors");
  ASSERT_TRUE(fixture.isOk()) << fixture.status().message();
  OptimizerOptions o = fixtureOptimizerOptions(*fixture);
  auto session = open(std::string(family) + "-" + dtype + "-train.gai");
  ASSERT_TRUE(session);
  // The fused form's bf16 weight copies are made from the f32 masters.
  for (const TensorRef &t : session->stateTensors())
    if (t.name.rfind("cache.", 0) != 0)
      EXPECT_EQ(t.dtype, t.role == TensorRole::ParameterCopy ? DType::BF16 : DType::F32)
          << t.name;
  auto trainer = Trainer::create(*session, o);
  ASSERT_TRUE(trainer.isOk()) << trainer.status().message();
  std::vector<int32_t> batches = idsOf(*fixture->find("steps.tokens")),
                       labels = idsOf(*fixture->find("steps.targets"));
  const auto *losses = reinterpret_cast<const float *>(fixture->find("steps.loss")->data);
  double worst = 0;
  for (int64_t step = 0; step < o.totalSteps; ++step) {
    auto result = trainer->trainStep({batches.data() + step * 32}, {labels.data() + step * 32});
    ASSERT_TRUE(result.isOk()) << result.status().message();
    EXPECT_FALSE(result->skipped);
    double relative = std::abs(result->loss - losses[step]) / std::abs(losses[step]);
    worst = std::max(worst, relative);
    EXPECT_LE(relative, bf16 ? 5e-3 : 1e-4)
        << "step " << step << ": " << result->loss << " vs PyTorch's " << losses[step];
  }
  std::printf("%s %s on %s: 50 steps, worst relative loss difference to PyTorch fp32 %.3g\n",
              family, dtype, session->deviceName().c_str(), worst);
}

/// llama-tiny's fused bf16 training artifact, its trainer and the
/// training fixture's batch.
class CudaFusedUpdate : public ::testing::Test {
protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    auto opened = SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) +
                                        "/hf/llama-tiny/train.safetensors");
    ASSERT_TRUE(opened.isOk()) << opened.status().message();
    fixture = std::make_unique<SafetensorsFile>(std::move(opened.value()));
    session = open("llama-bf16-fused-train.gai");
    ASSERT_TRUE(session);
    auto made = Trainer::create(*session, fixtureOptimizerOptions(*fixture));
    ASSERT_TRUE(made.isOk()) << made.status().message();
    trainer = std::make_unique<Trainer>(std::move(made.value()));
    tokens = idsOf(*fixture->find("tokens"));
    targets = idsOf(*fixture->find("targets"));
  }
  std::unique_ptr<SafetensorsFile> fixture;
  std::unique_ptr<Session> session;
  std::unique_ptr<Trainer> trainer;
  std::vector<int32_t> tokens, targets;
};

// A fused update's non-finite step (an infinite norm weight: a NaN loss)
// keeps every parameter and moment as it was, on the device's own decision.
TEST_F(CudaFusedUpdate, NonFiniteStepKeepsTheState) {
  ASSERT_TRUE(trainer->trainStep({tokens.data()}, {targets.data()}).isOk());
  const std::string poisoned = "param.model.norm.weight";
  std::map<std::string, std::vector<float>> before;
  for (const TensorRef &r : session->stateTensors()) {
    if (r.name.rfind("cache.", 0) == 0)
      continue;
    ASSERT_NE(r.name.rfind("grad.", 0), 0u) << "a fused update keeps no " << r.name;
    std::vector<float> v(static_cast<size_t>(r.numElements()));
    ASSERT_TRUE(session->readState(r.name, v.data()).isOk());
    if (r.name == poisoned) {
      v[0] = INFINITY;
      ASSERT_TRUE(session->writeState(r.name, v.data()).isOk());
    }
    before[r.name] = std::move(v);
  }
  ASSERT_EQ(before.count(poisoned), 1u);
  auto result = trainer->trainStep({tokens.data()}, {targets.data()});
  ASSERT_TRUE(result.isOk()) << result.status().message();
  EXPECT_TRUE(result->skipped);
  for (auto &[name, values] : before) {
    std::vector<float> now(values.size());
    ASSERT_TRUE(session->readState(name, now.data()).isOk());
    ASSERT_EQ(std::memcmp(now.data(), values.data(), values.size() * 4), 0)
        << name << " changed on a skipped step";
  }
}

// The fused step's bf16 weight copies (state the update writes beside each
// master): after three steps each is its master rounded to bf16, to the
// bit; masters written from the host get new copies before the next entry.
TEST_F(CudaFusedUpdate, Bf16CopiesFollowTheirMasters) {
  ASSERT_FALSE(paramCopies(*session).empty());
  for (int step = 0; step < 3; ++step)
    ASSERT_TRUE(trainer->trainStep({tokens.data()}, {targets.data()}).isOk());
  expectCopiesOfMasters(*session, "after 3 steps");
  halveMastersWithCopies(*session);
  ASSERT_TRUE(session->run("eval_loss").isOk());
  EXPECT_TRUE(copyMarkSurvives(*session)) << "the entry did not make the copies again";
  expectCopiesOfMasters(*session, "after the masters were written", 1);
}

/// Three fused steps of `name` from llama-tiny's training fixture
/// (`tokens` its tokens, or other ids), with the fixed-order kernels and
/// cuBLASLt's first pick: the losses, and the state's bytes by name.
struct ThreeSteps {
  std::vector<double> losses;
  std::map<std::string, std::vector<uint8_t>> state;
};
void trainThreeSteps(const std::string &name, SessionOptions options,
                     const std::vector<int32_t> &tokens, ThreeSteps &out) {
  auto fixture =
      SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) + "/hf/llama-tiny/train.safetensors");
  ASSERT_TRUE(fixture.isOk()) << fixture.status().message();
  std::vector<int32_t> targets = idsOf(*fixture->find("targets"));
  options.deterministic = true;
  options.gemmTuneCandidates = 0;
  auto session = openArtifact(name, "cuda", options);
  ASSERT_TRUE(session);
  auto trainer = Trainer::create(*session, fixtureOptimizerOptions(*fixture));
  ASSERT_TRUE(trainer.isOk()) << trainer.status().message();
  for (int step = 0; step < 3; ++step) {
    auto result = trainer->trainStep({tokens.data()}, {targets.data()});
    ASSERT_TRUE(result.isOk()) << result.status().message();
    out.losses.push_back(result->loss);
  }
  for (const TensorRef &t : session->stateTensors()) {
    if (t.name.rfind("cache.", 0) == 0)
      continue;
    std::vector<uint8_t> bytes(static_cast<size_t>(t.numElements() * dtypeSize(t.dtype)));
    ASSERT_TRUE(session->readState(t.name, bytes.data()).isOk());
    out.state[t.name] = std::move(bytes);
  }
}

void expectSameSteps(const ThreeSteps &a, const ThreeSteps &b, const std::string &what) {
  EXPECT_EQ(b.losses, a.losses) << what;
  ASSERT_EQ(b.state.size(), a.state.size());
  for (const auto &[tensor, bytes] : a.state)
    EXPECT_TRUE(b.state.at(tensor) == bytes) << tensor << " differs: " << what;
}

std::vector<int32_t> fixtureTokens() {
  auto fixture =
      SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) + "/hf/llama-tiny/train.safetensors");
  return fixture.isOk() ? idsOf(*fixture->find("tokens")) : std::vector<int32_t>();
}

// The weight gradients' GEMMs and their squared sums on the beside stream
// (core/StepOverlap.h): three fused steps repeat the one-stream run to the
// bit, with the fixed-order kernels and cuBLASLt's first pick in both.
TEST(CudaBesideSteps, RepeatTheOneStreamRunToTheBit) {
  SKIP_WITHOUT_GPU();
  const std::string name = "llama-bf16-fused-train.gai";
  auto artifact = LoadedArtifact::load(artifactsDir() + "/" + name);
  ASSERT_TRUE(artifact.isOk()) << artifact.status().message();
  size_t besideSteps = 0;
  for (const DecodedEntry &entry : artifact->entries())
    for (bool beside : stepsBeside(entry.steps))
      besideSteps += beside;
  ASSERT_GT(besideSteps, 0u) << name << " has no steps to run beside";
  const std::vector<int32_t> tokens = fixtureTokens();
  ASSERT_FALSE(tokens.empty());
  ThreeSteps runs[2];
  for (int beside = 0; beside < 2; ++beside) {
    SessionOptions options;
    options.stepsBeside = beside == 1;
    trainThreeSteps(name, options, tokens, runs[beside]);
  }
  expectSameSteps(runs[0], runs[1], "steps beside against one stream");
  std::printf("%s: %zu steps beside, 3 steps equal to the one-stream run\n", name.c_str(),
              besideSteps);
}

// --deterministic repeats a training run to the bit, the embedding
// table's gradient included: every token one of four ids, each seen about
// eight times a step, whose rows the atomic scatter-add sums in any order.
TEST(CudaDeterministic, TrainingRepeatsToTheBitWithRepeatedTokens) {
  SKIP_WITHOUT_GPU();
  std::vector<int32_t> tokens = fixtureTokens();
  ASSERT_FALSE(tokens.empty());
  for (int32_t &t : tokens)
    t %= 4;
  ThreeSteps runs[2];
  for (ThreeSteps &run : runs)
    trainThreeSteps("llama-bf16-fused-train.gai", SessionOptions(), tokens, run);
  expectSameSteps(runs[0], runs[1], "two runs");
}

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaAttention,
    ::testing::Values(
        // Prefill: the flash kernel (bf16, dims 64 and 128), ragged tiles.
        AttentionCase{1, 8, 2, 200, 200, 64, true, 0, false, true},
        AttentionCase{2, 4, 4, 130, 300, 128, true, 0, true, true},
        AttentionCase{1, 4, 1, 256, 256, 128, true, 48, false, true},
        AttentionCase{1, 2, 2, 96, 96, 64, false, 0, false, true},
        // Long causal prefill, GQA 8:1, a window spanning several key tiles.
        AttentionCase{1, 8, 1, 1024, 1024, 64, true, 0, false, true},
        // Head dim 64 (wgmma on Hopper) with per-row starts and a window.
        AttentionCase{2, 4, 2, 130, 300, 64, true, 60, true, true},
        AttentionCase{1, 2, 2, 700, 1000, 128, true, 300, true, true},
        // Decode: split keys over a long cache, f32 and bf16, GQA.
        AttentionCase{1, 8, 2, 1, 2048, 64, true, 0, true, true},
        AttentionCase{2, 4, 2, 1, 1500, 128, true, 0, true, false},
        AttentionCase{1, 4, 4, 1, 900, 256, true, 100, true, false},
        AttentionCase{1, 4, 2, 1, 700, 256, true, 0, true, true},
        AttentionCase{3, 8, 8, 2, 333, 128, true, 50, true, true},
        // Small prefill chunks and odd head dims on the general kernel.
        AttentionCase{2, 4, 2, 16, 64, 16, true, 0, true, false},
        AttentionCase{1, 2, 1, 40, 40, 80, true, 0, false, true},
        // Softcapped scores (a cap below the largest scores) on the flash
        // kernel and in decode.
        AttentionCase{1, 4, 2, 300, 300, 64, true, 0, false, true, 1.5f},
        AttentionCase{1, 2, 1, 160, 200, 128, true, 64, true, true, 1.5f},
        AttentionCase{1, 4, 2, 1, 600, 64, true, 0, true, true, 1.5f}),
    [](const ::testing::TestParamInfo<AttentionCase> &info) {
      const AttentionCase &c = info.param;
      return "b" + std::to_string(c.batch) + "h" + std::to_string(c.heads) + "kv" +
             std::to_string(c.kvHeads) + "q" + std::to_string(c.queries) + "k" +
             std::to_string(c.keys) + "d" + std::to_string(c.dim) +
             (c.causal ? "causal" : "full") +
             (c.window ? "w" + std::to_string(c.window) : std::string()) +
             (c.starts ? "starts" : "") + (c.softcap > 0 ? "softcap" : "") +
             (c.bf16 ? "bf16" : "f32");
    });

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaGemv,
    ::testing::Values(GemvCase{1, 300, 2056, 0, false, false, true, 1},
                      GemvCase{3, 37, 2056, 1, true, true, true, 1},
                      GemvCase{8, 64, 5632, 0, true, true, true, 1},
                      GemvCase{2, 50, 1032, 1, true, true, false, 1},
                      GemvCase{1, 9, 24, 0, false, true, true, 1},
                      GemvCase{1, 256, 2048, 0, false, false, true, 3},
                      GemvCase{2, 41, 1032, 1, true, true, true, 4},
                      GemvCase{1, 30, 520, 1, false, true, false, 2},
                      GemvCase{2, 13, 16400, 1, true, true, true, 2}),
    [](const ::testing::TestParamInfo<GemvCase> &info) {
      const GemvCase &c = info.param;
      return "m" + std::to_string(c.m) + "n" + std::to_string(c.n) + "k" +
             std::to_string(c.k) + (c.activation ? "silu" : "") + (c.bias ? "bias" : "") +
             (c.residual ? "residual" : "") + (c.bf16 ? "bf16" : "f32") +
             (c.parts > 1 ? "x" + std::to_string(c.parts) + "parts" : "");
    });

INSTANTIATE_TEST_SUITE_P(
    Kernels, CudaGatedGemv,
    ::testing::Values(GatedGemvCase{1, 300, 2048, 1, true}, GatedGemvCase{3, 37, 2056, 3, true},
                      GatedGemvCase{8, 64, 5632, 1, true}, GatedGemvCase{1, 50, 1032, 1, false},
                      GatedGemvCase{2, 9, 24, 3, false}),
    [](const ::testing::TestParamInfo<GatedGemvCase> &info) {
      const GatedGemvCase &c = info.param;
      return "m" + std::to_string(c.m) + "n" + std::to_string(c.n) + "k" +
             std::to_string(c.k) + (c.activation == 1 ? "silu" : "gelutanh") +
             (c.bf16 ? "bf16" : "f32");
    });

INSTANTIATE_TEST_SUITE_P(
    Families, CudaNumerics,
    ::testing::Combine(::testing::Values("llama", "gpt2", "mistral", "qwen2", "mixtral", "gemma",
                                         "phi3", "gemma2", "qwen3", "llama3", "qwen2yarn",
                                         "phi3longrope", "gemma3", "phi3partial",
                                         "qwen2window"),
                       ::testing::Values("f32", "bf16")),
    [](const ::testing::TestParamInfo<Case> &info) {
      return std::string(std::get<0>(info.param)) + "_" + std::get<1>(info.param);
    });

// bf16-fused: gaic --fused-update, the step and its update in one entry.
INSTANTIATE_TEST_SUITE_P(
    Families, CudaTraining,
    ::testing::Combine(::testing::Values("llama", "gpt2"),
                       ::testing::Values("f32", "bf16", "bf16-fused",
                                         // the backward's RoPE before the transposes
                                         "f32-transposed", "bf16-fused-transposed")),
    [](const ::testing::TestParamInfo<Case> &info) {
      std::string dtype = std::get<1>(info.param);
      std::replace(dtype.begin(), dtype.end(), '-', '_');
      return std::string(std::get<0>(info.param)) + "_" + dtype;
    });

} // namespace
