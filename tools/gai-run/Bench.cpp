// Timing follows peers.py: prefill is the median of `--iters` runs of the
// prefill entry after three warm-ups; decode is the wall time of one
// greedy generation (one prefill of the prompt, then the new tokens) after
// two warm-up generations, as a user would see it.
#include "Bench.h"
#include "JsonLine.h"
#include "SessionFlags.h"

#include "gai/Generate.h"
#include "gai/Session.h"
#include "format/artifact_generated.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace gai {
namespace {

/// The weight bytes one decode step reads: all of `weightBytes` but the
/// embedding tables it only looks rows up in (a tied head's table is read
/// whole by its GEMM, so it counts).
int64_t decodeStreamedBytes(const format::Artifact &root, int64_t weightBytes) {
  if (!root.entries() || !root.weights() || !root.weights()->tensors())
    return weightBytes;
  using Key = std::pair<int, int64_t>;
  auto key = [](const format::BufferRef *b) {
    return b ? Key{static_cast<int>(b->space()), b->offset()} : Key{-1, -1};
  };
  std::set<Key> tables, gemmRead;
  for (const format::EntryPoint *entry : *root.entries()) {
    if (!entry->name() || entry->name()->str() != "decode" || !entry->steps())
      continue;
    for (const format::Step *step : *entry->steps())
      if (auto *e = step->command_as_Embedding())
        tables.insert(key(e->table()));
      else if (auto *g = step->command_as_Gemm()) {
        gemmRead.insert(key(g->b()));
        gemmRead.insert(key(g->gate()));
      }
  }
  int64_t streamed = weightBytes;
  for (const format::TensorDesc *t : *root.weights()->tensors()) {
    const Key k = key(t->buffer());
    if (tables.count(k) && !gemmRead.count(k))
      streamed -= t->buffer()->size();
  }
  return streamed;
}

const char *kBenchUsage =
    "usage: gai-run bench ARTIFACT --workload prefill|decode [--weights FILE]\n"
    "           [--device auto|cpu|cuda|cuda:N] [--iters N] [--prompt N]\n"
    "           [--new-tokens N] [--name NAME] [--host-sampling]\n"
    "\n"
    "prefill runs the prefill entry over its full length (batch row 0 of\n"
    "random tokens); decode generates --new-tokens (256) greedily after a\n"
    "prompt of --prompt (128) random tokens. One JSON line goes to stdout:\n"
    "workload, tokens_per_s and, for prefill, ms and tflops; for decode,\n"
    "weight_gb, achieved_weight_bw_tb_s and step_ms (the median of one\n"
    "decode step run alone, without sampling); weight_bytes (every weight)\n"
    "and streamed_weight_bytes (what a decode step reads: all but embedding\n"
    "tables it only looks rows up in), step_streamed_bw_tb_s (those bytes\n"
    "over step_ms); and greedy_on_device (whether tokens were picked on\n"
    "the device, a chunk of steps per trip to the host;\n"
    "--host-sampling picks each on the host instead). load_s is artifact\n"
    "load plus session setup. Under gai-run launch (a tensor-parallel\n"
    "artifact), rank 0 prints; ranks is the job's size, and params,\n"
    "tflops and the weight figures are one rank's.\n";

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The median wall time of `runs` runs of `entry`, or its error.
StatusOr<double> medianRun(Session &session, const std::string &entry, long runs) {
  std::vector<double> times;
  for (long i = 0; i < runs; ++i) {
    double start = now();
    if (Status s = session.run(entry); !s)
      return s;
    times.push_back(now() - start);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int fail(const std::string &message) {
  std::fprintf(stderr, "gai-run bench: error: %s\n", message.c_str());
  return 1;
}

} // namespace

int benchCommand(int argc, char **argv) {
  std::string artifactPath, weightsPath, workload, name;
  SessionOptions options = SessionOptions::fromEnvironment();
  long iters = 10, promptLen = 128, newTokens = 256;
  bool hostSampling = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char * { return i + 1 < argc ? argv[++i] : nullptr; };
    auto count = [&](long &out) {
      const char *v = value();
      char *end = nullptr;
      out = v ? std::strtol(v, &end, 10) : 0;
      return v && *end == '\0' && out > 0;
    };
    const char *v = nullptr;
    std::string error;
    if (FlagResult r = parseSessionFlag(argc, argv, i, options, error); r != FlagResult::NotMine) {
      if (r == FlagResult::Bad)
        return fail(error);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kBenchUsage, stdout);
      std::fputs(kSessionFlagsHelp, stdout);
      return 0;
    } else if (arg == "--workload") {
      if (!(v = value()))
        return fail("--workload needs prefill or decode");
      workload = v;
    } else if (arg == "--weights") {
      if (!(v = value()))
        return fail("--weights needs a file");
      weightsPath = v;
    } else if (arg == "--name") {
      if (!(v = value()))
        return fail("--name needs a model name");
      name = v;
    } else if (arg == "--host-sampling") {
      hostSampling = true;
    } else if (arg == "--iters") {
      if (!count(iters))
        return fail("--iters needs a count > 0");
    } else if (arg == "--prompt") {
      if (!count(promptLen))
        return fail("--prompt needs a token count > 0");
    } else if (arg == "--new-tokens") {
      if (!count(newTokens))
        return fail("--new-tokens needs a count > 0");
    } else if (!arg.empty() && arg[0] == '-') {
      return fail("unknown option '" + arg + "' (see gai-run bench --help)");
    } else if (artifactPath.empty()) {
      artifactPath = arg;
    } else {
      return fail("unexpected argument '" + arg + "'");
    }
  }
  if (artifactPath.empty())
    return fail("no artifact given (see gai-run bench --help)");
  if (workload != "prefill" && workload != "decode")
    return fail("--workload must be prefill or decode");

  double t0 = now();
  auto artifact = loadArtifact(artifactPath, weightsPath, options.trustedKeys);
  if (!artifact)
    return fail(artifact.status().message());
  // A tensor-parallel artifact runs as one rank of a job (gai-run launch);
  // every rank runs the workload, rank 0 prints.
  auto comm = joinJob(options, *artifact);
  if (!comm)
    return fail(comm.status().message());
  if ((*comm)->rank() != 0 && !std::freopen("/dev/null", "w", stdout))
    return fail("cannot quiet this rank's output");
  auto created = Session::create(std::move(*artifact), options);
  if (!created)
    return fail(created.status().message());
  Session &session = **created;
  double loadSeconds = now() - t0;

  const format::Artifact &root = session.artifact().root();
  if (name.empty())
    name = root.options() && root.options()->model() ? root.options()->model()->str()
                                                      : "model";
  // Parameters and their bytes, from the weight tensors: one rank's in a
  // tensor-parallel job of `ranks` (so are tflops and the weight bandwidth).
  const int64_t ranks = (*comm)->size();
  int64_t params = 0, weightBytes = 0;
  if (root.weights() && root.weights()->tensors())
    for (const format::TensorDesc *t : *root.weights()->tensors()) {
      int64_t n = 1;
      for (int64_t d : *t->shape())
        n *= d;
      params += n;
      weightBytes += t->buffer()->size();
    }
  const int64_t streamedBytes = decodeStreamedBytes(root, weightBytes);
  if (!session.hasEntry("prefill"))
    return fail("the artifact has no prefill entry (compile with --entries=prefill,decode)");
  std::vector<TensorRef> in = session.inputs("prefill");
  int64_t vocab = session.outputs("prefill").at(0).shape.back();
  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(vocab - 1));
  std::string deviceName = session.deviceName();

  if (workload == "prefill") {
    int64_t batch = in[0].shape[0], length = in[0].shape[1];
    for (int64_t i = 0; i < batch * length; ++i)
      in[0].as<int32_t>()[i] = token(rng);
    for (int64_t b = 0; b < batch; ++b) {
      in[1].as<int32_t>()[b] = 0;
      in[2].as<int32_t>()[b] = static_cast<int32_t>(length - 1);
    }
    for (int i = 0; i < 3; ++i)
      if (Status s = session.run("prefill"); !s)
        return fail(s.message());
    StatusOr<double> median = medianRun(session, "prefill", iters);
    if (!median)
      return fail(median.status().message());
    double dt = *median;
    // peers.py's count: 2 flops per parameter and 4·d per layer per key
    // (not discounted for causality), d·layers summed over attention steps.
    double attention = 0;
    for (const format::EntryPoint *e : *root.entries())
      if (e->name()->str() == "prefill")
        for (const format::Step *step : *e->steps())
          if (const format::Attention *a = step->command_as_Attention())
            attention += 4.0 * a->heads() * a->head_dim();
    double tokens = static_cast<double>(batch * length);
    double flops = (2.0 * params + attention * length) * tokens;
    std::printf("%s\n", jsonLine({{"workload", "prefill-" + name},
                                  {"peer", "gai"},
                                  {"device", deviceName},
                                  {"ranks", ranks},
                                  {"batch", batch},
                                  {"seq", length},
                                  {"params", params},
                                  {"ms", rounded(dt * 1e3, 4)},
                                  {"tokens_per_s", rounded(tokens / dt, 1)},
                                  {"tflops", rounded(flops / dt / 1e12, 2)},
                                  {"load_s", rounded(loadSeconds, 3)}})
                           .c_str());
    return 0;
  }

  std::vector<int32_t> prompt(static_cast<size_t>(promptLen));
  for (int32_t &t : prompt)
    t = token(rng);
  GenerateOptions generate;
  generate.maxNewTokens = newTokens;
  generate.greedyOnDevice = !hostSampling;
  double warm = now();
  for (int i = 0; i < 2; ++i) {
    session.resetState();
    auto out = gai::generate(session, {prompt}, generate);
    if (!out)
      return fail(out.status().message());
    if (i == 0)
      warm = now() - warm;
  }
  session.resetState();
  GenerateStats stats;
  double start = now();
  auto out = gai::generate(session, {prompt}, generate, {}, &stats);
  double dt = now() - start;
  if (!out)
    return fail(out.status().message());
  auto made = static_cast<double>(out->at(0).size());
  double tokensPerSecond = made / dt;
  // One decode step alone (the entry's run, logits copied to the host), so
  // the gap to the generation's time per token is what sampling and the
  // host loop cost.
  StatusOr<double> stepSeconds = medianRun(session, "decode", 64);
  if (!stepSeconds)
    return fail(stepSeconds.status().message());
  double decodeOnly =
      stats.decodeSeconds > 0 ? stats.decodeTokens / stats.decodeSeconds : 0.0;
  std::printf(
      "%s\n",
      jsonLine({{"workload", "decode-" + name},
                {"peer", "gai"},
                {"device", deviceName},
                {"ranks", ranks},
                {"batch", 1},
                {"prompt", promptLen},
                {"new_tokens", out->at(0).size()},
                {"tokens_per_s", rounded(tokensPerSecond, 1)},
                {"decode_only_tokens_per_s", rounded(decodeOnly, 1)},
                {"weight_gb", rounded(weightBytes / 1e9, 4)},
                {"achieved_weight_bw_tb_s", rounded(weightBytes * tokensPerSecond / 1e12, 4)},
                {"step_ms", rounded(*stepSeconds * 1e3, 4)},
                {"weight_bytes", weightBytes},
                {"streamed_weight_bytes", streamedBytes},
                {"step_streamed_bw_tb_s",
                 rounded(*stepSeconds > 0 ? streamedBytes / *stepSeconds / 1e12 : 0.0, 4)},
                {"greedy_on_device", !hostSampling && session.greedyStepsAtOnce() > 0},
                {"warmup_s", rounded(warm, 3)},
                {"load_s", rounded(loadSeconds, 3)}})
          .c_str());
  return 0;
}

} // namespace gai
