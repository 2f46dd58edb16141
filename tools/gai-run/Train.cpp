// gai-run train: the loop around gai::Trainer. Flags override the spec's
// train section, which the artifact carries.
#include "Train.h"

#include "Flags.h"
#include "JsonLine.h"
#include "SessionFlags.h"
#include "LossPlot.h"
#include "format/artifact_generated.h"
#include "gai/Comm.h"
#include "gai/Generate.h"
#include "gai/SafeFile.h"
#include "gai/Tokenizer.h"
#include "gai/Train.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gai {
namespace {

/// The run's steady speed: the mean and median step of `seconds` (steps
/// firstStep + 1 on), leaving out the first two of more than two steps (an
/// entry's first run is eager and its second captures the CUDA graph).
void printSteadySpeed(const std::vector<double> &seconds, double tokensPerStep,
                      int64_t firstStep) {
  if (seconds.empty())
    return;
  const size_t skip = seconds.size() > 2 ? 2 : 0;
  std::vector<double> steady(seconds.begin() + static_cast<std::ptrdiff_t>(skip), seconds.end());
  double mean = 0;
  for (double s : steady)
    mean += s / static_cast<double>(steady.size());
  std::nth_element(steady.begin(), steady.begin() + steady.size() / 2, steady.end());
  double median = steady[steady.size() / 2];
  std::fprintf(stderr,
               "speed: %.0f tokens/s over steps %lld-%lld (a step: mean %.3f ms, median %.3f ms)\n",
               mean > 0 ? tokensPerStep / mean : 0.0,
               static_cast<long long>(firstStep + 1 + static_cast<int64_t>(skip)),
               static_cast<long long>(firstStep + static_cast<int64_t>(seconds.size())),
               mean * 1e3, median * 1e3);
}

const char *kTrainUsage =
    "usage: gai-run train ARTIFACT [--weights FILE] [--device D] --data FILE...\n"
    "         [--data-format auto|text|u16|u32] [--steps N] [--batch B] [--seq T]\n"
    "         [--lr LR] [--min-lr LR] [--warmup N] [--weight-decay W] [--grad-clip C]\n"
    "         [--seed S] [--held-out F] [--eval-every K] [--eval-batches N]\n"
    "         [--metrics FILE.jsonl] [--checkpoint-dir DIR] [--checkpoint-every N]\n"
    "         [--keep-checkpoints N] [--resume CKPT|DIR] [--sample-every K]\n"
    "         [--sample-prompt TEXT] [--sample-tokens N] [-o WEIGHTS.safetensors]\n"
    "         [--plot FILE.svg] [--quiet]\n"
    "\n"
    "Trains the artifact of `gaic --mode=train` from --weights, or from a\n"
    "random start (normal(0, 0.02), seeded). Defaults come from the spec's\n"
    "train section. --batch is rows per step: a multiple of the rows the\n"
    "artifact was compiled for (the rest are micro-batches). --data: text\n"
    "(byte tokens) or .bin token files (uint16; llm.c's header is read).\n"
    "The learning rate warms up linearly over --warmup steps, then follows a\n"
    "cosine to --min-lr at --steps. Steps whose loss or gradients are not\n"
    "finite are skipped; 5 in a row stop the run. Checkpoints are atomic\n"
    "safetensors files in DIR, with a checksum per tensor; DIR/lock keeps a\n"
    "second trainer out. --resume continues exactly (a directory resumes from\n"
    "its latest) and refuses a checkpoint that is corrupt or not finite. The\n"
    "trained weights go to -o (default ARTIFACT's name + .trained.safetensors),\n"
    "the loss curve to --plot; outputs appear only when complete and replace\n"
    "only regular files. A failed write (a full disk) stops the run.\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "gai-run train: error: %s\n", message.c_str());
  return 1;
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  char buffer[32];
  auto s = static_cast<long long>(seconds);
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", s / 3600, s / 60 % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", s / 60, s % 60);
  return buffer;
}

std::string checkpointName(int64_t step) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "step-%08lld.safetensors", static_cast<long long>(step));
  return buffer;
}

bool isDirectory(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// The newest step-*.safetensors named by DIR/latest.
StatusOr<std::string> latestCheckpoint(const std::string &dir) {
  auto bytes = readRegularFile(dir + "/latest");
  if (!bytes)
    return Status::error(dir + ": no checkpoint to resume from (" +
                         bytes.status().message() + ")");
  std::string name(bytes->begin(), bytes->end());
  name = name.substr(0, name.find('\n'));
  if (name.empty())
    return Status::error(dir + "/latest: names no checkpoint");
  return dir + "/" + name;
}

/// The training losses (and evaluation losses) a metrics file records.
void readCurves(const std::vector<uint8_t> &metrics, std::vector<LossPoint> &train,
                std::vector<LossPoint> &eval) {
  std::string text(metrics.begin(), metrics.end());
  for (size_t begin = 0, end; begin < text.size(); begin = end + 1) {
    end = text.find('\n', begin);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(begin, end - begin);
    nlohmann::json fields = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!fields.is_object() || !fields.contains("step") || !fields["step"].is_number())
      continue;
    // A null value is a NaN or Inf loss: the point stays, as it was plotted.
    auto value = [&](const char *key) {
      return fields[key].is_number() ? fields[key].get<double>() : NAN;
    };
    auto step = fields["step"].get<int64_t>();
    if (fields.contains("loss"))
      train.push_back({step, value("loss")});
    if (fields.contains("eval_loss"))
      eval.push_back({step, value("eval_loss")});
  }
}

struct Flags {
  SessionOptions session = SessionOptions::fromEnvironment();
  std::string artifact, weights, format = "auto", metrics,
      checkpointDir, resume, output, plot, samplePrompt = "\n";
  std::vector<std::string> data;
  int64_t steps = -1, batch = -1, seq = -1, warmup = -1, seed = -1, evalEvery = -1,
          evalBatches = 4, checkpointEvery = -1, keep = 3, sampleEvery = 0,
          sampleTokens = 64;
  double lr = -1, minLr = -1, weightDecay = -1, gradClip = -1, heldOut = -1;
  bool quiet = false;
};

} // namespace

int trainCommand(int argc, char **argv) {
  Flags f;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i], v;
    auto value = [&]() {
      if (i + 1 >= argc)
        return false;
      v = argv[++i];
      return true;
    };
    auto integer = [&](int64_t &out, int64_t min) {
      return value() && parseInt(v, out) && out >= min;
    };
    auto real = [&](double &out) { return value() && parseDouble(v, out) && out >= 0; };
    bool ok = true;
    std::string error;
    if (FlagResult r = parseSessionFlag(argc, argv, i, f.session, error);
        r != FlagResult::NotMine) {
      if (r == FlagResult::Bad)
        return fail(error);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kTrainUsage, stdout);
      std::fputs(kSessionFlagsHelp, stdout);
      return 0;
    } else if (arg == "--weights") ok = value(), f.weights = v;
    else if (arg == "--data") ok = value(), f.data.push_back(v);
    else if (arg == "--data-format") ok = value(), f.format = v;
    else if (arg == "--steps") ok = integer(f.steps, 0);
    else if (arg == "--batch") ok = integer(f.batch, 1);
    else if (arg == "--seq") ok = integer(f.seq, 1);
    else if (arg == "--lr") ok = real(f.lr);
    else if (arg == "--min-lr") ok = real(f.minLr);
    else if (arg == "--warmup") ok = integer(f.warmup, 0);
    else if (arg == "--weight-decay") ok = real(f.weightDecay);
    else if (arg == "--grad-clip") ok = real(f.gradClip);
    else if (arg == "--seed") ok = integer(f.seed, 0);
    else if (arg == "--held-out") ok = real(f.heldOut);
    else if (arg == "--eval-every") ok = integer(f.evalEvery, 0);
    else if (arg == "--eval-batches") ok = integer(f.evalBatches, 1);
    else if (arg == "--metrics") ok = value(), f.metrics = v;
    else if (arg == "--checkpoint-dir") ok = value(), f.checkpointDir = v;
    else if (arg == "--checkpoint-every") ok = integer(f.checkpointEvery, 0);
    else if (arg == "--keep-checkpoints") ok = integer(f.keep, 1);
    else if (arg == "--resume") ok = value(), f.resume = v;
    else if (arg == "--sample-every") ok = integer(f.sampleEvery, 0);
    else if (arg == "--sample-prompt") ok = value(), f.samplePrompt = v;
    else if (arg == "--sample-tokens") ok = integer(f.sampleTokens, 1);
    else if (arg == "-o" || arg == "--output") ok = value(), f.output = v;
    else if (arg == "--plot") ok = value(), f.plot = v;
    else if (arg == "--quiet") f.quiet = true;
    else if (!arg.empty() && arg[0] == '-')
      return fail("unknown option '" + arg + "' (see gai-run train --help)");
    else if (f.artifact.empty()) f.artifact = arg;
    else return fail("unexpected argument '" + arg + "'");
    if (!ok)
      return fail(arg + ": missing or invalid value" + (v.empty() ? "" : " '" + v + "'"));
  }
  if (f.artifact.empty())
    return fail("no artifact given (see gai-run train --help)");

  auto artifact = loadArtifact(f.artifact, f.weights, f.session.trustedKeys);
  if (!artifact)
    return fail(artifact.status().message());
  bool startsFromWeights = artifact->weights() != nullptr;
  // A sharded job (gai-run launch, mpirun, srun, torchrun): rank 0 writes
  // the files and prints; every rank trains on its share of each batch.
  auto comm = joinJob(f.session, *artifact);
  if (!comm)
    return fail(comm.status().message());
  const bool lead = (*comm)->rank() == 0;
  if (!lead)
    f.quiet = true;
  auto session = Session::create(std::move(*artifact), f.session);
  if (!session)
    return fail(session.status().message());
  Session &s = **session;

  // Defaults: the spec's train section, carried by the artifact.
  const format::TrainDefaults *d = s.artifact().root().train();
  auto pick = [](auto flag, auto fromSpec, auto fallback) {
    return flag >= 0 ? flag : (fromSpec > 0 ? fromSpec : fallback);
  };
  OptimizerOptions opt;
  opt.lr = pick(f.lr, d ? d->lr() : 0.0, 3e-4);
  opt.minLr = f.minLr >= 0 ? f.minLr : d ? d->min_lr() : 0.0;
  opt.warmupSteps = f.warmup >= 0 ? f.warmup : d ? d->warmup_steps() : 0;
  opt.weightDecay = f.weightDecay >= 0 ? f.weightDecay : d ? d->weight_decay() : 0.1;
  opt.gradClip = f.gradClip >= 0 ? f.gradClip : d ? d->grad_clip() : 1.0;
  int64_t steps = pick(f.steps, d ? d->steps() : int64_t(0), int64_t(100));
  opt.totalSteps = steps;
  auto seed = static_cast<uint64_t>(f.seed >= 0 ? f.seed : d ? static_cast<int64_t>(d->seed()) : 0);
  int64_t evalEvery = f.evalEvery >= 0 ? f.evalEvery : d ? d->eval_every() : 0;
  int64_t checkpointEvery = f.checkpointEvery >= 0 ? f.checkpointEvery
                            : d                    ? d->checkpoint_every()
                                                   : 0;
  if (f.data.empty() && d && d->data())
    for (const auto *path : *d->data())
      f.data.push_back(path->str());

  auto trainer = Trainer::create(s, opt);
  if (!trainer)
    return fail(trainer.status().message());
  Trainer &t = *trainer;
  if (f.seq >= 0 && f.seq != t.seqLen())
    return fail("--seq " + std::to_string(f.seq) + ": the artifact trains on rows of " +
                std::to_string(t.seqLen()) + " tokens; recompile with gaic --train-seq-len");
  int64_t batch = pick(f.batch, d ? d->batch() : int64_t(0), t.rows());
  if (batch % t.rows() != 0)
    return fail("--batch " + std::to_string(batch) + " is not a multiple of the " +
                std::to_string(t.rows()) + " rows per micro-batch the artifact was compiled for");
  int64_t micro = batch / t.rows();

  // The vocabulary: the generation step's logits [batch, vocab].
  std::vector<TensorRef> logits = s.outputs("prefill");
  if (logits.empty() || logits[0].shape.size() != 2)
    return fail("the artifact has no prefill entry to tell its vocabulary (and to sample "
                "with); compile it with gaic --mode=train and no --entries");
  int64_t vocab = logits[0].shape[1];
  double heldOut = f.heldOut >= 0 ? f.heldOut : evalEvery > 0 ? 0.1 : 0.0;
  auto data = TrainData::load(f.data, f.format, vocab, heldOut);
  if (!data)
    return fail(data.status().message());

  if (f.output.empty()) {
    std::string stem = f.artifact;
    if (stem.size() > 4 && stem.compare(stem.size() - 4, 4, ".gai") == 0)
      stem.resize(stem.size() - 4);
    f.output = stem + ".trained.safetensors";
  }
  if (f.plot.empty())
    f.plot = f.output.substr(0, f.output.size() - std::string(".safetensors").size()) +
             ".loss.svg";
  // Checked now, not after hours of training.
  for (const std::string *output : {&f.output, &f.plot})
    if (Status st = checkReplaceable(*output); !st)
      return fail(st.message());
  std::optional<DirectoryLock> lock;
  if (!f.checkpointDir.empty() && lead) {
    if (!isDirectory(f.checkpointDir) && ::mkdir(f.checkpointDir.c_str(), 0755) != 0)
      return fail(f.checkpointDir + ": cannot create the checkpoint directory: " +
                  std::strerror(errno));
    auto acquired = DirectoryLock::acquire(f.checkpointDir);
    if (!acquired)
      return fail(acquired.status().message());
    if (acquired->stalePid() > 0)
      std::fprintf(stderr, "note: %s: taking over the lock of pid %ld, which ended without "
                           "releasing it\n",
                   acquired->path().c_str(), acquired->stalePid());
    lock.emplace(std::move(*acquired));
  }

  if (!f.resume.empty()) {
    std::string path = f.resume;
    if (isDirectory(f.resume)) {
      auto latest = latestCheckpoint(f.resume);
      if (!latest)
        return fail(latest.status().message());
      path = *latest;
    }
    auto metadata = t.loadCheckpoint(path);
    if (!metadata)
      return fail(metadata.status().message());
    auto it = metadata->find("gai.seed");
    if (it != metadata->end() && f.seed < 0)
      seed = std::strtoull(it->second.c_str(), nullptr, 10);
    if (lead)
      std::fprintf(stderr, "resuming from %s at step %lld\n", path.c_str(),
                   static_cast<long long>(t.step()));
  } else if (!startsFromWeights) {
    if (Status st = t.initialiseRandomly(seed); !st)
      return fail(st.message());
  }

  std::optional<AppendFile> metrics;
  if (!f.metrics.empty() && lead) {
    auto opened = AppendFile::open(f.metrics, f.resume.empty());
    if (!opened)
      return fail(opened.status().message());
    metrics.emplace(std::move(*opened));
  }
  bool tty = ::isatty(2) && !f.quiet;
  if (lead)
    std::fprintf(stderr,
               "training on %s: %lld steps of %lld rows x %lld tokens (%lld micro-batches), "
               "%lld training tokens, %lld held out, lr %g\n",
               s.deviceName().c_str(), static_cast<long long>(steps),
               static_cast<long long>(batch), static_cast<long long>(t.seqLen()),
               static_cast<long long>(micro), static_cast<long long>(data->trainTokens()),
               static_cast<long long>(data->evalTokens()), opt.lr);

  // The most device memory seen in use, sampled after each step.
  int64_t deviceUsedPeak = -1;

  ByteTokenizer tokenizer(vocab);
  // Every rank samples (a tensor-parallel artifact's generation takes them
  // all); rank 0 prints.
  auto sample = [&](int64_t step) {
    auto prompt = tokenizer.encode(f.samplePrompt);
    if (!prompt)
      return;
    GenerateOptions g;
    g.maxNewTokens = f.sampleTokens;
    g.sampling.temperature = 0.8f;
    g.sampling.topK = 40;
    g.sampling.seed = seed + static_cast<uint64_t>(step);
    auto out = generate(s, {*prompt}, g);
    if (!lead)
      return;
    if (!out)
      return (void)std::fprintf(stderr, "sample: %s\n", out.status().message().c_str());
    std::string text;
    if (data->isText()) {
      text = tokenizer.decode((*out)[0]);
    } else {
      for (int32_t id : (*out)[0])
        text += std::to_string(id) + " ";
    }
    std::fprintf(stderr, "%s--- sample at step %lld ---\n%s%s\n---\n", tty ? "\r\x1b[K" : "",
                 static_cast<long long>(step), f.samplePrompt.c_str(), text.c_str());
  };
  auto evaluate = [&](double &out) -> Status {
    std::vector<int32_t> tokens, targets;
    double total = 0;
    for (int64_t i = 0; i < f.evalBatches; ++i) {
      if (Status st = data->batch(seed, i, 0, t.rows(), t.seqLen(), tokens, targets, true); !st)
        return st;
      auto loss = t.evalLoss(tokens.data(), targets.data());
      if (!loss)
        return loss.status();
      total += *loss;
    }
    out = total / static_cast<double>(f.evalBatches);
    return Status::ok();
  };
  std::vector<std::string> written; // checkpoints of this run, oldest first
  auto checkpoint = [&]() -> Status {
    if (metrics) // the metrics as far as the checkpoint, durably
      if (Status st = metrics->sync(); !st)
        return st;
    std::string name = checkpointName(t.step());
    std::string path = f.checkpointDir + "/" + name;
    if (Status st = t.saveCheckpoint(path, {{"gai.seed", std::to_string(seed)},
                                            {"gai.data_position", std::to_string(t.step())}});
        !st)
      return st;
    if (!lead)
      return Status::ok();
    if (Status st = writeFileAtomically(f.checkpointDir + "/latest", name + "\n"); !st)
      return st;
    written.push_back(path);
    while (static_cast<int64_t>(written.size()) > f.keep) { // never the newest
      std::remove(written.front().c_str());
      written.erase(written.begin());
    }
    return Status::ok();
  };

  std::vector<LossPoint> trainCurve, evalCurve;
  std::vector<double> stepSecondsRun; // this run's steps, for the summary
  std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(micro)),
      targets(static_cast<size_t>(micro));
  std::vector<const int32_t *> tokenPtrs(static_cast<size_t>(micro)),
      targetPtrs(static_cast<size_t>(micro));
  auto start = std::chrono::steady_clock::now();
  int64_t firstStep = t.step();
  double tokensPerStep = static_cast<double>(batch * t.seqLen());
  while (t.step() < steps) {
    int64_t step = t.step();
    for (int64_t m = 0; m < micro; ++m) {
      if (Status st = data->batch(seed, step, m, t.rows(), t.seqLen(), tokens[m], targets[m]);
          !st)
        return fail(st.message());
      tokenPtrs[m] = tokens[m].data();
      targetPtrs[m] = targets[m].data();
    }
    auto stepStart = std::chrono::steady_clock::now();
    auto result = t.trainStep(tokenPtrs, targetPtrs);
    if (!result) // the last good checkpoint stays as it was
      return fail(result.status().message());
    auto now = std::chrono::steady_clock::now();
    double stepSeconds = std::chrono::duration<double>(now - stepStart).count();
    stepSecondsRun.push_back(stepSeconds);
    double elapsed = std::chrono::duration<double>(now - start).count();
    int64_t done = t.step() - firstStep;
    double rate = tokensPerStep * static_cast<double>(done) / elapsed;
    if (result->skipped && lead)
      std::fprintf(stderr, "%swarning: step %lld: loss %g, gradient norm %g: not finite; "
                           "skipped\n",
                   tty ? "\r\x1b[K" : "", static_cast<long long>(step), result->loss,
                   result->gradNorm);
    trainCurve.push_back({t.step(), result->loss});

    double evalLoss = NAN;
    bool evaluated = evalEvery > 0 && (t.step() % evalEvery == 0 || t.step() == steps);
    if (evaluated) {
      if (Status st = evaluate(evalLoss); !st)
        return fail(st.message());
      evalCurve.push_back({t.step(), evalLoss});
    }
    MemoryUse memory = s.memoryUse();
    deviceUsedPeak = std::max(deviceUsedPeak, memory.deviceUsed);
    if (metrics) {
      nlohmann::ordered_json fields = {
          {"step", t.step()},
          {"loss", result->loss},
          {"lr", result->lr},
          {"grad_norm", result->gradNorm},
          {"tokens_per_s", rounded(tokensPerStep / stepSeconds, 2)},
          {"step_s", rounded(stepSeconds, 6)},
          {"elapsed_s", rounded(elapsed, 3)},
          {"allocated_bytes", memory.allocated}};
      if (memory.deviceUsed >= 0)
        fields["device_used_bytes"] = memory.deviceUsed;
      fields["skipped"] = result->skipped;
      if (evaluated)
        fields["eval_loss"] = evalLoss;
      if (Status st = metrics->append(jsonLine(fields) + "\n"); !st)
        return fail(st.message());
    }
    if (!f.quiet) {
      double eta = (steps - t.step()) * elapsed / static_cast<double>(done);
      int width = 24, filled = static_cast<int>(width * t.step() / std::max<int64_t>(steps, 1));
      std::string bar(static_cast<size_t>(filled), '#');
      bar.resize(static_cast<size_t>(width), '.');
      char line[256];
      std::snprintf(line, sizeof line,
                    "[%s] step %lld/%lld  loss %.4f%s  lr %.2e  %.0f tok/s  ETA %s",
                    bar.c_str(), static_cast<long long>(t.step()), static_cast<long long>(steps),
                    result->loss,
                    std::isfinite(evalLoss) ? (" eval " + std::to_string(evalLoss).substr(0, 6)).c_str() : "",
                    result->lr, rate, duration(eta).c_str());
      int64_t every = std::max<int64_t>(1, steps / 20);
      if (tty)
        std::fprintf(stderr, "\r\x1b[K%s", line);
      else if (t.step() % every == 0 || t.step() == steps || std::isfinite(evalLoss))
        std::fprintf(stderr, "%s\n", line);
    }
    if (f.sampleEvery > 0 && t.step() % f.sampleEvery == 0)
      sample(t.step());
    if (!f.checkpointDir.empty() && checkpointEvery > 0 && t.step() % checkpointEvery == 0)
      if (Status st = checkpoint(); !st)
        return fail(st.message());
  }
  if (tty)
    std::fputs("\n", stderr);
  if (metrics)
    if (Status st = metrics->sync(); !st)
      return fail(st.message());
  if (!f.checkpointDir.empty() && (checkpointEvery <= 0 || t.step() % checkpointEvery != 0))
    if (Status st = checkpoint(); !st)
      return fail(st.message());
  if (Status st = t.saveWeights(f.output); !st)
    return fail(st.message());
  if (!lead) { // the last sample takes every rank of a tensor-parallel job
    if (f.sampleEvery == 0 || t.step() % f.sampleEvery != 0)
      sample(t.step());
    return 0;
  }
  // The whole run's curve: the metrics file has the steps before a resume too.
  if (metrics && metrics->isRegularFile()) {
    auto recorded = readRegularFile(f.metrics);
    if (!recorded)
      return fail(recorded.status().message());
    trainCurve.clear();
    evalCurve.clear();
    readCurves(*recorded, trainCurve, evalCurve);
  }
  std::string plotted = "none (no finite losses)";
  if (auto svg = lossPlotSvg(trainCurve, evalCurve, "gai-run train: " + f.artifact)) {
    if (Status st = writeFileAtomically(f.plot, *svg); !st)
      return fail(st.message());
    plotted = f.plot;
  }
  std::fprintf(stderr, "trained weights: %s; loss curve: %s\n", f.output.c_str(),
               plotted.c_str());
  MemoryUse memory = s.memoryUse();
  std::fprintf(stderr, "memory: %.1f MiB allocated by gai on %s (its plan and workspaces)",
               memory.allocated / 1048576.0, s.deviceName().c_str());
  if (deviceUsedPeak >= 0)
    std::fprintf(stderr, "; at most %.1f MiB in use on the device (all processes and the CUDA "
                 "context)", deviceUsedPeak / 1048576.0);
  std::fprintf(stderr, "\n");
  printSteadySpeed(stepSecondsRun, tokensPerStep, firstStep);
  if (f.sampleEvery == 0 || t.step() % f.sampleEvery != 0)
    sample(t.step());
  return 0;
}

} // namespace gai
