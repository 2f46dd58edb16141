// The argument checks of every Communicator, so that the single-process and
// the MPI communicator accept and refuse the same calls with the same words.
#ifndef GAI_DIST_COLLECTIVECHECKS_H
#define GAI_DIST_COLLECTIVECHECKS_H

#include "gai/Comm.h"

#include <cstddef>

namespace gai::dist {

/// Bytes per element of a dtype the collectives take; 0 for the others.
size_t collectiveElementSize(DType dtype);

/// The mesh a communicator keeps for `mesh`: checked against the world, an
/// empty shape made one axis of the world's size.
StatusOr<Mesh> normalizedMesh(const Mesh &mesh, int64_t worldSize);

/// Checks a collective's arguments and returns the element size. `op` is
/// null for allGather; the larger side holds count × the group's size.
StatusOr<size_t> checkCollective(const char *name, const Mesh &mesh,
                                 const void *in, const void *out, int64_t count,
                                 DType dtype, const CollectiveReduce *op,
                                 uint32_t axes);

Status checkBroadcast(const void *data, int64_t bytes, int64_t root,
                      int64_t worldSize);

} // namespace gai::dist

#endif // GAI_DIST_COLLECTIVECHECKS_H
