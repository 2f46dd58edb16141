// The processes of a sharded job and the collectives between them: how a
// rank finds its peers (MPI, or the rank variables of a launcher) and the
// host-memory collectives the CPU backend and the trainer use.
#ifndef GAI_COMM_H
#define GAI_COMM_H

#include "gai/Safetensors.h" // DType
#include "gai/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gai {

enum class CollectiveReduce { Sum, Average, Max };

/// A job's ranks laid out on a grid, row-major (the last axis fastest, so
/// that with dp×tp the ranks of one tensor-parallel group are neighbours).
/// A group is named by a bitmask of grid axes: the ranks that share this
/// rank's coordinates on every other axis. Bits past the last axis name no
/// axis, so kAllAxes is the world.
struct Mesh {
  static constexpr uint32_t kAllAxes = ~0u;
  std::vector<int64_t> shape; ///< empty: one axis of the world's size
  /// The product of the shape (1 for an empty one); 0 when an extent is
  /// below 1 or the product overflows (check() says which).
  int64_t size() const;
  /// Empty for a rank outside [0, size()).
  std::vector<int64_t> coordinates(int64_t rank) const;
  /// This rank's index within its group along `axes` (row-major over them);
  /// -1 for a rank outside [0, size()).
  int64_t groupIndex(int64_t rank, uint32_t axes) const;
  /// How many ranks a group along `axes` holds.
  int64_t groupSize(uint32_t axes) const;
  /// Whether this mesh lays out a world of `worldSize` ranks (an empty
  /// shape does), with at most 32 axes, each of extent 1 or more.
  Status check(int64_t worldSize) const;
};

/// Collectives over host memory, in the rank order of Mesh. Every call is
/// made by every rank of the group, in the same order; a rank that fails or
/// stops makes the others fail (never wait forever). Reductions take f32,
/// f64, bf16, f16 (reduced through float), i32 and i64; Average (the sum
/// divided by the group's size) only the float types. `axes` with a bit
/// past the mesh's last axis, other than Mesh::kAllAxes, is an error.
/// Arguments are checked on each rank before any message is sent: a call
/// that one rank alone refuses leaves the others waiting, so ranks pass
/// the same counts, dtypes and axes.
class Communicator {
public:
  virtual ~Communicator() = default;
  virtual int64_t rank() const = 0; ///< in the world
  virtual int64_t size() const = 0; ///< the world's ranks
  /// What carries the messages: "single", "mpi", ...
  virtual std::string kind() const = 0;

  /// Lays the world out on `mesh` (its size must be the world's; an empty
  /// shape is one axis of the world's size); groups name its axes from then
  /// on. A collective: every rank passes the same mesh.
  virtual Status setMesh(const Mesh &mesh) = 0;
  const Mesh &mesh() const { return mesh_; }

  /// out = reduce(in) over the group; `in` may equal `out`.
  virtual Status allReduce(const void *in, void *out, int64_t count, DType dtype,
                           CollectiveReduce op, uint32_t axes) = 0;
  /// out = the group's `in`s one after another (count elements each).
  virtual Status allGather(const void *in, void *out, int64_t count, DType dtype,
                           uint32_t axes) = 0;
  /// out = the group-index-th count elements of reduce(in), in holding
  /// count × group size elements.
  virtual Status reduceScatter(const void *in, void *out, int64_t count, DType dtype,
                               CollectiveReduce op, uint32_t axes) = 0;
  /// `bytes` of `data` from world rank `root` to every rank.
  virtual Status broadcast(void *data, int64_t bytes, int64_t root) = 0;
  virtual Status barrier() = 0;

protected:
  Mesh mesh_;
};

/// A world of one: every collective is a copy.
std::unique_ptr<Communicator> singleProcessCommunicator();

/// Where this process stands in a job, from its environment: under mpirun
/// (OMPI_COMM_WORLD_*, PMI_*), srun (SLURM_PROCID/SLURM_NTASKS), torchrun
/// or `gai-run launch` (RANK, WORLD_SIZE, LOCAL_RANK). World size 1 when
/// none is set. The first family present wins, in that order.
struct JobPlacement {
  int64_t rank = 0, size = 1;
  /// The rank among this host's; the rank itself when the launcher sets
  /// none (all ranks taken to share one host).
  int64_t localRank = 0;
  std::string launcher; ///< "", "mpi", "slurm", "torchrun"/"gai"
  /// The variable the world's size came from, for messages ("" for none).
  std::string sizeVariable;
  /// How long a rank waits on collectives (and on the rendezvous) before it
  /// takes a peer for stopped and ends the job: GAI_COLLECTIVE_TIMEOUT
  /// seconds, 600 when unset.
  int64_t collectiveTimeoutSeconds = 600;
};
/// An error names the variable that is malformed, missing from its pair
/// or out of range.
StatusOr<JobPlacement> jobPlacementFromEnvironment();

/// The host communicator for this process: single when the world is one;
/// MPI (loaded at run time, so hosts without MPI still run one-device
/// jobs) otherwise. An error says what is missing.
///
/// The MPI communicator is the plugin libgai-mpi.so, looked for only at
/// $GAI_MPI_PLUGIN when that is set (the one place it is read), else beside
/// the running executable, in its ../lib, and on the loader's search path.
StatusOr<std::unique_ptr<Communicator>> openHostCommunicator(const JobPlacement &placement);

/// The communicator of a job on GPUs: NCCL between the ranks' devices (its
/// library loaded at run time: $GAI_NCCL_LIBRARY when set, else
/// libnccl.so.2 on the loader's path), whose host-memory collectives are
/// staged through the device. `deviceOrdinal` below 0 picks the local rank's
/// GPU (LOCAL_RANK modulo the GPUs visible) and is set to it. NCCL's unique
/// id goes from rank 0 to the others over TCP at MASTER_ADDR:MASTER_PORT
/// (gai-run launch and torchrun set them), else, under mpirun or srun, over
/// MPI. A world of one needs neither. An error says what is missing.
StatusOr<std::unique_ptr<Communicator>> openCudaCommunicator(const JobPlacement &placement,
                                                             int &deviceOrdinal);

} // namespace gai

#endif // GAI_COMM_H
