// The CUDA backend: records each command as a function that enqueues its
// launches on a stream, resolved once (pointers, cuBLASLt plans, splits),
// so that an entry's run is those functions in order, or their graph.
#ifndef GAI_RUNTIME_HAL_CUDA_CUDABACKEND_H
#define GAI_RUNTIME_HAL_CUDA_CUDABACKEND_H

#include "hal/Backend.h"
#include "hal/cuda/AttentionGrad.h"
#include "hal/cuda/CommandGroups.h"
#include "hal/cuda/DeviceCollectives.h"
#include "hal/cuda/Driver.h"
#include "hal/cuda/Gemm.h"
#include "hal/cuda/Kernels.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gai::cuda {

/// What an entry's commands became.
struct RecordedEntry {
  using StepFn = std::function<Status(cudaStream_t)>;
  /// One per artifact step: a step merged into an earlier one is empty,
  /// so step numbers keep meaning the artifact's.
  std::vector<StepFn> steps;
  std::vector<std::string> stepNames;
  std::vector<std::unique_ptr<GemmPlan>> gemms;
  GemmPlan *finalGemv = nullptr; // our GEMV, when it is the last step
  /// Events of collectives run beside the compute stream (their fork and
  /// completion); the executor destroys them.
  std::vector<cudaEvent_t> events;
};

/// The device resources commands are recorded against.
struct CudaResources {
  cublasLtHandle_t lt = nullptr;
  void *gemmWorkspace = nullptr;
  size_t gemmWorkspaceBytes = 0;
  float *attentionWorkspace = nullptr;
  // f32 scratch of the backward commands (attention_grad's D and GQA
  // partials, a bf16 table's gradient sums): each uses it within its own
  // step on the compute stream, so one allocation serves all of them. Apart
  // from attentionWorkspace, whose split counters must stay zero.
  float *gradScratch = nullptr;
  // The parts of a cross-entropy's loss (kLossPartsBytes), summed in a fixed
  // order; compute-stream steps only.
  float *lossParts = nullptr;
  ErrorWord *error = nullptr;
  int multiprocessors = 1;
  const Driver *driver = nullptr;
  const std::vector<CUfunction> *functions = nullptr;
  const std::vector<std::string> *kernelNames = nullptr; // as functions, for profiles
  bool overlapLaunches = false; // kernels built to wait for their predecessor
  int gemmTuneCandidates = 0;   // SessionOptions::gemmTuneCandidates
  bool deterministic = false;   // SessionOptions::deterministic
  float attentionGradSpread = 2; // SessionOptions::attentionGradSpread
  QuantScratch quantScratch;    // prefill GEMMs over quantized weights
  /// The job's collectives between GPUs (NCCL); null in a world of one,
  /// whose collectives are copies.
  DeviceCollectives *collectives = nullptr;
  /// With collectives: the stream they run on, beside the compute stream,
  /// so that a gradient bucket's all-reduce overlaps the rest of the
  /// backward pass; null runs them on the compute stream.
  cudaStream_t collectiveStream = nullptr;
  /// A second compute stream for the steps that run beside the others
  /// (stepsBeside: weight gradients' GEMMs), with its own GEMM workspace;
  /// null runs every step on the compute stream.
  cudaStream_t besideStream = nullptr;
  void *besideGemmWorkspace = nullptr;
};

/// The kernel parameters of an attention backward, with buffers at `pointer`.
AttentionGradParams attentionGradParamsOf(
    const cmd::AttentionGrad &a, const std::function<uint8_t *(const Buffer &)> &pointer);

/// The scratch GEMM `g` over quantized weights needs where it does not
/// run as our GEMV (GemmPlan::create): 0 for float weights, and for decode
/// rows of A whose offset keeps A 16-byte aligned (spaces start 256-byte
/// aligned).
int64_t quantScratchBytes(const cmd::Gemm &g);

/// The kernel's description of attention `a`, its buffers placed by
/// `pointer` (null for an absent one).
AttentionParams attentionParamsOf(const cmd::Attention &a,
                                  const std::function<uint8_t *(const Buffer &)> &pointer);

class CudaBackend final : public Backend {
public:
  using Pointer = std::function<uint8_t *(const Buffer &)>;
  CudaBackend(const CudaResources &device, Pointer pointer, RecordedEntry &out)
      : device_(device), pointer_(std::move(pointer)), out_(out) {}

  /// Records `steps` group by group (groupSteps): the executor's loop.
  Status recordAll(const std::vector<Command> &steps);

  using Backend::record;
  Status record(const cmd::Gemm &c) override;
  Status record(const cmd::Attention &c) override;
  Status record(const cmd::Launch &c) override;
  Status record(const cmd::Embedding &c) override;
  Status record(const cmd::CacheWrite &c) override;
  Status record(const cmd::Take &c) override;
  Status record(const cmd::Transpose &c) override;
  Status record(const cmd::Slice &c) override;
  Status record(const cmd::TopK &c) override;
  Status record(const cmd::CrossEntropy &c) override;
  Status record(const cmd::CrossEntropyGrad &c) override;
  Status record(const cmd::Place &c) override;
  Status record(const cmd::OneHot &c) override;
  Status record(const cmd::Reduce &c) override;
  Status record(const cmd::Copy &c) override;
  Status record(const cmd::Fill &c) override;
  Status record(const cmd::AllReduce &c) override;
  Status record(const cmd::AllGather &c) override;
  Status record(const cmd::ReduceScatter &c) override;
  Status record(const cmd::AllSlice &c) override;
  Status record(const cmd::AttentionGrad &c) override;
  Status record(const cmd::EmbeddingGrad &c) override;

private:
  /// Without collectives (a world of one), each is a copy of this rank's
  /// `count` elements, from `inputOffset` bytes into the input.
  Status recordLocalCopy(const cmd::Collective &c, int64_t inputOffset, const char *name);
  /// The first of this rank's `rows` sharded rows (a vocabulary shard).
  int64_t firstRow(const cmd::RowShards &shards, int64_t rows) const;
  /// GEMMs steps[first, first + count), merged where mergeGemms allows.
  Status recordGemms(const std::vector<Command> &steps, const StepGroup &group);
  /// Cache writes of one shape and positions as one launch, step `index`
  /// and those after it.
  Status recordCacheWrites(const std::vector<const cmd::CacheWrite *> &commands, size_t index);
  /// With `withLoss` (the step before, grouped with it), its loss too.
  Status recordCrossEntropyGrad(const cmd::CrossEntropyGrad &c,
                                const cmd::CrossEntropy *withLoss);
  GemmDesc gemmDesc(const cmd::Gemm &g) const;
  void add(RecordedEntry::StepFn fn, std::string name);
  /// The device address of `b`, null when absent; a present buffer that
  /// does not resolve (a weights range across tensors) is reported by
  /// recordAll.
  uint8_t *ptr(const Buffer &b) const;

  /// A collective running beside the compute stream: its buffers, and the
  /// event that marks its end there.
  struct PendingCollective {
    std::vector<Buffer> buffers;
    cudaEvent_t done;
  };
  /// Runs `enqueue` on the collective stream, after the work before it on
  /// the compute stream; later steps that touch `c`'s buffers wait for it.
  Status recordBeside(const cmd::Collective &c,
                      std::function<Status(cudaStream_t)> enqueue, const char *name);
  /// Makes the steps from `firstStep` on (one group's) wait for the first
  /// `candidates` pending collectives that touch `buffers` (null: all of
  /// them, after the step).
  void joinPending(const std::vector<Buffer> *buffers, size_t firstStep, size_t candidates);
  /// Makes the group's first step that does anything (from `firstStep` on)
  /// wait for `done`: before it, or with `after`, after it (an entry's end).
  void waitAt(size_t firstStep, cudaEvent_t done, bool after, const char *what);
  /// Moves the steps from `firstStep` on (a beside group's) to the beside
  /// stream, after the compute stream's work so far.
  Status moveBeside(size_t firstStep, size_t step);
  /// Makes the group of steps [first, first + count) wait for the beside
  /// steps it must follow (mustFollow).
  void joinBeside(const std::vector<Command> &steps, size_t first, size_t count,
                  size_t firstStep);

  const CudaResources &device_;
  Pointer pointer_;
  RecordedEntry &out_;
  mutable bool unresolved_ = false;
  std::vector<PendingCollective> pending_;
  /// A step on the beside stream that later steps may have to wait for.
  struct PendingBeside {
    size_t step;
    cudaEvent_t done;
  };
  std::vector<PendingBeside> besidePending_;
  bool recordingBeside_ = false; // recordGemms takes the beside workspace
  cudaEvent_t lastFork_ = nullptr; // null: compute work since the last fork
};

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_CUDABACKEND_H
