// NCCL through function pointers: its header gives the types, dlopen the
// code, so that gai-run runs where NCCL is absent (one GPU, the CPU) and
// uses the NCCL a GPU machine has (often a Python environment's).
// One NCCL communicator spans the world; each group of mesh axes the
// artifact's collectives name gets its own, split from it.
#include "core/Executor.h"
#include "core/Rendezvous.h"
#include "dist/CollectiveChecks.h"
#include "hal/cuda/DeviceCollectives.h"
#include "hal/cuda/Driver.h"

#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <memory>
#include <future>
#include <functional>
#include <thread>

namespace gai::cuda {
namespace {

struct NcclLibrary {
  decltype(&ncclGetVersion) getVersion = nullptr;
  decltype(&ncclGetUniqueId) getUniqueId = nullptr;
  decltype(&ncclCommInitRank) commInitRank = nullptr;
  decltype(&ncclCommSplit) commSplit = nullptr;
  decltype(&ncclCommDestroy) commDestroy = nullptr;
  decltype(&ncclCommAbort) commAbort = nullptr;
  decltype(&ncclCommGetAsyncError) commGetAsyncError = nullptr;
  decltype(&ncclGetErrorString) getErrorString = nullptr;
  decltype(&ncclGetLastError) getLastError = nullptr;
  decltype(&ncclAllReduce) allReduce = nullptr;
  decltype(&ncclAllGather) allGather = nullptr;
  decltype(&ncclReduceScatter) reduceScatter = nullptr;
  decltype(&ncclBroadcast) broadcast = nullptr;
  int version = 0;

  static StatusOr<const NcclLibrary *> get();
  Status check(ncclResult_t result, const std::string &what, ncclComm_t comm) const {
    if (result == ncclSuccess)
      return Status::ok();
    std::string detail = comm && getLastError ? getLastError(comm) : "";
    return Status::error("NCCL " + what + ": " + getErrorString(result) +
                         (detail.empty() ? "" : " (" + detail + ")"));
  }
};

// ncclCommSplit (2.18) is the newest entry point used.
constexpr int kOldestVersion = 21800;

StatusOr<const NcclLibrary *> NcclLibrary::get() {
  static NcclLibrary lib;
  static Status status = [] {
    const char *env = std::getenv("GAI_NCCL_LIBRARY");
    std::string name = env && *env ? env : "libnccl.so.2";
    // Never closed: communicators made by it live to the end.
    void *so = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!so)
      return Status::error("NCCL is not here (" + name + ": " + dlerror() +
                           "): collectives between GPUs need it. Set GAI_NCCL_LIBRARY to "
                           "libnccl.so.2's path, or put its directory on LD_LIBRARY_PATH "
                           "(PyPI: nvidia-nccl-cu13; PyTorch environments have it)");
    std::string missing;
    auto bind = [&](const char *symbol, auto &fn) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(so, symbol));
      if (!fn)
        missing += std::string(missing.empty() ? "" : ", ") + symbol;
    };
    bind("ncclGetVersion", lib.getVersion);
    bind("ncclGetUniqueId", lib.getUniqueId);
    bind("ncclCommInitRank", lib.commInitRank);
    bind("ncclCommSplit", lib.commSplit);
    bind("ncclCommDestroy", lib.commDestroy);
    bind("ncclCommAbort", lib.commAbort);
    bind("ncclCommGetAsyncError", lib.commGetAsyncError);
    bind("ncclGetErrorString", lib.getErrorString);
    bind("ncclGetLastError", lib.getLastError);
    bind("ncclAllReduce", lib.allReduce);
    bind("ncclAllGather", lib.allGather);
    bind("ncclReduceScatter", lib.reduceScatter);
    bind("ncclBroadcast", lib.broadcast);
    if (!missing.empty())
      return Status::error(name + " lacks " + missing + ": gai needs NCCL 2.18 or newer");
    lib.getVersion(&lib.version);
    if (lib.version < kOldestVersion)
      return Status::error(name + " is NCCL " + std::to_string(lib.version) +
                           ": gai needs 2.18 or newer (ncclCommSplit)");
    return Status::ok();
  }();
  if (!status)
    return status;
  return &lib;
}

StatusOr<ncclDataType_t> ncclTypeOf(DType dtype) {
  switch (dtype) {
  case DType::F32: return ncclFloat32;
  case DType::F64: return ncclFloat64;
  case DType::F16: return ncclFloat16;
  case DType::BF16: return ncclBfloat16;
  case DType::I32: return ncclInt32;
  case DType::I64: return ncclInt64;
  default:
    return Status::error(std::string("NCCL collectives take f32, f64, f16, bf16, i32 or i64, "
                                     "not ") +
                         dtypeName(dtype));
  }
}

ncclRedOp_t ncclOpOf(CollectiveReduce op) {
  switch (op) {
  case CollectiveReduce::Average: return ncclAvg;
  case CollectiveReduce::Max: return ncclMax;
  default: return ncclSum;
  }
}

using Clock = std::chrono::steady_clock;

/// Runs a blocking NCCL setup call (init, split: they wait for every rank)
/// on a thread of its own, on `ordinal`, and gives up after `seconds`: a
/// rank that died before joining must not leave the others waiting forever.
/// On a timeout the thread is left behind; the job is over by then.
ncclResult_t withinTimeout(int ordinal, int64_t seconds, bool &timedOut,
                           std::function<ncclResult_t()> call) {
  auto task = std::make_shared<std::packaged_task<ncclResult_t()>>([ordinal, call] {
    cudaSetDevice(ordinal); // the device is per thread
    return call();
  });
  std::future<ncclResult_t> result = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  timedOut = result.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready;
  return timedOut ? ncclSystemError : result.get();
}

class NcclCommunicator final : public Communicator, public DeviceCollectives {
public:
  NcclCommunicator(const NcclLibrary &nccl, const JobPlacement &placement, int ordinal)
      : nccl_(nccl), placement_(placement), ordinal_(ordinal) {
    mesh_.shape = {placement.size};
  }
  /// After every session that ran collectives through it (their CUDA
  /// graphs hold the communicators: NCCL waits for them to go).
  ~NcclCommunicator() override {
    cudaSetDevice(ordinal_);
    // Destroying a communicator whose peers are gone would wait for them.
    if (failed_) {
      abort();
    } else {
      for (auto &[axes, comm] : groups_)
        nccl_.commDestroy(comm);
      if (world_)
        nccl_.commDestroy(world_);
    }
    if (staging_)
      cudaFree(staging_);
    if (stream_)
      cudaStreamDestroy(stream_);
  }

  Status init(const ncclUniqueId &id, std::unique_ptr<Communicator> bootstrap) {
    bootstrap_ = std::move(bootstrap);
    if (cudaError_t e = cudaSetDevice(ordinal_); e != cudaSuccess)
      return cudaError("cudaSetDevice(" + std::to_string(ordinal_) + ")", e);
    if (cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
        e != cudaSuccess)
      return cudaError("cudaStreamCreate", e);
    bool timedOut = false;
    // Owned with the thread: it may outlive this call (a timeout).
    auto world = std::make_shared<ncclComm_t>(nullptr);
    const int size = static_cast<int>(placement_.size), rank = static_cast<int>(placement_.rank);
    auto init = nccl_.commInitRank;
    ncclResult_t r = withinTimeout(ordinal_, placement_.collectiveTimeoutSeconds, timedOut,
                                   [=] { return init(world.get(), size, id, rank); });
    if (timedOut) {
      failed_ = true; // nothing to destroy: the init never returned
      return Status::error("NCCL init of rank " + std::to_string(rank) + " of " +
                           std::to_string(size) + " did not finish in " +
                           std::to_string(placement_.collectiveTimeoutSeconds) +
                           " s (GAI_COLLECTIVE_TIMEOUT): a rank of the job did not join");
    }
    world_ = *world;
    return nccl_.check(r, "init of rank " + std::to_string(rank) + " of " + std::to_string(size),
                       nullptr);
  }

  int64_t rank() const override { return placement_.rank; }
  int64_t size() const override { return placement_.size; }
  std::string kind() const override { return "nccl"; }
  int deviceOrdinal() const override { return ordinal_; }

  Status setMesh(const Mesh &mesh) override {
    if (failed_)
      return jobFailed();
    auto kept = dist::normalizedMesh(mesh, placement_.size);
    if (!kept)
      return kept.status();
    if (kept->shape != mesh_.shape) {
      // Groups are the old mesh's: split again on the next use.
      for (auto &[axes, comm] : groups_)
        nccl_.commDestroy(comm);
      groups_.clear();
    }
    mesh_ = *kept;
    return Status::ok();
  }

  Status prepareGroup(uint32_t axes) override { return group(axes).status(); }

  int64_t groupIndex(uint32_t axes) const override {
    return mesh_.groupIndex(placement_.rank, axes);
  }

  Status allReduceOnDevice(const void *in, void *out, int64_t count, DType dtype,
                           CollectiveReduce op, uint32_t axes, cudaStream_t stream) override {
    auto type = checked("allReduce", in, out, count, dtype, &op, axes);
    if (!type)
      return type.status();
    auto comm = group(axes);
    if (!comm)
      return comm.status();
    return nccl_.check(nccl_.allReduce(in, out, static_cast<size_t>(count), *type, ncclOpOf(op),
                                       *comm, stream),
                       "all_reduce", *comm);
  }

  Status allGatherOnDevice(const void *in, void *out, int64_t count, DType dtype,
                           uint32_t axes, cudaStream_t stream) override {
    auto type = checked("allGather", in, out, count, dtype, nullptr, axes);
    if (!type)
      return type.status();
    auto comm = group(axes);
    if (!comm)
      return comm.status();
    return nccl_.check(
        nccl_.allGather(in, out, static_cast<size_t>(count), *type, *comm, stream),
        "all_gather", *comm);
  }

  Status reduceScatterOnDevice(const void *in, void *out, int64_t count, DType dtype,
                               CollectiveReduce op, uint32_t axes,
                               cudaStream_t stream) override {
    auto type = checked("reduceScatter", in, out, count, dtype, &op, axes);
    if (!type)
      return type.status();
    auto comm = group(axes);
    if (!comm)
      return comm.status();
    return nccl_.check(nccl_.reduceScatter(in, out, static_cast<size_t>(count), *type,
                                           ncclOpOf(op), *comm, stream),
                       "reduce_scatter", *comm);
  }

  Status synchronize(cudaStream_t stream, const std::string &what) override {
    const auto deadline =
        Clock::now() + std::chrono::seconds(placement_.collectiveTimeoutSeconds);
    for (int spins = 0;; ++spins) {
      cudaError_t e = cudaStreamQuery(stream);
      if (e == cudaSuccess)
        return Status::ok();
      if (e != cudaErrorNotReady)
        return cudaError(what, e);
      if (failed_)
        return Status::error(what + ": " + jobFailed().message());
      for (ncclComm_t comm : communicators()) {
        ncclResult_t async = ncclSuccess;
        nccl_.commGetAsyncError(comm, &async);
        if (async != ncclSuccess && async != ncclInProgress) {
          Status failure = nccl_.check(async, "collectives of rank " +
                                                  std::to_string(placement_.rank),
                                       comm);
          failed_ = true;
          return Status::error(what + ": " + failure.message() +
                               "; a rank of the job failed or stopped");
        }
      }
      if (Clock::now() > deadline) {
        failed_ = true;
        return Status::error(what + ": rank " + std::to_string(placement_.rank) +
                             "'s collectives did not finish in " +
                             std::to_string(placement_.collectiveTimeoutSeconds) +
                             " s (GAI_COLLECTIVE_TIMEOUT): a rank of the job stopped or "
                             "hangs");
      }
      // Spin briefly (a step's collectives are short), then sleep.
      if (spins > 1000)
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }

  // Host memory: through a device staging buffer on this communicator's
  // own stream.
  Status allReduce(const void *in, void *out, int64_t count, DType dtype, CollectiveReduce op,
                   uint32_t axes) override {
    auto type = checked("allReduce", in, out, count, dtype, &op, axes);
    if (!type)
      return type.status();
    size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
    return staged(in, bytes, out, bytes, [&](void *deviceIn, void *deviceOut) {
      return allReduceOnDevice(deviceIn, deviceOut, count, dtype, op, axes, stream_);
    });
  }
  Status allGather(const void *in, void *out, int64_t count, DType dtype,
                   uint32_t axes) override {
    auto type = checked("allGather", in, out, count, dtype, nullptr, axes);
    if (!type)
      return type.status();
    size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
    return staged(in, bytes, out, bytes * static_cast<size_t>(mesh_.groupSize(axes)),
                  [&](void *deviceIn, void *deviceOut) {
                    return allGatherOnDevice(deviceIn, deviceOut, count, dtype, axes, stream_);
                  });
  }
  Status reduceScatter(const void *in, void *out, int64_t count, DType dtype,
                       CollectiveReduce op, uint32_t axes) override {
    auto type = checked("reduceScatter", in, out, count, dtype, &op, axes);
    if (!type)
      return type.status();
    size_t bytes = static_cast<size_t>(count) * dtypeSize(dtype);
    return staged(in, bytes * static_cast<size_t>(mesh_.groupSize(axes)), out, bytes,
                  [&](void *deviceIn, void *deviceOut) {
                    return reduceScatterOnDevice(deviceIn, deviceOut, count, dtype, op, axes,
                                                 stream_);
                  });
  }
  Status broadcast(void *data, int64_t bytes, int64_t root) override {
    if (Status s = dist::checkBroadcast(data, bytes, root, placement_.size); !s)
      return s;
    auto size = static_cast<size_t>(bytes);
    return staged(data, size, data, size, [&](void *deviceIn, void *deviceOut) {
      return nccl_.check(nccl_.broadcast(deviceIn, deviceOut, size, ncclUint8,
                                         static_cast<int>(root), world_, stream_),
                         "broadcast", world_);
    });
  }
  bool failed() const override { return failed_; }

  void abort() override {
    failed_ = true;
    cudaSetDevice(ordinal_);
    for (ncclComm_t comm : communicators())
      nccl_.commAbort(comm);
    world_ = nullptr;
    groups_.clear();
  }

  Status barrier() override {
    int32_t one = 1, sum = 0;
    return allReduce(&one, &sum, 1, DType::I32, CollectiveReduce::Sum, Mesh::kAllAxes);
  }

private:
  StatusOr<ncclDataType_t> checked(const char *name, const void *in, const void *out,
                                   int64_t count, DType dtype, const CollectiveReduce *op,
                                   uint32_t axes) const {
    auto elementSize = dist::checkCollective(name, mesh_, in, out, count, dtype, op, axes);
    if (!elementSize)
      return elementSize.status();
    return ncclTypeOf(dtype);
  }

  /// The communicator of this rank's group along `axes`: the world's when
  /// the group is the world, else split from it (colour: the group's
  /// position among the groups; key: the rank's index within it).
  Status jobFailed() const {
    return Status::error("rank " + std::to_string(placement_.rank) +
                         "'s collectives failed earlier: the job is over");
  }

  StatusOr<ncclComm_t> group(uint32_t axes) {
    if (failed_ || !world_)
      return jobFailed();
    int64_t members = mesh_.groupSize(axes);
    if (members == placement_.size)
      return world_;
    if (auto it = groups_.find(axes); it != groups_.end())
      return it->second;
    std::vector<int64_t> at = mesh_.coordinates(placement_.rank);
    int64_t colour = 0;
    for (size_t axis = 0; axis < at.size(); ++axis)
      if (axis >= 32 || !(axes >> axis & 1u))
        colour = colour * mesh_.shape[axis] + at[axis];
    auto made = std::make_shared<ncclComm_t>(nullptr); // may outlive a timeout
    ncclComm_t world = world_;
    // No config: the world's (a config struct of this header's version may
    // not be the loaded library's).
    auto split = nccl_.commSplit;
    const int key = static_cast<int>(groupIndex(axes)), colourInt = static_cast<int>(colour);
    bool timedOut = false;
    ncclResult_t r =
        withinTimeout(ordinal_, placement_.collectiveTimeoutSeconds, timedOut,
                      [=] { return split(world, colourInt, key, made.get(), nullptr); });
    if (timedOut) {
      failed_ = true;
      return Status::error("NCCL's split into groups of " + std::to_string(members) +
                           " did not finish in " +
                           std::to_string(placement_.collectiveTimeoutSeconds) +
                           " s (GAI_COLLECTIVE_TIMEOUT): a rank of the job stopped");
    }
    if (Status s = nccl_.check(r, "split of the world into groups of " + std::to_string(members),
                               world_);
        !s)
      return s;
    ncclComm_t comm = *made;
    groups_[axes] = comm;
    return comm;
  }

  std::vector<ncclComm_t> communicators() const {
    std::vector<ncclComm_t> all;
    if (world_)
      all.push_back(world_);
    for (auto &[axes, comm] : groups_)
      all.push_back(comm);
    return all;
  }

  template <typename Run>
  Status staged(const void *in, size_t inBytes, void *out, size_t outBytes, Run run) {
    if (failed_)
      return jobFailed();
    if (cudaError_t e = cudaSetDevice(ordinal_); e != cudaSuccess)
      return cudaError("cudaSetDevice(" + std::to_string(ordinal_) + ")", e);
    size_t need = inBytes + outBytes;
    if (need > stagingBytes_) {
      if (staging_)
        cudaFree(staging_);
      staging_ = nullptr;
      stagingBytes_ = 0;
      if (cudaError_t e = cudaMalloc(&staging_, need); e != cudaSuccess)
        return cudaError("staging " + std::to_string(need) + " bytes for a collective", e);
      stagingBytes_ = need;
    }
    auto *deviceIn = static_cast<uint8_t *>(staging_), *deviceOut = deviceIn + inBytes;
    if (inBytes)
      if (cudaError_t e = cudaMemcpyAsync(deviceIn, in, inBytes, cudaMemcpyHostToDevice, stream_);
          e != cudaSuccess)
        return cudaError("staging a host collective", e);
    if (Status s = run(deviceIn, deviceOut); !s)
      return s;
    // Watched first: a copy into pageable memory would wait, unwatched,
    // for a collective whose peer is gone.
    if (Status s = synchronize(stream_, "a host collective"); !s)
      return s;
    if (outBytes)
      if (cudaError_t e = cudaMemcpy(out, deviceOut, outBytes, cudaMemcpyDeviceToHost);
          e != cudaSuccess)
        return cudaError("a host collective's result", e);
    return Status::ok();
  }

  const NcclLibrary &nccl_;
  JobPlacement placement_;
  int ordinal_;
  std::unique_ptr<Communicator> bootstrap_; // MPI, when it carried the id
  ncclComm_t world_ = nullptr;
  std::map<uint32_t, ncclComm_t> groups_;
  cudaStream_t stream_ = nullptr;
  void *staging_ = nullptr;
  size_t stagingBytes_ = 0;
  bool failed_ = false;
};

/// NCCL's unique id from rank 0: over TCP where the launcher gave an
/// address, else over MPI; `bootstrap` keeps MPI open for the job.
StatusOr<ncclUniqueId> shareUniqueId(const NcclLibrary &nccl, const JobPlacement &placement,
                                     std::unique_ptr<Communicator> &bootstrap) {
  ncclUniqueId id{};
  if (placement.rank == 0)
    if (Status s = nccl.check(nccl.getUniqueId(&id), "unique id", nullptr); !s)
      return s;
  if (placement.size == 1)
    return id;
  const char *address = std::getenv("MASTER_ADDR");
  if (address && *address) {
    std::vector<uint8_t> blob(reinterpret_cast<uint8_t *>(&id),
                              reinterpret_cast<uint8_t *>(&id) + sizeof id);
    auto shared = shareFromRankZero(placement, blob,
                                    static_cast<int>(placement.collectiveTimeoutSeconds));
    if (!shared)
      return shared.status();
    if (shared->size() != sizeof id)
      return Status::error("the rendezvous gave " + std::to_string(shared->size()) +
                           " bytes, not an NCCL id of " + std::to_string(sizeof id));
    std::memcpy(&id, shared->data(), sizeof id);
    return id;
  }
  if (placement.launcher == "mpi" || placement.launcher == "slurm") {
    auto mpi = openHostCommunicator(placement);
    if (!mpi)
      return Status::error("sharing NCCL's id: " + mpi.status().message() +
                           " (or set MASTER_ADDR and MASTER_PORT for a TCP rendezvous)");
    if (Status s = (*mpi)->broadcast(&id, sizeof id, 0); !s)
      return s;
    bootstrap = std::move(*mpi);
    return id;
  }
  return Status::error("a job of " + std::to_string(placement.size) +
                       " GPU ranks shares NCCL's id over TCP, but MASTER_ADDR is not set: "
                       "start it with gai-run launch or torchrun, or set MASTER_ADDR and "
                       "MASTER_PORT");
}

} // namespace
} // namespace gai::cuda

namespace gai {

StatusOr<std::unique_ptr<Communicator>> openCudaCommunicator(const JobPlacement &placement,
                                                             int &deviceOrdinal) {
  auto nccl = cuda::NcclLibrary::get();
  if (!nccl)
    return nccl.status();
  int count = cudaDeviceCount();
  if (count == 0)
    return Status::error("rank " + std::to_string(placement.rank) +
                         " sees no CUDA GPU, and a GPU job's ranks each need one");
  if (deviceOrdinal < 0)
    deviceOrdinal = static_cast<int>(placement.localRank % count);
  if (deviceOrdinal >= count)
    return Status::error("--device=cuda:" + std::to_string(deviceOrdinal) + ": rank " +
                         std::to_string(placement.rank) + " sees " + std::to_string(count) +
                         " CUDA GPU(s)");
  // NCCL binds a communicator to the current device.
  if (cudaError_t e = cudaSetDevice(deviceOrdinal); e != cudaSuccess)
    return cuda::cudaError("cudaSetDevice(" + std::to_string(deviceOrdinal) + ")", e);
  std::unique_ptr<Communicator> bootstrap;
  auto id = cuda::shareUniqueId(**nccl, placement, bootstrap);
  if (!id)
    return id.status();
  auto comm = std::make_unique<cuda::NcclCommunicator>(**nccl, placement, deviceOrdinal);
  if (Status s = comm->init(*id, std::move(bootstrap)); !s)
    return s;
  return std::unique_ptr<Communicator>(std::move(comm));
}

} // namespace gai
