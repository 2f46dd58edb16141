// RUN: gai-opt %s --gai-attention-rewrite=fold-cache-writes=true --split-input-file | FileCheck %s
// RUN: gai-opt %s --gai-attention-rewrite --split-input-file | FileCheck %s --check-prefix=OFF

// A decode step: RoPE of q and k, both cache writes and the attention
// become one op; the new caches are what the function returns.
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<1x8x1x16xbf16>, %[[K:[^:]*]]: tensor<1x2x1x16xbf16>, %[[V:[^:]*]]: tensor<1x2x1x16xbf16>, %[[KC:[^:]*]]: tensor<1x2x32x16xbf16>, %[[VC:[^:]*]]: tensor<1x2x32x16xbf16>, %[[S:[^:]*]]: tensor<1xi32>, %[[P:[^:]*]]: tensor<1x1xi32>)
// CHECK-NOT: gai.rope
// CHECK-NOT: gai.cache_write
// CHECK: %[[O:.*]], %[[NK:.*]], %[[NV:.*]] = gai.cached_attention %[[Q]], %[[K]], %[[V]] into %[[KC]], %[[VC]] at %[[S]] rope half %[[P]] theta = 1.000000e+04 scale = 2.500000e-01 kv_groups = 4 causal window = 8
// CHECK-NOT: gai.cache_write
// CHECK: return %[[O]], %[[NK]], %[[NV]]
// OFF-LABEL: func.func @decode
// OFF-COUNT-2: gai.rope
// OFF-COUNT-2: gai.cache_write
// OFF: gai.flash_attention
// OFF-NOT: gai.cached_attention
func.func @decode(%q: tensor<1x8x1x16xbf16>, %k: tensor<1x2x1x16xbf16>, %v: tensor<1x2x1x16xbf16>,
                  %kc: tensor<1x2x32x16xbf16>, %vc: tensor<1x2x32x16xbf16>,
                  %start: tensor<1xi32>, %pos: tensor<1x1xi32>)
    -> (tensor<1x8x1x16xbf16>, tensor<1x2x32x16xbf16>, tensor<1x2x32x16xbf16>) {
  %qr = gai.rope half %q, %pos theta = 1.0e4 : (tensor<1x8x1x16xbf16>, tensor<1x1xi32>) -> tensor<1x8x1x16xbf16>
  %kr = gai.rope half %k, %pos theta = 1.0e4 : (tensor<1x2x1x16xbf16>, tensor<1x1xi32>) -> tensor<1x2x1x16xbf16>
  %kw = gai.cache_write %kc, %kr at %start : (tensor<1x2x32x16xbf16>, tensor<1x2x1x16xbf16>, tensor<1xi32>) -> tensor<1x2x32x16xbf16>
  %vw = gai.cache_write %vc, %v at %start : (tensor<1x2x32x16xbf16>, tensor<1x2x1x16xbf16>, tensor<1xi32>) -> tensor<1x2x32x16xbf16>
  %o = gai.flash_attention %qr, %kw, %vw at %start scale = 0.25 kv_groups = 4 causal window = 8 : (tensor<1x8x1x16xbf16>, tensor<1x2x32x16xbf16>, tensor<1x2x32x16xbf16>, tensor<1xi32>) -> tensor<1x8x1x16xbf16>
  return %o, %kw, %vw : tensor<1x8x1x16xbf16>, tensor<1x2x32x16xbf16>, tensor<1x2x32x16xbf16>
}

// -----

// Learned positions (no RoPE): the writes fold; so they do when only the
// query is rotated, which stays a rope op.
// CHECK-LABEL: func.func @no_rope
// CHECK: gai.cached_attention %{{.*}} at %{{[^ ]*}} scale = 1.250000e-01 kv_groups = 1 causal softcap = 5.000000e+01 :
// CHECK-LABEL: func.func @query_rope_only
// CHECK: %[[QR:.*]] = gai.rope interleaved
// CHECK: gai.cached_attention %[[QR]], %{{.*}} at %{{[^ ]*}} scale
func.func @no_rope(%q: tensor<2x4x1x8xf32>, %k: tensor<2x4x1x8xf32>, %v: tensor<2x4x1x8xf32>,
                   %kc: tensor<2x4x16x8xf32>, %vc: tensor<2x4x16x8xf32>, %start: tensor<2xi32>)
    -> tensor<2x4x1x8xf32> {
  %kw = gai.cache_write %kc, %k at %start : (tensor<2x4x16x8xf32>, tensor<2x4x1x8xf32>, tensor<2xi32>) -> tensor<2x4x16x8xf32>
  %vw = gai.cache_write %vc, %v at %start : (tensor<2x4x16x8xf32>, tensor<2x4x1x8xf32>, tensor<2xi32>) -> tensor<2x4x16x8xf32>
  %o = gai.flash_attention %q, %kw, %vw at %start scale = 0.125 kv_groups = 1 causal softcap = 50.0 : (tensor<2x4x1x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2xi32>) -> tensor<2x4x1x8xf32>
  return %o : tensor<2x4x1x8xf32>
}
func.func @query_rope_only(%q: tensor<2x4x1x8xf32>, %k: tensor<2x4x1x8xf32>, %v: tensor<2x4x1x8xf32>,
                           %kc: tensor<2x4x16x8xf32>, %vc: tensor<2x4x16x8xf32>, %start: tensor<2xi32>,
                           %pos: tensor<2x1xi32>) -> tensor<2x4x1x8xf32> {
  %qr = gai.rope interleaved %q, %pos theta = 1.0e4 : (tensor<2x4x1x8xf32>, tensor<2x1xi32>) -> tensor<2x4x1x8xf32>
  %kw = gai.cache_write %kc, %k at %start : (tensor<2x4x16x8xf32>, tensor<2x4x1x8xf32>, tensor<2xi32>) -> tensor<2x4x16x8xf32>
  %vw = gai.cache_write %vc, %v at %start : (tensor<2x4x16x8xf32>, tensor<2x4x1x8xf32>, tensor<2xi32>) -> tensor<2x4x16x8xf32>
  %o = gai.flash_attention %qr, %kw, %vw at %start scale = 0.125 kv_groups = 1 causal : (tensor<2x4x1x8xf32>, tensor<2x4x16x8xf32>, tensor<2x4x16x8xf32>, tensor<2xi32>) -> tensor<2x4x1x8xf32>
  return %o : tensor<2x4x1x8xf32>
}

// -----

// What stays apart: a prefill of more than 16 rows, writes at other
// positions than the attention's, and a cache read before the attention.
// CHECK-LABEL: func.func @prefill
// CHECK-NOT: gai.cached_attention
// CHECK: gai.flash_attention
// CHECK-LABEL: func.func @other_positions
// CHECK-NOT: gai.cached_attention
// CHECK: gai.flash_attention
// CHECK-LABEL: func.func @read_before
// CHECK-NOT: gai.cached_attention
// CHECK: gai.flash_attention
func.func @prefill(%q: tensor<1x2x17x8xf32>, %k: tensor<1x2x17x8xf32>, %v: tensor<1x2x17x8xf32>,
                   %kc: tensor<1x2x32x8xf32>, %vc: tensor<1x2x32x8xf32>, %start: tensor<1xi32>)
    -> tensor<1x2x17x8xf32> {
  %kw = gai.cache_write %kc, %k at %start : (tensor<1x2x32x8xf32>, tensor<1x2x17x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %vw = gai.cache_write %vc, %v at %start : (tensor<1x2x32x8xf32>, tensor<1x2x17x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %o = gai.flash_attention %q, %kw, %vw at %start scale = 0.125 kv_groups = 1 causal : (tensor<1x2x17x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1xi32>) -> tensor<1x2x17x8xf32>
  return %o : tensor<1x2x17x8xf32>
}
func.func @other_positions(%q: tensor<1x2x1x8xf32>, %k: tensor<1x2x1x8xf32>, %v: tensor<1x2x1x8xf32>,
                           %kc: tensor<1x2x32x8xf32>, %vc: tensor<1x2x32x8xf32>, %start: tensor<1xi32>,
                           %other: tensor<1xi32>) -> tensor<1x2x1x8xf32> {
  %kw = gai.cache_write %kc, %k at %other : (tensor<1x2x32x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %vw = gai.cache_write %vc, %v at %start : (tensor<1x2x32x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %o = gai.flash_attention %q, %kw, %vw at %start scale = 0.125 kv_groups = 1 causal : (tensor<1x2x1x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1xi32>) -> tensor<1x2x1x8xf32>
  return %o : tensor<1x2x1x8xf32>
}
func.func @read_before(%q: tensor<1x2x1x8xf32>, %k: tensor<1x2x1x8xf32>, %v: tensor<1x2x1x8xf32>,
                       %kc: tensor<1x2x32x8xf32>, %vc: tensor<1x2x32x8xf32>, %start: tensor<1xi32>)
    -> (tensor<1x2x1x8xf32>, tensor<1x2x32x8xf32>) {
  %kw = gai.cache_write %kc, %k at %start : (tensor<1x2x32x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %early = gai.neg %kw : tensor<1x2x32x8xf32>
  %vw = gai.cache_write %vc, %v at %start : (tensor<1x2x32x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %o = gai.flash_attention %q, %kw, %vw at %start scale = 0.125 kv_groups = 1 causal : (tensor<1x2x1x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1xi32>) -> tensor<1x2x1x8xf32>
  return %o, %early : tensor<1x2x1x8xf32>, tensor<1x2x32x8xf32>
}

// -----

// Also apart: K and V the same write (one op cannot stand for both), and a
// value write of other rows than the query's. A lower `folded-rows` keeps
// even a one-row step apart.
// RUN: gai-opt %s --gai-attention-rewrite="fold-cache-writes=true folded-rows=0" --split-input-file | FileCheck %s --check-prefix=NONE
// NONE-NOT: gai.cached_attention
// CHECK-LABEL: func.func @same_write
// CHECK-NOT: gai.cached_attention
// CHECK: gai.flash_attention
// CHECK-LABEL: func.func @value_rows
// CHECK-NOT: gai.cached_attention
// CHECK: gai.flash_attention
func.func @same_write(%q: tensor<1x2x1x8xf32>, %k: tensor<1x2x1x8xf32>,
                      %kc: tensor<1x2x32x8xf32>, %start: tensor<1xi32>) -> tensor<1x2x1x8xf32> {
  %kw = gai.cache_write %kc, %k at %start : (tensor<1x2x32x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %o = gai.flash_attention %q, %kw, %kw at %start scale = 0.125 kv_groups = 1 causal : (tensor<1x2x1x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1xi32>) -> tensor<1x2x1x8xf32>
  return %o : tensor<1x2x1x8xf32>
}
func.func @value_rows(%q: tensor<1x2x1x8xf32>, %k: tensor<1x2x1x8xf32>, %v: tensor<1x2x2x8xf32>,
                      %kc: tensor<1x2x32x8xf32>, %vc: tensor<1x2x32x8xf32>, %start: tensor<1xi32>)
    -> tensor<1x2x1x8xf32> {
  %kw = gai.cache_write %kc, %k at %start : (tensor<1x2x32x8xf32>, tensor<1x2x1x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %vw = gai.cache_write %vc, %v at %start : (tensor<1x2x32x8xf32>, tensor<1x2x2x8xf32>, tensor<1xi32>) -> tensor<1x2x32x8xf32>
  %o = gai.flash_attention %q, %kw, %vw at %start scale = 0.125 kv_groups = 1 causal : (tensor<1x2x1x8xf32>, tensor<1x2x32x8xf32>, tensor<1x2x32x8xf32>, tensor<1xi32>) -> tensor<1x2x1x8xf32>
  return %o : tensor<1x2x1x8xf32>
}
