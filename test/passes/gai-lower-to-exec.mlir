// RUN: gai-opt %s --gai-lower-to-exec --split-input-file --verify-diagnostics | FileCheck %s
// RUN: gai-opt %s --gai-lower-to-exec="gpu-kernels=true" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=GPU
// RUN: gai-opt %s --gai-lower-to-exec="gpu-kernels=true fold-norm-rows=8" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=FOLD
// RUN: gai-opt %s --gai-lower-to-exec="params-in-state=true" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=STATE

// Each case is a module, so that its label survives lowering. Library
// commands (exec.call) are left unchecked: they are becoming typed ops.

// A matmul against a parameter: the function becomes an entry, its
// argument an input (named by gai.name), its result the output "logits",
// the parameter a weight, the matmul one GEMM writing the output in place.
// CHECK-LABEL: module @matmul attributes {exec.state_size = 0 : i64, exec.weights_size = 128 : i64}
// CHECK:       exec.entry @forward arena 0 {
// CHECK-NEXT:    exec.input "x" : tensor<2x8xf32> at <input 0, 64>
// CHECK-NEXT:    exec.output "logits" : tensor<2x4xf32> at <output 0, 32>
// CHECK-NEXT:    exec.gemm {a = #exec.ref<input 0, 64>, activation = #exec<activation none>, b = #exec.ref<weights 0, 128>, {{.*}}c = #exec.ref<output 0, 32>, element = f32, k = 8 : i64, m = 2 : i64, n = 4 : i64, {{.*}}transpose_a = false, transpose_b = true}
// CHECK-NEXT:  }
// CHECK-NEXT:  exec.weight "w" : tensor<4x8xf32> at <weights 0, 128>
// With params-in-state, the GEMM reads the trainable copy of the weight.
// STATE-LABEL: module @matmul attributes {exec.state_size = 128 : i64, exec.weights_size = 128 : i64}
// STATE:       exec.state parameter "param.w" : tensor<4x8xf32> at <state 0, 128>
// STATE:       exec.gemm {{{.*}}b = #exec.ref<state 0, 128>
// STATE:       exec.weight "w" : tensor<4x8xf32> at <weights 0, 128>
module @matmul {
  func.func @forward(%x: tensor<2x8xf32> {gai.name = "x"}) -> tensor<2x4xf32> {
    %w = gai.param "w" : tensor<4x8xf32>
    %y = gai.matmul %x, %w transpose_rhs : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
    return %y : tensor<2x4xf32>
  }
}

// -----

// A GEMM's epilogue (bias, activation, residual) stays in the GEMM command.
// CHECK-LABEL: module @gemm_epilogue
// CHECK:       exec.input "arg0" : tensor<2x8x64xf32> at <input 0, 4096>
// CHECK:       exec.input "arg1" : tensor<2x8x256xf32> at <input [[R:[0-9]+]], 16384>
// CHECK:       exec.gemm {a = #exec.ref<input 0, 4096>, activation = #exec<activation gelu_tanh>, b = #exec.ref<weights [[W:[0-9]+]], 65536>, batch = 1 : i64, bias = #exec.ref<weights [[B:[0-9]+]], 1024>, c = #exec.ref<output 0, 16384>, element = f32, k = 64 : i64, m = 16 : i64, n = 256 : i64, residual = #exec.ref<input [[R]], 16384>
// CHECK-DAG:   exec.weight "b" : tensor<256xf32> at <weights [[B]], 1024>
// CHECK-DAG:   exec.weight "w" : tensor<256x64xf32> at <weights [[W]], 65536>
module @gemm_epilogue {
  func.func @forward(%x: tensor<2x8x64xf32>, %r: tensor<2x8x256xf32>) -> tensor<2x8x256xf32> {
    %w = gai.param "w" : tensor<256x64xf32>
    %b = gai.param "b" : tensor<256xf32>
    %y = gai.gemm %x, %w bias %b residual %r transpose_rhs activation = gelu_tanh : (tensor<2x8x64xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<2x8x256xf32>) -> tensor<2x8x256xf32>
    return %y : tensor<2x8x256xf32>
  }
}

// -----

// A fusion region becomes a kernel function over memrefs, one buffer per
// region operand and result, and a launch of it. For the CPU the kernel
// loops over rows; for the GPU it also has a launch shape.
// CHECK-LABEL: module @fused
// CHECK:       exec.entry @forward arena 0 {
// CHECK-NEXT:    exec.input "arg0" : tensor<4x16xf32> at <input 0, 256>
// CHECK-NEXT:    exec.input "arg1" : tensor<4x16xf32> at <input 256, 256>
// CHECK-NEXT:    exec.output "logits" : tensor<4x16xf32> at <output 0, 256>
// CHECK-NEXT:    exec.launch @k0{{[a-z_]*}} [#exec.ref<input 0, 256>, #exec.ref<input 256, 256>, #exec.ref<output 0, 256>]
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func @k0{{[a-z_]*}}(%{{.*}}: memref<4x16xf32>, %{{.*}}: memref<4x16xf32>, %{{.*}}: memref<4x16xf32>) {
// CHECK:         scf.for
// CHECK:         math.exp
// CHECK:         return
// GPU-LABEL: module @fused
// GPU:       exec.launch @k0
// GPU:       func.func @k0{{[a-z_]*}}({{.*}}) attributes {gai.block = {{[0-9]+}} : i64, gai.grid = {{[0-9]+}} : i64} {
// GPU:         gpu.thread_id x
module @fused {
  func.func @forward(%a: tensor<4x16xf32>, %b: tensor<4x16xf32>) -> tensor<4x16xf32> {
    %0 = gai.fusion %a, %b : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> {
    ^bb0(%x: tensor<4x16xf32>, %y: tensor<4x16xf32>):
      %1 = gai.add %x, %y : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
      %2 = gai.silu %1 : tensor<4x16xf32>
      gai.yield %2 : tensor<4x16xf32>
    }
    return %0 : tensor<4x16xf32>
  }
}

// -----

// Identical regions share one kernel; the value between them lives in the
// arena.
// CHECK-LABEL: module @shared_kernel
// CHECK:       exec.entry @forward arena 256 {
// CHECK:         exec.launch @k0{{[a-z_]*}} [#exec.ref<input 0, 256>, #exec.ref<arena 0, 256>]
// CHECK-NEXT:    exec.launch @k0{{[a-z_]*}} [#exec.ref<arena 0, 256>, #exec.ref<output 0, 256>]
// CHECK-NEXT:  }
// CHECK-NEXT:  func.func @k0
// CHECK-NOT:   func.func
module @shared_kernel {
  func.func @forward(%a: tensor<4x16xf32>) -> tensor<4x16xf32> {
    %0 = gai.fusion %a : (tensor<4x16xf32>) -> tensor<4x16xf32> {
    ^bb0(%x: tensor<4x16xf32>):
      %1 = gai.exp %x : tensor<4x16xf32>
      gai.yield %1 : tensor<4x16xf32>
    }
    %2 = gai.fusion %0 : (tensor<4x16xf32>) -> tensor<4x16xf32> {
    ^bb0(%x: tensor<4x16xf32>):
      %3 = gai.exp %x : tensor<4x16xf32>
      gai.yield %3 : tensor<4x16xf32>
    }
    return %2 : tensor<4x16xf32>
  }
}

// -----

// Flash attention with grouped queries (4 heads over 2 KV heads) is one
// attention command.
// CHECK-LABEL: module @attention
// CHECK:       exec.attention {batch = 1 : i64, causal = true, element = f32, head_dim = 16 : i64, heads = 4 : i64, k = #exec.ref<input 2048, 1024>, keys = 8 : i64, kv_heads = 2 : i64, out = #exec.ref<output 0, 2048>, q = #exec.ref<input 0, 2048>, queries = 8 : i64, {{.*}}scale = 2.500000e-01 : f32, softcap = 0.000000e+00 : f32, v = #exec.ref<input 3072, 1024>, value_dim = 16 : i64, window = 0 : i64}
module @attention {
  func.func @forward(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
    %o = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 2 causal : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32>
    return %o : tensor<1x4x8x16xf32>
  }
}

// -----

// A decode-sized RMSNorm between two GEMMs: with fold-norm-rows, the GEMM
// making its input also writes x ⊙ weight and the rows' sums of squares,
// the GEMM reading it scales by 1/rms, and the norm has no kernel. Without
// it (gpu-kernels alone), the norm is a kernel of its own.
// FOLD-LABEL: module @norm_fold
// FOLD:       exec.gemm {a = #exec.ref<input 0, 512>, {{.*}}norm_out = #exec.ref<arena [[OUT:[0-9]+]], 512>, norm_squares = #exec.ref<arena [[SQ:[0-9]+]], 32>, norm_weight = #exec.ref<weights 0, 256>, residual = #exec.ref<input 512, 1024>
// FOLD-NEXT:  exec.gemm {a = #exec.ref<arena [[OUT]], 512>, a_norm_eps = 9.99999974E-6 : f32, a_squares = #exec.ref<arena [[SQ]], 32>
// FOLD-NOT:   exec.launch
// FOLD-NOT:   func.func
// GPU-LABEL: module @norm_fold
// GPU:       exec.gemm
// GPU-NOT:   norm_out
// GPU-NEXT:  exec.launch @k0
// GPU-NEXT:  exec.gemm
// GPU-NOT:   a_squares
// GPU:       func.func @k0
module @norm_fold {
  func.func @forward(%x: tensor<4x64xbf16>, %r: tensor<4x64xf32>) -> tensor<4x32xbf16> {
    %w1 = gai.param "w1" : tensor<64x64xbf16>
    %n = gai.param "norm" : tensor<64xf32>
    %w2 = gai.param "w2" : tensor<32x64xbf16>
    %h = gai.gemm %x, %w1 residual %r transpose_rhs : (tensor<4x64xbf16>, tensor<64x64xbf16>, tensor<4x64xf32>) -> tensor<4x64xf32>
    %y = gai.fusion %h, %n : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xbf16> {
    ^bb0(%a: tensor<4x64xf32>, %b: tensor<64xf32>):
      %0 = gai.rms_norm %a, %b eps = 1.0e-5 : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
      %1 = gai.convert %0 : tensor<4x64xf32> to tensor<4x64xbf16>
      gai.yield %1 : tensor<4x64xbf16>
    }
    %z = gai.gemm %y, %w2 transpose_rhs : (tensor<4x64xbf16>, tensor<32x64xbf16>) -> tensor<4x32xbf16>
    return %z : tensor<4x32xbf16>
  }
}

// -----

// A row kernel whose threads each hold one vector of the row (2048 f32 over
// 256 threads: 8 lanes) loads its row once, before the statistics, which
// and the results then read registers; the bf16 row loads 16 bytes a thread.
// FOLD-LABEL: module @row_in_registers
// GPU-LABEL: module @row_in_registers
// GPU:       func.func @k0{{[a-z_]*}}(%arg0: memref<4x2048xf32>, %arg1: memref<4x2048xbf16>, %arg2: memref<2048xf32>, %arg3: memref<4x2048xbf16>) attributes {gai.block = 256 : i64, gai.grid = 4 : i64}
// GPU:         vector.load %arg2[{{.*}}] {{.*}} : memref<2048xf32>, vector<8xf32>
// GPU:         vector.load %arg0[{{.*}}] {{.*}} : memref<4x2048xf32>, vector<8xf32>
// GPU:         vector.load %arg1[{{.*}}] {{.*}} : memref<4x2048xbf16>, vector<8xbf16>
// GPU-NOT:     vector.load
// GPU:         gpu.all_reduce add
// GPU-NOT:     vector.load
// GPU:         vector.store {{.*}}, %arg3[{{.*}}] {{.*}} : memref<4x2048xbf16>, vector<8xbf16>
// GPU-NOT:     vector.load
// GPU:         return
module @row_in_registers {
  func.func @forward(%x: tensor<4x2048xf32>, %dy: tensor<4x2048xbf16>) -> tensor<4x2048xbf16> {
    %n = gai.param "norm" : tensor<2048xf32>
    %y = gai.fusion %x, %dy, %n : (tensor<4x2048xf32>, tensor<4x2048xbf16>, tensor<2048xf32>) -> tensor<4x2048xbf16> {
    ^bb0(%a: tensor<4x2048xf32>, %d: tensor<4x2048xbf16>, %w: tensor<2048xf32>):
      %0 = gai.rms_norm %a, %w eps = 1.0e-5 : (tensor<4x2048xf32>, tensor<2048xf32>) -> tensor<4x2048xf32>
      %1 = gai.convert %d : tensor<4x2048xbf16> to tensor<4x2048xf32>
      %2 = gai.mul %0, %1 : (tensor<4x2048xf32>, tensor<4x2048xf32>) -> tensor<4x2048xf32>
      %3 = gai.convert %2 : tensor<4x2048xf32> to tensor<4x2048xbf16>
      gai.yield %3 : tensor<4x2048xbf16>
    }
    return %y : tensor<4x2048xbf16>
  }
}

// -----

// An op outside a fusion region with no command of its own is reported on
// the op, and the pass fails.
module @no_lowering {
  func.func @forward(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {
    // expected-error @+1 {{'gai.pow' op has no lowering to the exec dialect yet}}
    %0 = gai.pow %a, %b : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    return %0 : tensor<2x3xf32>
  }
}

// -----

// A 2:4 weight: the GEMM reads its kept values and positions as they are
// the GPU's norm folding a decode-sized GEMM over it still keeps its norm.
// CHECK-LABEL: module @sparse_2_4
// CHECK:       exec.gemm {a = #exec.ref<input 0, 256>, {{.*}}b = #exec.ref<weights [[V:[0-9]+]], 512>, b_meta = #exec.ref<weights [[M:[0-9]+]], 32>, {{.*}}k = 32 : i64, m = 2 : i64, n = 8 : i64, {{.*}}transpose_b = true, weight_format = #exec<weight_format sparse_2_4>}
// CHECK-DAG:   exec.weight "w" : tensor<8x16xf32> at <weights [[V]], 512>
// CHECK-DAG:   exec.weight "w.meta" : tensor<8x4xi8> at <weights [[M]], 32>
// CHECK-NOT:   exec.weight
module @sparse_2_4 {
  func.func @forward(%x: tensor<2x32xf32> {gai.name = "x"}) -> tensor<2x8xf32> {
    %v = gai.param "w" : tensor<8x16xf32>
    %m = gai.param "w.meta" : tensor<8x4xi8>
    %w = gai.decompress %v, %m : (tensor<8x16xf32>, tensor<8x4xi8>) -> tensor<8x32xf32>
    %y = gai.matmul %x, %w transpose_rhs : (tensor<2x32xf32>, tensor<8x32xf32>) -> tensor<2x8xf32>
    return %y : tensor<2x8xf32>
  }
}

// -----

// bf16 2:4 weights in a decode step: the GEMV reads them as stored, so a
// norm folds into the GEMMs around it as over dense weights, and a gated
// GEMM over two 2:4 weights takes both positions (b_meta, gate_meta).
// CHECK-LABEL: module @sparse_2_4_decode
// FOLD-LABEL: module @sparse_2_4_decode
// FOLD:       exec.gemm {a = #exec.ref<input 0, 512>, {{.*}}b_meta = {{.*}}norm_out = #exec.ref<arena [[OUT:[0-9]+]], 512>, {{.*}}weight_format = #exec<weight_format sparse_2_4>, wide_c = true}
// FOLD-NEXT:  exec.gemm {a = #exec.ref<arena [[OUT]], 512>, a_norm_eps = {{.*}}b_meta = #exec.ref<weights [[UM:[0-9]+]], 256>, {{.*}}gate = #exec.ref<weights [[GV:[0-9]+]], 2048>, gate_meta = #exec.ref<weights [[GM:[0-9]+]], 256>, {{.*}}weight_format = #exec<weight_format sparse_2_4>}
// FOLD-NOT:   exec.launch
// FOLD-DAG:   exec.weight "g" : tensor<32x32xbf16> at <weights [[GV]], 2048>
// FOLD-DAG:   exec.weight "g.meta" : tensor<32x8xi8> at <weights [[GM]], 256>
// FOLD-DAG:   exec.weight "u.meta" : tensor<32x8xi8> at <weights [[UM]], 256>
module @sparse_2_4_decode {
  func.func @forward(%x: tensor<4x64xbf16>, %r: tensor<4x64xf32>) -> tensor<4x32xbf16> {
    %v1 = gai.param "w1" : tensor<64x32xbf16>
    %m1 = gai.param "w1.meta" : tensor<64x8xi8>
    %w1 = gai.decompress %v1, %m1 : (tensor<64x32xbf16>, tensor<64x8xi8>) -> tensor<64x64xbf16>
    %n = gai.param "norm" : tensor<64xf32>
    %gv = gai.param "g" : tensor<32x32xbf16>
    %gm = gai.param "g.meta" : tensor<32x8xi8>
    %g = gai.decompress %gv, %gm : (tensor<32x32xbf16>, tensor<32x8xi8>) -> tensor<32x64xbf16>
    %uv = gai.param "u" : tensor<32x32xbf16>
    %um = gai.param "u.meta" : tensor<32x8xi8>
    %u = gai.decompress %uv, %um : (tensor<32x32xbf16>, tensor<32x8xi8>) -> tensor<32x64xbf16>
    %h = gai.gemm %x, %w1 residual %r transpose_rhs : (tensor<4x64xbf16>, tensor<64x64xbf16>, tensor<4x64xf32>) -> tensor<4x64xf32>
    %y = gai.fusion %h, %n : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xbf16> {
    ^bb0(%a: tensor<4x64xf32>, %b: tensor<64xf32>):
      %0 = gai.rms_norm %a, %b eps = 1.0e-5 : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
      %1 = gai.convert %0 : tensor<4x64xf32> to tensor<4x64xbf16>
      gai.yield %1 : tensor<4x64xbf16>
    }
    %z = gai.gated_gemm %y, %g, %u activation = silu : (tensor<4x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>) -> tensor<4x32xbf16>
    return %z : tensor<4x32xbf16>
  }
}

// -----

// f32 2:4 weights are decompressed for cuBLASLt, which folds no norm: the
// norm keeps its kernel.
// FOLD-LABEL: module @sparse_2_4_f32_norm
// FOLD:       exec.gemm
// FOLD-NOT:   norm_out
// FOLD:       exec.launch
module @sparse_2_4_f32_norm {
  func.func @forward(%x: tensor<4x64xf32>, %n: tensor<64xf32>) -> tensor<4x32xf32> {
    %w1 = gai.param "w1" : tensor<64x64xf32>
    %v2 = gai.param "w2" : tensor<32x32xf32>
    %m2 = gai.param "w2.meta" : tensor<32x8xi8>
    %w2 = gai.decompress %v2, %m2 : (tensor<32x32xf32>, tensor<32x8xi8>) -> tensor<32x64xf32>
    %h = gai.gemm %x, %w1 transpose_rhs : (tensor<4x64xf32>, tensor<64x64xf32>) -> tensor<4x64xf32>
    %y = gai.fusion %h, %n : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32> {
    ^bb0(%a: tensor<4x64xf32>, %b: tensor<64xf32>):
      %0 = gai.rms_norm %a, %b eps = 1.0e-5 : (tensor<4x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
      gai.yield %0 : tensor<4x64xf32>
    }
    %z = gai.gemm %y, %w2 transpose_rhs : (tensor<4x64xf32>, tensor<32x64xf32>) -> tensor<4x32xf32>
    return %z : tensor<4x32xf32>
  }
}

// -----

// A gated GEMM over one 2:4 weight and one dense one has no stored form.
module @sparse_2_4_half_gated {
  func.func @forward(%x: tensor<1x64xbf16>, %u: tensor<32x64xbf16>) -> tensor<1x32xbf16> {
    %gv = gai.param "g" : tensor<32x32xbf16>
    %gm = gai.param "g.meta" : tensor<32x8xi8>
    %g = gai.decompress %gv, %gm : (tensor<32x32xbf16>, tensor<32x8xi8>) -> tensor<32x64xbf16>
    // expected-error @+1 {{a gated GEMM's two weights must be 2:4 alike}}
    %z = gai.gated_gemm %x, %g, %u activation = silu : (tensor<1x64xbf16>, tensor<32x64xbf16>, tensor<32x64xbf16>) -> tensor<1x32xbf16>
    return %z : tensor<1x32xbf16>
  }
}

// -----

// Nothing but a GEMM may read a 2:4 weight: the runtime has no dense copy.
module @sparse_2_4_other_use {
  func.func @forward(%x: tensor<8x32xf32>) -> tensor<8x32xf32> {
    %v = gai.param "w" : tensor<8x16xf32>
    %m = gai.param "w.meta" : tensor<8x4xi8>
    %w = gai.decompress %v, %m : (tensor<8x16xf32>, tensor<8x4xi8>) -> tensor<8x32xf32>
    // expected-error @+1 {{reads a dequantized or 2:4 weight other than as a GEMM's weight}}
    %y = gai.add %x, %w : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
    return %y : tensor<8x32xf32>
  }
}

// -----

// A fusion with two results (AdamW's moment, read again by the parameter's
// update, as the fusion pass merges them): one launch with an output buffer
// per result, each written over its state in place. Every result is
// computed before any is stored, as the parameter's update reads the old
// moment through the new one: the CPU kernel into row buffers, the GPU
// kernel into registers.
// CHECK-LABEL: module @two_results_in_place
// CHECK:       exec.state first_moment "adam.m.w" : tensor<64xf32> at <state [[M:[0-9]+]], 256>
// CHECK:       exec.state parameter "param.w" : tensor<64xf32> at <state [[P:[0-9]+]], 256>
// CHECK:       exec.launch @k0_add_sub [#exec.ref<state 0, 256>, #exec.ref<state [[M]], 256>, #exec.ref<state [[P]], 256>, #exec.ref<state [[P]], 256>, #exec.ref<state [[M]], 256>]
// CHECK:       func.func @k0_add_sub(
// CHECK:         memref.store %{{.*}}, %alloca[
// CHECK:         memref.store %{{.*}}, %alloca_0[
// CHECK:         memref.store %{{.*}}, %arg3[
// CHECK:         memref.store %{{.*}}, %arg4[
// GPU-LABEL: module @two_results_in_place
// GPU:       func.func @k0_add_sub(
// GPU:         scf.for
// GPU-NEXT:      %[[NEWM:.*]] = arith.addf
// GPU-NEXT:      %[[NEWP:.*]] = arith.subf %{{.*}}, %[[NEWM]]
// GPU-NEXT:      %[[AGAIN:.*]] = arith.addf
// GPU-NEXT:      vector.store %[[NEWP]], %arg3
// GPU-NEXT:      vector.store %[[AGAIN]], %arg4
module @two_results_in_place {
  func.func @optimizer_step(%g: tensor<64xf32> {gai.name = "grad.w"}, %m: tensor<64xf32> {gai.name = "adam.m.w"}, %p: tensor<64xf32> {gai.name = "param.w"}) -> (tensor<64xf32> {gai.name = "param.w"}, tensor<64xf32> {gai.name = "adam.m.w"}) {
    %r:2 = gai.fusion %g, %m, %p : (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>) {
    ^bb0(%a: tensor<64xf32>, %b: tensor<64xf32>, %c: tensor<64xf32>):
      %m2 = gai.add %b, %a : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
      %p2 = gai.sub %c, %m2 : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
      gai.yield %p2, %m2 : tensor<64xf32>, tensor<64xf32>
    }
    return %r#0, %r#1 : tensor<64xf32>, tensor<64xf32>
  }
}

// -----

// A reduce over a run of adjacent axes is one exec.reduce whose middle axis
// is their product: outer 1, n 4·8, inner 16.
// CHECK-LABEL: module @adjacent_axes
// CHECK:       exec.reduce {element = f32, inner = 16 : i64, input = #exec.ref<input 0, 2048>, kind = #exec<reduce_kind sum>, n = 32 : i64, out = #exec.ref<output 0, 64>, outer = 1 : i64}
module @adjacent_axes {
  func.func @f(%dy: tensor<4x8x16xf32> {gai.name = "dy"}) -> tensor<1x1x16xf32> {
    %b = gai.reduce sum %dy axes = [0, 1] keep_dims : (tensor<4x8x16xf32>) -> tensor<1x1x16xf32>
    return %b : tensor<1x1x16xf32>
  }
}
