// RUN: gai-opt %s --gai-autodiff=function=norm_weight | FileCheck %s --check-prefix=NORM
// RUN: gai-opt %s --gai-autodiff=function=scalar_weight | FileCheck %s --check-prefix=SCALAR
// RUN: gai-opt %s --gai-autodiff=function=middle_weight | FileCheck %s --check-prefix=MIDDLE

// A weight broadcast over batch and sequence gets its gradient from one
// reduction over both axes: one pass over the rows.
// NORM-LABEL: func.func @norm_weight_grad(
// NORM:         %[[G:.*]] = gai.reduce sum %{{.*}} axes = [0, 1] keep_dims : (tensor<2x3x8xf32>) -> tensor<1x1x8xf32>
// NORM-NOT:     gai.reduce sum %[[G]]
// NORM:         gai.reshape %[[G]] : tensor<1x1x8xf32> to tensor<8xf32>
func.func @norm_weight(%x: tensor<2x3x8xf32>, %w: tensor<8xf32>) -> tensor<f32> {
  %y = gai.mul %x, %w : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  %r = gai.reduce sum %y axes = [0, 1, 2] : (tensor<2x3x8xf32>) -> tensor<f32>
  return %r : tensor<f32>
}

// A run that reaches the last axis keeps that axis a reduction of its own
// (a row reduction), after one over the axes before it.
// SCALAR-LABEL: func.func @scalar_weight_grad(
// SCALAR:         %[[A:.*]] = gai.reduce sum %{{.*}} axes = [0, 1] keep_dims : (tensor<2x3x8xf32>) -> tensor<1x1x8xf32>
// SCALAR:         %[[B:.*]] = gai.reduce sum %[[A]] axes = [2] keep_dims : (tensor<1x1x8xf32>) -> tensor<1x1x1xf32>
// SCALAR:         gai.reshape %[[B]] : tensor<1x1x1xf32> to tensor<1xf32>
func.func @scalar_weight(%x: tensor<2x3x8xf32>, %w: tensor<1xf32>) -> tensor<f32> {
  %y = gai.mul %x, %w : (tensor<2x3x8xf32>, tensor<1xf32>) -> tensor<2x3x8xf32>
  %r = gai.reduce sum %y axes = [0, 1, 2] : (tensor<2x3x8xf32>) -> tensor<f32>
  return %r : tensor<f32>
}

// Runs apart are reductions apart: a [1, 3, 1] weight over [2, 3, 8] sums
// axis 0, then axis 2.
// MIDDLE-LABEL: func.func @middle_weight_grad(
// MIDDLE:         %[[A:.*]] = gai.reduce sum %{{.*}} axes = [0] keep_dims : (tensor<2x3x8xf32>) -> tensor<1x3x8xf32>
// MIDDLE:         %[[B:.*]] = gai.reduce sum %[[A]] axes = [2] keep_dims : (tensor<1x3x8xf32>) -> tensor<1x3x1xf32>
// MIDDLE:         gai.reshape %[[B]] : tensor<1x3x1xf32> to tensor<1x3x1xf32>
func.func @middle_weight(%x: tensor<2x3x8xf32>, %w: tensor<1x3x1xf32>) -> tensor<f32> {
  %y = gai.mul %x, %w : (tensor<2x3x8xf32>, tensor<1x3x1xf32>) -> tensor<2x3x8xf32>
  %r = gai.reduce sum %y axes = [0, 1, 2] : (tensor<2x3x8xf32>) -> tensor<f32>
  return %r : tensor<f32>
}
