// The host side of a training step: the learning-rate schedule, clipping
// and bias correction as scalars for optimizer_step, bad-step handling, and
// checkpoints of the session's state.
#include "gai/Train.h"

#include "core/TensorParallel.h"

#include "format/artifact_generated.h"
#include "gai/Comm.h"
#include "gai/FloatConvert.h"
#include "gai/Init.h"
#include "gai/Safetensors.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

namespace gai {
namespace {

const TensorRef *find(const std::vector<TensorRef> &refs, const std::string &name) {
  for (const TensorRef &r : refs)
    if (r.name == name)
      return &r;
  return nullptr;
}

// Each checkpoint tensor's checksum64 (the artifact format's XXH3-64) is
// in the metadata under this prefix and its name, so that a corrupt
// checkpoint names the tensor that changed.
constexpr const char *kChecksumKey = "gai.xxh3_64.";
// The prefix of the FNV-1a checksums earlier versions wrote.
constexpr const char *kOldChecksumKey = "gai.fnv1a64.";

std::string checksumText(const uint8_t *data, size_t size) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, checksum64(data, size));
  return text;
}

/// The index of the first NaN or Inf among a float tensor's elements, or -1.
int64_t firstNonFinite(const TensorView &t) {
  if (!canConvertFloats(t.dtype, DType::F32))
    return -1; // integers, or a format with no conversion: the checksum holds
  constexpr size_t kChunk = 4096;
  std::vector<float> values(kChunk);
  size_t count = t.byteSize / dtypeSize(t.dtype);
  for (size_t at = 0; at < count; at += kChunk) {
    size_t n = std::min(kChunk, count - at);
    convertFloats(t.data + at * dtypeSize(t.dtype), t.dtype, values.data(), DType::F32, n);
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(values[i]))
        return static_cast<int64_t>(at + i);
  }
  return -1;
}

/// How state `r` splits over tp (core/TensorParallel.h).
TensorParallelSplit splitOf(const TensorRef &r) {
  return {r.tpShape, r.tpSegments, r.tpAxis, r.tpKeep, r.tpReplicas};
}

} // namespace

StatusOr<Trainer> Trainer::create(Session &session, const OptimizerOptions &options) {
  // gaic --fused-update: one entry steps and updates (kUpdateEntry).
  const bool fused = session.hasEntry(kUpdateEntry);
  std::vector<const char *> entries;
  if (fused)
    entries = {kUpdateEntry, "eval_loss"};
  else
    entries = {"train_step", "optimizer_step", "zero_grads", "eval_loss"};
  for (const char *entry : entries)
    if (!session.hasEntry(entry))
      return Status::error(std::string("the artifact has no '") + entry +
                           "' entry; compile it with gaic --mode=train");
  Trainer trainer(session, options);
  const char *step = fused ? kUpdateEntry : "train_step";
  std::vector<TensorRef> inputs = session.inputs(step);
  const TensorRef *tokens = find(inputs, "tokens");
  if (!tokens || tokens->shape.size() != 2 || !find(inputs, "targets"))
    return Status::error(std::string(step) +
                         ": expected tokens and targets [rows, length] inputs");
  trainer.rows_ = tokens->shape[0];
  trainer.seqLen_ = tokens->shape[1];
  // Data parallelism is the mesh's first axis (gaic --mesh dp=D).
  const Communicator &comm = session.communicator();
  if (!comm.mesh().shape.empty() && session.artifact().root().options() &&
      session.artifact().root().options()->mesh()) {
    trainer.dataRanks_ = comm.mesh().groupSize(1u);
    trainer.dataRank_ = comm.mesh().groupIndex(comm.rank(), 1u);
  }
  return trainer;
}

double Trainer::learningRate(int64_t step) const {
  const OptimizerOptions &o = options_;
  if (step < o.warmupSteps)
    return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmupSteps);
  if (o.totalSteps <= o.warmupSteps)
    return o.lr;
  double progress = static_cast<double>(step - o.warmupSteps) /
                    static_cast<double>(o.totalSteps - o.warmupSteps);
  progress = std::min(progress, 1.0);
  return o.minLr + (o.lr - o.minLr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

Status Trainer::setScalar(const std::string &entry, const std::string &name,
                          double value) {
  for (const TensorRef &r : session_->inputs(entry))
    if (r.name == name) {
      *r.as<float>() = static_cast<float>(value);
      return Status::ok();
    }
  return Status::error(entry + ": no input '" + name + "'");
}

StatusOr<StepResult> Trainer::trainStep(const std::vector<const int32_t *> &tokens,
                                        const std::vector<const int32_t *> &targets) {
  if (tokens.empty() || tokens.size() != targets.size())
    return Status::error("a training step needs as many target batches as token "
                         "batches, and at least one");
  if (session_->hasEntry(kUpdateEntry))
    return updateStep(tokens, targets);
  // A step's first micro-batch writes the gradients where the artifact has
  // an entry for it (gaic's one-device training); the others add to them.
  const bool writesFirst = session_->hasEntry("train_step_first");
  StepResult result;
  double squares = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const char *entry = i == 0 && writesFirst ? "train_step_first" : "train_step";
    StatusOr<StepOutputs> ran = runStepEntry(entry, tokens[i], targets[i]);
    if (!ran)
      return ran.status();
    result.loss += ran->loss;
    squares = ran->squares;
  }
  double micro = static_cast<double>(tokens.size());
  result.loss /= micro;
  // The state holds the sum of the micro-batches' mean gradients.
  result.gradNorm = std::sqrt(squares) / micro;
  result.lr = learningRate(step_);
  ++step_;
  if (!std::isfinite(result.loss) || !std::isfinite(result.gradNorm)) {
    if (Status s = session_->run("zero_grads"); !s)
      return s;
    return skipBadStep(result);
  }
  consecutiveBad_ = 0;
  // PyTorch's clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1.
  double clip = options_.gradClip > 0
                    ? std::min(1.0, options_.gradClip / (result.gradNorm + 1e-6))
                    : 1.0;
  double t = static_cast<double>(++optimizerSteps_);
  if (Status s = setAdamwScalars("optimizer_step", t, "grad_scale", clip / micro, result.lr);
      !s)
    return s;
  if (Status s = session_->run("optimizer_step"); !s)
    return s;
  return result;
}

StatusOr<Trainer::StepOutputs> Trainer::runStepEntry(const char *entry, const int32_t *tokens,
                                                     const int32_t *targets) {
  std::vector<TensorRef> in = session_->inputs(entry);
  std::vector<TensorRef> out = session_->outputs(entry);
  const TensorRef *tokensIn = find(in, "tokens"), *targetsIn = find(in, "targets");
  const TensorRef *lossOut = find(out, "loss"), *squaresOut = find(out, "grad_sq");
  if (!tokensIn || !targetsIn || !lossOut || !squaresOut)
    return Status::error(std::string(entry) +
                         ": expected tokens and targets inputs, loss and grad_sq outputs");
  copyMyRows(tokens, *tokensIn);
  copyMyRows(targets, *targetsIn);
  if (Status s = session_->run(entry); !s)
    return s;
  return StepOutputs{*lossOut->as<float>(), *squaresOut->as<float>()};
}

/// The PyTorch-style scalars of AdamW's step `t` (from 1), into `entry`;
/// `gradScaleName` takes `gradScale` (the host's factor, or the device's
/// clip).
Status Trainer::setAdamwScalars(const char *entry, double t, const char *gradScaleName,
                                double gradScale, double lr) {
  const OptimizerOptions &o = options_;
  std::pair<const char *, double> scalars[] = {
      {"lr", lr},
      {"beta1", o.beta1},
      {"beta2", o.beta2},
      {"eps", o.eps},
      {"weight_decay", o.weightDecay},
      {gradScaleName, gradScale},
      {"bias_correction1", 1.0 - std::pow(o.beta1, t)},
      {"bias_correction2_sqrt", std::sqrt(1.0 - std::pow(o.beta2, t))}};
  for (auto &[name, value] : scalars)
    if (Status s = setScalar(entry, name, value); !s)
      return s;
  return Status::ok();
}

StatusOr<StepResult> Trainer::updateStep(const std::vector<const int32_t *> &tokens,
                                         const std::vector<const int32_t *> &targets) {
  if (tokens.size() != 1)
    return Status::error("this artifact updates the weights in its training step (gaic "
                         "--fused-update), so it trains one micro-batch a step: give a batch "
                         "of " + std::to_string(rows()) + " rows, or compile it without "
                         "--fused-update to accumulate " + std::to_string(tokens.size()) +
                         " micro-batches");
  StepResult result;
  result.lr = learningRate(step_);
  // The device clips (no clip: +inf) and keeps the state of a bad step.
  double clip = options_.gradClip > 0 ? options_.gradClip
                                      : std::numeric_limits<double>::infinity();
  if (Status s = setAdamwScalars(kUpdateEntry, static_cast<double>(optimizerSteps_ + 1),
                                 "grad_clip", clip, result.lr);
      !s)
    return s;
  StatusOr<StepOutputs> ran = runStepEntry(kUpdateEntry, tokens[0], targets[0]);
  if (!ran)
    return ran.status();
  result.loss = ran->loss;
  result.gradNorm = std::sqrt(ran->squares);
  ++step_;
  if (!std::isfinite(result.loss) || !std::isfinite(result.gradNorm))
    return skipBadStep(result);
  consecutiveBad_ = 0;
  ++optimizerSteps_;
  return result;
}

StatusOr<StepResult> Trainer::skipBadStep(StepResult result) {
  result.skipped = true;
  if (++consecutiveBad_ >= options_.maxBadSteps)
    return Status::error("the loss or the gradients were not finite for " +
                         std::to_string(consecutiveBad_) + " steps in a row (last at step " +
                         std::to_string(step_ - 1) + "); stopping");
  return result;
}

StatusOr<double> Trainer::evalLoss(const int32_t *tokens, const int32_t *targets) {
  std::vector<TensorRef> in = session_->inputs("eval_loss");
  const TensorRef *tokensIn = find(in, "tokens"), *targetsIn = find(in, "targets");
  if (!tokensIn || !targetsIn)
    return Status::error("eval_loss: expected tokens and targets inputs");
  copyMyRows(tokens, *tokensIn);
  copyMyRows(targets, *targetsIn);
  if (Status s = session_->run("eval_loss"); !s)
    return s;
  return static_cast<double>(*session_->outputs("eval_loss")[0].as<float>());
}

void Trainer::copyMyRows(const int32_t *batch, const TensorRef &dst) const {
  std::memcpy(dst.data, reinterpret_cast<const uint8_t *>(batch) + dataRank_ * dst.size,
              static_cast<size_t>(dst.size));
}

bool Trainer::writesFiles() const { return session_->communicator().rank() == 0; }

Status Trainer::readWhole(const TensorRef &r, std::vector<uint8_t> &out) {
  out.resize(static_cast<size_t>(r.size));
  if (Status s = session_->readState(r.name, out.data()); !s)
    return s;
  if (r.shardShape.empty())
    return r.tpShape.empty() ? Status::ok() : gatherTensorParallel(r, out);
  Communicator &comm = session_->communicator();
  int64_t group = comm.mesh().groupSize(r.shardAxes);
  std::vector<uint8_t> all(static_cast<size_t>(r.size * group));
  if (Status s = comm.allGather(out.data(), all.data(), r.numElements(), r.dtype, r.shardAxes);
      !s)
    return Status::error("gathering '" + r.name + "': " + s.message());
  int64_t whole = 1;
  for (int64_t d : r.shardShape)
    whole *= d;
  all.resize(static_cast<size_t>(whole * r.elementBytes)); // the padding goes
  out = std::move(all);
  return r.tpShape.empty() ? Status::ok() : gatherTensorParallel(r, out);
}

Status Trainer::gatherTensorParallel(const TensorRef &r, std::vector<uint8_t> &slice) {
  Communicator &comm = session_->communicator();
  constexpr uint32_t kTensorAxes = 1u << 1;
  const int64_t ranks = comm.mesh().groupSize(kTensorAxes);
  const int64_t count = static_cast<int64_t>(slice.size()) / r.elementBytes;
  std::vector<uint8_t> all(slice.size() * static_cast<size_t>(ranks));
  if (Status s = comm.allGather(slice.data(), all.data(), count, r.dtype, kTensorAxes); !s)
    return Status::error("gathering '" + r.name + "' over tp: " + s.message());
  slice = splitOf(r).gather(all.data(), slice.size(), static_cast<size_t>(r.elementBytes));
  return Status::ok();
}

std::vector<uint8_t> Trainer::sliceTensorParallel(const TensorRef &r,
                                                  const uint8_t *whole) const {
  const Communicator &comm = session_->communicator();
  return splitOf(r).slice(whole, static_cast<size_t>(r.elementBytes),
                          comm.mesh().groupIndex(comm.rank(), 1u << 1));
}

std::vector<int64_t> Trainer::wholeShape(const TensorRef &r) {
  return !r.tpShape.empty() ? r.tpShape : !r.shardShape.empty() ? r.shardShape : r.shape;
}

std::vector<TensorRef> Trainer::persistentState() const {
  std::vector<TensorRef> kept;
  for (TensorRef &r : session_->stateTensors())
    if (r.role == TensorRole::Parameter || r.role == TensorRole::FirstMoment ||
        r.role == TensorRole::SecondMoment)
      kept.push_back(std::move(r));
  return kept;
}

Status Trainer::initialiseRandomly(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const TensorRef &r : session_->stateTensors()) {
    if (r.role == TensorRole::Gradient || r.role == TensorRole::FirstMoment ||
        r.role == TensorRole::SecondMoment) {
      std::vector<uint8_t> zeros(static_cast<size_t>(r.size), 0);
      if (Status s = session_->writeState(r.name, zeros.data()); !s)
        return s;
      continue;
    }
    if (r.role != TensorRole::Parameter)
      continue;
    if (r.dtype != DType::F32)
      return Status::error("state '" + r.name + "' is not f32");
    if (!r.tpShape.empty()) {
      // A tensor-parallel slice: the whole weight drawn (as one device
      // draws it, so every rank's stream stays alike), this rank's kept.
      std::vector<float> whole = initialValues(r.weight, r.tpShape, rng);
      std::vector<uint8_t> mine =
          sliceTensorParallel(r, reinterpret_cast<const uint8_t *>(whole.data()));
      if (Status s = session_->writeState(r.name, mine.data()); !s)
        return s;
      continue;
    }
    std::vector<float> values = initialValues(r.weight, r.shape, rng);
    if (Status s = session_->writeState(r.name, values.data()); !s)
      return s;
  }
  optimizerSteps_ = step_ = 0;
  return Status::ok();
}

Status Trainer::writeState(const std::string &path, const std::vector<TensorRef> &state,
                           bool byWeightName, std::map<std::string, std::string> metadata,
                           const TensorSeal &seal) {
  size_t read = 0;
  bool readFailed = false;
  auto source = [&](size_t i, std::vector<uint8_t> &bytes) {
    read = i + 1;
    Status s = readWhole(state[i], bytes);
    readFailed = !s;
    return s;
  };
  // Every rank reads every tensor in the same order: the reads gather shards.
  auto readTheRest = [&]() -> Status {
    std::vector<uint8_t> bytes;
    for (size_t i = read; i < state.size(); ++i)
      if (Status s = source(i, bytes); !s)
        return s;
    return Status::ok();
  };
  if (!writesFiles())
    return readTheRest();
  std::vector<TensorToWrite> layout;
  for (const TensorRef &r : state) {
    std::vector<int64_t> shape = wholeShape(r);
    size_t bytes = static_cast<size_t>(r.elementBytes);
    for (int64_t d : shape)
      bytes *= static_cast<size_t>(d);
    layout.push_back({byWeightName ? r.weight : r.name, r.dtype, std::move(shape), nullptr,
                      bytes});
  }
  Status written = writeSafetensorsStreamed(path, layout, std::move(metadata), source, seal);
  // A write that failed (a full disk) still gathers what the other ranks
  // wait to send: they end the save as they did when every read came before
  // the writes, not in a collective's timeout.
  if (!written && !readFailed && session_->communicator().size() > 1)
    (void)readTheRest();
  return written;
}

Status Trainer::saveWeights(const std::string &path) {
  std::vector<TensorRef> params;
  for (TensorRef &r : session_->stateTensors())
    if (r.role == TensorRole::Parameter)
      params.push_back(std::move(r));
  return writeState(path, params, /*byWeightName=*/true, {{"format", "pt"}}, {});
}

Status Trainer::saveCheckpoint(const std::string &path,
                               const std::map<std::string, std::string> &extra) {
  std::vector<TensorRef> state = persistentState();
  std::map<std::string, std::string> metadata = extra;
  // Placeholders of the checksums' width: each is set as its tensor goes by.
  for (const TensorRef &r : state)
    metadata[kChecksumKey + r.name] = std::string(16, '0');
  metadata["gai.checkpoint"] = "1";
  metadata["gai.step"] = std::to_string(step_);
  metadata["gai.optimizer_steps"] = std::to_string(optimizerSteps_);
  metadata["gai.bad_steps"] = std::to_string(consecutiveBad_);
  auto seal = [&](size_t i, const std::vector<uint8_t> &bytes,
                  std::map<std::string, std::string> &m) {
    m[kChecksumKey + state[i].name] = checksumText(bytes.data(), bytes.size());
  };
  return writeState(path, state, /*byWeightName=*/false, std::move(metadata), seal);
}

StatusOr<std::map<std::string, std::string>>
Trainer::loadCheckpoint(const std::string &path) {
  StatusOr<SafetensorsFile> file = SafetensorsFile::open(path);
  if (!file)
    return file.status();
  const std::map<std::string, std::string> &metadata = file->metadata();
  auto number = [&](const char *key, int64_t &out) -> Status {
    auto it = metadata.find(key);
    char *end = nullptr;
    if (it == metadata.end() ||
        (out = std::strtoll(it->second.c_str(), &end, 10), *end != '\0'))
      return Status::error(path + ": not a gai checkpoint (no '" + key + "' metadata)");
    return Status::ok();
  };
  int64_t step = 0, updates = 0, bad = 0;
  for (auto [key, out] : {std::pair{"gai.step", &step}, {"gai.optimizer_steps", &updates},
                          {"gai.bad_steps", &bad}})
    if (Status s = number(key, *out); !s)
      return s;
  // Everything is checked before anything is loaded, so that a refused
  // checkpoint leaves the session as it was.
  std::vector<TensorRef> state = persistentState();
  for (const TensorRef &r : state) {
    const TensorView *t = file->find(r.name);
    if (!t)
      return Status::error(path + ": the checkpoint has no tensor '" + r.name + "'");
    const std::vector<int64_t> whole = wholeShape(r);
    int64_t wholeBytes = r.elementBytes;
    for (int64_t d : whole)
      wholeBytes *= d;
    if (t->dtype != r.dtype || t->shape != whole ||
        static_cast<int64_t>(t->byteSize) != wholeBytes)
      return Status::error(path + ": tensor '" + r.name +
                           "' does not match the artifact's shape or dtype");
    auto recorded = metadata.find(kChecksumKey + r.name);
    if (recorded == metadata.end() && metadata.count(kOldChecksumKey + r.name))
      return Status::error(path + ": tensor '" + r.name + "' has an FNV-1a checksum ('" +
                           kOldChecksumKey + r.name + "'): the checkpoint is from an "
                           "earlier gai, which can resume it");
    if (recorded == metadata.end())
      return Status::error(path + ": tensor '" + r.name + "' has no checksum ('" +
                           kChecksumKey + r.name + "' metadata); not a checkpoint of " +
                           "this gai, or edited");
    if (recorded->second != checksumText(t->data, t->byteSize))
      return Status::error(path + ": tensor '" + r.name +
                           "' does not match its checksum; the checkpoint is corrupt");
    if (int64_t at = firstNonFinite(*t); at >= 0)
      return Status::error(path + ": tensor '" + r.name + "' has a non-finite value at " +
                           "element " + std::to_string(at) + "; refusing to resume from it");
  }
  for (const TensorRef &r : state) {
    const uint8_t *data = file->find(r.name)->data;
    int64_t bytes = static_cast<int64_t>(file->find(r.name)->byteSize);
    std::vector<uint8_t> slice, share;
    if (!r.tpShape.empty()) { // this tp rank's slice
      slice = sliceTensorParallel(r, data);
      data = slice.data();
      bytes = static_cast<int64_t>(slice.size());
    }
    if (!r.shardShape.empty()) { // this rank's share of the whole, padded with zeros
      int64_t offset = session_->communicator().mesh().groupIndex(
                           session_->communicator().rank(), r.shardAxes) * r.size;
      int64_t available = bytes - offset;
      share.assign(static_cast<size_t>(r.size), 0);
      if (available > 0)
        std::memcpy(share.data(), data + offset,
                    static_cast<size_t>(std::min(available, r.size)));
      data = share.data();
    }
    if (Status s = session_->writeState(r.name, data); !s)
      return s;
  }
  if (!session_->hasEntry(kUpdateEntry)) // a fused artifact keeps no gradients
    if (Status s = session_->run("zero_grads"); !s)
      return s;
  step_ = step;
  optimizerSteps_ = updates;
  consecutiveBad_ = static_cast<int>(bad);
  return metadata;
}

} // namespace gai
