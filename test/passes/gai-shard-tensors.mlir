// RUN: gai-opt %s --split-input-file --gai-shard-tensors=tp=2 --verify-diagnostics | FileCheck %s
// RUN: gai-opt %s --split-input-file --gai-shard-tensors=tp=1 | FileCheck %s --check-prefix=ONE

// One attention with two KV heads of two query heads each, and a SwiGLU MLP
// of 8 channels, split over two ranks: each rank keeps one KV group (its
// two query heads), half of the channels; the output and down projections
// are partial sums, added up before the residual.
// CHECK-LABEL: module
// CHECK:       shard.grid @mesh(shape = 1x2)
// CHECK-LABEL: func.func @forward(
// CHECK:         %[[WQ:.*]] = gai.param "q" {gai.tp = {axis = 0 : i64, group = "{{[a-z.]*}}", keep = 1 : i64, kind = "heads", per_unit = 2 : i64, segments = array<i64: 0, 2, 8>}} : tensor<8x8xf32>
// CHECK:         %[[WK:.*]] = gai.param "k" {gai.tp = {{.*}}keep = 1 : i64, kind = "heads", per_unit = 2 : i64, segments = array<i64: 0, 2, 4>}} : tensor<4x8xf32>
// CHECK:         %[[WO:.*]] = gai.param "o" {gai.tp = {axis = 1 : i64{{.*}}} : tensor<8x8xf32>
// CHECK:         %[[O:.*]] = gai.matmul %{{.*}}, %[[WO]] transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
// CHECK-NEXT:    %[[SUM:.*]] = shard.all_reduce %[[O]] on @mesh grid_axes = [1] : tensor<1x3x8xf32> -> tensor<1x3x8xf32>
// CHECK-NEXT:    %[[H:.*]] = gai.add %{{.*}}, %[[SUM]]
// CHECK:         gai.param "gate" {gai.tp = {axis = 0 : i64, {{.*}}kind = "channels", per_unit = 1 : i64, segments = array<i64: 0, 8, 1>}} : tensor<4x8xf32>
// CHECK:         %[[WD:.*]] = gai.param "down" {gai.tp = {axis = 1 : i64{{.*}}} : tensor<8x4xf32>
// CHECK:         %[[D:.*]] = gai.matmul %{{.*}}, %[[WD]] transpose_rhs : (tensor<1x3x4xf32>, tensor<8x4xf32>) -> tensor<1x3x8xf32>
// CHECK-NEXT:    %[[DSUM:.*]] = shard.all_reduce %[[D]] on @mesh grid_axes = [1]
// CHECK-NEXT:    gai.add %[[H]], %[[DSUM]]

// ONE-NOT: shard.
module {
  func.func @forward(%x: tensor<1x3x8xf32>) -> tensor<1x3x8xf32> {
    %wq = gai.param "q" : tensor<16x8xf32>
    %wk = gai.param "k" : tensor<8x8xf32>
    %wv = gai.param "v" : tensor<8x8xf32>
    %wo = gai.param "o" : tensor<8x16xf32>
    %q0 = gai.matmul %x, %wq transpose_rhs : (tensor<1x3x8xf32>, tensor<16x8xf32>) -> tensor<1x3x16xf32>
    %k0 = gai.matmul %x, %wk transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    %v0 = gai.matmul %x, %wv transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    %q1 = gai.reshape %q0 : tensor<1x3x16xf32> to tensor<1x3x4x4xf32>
    %k1 = gai.reshape %k0 : tensor<1x3x8xf32> to tensor<1x3x2x4xf32>
    %v1 = gai.reshape %v0 : tensor<1x3x8xf32> to tensor<1x3x2x4xf32>
    %q = gai.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<1x3x4x4xf32>) -> tensor<1x4x3x4xf32>
    %k2 = gai.transpose %k1 permutation = [0, 2, 1, 3] : (tensor<1x3x2x4xf32>) -> tensor<1x2x3x4xf32>
    %v2 = gai.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<1x3x2x4xf32>) -> tensor<1x2x3x4xf32>
    %k = gai.repeat %k2 axis = 1 times = 2 : (tensor<1x2x3x4xf32>) -> tensor<1x4x3x4xf32>
    %v = gai.repeat %v2 axis = 1 times = 2 : (tensor<1x2x3x4xf32>) -> tensor<1x4x3x4xf32>
    %s = gai.matmul %q, %k transpose_rhs : (tensor<1x4x3x4xf32>, tensor<1x4x3x4xf32>) -> tensor<1x4x3x3xf32>
    %p = gai.softmax %s axis = 3 : tensor<1x4x3x3xf32>
    %a = gai.matmul %p, %v : (tensor<1x4x3x3xf32>, tensor<1x4x3x4xf32>) -> tensor<1x4x3x4xf32>
    %a1 = gai.transpose %a permutation = [0, 2, 1, 3] : (tensor<1x4x3x4xf32>) -> tensor<1x3x4x4xf32>
    %a2 = gai.reshape %a1 : tensor<1x3x4x4xf32> to tensor<1x3x16xf32>
    %o = gai.matmul %a2, %wo transpose_rhs : (tensor<1x3x16xf32>, tensor<8x16xf32>) -> tensor<1x3x8xf32>
    %h = gai.add %x, %o : (tensor<1x3x8xf32>, tensor<1x3x8xf32>) -> tensor<1x3x8xf32>
    %wg = gai.param "gate" : tensor<8x8xf32>
    %wu = gai.param "up" : tensor<8x8xf32>
    %wd = gai.param "down" : tensor<8x8xf32>
    %g = gai.matmul %h, %wg transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    %u = gai.matmul %h, %wu transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    %ga = gai.silu %g : tensor<1x3x8xf32>
    %m = gai.mul %ga, %u : (tensor<1x3x8xf32>, tensor<1x3x8xf32>) -> tensor<1x3x8xf32>
    %d = gai.matmul %m, %wd transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    %y = gai.add %h, %d : (tensor<1x3x8xf32>, tensor<1x3x8xf32>) -> tensor<1x3x8xf32>
    return %y : tensor<1x3x8xf32>
  }
}

// -----

// One KV head (multi-query attention) at tp=2: the two query heads split,
// one a rank, and each rank keeps the KV head they read (Megatron's
// replicated KV heads): k and v are whole on every rank (`replicas = 2`,
// their gradients summed over the ranks), and the repeats repeat it once.
// CHECK-LABEL: module
// CHECK-LABEL: func.func @forward(
// CHECK:         gai.param "q" {gai.tp = {axis = 0 : i64, {{.*}}keep = 1 : i64, kind = "heads", per_unit = 1 : i64, segments = array<i64: 0, 2, 4>}} : tensor<4x8xf32>
// CHECK-NEXT:    gai.param "k" {gai.tp = {axis = 0 : i64, {{.*}}keep = 1 : i64, kind = "heads", per_unit = 1 : i64, replicas = 2 : i64, segments = array<i64: 0, 1, 4>}} : tensor<4x8xf32>
// CHECK-NEXT:    gai.param "v" {gai.tp = {{{.*}}replicas = 2 : i64{{.*}}}} : tensor<4x8xf32>
// CHECK-NEXT:    gai.param "o" {gai.tp = {axis = 1 : i64, {{.*}}segments = array<i64: 0, 2, 4>}} : tensor<8x4xf32>
// CHECK:         gai.matmul %arg0, %{{.*}} transpose_rhs {gai.tp_partial_input_grad = @mesh} : (tensor<1x3x8xf32>, tensor<4x8xf32>) -> tensor<1x3x4xf32>
// CHECK:         gai.repeat %{{.*}} axis = 1 times = 1 : (tensor<1x1x3x4xf32>) -> tensor<1x1x3x4xf32>
// CHECK:         gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<1x1x3x4xf32>, tensor<1x1x3x4xf32>) -> tensor<1x1x3x3xf32>
// CHECK:         %[[Y:.*]] = gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<1x3x4xf32>, tensor<8x4xf32>) -> tensor<1x3x8xf32>
// CHECK-NEXT:    shard.all_reduce %[[Y]] on @mesh grid_axes = [1]
module {
  func.func @forward(%x: tensor<1x3x8xf32>) -> tensor<1x3x8xf32> {
    %wq = gai.param "q" : tensor<8x8xf32>
    %wk = gai.param "k" : tensor<4x8xf32>
    %wv = gai.param "v" : tensor<4x8xf32>
    %wo = gai.param "o" : tensor<8x8xf32>
    %q0 = gai.matmul %x, %wq transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    %q1 = gai.reshape %q0 : tensor<1x3x8xf32> to tensor<1x3x2x4xf32>
    %q = gai.transpose %q1 permutation = [0, 2, 1, 3] : (tensor<1x3x2x4xf32>) -> tensor<1x2x3x4xf32>
    %k0 = gai.matmul %x, %wk transpose_rhs : (tensor<1x3x8xf32>, tensor<4x8xf32>) -> tensor<1x3x4xf32>
    %k1 = gai.reshape %k0 : tensor<1x3x4xf32> to tensor<1x3x1x4xf32>
    %k2 = gai.transpose %k1 permutation = [0, 2, 1, 3] : (tensor<1x3x1x4xf32>) -> tensor<1x1x3x4xf32>
    %k = gai.repeat %k2 axis = 1 times = 2 : (tensor<1x1x3x4xf32>) -> tensor<1x2x3x4xf32>
    %v0 = gai.matmul %x, %wv transpose_rhs : (tensor<1x3x8xf32>, tensor<4x8xf32>) -> tensor<1x3x4xf32>
    %v1 = gai.reshape %v0 : tensor<1x3x4xf32> to tensor<1x3x1x4xf32>
    %v2 = gai.transpose %v1 permutation = [0, 2, 1, 3] : (tensor<1x3x1x4xf32>) -> tensor<1x1x3x4xf32>
    %v = gai.repeat %v2 axis = 1 times = 2 : (tensor<1x1x3x4xf32>) -> tensor<1x2x3x4xf32>
    %s = gai.matmul %q, %k transpose_rhs : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x3xf32>
    %p = gai.softmax %s axis = 3 : tensor<1x2x3x3xf32>
    %a = gai.matmul %p, %v : (tensor<1x2x3x3xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
    %a1 = gai.transpose %a permutation = [0, 2, 1, 3] : (tensor<1x2x3x4xf32>) -> tensor<1x3x2x4xf32>
    %a2 = gai.reshape %a1 : tensor<1x3x2x4xf32> to tensor<1x3x8xf32>
    %y = gai.matmul %a2, %wo transpose_rhs : (tensor<1x3x8xf32>, tensor<8x8xf32>) -> tensor<1x3x8xf32>
    return %y : tensor<1x3x8xf32>
  }
}

// -----

// Near miss: three KV heads over two ranks neither divide nor are divided:
// the attention stays whole on every rank, nothing to sum.
// CHECK-LABEL: module
// CHECK-LABEL: func.func @forward(
// CHECK:         gai.repeat %{{.*}} axis = 1 times = 2 : (tensor<1x3x3x4xf32>) -> tensor<1x6x3x4xf32>
// CHECK-NEXT:    gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<1x6x3x4xf32>, tensor<1x6x3x4xf32>) -> tensor<1x6x3x3xf32>
// CHECK-NOT:     shard.all_reduce
// CHECK:         return
module {
  func.func @forward(%q: tensor<1x6x3x4xf32>, %k0: tensor<1x3x3x4xf32>) -> tensor<1x6x3x3xf32> {
    %k = gai.repeat %k0 axis = 1 times = 2 : (tensor<1x3x3x4xf32>) -> tensor<1x6x3x4xf32>
    %s = gai.matmul %q, %k transpose_rhs : (tensor<1x6x3x4xf32>, tensor<1x6x3x4xf32>) -> tensor<1x6x3x3xf32>
    return %s : tensor<1x6x3x3xf32>
  }
}

// -----

// Near miss: an MLP of 5 channels.
module {
  func.func @forward(%x: tensor<1x3x8xf32>) -> tensor<1x3x8xf32> {
    %wu = gai.param "up" : tensor<5x8xf32>
    %wd = gai.param "down" : tensor<8x5xf32>
    %u = gai.matmul %x, %wu transpose_rhs : (tensor<1x3x8xf32>, tensor<5x8xf32>) -> tensor<1x3x5xf32>
    %a = gai.relu %u : tensor<1x3x5xf32>
    // expected-error @below {{--gai-shard-tensors: tp=2: the 5 channels of this MLP (axis 2 of 'tensor<1x3x5xf32>') do not divide over 2 ranks}}
    %d = gai.matmul %a, %wd transpose_rhs : (tensor<1x3x5xf32>, tensor<8x5xf32>) -> tensor<1x3x8xf32>
    return %d : tensor<1x3x8xf32>
  }
}

// -----

// Near miss: a loss is split before autodiff, not after.
// expected-error @below {{--gai-shard-tensors: split the loss before --gai-train-step differentiates it}}
module {
  func.func @train_step(%x: tensor<2xf32>) -> tensor<f32> {
    %0 = gai.reduce sum %x axes = [0] : (tensor<2xf32>) -> tensor<f32>
    return %0 : tensor<f32>
  }
}

// -----

// An LM head of its own splits over the vocabulary: each rank computes 8 of
// the 16 logits, gathered along the outermost axis (the vocabulary moved
// there and back).
// CHECK-LABEL: module
// CHECK-LABEL: func.func @forward(
// CHECK:         %[[W:.*]] = gai.param "lm_head" {gai.tp = {axis = 0 : i64, group = "lm_head", keep = 1 : i64, kind = "vocabulary", per_unit = 1 : i64, segments = array<i64: 0, 2, 8>}} : tensor<8x4xf32>
// CHECK-NEXT:    %[[L:.*]] = gai.matmul %arg0, %[[W]] transpose_rhs {gai.tp_partial_input_grad = @mesh} : (tensor<1x3x4xf32>, tensor<8x4xf32>) -> tensor<1x3x8xf32>
// CHECK-NEXT:    %[[F:.*]] = gai.transpose %[[L]] permutation = [2, 0, 1] : (tensor<1x3x8xf32>) -> tensor<8x1x3xf32>
// CHECK-NEXT:    %[[G:.*]] = shard.all_gather %[[F]] on @mesh grid_axes = [1] gather_axis = 0 : tensor<8x1x3xf32> -> tensor<16x1x3xf32>
// CHECK-NEXT:    %[[B:.*]] = gai.transpose %[[G]] permutation = [1, 2, 0] : (tensor<16x1x3xf32>) -> tensor<1x3x16xf32>
// CHECK-NEXT:    return %[[B]]
module {
  func.func @forward(%x: tensor<1x3x4xf32>) -> tensor<1x3x16xf32> {
    %w = gai.param "lm_head" : tensor<16x4xf32>
    %l = gai.matmul %x, %w transpose_rhs : (tensor<1x3x4xf32>, tensor<16x4xf32>) -> tensor<1x3x16xf32>
    return %l : tensor<1x3x16xf32>
  }
}

// -----

// A head tied to the embedding: the table splits over the vocabulary for
// both (Megatron's vocabulary-parallel embedding). Each rank looks up the
// ids of its 8 rows (zeros for the others), a sum over tp makes the whole
// lookup, and the head computes the rank's 8 logits, gathered.
// CHECK-LABEL: module
// CHECK-LABEL: func.func @forward(
// CHECK:         %[[T:.*]] = gai.param "embed" {gai.tp = {axis = 0 : i64, group = "embed", keep = 1 : i64, kind = "vocabulary", per_unit = 1 : i64, segments = array<i64: 0, 2, 8>}} : tensor<8x4xf32>
// CHECK-NEXT:    %[[E:.*]] = gai.embedding %[[T]], %arg0 {{{.*}}vocab_shards = 2 : i64} : (tensor<8x4xf32>, tensor<1x3xi32>) -> tensor<1x3x4xf32>
// CHECK-NEXT:    %[[S:.*]] = shard.all_reduce %[[E]] on @mesh grid_axes = [1] : tensor<1x3x4xf32> -> tensor<1x3x4xf32>
// CHECK-NEXT:    %[[L:.*]] = gai.matmul %[[S]], %[[T]] transpose_rhs : (tensor<1x3x4xf32>, tensor<8x4xf32>) -> tensor<1x3x8xf32>
// CHECK:         shard.all_gather %{{.*}} on @mesh grid_axes = [1] gather_axis = 0 : tensor<8x1x3xf32> -> tensor<16x1x3xf32>
module {
  func.func @forward(%t: tensor<1x3xi32>) -> tensor<1x3x16xf32> {
    %w = gai.param "embed" : tensor<16x4xf32>
    %x = gai.embedding %w, %t : (tensor<16x4xf32>, tensor<1x3xi32>) -> tensor<1x3x4xf32>
    %l = gai.matmul %x, %w transpose_rhs : (tensor<1x3x4xf32>, tensor<16x4xf32>) -> tensor<1x3x16xf32>
    return %l : tensor<1x3x16xf32>
  }
}

// -----

// Near misses: a table of 15 rows does not divide over two ranks, and a
// table that another op reads besides lookups and LM heads stays whole too.
// CHECK-LABEL: module
// CHECK-LABEL: func.func @forward(
// CHECK:         gai.param "odd" : tensor<15x4xf32>
// CHECK:         gai.embedding %{{.*}}, %arg0 : (tensor<15x4xf32>
// CHECK:         gai.param "shared" : tensor<16x4xf32>
// CHECK:         gai.embedding %{{.*}}, %arg0 : (tensor<16x4xf32>
// CHECK-NOT:     shard.
// CHECK:         return
module {
  func.func @forward(%t: tensor<1x3xi32>) -> (tensor<1x3x4xf32>, tensor<1x3x4xf32>, tensor<16x4xf32>) {
    %o = gai.param "odd" : tensor<15x4xf32>
    %x = gai.embedding %o, %t : (tensor<15x4xf32>, tensor<1x3xi32>) -> tensor<1x3x4xf32>
    %w = gai.param "shared" : tensor<16x4xf32>
    %y = gai.embedding %w, %t : (tensor<16x4xf32>, tensor<1x3xi32>) -> tensor<1x3x4xf32>
    %z = gai.mul %w, %w : (tensor<16x4xf32>, tensor<16x4xf32>) -> tensor<16x4xf32>
    return %x, %y, %z : tensor<1x3x4xf32>, tensor<1x3x4xf32>, tensor<16x4xf32>
  }
}
