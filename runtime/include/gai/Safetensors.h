// Reads safetensors files: memory-mapped, header validated before any use.
#ifndef GAI_SAFETENSORS_H
#define GAI_SAFETENSORS_H

#include "gai/Status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gai {

/// Element types a safetensors header may name.
enum class DType { F64, F32, F16, BF16, F8E4M3, F8E5M2, I64, I32, I16, I8, U8, Bool };

/// Bytes per element.
size_t dtypeSize(DType dtype);
/// The header's spelling, e.g. "BF16".
const char *dtypeName(DType dtype);
bool isFloat(DType dtype);

struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr; ///< Points into the mapped file.
  size_t byteSize = 0;

  int64_t numElements() const;
};

/// A validated safetensors file. Validation checks that the header is a JSON
/// object of known dtypes, non-negative shapes and data offsets that lie in
/// the file, match the shape's byte size, do not overlap and cover the data.
class SafetensorsFile {
public:
  /// Maps `path` and validates it.
  static StatusOr<SafetensorsFile> open(const std::string &path);
  /// Validates an in-memory image; `name` is used in messages. The bytes are
  /// copied.
  static StatusOr<SafetensorsFile> fromBytes(const uint8_t *bytes, size_t size,
                                             const std::string &name);

  const std::string &path() const { return path_; }
  /// Tensors in file order (by data offset).
  const std::vector<TensorView> &tensors() const { return tensors_; }
  const TensorView *find(std::string_view name) const;
  /// The whole file's bytes, header included.
  const uint8_t *fileData() const;
  size_t fileSize() const;
  /// Where a tensor's data starts in the file.
  int64_t fileOffset(const TensorView &tensor) const {
    return static_cast<int64_t>(tensor.data - fileData());
  }
  const std::map<std::string, std::string> &metadata() const {
    return metadata_;
  }

private:
  struct Storage;
  static StatusOr<SafetensorsFile> parse(std::shared_ptr<Storage> storage,
                                         const std::string &name);

  std::shared_ptr<Storage> storage_;
  std::string path_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

/// A tensor to write: `data` holds byteSize bytes of `dtype` in `shape`.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t byteSize = 0;
};

/// Writes a safetensors file atomically (an AtomicFile): a crash leaves the
/// old file or the new one, and only a regular file or nothing is replaced.
Status writeSafetensors(const std::string &path,
                        const std::vector<TensorToWrite> &tensors,
                        const std::map<std::string, std::string> &metadata = {});

/// Fills `bytes` with tensor `index`'s data.
using TensorSource = std::function<Status(size_t index, std::vector<uint8_t> &bytes)>;
/// Sees tensor `index`'s data before it is written, and may change the
/// values of `metadata` (not their lengths: a checksum's placeholder).
using TensorSeal = std::function<void(size_t index, const std::vector<uint8_t> &bytes,
                                      std::map<std::string, std::string> &metadata)>;

/// writeSafetensors a tensor at a time, for state too large to hold twice:
/// `layout` gives each tensor's name, type, shape and byteSize (not its
/// data), `source` fills them in order, and each is written before the next
/// is read. With `seal`, the header is written again at the end with the
/// metadata it left (it must keep the header's length).
Status writeSafetensorsStreamed(const std::string &path,
                                const std::vector<TensorToWrite> &layout,
                                std::map<std::string, std::string> metadata,
                                const TensorSource &source, const TensorSeal &seal = {});

/// The file writeSafetensors would write, in memory (named `name`).
StatusOr<SafetensorsFile> safetensorsImage(const std::vector<TensorToWrite> &tensors,
                                           const std::string &name);

} // namespace gai

#endif // GAI_SAFETENSORS_H
