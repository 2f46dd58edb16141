// Runs an artifact's entry points on a device: buffers, kernels, the plan.
#ifndef GAI_SESSION_H
#define GAI_SESSION_H

#include "gai/Artifact.h"
#include "gai/Safetensors.h"
#include "gai/Status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gai {

/// A tensor in one of the session's buffers. `data` stays valid for the
/// session's life.
/// What a state tensor is for (the artifact's TensorRole).
enum class TensorRole {
  Other,
  Parameter,
  Gradient,
  FirstMoment,
  SecondMoment,
  KVCache,
  ParameterCopy
};

struct TensorRef {
  std::string name;
  TensorRole role = TensorRole::Other;
  /// A parameter, gradient or moment: the weight it belongs to.
  std::string weight;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  int elementBytes = 4;
  uint8_t *data = nullptr;
  int64_t size = 0; ///< bytes
  /// Sharded state (ZeRO): this rank's flat share of a tensor of
  /// `shardShape`, over the mesh axes of the bitmask `shardAxes`; empty
  /// shardShape: the whole tensor.
  std::vector<int64_t> shardShape;
  uint32_t shardAxes = 0;
  /// A weight's state split over tp ranks: the whole tensor's shape, and
  /// along tpAxis the (offset, units, size) segments of which this rank
  /// holds its tpKeep units each (artifact.fbs); empty tpShape: not split.
  std::vector<int64_t> tpShape, tpSegments;
  int64_t tpAxis = 0, tpKeep = 0, tpReplicas = 1;

  template <typename T> T *as() const { return reinterpret_cast<T *>(data); }
  int64_t numElements() const { return size / elementBytes; }
};

class Executor;
class Communicator;

/// How a session runs: its device and the runtime's knobs, settable from
/// `gai-run` flags.
struct SessionOptions {
  /// auto (the device the artifact was compiled for), cpu, cuda or cuda:N.
  std::string device = "auto";
  /// CUDA: replay an entry as a CUDA graph from its second run on.
  bool cudaGraphs = true;
  /// Time each step and print the time per step kind, per run of its
  /// entry, when the session ends (CUDA: steps run eagerly between events,
  /// without graphs).
  bool profile = false;
  /// The profile's list of the costliest steps: how many (0: every step).
  size_t profileSteps = 30;
  /// CUDA (sm_90 and newer): let a kernel start while the one before it
  /// finishes (programmatic dependent launch). Process-wide: the last
  /// session created sets it.
  bool overlapLaunches = true;
  /// A job of several ranks: run collectives beside the compute steps (on
  /// CUDA a stream of their own, on the CPU a thread), so that they overlap
  /// the steps that do not need them.
  bool overlapCollectives = true;
  /// CUDA: how many of cuBLASLt's candidate algorithms a prefill-sized GEMM
  /// times to keep the fastest (0 or 1: the heuristic's first pick).
  int gemmTuneCandidates = 8;
  /// CUDA: fp8 GEMMs (prefill over fp8 weights) keep their sums in the
  /// tensor cores' accumulators instead of promoting them to f32 every few
  /// k-steps (cuBLASLt's fast accumulation, as torchao's fp8 inference):
  /// 6-14% off the large GEMMs on an H100, a larger error
  /// (docs/quantization.md). Where GEMMs are tuned (gemmTuneCandidates > 1)
  /// a shape that runs faster promoted (llama-1b's k and v) stays promoted.
  bool fastFp8Accumulation = true;
  /// CUDA: run the kernels whose sums otherwise land in no fixed order
  /// (attention's backward adds dQ by atomics) in their fixed-order form,
  /// so that a run repeats bit for bit; attention's backward takes about
  /// 1.25x as long.
  bool deterministic = false;
  /// CUDA: the order of attention's backward blocks under a causal mask
  /// (AttentionGradParams::blockSpread): 0 head after head; S > 0 heads in
  /// groups of about S waves of blocks, each group's first keys first.
  float attentionGradSpread = 2.0f;
  /// CUDA: run the steps that nothing needs soon (a weight gradient's GEMM
  /// and its squared sum) on a second stream, beside the next steps
  /// (core/StepOverlap.h). Off under `profile`, which times steps one by
  /// one.
  bool stepsBeside = true;
  /// A folder of trusted public keys (*.pub): when set, gai-run loads only
  /// an artifact, and weights, that one of them signed (gai/Signing.h).
  std::string trustedKeys;
  /// The job's host communicator (gai/Comm.h), which must outlive the
  /// session; null: a world of one. A sharded artifact needs one of its
  /// mesh's size.
  Communicator *communicator = nullptr;

  /// The defaults, with GAI_CUDA_GRAPHS=0, GAI_CUDA_PROFILE=1,
  /// GAI_CUDA_OVERLAP=0, GAI_COLLECTIVES_OVERLAP=0, GAI_CUDA_GEMM_TUNE=N,
  /// GAI_CUDA_FP8_FAST_ACCUM=0,
  /// GAI_DETERMINISTIC=1, GAI_ATTENTION_GRAD_SPREAD=S and GAI_CUDA_BESIDE=0
  /// applied where set: the one place the runtime reads its environment.
  static SessionOptions fromEnvironment();
};

/// One loaded artifact with its state (the KV cache) and the memory its
/// entry points need, on the CPU or a CUDA GPU. Inputs and outputs are host
/// memory either way. Not thread-safe: one run at a time.
/// Memory a session holds: `allocated` bytes for its artifact (the plan;
/// on a GPU with the workspaces), and on a GPU `deviceUsed`, the device's
/// total less its free bytes (every process, the CUDA context included;
/// -1 on the CPU).
struct MemoryUse {
  int64_t allocated = 0;
  int64_t deviceUsed = -1;
};

class Session {
public:
  static StatusOr<std::unique_ptr<Session>> create(LoadedArtifact artifact,
                                                   const SessionOptions &options = {});
  ~Session();

  const LoadedArtifact &artifact() const { return artifact_; }
  bool hasEntry(const std::string &name) const;
  /// Fill these, then run(); they keep their contents between runs.
  std::vector<TensorRef> inputs(const std::string &entry);
  std::vector<TensorRef> outputs(const std::string &entry);
  /// Runs every step of `entry`; a library kernel that finds bad input
  /// (a token id outside the vocabulary, a cache slot past the end) stops
  /// the run with a message naming the step.
  Status run(const std::string &entry);
  /// Greedy decoding on the device: runs decode entry `entry` (inputs
  /// tokens [batch], positions [batch], ...; output 0 logits [batch, vocab])
  /// `steps` times, from the inputs as filled. After each run, every row's
  /// first largest logit becomes its next token and its position advances
  /// by one, to at most `lastPosition`, without returning to the host.
  /// Returns the tokens, step by step ([steps, batch]); the inputs and
  /// outputs in host memory are left as they were. Devices that cannot
  /// (greedyStepsAtOnce() is 0) return an error, as do more steps than
  /// greedyStepsAtOnce().
  StatusOr<std::vector<int32_t>> decodeGreedy(const std::string &entry, int64_t steps,
                                              int32_t lastPosition);
  int64_t greedyStepsAtOnce() const;
  /// Zeroes the KV cache (state named cache.*); trainable parameters and
  /// optimizer state stay.
  void resetState();
  /// The state tensors (data is null: they may live on the device).
  std::vector<TensorRef> stateTensors() const;
  /// Copies state tensor `name` to or from host memory of its size.
  Status readState(const std::string &name, void *dst);
  Status writeState(const std::string &name, const void *src);
  /// cpu, or the GPU's name and ordinal.
  std::string deviceName() const;
  /// The processes this session runs with (a world of one unless sharded).
  Communicator &communicator() const { return *comm_; }
  MemoryUse memoryUse() const;

private:
  explicit Session(LoadedArtifact artifact);
  Status initialiseParameters();
  Status joinMesh(Communicator *given);
  /// Runs @refresh_param_copies when a master weight was written since the
  /// copies were last made (they are state the update keeps in step).
  Status refreshParamCopies();

  LoadedArtifact artifact_;
  std::unique_ptr<Communicator> ownComm_; // a world of one, when none was given
  Communicator *comm_ = nullptr;
  std::unique_ptr<Executor> executor_;
  bool paramCopiesStale_ = true;
};

} // namespace gai

#endif // GAI_SESSION_H
