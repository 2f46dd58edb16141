// RUN: gai-opt %s --gai-cpu-codegen --split-input-file --verify-diagnostics | FileCheck %s
// RUN: not gai-opt %s --gai-cpu-codegen="linker=%t.no-such-linker" --split-input-file 2>&1 | FileCheck %s --check-prefix=LINKER
// The way gaic runs it: lowered first, from gai IR.
// RUN: gai-opt %S/inputs/gemm-and-region.mlir --gai-lower-to-exec --gai-cpu-codegen | FileCheck %s --check-prefix=PIPELINE

// The kernels become one shared object with an exported gai_<kernel> each,
// left on the module as exec.kernel_library; the kernels and commands stay.
// CHECK-LABEL: module @one_kernel attributes {exec.kernel_library = {code = "\7FELF{{.*}}", format = "elf-shared-object", kernels = ["k0{{[a-z_]*}}"], launch = [], programmatic_launch = false, symbols = ["gai_k0{{[a-z_]*}}"]}}
// CHECK:       func.func @k0{{[a-z_]*}}(
// CHECK:       exec.launch @k0
// LINKER: error: linking the kernels with {{.*}}.no-such-linker failed
module @one_kernel {
  func.func @k0(%a: memref<16xf32>, %b: memref<16xf32>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c16 = arith.constant 16 : index
    scf.for %i = %c0 to %c16 step %c1 {
      %x = memref.load %a[%i] : memref<16xf32>
      %y = math.exp %x : f32
      memref.store %y, %b[%i] : memref<16xf32>
    }
    return
  }
  exec.entry @forward arena 0 {
    exec.input "x" : tensor<16xf32> at #exec.ref<input 0, 64>
    exec.output "y" : tensor<16xf32> at #exec.ref<output 0, 64>
    exec.launch @k0 [#exec.ref<input 0, 64>, #exec.ref<output 0, 64>]
  }
}

// -----

// Kernels and symbols keep the module's order.
// CHECK-LABEL: module @two_kernels attributes {exec.kernel_library = {{{.*}}kernels = ["k0{{[a-z_]*}}", "k1{{[a-z_]*}}"], {{.*}}symbols = ["gai_k0{{[a-z_]*}}", "gai_k1{{[a-z_]*}}"]}}
module @two_kernels {
  func.func @k0(%a: memref<4xf32>) {
    return
  }
  func.func @k1(%a: memref<4xf32>, %b: memref<4xf32>) {
    %c0 = arith.constant 0 : index
    %x = memref.load %a[%c0] : memref<4xf32>
    memref.store %x, %b[%c0] : memref<4xf32>
    return
  }
  exec.entry @forward arena 0 {
    exec.input "x" : tensor<4xf32> at #exec.ref<input 0, 16>
    exec.output "y" : tensor<4xf32> at #exec.ref<output 0, 16>
    exec.launch @k0 [#exec.ref<input 0, 16>]
    exec.launch @k1 [#exec.ref<input 0, 16>, #exec.ref<output 0, 16>]
  }
}

// -----

// A kernel that is not over memrefs (not from the lowering) is reported.
// expected-error @+1 {{kernel 'k0' did not lower to an LLVM function}}
module @tensor_kernel {
  func.func @k0(%a: tensor<16xf32>) -> tensor<16xf32> {
    return %a : tensor<16xf32>
  }
}

// PIPELINE-LABEL: module @gemm_and_region attributes {exec.kernel_library = {code = "\7FELF{{.*}}", format = "elf-shared-object", kernels = ["k0{{[a-z_]*}}"], launch = [], programmatic_launch = false, symbols = ["gai_k0{{[a-z_]*}}"]}, exec.state_size = 0 : i64, exec.weights_size = 8192 : i64}
// PIPELINE:       exec.gemm
// PIPELINE-NEXT:  exec.launch @k0
// PIPELINE:       func.func @k0{{[a-z_]*}}(
