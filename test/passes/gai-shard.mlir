// RUN: gai-opt %s --gai-train-step "--gai-shard=mesh=dp=2 bucket-bytes=64" | FileCheck %s
// RUN: gai-opt %s --gai-train-step "--gai-shard=mesh=dp=2 bucket-bytes=1" | FileCheck %s --check-prefix=SMALL
// RUN: gai-opt %s --gai-train-step "--gai-shard=mesh=dp=3 zero=1" | FileCheck %s --check-prefix=ZERO
// RUN: gai-opt %s --gai-train-step "--gai-shard=mesh=dp=1" | FileCheck %s --check-prefix=ONE
// RUN: not gai-opt %s --gai-train-step "--gai-shard=mesh=dp=2,dp=4" 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not gai-opt %s --gai-train-step "--gai-shard=mesh=pp=2" 2>&1 | FileCheck %s --check-prefix=AXIS
// RUN: not gai-opt %s --gai-train-step "--gai-shard=mesh=dp=2 zero=2" 2>&1 | FileCheck %s --check-prefix=STAGE
// RUN: not gai-opt %s "--gai-shard=mesh=dp=2" 2>&1 | FileCheck %s --check-prefix=NOSTEP

// A loss over two parameters: embed [8, 4] (32 elements, which dp=3 pads
// to 33) and scale [4] (padded to 6).
func.func @eval_loss(%tokens: tensor<2x3xi32> {gai.name = "tokens"}, %targets: tensor<2x3xi32> {gai.name = "targets"}) -> (tensor<f32> {gai.name = "loss"}) {
  %table = gai.param "embed" : tensor<8x4xf32>
  %scale = gai.param "scale" : tensor<4xf32>
  %x = gai.embedding %table, %tokens : (tensor<8x4xf32>, tensor<2x3xi32>) -> tensor<2x3x4xf32>
  %h = gai.mul %x, %scale : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  %logits = gai.matmul %h, %table transpose_rhs : (tensor<2x3x4xf32>, tensor<8x4xf32>) -> tensor<2x3x8xf32>
  %loss = gai.cross_entropy mean %logits, %targets : (tensor<2x3x8xf32>, tensor<2x3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// Data parallelism: the grid, and the evaluation loss averaged over dp.
// CHECK:       shard.grid @mesh(shape = 2x1)
// CHECK-LABEL: func.func @eval_loss(
// CHECK:         %[[EL:.*]] = gai.cross_entropy mean
// CHECK-NEXT:    %[[EA:.*]] = shard.all_reduce %[[EL]] on @mesh grid_axes = [0] reduction = average : tensor<f32> -> tensor<f32>
// CHECK-NEXT:    return %[[EA]]

// Both fresh gradients (scale's, made first, then embed's: 144 bytes, past
// the 64-byte bucket) travel in one bucket: flattened, joined, averaged
// once, split again, and only then added to their state; the norm reads
// the averaged sums, and the loss is averaged.
// CHECK-LABEL: func.func @train_step(
// CHECK-SAME:    %[[GE:[a-z0-9]+]]: tensor<8x4xf32> {gai.name = "grad.embed"}
// CHECK-SAME:    %[[GS:[a-z0-9]+]]: tensor<4xf32> {gai.name = "grad.scale"}
// CHECK:         %[[LOSS:.*]] = gai.cross_entropy mean
// CHECK:         %[[JOINED:.*]] = gai.concat %{{.*}}, %{{.*}} axis = 0 : (tensor<4xf32>, tensor<32xf32>) -> tensor<36xf32>
// CHECK-NEXT:    %[[AVG:.*]] = shard.all_reduce %[[JOINED]] on @mesh grid_axes = [0] reduction = average : tensor<36xf32> -> tensor<36xf32>
// CHECK-NEXT:    %[[S:.*]] = gai.slice %[[AVG]] offsets = [0] sizes = [4]
// CHECK-NEXT:    %[[SR:.*]] = gai.reshape %[[S]] : tensor<4xf32> to tensor<4xf32>
// CHECK-NEXT:    %[[E:.*]] = gai.slice %[[AVG]] offsets = [4] sizes = [32]
// CHECK-NEXT:    %[[ER:.*]] = gai.reshape %[[E]] : tensor<32xf32> to tensor<8x4xf32>
// CHECK:         %[[NE:.*]] = gai.add %[[GE]], %[[ER]]
// CHECK:         %[[LA:.*]] = shard.all_reduce %[[LOSS]] on @mesh grid_axes = [0] reduction = average
// CHECK:         %[[NS:.*]] = gai.add %[[GS]], %[[SR]]
// CHECK:         return %[[LA]], %{{.*}}, %[[NE]], %[[NS]]
// The optimizer step is every rank's own: no collective.
// CHECK-LABEL: func.func @optimizer_step(
// CHECK-NOT:     shard.
// CHECK:         return

// A bucket of one byte: each gradient is averaged alone, as it is made.
// SMALL-LABEL: func.func @train_step(
// SMALL:         shard.all_reduce %{{.*}} grid_axes = [0] reduction = average : tensor<4xf32> -> tensor<4xf32>
// SMALL:         shard.all_reduce %{{.*}} grid_axes = [0] reduction = average : tensor<8x4xf32> -> tensor<8x4xf32>
// SMALL-NOT:     gai.concat

// ZeRO-1 over 3 ranks: the gradient state is each rank's third of the
// flattened, zero-padded tensor, reduce-scattered as it is made; grad_sq sums
// the shares' squares over the ranks.
// ZERO:       shard.grid @mesh(shape = 3x1)
// ZERO-LABEL: func.func @train_step(
// ZERO-SAME:    %[[GE:[a-z0-9]+]]: tensor<11xf32> {gai.name = "grad.embed", gai.shard = {axes = array<i16: 0>, shape = array<i64: 8, 4>}}
// ZERO-SAME:    %[[GS:[a-z0-9]+]]: tensor<2xf32> {gai.name = "grad.scale", gai.shard = {axes = array<i16: 0>, shape = array<i64: 4>}}
// ZERO-SAME:    -> (tensor<f32> {gai.name = "loss"}, tensor<f32> {gai.name = "grad_sq"}, tensor<11xf32> {gai.name = "grad.embed"}, tensor<2xf32> {gai.name = "grad.scale"})
// ZERO:         %[[PAD:.*]] = gai.concat %{{.*}}, %{{.*}} axis = 0 : (tensor<4xf32>, tensor<2xf32>) -> tensor<6xf32>
// ZERO-NEXT:    %[[RS:.*]] = shard.reduce_scatter %[[PAD]] on @mesh grid_axes = [0] reduction = average scatter_axis = 0 : tensor<6xf32> -> tensor<2xf32>
// ZERO-NEXT:    %[[NS:.*]] = gai.add %[[GS]], %[[RS]]
// ZERO:         shard.reduce_scatter %{{.*}} scatter_axis = 0 : tensor<33xf32> -> tensor<11xf32>
// ZERO:         %[[SQ:.*]] = shard.all_reduce %{{.*}} on @mesh grid_axes = [0] : tensor<f32> -> tensor<f32>
// ZERO:         return %{{.*}}, %[[SQ]], %{{.*}}, %[[NS]]
// The optimizer updates this rank's slice of each parameter and gathers
// the whole back; moments and gradients are shares.
// ZERO-LABEL: func.func @optimizer_step(
// ZERO-SAME:    tensor<11xf32> {gai.name = "adam.m.embed", gai.shard = {axes = array<i16: 0>, shape = array<i64: 8, 4>}}
// ZERO-SAME:    -> (tensor<8x4xf32> {gai.name = "param.embed"}, tensor<4xf32> {gai.name = "param.scale"}, tensor<11xf32> {gai.name = "adam.m.embed"}
// ZERO:         %[[P:.*]] = gai.param "embed" : tensor<8x4xf32>
// ZERO:         %[[MINE:.*]] = shard.all_slice %{{.*}} on @mesh grid_axes = [0] slice_axis = 0 : tensor<33xf32> -> tensor<11xf32>
// ZERO:         %[[ALL:.*]] = shard.all_gather %{{.*}} on @mesh grid_axes = [0] gather_axis = 0 : tensor<11xf32> -> tensor<33xf32>
// ZERO-NEXT:    %[[CUT:.*]] = gai.slice %[[ALL]] offsets = [0] sizes = [32]
// ZERO-NEXT:    %[[NEW:.*]] = gai.reshape %[[CUT]] : tensor<32xf32> to tensor<8x4xf32>
// ZERO:         return %[[NEW]],
// ZERO-LABEL: func.func @zero_grads() -> (tensor<11xf32> {gai.name = "grad.embed"}, tensor<2xf32> {gai.name = "grad.scale"})

// A grid of one keeps data parallelism's collectives (each a copy), so that
// one device runs the steps of a sharded job.
// ONE:         shard.grid @mesh(shape = 1x1)
// ONE-LABEL:   func.func @eval_loss(
// ONE:           shard.all_reduce %{{.*}} on @mesh grid_axes = [0] reduction = average : tensor<f32>
// ONE-LABEL:   func.func @train_step(
// ONE:           shard.all_reduce %{{.*}} on @mesh grid_axes = [0] reduction = average : tensor<36xf32>
// ONE-LABEL:   func.func @optimizer_step(
// ONE-NOT:       shard.

// TWICE: --gai-shard: mesh 'dp=2,dp=4': expected dp=D and/or tp=T, each once, with positive counts; got 'dp=4'
// AXIS: --gai-shard: mesh 'pp=2': expected dp=D and/or tp=T
// STAGE: --gai-shard: zero=2: expected 0 or 1 (ZeRO-1)
// NOSTEP: --gai-shard: dp=2 shards training: expected @train_step, @optimizer_step and @zero_grads (run --gai-train-step first)
