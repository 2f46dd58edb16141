// RUN: gai-opt %s --gai-fusion --split-input-file | FileCheck %s
// RUN: gai-opt %s --gai-fusion="epilogues=false" --split-input-file | FileCheck %s --check-prefix=NOEPI
// RUN: gai-opt %s --gai-fusion="library-activations=true" --split-input-file | FileCheck %s --check-prefix=LIB
// RUN: gai-opt %s --gai-fusion="absorb-transposes=true" --split-input-file | FileCheck %s --check-prefix=ABSORB

// Bias, activation and residual join the GEMM.
// CHECK-LABEL: func.func @epilogue
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x64xf32>, %[[W:.*]]: tensor<256x64xf32>, %[[B:.*]]: tensor<256xf32>, %[[R:.*]]: tensor<2x8x256xf32>)
// CHECK-NEXT: %[[Y:.*]] = gai.gemm %[[X]], %[[W]] bias %[[B]] residual %[[R]] transpose_rhs activation = gelu_tanh : (tensor<2x8x64xf32>, tensor<256x64xf32>, tensor<256xf32>, tensor<2x8x256xf32>) -> tensor<2x8x256xf32>
// CHECK-NEXT: return %[[Y]]
// NOEPI-LABEL: func.func @epilogue
// NOEPI: gai.matmul
// NOEPI: gai.fusion
// NOEPI: gai.add
// NOEPI: gai.gelu tanh
// NOEPI: gai.add
// NOEPI: gai.yield
// With library activations, tanh-gelu (cuBLASLt has it) still joins.
// LIB-LABEL: func.func @epilogue
// LIB-NEXT: gai.gemm {{.*}} activation = gelu_tanh
func.func @epilogue(%x: tensor<2x8x64xf32>, %w: tensor<256x64xf32>, %b: tensor<256xf32>, %r: tensor<2x8x256xf32>) -> tensor<2x8x256xf32> {
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<2x8x64xf32>, tensor<256x64xf32>) -> tensor<2x8x256xf32>
  %1 = gai.add %0, %b : (tensor<2x8x256xf32>, tensor<256xf32>) -> tensor<2x8x256xf32>
  %2 = gai.gelu tanh %1 : tensor<2x8x256xf32>
  %3 = gai.add %r, %2 : (tensor<2x8x256xf32>, tensor<2x8x256xf32>) -> tensor<2x8x256xf32>
  return %3 : tensor<2x8x256xf32>
}

// -----

// An f32 residual stream over bf16 GEMMs: the product's widening and its
// residual add join the GEMM, which then writes f32 and never rounds the
// product to bf16.
// CHECK-LABEL: func.func @wide_residual
// CHECK-SAME: (%[[X:.*]]: tensor<4x64xbf16>, %[[W:.*]]: tensor<32x64xbf16>, %[[R:.*]]: tensor<4x32xf32>)
// CHECK-NEXT: %[[Y:.*]] = gai.gemm %[[X]], %[[W]] residual %[[R]] transpose_rhs : (tensor<4x64xbf16>, tensor<32x64xbf16>, tensor<4x32xf32>) -> tensor<4x32xf32>
// CHECK-NEXT: return %[[Y]]
func.func @wide_residual(%x: tensor<4x64xbf16>, %w: tensor<32x64xbf16>, %r: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<4x64xbf16>, tensor<32x64xbf16>) -> tensor<4x32xbf16>
  %1 = gai.convert %0 : tensor<4x32xbf16> to tensor<4x32xf32>
  %2 = gai.add %r, %1 : (tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  return %2 : tensor<4x32xf32>
}

// -----

// With a bias the widening stays a kernel (cuBLASLt's bias takes D's type):
// the GEMM writes bf16, and one region converts and adds.
// CHECK-LABEL: func.func @wide_residual_bias
// CHECK-NEXT: %[[Y:.*]] = gai.gemm {{.*}} bias {{.*}} -> tensor<4x32xbf16>
// CHECK-NEXT: gai.fusion %[[Y]], %{{.*}}
// CHECK-NEXT: ^bb0
// CHECK-NEXT: gai.convert
// CHECK-NEXT: gai.add
func.func @wide_residual_bias(%x: tensor<4x64xbf16>, %w: tensor<32x64xbf16>, %b: tensor<32xbf16>, %r: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<4x64xbf16>, tensor<32x64xbf16>) -> tensor<4x32xbf16>
  %1 = gai.add %0, %b : (tensor<4x32xbf16>, tensor<32xbf16>) -> tensor<4x32xbf16>
  %2 = gai.convert %1 : tensor<4x32xbf16> to tensor<4x32xf32>
  %3 = gai.add %r, %2 : (tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  return %3 : tensor<4x32xf32>
}

// -----

// A product used twice keeps its epilogue ops outside: both users need it.
// They read the same product, so one kernel computes both.
// CHECK-LABEL: func.func @epilogue_shared_product
// CHECK: %[[P:.*]] = gai.matmul
// CHECK: %[[F:.*]]:2 = gai.fusion %[[P]]
// CHECK-DAG: gai.silu
// CHECK-DAG: gai.mul
// CHECK: return %[[F]]#1, %[[F]]#0
func.func @epilogue_shared_product(%x: tensor<8x64xf32>, %w: tensor<64x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %0 = gai.matmul %x, %w : (tensor<8x64xf32>, tensor<64x64xf32>) -> tensor<8x64xf32>
  %1 = gai.silu %0 : tensor<8x64xf32>
  %2 = gai.mul %0, %0 : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %1, %2 : tensor<8x64xf32>, tensor<8x64xf32>
}

// -----

// tanh is not an epilogue activation: the GEMM stays plain and tanh is a
// kernel of its own.
// CHECK-LABEL: func.func @no_tanh_epilogue
// CHECK: %[[P:.*]] = gai.matmul
// CHECK: gai.fusion %[[P]]
// CHECK: gai.tanh
func.func @no_tanh_epilogue(%x: tensor<8x64xf32>, %w: tensor<64x64xf32>) -> tensor<8x64xf32> {
  %0 = gai.matmul %x, %w : (tensor<8x64xf32>, tensor<64x64xf32>) -> tensor<8x64xf32>
  %1 = gai.tanh %0 : tensor<8x64xf32>
  return %1 : tensor<8x64xf32>
}

// -----

// A chain of elementwise and row ops is one region; splat constants are
// copied in, other values become inputs.
// CHECK-LABEL: func.func @chain
// CHECK-SAME: (%[[S:.*]]: tensor<2x4x8x8xf32>)
// CHECK-NEXT: %[[F:.*]] = gai.fusion %[[S]] : (tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32> {
// CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<2x4x8x8xf32>):
// CHECK-DAG: gai.constant dense<2.500000e-01>
// CHECK-DAG: gai.constant dense<0xFF800000>
// CHECK: gai.mul %[[A]]
// CHECK: gai.causal_mask
// CHECK: gai.select
// CHECK: %[[P:.*]] = gai.softmax
// CHECK: gai.yield %[[P]]
// CHECK: return %[[F]]
func.func @chain(%s: tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32> {
  %c = gai.constant dense<0.25> : tensor<f32>
  %0 = gai.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %1 = gai.select %m, %0, %ninf : (tensor<8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %2 = gai.softmax %1 axis = 3 : tensor<2x4x8x8xf32>
  return %2 : tensor<2x4x8x8xf32>
}

// -----

// A value with two users ends a region: regions are trees, so the residual
// add and the norm that reads it are two kernels. A later merge would join
// them (the add's result is written once either way), but an RMSNorm alone
// keeps its kernel: the decode lowering folds it into the GEMV that reads it.
// CHECK-LABEL: func.func @shared_value
// CHECK: %[[ADD:.*]] = gai.fusion %{{.*}}, %{{.*}} : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
// CHECK: gai.add
// CHECK: gai.fusion %[[ADD]], %{{.*}} : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
// CHECK: gai.rms_norm
// CHECK: return
func.func @shared_value(%x: tensor<8x64xf32>, %y: tensor<8x64xf32>, %w: tensor<64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %0 = gai.add %x, %y : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %1 = gai.rms_norm %0, %w eps = 1.0e-5 : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %0, %1 : tensor<8x64xf32>, tensor<8x64xf32>
}

// -----

// Near misses: a softmax over a middle axis and a reduction over the first
// axis are not row ops, and layout ops never join a region.
// CHECK-LABEL: func.func @not_row_ops
// CHECK: gai.softmax %{{.*}} axis = 0
// CHECK-NOT: gai.fusion
// CHECK: gai.reduce sum %{{.*}} axes = [0]
// CHECK: gai.transpose
// CHECK-NOT: gai.fusion
// CHECK: return
func.func @not_row_ops(%x: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<64xf32>, tensor<64x8xf32>) {
  %0 = gai.softmax %x axis = 0 : tensor<8x64xf32>
  %1 = gai.reduce sum %x axes = [0] : (tensor<8x64xf32>) -> tensor<64xf32>
  %2 = gai.transpose %x permutation = [1, 0] : (tensor<8x64xf32>) -> tensor<64x8xf32>
  return %0, %1, %2 : tensor<8x64xf32>, tensor<64xf32>, tensor<64x8xf32>
}

// -----

// The bias is defined after the product (as the frontend emits it): the
// GEMM goes where the last absorbed op was.
// CHECK-LABEL: func.func @bias_defined_later
// CHECK: %[[P:.*]] = gai.param "w"
// CHECK-NEXT: %[[B:.*]] = gai.param "b"
// CHECK-NEXT: gai.gemm %{{.*}}, %[[P]] bias %[[B]] :
func.func @bias_defined_later(%x: tensor<8x64xf32>) -> tensor<8x32xf32> {
  %w = gai.param "w" : tensor<64x32xf32>
  %0 = gai.matmul %x, %w : (tensor<8x64xf32>, tensor<64x32xf32>) -> tensor<8x32xf32>
  %b = gai.param "b" : tensor<32xf32>
  %1 = gai.add %0, %b : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  return %1 : tensor<8x32xf32>
}

// -----

// silu is not in cuBLASLt's epilogue: with library activations the GEMM
// keeps only its bias, and silu joins the SwiGLU product's kernel.
// LIB-LABEL: func.func @library_silu
// LIB: %[[G:.*]] = gai.gemm %{{.*}}, %{{.*}} bias %{{.*}} transpose_rhs :
// LIB: gai.fusion %[[G]]
// LIB: gai.silu
// LIB: gai.mul
// CHECK-LABEL: func.func @library_silu
// CHECK: gai.gemm {{.*}} activation = silu
func.func @library_silu(%x: tensor<8x64xf32>, %w: tensor<128x64xf32>, %b: tensor<128xf32>, %u: tensor<8x128xf32>) -> tensor<8x128xf32> {
  %0 = gai.matmul %x, %w transpose_rhs : (tensor<8x64xf32>, tensor<128x64xf32>) -> tensor<8x128xf32>
  %1 = gai.add %0, %b : (tensor<8x128xf32>, tensor<128xf32>) -> tensor<8x128xf32>
  %2 = gai.silu %1 : tensor<8x128xf32>
  %3 = gai.mul %2, %u : (tensor<8x128xf32>, tensor<8x128xf32>) -> tensor<8x128xf32>
  return %3 : tensor<8x128xf32>
}

// -----

// With absorb-transposes, the head transpose before RoPE joins RoPE's
// region (the kernel reads the token-major projection); a transpose that
// moves the last axis, or one with a second user, stays outside, and so
// does every transpose without the option.
// ABSORB-LABEL: func.func @head_transposes
// ABSORB: gai.fusion %arg0, %arg1 :
// ABSORB-NEXT: ^bb0(%[[X:.*]]: tensor<1x8x4x16xf32>, %[[P:.*]]: tensor<1x8xi32>):
// ABSORB-NEXT: %[[T:.*]] = gai.transpose %[[X]] permutation = [0, 2, 1, 3]
// ABSORB-NEXT: gai.rope half %[[T]], %[[P]]
// ABSORB: %[[V:.*]] = gai.transpose %arg2 permutation = [0, 2, 1, 3]
// ABSORB: gai.fusion %[[V]]
// ABSORB: %[[L:.*]] = gai.transpose %arg3 permutation = [1, 0]
// ABSORB: gai.fusion %[[L]]
// CHECK-LABEL: func.func @head_transposes
// CHECK-COUNT-3: gai.transpose {{%arg[0-9]}}
func.func @head_transposes(%q: tensor<1x8x4x16xf32>, %pos: tensor<1x8xi32>, %v: tensor<1x8x4x16xf32>, %m: tensor<16x8xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<8x16xf32>) {
  %0 = gai.transpose %q permutation = [0, 2, 1, 3] : (tensor<1x8x4x16xf32>) -> tensor<1x4x8x16xf32>
  %1 = gai.rope half %0, %pos theta = 1.000000e+04 : (tensor<1x4x8x16xf32>, tensor<1x8xi32>) -> tensor<1x4x8x16xf32>
  %2 = gai.transpose %v permutation = [0, 2, 1, 3] : (tensor<1x8x4x16xf32>) -> tensor<1x4x8x16xf32>
  %3 = gai.exp %2 : tensor<1x4x8x16xf32>
  %4 = gai.transpose %m permutation = [1, 0] : (tensor<16x8xf32>) -> tensor<8x16xf32>
  %5 = gai.exp %4 : tensor<8x16xf32>
  return %1, %2, %3, %5 : tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<8x16xf32>
}

// -----

// A last-axis reduce that drops its axis keeps it in the kernel; the
// dropped axis is a reshape (a view) after the region.
// CHECK-LABEL: func.func @reduce_drops_last_axis
// CHECK:         %[[F:.*]] = gai.fusion
// CHECK:           gai.reduce sum %{{.*}} axes = [1] keep_dims : (tensor<5x7xf32>) -> tensor<5x1xf32>
// CHECK:         gai.reshape %[[F]] : tensor<5x1xf32> to tensor<5xf32>
func.func @reduce_drops_last_axis(%x: tensor<5x7xf32>) -> tensor<5xf32> {
  %0 = gai.reduce sum %x axes = [1] : (tensor<5x7xf32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// -----

// Near miss: a reduce over another axis stays as it is (a library reduce).
// CHECK-LABEL: func.func @reduce_first_axis_stays
// CHECK-NOT:     gai.fusion
// CHECK:         gai.reduce sum %{{.*}} axes = [0] : (tensor<5x7xf32>) -> tensor<7xf32>
func.func @reduce_first_axis_stays(%x: tensor<5x7xf32>) -> tensor<7xf32> {
  %0 = gai.reduce sum %x axes = [0] : (tensor<5x7xf32>) -> tensor<7xf32>
  return %0 : tensor<7xf32>
}

// -----

// An argument scaled once and read by two updates (AdamW's gradient times
// the clipping scale): each update's kernel reads the argument and scales it
// itself, so the scaled tensor is never written out. Not so for a value
// computed in the function (%s below is not an argument). The two kernels
// read the same argument, so they become one with two results.
// CHECK-LABEL: func.func @scaled_argument_read_twice
// CHECK-NOT:     gai.mul %arg0
// CHECK:         %[[U:.*]]:2 = gai.fusion %arg0, %arg1, %arg2, %arg3
// CHECK:           gai.yield
// CHECK-NOT:     gai.fusion
// CHECK:         return %[[U]]#1, %[[U]]#0
func.func @scaled_argument_read_twice(%g: tensor<64xf32>, %scale: tensor<f32>, %m: tensor<64xf32>, %v: tensor<64xf32>) -> (tensor<64xf32>, tensor<64xf32>) {
  %s = gai.mul %g, %scale : (tensor<64xf32>, tensor<f32>) -> tensor<64xf32>
  %m2 = gai.add %m, %s : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %sq = gai.mul %s, %s : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %v2 = gai.add %v, %sq : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %m2, %v2 : tensor<64xf32>, tensor<64xf32>
}

// A value computed in the function and read by two kernels: each computes
// it from the tensor it reads (64 f32 either way), so it is never written;
// then the two kernels, which read the same tensor, become one.
// CHECK-LABEL: func.func @scaled_value_read_twice
// CHECK-NOT:     gai.exp %arg0
// CHECK:         %[[F:.*]]:2 = gai.fusion %arg0, %arg1
// CHECK-DAG:       gai.tanh
// CHECK-DAG:       gai.sigmoid
// CHECK:         return %[[F]]#1, %[[F]]#0
func.func @scaled_value_read_twice(%g: tensor<64xf32>, %scale: tensor<f32>) -> (tensor<64xf32>, tensor<64xf32>) {
  %e = gai.exp %g : tensor<64xf32>
  %s = gai.mul %e, %scale : (tensor<64xf32>, tensor<f32>) -> tensor<64xf32>
  %a = gai.tanh %s : tensor<64xf32>
  %b = gai.sigmoid %s : tensor<64xf32>
  return %a, %b : tensor<64xf32>, tensor<64xf32>
}

// SwiGLU in training: silu(g) is read by the forward product and by the
// backward's; g itself is read later by SiLU's gradient, so both products
// compute silu(g) from g and silu(g) is never written out; the gradient's
// kernel computes the sigmoid it reads twice. The forward product (read by
// a GEMM before the backward) keeps its kernel; the two gradients read g
// and dh, so they become one kernel at the first one's place (its GEMM
// reads du before dg was computed), which frees u there instead of later.
// CHECK-LABEL: func.func @silu_read_forward_and_backward
// CHECK:         %[[H:.*]] = gai.fusion %arg0, %arg1
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      gai.silu
// CHECK-NEXT:      gai.mul
// CHECK:         %[[Y:.*]] = gai.matmul %[[H]]
// CHECK:         %[[DH:.*]] = gai.matmul %[[Y]]
// CHECK:         %[[B:.*]]:2 = gai.fusion %arg0, %[[DH]], %arg1
// CHECK:           gai.sigmoid
// CHECK:         %[[DX:.*]] = gai.matmul %[[B]]#1
// CHECK-NOT:     gai.fusion
// CHECK:         return %[[Y]], %[[DX]], %[[B]]#0
func.func @silu_read_forward_and_backward(%g: tensor<8x64xbf16>, %u: tensor<8x64xbf16>, %w: tensor<64x64xbf16>) -> (tensor<8x64xbf16>, tensor<8x64xbf16>, tensor<8x64xbf16>) {
  %s = gai.silu %g : tensor<8x64xbf16>
  %h = gai.mul %s, %u : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %y = gai.matmul %h, %w : (tensor<8x64xbf16>, tensor<64x64xbf16>) -> tensor<8x64xbf16>
  %dh = gai.matmul %y, %w : (tensor<8x64xbf16>, tensor<64x64xbf16>) -> tensor<8x64xbf16>
  %du = gai.mul %dh, %s : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %dx = gai.matmul %du, %w : (tensor<8x64xbf16>, tensor<64x64xbf16>) -> tensor<8x64xbf16>
  %one = gai.constant dense<1.0> : tensor<bf16>
  %ds = gai.mul %dh, %u : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %sig = gai.sigmoid %g : tensor<8x64xbf16>
  %c = gai.sub %one, %sig : (tensor<bf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %gc = gai.mul %g, %c : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %p = gai.add %gc, %one : (tensor<8x64xbf16>, tensor<bf16>) -> tensor<8x64xbf16>
  %q = gai.mul %sig, %p : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %dg = gai.mul %ds, %q : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  return %y, %dx, %dg : tensor<8x64xbf16>, tensor<8x64xbf16>, tensor<8x64xbf16>
}

// RMSNorm's backward over an f32 residual stream: the row statistics, the
// input gradient added to the incoming one, and the weight gradient's
// per-element terms read x and dy in one row kernel with two results; the
// terms' column sum stays a reduction of its own.
// CHECK-LABEL: func.func @rms_norm_backward
// CHECK:         %[[N:.*]]:2 = gai.fusion %arg1, %arg0, %arg2, %arg3
// CHECK-COUNT-2:   gai.reduce sum %{{.*}} axes = [1] keep_dims
// CHECK:           gai.yield
// CHECK:         %[[W:.*]] = gai.reduce sum %[[N]]#0 axes = [0]
// CHECK-NOT:     gai.fusion
// CHECK:         return %[[N]]#1, %[[W]]
func.func @rms_norm_backward(%dy: tensor<8x64xbf16>, %x: tensor<8x64xf32>, %w: tensor<64xf32>, %res: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<64xf32>) {
  %inv = gai.constant dense<0.015625> : tensor<f32>
  %eps = gai.constant dense<1.0e-5> : tensor<f32>
  %sq = gai.mul %x, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %ss = gai.reduce sum %sq axes = [1] keep_dims : (tensor<8x64xf32>) -> tensor<8x1xf32>
  %ms = gai.mul %ss, %inv : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %me = gai.add %ms, %eps : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %r = gai.rsqrt %me : tensor<8x1xf32>
  %d = gai.convert %dy : tensor<8x64xbf16> to tensor<8x64xf32>
  %dw = gai.mul %d, %w : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  %dwx = gai.mul %dw, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %dot = gai.reduce sum %dwx axes = [1] keep_dims : (tensor<8x64xf32>) -> tensor<8x1xf32>
  %dotm = gai.mul %dot, %inv : (tensor<8x1xf32>, tensor<f32>) -> tensor<8x1xf32>
  %r2 = gai.mul %r, %r : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
  %r3 = gai.mul %r, %r2 : (tensor<8x1xf32>, tensor<8x1xf32>) -> tensor<8x1xf32>
  %xr = gai.mul %x, %r3 : (tensor<8x64xf32>, tensor<8x1xf32>) -> tensor<8x64xf32>
  %xrd = gai.mul %xr, %dotm : (tensor<8x64xf32>, tensor<8x1xf32>) -> tensor<8x64xf32>
  %dwr = gai.mul %dw, %r : (tensor<8x64xf32>, tensor<8x1xf32>) -> tensor<8x64xf32>
  %dx = gai.sub %dwr, %xrd : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %out = gai.add %res, %dx : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %xn = gai.mul %x, %r : (tensor<8x64xf32>, tensor<8x1xf32>) -> tensor<8x64xf32>
  %t = gai.mul %d, %xn : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %wg = gai.reduce sum %t axes = [0] : (tensor<8x64xf32>) -> tensor<64xf32>
  return %out, %wg : tensor<8x64xf32>, tensor<64xf32>
}

// A value read twice by one expression (and by nothing else) is computed
// in that expression's kernel: here the product %t.
// CHECK-LABEL: func.func @value_read_twice_in_one_kernel
// CHECK:         %[[R:.*]] = gai.fusion %arg0, %arg1
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      gai.mul
// CHECK-NEXT:      gai.exp
// CHECK-NEXT:      gai.add
// CHECK-NOT:     gai.fusion
// CHECK:         return %[[R]]
func.func @value_read_twice_in_one_kernel(%a: tensor<8x64xf32>, %b: tensor<8x64xf32>) -> tensor<8x64xf32> {
  %t = gai.mul %a, %b : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %e = gai.exp %t : tensor<8x64xf32>
  %r = gai.add %t, %e : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %r : tensor<8x64xf32>
}

// A bf16 gradient widened to f32 for two kernels: each reads the bf16
// values (half the bytes) and widens them itself; then the two, which read
// the same gradient, become one kernel.
// CHECK-LABEL: func.func @widened_value_read_twice
// CHECK-NOT:     gai.fusion %[[W:.*]] :
// CHECK:         %[[F:.*]]:2 = gai.fusion %arg0, %arg1, %arg2
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      gai.convert
// CHECK-NOT:     gai.fusion
func.func @widened_value_read_twice(%d: tensor<8x64xbf16>, %w: tensor<64xf32>, %x: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<8x64xf32>) {
  %f = gai.convert %d : tensor<8x64xbf16> to tensor<8x64xf32>
  %a = gai.mul %f, %w : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  %b = gai.mul %f, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  return %a, %b : tensor<8x64xf32>, tensor<8x64xf32>
}

// Near misses: narrowing f32 to bf16 for two kernels would keep the f32
// tensor (twice the bytes) alive until the last of them, since nothing else
// reads it, so it is not copied into each (the two readers then become one
// kernel that narrows once); and a value a GEMM reads is written out for it
// (its later reader, tanh, joins its kernel before the GEMM: the most bytes
// in use at once are at tanh's place either way).
// CHECK-LABEL: func.func @narrowed_value_read_twice
// CHECK:         %[[N:.*]]:2 = gai.fusion %arg0, %arg{{[12]}}, %arg{{[12]}} : (tensor<8x64xf32>, tensor<8x64xbf16>, tensor<8x64xbf16>) -> (tensor<8x64xbf16>, tensor<8x64xbf16>)
// CHECK:           gai.convert
// CHECK-NOT:       gai.convert
// CHECK:           gai.yield
// CHECK-NOT:     gai.fusion
// CHECK-LABEL: func.func @value_read_by_gemm
// CHECK:         %[[E:.*]]:2 = gai.fusion %arg0
// CHECK:           gai.exp
// CHECK:           gai.tanh
// CHECK:         gai.matmul %[[E]]#1
func.func @narrowed_value_read_twice(%x: tensor<8x64xf32>, %a: tensor<8x64xbf16>, %b: tensor<8x64xbf16>) -> (tensor<8x64xbf16>, tensor<8x64xbf16>) {
  %y = gai.exp %x : tensor<8x64xf32>
  %n = gai.convert %y : tensor<8x64xf32> to tensor<8x64xbf16>
  %p = gai.mul %n, %a : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  %q = gai.mul %n, %b : (tensor<8x64xbf16>, tensor<8x64xbf16>) -> tensor<8x64xbf16>
  return %p, %q : tensor<8x64xbf16>, tensor<8x64xbf16>
}
func.func @value_read_by_gemm(%x: tensor<8x64xf32>, %w: tensor<64x16xf32>) -> (tensor<8x16xf32>, tensor<8x64xf32>) {
  %e = gai.exp %x : tensor<8x64xf32>
  %m = gai.matmul %e, %w : (tensor<8x64xf32>, tensor<64x16xf32>) -> tensor<8x16xf32>
  %t = gai.tanh %e : tensor<8x64xf32>
  return %m, %t : tensor<8x16xf32>, tensor<8x64xf32>
}

// -----

// AdamW's update of one parameter: the new moments are written back as
// state and read by the parameter's update. One kernel reads g, m, v and p
// once and writes the three results; the moments are not read back.
// CHECK-LABEL: func.func @adamw_one_kernel
// CHECK:         %[[U:.*]]:3 = gai.fusion %arg0, %arg1, %arg2, %arg4, %arg3
// CHECK-SAME:      -> (tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x32xf32>)
// CHECK:           gai.yield
// CHECK-NOT:     gai.fusion
// CHECK:         return %[[U]]#0, %[[U]]#1, %[[U]]#2
func.func @adamw_one_kernel(%g: tensor<64x32xf32>, %m: tensor<64x32xf32>, %v: tensor<64x32xf32>, %p: tensor<64x32xf32>, %lr: tensor<f32>) -> (tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x32xf32>) {
  %half = gai.constant dense<0.5> : tensor<f32>
  %gm = gai.mul %g, %half : (tensor<64x32xf32>, tensor<f32>) -> tensor<64x32xf32>
  %mm = gai.mul %m, %half : (tensor<64x32xf32>, tensor<f32>) -> tensor<64x32xf32>
  %m2 = gai.add %mm, %gm : (tensor<64x32xf32>, tensor<64x32xf32>) -> tensor<64x32xf32>
  %gg = gai.mul %g, %g : (tensor<64x32xf32>, tensor<64x32xf32>) -> tensor<64x32xf32>
  %v2 = gai.add %v, %gg : (tensor<64x32xf32>, tensor<64x32xf32>) -> tensor<64x32xf32>
  %s = gai.sqrt %v2 : tensor<64x32xf32>
  %d = gai.div %m2, %s : (tensor<64x32xf32>, tensor<64x32xf32>) -> tensor<64x32xf32>
  %step = gai.mul %d, %lr : (tensor<64x32xf32>, tensor<f32>) -> tensor<64x32xf32>
  %p2 = gai.sub %p, %step : (tensor<64x32xf32>, tensor<64x32xf32>) -> tensor<64x32xf32>
  return %p2, %m2, %v2 : tensor<64x32xf32>, tensor<64x32xf32>, tensor<64x32xf32>
}

// A shared result joins the kernel of its first reader (%early); the later
// reader (%r), which reads %a too, then joins that kernel as well: nothing
// reads the results before the function returns them.
// CHECK-LABEL: func.func @shared_result_read_early
// CHECK:         %[[E:.*]]:3 = gai.fusion %arg0, %arg1
// CHECK:           gai.tanh
// CHECK-NOT:     gai.fusion
// CHECK:         return %[[E]]#2, %[[E]]#1, %[[E]]#0

// Near misses: the shared result has another shape than the reader's
// result, or its reader's kernel reduces rows: it keeps a kernel of its own.
// CHECK-LABEL: func.func @shared_result_other_shape
// CHECK-COUNT-2: gai.fusion
// CHECK-NOT:     gai.fusion
// CHECK-LABEL: func.func @shared_result_read_by_row_kernel
// CHECK-COUNT-2: gai.fusion
// CHECK-NOT:     gai.fusion
func.func @shared_result_read_early(%a: tensor<64xf32>, %b: tensor<64xf32>, %w: tensor<64x16xf32>) -> (tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) {
  %e = gai.add %a, %b : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %early = gai.tanh %e : tensor<64xf32>
  %r = gai.mul %e, %a : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %x = gai.exp %r : tensor<64xf32>
  return %x, %e, %early : tensor<64xf32>, tensor<64xf32>, tensor<64xf32>
}
func.func @shared_result_other_shape(%a: tensor<64xf32>, %b: tensor<64xf32>, %c: tensor<8x64xf32>) -> (tensor<8x64xf32>, tensor<64xf32>) {
  %e = gai.add %a, %b : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %r = gai.mul %c, %e : (tensor<8x64xf32>, tensor<64xf32>) -> tensor<8x64xf32>
  return %r, %e : tensor<8x64xf32>, tensor<64xf32>
}
func.func @shared_result_read_by_row_kernel(%a: tensor<8x64xf32>, %b: tensor<8x64xf32>) -> (tensor<8x1xf32>, tensor<8x64xf32>) {
  %e = gai.add %a, %b : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %r = gai.reduce sum %e axes = [1] keep_dims : (tensor<8x64xf32>) -> tensor<8x1xf32>
  return %r, %e : tensor<8x1xf32>, tensor<8x64xf32>
}

// -----

// A value's bf16 copy made with it, before a GEMM that reads the value: the
// copy then lives over the GEMM, which the memory allows because the most
// in use at once is earlier (the product of %big, reduced away).
// CHECK-LABEL: func.func @copy_moves_up_under_the_peak
// CHECK:         gai.reduce sum
// CHECK:         %[[F:.*]]:2 = gai.fusion %arg0
// CHECK:           gai.mul
// CHECK:           gai.convert
// CHECK:           gai.yield
// CHECK:         %[[M:.*]] = gai.matmul %[[F]]#1
// CHECK-NOT:     gai.fusion
// CHECK:         %[[O:.*]] = gai.matmul %[[F]]#0
// CHECK:         return %{{.*}}, %[[F]]#1, %[[M]], %[[O]]
func.func @copy_moves_up_under_the_peak(%x: tensor<8x64xf32>, %w: tensor<64x64xf32>, %big: tensor<128x64xf32>, %v: tensor<64x16xbf16>) -> (tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x16xbf16>) {
  %h = gai.matmul %big, %w : (tensor<128x64xf32>, tensor<64x64xf32>) -> tensor<128x64xf32>
  %r = gai.reduce sum %h axes = [0] : (tensor<128x64xf32>) -> tensor<64xf32>
  %e = gai.mul %x, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %m = gai.matmul %e, %w : (tensor<8x64xf32>, tensor<64x64xf32>) -> tensor<8x64xf32>
  %c = gai.convert %e : tensor<8x64xf32> to tensor<8x64xbf16>
  %o = gai.matmul %c, %v : (tensor<8x64xbf16>, tensor<64x16xbf16>) -> tensor<8x16xbf16>
  return %r, %e, %m, %o : tensor<64xf32>, tensor<8x64xf32>, tensor<8x64xf32>, tensor<8x16xbf16>
}

// -----

// Near miss: the most memory in use is inside the span (the GEMM's wide
// product before its reduction), so the copy stays at its own place. (Had
// the function returned the copy, it would live in its output, not in the
// memory the function's values share, and move up for free.)
// CHECK-LABEL: func.func @copy_stays_at_the_peak
// CHECK:         %[[E:.*]] = gai.fusion %arg0
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      gai.mul
// CHECK-NEXT:      gai.yield
// CHECK:         gai.matmul %[[E]]
// CHECK:         gai.reduce sum
// CHECK:         %[[C:.*]] = gai.fusion %[[E]]
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      gai.convert
// CHECK:         %[[O:.*]] = gai.matmul %[[C]]
// CHECK:         return %[[E]], %{{.*}}, %[[O]]
func.func @copy_stays_at_the_peak(%x: tensor<8x64xf32>, %w: tensor<64x512xf32>, %v: tensor<64x16xbf16>) -> (tensor<8x64xf32>, tensor<512xf32>, tensor<8x16xbf16>) {
  %e = gai.mul %x, %x : (tensor<8x64xf32>, tensor<8x64xf32>) -> tensor<8x64xf32>
  %m = gai.matmul %e, %w : (tensor<8x64xf32>, tensor<64x512xf32>) -> tensor<8x512xf32>
  %n = gai.reduce sum %m axes = [0] : (tensor<8x512xf32>) -> tensor<512xf32>
  %c = gai.convert %e : tensor<8x64xf32> to tensor<8x64xbf16>
  %o = gai.matmul %c, %v : (tensor<8x64xbf16>, tensor<64x16xbf16>) -> tensor<8x16xbf16>
  return %e, %n, %o : tensor<8x64xf32>, tensor<512xf32>, tensor<8x16xbf16>
}
