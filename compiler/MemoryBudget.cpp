// Planned device memory and the remat driver.
#include "compiler/MemoryBudget.h"

#include "dialects/Exec/ExecOps.h"
#include "passes/CostModel.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Format.h"

#include <algorithm>
#include <cmath>

namespace gai {
namespace {

llvm::Error error(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// Bytes in GiB, or MiB below one GiB.
std::string gib(int64_t bytes) {
  std::string text;
  llvm::raw_string_ostream os(text);
  if (bytes >= (int64_t(1) << 30))
    os << llvm::format("%.3f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  else
    os << llvm::format("%.3f MiB", bytes / (1024.0 * 1024.0));
  return text;
}

constexpr const char *kStep = "train_step";
/// The first micro-batch's step (--gai-first-micro-batch): @train_step's
/// values, so remat treats it the same way.
constexpr const char *kFirstStep = "train_step_first";
/// The step fused with its update (--gai-fused-update), in their place.
constexpr const char *kUpdate = "train_update";

} // namespace

int64_t PlannedMemory::arena() const {
  int64_t most = 0;
  for (auto &[name, bytes] : arenas)
    most = std::max(most, bytes);
  return most;
}

int64_t PlannedMemory::arenaOf(llvm::StringRef entry) const {
  for (auto &[name, bytes] : arenas)
    if (name == entry)
      return bytes;
  return 0;
}

llvm::Expected<PlannedMemory> planMemory(mlir::ModuleOp optimized,
                                         const CompileOptions &options) {
  auto lowered = lowerModule(optimized, options, WeightsMode::None);
  if (!lowered)
    return lowered.takeError();
  mlir::ModuleOp exec = **lowered;
  PlannedMemory plan;
  auto sizeAttr = [&](llvm::StringRef name) {
    auto attr = exec->getAttrOfType<mlir::IntegerAttr>(name);
    return attr ? attr.getInt() : 0;
  };
  plan.state = sizeAttr("exec.state_size");
  plan.weights = options.train ? 0 : sizeAttr("exec.weights_size");
  for (auto entry : exec.getOps<mlir::exec::EntryOp>()) {
    plan.arenas.push_back({entry.getSymName().str(), entry.getArenaSize()});
    entry.walk([&](mlir::Operation *op) {
      if (auto in = llvm::dyn_cast<mlir::exec::InputOp>(op))
        plan.io += in.getRef().getSize();
      else if (auto out = llvm::dyn_cast<mlir::exec::OutputOp>(op))
        plan.io += out.getRef().getSize();
    });
  }
  return plan;
}

llvm::Expected<std::optional<RematOutcome>> rematerialize(mlir::ModuleOp optimized,
                                                          const CompileOptions &options) {
  const CompileOptions::Remat &remat = options.remat;
  if (remat.mode == "none" && remat.budget == 0)
    return std::nullopt;
  auto step = optimized.lookupSymbol<mlir::func::FuncOp>(kStep);
  if (!step)
    step = optimized.lookupSymbol<mlir::func::FuncOp>(kUpdate);
  if (!step)
    return error("--remat and --memory-budget apply to training: add --mode=train");
  RematOutcome outcome;
  outcome.mode = remat.mode;
  outcome.budget = remat.budget;
  outcome.stepName = step.getSymName().str();
  outcome.stepFlops = flopsOf(step);
  llvm::Expected<PlannedMemory> before = planMemory(optimized, options);
  if (!before)
    return before.takeError();
  outcome.before = outcome.after = *before;
  auto budgetText = [&] { return gib(remat.budget) + " (" + std::to_string(remat.budget) + " bytes)"; };
  if (remat.mode == "none") {
    if (before->total() > remat.budget)
      return error("--memory-budget " + budgetText() + ": the planned peak is " +
                   gib(before->total()) + " (" + std::to_string(before->total()) +
                   " bytes) with --remat=none; --remat=auto recomputes activations to fit");
    return outcome;
  }
  // What remat cannot change: the memory outside the arena, and the arenas
  // of the other entries.
  int64_t fixed = before->total() - before->arena();
  for (auto &[name, bytes] : before->arenas)
    if (name != kStep && name != kFirstStep && name != kUpdate && remat.budget > 0 &&
        fixed + bytes > remat.budget)
      return error("--memory-budget " + budgetText() + ": @" + name + " alone plans " +
                   gib(fixed + bytes) + " (its arena " + gib(bytes) + " and " + gib(fixed) +
                   " of parameters, optimizer state, inputs and outputs); remat changes only "
                   "@train_step, @train_step_first and @train_update");
  // The pass plans @train_step's gai buffers; the lowering places a few
  // more. Each round asks the pass for the overshoot less.
  int64_t passBudget = remat.budget;
  for (int round = 0; round < 4; ++round) {
    mlir::PassManager pm(optimized.getContext());
    if (options.timePasses)
      pm.enableTiming();
    for (const char *function : {kStep, kFirstStep, kUpdate}) {
      if (!optimized.lookupSymbol(function))
        continue;
      mlir::gai::GaiRematOptions pass;
      pass.function = function;
      pass.mode = remat.mode;
      pass.budget = passBudget;
      pass.fixedBytes = fixed;
      pm.addPass(mlir::gai::createGaiRemat(pass));
    }
    std::string messages;
    mlir::ScopedDiagnosticHandler handler(optimized.getContext(), [&](mlir::Diagnostic &d) {
      messages += (messages.empty() ? "" : "\n") + d.str();
      return mlir::success();
    });
    if (mlir::failed(pm.run(optimized)))
      return error("--remat=" + remat.mode + " --memory-budget " + budgetText() + ": " +
                   llvm::StringRef(messages).ltrim().str());
    auto summary = step->getAttrOfType<mlir::DictionaryAttr>("gai.remat");
    auto count = [&](llvm::StringRef key) {
      auto attr = summary ? summary.getAs<mlir::IntegerAttr>(key) : mlir::IntegerAttr();
      return attr ? attr.getInt() : 0;
    };
    outcome.recomputedOps += count("recomputed_ops");
    outcome.recomputedFlops += count("recomputed_flops");
    llvm::Expected<PlannedMemory> after = planMemory(optimized, options);
    if (!after)
      return after.takeError();
    outcome.after = *after;
    if (remat.budget == 0 || after->total() <= remat.budget || remat.mode == "full")
      break;
    passBudget -= after->total() - remat.budget;
  }
  if (remat.budget > 0 && outcome.after.total() > remat.budget)
    return error("--remat=" + remat.mode + " --memory-budget " + budgetText() +
                 ": the smallest peak reached is " + gib(outcome.after.total()) + " (" +
                 std::to_string(outcome.after.total()) + " bytes)");
  return outcome;
}

void printRematReport(const RematOutcome &o, llvm::raw_ostream &os) {
  os << "remat (" << o.mode;
  if (o.budget)
    os << ", budget " << gib(o.budget);
  os << "): " << o.recomputedOps << " ops recomputed, "
     << llvm::format("%.3f GFLOP", o.recomputedFlops / 1e9) << " extra ("
     << llvm::format("%.1f%%", o.stepFlops ? 100.0 * o.recomputedFlops / o.stepFlops : 0.0)
     << " of @" << o.stepName << ")\n";
  int64_t fixedBefore = o.before.total() - o.before.arena();
  int64_t fixedAfter = o.after.total() - o.after.arena();
  for (auto &[name, arenaBefore] : o.before.arenas) {
    int64_t arenaAfter = o.after.arenaOf(name);
    os << "  @" << name << ": planned peak " << gib(fixedBefore + arenaBefore)
       << " without remat, " << gib(fixedAfter + arenaAfter) << " with (arena "
       << gib(arenaBefore) << " -> " << gib(arenaAfter) << ", "
       << gib(arenaBefore - arenaAfter) << " saved)\n";
  }
  os << "  artifact: planned peak " << gib(o.before.total()) << " -> " << gib(o.after.total())
     << "; outside the arena: state " << gib(o.after.state) << ", inputs and outputs "
     << gib(o.after.io);
  if (o.after.weights)
    os << ", weights " << gib(o.after.weights);
  os << " (the device's GEMM and attention workspaces come on top)\n";
}

llvm::Expected<int64_t> parseByteSize(llvm::StringRef text) {
  llvm::StringRef number = text.take_while([](char c) { return isdigit(c) || c == '.'; });
  llvm::StringRef unit = text.drop_front(number.size()).trim();
  double value = 0;
  if (number.empty() || number.getAsDouble(value))
    return error("expected a size such as 24GiB, 512MiB or 1000000, got '" + text + "'");
  static const std::pair<const char *, double> kUnits[] = {
      {"", 1},          {"B", 1},          {"KiB", 1024.0},   {"MiB", 1048576.0},
      {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}, {"KB", 1e3}, {"MB", 1e6},
      {"GB", 1e9},      {"TB", 1e12}};
  for (auto [name, scale] : kUnits)
    if (unit.equals_insensitive(name)) {
      double bytes = std::floor(value * scale);
      if (bytes < 1 || bytes > 9.0e18)
        return error("a size of 1 byte to 8 EiB, got '" + text + "'");
      return static_cast<int64_t>(bytes);
    }
  return error("unknown unit '" + unit + "' in '" + text +
               "' (expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)");
}

} // namespace gai
