// gaic: compiles a model spec or HF config into gai IR (and later artifacts).
#include "compiler/Pipeline.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

namespace cl = llvm::cl;

namespace {

enum class Emit { Gai, Fused };

cl::OptionCategory category("gaic options");
cl::opt<std::string> specPath(cl::Positional, cl::Required,
                              cl::desc("<model spec .json | HF config.json>"),
                              cl::cat(category));
cl::opt<std::string> weightsPath(
    "weights", cl::desc("safetensors file to check against the model"),
    cl::value_desc("file"), cl::cat(category));
cl::opt<Emit> emit("emit", cl::desc("what to write"), cl::init(Emit::Gai),
                   cl::values(clEnumValN(Emit::Gai, "gai",
                                         "the frontend's gai dialect IR"),
                              clEnumValN(Emit::Fused, "fused",
                                         "gai IR after attention rewriting "
                                         "and fusion")),
                   cl::cat(category));
cl::opt<std::string> outputPath("o", cl::desc("output file (- for stdout)"),
                                cl::value_desc("file"), cl::init("-"),
                                cl::cat(category));
cl::opt<int64_t> batch("batch",
                       cl::desc("batch size (default: compile.max_batch)"),
                       cl::init(0), cl::cat(category));
cl::opt<int64_t> seqLen(
    "seq-len", cl::desc("sequence length (default: compile.max_seq_len)"),
    cl::init(0), cl::cat(category));
cl::list<std::string> entries(
    "entries",
    cl::desc("functions to build: forward, prefill, decode (default forward)"),
    cl::CommaSeparated, cl::cat(category));
cl::opt<int64_t> prefillLen(
    "prefill-len", cl::desc("tokens per @prefill row (default: --seq-len)"),
    cl::init(0), cl::cat(category));
cl::opt<bool> printReport(
    "report",
    cl::desc("print each function's arena size, buffer total and kernels "
             "(on stderr)"),
    cl::cat(category));
cl::opt<bool> printIRAfterAll("print-ir-after-all",
                              cl::desc("print the IR after every pass"),
                              cl::cat(category));
cl::opt<std::string> dtype("dtype",
                           cl::desc("f32, bf16 or f16 (default: compile.dtype)"),
                           cl::cat(category));

int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "gaic") << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::registerAsmPrinterCLOptions();
  mlir::registerMLIRContextCLOptions();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "gaic: the gai model compiler\n\n"
                              "  gaic model.json --emit=gai -o model.mlir\n");
  if (batch < 0 || seqLen < 0 || prefillLen < 0)
    return fail("--batch, --seq-len and --prefill-len must be positive");

  gai::CompileOptions options;
  options.specPath = specPath;
  options.weightsPath = weightsPath;
  options.build.batch = batch;
  options.build.seqLen = seqLen;
  options.build.dtype = dtype;
  options.build.prefillLen = prefillLen;
  options.printIRAfterAll = printIRAfterAll;
  if (!entries.empty()) {
    options.build.entries = {false, false, false};
    for (const std::string &entry : entries) {
      if (entry == "forward")
        options.build.entries.forward = true;
      else if (entry == "prefill")
        options.build.entries.prefill = true;
      else if (entry == "decode")
        options.build.entries.decode = true;
      else
        return fail("--entries: unknown function '" + entry +
                    "' (expected forward, prefill or decode)");
    }
  }

  mlir::MLIRContext context;
  llvm::Expected<gai::ImportedModel> model = gai::importModel(context, options);
  if (!model)
    return fail(llvm::toString(model.takeError()));

  if (emit == Emit::Fused || printReport || printIRAfterAll) {
    // The frontend's IR is what --emit=gai shows; optimise a copy for the rest.
    mlir::OwningOpRef<mlir::ModuleOp> optimized =
        emit == Emit::Fused ? std::move(model->module)
                            : mlir::OwningOpRef<mlir::ModuleOp>(
                                  model->module->clone());
    if (mlir::failed(gai::optimize(*optimized, options)))
      return fail("the gai passes failed");
    if (printReport)
      gai::printReport(gai::report(*optimized), llvm::errs());
    if (emit == Emit::Fused)
      model->module = std::move(optimized);
  }

  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> output =
      mlir::openOutputFile(outputPath, &error);
  if (!output)
    return fail(error);
  model->module->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}
