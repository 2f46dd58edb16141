// RUN: gai-opt %s --gai-fusion="column-partial-rows=8" | FileCheck %s
// RUN: gai-opt %s --gai-fusion | FileCheck %s --check-prefix=OFF
// RUN: not gai-opt %s --gai-fusion="column-partial-rows=-1" 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: gai-opt %s --gai-fusion="column-partial-rows=8" --gai-lower-to-exec="gpu-kernels=true" | FileCheck %s --check-prefix=KERNEL

// NEGATIVE: error: gai-fusion: column-partial-rows must be 0 (off) or a row count, not -1

// A norm weight's gradient: the product of the normed rows and dy is read
// only by the sum over every row, so the kernel writes column sums of 8
// rows each (4 of them) instead of the 32 rows, and the sum reads those.
// CHECK-LABEL: func.func @only_summed
// CHECK:         %[[K:.*]]:2 = gai.fusion {{.*}} {column_partials = array<i64: 1>, partial_rows = 8 : i64} : {{.*}} -> (tensor<4x8x32xbf16>, tensor<4x32xf32>)
// CHECK:           %[[P:.*]] = gai.mul
// CHECK:           gai.yield %{{.*}}, %[[P]] : tensor<4x8x32xbf16>, tensor<4x8x32xf32>
// CHECK:         %[[S:.*]] = gai.reduce sum %[[K]]#1 axes = [0] : (tensor<4x32xf32>) -> tensor<32xf32>
// CHECK:         %[[R:.*]] = gai.reshape %[[S]] : tensor<32xf32> to tensor<1x1x32xf32>
// CHECK:         return %[[K]]#0, %[[R]]
// OFF-LABEL: func.func @only_summed
// OFF-NOT:     column_partials
// OFF:         gai.reduce sum %{{.*}} axes = [0, 1] keep_dims : (tensor<4x8x32xf32>) -> tensor<1x1x32xf32>
func.func @only_summed(%dy: tensor<4x8x32xf32>, %x: tensor<4x8x32xf32>, %w: tensor<32xf32>) -> (tensor<4x8x32xbf16>, tensor<1x1x32xf32>) {
  %n = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<4x8x32xf32>, tensor<32xf32>) -> tensor<4x8x32xf32>
  %p = gai.mul %n, %dy : (tensor<4x8x32xf32>, tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
  %s = gai.reduce sum %p axes = [0, 1] keep_dims : (tensor<4x8x32xf32>) -> tensor<1x1x32xf32>
  %d = gai.mul %dy, %w : (tensor<4x8x32xf32>, tensor<32xf32>) -> tensor<4x8x32xf32>
  %b = gai.convert %d : tensor<4x8x32xf32> to tensor<4x8x32xbf16>
  return %b, %s : tensor<4x8x32xbf16>, tensor<1x1x32xf32>
}

// Rows that something else reads stay a result; the partials are one more.
// CHECK-LABEL: func.func @also_read
// CHECK:         %[[K:.*]]:2 = gai.fusion {{.*}} {column_partials = array<i64: 1>, partial_rows = 8 : i64} : {{.*}} -> (tensor<4x8x32xf32>, tensor<4x32xf32>)
// CHECK:         %[[S:.*]] = gai.reduce sum %[[K]]#1 axes = [0] : (tensor<4x32xf32>) -> tensor<32xf32>
// CHECK:         return %[[K]]#0, %[[S]]
func.func @also_read(%dy: tensor<4x8x32xf32>, %x: tensor<4x8x32xf32>) -> (tensor<4x8x32xf32>, tensor<32xf32>) {
  %p = gai.mul %x, %dy : (tensor<4x8x32xf32>, tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
  %s = gai.reduce sum %p axes = [0, 1] : (tensor<4x8x32xf32>) -> tensor<32xf32>
  return %p, %s : tensor<4x8x32xf32>, tensor<32xf32>
}

// 12 rows: groups of 4, the largest power-of-two fraction of 8 dividing them.
// CHECK-LABEL: func.func @fewer_rows_a_group
// CHECK:         gai.fusion {{.*}} {column_partials = array<i64: 0>, partial_rows = 4 : i64} : {{.*}} -> tensor<3x16xf32>
// CHECK:         gai.reduce sum %{{.*}} axes = [0] : (tensor<3x16xf32>) -> tensor<16xf32>
func.func @fewer_rows_a_group(%a: tensor<12x16xf32>) -> tensor<16xf32> {
  %e = gai.exp %a : tensor<12x16xf32>
  %s = gai.reduce sum %e axes = [0] : (tensor<12x16xf32>) -> tensor<16xf32>
  return %s : tensor<16xf32>
}

// Near misses, each left as it was: an odd row count, no more rows than a
// group, a bf16 result (its sum rounds once, at the end), a sum over some
// leading axes only, a max, and a sum over the last axis.
// CHECK-LABEL: func.func @near_misses
// CHECK-NOT:     column_partials
// CHECK:         return
func.func @near_misses(%odd: tensor<5x16xf32>, %few: tensor<8x16xf32>, %h: tensor<16x16xbf16>,
                       %t: tensor<2x8x16xf32>)
    -> (tensor<16xf32>, tensor<16xf32>, tensor<16xbf16>, tensor<8x16xf32>, tensor<16xf32>, tensor<2x8xf32>) {
  %e0 = gai.exp %odd : tensor<5x16xf32>
  %s0 = gai.reduce sum %e0 axes = [0] : (tensor<5x16xf32>) -> tensor<16xf32>
  %e1 = gai.exp %few : tensor<8x16xf32>
  %s1 = gai.reduce sum %e1 axes = [0] : (tensor<8x16xf32>) -> tensor<16xf32>
  %e2 = gai.exp %h : tensor<16x16xbf16>
  %s2 = gai.reduce sum %e2 axes = [0] : (tensor<16x16xbf16>) -> tensor<16xbf16>
  %e3 = gai.exp %t : tensor<2x8x16xf32>
  %s3 = gai.reduce sum %e3 axes = [0] : (tensor<2x8x16xf32>) -> tensor<8x16xf32>
  %e4 = gai.neg %t : tensor<2x8x16xf32>
  %s4 = gai.reduce max %e4 axes = [0, 1] : (tensor<2x8x16xf32>) -> tensor<16xf32>
  %e5 = gai.tanh %t : tensor<2x8x16xf32>
  %s5 = gai.reduce sum %e5 axes = [2] : (tensor<2x8x16xf32>) -> tensor<2x8xf32>
  return %s0, %s1, %s2, %s3, %s4, %s5 : tensor<16xf32>, tensor<16xf32>, tensor<16xbf16>, tensor<8x16xf32>, tensor<16xf32>, tensor<2x8xf32>
}

// The GPU kernel of a row wider than a warp (512 f32: 128 threads, one
// vector each) with one block-wide reduction (the norm's): 8 rows a block,
// 2 blocks. A thread's column partials stay in registers across the rows
// (the loop's value) and are stored once; a barrier ends each row, as the
// next row's reduction writes the shared buffer this one's total sits in.
// KERNEL-LABEL: func.func @k{{[0-9]+}}_rms_norm_mul(%arg0: memref<16x512xf32>, %arg1: memref<512xf32>, %arg2: memref<16x512xf32>, %arg3: memref<2x512xf32>) attributes {gai.block = 128 : i64, gai.grid = 2 : i64}
// KERNEL:         vector.load %arg1
// KERNEL:         %[[AT:.*]] = arith.muli %thread_id_x, %c4{{.*}} : index
// KERNEL-NEXT:    %cst = arith.constant dense<0.000000e+00> : vector<4xf32>
// KERNEL:         %[[SUMS:.*]] = scf.for %[[ROW:.*]] = %c0 to %c8 step %c1 iter_args(%[[ACC:.*]] = %cst) -> (vector<4xf32>) {
// KERNEL:           gpu.all_reduce add
// KERNEL:           %[[NEXT:.*]] = arith.addf %[[ACC]], %{{.*}} : vector<4xf32>
// KERNEL-NEXT:      gpu.barrier
// KERNEL-NEXT:      scf.yield %[[NEXT]] : vector<4xf32>
// KERNEL-NEXT:    }
// KERNEL-NEXT:    vector.store %[[SUMS]], %arg3[%block_id_x, %[[AT]]] {{.*}} : memref<2x512xf32>, vector<4xf32>
// KERNEL-NEXT:    return
func.func @wide_rows(%dy: tensor<16x512xf32>, %x: tensor<16x512xf32>, %w: tensor<512xf32>) -> tensor<512xf32> {
  %n = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<16x512xf32>, tensor<512xf32>) -> tensor<16x512xf32>
  %p = gai.mul %n, %dy : (tensor<16x512xf32>, tensor<16x512xf32>) -> tensor<16x512xf32>
  %s = gai.reduce sum %p axes = [0] : (tensor<16x512xf32>) -> tensor<512xf32>
  return %s : tensor<512xf32>
}

// A row of 1536 f32 is 384 vectors over 256 threads: a thread owns more than
// one, so each row adds into the block's partials in memory (the first row
// stores them).
// KERNEL-LABEL: func.func @k{{[0-9]+}}_rms_norm_mul(%arg0: memref<16x1536xf32>, %arg1: memref<1536xf32>, %arg2: memref<16x1536xf32>, %arg3: memref<2x1536xf32>) attributes {gai.block = 256 : i64, gai.grid = 2 : i64}
// KERNEL:         scf.for %[[ROW:.*]] = %c0 to %c8 step %c1 {
// KERNEL:           gpu.all_reduce add
// KERNEL:           arith.cmpi eq, %[[ROW]], %c0
// KERNEL:           vector.store %{{.*}}, %arg3[%block_id_x, %{{.*}}] {{.*}} : memref<2x1536xf32>, vector<4xf32>
// KERNEL:           vector.load %arg3[%block_id_x, %{{.*}}] {{.*}} : memref<2x1536xf32>, vector<4xf32>
// KERNEL:           gpu.barrier
// KERNEL-NEXT:    }
// KERNEL-NEXT:    return
func.func @long_rows(%dy: tensor<16x1536xf32>, %x: tensor<16x1536xf32>, %w: tensor<1536xf32>) -> tensor<1536xf32> {
  %n = gai.rms_norm %x, %w eps = 1.0e-5 : (tensor<16x1536xf32>, tensor<1536xf32>) -> tensor<16x1536xf32>
  %p = gai.mul %n, %dy : (tensor<16x1536xf32>, tensor<16x1536xf32>) -> tensor<16x1536xf32>
  %s = gai.reduce sum %p axes = [0] : (tensor<16x1536xf32>) -> tensor<1536xf32>
  return %s : tensor<1536xf32>
}
