// The one entry point of libgai-mpi.so, the MPI communicator that
// openHostCommunicator loads at run time so that gai_runtime never links MPI.
#ifndef GAI_DIST_MPIPLUGIN_H
#define GAI_DIST_MPIPLUGIN_H

#include "gai/Comm.h"

#include <cstddef>
#include <cstdint>

namespace gai::dist {

/// Raised whenever Communicator or the entry point changes, so that a plugin
/// of another build is refused instead of called wrongly.
constexpr int kMpiPluginAbiVersion = 2;
constexpr const char *kMpiPluginFile = "libgai-mpi.so";
constexpr const char *kMpiPluginEntry = "gaiOpenMpiCommunicator";

} // namespace gai::dist

/// Starts MPI (unless the program already has) and returns a communicator
/// the caller owns, or null with a NUL-terminated message in `error`. `rank`
/// and `size` are the job's placement, checked against MPI's own;
/// `sizeVariable` names where the size came from, for that message. A
/// collective not done within `timeoutSeconds` aborts the job.
extern "C" gai::Communicator *gaiOpenMpiCommunicator(int abiVersion,
                                                     int64_t rank, int64_t size,
                                                     const char *sizeVariable,
                                                     int64_t timeoutSeconds,
                                                     char *error,
                                                     size_t errorBytes);

#endif // GAI_DIST_MPIPLUGIN_H
