// RUN: gai-opt %s --gai-train-step --gai-first-micro-batch --gai-fused-update | FileCheck %s
// RUN: not gai-opt %s --gai-train-step --gai-fused-update 2>&1 | FileCheck %s --check-prefix=NOFIRST
// RUN: gai-opt %s --gai-train-step --gai-first-micro-batch --gai-fused-update --gai-fused-update | FileCheck %s --check-prefix=TWICE

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

// One entry: the first micro-batch's step, then the update. The gradients
// are neither arguments nor results; grad_clip stands where grad_scale was.
// CHECK-NOT:   func.func @train_step(
// CHECK-NOT:   func.func @train_step_first(
// CHECK-LABEL: func.func @train_update(
// CHECK-SAME:    {gai.name = "tokens"}
// CHECK-SAME:    %[[CLIP:[a-z0-9]+]]: tensor<f32> {gai.name = "grad_clip"}
// CHECK-SAME:    %[[M:[a-z0-9]+]]: tensor<8x4xf32> {gai.name = "adam.m.embed"}
// CHECK-NOT:     gai.name = "grad.
// CHECK-SAME:    -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "grad_sq"}, tensor<8x4xf32> {gai.name = "param.embed"}
// The weight's gradient: an f32 GEMM, read by the update, not returned.
// CHECK:         %[[DW:.*]] = gai.gemm %{{.*}}, %{{.*}} transpose_lhs wide
// PyTorch's clip factor from the step's grad_sq, on the device.
// CHECK:         %[[NORM:.*]] = gai.sqrt %[[SQ:[0-9]+]] : tensor<f32>
// CHECK:         %[[DENOM:.*]] = gai.add %[[NORM]], %{{.*}}
// CHECK:         %[[RATIO:.*]] = gai.div %[[CLIP]], %[[DENOM]]
// CHECK:         %[[SCALE:.*]] = gai.min %[[RATIO]], %{{.*}}
// A bad step: (loss + grad_sq)·0 is not 0.
// CHECK:         %[[BOTH:.*]] = gai.add %[[LOSS:[0-9]+]], %[[SQ]]
// CHECK:         %[[ZEROED:.*]] = gai.mul %[[BOTH]], %{{.*}}
// CHECK:         %[[BAD:.*]] = gai.convert %[[ZEROED]] : tensor<f32> to tensor<i1>
// CHECK:         gai.mul %[[DW]], %[[SCALE]]
// A bad step returns each state tensor as it was.
// CHECK:         %[[NEWM:.*]] = gai.select %[[BAD]], %[[M]], %{{.*}} : (tensor<i1>, tensor<8x4xf32>, tensor<8x4xf32>)
// CHECK:         return %[[LOSS]], %[[SQ]], {{.*}}%[[NEWM]]
// CHECK-NOT:   func.func @optimizer_step(
// CHECK-NOT:   func.func @zero_grads(

// NOFIRST: error: fused update: expected @train_step_first and @optimizer_step (run --gai-train-step and --gai-first-micro-batch first)

// TWICE:     func.func @train_update(
// TWICE-NOT: func.func @train_update(
