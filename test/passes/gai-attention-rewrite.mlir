// RUN: gai-opt %s --gai-attention-rewrite --split-input-file | FileCheck %s

// Multi-head attention: the whole pattern becomes one op.
// CHECK-LABEL: func.func @mha
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x8x16xf32>, %[[V:.*]]: tensor<2x4x8x16xf32>)
// CHECK: %[[O:.*]] = gai.flash_attention %[[Q]], %[[K]], %[[V]] scale = 2.500000e-01 kv_groups = 1 causal : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
// CHECK-NOT: gai.softmax
// CHECK: return %[[O]]
func.func @mha(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x8xf32>
  %c = gai.constant dense<0.25> : tensor<f32>
  %s1 = gai.mul %s, %c : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s1, %ninf : (tensor<8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<2x4x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// Grouped queries, a sliding window, a scale by division, HF's lowest-float
// fill, and a prefix of cached keys (4 queries over 8 keys).
// CHECK-LABEL: func.func @gqa_window
// CHECK-SAME: (%[[Q:.*]]: tensor<1x8x4x16xbf16>, %[[K:.*]]: tensor<1x2x8x16xbf16>, %[[V:.*]]: tensor<1x2x8x16xbf16>)
// CHECK: gai.flash_attention %[[Q]], %[[K]], %[[V]] scale = 2.500000e-01 kv_groups = 4 causal window = 3 : (tensor<1x8x4x16xbf16>, tensor<1x2x8x16xbf16>, tensor<1x2x8x16xbf16>) -> tensor<1x8x4x16xbf16>
// CHECK-NOT: gai.repeat
func.func @gqa_window(%q: tensor<1x8x4x16xbf16>, %k: tensor<1x2x8x16xbf16>, %v: tensor<1x2x8x16xbf16>) -> tensor<1x8x4x16xbf16> {
  %kr = gai.repeat %k axis = 1 times = 4 : (tensor<1x2x8x16xbf16>) -> tensor<1x8x8x16xbf16>
  %vr = gai.repeat %v axis = 1 times = 4 : (tensor<1x2x8x16xbf16>) -> tensor<1x8x8x16xbf16>
  %s = gai.matmul %q, %kr transpose_rhs : (tensor<1x8x4x16xbf16>, tensor<1x8x8x16xbf16>) -> tensor<1x8x4x8xbf16>
  %c = gai.constant dense<4.0> : tensor<bf16>
  %s1 = gai.div %s, %c : (tensor<1x8x4x8xbf16>, tensor<bf16>) -> tensor<1x8x4x8xbf16>
  %m = gai.causal_mask window = 3 : tensor<4x8xi1>
  %low = gai.constant dense<0xFF7F> : tensor<bf16>
  %s2 = gai.select %m, %s1, %low : (tensor<4x8xi1>, tensor<1x8x4x8xbf16>, tensor<bf16>) -> tensor<1x8x4x8xbf16>
  %p = gai.softmax %s2 axis = 3 : tensor<1x8x4x8xbf16>
  %o = gai.matmul %p, %vr : (tensor<1x8x4x8xbf16>, tensor<1x8x8x16xbf16>) -> tensor<1x8x4x16xbf16>
  return %o : tensor<1x8x4x16xbf16>
}

// -----

// A logit softcap between scaling and masking (Gemma 2).
// CHECK-LABEL: func.func @softcap
// CHECK: gai.flash_attention {{.*}} scale = 1.250000e-01 kv_groups = 1 causal softcap = 5.000000e+01
// CHECK-NOT: gai.tanh
func.func @softcap(%q: tensor<1x2x8x64xf32>, %k: tensor<1x2x8x64xf32>, %v: tensor<1x2x8x64xf32>) -> tensor<1x2x8x64xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x8x64xf32>, tensor<1x2x8x64xf32>) -> tensor<1x2x8x8xf32>
  %c = gai.constant dense<0.125> : tensor<f32>
  %s1 = gai.mul %s, %c : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %cap = gai.constant dense<50.0> : tensor<f32>
  %d = gai.div %s1, %cap : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %t = gai.tanh %d : tensor<1x2x8x8xf32>
  %s2 = gai.mul %t, %cap : (tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s3 = gai.select %m, %s2, %ninf : (tensor<8x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s3 axis = 3 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x64xf32>) -> tensor<1x2x8x64xf32>
  return %o : tensor<1x2x8x64xf32>
}

// -----

// Near miss: softmax over the query axis is not attention.
// CHECK-LABEL: func.func @softmax_wrong_axis
// CHECK-NOT: gai.flash_attention
// CHECK: gai.softmax %{{.*}} axis = 2
func.func @softmax_wrong_axis(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s, %ninf : (tensor<8x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s2 axis = 2 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// -----

// Near miss: a mask that is not causal (here, a function argument).
// CHECK-LABEL: func.func @mask_not_causal
// CHECK-NOT: gai.flash_attention
// CHECK: gai.softmax
func.func @mask_not_causal(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>, %m: tensor<8x8xi1>) -> tensor<1x2x8x16xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s, %ninf : (tensor<8x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// -----

// Near miss: a scale that differs between heads.
// CHECK-LABEL: func.func @per_head_scale
// CHECK-NOT: gai.flash_attention
// CHECK: gai.softmax
func.func @per_head_scale(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32>
  %c = gai.constant dense<[[[[0.25]], [[0.5]]]]> : tensor<1x2x1x1xf32>
  %s1 = gai.mul %s, %c : (tensor<1x2x8x8xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s1, %ninf : (tensor<8x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// -----

// Near miss: masked scores filled with 0, not -inf, still get weight.
// CHECK-LABEL: func.func @zero_fill
// CHECK-NOT: gai.flash_attention
func.func @zero_fill(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %zero = gai.constant dense<0.0> : tensor<f32>
  %s2 = gai.select %m, %s, %zero : (tensor<8x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// -----

// Near miss: K repeated for grouped queries but V repeated differently.
// CHECK-LABEL: func.func @repeat_mismatch
// CHECK-NOT: gai.flash_attention
func.func @repeat_mismatch(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %kr = gai.repeat %k axis = 1 times = 2 : (tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32>
  %s = gai.matmul %q, %kr transpose_rhs : (tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s, %ninf : (tensor<8x8xi1>, tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<1x4x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// Near miss: Q·K without the transpose contracts the wrong dimension.
// CHECK-LABEL: func.func @no_transpose
// CHECK-NOT: gai.flash_attention
func.func @no_transpose(%q: tensor<1x2x8x8xf32>, %k: tensor<1x2x8x8xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %s = gai.matmul %q, %k : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %m = gai.causal_mask : tensor<8x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s, %ninf : (tensor<8x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}

// -----

// A decode step over a KV cache: the mask comes from per-row positions.
// CHECK-LABEL: func.func @decode_step
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x1x16xf32>, %[[K:.*]]: tensor<2x2x32x16xf32>, %[[V:.*]]: tensor<2x2x32x16xf32>, %[[P:.*]]: tensor<2xi32>)
// CHECK: gai.flash_attention %[[Q]], %[[K]], %[[V]] at %[[P]] scale = 2.500000e-01 kv_groups = 2 causal window = 8 :
func.func @decode_step(%q: tensor<2x4x1x16xf32>, %k: tensor<2x2x32x16xf32>, %v: tensor<2x2x32x16xf32>, %pos: tensor<2xi32>) -> tensor<2x4x1x16xf32> {
  %kr = gai.repeat %k axis = 1 times = 2 : (tensor<2x2x32x16xf32>) -> tensor<2x4x32x16xf32>
  %vr = gai.repeat %v axis = 1 times = 2 : (tensor<2x2x32x16xf32>) -> tensor<2x4x32x16xf32>
  %s = gai.matmul %q, %kr transpose_rhs : (tensor<2x4x1x16xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x1x32xf32>
  %c = gai.constant dense<0.25> : tensor<f32>
  %s1 = gai.mul %s, %c : (tensor<2x4x1x32xf32>, tensor<f32>) -> tensor<2x4x1x32xf32>
  %m = gai.position_mask %pos window = 8 : (tensor<2xi32>) -> tensor<2x1x1x32xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s1, %ninf : (tensor<2x1x1x32xi1>, tensor<2x4x1x32xf32>, tensor<f32>) -> tensor<2x4x1x32xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<2x4x1x32xf32>
  %o = gai.matmul %p, %vr : (tensor<2x4x1x32xf32>, tensor<2x4x32x16xf32>) -> tensor<2x4x1x16xf32>
  return %o : tensor<2x4x1x16xf32>
}

// -----

// Near miss: a one-row causal mask broadcast over several queries gives
// every query the same keys, which is not causal attention.
// CHECK-LABEL: func.func @broadcast_mask
// CHECK-NOT: gai.flash_attention
// CHECK: gai.softmax
func.func @broadcast_mask(%q: tensor<1x2x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x8xf32>
  %m = gai.causal_mask : tensor<1x8xi1>
  %ninf = gai.constant dense<0xFF800000> : tensor<f32>
  %s2 = gai.select %m, %s, %ninf : (tensor<1x8xi1>, tensor<1x2x8x8xf32>, tensor<f32>) -> tensor<1x2x8x8xf32>
  %p = gai.softmax %s2 axis = 3 : tensor<1x2x8x8xf32>
  %o = gai.matmul %p, %v : (tensor<1x2x8x8xf32>, tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return %o : tensor<1x2x8x16xf32>
}
