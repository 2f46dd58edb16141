// Choosing the parameters that feed matmuls, by use and by name.
#include "passes/MatmulWeights.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/GlobPattern.h"

namespace mlir::gai {
namespace {

/// The LM head, the embeddings and MoE routers (whose top-k choice a small
/// error flips): what users keep as they are unless asked.
constexpr const char *kDefaultSkip[] = {"*lm_head*", "*embed*", "*wte*",
                                        "*wpe*",     "*.gate.weight", "*router*"};

Orientation orientationOf(ParamOp p) {
  auto type = p.getType();
  if (type.getRank() != 2 || !isa<FloatType>(type.getElementType()) || p.getTransposed())
    return Orientation::Unusable;
  std::optional<Orientation> seen;
  for (OpOperand &use : p->getUses()) {
    auto m = dyn_cast<MatmulOp>(use.getOwner());
    if (!m || use.getOperandNumber() != 1 || m.getLhs() == p.getResult() || m.getTransposeLhs())
      return Orientation::Unusable;
    Orientation o = m.getTransposeRhs() ? Orientation::NK : Orientation::KN;
    if (seen && *seen != o)
      return Orientation::Unusable;
    seen = o;
  }
  return seen.value_or(Orientation::Unusable);
}

} // namespace

FailureOr<SmallVector<MatmulWeight>> matmulWeights(ModuleOp module,
                                                   ArrayRef<std::string> skip,
                                                   StringRef pass) {
  std::vector<std::string> patterns(skip.begin(), skip.end());
  if (patterns.empty())
    patterns.assign(std::begin(kDefaultSkip), std::end(kDefaultSkip));
  if (patterns.size() == 1 && patterns[0] == "none")
    patterns.clear();
  std::vector<llvm::GlobPattern> globs;
  for (const std::string &text : patterns) {
    auto glob = llvm::GlobPattern::create(text);
    if (!glob)
      return module.emitError() << "--" << pass << ": skip='" << text
                                << "' is not a glob: " << llvm::toString(glob.takeError());
    globs.push_back(std::move(*glob));
  }
  // A name is chosen only if every parameter of that name, in every
  // function, is read by matmuls alike: an entry point's copy of a weight
  // must be the same bytes as another's.
  llvm::StringMap<Orientation> byName;
  module.walk([&](ParamOp p) {
    Orientation o = orientationOf(p);
    auto [it, inserted] = byName.try_emplace(p.getName(), o);
    if (!inserted && it->second != o)
      it->second = Orientation::Unusable;
  });
  SmallVector<MatmulWeight> chosen;
  module.walk([&](ParamOp p) {
    Orientation o = byName.lookup(p.getName());
    if (o == Orientation::Unusable ||
        llvm::any_of(globs, [&](const llvm::GlobPattern &g) { return g.match(p.getName()); }))
      return;
    RankedTensorType type = p.getType();
    const bool kn = o == Orientation::KN;
    chosen.push_back({p, o, type.getDimSize(kn ? 1 : 0), type.getDimSize(kn ? 0 : 1)});
  });
  return chosen;
}

void readAsWeight(ParamOp p, Value weight) {
  for (OpOperand &use : llvm::make_early_inc_range(p->getUses())) {
    auto m = cast<MatmulOp>(use.getOwner());
    m.getRhsMutable().assign(weight);
    m.setTransposeRhs(true);
  }
}

} // namespace mlir::gai
