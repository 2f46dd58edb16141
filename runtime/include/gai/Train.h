// Training on a session of a `gaic --mode=train` artifact: the optimizer
// schedule, bad-step handling and checkpoints around its train_step,
// optimizer_step and zero_grads entries.
#ifndef GAI_TRAIN_H
#define GAI_TRAIN_H

#include "gai/Safetensors.h"
#include "gai/Session.h"
#include "gai/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gai {

struct OptimizerOptions {
  double lr = 3e-4;     ///< peak learning rate
  double minLr = 0.0;   ///< the cosine decay's floor
  int64_t warmupSteps = 0;
  int64_t totalSteps = 0; ///< the schedule's length; 0: constant after warm-up
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weightDecay = 0.1; ///< decoupled, on parameters of rank >= 2
  double gradClip = 1.0;    ///< global norm; 0: no clipping
  int maxBadSteps = 5;      ///< consecutive non-finite steps before giving up
};

struct StepResult {
  double loss = 0;     ///< mean over the micro-batches
  double gradNorm = 0; ///< of the averaged gradients, before clipping
  double lr = 0;
  bool skipped = false; ///< NaN or Inf: nothing was updated
};

/// The entry of an artifact compiled with gaic --fused-update: a training
/// step and its AdamW update in one run, with clipping and the skip of a
/// non-finite step on the device.
inline constexpr const char *kUpdateEntry = "train_update";

class Trainer {
public:
  /// Checks that `session` has the training entries.
  static StatusOr<Trainer> create(Session &session, const OptimizerOptions &options);

  /// Rows per micro-batch: of the whole job; a data-parallel rank trains on
  /// its share of them.
  int64_t rows() const { return rows_ * dataRanks_; }
  int64_t seqLen() const { return seqLen_; } ///< tokens per row
  int64_t step() const { return step_; }     ///< steps taken (skipped included)
  int64_t badSteps() const { return consecutiveBad_; }
  const OptimizerOptions &options() const { return options_; }
  void setOptions(const OptimizerOptions &options) { options_ = options; }

  /// The learning rate of step `step`: linear warm-up over warmupSteps, then
  /// a cosine from lr down to minLr at totalSteps.
  double learningRate(int64_t step) const;

  /// One optimizer step over micro-batches: tokens[i] and targets[i] hold
  /// rows() × seqLen() ids each. A non-finite loss or gradient skips the
  /// update with its gradients; after maxBadSteps in a row it is an error.
  StatusOr<StepResult> trainStep(const std::vector<const int32_t *> &tokens,
                                 const std::vector<const int32_t *> &targets);
  /// The mean loss of one batch, without gradients.
  StatusOr<double> evalLoss(const int32_t *tokens, const int32_t *targets);

  /// Parameters drawn as `gai-run init` draws them (normal(0, 0.02), norms
  /// 1, biases 0), moments zero.
  Status initialiseRandomly(uint64_t seed);
  /// Whether this process writes the job's files (rank 0 of a sharded job).
  bool writesFiles() const;
  /// The parameters, named as the model's weights (safetensors, f32).
  /// Every rank calls it; rank 0 writes.
  Status saveWeights(const std::string &path);
  /// Parameters, moments, the step and `extra` (the data position and seed)
  /// in one safetensors file, written atomically, with each tensor's
  /// checksum64 (XXH3-64) in the metadata ("gai.xxh3_64.NAME"). Sharded
  /// state is gathered and written whole, so any mesh resumes it: every
  /// rank calls it; rank 0 writes.
  Status saveCheckpoint(const std::string &path,
                        const std::map<std::string, std::string> &extra);
  /// Restores what saveCheckpoint wrote; returns its metadata. A tensor
  /// that fails its checksum or holds NaN or Inf is an error naming it, and
  /// then nothing is loaded.
  StatusOr<std::map<std::string, std::string>> loadCheckpoint(const std::string &path);

private:
  Trainer(Session &session, const OptimizerOptions &options)
      : session_(&session), options_(options) {}
  Status setScalar(const std::string &entry, const std::string &name, double value);
  /// A step entry's loss and grad_sq once it ran over `tokens`, `targets`.
  struct StepOutputs {
    double loss, squares;
  };
  StatusOr<StepOutputs> runStepEntry(const char *entry, const int32_t *tokens,
                                     const int32_t *targets);
  Status setAdamwScalars(const char *entry, double t, const char *gradScaleName,
                         double gradScale, double lr);
  /// trainStep of an artifact with kUpdateEntry: one run steps and updates.
  StatusOr<StepResult> updateStep(const std::vector<const int32_t *> &tokens,
                                  const std::vector<const int32_t *> &targets);
  /// Counts a non-finite step (its update already not made); an error
  /// after maxBadSteps in a row.
  StatusOr<StepResult> skipBadStep(StepResult result);
  /// The state worth keeping: parameters and the optimizer's moments.
  std::vector<TensorRef> persistentState() const;
  /// State tensor `r` whole: gathered from the ranks' shares when sharded.
  Status readWhole(const TensorRef &r, std::vector<uint8_t> &out);
  /// A tp rank's slice of a split tensor, gathered whole (its bytes in
  /// `slice`, replaced by the whole's); and the inverse, this rank's slice
  /// of the whole tensor at `whole`.
  Status gatherTensorParallel(const TensorRef &r, std::vector<uint8_t> &slice);
  std::vector<uint8_t> sliceTensorParallel(const TensorRef &r, const uint8_t *whole) const;
  /// The shape a checkpoint stores `r` in: the whole tensor's.
  static std::vector<int64_t> wholeShape(const TensorRef &r);
  /// Writes `state` whole to `path` (named by weight or by state name), a
  /// tensor at a time so that the host holds one tensor's bytes, not a copy
  /// of the state; on a rank that writes no files, only reads (gathers).
  Status writeState(const std::string &path, const std::vector<TensorRef> &state,
                    bool byWeightName, std::map<std::string, std::string> metadata,
                    const TensorSeal &seal);
  /// This rank's rows of a micro-batch of rows() rows into `dst`.
  void copyMyRows(const int32_t *batch, const TensorRef &dst) const;

  Session *session_;
  OptimizerOptions options_;
  int64_t rows_ = 0, seqLen_ = 0; ///< rows_: this rank's
  int64_t dataRanks_ = 1, dataRank_ = 0;
  int64_t step_ = 0;
  int64_t optimizerSteps_ = 0; ///< updates made: AdamW's bias correction
  int consecutiveBad_ = 0;
};

/// Tokens for training: byte-level text, or pre-tokenized .bin files
/// (uint16, or uint32 with --data-format; llm.c's header is recognised).
/// Rows are drawn from the seed and the step alone, so a resumed run reads
/// exactly what an uninterrupted one would.
class TrainData {
public:
  /// `format`: auto (.bin is u16, anything else text), text, u16 or u32.
  /// The last `heldOut` fraction of the tokens is the evaluation split.
  static StatusOr<TrainData> load(const std::vector<std::string> &paths,
                                  const std::string &format, int64_t vocab,
                                  double heldOut);
  int64_t trainTokens() const { return splitAt_; }
  int64_t evalTokens() const { return static_cast<int64_t>(tokens_.size()) - splitAt_; }
  /// The tokens of one split, in order: the training part or the held-out tail.
  const int32_t *splitTokens(bool evaluation) const {
    return tokens_.data() + (evaluation ? splitAt_ : 0);
  }
  /// Whether every file was byte-level text (samples then print as text).
  bool isText() const { return text_; }
  /// Fills tokens and targets (rows × seqLen each) with rows drawn for
  /// (seed, step, micro); targets are the tokens shifted by one.
  Status batch(uint64_t seed, int64_t step, int64_t micro, int64_t rows, int64_t seqLen,
               std::vector<int32_t> &tokens, std::vector<int32_t> &targets,
               bool evaluation = false) const;

private:
  std::vector<int32_t> tokens_;
  int64_t splitAt_ = 0;
  bool text_ = true;
};

} // namespace gai

#endif // GAI_TRAIN_H
