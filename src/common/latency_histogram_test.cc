#include "common/latency_histogram.h"

#include <gtest/gtest.h>

#include <thread>

namespace cinch {
namespace {

TEST(LatencyHistogram, BucketBoundsAreInclusivePowersOfTwoMicroseconds) {
  EXPECT_EQ(LatencyHistogram::BucketOf(0), 0);
  EXPECT_EQ(LatencyHistogram::BucketOf(1), 0);
  EXPECT_EQ(LatencyHistogram::BucketOf(1000), 0);  // le 1 µs
  EXPECT_EQ(LatencyHistogram::BucketOf(1001), 1);  // le 2 µs
  EXPECT_EQ(LatencyHistogram::BucketOf(2000), 1);
  EXPECT_EQ(LatencyHistogram::BucketOf(2001), 2);  // le 4 µs
  EXPECT_EQ(LatencyHistogram::BucketOf(4000), 2);
  EXPECT_EQ(LatencyHistogram::BucketOf(4001), 3);
  EXPECT_EQ(LatencyHistogram::BucketOf(1'000'000), 10);  // 1 ms <= 1024 µs
  EXPECT_EQ(LatencyHistogram::BucketOf(1'048'576'000), 20);
  EXPECT_EQ(LatencyHistogram::BucketOf(1'048'576'001), LatencyHistogram::kBounds);
  EXPECT_EQ(LatencyHistogram::BucketOf(UINT64_MAX), LatencyHistogram::kBounds);
  // Every latency lies within its bucket's bound and above the one before.
  for (uint64_t ns = 0; ns < 5'000'000; ns += 997) {
    const int i = LatencyHistogram::BucketOf(ns);
    EXPECT_LE(static_cast<double>(ns) / 1e9, LatencyHistogram::BoundSeconds(i));
    if (i > 0) {
      EXPECT_GT(static_cast<double>(ns) / 1e9, LatencyHistogram::BoundSeconds(i - 1));
    }
  }
}

TEST(LatencyHistogram, BoundsInSeconds) {
  EXPECT_EQ(LatencyHistogram::BoundSeconds(0), 1e-6);
  EXPECT_EQ(LatencyHistogram::BoundSeconds(1), 2e-6);
  EXPECT_EQ(LatencyHistogram::BoundSeconds(20), 1.048576);
}

TEST(LatencyHistogram, SnapshotAddsCountsAndSums) {
  LatencyHistogram a, b;
  a.Record(500);
  a.Record(1500);
  b.Record(1500);
  b.Record(5'000'000'000);
  LatencySnapshot s;
  s.Add(a);
  s.Add(b);
  EXPECT_EQ(s.counts[0], 1u);
  EXPECT_EQ(s.counts[1], 2u);
  EXPECT_EQ(s.counts[LatencyHistogram::kBounds], 1u);
  EXPECT_EQ(s.count(), 4u);
  EXPECT_EQ(s.sum_nanos, 500u + 1500 + 1500 + 5'000'000'000);
}

// One recording thread, one reading: counts never go down and end exact (TSan checks the rest).
TEST(LatencyHistogram, ReadWhileRecording) {
  LatencyHistogram h;
  constexpr int kRecords = 200'000;
  std::thread writer([&] {
    for (int i = 0; i < kRecords; ++i) h.Record(static_cast<uint64_t>(i % 3000));
  });
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    LatencySnapshot s;
    s.Add(h);
    EXPECT_GE(s.count(), last);
    last = s.count();
  }
  writer.join();
  LatencySnapshot s;
  s.Add(h);
  EXPECT_EQ(s.count(), static_cast<uint64_t>(kRecords));
}

}  // namespace
}  // namespace cinch
