// Rank 0 hands a few bytes to every other rank over TCP at MASTER_ADDR:
// MASTER_PORT: how the ranks of a job without MPI (the CUDA backend's,
// started by gai-run launch or torchrun) share NCCL's unique id.
#ifndef GAI_CORE_RENDEZVOUS_H
#define GAI_CORE_RENDEZVOUS_H

#include "gai/Comm.h"

#include <cstdint>
#include <string>
#include <vector>

namespace gai {

struct RendezvousAddress {
  std::string host;
  int port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

/// MASTER_ADDR and MASTER_PORT, as gai-run launch and torchrun set them;
/// the one place the runtime reads them. An error names the variable.
StatusOr<RendezvousAddress> rendezvousAddressFromEnvironment();

/// Rank 0 listens at `address` and sends `blobOnRankZero` to each of the
/// other ranks; they connect (retrying while rank 0 is not up yet) and
/// return it. Every rank gives up after `timeoutSeconds`, with an error
/// naming the address. A world of one returns the blob at once.
StatusOr<std::vector<uint8_t>> shareFromRankZero(
    const RendezvousAddress &address, const JobPlacement &placement,
    const std::vector<uint8_t> &blobOnRankZero, int timeoutSeconds);

/// The same at the environment's address.
StatusOr<std::vector<uint8_t>>
shareFromRankZero(const JobPlacement &placement,
                  const std::vector<uint8_t> &blobOnRankZero,
                  int timeoutSeconds);

} // namespace gai

#endif // GAI_CORE_RENDEZVOUS_H
