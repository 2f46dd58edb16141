// RUN: gai-opt %s --split-input-file --gai-remat="budget=12288" | FileCheck %s --check-prefix=ONE
// RUN: gai-opt %s --split-input-file --gai-remat="budget=16384" | FileCheck %s --check-prefix=NONE
// RUN: not gai-opt %s --split-input-file --gai-remat="budget=4096" 2>&1 | FileCheck %s --check-prefix=UNREACHABLE
// RUN: not gai-opt %s --split-input-file --gai-remat="budget=12288 fixed-bytes=16384" 2>&1 | FileCheck %s --check-prefix=FIXED
// RUN: gai-opt %s --split-input-file --gai-remat="mode=full" | FileCheck %s --check-prefix=FULL

// A chain of 4 KiB values, each read again by the backward pass (the ops
// after the loss). Kept, they peak at 16 KiB; recomputing the first one
// (from an argument, so nothing else lives longer) brings the peak to
// 12 KiB, next to its one backward use.
// ONE-LABEL: func.func @train_step
// ONE-SAME:    gai.remat = {arena_after = 12288 : i64, arena_before = 16384 : i64, recomputed_flops = 1024 : i64, recomputed_ops = 1 : i64}
// ONE:         %[[A:.*]] = gai.exp %arg0
// ONE:         %[[B:.*]] = gai.tanh %[[A]]
// ONE:         %[[C:.*]] = gai.sigmoid %[[B]]
// ONE:         gai.reduce sum %[[C]]
// ONE:         %[[D1:.*]] = gai.mul %[[C]], %[[C]]
// ONE:         %[[D2:.*]] = gai.mul %[[D1]], %[[B]]
// ONE-NEXT:    %[[A2:.*]] = gai.exp %arg0
// ONE-NEXT:    gai.mul %[[D2]], %[[A2]]

// A budget the plan already meets: nothing moves.
// NONE-LABEL: func.func @train_step
// NONE-SAME:    gai.remat = {arena_after = 16384 : i64, arena_before = 16384 : i64, recomputed_flops = 0 : i64, recomputed_ops = 0 : i64}
// NONE-COUNT-1: gai.exp
// NONE-NOT:     gai.exp

// Below what any choice reaches: the error gives the smallest peak reached.
// UNREACHABLE: error: --gai-remat: the memory budget of 4096 bytes cannot be met: the smallest peak reached is 12288 bytes (0 outside the arena, 12288 arena)

// The bytes outside the arena count against the budget.
// FIXED: error: --gai-remat: the memory budget of 12288 bytes is below the 16384 bytes outside the arena

// Full recomputation, with no layers named: every value the backward pass
// reads is recomputed from the arguments, each once, before its first
// backward use.
// FULL-LABEL: func.func @train_step
// FULL-SAME:    recomputed_ops = 3
// FULL:         gai.reduce sum
// FULL-NEXT:    %[[A2:.*]] = gai.exp %arg0
// FULL-NEXT:    %[[B2:.*]] = gai.tanh %[[A2]]
// FULL-NEXT:    %[[C2:.*]] = gai.sigmoid %[[B2]]
// FULL-NEXT:    %[[D1:.*]] = gai.mul %[[C2]], %[[C2]]
// FULL-NEXT:    %[[D2:.*]] = gai.mul %[[D1]], %[[B2]]
// FULL-NEXT:    gai.mul %[[D2]], %[[A2]]
func.func @train_step(%x: tensor<1024xf32>) -> (tensor<f32>, tensor<1024xf32>) {
  %a = gai.exp %x : tensor<1024xf32>
  %b = gai.tanh %a : tensor<1024xf32>
  %c = gai.sigmoid %b : tensor<1024xf32>
  %loss = gai.reduce sum %c axes = [0] : (tensor<1024xf32>) -> tensor<f32>
  %d1 = gai.mul %c, %c : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  %d2 = gai.mul %d1, %b : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  %d3 = gai.mul %d2, %a : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  return %loss, %d3 : tensor<f32>, tensor<1024xf32>
}

// -----

// A value made by a call (a dropout mask from a random source, say) has
// effects the pass cannot repeat: it stays, and the exp is recomputed
// instead. With it kept, 8 KiB is out of reach.
// ONE-LABEL: func.func @train_step
// ONE-SAME:    recomputed_ops = 1
// ONE-COUNT-1: call @dropout_mask
// ONE-NOT:     call @dropout_mask
// ONE:         gai.sigmoid
// ONE-NEXT:    %[[M:.*]] = gai.mul
// ONE-NEXT:    %[[A2:.*]] = gai.exp %arg0
// ONE-NEXT:    gai.mul %[[M]], %[[A2]]
// NONE-LABEL: func.func @train_step
// UNREACHABLE: error: --gai-remat: the memory budget of 4096 bytes cannot be met: the smallest peak reached is 12288 bytes
func.func private @dropout_mask(tensor<1024xf32>) -> tensor<1024xf32>
func.func @train_step(%x: tensor<1024xf32>) -> (tensor<f32>, tensor<1024xf32>) {
  %m = func.call @dropout_mask(%x) : (tensor<1024xf32>) -> tensor<1024xf32>
  %a = gai.exp %x : tensor<1024xf32>
  %l1 = gai.reduce sum %m axes = [0] : (tensor<1024xf32>) -> tensor<f32>
  %l2 = gai.reduce sum %a axes = [0] : (tensor<1024xf32>) -> tensor<f32>
  %loss = gai.add %l1, %l2 : (tensor<f32>, tensor<f32>) -> tensor<f32>
  %t = gai.tanh %x : tensor<1024xf32>
  %t2 = gai.sigmoid %t : tensor<1024xf32>
  %d2 = gai.mul %t2, %m : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  %d3 = gai.mul %d2, %a : (tensor<1024xf32>, tensor<1024xf32>) -> tensor<1024xf32>
  return %loss, %d3 : tensor<f32>, tensor<1024xf32>
}
