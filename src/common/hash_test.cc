#include "common/hash.h"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

namespace cinch {
namespace {

constexpr int kKeys = 100'000;

std::vector<uint64_t> HashesOfSequentialKeys() {
  std::vector<uint64_t> hashes;
  hashes.reserve(kKeys);
  for (int i = 0; i < kKeys; ++i) hashes.push_back(HashKey("key:" + std::to_string(i)));
  return hashes;
}

// Pearson's chi-square statistic of `counts` against a uniform distribution.
template <size_t N>
double ChiSquare(const std::array<int, N>& counts, int total) {
  double expected = static_cast<double>(total) / N;
  double chi = 0;
  for (int c : counts) chi += (c - expected) * (c - expected) / expected;
  return chi;
}

TEST(HashKeyTest, IsDeterministic) {
  std::string owned = "user:42";
  EXPECT_EQ(HashKey("user:42"), HashKey(owned));
  EXPECT_EQ(HashKey(owned), HashKey(std::string_view(owned)));
  EXPECT_EQ(HashKey(""), HashKey(std::string_view()));
}

TEST(HashKeyTest, IsXxh3) {
  // The index layout (docs/index.md) is defined over XXH3-64 with no seed; pin it.
  EXPECT_EQ(HashKey(""), uint64_t{0x2D06800538D394C2});
  std::string key = "cinch";
  EXPECT_EQ(HashKey(key), XXH3_64bits(key.data(), key.size()));
}

TEST(HashKeyTest, KeyspaceZeroIsThePlainHashAndOthersDiffer) {
  std::string key = "cinch";
  EXPECT_EQ(HashKey(key, 0), HashKey(key));
  std::unordered_set<uint64_t> seen{HashKey(key)};
  for (uint16_t ks = 1; ks < 64; ++ks) {
    EXPECT_TRUE(seen.insert(HashKey(key, ks)).second) << "keyspace " << ks;
  }
  // Spread over shards differently: low bits of keyspace 1 and 2 are not keyspace 0's.
  int same_shard = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string k = "key:" + std::to_string(i);
    same_shard += (HashKey(k, 1) & 63) == (HashKey(k) & 63);
  }
  EXPECT_LT(same_shard, 100);  // ~16 expected from independent hashes
}

TEST(HashKeyTest, HashesOnlyTheViewedBytes) {
  std::string buffer = "abcdef";
  EXPECT_EQ(HashKey(std::string_view(buffer).substr(0, 3)), HashKey("abc"));
  EXPECT_NE(HashKey(std::string_view(buffer).substr(0, 3)), HashKey(buffer));
}

TEST(HashKeyTest, BinaryKeysWithNulBytes) {
  std::string a("a\0b", 3);
  std::string b("a\0c", 3);
  std::string zeros1(1, '\0');
  std::string zeros2(2, '\0');
  EXPECT_NE(HashKey(a), HashKey("a"));
  EXPECT_NE(HashKey(a), HashKey(b));
  EXPECT_NE(HashKey(zeros1), HashKey(zeros2));
  EXPECT_NE(HashKey(zeros1), HashKey(""));
}

TEST(HashKeyTest, DifferentKeysDiffer) {
  std::vector<uint64_t> hashes = HashesOfSequentialKeys();
  std::unordered_set<uint64_t> distinct(hashes.begin(), hashes.end());
  // 100k keys in 64 bits: a collision has probability ~3e-10; the set is fixed, so no flakes.
  EXPECT_EQ(distinct.size(), hashes.size());
}

TEST(HashKeyTest, LowBitsSpreadOverShards) {
  std::array<int, 64> shards{};
  for (uint64_t h : HashesOfSequentialKeys()) ++shards[h & 63];
  // 63 degrees of freedom: mean 63, sd ~11. A bound of 150 is ~7.8 sd out.
  EXPECT_LT(ChiSquare(shards, kKeys), 150.0);
  for (int c : shards) {
    EXPECT_GT(c, kKeys / 64 * 8 / 10);
    EXPECT_LT(c, kKeys / 64 * 12 / 10);
  }
}

TEST(HashKeyTest, HighBitsSpreadOverTags) {
  std::vector<uint64_t> hashes = HashesOfSequentialKeys();
  // The top 6 bits pick the home bucket in a 64-bucket shard.
  std::array<int, 64> top{};
  for (uint64_t h : hashes) ++top[h >> 58];
  EXPECT_LT(ChiSquare(top, kKeys), 150.0);
  // 21-bit tags: 100k keys in 2^21 values leave ~97.7k distinct tags.
  std::unordered_set<uint32_t> tags;
  for (uint64_t h : hashes) tags.insert(static_cast<uint32_t>(h >> 43));
  EXPECT_GT(tags.size(), 95'000u);
}

TEST(HashKeyTest, ShardAndTagBitsAreIndependent) {
  // Joint distribution of 64 shards x 8 tag classes: 511 degrees of freedom, sd ~32.
  std::array<int, 512> cells{};
  for (uint64_t h : HashesOfSequentialKeys()) ++cells[(h & 63) * 8 + (h >> 61)];
  EXPECT_LT(ChiSquare(cells, kKeys), 800.0);
}

TEST(HashKeyTest, OneBitFlipAvalanches) {
  // Flipping one key bit changes about half the hash bits on average.
  double total_changed = 0;
  int samples = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string key = "k" + std::to_string(i * 7919);
    uint64_t base = HashKey(key);
    for (size_t byte = 0; byte < key.size(); ++byte) {
      std::string flipped = key;
      flipped[byte] = static_cast<char>(flipped[byte] ^ (1 << (i % 8)));
      uint64_t h = HashKey(flipped);
      EXPECT_NE(h, base);
      total_changed += std::popcount(h ^ base);
      ++samples;
    }
  }
  double mean = total_changed / samples;
  EXPECT_GT(mean, 30.0);
  EXPECT_LT(mean, 34.0);
}

}  // namespace
}  // namespace cinch
