// RUN: gai-opt %s | gai-opt | FileCheck %s
// Every op prints in a form that parses back to itself.

// CHECK-LABEL: func.func @values
func.func @values() -> (tensor<4x8xbf16>, tensor<f32>, tensor<2x5xi32>) {
  // CHECK: gai.param "model.embed_tokens.weight" : tensor<4x8xbf16>
  %w = gai.param "model.embed_tokens.weight" : tensor<4x8xbf16>
  // CHECK: gai.constant dense<5.000000e-01> : tensor<f32>
  %c = gai.constant dense<0.5> : tensor<f32>
  // CHECK: gai.iota dim = 1 : tensor<2x5xi32>
  %i = gai.iota dim = 1 : tensor<2x5xi32>
  return %w, %c, %i : tensor<4x8xbf16>, tensor<f32>, tensor<2x5xi32>
}

// CHECK-LABEL: func.func @element_types
func.func @element_types(%a: tensor<8xf8E4M3FN>, %b: tensor<8xi4>, %c: tensor<8xi8>, %d: tensor<8xf16>) -> (tensor<8xf8E4M3FN>, tensor<8xi4>, tensor<8xi8>, tensor<8xf16>) {
  // CHECK: gai.add %{{.*}}, %{{.*}} : (tensor<8xf8E4M3FN>, tensor<8xf8E4M3FN>) -> tensor<8xf8E4M3FN>
  %0 = gai.add %a, %a : (tensor<8xf8E4M3FN>, tensor<8xf8E4M3FN>) -> tensor<8xf8E4M3FN>
  // CHECK: gai.mul %{{.*}} : (tensor<8xi4>, tensor<8xi4>) -> tensor<8xi4>
  %1 = gai.mul %b, %b : (tensor<8xi4>, tensor<8xi4>) -> tensor<8xi4>
  // CHECK: gai.sub %{{.*}} : (tensor<8xi8>, tensor<8xi8>) -> tensor<8xi8>
  %2 = gai.sub %c, %c : (tensor<8xi8>, tensor<8xi8>) -> tensor<8xi8>
  // CHECK: gai.exp %{{.*}} : tensor<8xf16>
  %3 = gai.exp %d : tensor<8xf16>
  return %0, %1, %2, %3 : tensor<8xf8E4M3FN>, tensor<8xi4>, tensor<8xi8>, tensor<8xf16>
}

// CHECK-LABEL: func.func @embedding_matmul
func.func @embedding_matmul(%table: tensor<256x64xf32>, %ids: tensor<2x16xi32>, %w: tensor<128x64xf32>, %x: tensor<4x2x16x64xf32>, %y: tensor<2x64x16xf32>) {
  // CHECK: gai.embedding %{{.*}}, %{{.*}} : (tensor<256x64xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
  %e = gai.embedding %table, %ids : (tensor<256x64xf32>, tensor<2x16xi32>) -> tensor<2x16x64xf32>
  // CHECK: gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<2x16x64xf32>, tensor<128x64xf32>) -> tensor<2x16x128xf32>
  %p = gai.matmul %e, %w transpose_rhs : (tensor<2x16x64xf32>, tensor<128x64xf32>) -> tensor<2x16x128xf32>
  // Batch dims broadcast: [4, 2] with [2].
  // CHECK: gai.matmul %{{.*}}, %{{.*}} : (tensor<4x2x16x64xf32>, tensor<2x64x16xf32>) -> tensor<4x2x16x16xf32>
  %b = gai.matmul %x, %y : (tensor<4x2x16x64xf32>, tensor<2x64x16xf32>) -> tensor<4x2x16x16xf32>
  // CHECK: gai.matmul %{{.*}}, %{{.*}} transpose_lhs transpose_rhs : (tensor<2x64x16xf32>, tensor<16x64xf32>) -> tensor<2x16x16xf32>
  %w2 = gai.slice %w offsets = [0, 0] sizes = [16, 64] : (tensor<128x64xf32>) -> tensor<16x64xf32>
  %t = gai.matmul %y, %w2 transpose_lhs transpose_rhs : (tensor<2x64x16xf32>, tensor<16x64xf32>) -> tensor<2x16x16xf32>
  return
}

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%x: tensor<2x3xf32>, %row: tensor<3xf32>, %s: tensor<f32>) {
  // CHECK: gai.add {{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %0 = gai.add %x, %row : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: gai.sub {{.*}} -> tensor<2x3xf32>
  %1 = gai.sub %s, %x : (tensor<f32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: gai.mul
  %2 = gai.mul %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: gai.div
  %3 = gai.div %x, %s : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: gai.max
  %4 = gai.max %x, %row : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: gai.min
  %5 = gai.min %x, %row : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: gai.pow
  %6 = gai.pow %x, %s : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xf32>
  // CHECK: gai.neg %{{.*}} : tensor<2x3xf32>
  %7 = gai.neg %x : tensor<2x3xf32>
  // CHECK: gai.abs
  %8 = gai.abs %x : tensor<2x3xf32>
  // CHECK: gai.exp
  %9 = gai.exp %x : tensor<2x3xf32>
  // CHECK: gai.log
  %10 = gai.log %x : tensor<2x3xf32>
  // CHECK: gai.sqrt
  %11 = gai.sqrt %x : tensor<2x3xf32>
  // CHECK: gai.rsqrt
  %12 = gai.rsqrt %x : tensor<2x3xf32>
  // CHECK: gai.reciprocal
  %13 = gai.reciprocal %x : tensor<2x3xf32>
  // CHECK: gai.tanh
  %14 = gai.tanh %x : tensor<2x3xf32>
  // CHECK: gai.sigmoid
  %15 = gai.sigmoid %x : tensor<2x3xf32>
  // CHECK: gai.silu
  %16 = gai.silu %x : tensor<2x3xf32>
  // CHECK: gai.relu
  %17 = gai.relu %x : tensor<2x3xf32>
  // CHECK: gai.gelu none %{{.*}} : tensor<2x3xf32>
  %18 = gai.gelu none %x : tensor<2x3xf32>
  // CHECK: gai.gelu tanh %{{.*}} : tensor<2x3xf32>
  %19 = gai.gelu tanh %x : tensor<2x3xf32>
  // CHECK: gai.convert %{{.*}} : tensor<2x3xf32> to tensor<2x3xbf16>
  %20 = gai.convert %x : tensor<2x3xf32> to tensor<2x3xbf16>
  return
}

// CHECK-LABEL: func.func @reductions_and_norms
func.func @reductions_and_norms(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) {
  // CHECK: gai.reduce sum %{{.*}} axes = [2] : (tensor<2x8x64xf32>) -> tensor<2x8xf32>
  %0 = gai.reduce sum %x axes = [2] : (tensor<2x8x64xf32>) -> tensor<2x8xf32>
  // CHECK: gai.reduce mean %{{.*}} axes = [1, 2] keep_dims : (tensor<2x8x64xf32>) -> tensor<2x1x1xf32>
  %1 = gai.reduce mean %x axes = [1, 2] keep_dims : (tensor<2x8x64xf32>) -> tensor<2x1x1xf32>
  // CHECK: gai.reduce max
  %2 = gai.reduce max %x axes = [0] : (tensor<2x8x64xf32>) -> tensor<8x64xf32>
  // CHECK: gai.reduce min
  %3 = gai.reduce min %x axes = [0] keep_dims : (tensor<2x8x64xf32>) -> tensor<1x8x64xf32>
  // CHECK: gai.softmax %{{.*}} axis = 2 : tensor<2x8x64xf32>
  %4 = gai.softmax %x axis = 2 : tensor<2x8x64xf32>
  // CHECK: gai.rms_norm %{{.*}}, %{{.*}} eps = 9.9999999999999995E-7 : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %5 = gai.rms_norm %x, %w eps = 1.0e-6 : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  // CHECK: gai.rms_norm {{.*}} unit_offset
  %6 = gai.rms_norm %x, %w eps = 1.0e-6 unit_offset : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  // CHECK: gai.layer_norm %{{.*}}, %{{.*}}, %{{.*}} eps = 1.000000e-05 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %7 = gai.layer_norm %x, %w, %b eps = 1.0e-5 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  // CHECK: gai.layer_norm %{{.*}}, %{{.*}} eps = 1.000000e-05 : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  %8 = gai.layer_norm %x, %w eps = 1.0e-5 : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return
}

// CHECK-LABEL: func.func @attention_pieces
func.func @attention_pieces(%q: tensor<2x4x8x16xf32>, %k: tensor<2x2x8x16xf32>, %pos: tensor<1x8xi32>, %s: tensor<2x4x8x8xf32>) {
  // CHECK: gai.rope half %{{.*}}, %{{.*}} theta = 1.000000e+04 : (tensor<2x4x8x16xf32>, tensor<1x8xi32>) -> tensor<2x4x8x16xf32>
  %0 = gai.rope half %q, %pos theta = 10000.0 : (tensor<2x4x8x16xf32>, tensor<1x8xi32>) -> tensor<2x4x8x16xf32>
  // CHECK: gai.rope interleaved
  %1 = gai.rope interleaved %k, %pos theta = 500000.0 : (tensor<2x2x8x16xf32>, tensor<1x8xi32>) -> tensor<2x2x8x16xf32>
  // A frequency table and a scale.
  // CHECK: gai.rope half %{{.*}}, %{{.*}} theta = 1.000000e+04 {attention_factor = 1.190000e+00 : f32, frequencies = array<f32: 1.000000e+00, 5.000000e-01, 2.500000e-01, 1.250000e-01, 6.250000e-02, 3.125000e-02, 1.562500e-02, 7.812500e-03>}
  %t = gai.rope half %q, %pos theta = 10000.0 {frequencies = array<f32: 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125>, attention_factor = 1.19 : f32} : (tensor<2x4x8x16xf32>, tensor<1x8xi32>) -> tensor<2x4x8x16xf32>
  // CHECK: gai.repeat %{{.*}} axis = 1 times = 2 : (tensor<2x2x8x16xf32>) -> tensor<2x4x8x16xf32>
  %2 = gai.repeat %1 axis = 1 times = 2 : (tensor<2x2x8x16xf32>) -> tensor<2x4x8x16xf32>
  // CHECK: gai.causal_mask : tensor<8x8xi1>
  %m = gai.causal_mask : tensor<8x8xi1>
  // CHECK: gai.causal_mask window = 4 : tensor<8x8xi1>
  %mw = gai.causal_mask window = 4 : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  // CHECK: gai.select %{{.*}}, %{{.*}}, %{{.*}} : (tensor<8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %3 = gai.select %m, %s, %ninf : (tensor<8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  return
}

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x8x64xf32>, %y: tensor<2x4x64xf32>) {
  // CHECK: gai.reshape %{{.*}} : tensor<2x8x64xf32> to tensor<2x8x4x16xf32>
  %0 = gai.reshape %x : tensor<2x8x64xf32> to tensor<2x8x4x16xf32>
  // CHECK: gai.transpose %{{.*}} permutation = [0, 2, 1, 3] : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
  %1 = gai.transpose %0 permutation = [0, 2, 1, 3] : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
  // CHECK: gai.slice %{{.*}} offsets = [0, 2, 32] sizes = [2, 4, 32] : (tensor<2x8x64xf32>) -> tensor<2x4x32xf32>
  %2 = gai.slice %x offsets = [0, 2, 32] sizes = [2, 4, 32] : (tensor<2x8x64xf32>) -> tensor<2x4x32xf32>
  // CHECK: gai.concat %{{.*}}, %{{.*}} axis = 1 : (tensor<2x8x64xf32>, tensor<2x4x64xf32>) -> tensor<2x12x64xf32>
  %3 = gai.concat %x, %y axis = 1 : (tensor<2x8x64xf32>, tensor<2x4x64xf32>) -> tensor<2x12x64xf32>
  return
}

// CHECK-LABEL: func.func @experts_and_loss
func.func @experts_and_loss(%probs: tensor<16x4xf32>, %logits: tensor<2x8x256xf32>, %labels: tensor<2x8xi32>) {
  // CHECK: %{{.*}}, %{{.*}} = gai.topk %{{.*}} k = 2 : (tensor<16x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>)
  %v, %i = gai.topk %probs k = 2 : (tensor<16x4xf32>) -> (tensor<16x2xf32>, tensor<16x2xi32>)
  // CHECK: gai.one_hot %{{.*}} depth = 4 : (tensor<16x2xi32>) -> tensor<16x2x4xf32>
  %oh = gai.one_hot %i depth = 4 : (tensor<16x2xi32>) -> tensor<16x2x4xf32>
  // CHECK: gai.cross_entropy mean %{{.*}}, %{{.*}} : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
  %l = gai.cross_entropy mean %logits, %labels : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<f32>
  // CHECK: gai.cross_entropy none %{{.*}}, %{{.*}} {ignore_index = 0 : i64} : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2x8xf32>
  %n = gai.cross_entropy none %logits, %labels {ignore_index = 0 : i64} : (tensor<2x8x256xf32>, tensor<2x8xi32>) -> tensor<2x8xf32>
  // CHECK: gai.cross_entropy_grad mean %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f32>) -> tensor<2x8x256xf32>
  %g = gai.cross_entropy_grad mean %logits, %labels, %l : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f32>) -> tensor<2x8x256xf32>
  // CHECK: gai.cross_entropy_grad none
  %gn = gai.cross_entropy_grad none %logits, %labels, %n : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<2x8xf32>) -> tensor<2x8x256xf32>
  return
}

// CHECK-LABEL: func.func @flash_attention
func.func @flash_attention(%q: tensor<1x8x4x64xbf16>, %k: tensor<1x2x16x64xbf16>, %v: tensor<1x2x16x32xbf16>) {
  // CHECK: gai.flash_attention %{{.*}}, %{{.*}}, %{{.*}} scale = 1.250000e-01 kv_groups = 4 causal window = 8 softcap = 5.000000e+01 : (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>) -> tensor<1x8x4x32xbf16>
  %0 = gai.flash_attention %q, %k, %v scale = 0.125 kv_groups = 4 causal window = 8 softcap = 50.0 : (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>) -> tensor<1x8x4x32xbf16>
  // CHECK: gai.flash_attention %{{.*}}, %{{.*}}, %{{.*}} scale = 1.000000e+00 kv_groups = 4 : (
  %1 = gai.flash_attention %q, %k, %v scale = 1.0 kv_groups = 4 : (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>) -> tensor<1x8x4x32xbf16>
  return
}

// CHECK-LABEL: func.func @embedding_grad
func.func @embedding_grad(%g: tensor<2x5x8xbf16>, %ids: tensor<2x5xi32>) {
  // CHECK: gai.embedding_grad %{{.*}}, %{{.*}} rows = 16 {vocab_shards = 2 : i64} : (tensor<2x5x8xbf16>, tensor<2x5xi32>) -> tensor<16x8xbf16>
  %0 = gai.embedding_grad %g, %ids rows = 16 {vocab_shards = 2} : (tensor<2x5x8xbf16>, tensor<2x5xi32>) -> tensor<16x8xbf16>
  return
}

// CHECK-LABEL: func.func @flash_attention_grad
func.func @flash_attention_grad(%q: tensor<1x8x4x64xbf16>, %k: tensor<1x2x16x64xbf16>, %v: tensor<1x2x16x32xbf16>, %g: tensor<1x8x4x32xbf16>) {
  // CHECK: %[[O:.*]], %[[LSE:.*]] = gai.flash_attention %{{.*}}, %{{.*}}, %{{.*}} scale = 1.250000e-01 kv_groups = 4 causal window = 8 with_lse : (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>) -> (tensor<1x8x4x32xbf16>, tensor<1x8x4xf32>)
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.125 kv_groups = 4 causal window = 8 with_lse : (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>) -> (tensor<1x8x4x32xbf16>, tensor<1x8x4xf32>)
  // CHECK: gai.flash_attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[O]], %[[LSE]], %{{.*}} scale = 1.250000e-01 kv_groups = 4 causal window = 8 : ({{.*}}) -> (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>)
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %g scale = 0.125 kv_groups = 4 causal window = 8 : (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>, tensor<1x8x4x32xbf16>, tensor<1x8x4xf32>, tensor<1x8x4x32xbf16>) -> (tensor<1x8x4x64xbf16>, tensor<1x2x16x64xbf16>, tensor<1x2x16x32xbf16>)
  return
}

// CHECK-LABEL: func.func @cached_attention
func.func @cached_attention(%q: tensor<2x8x1x64xbf16>, %k: tensor<2x2x1x64xbf16>, %c: tensor<2x2x16x64xbf16>, %s: tensor<2xi32>, %p: tensor<1x1xi32>) {
  // CHECK: gai.cached_attention %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}} at %{{.*}} rope interleaved %{{.*}} theta = 5.000000e+05 scale = 1.250000e-01 kv_groups = 4 causal window = 8 softcap = 5.000000e+01 : (
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %s rope interleaved %p theta = 5.0e5 scale = 0.125 kv_groups = 4 causal window = 8 softcap = 50.0 : (tensor<2x8x1x64xbf16>, tensor<2x2x1x64xbf16>, tensor<2x2x1x64xbf16>, tensor<2x2x16x64xbf16>, tensor<2x2x16x64xbf16>, tensor<2xi32>, tensor<1x1xi32>) -> (tensor<2x8x1x64xbf16>, tensor<2x2x16x64xbf16>, tensor<2x2x16x64xbf16>)
  // CHECK: gai.cached_attention %{{.*}}, %{{.*}}, %{{.*}} into %{{.*}}, %{{.*}} at %{{.*}} scale = 1.000000e+00 kv_groups = 4 causal : (
  %1:3 = gai.cached_attention %q, %k, %k into %c, %c at %s scale = 1.0 kv_groups = 4 causal : (tensor<2x8x1x64xbf16>, tensor<2x2x1x64xbf16>, tensor<2x2x1x64xbf16>, tensor<2x2x16x64xbf16>, tensor<2x2x16x64xbf16>, tensor<2xi32>) -> (tensor<2x8x1x64xbf16>, tensor<2x2x16x64xbf16>, tensor<2x2x16x64xbf16>)
  return
}

// CHECK-LABEL: func.func @decompress
func.func @decompress(%v: tensor<176x32xbf16>, %m: tensor<176x8xi8>) -> tensor<176x64xbf16> {
  // CHECK: gai.decompress %{{.*}}, %{{.*}} : (tensor<176x32xbf16>, tensor<176x8xi8>) -> tensor<176x64xbf16>
  %w = gai.decompress %v, %m : (tensor<176x32xbf16>, tensor<176x8xi8>) -> tensor<176x64xbf16>
  return %w : tensor<176x64xbf16>
}

// CHECK-LABEL: func.func @gated_gemm
func.func @gated_gemm(%x: tensor<1x1x64xbf16>, %g: tensor<176x64xbf16>, %u: tensor<176x64xbf16>) -> tensor<1x1x176xbf16> {
  // CHECK: gai.gated_gemm %{{.*}}, %{{.*}}, %{{.*}} activation = gelu_tanh : (tensor<1x1x64xbf16>, tensor<176x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
  %0 = gai.gated_gemm %x, %g, %u activation = gelu_tanh : (tensor<1x1x64xbf16>, tensor<176x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
  return %0 : tensor<1x1x176xbf16>
}

// CHECK-LABEL: func.func @gemm_and_fusion
func.func @gemm_and_fusion(%x: tensor<2x8x64xf32>, %w: tensor<256x64xf32>, %b: tensor<256xf32>, %r: tensor<2x8x256xf32>, %n: tensor<256xf32>) -> tensor<2x8x256xf32> {
  // CHECK: gai.gemm %{{.*}}, %{{.*}} bias %{{.*}} residual %{{.*}} transpose_rhs activation = silu : (tensor<2x8x64xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<2x8x256xf32>) -> tensor<2x8x256xf32>
  %0 = gai.gemm %x, %w bias %b residual %r transpose_rhs activation = silu : (tensor<2x8x64xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<2x8x256xf32>) -> tensor<2x8x256xf32>
  // CHECK: gai.gemm %{{.*}}, %{{.*}} transpose_rhs : (tensor<2x8x64xf32>, tensor<256x64xf32>) -> tensor<2x8x256xf32>
  %1 = gai.gemm %x, %w transpose_rhs : (tensor<2x8x64xf32>, tensor<256x64xf32>) -> tensor<2x8x256xf32>
  // CHECK: gai.fusion %{{.*}}, %{{.*}} : (tensor<2x8x256xf32>, tensor<256xf32>) -> tensor<2x8x256xf32> {
  // CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<2x8x256xf32>, %[[B:.*]]: tensor<256xf32>):
  // CHECK-NEXT: %[[N:.*]] = gai.rms_norm %[[A]], %[[B]]
  // CHECK-NEXT: gai.yield %[[N]] : tensor<2x8x256xf32>
  %2 = gai.fusion %0, %n : (tensor<2x8x256xf32>, tensor<256xf32>) -> tensor<2x8x256xf32> {
  ^bb0(%a: tensor<2x8x256xf32>, %c: tensor<256xf32>):
    %y = gai.rms_norm %a, %c eps = 1.0e-5 : (tensor<2x8x256xf32>, tensor<256xf32>) -> tensor<2x8x256xf32>
    gai.yield %y : tensor<2x8x256xf32>
  }
  return %2 : tensor<2x8x256xf32>
}

// CHECK-LABEL: func.func @generation_steps
func.func @generation_steps(%cache: tensor<2x2x64x16xf32>, %kv: tensor<2x2x1x16xf32>, %start: tensor<2xi32>, %h: tensor<2x8x64xf32>, %q: tensor<2x4x1x16xf32>) {
  // CHECK: gai.cache_write %{{.*}}, %{{.*}} at %{{.*}} : (tensor<2x2x64x16xf32>, tensor<2x2x1x16xf32>, tensor<2xi32>) -> tensor<2x2x64x16xf32>
  %c = gai.cache_write %cache, %kv at %start : (tensor<2x2x64x16xf32>, tensor<2x2x1x16xf32>, tensor<2xi32>) -> tensor<2x2x64x16xf32>
  // CHECK: gai.position_mask %{{.*}} window = 16 : (tensor<2xi32>) -> tensor<2x1x1x64xi1>
  %m = gai.position_mask %start window = 16 : (tensor<2xi32>) -> tensor<2x1x1x64xi1>
  // CHECK: gai.take %{{.*}}, %{{.*}} : (tensor<2x8x64xf32>, tensor<2xi32>) -> tensor<2x64xf32>
  %t = gai.take %h, %start : (tensor<2x8x64xf32>, tensor<2xi32>) -> tensor<2x64xf32>
  // CHECK: gai.flash_attention %{{.*}}, %{{.*}}, %{{.*}} at %{{.*}} scale = 2.500000e-01 kv_groups = 2 causal : (tensor<2x4x1x16xf32>, tensor<2x2x64x16xf32>, tensor<2x2x64x16xf32>, tensor<2xi32>) -> tensor<2x4x1x16xf32>
  %o = gai.flash_attention %q, %c, %c at %start scale = 0.25 kv_groups = 2 causal : (tensor<2x4x1x16xf32>, tensor<2x2x64x16xf32>, tensor<2x2x64x16xf32>, tensor<2xi32>) -> tensor<2x4x1x16xf32>
  return
}
