// RUN: gai-opt %s --gai-first-micro-batch | FileCheck %s

// A parameter without a gradient ("frozen"): @train_step returns its state
// as it was and squares it into grad_sq; at a first micro-batch that state
// is zeros, so @train_step_first returns zeros and squares those.
func.func @train_step(%tokens: tensor<2xi32> {gai.name = "tokens"}, %targets: tensor<2xi32> {gai.name = "targets"}, %gw: tensor<4xf32> {gai.name = "grad.w"}, %gf: tensor<4xf32> {gai.name = "grad.frozen"}) -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "grad_sq"}, tensor<4xf32> {gai.name = "grad.w"}, tensor<4xf32> {gai.name = "grad.frozen"}) {
  %w = gai.param "w" : tensor<4xf32>
  %loss = gai.reduce sum %w axes = [0] : (tensor<4xf32>) -> tensor<f32>
  %one = gai.constant dense<1.000000e+00> : tensor<4xf32>
  %nw = gai.add %gw, %one : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %sw = gai.mul %nw, %nw : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %sf = gai.mul %gf, %gf : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %all = gai.add %sw, %sf : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %sq = gai.reduce sum %all axes = [0] : (tensor<4xf32>) -> tensor<f32>
  return %loss, %sq, %nw, %gf : tensor<f32>, tensor<f32>, tensor<4xf32>, tensor<4xf32>
}
// One zeros constant clears both gradients (as CSE leaves it).
func.func @optimizer_step(%g: tensor<4xf32> {gai.name = "grad.w"}) -> (tensor<4xf32> {gai.name = "param.w"}, tensor<4xf32> {gai.name = "grad.w"}, tensor<4xf32> {gai.name = "grad.frozen"}) {
  %w = gai.param "w" : tensor<4xf32>
  %p = gai.sub %w, %g : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %z = gai.constant dense<0.000000e+00> : tensor<4xf32>
  return %p, %z, %z : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK-LABEL: func.func @train_step_first(
// CHECK-SAME:    {gai.name = "targets"}) -> (
// CHECK:         %[[Z:.*]] = gai.constant dense<0.000000e+00> : tensor<4xf32>
// CHECK:         %[[ONE:.*]] = gai.constant dense<1.000000e+00>
// CHECK:         %[[SW:.*]] = gai.mul %[[ONE]], %[[ONE]]
// CHECK:         %[[SF:.*]] = gai.mul %[[Z]], %[[Z]]
// CHECK:         return %{{.*}}, %{{.*}}, %[[ONE]], %[[Z]]
// CHECK-LABEL: func.func @optimizer_step(
// CHECK-SAME:    -> (tensor<4xf32> {gai.name = "param.w"})
// CHECK-NOT:     gai.constant
// CHECK:         return %{{.*}} : tensor<4xf32>
