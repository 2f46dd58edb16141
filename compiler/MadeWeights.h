// Tensors gaic makes from the weights file at compile time (pruned,
// quantized); they stand in for the file's tensors of the same names.
#ifndef GAI_COMPILER_MADEWEIGHTS_H
#define GAI_COMPILER_MADEWEIGHTS_H

#include "gai/Safetensors.h"

#include "llvm/Support/Error.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace gai {

class WeightSet;

struct MadeWeights {
  /// Under the names the module's parameters give them; `storage` owns
  /// the bytes.
  std::vector<TensorToWrite> tensors;
  std::vector<std::shared_ptr<std::vector<uint8_t>>> storage;

  /// Adds `values` as tensor `name`, in place of one made earlier.
  template <typename T>
  void add(const std::string &name, DType dtype, std::vector<int64_t> shape,
           const std::vector<T> &values) {
    auto bytes = std::make_shared<std::vector<uint8_t>>(values.size() * sizeof(T));
    std::memcpy(bytes->data(), values.data(), bytes->size());
    addBytes(name, dtype, std::move(shape), std::move(bytes));
  }
  void addBytes(const std::string &name, DType dtype, std::vector<int64_t> shape,
                std::shared_ptr<std::vector<uint8_t>> bytes);
  /// Every tensor of `other`, each in place of one of its name.
  void addAll(const MadeWeights &other);
  const TensorToWrite *find(const std::string &name) const;
  /// Puts them in front of `weights`' own, so that what is made next from
  /// `weights` starts from them.
  llvm::Error overlayOn(WeightSet &weights) const;
};

/// `t` as f32 [rows, cols], transposed from the file's [cols, rows] when
/// `transposed`; an error naming the tensor and `file` if it is not floats
/// of that shape. `what` says what it is read for.
llvm::Expected<std::vector<float>> floatMatrix(const TensorView &t, const std::string &file,
                                               int64_t rows, int64_t cols, bool transposed,
                                               const char *what);

} // namespace gai

#endif // GAI_COMPILER_MADEWEIGHTS_H
