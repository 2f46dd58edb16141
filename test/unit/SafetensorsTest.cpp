// The safetensors reader: valid files, and every malformed header we reject.
#include "gai/Safetensors.h"
#include "SafetensorsImage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

using gai::DType;
using gai::SafetensorsFile;

namespace {

std::vector<uint8_t> image(const std::string &header, size_t dataBytes,
                           uint64_t claimedLength = UINT64_MAX) {
  return gai::test::safetensorsImage(header, dataBytes, claimedLength);
}

gai::StatusOr<SafetensorsFile> parse(const std::vector<uint8_t> &bytes) {
  return SafetensorsFile::fromBytes(bytes.data(), bytes.size(), "t.st");
}

std::string errorOf(const std::string &header, size_t dataBytes) {
  auto file = parse(image(header, dataBytes));
  EXPECT_FALSE(file.isOk()) << "accepted: " << header;
  return file.isOk() ? "" : file.status().message();
}

TEST(Safetensors, ReadsTensorsInOffsetOrder) {
  auto file =
      parse(image(R"({"__metadata__":{"format":"pt"},)"
                  R"("b":{"dtype":"BF16","shape":[2,3],"data_offsets":[8,20]},)"
                  R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                  20));
  ASSERT_TRUE(file.isOk()) << file.status().message();
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->tensors()[0].name, "a");
  EXPECT_EQ(file->tensors()[1].name, "b");
  const gai::TensorView *b = file->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::BF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->numElements(), 6);
  EXPECT_EQ(b->byteSize, 12u);
  EXPECT_EQ(b->data[0], 8); // data bytes count up from 0
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->find("c"), nullptr);
}

TEST(Safetensors, AcceptsScalarsEmptyTensorsAndPadding) {
  auto file = parse(
      image(R"({"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]},)"
            R"("e":{"dtype":"I8","shape":[0,5],"data_offsets":[4,4]}}    )",
            4));
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->find("s")->numElements(), 1);
  EXPECT_EQ(file->find("e")->byteSize, 0u);
}

TEST(Safetensors, OpensTheLlamaFixture) {
  auto file = SafetensorsFile::open(GAI_FIXTURES_DIR
                                    "/hf/llama-tiny/model.safetensors");
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->tensors().size(), 21u);
  const gai::TensorView *q =
      file->find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::F32);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{64, 64}));
  // The fixture's weights are N(0, 0.08): finite and not all zero.
  float sum = 0;
  for (int64_t i = 0; i < q->numElements(); ++i) {
    float v;
    std::memcpy(&v, q->data + 4 * i, 4);
    ASSERT_TRUE(std::isfinite(v));
    sum += v * v;
  }
  EXPECT_GT(sum, 1.0f);
}

TEST(Safetensors, MissingFile) {
  auto file = SafetensorsFile::open("/nonexistent/w.safetensors");
  ASSERT_FALSE(file.isOk());
  EXPECT_EQ(file.status().message(),
            "/nonexistent/w.safetensors: cannot open: No such file or "
            "directory");
}

TEST(Safetensors, RejectsShortFiles) {
  std::vector<uint8_t> bytes = {1, 2, 3};
  auto file = parse(bytes);
  ASSERT_FALSE(file.isOk());
  EXPECT_NE(file.status().message().find("t.st: too short"), std::string::npos);
}

TEST(Safetensors, RejectsHeaderLengthPastTheEnd) {
  auto file = parse(image("{}", 0, /*claimedLength=*/1000));
  ASSERT_FALSE(file.isOk());
  EXPECT_EQ(file.status().message(),
            "t.st: header length 1000 does not fit in the file of 10 bytes");
  // A length near 2^64 must not overflow the bounds check.
  auto huge = parse(image("{}", 0, /*claimedLength=*/UINT64_MAX - 4));
  EXPECT_FALSE(huge.isOk());
}

TEST(Safetensors, RejectsHeadersThatAreNotJsonObjects) {
  EXPECT_NE(errorOf("[1,2]", 0).find("header is not a JSON object"),
            std::string::npos);
  EXPECT_NE(errorOf("{\"a\":", 0).find("header is not valid JSON"),
            std::string::npos);
  EXPECT_NE(errorOf("", 0).find("header is not a JSON object"),
            std::string::npos);
}

TEST(Safetensors, RejectsUnknownDTypes) {
  std::string msg =
      errorOf(R"({"w":{"dtype":"F4","shape":[2],"data_offsets":[0,2]}})", 2);
  EXPECT_NE(msg.find("tensor 'w': unknown dtype 'F4' (expected one of F64, "
                     "F32"),
            std::string::npos)
      << msg;
}

TEST(Safetensors, RejectsBadShapes) {
  EXPECT_NE(
      errorOf(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)
          .find("'shape' entries must be non-negative integers"),
      std::string::npos);
  EXPECT_NE(
      errorOf(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4)
          .find("'shape' entries must be non-negative integers"),
      std::string::npos);
  EXPECT_NE(errorOf(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,)"
                    R"(4294967296],"data_offsets":[0,4]}})",
                    4)
                .find("is too large"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4)
                .find("'shape' is missing"),
            std::string::npos);
}

TEST(Safetensors, RejectsOffsetsOutOfBounds) {
  std::string msg =
      errorOf(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8);
  EXPECT_NE(msg.find("tensor 'w': data_offsets [0, 16] run past the data "
                     "section (8 bytes)"),
            std::string::npos)
      << msg;
  EXPECT_NE(
      errorOf(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4)
          .find("begin 4 is after end 0"),
      std::string::npos);
  EXPECT_NE(
      errorOf(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4)
          .find("must be [begin, end]"),
      std::string::npos);
}

TEST(Safetensors, RejectsSizeMismatch) {
  std::string msg =
      errorOf(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  EXPECT_NE(msg.find("data_offsets span 8 bytes but F32 [3] needs 12"),
            std::string::npos)
      << msg;
}

TEST(Safetensors, RejectsOverlapsGapsAndTrailingBytes) {
  std::string overlap =
      errorOf(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
              12);
  EXPECT_NE(overlap.find("tensor 'b' overlaps the tensor before it"),
            std::string::npos)
      << overlap;
  std::string gap =
      errorOf(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
              R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
              12);
  EXPECT_NE(gap.find("bytes 4 to 8 of the data section belong to no tensor"),
            std::string::npos)
      << gap;
  std::string trailing =
      errorOf(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 6);
  EXPECT_NE(trailing.find("2 trailing bytes"), std::string::npos) << trailing;
}

TEST(Safetensors, RejectsUnknownFieldsAndBadMetadata) {
  EXPECT_NE(errorOf(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],)"
                    R"("extra":1}})",
                    4)
                .find("unknown field 'extra'"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"__metadata__":{"k":1}})", 0)
                .find("'__metadata__' value of 'k' is not a string"),
            std::string::npos);
  EXPECT_NE(errorOf(R"({"a":[1]})", 0).find("entry must be an object"),
            std::string::npos);
}

TEST(Safetensors, DTypeTable) {
  EXPECT_EQ(gai::dtypeSize(DType::BF16), 2u);
  EXPECT_EQ(gai::dtypeSize(DType::F64), 8u);
  EXPECT_STREQ(gai::dtypeName(DType::F8E4M3), "F8_E4M3");
  EXPECT_TRUE(gai::isFloat(DType::F16));
  EXPECT_FALSE(gai::isFloat(DType::I8));
}

} // namespace

// A tensor at a time: the file reads back as what it was given (names,
// types, shapes, bytes, metadata, the data right behind the header), and a
// header completed after the data (a checkpoint's checksums) keeps its
// length. writeSafetensors is the same writer over tensors in memory.
TEST(SafetensorsStreamed, WritesTheTensorsItIsGiven) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> b = {7, 8, 9};
  auto bytesOf = [](const auto &v) {
    const auto *p = reinterpret_cast<const uint8_t *>(v.data());
    return std::vector<uint8_t>(p, p + v.size() * sizeof(v[0]));
  };
  const std::vector<std::vector<uint8_t>> data = {bytesOf(a), bytesOf(b)};
  std::vector<gai::TensorToWrite> tensors = {
      {"a", DType::F32, {2, 3}, data[0].data(), data[0].size()},
      {"b", DType::BF16, {3}, data[1].data(), data[1].size()}};
  const std::string dir = ::testing::TempDir();
  auto expectReadsBack = [&](const std::string &path) {
    auto file = SafetensorsFile::open(path);
    ASSERT_TRUE(file.isOk()) << file.status().message();
    EXPECT_EQ(file->metadata().at("k"), "v");
    ASSERT_EQ(file->tensors().size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      const gai::TensorView *t = file->find(tensors[i].name);
      ASSERT_NE(t, nullptr) << tensors[i].name;
      EXPECT_EQ(t->dtype, tensors[i].dtype);
      EXPECT_EQ(t->shape, tensors[i].shape);
      ASSERT_EQ(t->byteSize, data[i].size());
      EXPECT_EQ(std::memcmp(t->data, data[i].data(), data[i].size()), 0);
    }
    uint64_t headerBytes = 0;
    std::memcpy(&headerBytes, file->fileData(), 8);
    EXPECT_EQ(file->fileSize(), 8 + headerBytes + data[0].size() + data[1].size());
  };
  ASSERT_TRUE(
      gai::writeSafetensors(dir + "/once.safetensors", tensors, {{"k", "v"}})
          .isOk());
  expectReadsBack(dir + "/once.safetensors");
  std::vector<gai::TensorToWrite> layout = tensors;
  for (gai::TensorToWrite &t : layout)
    t.data = nullptr; // the layout's data is never read
  int reads = 0;
  auto source = [&](size_t i, std::vector<uint8_t> &bytes) {
    EXPECT_EQ(static_cast<int>(i), reads++) << "tensors are read in order";
    bytes = data[i];
    return gai::Status::ok();
  };
  ASSERT_TRUE(gai::writeSafetensorsStreamed(dir + "/streamed.safetensors",
                                            layout, {{"k", "v"}}, source)
                  .isOk());
  EXPECT_EQ(reads, 2);
  expectReadsBack(dir + "/streamed.safetensors");

  // Sealed: each tensor's size goes into a placeholder of the same width.
  reads = 0;
  auto seal = [&](size_t i, const std::vector<uint8_t> &bytes,
                  std::map<std::string, std::string> &metadata) {
    char text[5];
    std::snprintf(text, sizeof text, "%04zu", bytes.size());
    metadata["size." + layout[i].name] = text;
  };
  ASSERT_TRUE(gai::writeSafetensorsStreamed(
                  dir + "/sealed.safetensors", layout,
                  {{"size.a", "0000"}, {"size.b", "0000"}}, source, seal)
                  .isOk());
  auto sealed = SafetensorsFile::open(dir + "/sealed.safetensors");
  ASSERT_TRUE(sealed.isOk()) << sealed.status().message();
  EXPECT_EQ(sealed->metadata().at("size.a"), "0024");
  EXPECT_EQ(sealed->metadata().at("size.b"), "0006");
  ASSERT_NE(sealed->find("b"), nullptr);
  EXPECT_EQ(std::memcmp(sealed->find("b")->data, b.data(), 6), 0);
}

TEST(SafetensorsStreamed, RefusesAWrongSizeOrAHeaderThatGrows) {
  const std::string path = ::testing::TempDir() + "/refused.safetensors";
  std::remove(path.c_str());
  std::vector<gai::TensorToWrite> layout = {
      {"w", DType::F32, {4}, nullptr, 16}};
  auto shortSource = [](size_t, std::vector<uint8_t> &bytes) {
    bytes.assign(12, 0);
    return gai::Status::ok();
  };
  gai::Status s = gai::writeSafetensorsStreamed(path, layout, {}, shortSource);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(),
            path + ": tensor 'w' has 12 bytes where its shape needs 16");
  EXPECT_FALSE(std::ifstream(path).good()) << "a failed write leaves no file";

  auto source = [](size_t, std::vector<uint8_t> &bytes) {
    bytes.assign(16, 1);
    return gai::Status::ok();
  };
  auto growing = [](size_t, const std::vector<uint8_t> &,
                    std::map<std::string, std::string> &metadata) {
    metadata["note"] = "longer than it was";
  };
  s = gai::writeSafetensorsStreamed(path, layout, {{"note", "short"}}, source,
                                    growing);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("changed length"), std::string::npos)
      << s.message();
  EXPECT_FALSE(std::ifstream(path).good());
}
