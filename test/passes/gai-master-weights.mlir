// RUN: gai-opt %s --gai-master-weights | FileCheck %s
// RUN: gai-opt %s --gai-master-weights --gai-train-step | FileCheck %s --check-prefix=TRAIN

// bf16 parameters become f32 masters converted where read; an f32 one and
// non-parameters stay as they are.
// CHECK-LABEL: func.func @eval_loss(
// CHECK:         %[[T:.*]] = gai.param "embed" : tensor<8x4xf32>
// CHECK-NEXT:    %[[TB:.*]] = gai.convert %[[T]] : tensor<8x4xf32> to tensor<8x4xbf16>
// CHECK:         %[[S:.*]] = gai.param "scale" : tensor<4xf32>
// CHECK-NOT:     gai.convert %[[S]]
// CHECK:         gai.embedding %[[TB]]
// CHECK:         gai.matmul {{.*}}, %[[TB]] transpose_rhs
// CHECK:         gai.cross_entropy mean {{.*}} : (tensor<2x3x8xbf16>, tensor<2x3xi32>) -> tensor<f32>
func.func @eval_loss(%tokens: tensor<2x3xi32> {gai.name = "tokens"}, %targets: tensor<2x3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %table = gai.param "embed" : tensor<8x4xbf16>
  %scale = gai.param "scale" : tensor<4xf32>
  %x = gai.embedding %table, %tokens : (tensor<8x4xbf16>, tensor<2x3xi32>) -> tensor<2x3x4xbf16>
  %s = gai.convert %scale : tensor<4xf32> to tensor<4xbf16>
  %h = gai.mul %x, %s : (tensor<2x3x4xbf16>, tensor<4xbf16>) -> tensor<2x3x4xbf16>
  %logits = gai.matmul %h, %table transpose_rhs : (tensor<2x3x4xbf16>, tensor<8x4xbf16>) -> tensor<2x3x8xbf16>
  %loss = gai.cross_entropy mean %logits, %targets : (tensor<2x3x8xbf16>, tensor<2x3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// Then the gradients, moments and new parameters are all f32, and the
// bf16 gradient of the table reaches its master through a convert.
// TRAIN-LABEL: func.func @train_step(
// TRAIN-SAME:    tensor<8x4xf32> {gai.name = "grad.embed"}
// TRAIN-SAME:    -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "grad_sq"}, tensor<8x4xf32> {gai.name = "grad.embed"}, tensor<4xf32> {gai.name = "grad.scale"})
// TRAIN:         gai.cross_entropy_grad mean {{.*}} -> tensor<2x3x8xbf16>
// TRAIN:         gai.convert {{.*}} : tensor<8x4xbf16> to tensor<8x4xf32>
// TRAIN-LABEL: func.func @optimizer_step(
// TRAIN-SAME:    tensor<8x4xf32> {gai.name = "adam.m.embed"}
// TRAIN:         -> (tensor<8x4xf32> {gai.name = "param.embed"}

// Integer parameters (quantized weights) have no f32 master: unchanged.
// CHECK-LABEL: func.func @quantized(
// CHECK-NEXT:    %[[Q:.*]] = gai.param "q" : tensor<4x4xi8>
// CHECK-NEXT:    return %[[Q]]
func.func @quantized() -> tensor<4x4xi8> {
  %q = gai.param "q" : tensor<4x4xi8>
  return %q : tensor<4x4xi8>
}

// What another pass recorded on a parameter (--gai-prune's masking) stays
// on its master, where gaic reads it.
// CHECK-LABEL: func.func @pruned(
// CHECK-NEXT:    %[[W:.*]] = gai.param "w" {gai.prune = {layout = "nk", pattern = "2:4"}} : tensor<4x8xf32>
// CHECK-NEXT:    gai.convert %[[W]] : tensor<4x8xf32> to tensor<4x8xbf16>
func.func @pruned() -> tensor<4x8xbf16> {
  %w = gai.param "w" {gai.prune = {layout = "nk", pattern = "2:4"}} : tensor<4x8xbf16>
  return %w : tensor<4x8xbf16>
}
