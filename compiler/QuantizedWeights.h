// The bytes of the weights --gai-quantize asked for, made from the float
// weights at compile time, and what that cost in accuracy.
#ifndef GAI_COMPILER_QUANTIZEDWEIGHTS_H
#define GAI_COMPILER_QUANTIZEDWEIGHTS_H

#include "compiler/MadeWeights.h"
#include "gai/Quantize.h"
#include "gai/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace gai {

class WeightSet;

/// One quantized matrix and its error against the float weight.
struct QuantizedMatrix {
  std::string name;
  std::string tiedTo; ///< a tied LM head's: the table it was made from
  QuantFormat format = QuantFormat::Int8;
  int64_t rows = 0, cols = 0, group = 0;
  bool transposed = false; ///< made from the file's [cols, rows]
  QuantError error;
};

/// Each quantized weight's values, scales and zeros.
struct QuantizedWeights : MadeWeights {
  std::vector<QuantizedMatrix> matrices;
};

/// The weight bytes of `module`'s parameters (each name once), as they are
/// and as they were before quantization (a dequantize's result type).
struct WeightBytes {
  int64_t before = 0, after = 0;
};
WeightBytes weightBytes(mlir::ModuleOp module);

/// Quantizes, from `weights`, every weight a gai.dequantize of `module`
/// reads (by gai/Quantize.h's rules). A missing or mis-shaped float weight
/// is an error naming it and the file.
llvm::Expected<QuantizedWeights> quantizeWeights(mlir::ModuleOp module, const WeightSet &weights);

/// Adds every other parameter of `module`, from `weights` in the module's
/// element type, so that `made` holds all the module reads (an external
/// weights file of its own).
llvm::Error addFloatWeights(mlir::ModuleOp module, const WeightSet &weights, MadeWeights &made);

/// gaic --report's lines: bytes before and after, and each matrix's error.
void printQuantizationReport(mlir::ModuleOp module, const QuantizedWeights *packed,
                             llvm::raw_ostream &os);

} // namespace gai

#endif // GAI_COMPILER_QUANTIZEDWEIGHTS_H
