// The weights check lists every missing, extra and mis-shaped tensor.
#include "frontend/GraphBuilder.h"
#include "frontend/WeightCheck.h"
#include "SafetensorsImage.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using namespace gai;

namespace {

/// A safetensors image holding F32 tensors of the given names and shapes.
SafetensorsFile makeFile(
    const std::vector<std::pair<std::string, std::vector<int64_t>>> &tensors,
    const char *dtype = "F32") {
  std::string header = "{";
  size_t offset = 0;
  for (const auto &[name, shape] : tensors) {
    size_t bytes = std::string(dtype) == "BF16" ? 2 : 4;
    std::string dims;
    for (int64_t d : shape) {
      bytes *= d;
      dims += (dims.empty() ? "" : ",") + std::to_string(d);
    }
    if (header.size() > 1)
      header += ",";
    header += "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[" +
              dims + "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  std::vector<uint8_t> bytes = test::safetensorsImage(header, offset);
  auto file = SafetensorsFile::fromBytes(bytes.data(), bytes.size(), "w.st");
  EXPECT_TRUE(file.isOk()) << file.status().message();
  return std::move(file.value());
}

ModelSpec tinySpec() {
  ModelSpec spec;
  spec.name = "t";
  spec.vocab = 16;
  spec.dModel = 8;
  spec.layers = 1;
  spec.heads = 2;
  spec.kvHeads = 2;
  spec.headDim = 4;
  spec.ffnDim = 12;
  spec.maxSeqLen = 4;
  spec.tiedEmbeddings = true;
  return spec;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> tinyTensors() {
  std::string p = "model.layers.0.";
  return {{"model.embed_tokens.weight", {16, 8}},
          {p + "input_layernorm.weight", {8}},
          {p + "self_attn.q_proj.weight", {8, 8}},
          {p + "self_attn.k_proj.weight", {8, 8}},
          {p + "self_attn.v_proj.weight", {8, 8}},
          {p + "self_attn.o_proj.weight", {8, 8}},
          {p + "post_attention_layernorm.weight", {8}},
          {p + "mlp.gate_proj.weight", {12, 8}},
          {p + "mlp.up_proj.weight", {12, 8}},
          {p + "mlp.down_proj.weight", {8, 12}},
          {"model.norm.weight", {8}}};
}

class WeightCheck : public ::testing::Test {
protected:
  void SetUp() override {
    auto built = buildForward(context, spec, BuildOptions{1, 4, "f32"});
    ASSERT_FALSE(!built) << llvm::toString(built.takeError());
    module = std::move(*built);
  }
  std::string check(const SafetensorsFile &file) {
    llvm::Error e = checkWeights(*module, WeightSet::of(file), spec);
    return e ? llvm::toString(std::move(e)) : "ok";
  }
  mlir::MLIRContext context;
  ModelSpec spec = tinySpec();
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

TEST_F(WeightCheck, ExactMatchPasses) {
  EXPECT_EQ(check(makeFile(tinyTensors())), "ok");
}

TEST_F(WeightCheck, ListsEveryProblem) {
  auto tensors = tinyTensors();
  tensors.erase(tensors.begin() + 7);  // gate_proj missing
  tensors[2].second = {8, 4};          // q_proj mis-shaped
  tensors.push_back({"lm_head.weight", {16, 8}}); // tied: not a parameter
  EXPECT_EQ(check(makeFile(tensors)),
            "w.st: the weights do not match the model (3 problems):\n"
            "  missing: model.layers.0.mlp.gate_proj.weight [12, 8]\n"
            "  mis-shaped: model.layers.0.self_attn.q_proj.weight is [8, 4] "
            "in the file, the model expects [8, 8]\n"
            "  extra: lm_head.weight [16, 8] is not a parameter of the model");
}

TEST_F(WeightCheck, IntegerTensorsForFloatParameters) {
  std::string message = check(makeFile(tinyTensors(), "I32"));
  EXPECT_NE(message.find("(11 problems)"), std::string::npos) << message;
  EXPECT_NE(message.find("wrong dtype: model.norm.weight is I32, the model "
                         "expects floats"),
            std::string::npos);
}

TEST_F(WeightCheck, HalfPrecisionFilesAreAccepted) {
  EXPECT_EQ(check(makeFile(tinyTensors(), "BF16")), "ok");
}

TEST(WeightCheckNames, Gpt2CheckpointsWithoutPrefixOrMaskBuffers) {
  ModelSpec spec;
  spec.naming = ParamNaming::GPT2;
  EXPECT_EQ(paramNameOf(spec, "h.0.attn.c_attn.weight"),
            "transformer.h.0.attn.c_attn.weight");
  EXPECT_EQ(paramNameOf(spec, "transformer.wte.weight"),
            "transformer.wte.weight");
  EXPECT_EQ(paramNameOf(spec, "h.3.attn.bias"), "");
  EXPECT_EQ(paramNameOf(spec, "h.3.attn.masked_bias"), "");
  spec.naming = ParamNaming::HFDecoder;
  EXPECT_EQ(paramNameOf(spec, "model.norm.weight"), "model.norm.weight");
}

} // namespace
