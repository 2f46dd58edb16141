// RUN: gai-opt %s -split-input-file -verify-diagnostics

// expected-error @below {{unknown space 'heap', expected arena, weights, state, input or output}}
exec.weight "w" : tensor<4xf32> at #exec.ref<heap 0, 16>

// -----

// expected-error @below {{offset and size must not be negative}}
exec.weight "w" : tensor<4xf32> at #exec.ref<weights -64, 16>
