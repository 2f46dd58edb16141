// RUN: not gai-opt %s --split-input-file --gai-prune="pattern=2:4" 2>&1 | FileCheck %s --check-prefix=KEIGHT
// RUN: not gai-opt %s --gai-prune="pattern=3:4" 2>&1 | FileCheck %s --check-prefix=PATTERN
// RUN: not gai-opt %s --gai-prune="mlp=1.0" 2>&1 | FileCheck %s --check-prefix=FRACTION
// RUN: not gai-opt %s --split-input-file --gai-prune="heads=1" 2>&1 | FileCheck %s --check-prefix=GQA
// RUN: not gai-opt %s --split-input-file --gai-prune="heads=4" 2>&1 | FileCheck %s --check-prefix=ALLHEADS

// KEIGHT: error: --gai-prune: 'odd.weight' has k = 12, not a multiple of 8: 2:4 keeps two of each four along k
// PATTERN: error: --gai-prune: pattern='3:4' is not 2:4
// FRACTION: error: --gai-prune: heads=0 mlp=1.00: expects heads >= 0 and 0 <= mlp < 1
func.func @odd(%x: tensor<1x4x12xf32>) -> tensor<1x4x64xf32> {
  %w = gai.param "odd.weight" : tensor<64x12xf32>
  %y = gai.matmul %x, %w transpose_rhs : (tensor<1x4x12xf32>, tensor<64x12xf32>) -> tensor<1x4x64xf32>
  return %y : tensor<1x4x64xf32>
}

// -----

// Two query heads share each KV head: heads go in pairs, and not all of
// them. The error is on the repeat that makes the groups.
// GQA: error: 'gai.repeat' op --gai-prune: heads=1: 2 query heads share each KV head here (grouped-query attention); remove a multiple of 2
// ALLHEADS: error: 'gai.repeat' op --gai-prune: heads=4 removes every one of this attention's 4 heads
func.func @gqa(%q: tensor<1x4x2x8xf32>, %k: tensor<1x2x2x8xf32>) -> tensor<1x4x2x2xf32> {
  %kr = gai.repeat %k axis = 1 times = 2 : (tensor<1x2x2x8xf32>) -> tensor<1x4x2x8xf32>
  %s = gai.matmul %q, %kr transpose_rhs : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> tensor<1x4x2x2xf32>
  return %s : tensor<1x4x2x2xf32>
}

// -----

// Heads that reach an op the walk does not know (here a reduction over
// them) stop it with the op named.
// GQA: error: 'gai.reduce' op --gai-prune: cannot remove heads or channels through this op
func.func @reduced(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x2x8xf32>) -> tensor<1x2x2xf32> {
  %s = gai.matmul %q, %k transpose_rhs : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> tensor<1x4x2x2xf32>
  %r = gai.reduce sum %s axes = [1] : (tensor<1x4x2x2xf32>) -> tensor<1x2x2xf32>
  return %r : tensor<1x2x2xf32>
}

// -----

// Attention rewritten already: its heads are inside one op.
// GQA: error: 'gai.flash_attention' op --gai-prune: heads=1: attention is rewritten already; run --gai-prune before --gai-attention-rewrite
func.func @rewritten(%q: tensor<1x4x2x8xf32>, %k: tensor<1x4x2x8xf32>, %v: tensor<1x4x2x8xf32>) -> tensor<1x4x2x8xf32> {
  %o = gai.flash_attention %q, %k, %v scale = 0.35 kv_groups = 1 causal : (tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>, tensor<1x4x2x8xf32>) -> tensor<1x4x2x8xf32>
  return %o : tensor<1x4x2x8xf32>
}
