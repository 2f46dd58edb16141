// RUN: gai-opt %s --gai-attention-layout --split-input-file | FileCheck %s
// RUN: gai-opt %s --gai-attention-layout=tensor-core-forward --split-input-file | FileCheck %s --check-prefix=CUDA
// RUN: gai-opt %s --gai-attention-layout=rope-token-major --split-input-file | FileCheck %s --check-prefix=ROPE

// GPT-2's packed projection: the three head transposes and the output's go;
// the slices stay (the exec lowering makes them views).
// CHECK-LABEL: func.func @packed_projection
// CHECK: %[[Q:.*]] = gai.reshape %{{.*}} : tensor<2x8x64xf32> to tensor<2x8x4x16xf32>
// CHECK: %[[K:.*]] = gai.reshape
// CHECK: %[[V:.*]] = gai.reshape
// CHECK: %[[O:.*]] = gai.flash_attention %[[Q]], %[[K]], %[[V]] scale = 2.500000e-01 kv_groups = 1 causal {token_major = array<i1: true, true, true, true>} : (tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>, tensor<2x8x4x16xf32>) -> tensor<2x8x4x16xf32>
// CHECK-NOT: gai.transpose
// CHECK: gai.reshape %[[O]] : tensor<2x8x4x16xf32> to tensor<2x8x64xf32>
// A small f32 forward is not the tensor-core kernel's: left as it was.
// CUDA-LABEL: func.func @packed_projection
// CUDA-COUNT-4: gai.transpose
// CUDA-NOT: token_major
func.func @packed_projection(%qkv: tensor<2x8x192xf32>) -> tensor<2x8x64xf32> {
  %qs = gai.slice %qkv offsets = [0, 0, 0] sizes = [2, 8, 64] : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  %ks = gai.slice %qkv offsets = [0, 0, 64] sizes = [2, 8, 64] : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  %vs = gai.slice %qkv offsets = [0, 0, 128] sizes = [2, 8, 64] : (tensor<2x8x192xf32>) -> tensor<2x8x64xf32>
  %q4 = gai.reshape %qs : tensor<2x8x64xf32> to tensor<2x8x4x16xf32>
  %k4 = gai.reshape %ks : tensor<2x8x64xf32> to tensor<2x8x4x16xf32>
  %v4 = gai.reshape %vs : tensor<2x8x64xf32> to tensor<2x8x4x16xf32>
  %q = gai.transpose %q4 permutation = [0, 2, 1, 3] : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
  %k = gai.transpose %k4 permutation = [0, 2, 1, 3] : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
  %v = gai.transpose %v4 permutation = [0, 2, 1, 3] : (tensor<2x8x4x16xf32>) -> tensor<2x4x8x16xf32>
  %o = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 1 causal : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  %ot = gai.transpose %o permutation = [0, 2, 1, 3] : (tensor<2x4x8x16xf32>) -> tensor<2x8x4x16xf32>
  %r = gai.reshape %ot : tensor<2x8x4x16xf32> to tensor<2x8x64xf32>
  return %r : tensor<2x8x64xf32>
}

// -----

// A training step's pair under GQA: q and k come out of RoPE head-major and
// stay so; v, the output, the output's gradient and v's gradient go
// token-major. The backward reads the new output; dq and dk, read by other
// ops than transposes, stay head-major.
// CHECK-LABEL: func.func @train_pair
// CHECK: %[[O:.*]], %[[LSE:.*]] = gai.flash_attention %[[Q:.*]], %[[K:.*]], %[[V:.*]] scale = 1.250000e-01 kv_groups = 2 causal with_lse {token_major = array<i1: false, false, true, true>} : (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x64x2x64xbf16>) -> (tensor<1x64x4x64xbf16>, tensor<1x4x64xf32>)
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = gai.flash_attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %{{.*}} scale = 1.250000e-01 kv_groups = 2 causal {token_major = array<i1: false, false, true, true, true, false, false, true>} : ({{.*}}) -> (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x64x2x64xbf16>)
// CHECK-NOT: gai.transpose
// CHECK: gai.neg %[[DQ]]
// CHECK: gai.neg %[[DK]]
// CHECK: gai.reshape %[[DV]]
// The tensor-core forward takes this one (bf16, head dim 64, 64 queries).
// CUDA-LABEL: func.func @train_pair
// CUDA: gai.flash_attention {{.*}} {token_major = array<i1: false, false, true, true>}
func.func @train_pair(%q: tensor<1x4x64x64xbf16>, %k: tensor<1x2x64x64xbf16>, %vp: tensor<1x64x128xbf16>, %dy: tensor<1x64x256xbf16>)
    -> (tensor<1x64x256xbf16>, tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x64x128xbf16>) {
  %v4 = gai.reshape %vp : tensor<1x64x128xbf16> to tensor<1x64x2x64xbf16>
  %v = gai.transpose %v4 permutation = [0, 2, 1, 3] : (tensor<1x64x2x64xbf16>) -> tensor<1x2x64x64xbf16>
  %o, %lse = gai.flash_attention %q, %k, %v scale = 0.125 kv_groups = 2 causal with_lse : (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>) -> (tensor<1x4x64x64xbf16>, tensor<1x4x64xf32>)
  %ot = gai.transpose %o permutation = [0, 2, 1, 3] : (tensor<1x4x64x64xbf16>) -> tensor<1x64x4x64xbf16>
  %y = gai.reshape %ot : tensor<1x64x4x64xbf16> to tensor<1x64x256xbf16>
  %dy4 = gai.reshape %dy : tensor<1x64x256xbf16> to tensor<1x64x4x64xbf16>
  %do = gai.transpose %dy4 permutation = [0, 2, 1, 3] : (tensor<1x64x4x64xbf16>) -> tensor<1x4x64x64xbf16>
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %do scale = 0.125 kv_groups = 2 causal : (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x4x64x64xbf16>, tensor<1x4x64xf32>, tensor<1x4x64x64xbf16>) -> (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>)
  %nq = gai.neg %dq : tensor<1x4x64x64xbf16>
  %nk = gai.neg %dk : tensor<1x2x64x64xbf16>
  %dvt = gai.transpose %dv permutation = [0, 2, 1, 3] : (tensor<1x2x64x64xbf16>) -> tensor<1x64x2x64xbf16>
  %dvr = gai.reshape %dvt : tensor<1x64x2x64xbf16> to tensor<1x64x128xbf16>
  return %y, %nq, %nk, %dvr : tensor<1x64x256xbf16>, tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x64x128xbf16>
}

// -----

// Near misses: a transpose of other axes, and an output also read by an
// op other than a head transpose, keep their layouts.
// CHECK-LABEL: func.func @near_misses
// CHECK: gai.transpose %{{.*}} permutation = [0, 1, 3, 2]
// CHECK: gai.flash_attention %{{.*}} {token_major = array<i1: false, true, false, false>} : (tensor<1x2x8x8xf32>, tensor<1x8x2x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK: gai.transpose %{{.*}} permutation = [0, 2, 1, 3]
// CHECK: gai.neg
func.func @near_misses(%q: tensor<1x2x8x8xf32>, %kt: tensor<1x8x2x8xf32>, %vs: tensor<1x2x8x8xf32>) -> (tensor<1x8x2x8xf32>, tensor<1x2x8x8xf32>) {
  %k = gai.transpose %kt permutation = [0, 2, 1, 3] : (tensor<1x8x2x8xf32>) -> tensor<1x2x8x8xf32>
  %v = gai.transpose %vs permutation = [0, 1, 3, 2] : (tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %o = gai.flash_attention %q, %k, %v scale = 0.25 kv_groups = 1 causal : (tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
  %ot = gai.transpose %o permutation = [0, 2, 1, 3] : (tensor<1x2x8x8xf32>) -> tensor<1x8x2x8xf32>
  %n = gai.neg %o : tensor<1x2x8x8xf32>
  return %ot, %n : tensor<1x8x2x8xf32>, tensor<1x2x8x8xf32>
}

// -----

// A prefill over a KV cache (query positions): q and the output go
// token-major; k and v, the caches, stay head-major.
// CHECK-LABEL: func.func @prefill
// CHECK: gai.flash_attention %{{.*}}, %{{.*}}, %{{.*}} at %{{.*}} scale = 2.500000e-01 kv_groups = 1 causal {token_major = array<i1: true, false, false, true>} : (tensor<1x4x2x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1xi32>) -> tensor<1x4x2x8xf32>
// CHECK-NOT: gai.transpose
func.func @prefill(%qp: tensor<1x4x16xf32>, %kc: tensor<1x2x16x8xf32>, %vc: tensor<1x2x16x8xf32>, %pos: tensor<1xi32>) -> tensor<1x4x16xf32> {
  %q4 = gai.reshape %qp : tensor<1x4x16xf32> to tensor<1x4x2x8xf32>
  %q = gai.transpose %q4 permutation = [0, 2, 1, 3] : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
  %o = gai.flash_attention %q, %kc, %vc at %pos scale = 0.25 kv_groups = 1 causal : (tensor<1x2x4x8xf32>, tensor<1x2x16x8xf32>, tensor<1x2x16x8xf32>, tensor<1xi32>) -> tensor<1x2x4x8xf32>
  %ot = gai.transpose %o permutation = [0, 2, 1, 3] : (tensor<1x2x4x8xf32>) -> tensor<1x4x2x8xf32>
  %r = gai.reshape %ot : tensor<1x4x2x8xf32> to tensor<1x4x16xf32>
  return %r : tensor<1x4x16xf32>
}

// -----

// The q and k gradients rotated back by RoPE before their head transposes:
// with rope-token-major the gradients are transposed first and rotated
// token-major, so the backward writes dq and dk [B, T, H, D] and no
// transpose is left. dk's second reader (a neg) keeps it head-major:
// its RoPE stays as it was. Without the option nothing changes there.
// CHECK-LABEL: func.func @gradient_rope
// CHECK: gai.rope half %{{.*}}, %[[P:.*]] theta
// CHECK: gai.transpose
// ROPE-LABEL: func.func @gradient_rope
// ROPE: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = gai.flash_attention_grad {{.*}} {token_major = array<i1: false, false, false, false, false, true, false, false>} : ({{.*}}) -> (tensor<1x64x4x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>)
// ROPE-NEXT: %[[RQ:.*]] = gai.rope half token_major %[[DQ]], %{{.*}} theta = 1.000000e+04 : (tensor<1x64x4x64xbf16>, tensor<1x64xi32>) -> tensor<1x64x4x64xbf16>
// ROPE-NEXT: gai.rope half %[[DK]], %{{.*}} theta = 1.000000e+04 : (tensor<1x2x64x64xbf16>, tensor<1x64xi32>) -> tensor<1x2x64x64xbf16>
// ROPE-NEXT: gai.transpose
// ROPE-NEXT: gai.neg %[[DK]]
// ROPE-NEXT: gai.reshape %[[RQ]]
func.func @gradient_rope(%q: tensor<1x4x64x64xbf16>, %k: tensor<1x2x64x64xbf16>, %v: tensor<1x2x64x64xbf16>, %o: tensor<1x4x64x64xbf16>, %lse: tensor<1x4x64xf32>, %do: tensor<1x4x64x64xbf16>, %pos: tensor<1x64xi32>)
    -> (tensor<1x64x256xbf16>, tensor<1x64x2x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>) {
  %dq, %dk, %dv = gai.flash_attention_grad %q, %k, %v, %o, %lse, %do scale = 0.125 kv_groups = 2 causal : (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x4x64x64xbf16>, tensor<1x4x64xf32>, tensor<1x4x64x64xbf16>) -> (tensor<1x4x64x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>)
  %rq = gai.rope half %dq, %pos theta = 10000.0 : (tensor<1x4x64x64xbf16>, tensor<1x64xi32>) -> tensor<1x4x64x64xbf16>
  %tq = gai.transpose %rq permutation = [0, 2, 1, 3] : (tensor<1x4x64x64xbf16>) -> tensor<1x64x4x64xbf16>
  %rk = gai.rope half %dk, %pos theta = 10000.0 : (tensor<1x2x64x64xbf16>, tensor<1x64xi32>) -> tensor<1x2x64x64xbf16>
  %tk = gai.transpose %rk permutation = [0, 2, 1, 3] : (tensor<1x2x64x64xbf16>) -> tensor<1x64x2x64xbf16>
  %nk = gai.neg %dk : tensor<1x2x64x64xbf16>
  %yq = gai.reshape %tq : tensor<1x64x4x64xbf16> to tensor<1x64x256xbf16>
  return %yq, %tk, %nk, %dv : tensor<1x64x256xbf16>, tensor<1x64x2x64xbf16>, tensor<1x2x64x64xbf16>, tensor<1x2x64x64xbf16>
}
