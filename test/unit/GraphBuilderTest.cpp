// The IR builder: every family builds verified IR whose parameters are
// exactly the tensors of its weights file.
#include "dialects/Gai/GaiOps.h"
#include "frontend/GraphBuilder.h"
#include "frontend/WeightCheck.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace gai;

namespace {

const char *kFamilies[] = {"llama", "gpt2", "mistral", "qwen2", "mixtral",
                           "gemma", "phi3", "gemma2", "qwen3", "llama3"};

std::string fixture(const std::string &family, const char *file) {
  return std::string(GAI_FIXTURES_DIR) + "/hf/" + family + "-tiny/" + file;
}

TEST(GraphBuilder, EveryFamilyMatchesItsWeightsOneForOne) {
  for (const char *family : kFamilies) {
    SCOPED_TRACE(family);
    mlir::MLIRContext context;
    llvm::Expected<ModelSpec> spec =
        loadSpecFile(fixture(family, "config.json"));
    ASSERT_FALSE(!spec) << llvm::toString(spec.takeError());
    auto module = buildForward(context, *spec, BuildOptions{2, 16, "f32"});
    ASSERT_FALSE(!module) << llvm::toString(module.takeError());
    auto weights = SafetensorsFile::open(fixture(family, "model.safetensors"));
    ASSERT_TRUE(weights.isOk()) << weights.status().message();
    llvm::Error e = checkWeights(**module, WeightSet::of(*weights), *spec);
    EXPECT_FALSE(!!e) << llvm::toString(std::move(e));

    size_t params = 0;
    (*module)->walk([&](mlir::gai::ParamOp) { ++params; });
    EXPECT_EQ(params, weights->tensors().size());

    auto forward = (*module)->lookupSymbol<mlir::func::FuncOp>("forward");
    ASSERT_TRUE(forward);
    auto type = forward.getFunctionType();
    EXPECT_EQ(mlir::cast<mlir::RankedTensorType>(type.getInput(0)).getShape(),
              (llvm::ArrayRef<int64_t>{2, 16}));
    EXPECT_EQ(mlir::cast<mlir::RankedTensorType>(type.getResult(0)).getShape(),
              (llvm::ArrayRef<int64_t>{2, 16, 256}));
  }
}

TEST(GraphBuilder, LinearRopeScalingDividesEveryFrequencyAsHFDoes) {
  // HF: inv_freq = 1 / theta^(2i / dim) in f32, then / factor.
  for (double theta : {1e4, 5e5})
    for (int64_t dim : {64, 128})
      for (double factor : {2.0, 4.0, 8.0})
        for (int64_t i = 0; i < dim / 2; ++i) {
          const float inv =
              1.0f / static_cast<float>(std::pow(theta, static_cast<float>(2 * i) / dim));
          EXPECT_EQ(mlir::gai::ropeFrequency(i, dim, theta, gai::linearRopeScaling(factor)),
                    inv / static_cast<float>(factor))
              << "theta " << theta << " dim " << dim << " factor " << factor << " i " << i;
        }
}

TEST(GraphBuilder, AttentionIsWrittenOutNaively) {
  mlir::MLIRContext context;
  llvm::Expected<ModelSpec> spec = loadSpecFile(fixture("mistral", "config.json"));
  ASSERT_FALSE(!spec);
  auto module = buildForward(context, *spec, BuildOptions{1, 16, "bf16"});
  ASSERT_FALSE(!module) << llvm::toString(module.takeError());
  int masks = 0, softmaxes = 0, repeats = 0;
  (*module)->walk([&](mlir::Operation *op) {
    if (auto mask = mlir::dyn_cast<mlir::gai::CausalMaskOp>(op)) {
      ++masks;
      EXPECT_EQ(mask.getWindow(), 8u);
    }
    softmaxes += mlir::isa<mlir::gai::SoftmaxOp>(op);
    if (auto repeat = mlir::dyn_cast<mlir::gai::RepeatOp>(op)) {
      ++repeats;
      EXPECT_EQ(repeat.getTimes(), 4u); // 4 query heads share 1 KV head
    }
  });
  EXPECT_EQ(masks, 2);
  EXPECT_EQ(softmaxes, 2);
  EXPECT_EQ(repeats, 4); // K and V in each of 2 layers
}

// A bf16 model keeps its residual stream in f32: the embedding is widened
// once, each block's output is widened before its residual add, the norms
// (f32 weights) read f32 and give bf16, and MoE routing runs in f32.
// --f32-residual=false leaves everything bf16.
TEST(GraphBuilder, ResidualStreamIsF32OverBf16) {
  for (bool f32Residual : {true, false}) {
    mlir::MLIRContext context;
    llvm::Expected<ModelSpec> spec = loadSpecFile(fixture("mixtral", "config.json"));
    ASSERT_FALSE(!spec);
    BuildOptions options{1, 16, "bf16"};
    options.f32Residual = f32Residual;
    auto module = buildForward(context, *spec, options);
    ASSERT_FALSE(!module) << llvm::toString(module.takeError());
    int converts = 0, f32Adds = 0, f32Norms = 0;
    (*module)->walk([&](mlir::Operation *op) {
      auto elementOf = [](mlir::Value v) {
        return mlir::cast<mlir::RankedTensorType>(v.getType()).getElementType();
      };
      converts += mlir::isa<mlir::gai::ConvertOp>(op);
      if (auto add = mlir::dyn_cast<mlir::gai::AddOp>(op))
        f32Adds += elementOf(add.getResult()).isF32();
      if (auto norm = mlir::dyn_cast<mlir::gai::RmsNormOp>(op))
        f32Norms += elementOf(norm.getInput()).isF32() && elementOf(norm.getWeight()).isF32();
      if (auto param = mlir::dyn_cast<mlir::gai::ParamOp>(op)) {
        llvm::StringRef name = param.getName();
        bool wide = name.contains("norm") || name.contains("block_sparse_moe.gate.");
        EXPECT_EQ(param.getType().getElementType().isF32(), f32Residual && wide)
            << name.str();
      }
    });
    // The embedding; per layer 2 norms, the attention output and 4 experts;
    // the final norm.
    EXPECT_EQ(converts, f32Residual ? 1 + 2 * (2 + 4 + 1) + 1 : 0);
    EXPECT_EQ(f32Norms, f32Residual ? 5 : 0);
    // Per layer, two residual adds and the experts' sum (3 adds).
    EXPECT_EQ(f32Adds, f32Residual ? 2 * (2 + 3) : 0);
  }
}

TEST(GraphBuilder, RejectsBadShapesOptions) {
  mlir::MLIRContext context;
  llvm::Expected<ModelSpec> spec = loadSpecFile(fixture("llama", "config.json"));
  ASSERT_FALSE(!spec);
  auto tooLong = buildForward(context, *spec, BuildOptions{1, 129, ""});
  ASSERT_TRUE(!tooLong);
  EXPECT_EQ(llvm::toString(tooLong.takeError()),
            "sequence length must be in [1, 128] (the model's max_seq_len), "
            "got 129");
  auto badType = buildForward(context, *spec, BuildOptions{1, 8, "f8"});
  ASSERT_TRUE(!badType);
  EXPECT_EQ(llvm::toString(badType.takeError()),
            "dtype must be f32, bf16 or f16, got 'f8'");
}

} // namespace
