// NCCL with a world of one: the communicator's host and device collectives,
// and the collective steps of sharded training artifacts (--mesh dp=1,
// with and without ZeRO-1) against the unsharded artifact's losses.
// Skipped where there is no GPU or no NCCL library (GAI_NCCL_LIBRARY).
#include "GpuArtifacts.h"
#include "GpuTest.h"
#include "TrainFixture.h"
#include "hal/cuda/DeviceCollectives.h"
#include "hal/cuda/Kernels.h"

#include "gai/Comm.h"
#include "gai/Train.h"

namespace gai {
namespace {

/// NCCL's communicator for a world of one on GPU 0; null when the test is
/// to be skipped (`why` says so).
std::unique_ptr<Communicator> openWorldOfOne(std::string &why) {
  if (!haveGpu()) {
    why = "no CUDA GPU on this machine: the gpu tests need one";
    return nullptr;
  }
  JobPlacement placement; // rank 0 of 1
  int ordinal = 0;
  auto comm = openCudaCommunicator(placement, ordinal);
  if (!comm) {
    why = comm.status().message();
    if (why.find("NCCL is not here") == std::string::npos)
      ADD_FAILURE() << why;
    return nullptr;
  }
  return std::move(*comm);
}

#define OPEN_NCCL_OR_SKIP(comm)                                                \
  std::string why;                                                             \
  std::unique_ptr<Communicator> comm = openWorldOfOne(why);                    \
  if (!comm)                                                                   \
  GTEST_SKIP() << why

TEST(Nccl, HostCollectivesOfAWorldOfOne) {
  OPEN_NCCL_OR_SKIP(comm);
  EXPECT_EQ(comm->kind(), "nccl");
  ASSERT_TRUE(comm->setMesh(Mesh{{1, 1}}).isOk());
  std::vector<float> in = {1.5f, -2.0f, 3.25f, 0.0f}, out(4, 7.0f);
  for (CollectiveReduce op :
       {CollectiveReduce::Sum, CollectiveReduce::Average, CollectiveReduce::Max}) {
    std::fill(out.begin(), out.end(), 7.0f);
    ASSERT_TRUE(comm->allReduce(in.data(), out.data(), 4, DType::F32, op, 1u << 1).isOk());
    EXPECT_EQ(out, in);
  }
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x4040}, bf16Out(3);
  ASSERT_TRUE(comm->allGather(bf16.data(), bf16Out.data(), 3, DType::BF16, Mesh::kAllAxes).isOk());
  EXPECT_EQ(bf16Out, bf16);
  std::vector<int64_t> wide = {1, 2, 3}, wideOut(3);
  ASSERT_TRUE(comm->reduceScatter(wide.data(), wideOut.data(), 3, DType::I64,
                                  CollectiveReduce::Sum, 1u << 0)
                  .isOk());
  EXPECT_EQ(wideOut, wide);
  char text[] = "rank zero";
  EXPECT_TRUE(comm->broadcast(text, sizeof text, 0).isOk());
  EXPECT_STREQ(text, "rank zero");
  EXPECT_TRUE(comm->barrier().isOk());
  // The same argument checks as every communicator's.
  Status bad = comm->allReduce(in.data(), out.data(), 4, DType::I32, CollectiveReduce::Average,
                               Mesh::kAllAxes);
  EXPECT_FALSE(bad.isOk());
  EXPECT_FALSE(comm->broadcast(text, sizeof text, 1).isOk());
}

TEST(Nccl, DeviceCollectivesOnAStream) {
  OPEN_NCCL_OR_SKIP(comm);
  auto *device = dynamic_cast<cuda::DeviceCollectives *>(comm.get());
  ASSERT_NE(device, nullptr);
  ASSERT_TRUE(device->prepareGroup(1u << 0).isOk());
  EXPECT_EQ(device->groupIndex(1u << 0), 0);
  std::vector<float> host = {0.5f, 1.0f, -4.0f, 8.0f, 16.0f};
  void *in = uploadAs(host, DType::BF16);
  void *out = uploadAs(std::vector<float>(host.size(), 0.0f), DType::BF16);
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_TRUE(device->allReduceOnDevice(in, out, 5, DType::BF16, CollectiveReduce::Average,
                                        1u << 0, stream)
                  .isOk());
  ASSERT_TRUE(device->synchronize(stream, "all_reduce").isOk());
  EXPECT_EQ(downloadAs(out, DType::BF16, 5), host);
  cudaMemset(out, 0, 10);
  ASSERT_TRUE(device->reduceScatterOnDevice(in, out, 5, DType::BF16, CollectiveReduce::Sum,
                                            Mesh::kAllAxes, stream)
                  .isOk());
  cudaMemsetAsync(in, 0, 2, stream); // after the collective, in stream order
  ASSERT_TRUE(device->synchronize(stream, "reduce_scatter").isOk());
  EXPECT_EQ(downloadAs(out, DType::BF16, 5), host);
  cudaStreamDestroy(stream);
  cudaFree(in);
  cudaFree(out);
}

// A vocabulary shard on the GPU: the table holds ids 4..7 of 12 (rank 1 of
// 3); other ids look up zeros and set a one-hot row to zeros, and only an
// id past the whole vocabulary is reported.
TEST(VocabularyShards, EmbeddingAndOneHot) {
  SKIP_WITHOUT_GPU();
  std::vector<float> table(4 * 2);
  for (size_t i = 0; i < table.size(); ++i)
    table[i] = static_cast<float>(i + 1);
  void *deviceTable = uploadAs(table, DType::F32);
  std::vector<int32_t> ids = {5, 0, 7, 11};
  int32_t *deviceIds = nullptr;
  float *rows = nullptr, *hot = nullptr;
  cuda::ErrorWord *error = nullptr;
  ASSERT_EQ(cudaMalloc(&deviceIds, 16), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&rows, 4 * 2 * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&hot, 4 * 4 * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&error, sizeof(cuda::ErrorWord)), cudaSuccess);
  cudaMemcpy(deviceIds, ids.data(), 16, cudaMemcpyHostToDevice);
  cudaMemset(error, 0, sizeof(cuda::ErrorWord));
  cuda::embedding(cuda::Elem::F32, deviceTable, 4, 2, deviceIds, 4, rows, error, 0, 4, 12,
                  nullptr);
  cuda::oneHot(cuda::Elem::F32, deviceIds, 4, 4, hot, error, 1, 4, 12, nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cuda::ErrorWord word{};
  cudaMemcpy(&word, error, sizeof word, cudaMemcpyDeviceToHost);
  EXPECT_EQ(word.flag, cuda::kNoError);
  EXPECT_EQ(downloadAs(rows, DType::F32, 8), (std::vector<float>{3, 4, 0, 0, 7, 8, 0, 0}));
  EXPECT_EQ(downloadAs(hot, DType::F32, 16),
            (std::vector<float>{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}));
  ids[1] = 12;
  cudaMemcpy(deviceIds, ids.data(), 16, cudaMemcpyHostToDevice);
  cuda::embedding(cuda::Elem::F32, deviceTable, 4, 2, deviceIds, 4, rows, error, 2, 4, 12,
                  nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaMemcpy(&word, error, sizeof word, cudaMemcpyDeviceToHost);
  EXPECT_EQ(word.flag, cuda::kBadTokenId);
  EXPECT_EQ(word.a, 12);
  cudaFree(deviceTable);
  cudaFree(deviceIds);
  cudaFree(rows);
  cudaFree(hot);
  cudaFree(error);
}

/// 20 of the fixture's AdamW steps of `artifact` with `comm` (null: a
/// session of its own); their losses.
std::vector<double> trainSteps(const std::string &artifact, Communicator *comm) {
  auto fixture =
      SafetensorsFile::open(std::string(GAI_FIXTURES_DIR) + "/hf/llama-tiny/train.safetensors");
  EXPECT_TRUE(fixture.isOk()) << fixture.status().message();
  if (!fixture)
    return {};
  OptimizerOptions o = fixtureOptimizerOptions(*fixture);
  auto loaded = LoadedArtifact::load(artifactsDir() + "/" + artifact);
  EXPECT_TRUE(loaded.isOk()) << loaded.status().message();
  if (!loaded)
    return {};
  SessionOptions options;
  options.device = "cuda:0";
  options.gemmTuneCandidates = 0; // the same GEMM algorithms in every session
  options.communicator = comm;
  auto session = Session::create(std::move(*loaded), options);
  EXPECT_TRUE(session.isOk()) << session.status().message();
  if (!session)
    return {};
  auto trainer = Trainer::create(**session, o);
  EXPECT_TRUE(trainer.isOk()) << trainer.status().message();
  if (!trainer)
    return {};
  std::vector<int32_t> batches = idsOf(*fixture->find("steps.tokens")),
                       labels = idsOf(*fixture->find("steps.targets"));
  std::vector<double> losses;
  for (int64_t step = 0; step < 20; ++step) {
    auto result = trainer->trainStep({batches.data() + step * 32}, {labels.data() + step * 32});
    EXPECT_TRUE(result.isOk()) << result.status().message();
    if (!result)
      break;
    losses.push_back(result->loss);
  }
  return losses;
}

// The collective steps of DP and ZeRO-1 (all_reduce, reduce_scatter,
// all_slice, all_gather) as NCCL calls, inside the entry's CUDA graph from
// its second run: a world of one gives the unsharded losses (ZeRO-1 sums
// the clipping norm over flat shares, in another order: bf16 allows 1e-3).
TEST(Nccl, ShardedTrainingStepsOfAWorldOfOne) {
  OPEN_NCCL_OR_SKIP(comm);
  std::vector<double> plain = trainSteps("llama-bf16-train.gai", nullptr);
  ASSERT_EQ(plain.size(), 20u);
  for (const char *sharded : {"llama-bf16-dp1-train.gai", "llama-bf16-zero1-train.gai"}) {
    std::vector<double> losses = trainSteps(sharded, comm.get());
    ASSERT_EQ(losses.size(), 20u) << sharded;
    for (size_t step = 0; step < losses.size(); ++step)
      EXPECT_NEAR(losses[step], plain[step], 1e-3 * std::abs(plain[step]))
          << sharded << ", step " << step;
  }
}

} // namespace
} // namespace gai
