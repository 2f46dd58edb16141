// Kernels → LLVM dialect → LLVM IR (O3) → object file → shared object.
#include "compiler/codegen/CpuCodegen.h"

#include "compiler/codegen/RunPasses.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MathToLibm/MathToLibm.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

#include <cstdlib>

using namespace mlir;

namespace gai {
namespace {

/// The kernels alone, lowered to the LLVM dialect, with one exported
/// `gai_<name>(ptr buffers)` wrapper each.
FailureOr<OwningOpRef<ModuleOp>> lowerKernels(ModuleOp execModule,
                                              KernelLibrary &library,
                                              std::string &error) {
  MLIRContext *context = execModule.getContext();
  context->loadDialect<LLVM::LLVMDialect>();
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  context->appendDialectRegistry(registry);

  OwningOpRef<ModuleOp> module = ModuleOp::create(execModule.getLoc());
  OpBuilder b(context);
  b.setInsertionPointToEnd(module->getBody());
  for (auto table : execModule.getOps<memref::GlobalOp>()) // RoPE frequency tables
    b.clone(*table);
  for (auto kernel : execModule.getOps<func::FuncOp>()) {
    b.clone(*kernel);
    library.kernels.push_back(kernel.getSymName().str());
  }

  PassManager pm(context);
  // bf16 conversions as integer code: LLVM would call __truncsfbf2, which
  // the kernels' shared object cannot resolve on x86 without AVX512-BF16.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addPass(arith::createArithExpandOpsPass(expand));
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  ConvertFuncToLLVMPassOptions funcOptions;
  funcOptions.useBarePtrCallConv = true; // static shapes: a pointer each
  pm.addPass(createConvertFuncToLLVMPass(funcOptions));
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  if (failed(runPasses(pm, *module, "lowering the kernels to LLVM failed", error)))
    return failure();

  // Wrappers with one calling convention, so the runtime needs no per-kernel
  // signatures: args[i] is the i-th buffer.
  auto ptr = LLVM::LLVMPointerType::get(context);
  Location loc = module->getLoc();
  for (const std::string &name : library.kernels) {
    auto impl = module->lookupSymbol<LLVM::LLVMFuncOp>(name);
    if (!impl) { // a kernel over tensors, say: the conversion left it as it was
      error = "kernel '" + name + "' did not lower to an LLVM function";
      return failure();
    }
    impl.setLinkage(LLVM::Linkage::Internal);
    std::string symbol = "gai_" + name;
    auto wrapper = LLVM::LLVMFuncOp::create(
        b, loc, symbol,
        LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(context), {ptr}));
    Block *entry = wrapper.addEntryBlock(b);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(entry);
    SmallVector<Value> args;
    for (unsigned i = 0; i < impl.getNumArguments(); ++i) {
      Value slot = LLVM::GEPOp::create(b, loc, ptr, ptr, entry->getArgument(0),
                                       ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
      args.push_back(LLVM::LoadOp::create(b, loc, ptr, slot));
    }
    LLVM::CallOp::create(b, loc, impl, args);
    LLVM::ReturnOp::create(b, loc, ValueRange{});
    library.symbols.push_back(symbol);
  }
  return module;
}

std::unique_ptr<llvm::TargetMachine> targetMachine(const std::string &cpu,
                                                   std::string &error) {
  // LLVM only warns about an unknown CPU, then builds for a generic one.
  if (llvm::Error e = checkCpuLevel(cpu)) {
    error = llvm::toString(std::move(e));
    return nullptr;
  }
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return nullptr;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpu, "", llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!tm)
    error = "no target machine for cpu '" + cpu + "'";
  return tm;
}

/// The kernels as an optimised LLVM module, with the machine it targets.
/// Members are destroyed bottom-up: the module before its context.
struct OptimizedKernels {
  std::unique_ptr<llvm::TargetMachine> tm;
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  KernelLibrary library;
};

FailureOr<OptimizedKernels> optimizeKernels(ModuleOp execModule,
                                            const CpuCodegenOptions &options,
                                            std::string &error) {
  OptimizedKernels out;
  out.tm = targetMachine(options.cpu, error);
  if (!out.tm)
    return failure();
  FailureOr<OwningOpRef<ModuleOp>> lowered =
      lowerKernels(execModule, out.library, error);
  if (failed(lowered))
    return failure();
  out.context = std::make_unique<llvm::LLVMContext>();
  out.module = translateModuleToLLVMIR(**lowered, *out.context, "gai_kernels");
  if (!out.module) {
    error = "translating the kernels to LLVM IR failed";
    return failure();
  }
  out.module->setDataLayout(out.tm->createDataLayout());
  out.module->setTargetTriple(out.tm->getTargetTriple());
  for (llvm::Function &f : *out.module)
    if (!f.isDeclaration()) {
      f.addFnAttr("target-cpu", options.cpu);
      f.addFnAttr("target-features", out.tm->getTargetFeatureString());
    }
  if (llvm::Error e =
          makeOptimizingTransformer(3, 0, out.tm.get())(out.module.get())) {
    error = "optimizing the kernels failed: " + llvm::toString(std::move(e));
    return failure();
  }
  return out;
}

std::string linkerPath(const CpuCodegenOptions &options) {
  if (const char *env = std::getenv("GAI_LD"))
    return env;
  if (!options.linker.empty())
    return options.linker;
  return GAI_LLD_PATH;
}

} // namespace

llvm::Error checkCpuLevel(llvm::StringRef cpu) {
  constexpr llvm::StringRef levels[] = {"x86-64", "x86-64-v2", "x86-64-v3",
                                        "x86-64-v4"};
  if (llvm::is_contained(levels, cpu))
    return llvm::Error::success();
  return llvm::createStringError(
      "--cpu=" + cpu.str() +
      ": expected x86-64, x86-64-v2, x86-64-v3 or x86-64-v4 (the levels the "
      "runtime checks on load)");
}

FailureOr<std::string> cpuKernelsLLVMIR(ModuleOp execModule,
                                        const CpuCodegenOptions &options,
                                        std::string &error) {
  FailureOr<OptimizedKernels> kernels = optimizeKernels(execModule, options, error);
  if (failed(kernels))
    return failure();
  std::string text;
  llvm::raw_string_ostream os(text);
  kernels->module->print(os, nullptr);
  return text;
}

FailureOr<KernelLibrary> buildCpuKernels(ModuleOp execModule,
                                         const CpuCodegenOptions &options,
                                         std::string &error) {
  FailureOr<OptimizedKernels> kernels = optimizeKernels(execModule, options, error);
  if (failed(kernels))
    return failure();
  KernelLibrary &library = kernels->library;

  llvm::SmallString<0> object;
  {
    llvm::raw_svector_ostream os(object);
    llvm::legacy::PassManager pm;
    if (kernels->tm->addPassesToEmitFile(pm, os, nullptr,
                                llvm::CodeGenFileType::ObjectFile)) {
      error = "the target cannot emit object files";
      return failure();
    }
    pm.run(*kernels->module);
  }

  // lld makes the shared object; the runtime dlopens it from memory.
  llvm::SmallString<128> dir;
  if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("gai-kernels", dir)) {
    error = "cannot create a temporary directory: " + ec.message();
    return failure();
  }
  llvm::SmallString<128> objectPath(dir), libraryPath(dir);
  llvm::sys::path::append(objectPath, "kernels.o");
  llvm::sys::path::append(libraryPath, "kernels.so");
  llvm::scope_exit cleanup([&] {
    llvm::sys::fs::remove(objectPath);
    llvm::sys::fs::remove(libraryPath);
    llvm::sys::fs::remove(dir);
  });
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(objectPath, ec);
    if (ec) {
      error = "cannot write " + objectPath.str().str() + ": " + ec.message();
      return failure();
    }
    os << object;
  }
  std::string linker = linkerPath(options);
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(
      linker, {linker, "-shared", "--gc-sections", "-O2", "-o", libraryPath, objectPath},
      std::nullopt, {}, 0, 0, &message);
  if (rc != 0) {
    error = "linking the kernels with " + linker + " failed" +
            (message.empty() ? "" : ": " + message);
    return failure();
  }
  auto so = llvm::MemoryBuffer::getFile(libraryPath);
  if (!so) {
    error = "cannot read the linked kernels: " + so.getError().message();
    return failure();
  }
  library.code.assign((*so)->getBufferStart(), (*so)->getBufferEnd());
  return std::move(library);
}

} // namespace gai
