// libgai-mpi.so: the host communicator over MPI. A plugin, loaded by
// openHostCommunicator, so that the runtime runs where MPI is not installed.
#include "dist/CollectiveChecks.h"
#include "dist/MpiPlugin.h"
#include "gai/FloatConvert.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>
#include <mpi.h>
#include <sched.h>
#include <thread>

namespace gai::dist {
namespace {

Status mpiStatus(int code, const char *what) {
  if (code == MPI_SUCCESS)
    return Status::ok();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    length = std::snprintf(text, sizeof text, "error %d", code);
  return Status::error(std::string("MPI ") + what + ": " +
                       std::string(text, static_cast<size_t>(length)));
}

// 16-bit floats reduce through float: MPI has no bf16 or f16 type.
template <float (*ToFloat)(uint16_t), uint16_t (*FromFloat)(float), bool IsMax>
void reduceHalves(void *in, void *inout, int *length, MPI_Datatype *) {
  const auto *a = static_cast<const uint16_t *>(in);
  auto *b = static_cast<uint16_t *>(inout);
  for (int i = 0; i < *length; ++i) {
    float x = ToFloat(a[i]), y = ToFloat(b[i]);
    b[i] = FromFloat(IsMax ? std::max(x, y) : x + y);
  }
}

bool isHalf(DType dtype) { return dtype == DType::BF16 || dtype == DType::F16; }

MPI_Datatype mpiType(DType dtype) {
  switch (dtype) {
  case DType::F64:
    return MPI_DOUBLE;
  case DType::F32:
    return MPI_FLOAT;
  case DType::I64:
    return MPI_INT64_T;
  case DType::I32:
    return MPI_INT32_T;
  default: // bf16, f16: reduced by the ops of halfOps_
    return MPI_UINT16_T;
  }
}

/// Average is a sum divided by the group's size afterwards.
void divide(void *data, int64_t count, DType dtype, int64_t divisor) {
  auto scaleAll = [&](auto *values) {
    for (int64_t i = 0; i < count; ++i)
      values[i] /= divisor;
  };
  auto *halves = static_cast<uint16_t *>(data);
  if (dtype == DType::F32)
    scaleAll(static_cast<float *>(data));
  else if (dtype == DType::F64)
    scaleAll(static_cast<double *>(data));
  else if (dtype == DType::BF16)
    for (int64_t i = 0; i < count; ++i)
      halves[i] = floatToBf16(bf16ToFloat(halves[i]) / divisor);
  else if (dtype == DType::F16)
    for (int64_t i = 0; i < count; ++i)
      halves[i] = floatToF16(f16ToFloat(halves[i]) / divisor);
}

/// One call's elements past MPI's int counts are an error, not a silent cut.
Status checkIntCount(const char *name, int64_t count) {
  if (count <= INT_MAX)
    return Status::ok();
  return Status::error(std::string(name) + ": " + std::to_string(count) +
                       " elements a rank are more than MPI's 2^31-1: split "
                       "the call");
}

// Live communicators: MPI is finalized with the last, if gai started it.
int liveCommunicators = 0;
bool startedMpi = false;

class MpiCommunicator final : public Communicator {
public:
  static StatusOr<std::unique_ptr<MpiCommunicator>>
  open(int64_t rank, int64_t size, const std::string &sizeVariable, int64_t timeoutSeconds);
  ~MpiCommunicator() override;

  int64_t rank() const override { return rank_; }
  int64_t size() const override { return size_; }
  std::string kind() const override { return "mpi"; }

  Status setMesh(const Mesh &mesh) override;
  Status allReduce(const void *in, void *out, int64_t count, DType dtype,
                   CollectiveReduce op, uint32_t axes) override;
  Status allGather(const void *in, void *out, int64_t count, DType dtype,
                   uint32_t axes) override;
  Status reduceScatter(const void *in, void *out, int64_t count, DType dtype,
                       CollectiveReduce op, uint32_t axes) override;
  Status broadcast(void *data, int64_t bytes, int64_t root) override;
  Status barrier() override;

private:
  MpiCommunicator() { ++liveCommunicators; }
  /// Axes of extent 1 change no group: a mask without them names the group.
  uint32_t groupKey(uint32_t axes) const;
  MPI_Comm groupComm(uint32_t axes) const;
  MPI_Op reduceOp(DType dtype, CollectiveReduce op) const;
  /// Waits for a nonblocking collective `started` (its MPI code) made; when
  /// it has not finished within the job's collective timeout, a rank has
  /// stopped or hangs: the message goes to stderr and MPI aborts the job,
  /// so that no rank waits forever.
  Status wait(int started, MPI_Request &request, const char *what);
  void freeGroups(std::map<uint32_t, MPI_Comm> &groups);

  int64_t rank_ = 0, size_ = 1;
  int64_t timeoutSeconds_ = 600;
  /// One communicator per set of axes of extent above 1, made by setMesh
  /// for all sets at once: a group's first call must not wait for ranks
  /// outside it.
  std::map<uint32_t, MPI_Comm> groups_;
  /// [bf16, f16][sum, max]
  MPI_Op halfOps_[2][2] = {{MPI_OP_NULL, MPI_OP_NULL},
                           {MPI_OP_NULL, MPI_OP_NULL}};
};

StatusOr<std::unique_ptr<MpiCommunicator>>
MpiCommunicator::open(int64_t rank, int64_t size, const std::string &sizeVariable,
                      int64_t timeoutSeconds) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (finalized)
    return Status::error("MPI was finalized already: a process opens MPI "
                         "once, and keeps the communicator");
  if (!initialized) {
    int provided = 0;
    if (Status s = mpiStatus(
            MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided),
            "init");
        !s)
      return s;
    startedMpi = true;
  }
  // The CPU backend runs a job's collectives on a thread of its own, one
  // call at a time.
  int level = MPI_THREAD_SINGLE;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_SERIALIZED)
    return Status::error("MPI gives thread support level " + std::to_string(level) +
                         ", below MPI_THREAD_SERIALIZED, which gai's collectives thread "
                         "needs: initialise MPI with MPI_Init_thread(MPI_THREAD_SERIALIZED) "
                         "or higher");
  std::unique_ptr<MpiCommunicator> comm(new MpiCommunicator());
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
  int mpiRank = 0, mpiSize = 1;
  if (Status s = mpiStatus(MPI_Comm_rank(MPI_COMM_WORLD, &mpiRank), "rank"); !s)
    return s;
  if (Status s = mpiStatus(MPI_Comm_size(MPI_COMM_WORLD, &mpiSize), "size"); !s)
    return s;
  if (mpiSize != size || mpiRank != rank)
    return Status::error(
        "MPI sees rank " + std::to_string(mpiRank) + " of " +
        std::to_string(mpiSize) + ", but " + sizeVariable + " says rank " +
        std::to_string(rank) + " of " + std::to_string(size) +
        ": start CPU jobs with mpirun (gai-run launch does when mpirun is "
        "on PATH)");
  comm->rank_ = mpiRank;
  comm->size_ = mpiSize;
  comm->timeoutSeconds_ = timeoutSeconds;

  using ReduceFn = MPI_User_function *;
  ReduceFn fns[2][2] = {{reduceHalves<bf16ToFloat, floatToBf16, false>,
                         reduceHalves<bf16ToFloat, floatToBf16, true>},
                        {reduceHalves<f16ToFloat, floatToF16, false>,
                         reduceHalves<f16ToFloat, floatToF16, true>}};
  for (int type = 0; type < 2; ++type)
    for (int op = 0; op < 2; ++op)
      if (Status s = mpiStatus(
              MPI_Op_create(fns[type][op], 1, &comm->halfOps_[type][op]),
              "op_create");
          !s)
        return s;
  if (Status s = comm->setMesh(Mesh()); !s)
    return s;
  return std::move(comm);
}

MpiCommunicator::~MpiCommunicator() {
  freeGroups(groups_);
  for (auto &ops : halfOps_)
    for (MPI_Op &op : ops)
      if (op != MPI_OP_NULL)
        MPI_Op_free(&op);
  if (--liveCommunicators == 0 && startedMpi) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Finalize();
  }
}

void MpiCommunicator::freeGroups(std::map<uint32_t, MPI_Comm> &groups) {
  for (auto &[key, comm] : groups)
    MPI_Comm_free(&comm);
  groups.clear();
}

uint32_t MpiCommunicator::groupKey(uint32_t axes) const {
  uint32_t key = 0;
  for (size_t axis = 0; axis < mesh_.shape.size(); ++axis)
    if (((axes >> axis) & 1u) && mesh_.shape[axis] > 1)
      key |= 1u << axis;
  return key;
}

MPI_Comm MpiCommunicator::groupComm(uint32_t axes) const {
  uint32_t key = groupKey(axes);
  return key == 0 ? MPI_COMM_SELF : groups_.at(key);
}

Status MpiCommunicator::setMesh(const Mesh &mesh) {
  auto kept = normalizedMesh(mesh, size_);
  if (!kept)
    return kept.status();
  // Every rank must lay out the same mesh: the largest and the smallest
  // hash of it agree then (max of ~h is ~min of h).
  uint64_t hash = 1469598103934665603ull;
  for (int64_t extent : kept->shape)
    hash = (hash ^ static_cast<uint64_t>(extent)) * 1099511628211ull;
  uint64_t mine[2] = {hash, ~hash}, largest[2];
  MPI_Request request;
  if (Status s = wait(MPI_Iallreduce(mine, largest, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD,
                                     &request),
                      request, "allreduce (setMesh)");
      !s)
    return s;
  if (largest[0] != mine[0] || largest[1] != mine[1])
    return Status::error("setMesh: the ranks passed different meshes");

  std::vector<size_t> split;
  for (size_t axis = 0; axis < kept->shape.size(); ++axis)
    if (kept->shape[axis] > 1)
      split.push_back(axis);
  if (split.size() > 8)
    return Status::error("setMesh: at most 8 axes of extent above 1, got " +
                         std::to_string(split.size()));
  std::map<uint32_t, MPI_Comm> groups;
  uint32_t all = static_cast<uint32_t>((uint64_t(1) << kept->shape.size()) - 1);
  for (uint32_t subset = 1; subset < (1u << split.size()); ++subset) {
    uint32_t axes = 0;
    for (size_t i = 0; i < split.size(); ++i)
      if ((subset >> i) & 1u)
        axes |= 1u << split[i];
    // The ranks sharing the other axes' coordinates share a colour; their
    // order is the group index.
    int color = static_cast<int>(kept->groupIndex(rank_, all & ~axes));
    int key = static_cast<int>(kept->groupIndex(rank_, axes));
    MPI_Comm comm;
    if (Status s = mpiStatus(MPI_Comm_split(MPI_COMM_WORLD, color, key, &comm),
                             "comm_split");
        !s) {
      freeGroups(groups);
      return s;
    }
    groups[axes] = comm;
  }
  freeGroups(groups_);
  groups_ = std::move(groups);
  mesh_ = *kept;
  return Status::ok();
}

Status MpiCommunicator::wait(int started, MPI_Request &request, const char *what) {
  if (Status s = mpiStatus(started, what); !s)
    return s;
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(timeoutSeconds_);
  const auto sleepFrom = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    int done = 0;
    if (Status s = mpiStatus(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what); !s)
      return s;
    if (done)
      return Status::ok();
    if (Clock::now() > deadline) {
      std::fprintf(stderr,
                   "gai: rank %lld: an MPI %s did not finish in %lld s "
                   "(GAI_COLLECTIVE_TIMEOUT): a rank of the job stopped or hangs; "
                   "aborting the job\n",
                   static_cast<long long>(rank_), what,
                   static_cast<long long>(timeoutSeconds_));
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
      return Status::error(std::string("MPI ") + what + ": timed out");
    }
    // MPI moves a nonblocking collective on inside MPI_Test: poll, giving
    // the core away (ranks may share cores), and sleep only once a wait has
    // lasted a second (a peer is slow, not the messages).
    if (Clock::now() < sleepFrom)
      sched_yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

MPI_Op MpiCommunicator::reduceOp(DType dtype, CollectiveReduce op) const {
  bool max = op == CollectiveReduce::Max;
  if (isHalf(dtype))
    return halfOps_[dtype == DType::F16][max];
  return max ? MPI_MAX : MPI_SUM;
}

Status MpiCommunicator::allReduce(const void *in, void *out, int64_t count,
                                  DType dtype, CollectiveReduce op,
                                  uint32_t axes) {
  auto elementSize =
      checkCollective("allReduce", mesh_, in, out, count, dtype, &op, axes);
  if (!elementSize)
    return elementSize.status();
  // Elementwise, so a count past MPI's int goes in pieces.
  constexpr int64_t kPiece = int64_t(1) << 30;
  for (int64_t done = 0; done < count; done += kPiece) {
    size_t offset = static_cast<size_t>(done) * *elementSize;
    const void *src =
        in == out ? MPI_IN_PLACE : static_cast<const char *>(in) + offset;
    MPI_Request request;
    if (Status s = wait(MPI_Iallreduce(src, static_cast<char *>(out) + offset,
                                       static_cast<int>(std::min(kPiece, count - done)),
                                       mpiType(dtype), reduceOp(dtype, op), groupComm(axes),
                                       &request),
                        request, "allreduce");
        !s)
      return s;
  }
  if (op == CollectiveReduce::Average)
    divide(out, count, dtype, mesh_.groupSize(axes));
  return Status::ok();
}

Status MpiCommunicator::allGather(const void *in, void *out, int64_t count,
                                  DType dtype, uint32_t axes) {
  auto elementSize =
      checkCollective("allGather", mesh_, in, out, count, dtype, nullptr, axes);
  if (!elementSize)
    return elementSize.status();
  if (Status s = checkIntCount("allGather", count); !s)
    return s;
  // MPI forbids overlapping buffers; `in` at this rank's place is in place.
  const char *mine = static_cast<const char *>(out) +
                     static_cast<size_t>(mesh_.groupIndex(rank_, axes)) *
                         static_cast<size_t>(count) * *elementSize;
  const void *src = in == mine ? MPI_IN_PLACE : in;
  int n = static_cast<int>(count);
  MPI_Request request;
  return wait(MPI_Iallgather(src, n, mpiType(dtype), out, n, mpiType(dtype), groupComm(axes),
                             &request),
              request, "allgather");
}

Status MpiCommunicator::reduceScatter(const void *in, void *out, int64_t count,
                                      DType dtype, CollectiveReduce op,
                                      uint32_t axes) {
  auto elementSize =
      checkCollective("reduceScatter", mesh_, in, out, count, dtype, &op, axes);
  if (!elementSize)
    return elementSize.status();
  if (Status s = checkIntCount("reduceScatter", count); !s)
    return s;
  MPI_Request request;
  if (Status s = wait(MPI_Ireduce_scatter_block(in, out, static_cast<int>(count), mpiType(dtype),
                                                reduceOp(dtype, op), groupComm(axes), &request),
                      request, "reduce_scatter");
      !s)
    return s;
  if (op == CollectiveReduce::Average)
    divide(out, count, dtype, mesh_.groupSize(axes));
  return Status::ok();
}

Status MpiCommunicator::broadcast(void *data, int64_t bytes, int64_t root) {
  if (Status s = checkBroadcast(data, bytes, root, size_); !s)
    return s;
  constexpr int64_t kPiece = int64_t(1) << 30;
  for (int64_t done = 0; done < bytes; done += kPiece) {
    MPI_Request request;
    if (Status s = wait(MPI_Ibcast(static_cast<char *>(data) + done,
                                   static_cast<int>(std::min(kPiece, bytes - done)), MPI_BYTE,
                                   static_cast<int>(root), MPI_COMM_WORLD, &request),
                        request, "bcast");
        !s)
      return s;
  }
  return Status::ok();
}

Status MpiCommunicator::barrier() {
  MPI_Request request;
  return wait(MPI_Ibarrier(MPI_COMM_WORLD, &request), request, "barrier");
}

} // namespace
} // namespace gai::dist

extern "C" __attribute__((visibility("default"))) gai::Communicator *
gaiOpenMpiCommunicator(int abiVersion, int64_t rank, int64_t size,
                       const char *sizeVariable, int64_t timeoutSeconds, char *error,
                       size_t errorBytes) {
  auto fail = [&](const std::string &message) -> gai::Communicator * {
    if (errorBytes > 0)
      std::snprintf(error, errorBytes, "%s", message.c_str());
    return nullptr;
  };
  if (abiVersion != gai::dist::kMpiPluginAbiVersion)
    return fail("libgai-mpi.so is of another gai build (plugin interface " +
                std::to_string(gai::dist::kMpiPluginAbiVersion) +
                ", the runtime's " + std::to_string(abiVersion) + ")");
  auto comm = gai::dist::MpiCommunicator::open(
      rank, size, sizeVariable ? sizeVariable : "the environment",
      timeoutSeconds > 0 ? timeoutSeconds : 600);
  if (!comm)
    return fail(comm.status().message());
  return comm->release();
}
