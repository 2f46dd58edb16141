// Mesh: the row-major layout of a job's ranks on a grid, and its groups.
#include "gai/Comm.h"

namespace gai {
namespace {

bool isChosen(uint32_t axes, size_t axis) {
  return axis < 32 && ((axes >> axis) & 1u);
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text;
  for (int64_t extent : shape)
    text += (text.empty() ? "" : "x") + std::to_string(extent);
  return text;
}

} // namespace

int64_t Mesh::size() const {
  int64_t product = 1;
  for (int64_t extent : shape)
    if (extent < 1 || __builtin_mul_overflow(product, extent, &product))
      return 0;
  return product;
}

std::vector<int64_t> Mesh::coordinates(int64_t rank) const {
  if (rank < 0 || rank >= size())
    return {};
  std::vector<int64_t> coords(shape.size());
  for (size_t axis = shape.size(); axis-- > 0;) {
    coords[axis] = rank % shape[axis];
    rank /= shape[axis];
  }
  return coords;
}

int64_t Mesh::groupIndex(int64_t rank, uint32_t axes) const {
  if (rank < 0 || rank >= size())
    return -1;
  std::vector<int64_t> coords = coordinates(rank);
  int64_t index = 0;
  for (size_t axis = 0; axis < shape.size(); ++axis)
    if (isChosen(axes, axis))
      index = index * shape[axis] + coords[axis];
  return index;
}

int64_t Mesh::groupSize(uint32_t axes) const {
  if (size() == 0)
    return 0;
  int64_t count = 1;
  for (size_t axis = 0; axis < shape.size(); ++axis)
    if (isChosen(axes, axis))
      count *= shape[axis];
  return count;
}

Status Mesh::check(int64_t worldSize) const {
  if (shape.empty())
    return Status::ok();
  if (shape.size() > 32)
    return Status::error("a mesh has at most 32 axes, got " +
                         std::to_string(shape.size()));
  for (size_t axis = 0; axis < shape.size(); ++axis)
    if (shape[axis] < 1)
      return Status::error("mesh " + shapeText(shape) + ": axis " +
                           std::to_string(axis) + " has extent " +
                           std::to_string(shape[axis]) + " (needs 1 or more)");
  int64_t ranks = size();
  if (ranks == 0)
    return Status::error("mesh " + shapeText(shape) +
                         " holds more ranks than an int64");
  if (ranks != worldSize)
    return Status::error("mesh " + shapeText(shape) + " holds " +
                         std::to_string(ranks) + " ranks, the world has " +
                         std::to_string(worldSize));
  return Status::ok();
}

} // namespace gai
