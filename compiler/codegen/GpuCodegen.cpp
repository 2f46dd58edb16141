// GPU kernels → gpu.module → NVVM → PTX (gpu-module-to-binary, format isa).
#include "compiler/codegen/GpuCodegen.h"

#include "compiler/codegen/GpuFusionKernels.h"
#include "compiler/codegen/RunPasses.h"
#include "dialects/Exec/ExecOps.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetOperations.h"
#include "llvm/ADT/StringMap.h"

#include <cstdlib>

using namespace mlir;

namespace gai {

namespace {

/// griddepcontrol.wait as inline PTX that clobbers memory: LLVM's intrinsic
/// for it touches no memory, so LLVM would be free to move loads across it,
/// an activation's above it (a race) or a weight's below it (no overlap).
void waitForPriorKernel(OpBuilder &b, Location loc) {
  MLIRContext *context = b.getContext();
  LLVM::InlineAsmOp::create(
      b, loc, /*res=*/Type(), ValueRange(), b.getStringAttr("griddepcontrol.wait;"),
      b.getStringAttr("~{memory}"), b.getUnitAttr(), /*is_align_stack=*/UnitAttr(),
      LLVM::TailCallKindAttr::get(context, LLVM::tailcallkind::TailCallKind::None),
      LLVM::AsmDialectAttr::get(context, LLVM::AsmDialect::AD_ATT), ArrayAttr());
}

} // namespace

FailureOr<KernelLibrary> buildGpuKernels(ModuleOp execModule,
                                         const GpuCodegenOptions &options,
                                         std::string &error) {
  if (options.chip != "sm_80" && options.chip != "sm_90") {
    error = "cuda target '" + options.chip + "': expected sm_80 or sm_90";
    return failure();
  }
  MLIRContext *context = execModule.getContext();
  DialectRegistry registry;
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  // convert-gpu-to-nvvm lowers the other dialects through these.
  arith::registerConvertArithToLLVMInterface(registry);
  cf::registerConvertControlFlowToLLVMInterface(registry);
  registerConvertFuncToLLVMInterface(registry);
  registerConvertMathToLLVMInterface(registry);
  registerConvertMemRefToLLVMInterface(registry);
  ub::registerConvertUBToLLVMInterface(registry);
  vector::registerConvertVectorToLLVMInterface(registry);
  registerConvertNVVMToLLVMInterface(registry);
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  context->appendDialectRegistry(registry);
  context->loadDialect<gpu::GPUDialect, LLVM::LLVMDialect, NVVM::NVVMDialect>();

  KernelLibrary library;
  library.format = "ptx";
  library.programmaticLaunch = options.chip == "sm_90";
  OwningOpRef<ModuleOp> module = ModuleOp::create(execModule.getLoc());
  (*module)->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                     UnitAttr::get(context));
  OpBuilder b(context);
  b.setInsertionPointToEnd(module->getBody());
  auto target = NVVM::NVVMTargetAttr::get(context, /*optLevel=*/3,
                                          "nvptx64-nvidia-cuda", options.chip);
  auto gpuModule = gpu::GPUModuleOp::create(b, execModule.getLoc(), "gai_kernels",
                                            b.getArrayAttr({target}));
  b.setInsertionPointToStart(gpuModule.getBody());
  for (auto table : execModule.getOps<memref::GlobalOp>()) // RoPE frequency tables
    b.clone(*table);
  // Each kernel's arguments that every launch of it passes weights.
  llvm::StringMap<llvm::SmallDenseSet<int64_t>> weightArgs;
  execModule.walk([&](exec::LaunchOp launch) {
    llvm::SmallDenseSet<int64_t> here;
    for (auto [i, ref] : llvm::enumerate(launch.getArgs().getAsRange<exec::RefAttr>()))
      if (ref.getSpace() == exec::Space::Weights)
        here.insert(static_cast<int64_t>(i));
    auto [it, first] = weightArgs.try_emplace(launch.getKernel(), here);
    if (!first)
      llvm::set_intersect(it->second, here);
  });
  for (auto kernel : execModule.getOps<func::FuncOp>()) {
    auto grid = kernel->getAttrOfType<IntegerAttr>(kGridAttr);
    auto block = kernel->getAttrOfType<IntegerAttr>(kBlockAttr);
    if (!grid || !block) {
      error = "kernel '" + kernel.getSymName().str() +
              "' was not built for the GPU (no launch shape)";
      return failure();
    }
    auto func = gpu::GPUFuncOp::create(b, kernel.getLoc(), kernel.getSymName(),
                                       kernel.getFunctionType());
    func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
    func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr(
        {static_cast<int32_t>(block.getInt()), 1, 1}));
    // The new function's entry block already has the arguments: map the
    // kernel's body onto it, returning with gpu.return.
    IRMapping map;
    Block &from = kernel.getBody().front();
    Block &to = func.getBody().front();
    map.map(from.getArguments(), to.getArguments());
    OpBuilder inner = OpBuilder::atBlockEnd(&to);
    // Programmatic dependent launch (sm_90): the next kernel may start now
    // (a GEMV streams its weights meanwhile), and this one, itself launched
    // early, waits for the kernel before it before touching memory, but
    // for its loads of weights (no kernel writes those).
    bool waited = !library.programmaticLaunch;
    if (library.programmaticLaunch)
      NVVM::GriddepcontrolOp::create(inner, kernel.getLoc(),
                                     NVVM::GridDepActionKind::launch_dependents);
    const llvm::SmallDenseSet<int64_t> &weights = weightArgs[kernel.getSymName()];
    for (Operation &op : from) {
      if (!waited) {
        auto preload = op.getAttrOfType<IntegerAttr>(kPreloadAttr);
        bool early = (isMemoryEffectFree(&op) && !op.hasTrait<OpTrait::IsTerminator>()) ||
                     (preload && weights.contains(preload.getInt()));
        if (!early) {
          waitForPriorKernel(inner, kernel.getLoc());
          waited = true;
        }
      }
      if (isa<func::ReturnOp>(op))
        gpu::ReturnOp::create(inner, op.getLoc());
      else
        inner.clone(op, map);
    }
    library.kernels.push_back(kernel.getSymName().str());
    library.symbols.push_back(kernel.getSymName().str());
    library.launch.emplace_back(grid.getInt(), block.getInt());
  }
  if (library.kernels.empty())
    return library;

  PassManager pm(context);
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions nvvm;
  nvvm.useBarePtrCallConv = true; // static shapes: a pointer per buffer
  kernels.addPass(createConvertGpuOpsToNVVMOps(nvvm));
  pm.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa"; // PTX text; the driver finishes it
  binary.toolkitPath = options.toolkitPath;
  if (binary.toolkitPath.empty()) {
    const char *env = std::getenv("GAI_CUDA_PATH");
    binary.toolkitPath = env ? env : GAI_CUDA_TOOLKIT_PATH;
  }
  pm.addPass(createGpuModuleToBinaryPass(binary));
  if (failed(runPasses(pm, *module, "compiling the GPU kernels failed", error)))
    return failure();
  auto binaries = module->getOps<gpu::BinaryOp>();
  if (binaries.empty()) {
    error = "compiling the GPU kernels produced no binary";
    return failure();
  }
  auto object = cast<gpu::ObjectAttr>((*binaries.begin()).getObjects()[0]);
  StringRef ptx = object.getObject().getValue();
  library.code.assign(ptx.begin(), ptx.end());
  library.code.push_back(0); // cuModuleLoadData takes a C string
  return library;
}

} // namespace gai
