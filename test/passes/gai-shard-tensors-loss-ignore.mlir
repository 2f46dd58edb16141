// RUN: gai-opt %s --gai-shard-tensors=tp=2 | FileCheck %s

// An ignore_index inside the vocabulary (0) still splits the loss: rows
// labelled 0 count zero and leave the mean's count, and a reduction of
// `sum` needs no count. An ignore_index no i32 label can equal keeps the
// plain form.
func.func @eval_loss(%x: tensor<3x4xf32> {gai.name = "x"}, %t: tensor<3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "total"}) {
  %w = gai.param "lm_head" : tensor<16x4xf32>
  %l = gai.matmul %x, %w transpose_rhs : (tensor<3x4xf32>, tensor<16x4xf32>) -> tensor<3x16xf32>
  %loss = gai.cross_entropy mean %l, %t {ignore_index = 0 : i64} : (tensor<3x16xf32>, tensor<3xi32>) -> tensor<f32>
  %total = gai.cross_entropy sum %l, %t {ignore_index = 4294967296 : i64} : (tensor<3x16xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss, %total : tensor<f32>, tensor<f32>
}

// CHECK-LABEL: func.func @eval_loss(
// CHECK-NOT:     shard.all_gather
// CHECK-NOT:     gai.cross_entropy
// CHECK:         %[[IGN:.*]] = gai.constant dense<0> : tensor<3xi32>
// CHECK-NEXT:    %[[OFF:.*]] = gai.sub %arg1, %[[IGN]]
// CHECK-NEXT:    %[[C:.*]] = gai.convert %[[OFF]] : tensor<3xi32> to tensor<3xi1>
// CHECK:         gai.one_hot
// CHECK:         %[[MEAN:.*]] = gai.div
// CHECK-NOT:     gai.convert {{.*}} to tensor<3xi1>
// CHECK:         gai.one_hot %arg1
// CHECK:         %[[TOTAL:.*]] = gai.reduce sum %{{.*}} axes = [0] : (tensor<3xf32>) -> tensor<f32>
// CHECK-NEXT:    return %[[MEAN]], %[[TOTAL]]
