// Collectives between the job's GPUs, enqueued on a CUDA stream: what the
// CUDA backend records for an artifact's collective steps (NCCL).
#ifndef GAI_RUNTIME_HAL_CUDA_DEVICECOLLECTIVES_H
#define GAI_RUNTIME_HAL_CUDA_DEVICECOLLECTIVES_H

#include "gai/Comm.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace gai::cuda {

/// Device-memory counterparts of Communicator's collectives, on `stream`,
/// over the group of this rank along `axes` of the communicator's mesh.
/// Every rank of the group enqueues the same calls in the same order.
class DeviceCollectives {
public:
  virtual ~DeviceCollectives() = default;
  /// The CUDA device the collectives run on.
  virtual int deviceOrdinal() const = 0;
  /// Makes the group communicator of `axes` (a collective over the world,
  /// so every rank prepares the same groups in the same order), before any
  /// call on that group is enqueued or captured in a graph.
  virtual Status prepareGroup(uint32_t axes) = 0;
  /// This rank's index in its group along `axes` (all_slice's slice).
  virtual int64_t groupIndex(uint32_t axes) const = 0;

  virtual Status allReduceOnDevice(const void *in, void *out, int64_t count, DType dtype,
                                   CollectiveReduce op, uint32_t axes,
                                   cudaStream_t stream) = 0;
  virtual Status allGatherOnDevice(const void *in, void *out, int64_t count, DType dtype,
                                   uint32_t axes, cudaStream_t stream) = 0;
  virtual Status reduceScatterOnDevice(const void *in, void *out, int64_t count, DType dtype,
                                       CollectiveReduce op, uint32_t axes,
                                       cudaStream_t stream) = 0;
  /// Waits for `stream`, watching the collectives for a failed rank: an
  /// error, and failed() from then on, when one reports a failure or the
  /// job's collective timeout passes, instead of waiting forever.
  virtual Status synchronize(cudaStream_t stream, const std::string &what) = 0;
  /// Whether a wait failed: the job is over, and its collectives refuse.
  virtual bool failed() const = 0;
  /// Aborts the communicators so that kernels stuck in a collective end.
  /// NCCL's abort waits for every CUDA graph that captured one of them to
  /// be destroyed: the caller destroys its graphs first.
  virtual void abort() = 0;
};

} // namespace gai::cuda

#endif // GAI_RUNTIME_HAL_CUDA_DEVICECOLLECTIVES_H
