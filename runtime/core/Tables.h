// Facts about the artifact's tables that the loader and the session share.
#ifndef GAI_RUNTIME_CORE_TABLES_H
#define GAI_RUNTIME_CORE_TABLES_H

#include "format/artifact_generated.h"
#include "gai/Safetensors.h"

#include <cstdint>

namespace gai {

/// Bits per element of `dtype` (masks take a byte), 0 for an unknown one.
int64_t dtypeBits(format::DType dtype);

/// The host-side dtype of a table's dtype (F32 for those without one).
DType hostDType(format::DType dtype);

/// Whether the artifact's parameters are state (`param.<name>`, from
/// `gaic --mode=train`): they may start without weights, from random draws.
bool hasTrainableParameters(const format::Artifact &root);

/// Bytes a packed list of tensors (an entry's inputs or outputs) spans.
int64_t packedSize(
    const flatbuffers::Vector<flatbuffers::Offset<format::TensorDesc>> *tensors);

} // namespace gai

#endif // GAI_RUNTIME_CORE_TABLES_H
