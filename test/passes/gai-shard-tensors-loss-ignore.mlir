// RUN: gai-opt %s --gai-shard-tensors=tp=2 | FileCheck %s

// Near miss of the vocabulary-parallel cross-entropy: an ignore_index
// inside the vocabulary (0) would be counted by the one-hot, so the loss
// keeps the gathered logits.
func.func @eval_loss(%x: tensor<3x4xf32> {gai.name = "x"}, %t: tensor<3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %w = gai.param "lm_head" : tensor<16x4xf32>
  %l = gai.matmul %x, %w transpose_rhs : (tensor<3x4xf32>, tensor<16x4xf32>) -> tensor<3x16xf32>
  %loss = gai.cross_entropy mean %l, %t {ignore_index = 0 : i64} : (tensor<3x16xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @eval_loss(
// CHECK:         shard.all_gather
// CHECK:         gai.cross_entropy mean %{{.*}}, %arg1 {ignore_index = 0 : i64} : (tensor<3x16xf32>
// CHECK-NOT:     gai.one_hot
