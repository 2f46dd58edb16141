// Times the training attention kernels (the flash forward with its row
// log-sum-exps, and the backward) at the shapes of peers.py's training
// configurations, causal, bf16. One JSON line per shape; TFLOP/s counts
// the forward's two products and the backward's five (FlashAttention-2's
// count) over the visible half of the scores. The forward is timed as it
// runs (on wgmma where it can) and on mma.sync; the backward in its forms:
// the default (atomic sums; on wgmma where it runs), the same on mma.sync,
// and the deterministic one; and the default form with its key blocks in
// each order blockSpread gives.
#include "../gpu/Bf16Inputs.h"
#include "BenchTiming.h"
#include "hal/cuda/AttentionGrad.h"
#include "hal/cuda/FlashAttention.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace {

struct Shape {
  const char *name;
  int64_t batch, heads, kvHeads, seq, dim;
};

} // namespace

int main(int argc, char **argv) {
  using namespace gai;
  const Shape shapes[] = {{"llama-1b", 4, 32, 4, 2048, 64},
                          {"gpt2-124m", 16, 12, 12, 1024, 64},
                          {"head-dim-128", 4, 16, 8, 2048, 128}};
  const char *only = argc > 1 ? argv[1] : nullptr;
  cudaStream_t stream = nullptr;
  cudaStreamCreate(&stream);
  cuda::ErrorWord *error = nullptr;
  cudaMalloc(&error, sizeof(cuda::ErrorWord));
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));
  std::mt19937 rng(5);
  for (const Shape &s : shapes)
    for (bool tokenMajor : {false, true}) {
      if (only && std::string(only) != s.name)
        continue;
      const int64_t qn = s.batch * s.heads * s.seq * s.dim,
                    kn = s.batch * s.kvHeads * s.seq * s.dim;
      void *q = bench::upload(toBf16(bf16Normals(rng, qn))),
           *k = bench::upload(toBf16(bf16Normals(rng, kn))),
           *v = bench::upload(toBf16(bf16Normals(rng, kn))),
           *dout = bench::upload(toBf16(bf16Normals(rng, qn)));
      void *out = nullptr, *dq = nullptr, *dk = nullptr, *dv = nullptr;
      float *lse = nullptr, *workspace = nullptr;
      cudaMalloc(&out, qn * 2);
      cudaMalloc(&dq, qn * 2);
      cudaMalloc(&dk, kn * 2);
      cudaMalloc(&dv, kn * 2);
      cudaMalloc(&lse, s.batch * s.heads * s.seq * sizeof(float));

      cuda::AttentionParams f{};
      f.q = q;
      f.k = k;
      f.v = v;
      f.out = out;
      f.batch = s.batch;
      f.heads = s.heads;
      f.kvHeads = s.kvHeads;
      f.queries = f.keys = s.seq;
      f.headDim = f.valueDim = s.dim;
      f.scale = 1.0f / std::sqrt(static_cast<float>(s.dim));
      f.causal = true;
      f.cacheReady = true;
      f.lse = lse;
      cuda::AttentionGradParams g{};
      g.q = q;
      g.k = k;
      g.v = v;
      g.out = out;
      g.outGrad = dout;
      g.lse = lse;
      g.qGrad = dq;
      g.kGrad = dk;
      g.vGrad = dv;
      g.batch = s.batch;
      g.heads = s.heads;
      g.kvHeads = s.kvHeads;
      g.queries = g.keys = s.seq;
      g.headDim = g.valueDim = s.dim;
      g.scale = f.scale;
      g.causal = true;
      if (tokenMajor) { // every tensor [B, T, H, D], as gai-attention-layout
                        // leaves them
        const RowStrides queries{s.seq * s.heads * s.dim, s.dim,
                                 s.heads * s.dim},
            keys{s.seq * s.kvHeads * s.dim, s.dim, s.kvHeads * s.dim};
        f.qStrides = f.outStrides = g.qStrides = g.outStrides =
            g.outGradStrides = g.qGradStrides = queries;
        f.kStrides = f.vStrides = g.kStrides = g.vStrides = g.kGradStrides =
            g.vGradStrides = keys;
      }
      g.deterministic = true; // the larger workspace of the two forms
      const int64_t fixedOrderFloats =
          cuda::attentionGradWorkspaceFloats(cuda::Elem::BF16, g);
      g.deterministic = false;
      cudaMalloc(&workspace,
                 std::max(fixedOrderFloats,
                          cuda::attentionGradWorkspaceFloats(cuda::Elem::BF16, g)) *
                     4);

      const double forward = bench::timeMs(
          [&] { cuda::flashAttention(f, error, 0, stream); }, stream, 20, 3);
      f.mmaSyncOnly = true;
      const double mmaSyncForward = bench::timeMs(
          [&] { cuda::flashAttention(f, error, 0, stream); }, stream, 20, 3);
      f.mmaSyncOnly = false;
      const double backward = bench::timeMs(
          [&] { cuda::attentionGrad(cuda::Elem::BF16, g, workspace, stream); },
          stream, 20, 3);
      // The key blocks' order (blockSpread): head after head, and groups
      // of heads of 1, 2 and 4 waves, heaviest keys first.
      nlohmann::json bySpread = nlohmann::json::object();
      for (float spread : {0.0f, 1.0f, 2.0f, 4.0f}) {
        g.blockSpread = spread;
        bySpread[std::to_string(static_cast<int>(spread))] = bench::timeMs(
            [&] { cuda::attentionGrad(cuda::Elem::BF16, g, workspace, stream); },
            stream, 20, 3);
      }
      g.blockSpread = cuda::AttentionGradParams{}.blockSpread;
      g.deterministic = true;
      const double fixedOrder = bench::timeMs(
          [&] { cuda::attentionGrad(cuda::Elem::BF16, g, workspace, stream); },
          stream, 20, 3);
      g.deterministic = false;
      const bool onWgmma = cuda::attentionGradOnWgmma(cuda::Elem::BF16, g);
      g.mmaSyncOnly = true;
      const double mmaSync = bench::timeMs(
          [&] { cuda::attentionGrad(cuda::Elem::BF16, g, workspace, stream); },
          stream, 20, 3);
      g.mmaSyncOnly = false;
      cudaError_t status = cudaStreamSynchronize(stream);
      // Causal: about half of the T² scores, each a D-long product twice.
      const double products =
          2.0 * s.batch * s.heads * s.seq * (s.seq + 1) / 2.0 * s.dim;
      nlohmann::json line = {{"shape", s.name},
                             {"layout", tokenMajor ? "token-major" : "packed"},
                             {"batch", s.batch},
                             {"heads", s.heads},
                             {"kv_heads", s.kvHeads},
                             {"seq", s.seq},
                             {"head_dim", s.dim},
                             {"forward_ms", forward},
                             {"backward_ms", backward},
                             {"forward_tflops", 2 * products / forward / 1e9},
                             {"backward_tflops", 5 * products / backward / 1e9},
                             {"on_wgmma", onWgmma},
                             {"mma_sync_forward_ms", mmaSyncForward},
                             {"mma_sync_backward_ms", mmaSync},
                             {"deterministic_backward_ms", fixedOrder},
                             {"backward_ms_by_spread", bySpread},
                             {"status", cudaGetErrorString(status)}};
      std::printf("%s\n", line.dump().c_str());
      std::fflush(stdout);
      for (void *p : {q, k, v, dout, out, dq, dk, dv})
        cudaFree(p);
      cudaFree(lse);
      cudaFree(workspace);
    }
  return 0;
}
