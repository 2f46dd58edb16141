// A model's weights: one safetensors file, or the shards an index names.
#ifndef GAI_WEIGHTSET_H
#define GAI_WEIGHTSET_H

#include "gai/Safetensors.h"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace gai {

/// The weights as `save_pretrained` and the hub lay them out: a safetensors
/// file, or a model.safetensors.index.json whose weight_map puts each tensor
/// in one shard beside it. Tensors are found by name across the shards.
class WeightSet {
public:
  /// Opens `path`: a safetensors file, an index (a name ending in .json), or
  /// a directory holding model.safetensors or, failing that,
  /// model.safetensors.index.json. Every shard is validated, and the index
  /// must match them: each tensor in exactly the shard the index names.
  static StatusOr<WeightSet> open(const std::string &path);
  /// One file already open (tests, in-memory images).
  static WeightSet of(SafetensorsFile file);

  // The tensor pointers point into files_, which a copy would not share.
  WeightSet(WeightSet &&) = default;
  WeightSet &operator=(WeightSet &&) = default;
  WeightSet(const WeightSet &) = delete;
  WeightSet &operator=(const WeightSet &) = delete;

  /// The file or index read; messages name it.
  const std::string &path() const { return path_; }
  /// Whether the tensors come from an index (one shard or more).
  bool sharded() const { return sharded_; }
  /// The files, in the order the index first names them.
  const std::vector<SafetensorsFile> &files() const { return files_; }
  /// Every tensor, file by file.
  const std::vector<const TensorView *> &tensors() const { return tensors_; }
  const TensorView *find(std::string_view name) const;
  /// Puts `file`'s tensors in front: a name it holds is found there from
  /// now on (gaic's quantized weights over the float ones they came from).
  void overlay(SafetensorsFile file);

private:
  WeightSet() = default;

  std::string path_;
  bool sharded_ = false;
  std::vector<SafetensorsFile> files_;
  std::vector<const TensorView *> tensors_;
  std::map<std::string, const TensorView *, std::less<>> byName_;
};

/// The files `path` (as WeightSet::open takes it) stands for: the file, or
/// the index and then its shards. Reads only the index, so that the files
/// can be checked (signatures) before any is opened.
StatusOr<std::vector<std::string>> weightFiles(const std::string &path);

} // namespace gai

#endif // GAI_WEIGHTSET_H
