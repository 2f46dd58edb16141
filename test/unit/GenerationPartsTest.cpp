// The runtime's pieces around generation: sampling, the byte tokenizer and
// the layout kernels the plan calls.
#include "gai/FloatConvert.h"
#include "gai/Generate.h"
#include "gai/Tokenizer.h"
#include "hal/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <vector>

using namespace gai;

namespace {

TEST(Sampler, GreedyIsTheFirstLargest) {
  Sampler sampler({});
  float logits[] = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(sampler.sample(logits, 4), 1);
}

TEST(Sampler, GreedyOverAVocabularyMatchesMaxElement) {
  // Rows longer than the pick's lanes, with ties in different lanes, NaNs
  // and a tail past the last full lane group.
  Sampler sampler({});
  for (int64_t vocab : {1, 15, 16, 17, 1000, 32003}) {
    std::vector<float> logits(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i)
      logits[i] = static_cast<float>((i * 7919) % 997) * 0.01f;
    if (vocab > 17) {
      logits[3] = NAN;
      logits[vocab - 1] = 50.0f; // in the tail
      logits[vocab / 2] = 50.0f;  // the first of the tied largest
    }
    int64_t expected = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[i] > logits[expected])
        expected = i;
    EXPECT_EQ(sampler.sample(logits.data(), vocab), expected) << "vocab " << vocab;
  }
  // All NaN: nothing to pick (generate() reports it), not token 0.
  float allNan[] = {NAN, NAN, NAN};
  EXPECT_EQ(sampler.sample(allNan, 3), -1);
  float allMasked[] = {-INFINITY, -INFINITY, -INFINITY};
  EXPECT_EQ(sampler.sample(allMasked, 3), 0);
}

TEST(FloatConvert, EveryPairMatchesTheElementConversions) {
  // Rounding cases, f16 subnormals and overflow, infinities and a NaN.
  const std::vector<float> values = {0.0f,     -0.0f,     1.0f,      -2.5f,    1.00390625f,
                                     3.1e-5f,  6e-8f,     70000.0f,  1e-40f,   INFINITY,
                                     -INFINITY, NAN,      0.333333f, -65519.0f};
  const size_t n = values.size();
  std::vector<uint16_t> bf16(n), f16(n);
  ASSERT_TRUE(convertFloats(values.data(), DType::F32, bf16.data(), DType::BF16, n));
  ASSERT_TRUE(convertFloats(values.data(), DType::F32, f16.data(), DType::F16, n));
  std::vector<float> back(n);
  std::vector<uint16_t> across(n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(bf16[i], floatToBf16(values[i])) << i;
    EXPECT_EQ(f16[i], floatToF16(values[i])) << i;
  }
  ASSERT_TRUE(convertFloats(bf16.data(), DType::BF16, back.data(), DType::F32, n));
  for (size_t i = 0; i < n; ++i) {
    float expected = bf16ToFloat(bf16[i]);
    EXPECT_EQ(std::memcmp(&back[i], &expected, 4), 0) << i;
  }
  ASSERT_TRUE(convertFloats(f16.data(), DType::F16, back.data(), DType::F32, n));
  for (size_t i = 0; i < n; ++i) {
    float expected = f16ToFloat(f16[i]);
    EXPECT_EQ(std::memcmp(&back[i], &expected, 4), 0) << i;
  }
  ASSERT_TRUE(convertFloats(f16.data(), DType::F16, across.data(), DType::BF16, n));
  for (size_t i = 0; i < n; ++i)
    EXPECT_EQ(across[i], floatToBf16(f16ToFloat(f16[i]))) << i;
  ASSERT_TRUE(convertFloats(bf16.data(), DType::BF16, across.data(), DType::F16, n));
  for (size_t i = 0; i < n; ++i)
    EXPECT_EQ(across[i], floatToF16(bf16ToFloat(bf16[i]))) << i;
  // The same format copies bit for bit, in place too.
  std::vector<uint16_t> copy = bf16;
  ASSERT_TRUE(convertFloats(copy.data(), DType::BF16, copy.data(), DType::BF16, n));
  EXPECT_EQ(copy, bf16);
  EXPECT_FALSE(canConvertFloats(DType::I32, DType::F32));
}

TEST(Sampler, TopKOfOneAndTinyTopPAreGreedy) {
  float logits[] = {0.1f, 0.3f, 3.0f, 0.2f};
  SamplingOptions k1{1.0f, 1, 1.0f, 5};
  SamplingOptions p{1.0f, 0, 1e-6f, 5};
  Sampler a(k1), b(p);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.sample(logits, 4), 2);
    EXPECT_EQ(b.sample(logits, 4), 2);
  }
}

TEST(Sampler, RepetitionPenaltyAsHuggingFaceDefinesIt) {
  // Seen tokens: positive logits divided, negative multiplied, once each
  // however often they were seen; the rest untouched.
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f};
  applyRepetitionPenalty(logits.data(), 4, {0, 1, 0}, {1, 1}, 2.0f);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -2.0f, 0.5f, 3.0f}));
  std::vector<float> same = {2.0f, -1.0f};
  applyRepetitionPenalty(same.data(), 2, {0, 1, 7}, {}, 1.0f); // ids past vocab ignored
  EXPECT_EQ(same, (std::vector<float>{2.0f, -1.0f}));
}

TEST(Sampler, MinPDropsTokensLessLikelyThanAFractionOfTheLikeliest) {
  // Probabilities 0.1, 0.2, 0.3, 0.4: min_p 0.6 keeps what reaches 0.24
  // (0.3 and 0.4), in the ratio 3 : 4.
  float logits[] = {0.0f, 0.6931472f, 1.0986123f, 1.3862944f};
  SamplingOptions options{1.0f, 0, 1.0f, 7, 0.6f};
  Sampler sampler(options);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i)
    ++counts[sampler.sample(logits, 4)];
  EXPECT_EQ(counts[0] + counts[1], 0);
  EXPECT_NEAR(counts[3] / double(n), 4.0 / 7.0, 0.015);
  SamplingOptions all{1.0f, 0, 1.0f, 7, 1.0f}; // only the likeliest
  Sampler top(all);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(top.sample(logits, 4), 3);
}

TEST(Sampler, FollowsTheSoftmaxAndRepeatsForASeed) {
  // log(1), log(2), log(3), log(4): probabilities 0.1 … 0.4.
  float logits[] = {0.0f, 0.6931472f, 1.0986123f, 1.3862944f};
  SamplingOptions options{1.0f, 0, 1.0f, 42};
  Sampler sampler(options), again(options);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    int32_t t = sampler.sample(logits, 4);
    EXPECT_EQ(t, again.sample(logits, 4));
    ++counts[t];
  }
  for (int t = 0; t < 4; ++t)
    EXPECT_NEAR(counts[t] / double(n), 0.1 * (t + 1), 0.015) << t;
}

TEST(Sampler, TopPKeepsTheSmallestSetWithTheMass) {
  float logits[] = {0.0f, 0.6931472f, 1.0986123f, 1.3862944f};
  // 0.4 + 0.3 >= 0.6: only tokens 3 and 2 remain.
  Sampler sampler({1.0f, 0, 0.6f, 3});
  for (int i = 0; i < 500; ++i) {
    int32_t t = sampler.sample(logits, 4);
    EXPECT_TRUE(t == 2 || t == 3) << t;
  }
}

TEST(Sampler, AnyTemperatureIsSafe) {
  float logits[] = {0.1f, 0.3f, 3.0f, 0.2f};
  // 1e-40 is a denormal: logits / T would be Inf, and Inf - Inf NaN.
  for (float t : {1e-40f, 1e-30f, 9e-6f}) {
    Sampler sampler({t, 0, 1.0f, 7});
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(sampler.sample(logits, 4), 2) << t;
  }
  float huge[] = {1.0f, 3e38f, NAN, 2e38f};
  Sampler sampler({1e-4f, 0, 1.0f, 7});
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(sampler.sample(huge, 4), 1);
  float nans[] = {NAN, 1.0f, NAN, 1.0f};
  Sampler tied({1.0f, 0, 1.0f, 7});
  for (int i = 0; i < 50; ++i) {
    int32_t t = tied.sample(nans, 4);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  float allNan[] = {NAN, NAN, NAN, NAN};
  EXPECT_EQ(tied.sample(allNan, 4), -1);
}

TEST(ByteTokenizer, RoundTripsAndRejectsBytesOutsideTheVocabulary) {
  ByteTokenizer tokenizer(256);
  auto ids = tokenizer.encode("hé!");
  ASSERT_TRUE(ids.isOk());
  EXPECT_EQ(ids->size(), 4u); // é is two bytes
  EXPECT_EQ(tokenizer.decode(*ids), "hé!");
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{300}), "<300>");
  auto small = ByteTokenizer(64).encode("a");
  ASSERT_FALSE(small.isOk());
  EXPECT_EQ(small.status().message(),
            "byte 97 at offset 0 of the prompt is outside the model's "
            "vocabulary of 64");
}

TEST(LayoutKernels, TransposeMatchesIndexArithmetic) {
  const int64_t shape[] = {2, 3, 4, 5}, perm[] = {0, 2, 1, 3};
  std::vector<float> in(120), out(120);
  for (int i = 0; i < 120; ++i)
    in[i] = float(i);
  cpu::transpose(in.data(), out.data(), 4, shape, perm, 4);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 4; ++b)
      for (int c = 0; c < 3; ++c)
        for (int d = 0; d < 5; ++d)
          EXPECT_EQ(out[((a * 4 + b) * 3 + c) * 5 + d],
                    in[((a * 3 + c) * 4 + b) * 5 + d]);
  // Moving the last dimension: element by element.
  const int64_t perm2[] = {3, 2, 1, 0};
  cpu::transpose(in.data(), out.data(), 4, shape, perm2, 4);
  EXPECT_EQ(out[1], in[5 * 4 * 3]);     // [0,0,0,1] <- in[1,0,0,0]
  EXPECT_EQ(out[2 * 4 * 3 * 1], in[1]); // [1,0,0,0] <- in[0,0,0,1]
}

TEST(LayoutKernels, SliceTopKOneHotReduce) {
  const int64_t shape[] = {2, 6}, offsets[] = {0, 2}, sizes[] = {2, 3};
  float in[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, out[6];
  cpu::slice(in, out, 4, shape, offsets, sizes, 2);
  EXPECT_EQ(std::vector<float>(out, out + 6), (std::vector<float>{2, 3, 4, 8, 9, 10}));

  float scores[] = {0.1f, 0.7f, 0.7f, 0.2f};
  float values[2];
  int32_t indices[2];
  cpu::topk(scores, 1, 4, 2, values, indices);
  EXPECT_EQ(indices[0], 1); // ties go to the lower index
  EXPECT_EQ(indices[1], 2);

  int32_t ids[] = {2, 0};
  float hot[6];
  EXPECT_EQ(cpu::oneHot(ids, 2, 3, hot), -1);
  EXPECT_EQ(std::vector<float>(hot, hot + 6), (std::vector<float>{0, 0, 1, 1, 0, 0}));
  int32_t bad[] = {1, 3};
  EXPECT_EQ(cpu::oneHot(bad, 2, 3, hot), 1);
  // Classes 3..5 of 9: index 3 is this shard's first, index 1 another's.
  int32_t sharded[] = {3, 1};
  EXPECT_EQ(cpu::oneHot(sharded, 2, 3, hot, 3, 9), -1);
  EXPECT_EQ(std::vector<float>(hot, hot + 6), (std::vector<float>{1, 0, 0, 0, 0, 0}));
  int32_t past[] = {3, 9};
  EXPECT_EQ(cpu::oneHot(past, 2, 3, hot, 3, 9), 1);

  float x[] = {1, 2, 3, 4, 5, 6}, sum[3], max[2];
  cpu::reduce(x, sum, cpu::ReduceKind::Sum, 1, 2, 3); // [2, 3] over dim 0
  EXPECT_EQ(std::vector<float>(sum, sum + 3), (std::vector<float>{5, 7, 9}));
  cpu::reduce(x, max, cpu::ReduceKind::Max, 2, 3, 1); // [2, 3] over dim 1
  EXPECT_EQ(std::vector<float>(max, max + 2), (std::vector<float>{3, 6}));
}

} // namespace
