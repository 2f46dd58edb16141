// safetensors out: header, then the tensors' bytes in order; never torn.
#include "gai/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace gai {
namespace {

Status writeAll(int fd, const void *data, size_t size, const std::string &path) {
  const auto *p = static_cast<const uint8_t *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return Status::error(path + ": cannot write: " + std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status::ok();
}

} // namespace

Status writeSafetensors(const std::string &path,
                        const std::vector<TensorToWrite> &tensors,
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
  uint8_t prefix[8];
  for (int i = 0; i < 8; ++i)
    prefix[i] = static_cast<uint8_t>(length >> (8 * i));

  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return Status::error(temporary + ": cannot create: " + std::strerror(errno));
  Status s = writeAll(fd, prefix, 8, temporary);
  if (s)
    s = writeAll(fd, text.data(), text.size(), temporary);
  for (const TensorToWrite &t : tensors)
    if (s)
      s = writeAll(fd, t.data, t.byteSize, temporary);
  if (s && ::fsync(fd) != 0)
    s = Status::error(temporary + ": fsync: " + std::strerror(errno));
  ::close(fd);
  if (s && std::rename(temporary.c_str(), path.c_str()) != 0)
    s = Status::error(path + ": cannot rename into place: " + std::strerror(errno));
  if (!s) {
    std::remove(temporary.c_str());
    return s;
  }
  // The rename itself must survive a crash too.
  std::string directory = path.find('/') == std::string::npos
                              ? std::string(".")
                              : path.substr(0, path.rfind('/') + (path.rfind('/') == 0));
  if (int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return s;
}

} // namespace gai
