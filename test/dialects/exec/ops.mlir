// RUN: gai-opt %s | gai-opt | FileCheck %s

// Every command round-trips with its named, typed attributes.

// CHECK: func.func @k0
// CHECK: exec.weight "w" : tensor<4x4xf32> at <weights 0, 64>
// CHECK: exec.state kv_cache "cache.k.0" : tensor<1x1x8x4xf32> at <state 0, 128>
// CHECK: exec.state parameter "param.w" : tensor<4x4xf32> at <state 128, 64>
// CHECK-LABEL: exec.entry @step arena 128 {
// CHECK: exec.input "tokens" : tensor<1x1xi32> at <input 0, 4>
// CHECK: exec.output "logits" : tensor<1x4xf32> at <output 0, 16>
// CHECK: exec.launch @k0 [#exec.ref<arena 0, 16>, #exec.ref<output 0, 16>]
// CHECK: exec.take {batch = 1 : i64, indices = #exec.ref<input 0, 4>, input = #exec.ref<arena 0, 16>, length = 1 : i64, out = #exec.ref<arena 16, 16>, row_bytes = 16 : i64}
// CHECK: exec.gemm {a = #exec.ref<arena 0, 16>
// CHECK-SAME: activation = #exec<activation gelu_tanh>
// CHECK-SAME: element = f32
// CHECK: exec.reduce {{{.*}}kind = #exec<reduce_kind mean>
// CHECK: exec.cross_entropy {{{.*}}reduction = #exec<loss_reduction none>
// CHECK: exec.attention {{{.*}}rope = #exec<rope_style interleaved>
// CHECK: exec.fill {bits = 1065353216 : i64, element = f32, out = #exec.ref<arena 0, 16>}
func.func @k0(%a: memref<4xf32>, %b: memref<4xf32>) {
  return
}
exec.weight "w" : tensor<4x4xf32> at #exec.ref<weights 0, 64>
exec.state kv_cache "cache.k.0" : tensor<1x1x8x4xf32> at #exec.ref<state 0, 128>
exec.state parameter "param.w" : tensor<4x4xf32> at #exec.ref<state 128, 64>
exec.entry @step arena 128 {
  exec.input "tokens" : tensor<1x1xi32> at #exec.ref<input 0, 4>
  exec.output "logits" : tensor<1x4xf32> at #exec.ref<output 0, 16>
  exec.launch @k0 [#exec.ref<arena 0, 16>, #exec.ref<output 0, 16>]
  exec.take {input = #exec.ref<arena 0, 16>, indices = #exec.ref<input 0, 4>,
             out = #exec.ref<arena 16, 16>, batch = 1, length = 1, row_bytes = 16}
  exec.gemm {a = #exec.ref<arena 0, 16>, b = #exec.ref<weights 0, 64>, c = #exec.ref<output 0, 16>,
             bias = #exec.ref<arena 0, 0>, residual = #exec.ref<arena 0, 0>, batch = 1, m = 1, n = 4, k = 4,
             transpose_a = false, transpose_b = true, stride_a = 0, stride_b = 0, stride_c = 0,
             activation = #exec<activation gelu_tanh>, element = f32}
  exec.reduce {input = #exec.ref<arena 0, 16>, out = #exec.ref<arena 16, 4>,
               kind = #exec<reduce_kind mean>, outer = 1, n = 4, inner = 1, element = f32}
  exec.cross_entropy {logits = #exec.ref<arena 0, 16>, labels = #exec.ref<input 0, 4>,
                      loss = #exec.ref<arena 16, 4>, rows = 1, vocab = 4, ignore_index = -100,
                      reduction = #exec<loss_reduction none>, element = f32}
  exec.attention {q = #exec.ref<arena 0, 16>, k = #exec.ref<state 0, 128>,
                  v = #exec.ref<state 0, 128>, out = #exec.ref<arena 16, 16>,
                  query_start = #exec.ref<input 0, 4>, batch = 1, heads = 1, kv_heads = 1,
                  queries = 1, keys = 8, head_dim = 4, value_dim = 4, scale = 0.5 : f32,
                  softcap = 0.0 : f32, causal = true, window = 0, element = f32,
                  k_new = #exec.ref<arena 32, 16>, v_new = #exec.ref<arena 48, 16>,
                  rope_positions = #exec.ref<input 0, 4>, rope = #exec<rope_style interleaved>,
                  rope_theta = 10000.0 : f32}
  exec.fill {out = #exec.ref<arena 0, 16>, bits = 1065353216, element = f32}
}
