// RUN: gai-opt %s -split-input-file -verify-diagnostics

// expected-error @below {{unknown space 'heap', expected arena, weights, state, input or output}}
exec.weight "w" : tensor<4xf32> at #exec.ref<heap 0, 16>

// -----

// expected-error @below {{offset and size must not be negative}}
exec.weight "w" : tensor<4xf32> at #exec.ref<weights -64, 16>

// -----

exec.entry @step arena 64 {
  // expected-error @below {{'exec.copy' op 'input' ends at byte 96, past the entry's arena of 64}}
  exec.copy {input = #exec.ref<arena 32, 64>, out = #exec.ref<output 0, 64>}
}

// -----

exec.entry @step arena 64 {
  // expected-error @+5 {{expected ::mlir::exec::Activation to be one of: none, silu, gelu, gelu_tanh, relu}}
  // expected-error @+4 {{failed to parse Exec_ActivationAttr parameter 'value'}}
  exec.gemm {a = #exec.ref<arena 0, 16>, b = #exec.ref<weights 0, 64>, c = #exec.ref<output 0, 16>,
             bias = #exec.ref<arena 0, 0>, residual = #exec.ref<arena 0, 0>, batch = 1, m = 1, n = 4, k = 4,
             transpose_a = false, transpose_b = true, stride_a = 0, stride_b = 0, stride_c = 0,
             activation = #exec<activation swish>, element = f32}
}

// -----

exec.entry @step arena 64 {
  // expected-error @below {{'exec.fill' op requires attribute 'element'}}
  exec.fill {out = #exec.ref<arena 0, 16>, bits = 0}
}

// -----

// expected-error @below {{'exec.entry' op arena size must not be negative, got -1}}
exec.entry @step arena -1 {
}

// -----

exec.entry @step arena 0 {
  // expected-error @below {{'exec.launch' op launches 'k9', which is not a func.func kernel}}
  exec.launch @k9 [#exec.ref<input 0, 4>]
}

// -----

func.func @k0(%a: memref<1xf32>, %b: memref<1xf32>) {
  return
}
exec.entry @step arena 0 {
  // expected-error @below {{'exec.launch' op passes 1 buffers to 'k0', which takes 2}}
  exec.launch @k0 [#exec.ref<input 0, 4>]
}
