// Store::SetMemoryLimit: the effective limit lowered and raised while the store serves.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/store.h"
#include "store/test_data.h"

namespace cinch {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Resident memory of this process, from /proc/self/statm.
size_t ProcessRss() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

Options SixtyFour(const Clock* clock, bool eviction, bool background) {
  Options o;
  o.memory_limit = 64 * kMiB;
  o.segment_size = 256 * 1024;
  o.eviction = eviction;
  o.background_cleaner = background;
  o.clock = clock;
  return o;
}

// Writes `bytes` of 1000-byte values under keys first.. and returns the next key number.
int Fill(Store* store, int first, size_t bytes) {
  const std::string value = test::Pattern(1000, 7);
  int i = first;
  for (size_t written = 0; written < bytes; written += value.size(), ++i) {
    EXPECT_EQ(store->Write(SetMode::kSet, test::Key(i), value, 0, 0, 0), Outcome::kStored)
        << "key " << i;
  }
  return i;
}

TEST(MemoryLimitTest, ClampedToTheOpenLimitAndToTheLeastTheStoreRunsWith) {
  ManualClock clock;
  const Options o = SixtyFour(&clock, true, false);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(o, &store).ok());
  EXPECT_EQ(store->GetStats().memory_limit, o.memory_limit);
  store->SetMemoryLimit(SIZE_MAX);
  EXPECT_EQ(store->GetStats().memory_limit, o.memory_limit);
  store->SetMemoryLimit(0);
  const StoreStats least = store->GetStats();
  EXPECT_GE(least.memory_limit, Store::MinimumMemoryLimit(o));
  EXPECT_LT(least.memory_limit, o.memory_limit);
  EXPECT_EQ(least.memory_limit % o.segment_size, 0u);
  EXPECT_LE(least.segments_total, least.memory_limit / o.segment_size);
  store->SetMemoryLimit(40 * kMiB);
  EXPECT_EQ(store->GetStats().memory_limit, 40 * kMiB);
  // At its least, the store still serves.
  store->SetMemoryLimit(0);
  Fill(store.get(), 0, 8 * kMiB);
  store->RunCleanerOnce();
  EXPECT_LE(store->GetStats().resident_bytes, least.memory_limit);
}

TEST(MemoryLimitTest, LoweringEvictsTheColdestAndGivesThePagesBack) {
  ManualClock clock;
  const Options o = SixtyFour(&clock, true, false);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(o, &store).ok());
  const int end = Fill(store.get(), 0, 56 * kMiB);
  const StoreStats full = store->GetStats();
  ASSERT_GT(full.resident_bytes, 48 * kMiB);
  const size_t rss_full = ProcessRss();

  store->SetMemoryLimit(16 * kMiB);
  store->RunCleanerOnce();
  const StoreStats low = store->GetStats();
  EXPECT_EQ(low.memory_limit, 16 * kMiB);
  EXPECT_LE(low.resident_bytes, 16 * kMiB);
  EXPECT_GT(low.evictions, full.evictions);
  EXPECT_GE(low.bytes_released_to_os - full.bytes_released_to_os,
            full.resident_bytes - 16 * kMiB - 2 * o.segment_size);
  // The pages are gone from the process, not only from the count (other memory of the test
  // process moves a little meanwhile: half of what the store gave back is plenty).
  const size_t rss_low = ProcessRss();
  EXPECT_GT(rss_full, rss_low + (full.resident_bytes - low.resident_bytes) / 2)
      << "RSS " << rss_full << " -> " << rss_low;
  // Coldest first: the last keys written are there, the first are gone.
  ItemRef ref;
  EXPECT_TRUE(store->Get(test::Key(end - 1), &ref));
  EXPECT_FALSE(store->Get(test::Key(0), &ref));
}

TEST(MemoryLimitTest, WritesGoOnAtALoweredLimitWithoutACleanerPass) {
  ManualClock clock;
  const Options o = SixtyFour(&clock, true, false);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(o, &store).ok());
  int next = Fill(store.get(), 0, 56 * kMiB);
  store->SetMemoryLimit(12 * kMiB);
  // Writers evict for themselves, as in any full store: none fails.
  next = Fill(store.get(), next, 4 * kMiB);
  const StoreStats st = store->GetStats();
  EXPECT_LE(st.resident_bytes, 12 * kMiB);
  EXPECT_EQ(st.out_of_memory, 0u);
  ItemRef ref;
  EXPECT_TRUE(store->Get(test::Key(next - 1), &ref));
}

TEST(MemoryLimitTest, RaisingLetsTheStoreGrowAgain) {
  ManualClock clock;
  const Options o = SixtyFour(&clock, true, false);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(o, &store).ok());
  store->SetMemoryLimit(16 * kMiB);
  int next = Fill(store.get(), 0, 32 * kMiB);
  const StoreStats low = store->GetStats();
  EXPECT_LE(low.resident_bytes, 16 * kMiB);
  ASSERT_GT(low.evictions, 0u);
  store->SetMemoryLimit(64 * kMiB);
  const int first = next;
  next = Fill(store.get(), next, 40 * kMiB);
  const StoreStats high = store->GetStats();
  EXPECT_GT(high.resident_bytes, 40 * kMiB);
  EXPECT_EQ(high.evictions, low.evictions) << "40 MiB fit in 64 MiB without evicting";
  ItemRef ref;
  EXPECT_TRUE(store->Get(test::Key(first), &ref));
}

TEST(MemoryLimitTest, WithoutEvictionALoweredLimitRefusesWritesUntilDeletesMakeRoom) {
  ManualClock clock;
  const Options o = SixtyFour(&clock, false, false);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(o, &store).ok());
  const int end = Fill(store.get(), 0, 32 * kMiB);
  store->SetMemoryLimit(16 * kMiB);
  store->RunCleanerOnce();
  // Nothing is lost, and nothing more fits.
  ItemRef ref;
  EXPECT_TRUE(store->Get(test::Key(0), &ref));
  ref.Reset();
  EXPECT_EQ(store->Write(SetMode::kSet, "one more", test::Pattern(100000, 1), 0, 0, 0),
            Outcome::kOutOfMemory);
  for (int i = 0; i < end; ++i) store->Delete(test::Key(i));
  store->RunCleanerOnce();
  EXPECT_LE(store->GetStats().resident_bytes, 16 * kMiB);
  EXPECT_EQ(store->Write(SetMode::kSet, "one more", test::Pattern(100000, 1), 0, 0, 0),
            Outcome::kStored);
}

TEST(MemoryLimitTest, TheBackgroundCleanerShrinksTheStoreWhileItServes) {
  const Options o = SixtyFour(nullptr, true, true);
  std::unique_ptr<Store> store;
  ASSERT_TRUE(Store::Open(o, &store).ok());
  int next = Fill(store.get(), 0, 56 * kMiB);
  store->SetMemoryLimit(20 * kMiB);
  // Waits for the background cleaner (no write makes room here but the few below), reading
  // meanwhile; bounded, so that a cleaner that never gets there fails rather than hangs.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  ItemRef ref;
  while (store->GetStats().resident_bytes > 20 * kMiB &&
         std::chrono::steady_clock::now() < give_up) {
    store->Get(test::Key(next - 1), &ref);
    ref.Reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_LE(store->GetStats().resident_bytes, 20 * kMiB);
  next = Fill(store.get(), next, 1 * kMiB);
  EXPECT_TRUE(store->Get(test::Key(next - 1), &ref));
}

}  // namespace
}  // namespace cinch
