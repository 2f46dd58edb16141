// Loading artifacts: a valid one loads; truncated, bit-flipped, mislabelled
// and out-of-bounds ones are refused with a message, never used.
#include "gai/Artifact.h"
#include "gai/Session.h"

#include "format/artifact_generated.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <sys/stat.h>

using namespace gai;
namespace fmt = gai::format;

namespace {

struct Options {
  int64_t gemmC = 0;               ///< offset of the GEMM's output
  int64_t gemmCBytes = 16;         ///< its size
  uint32_t launchKernel = 0;       ///< kernel index the launch names
  int64_t kernelOutputBytes = 16;  ///< what the kernel's signature says it writes
  std::vector<int64_t> inputShape = {2, 8}; ///< of the f32 input x (64 bytes)
  int64_t stateSize = 0;
  uint32_t schemaVersion = kArtifactSchemaVersion;
  bool externalWeights = false;
  uint64_t externalChecksum = 0;
  int64_t externalSize = 256;
  // An attention step after the others, with folded cache writes when
  // kNew / vNew are set.
  bool attention = false;
  bool kNew = false, vNew = false;
  int64_t queries = 1;
  fmt::RopeStyle rope = fmt::RopeStyle::None;
  int64_t ropePositionsBytes = 0;
  // A gated GEMM: its gate weights, and what else it has.
  bool gate = false, gateBias = false, gateTransposed = true;
  int64_t gemmRows = 1, gemmK = 8; // of the gated GEMM
  fmt::Activation gateActivation = fmt::Activation::Silu;
  // A GEMM with an RMSNorm folded in: making its input, reading it, or both
  // (gemmRows, gemmK as above).
  bool makesNorm = false, readsNorm = false;
  int64_t squaresBytes = 8; // f64 per row
  float normEps = 1e-5f;
  // The norm GEMM's types: f32, or bf16 A and B with (wideC) an f32 C, its
  // residual and the norm's weight [4].
  fmt::DType normGemmType = fmt::DType::F32;
  bool wideC = false;
  int64_t normWeightBytes = 16, normOutRowBytes = 16;
  // The plain GEMM's bias (n = 4 f32) and wide_c.
  bool plainBias = false, plainWide = false;
  // The plain GEMM's A in e4m3 with row scales (a_scale), which only fp8
  // weights take.
  int64_t plainAScaleBytes = 0;
  // A GEMM over 2:4 weights instead ([4, 8] as values [4, 4] and metadata
  // [4, 1]), how many metadata bytes it names, and whether b is transposed.
  bool sparse = false, sparseTransposed = true;
  int64_t sparseMetaBytes = 4;
  // A 2:4 gated GEMM: its gate's values, and their positions or not.
  bool sparseGate = false, sparseGateMeta = true;
  // A mesh, and an all-gather of 4 f32 per rank over grid axes `axes`
  // from the output into the arena.
  std::vector<int64_t> mesh;
  bool allGather = false;
  std::vector<int16_t> axes = {0};
  int64_t gatherCount = 4;
  // The weight w split over tensor-parallel ranks: each rank's slice.
  std::vector<int64_t> rankOffsets;
  // Or w [8, 8] as this rank's rows of a split bound at run time: the whole
  // [tpRows, 8] holds `tpUnits` blocks of 8 rows, tpReplicas ranks a block.
  bool tpSplit = false;
  int64_t tpRows = 16, tpUnits = 2, tpReplicas = 1;
  // A lookup of 4 ids in w as a table [8, 8] of f32 (its first 256 bytes)
  // of `embeddingShards` shards along the grid axes `embeddingAxes`.
  bool embedding = false;
  int64_t embeddingShards = 1;
  uint32_t embeddingAxes = 0;
  // Attention's backward (batch 1, 2 heads over 1 KV head, 2 queries, 4
  // keys, head dim 4, f32 in the arena) with its lse of `lseBytes`.
  bool attentionGrad = false;
  int64_t lseBytes = 16;
  std::vector<int64_t> gradStrides; // its strides; empty: packed
  // The plain GEMM's batch and stride_c (its a and b strides 0).
  int64_t gemmBatch = 1, gemmStrideC = 0;
  // A Place of `placeOuter` chunks of `placeChunk` bytes, and a Reduce of
  // [reduceOuter, reduceN, reduceInner] f32, each from the arena's first
  // 256 bytes to the next 256 (0 outer: none).
  int64_t placeOuter = 0, placeChunk = 0;
  int64_t reduceOuter = 0, reduceN = 1, reduceInner = 0;
  // An embedding's gradient ([4, 8] rows into an [8, 8] table) whose output
  // starts `embeddingGradOut` bytes into the arena (its grad is at 0).
  bool embeddingGrad = false;
  int64_t embeddingGradOut = 256;
};

/// A small decode-like artifact: 256 bytes of weights, an input, an output,
/// a 1 KiB arena, a GEMM, a launch of a generated kernel and a fill.
std::vector<uint8_t> build(const Options &o = {}) {
  flatbuffers::FlatBufferBuilder b;
  auto tensor = [&](const char *name, fmt::DType dtype,
                    std::vector<int64_t> shape, fmt::Space space,
                    int64_t offset, int64_t size) {
    fmt::BufferRef ref(space, offset, size);
    return fmt::CreateTensorDescDirect(b, name, dtype, &shape, &ref);
  };
  std::vector<uint8_t> blob(256, 7);
  std::vector<flatbuffers::Offset<fmt::TensorDesc>> weightTensors = {
      tensor("w", fmt::DType::F32, {8, 8}, fmt::Space::Weights, 0, 256)};
  if (!o.rankOffsets.empty()) {
    std::vector<int64_t> shape = {8, 8};
    fmt::BufferRef ref(fmt::Space::Weights, 0, 256);
    weightTensors[0] = fmt::CreateTensorDescDirect(b, "w", fmt::DType::F32, &shape, &ref,
                                                   fmt::TensorRole::Other, nullptr, nullptr,
                                                   nullptr, &o.rankOffsets);
  }
  if (o.tpSplit) {
    std::vector<int64_t> shape = {8, 8}, whole = {o.tpRows, 8}, segments = {0, o.tpUnits, 8};
    fmt::BufferRef ref(fmt::Space::Weights, 0, 256);
    weightTensors[0] = fmt::CreateTensorDescDirect(
        b, "w", fmt::DType::F32, &shape, &ref, fmt::TensorRole::Other, nullptr, nullptr, nullptr,
        nullptr, &whole, 0, 1, &segments, o.tpReplicas);
  }
  flatbuffers::Offset<fmt::Weights> weights;
  if (o.externalWeights) {
    auto ext = fmt::CreateExternalWeightsDirect(b, "w.bin", o.externalSize,
                                                o.externalChecksum);
    weights = fmt::CreateWeightsDirect(b, nullptr, ext, &weightTensors);
  } else {
    b.ForceVectorAlignment(blob.size(), 1, 64);
    weights = fmt::CreateWeightsDirect(b, &blob, 0, &weightTensors);
  }
  std::vector<flatbuffers::Offset<fmt::TensorDesc>> inputs = {
      tensor("x", fmt::DType::F32, o.inputShape, fmt::Space::Input, 0, 64)};
  std::vector<flatbuffers::Offset<fmt::TensorDesc>> outputs = {
      tensor("y", fmt::DType::F32, {1, 4}, fmt::Space::Output, 0, 16)};

  fmt::BufferRef x(fmt::Space::Input, 0, 64), w(fmt::Space::Weights, 0, 256),
      c(fmt::Space::Arena, o.gemmC, o.gemmCBytes), none(fmt::Space::Arena, 0, 0),
      y(fmt::Space::Output, 0, 16);
  fmt::BufferRef gate(fmt::Space::Weights, 0, o.gate ? 256 : 0),
      bias(fmt::Space::Weights, 0, o.gateBias ? 16 : 0);
  fmt::BufferRef normWeight(fmt::Space::Weights, 0, o.makesNorm ? o.normWeightBytes : 0),
      normOut(fmt::Space::Arena, 64, o.makesNorm ? o.normOutRowBytes * o.gemmRows : 0),
      plainBias(fmt::Space::Weights, 0, o.plainBias ? 16 : 0),
      normSquares(fmt::Space::Arena, 256, o.makesNorm ? o.squaresBytes : 0),
      aSquares(fmt::Space::Arena, 512, o.readsNorm ? o.squaresBytes : 0);
  fmt::BufferRef values(fmt::Space::Weights, 0, 64),
      meta(fmt::Space::Weights, 64, o.sparseMetaBytes),
      gateValues(fmt::Space::Weights, 128, o.sparseGate ? 64 : 0),
      gateMeta(fmt::Space::Weights, 192, o.sparseGate && o.sparseGateMeta ? 4 : 0),
      aScale(fmt::Space::Arena, 512, o.plainAScaleBytes);
  auto gemm = o.sparse ? fmt::CreateGemm(b, &x, &values, &c, &none, &none, 1, 1, 4, 8, false,
                                         o.sparseTransposed, 0, 0, 0,
                                         o.sparseGate ? fmt::Activation::Silu
                                                      : fmt::Activation::None,
                                         fmt::DType::F32, &gateValues, &none, &none, &none, 0.0f,
                                         &none, 0.0f, false, fmt::WeightFormat::Sparse24, &none,
                                         &none, &none, &none, 0, &meta, &gateMeta)
              : o.gate ? fmt::CreateGemm(b, &x, &w, &c, &bias, &none, 1, o.gemmRows, 4, o.gemmK,
                                       false,
                                       o.gateTransposed, 0, 0, 0, o.gateActivation,
                                       fmt::DType::F32, &gate)
              : o.makesNorm || o.readsNorm
                  ? fmt::CreateGemm(b, &x, &w, &c, &none, &none, 1, o.gemmRows, 4, o.gemmK,
                                    false, true, 0, 0, 0, fmt::Activation::None,
                                    o.normGemmType, &none, &normWeight, &normOut,
                                    &normSquares, 0.0f, &aSquares, o.normEps, o.wideC)
                  : fmt::CreateGemm(b, &x, &w, &c, &plainBias, &none, o.gemmBatch, 1, 4, 4,
                                    false, false, 0, 0, o.gemmStrideC, fmt::Activation::None,
                                    o.plainWide ? fmt::DType::BF16 : fmt::DType::F32, &none,
                                    &none, &none, &none, 0.0f, &none, 0.0f, o.plainWide,
                                    fmt::WeightFormat::Float, &none, &none, &none, &none, 0,
                                    &none, &none, &aScale);
  std::vector<fmt::BufferRef> launchArgs = {c, y};
  auto launch = fmt::CreateLaunchDirect(b, o.launchKernel, &launchArgs);
  auto fill = fmt::CreateFill(b, &y, 0x3f800000u, fmt::DType::F32);
  std::vector<flatbuffers::Offset<fmt::Step>> steps = {
      fmt::CreateStep(b, fmt::Command::Gemm, gemm.Union()),
      fmt::CreateStep(b, fmt::Command::Launch, launch.Union()),
      fmt::CreateStep(b, fmt::Command::Fill, fill.Union())};
  if (o.attention) {
    // batch 1, 2 heads over 1 KV head of 4 slots, head dim 8, f32.
    fmt::BufferRef q(fmt::Space::Arena, 0, 64), k(fmt::Space::Arena, 64, 128),
        v(fmt::Space::Arena, 192, 128), out(fmt::Space::Arena, 320, 64),
        start(fmt::Space::Input, 0, 4), kNew(fmt::Space::Arena, 384, o.kNew ? 32 : 0),
        vNew(fmt::Space::Arena, 416, o.vNew ? 32 : 0),
        positions(fmt::Space::Arena, 448, o.ropePositionsBytes);
    auto attention = fmt::CreateAttention(
        b, &q, &k, &v, &out, &start, 1, 2, 1, o.queries, 4, 8, 8, 0.35f, 0.0f, true, 0,
        fmt::DType::F32, &kNew, &vNew, o.rope, &positions, 10000.0f);
    steps.push_back(fmt::CreateStep(b, fmt::Command::Attention, attention.Union()));
  }
  if (o.embedding) {
    fmt::BufferRef table(fmt::Space::Weights, 0, 256), ids(fmt::Space::Arena, 640, 16),
        rows(fmt::Space::Arena, 768, 128);
    auto lookup = fmt::CreateEmbedding(b, &table, &ids, &rows, 8, 8, 4, fmt::DType::F32,
                                       o.embeddingShards, o.embeddingAxes);
    steps.push_back(fmt::CreateStep(b, fmt::Command::Embedding, lookup.Union()));
  }
  if (o.attentionGrad) {
    auto at = [](int64_t offset, int64_t bytes) {
      return fmt::BufferRef(fmt::Space::Arena, offset, bytes);
    };
    fmt::BufferRef q = at(0, 64), k = at(64, 64), v = at(128, 64), out = at(192, 64),
                   lse = at(256, o.lseBytes), dout = at(272, 64), dq = at(336, 64),
                   dk = at(400, 64), dv = at(464, 64);
    auto grad = fmt::CreateAttentionGrad(
        b, &q, &k, &v, &out, &lse, &dout, &dq, &dk, &dv, 1, 2, 1, 2, 4, 4, 4, 0.5f, 0.0f, true, 0,
        fmt::DType::F32, o.gradStrides.empty() ? 0 : b.CreateVector(o.gradStrides));
    steps.push_back(fmt::CreateStep(b, fmt::Command::AttentionGrad, grad.Union()));
  }
  if (o.placeOuter > 0) {
    fmt::BufferRef from(fmt::Space::Arena, 0, 256), to(fmt::Space::Arena, 256, 256);
    auto place = fmt::CreatePlace(b, &from, &to, o.placeOuter, o.placeChunk, o.placeChunk, 0);
    steps.push_back(fmt::CreateStep(b, fmt::Command::Place, place.Union()));
  }
  if (o.reduceOuter > 0) {
    fmt::BufferRef from(fmt::Space::Arena, 0, 256), to(fmt::Space::Arena, 256, 256);
    auto reduce = fmt::CreateReduce(b, &from, &to, fmt::ReduceKind::Sum, o.reduceOuter,
                                    o.reduceN, o.reduceInner, fmt::DType::F32);
    steps.push_back(fmt::CreateStep(b, fmt::Command::Reduce, reduce.Union()));
  }
  if (o.embeddingGrad) {
    fmt::BufferRef grad(fmt::Space::Arena, 0, 128), ids(fmt::Space::Arena, 640, 16),
        table(fmt::Space::Arena, o.embeddingGradOut, 256);
    auto scatter = fmt::CreateEmbeddingGrad(b, &grad, &ids, &table, 8, 8, 4, fmt::DType::F32);
    steps.push_back(fmt::CreateStep(b, fmt::Command::EmbeddingGrad, scatter.Union()));
  }
  if (o.allGather) {
    fmt::BufferRef gathered(fmt::Space::Arena, 512, 64);
    auto gather = fmt::CreateAllGatherDirect(b, &y, &gathered, o.gatherCount, &o.axes);
    steps.push_back(fmt::CreateStep(b, fmt::Command::AllGather, gather.Union()));
  }
  std::vector<flatbuffers::Offset<fmt::EntryPoint>> entries = {
      fmt::CreateEntryPointDirect(b, "decode", &inputs, &outputs, 1024,
                                  &steps)};
  std::vector<uint8_t> code = {0x7f, 'E', 'L', 'F'};
  std::vector<flatbuffers::Offset<flatbuffers::String>> symbols = {
      b.CreateString("fusion_0")};
  // fusion_0 reads 16 bytes of each of its two buffers.
  std::vector<int64_t> argBytes = {16, o.kernelOutputBytes};
  std::vector<flatbuffers::Offset<fmt::KernelSignature>> signatures = {
      fmt::CreateKernelSignatureDirect(b, &argBytes)};
  auto kernels = fmt::CreateKernelModuleDirect(b, "elf-shared-object", &code, &symbols,
                                               false, &signatures);
  auto options = fmt::CreateCompileOptionsDirect(b, "cpu", "f32", 1, 128, 8, "test", "0.1.0",
                                                 o.mesh.empty() ? nullptr : &o.mesh);
  auto root = fmt::CreateArtifactDirect(b, o.schemaVersion, options, weights,
                                        nullptr, o.stateSize, &entries, kernels);
  fmt::FinishArtifactBuffer(b, root);
  return sealArtifact(b.GetBufferPointer(), b.GetSize());
}

std::string loadError(std::vector<uint8_t> bytes,
                      const std::string &directory = ".") {
  auto loaded = LoadedArtifact::fromBytes(std::move(bytes), "m.gai", directory);
  if (loaded.isOk()) {
    ADD_FAILURE() << "loaded a bad artifact";
    return "";
  }
  return loaded.status().message();
}

TEST(Artifact, ValidArtifactLoads) {
  auto loaded = LoadedArtifact::fromBytes(build(), "m.gai", ".");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  const fmt::Artifact &root = loaded->root();
  EXPECT_EQ(root.options()->max_seq_len(), 128);
  ASSERT_EQ(root.entries()->size(), 1u);
  EXPECT_EQ(root.entries()->Get(0)->name()->str(), "decode");
  EXPECT_EQ(root.entries()->Get(0)->steps()->size(), 3u);
  EXPECT_EQ(loaded->weightsSize(), 256);
  EXPECT_EQ(loaded->weights()[255], 7);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(loaded->weights()) % 64, 0u);
}

TEST(Artifact, TruncatedFilesAreRefused) {
  std::vector<uint8_t> bytes = build();
  for (size_t keep : {size_t(0), size_t(10), bytes.size() / 2, bytes.size() - 1}) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + keep);
    EXPECT_EQ(loadError(cut),
              "m.gai: not a gai artifact, or truncated (no footer)")
        << keep;
  }
}

TEST(Artifact, EveryFlippedBitIsCaught) {
  std::vector<uint8_t> bytes = build();
  size_t payload = bytes.size() - kArtifactFooterSize;
  for (size_t i = 0; i < payload; i += 7) {
    std::vector<uint8_t> flipped = bytes;
    flipped[i] ^= 0x10;
    EXPECT_EQ(loadError(flipped), "m.gai: checksum mismatch: the file is corrupt")
        << "byte " << i;
  }
}

TEST(Artifact, WrongIdentifierOrVersion) {
  std::vector<uint8_t> bytes = build();
  size_t payload = bytes.size() - kArtifactFooterSize;
  std::vector<uint8_t> renamed(bytes.begin(), bytes.begin() + payload);
  renamed[4] = 'X'; // the file identifier sits at bytes 4..7
  EXPECT_EQ(loadError(sealArtifact(renamed.data(), renamed.size())),
            "m.gai: the FlatBuffer does not verify (wrong file identifier or "
            "corrupt tables)");
  Options old;
  old.schemaVersion = 0;
  EXPECT_EQ(loadError(build(old)),
            "m.gai: schema version 0 in the table does not match the "
            "footer's");
}

TEST(Artifact, FooterFromAnotherSchemaVersion) {
  std::vector<uint8_t> bytes = build();
  bytes[bytes.size() - kArtifactFooterSize + 4] = 16; // before e4m3 A (a_scale)
  EXPECT_EQ(loadError(bytes),
            "m.gai: schema version 16, this runtime reads version 17; recompile "
            "with a matching gaic");
}

// A in e4m3 with row scales is for fp8 weights over bf16 A and C only.
TEST(Artifact, AnE4m3AOverFloatWeightsIsRefused) {
  Options o;
  o.plainAScaleBytes = 4;
  EXPECT_EQ(loadError(build(o)),
            "m.gai: entry 'decode': step 0 (gemm): a_scale (A in e4m3 with a scale a row) "
            "takes fp8 weights stored [n, k] under bf16 a and c, batch 1, no gate, f32 c or "
            "folded norm, k a multiple of 16 and more than 8 rows");
}

TEST(Artifact, OutOfBoundsBuffersAreRefused) {
  Options o;
  o.gemmC = 1020; // 16 bytes from 1020 overrun the 1024-byte arena
  EXPECT_EQ(loadError(build(o)),
            "m.gai: entry 'decode': step 0 (gemm): c [Arena 1020 + 16] "
            "is outside its space of 1024 bytes");
  Options k;
  k.launchKernel = 3;
  EXPECT_EQ(loadError(build(k)),
            "m.gai: entry 'decode': step 1 (launch): launches kernel 3 of 1");
  Options small;
  small.kernelOutputBytes = 32; // the launch passes 16
  EXPECT_EQ(loadError(build(small)),
            "m.gai: entry 'decode': step 1 (launch): argument 1 has 16 bytes, kernel 0 "
            "reads 32");
}

// A batch whose outputs lie over each other (stride_c 0) fits any buffer:
// 2^40 matrices of one small c would run for days.
TEST(Artifact, OverlappingBatchedOutputsAreRefused) {
  Options o;
  o.gemmBatch = int64_t{1} << 40;
  EXPECT_EQ(loadError(build(o)),
            "m.gai: entry 'decode': step 0 (gemm): stride_c (0) must be at least m x n (4) "
            "when batch > 1: the batch's outputs may not overlap");
  o.gemmStrideC = 3; // two [1, 4] outputs 3 apart, within c's 28 bytes
  o.gemmBatch = 2;
  o.gemmCBytes = 28;
  EXPECT_EQ(loadError(build(o)),
            "m.gai: entry 'decode': step 0 (gemm): stride_c (3) must be at least m x n (4) "
            "when batch > 1: the batch's outputs may not overlap");
}

// Empty rows fit any count: 2^40 chunks of nothing would loop for days.
TEST(Artifact, EmptyRowsWithAnyCountAreRefused) {
  Options place;
  place.placeOuter = 4;
  place.placeChunk = 16;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(place), "m.gai", ".").isOk());
  place.placeOuter = int64_t{1} << 40;
  place.placeChunk = 0;
  EXPECT_EQ(loadError(build(place)),
            "m.gai: entry 'decode': step 3 (place): chunk_bytes must be positive when outer > 0");
  Options reduce;
  reduce.reduceOuter = 4;
  reduce.reduceN = 2;
  reduce.reduceInner = 4;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(reduce), "m.gai", ".").isOk());
  reduce.reduceOuter = reduce.reduceN = int64_t{1} << 30;
  reduce.reduceInner = 0;
  EXPECT_EQ(loadError(build(reduce)),
            "m.gai: entry 'decode': step 3 (reduce): inner must be positive when outer > 0");
}

TEST(Artifact, SizesThatOverflowAreRefused) {
  Options huge;
  huge.inputShape = {int64_t{1} << 59, 1}; // 2^59 f32 elements: 2^64 bits
  EXPECT_EQ(loadError(build(huge)),
            "m.gai: entry 'decode': tensor 'x' has a bad shape (576460752303423488 elements "
            "overflow its size)");
  Options state;
  state.stateSize = int64_t{1} << 51;
  EXPECT_EQ(loadError(build(state)),
            "m.gai: state size 2251799813685248 is outside [0, 2^50]");
}

TEST(Artifact, PlansLargerThanTheMachineAreRefused) {
  Options big;
  big.stateSize = int64_t{1} << 49; // 512 TiB of state, + 1024 arena + 64 + 16 of i/o
  auto loaded = LoadedArtifact::fromBytes(build(big), "m.gai", ".");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  SessionOptions cpu;
  cpu.device = "cpu";
  auto session = Session::create(std::move(*loaded), cpu);
  ASSERT_FALSE(session.isOk());
  EXPECT_EQ(session.status().message().rfind("the artifact's state, arenas, inputs and "
                                             "outputs needs 562949953422416 bytes, the "
                                             "machine has ",
                                             0),
            0u)
      << session.status().message();
}

TEST(Artifact, FoldedAttentionIsChecked) {
  Options folded;
  folded.attention = folded.kNew = folded.vNew = true;
  folded.rope = fmt::RopeStyle::Half;
  folded.ropePositionsBytes = 4;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(folded), "m.gai", ".").isOk());

  const std::string at = "m.gai: entry 'decode': step 3 (attention): ";
  Options halfFolded = folded;
  halfFolded.vNew = false;
  EXPECT_EQ(loadError(build(halfFolded)),
            at + "new rows need both k_new and v_new, query_start and causal");
  Options tooMany = folded;
  tooMany.queries = 17;
  tooMany.ropePositionsBytes = 17 * 4;
  EXPECT_EQ(loadError(build(tooMany)),
            at + "folded cache writes take at most 16 new rows, not 17");
  Options badPositions = folded;
  badPositions.ropePositionsBytes = 8; // [2, 1] for a batch of 1
  EXPECT_EQ(loadError(build(badPositions)),
            at + "rope needs new rows, positions of [batch or 1, queries] int32, "
                 "an even head_dim and theta > 0");
  Options partPositions = folded;
  partPositions.ropePositionsBytes = 6; // one int32 and a half
  EXPECT_EQ(loadError(build(partPositions)),
            at + "rope needs new rows, positions of [batch or 1, queries] int32, "
                 "an even head_dim and theta > 0");
  Options ropeAlone;
  ropeAlone.attention = true;
  ropeAlone.rope = fmt::RopeStyle::Interleaved;
  ropeAlone.ropePositionsBytes = 4;
  EXPECT_EQ(loadError(build(ropeAlone)),
            at + "rope needs new rows, positions of [batch or 1, queries] int32, "
                 "an even head_dim and theta > 0");
}

TEST(Artifact, AttentionGradIsChecked) {
  Options grad;
  grad.attentionGrad = true;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(grad), "m.gai", ".").isOk());
  Options shortLse = grad;
  shortLse.lseBytes = 8; // f32 [1, 2, 2] is 16 bytes
  EXPECT_EQ(loadError(build(shortLse)),
            "m.gai: entry 'decode': step 3 (attention_grad): lse needs 16 bytes, its buffer "
            "has 8");
}

TEST(Artifact, AttentionStridesAreChecked) {
  Options grad;
  grad.attentionGrad = true;
  // q, out, out_grad and q_grad [1, 2, 2, 4] token-major (rows 8 apart);
  // k, v and their gradients [1, 1, 4, 4] packed.
  const std::vector<int64_t> queryRows = {16, 4, 8}, keyRows = {16, 16, 4};
  for (int tensor = 0; tensor < 8; ++tensor) {
    const bool queryShaped = tensor == 0 || tensor == 3 || tensor == 4 || tensor == 5;
    const std::vector<int64_t> &s = queryShaped ? queryRows : keyRows;
    grad.gradStrides.insert(grad.gradStrides.end(), s.begin(), s.end());
  }
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(grad), "m.gai", ".").isOk());
  Options past = grad;
  past.gradStrides[4 * 3 + 2] = 16; // out_grad's rows 16 apart reach 96 of its 64 bytes
  EXPECT_EQ(loadError(build(past)),
            "m.gai: entry 'decode': step 3 (attention_grad): out_grad reaches 96 bytes at its "
            "strides, its buffer has 64");
  Options overlapping = grad;
  overlapping.gradStrides[5 * 3 + 2] = 2; // q_grad's rows over each other
  EXPECT_EQ(loadError(build(overlapping)),
            "m.gai: entry 'decode': step 3 (attention_grad): q_grad strides must be >= 0 "
            "between batches and >= the dim (4) between heads and rows");
  Options few = grad;
  few.gradStrides.resize(5);
  EXPECT_EQ(loadError(build(few)),
            "m.gai: entry 'decode': step 3 (attention_grad): strides has 5 values, not three "
            "for each of its 8 tensors");
}

TEST(Artifact, EmbeddingGradIsChecked) {
  Options scatter;
  scatter.embeddingGrad = true;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(scatter), "m.gai", ".").isOk());
  Options overlapping = scatter;
  overlapping.embeddingGradOut = 64; // the table's gradient over the rows' gradient
  EXPECT_EQ(loadError(build(overlapping)),
            "m.gai: entry 'decode': step 3 (embedding_grad): out overlaps grad or indices");
}

TEST(Artifact, GatedGemmIsChecked) {
  Options gated;
  gated.gate = true;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(gated), "m.gai", ".").isOk());
  const std::string error = "m.gai: entry 'decode': step 0 (gemm): a gated GEMM takes at "
                            "most 8 rows of A by weights stored [n, k] (transpose_b, k a "
                            "multiple of 8), an activation, and no bias or residual";
  Options withBias = gated;
  withBias.gateBias = true;
  EXPECT_EQ(loadError(build(withBias)), error);
  Options untransposed = gated;
  untransposed.gateTransposed = false;
  EXPECT_EQ(loadError(build(untransposed)), error);
  Options noActivation = gated;
  noActivation.gateActivation = fmt::Activation::None;
  EXPECT_EQ(loadError(build(noActivation)), error);
  Options manyRows = gated;
  manyRows.gemmRows = 9;
  EXPECT_EQ(loadError(build(manyRows)), error);
  Options oddK = gated;
  oddK.gemmK = 4;
  EXPECT_EQ(loadError(build(oddK)), error);
}

TEST(Artifact, SparseGemmIsChecked) {
  Options sparse;
  sparse.sparse = true;
  auto loaded = LoadedArtifact::fromBytes(build(sparse), "m.gai", ".");
  EXPECT_TRUE(loaded.isOk()) << loaded.status().message();
  Options shortMeta = sparse;
  shortMeta.sparseMetaBytes = 2;
  EXPECT_EQ(loadError(build(shortMeta)),
            "m.gai: entry 'decode': step 0 (gemm): b_meta needs 4 bytes, its buffer has 2");
  Options untransposed = sparse;
  untransposed.sparseTransposed = false;
  EXPECT_EQ(loadError(build(untransposed)),
            "m.gai: entry 'decode': step 0 (gemm): 2:4 weights are one matrix stored [n, k] "
            "(transpose_b, batch 1, k a multiple of 8) under f32 or bf16 a and c, without "
            "scales, zeros or group");
}

TEST(Artifact, SparseGatedGemmIsChecked) {
  Options gated;
  gated.sparse = gated.sparseGate = true;
  auto loaded = LoadedArtifact::fromBytes(build(gated), "m.gai", ".");
  EXPECT_TRUE(loaded.isOk()) << loaded.status().message();
  Options noGateMeta = gated;
  noGateMeta.sparseGateMeta = false;
  EXPECT_EQ(loadError(build(noGateMeta)),
            "m.gai: entry 'decode': step 0 (gemm): a 2:4 gated GEMM's gate takes gate_meta, "
            "and only a gate does");
}

TEST(Artifact, FoldedNormIsChecked) {
  Options makes, reads, both;
  makes.makesNorm = reads.readsNorm = both.makesNorm = both.readsNorm = true;
  for (const Options &o : {makes, reads, both})
    EXPECT_TRUE(LoadedArtifact::fromBytes(build(o), "m.gai", ".").isOk());
  const std::string error =
      "m.gai: entry 'decode': step 0 (gemm): a folded RMSNorm takes 1 to 8 rows of f32 or "
      "bf16 A by weights stored [n, k] (transpose_b, k a multiple of 8), batch 1, no gate "
      "where it makes the norm's input, norm_weight [n] of c's type, norm_out [m, n] of a's, "
      "f64 sums of squares [m] and an eps >= 0";
  for (Options o : {makes, reads}) {
    Options manyRows = o;
    manyRows.gemmRows = 9;
    manyRows.squaresBytes = 72;
    EXPECT_EQ(loadError(build(manyRows)), error);
    Options oddK = o;
    oddK.gemmK = 12;
    EXPECT_EQ(loadError(build(oddK)), error);
    Options f32Sums = o; // 4-byte sums: not the f64 the kernels add
    f32Sums.squaresBytes = 4;
    EXPECT_EQ(loadError(build(f32Sums)), error);
  }
  Options negativeEps = reads;
  negativeEps.normEps = -1.0f;
  EXPECT_EQ(loadError(build(negativeEps)), error);

  // Over an f32 residual stream (bf16 A, f32 C): the norm's weight is f32,
  // its output bf16.
  Options wide = makes;
  wide.normGemmType = fmt::DType::BF16;
  wide.wideC = true;
  wide.normOutRowBytes = 8;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(wide), "m.gai", ".").isOk());
  Options bf16Weight = wide;
  bf16Weight.normWeightBytes = 8;
  EXPECT_EQ(loadError(build(bf16Weight)), error);
  Options narrow = wide; // bf16 throughout: 8-byte weight and rows
  narrow.wideC = false;
  EXPECT_EQ(loadError(build(narrow)), error);
  narrow.normWeightBytes = 8;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(narrow), "m.gai", ".").isOk());
}

TEST(Artifact, WideCIsChecked) {
  const std::string error = "m.gai: entry 'decode': step 0 (gemm): wide_c (an f32 c and "
                            "residual) takes bf16 a and b, and no bias or gate";
  Options wide;
  wide.plainWide = true;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(wide), "m.gai", ".").isOk());
  Options withBias = wide;
  withBias.plainBias = true;
  EXPECT_EQ(loadError(build(withBias)), error);
  Options overF32 = wide; // the norm GEMM's f32 with wide_c
  overF32.plainWide = false;
  overF32.makesNorm = true;
  overF32.wideC = true;
  EXPECT_EQ(loadError(build(overF32)), error);
}

TEST(Artifact, CollectivesAreChecked) {
  Options o;
  o.allGather = true;
  o.mesh = {4, 1};
  auto gather = [](Options o) { return build(o); };
  EXPECT_TRUE(LoadedArtifact::fromBytes(gather(o), "m.gai", ".").isOk());
  Options noMesh = o;
  noMesh.mesh.clear();
  EXPECT_EQ(loadError(gather(noMesh)),
            "m.gai: entry 'decode': step 3 (all_gather): grid axis 0 is repeated or not an "
            "axis of the artifact's mesh of 0 axes");
  Options badAxis = o;
  badAxis.axes = {0, 0};
  EXPECT_EQ(loadError(gather(badAxis)),
            "m.gai: entry 'decode': step 3 (all_gather): grid axis 0 is repeated or not an "
            "axis of the artifact's mesh of 2 axes");
  Options tooMany = o;
  tooMany.gatherCount = 5; // 5 × 4 ranks × 4 bytes: past the 64-byte out
  EXPECT_EQ(loadError(gather(tooMany)),
            "m.gai: entry 'decode': step 3 (all_gather): input needs 20 bytes, its buffer has 16");
  Options badMesh = o;
  badMesh.mesh = {2, 0};
  EXPECT_EQ(loadError(gather(badMesh)),
            "m.gai: options.mesh: expected at most 8 positive axes of at most 2^20 ranks in all");
}

TEST(Artifact, TensorParallelSlicesAreChecked) {
  Options o;
  o.rankOffsets = {0, 0};
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(o), "m.gai", ".").isOk());
  o.rankOffsets = {0, 64}; // 64 + 256 bytes: past the 256 of weights
  EXPECT_EQ(loadError(build(o)), "m.gai: weights: tensor 'w': a rank's slice at 64 falls "
                                 "outside the weights' 256 bytes");
  o.rankOffsets = {-8};
  EXPECT_EQ(loadError(build(o)), "m.gai: weights: tensor 'w': a rank's slice at -8 falls "
                                 "outside the weights' 256 bytes");
}

// A weight's tensor-parallel split: its blocks over the mesh's tp ranks,
// or over tp / tp_replicas groups of ranks that share a block (KV heads).
TEST(Artifact, TensorParallelSplitsAreChecked) {
  Options o;
  o.mesh = {1, 2};
  o.tpSplit = true;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(o), "m.gai", ".").isOk());
  Options shared = o;
  shared.tpRows = 8;
  shared.tpUnits = 1;
  shared.tpReplicas = 2; // one block, both ranks
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(shared), "m.gai", ".").isOk());
  Options tooMany = o;
  tooMany.tpReplicas = 2; // 2 blocks × 2 ranks each is 4 ranks, not 2
  EXPECT_EQ(loadError(build(tooMany)),
            "m.gai: weights: tensor 'w': tp_segments: expected ordered segments of "
            "tp / tp_replicas × tp_keep blocks");
  Options none = o;
  none.tpReplicas = 0;
  EXPECT_EQ(loadError(build(none)),
            "m.gai: weights: tensor 'w': tp_axis, tp_keep or tp_replicas is out of range");
}

TEST(Artifact, VocabularyShardsAreChecked) {
  Options o;
  o.embedding = true;
  o.mesh = {1, 2};
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(o), "m.gai", ".").isOk());
  o.embeddingShards = 2;
  o.embeddingAxes = 1u << 1;
  EXPECT_TRUE(LoadedArtifact::fromBytes(build(o), "m.gai", ".").isOk());
  Options wrongCount = o;
  wrongCount.embeddingShards = 4;
  EXPECT_EQ(loadError(build(wrongCount)),
            "m.gai: entry 'decode': step 3 (embedding): row_shards 4 is not the size of its "
            "group along row_shard_axes (2)");
  Options noAxis = o;
  noAxis.embeddingAxes = 1u << 2;
  EXPECT_EQ(loadError(build(noAxis)),
            "m.gai: entry 'decode': step 3 (embedding): row_shard_axes names axis 2, not an "
            "axis of the artifact's mesh of 2 axes");
}

TEST(Artifact, ExternalWeightsAreChecked) {
  std::string dir = ::testing::TempDir();
  std::vector<uint8_t> data(256, 3);
  {
    std::ofstream out(dir + "/w.bin", std::ios::binary);
    out.write(reinterpret_cast<const char *>(data.data()), data.size());
  }
  Options o;
  o.externalWeights = true;
  o.externalChecksum = checksum64(data.data(), data.size());
  auto loaded = LoadedArtifact::fromBytes(build(o), "m.gai", dir);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(loaded->weightsSize(), 256);
  EXPECT_EQ(loaded->weights()[0], 3);

  Options wrongSum = o;
  wrongSum.externalChecksum ^= 1;
  EXPECT_NE(loadError(build(wrongSum), dir).find("do not match the "
                                                 "artifact's checksum"),
            std::string::npos);
  Options wrongSize = o;
  wrongSize.externalSize = 257;
  EXPECT_NE(loadError(build(wrongSize), dir).find("have 256 bytes, the "
                                                  "artifact expects 257"),
            std::string::npos);
  EXPECT_NE(loadError(build(o), "/nonexistent").find("external weights: "),
            std::string::npos);
}

TEST(Artifact, AFifoIsRefusedNotRead) {
  // Read whole, a FIFO would block the loader until a writer came.
  std::string fifo = ::testing::TempDir() + "/artifact.fifo";
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto loaded = LoadedArtifact::load(fifo);
  ASSERT_FALSE(loaded.isOk());
  EXPECT_NE(loaded.status().message().find("expected a regular file"), std::string::npos)
      << loaded.status().message();
  std::remove(fifo.c_str());
}

TEST(Artifact, MissingFile) {
  auto loaded = LoadedArtifact::load("/nonexistent/m.gai");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_EQ(loaded.status().message(),
            "/nonexistent/m.gai: cannot open: No such file or directory");
}

} // namespace
