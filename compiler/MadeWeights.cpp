// Tensors made at compile time, and the float weights they start from.
#include "compiler/MadeWeights.h"

#include "dialects/Gai/GaiOps.h"
#include "gai/FloatConvert.h"
#include "gai/WeightSet.h"

namespace gai {

void MadeWeights::addBytes(const std::string &name, DType dtype, std::vector<int64_t> shape,
                           std::shared_ptr<std::vector<uint8_t>> bytes) {
  TensorToWrite t{name, dtype, std::move(shape), bytes->data(), bytes->size()};
  storage.push_back(std::move(bytes));
  for (TensorToWrite &old : tensors)
    if (old.name == name) {
      old = std::move(t);
      return;
    }
  tensors.push_back(std::move(t));
}

void MadeWeights::addAll(const MadeWeights &other) {
  storage.insert(storage.end(), other.storage.begin(), other.storage.end());
  for (const TensorToWrite &t : other.tensors) {
    auto same = std::find_if(tensors.begin(), tensors.end(),
                             [&](const TensorToWrite &old) { return old.name == t.name; });
    if (same == tensors.end())
      tensors.push_back(t);
    else
      *same = t;
  }
}

const TensorToWrite *MadeWeights::find(const std::string &name) const {
  for (const TensorToWrite &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

llvm::Error MadeWeights::overlayOn(WeightSet &weights) const {
  if (tensors.empty())
    return llvm::Error::success();
  StatusOr<SafetensorsFile> image = safetensorsImage(tensors, "weights made by gaic");
  if (!image)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), image.status().message());
  weights.overlay(std::move(*image));
  return llvm::Error::success();
}

llvm::Expected<std::vector<float>> floatMatrix(const TensorView &t, const std::string &file,
                                               int64_t rows, int64_t cols, bool transposed,
                                               const char *what) {
  std::vector<int64_t> want = transposed ? std::vector<int64_t>{cols, rows}
                                         : std::vector<int64_t>{rows, cols};
  if (t.shape != want || !canConvertFloats(t.dtype, DType::F32))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        file + ": tensor '" + t.name + "' is " + dtypeName(t.dtype) + " " +
            mlir::gai::formatShape(t.shape) + "; " + what + " it needs floats " +
            mlir::gai::formatShape(want));
  std::vector<float> values(static_cast<size_t>(rows * cols));
  convertFloats(t.data, t.dtype, values.data(), DType::F32, values.size());
  if (!transposed)
    return values;
  std::vector<float> out(values.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      out[r * cols + c] = values[c * rows + r];
  return out;
}

} // namespace gai
