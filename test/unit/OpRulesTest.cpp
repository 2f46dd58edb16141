// Every gai op carries its rules (a VJP, an interpretation) through its op
// interfaces, or is listed here with the reason it has none: a new op
// without its rules fails this test.
#include "dialects/Gai/GaiDialect.h"
#include "dialects/Gai/GaiOps.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

using namespace mlir;
using namespace mlir::gai;

namespace {

// Ops without a VJP rule: --gai-autodiff reports them when a gradient
// reaches them.
const std::map<std::string, std::string> kWithoutVJP = {
    {"gai.abs", "no rule yet"},
    {"gai.relu", "no rule yet"},
    {"gai.max", "no rule yet"},
    {"gai.min", "no rule yet"},
    {"gai.pow", "no rule yet"},
    {"gai.cache_write", "generation only: KV caches are not trained through"},
    {"gai.take", "generation only: picks the last prompt position"},
    {"gai.cross_entropy_grad", "made by cross_entropy's own VJP"},
    {"gai.flash_attention_grad", "made by flash_attention's own VJP"},
    {"gai.embedding_grad", "made by embedding's own VJP"},
    {"gai.cached_attention", "made by attention rewriting after autodiff"},
    {"gai.gemm", "made by fusion after autodiff"},
    {"gai.gated_gemm", "made by fusion after autodiff"},
    {"gai.fusion", "made by fusion after autodiff"},
    {"gai.yield", "the terminator of gai.fusion"},
};

// Ops without an interpretation.
const std::map<std::string, std::string> kWithoutInterpretation = {
    {"gai.yield", "gai.fusion's interpretation reads its operands"},
};

std::vector<RegisteredOperationName> gaiOps(MLIRContext &context) {
  context.loadDialect<GaiDialect>();
  ArrayRef<RegisteredOperationName> ops =
      context.getRegisteredOperationsByDialect(
          GaiDialect::getDialectNamespace());
  return {ops.begin(), ops.end()};
}

template <typename Interface>
void expectImplementedOrListed(
    const std::map<std::string, std::string> &allowed, const char *rules) {
  MLIRContext context;
  std::vector<RegisteredOperationName> ops = gaiOps(context);
  ASSERT_FALSE(ops.empty());
  for (RegisteredOperationName op : ops) {
    std::string name = op.getStringRef().str();
    bool listed = allowed.count(name) != 0;
    if (op.hasInterface<Interface>())
      EXPECT_FALSE(listed) << name << " has " << rules
                           << " now: take it off the list";
    else
      EXPECT_TRUE(listed) << name << " lacks " << rules
                          << ": give it the interface (see docs/dialect.md) or "
                             "list it here with the reason";
  }
  for (const auto &[name, reason] : allowed)
    EXPECT_TRUE(llvm::any_of(
        ops,
        [&](RegisteredOperationName op) { return op.getStringRef() == name; }))
        << "the list names " << name << ", which is not a gai op";
}

TEST(OpRules, EveryOpHasAVJPRuleOrAReason) {
  expectImplementedOrListed<VJPOpInterface>(kWithoutVJP, "a VJP rule");
}

TEST(OpRules, EveryOpHasAnInterpretationOrAReason) {
  expectImplementedOrListed<InterpretOpInterface>(kWithoutInterpretation,
                                                  "an interpretation");
}

// Fusion groups what the traits say a kernel computes; these are the ops
// it fused when it listed them by name.
TEST(OpRules, FusionTraitsMarkTheFusibleOps) {
  MLIRContext context;
  std::vector<std::string> fusible;
  for (RegisteredOperationName op : gaiOps(context))
    if (op.hasTrait<OpTrait::Elementwise>() ||
        op.hasTrait<BroadcastElementwise>() || op.hasTrait<IndexFunction>() ||
        op.hasInterface<RowOpInterface>())
      fusible.push_back(op.getStringRef().str());
  llvm::sort(fusible);
  std::vector<std::string> expected = {
      "gai.abs",        "gai.add",    "gai.causal_mask", "gai.convert",
      "gai.div",        "gai.exp",    "gai.gelu",        "gai.iota",
      "gai.layer_norm", "gai.log",    "gai.max",         "gai.min",
      "gai.mul",        "gai.neg",    "gai.pow",         "gai.reciprocal",
      "gai.reduce",     "gai.relu",   "gai.rms_norm",    "gai.rope",
      "gai.rsqrt",      "gai.select", "gai.sigmoid",     "gai.silu",
      "gai.softmax",    "gai.sqrt",   "gai.sub",         "gai.tanh"};
  EXPECT_EQ(fusible, expected);
}

} // namespace
