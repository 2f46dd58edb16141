// safetensors out: header, then the tensors' bytes in order; never torn.
#include "gai/Safetensors.h"

#include "gai/SafeFile.h"

#include <nlohmann/json.hpp>

namespace gai {

namespace {

/// The length prefix and JSON header that precede the tensors' bytes.
std::string safetensorsHeader(const std::vector<TensorToWrite> &tensors,
                              const std::map<std::string, std::string> &metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const TensorToWrite &t : tensors) {
    header[t.name] = {{"dtype", dtypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.byteSize}}};
    offset += t.byteSize;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // data starts 8-byte aligned
  uint64_t length = text.size();
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i)
    prefix[i] = static_cast<char>(length >> (8 * i));
  return prefix + text;
}

} // namespace

StatusOr<SafetensorsFile> safetensorsImage(const std::vector<TensorToWrite> &tensors,
                                           const std::string &name) {
  std::string header = safetensorsHeader(tensors, {});
  std::vector<uint8_t> bytes(header.begin(), header.end());
  for (const TensorToWrite &t : tensors)
    bytes.insert(bytes.end(), t.data, t.data + t.byteSize);
  return SafetensorsFile::fromBytes(bytes.data(), bytes.size(), name);
}

Status writeSafetensors(const std::string &path,
                        const std::vector<TensorToWrite> &tensors,
                        const std::map<std::string, std::string> &metadata) {
  // The streamed writer over tensors already in memory: a copy of one
  // tensor at a time, beside a write that costs far more.
  return writeSafetensorsStreamed(path, tensors, metadata,
                                  [&](size_t i, std::vector<uint8_t> &bytes) {
                                    const TensorToWrite &t = tensors[i];
                                    bytes.assign(t.data, t.data + t.byteSize);
                                    return Status::ok();
                                  });
}

Status writeSafetensorsStreamed(const std::string &path,
                                const std::vector<TensorToWrite> &layout,
                                std::map<std::string, std::string> metadata,
                                const TensorSource &source, const TensorSeal &seal) {
  const std::string header = safetensorsHeader(layout, metadata);
  StatusOr<AtomicFile> file = AtomicFile::create(path);
  if (!file)
    return file.status();
  Status s = file->write(header.data(), header.size());
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < layout.size() && s; ++i) {
    s = source(i, bytes);
    if (s && bytes.size() != layout[i].byteSize)
      s = Status::error(path + ": tensor '" + layout[i].name + "' has " +
                        std::to_string(bytes.size()) + " bytes where its shape needs " +
                        std::to_string(layout[i].byteSize));
    if (s && seal)
      seal(i, bytes, metadata);
    if (s)
      s = file->write(bytes.data(), bytes.size());
  }
  if (s && seal) {
    const std::string sealed = safetensorsHeader(layout, metadata);
    s = sealed.size() == header.size()
            ? file->writeAt(0, sealed.data(), sealed.size())
            : Status::error(path + ": the metadata changed length while the tensors were "
                                   "written");
  }
  return s ? file->commit() : s;
}

} // namespace gai
