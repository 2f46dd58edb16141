// RUN: gai-opt %s --gai-train-step=function=wide_loss | FileCheck %s
// RUN: gai-opt %s --gai-train-step=function=wide_loss --gai-fusion | FileCheck %s --check-prefix=FUSED

// The squared gradient norm of a parameter with rows of 64 or more sums each
// row first (one kernel row each, in parallel), then the rows' sums.
// CHECK-LABEL: func.func @train_step(
// CHECK:         %[[SQ:.*]] = gai.mul %[[G:.*]], %[[G]] : (tensor<3x64xf32>, tensor<3x64xf32>) -> tensor<3x64xf32>
// CHECK-NEXT:    %[[ROWS:.*]] = gai.reduce sum %[[SQ]] axes = [1] keep_dims : (tensor<3x64xf32>) -> tensor<3x1xf32>
// CHECK-NEXT:    %[[FLAT:.*]] = gai.reshape %[[ROWS]] : tensor<3x1xf32> to tensor<3xf32>
// CHECK-NEXT:    %[[NORM:.*]] = gai.reduce sum %[[FLAT]] axes = [0] : (tensor<3xf32>) -> tensor<f32>
// CHECK-NEXT:    return %{{.*}}, %[[NORM]], %{{.*}}

// A reduction never joins another reduction's kernel: the row sums and their
// total are two fusion regions.
// FUSED-LABEL: func.func @train_step(
// FUSED:         %[[ROWS:.*]] = gai.fusion %{{.*}} : (tensor<3x64xf32>) -> tensor<3x1xf32>
// FUSED:         gai.reduce sum %{{.*}} axes = [1] keep_dims
// FUSED:         %[[FLAT:.*]] = gai.reshape %[[ROWS]]
// FUSED:         gai.fusion %[[FLAT]] : (tensor<3xf32>) -> tensor<f32>
// FUSED:         gai.reduce sum %{{.*}} axes = [0]
func.func @wide_loss(%x: tensor<3x64xf32> {gai.name = "x"}) -> (tensor<f32> {gai.name = "loss"}) {
  %w = gai.param "wide" : tensor<3x64xf32>
  %p = gai.mul %x, %w : (tensor<3x64xf32>, tensor<3x64xf32>) -> tensor<3x64xf32>
  %l = gai.reduce sum %p axes = [0, 1] : (tensor<3x64xf32>) -> tensor<f32>
  return %l : tensor<f32>
}
