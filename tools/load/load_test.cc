// Unit tests of cinch_load's pure parts: value derivation and checking, size and key
// distributions, the latency histogram, request encoding and reply parsing.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "load/histogram.h"
#include "load/protocol.h"
#include "load/workload.h"

namespace cinch::load {
namespace {

SizeDistribution Sizes(const char* spec) {
  SizeDistribution d;
  EXPECT_EQ(SizeDistribution::Parse(spec, &d), "");
  return d;
}

TEST(WorkloadTest, KeysAreFixedWidth) {
  char key[kKeyBytes];
  FormatKey(1234567, key);
  EXPECT_EQ(std::string_view(key, kKeyBytes), "cl:0001234567");
  FormatKey(0, key);
  EXPECT_EQ(std::string_view(key, kKeyBytes), "cl:0000000000");
}

TEST(WorkloadTest, SizesStayInTheirRanges) {
  SizeDistribution fixed = Sizes("fixed:100"), range = Sizes("uniform:200-250"),
                   mixed = Sizes("mixed");
  int small = 0;
  for (uint32_t k = 0; k < 10000; ++k) {
    EXPECT_EQ(fixed.SizeOf(k, 1), 100u);
    uint32_t r = range.SizeOf(k, 3);
    EXPECT_GE(r, 200u);
    EXPECT_LE(r, 250u);
    uint32_t m = mixed.SizeOf(k, 1);
    EXPECT_GE(m, 32u);
    EXPECT_LE(m, 4096u);
    small += m <= 256;
    EXPECT_EQ(mixed.SizeOf(k, 1), m);  // a pure function of (key, version)
  }
  EXPECT_NEAR(small / 10000.0, 0.6, 0.03);
  SizeDistribution bad;
  EXPECT_NE(SizeDistribution::Parse("fixed:4", &bad), "");
  EXPECT_NE(SizeDistribution::Parse("uniform:9-3", &bad), "");
}

TEST(WorkloadTest, ValuesCheckByteForByte) {
  SizeDistribution sizes = Sizes("uniform:12-300");
  ValueCodec codec(77, &sizes);
  for (uint32_t key = 0; key < 200; ++key) {
    std::string value(codec.SizeOf(key, 5), '\0');
    codec.Write(key, 5, value.data());
    uint32_t version = 0;
    const char* why = nullptr;
    ASSERT_TRUE(codec.Check(key, value, &version, &why)) << why;
    EXPECT_EQ(version, 5u);
    EXPECT_FALSE(codec.Check(key + 1, value, &version, &why));  // another key's value
    if (value.size() > 12) {
      value[value.size() - 1] ^= 1;  // one flipped bit in the tail
      EXPECT_FALSE(codec.Check(key, value, &version, &why));
    }
    EXPECT_FALSE(codec.Check(key, value.substr(0, 11), &version, &why));
  }
  std::string other(codec.SizeOf(3, 1), '\0');
  ValueCodec(78, &sizes).Write(3, 1, other.data());  // another run's nonce
  uint32_t version = 0;
  EXPECT_FALSE(codec.Check(3, other, &version, nullptr));
}

TEST(WorkloadTest, AltSizesFollowTheVersionBit) {
  SizeDistribution before = Sizes("fixed:100"), after = Sizes("fixed:130");
  ValueCodec codec(1, &before, &after);
  EXPECT_EQ(codec.SizeOf(9, 2), 100u);
  EXPECT_EQ(codec.SizeOf(9, 2 | ValueCodec::kAltSizes), 130u);
}

TEST(WorkloadTest, ZipfIsSkewedAndInRange) {
  KeyDistribution zipf, uniform;
  ASSERT_EQ(KeyDistribution::Parse("zipf:0.99", 100000, &zipf), "");
  ASSERT_EQ(KeyDistribution::Parse("uniform", 100000, &uniform), "");
  Rng rng(1);
  std::vector<int> hits(100000);
  for (int i = 0; i < 200000; ++i) {
    uint32_t k = zipf.Sample(rng);
    ASSERT_LT(k, 100000u);
    ++hits[k];
    ASSERT_LT(uniform.Sample(rng), 100000u);
  }
  int top = *std::max_element(hits.begin(), hits.end());
  EXPECT_GT(top, 200000 / 20);  // the hottest key of Zipf(0.99) over 1e5 keys: about 8 %
  KeyDistribution bad;
  EXPECT_NE(KeyDistribution::Parse("zipf:1.5", 10, &bad), "");
}

TEST(HistogramTest, PercentilesWithinTheBucketError) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.max(), 100000000u);
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.5)), 50e6, 50e6 / 64);
  EXPECT_NEAR(static_cast<double>(h.Percentile(0.99)), 99e6, 99e6 / 64);
  EXPECT_EQ(h.Percentile(1.0), h.max());
  Histogram other;
  other.Record(5);
  h.Merge(other);
  EXPECT_EQ(h.count(), 100001u);
  EXPECT_EQ(Histogram().Percentile(0.5), 0u);
}

TEST(ProtocolTest, MemcacheRequestsAndReplies) {
  char buf[256];
  EXPECT_EQ(std::string(buf, EncodeGet(Protocol::kMemcache, "k1", buf)), "get k1\r\n");
  EXPECT_EQ(std::string(buf, EncodeSetPrefix(Protocol::kMemcache, "k1", 5, buf)),
            "set k1 0 0 5\r\n");
  Reply r;
  std::string hit = "VALUE k1 0 5\r\nhello\r\nEND\r\nSTORED\r\n";
  EXPECT_EQ(ParseReply(Protocol::kMemcache, Op::kGet, hit, &r), 26);
  EXPECT_EQ(r.outcome, Outcome::kHit);
  EXPECT_EQ(r.value, "hello");
  EXPECT_EQ(r.key, "k1");
  EXPECT_EQ(ParseReply(Protocol::kMemcache, Op::kGet, hit.substr(0, 20), &r), 0);
  EXPECT_EQ(ParseReply(Protocol::kMemcache, Op::kGet, "END\r\n", &r), 5);
  EXPECT_EQ(r.outcome, Outcome::kMiss);
  EXPECT_EQ(ParseReply(Protocol::kMemcache, Op::kSet, "SERVER_ERROR out of memory\r\n", &r), 28);
  EXPECT_EQ(r.outcome, Outcome::kNotStored);
  EXPECT_EQ(ParseReply(Protocol::kMemcache, Op::kGet, "STORED\r\n", &r), -1);
}

TEST(ProtocolTest, RespRequestsAndReplies) {
  char buf[256];
  EXPECT_EQ(std::string(buf, EncodeGet(Protocol::kResp, "k1", buf)),
            "*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n");
  EXPECT_EQ(std::string(buf, EncodeSetPrefix(Protocol::kResp, "k1", 5, buf)),
            "*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$5\r\n");
  Reply r;
  EXPECT_EQ(ParseReply(Protocol::kResp, Op::kGet, "$5\r\nhello\r\n", &r), 11);
  EXPECT_EQ(r.value, "hello");
  EXPECT_EQ(ParseReply(Protocol::kResp, Op::kGet, "$5\r\nhel", &r), 0);
  EXPECT_EQ(ParseReply(Protocol::kResp, Op::kGet, "$-1\r\n", &r), 5);
  EXPECT_EQ(r.outcome, Outcome::kMiss);
  EXPECT_EQ(ParseReply(Protocol::kResp, Op::kSet, "-OOM no\r\n", &r), 9);
  EXPECT_EQ(r.outcome, Outcome::kNotStored);
  EXPECT_EQ(ParseReply(Protocol::kResp, Op::kDelete, ":1\r\n", &r), 4);
  EXPECT_EQ(r.outcome, Outcome::kDeleted);
  EXPECT_EQ(ParseReply(Protocol::kResp, Op::kFlush, "+OK\r\n", &r), 5);
  EXPECT_EQ(r.outcome, Outcome::kOk);
}

TEST(ProtocolTest, MemcacheBinaryRequestsAndReplies) {
  char buf[256];
  const std::string get(buf, EncodeGet(Protocol::kMemcacheBinary, "k1", buf));
  ASSERT_EQ(get.size(), 26u);
  EXPECT_EQ(static_cast<uint8_t>(get[0]), 0x80);
  EXPECT_EQ(get[1], 0x0c);  // getk
  EXPECT_EQ(get.substr(24), "k1");
  const std::string set(buf, EncodeSetPrefix(Protocol::kMemcacheBinary, "k1", 5, buf));
  ASSERT_EQ(set.size(), 24u + 8 + 2);
  EXPECT_EQ(set[4], 8);    // extras: flags, exptime
  EXPECT_EQ(set[11], 15);  // body: 8 + 2 + 5
  EXPECT_EQ(ValueTrailer(Protocol::kMemcacheBinary), "");
  // getk hit: extras (flags), key, value.
  std::string hit("\x81\x0c\x00\x02\x04\x00\x00\x00\x00\x00\x00\x0b", 12);
  hit += std::string(12, '\0') + std::string(4, '\0') + "k1hello";
  Reply r;
  EXPECT_EQ(ParseReply(Protocol::kMemcacheBinary, Op::kGet, hit, &r), 35);
  EXPECT_EQ(r.outcome, Outcome::kHit);
  EXPECT_EQ(r.key, "k1");
  EXPECT_EQ(r.value, "hello");
  EXPECT_EQ(ParseReply(Protocol::kMemcacheBinary, Op::kGet, hit.substr(0, 30), &r), 0);
  std::string miss("\x81\x0c\x00\x02\x00\x00\x00\x01\x00\x00\x00\x02", 12);
  miss += std::string(12, '\0') + "k1";
  EXPECT_EQ(ParseReply(Protocol::kMemcacheBinary, Op::kGet, miss, &r), 26);
  EXPECT_EQ(r.outcome, Outcome::kMiss);
  EXPECT_EQ(
      ParseReply(Protocol::kMemcacheBinary, Op::kGet, "get k1\r\n" + std::string(20, ' '), &r), -1);
}

}  // namespace
}  // namespace cinch::load
