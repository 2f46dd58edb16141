// RUN: not gai-opt %s --split-input-file --gai-quantize="weights=int4 group=128" 2>&1 | FileCheck %s --check-prefix=GROUP
// RUN: not gai-opt %s --split-input-file --gai-quantize="weights=int8" 2>&1 | FileCheck %s --check-prefix=KEIGHT
// RUN: not gai-opt %s --gai-quantize="weights=int3" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not gai-opt %s --gai-quantize="weights=int4 group=12" 2>&1 | FileCheck %s --check-prefix=BADGROUP

// GROUP: error: --gai-quantize: int4 group 128 does not divide k = 176 of 'mlp.down.weight'
// FORMAT: error: --gai-quantize: weights='int3' is not one of int8, int4, fp8
// BADGROUP: error: --gai-quantize: group=12 must be a positive multiple of 8
func.func @down(%x: tensor<1x4x176xf32>) -> tensor<1x4x64xf32> {
  %w = gai.param "mlp.down.weight" : tensor<64x176xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<1x4x176xf32>, tensor<64x176xf32>) -> tensor<1x4x64xf32>
  return %y : tensor<1x4x64xf32>
}

// -----

// KEIGHT: error: --gai-quantize: 'odd.weight' has k = 12, not a multiple of 8
func.func @odd(%x: tensor<1x4x12xf32>) -> tensor<1x4x64xf32> {
  %w = gai.param "odd.weight" : tensor<64x12xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<1x4x12xf32>, tensor<64x12xf32>) -> tensor<1x4x64xf32>
  return %y : tensor<1x4x64xf32>
}
