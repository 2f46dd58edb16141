// A GEMM and a fusion region, for the codegen tests' lowering + codegen runs.
module @gemm_and_region {
  func.func @forward(%x: tensor<4x64xf32>) -> tensor<4x32xf32> {
    %w = gai.param "w" : tensor<32x64xf32>
    %y = gai.matmul %x, %w transpose_rhs : (tensor<4x64xf32>, tensor<32x64xf32>) -> tensor<4x32xf32>
    %z = gai.fusion %y : (tensor<4x32xf32>) -> tensor<4x32xf32> {
    ^bb0(%a: tensor<4x32xf32>):
      %0 = gai.silu %a : tensor<4x32xf32>
      gai.yield %0 : tensor<4x32xf32>
    }
    return %z : tensor<4x32xf32>
  }
}
