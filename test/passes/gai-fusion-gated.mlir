// RUN: gai-opt %s --gai-fusion="library-activations=true gated-gemm-rows=8" --split-input-file | FileCheck %s
// RUN: gai-opt %s --gai-fusion="library-activations=true" --split-input-file | FileCheck %s --check-prefix=OFF
// RUN: not gai-opt %s --gai-fusion="gated-gemm-rows=-1" --split-input-file 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// NEGATIVE: error: gai-fusion: gated-gemm-rows must be 0 (off) or a row count, not -1

// A decode step's SwiGLU: silu(x·Wgᵀ) * (x·Wuᵀ) is one gated GEMM, whichever
// side of the multiply the gate is on.
// CHECK-LABEL: func.func @swiglu
// CHECK-SAME: (%[[X:.*]]: tensor<1x1x64xbf16>, %[[G:.*]]: tensor<176x64xbf16>, %[[U:.*]]: tensor<176x64xbf16>)
// CHECK-NEXT: %[[A:.*]] = gai.gated_gemm %[[X]], %[[G]], %[[U]] activation = silu : (tensor<1x1x64xbf16>, tensor<176x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
// CHECK-NEXT: %[[B:.*]] = gai.gated_gemm %[[X]], %[[G]], %[[U]] activation = silu
// CHECK-NEXT: gai.fusion %[[A]], %[[B]]
// OFF-LABEL: func.func @swiglu
// OFF-NOT: gai.gated_gemm
func.func @swiglu(%x: tensor<1x1x64xbf16>, %g: tensor<176x64xbf16>, %u: tensor<176x64xbf16>) -> tensor<1x1x176xbf16> {
  %0 = gai.matmul %x, %g transpose_rhs : (tensor<1x1x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
  %1 = gai.silu %0 : tensor<1x1x176xbf16>
  %2 = gai.matmul %x, %u transpose_rhs : (tensor<1x1x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
  %3 = gai.mul %1, %2 : (tensor<1x1x176xbf16>, tensor<1x1x176xbf16>) -> tensor<1x1x176xbf16>
  %4 = gai.matmul %x, %g transpose_rhs : (tensor<1x1x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
  %5 = gai.matmul %x, %u transpose_rhs : (tensor<1x1x64xbf16>, tensor<176x64xbf16>) -> tensor<1x1x176xbf16>
  %6 = gai.silu %4 : tensor<1x1x176xbf16>
  %7 = gai.mul %5, %6 : (tensor<1x1x176xbf16>, tensor<1x1x176xbf16>) -> tensor<1x1x176xbf16>
  %8 = gai.add %3, %7 : (tensor<1x1x176xbf16>, tensor<1x1x176xbf16>) -> tensor<1x1x176xbf16>
  return %8 : tensor<1x1x176xbf16>
}

// -----

// GeGLU (gemma): the tanh-gelu goes with the gate, not onto a GEMM epilogue.
// Eight rows are still few enough.
// CHECK-LABEL: func.func @geglu
// CHECK-NEXT: %[[A:.*]] = gai.gated_gemm %{{.*}}, %{{.*}}, %{{.*}} activation = gelu_tanh : (tensor<8x1x64xf32>, tensor<176x64xf32>, tensor<176x64xf32>) -> tensor<8x1x176xf32>
// CHECK-NEXT: return %[[A]]
// OFF-LABEL: func.func @geglu
// OFF: gai.gemm {{.*}} activation = gelu_tanh
func.func @geglu(%x: tensor<8x1x64xf32>, %g: tensor<176x64xf32>, %u: tensor<176x64xf32>) -> tensor<8x1x176xf32> {
  %0 = gai.matmul %x, %g transpose_rhs : (tensor<8x1x64xf32>, tensor<176x64xf32>) -> tensor<8x1x176xf32>
  %1 = gai.gelu tanh %0 : tensor<8x1x176xf32>
  %2 = gai.matmul %x, %u transpose_rhs : (tensor<8x1x64xf32>, tensor<176x64xf32>) -> tensor<8x1x176xf32>
  %3 = gai.mul %1, %2 : (tensor<8x1x176xf32>, tensor<8x1x176xf32>) -> tensor<8x1x176xf32>
  return %3 : tensor<8x1x176xf32>
}

// -----

// Left alone: more rows than the limit (a prefill), a gate product with
// another user (its value is needed), products of different inputs, and
// weights not stored [N, K] (both [K, N]).
// CHECK-LABEL: func.func @not_gated
// CHECK-NOT: gai.gated_gemm
// CHECK: return
func.func @not_gated(%p: tensor<16x64xf32>, %x: tensor<1x64xf32>, %y: tensor<1x64xf32>, %g: tensor<176x64xf32>, %u: tensor<176x64xf32>, %gt: tensor<64x176xf32>, %ut: tensor<64x176xf32>) -> (tensor<16x176xf32>, tensor<1x176xf32>, tensor<1x176xf32>, tensor<1x176xf32>, tensor<1x176xf32>) {
  %0 = gai.matmul %p, %g transpose_rhs : (tensor<16x64xf32>, tensor<176x64xf32>) -> tensor<16x176xf32>
  %1 = gai.silu %0 : tensor<16x176xf32>
  %2 = gai.matmul %p, %u transpose_rhs : (tensor<16x64xf32>, tensor<176x64xf32>) -> tensor<16x176xf32>
  %3 = gai.mul %1, %2 : (tensor<16x176xf32>, tensor<16x176xf32>) -> tensor<16x176xf32>
  %4 = gai.matmul %x, %g transpose_rhs : (tensor<1x64xf32>, tensor<176x64xf32>) -> tensor<1x176xf32>
  %5 = gai.silu %4 : tensor<1x176xf32>
  %6 = gai.matmul %x, %u transpose_rhs : (tensor<1x64xf32>, tensor<176x64xf32>) -> tensor<1x176xf32>
  %7 = gai.mul %5, %6 : (tensor<1x176xf32>, tensor<1x176xf32>) -> tensor<1x176xf32>
  %8 = gai.matmul %x, %g transpose_rhs : (tensor<1x64xf32>, tensor<176x64xf32>) -> tensor<1x176xf32>
  %9 = gai.silu %8 : tensor<1x176xf32>
  %10 = gai.matmul %y, %u transpose_rhs : (tensor<1x64xf32>, tensor<176x64xf32>) -> tensor<1x176xf32>
  %11 = gai.mul %9, %10 : (tensor<1x176xf32>, tensor<1x176xf32>) -> tensor<1x176xf32>
  %12 = gai.matmul %x, %gt : (tensor<1x64xf32>, tensor<64x176xf32>) -> tensor<1x176xf32>
  %13 = gai.silu %12 : tensor<1x176xf32>
  %14 = gai.matmul %x, %ut : (tensor<1x64xf32>, tensor<64x176xf32>) -> tensor<1x176xf32>
  %15 = gai.mul %13, %14 : (tensor<1x176xf32>, tensor<1x176xf32>) -> tensor<1x176xf32>
  return %3, %7, %4, %11, %15 : tensor<16x176xf32>, tensor<1x176xf32>, tensor<1x176xf32>, tensor<1x176xf32>, tensor<1x176xf32>
}

// -----

// K not a multiple of 8 (the GEMV streams 16-byte pieces of bf16) stays apart.
// CHECK-LABEL: func.func @odd_k
// CHECK-NOT: gai.gated_gemm
// CHECK: return
func.func @odd_k(%x: tensor<1x12xbf16>, %g: tensor<16x12xbf16>, %u: tensor<16x12xbf16>) -> tensor<1x16xbf16> {
  %0 = gai.matmul %x, %g transpose_rhs : (tensor<1x12xbf16>, tensor<16x12xbf16>) -> tensor<1x16xbf16>
  %1 = gai.silu %0 : tensor<1x16xbf16>
  %2 = gai.matmul %x, %u transpose_rhs : (tensor<1x12xbf16>, tensor<16x12xbf16>) -> tensor<1x16xbf16>
  %3 = gai.mul %1, %2 : (tensor<1x16xbf16>, tensor<1x16xbf16>) -> tensor<1x16xbf16>
  return %3 : tensor<1x16xbf16>
}

// -----

// 2:4 weights: bf16 ones fuse as dense ones do (the gated GEMV reads them
// as stored); f32 ones, or one 2:4 weight beside a dense one, stay apart.
// CHECK-LABEL: func.func @sparse_2_4
// CHECK-DAG:  %[[G:.*]] = gai.decompress %{{.*}}, %{{.*}} : (tensor<16x32xbf16>, tensor<16x8xi8>) -> tensor<16x64xbf16>
// CHECK-DAG:  %[[U:.*]] = gai.decompress %{{.*}}, %{{.*}} : (tensor<16x32xbf16>, tensor<16x8xi8>) -> tensor<16x64xbf16>
// CHECK:      gai.gated_gemm %{{.*}}, %[[G]], %[[U]] activation = silu
// CHECK-NOT:  gai.gated_gemm
// CHECK:      return
func.func @sparse_2_4(%x: tensor<1x64xbf16>, %gv: tensor<16x32xbf16>, %gm: tensor<16x8xi8>, %uv: tensor<16x32xbf16>, %um: tensor<16x8xi8>, %d: tensor<16x64xbf16>,
                      %y: tensor<1x64xf32>, %fv: tensor<16x32xf32>, %fu: tensor<16x32xf32>) -> (tensor<1x16xbf16>, tensor<1x16xbf16>, tensor<1x16xf32>) {
  %g = gai.decompress %gv, %gm : (tensor<16x32xbf16>, tensor<16x8xi8>) -> tensor<16x64xbf16>
  %u = gai.decompress %uv, %um : (tensor<16x32xbf16>, tensor<16x8xi8>) -> tensor<16x64xbf16>
  %0 = gai.matmul %x, %g transpose_rhs : (tensor<1x64xbf16>, tensor<16x64xbf16>) -> tensor<1x16xbf16>
  %1 = gai.silu %0 : tensor<1x16xbf16>
  %2 = gai.matmul %x, %u transpose_rhs : (tensor<1x64xbf16>, tensor<16x64xbf16>) -> tensor<1x16xbf16>
  %3 = gai.mul %1, %2 : (tensor<1x16xbf16>, tensor<1x16xbf16>) -> tensor<1x16xbf16>
  // One 2:4 weight, one dense.
  %4 = gai.matmul %x, %g transpose_rhs : (tensor<1x64xbf16>, tensor<16x64xbf16>) -> tensor<1x16xbf16>
  %5 = gai.silu %4 : tensor<1x16xbf16>
  %6 = gai.matmul %x, %d transpose_rhs : (tensor<1x64xbf16>, tensor<16x64xbf16>) -> tensor<1x16xbf16>
  %7 = gai.mul %5, %6 : (tensor<1x16xbf16>, tensor<1x16xbf16>) -> tensor<1x16xbf16>
  // f32 2:4 weights.
  %fg = gai.decompress %fv, %gm : (tensor<16x32xf32>, tensor<16x8xi8>) -> tensor<16x64xf32>
  %fw = gai.decompress %fu, %um : (tensor<16x32xf32>, tensor<16x8xi8>) -> tensor<16x64xf32>
  %8 = gai.matmul %y, %fg transpose_rhs : (tensor<1x64xf32>, tensor<16x64xf32>) -> tensor<1x16xf32>
  %9 = gai.silu %8 : tensor<1x16xf32>
  %10 = gai.matmul %y, %fw transpose_rhs : (tensor<1x64xf32>, tensor<16x64xf32>) -> tensor<1x16xf32>
  %11 = gai.mul %9, %10 : (tensor<1x16xf32>, tensor<1x16xf32>) -> tensor<1x16xf32>
  return %3, %7, %11 : tensor<1x16xbf16>, tensor<1x16xbf16>, tensor<1x16xf32>
}
