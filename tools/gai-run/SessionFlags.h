// The flags every gai-run command takes to set up its session.
#ifndef GAI_TOOLS_GAI_RUN_SESSIONFLAGS_H
#define GAI_TOOLS_GAI_RUN_SESSIONFLAGS_H

#include "gai/Comm.h"
#include "gai/Session.h"

#include <string>

namespace gai {

/// Their --help text.
extern const char *const kSessionFlagsHelp;

enum class FlagResult { NotMine, Taken, Bad };

/// Reads argv[i] (and its value, advancing i) when it is a session flag;
/// `error` says what is wrong with a bad one.
FlagResult parseSessionFlag(int argc, char **argv, int &i, SessionOptions &options,
                            std::string &error);

/// This process's communicator in a sharded job (gai/Comm.h), from the
/// launcher's rank variables (a world of one without them), set as
/// `options.communicator`; it must outlive the session. Ranks that run
/// `artifact` on GPUs get NCCL's, each on its local rank's GPU (set in
/// `options.device`); CPU ranks get the host communicator (MPI).
StatusOr<std::unique_ptr<Communicator>> joinJob(SessionOptions &options,
                                                 const LoadedArtifact &artifact);

/// LoadedArtifact::load, after checking that the artifact and the weights
/// (when given) are regular files: a FIFO or device is refused, not read.
/// With `trustedKeys`, the artifact and its weights must carry a signature
/// by one of those keys.
StatusOr<LoadedArtifact> loadArtifact(const std::string &artifact,
                                      const std::string &weights,
                                      const std::string &trustedKeys = "");

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_SESSIONFLAGS_H
