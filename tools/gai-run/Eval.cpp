// gai-run eval: the mean loss and perplexity of a model on text, so a user
// sees what quantization (or anything else) cost. Every token of the split
// is scored once: consecutive windows of the forward entry's length, each
// position predicting the next token, log-softmax in double on the host.
#include "Eval.h"
#include "Flags.h"
#include "JsonLine.h"
#include "SessionFlags.h"

#include "gai/Comm.h"
#include "gai/Session.h"
#include "gai/FloatConvert.h"
#include "gai/Train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace gai {
namespace {

const char *kEvalUsage =
    "usage: gai-run eval ARTIFACT --data FILE... [--weights FILE] [--format F]\n"
    "           [--held-out F] [--max-tokens N] [--json] [session flags]\n"
    "\n"
    "Scores every token of the data (or, with --held-out F, of its last F\n"
    "fraction, the split gai-run train holds out with the same F) with the\n"
    "artifact's forward entry (gaic --entries forward, ...): consecutive\n"
    "windows of its length, each position predicting the next token. Prints\n"
    "the tokens scored, the mean loss (nats a token) and the perplexity\n"
    "exp(loss); --json prints one JSON line instead. --format is auto (.bin:\n"
    "u16 ids, else byte-level text), text, u16 or u32, as for train.\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "gai-run eval: error: %s\n", message.c_str());
  return 1;
}

/// −log softmax(row)[target], in double.
double negativeLogLikelihood(const float *row, int64_t vocab, int32_t target) {
  double top = *std::max_element(row, row + vocab), sum = 0;
  for (int64_t v = 0; v < vocab; ++v)
    sum += std::exp(static_cast<double>(row[v]) - top);
  return std::log(sum) + top - row[target];
}

} // namespace

int evalCommand(int argc, char **argv) {
  std::string artifactPath, weightsPath, format = "auto";
  std::vector<std::string> data;
  SessionOptions options = SessionOptions::fromEnvironment();
  double heldOut = 0;
  int64_t maxTokens = 0;
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
    const char *v = nullptr;
    std::string error;
    if (FlagResult r = parseSessionFlag(argc, argv, i, options, error); r != FlagResult::NotMine) {
      if (r == FlagResult::Bad)
        return fail(error);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kEvalUsage, stdout);
      std::fputs(kSessionFlagsHelp, stdout);
      return 0;
    } else if (arg == "--data") {
      if (!(v = value()))
        return fail("--data needs a file");
      data.push_back(v);
    } else if (arg == "--weights") {
      if (!(v = value()))
        return fail("--weights needs a file");
      weightsPath = v;
    } else if (arg == "--format") {
      if (!(v = value()))
        return fail("--format needs auto, text, u16 or u32");
      format = v;
    } else if (arg == "--held-out") {
      if (!(v = value()) || !parseDouble(v, heldOut) || heldOut <= 0 || heldOut >= 1)
        return fail("--held-out needs a fraction in (0, 1)");
    } else if (arg == "--max-tokens") {
      if (!(v = value()) || !parseInt(v, maxTokens) || maxTokens < 1)
        return fail("--max-tokens needs a count > 0");
    } else if (arg == "--json") {
      json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (see gai-run eval --help)");
    } else if (artifactPath.empty()) {
      artifactPath = arg;
    } else {
      return fail("unexpected argument '" + arg + "'");
    }
  }
  if (artifactPath.empty() || data.empty())
    return fail("needs ARTIFACT and --data FILE (see gai-run eval --help)");

  auto artifact = loadArtifact(artifactPath, weightsPath, options.trustedKeys);
  if (!artifact)
    return fail(artifact.status().message());
  // A tensor-parallel artifact runs as one rank of a job; rank 0 prints.
  auto comm = joinJob(options, *artifact);
  if (!comm)
    return fail(comm.status().message());
  if ((*comm)->rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    return fail("cannot quiet this rank's output");
  auto created = Session::create(std::move(*artifact), options);
  if (!created)
    return fail(created.status().message());
  Session &session = **created;
  std::vector<TensorRef> inputs = session.inputs("forward"),
                         outputs = session.outputs("forward");
  if (inputs.size() != 1 || outputs.size() != 1 || inputs[0].shape.size() != 2 ||
      outputs[0].shape.size() != 3 || inputs[0].dtype != DType::I32)
    return fail(artifactPath + ": eval runs the forward entry (tokens [batch, length] -> "
                "logits [batch, length, vocab]); compile with gaic --entries forward");
  const int64_t rows = inputs[0].shape[0], length = inputs[0].shape[1],
                vocab = outputs[0].shape[2];
  auto loaded = TrainData::load(data, format, vocab, heldOut);
  if (!loaded)
    return fail(loaded.status().message());
  const bool evaluation = heldOut > 0;
  int64_t available = evaluation ? loaded->evalTokens() : loaded->trainTokens();
  if (maxTokens > 0)
    available = std::min(available, maxTokens + 1);
  const int32_t *tokens = loaded->splitTokens(evaluation);
  if (available < 2)
    return fail("the data has fewer than 2 tokens to score");

  // Windows of `length` inputs, each with its next token: consecutive
  // windows share one token, so every token but the first is predicted once.
  const int64_t windows = (available - 1 + length - 1) / length;
  double total = 0;
  int64_t scored = 0;
  std::vector<float> logits;
  for (int64_t first = 0; first < windows; first += rows) {
    std::fill_n(inputs[0].as<int32_t>(), rows * length, 0);
    for (int64_t r = 0; r < rows && first + r < windows; ++r) {
      int64_t begin = (first + r) * length;
      int64_t count = std::min(length, available - begin);
      std::copy_n(tokens + begin, count, inputs[0].as<int32_t>() + r * length);
    }
    if (Status s = session.run("forward"); !s)
      return fail(s.message());
    const TensorRef &out = outputs[0];
    logits.resize(static_cast<size_t>(rows * length * vocab));
    if (out.dtype == DType::F32)
      std::copy_n(out.as<float>(), logits.size(), logits.data());
    else if (!convertFloats(out.data, out.dtype, logits.data(), DType::F32, logits.size()))
      return fail("the forward entry's logits are neither f32, bf16 nor f16");
    for (int64_t r = 0; r < rows && first + r < windows; ++r) {
      int64_t begin = (first + r) * length;
      // Position p predicts token begin + p + 1.
      int64_t predicted = std::min(length, available - 1 - begin);
      for (int64_t p = 0; p < predicted; ++p) {
        double nll = negativeLogLikelihood(logits.data() + (r * length + p) * vocab, vocab,
                                           tokens[begin + p + 1]);
        total += nll;
        ++scored;
      }
    }
  }
  double loss = total / static_cast<double>(scored), perplexity = std::exp(loss);
  if (json)
    std::printf("%s\n", jsonLine({{"tokens", scored},
                                  {"loss", rounded(loss, 6)},
                                  {"perplexity", rounded(perplexity, 4)},
                                  {"split", evaluation ? "held-out" : "all"}})
                            .c_str());
  else
    std::printf("eval: %lld tokens (%s), mean loss %.6f, perplexity %.4f\n",
                static_cast<long long>(scored), evaluation ? "held-out" : "all", loss,
                perplexity);
  return 0;
}

} // namespace gai
