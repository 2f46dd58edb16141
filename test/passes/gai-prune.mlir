// RUN: gai-opt %s --split-input-file --gai-prune="pattern=2:4" | FileCheck %s --check-prefix=SPARSE
// RUN: gai-opt %s --split-input-file --gai-prune="pattern=2:4 masked=true" | FileCheck %s --check-prefix=MASKED
// RUN: gai-opt %s --split-input-file --gai-prune="pattern=2:4 skip=none" | FileCheck %s --check-prefix=ALL
// RUN: gai-opt %s --split-input-file --gai-prune="heads=2 mlp=0.5" | FileCheck %s --check-prefix=STRUCT

// 2:4: a weight [n, k] read transposed becomes its kept values [n, k/2]
// and their positions [n, k/8] under its name, read back by one
// decompress. The LM head stays dense by default. Masked (training), the
// weight stays and the matmul reads it times its mask, made from its
// magnitudes. Without an activation before the second matmul there is no
// MLP here: structured pruning leaves it as it is.
// SPARSE-LABEL: func.func @mlp
// SPARSE:         %[[V:.*]] = gai.param "mlp.up.weight" : tensor<176x32xbf16>
// SPARSE-NEXT:    %[[M:.*]] = gai.param "mlp.up.weight.meta" : tensor<176x8xi8>
// SPARSE-NEXT:    %[[W:.*]] = gai.decompress %[[V]], %[[M]] : (tensor<176x32xbf16>, tensor<176x8xi8>) -> tensor<176x64xbf16>
// SPARSE:         gai.matmul %{{.*}}, %[[W]] transpose_rhs
// SPARSE:         gai.param "lm_head.weight" : tensor<256x176xbf16>
// SPARSE-NOT:     gai.decompress
// MASKED-LABEL: func.func @mlp
// MASKED:         %[[W:.*]] = gai.param "mlp.up.weight" {gai.prune = {layout = "nk", pattern = "2:4"}} : tensor<176x64xbf16>
// MASKED-NEXT:    %[[A:.*]] = gai.abs %[[W]] : tensor<176x64xbf16>
// MASKED-NEXT:    %[[G:.*]] = gai.reshape %[[A]] : tensor<176x64xbf16> to tensor<176x16x4xbf16>
// MASKED-NEXT:    %{{.*}}, %[[I:.*]] = gai.topk %[[G]] k = 2
// MASKED-NEXT:    %[[H:.*]] = gai.one_hot %[[I]] depth = 4 : (tensor<176x16x2xi32>) -> tensor<176x16x2x4xbf16>
// MASKED-NEXT:    %[[K:.*]] = gai.reduce sum %[[H]] axes = [2] : (tensor<176x16x2x4xbf16>) -> tensor<176x16x4xbf16>
// MASKED-NEXT:    %[[MASK:.*]] = gai.reshape %[[K]] : tensor<176x16x4xbf16> to tensor<176x64xbf16>
// MASKED-NEXT:    %[[P:.*]] = gai.mul %[[W]], %[[MASK]]
// MASKED-NEXT:    gai.matmul %{{.*}}, %[[P]] transpose_rhs
// MASKED:         gai.param "lm_head.weight" : tensor<256x176xbf16>
// ALL-LABEL: func.func @mlp
// ALL:          gai.param "lm_head.weight" : tensor<256x88xbf16>
// ALL:          gai.decompress {{.*}} -> tensor<256x176xbf16>
// STRUCT-LABEL: func.func @mlp
// STRUCT:         gai.param "mlp.up.weight" : tensor<176x64xbf16>
// STRUCT:         gai.param "lm_head.weight" : tensor<256x176xbf16>
func.func @mlp(%x: tensor<2x4x64xbf16>) -> tensor<2x4x256xbf16> {
  %w = gai.param "mlp.up.weight" : tensor<176x64xbf16>
  %h = gai.matmul %x, %w transpose_rhs : (tensor<2x4x64xbf16>, tensor<176x64xbf16>) -> tensor<2x4x176xbf16>
  %head = gai.param "lm_head.weight" : tensor<256x176xbf16>
  %y = gai.matmul %h, %head transpose_rhs : (tensor<2x4x176xbf16>, tensor<256x176xbf16>) -> tensor<2x4x256xbf16>
  return %y : tensor<2x4x256xbf16>
}

// -----

// A weight stored [k, n] (GPT-2's Conv1D): the values are stored [n, k/2],
// made from the file's transpose; masked, the graph transposes it first.
// SPARSE-LABEL: func.func @conv1d
// SPARSE:         %[[V:.*]] = gai.param "h.0.attn.c_attn.weight" transposed : tensor<96x16xf32>
// SPARSE:         %[[W:.*]] = gai.decompress %[[V]], %{{.*}} : (tensor<96x16xf32>, tensor<96x4xi8>) -> tensor<96x32xf32>
// SPARSE:         gai.matmul %{{.*}}, %[[W]] transpose_rhs : (tensor<1x8x32xf32>, tensor<96x32xf32>) -> tensor<1x8x96xf32>
// MASKED-LABEL: func.func @conv1d
// MASKED:         %[[W:.*]] = gai.param "h.0.attn.c_attn.weight" {gai.prune = {layout = "kn", pattern = "2:4"}} : tensor<32x96xf32>
// MASKED-NEXT:    %[[T:.*]] = gai.transpose %[[W]] permutation = [1, 0] : (tensor<32x96xf32>) -> tensor<96x32xf32>
// MASKED-NEXT:    gai.abs %[[T]]
// MASKED:         %[[P:.*]] = gai.mul %[[T]], %{{.*}} : (tensor<96x32xf32>, tensor<96x32xf32>) -> tensor<96x32xf32>
// MASKED:         gai.matmul %{{.*}}, %[[P]] transpose_rhs : (tensor<1x8x32xf32>, tensor<96x32xf32>) -> tensor<1x8x96xf32>
func.func @conv1d(%x: tensor<1x8x32xf32>) -> tensor<1x8x96xf32> {
  %w = gai.param "h.0.attn.c_attn.weight" : tensor<32x96xf32>
  %y = gai.matmul %x, %w : (tensor<1x8x32xf32>, tensor<32x96xf32>) -> tensor<1x8x96xf32>
  return %y : tensor<1x8x96xf32>
}

// -----

// Near-misses that stay dense: a weight with a use other than a matmul's
// rhs (here an add), one read as a matmul's lhs, a vector, and a weight
// already quantized.
// SPARSE-LABEL: func.func @near_misses
// SPARSE:         gai.param "other_use.weight" : tensor<16x16xf32>
// SPARSE:         gai.param "as_lhs.weight" : tensor<16x16xf32>
// SPARSE:         gai.param "bias" : tensor<16xf32>
// SPARSE:         gai.param "done.weight" : tensor<16x16xi8>
// SPARSE-NOT:     gai.decompress
// SPARSE:         return
// MASKED-LABEL: func.func @near_misses
// MASKED-NOT:     gai.topk
// MASKED:         return
func.func @near_misses(%x: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %a = gai.param "other_use.weight" : tensor<16x16xf32>
  %l = gai.param "as_lhs.weight" : tensor<16x16xf32>
  %bias = gai.param "bias" : tensor<16xf32>
  %q = gai.param "done.weight" : tensor<16x16xi8>
  %s = gai.param "done.weight.scale" : tensor<16xf32>
  %d = gai.dequantize int8 %q, %s : (tensor<16x16xi8>, tensor<16xf32>) -> tensor<16x16xf32>
  %m0 = gai.matmul %x, %a transpose_rhs : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m1 = gai.add %m0, %a : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m2 = gai.matmul %l, %x : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m3 = gai.add %m1, %m2 : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m4 = gai.add %m3, %bias : (tensor<16x16xf32>, tensor<16xf32>) -> tensor<16x16xf32>
  %m5 = gai.matmul %m4, %d transpose_rhs : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  return %m5 : tensor<16x16xf32>
}

// -----

// Structured: grouped-query attention with 4 query heads on 2 KV heads
// loses heads=2, one KV group. Every value that carries the heads shrinks,
// the KV caches (arguments and results) too; each weight sliced records
// its group, the axis, its blocks (offset, units, size) and the units
// kept, for gaic. The scale stays a scalar; the residual stream and the
// positions keep their shapes.
// STRUCT-LABEL: func.func @attention
// STRUCT-SAME:    %{{.*}}: tensor<1x2x32xf32>, %{{.*}}: tensor<1x2xi32>, %{{.*}}: tensor<1xi32>, %{{.*}}: tensor<1x1x4x8xf32>, %{{.*}}: tensor<1x1x4x8xf32>) -> (tensor<1x2x32xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>)
// STRUCT:         gai.param "attn.q.weight" {gai.prune = {axis = 0 : i64, group = "attn.", keep = 1 : i64, kind = "heads", per_unit = 2 : i64, segments = array<i64: 0, 2, 16>}} : tensor<16x32xf32>
// STRUCT:         gai.param "attn.k.weight" {gai.prune = {axis = 0 : i64, group = "attn.", keep = 1 : i64, kind = "heads", per_unit = 2 : i64, segments = array<i64: 0, 2, 8>}} : tensor<8x32xf32>
// STRUCT:         gai.param "attn.k.bias" {gai.prune = {axis = 0 : i64, group = "attn.", keep = 1 : i64, kind = "heads", per_unit = 2 : i64, segments = array<i64: 0, 2, 8>}} : tensor<8xf32>
// STRUCT:         gai.param "attn.v.weight" {{.*}} : tensor<8x32xf32>
// STRUCT:         gai.reshape %{{.*}} : tensor<1x2x16xf32> to tensor<1x2x2x8xf32>
// STRUCT:         gai.rope half %{{.*}}, %{{.*}} theta = 1.000000e+04 : (tensor<1x2x2x8xf32>, tensor<1x2xi32>) -> tensor<1x2x2x8xf32>
// STRUCT:         gai.cache_write %{{.*}}, %{{.*}} at %{{.*}} : (tensor<1x1x4x8xf32>, tensor<1x1x2x8xf32>, tensor<1xi32>) -> tensor<1x1x4x8xf32>
// STRUCT:         gai.repeat %{{.*}} axis = 1 times = 2 : (tensor<1x1x4x8xf32>) -> tensor<1x2x4x8xf32>
// STRUCT:         gai.softmax %{{.*}} axis = 3 : tensor<1x2x2x4xf32>
// STRUCT:         gai.param "attn.o.weight" {gai.prune = {axis = 1 : i64, group = "attn.", keep = 1 : i64, kind = "heads", per_unit = 2 : i64, segments = array<i64: 0, 2, 16>}} : tensor<32x16xf32>
// STRUCT-NEXT:    gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<1x2x16xf32>, tensor<32x16xf32>) -> tensor<1x2x32xf32>
func.func @attention(%x: tensor<1x2x32xf32>, %pos: tensor<1x2xi32>, %start: tensor<1xi32>, %kcache: tensor<1x2x4x8xf32>, %vcache: tensor<1x2x4x8xf32>) -> (tensor<1x2x32xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>) {
  %wq = gai.param "attn.q.weight" : tensor<32x32xf32>
  %q0 = gai.matmul %x, %wq transpose_rhs : (tensor<1x2x32xf32>, tensor<32x32xf32>) -> tensor<1x2x32xf32>
  %wk = gai.param "attn.k.weight" : tensor<16x32xf32>
  %k0 = gai.matmul %x, %wk transpose_rhs : (tensor<1x2x32xf32>, tensor<16x32xf32>) -> tensor<1x2x16xf32>
  %bk = gai.param "attn.k.bias" : tensor<16xf32>
  %k1 = gai.add %k0, %bk : (tensor<1x2x16xf32>, tensor<16xf32>) -> tensor<1x2x16xf32>
  %wv = gai.param "attn.v.weight" : tensor<16x32xf32>
  %v0 = gai.matmul %x, %wv transpose_rhs : (tensor<1x2x32xf32>, tensor<16x32xf32>) -> tensor<1x2x16xf32>
  %q1 = gai.reshape %q0 : tensor<1x2x32xf32> to tensor<1x2x4x8xf32>
  %q2 = gai.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<1x2x4x8xf32>) -> tensor<1x4x2x8xf32>
  %q = gai.rope half %q2, %pos theta = 1.000000e+04 : (tensor<1x4x2x8xf32>, tensor<1x2xi32>) -> tensor<1x4x2x8xf32>
  %k2 = gai.reshape %k1 : tensor<1x2x16xf32> to tensor<1x2x2x8xf32>
  %k3 = gai.transpose %k2 permutation = [0, 2, 1, 3] : (tensor<1x2x2x8xf32>) -> tensor<1x2x2x8xf32>
  %k = gai.rope half %k3, %pos theta = 1.000000e+04 : (tensor<1x2x2x8xf32>, tensor<1x2xi32>) -> tensor<1x2x2x8xf32>
  %v1 = gai.reshape %v0 : tensor<1x2x16xf32> to tensor<1x2x2x8xf32>
  %v = gai.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<1x2x2x8xf32>) -> tensor<1x2x2x8xf32>
  %kc = gai.cache_write %kcache, %k at %start : (tensor<1x2x4x8xf32>, tensor<1x2x2x8xf32>, tensor<1xi32>) -> tensor<1x2x4x8xf32>
  %vc = gai.cache_write %vcache, %v at %start : (tensor<1x2x4x8xf32>, tensor<1x2x2x8xf32>, tensor<1xi32>) -> tensor<1x2x4x8xf32>
  %kr = gai.repeat %kc axis = 1 times = 2 : (tensor<1x2x4x8xf32>) -> tensor<1x4x4x8xf32>
  %vr = gai.repeat %vc axis = 1 times = 2 : (tensor<1x2x4x8xf32>) -> tensor<1x4x4x8xf32>
  %s0 = gai.matmul %q, %kr transpose_rhs : (tensor<1x4x2x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x2x4xf32>
  %scale = gai.constant dense<0.35> : tensor<f32>
  %s1 = gai.mul %s0, %scale : (tensor<1x4x2x4xf32>, tensor<f32>) -> tensor<1x4x2x4xf32>
  %p = gai.softmax %s1 axis = 3 : tensor<1x4x2x4xf32>
  %o0 = gai.matmul %p, %vr : (tensor<1x4x2x4xf32>, tensor<1x4x4x8xf32>) -> tensor<1x4x2x8xf32>
  %o1 = gai.transpose %o0 permutation = [0, 2, 1, 3] : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
  %o2 = gai.reshape %o1 : tensor<1x2x4x8xf32> to tensor<1x2x32xf32>
  %wo = gai.param "attn.o.weight" : tensor<32x32xf32>
  %o = gai.matmul %o2, %wo transpose_rhs : (tensor<1x2x32xf32>, tensor<32x32xf32>) -> tensor<1x2x32xf32>
  return %o, %kc, %vc : tensor<1x2x32xf32>, tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>
}

// -----

// Structured: GPT-2's fused q/k/v projection (a Conv1D [k, n] with a bias)
// sliced three ways, each third losing the same head (MHA: a head is a
// group); the slices' offsets follow. A SwiGLU MLP of 16 channels keeps
// half (mlp=0.5): gate and up lose rows, down loses columns.
// STRUCT-LABEL: func.func @fused_qkv
// STRUCT:         gai.param "h.attn.c_attn.weight" {gai.prune = {axis = 1 : i64, group = "h.attn.", keep = 2 : i64, kind = "heads", per_unit = 1 : i64, segments = array<i64: 0, 4, 4, 16, 4, 4, 32, 4, 4>}} : tensor<16x24xf32>
// STRUCT:         gai.param "h.attn.c_attn.bias" {{.*}} : tensor<24xf32>
// STRUCT:         gai.slice %{{.*}} offsets = [0, 0] sizes = [2, 8] : (tensor<2x24xf32>) -> tensor<2x8xf32>
// STRUCT-NEXT:    gai.slice %{{.*}} offsets = [0, 8] sizes = [2, 8]
// STRUCT-NEXT:    gai.slice %{{.*}} offsets = [0, 16] sizes = [2, 8]
// STRUCT:         gai.param "h.attn.c_proj.weight" {{.*}} : tensor<8x16xf32>
// STRUCT:         gai.param "h.mlp.gate.weight" {gai.prune = {axis = 0 : i64, group = "h.mlp.", keep = 8 : i64, kind = "channels", per_unit = 1 : i64, segments = array<i64: 0, 16, 1>}} : tensor<8x16xf32>
// STRUCT:         gai.silu %{{.*}} : tensor<2x8xf32>
// STRUCT:         gai.param "h.mlp.up.weight" {{.*}} : tensor<8x16xf32>
// STRUCT:         gai.param "h.mlp.down.weight" {gai.prune = {axis = 1 : i64, group = "h.mlp.", keep = 8 : i64, kind = "channels", per_unit = 1 : i64, segments = array<i64: 0, 16, 1>}} : tensor<16x8xf32>
func.func @fused_qkv(%x: tensor<2x16xf32>) -> tensor<2x16xf32> {
  %w = gai.param "h.attn.c_attn.weight" : tensor<16x48xf32>
  %qkv0 = gai.matmul %x, %w : (tensor<2x16xf32>, tensor<16x48xf32>) -> tensor<2x48xf32>
  %b = gai.param "h.attn.c_attn.bias" : tensor<48xf32>
  %qkv = gai.add %qkv0, %b : (tensor<2x48xf32>, tensor<48xf32>) -> tensor<2x48xf32>
  %q0 = gai.slice %qkv offsets = [0, 0] sizes = [2, 16] : (tensor<2x48xf32>) -> tensor<2x16xf32>
  %k0 = gai.slice %qkv offsets = [0, 16] sizes = [2, 16] : (tensor<2x48xf32>) -> tensor<2x16xf32>
  %v0 = gai.slice %qkv offsets = [0, 32] sizes = [2, 16] : (tensor<2x48xf32>) -> tensor<2x16xf32>
  %q1 = gai.reshape %q0 : tensor<2x16xf32> to tensor<1x2x4x4xf32>
  %q = gai.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<1x2x4x4xf32>) -> tensor<1x4x2x4xf32>
  %k1 = gai.reshape %k0 : tensor<2x16xf32> to tensor<1x2x4x4xf32>
  %k = gai.transpose %k1 permutation = [0, 2, 1, 3] : (tensor<1x2x4x4xf32>) -> tensor<1x4x2x4xf32>
  %v1 = gai.reshape %v0 : tensor<2x16xf32> to tensor<1x2x4x4xf32>
  %v = gai.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<1x2x4x4xf32>) -> tensor<1x4x2x4xf32>
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x4x2x4xf32>, tensor<1x4x2x4xf32>) -> tensor<1x4x2x2xf32>
  %p = gai.softmax %s axis = 3 : tensor<1x4x2x2xf32>
  %o0 = gai.matmul %p, %v : (tensor<1x4x2x2xf32>, tensor<1x4x2x4xf32>) -> tensor<1x4x2x4xf32>
  %o1 = gai.transpose %o0 permutation = [0, 2, 1, 3] : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %o2 = gai.reshape %o1 : tensor<1x2x4x4xf32> to tensor<2x16xf32>
  %wo = gai.param "h.attn.c_proj.weight" : tensor<16x16xf32>
  %a = gai.matmul %o2, %wo : (tensor<2x16xf32>, tensor<16x16xf32>) -> tensor<2x16xf32>
  %wg = gai.param "h.mlp.gate.weight" : tensor<16x16xf32>
  %g0 = gai.matmul %a, %wg transpose_rhs : (tensor<2x16xf32>, tensor<16x16xf32>) -> tensor<2x16xf32>
  %g = gai.silu %g0 : tensor<2x16xf32>
  %wu = gai.param "h.mlp.up.weight" : tensor<16x16xf32>
  %u = gai.matmul %a, %wu transpose_rhs : (tensor<2x16xf32>, tensor<16x16xf32>) -> tensor<2x16xf32>
  %h = gai.mul %g, %u : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  %wd = gai.param "h.mlp.down.weight" : tensor<16x16xf32>
  %y = gai.matmul %h, %wd transpose_rhs : (tensor<2x16xf32>, tensor<16x16xf32>) -> tensor<2x16xf32>
  return %y : tensor<2x16xf32>
}
