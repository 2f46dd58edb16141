// Choosing the parameters that feed matmuls, by use and by name.
#include "passes/MatmulWeights.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/GlobPattern.h"

namespace mlir::gai {
namespace {

/// The LM head, the embeddings and MoE routers (whose top-k choice a small
/// error flips): what users keep as they are unless asked.
constexpr const char *kDefaultSkip[] = {"*lm_head*", "*embed*", "*wte*",
                                        "*wpe*",     "*.gate.weight", "*router*"};
constexpr llvm::StringLiteral kHeadName = "lm_head.weight";
constexpr llvm::StringLiteral kTiedToAttr = "gai.tied_to";

/// `skip`'s patterns: the default list when empty, none for "none".
std::vector<std::string> skipPatterns(ArrayRef<std::string> skip) {
  std::vector<std::string> patterns(skip.begin(), skip.end());
  if (patterns.empty())
    patterns.assign(std::begin(kDefaultSkip), std::end(kDefaultSkip));
  if (patterns.size() == 1 && patterns[0] == "none")
    patterns.clear();
  return patterns;
}

/// `patterns` as globs, which point into them: the caller keeps them.
FailureOr<std::vector<llvm::GlobPattern>>
skipGlobs(ModuleOp module, const std::vector<std::string> &patterns, StringRef pass) {
  std::vector<llvm::GlobPattern> globs;
  for (const std::string &text : patterns) {
    auto glob = llvm::GlobPattern::create(text);
    if (!glob)
      return module.emitError() << "--" << pass << ": skip='" << text
                                << "' is not a glob: " << llvm::toString(glob.takeError());
    globs.push_back(std::move(*glob));
  }
  return globs;
}

bool skipped(ArrayRef<llvm::GlobPattern> globs, StringRef name) {
  return llvm::any_of(globs, [&](const llvm::GlobPattern &g) { return g.match(name); });
}

/// A matmul reading `use` as its [n, k] rhs, as the LM head reads its table.
bool isHeadUse(OpOperand &use) {
  auto m = dyn_cast<MatmulOp>(use.getOwner());
  return m && use.getOperandNumber() == 1 && m.getLhs() != use.get() && m.getTransposeRhs() &&
         !m.getTransposeLhs();
}

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
  const std::vector<std::string> patterns = skipPatterns(skip);
  FailureOr<std::vector<llvm::GlobPattern>> globs = skipGlobs(module, patterns, pass);
  if (failed(globs))
    return failure();
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
    if (o == Orientation::Unusable || skipped(*globs, p.getName()))
      return;
    RankedTensorType type = p.getType();
    const bool kn = o == Orientation::KN;
    chosen.push_back({p, o, type.getDimSize(kn ? 1 : 0), type.getDimSize(kn ? 0 : 1)});
  });
  return chosen;
}

LogicalResult untieHead(ModuleOp module, ArrayRef<std::string> skip, StringRef pass) {
  const std::vector<std::string> patterns = skipPatterns(skip);
  FailureOr<std::vector<llvm::GlobPattern>> globs = skipGlobs(module, patterns, pass);
  if (failed(globs))
    return failure();
  if (skipped(*globs, kHeadName))
    return success();
  // Per name: whether every use is a lookup or a head's, and which occur.
  struct Uses {
    bool ok = true, lookup = false, head = false;
  };
  llvm::MapVector<StringRef, Uses> byName;
  bool headNameTaken = false;
  module.walk([&](ParamOp p) {
    headNameTaken |= p.getName() == kHeadName;
    Uses &u = byName[p.getName()];
    RankedTensorType type = p.getType();
    u.ok &= type.getRank() == 2 && isa<FloatType>(type.getElementType()) &&
            !p.getTransposed() && p->getDiscardableAttrDictionary().empty();
    for (OpOperand &use : p->getUses()) {
      auto lookup = dyn_cast<EmbeddingOp>(use.getOwner());
      if (lookup && use.getOperandNumber() == 0 && lookup.getVocabShards() == 1)
        u.lookup = true;
      else if (isHeadUse(use))
        u.head = true;
      else
        u.ok = false;
    }
  });
  if (headNameTaken)
    return success();
  auto table = llvm::find_if(byName, [](auto &entry) {
    return entry.second.ok && entry.second.lookup && entry.second.head;
  });
  if (table == byName.end())
    return success();
  const std::string tableName = table->first.str();
  SmallVector<ParamOp> tables;
  module.walk([&](ParamOp p) {
    if (p.getName() == tableName)
      tables.push_back(p);
  });
  for (ParamOp p : tables) {
    SmallVector<OpOperand *> heads;
    for (OpOperand &use : p->getUses())
      if (isa<MatmulOp>(use.getOwner()))
        heads.push_back(&use);
    if (!heads.empty()) {
      OpBuilder b(p);
      b.setInsertionPointAfter(p);
      auto head = ParamOp::create(b, p.getLoc(), p.getType(), b.getStringAttr(kHeadName),
                                  nullptr);
      head->setAttr(kTiedToAttr, b.getStringAttr(tableName));
      for (OpOperand *use : heads)
        use->set(head);
    }
    if (p->use_empty())
      p.erase();
  }
  return success();
}

std::optional<StringRef> tiedTo(ParamOp p) {
  if (auto name = p->getAttrOfType<StringAttr>(kTiedToAttr))
    return name.getValue();
  return std::nullopt;
}

void readAsWeight(ParamOp p, Value weight) {
  for (OpOperand &use : llvm::make_early_inc_range(p->getUses())) {
    auto m = cast<MatmulOp>(use.getOwner());
    m.getRhsMutable().assign(weight);
    m.setTransposeRhs(true);
  }
}

} // namespace mlir::gai
