// RUN: gai-opt %s --gai-shard-tensors=tp=2 --gai-train-step "--gai-shard=mesh=tp=2" | FileCheck %s
// RUN: gai-opt %s --gai-shard-tensors=tp=2 --gai-train-step "--gai-shard=mesh=dp=2,tp=2 zero=1" | FileCheck %s --check-prefix=ZERO
// RUN: not gai-opt %s --gai-train-step "--gai-shard=mesh=tp=2" 2>&1 | FileCheck %s --check-prefix=UNSPLIT

// A tensor-parallel loss: scale (replicated) feeds an MLP whose 8 channels
// split over 2 ranks.
func.func @eval_loss(%x: tensor<3x8xf32> {gai.name = "x"}, %t: tensor<3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %scale = gai.param "scale" : tensor<8xf32>
  %wu = gai.param "up" : tensor<8x8xf32>
  %wd = gai.param "down" : tensor<8x8xf32>
  %h = gai.mul %x, %scale : (tensor<3x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  %u = gai.matmul %h, %wu transpose_rhs : (tensor<3x8xf32>, tensor<8x8xf32>) -> tensor<3x8xf32>
  %a = gai.silu %u : tensor<3x8xf32>
  %y = gai.matmul %a, %wd transpose_rhs : (tensor<3x8xf32>, tensor<8x8xf32>) -> tensor<3x8xf32>
  %l = gai.cross_entropy mean %y, %t : (tensor<3x8xf32>, tensor<3xi32>) -> tensor<f32>
  return %l : tensor<f32>
}

// Forward: the down projection's partial sums added over tp. Backward: the
// all-reduce hands its cotangent on, and the gradient of h, which only the
// column-parallel up projection reads (each rank's share of it), is summed
// over tp once complete, before scale's gradient reads it. grad_sq adds the split weights' squares over tp, scale's once.
// CHECK:       shard.grid @mesh(shape = 1x2)
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:    tensor<8xf32> {gai.name = "grad.scale"}
// CHECK-SAME:    tensor<4x8xf32> {gai.name = "grad.up"}
// CHECK-SAME:    tensor<8x4xf32> {gai.name = "grad.down"}
// CHECK:         %[[H:.*]] = gai.mul %arg0, %{{.*}} {gai.tp_partial_result_grad = @mesh}
// CHECK:         %[[U:.*]] = gai.matmul %[[H]], %{{.*}} transpose_rhs : (tensor<3x8xf32>, tensor<4x8xf32>) -> tensor<3x4xf32>
// CHECK:         shard.all_reduce %{{.*}} on @mesh grid_axes = [1] : tensor<3x8xf32> -> tensor<3x8xf32>
// CHECK:         gai.cross_entropy_grad
// CHECK:         %[[DH:.*]] = gai.matmul %{{.*}}, %{{.*}} : (tensor<3x4xf32>, tensor<4x8xf32>) -> tensor<3x8xf32>
// CHECK:         %[[SUM:.*]] = shard.all_reduce %[[DH]] on @mesh grid_axes = [1] : tensor<3x8xf32> -> tensor<3x8xf32>
// CHECK:         gai.mul %[[SUM]], %{{.*}}
// CHECK:         %[[SPLIT:.*]] = shard.all_reduce %{{.*}} on @mesh grid_axes = [1] : tensor<f32> -> tensor<f32>
// CHECK-NEXT:    %[[SQ:.*]] = gai.add %{{.*}}, %[[SPLIT]]
// CHECK:         return %{{.*}}, %[[SQ]],

// With dp=2 and ZeRO-1: the grid widens to 2x2, the shares' squares sum
// over tp, then over dp.
// ZERO:       shard.grid @mesh(shape = 2x2)
// ZERO-LABEL: func.func @train_step(
// ZERO:         shard.reduce_scatter
// ZERO:         %[[SPLIT:.*]] = shard.all_reduce %{{.*}} on @mesh grid_axes = [1] : tensor<f32> -> tensor<f32>
// ZERO-NEXT:    %[[BOTH:.*]] = gai.add %{{.*}}, %[[SPLIT]]
// ZERO-NEXT:    %[[SQ:.*]] = shard.all_reduce %[[BOTH]] on @mesh grid_axes = [0] : tensor<f32> -> tensor<f32>

// UNSPLIT: --gai-shard: tp=2: split the loss with --gai-shard-tensors first
