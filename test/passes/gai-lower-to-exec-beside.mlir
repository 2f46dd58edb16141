// RUN: gai-opt %s --gai-lower-to-exec="gpu-kernels=true" --split-input-file | FileCheck %s
// RUN: gai-opt %s --gai-lower-to-exec="gpu-kernels=true beside-window=2" --split-input-file | FileCheck %s --check-prefix=BESIDE

// A weight gradient (%dw) that only a small reduction reads soon: with a
// beside window its GEMM's input %t stays live two ops past it, so %u (made
// within the window) does not take %t's bytes, and the ops after the GEMM
// may run while it does. Without one, %u reuses them.
// CHECK-LABEL:  module @weight_gradient
// CHECK:        exec.entry @step arena 8192 {
// CHECK:        exec.gemm {{{.*}}c = #exec.ref<arena 0, 8192>
// CHECK-NEXT:   exec.gemm {{{.*}}b = #exec.ref<arena 0, 8192>, {{.*}}c = #exec.ref<output [[DW:[0-9]+]], 2048>
// CHECK-NEXT:   exec.reduce {{{.*}}input = #exec.ref<output [[DW]], 2048>
// CHECK-NEXT:   exec.gemm {{{.*}}c = #exec.ref<arena 0, 8192>
// BESIDE-LABEL: module @weight_gradient
// BESIDE:       exec.entry @step arena 16384 {
// BESIDE:       exec.gemm {{{.*}}c = #exec.ref<arena 0, 8192>
// BESIDE-NEXT:  exec.gemm {{{.*}}b = #exec.ref<arena 0, 8192>
// BESIDE-NEXT:  exec.reduce
// BESIDE-NEXT:  exec.gemm {{{.*}}c = #exec.ref<arena 8192, 8192>
module @weight_gradient {
  func.func @step(%x: tensor<64x32xf32>, %dy: tensor<64x16xf32>) -> (tensor<16xf32>, tensor<64x16xf32>, tensor<16x32xf32>) {
    %w1 = gai.param "w1" : tensor<32x32xf32>
    %w2 = gai.param "w2" : tensor<32x32xf32>
    %w3 = gai.param "w3" : tensor<32x16xf32>
    %t = gai.matmul %x, %w1 : (tensor<64x32xf32>, tensor<32x32xf32>) -> tensor<64x32xf32>
    %dw = gai.gemm %dy, %t transpose_lhs : (tensor<64x16xf32>, tensor<64x32xf32>) -> tensor<16x32xf32>
    %sq = gai.reduce sum %dw axes = [1] : (tensor<16x32xf32>) -> tensor<16xf32>
    %u = gai.matmul %x, %w2 : (tensor<64x32xf32>, tensor<32x32xf32>) -> tensor<64x32xf32>
    %v = gai.matmul %u, %w3 : (tensor<64x32xf32>, tensor<32x16xf32>) -> tensor<64x16xf32>
    return %sq, %v, %dw : tensor<16xf32>, tensor<64x16xf32>, tensor<16x32xf32>
  }
}

// -----

// Near-miss: a GEMM whose result the next GEMM reads is not beside, so its
// input's bytes are reused as soon as it is done, window or not.
// CHECK-LABEL:  module @read_soon
// CHECK:        exec.entry @step arena 10240 {
// BESIDE-LABEL: module @read_soon
// BESIDE:       exec.entry @step arena 10240 {
// BESIDE:       exec.gemm {{{.*}}c = #exec.ref<arena 0, 8192>
// BESIDE-NEXT:  exec.gemm {{{.*}}b = #exec.ref<arena 0, 8192>
// BESIDE-NEXT:  exec.gemm
// BESIDE-NEXT:  exec.gemm {{{.*}}c = #exec.ref<arena 0, 8192>
module @read_soon {
  func.func @step(%x: tensor<64x32xf32>, %dy: tensor<64x16xf32>) -> (tensor<16x16xf32>, tensor<64x16xf32>) {
    %w1 = gai.param "w1" : tensor<32x32xf32>
    %w2 = gai.param "w2" : tensor<32x32xf32>
    %w3 = gai.param "w3" : tensor<32x16xf32>
    %t = gai.matmul %x, %w1 : (tensor<64x32xf32>, tensor<32x32xf32>) -> tensor<64x32xf32>
    %dw = gai.gemm %dy, %t transpose_lhs : (tensor<64x16xf32>, tensor<64x32xf32>) -> tensor<16x32xf32>
    %p = gai.matmul %dw, %w3 : (tensor<16x32xf32>, tensor<32x16xf32>) -> tensor<16x16xf32>
    %u = gai.matmul %x, %w2 : (tensor<64x32xf32>, tensor<32x32xf32>) -> tensor<64x32xf32>
    %v = gai.matmul %u, %w3 : (tensor<64x32xf32>, tensor<32x16xf32>) -> tensor<64x16xf32>
    return %p, %v : tensor<16x16xf32>, tensor<64x16xf32>
  }
}
