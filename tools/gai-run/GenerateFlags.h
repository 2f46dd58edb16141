// What gai-run generate and chat share: their flags (the model, sampling,
// length, stop tokens) and loading the model with its tokenizer.
#ifndef GAI_TOOLS_GAI_RUN_GENERATEFLAGS_H
#define GAI_TOOLS_GAI_RUN_GENERATEFLAGS_H

#include "SessionFlags.h"

#include "gai/Comm.h"
#include "gai/Generate.h"
#include "gai/Tokenizer.h"

#include <memory>
#include <string>

namespace gai {

/// Their --help text.
extern const char *const kGenerateFlagsHelp;

struct GenerateFlags {
  std::string artifactPath, weightsPath, tokenizerPath;
  SessionOptions session = SessionOptions::fromEnvironment();
  GenerateOptions options;
  /// Flags given win over the artifact's generation defaults.
  bool givenLength = false, givenTemperature = false, givenTopK = false,
       givenTopP = false, givenMinP = false, givenPenalty = false;

  /// Reads argv[i] (and its value, advancing i) when it is one of these
  /// flags or a session flag; `error` says what is wrong with a bad one.
  FlagResult parse(int argc, char **argv, int &i, std::string &error);
  /// The options, with the artifact's generation defaults (an HF
  /// generation_config.json) where no flag set them: its eos ids join the
  /// stop tokens, and `longestPrompt` counts against its max_length.
  GenerateOptions withDefaults(const LoadedArtifact &artifact, int64_t vocab,
                               int64_t longestPrompt) const;
};

/// A session and the tokenizer its prompts are read with.
struct LoadedModel {
  /// The job's host communicator (a world of one unless the artifact is
  /// split over ranks); it outlives the session.
  std::unique_ptr<Communicator> comm;
  std::unique_ptr<Session> session;
  /// The width of the logits (256 when the artifact does not say).
  int64_t vocab = 256;
  bool knownVocab = false;
  /// --tokenizer, else the one gaic embedded, else bytes.
  std::unique_ptr<Tokenizer> tokenizer;
};

/// Loads the artifact (and --weights) and its tokenizer; the stop tokens
/// must be inside the vocabulary.
StatusOr<LoadedModel> loadModel(const GenerateFlags &flags);

/// Text to stdout whole: a NUL byte (a byte-fallback token's) included.
void writeText(const std::string &text);

/// "1 2 3".
std::string idsText(const std::vector<int32_t> &ids);

/// The throughput line generate and chat print on stderr.
std::string statsText(const GenerateStats &stats);

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_GENERATEFLAGS_H
