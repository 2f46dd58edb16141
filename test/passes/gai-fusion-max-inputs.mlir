// RUN: gai-opt %s --gai-fusion | FileCheck %s
// RUN: gai-opt %s --gai-fusion="max-inputs=3" | FileCheck %s --check-prefix=THREE
// RUN: gai-opt %s --gai-fusion="max-inputs=2" | FileCheck %s --check-prefix=TWO
// RUN: not gai-opt %s --gai-fusion="max-inputs=0" 2>&1 | FileCheck %s --check-prefix=ZERO
// ZERO: error: gai-fusion: max-inputs must be at least 1, not 0

// A chain of adds over four tensors is one region under the default cap.
// CHECK-LABEL: func.func @sum_of_four
// CHECK: gai.fusion %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK-NOT: gai.fusion
// CHECK: return
// With three inputs at most, the last two adds (a sum, c and d) are one
// region and the first (a and b) another: joining it would make four.
// THREE-LABEL: func.func @sum_of_four
// THREE-SAME: (%[[A:.*]]: tensor<4xf32>, %[[B:.*]]: tensor<4xf32>, %[[C:.*]]: tensor<4xf32>, %[[D:.*]]: tensor<4xf32>)
// THREE: %[[AB:.*]] = gai.fusion %[[A]], %[[B]] :
// THREE: gai.fusion %[[AB]], %[[C]], %[[D]] :
// THREE-NOT: gai.fusion
// THREE: return
// With two, every add is a region of its own.
// TWO-LABEL: func.func @sum_of_four
// TWO-COUNT-3: = gai.fusion %
// TWO-NOT: gai.fusion
// TWO: return
func.func @sum_of_four(%a: tensor<4xf32>, %b: tensor<4xf32>, %c: tensor<4xf32>, %d: tensor<4xf32>) -> tensor<4xf32> {
  %0 = gai.add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = gai.add %0, %c : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = gai.add %1, %d : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}
