// RUN: gai-opt %s -split-input-file -verify-diagnostics

// expected-error @below {{unknown space 'heap', expected arena, weights, state, input or output}}
exec.weight "w" : tensor<4xf32> at #exec.ref<heap 0, 16>

// -----

// expected-error @below {{offset and size must not be negative}}
exec.weight "w" : tensor<4xf32> at #exec.ref<weights -64, 16>

// -----

exec.entry @step arena 64 {
  // expected-error @below {{'exec.call' op 'args' ends at byte 96, past the entry's arena of 64}}
  exec.call "copy" [#exec.ref<arena 32, 64>, #exec.ref<output 0, 64>] ints [] : f32
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
