// RUN: gai-opt %s --gai-remat="mode=full" --mlir-print-debuginfo | FileCheck %s
// RUN: not gai-opt %s --gai-remat="mode=full budget=16000" 2>&1 | FileCheck %s --check-prefix=OVER

// Per-layer checkpointing: a value that another layer reads (%b, read by
// layers.1; %d, read by the head) is kept; the rest is recomputed from it.
// CHECK-LABEL: func.func @train_step
// CHECK-SAME:    recomputed_ops = 2
// CHECK:         %[[B:.*]] = gai.tanh %{{.*}} loc(#[[L0:loc[0-9]*]])
// CHECK:         %[[D:.*]] = gai.tanh %{{.*}} loc(#[[L1:loc[0-9]*]])
// CHECK:         gai.reduce sum %[[D]]
// CHECK-NEXT:    %[[C2:.*]] = gai.sigmoid %[[B]]
// CHECK-NEXT:    gai.mul %[[D]], %[[C2]]
// CHECK:         %[[A2:.*]] = gai.exp %arg0
// CHECK-NEXT:    gai.mul %{{.*}}, %[[A2]]
func.func @train_step(%x: tensor<1024xf32>) -> (tensor<f32>, tensor<1024xf32>) {
  %a = gai.exp %x : tensor<1024xf32> loc("layers.0.ffn")
  %b = gai.tanh %a : tensor<1024xf32> loc("layers.0.ffn")
  %c = gai.sigmoid %b : tensor<1024xf32> loc("layers.1.ffn")
  %d = gai.tanh %c : tensor<1024xf32> loc("layers.1.ffn")
  %loss = gai.reduce sum %d axes = [0] : (tensor<1024xf32>) -> tensor<f32> loc("head")
  %g1 = gai.mul %d, %c : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  %g2 = gai.mul %g1, %b : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  %g3 = gai.mul %g2, %a : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  return %loss, %g3 : tensor<f32>, tensor<1024xf32>
}

// OVER: error: --gai-remat: full recomputation plans a peak of 16384 bytes (0 outside the arena, 16384 arena), over the budget of 16000 bytes
