// RUN: gai-opt %s | gai-opt | FileCheck %s

// CHECK: func.func @k0
// CHECK: exec.weight "w" : tensor<4x4xf32> at <weights 0, 64>
// CHECK: exec.state "cache.k.0" : tensor<1x1x8x4xf32> at <state 0, 128>
// CHECK-LABEL: exec.entry @step arena 128 {
// CHECK: exec.input "tokens" : tensor<1x1xi32> at <input 0, 4>
// CHECK: exec.output "logits" : tensor<1x4xf32> at <output 0, 16>
// CHECK: exec.launch @k0 [#exec.ref<arena 0, 16>, #exec.ref<output 0, 16>]
// CHECK: exec.call "take" [#exec.ref<arena 0, 16>] ints [1, 2, 3] : f32
// CHECK: exec.gemm {a = #exec.ref<arena 0, 16>
// CHECK-SAME: element = f32
func.func @k0(%a: memref<4xf32>, %b: memref<4xf32>) {
  return
}
exec.weight "w" : tensor<4x4xf32> at #exec.ref<weights 0, 64>
exec.state "cache.k.0" : tensor<1x1x8x4xf32> at #exec.ref<state 0, 128>
exec.entry @step arena 128 {
  exec.input "tokens" : tensor<1x1xi32> at #exec.ref<input 0, 4>
  exec.output "logits" : tensor<1x4xf32> at #exec.ref<output 0, 16>
  exec.launch @k0 [#exec.ref<arena 0, 16>, #exec.ref<output 0, 16>]
  exec.call "take" [#exec.ref<arena 0, 16>] ints [1, 2, 3] : f32
  exec.gemm {a = #exec.ref<arena 0, 16>, b = #exec.ref<weights 0, 64>, c = #exec.ref<output 0, 16>,
             bias = #exec.ref<arena 0, 0>, residual = #exec.ref<arena 0, 0>, batch = 1, m = 1, n = 4, k = 4,
             transpose_a = false, transpose_b = true, stride_a = 0, stride_b = 0, stride_c = 0,
             activation = "none", element = f32}
}

