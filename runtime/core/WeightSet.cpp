// Weights across safetensors shards: the index, its checks, lookup by name.
#include "gai/WeightSet.h"

#include "gai/SafeFile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/stat.h>

namespace gai {
namespace {

constexpr const char *kSingleName = "model.safetensors";
constexpr const char *kIndexName = "model.safetensors.index.json";
// Real indexes are a few hundred KB; this only stops a runaway file.
constexpr int64_t kMaxIndexBytes = int64_t{100} << 20;

/// The tensor → shard map of an index, and its shards in first-named order.
struct Index {
  std::vector<std::string> shards;
  std::map<std::string, std::string> shardOf;
};

bool endsWith(const std::string &s, const char *suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

std::string directoryOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

/// `path`, or the weights file a model directory holds.
StatusOr<std::string> resolve(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return path;
  std::string dir = endsWith(path, "/") ? path : path + "/";
  for (const char *name : {kSingleName, kIndexName})
    if (::stat((dir + name).c_str(), &st) == 0)
      return dir + name;
  return Status::error(path + ": a model directory needs " + kSingleName + " or " +
                       kIndexName + "; it has neither");
}

StatusOr<Index> readIndex(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && st.st_size > kMaxIndexBytes)
    return Status::error(path + ": " + std::to_string(st.st_size) +
                         " bytes is too large for a weights index (at most 100 MiB)");
  StatusOr<std::vector<uint8_t>> bytes = readRegularFile(path);
  if (!bytes)
    return bytes.status();
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(bytes->begin(), bytes->end());
  } catch (const nlohmann::json::exception &e) {
    return Status::error(path + ": not a weights index: " + e.what());
  }
  auto it = json.is_object() ? json.find("weight_map") : json.end();
  if (it == json.end() || !it->is_object() || it->empty())
    return Status::error(path + ": 'weight_map': expected an object of tensor name → "
                                "shard file name, with at least one tensor");
  Index index;
  for (auto &[name, shard] : it->items()) {
    std::string file = shard.is_string() ? shard.get<std::string>() : "";
    // Shards lie beside the index; a path could reach any file.
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos)
      return Status::error(path + ": 'weight_map' entry '" + name +
                           "': expected the file name of a shard beside the index, got " +
                           shard.dump());
    if (std::find(index.shards.begin(), index.shards.end(), file) == index.shards.end())
      index.shards.push_back(file);
    index.shardOf[name] = file;
  }
  return index;
}

} // namespace

WeightSet WeightSet::of(SafetensorsFile file) {
  WeightSet set;
  set.path_ = file.path();
  set.files_.push_back(std::move(file));
  for (const TensorView &t : set.files_[0].tensors()) {
    set.tensors_.push_back(&t);
    set.byName_.emplace(t.name, &t);
  }
  return set;
}

StatusOr<WeightSet> WeightSet::open(const std::string &path) {
  StatusOr<std::string> resolved = resolve(path);
  if (!resolved)
    return resolved.status();
  if (!endsWith(*resolved, ".json")) {
    StatusOr<SafetensorsFile> file = SafetensorsFile::open(*resolved);
    if (!file)
      return file.status();
    return of(std::move(*file));
  }
  StatusOr<Index> index = readIndex(*resolved);
  if (!index)
    return index.status();
  WeightSet set;
  set.path_ = *resolved;
  set.sharded_ = true;
  const std::string &where = set.path_;
  for (const std::string &shard : index->shards) {
    StatusOr<SafetensorsFile> file =
        SafetensorsFile::open(directoryOf(*resolved) + shard);
    if (!file)
      return Status::error(where + ": shard '" + shard + "': " + file.status().message());
    set.files_.push_back(std::move(*file));
  }
  std::map<std::string, const std::string *> holder;
  for (size_t i = 0; i < set.files_.size(); ++i)
    for (const TensorView &t : set.files_[i].tensors()) {
      auto [it, inserted] = holder.emplace(t.name, &index->shards[i]);
      if (!inserted)
        return Status::error(where + ": tensor '" + t.name + "' is in two shards, '" +
                             *it->second + "' and '" + index->shards[i] + "'");
      set.tensors_.push_back(&t);
      set.byName_.emplace(t.name, &t);
    }
  for (const auto &[name, shard] : holder)
    if (!index->shardOf.count(name))
      return Status::error(where + ": shard '" + *shard + "' holds tensor '" + name +
                           "', which 'weight_map' does not list");
  for (const auto &[name, shard] : index->shardOf) {
    auto it = holder.find(name);
    if (it == holder.end() || *it->second != shard)
      return Status::error(where + ": 'weight_map' puts tensor '" + name + "' in shard '" +
                           shard + "', which does not hold it");
  }
  return set;
}

void WeightSet::overlay(SafetensorsFile file) {
  files_.push_back(std::move(file));
  for (const TensorView &t : files_.back().tensors()) {
    auto it = byName_.find(t.name);
    if (it != byName_.end()) {
      std::replace(tensors_.begin(), tensors_.end(), it->second, &t);
      it->second = &t;
    } else {
      tensors_.push_back(&t);
      byName_.emplace(t.name, &t);
    }
  }
}

const TensorView *WeightSet::find(std::string_view name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : it->second;
}

StatusOr<std::vector<std::string>> weightFiles(const std::string &path) {
  StatusOr<std::string> resolved = resolve(path);
  if (!resolved)
    return resolved.status();
  std::vector<std::string> files{*resolved};
  if (!endsWith(*resolved, ".json"))
    return files;
  StatusOr<Index> index = readIndex(*resolved);
  if (!index)
    return index.status();
  for (const std::string &shard : index->shards)
    files.push_back(directoryOf(*resolved) + shard);
  return files;
}

} // namespace gai
