// RUN: gai-opt %s --gai-autodiff | FileCheck %s
// RUN: not gai-opt %s --gai-autodiff=function=missing 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not gai-opt %s --gai-autodiff=function=not_scalar 2>&1 | FileCheck %s --check-prefix=SCALAR
// RUN: gai-opt %s --gai-autodiff=function=attention_loss | FileCheck %s --check-prefix=ATTN

// The forward function stays; @loss_grad recomputes the forward ops, then
// runs each op's VJP in reverse and returns the loss and one gradient per
// float argument (none for the i32 ids).
// CHECK-LABEL: func.func @loss(
// CHECK-LABEL: func.func @loss_grad(%arg0: tensor<2x3xf32>, %arg1: tensor<4x3xf32>, %arg2: tensor<2xi32>) -> (tensor<f32>, tensor<2x3xf32>, tensor<4x3xf32>)
// CHECK:         %[[Y:.*]] = gai.matmul %arg0, %arg1 transpose_rhs
// CHECK:         %[[S:.*]] = gai.silu %[[Y]]
// CHECK:         %[[L:.*]] = gai.reduce sum %[[S]] axes = [0, 1]
// The seed, broadcast back over the reduced axes.
// CHECK:         gai.constant dense<1.000000e+00> : tensor<f32>
// silu' = s (1 + y (1 - s)), with s = sigmoid(y).
// CHECK:         gai.sigmoid %[[Y]]
// dX = dY·W, dW = dYᵀ·X: both keep their stored layouts.
// CHECK:         %[[GX:.*]] = gai.matmul %[[GY:.*]], %arg1 :
// CHECK:         %[[GW:.*]] = gai.matmul %[[GY]], %arg0 transpose_lhs
// CHECK:         return %[[L]], %[[GX]], %[[GW]]
func.func @loss(%x: tensor<2x3xf32>, %w: tensor<4x3xf32>, %ids: tensor<2xi32>) -> tensor<f32> {
  %y = gai.matmul %x, %w transpose_rhs : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x4xf32>
  %s = gai.silu %y : tensor<2x4xf32>
  %r = gai.reduce sum %s axes = [0, 1] : (tensor<2x4xf32>) -> tensor<f32>
  return %r : tensor<f32>
}

// MISSING: error: autodiff: no function @missing

// SCALAR: error: 'func.func' op autodiff: the first result must be a scalar float loss
func.func @not_scalar(%x: tensor<2xf32>) -> tensor<2xf32> {
  return %x : tensor<2xf32>
}

// Attention's rule: the forward is replaced by one that also returns its
// row log-sum-exps, and the backward is one fused op, so the gradient
// function holds no [T, S] scores, probabilities or masks.
// ATTN-LABEL: func.func @attention_loss_grad(
// ATTN-NOT:     gai.softmax
// ATTN:         %[[O:.*]], %[[LSE:.*]] = gai.flash_attention %arg0, %arg1, %arg2 scale = 2.500000e-01 kv_groups = 2 causal window = 3 softcap = 2.000000e+00 with_lse
// ATTN-NOT:     gai.softmax
// ATTN:         %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = gai.flash_attention_grad %arg0, %arg1, %arg2, %[[O]], %[[LSE]], %{{.*}} scale = 2.500000e-01 kv_groups = 2 causal window = 3 softcap = 2.000000e+00
// ATTN-NOT:     gai.softmax
// ATTN-NOT:     gai.causal_mask
// ATTN:         return %{{.*}}, %[[DQ]], %[[DK]], %[[DV]], %{{.*}} :
func.func @attention_loss(%q: tensor<1x4x5x4xf32>, %k: tensor<1x2x5x4xf32>, %v: tensor<1x2x5x3xf32>, %c: tensor<1x4x5x3xf32>) -> tensor<f32> {
  %o = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 2 causal window = 3 softcap = 2.0 : (tensor<1x4x5x4xf32>, tensor<1x2x5x4xf32>, tensor<1x2x5x3xf32>) -> tensor<1x4x5x3xf32>
  %m = gai.mul %o, %c : (tensor<1x4x5x3xf32>, tensor<1x4x5x3xf32>) -> tensor<1x4x5x3xf32>
  %r = gai.reduce sum %m axes = [0, 1, 2, 3] : (tensor<1x4x5x3xf32>) -> tensor<f32>
  return %r : tensor<f32>
}
