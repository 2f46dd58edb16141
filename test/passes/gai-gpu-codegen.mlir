// RUN: gai-opt %s --gai-gpu-codegen --split-input-file --verify-diagnostics | FileCheck %s
// RUN: gai-opt %s --gai-gpu-codegen="chip=sm_80" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=SM80
// RUN: not gai-opt %s --gai-gpu-codegen="chip=sm_70" --split-input-file 2>&1 | FileCheck %s --check-prefix=CHIP
// The way gaic runs it: lowered first (with GPU kernels), from gai IR.
// RUN: gai-opt %S/inputs/gemm-and-region.mlir --gai-lower-to-exec="gpu-kernels=true" --gai-gpu-codegen | FileCheck %s --check-prefix=PIPELINE

// No GPU is needed: the kernels become one PTX module, left on the module
// as exec.kernel_library with each kernel's [grid, block]. On sm_90 each
// kernel lets the next one start early and waits for the one before it
// (programmatic launch); on sm_80 neither.
// CHECK-LABEL: module @one_kernel attributes {exec.kernel_library = {code = "{{.*}}.target sm_90{{.*}}.visible .entry k0{{[a-z_]*}}({{.*}}.maxntid 256, 1, 1{{.*}}griddepcontrol.launch_dependents;{{.*}}griddepcontrol.wait;{{.*}}add.rn.f32{{.*}}\00", format = "ptx", kernels = ["k0{{[a-z_]*}}"], launch = [array<i64: 2, 256>], programmatic_launch = true, symbols = ["k0{{[a-z_]*}}"]}}
// CHECK:       func.func @k0{{[a-z_]*}}(
// CHECK:       exec.launch @k0
// SM80-LABEL: module @one_kernel attributes {exec.kernel_library = {code = "{{.*}}.target sm_80{{.*}}", format = "ptx", kernels = ["k0{{[a-z_]*}}"], launch = [array<i64: 2, 256>], programmatic_launch = false, symbols = ["k0{{[a-z_]*}}"]}}
// SM80-NOT:   griddepcontrol
// CHIP: error: cuda target 'sm_70': expected sm_80 or sm_90
module @one_kernel {
  func.func @k0(%a: memref<512xf32>, %b: memref<512xf32>) attributes {gai.block = 256 : i64, gai.grid = 2 : i64} {
    %c256 = arith.constant 256 : index
    %t = gpu.thread_id x
    %g = gpu.block_id x
    %base = arith.muli %g, %c256 : index
    %i = arith.addi %base, %t : index
    %x = memref.load %a[%i] : memref<512xf32>
    %y = arith.addf %x, %x : f32
    memref.store %y, %b[%i] : memref<512xf32>
    return
  }
  exec.entry @forward arena 0 {
    exec.input "x" : tensor<512xf32> at #exec.ref<input 0, 2048>
    exec.output "y" : tensor<512xf32> at #exec.ref<output 0, 2048>
    exec.launch @k0 [#exec.ref<input 0, 2048>, #exec.ref<output 0, 2048>]
  }
}

// -----

// An entry with library commands only has no kernels and no PTX.
// CHECK-LABEL: module @no_kernels attributes {exec.kernel_library = {code = "", format = "ptx", kernels = [], launch = [], programmatic_launch = true, symbols = []}}
// CHECK:       exec.gemm
module @no_kernels {
  exec.entry @forward arena 0 {
    exec.input "x" : tensor<2x8xf32> at #exec.ref<input 0, 64>
    exec.output "y" : tensor<2x4xf32> at #exec.ref<output 0, 32>
    exec.gemm {a = #exec.ref<input 0, 64>, activation = #exec<activation none>, b = #exec.ref<weights 0, 128>, batch = 1 : i64, bias = #exec.ref<arena 0, 0>, c = #exec.ref<output 0, 32>, element = f32, k = 8 : i64, m = 2 : i64, n = 4 : i64, residual = #exec.ref<arena 0, 0>, stride_a = 0 : i64, stride_b = 0 : i64, stride_c = 0 : i64, transpose_a = false, transpose_b = true}
  }
  exec.weight "w" : tensor<4x8xf32> at #exec.ref<weights 0, 128>
}

// -----

// A kernel lowered for the CPU has no launch shape and is reported.
// expected-error @+1 {{kernel 'k0' was not built for the GPU (no launch shape)}}
module @cpu_kernel {
  func.func @k0(%a: memref<4xf32>) {
    return
  }
}

// PIPELINE-LABEL: module @gemm_and_region attributes {exec.kernel_library = {code = "{{.*}}.visible .entry k0{{[a-z_]*}}({{.*}}", format = "ptx", kernels = ["k0{{[a-z_]*}}"], launch = [array<i64: {{[0-9]+}}, {{[0-9]+}}>], programmatic_launch = true, symbols = ["k0{{[a-z_]*}}"]}, exec.state_size = 0 : i64, exec.weights_size = 8192 : i64}
// PIPELINE:       exec.gemm
// PIPELINE-NEXT:  exec.launch @k0
// PIPELINE:       func.func @k0{{[a-z_]*}}({{.*}}) attributes {gai.block = {{[0-9]+}} : i64, gai.grid = {{[0-9]+}} : i64}
