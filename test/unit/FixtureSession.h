// Compiling an HF fixture (test/fixtures/hf/<family>-tiny) with gaic's
// library, weights embedded, and opening it in a CPU session: what the
// runtime and training tests start from.
#ifndef GAI_TEST_UNIT_FIXTURESESSION_H
#define GAI_TEST_UNIT_FIXTURESESSION_H

#include "compiler/Pipeline.h"
#include "gai/Session.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace gai {

inline std::string fixtureDir(const std::string &family) {
  return std::string(GAI_FIXTURES_DIR) + "/hf/" + family + "-tiny/";
}

/// `options` with the family's config (unless it names one) and weights
/// (or `weightsPath`) filled in, compiled and loaded; null (with the test
/// failed) on any error.
inline std::unique_ptr<Session> compileFixture(const std::string &family,
                                               CompileOptions options,
                                               const std::string &weightsPath = "") {
  if (options.specPath.empty())
    options.specPath = fixtureDir(family) + "config.json";
  options.weightsPath =
      weightsPath.empty() ? fixtureDir(family) + "model.safetensors" : weightsPath;
  mlir::MLIRContext context;
  auto model = importModel(context, options);
  EXPECT_TRUE(!!model) << (model ? "" : llvm::toString(model.takeError()));
  if (!model)
    return nullptr;
  EXPECT_TRUE(mlir::succeeded(optimize(*model->module, options)));
  auto bytes =
      compileArtifact(*model->module, model->spec, options, WeightsMode::Embedded, "");
  EXPECT_TRUE(!!bytes) << (bytes ? "" : llvm::toString(bytes.takeError()));
  if (!bytes)
    return nullptr;
  auto artifact = LoadedArtifact::fromBytes(std::move(*bytes), family, ".");
  EXPECT_TRUE(artifact.isOk()) << artifact.status().message();
  if (!artifact)
    return nullptr;
  SessionOptions session;
  session.device = "cpu";
  auto s = Session::create(std::move(*artifact), session);
  EXPECT_TRUE(s.isOk()) << s.status().message();
  return s ? std::move(*s) : nullptr;
}

} // namespace gai

#endif // GAI_TEST_UNIT_FIXTURESESSION_H
