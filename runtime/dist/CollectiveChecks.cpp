// The argument checks of every Communicator.
#include "dist/CollectiveChecks.h"

namespace gai::dist {
namespace {

const char *collectiveDtypeName(DType dtype) {
  switch (dtype) {
  case DType::F64:
    return "f64";
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::I64:
    return "i64";
  case DType::I32:
    return "i32";
  default:
    return "another dtype";
  }
}

bool isFloatType(DType dtype) {
  return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 ||
         dtype == DType::BF16;
}

} // namespace

size_t collectiveElementSize(DType dtype) {
  switch (dtype) {
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  default:
    return 0;
  }
}

StatusOr<Mesh> normalizedMesh(const Mesh &mesh, int64_t worldSize) {
  if (Status s = mesh.check(worldSize); !s)
    return s;
  Mesh kept = mesh;
  if (kept.shape.empty())
    kept.shape = {worldSize};
  return kept;
}

StatusOr<size_t> checkCollective(const char *name, const Mesh &mesh,
                                 const void *in, const void *out, int64_t count,
                                 DType dtype, const CollectiveReduce *op,
                                 uint32_t axes) {
  std::string where = std::string(name) + ": ";
  size_t elementSize = collectiveElementSize(dtype);
  if (elementSize == 0)
    return Status::error(where + "takes f32, f64, bf16, f16, i32 or i64, not " +
                         collectiveDtypeName(dtype));
  if (op && *op == CollectiveReduce::Average && !isFloatType(dtype))
    return Status::error(where + "Average needs a float dtype, not " +
                         collectiveDtypeName(dtype));
  if (axes != Mesh::kAllAxes && mesh.shape.size() < 32 &&
      (axes >> mesh.shape.size()) != 0)
    return Status::error(where + "axes mask " + std::to_string(axes) +
                         " names an axis past the mesh's " +
                         std::to_string(mesh.shape.size()));
  if (count < 0)
    return Status::error(where + "count " + std::to_string(count) +
                         " is negative");
  int64_t bytes;
  if (__builtin_mul_overflow(count, mesh.groupSize(axes), &bytes) ||
      __builtin_mul_overflow(bytes, static_cast<int64_t>(elementSize), &bytes))
    return Status::error(where + std::to_string(count) +
                         " elements a rank overflow a byte size");
  if (count > 0 && (!in || !out))
    return Status::error(where + "a null buffer for " + std::to_string(count) +
                         " elements");
  return elementSize;
}

Status checkBroadcast(const void *data, int64_t bytes, int64_t root,
                      int64_t worldSize) {
  if (root < 0 || root >= worldSize)
    return Status::error("broadcast: root " + std::to_string(root) +
                         " is not a rank of a world of " +
                         std::to_string(worldSize));
  if (bytes < 0)
    return Status::error("broadcast: byte count " + std::to_string(bytes) +
                         " is negative");
  if (bytes > 0 && !data)
    return Status::error("broadcast: a null buffer for " +
                         std::to_string(bytes) + " bytes");
  return Status::ok();
}

} // namespace gai::dist
