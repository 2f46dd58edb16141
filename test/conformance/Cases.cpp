// The conformance case table. Shapes are small and odd (1, 3, 7, 13) so
// that tails and single rows are exercised; a few are large enough to take
// the CUDA backend's other paths (the GEMM-based column sum).
#include "Cases.h"

namespace gai::conformance {
namespace {

/// Every third label of argument 1 becomes the default ignore_index.
void ignoreEveryThirdLabel(std::vector<reference::HostTensor> &args) {
  for (size_t i = 0; i < args[1].data.size(); i += 3)
    args[1].data[i] = -100;
}

/// RoPE positions (argument 6, [1, T]) that follow the cache position
/// (argument 5), as a decode step's do.
void ropeAtCachePositions(std::vector<reference::HostTensor> &args) {
  for (size_t i = 0; i < args[6].data.size(); ++i)
    args[6].data[i] = args[5].data[0] + static_cast<double>(i);
}

/// Metadata bytes (argument 2) from draws in [0, 36): two of the six
/// valid nibbles (positions i0 < i1 of a group of four), as i8 holds them.
void validSparseMetaOf(reference::HostTensor &meta) {
  constexpr uint8_t kPairs[] = {0 | 1 << 2, 0 | 2 << 2, 0 | 3 << 2,
                                1 | 2 << 2, 1 | 3 << 2, 2 | 3 << 2};
  for (double &v : meta.data) {
    int draw = static_cast<int>(v);
    v = static_cast<int8_t>(kPairs[draw % 6] | kPairs[draw / 6] << 4);
  }
}
void validSparseMeta(std::vector<reference::HostTensor> &args) { validSparseMetaOf(args[2]); }
/// The same for a gated GEMM's two weights: metadata in arguments 2 and 4.
void validGatedSparseMeta(std::vector<reference::HostTensor> &args) {
  validSparseMetaOf(args[2]);
  validSparseMetaOf(args[4]);
}

const std::vector<Case> kCases = {
    // gemm: one row, batches folded into M, broadcast batches, transposed
    // operands, the epilogue.
    {"gemm_one_row", Targets::All, {"gemm"}, R"(
func.func @forward(%a: tensor<1x13xf32>, %b: tensor<13x7xf32>) -> tensor<1x7xf32> {
  %0 = gai.matmul %a, %b : (tensor<1x13xf32>, tensor<13x7xf32>) -> tensor<1x7xf32>
  return %0 : tensor<1x7xf32>
})"},
    {"gemm_shared_rhs", Targets::All, {"gemm"}, R"(
func.func @forward(%a: tensor<3x7x13xf32>, %b: tensor<13x11xf32>) -> tensor<3x7x11xf32> {
  %0 = gai.matmul %a, %b : (tensor<3x7x13xf32>, tensor<13x11xf32>) -> tensor<3x7x11xf32>
  return %0 : tensor<3x7x11xf32>
})"},
    {"gemm_broadcast_batches", Targets::All, {"gemm"}, R"(
func.func @forward(%a: tensor<2x1x3x7xf32>, %b: tensor<1x3x7x5xf32>) -> tensor<2x3x3x5xf32> {
  %0 = gai.matmul %a, %b : (tensor<2x1x3x7xf32>, tensor<1x3x7x5xf32>) -> tensor<2x3x3x5xf32>
  return %0 : tensor<2x3x3x5xf32>
})"},
    {"gemm_transposed_batched", Targets::All, {"gemm"}, R"(
func.func @forward(%a: tensor<2x13x3xf32>, %b: tensor<2x5x13xf32>) -> tensor<2x3x5xf32> {
  %0 = gai.matmul %a, %b transpose_lhs transpose_rhs : (tensor<2x13x3xf32>, tensor<2x5x13xf32>) -> tensor<2x3x5xf32>
  return %0 : tensor<2x3x5xf32>
})"},
    {"gemm_epilogue", Targets::All, {"gemm"}, R"(
func.func @forward(%x: tensor<3x7x13xf32>, %w: tensor<11x13xf32>, %b: tensor<11xf32>, %r: tensor<3x7x11xf32>) -> tensor<3x7x11xf32> {
  %0 = gai.gemm %x, %w bias %b residual %r transpose_rhs activation = gelu_tanh : (tensor<3x7x13xf32>, tensor<11x13xf32>, tensor<11xf32>, tensor<3x7x11xf32>) -> tensor<3x7x11xf32>
  return %0 : tensor<3x7x11xf32>
})"},

    // gemm over quantized weights (gai.dequantize folded in): int8 at
    // decode rows, int4 groups past them (CUDA's prefill route), fp8.
    {"gemm_int8_weights", Targets::All, {"gemm"}, R"(
func.func @forward(%x: tensor<3x64xf32>, %q: tensor<11x64xi8>, %s: tensor<11xf32>) -> tensor<3x11xf32> {
  %w = gai.dequantize int8 %q, %s : (tensor<11x64xi8>, tensor<11xf32>) -> tensor<11x64xf32>
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<3x64xf32>, tensor<11x64xf32>) -> tensor<3x11xf32>
  return %0 : tensor<3x11xf32>
})", {{-127, 128}}},
    {"gemm_int4_weights", Targets::All, {"gemm"}, R"(
func.func @forward(%x: tensor<13x64xf32>, %q: tensor<11x64xi4>, %s: tensor<11x4xf32>, %z: tensor<11x4xi8>) -> tensor<13x11xf32> {
  %w = gai.dequantize int4 group 16 %q, %s, %z : (tensor<11x64xi4>, tensor<11x4xf32>, tensor<11x4xi8>) -> tensor<11x64xf32>
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<13x64xf32>, tensor<11x64xf32>) -> tensor<13x11xf32>
  return %0 : tensor<13x11xf32>
})", {{0, 16}, {0, 16}}},
    {"gemm_fp8_weights", Targets::All, {"gemm"}, R"(
func.func @forward(%x: tensor<3x32xf32>, %q: tensor<11x32xf8E4M3FN>, %s: tensor<1xf32>) -> tensor<3x11xf32> {
  %w = gai.dequantize fp8_e4m3 %q, %s : (tensor<11x32xf8E4M3FN>, tensor<1xf32>) -> tensor<11x32xf32>
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<3x32xf32>, tensor<11x32xf32>) -> tensor<3x11xf32>
  return %0 : tensor<3x11xf32>
})"},

    // gemm over 2:4 weights (gai.decompress folded in): at decode rows and
    // past them (CUDA's routes once its GEMV reads them).
    {"gemm_2_4_weights_decode", Targets::All, {"gemm"}, R"(
func.func @forward(%x: tensor<3x64xf32>, %v: tensor<11x32xf32>, %m: tensor<11x8xi8>) -> tensor<3x11xf32> {
  %w = gai.decompress %v, %m : (tensor<11x32xf32>, tensor<11x8xi8>) -> tensor<11x64xf32>
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<3x64xf32>, tensor<11x64xf32>) -> tensor<3x11xf32>
  return %0 : tensor<3x11xf32>
})", {{0, 36}}, validSparseMeta},
    {"gemm_2_4_weights_prefill", Targets::All, {"gemm"}, R"(
func.func @forward(%x: tensor<13x40xf32>, %v: tensor<11x20xf32>, %m: tensor<11x5xi8>) -> tensor<13x11xf32> {
  %w = gai.decompress %v, %m : (tensor<11x20xf32>, tensor<11x5xi8>) -> tensor<11x40xf32>
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<13x40xf32>, tensor<11x40xf32>) -> tensor<13x11xf32>
  return %0 : tensor<13x11xf32>
})", {{0, 36}}, validSparseMeta},

    // launch: generated kernels, elementwise with broadcasts and row ops.
    {"launch_elementwise", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<3x7xf32>, %y: tensor<7xf32>) -> tensor<3x7xf32> {
  %0 = gai.silu %x : tensor<3x7xf32>
  %1 = gai.mul %0, %y : (tensor<3x7xf32>, tensor<7xf32>) -> tensor<3x7xf32>
  %2 = gai.tanh %1 : tensor<3x7xf32>
  %3 = gai.add %2, %x : (tensor<3x7xf32>, tensor<3x7xf32>) -> tensor<3x7xf32>
  return %3 : tensor<3x7xf32>
})"},
    {"launch_rows", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<5x13xf32>, %w: tensor<13xf32>) -> tensor<5x13xf32> {
  %0 = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<5x13xf32>, tensor<13xf32>) -> tensor<5x13xf32>
  %1 = gai.softmax %0 axis = 1 : tensor<5x13xf32>
  return %1 : tensor<5x13xf32>
})"},
    {"launch_one_row", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<1x7xf32>, %w: tensor<7xf32>, %b: tensor<7xf32>) -> tensor<1x7xf32> {
  %0 = gai.layer_norm %x, %w, %b eps = 1.0e-5 : (tensor<1x7xf32>, tensor<7xf32>, tensor<7xf32>) -> tensor<1x7xf32>
  return %0 : tensor<1x7xf32>
})"},
    // RoPE from frequency tables, scaled, at drawn positions (negative
    // too, as a gradient's).
    {"launch_rope_tables", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<2x3x5x8xf32>, %y: tensor<2x5x3x8xf32>, %p: tensor<2x5xi32>) -> (tensor<2x3x5x8xf32>, tensor<2x5x3x8xf32>) {
  %0 = gai.rope half %x, %p theta = 1.0e4 {frequencies = array<f32: 1.0, 0.3, 0.05, 0.001>, attention_factor = 1.2 : f32} : (tensor<2x3x5x8xf32>, tensor<2x5xi32>) -> tensor<2x3x5x8xf32>
  %1 = gai.rope interleaved token_major %y, %p theta = 1.0e4 {frequencies = array<f32: 0.9, 0.2, 0.04, 0.003>, attention_factor = 0.8 : f32} : (tensor<2x5x3x8xf32>, tensor<2x5xi32>) -> tensor<2x5x3x8xf32>
  return %0, %1 : tensor<2x3x5x8xf32>, tensor<2x5x3x8xf32>
})", {{-9, 9}}, nullptr, 3},
    // Partial rotary: the first 8 (half) or 4 (interleaved) of 16 rotate,
    // by theta or a table; the rest pass through.
    {"launch_rope_partial", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<2x3x5x16xf32>, %y: tensor<2x3x5x16xf32>, %p: tensor<1x5xi32>) -> (tensor<2x3x5x16xf32>, tensor<2x3x5x16xf32>) {
  %0 = gai.rope half %x, %p theta = 1.0e4 {rotary_dim = 8 : i64} : (tensor<2x3x5x16xf32>, tensor<1x5xi32>) -> tensor<2x3x5x16xf32>
  %1 = gai.rope interleaved %y, %p theta = 1.0e4 {rotary_dim = 4 : i64, frequencies = array<f32: 0.9, 0.2>, attention_factor = 1.1 : f32} : (tensor<2x3x5x16xf32>, tensor<1x5xi32>) -> tensor<2x3x5x16xf32>
  return %0, %1 : tensor<2x3x5x16xf32>, tensor<2x3x5x16xf32>
})", {{0, 9}}},
    // rotary_dim 6 of 16: no vector width divides it, so scalar lanes.
    {"launch_rope_partial_scalar", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<2x3x5x16xf32>, %p: tensor<1x5xi32>) -> tensor<2x3x5x16xf32> {
  %0 = gai.rope half %x, %p theta = 1.0e4 {rotary_dim = 6 : i64} : (tensor<2x3x5x16xf32>, tensor<1x5xi32>) -> tensor<2x3x5x16xf32>
  return %0 : tensor<2x3x5x16xf32>
})", {{0, 9}}},

    // attention: grouped-query causal, a window with a softcap, query
    // positions (one token over a cache), no mask.
    {"attention_causal_gqa", Targets::All, {"attention"}, R"(
func.func @forward(%q: tensor<1x4x7x16xf32>, %k: tensor<1x2x7x16xf32>, %v: tensor<1x2x7x16xf32>) -> tensor<1x4x7x16xf32> {
  %0 = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 2 causal : (tensor<1x4x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>) -> tensor<1x4x7x16xf32>
  return %0 : tensor<1x4x7x16xf32>
})"},
    {"attention_window_softcap", Targets::All, {"attention"}, R"(
func.func @forward(%q: tensor<2x2x3x8xf32>, %k: tensor<2x2x13x8xf32>, %v: tensor<2x2x13x8xf32>) -> tensor<2x2x3x8xf32> {
  %0 = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 1 causal window = 4 softcap = 5.0 : (tensor<2x2x3x8xf32>, tensor<2x2x13x8xf32>, tensor<2x2x13x8xf32>) -> tensor<2x2x3x8xf32>
  return %0 : tensor<2x2x3x8xf32>
})"},
    {"attention_one_token_at_positions", Targets::All, {"attention"}, R"(
func.func @forward(%q: tensor<2x2x1x16xf32>, %k: tensor<2x1x13x16xf32>, %v: tensor<2x1x13x16xf32>, %pos: tensor<2xi32>) -> tensor<2x2x1x16xf32> {
  %0 = gai.flash_attention %q, %k, %v at %pos scale = 0.25 kv_groups = 2 causal : (tensor<2x2x1x16xf32>, tensor<2x1x13x16xf32>, tensor<2x1x13x16xf32>, tensor<2xi32>) -> tensor<2x2x1x16xf32>
  return %0 : tensor<2x2x1x16xf32>
})",
     {{0, 13}}},
    // attention's backward from the forward's row log-sum-exps: grouped
    // heads with a window and a softcap, and no mask with more keys.
    {"attention_grad_gqa_window_softcap", Targets::All, {"attention", "attention_grad"}, R"(
func.func @forward(%q: tensor<1x4x7x16xf32>, %k: tensor<1x2x7x16xf32>, %v: tensor<1x2x7x16xf32>, %g: tensor<1x4x7x16xf32>) -> (tensor<1x4x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>) {
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 2 causal window = 3 softcap = 2.0 with_lse : (tensor<1x4x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>) -> (tensor<1x4x7x16xf32>, tensor<1x4x7xf32>)
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %g scale = 0.25 kv_groups = 2 causal window = 3 softcap = 2.0 : (tensor<1x4x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x4x7x16xf32>, tensor<1x4x7xf32>, tensor<1x4x7x16xf32>) -> (tensor<1x4x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>)
  return %dq, %dk, %dv : tensor<1x4x7x16xf32>, tensor<1x2x7x16xf32>, tensor<1x2x7x16xf32>
})"},
    {"attention_grad_unmasked", Targets::All, {"attention", "attention_grad"}, R"(
func.func @forward(%q: tensor<2x2x5x8xf32>, %k: tensor<2x2x9x8xf32>, %v: tensor<2x2x9x4xf32>, %g: tensor<2x2x5x4xf32>) -> (tensor<2x2x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x4xf32>, tensor<2x2x5xf32>) {
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 1 with_lse : (tensor<2x2x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x4xf32>) -> (tensor<2x2x5x4xf32>, tensor<2x2x5xf32>)
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %g scale = 0.35 kv_groups = 1 : (tensor<2x2x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x4xf32>, tensor<2x2x5x4xf32>, tensor<2x2x5xf32>, tensor<2x2x5x4xf32>) -> (tensor<2x2x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x4xf32>)
  return %dq, %dk, %dv, %lse : tensor<2x2x5x8xf32>, tensor<2x2x9x8xf32>, tensor<2x2x9x4xf32>, tensor<2x2x5xf32>
})"},
    // Both over a packed q/k/v projection (gai-attention-layout): the
    // slices are read in place, the output is written [B, T, H·D], and the
    // gradients go straight into the packed gradient (strides).
    {"attention_grad_packed_projection", Targets::All, {"attention", "attention_grad"}, R"(
func.func @forward(%qkv: tensor<1x7x32xf32>, %dy: tensor<1x7x16xf32>) -> (tensor<1x7x16xf32>, tensor<1x7x32xf32>) {
  %qs = gai.slice %qkv offsets = [0, 0, 0] sizes = [1, 7, 16] : (tensor<1x7x32xf32>) -> tensor<1x7x16xf32>
  %ks = gai.slice %qkv offsets = [0, 0, 16] sizes = [1, 7, 8] : (tensor<1x7x32xf32>) -> tensor<1x7x8xf32>
  %vs = gai.slice %qkv offsets = [0, 0, 24] sizes = [1, 7, 8] : (tensor<1x7x32xf32>) -> tensor<1x7x8xf32>
  %q4 = gai.reshape %qs : tensor<1x7x16xf32> to tensor<1x7x2x8xf32>
  %k4 = gai.reshape %ks : tensor<1x7x8xf32> to tensor<1x7x1x8xf32>
  %v4 = gai.reshape %vs : tensor<1x7x8xf32> to tensor<1x7x1x8xf32>
  %q = gai.transpose %q4 permutation = [0, 2, 1, 3] : (tensor<1x7x2x8xf32>) -> tensor<1x2x7x8xf32>
  %k = gai.transpose %k4 permutation = [0, 2, 1, 3] : (tensor<1x7x1x8xf32>) -> tensor<1x1x7x8xf32>
  %v = gai.transpose %v4 permutation = [0, 2, 1, 3] : (tensor<1x7x1x8xf32>) -> tensor<1x1x7x8xf32>
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 2 causal window = 5 with_lse : (tensor<1x2x7x8xf32>, tensor<1x1x7x8xf32>, tensor<1x1x7x8xf32>) -> (tensor<1x2x7x8xf32>, tensor<1x2x7xf32>)
  %ot = gai.transpose %o permutation = [0, 2, 1, 3] : (tensor<1x2x7x8xf32>) -> tensor<1x7x2x8xf32>
  %y = gai.reshape %ot : tensor<1x7x2x8xf32> to tensor<1x7x16xf32>
  %dy4 = gai.reshape %dy : tensor<1x7x16xf32> to tensor<1x7x2x8xf32>
  %do = gai.transpose %dy4 permutation = [0, 2, 1, 3] : (tensor<1x7x2x8xf32>) -> tensor<1x2x7x8xf32>
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %do scale = 0.35 kv_groups = 2 causal window = 5 : (tensor<1x2x7x8xf32>, tensor<1x1x7x8xf32>, tensor<1x1x7x8xf32>, tensor<1x2x7x8xf32>, tensor<1x2x7xf32>, tensor<1x2x7x8xf32>) -> (tensor<1x2x7x8xf32>, tensor<1x1x7x8xf32>, tensor<1x1x7x8xf32>)
  %dqt = gai.transpose %dq permutation = [0, 2, 1, 3] : (tensor<1x2x7x8xf32>) -> tensor<1x7x2x8xf32>
  %dkt = gai.transpose %dk permutation = [0, 2, 1, 3] : (tensor<1x1x7x8xf32>) -> tensor<1x7x1x8xf32>
  %dvt = gai.transpose %dv permutation = [0, 2, 1, 3] : (tensor<1x1x7x8xf32>) -> tensor<1x7x1x8xf32>
  %dqr = gai.reshape %dqt : tensor<1x7x2x8xf32> to tensor<1x7x16xf32>
  %dkr = gai.reshape %dkt : tensor<1x7x1x8xf32> to tensor<1x7x8xf32>
  %dvr = gai.reshape %dvt : tensor<1x7x1x8xf32> to tensor<1x7x8xf32>
  %g = gai.concat %dqr, %dkr, %dvr axis = 2 : (tensor<1x7x16xf32>, tensor<1x7x8xf32>, tensor<1x7x8xf32>) -> tensor<1x7x32xf32>
  return %y, %g : tensor<1x7x16xf32>, tensor<1x7x32xf32>
})"},
    {"attention_unmasked", Targets::All, {"attention"}, R"(
func.func @forward(%q: tensor<1x1x5x8xf32>, %k: tensor<1x1x9x8xf32>, %v: tensor<1x1x9x8xf32>) -> tensor<1x1x5x8xf32> {
  %0 = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 1 : (tensor<1x1x5x8xf32>, tensor<1x1x9x8xf32>, tensor<1x1x9x8xf32>) -> tensor<1x1x5x8xf32>
  return %0 : tensor<1x1x5x8xf32>
})"},

    // embedding, cache_write, take.
    {"embedding", Targets::All, {"embedding"}, R"(
func.func @forward(%table: tensor<13x7xf32>, %ids: tensor<2x5xi32>) -> tensor<2x5x7xf32> {
  %0 = gai.embedding %table, %ids : (tensor<13x7xf32>, tensor<2x5xi32>) -> tensor<2x5x7xf32>
  return %0 : tensor<2x5x7xf32>
})",
     {{0, 13}}},
    // 40 ids over 5 rows: every row is picked several times.
    {"embedding_grad_repeated_ids", Targets::All, {"embedding_grad"}, R"(
func.func @forward(%grad: tensor<4x10x7xf32>, %ids: tensor<4x10xi32>) -> tensor<5x7xf32> {
  %0 = gai.embedding_grad %grad, %ids rows = 5 : (tensor<4x10x7xf32>, tensor<4x10xi32>) -> tensor<5x7xf32>
  return %0 : tensor<5x7xf32>
})",
     {{0, 5}}},
    {"embedding_vocab_one", Targets::All, {"embedding"}, R"(
func.func @forward(%table: tensor<1x3xf32>, %ids: tensor<4xi32>) -> tensor<4x3xf32> {
  %0 = gai.embedding %table, %ids : (tensor<1x3xf32>, tensor<4xi32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
})",
     {{0, 1}}},
    {"cache_write_state", Targets::All, {"cache_write"}, R"(
func.func @forward(%cache: tensor<2x2x7x4xf32> {gai.name = "cache.k.0"}, %update: tensor<2x2x3x4xf32>, %pos: tensor<2xi32>) -> (tensor<2x2x7x4xf32> {gai.name = "cache.k.0"}) {
  %0 = gai.cache_write %cache, %update at %pos : (tensor<2x2x7x4xf32>, tensor<2x2x3x4xf32>, tensor<2xi32>) -> tensor<2x2x7x4xf32>
  return %0 : tensor<2x2x7x4xf32>
})",
     {{0, 5}}},
    // Written over the input, then copied out.
    {"cache_write_one_token", Targets::All, {"cache_write", "copy"}, R"(
func.func @forward(%cache: tensor<1x1x5x8xf32>, %update: tensor<1x1x1x8xf32>, %pos: tensor<1xi32>) -> tensor<1x1x5x8xf32> {
  %0 = gai.cache_write %cache, %update at %pos : (tensor<1x1x5x8xf32>, tensor<1x1x1x8xf32>, tensor<1xi32>) -> tensor<1x1x5x8xf32>
  return %0 : tensor<1x1x5x8xf32>
})",
     {{0, 5}}},
    {"take", Targets::All, {"take"}, R"(
func.func @forward(%x: tensor<3x5x7xf32>, %i: tensor<3xi32>) -> tensor<3x7xf32> {
  %0 = gai.take %x, %i : (tensor<3x5x7xf32>, tensor<3xi32>) -> tensor<3x7xf32>
  return %0 : tensor<3x7xf32>
})",
     {{0, 5}}},
    {"take_one_row", Targets::All, {"take"}, R"(
func.func @forward(%x: tensor<1x1x4xf32>, %i: tensor<1xi32>) -> tensor<1x4xf32> {
  %0 = gai.take %x, %i : (tensor<1x1x4xf32>, tensor<1xi32>) -> tensor<1x4xf32>
  return %0 : tensor<1x4xf32>
})",
     {{0, 1}}},

    // transpose and slice, rank 1 to 4.
    {"transpose_2d", Targets::All, {"transpose"}, R"(
func.func @forward(%x: tensor<7x13xf32>) -> tensor<13x7xf32> {
  %0 = gai.transpose %x permutation = [1, 0] : (tensor<7x13xf32>) -> tensor<13x7xf32>
  return %0 : tensor<13x7xf32>
})"},
    {"transpose_4d", Targets::All, {"transpose"}, R"(
func.func @forward(%x: tensor<2x3x5x7xf32>) -> tensor<7x3x2x5xf32> {
  %0 = gai.transpose %x permutation = [3, 1, 0, 2] : (tensor<2x3x5x7xf32>) -> tensor<7x3x2x5xf32>
  return %0 : tensor<7x3x2x5xf32>
})"},
    {"slice_1d", Targets::All, {"slice"}, R"(
func.func @forward(%x: tensor<13xf32>) -> tensor<7xf32> {
  %0 = gai.slice %x offsets = [3] sizes = [7] : (tensor<13xf32>) -> tensor<7xf32>
  return %0 : tensor<7xf32>
})"},
    {"slice_4d", Targets::All, {"slice"}, R"(
func.func @forward(%x: tensor<2x3x5x7xf32>) -> tensor<1x3x2x4xf32> {
  %0 = gai.slice %x offsets = [1, 0, 2, 3] sizes = [1, 3, 2, 4] : (tensor<2x3x5x7xf32>) -> tensor<1x3x2x4xf32>
  return %0 : tensor<1x3x2x4xf32>
})"},

    // topk: k < n, k == n, one row and k = 1.
    {"topk", Targets::All, {"topk"}, R"(
func.func @forward(%x: tensor<5x13xf32>) -> (tensor<5x3xf32>, tensor<5x3xi32>) {
  %v, %i = gai.topk %x k = 3 : (tensor<5x13xf32>) -> (tensor<5x3xf32>, tensor<5x3xi32>)
  return %v, %i : tensor<5x3xf32>, tensor<5x3xi32>
})"},
    {"topk_k_equals_n", Targets::All, {"topk"}, R"(
func.func @forward(%x: tensor<3x7xf32>) -> (tensor<3x7xf32>, tensor<3x7xi32>) {
  %v, %i = gai.topk %x k = 7 : (tensor<3x7xf32>) -> (tensor<3x7xf32>, tensor<3x7xi32>)
  return %v, %i : tensor<3x7xf32>, tensor<3x7xi32>
})"},
    {"topk_one_row", Targets::All, {"topk"}, R"(
func.func @forward(%x: tensor<1x4xf32>) -> (tensor<1x1xf32>, tensor<1x1xi32>) {
  %v, %i = gai.topk %x k = 1 : (tensor<1x4xf32>) -> (tensor<1x1xf32>, tensor<1x1xi32>)
  return %v, %i : tensor<1x1xf32>, tensor<1x1xi32>
})"},

    // cross_entropy and its gradient: each reduction, ignored rows, a
    // vocabulary of one.
    {"cross_entropy_mean", Targets::All, {"cross_entropy"}, R"(
func.func @forward(%logits: tensor<13x7xf32>, %labels: tensor<13xi32>) -> tensor<f32> {
  %0 = gai.cross_entropy mean %logits, %labels : (tensor<13x7xf32>, tensor<13xi32>) -> tensor<f32>
  return %0 : tensor<f32>
})",
     {{0, 7}}, ignoreEveryThirdLabel},
    // ignore_index 0 is a real label: some rows are ignored at random.
    {"cross_entropy_sum", Targets::All, {"cross_entropy"}, R"(
func.func @forward(%logits: tensor<2x5x7xf32>, %labels: tensor<2x5xi32>) -> tensor<f32> {
  %0 = gai.cross_entropy sum %logits, %labels {ignore_index = 0 : i64} : (tensor<2x5x7xf32>, tensor<2x5xi32>) -> tensor<f32>
  return %0 : tensor<f32>
})",
     {{0, 7}}},
    {"cross_entropy_none", Targets::All, {"cross_entropy"}, R"(
func.func @forward(%logits: tensor<13x7xf32>, %labels: tensor<13xi32>) -> tensor<13xf32> {
  %0 = gai.cross_entropy none %logits, %labels : (tensor<13x7xf32>, tensor<13xi32>) -> tensor<13xf32>
  return %0 : tensor<13xf32>
})",
     {{0, 7}}, ignoreEveryThirdLabel},
    {"cross_entropy_vocab_one", Targets::All, {"cross_entropy"}, R"(
func.func @forward(%logits: tensor<3x1xf32>, %labels: tensor<3xi32>) -> tensor<f32> {
  %0 = gai.cross_entropy mean %logits, %labels : (tensor<3x1xf32>, tensor<3xi32>) -> tensor<f32>
  return %0 : tensor<f32>
})",
     {{0, 1}}},
    {"cross_entropy_grad_mean", Targets::All, {"cross_entropy_grad"}, R"(
func.func @forward(%logits: tensor<13x7xf32>, %labels: tensor<13xi32>, %grad: tensor<f32>) -> tensor<13x7xf32> {
  %0 = gai.cross_entropy_grad mean %logits, %labels, %grad : (tensor<13x7xf32>, tensor<13xi32>, tensor<f32>) -> tensor<13x7xf32>
  return %0 : tensor<13x7xf32>
})",
     {{0, 7}}, ignoreEveryThirdLabel},
    {"cross_entropy_grad_sum", Targets::All, {"cross_entropy_grad"}, R"(
func.func @forward(%logits: tensor<2x5x7xf32>, %labels: tensor<2x5xi32>, %grad: tensor<f32>) -> tensor<2x5x7xf32> {
  %0 = gai.cross_entropy_grad sum %logits, %labels, %grad {ignore_index = 0 : i64} : (tensor<2x5x7xf32>, tensor<2x5xi32>, tensor<f32>) -> tensor<2x5x7xf32>
  return %0 : tensor<2x5x7xf32>
})",
     {{0, 7}}},
    {"cross_entropy_grad_none", Targets::All, {"cross_entropy_grad"}, R"(
func.func @forward(%logits: tensor<13x7xf32>, %labels: tensor<13xi32>, %grad: tensor<13xf32>) -> tensor<13x7xf32> {
  %0 = gai.cross_entropy_grad none %logits, %labels, %grad : (tensor<13x7xf32>, tensor<13xi32>, tensor<13xf32>) -> tensor<13x7xf32>
  return %0 : tensor<13x7xf32>
})",
     {{0, 7}}, ignoreEveryThirdLabel},

    // place: concat along a middle and the first axis, repeat.
    {"place_concat_middle", Targets::All, {"place"}, R"(
func.func @forward(%a: tensor<2x3x5xf32>, %b: tensor<2x4x5xf32>) -> tensor<2x7x5xf32> {
  %0 = gai.concat %a, %b axis = 1 : (tensor<2x3x5xf32>, tensor<2x4x5xf32>) -> tensor<2x7x5xf32>
  return %0 : tensor<2x7x5xf32>
})"},
    {"place_concat_first", Targets::All, {"place"}, R"(
func.func @forward(%a: tensor<1x7xf32>, %b: tensor<3x7xf32>) -> tensor<4x7xf32> {
  %0 = gai.concat %a, %b axis = 0 : (tensor<1x7xf32>, tensor<3x7xf32>) -> tensor<4x7xf32>
  return %0 : tensor<4x7xf32>
})"},
    {"place_repeat", Targets::All, {"place"}, R"(
func.func @forward(%x: tensor<2x2x3x4xf32>) -> tensor<2x6x3x4xf32> {
  %0 = gai.repeat %x axis = 1 times = 3 : (tensor<2x2x3x4xf32>) -> tensor<2x6x3x4xf32>
  return %0 : tensor<2x6x3x4xf32>
})"},

    // one_hot, depth 7 and 1.
    {"one_hot", Targets::All, {"one_hot"}, R"(
func.func @forward(%i: tensor<2x5xi32>) -> tensor<2x5x7xf32> {
  %0 = gai.one_hot %i depth = 7 : (tensor<2x5xi32>) -> tensor<2x5x7xf32>
  return %0 : tensor<2x5x7xf32>
})",
     {{0, 7}}},
    {"one_hot_depth_one", Targets::All, {"one_hot"}, R"(
func.func @forward(%i: tensor<3xi32>) -> tensor<3x1xf32> {
  %0 = gai.one_hot %i depth = 1 : (tensor<3xi32>) -> tensor<3x1xf32>
  return %0 : tensor<3x1xf32>
})",
     {{0, 1}}},

    // reduce: each kind over the first, a middle and the last axis; the
    // large ones take the CUDA column sum through a GEMM (n and inner at
    // least 64, inner a multiple of 8).
    {"reduce_sum_first_axis", Targets::All, {"reduce"}, R"(
func.func @forward(%x: tensor<7x13xf32>) -> tensor<13xf32> {
  %0 = gai.reduce sum %x axes = [0] : (tensor<7x13xf32>) -> tensor<13xf32>
  return %0 : tensor<13xf32>
})"},
    {"reduce_mean_middle_axis", Targets::All, {"reduce"}, R"(
func.func @forward(%x: tensor<3x7x5xf32>) -> tensor<3x5xf32> {
  %0 = gai.reduce mean %x axes = [1] : (tensor<3x7x5xf32>) -> tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
})"},
    {"reduce_min_middle_axis_keep_dims", Targets::All, {"reduce"}, R"(
func.func @forward(%x: tensor<3x7x5xf32>) -> tensor<3x1x5xf32> {
  %0 = gai.reduce min %x axes = [1] keep_dims : (tensor<3x7x5xf32>) -> tensor<3x1x5xf32>
  return %0 : tensor<3x1x5xf32>
})"},
    // Over the last axis a reduce becomes a row kernel (a launch).
    {"reduce_max_last_axis_keep_dims", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<3x5x7xf32>) -> tensor<3x5x1xf32> {
  %0 = gai.reduce max %x axes = [2] keep_dims : (tensor<3x5x7xf32>) -> tensor<3x5x1xf32>
  return %0 : tensor<3x5x1xf32>
})"},
    // Dropping the axis: a kernel that keeps it, and a reshape (a view).
    {"reduce_sum_last_axis", Targets::All, {"launch"}, R"(
func.func @forward(%x: tensor<5x7xf32>) -> tensor<5xf32> {
  %0 = gai.reduce sum %x axes = [1] : (tensor<5x7xf32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
})"},
    {"reduce_sum_columns_large", Targets::All, {"reduce"}, R"(
func.func @forward(%x: tensor<2x64x64xf32>) -> tensor<2x64xf32> {
  %0 = gai.reduce sum %x axes = [1] : (tensor<2x64x64xf32>) -> tensor<2x64xf32>
  return %0 : tensor<2x64xf32>
})"},
    {"reduce_mean_first_axis_large", Targets::All, {"reduce"}, R"(
func.func @forward(%x: tensor<128x72xf32>) -> tensor<72xf32> {
  %0 = gai.reduce mean %x axes = [0] : (tensor<128x72xf32>) -> tensor<72xf32>
  return %0 : tensor<72xf32>
})"},
    {"reduce_max_middle_axis_large", Targets::All, {"reduce"}, R"(
func.func @forward(%x: tensor<2x64x64xf32>) -> tensor<2x64xf32> {
  %0 = gai.reduce max %x axes = [1] : (tensor<2x64x64xf32>) -> tensor<2x64xf32>
  return %0 : tensor<2x64xf32>
})"},

    // copy and fill: a returned input, state made by a transpose, a
    // returned splat constant, state set to one.
    {"copy_returned_input", Targets::All, {"copy"}, R"(
func.func @forward(%x: tensor<7xf32>) -> tensor<7xf32> {
  return %x : tensor<7xf32>
})"},
    {"copy_into_state", Targets::All, {"transpose", "copy"}, R"(
func.func @forward(%c: tensor<5x5xf32> {gai.name = "cache.k.0"}) -> (tensor<5x5xf32> {gai.name = "cache.k.0"}) {
  %0 = gai.transpose %c permutation = [1, 0] : (tensor<5x5xf32>) -> tensor<5x5xf32>
  return %0 : tensor<5x5xf32>
})"},
    {"fill_returned_constant", Targets::All, {"fill", "copy"}, R"(
func.func @forward() -> tensor<3x5xf32> {
  %0 = gai.constant dense<2.5> : tensor<3x5xf32>
  return %0 : tensor<3x5xf32>
})"},
    {"fill_state", Targets::All, {"fill"}, R"(
func.func @forward(%c: tensor<2x3xf32> {gai.name = "cache.k.0"}) -> (tensor<2x3xf32> {gai.name = "cache.k.0"}) {
  %0 = gai.constant dense<-0.5> : tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
})"},

    // Collectives over a grid of one rank (the conformance run is one
    // process): each hands its input on. test/train/shard.test runs them
    // between ranks.
    {"collectives_one_rank", Targets::All,
     {"all_reduce", "reduce_scatter", "all_gather", "all_slice"}, R"(
shard.grid @mesh(shape = 1)
func.func @forward(%x: tensor<3x5xf32>) -> (tensor<3x5xf32>, tensor<3x5xf32>) {
  %0 = shard.all_reduce %x on @mesh grid_axes = [0] reduction = average : tensor<3x5xf32> -> tensor<3x5xf32>
  %1 = shard.reduce_scatter %0 on @mesh grid_axes = [0] scatter_axis = 0 : tensor<3x5xf32> -> tensor<3x5xf32>
  %2 = shard.all_gather %1 on @mesh grid_axes = [0] gather_axis = 0 : tensor<3x5xf32> -> tensor<3x5xf32>
  %3 = shard.all_slice %2 on @mesh grid_axes = [0] slice_axis = 0 : tensor<3x5xf32> -> tensor<3x5xf32>
  %4 = shard.all_reduce %x on @mesh grid_axes = [0] reduction = max : tensor<3x5xf32> -> tensor<3x5xf32>
  return %3, %4 : tensor<3x5xf32>, tensor<3x5xf32>
})"},

    // Only the cuda target: gated GEMMs (its GEMV, at most 8 rows),
    // attention with its cache writes and RoPE folded in, bf16.
    {"gated_gemm_decode", Targets::CudaOnly, {"gemm"}, R"(
func.func @forward(%x: tensor<2x1x64xf32>, %g: tensor<24x64xf32>, %u: tensor<24x64xf32>) -> tensor<2x1x24xf32> {
  %0 = gai.gated_gemm %x, %g, %u activation = silu : (tensor<2x1x64xf32>, tensor<24x64xf32>, tensor<24x64xf32>) -> tensor<2x1x24xf32>
  return %0 : tensor<2x1x24xf32>
})"},
    // bf16 2:4 weights at decode rows: the GEMV reads them as stored, a
    // gated pair (gate_meta) too.
    {"gemm_2_4_weights_bf16_decode", Targets::CudaOnly, {"gemm"}, R"(
func.func @forward(%x: tensor<3x64xbf16>, %v: tensor<24x32xbf16>, %m: tensor<24x8xi8>) -> tensor<3x24xbf16> {
  %w = gai.decompress %v, %m : (tensor<24x32xbf16>, tensor<24x8xi8>) -> tensor<24x64xbf16>
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<3x64xbf16>, tensor<24x64xbf16>) -> tensor<3x24xbf16>
  return %0 : tensor<3x24xbf16>
})", {{0, 36}}, validSparseMeta},
    {"gated_gemm_2_4_weights", Targets::CudaOnly, {"gemm"}, R"(
func.func @forward(%x: tensor<2x64xbf16>, %gv: tensor<24x32xbf16>, %gm: tensor<24x8xi8>, %uv: tensor<24x32xbf16>, %um: tensor<24x8xi8>) -> tensor<2x24xbf16> {
  %g = gai.decompress %gv, %gm : (tensor<24x32xbf16>, tensor<24x8xi8>) -> tensor<24x64xbf16>
  %u = gai.decompress %uv, %um : (tensor<24x32xbf16>, tensor<24x8xi8>) -> tensor<24x64xbf16>
  %0 = gai.gated_gemm %x, %g, %u activation = silu : (tensor<2x64xbf16>, tensor<24x64xbf16>, tensor<24x64xbf16>) -> tensor<2x24xbf16>
  return %0 : tensor<2x24xbf16>
})", {{0, 36}, {0, 36}}, validGatedSparseMeta},
    {"gated_gemm_eight_rows", Targets::CudaOnly, {"gemm"}, R"(
func.func @forward(%x: tensor<8x32xf32>, %g: tensor<13x32xf32>, %u: tensor<13x32xf32>) -> tensor<8x13xf32> {
  %0 = gai.gated_gemm %x, %g, %u activation = gelu_tanh : (tensor<8x32xf32>, tensor<13x32xf32>, tensor<13x32xf32>) -> tensor<8x13xf32>
  return %0 : tensor<8x13xf32>
})"},
    {"cached_attention_rope_half", Targets::CudaOnly, {"attention"}, R"(
func.func @forward(%q: tensor<2x4x1x16xf32>, %k: tensor<2x2x1x16xf32>, %v: tensor<2x2x1x16xf32>, %kc: tensor<2x2x13x16xf32> {gai.name = "cache.k.0"}, %vc: tensor<2x2x13x16xf32> {gai.name = "cache.v.0"}, %s: tensor<2xi32>) -> (tensor<2x4x1x16xf32>, tensor<2x2x13x16xf32> {gai.name = "cache.k.0"}, tensor<2x2x13x16xf32> {gai.name = "cache.v.0"}) {
  %p = gai.reshape %s : tensor<2xi32> to tensor<2x1xi32>
  %o:3 = gai.cached_attention %q, %k, %v into %kc, %vc at %s rope half %p theta = 1.0e4 scale = 0.25 kv_groups = 2 causal : (tensor<2x4x1x16xf32>, tensor<2x2x1x16xf32>, tensor<2x2x1x16xf32>, tensor<2x2x13x16xf32>, tensor<2x2x13x16xf32>, tensor<2xi32>, tensor<2x1xi32>) -> (tensor<2x4x1x16xf32>, tensor<2x2x13x16xf32>, tensor<2x2x13x16xf32>)
  return %o#0, %o#1, %o#2 : tensor<2x4x1x16xf32>, tensor<2x2x13x16xf32>, tensor<2x2x13x16xf32>
})",
     {{0, 13}}},
    {"cached_attention_three_rows_interleaved", Targets::CudaOnly, {"attention"}, R"(
func.func @forward(%q: tensor<1x2x3x8xf32>, %k: tensor<1x1x3x8xf32>, %v: tensor<1x1x3x8xf32>, %kc: tensor<1x1x7x8xf32> {gai.name = "cache.k.0"}, %vc: tensor<1x1x7x8xf32> {gai.name = "cache.v.0"}, %s: tensor<1xi32>, %p: tensor<1x3xi32>) -> (tensor<1x2x3x8xf32>, tensor<1x1x7x8xf32> {gai.name = "cache.k.0"}, tensor<1x1x7x8xf32> {gai.name = "cache.v.0"}) {
  %o:3 = gai.cached_attention %q, %k, %v into %kc, %vc at %s rope interleaved %p theta = 5.0e5 scale = 0.35 kv_groups = 2 causal : (tensor<1x2x3x8xf32>, tensor<1x1x3x8xf32>, tensor<1x1x3x8xf32>, tensor<1x1x7x8xf32>, tensor<1x1x7x8xf32>, tensor<1xi32>, tensor<1x3xi32>) -> (tensor<1x2x3x8xf32>, tensor<1x1x7x8xf32>, tensor<1x1x7x8xf32>)
  return %o#0, %o#1, %o#2 : tensor<1x2x3x8xf32>, tensor<1x1x7x8xf32>, tensor<1x1x7x8xf32>
})",
     {{0, 5}, {0, 7}}, ropeAtCachePositions},
    {"gemm_bf16", Targets::CudaOnly, {"gemm"}, R"(
func.func @forward(%x: tensor<3x7x16xbf16>, %w: tensor<24x16xbf16>) -> tensor<3x7x24xbf16> {
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<3x7x16xbf16>, tensor<24x16xbf16>) -> tensor<3x7x24xbf16>
  return %0 : tensor<3x7x24xbf16>
})"},
    {"attention_bf16", Targets::CudaOnly, {"attention"}, R"(
func.func @forward(%q: tensor<1x4x7x16xbf16>, %k: tensor<1x2x7x16xbf16>, %v: tensor<1x2x7x16xbf16>) -> tensor<1x4x7x16xbf16> {
  %0 = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 2 causal : (tensor<1x4x7x16xbf16>, tensor<1x2x7x16xbf16>, tensor<1x2x7x16xbf16>) -> tensor<1x4x7x16xbf16>
  return %0 : tensor<1x4x7x16xbf16>
})"},
    {"embedding_grad_bf16", Targets::CudaOnly, {"embedding_grad"}, R"(
func.func @forward(%grad: tensor<3x9x16xbf16>, %ids: tensor<3x9xi32>) -> tensor<11x16xbf16> {
  %0 = gai.embedding_grad %grad, %ids rows = 11 : (tensor<3x9x16xbf16>, tensor<3x9xi32>) -> tensor<11x16xbf16>
  return %0 : tensor<11x16xbf16>
})",
     {{0, 11}}},
    {"attention_grad_bf16", Targets::CudaOnly, {"attention", "attention_grad"}, R"(
func.func @forward(%q: tensor<1x4x70x64xbf16>, %k: tensor<1x2x70x64xbf16>, %v: tensor<1x2x70x64xbf16>, %g: tensor<1x4x70x64xbf16>) -> (tensor<1x4x70x64xbf16>, tensor<1x2x70x64xbf16>, tensor<1x2x70x64xbf16>) {
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.125 kv_groups = 2 causal with_lse : (tensor<1x4x70x64xbf16>, tensor<1x2x70x64xbf16>, tensor<1x2x70x64xbf16>) -> (tensor<1x4x70x64xbf16>, tensor<1x4x70xf32>)
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %g scale = 0.125 kv_groups = 2 causal : (tensor<1x4x70x64xbf16>, tensor<1x2x70x64xbf16>, tensor<1x2x70x64xbf16>, tensor<1x4x70x64xbf16>, tensor<1x4x70xf32>, tensor<1x4x70x64xbf16>) -> (tensor<1x4x70x64xbf16>, tensor<1x2x70x64xbf16>, tensor<1x2x70x64xbf16>)
  return %dq, %dk, %dv : tensor<1x4x70x64xbf16>, tensor<1x2x70x64xbf16>, tensor<1x2x70x64xbf16>
})"},
    {"launch_rows_bf16", Targets::CudaOnly, {"launch"}, R"(
func.func @forward(%x: tensor<5x13xbf16>, %w: tensor<13xbf16>) -> tensor<5x13xbf16> {
  %0 = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<5x13xbf16>, tensor<13xbf16>) -> tensor<5x13xbf16>
  %1 = gai.softmax %0 axis = 1 : tensor<5x13xbf16>
  return %1 : tensor<5x13xbf16>
})"},
};

} // namespace

const std::vector<Case> &cases() { return kCases; }

} // namespace gai::conformance
