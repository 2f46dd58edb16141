// The order of attention's backward key-side blocks (KeyBlockOrder.h): every
// order visits each block once, head after head and longest first are its
// ends, and a group runs its heaviest blocks before its lighter ones.
#include "hal/cuda/KeyBlockOrder.h"

#include <gtest/gtest.h>

#include <set>
#include <utility>

using gai::cuda::keyBlockGroups;
using gai::cuda::keyBlockOf;

TEST(KeyBlockOrder, EveryBlockOnceInEveryGrouping) {
  for (int pairs : {1, 3, 7, 128, 192})
    for (int keyBlocks : {1, 2, 16})
      for (int groups = 1; groups <= pairs; groups += std::max(1, pairs / 9)) {
        std::set<std::pair<int, int>> seen;
        for (int linear = 0; linear < pairs * keyBlocks; ++linear) {
          const auto block = keyBlockOf(linear, keyBlocks, pairs, groups);
          ASSERT_GE(block.index, 0);
          ASSERT_LT(block.index, keyBlocks);
          ASSERT_GE(block.pair, 0);
          ASSERT_LT(block.pair, pairs);
          seen.insert({block.pair, block.index});
        }
        EXPECT_EQ(seen.size(), static_cast<size_t>(pairs * keyBlocks))
            << pairs << " pairs, " << keyBlocks << " key blocks, " << groups
            << " groups";
      }
}

TEST(KeyBlockOrder, OneGroupAPairIsHeadAfterHead) {
  for (int linear = 0; linear < 7 * 5; ++linear) {
    const auto block = keyBlockOf(linear, 5, 7, 7);
    EXPECT_EQ(block.pair, linear / 5);
    EXPECT_EQ(block.index, linear % 5);
  }
}

TEST(KeyBlockOrder, OneGroupIsLongestFirstOverAllPairs) {
  for (int linear = 0; linear < 7 * 5; ++linear) {
    const auto block = keyBlockOf(linear, 5, 7, 1);
    EXPECT_EQ(block.index, linear / 7);
    EXPECT_EQ(block.pair, linear % 7);
  }
}

TEST(KeyBlockOrder, GroupsOfUnevenSizesRunInTurnLongestFirst) {
  // 10 pairs in 3 groups: [0, 3), [3, 6), [6, 10).
  const int pairs = 10, keyBlocks = 4, groups = 3;
  int lastGroupStart = 0, lastIndex = 0, lastPair = -1;
  for (int linear = 0; linear < pairs * keyBlocks; ++linear) {
    const auto block = keyBlockOf(linear, keyBlocks, pairs, groups);
    const int start = block.pair < 3 ? 0 : block.pair < 6 ? 3 : 6;
    EXPECT_GE(start, lastGroupStart)
        << "block " << linear << " went back a group";
    if (start == lastGroupStart && linear > 0) {
      // Within a group: key blocks never go back, pairs rise within one.
      EXPECT_GE(block.index, lastIndex) << "block " << linear;
      if (block.index == lastIndex)
        EXPECT_EQ(block.pair, lastPair + 1) << "block " << linear;
    } else if (linear > 0) {
      EXPECT_EQ(block.index, 0) << "a group starts with its heaviest blocks";
      EXPECT_EQ(block.pair, start);
    }
    lastGroupStart = start, lastIndex = block.index, lastPair = block.pair;
  }
  EXPECT_EQ(lastGroupStart, 6);
  EXPECT_EQ(lastIndex, keyBlocks - 1) << "the lightest blocks come last";
}

TEST(KeyBlockOrder, GroupsFollowTheSpreadUnderACausalMask) {
  // llama-1b's shape: 4 × 32 pairs, 16 key blocks, 264 blocks held.
  EXPECT_EQ(keyBlockGroups(128, 16, 264, 2.0f, true), 3);
  EXPECT_EQ(keyBlockGroups(128, 16, 264, 1.0f, true), 7);
  EXPECT_EQ(keyBlockGroups(128, 16, 264, 0.0f, true), 128)
      << "0: head after head";
  EXPECT_EQ(keyBlockGroups(128, 16, 264, 2.0f, false), 128)
      << "even work: head after head";
  EXPECT_EQ(keyBlockGroups(128, 16, 264, 1e6f, true), 1)
      << "at least one group";
  EXPECT_EQ(keyBlockGroups(4, 1, 264, 1e-6f, true), 4) << "at most one a pair";
}
