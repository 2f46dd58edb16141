// conformance-cases: compiles the conformance cases for one target and
// writes, per case, NAME.gai and NAME.io.safetensors (the inputs and the
// reference interpreter's outputs), for conformance-check to run on a
// machine that needs only the runtime.
#include "Cases.h"
#include "SmallModules.h"

#include "compiler/Pipeline.h"
#include "core/Commands.h"
#include "dialects/Exec/ExecOps.h"
#include "dialects/Gai/GaiDialect.h"
#include "gai/Artifact.h"
#include "gai/FloatConvert.h"
#include "gai/Quantize.h"
#include "gai/Safetensors.h"

#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>
#include <fstream>
#include <map>
#include <set>

using namespace gai;
using reference::HostTensor;

namespace {

llvm::cl::opt<std::string> targetFlag("target", llvm::cl::desc("cpu or cuda"),
                                      llvm::cl::init("cpu"));
llvm::cl::opt<std::string> outDir("o", llvm::cl::desc("the directory to write the cases into"),
                                  llvm::cl::Required);
llvm::cl::opt<std::string> only("only", llvm::cl::desc("make only the case of this name"));

/// |got - want| may be this much times max(1, |want|): f32 kernels differ
/// from the double-precision reference by summation order only; bf16 ones
/// round their operands and some intermediates.
double toleranceFor(const std::string &target, bool bf16) {
  if (bf16)
    return 3e-2;
  return target == "cpu" ? 2e-5 : 1e-4;
}

/// A tensor's elements as f32 or i32 bytes, by its element type; a
/// quantized weight's (i8, i4, f8E4M3FN) as the bytes the runtime reads
/// (int4 two a byte), stored as u8.
struct Stored {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

Stored store(std::string name, const HostTensor &t, mlir::Type element) {
  const bool packed = element.isInteger(8) || element.isInteger(4) ||
                      mlir::isa<mlir::Float8E4M3FNType>(element);
  Stored s{std::move(name), packed ? DType::U8 : element.isInteger() ? DType::I32 : DType::F32,
           t.shape, {}};
  if (element.isInteger(4)) {
    s.bytes.assign((t.data.size() + 1) / 2, 0);
    for (size_t i = 0; i < t.data.size(); ++i)
      s.bytes[i / 2] |= static_cast<uint8_t>((static_cast<int>(t.data[i]) & 15) << (i % 2 ? 4 : 0));
    s.shape = {static_cast<int64_t>(s.bytes.size())};
    return s;
  }
  if (packed) {
    for (double v : t.data)
      s.bytes.push_back(element.isInteger(8)
                            ? static_cast<uint8_t>(static_cast<int8_t>(v))
                            : floatToFp8E4M3(static_cast<float>(v)));
    s.shape = {static_cast<int64_t>(s.bytes.size())};
    return s;
  }
  s.bytes.resize(t.data.size() * 4);
  for (size_t i = 0; i < t.data.size(); ++i) {
    if (s.dtype == DType::I32) {
      auto v = static_cast<int32_t>(t.data[i]);
      std::memcpy(&s.bytes[i * 4], &v, 4);
    } else {
      auto v = static_cast<float>(t.data[i]);
      std::memcpy(&s.bytes[i * 4], &v, 4);
    }
  }
  return s;
}

std::optional<std::string> stateName(mlir::DictionaryAttr attrs) {
  auto name = attrs ? attrs.getAs<mlir::StringAttr>("gai.name") : mlir::StringAttr();
  if (name && mlir::exec::parseStateName(name.getValue()))
    return name.str();
  return std::nullopt;
}

mlir::Type elementOf(mlir::Type t) { return mlir::cast<mlir::ShapedType>(t).getElementType(); }

/// Arguments drawn as the case says, each representable in its type.
std::vector<HostTensor> drawArguments(const conformance::Case &c, mlir::func::FuncOp func) {
  std::mt19937 rng(c.seed);
  std::uniform_real_distribution<double> uniform(-1.5, 1.5);
  std::vector<HostTensor> args;
  size_t nextInt = 0;
  for (mlir::Type t : func.getArgumentTypes()) {
    auto shaped = mlir::cast<mlir::RankedTensorType>(t);
    HostTensor h(std::vector<int64_t>(shaped.getShape().begin(), shaped.getShape().end()));
    mlir::Type element = shaped.getElementType();
    if (element.isInteger()) {
      conformance::IntRange r = c.ints.at(nextInt++);
      std::uniform_int_distribution<int64_t> ints(r.lo, r.hi - 1);
      for (double &v : h.data)
        v = static_cast<double>(ints(rng));
    } else {
      for (double &v : h.data) {
        auto f = static_cast<float>(uniform(rng));
        v = element.isBF16()                              ? bf16ToFloat(floatToBf16(f))
            : mlir::isa<mlir::Float8E4M3FNType>(element) ? fp8E4M3ToFloat(floatToFp8E4M3(f))
                                                          : f;
      }
    }
    args.push_back(std::move(h));
  }
  if (c.adjust)
    c.adjust(args);
  return args;
}

/// Makes one case; the error says what went wrong.
llvm::Error makeCase(const conformance::Case &c, const std::string &target) {
  auto fail = [&](const llvm::Twine &message) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
  };
  mlir::MLIRContext context;
  context.loadDialect<mlir::gai::GaiDialect, mlir::func::FuncDialect,
                      mlir::shard::ShardDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(c.ir, &context);
  if (!module)
    return fail("the IR does not parse");
  auto forward = module->lookupSymbol<mlir::func::FuncOp>("forward");
  if (!forward)
    return fail("no @forward");

  std::vector<HostTensor> args = drawArguments(c, forward);
  auto want = reference::evaluate(forward, args, test::noWeights());
  if (!want)
    return want.takeError();

  std::vector<Stored> tensors;
  bool bf16 = false;
  size_t inputs = 0, outputs = 0;
  for (auto [i, type] : llvm::enumerate(forward.getArgumentTypes())) {
    bf16 |= elementOf(type).isBF16();
    std::optional<std::string> state = stateName(forward.getArgAttrDict(i));
    tensors.push_back(store(state ? "state." + *state : "input." + std::to_string(inputs++),
                            args[i], elementOf(type)));
  }
  for (auto [i, type] : llvm::enumerate(forward.getResultTypes())) {
    bf16 |= elementOf(type).isBF16();
    std::optional<std::string> state = stateName(forward.getResultAttrDict(i));
    tensors.push_back(store(state ? "expected_state." + *state
                                  : "expected." + std::to_string(outputs++),
                            (*want)[i], elementOf(type)));
  }

  CompileOptions options;
  options.target = target;
  if (mlir::failed(optimize(*module, options)))
    return fail("the passes failed");
  std::string base = outDir + "/" + c.name;
  auto bytes = compileArtifact(*module, ModelSpec{}, options, WeightsMode::None, base + ".gai");
  if (!bytes)
    return bytes.takeError();

  // The case must reach the commands it is there for.
  auto artifact = LoadedArtifact::fromBytes(*bytes, c.name, outDir);
  if (!artifact)
    return fail("the artifact does not load: " + artifact.status().message());
  std::set<std::string> found;
  for (const DecodedEntry &entry : artifact->entries())
    for (const Command &command : entry.steps)
      found.insert(commandName(command));
  for (const char *command : c.covers)
    if (!found.count(command)) {
      std::string have;
      for (const std::string &f : found)
        have += (have.empty() ? "" : ", ") + f;
      return fail(llvm::Twine("covers ") + command + " but its artifact has only [" +
                  have + "]");
    }

  std::ofstream file(base + ".gai", std::ios::binary);
  file.write(reinterpret_cast<const char *>(bytes->data()),
             static_cast<std::streamsize>(bytes->size()));
  if (!file)
    return fail("cannot write " + base + ".gai");
  std::vector<TensorToWrite> toWrite;
  for (const Stored &s : tensors)
    toWrite.push_back({s.name, s.dtype, s.shape, s.bytes.data(), s.bytes.size()});
  std::string covers;
  for (const char *command : c.covers)
    covers += (covers.empty() ? "" : ",") + std::string(command);
  std::map<std::string, std::string> metadata = {
      {"tolerance", llvm::formatv("{0:e}", toleranceFor(target, bf16)).str()},
      {"covers", covers}};
  if (Status s = writeSafetensors(base + ".io.safetensors", toWrite, metadata); !s.isOk())
    return fail(s.message());
  return llvm::Error::success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::cl::ParseCommandLineOptions(argc, argv, "the conformance cases for one target\n");
  if (targetFlag != "cpu" && targetFlag != "cuda") {
    llvm::errs() << "conformance-cases: --target is cpu or cuda, not '" << targetFlag << "'\n";
    return 1;
  }
  if (std::error_code ec = llvm::sys::fs::create_directories(outDir)) {
    llvm::errs() << "conformance-cases: cannot make " << outDir << ": " << ec.message() << "\n";
    return 1;
  }
  int made = 0, failed = 0;
  for (const conformance::Case &c : conformance::cases()) {
    if (c.targets == conformance::Targets::CudaOnly && targetFlag != "cuda")
      continue;
    if (!only.empty() && only != c.name)
      continue;
    llvm::Error e = makeCase(c, targetFlag);
    if (e) {
      llvm::errs() << "conformance-cases: " << c.name << ": " << llvm::toString(std::move(e))
                   << "\n";
      ++failed;
      continue;
    }
    ++made;
  }
  llvm::outs() << "conformance-cases: " << made << " cases for " << targetFlag << " in "
               << outDir << "\n";
  return failed ? 1 : 0;
}
