// RUN: gai-opt %s --gai-train-step --gai-first-micro-batch | FileCheck %s
// RUN: not gai-opt %s --gai-first-micro-batch 2>&1 | FileCheck %s --check-prefix=NOSTEP
// RUN: gai-opt %s --gai-train-step --gai-first-micro-batch --gai-first-micro-batch | FileCheck %s --check-prefix=TWICE

// A bf16 product of an f32 master (the weight's gradient is a bf16 matmul
// widened to f32), a vector parameter, and an embedding table.
func.func @eval_loss(%tokens: tensor<2x3xi32> {gai.name = "tokens"}, %targets: tensor<2x3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %table = gai.param "embed" : tensor<8x4xf32>
  %scale = gai.param "scale" : tensor<4xf32>
  %w = gai.param "proj" : tensor<8x4xf32>
  %x = gai.embedding %table, %tokens : (tensor<8x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %h = gai.mul %x, %scale : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %hb = gai.convert %h : tensor<2x3x4xf32> to tensor<2x3x4xbf16>
  %wb = gai.convert %w : tensor<8x4xf32> to tensor<8x4xbf16>
  %lb = gai.matmul %hb, %wb transpose_rhs : (tensor<2x3x4xbf16>, tensor<8x4xbf16>) -> tensor<2x3x8xbf16>
  %logits = gai.convert %lb : tensor<2x3x8xbf16> to tensor<2x3x8xf32>
  %loss = gai.cross_entropy mean %logits, %targets : (tensor<2x3x8xf32>, tensor<2x3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// @train_step still adds to the gradients' state.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:    {gai.name = "grad.embed"}
// CHECK-SAME:    {gai.name = "grad.scale"}
// CHECK-SAME:    {gai.name = "grad.proj"}

// @train_step_first takes no gradient state: each gradient is written as
// made, and the weight's bf16 product is one f32 GEMM, unrounded.
// CHECK-LABEL: func.func @train_step_first(
// CHECK-SAME:    %{{.*}}: tensor<2x3xi32> {gai.name = "tokens"}, %{{.*}}: tensor<2x3xi32> {gai.name = "targets"})
// CHECK-SAME:    -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "grad_sq"}, tensor<8x4xf32> {gai.name = "grad.embed"}, tensor<4xf32> {gai.name = "grad.scale"}, tensor<8x4xf32> {gai.name = "grad.proj"})
// CHECK-NOT:     grad.
// CHECK:         %[[DW:.*]] = gai.gemm %{{.*}}, %{{.*}} transpose_lhs wide : (tensor<6x8xbf16>, tensor<6x4xbf16>) -> tensor<8x4xf32>
// CHECK-NOT:     gai.add %[[DW]]
// CHECK:         return %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[DW]]

// @optimizer_step no longer zeroes the gradients; @zero_grads stays.
// CHECK-LABEL: func.func @optimizer_step(
// CHECK-SAME:    {gai.name = "adam.v.proj"})
// CHECK-NOT:     gai.name = "grad.
// CHECK-LABEL: func.func @zero_grads()
// CHECK-SAME:    {gai.name = "grad.embed"}

// NOSTEP: error: first micro-batch: expected @train_step and @optimizer_step (run --gai-train-step first)

// A second run adds nothing: one @train_step_first, and @optimizer_step
// as the first run left it.
// TWICE:     func.func @train_step_first(
// TWICE-NOT: func.func @train_step_first(
