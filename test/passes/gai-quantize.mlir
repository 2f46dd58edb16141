// RUN: gai-opt %s --split-input-file --gai-quantize="weights=int8" | FileCheck %s --check-prefix=INT8
// RUN: gai-opt %s --split-input-file --gai-quantize="weights=int4 group=32" | FileCheck %s --check-prefix=INT4
// RUN: gai-opt %s --split-input-file --gai-quantize="weights=fp8" | FileCheck %s --check-prefix=FP8
// RUN: gai-opt %s --split-input-file --gai-quantize="weights=fp8 fp8-per-row=true" | FileCheck %s --check-prefix=FP8ROW
// RUN: gai-opt %s --split-input-file --gai-quantize="weights=int8 skip=*up*" | FileCheck %s --check-prefix=SKIP
// RUN: gai-opt %s --split-input-file --gai-quantize="weights=int8 skip=none" | FileCheck %s --check-prefix=ALL

// A weight [n, k] read transposed: values, scales (and int4 zeros) under
// its name, one dequantize, the matmul unchanged otherwise. The LM head
// stays float by default.
// INT8-LABEL: func.func @mlp
// INT8:         %[[Q:.*]] = gai.param "mlp.up.weight" : tensor<176x64xi8>
// INT8-NEXT:    %[[S:.*]] = gai.param "mlp.up.weight.scale" : tensor<176xf32>
// INT8-NEXT:    %[[W:.*]] = gai.dequantize int8 %[[Q]], %[[S]] : (tensor<176x64xi8>, tensor<176xf32>) -> tensor<176x64xbf16>
// INT8:         gai.matmul %{{.*}}, %[[W]] transpose_rhs
// INT8:         gai.param "lm_head.weight" : tensor<256x176xbf16>
// INT8-NOT:     gai.dequantize
// INT4-LABEL: func.func @mlp
// INT4:         %[[Q:.*]] = gai.param "mlp.up.weight" : tensor<176x64xi4>
// INT4-NEXT:    %[[S:.*]] = gai.param "mlp.up.weight.scale" : tensor<176x2xf32>
// INT4-NEXT:    %[[Z:.*]] = gai.param "mlp.up.weight.zero" : tensor<176x2xi8>
// INT4-NEXT:    %[[W:.*]] = gai.dequantize int4 group 32 %[[Q]], %[[S]], %[[Z]]
// INT4:         gai.matmul %{{.*}}, %[[W]] transpose_rhs
// FP8-LABEL: func.func @mlp
// FP8:          %[[Q:.*]] = gai.param "mlp.up.weight" : tensor<176x64xf8E4M3FN>
// FP8-NEXT:     %[[S:.*]] = gai.param "mlp.up.weight.scale" : tensor<1xf32>
// FP8-NEXT:     gai.dequantize fp8_e4m3 %[[Q]], %[[S]]
// FP8ROW:       gai.param "mlp.up.weight.scale" : tensor<176xf32>
// SKIP-LABEL: func.func @mlp
// SKIP:         gai.param "mlp.up.weight" : tensor<176x64xbf16>
// SKIP:         gai.param "lm_head.weight" : tensor<256x176xi8>
// ALL-LABEL: func.func @mlp
// ALL:          gai.param "lm_head.weight" : tensor<256x176xi8>
// ALL:          gai.dequantize int8 {{.*}} -> tensor<256x176xbf16>
func.func @mlp(%x: tensor<2x4x64xbf16>) -> tensor<2x4x256xbf16> {
  %w = gai.param "mlp.up.weight" : tensor<176x64xbf16>
  %h = gai.matmul %x, %w transpose_rhs : (tensor<2x4x64xbf16>, tensor<176x64xbf16>) -> tensor<2x4x176xbf16>
  %head = gai.param "lm_head.weight" : tensor<256x176xbf16>
  %y = gai.matmul %h, %head transpose_rhs : (tensor<2x4x176xbf16>, tensor<256x176xbf16>) -> tensor<2x4x256xbf16>
  return %y : tensor<2x4x256xbf16>
}

// -----

// A weight stored [k, n] (GPT-2's Conv1D): the values are stored [n, k],
// made from the file's transpose, and the matmul reads them transposed.
// INT8-LABEL: func.func @conv1d
// INT8:         %[[Q:.*]] = gai.param "h.0.attn.c_attn.weight" transposed : tensor<96x32xi8>
// INT8:         %[[W:.*]] = gai.dequantize int8 %[[Q]], %{{.*}} -> tensor<96x32xf32>
// INT8:         gai.matmul %{{.*}}, %[[W]] transpose_rhs : (tensor<1x8x32xf32>, tensor<96x32xf32>) -> tensor<1x8x96xf32>
// INT4-LABEL: func.func @conv1d
// INT4:         gai.param "h.0.attn.c_attn.weight" transposed : tensor<96x32xi4>
// INT4:         gai.param "h.0.attn.c_attn.weight.scale" : tensor<96x1xf32>
func.func @conv1d(%x: tensor<1x8x32xf32>) -> tensor<1x8x96xf32> {
  %w = gai.param "h.0.attn.c_attn.weight" : tensor<32x96xf32>
  %y = gai.matmul %x, %w : (tensor<1x8x32xf32>, tensor<32x96xf32>) -> tensor<1x8x96xf32>
  return %y : tensor<1x8x96xf32>
}

// -----

// Near-misses that stay float: a weight with a use other than a matmul's
// rhs (here an add), one read as a matmul's lhs, a vector, and a weight
// already quantized (its dequantize is left as it is, not quantized twice).
// INT8-LABEL: func.func @near_misses
// INT8:         gai.param "other_use.weight" : tensor<16x16xf32>
// INT8:         gai.param "as_lhs.weight" : tensor<16x16xf32>
// INT8:         gai.param "bias" : tensor<16xf32>
// INT8:         %[[Q:.*]] = gai.param "done.weight" : tensor<16x16xi8>
// INT8:         gai.dequantize int8 %[[Q]]
// INT8-NOT:     gai.dequantize
// INT8:         return
func.func @near_misses(%x: tensor<16x16xf32>) -> tensor<16x16xf32> {
  %a = gai.param "other_use.weight" : tensor<16x16xf32>
  %l = gai.param "as_lhs.weight" : tensor<16x16xf32>
  %bias = gai.param "bias" : tensor<16xf32>
  %q = gai.param "done.weight" : tensor<16x16xi8>
  %s = gai.param "done.weight.scale" : tensor<16xf32>
  %d = gai.dequantize int8 %q, %s : (tensor<16x16xi8>, tensor<16xf32>) -> tensor<16x16xf32>
  %m0 = gai.matmul %x, %a transpose_rhs : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m1 = gai.add %m0, %a : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m2 = gai.matmul %l, %x : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m3 = gai.add %m1, %m2 : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  %m4 = gai.add %m3, %bias : (tensor<16x16xf32>, tensor<16xf32>) -> tensor<16x16xf32>
  %m5 = gai.matmul %m4, %d transpose_rhs : (tensor<16x16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  return %m5 : tensor<16x16xf32>
}

// -----

// The same weight in two entry points is quantized in both, alike.
// INT4-LABEL: func.func @prefill
// INT4:         gai.dequantize int4 group 32
// INT4-LABEL: func.func @decode
// INT4:         gai.dequantize int4 group 32
func.func @prefill(%x: tensor<1x8x64xf32>) -> tensor<1x8x32xf32> {
  %w = gai.param "o.weight" : tensor<32x64xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<1x8x64xf32>, tensor<32x64xf32>) -> tensor<1x8x32xf32>
  return %y : tensor<1x8x32xf32>
}
func.func @decode(%x: tensor<1x1x64xf32>) -> tensor<1x1x32xf32> {
  %w = gai.param "o.weight" : tensor<32x64xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<1x1x64xf32>, tensor<32x64xf32>) -> tensor<1x1x32xf32>
  return %y : tensor<1x1x32xf32>
}

// -----

// What another pass recorded on a weight (structured pruning's slicing)
// moves to its quantized values, where gaic reads it.
// INT8-LABEL: func.func @sliced
// INT8:         gai.param "mlp.down.weight" {gai.prune = {axis = 1 : i64, group = "mlp.", keep = 32 : i64, kind = "channels", per_unit = 1 : i64, segments = array<i64: 0, 64, 1>}} : tensor<32x32xi8>
func.func @sliced(%x: tensor<1x4x32xf32>) -> tensor<1x4x32xf32> {
  %w = gai.param "mlp.down.weight" {gai.prune = {axis = 1 : i64, group = "mlp.", keep = 32 : i64, kind = "channels", per_unit = 1 : i64, segments = array<i64: 0, 64, 1>}} : tensor<32x32xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<1x4x32xf32>, tensor<32x32xf32>) -> tensor<1x4x32xf32>
  return %y : tensor<1x4x32xf32>
}

// -----

// A tied embedding table that is also the LM head: with the head not
// skipped, its matmuls read a quantized copy named lm_head.weight (made
// from the table, gai.tied_to), and the lookups keep the float table.
// The default skip list keeps the head, so the table stays as it is.
// INT8-LABEL: func.func @tied
// INT8:         %[[T:.*]] = gai.param "model.embed_tokens.weight" : tensor<256x64xf32>
// INT8-NOT:     gai.dequantize
// INT8:         gai.matmul %{{.*}}, %[[T]] transpose_rhs
// SKIP-LABEL: func.func @tied
// SKIP:         %[[T:.*]] = gai.param "model.embed_tokens.weight" : tensor<256x64xf32>
// SKIP:         %[[Q:.*]] = gai.param "lm_head.weight" {gai.tied_to = "model.embed_tokens.weight"} : tensor<256x64xi8>
// SKIP-NEXT:    %[[S:.*]] = gai.param "lm_head.weight.scale" : tensor<256xf32>
// SKIP-NEXT:    %[[W:.*]] = gai.dequantize int8 %[[Q]], %[[S]]
// SKIP:         gai.embedding %[[T]], %{{.*}}
// SKIP:         gai.matmul %{{.*}}, %[[W]] transpose_rhs
// ALL-LABEL: func.func @tied
// ALL:          gai.param "lm_head.weight" {gai.tied_to = "model.embed_tokens.weight"} : tensor<256x64xi8>
// ALL-LABEL: func.func @tied_decode
// ALL-NOT:      "model.embed_tokens.weight"
// ALL:          gai.param "lm_head.weight" {gai.tied_to = "model.embed_tokens.weight"} : tensor<256x64xi8>
func.func @tied(%ids: tensor<1x4xi32>) -> tensor<1x4x256xf32> {
  %t = gai.param "model.embed_tokens.weight" : tensor<256x64xf32>
  %x = gai.embedding %t, %ids : (tensor<256x64xf32>, tensor<1x4xi32>) -> tensor<1x4x64xf32>
  %y = gai.matmul %x, %t transpose_rhs : (tensor<1x4x64xf32>, tensor<256x64xf32>) -> tensor<1x4x256xf32>
  return %y : tensor<1x4x256xf32>
}
// An entry that reads the table only as the head keeps only the copy.
func.func @tied_decode(%x: tensor<1x1x64xf32>) -> tensor<1x1x256xf32> {
  %t = gai.param "model.embed_tokens.weight" : tensor<256x64xf32>
  %y = gai.matmul %x, %t transpose_rhs : (tensor<1x1x64xf32>, tensor<256x64xf32>) -> tensor<1x1x256xf32>
  return %y : tensor<1x1x256xf32>
}

// -----

// Near-misses of the tied head, left tied and float: the table has a use
// that is neither a lookup nor a head's, or a parameter is already named
// lm_head.weight.
// ALL-LABEL: func.func @tied_other_use
// ALL:          gai.param "wte.weight" : tensor<256x64xf32>
// ALL-NOT:      gai.tied_to
// ALL:          return
func.func @tied_other_use(%ids: tensor<1x4xi32>, %z: tensor<256x64xf32>) -> (tensor<1x4x256xf32>, tensor<256x64xf32>) {
  %t = gai.param "wte.weight" : tensor<256x64xf32>
  %x = gai.embedding %t, %ids : (tensor<256x64xf32>, tensor<1x4xi32>) -> tensor<1x4x64xf32>
  %y = gai.matmul %x, %t transpose_rhs : (tensor<1x4x64xf32>, tensor<256x64xf32>) -> tensor<1x4x256xf32>
  %s = gai.add %t, %z : (tensor<256x64xf32>, tensor<256x64xf32>) -> tensor<256x64xf32>
  return %y, %s : tensor<1x4x256xf32>, tensor<256x64xf32>
}

// -----

// ALL-LABEL: func.func @head_name_taken
// ALL:          gai.param "wte.weight" : tensor<256x64xf32>
// ALL-NOT:      gai.tied_to
// ALL:          return
func.func @head_name_taken(%ids: tensor<1x4xi32>, %h: tensor<1x4x64xf32>) -> (tensor<1x4x256xf32>, tensor<1x4x8xf32>) {
  %t = gai.param "wte.weight" : tensor<256x64xf32>
  %x = gai.embedding %t, %ids : (tensor<256x64xf32>, tensor<1x4xi32>) -> tensor<1x4x64xf32>
  %y = gai.matmul %x, %t transpose_rhs : (tensor<1x4x64xf32>, tensor<256x64xf32>) -> tensor<1x4x256xf32>
  %other = gai.param "lm_head.weight" : tensor<8x64xf32>
  %z = gai.matmul %h, %other transpose_rhs : (tensor<1x4x64xf32>, tensor<8x64xf32>) -> tensor<1x4x8xf32>
  return %y, %z : tensor<1x4x256xf32>, tensor<1x4x8xf32>
}
