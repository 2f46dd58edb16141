// The session flags of every gai-run command (SessionOptions).
#include "SessionFlags.h"

#include "Flags.h"

#include "gai/SafeFile.h"
#include "gai/Signing.h"
#include "gai/WeightSet.h"
#include "format/artifact_generated.h"

#include <cstdlib>

namespace gai {

const char *const kSessionFlagsHelp =
    "Session flags (every command; the environment's GAI_CUDA_GRAPHS,\n"
    "GAI_CUDA_PROFILE, GAI_CUDA_OVERLAP, GAI_COLLECTIVES_OVERLAP,\n"
    "GAI_CUDA_GEMM_TUNE, GAI_CUDA_FP8_FAST_ACCUM, GAI_DETERMINISTIC and\n"
    "GAI_CUDA_BESIDE set the defaults):\n"
    "  --device D           auto (the artifact's target), cpu, cuda or cuda:N\n"
    "  --cuda-graphs on|off replay entries as CUDA graphs (default on)\n"
    "  --profile            time each step, print the time per step kind at exit\n"
    "  --profile-steps N    --profile, listing the N costliest steps (default 30;\n"
    "                       0: every step)\n"
    "  --overlap on|off     CUDA sm_90+: kernels start as the one before finishes\n"
    "                       (programmatic dependent launch; default on)\n"
    "  --gemm-tune N        CUDA: time N of cuBLASLt's candidates for each\n"
    "                       prefill-sized GEMM shape (default 8; 0 or 1: none)\n"
    "  --fp8-fast-accum on|off\n"
    "                       CUDA: fp8 GEMMs sum without cuBLASLt's periodic\n"
    "                       promotion to f32 (faster, less exact; default on)\n"
    "  --deterministic      CUDA: sums in a fixed order, so a run repeats bit for\n"
    "                       bit (attention's backward and the embedding's\n"
    "                       gradient without atomics; slower)\n"
    "  --beside on|off      CUDA: weight gradients' GEMMs on a second stream,\n"
    "                       beside the next steps (default on)\n"
    "  --trusted-keys DIR   load only an artifact (and weights) signed by a key in\n"
    "                       DIR/*.pub (FILE.sig beside each; gaic --sign, gai-run sign)\n";

FlagResult parseSessionFlag(int argc, char **argv, int &i, SessionOptions &options,
                            std::string &error) {
  const std::string arg = argv[i];
  auto value = [&](std::string &out) {
    if (i + 1 >= argc)
      return false;
    out = argv[++i];
    return true;
  };
  auto onOff = [&](bool &out) {
    std::string v;
    if (!value(v) || (v != "on" && v != "off")) {
      error = arg + " needs on or off";
      return FlagResult::Bad;
    }
    out = v == "on";
    return FlagResult::Taken;
  };
  if (arg == "--device") {
    if (!value(options.device)) {
      error = "--device needs auto, cpu, cuda or cuda:N";
      return FlagResult::Bad;
    }
    return FlagResult::Taken;
  }
  if (arg == "--cuda-graphs")
    return onOff(options.cudaGraphs);
  if (arg == "--overlap")
    return onOff(options.overlapLaunches);
  if (arg == "--beside")
    return onOff(options.stepsBeside);
  if (arg == "--fp8-fast-accum")
    return onOff(options.fastFp8Accumulation);
  if (arg == "--trusted-keys") {
    if (!value(options.trustedKeys)) {
      error = "--trusted-keys needs a folder of public keys (*.pub)";
      return FlagResult::Bad;
    }
    return FlagResult::Taken;
  }
  if (arg == "--deterministic") {
    options.deterministic = true;
    return FlagResult::Taken;
  }
  if (arg == "--profile") {
    options.profile = true;
    return FlagResult::Taken;
  }
  if (arg == "--profile-steps") {
    std::string v;
    int64_t n = 0;
    if (!value(v) || !parseInt(v, n) || n < 0) {
      error = "--profile-steps needs a count (0: every step)";
      return FlagResult::Bad;
    }
    options.profile = true;
    options.profileSteps = static_cast<size_t>(n);
    return FlagResult::Taken;
  }
  if (arg == "--gemm-tune") {
    std::string v;
    int64_t n = 0;
    if (!value(v) || !parseInt(v, n) || n < 0 || n > 64) {
      error = "--gemm-tune needs a count from 0 to 64";
      return FlagResult::Bad;
    }
    options.gemmTuneCandidates = static_cast<int>(n);
    return FlagResult::Taken;
  }
  return FlagResult::NotMine;
}

StatusOr<LoadedArtifact> loadArtifact(const std::string &artifact,
                                      const std::string &weights,
                                      const std::string &trustedKeys) {
  std::vector<std::string> inputs{artifact};
  if (!weights.empty()) { // a file, or an index and its shards
    StatusOr<std::vector<std::string>> files = weightFiles(weights);
    if (!files)
      return files.status();
    inputs.insert(inputs.end(), files->begin(), files->end());
  }
  for (const std::string &path : inputs)
    if (!path.empty()) {
      if (Status s = checkRegularFile(path); !s)
        return s;
      if (!trustedKeys.empty())
        if (Status s = verifyFile(path, trustedKeys); !s)
          return s;
    }
  StatusOr<LoadedArtifact> loaded = LoadedArtifact::load(artifact, weights);
  // Weights the artifact names outside itself are signed files too; nothing
  // of the artifact has run yet (its code runs when a session starts).
  if (loaded && !trustedKeys.empty() && weights.empty())
    if (std::string external = loaded->externalWeightsPath(); !external.empty())
      if (Status s = verifyFile(external, trustedKeys); !s)
        return s;
  return loaded;
}

StatusOr<std::unique_ptr<Communicator>> joinJob(SessionOptions &options,
                                                 const LoadedArtifact &artifact) {
  StatusOr<JobPlacement> placement = jobPlacementFromEnvironment();
  if (!placement)
    return placement.status();
  const format::Artifact &root = artifact.root();
  bool cudaArtifact = root.options() && root.options()->target() &&
                      root.options()->target()->str().rfind("cuda", 0) == 0;
  bool onCuda = options.device.rfind("cuda", 0) == 0 || (options.device == "auto" && cudaArtifact);
  // A sharded artifact on a world of one runs its collectives through NCCL
  // too, where NCCL is there (each is a copy either way).
  bool sharded = root.options() && root.options()->mesh() && root.options()->mesh()->size() > 0;
  StatusOr<std::unique_ptr<Communicator>> comm = Status::error("");
  if (onCuda && placement->size == 1 && sharded) {
    int ordinal = options.device.rfind("cuda:", 0) == 0 ? std::atoi(options.device.c_str() + 5)
                                                        : 0;
    comm = openCudaCommunicator(*placement, ordinal);
    if (!comm)
      comm = openHostCommunicator(*placement);
  } else if (onCuda && placement->size > 1) {
    // Each rank its own GPU, found from its local rank unless --device says.
    int ordinal = -1;
    if (options.device.rfind("cuda:", 0) == 0)
      ordinal = std::atoi(options.device.c_str() + 5);
    comm = openCudaCommunicator(*placement, ordinal);
    if (comm)
      options.device = "cuda:" + std::to_string(ordinal);
  } else {
    comm = openHostCommunicator(*placement);
  }
  if (comm)
    options.communicator = comm->get();
  return comm;
}

} // namespace gai
