// RUN: gai-opt %s --gai-lower-to-exec="gpu-kernels=true e4m3-activation-rows=8" --split-input-file | FileCheck %s
// RUN: gai-opt %s --gai-lower-to-exec="gpu-kernels=true" --split-input-file | FileCheck %s --check-prefix=OFF

// An RMSNorm's bf16 result that only fp8 GEMMs read (q and k over one A):
// its kernel writes it in e4m3 (i8 memory) and each row's scale after the
// results; both GEMMs read the e4m3 bytes (16 x 64) and the scales, which
// sit in the same buffer after them.
// CHECK-LABEL: module @norm_to_fp8
// CHECK:       exec.launch @[[K:k0[a-z_]*]] [#exec.ref<input 0, 4096>, #exec.ref<weights 0, 256>, #exec.ref<arena [[Y:[0-9]+]], 1024>, #exec.ref<arena [[S:[0-9]+]], 64>]
// CHECK-NEXT:  exec.gemm {a = #exec.ref<arena [[Y]], 1024>, a_scale = #exec.ref<arena [[S]], 64>
// CHECK-SAME:    weight_format = #exec<weight_format fp8_e4m3>
// CHECK-NEXT:  exec.gemm {a = #exec.ref<arena [[Y]], 1024>, a_scale = #exec.ref<arena [[S]], 64>
// CHECK:       func.func @[[K]](%arg0: memref<16x64xf32>, %arg1: memref<64xf32>, %arg2: memref<16x64xi8>, %arg3: memref<16xf32>)
// The row's largest |x|, over the value as bf16 would store it:
// CHECK:         arith.truncf {{.*}} to vector<{{[0-9]+}}xbf16>
// CHECK:         math.absf
// CHECK:         vector.reduction <maximumf>
// CHECK:         gpu.shuffle xor
// CHECK:         arith.divf
// CHECK:         memref.store {{.*}}, %arg3[
// CHECK:         nvvm.convert.f32x2.to.f8x2 {{.*}} {rnd = #nvvm.fp_rnd_mode<rn>, sat = #nvvm.sat_mode<satfinite>} : i16(f8E4M3FN)
// CHECK:         vector.bitcast {{.*}} to vector<{{[0-9]+}}xi8>
// CHECK:         vector.store {{.*}}, %arg2[{{.*}} : memref<16x64xi8>, vector<4xi8>
// OFF-LABEL:   module @norm_to_fp8
// OFF-NOT:     a_scale
// OFF:         func.func @k0{{[a-z_]*}}(%arg0: memref<16x64xf32>, %arg1: memref<64xf32>, %arg2: memref<16x64xbf16>)
// OFF-NOT:     nvvm.convert
module @norm_to_fp8 {
  func.func @forward(%x: tensor<16x64xf32>) -> (tensor<16x32xbf16>, tensor<16x32xbf16>) {
    %n = gai.param "norm" : tensor<64xf32>
    %q = gai.param "q" : tensor<32x64xf8E4M3FN>
    %qs = gai.param "q_scale" : tensor<1xf32>
    %k = gai.param "k" : tensor<32x64xf8E4M3FN>
    %ks = gai.param "k_scale" : tensor<32xf32>
    %y = gai.fusion %x, %n : (tensor<16x64xf32>, tensor<64xf32>) -> tensor<16x64xbf16> {
    ^bb0(%a: tensor<16x64xf32>, %b: tensor<64xf32>):
      %0 = gai.rms_norm %a, %b eps = 1.0e-5 : (tensor<16x64xf32>, tensor<64xf32>) -> tensor<16x64xf32>
      %1 = gai.convert %0 : tensor<16x64xf32> to tensor<16x64xbf16>
      gai.yield %1 : tensor<16x64xbf16>
    }
    %wq = gai.dequantize fp8_e4m3 %q, %qs : (tensor<32x64xf8E4M3FN>, tensor<1xf32>) -> tensor<32x64xbf16>
    %wk = gai.dequantize fp8_e4m3 %k, %ks : (tensor<32x64xf8E4M3FN>, tensor<32xf32>) -> tensor<32x64xbf16>
    %pq = gai.matmul %y, %wq transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
    %pk = gai.matmul %y, %wk transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
    return %pq, %pk : tensor<16x32xbf16>, tensor<16x32xbf16>
  }
}

// -----

// An elementwise SwiGLU becomes a row kernel for its row's maximum; the
// GEMM reads it through a reshape.
// CHECK-LABEL: module @swiglu_to_fp8
// CHECK:       exec.gemm {a = #exec.ref<arena {{[0-9]+}}, 2048>, a_scale = #exec.ref<arena {{[0-9]+}}, 64>
// CHECK:       func.func @k0{{[a-z_]*}}(%arg0: memref<1x16x128xbf16>, %arg1: memref<1x16x128xbf16>, %arg2: memref<1x16x128xi8>, %arg3: memref<1x16xf32>)
// CHECK:         vector.reduction <maximumf>
// CHECK:         memref.store {{.*}}, %arg3[
// CHECK:         vector.store {{.*}}, %arg2[{{.*}} : memref<1x16x128xi8>, vector<8xi8>
module @swiglu_to_fp8 {
  func.func @forward(%g: tensor<1x16x128xbf16>, %u: tensor<1x16x128xbf16>) -> tensor<16x32xbf16> {
    %d = gai.param "down" : tensor<32x128xf8E4M3FN>
    %ds = gai.param "down_scale" : tensor<1xf32>
    %h = gai.fusion %g, %u : (tensor<1x16x128xbf16>, tensor<1x16x128xbf16>) -> tensor<1x16x128xbf16> {
    ^bb0(%a: tensor<1x16x128xbf16>, %b: tensor<1x16x128xbf16>):
      %0 = gai.silu %a : tensor<1x16x128xbf16>
      %1 = gai.mul %0, %b : (tensor<1x16x128xbf16>, tensor<1x16x128xbf16>) -> tensor<1x16x128xbf16>
      gai.yield %1 : tensor<1x16x128xbf16>
    }
    %h2 = gai.reshape %h : tensor<1x16x128xbf16> to tensor<16x128xbf16>
    %wd = gai.dequantize fp8_e4m3 %d, %ds : (tensor<32x128xf8E4M3FN>, tensor<1xf32>) -> tensor<32x128xbf16>
    %p = gai.matmul %h2, %wd transpose_rhs : (tensor<16x128xbf16>, tensor<32x128xbf16>) -> tensor<16x32xbf16>
    return %p : tensor<16x32xbf16>
  }
}

// -----

// Near misses, each kept in bf16 for the GEMM to convert: 8 rows (the
// decode GEMV reads bf16 A), K not a multiple of 16, a reader that is not
// an fp8 GEMM (int8 weights), and a result that is also returned.
// CHECK-LABEL: module @near_misses
// CHECK-NOT:   a_scale
// CHECK-NOT:   xi8>
// CHECK-LABEL: func.func @k
module @near_misses {
  func.func @eight_rows(%x: tensor<8x64xbf16>) -> tensor<8x32xbf16> {
    %q = gai.param "q" : tensor<32x64xf8E4M3FN>
    %qs = gai.param "q_scale" : tensor<1xf32>
    %y = gai.fusion %x : (tensor<8x64xbf16>) -> tensor<8x64xbf16> {
    ^bb0(%a: tensor<8x64xbf16>):
      %0 = gai.silu %a : tensor<8x64xbf16>
      gai.yield %0 : tensor<8x64xbf16>
    }
    %w = gai.dequantize fp8_e4m3 %q, %qs : (tensor<32x64xf8E4M3FN>, tensor<1xf32>) -> tensor<32x64xbf16>
    %p = gai.matmul %y, %w transpose_rhs : (tensor<8x64xbf16>, tensor<32x64xbf16>) -> tensor<8x32xbf16>
    return %p : tensor<8x32xbf16>
  }
  func.func @k_of_24(%x: tensor<16x24xbf16>) -> tensor<16x32xbf16> {
    %q = gai.param "q24" : tensor<32x24xf8E4M3FN>
    %qs = gai.param "q24_scale" : tensor<1xf32>
    %y = gai.fusion %x : (tensor<16x24xbf16>) -> tensor<16x24xbf16> {
    ^bb0(%a: tensor<16x24xbf16>):
      %0 = gai.silu %a : tensor<16x24xbf16>
      gai.yield %0 : tensor<16x24xbf16>
    }
    %w = gai.dequantize fp8_e4m3 %q, %qs : (tensor<32x24xf8E4M3FN>, tensor<1xf32>) -> tensor<32x24xbf16>
    %p = gai.matmul %y, %w transpose_rhs : (tensor<16x24xbf16>, tensor<32x24xbf16>) -> tensor<16x32xbf16>
    return %p : tensor<16x32xbf16>
  }
  func.func @int8_reader(%x: tensor<16x64xbf16>) -> (tensor<16x32xbf16>, tensor<16x32xbf16>) {
    %q = gai.param "q" : tensor<32x64xf8E4M3FN>
    %qs = gai.param "q_scale" : tensor<1xf32>
    %i = gai.param "i" : tensor<32x64xi8>
    %is = gai.param "i_scale" : tensor<32xf32>
    %y = gai.fusion %x : (tensor<16x64xbf16>) -> tensor<16x64xbf16> {
    ^bb0(%a: tensor<16x64xbf16>):
      %0 = gai.silu %a : tensor<16x64xbf16>
      gai.yield %0 : tensor<16x64xbf16>
    }
    %w = gai.dequantize fp8_e4m3 %q, %qs : (tensor<32x64xf8E4M3FN>, tensor<1xf32>) -> tensor<32x64xbf16>
    %wi = gai.dequantize int8 %i, %is : (tensor<32x64xi8>, tensor<32xf32>) -> tensor<32x64xbf16>
    %p = gai.matmul %y, %w transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
    %pi = gai.matmul %y, %wi transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
    return %p, %pi : tensor<16x32xbf16>, tensor<16x32xbf16>
  }
  func.func @returned(%x: tensor<16x64xbf16>) -> (tensor<16x32xbf16>, tensor<16x64xbf16>) {
    %q = gai.param "q" : tensor<32x64xf8E4M3FN>
    %qs = gai.param "q_scale" : tensor<1xf32>
    %y = gai.fusion %x : (tensor<16x64xbf16>) -> tensor<16x64xbf16> {
    ^bb0(%a: tensor<16x64xbf16>):
      %0 = gai.silu %a : tensor<16x64xbf16>
      gai.yield %0 : tensor<16x64xbf16>
    }
    %w = gai.dequantize fp8_e4m3 %q, %qs : (tensor<32x64xf8E4M3FN>, tensor<1xf32>) -> tensor<32x64xbf16>
    %p = gai.matmul %y, %w transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
    return %p, %y : tensor<16x32xbf16>, tensor<16x64xbf16>
  }
}
