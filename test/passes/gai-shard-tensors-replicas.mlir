// RUN: gai-opt %s --gai-shard-tensors=tp=4 --gai-train-step "--gai-shard=mesh=tp=4" | FileCheck %s

// Four query heads over two KV heads at tp=4: each rank keeps one query
// head and the KV head it reads, shared with one other rank (replicas = 2).
// A replicated slice's gradient is its replicas' sum: every rank's
// gathered, each pair summed, this rank's pair's kept; its squares count
// once in grad_sq (halved before the sum over tp).
func.func @eval_loss(%x: tensor<1x3x8xf32> {gai.name = "x"}, %t: tensor<3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %wq = gai.param "q" : tensor<8x8xf32>
  %wk = gai.param "k" : tensor<4x8xf32>
  %wv = gai.param "v" : tensor<4x8xf32>
  %wo = gai.param "o" : tensor<8x8xf32>
  %q0 = gai.matmul %x, %wq transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
  %q1 = gai.reshape %q0 : tensor<1x3x8xf32> to tensor<1x3x4x2xf32>
  %q = gai.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<1x3x4x2xf32>) -> tensor<1x4x3x2xf32>
  %k0 = gai.matmul %x, %wk transpose_rhs : (tensor<1x3x8xf32>, tensor<4x8xf32>) -> tensor<1x3x4xf32>
  %k1 = gai.reshape %k0 : tensor<1x3x4xf32> to tensor<1x3x2x2xf32>
  %k2 = gai.transpose %k1 permutation = [0, 2, 1, 3] : (tensor<1x3x2x2xf32>) -> tensor<1x2x3x2xf32>
  %k = gai.repeat %k2 axis = 1 times = 2 : (tensor<1x2x3x2xf32>) -> tensor<1x4x3x2xf32>
  %v0 = gai.matmul %x, %wv transpose_rhs : (tensor<1x3x8xf32>, tensor<4x8xf32>) -> tensor<1x3x4xf32>
  %v1 = gai.reshape %v0 : tensor<1x3x4xf32> to tensor<1x3x2x2xf32>
  %v2 = gai.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<1x3x2x2xf32>) -> tensor<1x2x3x2xf32>
  %v = gai.repeat %v2 axis = 1 times = 2 : (tensor<1x2x3x2xf32>) -> tensor<1x4x3x2xf32>
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x4x3x2xf32>, tensor<1x4x3x2xf32>) -> tensor<1x4x3x3xf32>
  %p = gai.softmax %s axis = 3 : tensor<1x4x3x3xf32>
  %a = gai.matmul %p, %v : (tensor<1x4x3x3xf32>, tensor<1x4x3x2xf32>) -> tensor<1x4x3x2xf32>
  %a1 = gai.transpose %a permutation = [0, 2, 1, 3] : (tensor<1x4x3x2xf32>) -> tensor<1x3x4x2xf32>
  %a2 = gai.reshape %a1 : tensor<1x3x4x2xf32> to tensor<1x3x8xf32>
  %y = gai.matmul %a2, %wo transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
  %y1 = gai.reshape %y : tensor<1x3x8xf32> to tensor<3x8xf32>
  %l = gai.cross_entropy mean %y1, %t : (tensor<3x8xf32>, tensor<3xi32>) -> tensor<f32>
  return %l : tensor<f32>
}

// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:    tensor<2x8xf32> {gai.name = "grad.k"}
// CHECK:         gai.param "k" {gai.tp = {{{.*}}keep = 1 : i64{{.*}}replicas = 2 : i64, segments = array<i64: 0, 2, 2>}} : tensor<2x8xf32>
// CHECK:         gai.repeat %{{.*}} axis = 1 times = 1 : (tensor<1x1x3x2xf32>) -> tensor<1x1x3x2xf32>
// CHECK:         %[[DW:.*]] = gai.matmul %{{.*}}, %{{.*}} transpose_lhs : (tensor<3x2xf32>, tensor<3x8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT:    %[[FLAT:.*]] = gai.reshape %[[DW]] : tensor<2x8xf32> to tensor<1x16xf32>
// CHECK-NEXT:    %[[ALL:.*]] = shard.all_gather %[[FLAT]] on @mesh grid_axes = [1] gather_axis = 0 : tensor<1x16xf32> -> tensor<4x16xf32>
// CHECK-NEXT:    %[[PAIRS:.*]] = gai.reshape %[[ALL]] : tensor<4x16xf32> to tensor<2x32xf32>
// CHECK-NEXT:    %[[A:.*]] = gai.slice %[[PAIRS]] offsets = [0, 0] sizes = [2, 16]
// CHECK-NEXT:    %[[B:.*]] = gai.slice %[[PAIRS]] offsets = [0, 16] sizes = [2, 16]
// CHECK-NEXT:    %[[SUM:.*]] = gai.add %[[A]], %[[B]]
// CHECK-NEXT:    %[[BOTH:.*]] = gai.concat %[[SUM]], %[[SUM]] axis = 1
// CHECK-NEXT:    %[[EACH:.*]] = gai.reshape %[[BOTH]] : tensor<2x32xf32> to tensor<4x16xf32>
// CHECK-NEXT:    %[[MINE:.*]] = shard.all_slice %[[EACH]] on @mesh grid_axes = [1] slice_axis = 0 : tensor<4x16xf32> -> tensor<1x16xf32>
// CHECK-NEXT:    %[[G:.*]] = gai.reshape %[[MINE]] : tensor<1x16xf32> to tensor<2x8xf32>
// CHECK-NEXT:    gai.add %arg{{[0-9]+}}, %[[G]]
// CHECK:         %[[HALF:.*]] = gai.constant dense<5.000000e-01> : tensor<f32>
// CHECK-NEXT:    gai.mul %{{.*}}, %[[HALF]]
// CHECK:         %[[SQ:.*]] = shard.all_reduce %{{.*}} on @mesh grid_axes = [1] : tensor<f32> -> tensor<f32>
// CHECK-NEXT:    return %{{.*}}, %[[SQ]],
