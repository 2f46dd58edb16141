// Where this process stands in a job, from the variables its launcher set.
#include "gai/Comm.h"

#include <cerrno>
#include <cstdlib>

namespace gai {
namespace {

/// One launcher's variables; the first family present wins, so mpirun's own
/// variables beat a RANK left over in the environment.
struct VariableFamily {
  const char *launcher;
  const char *rank, *size, *localRank;
};

constexpr VariableFamily kFamilies[] = {
    {"mpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
     "OMPI_COMM_WORLD_LOCAL_RANK"},
    // MPICH's and Intel MPI's Hydra.
    {"mpi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
    {"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
    // torchrun, and gai-run launch (which also sets GAI_LAUNCH=1).
    {"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"},
};

/// An unset or empty variable reads as absent.
const char *variable(const char *name) {
  const char *value = std::getenv(name);
  return value && *value ? value : nullptr;
}

Status readCount(const char *name, int64_t &out) {
  const char *text = variable(name);
  char *end = nullptr;
  errno = 0;
  long long value = std::strtoll(text, &end, 10);
  if (*text < '0' || *text > '9' || errno || *end)
    return Status::error(std::string(name) + "='" + text +
                         "' is not a whole number");
  out = value;
  return Status::ok();
}

StatusOr<JobPlacement> placementFrom(const VariableFamily &family) {
  for (const char *name : {family.rank, family.size})
    if (!variable(name))
      return Status::error(std::string(name) + " is not set, but " +
                           (name == family.rank ? family.size : family.rank) +
                           " is: the launcher sets both");
  JobPlacement placement;
  placement.launcher = family.launcher;
  placement.sizeVariable = family.size;
  if (Status s = readCount(family.rank, placement.rank); !s)
    return s;
  if (Status s = readCount(family.size, placement.size); !s)
    return s;
  if (placement.size < 1)
    return Status::error(std::string(family.size) + "=0: a world has a rank");
  if (placement.rank >= placement.size)
    return Status::error(std::string(family.rank) + "=" +
                         std::to_string(placement.rank) +
                         " is outside a world of " + family.size + "=" +
                         std::to_string(placement.size));
  // Without a local rank, all ranks are taken to share one host.
  placement.localRank = placement.rank;
  if (variable(family.localRank)) {
    if (Status s = readCount(family.localRank, placement.localRank); !s)
      return s;
    if (placement.localRank >= placement.size)
      return Status::error(std::string(family.localRank) + "=" +
                           std::to_string(placement.localRank) +
                           " is outside a world of " + family.size + "=" +
                           std::to_string(placement.size));
  }
  if (placement.launcher == std::string("torchrun") && variable("GAI_LAUNCH"))
    placement.launcher = "gai";
  return placement;
}

} // namespace

StatusOr<JobPlacement> jobPlacementFromEnvironment() {
  StatusOr<JobPlacement> placement = JobPlacement();
  for (const VariableFamily &family : kFamilies)
    if (variable(family.rank) || variable(family.size)) {
      placement = placementFrom(family);
      break;
    }
  if (placement && variable("GAI_COLLECTIVE_TIMEOUT")) {
    int64_t seconds = 0;
    if (Status s = readCount("GAI_COLLECTIVE_TIMEOUT", seconds); !s)
      return s;
    if (seconds < 1)
      return Status::error("GAI_COLLECTIVE_TIMEOUT=0: give the seconds a rank waits on "
                           "collectives (1 or more)");
    placement->collectiveTimeoutSeconds = seconds;
  }
  return placement;
}

} // namespace gai
