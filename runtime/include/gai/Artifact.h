// Loads a gai artifact and verifies it before anything in it is used.
#ifndef GAI_ARTIFACT_H
#define GAI_ARTIFACT_H

#include "gai/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gai {
class WeightSet;
} // namespace gai

namespace gai {
namespace format {
struct Artifact;
} // namespace format
struct DecodedEntry; // core/Commands.h

/// The schema version this runtime reads (runtime/format/artifact.fbs).
/// 2: steps carry dtypes; 3: attention may fold its cache writes and RoPE;
/// 4: a GEMM may be gated (a gated linear unit's two products).
/// 5: decode-sized GEMMs may carry an RMSNorm folded in (norm_*, a_squares).
/// 6: a GEMM may keep an f32 c over bf16 operands (wide_c).
/// 7: one table per library command (no LibraryCall); state tensors carry
/// their role and weight.
/// 8: a GEMM's weights may be quantized (weight_format, scales, zeros).
/// 9: a GEMM's weights may be 2:4 sparse (weight_format sparse24, b_meta).
/// 14: a gated GEMM's weights may be 2:4 too (gate_meta).
/// 15: attention's tensors may be strided ([B, T, H, D], or a slice of a
/// packed projection: strides).
/// 16: state may be a parameter's low-precision copy (role ParameterCopy),
/// remade by the refresh_param_copies entry.
/// 17: an fp8 GEMM's A may come in e4m3 with row scales (a_scale).
inline constexpr uint32_t kArtifactSchemaVersion = 17;
/// The entry that remakes ParameterCopy state from its masters; the session
/// runs it before an entry after a host write of a parameter.
inline constexpr const char kRefreshParamCopiesEntry[] = "refresh_param_copies";
/// The most new rows (queries) an attention with folded cache writes takes;
/// the attention rewriting pass folds no more.
inline constexpr int64_t kMostFoldedQueries = 16;
/// The most rows (M) of a gated GEMM, whose K is a multiple of 8: the CUDA
/// runtime runs it as its GEMV only, and the fusion pass folds no larger.
inline constexpr int64_t kMostGatedGemmRows = 8;
/// The most rows of the GEMMs an RMSNorm folds into (its input's maker and
/// its readers): the CUDA GEMV's, which alone runs them.
inline constexpr int64_t kMostNormFoldRows = 8;
/// Bytes of the footer after the FlatBuffer: magic "GAIF", schema version
/// (u32), payload size (u64) and checksum64 of the payload (u64).
inline constexpr size_t kArtifactFooterSize = 24;

/// XXH3-64 (seed 0, as `xxhsum -H3` prints it): the checksum of artifacts,
/// external weights and checkpoint tensors.
uint64_t checksum64(const uint8_t *data, size_t size);

/// Reads a whole file; with `checksum`, also its checksum64, computed while
/// reading (how external weights load; docs/artifact.md gives figures).
Status readFile(const std::string &path, std::vector<uint8_t> &out,
                uint64_t *checksum = nullptr);

/// A finished FlatBuffer followed by its footer: what writers save.
std::vector<uint8_t> sealArtifact(const uint8_t *flatbuffer, size_t size);

/// A verified artifact. Verification covers the footer's checksum, the
/// FlatBuffers verifier, the schema version, and the runtime's own checks:
/// tensor buffers match their shapes and lie inside their spaces, every
/// step decodes to a valid command (core/Commands.h), and external weights
/// have the recorded size and checksum.
class LoadedArtifact {
public:
  /// With `weightsPath` (a safetensors file, an index of shards or a model
  /// directory: WeightSet::open), the weights come from there instead, bound by name: every tensor the artifact names must be there
  /// with its dtype and shape.
  static StatusOr<LoadedArtifact> load(const std::string &path,
                                       const std::string &weightsPath = "");
  /// `name` appears in messages; `directory` resolves external weights.
  static StatusOr<LoadedArtifact> fromBytes(std::vector<uint8_t> bytes,
                                            const std::string &name,
                                            const std::string &directory,
                                            const std::string &weightsPath = "");

  /// Verifies everything but loads no weights (weights() is null): for
  /// tools that need only the model's tables, such as `gai-run init`.
  static StatusOr<LoadedArtifact> loadTables(const std::string &path);

  const format::Artifact &root() const;
  /// The entry points' commands, decoded and validated at load, in the
  /// artifact's order.
  const std::vector<DecodedEntry> &entries() const { return *entries_; }
  /// Bytes of the weights blob (embedded, or the external file's).
  const uint8_t *weights() const { return weights_; }
  /// Makes the weights this tensor-parallel rank (of `ranks`) reads: its
  /// own slice of every split weight where the commands expect it (from
  /// the artifact's slices, or cut from the weights bound at load).
  Status useTensorParallelRank(int64_t rank, int64_t ranks);
  int64_t weightsSize() const { return weightsSize_; }
  /// The external weights file it read (resolved against its directory),
  /// or empty.
  const std::string &externalWeightsPath() const { return externalPath_; }

private:
  static StatusOr<LoadedArtifact> verify(std::vector<uint8_t> bytes,
                                         const std::string &name,
                                         const std::string &directory,
                                         const std::string &weightsPath,
                                         bool loadWeights);

  /// The file's bytes, 64-byte aligned so that embedded weights keep the
  /// alignment the schema gives them.
  std::shared_ptr<uint8_t> bytes_;
  std::shared_ptr<std::vector<uint8_t>> externalWeights_;
  /// Weights bound at run time to a tensor-parallel artifact: kept open
  /// for useTensorParallelRank to slice this rank's parts from.
  std::shared_ptr<const WeightSet> boundWeights_;
  std::shared_ptr<const std::vector<DecodedEntry>> entries_;
  std::string externalPath_;
  const uint8_t *weights_ = nullptr;
  int64_t weightsSize_ = 0;
};

} // namespace gai

#endif // GAI_ARTIFACT_H
