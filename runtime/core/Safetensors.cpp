// Safetensors reading and header validation.
#include "gai/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gai {
namespace {

// The format caps the header at 100 MB; a larger length is a corrupt file.
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct DTypeEntry {
  const char *name;
  DType dtype;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {"F64", DType::F64, 8},        {"F32", DType::F32, 4},
    {"F16", DType::F16, 2},        {"BF16", DType::BF16, 2},
    {"F8_E4M3", DType::F8E4M3, 1}, {"F8_E5M2", DType::F8E5M2, 1},
    {"I64", DType::I64, 8},        {"I32", DType::I32, 4},
    {"I16", DType::I16, 2},        {"I8", DType::I8, 1},
    {"U8", DType::U8, 1},          {"BOOL", DType::Bool, 1},
};

const DTypeEntry &entryFor(DType dtype) {
  for (const DTypeEntry &e : kDTypes)
    if (e.dtype == dtype)
      return e;
  return kDTypes[0];
}

std::string knownDTypeList() {
  std::string s;
  for (const DTypeEntry &e : kDTypes)
    s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

/// Reads [begin, end] from a header entry; the message names what is wrong.
Status readOffsets(const nlohmann::json &offsets, uint64_t &begin,
                   uint64_t &end) {
  if (!offsets.is_array() || offsets.size() != 2 ||
      !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
    return Status::error("'data_offsets' must be [begin, end] of two "
                         "non-negative integers, got " +
                         offsets.dump());
  begin = offsets[0].get<uint64_t>();
  end = offsets[1].get<uint64_t>();
  if (begin > end)
    return Status::error("'data_offsets' begin " + std::to_string(begin) +
                         " is after end " + std::to_string(end));
  return Status::ok();
}

} // namespace

size_t dtypeSize(DType dtype) { return entryFor(dtype).size; }
const char *dtypeName(DType dtype) { return entryFor(dtype).name; }
bool isFloat(DType dtype) {
  switch (dtype) {
  case DType::F64:
  case DType::F32:
  case DType::F16:
  case DType::BF16:
  case DType::F8E4M3:
  case DType::F8E5M2:
    return true;
  default:
    return false;
  }
}

int64_t TensorView::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// The file's bytes: a read-only mapping, or a private copy.
struct SafetensorsFile::Storage {
  const uint8_t *data = nullptr;
  size_t size = 0;
  void *mapping = nullptr;
  std::vector<uint8_t> copy;

  ~Storage() {
    if (mapping)
      munmap(mapping, size);
  }
};

const uint8_t *SafetensorsFile::fileData() const { return storage_->data; }
size_t SafetensorsFile::fileSize() const { return storage_->size; }

StatusOr<SafetensorsFile> SafetensorsFile::open(const std::string &path) {
  // Non-blocking: a FIFO in the file's place is refused below, not waited on.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  auto storage = std::make_shared<Storage>();
  storage->size = static_cast<size_t>(st.st_size);
  if (storage->size > 0) {
    void *p = mmap(nullptr, storage->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Status::error(path + ": cannot map: " + std::strerror(err));
    }
    storage->mapping = p;
    storage->data = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  return parse(std::move(storage), path);
}

StatusOr<SafetensorsFile> SafetensorsFile::fromBytes(const uint8_t *bytes,
                                                     size_t size,
                                                     const std::string &name) {
  auto storage = std::make_shared<Storage>();
  storage->copy.assign(bytes, bytes + size);
  storage->data = storage->copy.data();
  storage->size = size;
  return parse(std::move(storage), name);
}

StatusOr<SafetensorsFile> SafetensorsFile::parse(std::shared_ptr<Storage> st,
                                                 const std::string &name) {
  auto fail = [&](const std::string &what) {
    return Status::error(name + ": " + what);
  };
  if (st->size < 8)
    return fail("too short for a safetensors file (" +
                std::to_string(st->size) + " bytes; the header length alone "
                "takes 8)");
  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | st->data[i];
  if (headerLen > kMaxHeaderBytes || headerLen > st->size - 8)
    return fail("header length " + std::to_string(headerLen) +
                " does not fit in the file of " + std::to_string(st->size) +
                " bytes");
  const char *headerBegin = reinterpret_cast<const char *>(st->data + 8);
  if (headerLen == 0 || headerBegin[0] != '{')
    return fail("header is not a JSON object (it must start with '{')");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(headerBegin, headerBegin + headerLen);
  } catch (const nlohmann::json::exception &e) {
    return fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object())
    return fail("header is not a JSON object");

  SafetensorsFile file;
  file.storage_ = st;
  file.path_ = name;
  const uint8_t *dataBegin = st->data + 8 + headerLen;
  uint64_t dataSize = st->size - 8 - headerLen;
  std::vector<std::pair<uint64_t, uint64_t>> ranges; // begin, end

  for (const auto &[key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object())
        return fail("'__metadata__' must be an object of strings");
      for (const auto &[mk, mv] : entry.items()) {
        if (!mv.is_string())
          return fail("'__metadata__' value of '" + mk + "' is not a string");
        file.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    auto tensorFail = [&](const std::string &what) {
      return fail("tensor '" + key + "': " + what);
    };
    if (!entry.is_object())
      return tensorFail("entry must be an object with dtype, shape and "
                        "data_offsets");
    for (const auto &[field, value] : entry.items()) {
      (void)value;
      if (field != "dtype" && field != "shape" && field != "data_offsets")
        return tensorFail("unknown field '" + field +
                          "' (expected dtype, shape, data_offsets)");
    }
    if (!entry.contains("dtype") || !entry["dtype"].is_string())
      return tensorFail("'dtype' is missing or not a string");
    std::string dtypeStr = entry["dtype"].get<std::string>();
    const DTypeEntry *dt = nullptr;
    for (const DTypeEntry &e : kDTypes)
      if (dtypeStr == e.name)
        dt = &e;
    if (!dt)
      return tensorFail("unknown dtype '" + dtypeStr + "' (expected one of " +
                        knownDTypeList() + ")");

    if (!entry.contains("shape") || !entry["shape"].is_array())
      return tensorFail("'shape' is missing or not an array");
    TensorView view;
    view.name = key;
    view.dtype = dt->dtype;
    uint64_t bytes = dt->size;
    for (const auto &d : entry["shape"]) {
      if (!d.is_number_unsigned())
        return tensorFail("'shape' entries must be non-negative integers, "
                          "got " +
                          entry["shape"].dump());
      uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(INT64_MAX) ||
          __builtin_mul_overflow(bytes, dim, &bytes))
        return tensorFail("'shape' " + entry["shape"].dump() +
                          " is too large");
      view.shape.push_back(static_cast<int64_t>(dim));
    }

    if (!entry.contains("data_offsets"))
      return tensorFail("'data_offsets' is missing");
    uint64_t begin = 0, end = 0;
    if (Status s = readOffsets(entry["data_offsets"], begin, end); !s)
      return tensorFail(s.message());
    if (end > dataSize)
      return tensorFail("data_offsets [" + std::to_string(begin) + ", " +
                        std::to_string(end) + "] run past the data section (" +
                        std::to_string(dataSize) + " bytes)");
    if (end - begin != bytes)
      return tensorFail("data_offsets span " + std::to_string(end - begin) +
                        " bytes but " + dtypeStr + " " +
                        entry["shape"].dump() + " needs " +
                        std::to_string(bytes));
    view.data = dataBegin + begin;
    view.byteSize = bytes;
    ranges.emplace_back(begin, end);
    file.tensors_.push_back(std::move(view));
  }

  // Order by offset, then check that the tensors tile the data section.
  std::vector<size_t> order(file.tensors_.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return ranges[a] < ranges[b];
  });
  uint64_t covered = 0;
  std::vector<TensorView> sorted;
  for (size_t i : order) {
    if (ranges[i].first < covered)
      return fail("tensor '" + file.tensors_[i].name + "' overlaps the tensor "
                  "before it (its data starts at " +
                  std::to_string(ranges[i].first) + ", before byte " +
                  std::to_string(covered) + ")");
    if (ranges[i].first > covered)
      return fail("bytes " + std::to_string(covered) + " to " +
                  std::to_string(ranges[i].first) +
                  " of the data section belong to no tensor");
    covered = ranges[i].second;
    sorted.push_back(std::move(file.tensors_[i]));
  }
  if (covered != dataSize)
    return fail("the data section has " + std::to_string(dataSize - covered) +
                " trailing bytes that belong to no tensor");
  file.tensors_ = std::move(sorted);
  for (size_t i = 0; i < file.tensors_.size(); ++i)
    file.index_[file.tensors_[i].name] = i;
  return file;
}

const TensorView *SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

} // namespace gai
