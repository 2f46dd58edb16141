// RUN: gai-opt %s --gai-lower-to-exec --split-input-file | FileCheck %s

// Token-major attention (gai-attention-layout) over a packed q/k/v
// projection: the slices are views of the projection's rows (no copies),
// the output is written [B, T, H·D] in place, and the backward writes its
// three gradients straight into their concat (no places). The strides are
// batch, head, row for q, k, v, out (then out_grad, q_grad, k_grad, v_grad).
// CHECK-LABEL: module @views
// CHECK:     exec.input "qkv" : tensor<1x8x48xf32> at <input 0, 1536>
// CHECK:     exec.output "result1" : tensor<1x8x48xf32> at <output 512, 1536>
// CHECK-NOT: exec.slice
// CHECK:     exec.attention {{{.*}}k = #exec.ref<input 64, 1472>{{.*}}out = #exec.ref<output 0, 512>, q = #exec.ref<input 0, 1536>{{.*}}strides = array<i64: 384, 8, 48, 384, 8, 48, 384, 8, 48, 128, 8, 16>, v = #exec.ref<input 128, 1408>
// CHECK:     exec.attention_grad {{{.*}}k_grad = #exec.ref<output 576, 1472>{{.*}}q_grad = #exec.ref<output 512, 1536>{{.*}}strides = array<i64: 384, 8, 48, 384, 8, 48, 384, 8, 48, 128, 8, 16, 128, 8, 16, 384, 8, 48, 384, 8, 48, 384, 8, 48>, v = #exec.ref<input 128, 1408>, v_grad = #exec.ref<output 640, 1408>
// CHECK-NOT: exec.place
// CHECK-NOT: exec.copy
module @views {
  func.func @step(%qkv: tensor<1x8x48xf32> {gai.name = "qkv"}, %dy: tensor<1x8x16xf32> {gai.name = "dy"}) -> (tensor<1x8x16xf32>, tensor<1x8x48xf32>) {
    %qs = gai.slice %qkv offsets = [0, 0, 0] sizes = [1, 8, 16] : (tensor<1x8x48xf32>) -> tensor<1x8x16xf32>
    %ks = gai.slice %qkv offsets = [0, 0, 16] sizes = [1, 8, 16] : (tensor<1x8x48xf32>) -> tensor<1x8x16xf32>
    %vs = gai.slice %qkv offsets = [0, 0, 32] sizes = [1, 8, 16] : (tensor<1x8x48xf32>) -> tensor<1x8x16xf32>
    %q = gai.reshape %qs : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %k = gai.reshape %ks : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %v = gai.reshape %vs : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %o, %lse = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 1 causal with_lse {token_major = array<i1: true, true, true, true>} : (tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>) -> (tensor<1x8x2x8xf32>, tensor<1x2x8xf32>)
    %y = gai.reshape %o : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %do = gai.reshape %dy : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %do scale = 0.25 kv_groups = 1 causal {token_major = array<i1: true, true, true, true, true, true, true, true>} : (tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x2x8xf32>, tensor<1x8x2x8xf32>) -> (tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>)
    %dqr = gai.reshape %dq : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %dkr = gai.reshape %dk : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %dvr = gai.reshape %dv : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %g = gai.concat %dqr, %dkr, %dvr axis = 2 : (tensor<1x8x16xf32>, tensor<1x8x16xf32>, tensor<1x8x16xf32>) -> tensor<1x8x48xf32>
    return %y, %g : tensor<1x8x16xf32>, tensor<1x8x48xf32>
  }
}

// -----

// Near misses: slices of rows that are not a multiple of 16 bytes (52
// f32) are copied as before, and a gradient with another reader than its
// concat (dv, returned too) is placed by a copy; the others still go in
// place. The attention reads the copies at their own strides.
// CHECK-LABEL: module @copies
// CHECK:     exec.slice {{.*}}offsets = array<i64: 0, 0, 4>
// CHECK:     exec.slice {{.*}}offsets = array<i64: 0, 0, 16>
// CHECK:     exec.slice {{.*}}offsets = array<i64: 0, 0, 32>
// CHECK:     exec.attention {{{.*}}strides = array<i64: 128, 8, 16,
// CHECK:     exec.attention_grad {{{.*}}k_grad = #exec.ref<output 576, 1472>
// CHECK-SAME: v_grad = #exec.ref<output 2048, 512>
// CHECK:     exec.place {{{.*}}input = #exec.ref<output 2048, 512>, offset_bytes = 128
// CHECK-NOT: exec.place
module @copies {
  func.func @step(%qkv: tensor<1x8x52xf32> {gai.name = "qkv"}, %dy: tensor<1x8x16xf32> {gai.name = "dy"}) -> (tensor<1x8x16xf32>, tensor<1x8x48xf32>, tensor<1x8x2x8xf32>) {
    %qs = gai.slice %qkv offsets = [0, 0, 4] sizes = [1, 8, 16] : (tensor<1x8x52xf32>) -> tensor<1x8x16xf32>
    %ks = gai.slice %qkv offsets = [0, 0, 16] sizes = [1, 8, 16] : (tensor<1x8x52xf32>) -> tensor<1x8x16xf32>
    %vs = gai.slice %qkv offsets = [0, 0, 32] sizes = [1, 8, 16] : (tensor<1x8x52xf32>) -> tensor<1x8x16xf32>
    %q = gai.reshape %qs : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %k = gai.reshape %ks : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %v = gai.reshape %vs : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %o, %lse = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 1 causal with_lse {token_major = array<i1: true, true, true, true>} : (tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>) -> (tensor<1x8x2x8xf32>, tensor<1x2x8xf32>)
    %y = gai.reshape %o : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %do = gai.reshape %dy : tensor<1x8x16xf32> to tensor<1x8x2x8xf32>
    %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %do scale = 0.25 kv_groups = 1 causal {token_major = array<i1: true, true, true, true, true, true, true, true>} : (tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x2x8xf32>, tensor<1x8x2x8xf32>) -> (tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>, tensor<1x8x2x8xf32>)
    %dqr = gai.reshape %dq : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %dkr = gai.reshape %dk : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %dvr = gai.reshape %dv : tensor<1x8x2x8xf32> to tensor<1x8x16xf32>
    %g = gai.concat %dqr, %dkr, %dvr axis = 2 : (tensor<1x8x16xf32>, tensor<1x8x16xf32>, tensor<1x8x16xf32>) -> tensor<1x8x48xf32>
    return %y, %g, %dv : tensor<1x8x16xf32>, tensor<1x8x48xf32>, tensor<1x8x2x8xf32>
  }
}
