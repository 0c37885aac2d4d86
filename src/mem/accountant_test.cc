#include "mem/accountant.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace cinch::mem {
namespace {

constexpr MemoryKind kAllKinds[] = {MemoryKind::kSegments, MemoryKind::kJumbo, MemoryKind::kIndex,
                                    MemoryKind::kMetadata, MemoryKind::kExternal};

size_t SumOfKinds(const Accountant& a) {
  size_t sum = 0;
  for (MemoryKind k : kAllKinds) sum += a.ByKind(k);
  return sum;
}

TEST(AccountantTest, StartsEmpty) {
  Accountant a(1000);
  EXPECT_EQ(a.limit(), 1000u);
  EXPECT_EQ(a.total(), 0u);
  EXPECT_EQ(a.Available(), 1000u);
  for (MemoryKind k : kAllKinds) EXPECT_EQ(a.ByKind(k), 0u);
}

TEST(AccountantTest, ChargesUpToExactlyTheLimit) {
  Accountant a(1000);
  EXPECT_TRUE(a.TryCharge(MemoryKind::kSegments, 600));
  EXPECT_EQ(a.total(), 600u);
  EXPECT_EQ(a.Available(), 400u);
  EXPECT_TRUE(a.TryCharge(MemoryKind::kSegments, 400));
  EXPECT_EQ(a.total(), 1000u);
  EXPECT_EQ(a.Available(), 0u);
  EXPECT_FALSE(a.TryCharge(MemoryKind::kSegments, 1));
  EXPECT_TRUE(a.TryCharge(MemoryKind::kSegments, 0));  // zero bytes stay within the limit
  EXPECT_EQ(a.total(), 1000u);
}

TEST(AccountantTest, RefusalChargesNothing) {
  Accountant a(100);
  ASSERT_TRUE(a.TryCharge(MemoryKind::kIndex, 60));
  EXPECT_FALSE(a.TryCharge(MemoryKind::kJumbo, 50));
  EXPECT_EQ(a.total(), 60u);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 0u);
  EXPECT_EQ(a.ByKind(MemoryKind::kIndex), 60u);
  EXPECT_TRUE(a.TryCharge(MemoryKind::kJumbo, 40));
  EXPECT_EQ(a.total(), 100u);
}

TEST(AccountantTest, RefusesMoreThanTheLimitWithoutOverflow) {
  Accountant a(100);
  EXPECT_FALSE(a.TryCharge(MemoryKind::kSegments, 101));
  EXPECT_FALSE(a.TryCharge(MemoryKind::kSegments, std::numeric_limits<size_t>::max()));
  ASSERT_TRUE(a.TryCharge(MemoryKind::kSegments, 10));
  // current + bytes would wrap around to a small number.
  EXPECT_FALSE(a.TryCharge(MemoryKind::kSegments, std::numeric_limits<size_t>::max() - 5));
  EXPECT_EQ(a.total(), 10u);

  Accountant huge(std::numeric_limits<size_t>::max());
  EXPECT_TRUE(huge.TryCharge(MemoryKind::kExternal, std::numeric_limits<size_t>::max() - 1));
  EXPECT_FALSE(huge.TryCharge(MemoryKind::kExternal, 2));
  EXPECT_TRUE(huge.TryCharge(MemoryKind::kExternal, 1));
  EXPECT_EQ(huge.Available(), 0u);
}

TEST(AccountantTest, TracksEachKind) {
  Accountant a(10'000);
  size_t bytes = 100;
  for (MemoryKind k : kAllKinds) {
    ASSERT_TRUE(a.TryCharge(k, bytes));
    bytes += 100;
  }
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), 100u);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 200u);
  EXPECT_EQ(a.ByKind(MemoryKind::kIndex), 300u);
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), 400u);
  EXPECT_EQ(a.ByKind(MemoryKind::kExternal), 500u);
  EXPECT_EQ(a.total(), 1500u);
  EXPECT_EQ(SumOfKinds(a), a.total());

  a.Release(MemoryKind::kIndex, 300);
  EXPECT_EQ(a.ByKind(MemoryKind::kIndex), 0u);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 200u);
  EXPECT_EQ(a.total(), 1200u);
  a.Release(MemoryKind::kSegments, 40);
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), 60u);
  EXPECT_EQ(a.total(), 1160u);
  EXPECT_EQ(SumOfKinds(a), a.total());
}

TEST(AccountantTest, ReleaseMakesRoomAgain) {
  Accountant a(100);
  ASSERT_TRUE(a.TryCharge(MemoryKind::kSegments, 100));
  EXPECT_FALSE(a.TryCharge(MemoryKind::kIndex, 30));
  a.Release(MemoryKind::kSegments, 30);
  EXPECT_EQ(a.Available(), 30u);
  EXPECT_TRUE(a.TryCharge(MemoryKind::kIndex, 30));
  EXPECT_EQ(a.Available(), 0u);
  a.Release(MemoryKind::kSegments, 70);
  a.Release(MemoryKind::kIndex, 30);
  EXPECT_EQ(a.total(), 0u);
  EXPECT_EQ(SumOfKinds(a), 0u);
}

TEST(AccountantTest, ForceChargeMayPassTheLimit) {
  Accountant a(100);
  a.ForceCharge(MemoryKind::kMetadata, 150);
  EXPECT_EQ(a.total(), 150u);
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), 150u);
  EXPECT_EQ(a.Available(), 0u);
  EXPECT_FALSE(a.TryCharge(MemoryKind::kSegments, 1));
  a.Release(MemoryKind::kMetadata, 100);
  EXPECT_EQ(a.Available(), 50u);
  EXPECT_TRUE(a.TryCharge(MemoryKind::kSegments, 50));
}

TEST(AccountantDeathTest, ReleasingMoreThanChargedCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Accountant a(100);
  ASSERT_TRUE(a.TryCharge(MemoryKind::kSegments, 10));
  EXPECT_DEATH(a.Release(MemoryKind::kSegments, 11), "CINCH_CHECK");
}

// Threads charge and release random amounts of random kinds while a watcher samples total().
TEST(AccountantTest, ConcurrentChargesNeverPassTheLimit) {
  constexpr size_t kLimit = 10'000;
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 100'000;
  Accountant a(kLimit);
  std::atomic<bool> done{false};
  std::atomic<bool> over_limit{false};
  std::atomic<uint64_t> refusals{0};
  std::atomic<uint64_t> charges{0};

  std::thread watcher([&] {
    while (!done.load(std::memory_order_relaxed)) {
      if (a.total() > kLimit) over_limit = true;
    }
  });

  // Each worker's still-charged bytes per kind, compared with ByKind after the join.
  std::vector<std::vector<size_t>> held(kThreads, std::vector<size_t>(std::size(kAllKinds)));
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      std::vector<std::pair<MemoryKind, size_t>> charged;
      for (int i = 0; i < kOpsPerThread; ++i) {
        if (charged.empty() || rng() % 2 == 0) {
          MemoryKind kind = kAllKinds[rng() % std::size(kAllKinds)];
          size_t bytes = 1 + rng() % 1500;
          if (a.TryCharge(kind, bytes)) {
            charged.emplace_back(kind, bytes);
            charges.fetch_add(1, std::memory_order_relaxed);
          } else {
            refusals.fetch_add(1, std::memory_order_relaxed);
          }
          if (a.total() > kLimit) over_limit = true;
        } else {
          size_t victim = rng() % charged.size();
          a.Release(charged[victim].first, charged[victim].second);
          charged[victim] = charged.back();
          charged.pop_back();
        }
      }
      // Leave half charged to compare per-kind totals, then the main thread releases them.
      for (size_t i = 0; i < charged.size(); ++i) {
        if (i % 2 == 0) {
          a.Release(charged[i].first, charged[i].second);
        } else {
          held[t][static_cast<int>(charged[i].first)] += charged[i].second;
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  done = true;
  watcher.join();

  EXPECT_FALSE(over_limit.load());
  EXPECT_GT(refusals.load(), 0u) << "the limit never bound; the test is too gentle";
  EXPECT_GT(charges.load(), 0u);
  size_t expected_total = 0;
  for (MemoryKind k : kAllKinds) {
    size_t expected = 0;
    for (int t = 0; t < kThreads; ++t) expected += held[t][static_cast<int>(k)];
    EXPECT_EQ(a.ByKind(k), expected);
    expected_total += expected;
  }
  EXPECT_EQ(a.total(), expected_total);
  for (MemoryKind k : kAllKinds) a.Release(k, a.ByKind(k));
  EXPECT_EQ(a.total(), 0u);
  EXPECT_EQ(SumOfKinds(a), 0u);
}

}  // namespace
}  // namespace cinch::mem
