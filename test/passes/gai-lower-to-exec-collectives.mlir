// RUN: gai-opt %s --gai-lower-to-exec --split-input-file --verify-diagnostics | FileCheck %s

// The shard dialect's collectives become exec commands with the grid axes
// they name; the grid becomes the module's exec.mesh, and sharded state
// keeps its whole shape (gai.shard) as exec.shard.
// CHECK-LABEL: module @collectives attributes {exec.mesh = array<i64: 2, 1>
// CHECK:         exec.state second_moment "adam.v.w" : tensor<3xf32> at <state 0, 12> {exec.shard = {axes = array<i16: 0>, shape = array<i64: 5>}}
// CHECK:         exec.all_reduce {count = 6 : i64, element = f32, grid_axes = array<i16: 0>, input = #exec.ref<input 0, 24>, out = #exec.ref<arena {{[0-9]+}}, 24>, reduction = #exec<collective_reduce average>}
// CHECK:         exec.reduce_scatter {count = 3 : i64, element = f32, grid_axes = array<i16: 0>, input = #exec.ref<arena {{[0-9]+}}, 24>, out = #exec.ref<arena {{[0-9]+}}, 12>, reduction = #exec<collective_reduce sum>}
// CHECK:         exec.all_gather {count = 3 : i64, element = f32, grid_axes = array<i16: 0>, input = #exec.ref<arena {{[0-9]+}}, 12>, out = #exec.ref<arena {{[0-9]+}}, 24>}
// CHECK:         exec.all_slice {count = 3 : i64, element = f32, grid_axes = array<i16: 0>, input = #exec.ref<arena {{[0-9]+}}, 24>, out = #exec.ref<output 0, 12>}
module @collectives {
  shard.grid @mesh(shape = 2x1)
  func.func @step(%x: tensor<6xf32> {gai.name = "x"}, %v: tensor<3xf32> {gai.name = "adam.v.w", gai.shard = {axes = array<i16: 0>, shape = array<i64: 5>}}) -> (tensor<3xf32> {gai.name = "y"}) {
    %a = shard.all_reduce %x on @mesh grid_axes = [0] reduction = average : tensor<6xf32> -> tensor<6xf32>
    %b = shard.reduce_scatter %a on @mesh grid_axes = [0] scatter_axis = 0 : tensor<6xf32> -> tensor<3xf32>
    %d = shard.all_gather %b on @mesh grid_axes = [0] gather_axis = 0 : tensor<3xf32> -> tensor<6xf32>
    %e = shard.all_slice %d on @mesh grid_axes = [0] slice_axis = 0 : tensor<6xf32> -> tensor<3xf32>
    return %e : tensor<3xf32>
  }
}

// -----

// Near miss: a gather along an inner axis would interleave the ranks'
// parts; the runtime joins along the outermost axis only.
module @inner_gather {
  shard.grid @mesh(shape = 2x1)
  func.func @step(%x: tensor<2x3xf32> {gai.name = "x"}) -> (tensor<2x6xf32> {gai.name = "y"}) {
    // expected-error @below {{gathers along axis 1 of 'tensor<2x6xf32>'; the runtime splits and joins along the outermost axis only}}
    %a = shard.all_gather %x on @mesh grid_axes = [0] gather_axis = 1 : tensor<2x3xf32> -> tensor<2x6xf32>
    return %a : tensor<2x6xf32>
  }
}

// -----

// Near miss: a reduction the runtime has no collective for.
module @product {
  shard.grid @mesh(shape = 2x1)
  func.func @step(%x: tensor<4xf32> {gai.name = "x"}) -> (tensor<4xf32> {gai.name = "y"}) {
    // expected-error @below {{reduces by product; the runtime sums, averages or takes the max}}
    %a = shard.all_reduce %x on @mesh grid_axes = [0] reduction = product : tensor<4xf32> -> tensor<4xf32>
    return %a : tensor<4xf32>
  }
}
