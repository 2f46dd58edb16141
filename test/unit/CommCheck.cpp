// comm-check: run by every rank of an MPI job (see test/unit/CMakeLists.txt),
// checks the host communicator's collectives against values each rank
// computes alone. Exits 77 (skipped) when not started by mpirun or built
// without the MPI plugin.
#include "gai/Comm.h"
#include "gai/FloatConvert.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

using namespace gai;

namespace {

constexpr int kSkip = 77;
constexpr int64_t kCount = 7;
int failures = 0, checks = 0;
int64_t me = 0;

void expect(bool ok, const std::string &what) {
  ++checks;
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "comm-check: rank %lld: FAILED %s\n",
                 static_cast<long long>(me), what.c_str());
  }
}

bool expectOk(const Status &s, const std::string &what) {
  expect(s.isOk(), what + (s ? "" : ": " + s.message()));
  return s.isOk();
}

/// Small integers (and their averages over 1, 2 or 4 ranks) are exact in
/// every dtype, so results compare exactly.
double valueOf(int64_t rank, int64_t index) {
  return static_cast<double>((rank * 3 + index * 5) % 7) - 2;
}

size_t sizeOf(DType dtype) {
  return dtype == DType::F32 || dtype == DType::I32 ? 4 : 2;
}

std::vector<uint8_t> encode(const std::vector<double> &values, DType dtype) {
  std::vector<uint8_t> bytes(values.size() * sizeOf(dtype));
  if (dtype == DType::I32) {
    std::vector<int32_t> ints(values.begin(), values.end());
    std::memcpy(bytes.data(), ints.data(), bytes.size());
  } else {
    std::vector<float> floats(values.begin(), values.end());
    convertFloats(floats.data(), DType::F32, bytes.data(), dtype,
                  floats.size());
  }
  return bytes;
}

std::vector<double> decode(const std::vector<uint8_t> &bytes, DType dtype) {
  size_t count = bytes.size() / sizeOf(dtype);
  if (dtype == DType::I32) {
    std::vector<int32_t> ints(count);
    std::memcpy(ints.data(), bytes.data(), bytes.size());
    return std::vector<double>(ints.begin(), ints.end());
  }
  std::vector<float> floats(count);
  convertFloats(bytes.data(), dtype, floats.data(), DType::F32, count);
  return std::vector<double>(floats.begin(), floats.end());
}

/// The world ranks of `rank`'s group along `axes`, in group-index order.
std::vector<int64_t> groupOf(const Mesh &mesh, int64_t rank, uint32_t axes) {
  std::vector<int64_t> members(static_cast<size_t>(mesh.groupSize(axes)));
  for (int64_t other = 0; other < mesh.size(); ++other)
    if (mesh.groupIndex(other, ~axes) == mesh.groupIndex(rank, ~axes))
      members[static_cast<size_t>(mesh.groupIndex(other, axes))] = other;
  return members;
}

double reduce(const std::vector<double> &values, CollectiveReduce op) {
  double sum = 0, max = values[0];
  for (double v : values) {
    sum += v;
    max = std::max(max, v);
  }
  return op == CollectiveReduce::Max       ? max
         : op == CollectiveReduce::Average ? sum / values.size()
                                           : sum;
}

std::string name(const std::string &what, DType dtype, uint32_t axes,
                 const Mesh &mesh) {
  std::string shape;
  for (int64_t extent : mesh.shape)
    shape += (shape.empty() ? "" : "x") + std::to_string(extent);
  return what + " " + dtypeName(dtype) + " axes " + std::to_string(axes) +
         " on " + shape;
}

void checkAllReduce(Communicator &comm, DType dtype, CollectiveReduce op,
                    uint32_t axes, bool inPlace) {
  const Mesh &mesh = comm.mesh();
  std::vector<double> mine(kCount), expected(kCount);
  std::vector<int64_t> group = groupOf(mesh, me, axes);
  for (int64_t i = 0; i < kCount; ++i) {
    mine[i] = valueOf(me, i);
    std::vector<double> all;
    for (int64_t rank : group)
      all.push_back(valueOf(rank, i));
    expected[i] = reduce(all, op);
  }
  std::vector<uint8_t> in = encode(mine, dtype), out(in.size());
  std::vector<uint8_t> &target = inPlace ? in : out;
  const char *ops[] = {"sum", "average", "max"};
  std::string what =
      name(std::string("allReduce ") + ops[static_cast<int>(op)] +
               (inPlace ? " in place" : ""),
           dtype, axes, mesh);
  if (expectOk(
          comm.allReduce(in.data(), target.data(), kCount, dtype, op, axes),
          what))
    expect(decode(target, dtype) == expected, what + ": values");
}

void checkAllGather(Communicator &comm, DType dtype, uint32_t axes) {
  const Mesh &mesh = comm.mesh();
  std::vector<double> mine(kCount), expected;
  for (int64_t i = 0; i < kCount; ++i)
    mine[i] = valueOf(me, i);
  for (int64_t rank : groupOf(mesh, me, axes))
    for (int64_t i = 0; i < kCount; ++i)
      expected.push_back(valueOf(rank, i));
  std::vector<uint8_t> in = encode(mine, dtype),
                       out(expected.size() * sizeOf(dtype));
  std::string what = name("allGather", dtype, axes, mesh);
  if (expectOk(comm.allGather(in.data(), out.data(), kCount, dtype, axes),
               what))
    expect(decode(out, dtype) == expected, what + ": values");
}

void checkReduceScatter(Communicator &comm, DType dtype, CollectiveReduce op,
                        uint32_t axes) {
  const Mesh &mesh = comm.mesh();
  std::vector<int64_t> group = groupOf(mesh, me, axes);
  int64_t size = static_cast<int64_t>(group.size());
  int64_t index = mesh.groupIndex(me, axes);
  std::vector<double> mine(kCount * size), expected(kCount);
  for (int64_t i = 0; i < kCount * size; ++i)
    mine[i] = valueOf(me, i);
  for (int64_t i = 0; i < kCount; ++i) {
    std::vector<double> all;
    for (int64_t rank : group)
      all.push_back(valueOf(rank, index * kCount + i));
    expected[i] = reduce(all, op);
  }
  std::vector<uint8_t> in = encode(mine, dtype), out(kCount * sizeOf(dtype));
  std::string what = name("reduceScatter", dtype, axes, mesh);
  if (expectOk(
          comm.reduceScatter(in.data(), out.data(), kCount, dtype, op, axes),
          what))
    expect(decode(out, dtype) == expected, what + ": values");
}

void checkBroadcast(Communicator &comm) {
  int64_t root = comm.size() - 1;
  std::vector<uint8_t> data(1000, static_cast<uint8_t>(me)),
      expected(1000, static_cast<uint8_t>(root));
  if (expectOk(comm.broadcast(data.data(), 1000, root), "broadcast"))
    expect(data == expected, "broadcast: bytes");
}

void checkMesh(Communicator &comm, const Mesh &mesh) {
  if (!expectOk(comm.setMesh(mesh), "setMesh"))
    return;
  uint32_t axesCount = static_cast<uint32_t>(mesh.shape.size());
  for (uint32_t axes = 0; axes < (1u << axesCount); ++axes) {
    for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::I32})
      for (CollectiveReduce op :
           {CollectiveReduce::Sum, CollectiveReduce::Average,
            CollectiveReduce::Max}) {
        if (dtype == DType::I32 && op == CollectiveReduce::Average)
          continue;
        checkAllReduce(comm, dtype, op, axes, false);
        checkReduceScatter(comm, dtype, op, axes);
      }
    checkAllReduce(comm, DType::F32, CollectiveReduce::Sum, axes, true);
    checkAllGather(comm, DType::F32, axes);
    checkAllGather(comm, DType::BF16, axes);
  }
}

} // namespace

int main() {
#ifndef GAI_HAVE_MPI_PLUGIN
  std::puts("comm-check: skipped: built without MPI (no libgai-mpi.so)");
  return kSkip;
#endif
  auto placement = jobPlacementFromEnvironment();
  if (!placement) {
    std::fprintf(stderr, "comm-check: %s\n",
                 placement.status().message().c_str());
    return 1;
  }
  if (placement->launcher != "mpi") {
    std::puts("comm-check: skipped: not started by mpirun (is it on PATH?)");
    return kSkip;
  }
  me = placement->rank;
  auto comm = openHostCommunicator(*placement);
  if (!comm) {
    std::fprintf(stderr, "comm-check: %s\n", comm.status().message().c_str());
    return 1;
  }
  Communicator &c = **comm;
  expect(c.kind() == "mpi" && c.rank() == me && c.size() == placement->size,
         "rank, size and kind");
  checkBroadcast(c);
  expectOk(c.barrier(), "barrier");

  int64_t world = c.size();
  checkMesh(c, Mesh{});
  checkMesh(c, Mesh{{1, world}});
  if (world == 4) {
    checkMesh(c, Mesh{{2, 2}});
    checkMesh(c, Mesh{{4, 1}});
  }
  // Refusals, the same on every rank, so no rank waits for another.
  int32_t ints[kCount] = {};
  expect(!c.allReduce(ints, ints, kCount, DType::I32, CollectiveReduce::Average,
                      Mesh::kAllAxes),
         "Average of i32 refused");
  expect(!c.allReduce(ints, ints, kCount, DType::I32, CollectiveReduce::Sum,
                      1u << 5),
         "axes past the mesh refused");
  expect(!c.setMesh(Mesh{{world + 1}}), "a mesh of another size refused");
  expectOk(c.barrier(), "barrier at the end");

  std::printf("comm-check: rank %lld of %lld: %d checks, %d failed\n",
              static_cast<long long>(me), static_cast<long long>(world), checks,
              failures);
  return failures ? 1 : 0;
}
