// RUN: gai-opt %s --gai-train-step | FileCheck %s
// RUN: not gai-opt %s --gai-train-step=function=missing 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not gai-opt %s --gai-train-step=function=not_scalar 2>&1 | FileCheck %s --check-prefix=SCALAR
// RUN: not gai-opt %s --gai-train-step=function=no_params 2>&1 | FileCheck %s --check-prefix=PARAMS
// RUN: not gai-opt %s --gai-train-step=function=no_rule 2>&1 | FileCheck %s --check-prefix=RULE

// A loss over two parameters, one a matrix (decayed), one a vector (not).
func.func @eval_loss(%tokens: tensor<2x3xi32> {gai.name = "tokens"}, %targets: tensor<2x3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %table = gai.param "embed" : tensor<8x4xf32>
  %scale = gai.param "scale" : tensor<4xf32>
  %x = gai.embedding %table, %tokens : (tensor<8x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %h = gai.mul %x, %scale : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %logits = gai.matmul %h, %table transpose_rhs : (tensor<2x3x4xf32>, tensor<8x4xf32>) -> tensor<2x3x8xf32>
  %loss = gai.cross_entropy mean %logits, %targets : (tensor<2x3x8xf32>, tensor<2x3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// The gradients add to the state grad.<name>, each as soon as it is made
// (scale's before the table's, whose second use is the embedding, the
// last gradient made), so no gradient lives to the end of the step; the
// tied table gets both of its uses' gradients; grad_sq sums the squares of
// every accumulated one.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:    {gai.name = "tokens"}
// CHECK-SAME:    %[[GE:[a-z0-9]+]]: tensor<8x4xf32> {gai.name = "grad.embed"}
// CHECK-SAME:    %[[GS:[a-z0-9]+]]: tensor<4xf32> {gai.name = "grad.scale"}
// CHECK-SAME:    -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "grad_sq"}, tensor<8x4xf32> {gai.name = "grad.embed"}, tensor<4xf32> {gai.name = "grad.scale"})
// CHECK:         gai.cross_entropy_grad mean
// CHECK:         %[[DS:.*]] = gai.reshape {{.*}} to tensor<4xf32>
// CHECK-NEXT:    %[[NS:.*]] = gai.add %[[GS]], %[[DS]] : (tensor<4xf32>, tensor<4xf32>)
// CHECK:         gai.embedding_grad %{{.*}}, %{{.*}} rows = 8
// CHECK:         %[[DE:.*]] = gai.add
// CHECK-NEXT:    %[[NE:.*]] = gai.add %[[GE]], %[[DE]] : (tensor<8x4xf32>, tensor<8x4xf32>)
// CHECK:         return %{{.*}}, %{{.*}}, %[[NE]], %[[NS]]

// AdamW: moments and parameters are named state; the decay term touches the
// matrix only; the gradients are zeroed.
// CHECK-LABEL: func.func @optimizer_step(
// CHECK-SAME:    {gai.name = "lr"}
// CHECK-SAME:    {gai.name = "bias_correction2_sqrt"}
// CHECK-SAME:    {gai.name = "grad.embed"}
// CHECK-SAME:    {gai.name = "adam.m.embed"}
// CHECK-SAME:    {gai.name = "adam.v.scale"}
// CHECK-SAME:    -> (tensor<8x4xf32> {gai.name = "param.embed"}, tensor<4xf32> {gai.name = "param.scale"}, tensor<8x4xf32> {gai.name = "adam.m.embed"}, tensor<4xf32> {gai.name = "adam.m.scale"}, tensor<8x4xf32> {gai.name = "adam.v.embed"}, tensor<4xf32> {gai.name = "adam.v.scale"}, tensor<8x4xf32> {gai.name = "grad.embed"}, tensor<4xf32> {gai.name = "grad.scale"})
// CHECK:         %[[P:.*]] = gai.param "embed"
// CHECK:         gai.sqrt
// CHECK:         %[[WD:.*]] = gai.mul %arg0, %arg4 : (tensor<f32>, tensor<f32>)
// CHECK-NEXT:    %[[KEEP:.*]] = gai.sub %{{.*}}, %[[WD]] : (tensor<f32>, tensor<f32>)
// CHECK-NEXT:    gai.mul %[[P]], %[[KEEP]]
// CHECK:         %[[Q:.*]] = gai.param "scale"
// CHECK-NOT:     gai.mul %arg0, %arg4
// CHECK:         return

// CHECK-LABEL: func.func @zero_grads() -> (tensor<8x4xf32> {gai.name = "grad.embed"}, tensor<4xf32> {gai.name = "grad.scale"})
// CHECK:         gai.constant dense<0.000000e+00> : tensor<8x4xf32>

// MISSING: error: train step: no loss function @missing

// SCALAR: error: 'func.func' op train step: the loss function must return one f32 scalar
func.func @not_scalar(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}

// PARAMS: error: 'func.func' op train step: the loss reads no parameters
func.func @no_params(%x: tensor<2xf32>) -> tensor<f32> {
  %0 = gai.reduce sum %x axes = [0] : (tensor<2xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}

// An op without a VJP rule is reported on the op.
// RULE: error: 'gai.reduce' op has no VJP rule yet for max and min
func.func @no_rule() -> tensor<f32> {
  %w = gai.param "w" : tensor<4xf32>
  %0 = gai.reduce max %w axes = [0] : (tensor<4xf32>) -> tensor<f32>
  return %0 : tensor<f32>
}
