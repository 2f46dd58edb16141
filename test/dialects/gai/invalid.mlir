// RUN: gai-opt %s -split-input-file -verify-diagnostics
// One case per verifier rule of the gai ops.

func.func @param_without_name() {
  // expected-error @+1 {{expects a non-empty parameter name}}
  %0 = gai.param "" : tensor<4xf32>
  return
}

// -----

func.func @dynamic_shape() {
  // expected-error @+1 {{must be statically shaped tensor}}
  %0 = gai.param "w" : tensor<?x4xf32>
  return
}

// -----

func.func @constant_not_tensor() {
  // expected-error @+1 {{expects a ranked tensor value}}
  %0 = gai.constant dense<1.0> : vector<2xf32>
  return
}

// -----

func.func @iota_dim() {
  // expected-error @+1 {{expects 0 <= dim < 2 (the result's rank), got dim = 2}}
  %0 = gai.iota dim = 2 : tensor<2x8xi32>
  return
}

// -----

func.func @iota_type() {
  // expected-error @+1 {{must be statically shaped tensor of 32-bit signless integer values}}
  %0 = gai.iota dim = 0 : tensor<8xf32>
  return
}

// -----

func.func @embedding_table_rank(%t: tensor<256xf32>, %ids: tensor<2x8xi32>) {
  // expected-error @+2 {{expects operand #0 (table) of shape [vocab, dim], got [256]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.embedding %t, %ids : (tensor<256xf32>, tensor<2x8xi32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @embedding_ids_type(%t: tensor<256x64xf32>, %ids: tensor<2x8xf32>) {
  // expected-error @+1 {{operand #1 must be statically shaped tensor of 32-bit signless integer values}}
  %0 = gai.embedding %t, %ids : (tensor<256x64xf32>, tensor<2x8xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @matmul_lhs_rank(%a: tensor<64xf32>, %b: tensor<64x8xf32>) {
  // expected-error @+2 {{expects operand #0 (lhs) of rank >= 2 ([..., M, K]), got [64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.matmul %a, %b : (tensor<64xf32>, tensor<64x8xf32>) -> tensor<8xf32>
  return
}

// -----

func.func @matmul_rhs_rank(%a: tensor<2x64xf32>, %b: tensor<64xf32>) {
  // expected-error @+2 {{expects operand #1 (rhs) of rank >= 2 ([..., K, N]), got [64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.matmul %a, %b : (tensor<2x64xf32>, tensor<64xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @matmul_contraction(%a: tensor<2x8x64xf32>, %b: tensor<32x60xf32>) {
  // expected-error @+2 {{contraction sizes differ: lhs [2, 8, 64] has K = 64 but rhs [32, 60] (transposed) has K = 60}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.matmul %a, %b transpose_rhs : (tensor<2x8x64xf32>, tensor<32x60xf32>) -> tensor<2x8x32xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<3x8x64xf32>, %b: tensor<2x64x8xf32>) {
  // expected-error @+2 {{batch dimensions [3] and [2] do not broadcast}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.matmul %a, %b : (tensor<3x8x64xf32>, tensor<2x64x8xf32>) -> tensor<3x8x8xf32>
  return
}

// -----

func.func @matmul_element_types(%a: tensor<8x64xbf16>, %b: tensor<64x8xf32>) {
  // expected-error @+2 {{expects operands of one element type, got lhs bf16 and rhs f32}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.matmul %a, %b : (tensor<8x64xbf16>, tensor<64x8xf32>) -> tensor<8x8xbf16>
  return
}

// -----

func.func @matmul_result(%a: tensor<8x64xf32>, %b: tensor<64x8xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<8x8xf32>' are incompatible with return type(s) of operation 'tensor<8x9xf32>'}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.matmul %a, %b : (tensor<8x64xf32>, tensor<64x8xf32>) -> tensor<8x9xf32>
  return
}

// -----

func.func @add_broadcast(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{operands of shapes [2, 3] and [4] do not broadcast}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.add %a, %b : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @mul_element_types(%a: tensor<3xf32>, %b: tensor<3xf16>) {
  // expected-error @+2 {{expects operands of one element type, got lhs f32 and rhs f16}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.mul %a, %b : (tensor<3xf32>, tensor<3xf16>) -> tensor<3xf32>
  return
}

// -----

func.func @unary_on_integers(%a: tensor<3xi32>) {
  // expected-error @+1 {{operand #0 must be statically shaped tensor of 32-bit float or 16-bit float or bfloat16 type or f8E4M3FN type values}}
  %0 = gai.exp %a : tensor<3xi32>
  return
}

// -----

func.func @element_type_f64(%a: tensor<3xf64>) {
  // expected-error @+1 {{must be statically shaped tensor of}}
  %0 = gai.add %a, %a : (tensor<3xf64>, tensor<3xf64>) -> tensor<3xf64>
  return
}

// -----

func.func @convert_shape(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{expects the result shape [2, 3] of the input, got [3, 2]}}
  %0 = gai.convert %a : tensor<2x3xf32> to tensor<3x2xbf16>
  return
}

// -----

func.func @select_condition_type(%c: tensor<4xf32>, %a: tensor<4xf32>) {
  // expected-error @+1 {{operand #0 must be statically shaped tensor of 1-bit signless integer values}}
  %0 = gai.select %c, %a, %a : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @select_condition_shape(%c: tensor<5xi1>, %a: tensor<4xf32>) {
  // expected-error @+2 {{condition of shape [5] does not broadcast with values of shape [4]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.select %c, %a, %a : (tensor<5xi1>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @reduce_no_axes(%a: tensor<4x8xf32>) {
  // expected-error @+2 {{expects at least one axis}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.reduce sum %a axes = [] : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @reduce_axis_range(%a: tensor<4x8xf32>) {
  // expected-error @+2 {{axes value 2 is out of range: expected 0 <= axes < 2 (the input's rank)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.reduce sum %a axes = [2] : (tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @reduce_axis_twice(%a: tensor<4x8xf32>) {
  // expected-error @+2 {{axes names dimension 1 twice}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.reduce max %a axes = [1, 1] : (tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @softmax_axis(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{axis value -1 is out of range: expected 0 <= axis < 2 (the input's rank)}}
  %0 = gai.softmax %a axis = -1 : tensor<4x8xf32>
  return
}

// -----

func.func @rms_norm_weight(%x: tensor<2x8x64xf32>, %w: tensor<32xf32>) {
  // expected-error @+2 {{expects operand #1 (weight) of shape [64] (the input's last dimension), got [32]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<2x8x64xf32>, tensor<32xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @rms_norm_weight_type(%x: tensor<2x8x64xbf16>, %w: tensor<64xf32>) {
  // expected-error @+2 {{expects operand #1 (weight) of element type bf16, got f32}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<2x8x64xbf16>, tensor<64xf32>) -> tensor<2x8x64xbf16>
  return
}

// -----

func.func @layer_norm_bias(%x: tensor<2x8x64xf32>, %w: tensor<64xf32>, %b: tensor<64x1xf32>) {
  // expected-error @+2 {{expects operand #2 (bias) of shape [64] (the input's last dimension), got [64, 1]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.layer_norm %x, %w, %b eps = 1.0e-5 : (tensor<2x8x64xf32>, tensor<64xf32>, tensor<64x1xf32>) -> tensor<2x8x64xf32>
  return
}

// -----

func.func @rope_rank(%x: tensor<8x64xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects operand #0 (input) of shape [batch, heads, seq, head_dim], got [8, 64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 : (tensor<8x64xf32>, tensor<1x8xi32>) -> tensor<8x64xf32>
  return
}

// -----

func.func @rope_odd_head_dim(%x: tensor<1x2x8x15xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects an even head_dim, got 15}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 : (tensor<1x2x8x15xf32>, tensor<1x8xi32>) -> tensor<1x2x8x15xf32>
  return
}

// -----

func.func @rope_positions(%x: tensor<2x2x8x16xf32>, %p: tensor<3x8xi32>) {
  // expected-error @+2 {{expects operand #1 (positions) of shape [2 or 1, 8], got [3, 8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 : (tensor<2x2x8x16xf32>, tensor<3x8xi32>) -> tensor<2x2x8x16xf32>
  return
}

// -----

// Token-major: positions follow axis 1 (8 tokens), not axis 2 (2 heads).
func.func @rope_token_major_positions(%x: tensor<1x8x2x16xf32>, %p: tensor<1x2xi32>) {
  // expected-error @+2 {{expects operand #1 (positions) of shape [1 or 1, 8], got [1, 2]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half token_major %x, %p theta = 1.0e4 : (tensor<1x8x2x16xf32>, tensor<1x2xi32>) -> tensor<1x8x2x16xf32>
  return
}

// -----

func.func @rope_theta(%x: tensor<1x2x8x16xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects theta > 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 0.0 : (tensor<1x2x8x16xf32>, tensor<1x8xi32>) -> tensor<1x2x8x16xf32>
  return
}

// -----

func.func @causal_mask_rank() {
  // expected-error @+1 {{expects a result of shape [..., queries, keys], got [8]}}
  %0 = gai.causal_mask : tensor<8xi1>
  return
}

// -----

func.func @causal_mask_queries() {
  // expected-error @+1 {{expects no more queries than keys, got [8, 4]}}
  %0 = gai.causal_mask : tensor<8x4xi1>
  return
}

// -----

func.func @causal_mask_window() {
  // expected-error @+1 {{expects window >= 0 (0: no window), got -2}}
  %0 = gai.causal_mask window = -2 : tensor<8x8xi1>
  return
}

// -----

func.func @reshape_count(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{cannot reshape [2, 8] (16 elements) to [3, 5] (15 elements)}}
  %0 = gai.reshape %a : tensor<2x8xf32> to tensor<3x5xf32>
  return
}

// -----

func.func @reshape_type(%a: tensor<2x8xf32>) {
  // expected-error @+1 {{expects the input's element type 'f32', got 'bf16'}}
  %0 = gai.reshape %a : tensor<2x8xf32> to tensor<16xbf16>
  return
}

// -----

func.func @transpose_length(%a: tensor<2x8x4xf32>) {
  // expected-error @+2 {{expects a permutation of 3 dimensions, got 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.transpose %a permutation = [1, 0] : (tensor<2x8x4xf32>) -> tensor<8x2xf32>
  return
}

// -----

func.func @transpose_repeats(%a: tensor<2x8x4xf32>) {
  // expected-error @+2 {{permutation names dimension 0 twice}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.transpose %a permutation = [0, 0, 1] : (tensor<2x8x4xf32>) -> tensor<2x2x8xf32>
  return
}

// -----

func.func @slice_arity(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{expects one offset and one size per dimension of [2, 8]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.slice %a offsets = [0] sizes = [2] : (tensor<2x8xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @slice_bounds(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{dimension 1: [6, 10) is not a non-empty range inside [0, 8)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.slice %a offsets = [0, 6] sizes = [2, 4] : (tensor<2x8xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @concat_shapes(%a: tensor<2x8xf32>, %b: tensor<3x4xf32>) {
  // expected-error @+2 {{input #1 has shape [3, 4] but input #0 has [2, 8]: all dimensions but the axis must match}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.concat %a, %b axis = 1 : (tensor<2x8xf32>, tensor<3x4xf32>) -> tensor<2x12xf32>
  return
}

// -----

func.func @concat_types(%a: tensor<2x8xf32>, %b: tensor<2x8xf16>) {
  // expected-error @+2 {{expects input #1 of rank 2 and element type f32, got tensor<2x8xf16>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.concat %a, %b axis = 1 : (tensor<2x8xf32>, tensor<2x8xf16>) -> tensor<2x16xf32>
  return
}

// -----

func.func @concat_axis(%a: tensor<2x8xf32>) {
  // expected-error @+2 {{axis value 2 is out of range}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.concat %a, %a axis = 2 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x16xf32>
  return
}

// -----

func.func @repeat_times(%a: tensor<1x2x8x16xf32>) {
  // expected-error @+2 {{expects times >= 1, got 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.repeat %a axis = 1 times = 0 : (tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return
}

// -----

func.func @repeat_axis(%a: tensor<1x2x8x16xf32>) {
  // expected-error @+2 {{axis value 4 is out of range}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.repeat %a axis = 4 times = 2 : (tensor<1x2x8x16xf32>) -> tensor<1x2x8x16xf32>
  return
}

// -----

func.func @topk_k(%a: tensor<16x4xf32>) {
  // expected-error @+2 {{expects 1 <= k <= 4 (the last dimension), got k = 5}}
  // expected-error @+1 {{failed to infer returned types}}
  %v, %i = gai.topk %a k = 5 : (tensor<16x4xf32>) -> (tensor<16x5xf32>, tensor<16x5xi32>)
  return
}

// -----

func.func @topk_scalar(%a: tensor<f32>) {
  // expected-error @+2 {{expects an input of rank >= 1}}
  // expected-error @+1 {{failed to infer returned types}}
  %v, %i = gai.topk %a k = 1 : (tensor<f32>) -> (tensor<f32>, tensor<i32>)
  return
}

// -----

func.func @one_hot_depth(%i: tensor<16x2xi32>) {
  // expected-error @+1 {{expects depth >= 1, got 0}}
  %0 = gai.one_hot %i depth = 0 : (tensor<16x2xi32>) -> tensor<16x2x0xf32>
  return
}

// -----

func.func @one_hot_shape(%i: tensor<16x2xi32>) {
  // expected-error @+1 {{expects a result of shape [16, 2, 4], got [16, 4]}}
  %0 = gai.one_hot %i depth = 4 : (tensor<16x2xi32>) -> tensor<16x4xf32>
  return
}

// -----

func.func @cross_entropy_labels(%l: tensor<2x8x256xf32>, %y: tensor<2x7xi32>) {
  // expected-error @+2 {{expects operand #1 (labels) of shape [2, 8] (the logits' without vocab), got [2, 7]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.cross_entropy mean %l, %y : (tensor<2x8x256xf32>, tensor<2x7xi32>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_rank(%l: tensor<256xf32>, %y: tensor<i32>) {
  // expected-error @+2 {{expects operand #0 (logits) of shape [..., vocab], got [256]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.cross_entropy sum %l, %y : (tensor<256xf32>, tensor<i32>) -> tensor<f32>
  return
}

// -----

func.func @cross_entropy_grad_labels(%l: tensor<2x8x256xf32>, %y: tensor<2x7xi32>, %g: tensor<f32>) {
  // expected-error @+1 {{expects logits [..., vocab] and labels of the logits' shape without vocab, got [2, 8, 256] and [2, 7]}}
  %0 = gai.cross_entropy_grad mean %l, %y, %g : (tensor<2x8x256xf32>, tensor<2x7xi32>, tensor<f32>) -> tensor<2x8x256xf32>
  return
}

// -----

func.func @cross_entropy_grad_seed(%l: tensor<2x8x256xf32>, %y: tensor<2x8xi32>, %g: tensor<f32>) {
  // expected-error @+1 {{expects operand #2 (grad) of shape [2, 8] (the loss's), got []}}
  %0 = gai.cross_entropy_grad none %l, %y, %g : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f32>) -> tensor<2x8x256xf32>
  return
}

// -----

func.func @cross_entropy_grad_result(%l: tensor<2x8x256xf32>, %y: tensor<2x8xi32>, %g: tensor<f32>) {
  // expected-error @+1 {{expects a result of the logits' type}}
  %0 = gai.cross_entropy_grad sum %l, %y, %g : (tensor<2x8x256xf32>, tensor<2x8xi32>, tensor<f32>) -> tensor<2x8x128xf32>
  return
}

// -----

func.func @flash_attention_rank(%q: tensor<8x4x64xf32>, %k: tensor<1x2x16x64xf32>) {
  // expected-error @+2 {{expects query [B, H, T, D], key [B, Hkv, S, D] and value [B, Hkv, S, Dv], got [8, 4, 64], [1, 2, 16, 64] and [1, 2, 16, 64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 4 : (tensor<8x4x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x16x64xf32>) -> tensor<8x4x64xf32>
  return
}

// -----

func.func @embedding_grad_shape(%g: tensor<2x4x8xf32>, %ids: tensor<2x5xi32>) {
  // expected-error @+2 {{'gai.embedding_grad' op expects grad shaped as the ids followed by D, got [2, 4, 8] for ids [2, 5]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.embedding_grad %g, %ids rows = 16 : (tensor<2x4x8xf32>, tensor<2x5xi32>) -> tensor<16x8xf32>
  return
}

// -----

func.func @flash_attention_grad_lse(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %lse: tensor<1x4x16xf32>) {
  // expected-error @+2 {{'gai.flash_attention_grad' op expects lse of type tensor<1x4x8xf32>, got tensor<1x4x16xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %k, %q, %lse, %q scale = 0.25 kv_groups = 2 causal : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x16xf32>, tensor<1x4x8x16xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>)
  return
}

// -----

func.func @flash_attention_grad_out(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %lse: tensor<1x4x8xf32>, %o: tensor<1x4x8x8xf32>) {
  // expected-error @+2 {{'gai.flash_attention_grad' op expects out of type tensor<1x4x8x16xf32>, got tensor<1x4x8x8xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %k, %o, %lse, %q scale = 0.25 kv_groups = 2 causal : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8xf32>, tensor<1x4x8x16xf32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>)
  return
}

// -----

func.func @flash_attention_token_major_count(%q: tensor<1x8x4x16xf32>, %k: tensor<1x2x8x16xf32>) {
  // expected-error @+2 {{'gai.flash_attention' op expects token_major to have one flag for each of its 4 tensors, got 2}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 0.25 kv_groups = 2 causal {token_major = array<i1: true, false>} : (tensor<1x8x4x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x8x4x16xf32>
  return
}

// -----

// A token-major query [B, T, H, D] is read as such: the shapes are checked
// head-major, as [1, 4, 8, 16], so the key must have 4 / 2 KV heads.
func.func @flash_attention_token_major_heads(%q: tensor<1x8x4x16xf32>, %k: tensor<1x3x8x16xf32>) {
  // expected-error @+2 {{'gai.flash_attention' op expects key of shape [1, 2, 8, 16] for query [1, 4, 8, 16] and kv_groups = 2, got [1, 3, 8, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 0.25 kv_groups = 2 causal {token_major = array<i1: true, false, false, true>} : (tensor<1x8x4x16xf32>, tensor<1x3x8x16xf32>, tensor<1x3x8x16xf32>) -> tensor<1x8x4x16xf32>
  return
}

// -----

func.func @flash_attention_groups(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x16x64xf32>) {
  // expected-error @+2 {{expects key of shape [1, 4, 16, 64] for query [1, 8, 4, 64] and kv_groups = 2, got [1, 2, 16, 64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 2 : (tensor<1x8x4x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x16x64xf32>) -> tensor<1x8x4x64xf32>
  return
}

// -----

func.func @flash_attention_groups_divide(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x16x64xf32>) {
  // expected-error @+2 {{expects kv_groups >= 1 dividing the 8 query heads, got 3}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 3 : (tensor<1x8x4x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x16x64xf32>) -> tensor<1x8x4x64xf32>
  return
}

// -----

func.func @flash_attention_value(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x16x64xf32>, %v: tensor<1x2x15x64xf32>) {
  // expected-error @+2 {{expects value of shape [1, 2, 16] + [Dv] like key, got [1, 2, 15, 64]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %v scale = 1.0 kv_groups = 4 : (tensor<1x8x4x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x15x64xf32>) -> tensor<1x8x4x64xf32>
  return
}

// -----

func.func @flash_attention_causal_queries(%q: tensor<1x8x32x64xf32>, %k: tensor<1x2x16x64xf32>) {
  // expected-error @+2 {{causal attention expects no more queries (32) than keys (16)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 4 causal : (tensor<1x8x32x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x16x64xf32>) -> tensor<1x8x32x64xf32>
  return
}

// -----

func.func @flash_attention_window(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x16x64xf32>) {
  // expected-error @+2 {{expects window >= 0, and only with causal}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 4 window = 4 : (tensor<1x8x4x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x16x64xf32>) -> tensor<1x8x4x64xf32>
  return
}

// -----

func.func @flash_attention_softcap(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x16x64xf32>) {
  // expected-error @+2 {{expects softcap >= 0 (0: none)}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 4 causal softcap = -1.0 : (tensor<1x8x4x64xf32>, tensor<1x2x16x64xf32>, tensor<1x2x16x64xf32>) -> tensor<1x8x4x64xf32>
  return
}

// -----

func.func @flash_attention_types(%q: tensor<1x8x4x64xf32>, %k: tensor<1x2x16x64xbf16>) {
  // expected-error @+2 {{expects query, key and value of one element type}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k scale = 1.0 kv_groups = 4 : (tensor<1x8x4x64xf32>, tensor<1x2x16x64xbf16>, tensor<1x2x16x64xbf16>) -> tensor<1x8x4x64xf32>
  return
}

// -----

func.func @gemm_bias(%x: tensor<8x64xf32>, %w: tensor<64x32xf32>, %b: tensor<64xf32>) {
  // expected-error @+2 {{expects bias of type tensor<32xf32>, got tensor<64xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w bias %b : (tensor<8x64xf32>, tensor<64x32xf32>, tensor<64xf32>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_residual(%x: tensor<8x64xf32>, %w: tensor<64x32xf32>, %r: tensor<1x32xf32>) {
  // expected-error @+2 {{expects residual of the result type tensor<8x32xf32>, got tensor<1x32xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w residual %r : (tensor<8x64xf32>, tensor<64x32xf32>, tensor<1x32xf32>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_residual_narrower(%x: tensor<8x64xbf16>, %w: tensor<64x32xbf16>, %r: tensor<8x32xf16>) {
  // expected-error @+2 {{expects residual of the result type tensor<8x32xbf16> or tensor<8x32xf32>, got tensor<8x32xf16>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w residual %r : (tensor<8x64xbf16>, tensor<64x32xbf16>, tensor<8x32xf16>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_wide_residual_bias(%x: tensor<8x64xbf16>, %w: tensor<64x32xbf16>, %b: tensor<32xbf16>, %r: tensor<8x32xf32>) {
  // expected-error @+2 {{expects residual of the result type tensor<8x32xbf16>, got tensor<8x32xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w bias %b residual %r : (tensor<8x64xbf16>, tensor<64x32xbf16>, tensor<32xbf16>, tensor<8x32xf32>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_wide_f32(%x: tensor<8x64xf32>, %w: tensor<64x32xf32>) {
  // expected-error @+2 {{expects 'wide' only over bf16 or f16 operands without a bias, got tensor<8x32xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w wide : (tensor<8x64xf32>, tensor<64x32xf32>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_wide_bias(%x: tensor<8x64xbf16>, %w: tensor<64x32xbf16>, %b: tensor<32xbf16>) {
  // expected-error @+2 {{expects 'wide' only over bf16 or f16 operands without a bias, got tensor<8x32xbf16>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w bias %b wide : (tensor<8x64xbf16>, tensor<64x32xbf16>, tensor<32xbf16>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_wide_narrow_residual(%x: tensor<8x64xbf16>, %w: tensor<64x32xbf16>, %r: tensor<8x32xbf16>) {
  // expected-error @+2 {{expects a 'wide' GEMM's residual of type tensor<8x32xf32>, got tensor<8x32xbf16>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w residual %r wide : (tensor<8x64xbf16>, tensor<64x32xbf16>, tensor<8x32xbf16>) -> tensor<8x32xf32>
  return
}

// -----

func.func @gemm_contraction(%x: tensor<8x64xf32>, %w: tensor<32x64xf32>) {
  // expected-error @+2 {{contraction sizes differ: lhs [8, 64] has K = 64 but rhs [32, 64] has K = 32}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gemm %x, %w : (tensor<8x64xf32>, tensor<32x64xf32>) -> tensor<8x64xf32>
  return
}

// -----

func.func @gated_gemm_up(%x: tensor<1x64xf32>, %g: tensor<32x64xf32>, %u: tensor<16x64xf32>) {
  // expected-error @+2 {{expects up weights of the gate's type tensor<32x64xf32>, got tensor<16x64xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gated_gemm %x, %g, %u activation = silu : (tensor<1x64xf32>, tensor<32x64xf32>, tensor<16x64xf32>) -> tensor<1x32xf32>
  return
}

// -----

func.func @gated_gemm_rank(%x: tensor<1x64xf32>, %g: tensor<2x32x64xf32>) {
  // expected-error @+2 {{expects gate weights of rank 2 ([N, K]), got tensor<2x32x64xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gated_gemm %x, %g, %g activation = silu : (tensor<1x64xf32>, tensor<2x32x64xf32>, tensor<2x32x64xf32>) -> tensor<2x1x32xf32>
  return
}

// -----

func.func @gated_gemm_activation(%x: tensor<1x64xf32>, %g: tensor<32x64xf32>) {
  // expected-error @+2 {{expects an activation for the gate}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gated_gemm %x, %g, %g activation = none : (tensor<1x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<1x32xf32>
  return
}

// -----

func.func @gated_gemm_contraction(%x: tensor<1x48xf32>, %g: tensor<32x64xf32>) {
  // expected-error @+2 {{contraction sizes differ: lhs [1, 48] has K = 48 but rhs [32, 64] (transposed) has K = 64}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.gated_gemm %x, %g, %g activation = silu : (tensor<1x48xf32>, tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<1x32xf32>
  return
}

// -----

func.func @fusion_arguments(%x: tensor<8xf32>) {
  // expected-error @+1 {{expects one block argument per input, of its type}}
  %0 = gai.fusion %x : (tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<4xf32>):
    %c = gai.constant dense<1.0> : tensor<8xf32>
    gai.yield %c : tensor<8xf32>
  }
  return
}

// -----

func.func @fusion_yield(%x: tensor<8xf32>) {
  // expected-error @+1 {{expects gai.yield of the result types}}
  %0 = gai.fusion %x : (tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<8xf32>):
    %b = gai.convert %a : tensor<8xf32> to tensor<8xbf16>
    gai.yield %b : tensor<8xbf16>
  }
  return
}

// -----

func.func @fusion_partials_alone(%x: tensor<16x8xf32>) {
  // expected-error @+1 {{expects column_partials and partial_rows together}}
  %0 = gai.fusion %x {column_partials = array<i64: 0>} : (tensor<16x8xf32>) -> tensor<2x8xf32> {
  ^bb0(%a: tensor<16x8xf32>):
    gai.yield %a : tensor<16x8xf32>
  }
  return
}

// -----

func.func @fusion_partials_index(%x: tensor<16x8xf32>) {
  // expected-error @+1 {{column_partials names result 1, which is out of range or named twice}}
  %0 = gai.fusion %x {column_partials = array<i64: 1>, partial_rows = 8 : i64} : (tensor<16x8xf32>) -> tensor<2x8xf32> {
  ^bb0(%a: tensor<16x8xf32>):
    gai.yield %a : tensor<16x8xf32>
  }
  return
}

// -----

func.func @fusion_partials_rows(%x: tensor<12x8xf32>) {
  // expected-error @+1 {{column partial result 0 needs float rows of the kernel's shape, in a multiple of partial_rows (8), got tensor<12x8xf32>}}
  %0 = gai.fusion %x {column_partials = array<i64: 0>, partial_rows = 8 : i64} : (tensor<12x8xf32>) -> tensor<1x8xf32> {
  ^bb0(%a: tensor<12x8xf32>):
    gai.yield %a : tensor<12x8xf32>
  }
  return
}

// -----

func.func @fusion_partials_type(%x: tensor<2x8x8xbf16>) {
  // expected-error @+1 {{column partial result 0 must be tensor<2x8xf32>, got tensor<2x8xbf16>}}
  %0 = gai.fusion %x {column_partials = array<i64: 0>, partial_rows = 8 : i64} : (tensor<2x8x8xbf16>) -> tensor<2x8xbf16> {
  ^bb0(%a: tensor<2x8x8xbf16>):
    gai.yield %a : tensor<2x8x8xbf16>
  }
  return
}

// -----

func.func @fusion_isolated(%x: tensor<8xf32>) {
  // expected-note @+1 {{required by region isolation constraints}}
  %0 = gai.fusion : () -> tensor<8xf32> {
    // expected-error @+1 {{using value defined outside the region}}
    %y = gai.exp %x : tensor<8xf32>
    gai.yield %y : tensor<8xf32>
  }
  return
}

// -----

func.func @yield_outside_fusion(%x: tensor<8xf32>) {
  // expected-error @+1 {{expects parent op 'gai.fusion'}}
  gai.yield %x : tensor<8xf32>
}

// -----

func.func @position_mask_shape(%p: tensor<2xi32>) {
  // expected-error @+1 {{expects positions [B] and a result [B, 1, T, S], got [2] and [2, 4, 1, 64]}}
  %0 = gai.position_mask %p : (tensor<2xi32>) -> tensor<2x4x1x64xi1>
  return
}

// -----

func.func @position_mask_window(%p: tensor<2xi32>) {
  // expected-error @+1 {{expects window >= 0 (0: no window), got -1}}
  %0 = gai.position_mask %p window = -1 : (tensor<2xi32>) -> tensor<2x1x1x64xi1>
  return
}

// -----

func.func @cache_write_shape(%c: tensor<2x2x64x16xf32>, %u: tensor<2x4x1x16xf32>, %p: tensor<2xi32>) {
  // expected-error @+2 {{expects cache [B, H, S, D] and update [B, H, T <= S, D], got [2, 2, 64, 16] and [2, 4, 1, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.cache_write %c, %u at %p : (tensor<2x2x64x16xf32>, tensor<2x4x1x16xf32>, tensor<2xi32>) -> tensor<2x2x64x16xf32>
  return
}

// -----

func.func @cache_write_positions(%c: tensor<2x2x64x16xf32>, %u: tensor<2x2x1x16xf32>, %p: tensor<3xi32>) {
  // expected-error @+2 {{expects positions of shape [2], got [3]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.cache_write %c, %u at %p : (tensor<2x2x64x16xf32>, tensor<2x2x1x16xf32>, tensor<3xi32>) -> tensor<2x2x64x16xf32>
  return
}

// -----

func.func @cache_write_types(%c: tensor<2x2x64x16xbf16>, %u: tensor<2x2x1x16xf32>, %p: tensor<2xi32>) {
  // expected-error @+2 {{expects cache and update of one element type}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.cache_write %c, %u at %p : (tensor<2x2x64x16xbf16>, tensor<2x2x1x16xf32>, tensor<2xi32>) -> tensor<2x2x64x16xbf16>
  return
}

// -----

func.func @take_indices(%x: tensor<2x8x64xf32>, %i: tensor<3xi32>) {
  // expected-error @+2 {{expects input [B, T, ...] and indices [B], got [2, 8, 64] and [3]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.take %x, %i : (tensor<2x8x64xf32>, tensor<3xi32>) -> tensor<2x64xf32>
  return
}

// -----

func.func @flash_attention_positions(%q: tensor<2x4x1x16xf32>, %k: tensor<2x2x64x16xf32>, %p: tensor<2xi32>) {
  // expected-error @+2 {{expects query positions of shape [2], and only with causal}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.flash_attention %q, %k, %k at %p scale = 1.0 kv_groups = 2 : (tensor<2x4x1x16xf32>, tensor<2x2x64x16xf32>, tensor<2x2x64x16xf32>, tensor<2xi32>) -> tensor<2x4x1x16xf32>
  return
}

// -----

func.func @cached_attention_rows(%q: tensor<1x4x1x16xf32>, %k: tensor<1x2x2x16xf32>, %c: tensor<1x2x64x16xf32>, %p: tensor<1xi32>) {
  // expected-error @+2 {{expects new key and value rows [B, Hkv, 1, D] like the caches, with no more rows than slots, got [1, 2, 2, 16] and [1, 2, 2, 16] for caches [1, 2, 64, 16] and [1, 2, 64, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p scale = 1.0 kv_groups = 2 causal : (tensor<1x4x1x16xf32>, tensor<1x2x2x16xf32>, tensor<1x2x2x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1xi32>) -> (tensor<1x4x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return
}

// -----

func.func @cached_attention_rope_positions(%q: tensor<2x4x1x16xf32>, %k: tensor<2x2x1x16xf32>, %c: tensor<2x2x64x16xf32>, %p: tensor<2xi32>, %r: tensor<3x1xi32>) {
  // expected-error @+2 {{expects rope positions of shape [2 or 1, 1]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p rope half %r theta = 1.0e4 scale = 1.0 kv_groups = 2 causal : (tensor<2x4x1x16xf32>, tensor<2x2x1x16xf32>, tensor<2x2x1x16xf32>, tensor<2x2x64x16xf32>, tensor<2x2x64x16xf32>, tensor<2xi32>, tensor<3x1xi32>) -> (tensor<2x4x1x16xf32>, tensor<2x2x64x16xf32>, tensor<2x2x64x16xf32>)
  return
}

// -----

func.func @cached_attention_not_causal(%q: tensor<1x4x1x16xf32>, %k: tensor<1x2x1x16xf32>, %c: tensor<1x2x64x16xf32>, %p: tensor<1xi32>) {
  // expected-error @+2 {{expects query positions of shape [1], and only with causal}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p scale = 1.0 kv_groups = 2 : (tensor<1x4x1x16xf32>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1xi32>) -> (tensor<1x4x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return
}

// -----

func.func @cached_attention_rope_odd_dim(%q: tensor<1x4x1x15xf32>, %k: tensor<1x2x1x15xf32>, %c: tensor<1x2x64x15xf32>, %p: tensor<1xi32>, %r: tensor<1x1xi32>) {
  // expected-error @+2 {{expects an even head_dim and theta > 0 for rope, got head_dim 15 and theta 10000}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p rope half %r theta = 1.0e4 scale = 1.0 kv_groups = 2 causal : (tensor<1x4x1x15xf32>, tensor<1x2x1x15xf32>, tensor<1x2x1x15xf32>, tensor<1x2x64x15xf32>, tensor<1x2x64x15xf32>, tensor<1xi32>, tensor<1x1xi32>) -> (tensor<1x4x1x15xf32>, tensor<1x2x64x15xf32>, tensor<1x2x64x15xf32>)
  return
}

// -----

func.func @cached_attention_rope_theta(%q: tensor<1x4x1x16xf32>, %k: tensor<1x2x1x16xf32>, %c: tensor<1x2x64x16xf32>, %p: tensor<1xi32>, %r: tensor<1x1xi32>) {
  // expected-error @+2 {{expects an even head_dim and theta > 0 for rope, got head_dim 16 and theta 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p rope half %r theta = 0.0 scale = 1.0 kv_groups = 2 causal : (tensor<1x4x1x16xf32>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1xi32>, tensor<1x1xi32>) -> (tensor<1x4x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return
}

// -----

func.func @cached_attention_more_rows_than_slots(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %c: tensor<1x2x4x16xf32>, %p: tensor<1xi32>) {
  // expected-error @+2 {{expects new key and value rows [B, Hkv, 8, D] like the caches, with no more rows than slots, got [1, 2, 8, 16] and [1, 2, 8, 16] for caches [1, 2, 4, 16] and [1, 2, 4, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p scale = 1.0 kv_groups = 2 causal : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>, tensor<1xi32>) -> (tensor<1x4x8x16xf32>, tensor<1x2x4x16xf32>, tensor<1x2x4x16xf32>)
  return
}

// -----

func.func @cached_attention_row_type(%q: tensor<1x4x1x16xf32>, %k: tensor<1x2x1x16xbf16>, %c: tensor<1x2x64x16xf32>, %p: tensor<1xi32>) {
  // expected-error @+2 {{expects new key and value rows of the caches' element type, got tensor<1x2x1x16xbf16> and tensor<1x2x1x16xbf16> for caches tensor<1x2x64x16xf32> and tensor<1x2x64x16xf32>}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p scale = 1.0 kv_groups = 2 causal : (tensor<1x4x1x16xf32>, tensor<1x2x1x16xbf16>, tensor<1x2x1x16xbf16>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1xi32>) -> (tensor<1x4x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return
}

// -----

func.func @cached_attention_rank(%q: tensor<4x1x16xf32>, %k: tensor<1x2x1x16xf32>, %c: tensor<1x2x64x16xf32>, %p: tensor<1xi32>) {
  // expected-error @+2 {{expects rank-4 query, key, value and caches, got [4, 1, 16], [1, 2, 1, 16], [1, 2, 1, 16], [1, 2, 64, 16] and [1, 2, 64, 16]}}
  // expected-error @+1 {{failed to infer returned types}}
  %0:3 = gai.cached_attention %q, %k, %k into %c, %c at %p scale = 1.0 kv_groups = 2 causal : (tensor<4x1x16xf32>, tensor<1x2x1x16xf32>, tensor<1x2x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>, tensor<1xi32>) -> (tensor<4x1x16xf32>, tensor<1x2x64x16xf32>, tensor<1x2x64x16xf32>)
  return
}

// -----

func.func @dequantize_int8_scale(%q: tensor<16x32xi8>, %s: tensor<32xf32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{scale: int8 expects one scale a row, tensor<16xf32>, got 'tensor<32xf32>'}}
  %w = gai.dequantize int8 %q, %s : (tensor<16x32xi8>, tensor<32xf32>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_int4_values(%q: tensor<16x32xi8>, %s: tensor<16x1xf32>, %z: tensor<16x1xi8>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{values: int4 expects i4 elements, got 'i8'}}
  %w = gai.dequantize int4 group 32 %q, %s, %z : (tensor<16x32xi8>, tensor<16x1xf32>, tensor<16x1xi8>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_int4_group(%q: tensor<16x32xi4>, %s: tensor<16x1xf32>, %z: tensor<16x1xi8>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{group: int4 expects a group that divides k = 32}}
  %w = gai.dequantize int4 group 24 %q, %s, %z : (tensor<16x32xi4>, tensor<16x1xf32>, tensor<16x1xi8>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_int4_zero(%q: tensor<16x32xi4>, %s: tensor<16x2xf32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{zero: int4 expects zero points}}
  %w = gai.dequantize int4 group 16 %q, %s : (tensor<16x32xi4>, tensor<16x2xf32>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_int4_zero_shape(%q: tensor<16x32xi4>, %s: tensor<16x2xf32>, %z: tensor<16x1xi8>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{zero: int4 expects a zero point a group, tensor<16x2xi8>, got 'tensor<16x1xi8>'}}
  %w = gai.dequantize int4 group 16 %q, %s, %z : (tensor<16x32xi4>, tensor<16x2xf32>, tensor<16x1xi8>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_fp8_scale(%q: tensor<16x32xf8E4M3FN>, %s: tensor<2xf32>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{scale: fp8_e4m3 expects one scale, tensor<1xf32>, or one a row, tensor<16xf32>, got 'tensor<2xf32>'}}
  %w = gai.dequantize fp8_e4m3 %q, %s : (tensor<16x32xf8E4M3FN>, tensor<2xf32>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_int8_zero(%q: tensor<16x32xi8>, %s: tensor<16xf32>, %z: tensor<16x1xi8>) -> tensor<16x32xbf16> {
  // expected-error @+1 {{zero: only int4 weights take a group and zero points}}
  %w = gai.dequantize int8 %q, %s, %z : (tensor<16x32xi8>, tensor<16xf32>, tensor<16x1xi8>) -> tensor<16x32xbf16>
  return %w : tensor<16x32xbf16>
}

// -----

func.func @dequantize_shape(%q: tensor<16x32xi8>, %s: tensor<16xf32>) -> tensor<32x16xbf16> {
  // expected-error @+1 {{result: expects the values' shape 'tensor<16x32xi8>', got 'tensor<32x16xbf16>'}}
  %w = gai.dequantize int8 %q, %s : (tensor<16x32xi8>, tensor<16xf32>) -> tensor<32x16xbf16>
  return %w : tensor<32x16xbf16>
}

// -----

func.func @decompress_k(%v: tensor<16x6xf32>, %m: tensor<16x1xi8>) -> tensor<16x12xf32> {
  // expected-error @+1 {{result: expects a weight [n, k] with k a multiple of 8, got 'tensor<16x12xf32>'}}
  %w = gai.decompress %v, %m : (tensor<16x6xf32>, tensor<16x1xi8>) -> tensor<16x12xf32>
  return %w : tensor<16x12xf32>
}

// -----

func.func @decompress_values(%v: tensor<16x32xf32>, %m: tensor<16x4xi8>) -> tensor<16x32xf32> {
  // expected-error @+1 {{values: expects the kept half, tensor<16x16xf32>, got 'tensor<16x32xf32>'}}
  %w = gai.decompress %v, %m : (tensor<16x32xf32>, tensor<16x4xi8>) -> tensor<16x32xf32>
  return %w : tensor<16x32xf32>
}

// -----

func.func @decompress_values_type(%v: tensor<16x16xbf16>, %m: tensor<16x4xi8>) -> tensor<16x32xf32> {
  // expected-error @+1 {{values: expects the kept half, tensor<16x16xf32>, got 'tensor<16x16xbf16>'}}
  %w = gai.decompress %v, %m : (tensor<16x16xbf16>, tensor<16x4xi8>) -> tensor<16x32xf32>
  return %w : tensor<16x32xf32>
}

// -----

func.func @decompress_meta(%v: tensor<16x16xf32>, %m: tensor<16x8xi8>) -> tensor<16x32xf32> {
  // expected-error @+1 {{meta: expects two positions a nibble, tensor<16x4xi8>, got 'tensor<16x8xi8>'}}
  %w = gai.decompress %v, %m : (tensor<16x16xf32>, tensor<16x8xi8>) -> tensor<16x32xf32>
  return %w : tensor<16x32xf32>
}

// -----

func.func @rope_table_size(%x: tensor<1x2x8x16xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects frequencies of rotary_dim / 2 (8) finite values > 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 {frequencies = array<f32: 1.0, 0.5>} : (tensor<1x2x8x16xf32>, tensor<1x8xi32>) -> tensor<1x2x8x16xf32>
  return
}

// -----

func.func @rope_table_zero(%x: tensor<1x2x8x4xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects frequencies of rotary_dim / 2 (2) finite values > 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 {frequencies = array<f32: 1.0, 0.0>} : (tensor<1x2x8x4xf32>, tensor<1x8xi32>) -> tensor<1x2x8x4xf32>
  return
}

// -----

func.func @rope_table_and_llama3(%x: tensor<1x2x8x4xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects frequencies or llama3_scaling, not both}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 {frequencies = array<f32: 1.0, 0.5>, llama3_scaling = array<f64: 8.0, 1.0, 4.0, 8192.0>} : (tensor<1x2x8x4xf32>, tensor<1x8xi32>) -> tensor<1x2x8x4xf32>
  return
}

// -----

func.func @rope_attention_factor(%x: tensor<1x2x8x4xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects attention_factor > 0}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 {attention_factor = -1.0 : f32} : (tensor<1x2x8x4xf32>, tensor<1x8xi32>) -> tensor<1x2x8x4xf32>
  return
}

// -----

func.func @rope_rotary_dim(%x: tensor<1x2x8x16xf32>, %p: tensor<1x8xi32>) {
  // expected-error @+2 {{expects an even rotary_dim in [2, head_dim (16)], got 18}}
  // expected-error @+1 {{failed to infer returned types}}
  %0 = gai.rope half %x, %p theta = 1.0e4 {rotary_dim = 18 : i64} : (tensor<1x2x8x16xf32>, tensor<1x8xi32>) -> tensor<1x2x8x16xf32>
  return
}
