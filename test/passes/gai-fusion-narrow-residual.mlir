// RUN: gai-opt %s --gai-fusion="narrow-residual-rows=8 norm-fold-rows=8" | FileCheck %s
// RUN: gai-opt %s --gai-fusion | FileCheck %s --check-prefix=OFF
// RUN: not gai-opt %s --gai-fusion="narrow-residual-rows=-1" 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: not gai-opt %s --gai-fusion="norm-fold-rows=-2" 2>&1 | FileCheck %s --check-prefix=FOLD

// NEGATIVE: error: gai-fusion: narrow-residual-rows must be 0 (off) or a row count, not -1
// FOLD: error: gai-fusion: norm-fold-rows must be -1 (every norm) or a row count, not -2

// A 2:4 product of 16 rows into an f32 residual stream, then the stream's
// next RMSNorm: the GEMM stays a bf16 product (what cuSPARSELt writes),
// and the widened add joins the norm's kernel, which returns both the new
// residual and the normed bf16 (a norm of more than 8 rows is not kept for
// the decode fold).
// CHECK-LABEL: func.func @prefill_rows
// CHECK:         %[[P:.*]] = gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
// CHECK-NOT:     gai.gemm
// CHECK:         %[[K:.*]]:2 = gai.fusion %[[P]], %{{.*}}, %{{.*}} : (tensor<16x32xbf16>, tensor<16x32xf32>, tensor<32xf32>) -> (tensor<16x32xbf16>, tensor<16x32xf32>)
// CHECK:           gai.add
// CHECK:           gai.rms_norm
// CHECK:         return %[[K]]#0, %[[K]]#1
// Off (the CPU target): the GEMM adds its unrounded product.
// OFF-LABEL: func.func @prefill_rows
// OFF:         gai.gemm %{{.*}}, %{{.*}} residual %{{.*}} transpose_rhs {{.*}}-> tensor<16x32xf32>
func.func @prefill_rows(%x: tensor<16x64xbf16>, %wv: tensor<32x32xbf16>, %wm: tensor<32x8xi8>,
                        %r: tensor<16x32xf32>, %nw: tensor<32xf32>) -> (tensor<16x32xbf16>, tensor<16x32xf32>) {
  %w = gai.decompress %wv, %wm : (tensor<32x32xbf16>, tensor<32x8xi8>) -> tensor<32x64xbf16>
  %p = gai.matmul %x, %w transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
  %pf = gai.convert %p : tensor<16x32xbf16> to tensor<16x32xf32>
  %s = gai.add %r, %pf : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  %n = gai.rms_norm %s, %nw eps = 1.0e-5 : (tensor<16x32xf32>, tensor<32xf32>) -> tensor<16x32xf32>
  %nb = gai.convert %n : tensor<16x32xf32> to tensor<16x32xbf16>
  return %nb, %s : tensor<16x32xbf16>, tensor<16x32xf32>
}

// Decode-sized (8 rows): the GEMV reads 2:4 weights as they are and adds
// the residual in its epilogue; the norm stays alone for the fold.
// CHECK-LABEL: func.func @decode_rows
// CHECK:         gai.gemm %{{.*}}, %{{.*}} residual %{{.*}} transpose_rhs {{.*}}-> tensor<8x32xf32>
// CHECK:         gai.fusion
// CHECK-NEXT:    ^bb0
// CHECK-NEXT:      gai.rms_norm
func.func @decode_rows(%x: tensor<8x64xbf16>, %wv: tensor<32x32xbf16>, %wm: tensor<32x8xi8>,
                       %r: tensor<8x32xf32>, %nw: tensor<32xf32>) -> (tensor<8x32xbf16>, tensor<8x32xf32>) {
  %w = gai.decompress %wv, %wm : (tensor<32x32xbf16>, tensor<32x8xi8>) -> tensor<32x64xbf16>
  %p = gai.matmul %x, %w transpose_rhs : (tensor<8x64xbf16>, tensor<32x64xbf16>) -> tensor<8x32xbf16>
  %pf = gai.convert %p : tensor<8x32xbf16> to tensor<8x32xf32>
  %s = gai.add %r, %pf : (tensor<8x32xf32>, tensor<8x32xf32>) -> tensor<8x32xf32>
  %n = gai.rms_norm %s, %nw eps = 1.0e-5 : (tensor<8x32xf32>, tensor<32xf32>) -> tensor<8x32xf32>
  %nb = gai.convert %n : tensor<8x32xf32> to tensor<8x32xbf16>
  return %nb, %s : tensor<8x32xbf16>, tensor<8x32xf32>
}

// An fp8 product of 16 rows: the same as 2:4 (cuBLASLt's fp8 GEMM is fast
// with a bf16 result only).
// CHECK-LABEL: func.func @fp8_rows
// CHECK:         %[[P:.*]] = gai.matmul %{{.*}}, %{{.*}} transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
// CHECK-NOT:     gai.gemm
// CHECK:         gai.fusion %[[P]]
// OFF-LABEL: func.func @fp8_rows
// OFF:         gai.gemm %{{.*}}, %{{.*}} residual %{{.*}} transpose_rhs {{.*}}-> tensor<16x32xf32>
func.func @fp8_rows(%x: tensor<16x64xbf16>, %q: tensor<32x64xf8E4M3FN>, %s: tensor<1xf32>,
                    %r: tensor<16x32xf32>, %nw: tensor<32xf32>) -> (tensor<16x32xbf16>, tensor<16x32xf32>) {
  %w = gai.dequantize fp8_e4m3 %q, %s : (tensor<32x64xf8E4M3FN>, tensor<1xf32>) -> tensor<32x64xbf16>
  %p = gai.matmul %x, %w transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
  %pf = gai.convert %p : tensor<16x32xbf16> to tensor<16x32xf32>
  %sum = gai.add %r, %pf : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  %n = gai.rms_norm %sum, %nw eps = 1.0e-5 : (tensor<16x32xf32>, tensor<32xf32>) -> tensor<16x32xf32>
  %nb = gai.convert %n : tensor<16x32xf32> to tensor<16x32xbf16>
  return %nb, %sum : tensor<16x32xbf16>, tensor<16x32xf32>
}

// int8 weights go through our dequantizing kernels, which take an f32 C:
// the residual stays in the GEMM.
// CHECK-LABEL: func.func @int8_rows
// CHECK:         gai.gemm %{{.*}}, %{{.*}} residual %{{.*}} transpose_rhs {{.*}}-> tensor<16x32xf32>
func.func @int8_rows(%x: tensor<16x64xbf16>, %q: tensor<32x64xi8>, %s: tensor<32xf32>,
                     %r: tensor<16x32xf32>) -> tensor<16x32xf32> {
  %w = gai.dequantize int8 %q, %s : (tensor<32x64xi8>, tensor<32xf32>) -> tensor<32x64xbf16>
  %p = gai.matmul %x, %w transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
  %pf = gai.convert %p : tensor<16x32xbf16> to tensor<16x32xf32>
  %sum = gai.add %r, %pf : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  return %sum : tensor<16x32xf32>
}

// A dense weight keeps the residual in its GEMM at any row count.
// CHECK-LABEL: func.func @dense_rows
// CHECK:         gai.gemm %{{.*}}, %{{.*}} residual %{{.*}} transpose_rhs {{.*}}-> tensor<16x32xf32>
func.func @dense_rows(%x: tensor<16x64xbf16>, %w: tensor<32x64xbf16>, %r: tensor<16x32xf32>) -> tensor<16x32xf32> {
  %p = gai.matmul %x, %w transpose_rhs : (tensor<16x64xbf16>, tensor<32x64xbf16>) -> tensor<16x32xbf16>
  %pf = gai.convert %p : tensor<16x32xbf16> to tensor<16x32xf32>
  %s = gai.add %r, %pf : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  return %s : tensor<16x32xf32>
}
