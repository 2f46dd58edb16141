// RUN: gai-opt %s --gai-shard-tensors=tp=2 | FileCheck %s
// RUN: gai-opt %s --gai-shard-tensors=tp=2 --gai-train-step "--gai-shard=mesh=tp=2" | FileCheck %s --check-prefix=STEP

// An LM head of 16 rows under a cross-entropy, split over two ranks: the
// loss never gathers the logits (Megatron's vocabulary-parallel
// cross-entropy). Each rank's 8 logits give the row maxima (all-reduced
// with max, a constant for autodiff), the sums of exponentials and the
// labels' logits (each all-reduced with sum). Labels equal to the
// ignore_index (-100) become class 0 for the one-hot, their rows count
// zero and the mean divides by the labels counted.
func.func @eval_loss(%x: tensor<3x4xf32> {gai.name = "x"}, %t: tensor<3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %w = gai.param "lm_head" : tensor<16x4xf32>
  %l = gai.matmul %x, %w transpose_rhs : (tensor<3x4xf32>, tensor<16x4xf32>) -> tensor<3x16xf32>
  %loss = gai.cross_entropy mean %l, %t : (tensor<3x16xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @eval_loss(
// CHECK:         %[[L:.*]] = gai.matmul %arg0, %{{.*}} transpose_rhs {{.*}}-> tensor<3x8xf32>
// CHECK-NOT:     shard.all_gather
// CHECK:         %[[IGN:.*]] = gai.constant dense<-100> : tensor<3xi32>
// CHECK-NEXT:    %[[OFF:.*]] = gai.sub %arg1, %[[IGN]]
// CHECK-NEXT:    %[[C:.*]] = gai.convert %[[OFF]] : tensor<3xi32> to tensor<3xi1>
// CHECK-NEXT:    %[[ZERO:.*]] = gai.constant dense<0> : tensor<3xi32>
// CHECK-NEXT:    %[[SAFE:.*]] = gai.select %[[C]], %arg1, %[[ZERO]]
// CHECK-NEXT:    %[[CF:.*]] = gai.convert %[[C]] : tensor<3xi1> to tensor<3xf32>
// CHECK-NEXT:    %[[CR:.*]] = gai.reshape %[[CF]] : tensor<3xf32> to tensor<3x1xf32>
// CHECK-NEXT:    %[[M:.*]] = gai.reduce max %[[L]] axes = [1] keep_dims {gai.no_grad}
// CHECK-NEXT:    %[[G:.*]] = shard.all_reduce %[[M]] on @mesh grid_axes = [1] reduction = max {gai.no_grad}
// CHECK-NEXT:    %[[Z:.*]] = gai.sub %[[L]], %[[G]]
// CHECK-NEXT:    %[[E:.*]] = gai.exp %[[Z]]
// CHECK-NEXT:    %[[S:.*]] = gai.reduce sum %[[E]] axes = [1] keep_dims
// CHECK-NEXT:    %[[SS:.*]] = shard.all_reduce %[[S]] on @mesh grid_axes = [1]
// CHECK-NEXT:    %[[H:.*]] = gai.one_hot %[[SAFE]] depth = 8 {vocab_shards = 2 : i64} : (tensor<3xi32>) -> tensor<3x8xf32>
// CHECK-NEXT:    %[[P:.*]] = gai.mul %[[H]], %[[Z]]
// CHECK-NEXT:    %[[PS:.*]] = gai.reduce sum %[[P]] axes = [1] keep_dims
// CHECK-NEXT:    %[[T:.*]] = shard.all_reduce %[[PS]] on @mesh grid_axes = [1]
// CHECK-NEXT:    %[[LOG:.*]] = gai.log %[[SS]]
// CHECK-NEXT:    %[[R:.*]] = gai.sub %[[LOG]], %[[T]]
// CHECK-NEXT:    %[[RC:.*]] = gai.mul %[[R]], %[[CR]]
// CHECK-NEXT:    %[[ONE:.*]] = gai.constant dense<1.000000e+00> : tensor<f32>
// CHECK-NEXT:    %[[CFLAT:.*]] = gai.reshape %[[CR]] : tensor<3x1xf32> to tensor<3xf32>
// CHECK-NEXT:    %[[N:.*]] = gai.reduce sum %[[CFLAT]] axes = [0]
// CHECK-NEXT:    %[[N1:.*]] = gai.max %[[N]], %[[ONE]]
// CHECK-NEXT:    %[[F:.*]] = gai.reshape %[[RC]] : tensor<3x1xf32> to tensor<3xf32>
// CHECK-NEXT:    %[[SUM:.*]] = gai.reduce sum %[[F]] axes = [0] : (tensor<3xf32>) -> tensor<f32>
// CHECK-NEXT:    %[[LOSS:.*]] = gai.div %[[SUM]], %[[N1]]
// CHECK-NEXT:    return %[[LOSS]]

// The gradient: nothing flows back through the maxima; the head's slice
// gets (softmax - one-hot) of its own columns, and x's gradient (each
// rank's share) is summed over tp.
// STEP-LABEL: func.func @train_step(
// STEP-SAME:    tensor<8x4xf32> {gai.name = "grad.lm_head"}
// STEP-NOT:     shard.all_gather
// STEP-NOT:     gai.cross_entropy
// STEP:         gai.exp
// STEP:         return
