// The host communicator's parts that need no second process: Mesh, the
// single-process communicator, job placement and opening a communicator.
#include "gai/Comm.h"
#include "gai/FloatConvert.h"
#include "core/TensorParallel.h"
#include "hal/cpu/AsyncSteps.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <future>
#include <gtest/gtest.h>
#include <optional>

using namespace gai;

namespace {

using Coords = std::vector<int64_t>;

TEST(MeshTest, TwoByTwoIsRowMajor) {
  Mesh mesh{{2, 2}};
  EXPECT_EQ(mesh.size(), 4);
  EXPECT_EQ(mesh.coordinates(0), (Coords{0, 0}));
  EXPECT_EQ(mesh.coordinates(1), (Coords{0, 1}));
  EXPECT_EQ(mesh.coordinates(2), (Coords{1, 0}));
  EXPECT_EQ(mesh.coordinates(3), (Coords{1, 1}));
  // Along axis 0 (mask 1) ranks 1 and 3 are a group; along axis 1, 2 and 3.
  EXPECT_EQ(mesh.groupIndex(1, 1), 0);
  EXPECT_EQ(mesh.groupIndex(3, 1), 1);
  EXPECT_EQ(mesh.groupIndex(2, 2), 0);
  EXPECT_EQ(mesh.groupIndex(3, 2), 1);
  EXPECT_EQ(mesh.groupIndex(2, 3), 2);
  EXPECT_EQ(mesh.groupIndex(3, 0), 0);
  EXPECT_EQ(mesh.groupIndex(3, Mesh::kAllAxes), 3);
  EXPECT_EQ(mesh.groupSize(0), 1);
  EXPECT_EQ(mesh.groupSize(1), 2);
  EXPECT_EQ(mesh.groupSize(2), 2);
  EXPECT_EQ(mesh.groupSize(3), 4);
  EXPECT_EQ(mesh.groupSize(Mesh::kAllAxes), 4);
  EXPECT_TRUE(mesh.check(4));
}

TEST(MeshTest, FourByOneAndTwoByThree) {
  Mesh column{{4, 1}};
  EXPECT_EQ(column.coordinates(3), (Coords{3, 0}));
  EXPECT_EQ(column.groupIndex(2, 1), 2);
  EXPECT_EQ(column.groupIndex(2, 2), 0);
  EXPECT_EQ(column.groupSize(1), 4);
  EXPECT_EQ(column.groupSize(2), 1);

  Mesh dpTp{{2, 3}};
  EXPECT_EQ(dpTp.coordinates(5), (Coords{1, 2}));
  EXPECT_EQ(dpTp.groupIndex(5, 2), 2);
  EXPECT_EQ(dpTp.groupIndex(5, 1), 1);
  EXPECT_EQ(dpTp.groupIndex(4, 3), 4);
  EXPECT_EQ(dpTp.groupSize(2), 3);
}

TEST(MeshTest, EmptyAndInvalidShapes) {
  Mesh empty;
  EXPECT_EQ(empty.size(), 1);
  EXPECT_EQ(empty.groupSize(Mesh::kAllAxes), 1);
  EXPECT_TRUE(empty.check(8)); // one axis of the world's size

  Mesh zero{{2, 0}};
  EXPECT_EQ(zero.size(), 0);
  EXPECT_TRUE(zero.coordinates(0).empty());
  EXPECT_EQ(zero.groupIndex(0, 1), -1);
  EXPECT_NE(zero.check(0).message().find("axis 1 has extent 0"),
            std::string::npos);

  Mesh square{{2, 2}};
  EXPECT_TRUE(square.coordinates(4).empty());
  EXPECT_EQ(square.groupIndex(-1, 1), -1);
  EXPECT_EQ(square.check(5).message(),
            "mesh 2x2 holds 4 ranks, the world has 5");
  Mesh huge{{int64_t(1) << 40, int64_t(1) << 40}};
  EXPECT_EQ(huge.size(), 0);
  EXPECT_NE(huge.check(4).message().find("more ranks than an int64"),
            std::string::npos);
}

TEST(SingleProcessTest, CollectivesCopy) {
  auto comm = singleProcessCommunicator();
  EXPECT_EQ(comm->kind(), "single");
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->mesh().shape, (Coords{1}));

  float in[3] = {1.5f, -2, 4}, out[3] = {};
  for (CollectiveReduce op : {CollectiveReduce::Sum, CollectiveReduce::Average,
                              CollectiveReduce::Max}) {
    ASSERT_TRUE(comm->allReduce(in, out, 3, DType::F32, op, Mesh::kAllAxes));
    EXPECT_EQ(std::vector<float>(out, out + 3), std::vector<float>(in, in + 3));
  }
  uint16_t halves[2] = {floatToBf16(3), floatToBf16(-1)}, halvesOut[2];
  ASSERT_TRUE(comm->allReduce(halves, halvesOut, 2, DType::BF16,
                              CollectiveReduce::Average, 1));
  EXPECT_EQ(bf16ToFloat(halvesOut[0]), 3);
  EXPECT_TRUE(comm->allReduce(in, in, 3, DType::F32, CollectiveReduce::Sum, 0));
  EXPECT_EQ(in[0], 1.5f);

  int32_t ints[2] = {7, 8}, intsOut[2] = {};
  ASSERT_TRUE(comm->allGather(ints, intsOut, 2, DType::I32, 1));
  EXPECT_EQ(intsOut[1], 8);
  ASSERT_TRUE(comm->reduceScatter(ints, intsOut, 2, DType::I32,
                                  CollectiveReduce::Max, 1));
  EXPECT_EQ(intsOut[0], 7);
  EXPECT_TRUE(comm->allReduce(nullptr, nullptr, 0, DType::F32,
                              CollectiveReduce::Sum, 1));
  EXPECT_TRUE(comm->broadcast(ints, sizeof ints, 0));
  EXPECT_TRUE(comm->barrier());
}

TEST(SingleProcessTest, RefusesWhatMpiWouldRefuse) {
  auto comm = singleProcessCommunicator();
  int32_t ints[2] = {};
  uint8_t bytes[2] = {};
  EXPECT_EQ(
      comm->allReduce(ints, ints, 2, DType::I32, CollectiveReduce::Average, 1)
          .message(),
      "allReduce: Average needs a float dtype, not i32");
  EXPECT_EQ(comm->allGather(bytes, bytes, 2, DType::U8, 1).message(),
            "allGather: takes f32, f64, bf16, f16, i32 or i64, not another "
            "dtype");
  EXPECT_EQ(comm->allReduce(ints, ints, 2, DType::I32, CollectiveReduce::Sum, 4)
                .message(),
            "allReduce: axes mask 4 names an axis past the mesh's 1");
  EXPECT_FALSE(
      comm->allReduce(ints, ints, -1, DType::I32, CollectiveReduce::Sum, 1));
  EXPECT_FALSE(comm->reduceScatter(nullptr, ints, 2, DType::I32,
                                   CollectiveReduce::Sum, 1));
  EXPECT_EQ(comm->broadcast(ints, 8, 1).message(),
            "broadcast: root 1 is not a rank of a world of 1");
  EXPECT_EQ(comm->setMesh(Mesh{{2}}).message(),
            "mesh 2 holds 2 ranks, the world has 1");
  ASSERT_TRUE(comm->setMesh(Mesh{{1, 1}}));
  EXPECT_TRUE(
      comm->allReduce(ints, ints, 2, DType::I32, CollectiveReduce::Sum, 3));
}

/// Clears every launcher's variable for the test and restores them after.
class PlacementTest : public ::testing::Test {
protected:
  static constexpr const char *kNames[] = {"OMPI_COMM_WORLD_RANK",
                                           "OMPI_COMM_WORLD_SIZE",
                                           "OMPI_COMM_WORLD_LOCAL_RANK",
                                           "PMI_RANK",
                                           "PMI_SIZE",
                                           "MPI_LOCALRANKID",
                                           "SLURM_PROCID",
                                           "SLURM_NTASKS",
                                           "SLURM_LOCALID",
                                           "RANK",
                                           "WORLD_SIZE",
                                           "LOCAL_RANK",
                                           "GAI_LAUNCH",
                                           "GAI_MPI_PLUGIN",
                                           "GAI_NCCL_LIBRARY",
                                           "GAI_COLLECTIVE_TIMEOUT"};
  void SetUp() override {
    for (const char *name : kNames) {
      const char *value = std::getenv(name);
      saved_.emplace_back(name, value ? std::optional<std::string>(value)
                                      : std::nullopt);
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (auto &[name, value] : saved_)
      value ? setenv(name, value->c_str(), 1) : unsetenv(name);
  }
  std::vector<std::pair<const char *, std::optional<std::string>>> saved_;
};

TEST_F(PlacementTest, NoLauncherIsAWorldOfOne) {
  auto placement = jobPlacementFromEnvironment();
  ASSERT_TRUE(placement);
  EXPECT_EQ(placement->size, 1);
  EXPECT_EQ(placement->rank, 0);
  EXPECT_EQ(placement->launcher, "");
  auto comm = openHostCommunicator(*placement);
  ASSERT_TRUE(comm);
  EXPECT_EQ((*comm)->kind(), "single");
}

TEST_F(PlacementTest, LaunchersAndTheirOrder) {
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "4", 1);
  auto torchrun = jobPlacementFromEnvironment();
  ASSERT_TRUE(torchrun);
  EXPECT_EQ(torchrun->launcher, "torchrun");
  EXPECT_EQ(torchrun->localRank, 1); // no LOCAL_RANK: one host
  setenv("LOCAL_RANK", "0", 1);
  setenv("GAI_LAUNCH", "1", 1);
  auto launched = jobPlacementFromEnvironment();
  ASSERT_TRUE(launched);
  EXPECT_EQ(launched->launcher, "gai");
  EXPECT_EQ(launched->localRank, 0);

  setenv("SLURM_PROCID", "2", 1);
  setenv("SLURM_NTASKS", "3", 1);
  EXPECT_EQ(jobPlacementFromEnvironment()->launcher, "slurm");
  setenv("OMPI_COMM_WORLD_RANK", "5", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "6", 1);
  auto mpi = jobPlacementFromEnvironment();
  ASSERT_TRUE(mpi);
  EXPECT_EQ(mpi->launcher, "mpi");
  EXPECT_EQ(mpi->rank, 5);
  EXPECT_EQ(mpi->size, 6);
  EXPECT_EQ(mpi->sizeVariable, "OMPI_COMM_WORLD_SIZE");
}

TEST_F(PlacementTest, BadValuesNameTheVariable) {
  setenv("RANK", "abc", 1);
  setenv("WORLD_SIZE", "2", 1);
  EXPECT_EQ(jobPlacementFromEnvironment().status().message(),
            "RANK='abc' is not a whole number");
  setenv("RANK", " 1", 1);
  EXPECT_FALSE(jobPlacementFromEnvironment());
  setenv("RANK", "2", 1);
  EXPECT_EQ(jobPlacementFromEnvironment().status().message(),
            "RANK=2 is outside a world of WORLD_SIZE=2");
  unsetenv("WORLD_SIZE");
  EXPECT_EQ(jobPlacementFromEnvironment().status().message(),
            "WORLD_SIZE is not set, but RANK is: the launcher sets both");
  setenv("PMI_RANK", "0", 1);
  setenv("PMI_SIZE", "0", 1);
  EXPECT_EQ(jobPlacementFromEnvironment().status().message(),
            "PMI_SIZE=0: a world has a rank");
}

TEST_F(PlacementTest, ManyRanksWithoutThePluginSayMpiIsNeeded) {
  setenv("GAI_MPI_PLUGIN", "/nonexistent/libgai-mpi.so", 1);
  JobPlacement placement;
  placement.rank = 0;
  placement.size = 2;
  placement.sizeVariable = "WORLD_SIZE";
  auto comm = openHostCommunicator(placement);
  ASSERT_FALSE(comm);
  const std::string &message = comm.status().message();
  EXPECT_NE(message.find("this job has 2 ranks (WORLD_SIZE=2) and its host "
                         "collectives need MPI"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("/nonexistent/libgai-mpi.so"), std::string::npos);
  EXPECT_NE(message.find("apt-get install libopenmpi-dev openmpi-bin"),
            std::string::npos);
}

TEST_F(PlacementTest, CollectiveTimeout) {
  EXPECT_EQ(jobPlacementFromEnvironment()->collectiveTimeoutSeconds, 600);
  setenv("GAI_COLLECTIVE_TIMEOUT", "30", 1);
  EXPECT_EQ(jobPlacementFromEnvironment()->collectiveTimeoutSeconds, 30);
  setenv("GAI_COLLECTIVE_TIMEOUT", "0", 1);
  EXPECT_NE(jobPlacementFromEnvironment().status().message().find("GAI_COLLECTIVE_TIMEOUT=0"),
            std::string::npos);
  setenv("GAI_COLLECTIVE_TIMEOUT", "soon", 1);
  EXPECT_EQ(jobPlacementFromEnvironment().status().message(),
            "GAI_COLLECTIVE_TIMEOUT='soon' is not a whole number");
}

#if GAI_HAVE_CUDA
// NCCL is loaded at run time; where it is missing, a GPU job says how to
// point gai at it (on any machine: the library is looked for first).
TEST_F(PlacementTest, GpuRanksWithoutNcclSayWhereToFindIt) {
  setenv("GAI_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  JobPlacement placement;
  placement.size = 2;
  int ordinal = -1;
  auto comm = openCudaCommunicator(placement, ordinal);
  ASSERT_FALSE(comm);
  const std::string &message = comm.status().message();
  EXPECT_NE(message.find("NCCL is not here (/nonexistent/libnccl.so.2"), std::string::npos)
      << message;
  EXPECT_NE(message.find("GAI_NCCL_LIBRARY"), std::string::npos);
}
#endif

} // namespace

namespace gai {
namespace {

// The CPU backend's collectives thread: a step that touches nothing a
// pending collective does goes on at once; one that does waits for it (and
// for those started before it); errors come back at the wait.
TEST(AsyncStepsTest, WaitsOnlyForOverlappingBuffers) {
  cpu::AsyncSteps steps;
  std::atomic<int> finished{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Buffer gradients{format::Space::Arena, 0, 64}, other{format::Space::Arena, 64, 64};
  steps.start({gradients}, [&] {
    released.wait();
    finished = 1;
    return Status::ok();
  });
  steps.start({other}, [&] {
    finished = finished * 10 + 2; // after the first: in order
    return Status::error("lost a peer");
  });
  // A step elsewhere (the state) does not wait.
  EXPECT_TRUE(steps.waitFor({Buffer{format::Space::State, 0, 64}}).isOk());
  EXPECT_EQ(finished.load(), 0);
  release.set_value();
  // Reading the first collective's output waits for it alone.
  EXPECT_TRUE(steps.waitFor({Buffer{format::Space::Arena, 32, 8}}).isOk());
  EXPECT_GE(finished.load(), 1);
  Status last = steps.waitAll();
  EXPECT_EQ(last.message(), "lost a peer");
  EXPECT_EQ(finished.load(), 12);
}

} // namespace
} // namespace gai

namespace gai {
namespace {

// The one rule that cuts a tensor-parallel weight for a rank and puts the
// slices back: GPT-2's fused q/k/v ([3 × 4, 2] along axis 0: three segments
// of 2 heads of 2 rows, 1 head a rank) plus 2 rows of something unsplit.
TEST(TensorParallelSplitTest, SlicesAndGathersFusedSegments) {
  TensorParallelSplit split;
  split.wholeShape = {14, 2};
  split.segments = {0, 2, 2, 4, 2, 2, 8, 2, 2};
  split.axis = 0;
  split.keep = 1;
  EXPECT_EQ(split.localExtent(), 8); // 3 segments of one head, and the 2 rows
  std::vector<float> whole(28);
  for (size_t i = 0; i < whole.size(); ++i)
    whole[i] = static_cast<float>(i);
  auto bytes = reinterpret_cast<const uint8_t *>(whole.data());
  std::vector<uint8_t> rank0 = split.slice(bytes, 4, 0), rank1 = split.slice(bytes, 4, 1);
  ASSERT_EQ(rank0.size(), 8u * 2 * 4);
  auto rows = [](const std::vector<uint8_t> &b) {
    std::vector<float> f(b.size() / 4);
    std::memcpy(f.data(), b.data(), b.size());
    return f;
  };
  // Rank 0: rows 0-1, 4-5, 8-9 (each segment's first head), then 12-13.
  EXPECT_EQ(rows(rank0), (std::vector<float>{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25,
                                             26, 27}));
  EXPECT_EQ(rows(rank1), (std::vector<float>{4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25,
                                             26, 27}));
  std::vector<uint8_t> both(rank0);
  both.insert(both.end(), rank1.begin(), rank1.end());
  EXPECT_EQ(rows(split.gather(both.data(), rank0.size(), 4)), whole);
}

// KV heads replicated over tp=4: two heads of 2 rows [4, 1], each held by
// a pair of ranks. Ranks 0 and 1 cut head 0, ranks 2 and 3 head 1; the
// gather takes each pair's first rank's slice.
TEST(TensorParallelSplitTest, ReplicatedHeadsGoToEachPairOfRanks) {
  TensorParallelSplit split;
  split.wholeShape = {4, 1};
  split.segments = {0, 2, 2};
  split.axis = 0;
  split.keep = 1;
  split.replicas = 2;
  EXPECT_EQ(split.localExtent(), 2);
  const std::vector<float> whole = {10, 11, 20, 21};
  auto bytes = reinterpret_cast<const uint8_t *>(whole.data());
  auto floats = [](const std::vector<uint8_t> &b) {
    std::vector<float> f(b.size() / 4);
    std::memcpy(f.data(), b.data(), b.size());
    return f;
  };
  std::vector<uint8_t> all;
  for (int64_t rank = 0; rank < 4; ++rank) {
    std::vector<uint8_t> mine = split.slice(bytes, 4, rank);
    EXPECT_EQ(floats(mine), rank < 2 ? (std::vector<float>{10, 11}) : (std::vector<float>{20, 21}))
        << "rank " << rank;
    // A replica that drifted would not be read back.
    if (rank % 2 == 1)
      std::fill(mine.begin(), mine.end(), uint8_t{0xff});
    all.insert(all.end(), mine.begin(), mine.end());
  }
  EXPECT_EQ(floats(split.gather(all.data(), 8, 4)), whole);
}

} // namespace
} // namespace gai
