// A KernelLibrary as a module attribute and back: how the codegen passes
// hand their result to the artifact writer, visibly in the IR.
#include "compiler/CompilerPasses.h"

#include "mlir/IR/Builders.h"

using namespace mlir;

namespace gai {

DictionaryAttr kernelLibraryAttr(MLIRContext *context,
                                 const KernelLibrary &library) {
  Builder b(context);
  auto strings = [&](const std::vector<std::string> &values) {
    SmallVector<Attribute> attrs;
    for (const std::string &value : values)
      attrs.push_back(b.getStringAttr(value));
    return b.getArrayAttr(attrs);
  };
  SmallVector<Attribute> launch;
  for (auto [grid, block] : library.launch)
    launch.push_back(b.getDenseI64ArrayAttr({grid, block}));
  StringRef code(reinterpret_cast<const char *>(library.code.data()),
                 library.code.size());
  return b.getDictionaryAttr({
      b.getNamedAttr("format", b.getStringAttr(library.format)),
      b.getNamedAttr("code", b.getStringAttr(code)),
      b.getNamedAttr("kernels", strings(library.kernels)),
      b.getNamedAttr("symbols", strings(library.symbols)),
      b.getNamedAttr("launch", b.getArrayAttr(launch)),
      b.getNamedAttr("programmatic_launch",
                     b.getBoolAttr(library.programmaticLaunch)),
  });
}

FailureOr<KernelLibrary> kernelLibraryOf(ModuleOp module) {
  auto dict = module->getAttrOfType<DictionaryAttr>(kKernelLibraryAttr);
  if (!dict)
    return module.emitError()
           << "expects the attribute " << kKernelLibraryAttr
           << " that --gai-cpu-codegen or --gai-gpu-codegen leaves";
  auto malformed = [&](StringRef field) {
    return module.emitError() << kKernelLibraryAttr << ": expects " << field;
  };
  auto format = dict.getAs<StringAttr>("format");
  auto code = dict.getAs<StringAttr>("code");
  auto kernels = dict.getAs<ArrayAttr>("kernels");
  auto symbols = dict.getAs<ArrayAttr>("symbols");
  auto launch = dict.getAs<ArrayAttr>("launch");
  auto programmatic = dict.getAs<BoolAttr>("programmatic_launch");
  if (!format || !code)
    return malformed("string fields format and code");
  if (!kernels || !symbols || kernels.size() != symbols.size())
    return malformed("as many kernels as symbols");
  if (!launch || !programmatic)
    return malformed("launch (an array) and programmatic_launch (a bool)");
  KernelLibrary library;
  library.format = format.str();
  library.code.assign(code.getValue().begin(), code.getValue().end());
  for (auto [kernel, symbol] : llvm::zip(kernels, symbols)) {
    auto k = dyn_cast<StringAttr>(kernel), s = dyn_cast<StringAttr>(symbol);
    if (!k || !s)
      return malformed("kernels and symbols as strings");
    library.kernels.push_back(k.str());
    library.symbols.push_back(s.str());
  }
  for (Attribute shape : launch) {
    auto gridBlock = dyn_cast<DenseI64ArrayAttr>(shape);
    if (!gridBlock || gridBlock.size() != 2)
      return malformed("each launch as array<i64: grid, block>");
    library.launch.emplace_back(gridBlock[0], gridBlock[1]);
  }
  library.programmaticLaunch = programmatic.getValue();
  return library;
}

mlir::LogicalResult attachKernelLibrary(mlir::ModuleOp module,
                                        mlir::FailureOr<KernelLibrary> library,
                                        const std::string &error) {
  if (mlir::failed(library))
    return module.emitError(error);
  module->setAttr(kKernelLibraryAttr, kernelLibraryAttr(module.getContext(), *library));
  return mlir::success();
}

} // namespace gai
