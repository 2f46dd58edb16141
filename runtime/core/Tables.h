// Facts about the artifact's tables that the loader and the session share.
#ifndef GAI_RUNTIME_CORE_TABLES_H
#define GAI_RUNTIME_CORE_TABLES_H

#include "format/artifact_generated.h"
#include "gai/Safetensors.h"
#include "gai/Status.h"

#include <cstdint>
#include <string>

namespace gai {

/// Bits per element of `dtype` (masks take a byte), 0 for an unknown one.
int64_t dtypeBits(format::DType dtype);

/// The host-side dtype of a table's dtype (F32 for those without one).
DType hostDType(format::DType dtype);

/// Whether the artifact's parameters are state (`param.<name>`, from
/// `gaic --mode=train`): they may start without weights, from random draws.
bool hasTrainableParameters(const format::Artifact &root);

/// An error unless `bytes` (a sum of a plan's sizes, -1 when it overflowed)
/// fits in this machine's memory; says what `what` needs and what there is.
Status fitsHostMemory(int64_t bytes, const std::string &what);

/// Bytes a packed list of tensors (an entry's inputs or outputs) spans.
int64_t packedSize(
    const flatbuffers::Vector<flatbuffers::Offset<format::TensorDesc>> *tensors);

} // namespace gai

#endif // GAI_RUNTIME_CORE_TABLES_H
