// Keyspace quotas, per-keyspace flush_all and per-keyspace counters (docs/keyspaces.md,
// "Quotas"), through the public API: a keyspace over its quota loses only its own items; an
// overcommitted store evicts from the keyspaces above their fair share first; a keyspace's
// flush leaves the others alone.
//
// Time comes from a ManualClock and the background cleaner is off, so every test is
// deterministic; RunCleanerOnce() forces a cleaner pass where one is needed.

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "store/store_fixture.h"
#include "store/test_data.h"

namespace cinch {

static void PrintTo(Outcome outcome, std::ostream* os) { *os << OutcomeName(outcome); }

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;
constexpr Keyspace kNoisy{16};
constexpr Keyspace kQuiet{17};
constexpr Keyspace kOther{18};

using test::Key;
using test::Pattern;

class QuotaTest : public test::StoreFixture {
 protected:
  Options StoreOptions(size_t limit, bool eviction = true) {
    Options o = BaseOptions(limit);
    o.eviction = eviction;
    return o;
  }

  // Writes `count` values of `size` bytes, keys Key(first + i); returns how many were stored.
  int Fill(Keyspace ks, int first, int count, size_t size) {
    int stored = 0;
    for (int i = first; i < first + count; ++i) {
      stored +=
          store_->Write(ks, SetMode::kSet, Key(i), Pattern(size, i), 0, 0) == Outcome::kStored;
    }
    return stored;
  }

  // How many of Key(first) .. Key(first + count - 1) hold exactly what Fill wrote.
  int Intact(Keyspace ks, int first, int count, size_t size) {
    int intact = 0;
    for (int i = first; i < first + count; ++i) intact += Value(ks, Key(i)) == Pattern(size, i);
    return intact;
  }
};

// The isolation case: a tenant at a 16 MiB quota writes 200 MB; another tenant's 5 MB
// are all there, byte for byte, and the noisy one holds no more than its quota.
TEST_F(QuotaTest, NoisyKeyspaceAtItsQuotaLeavesAnotherIntact) {
  Open(StoreOptions(64 * kMiB));
  store_->SetKeyspaceQuota(kNoisy, 16 * kMiB);
  constexpr int kQuietItems = 5000;  // 5 MB of 1000-byte values
  ASSERT_EQ(Fill(kQuiet, 0, kQuietItems, 1000), kQuietItems);
  ASSERT_EQ(Fill(kNoisy, 0, 200'000, 1000), 200'000) << "eviction on: every write is stored";

  EXPECT_EQ(Intact(kQuiet, 0, kQuietItems, 1000), kQuietItems);
  KeyspaceStats noisy = store_->GetKeyspaceStats(kNoisy);
  KeyspaceStats quiet = store_->GetKeyspaceStats(kQuiet);
  EXPECT_LE(noisy.item_bytes, 16 * kMiB);
  EXPECT_GT(noisy.item_bytes, 12 * kMiB) << "evicts a segment at a time, not everything";
  EXPECT_EQ(noisy.quota, 16 * kMiB);
  EXPECT_GT(noisy.evictions, 150'000u);
  EXPECT_EQ(quiet.evictions, 0u);
  EXPECT_EQ(quiet.items, static_cast<uint64_t>(kQuietItems));
  EXPECT_EQ(Value(kNoisy, Key(199'999)), Pattern(1000, 199'999)) << "the newest are kept";
  StoreStats s = store_->GetStats();
  EXPECT_LE(s.resident_bytes, s.memory_limit);
  EXPECT_EQ(s.evictions, noisy.evictions);
}

// The same when the quiet data is memcached's default keyspace, on a store whose limit is
// only twice the quota: the noisy keyspace's dead bytes and open tails are the store's to
// reclaim, and it takes them from the keyspace over its share.
TEST_F(QuotaTest, NoisyKeyspaceOnATightStoreLeavesTheDefaultKeyspaceIntact) {
  Open(StoreOptions(32 * kMiB));
  store_->SetKeyspaceQuota(kNoisy, 16 * kMiB);
  constexpr int kQuietItems = 5000;
  ASSERT_EQ(Fill(Keyspace{}, 0, kQuietItems, 1000), kQuietItems);
  // Overwrites leave dead bytes in the noisy keyspace's segments: the store must compact or
  // evict them, not the default keyspace's items.
  for (int round = 0; round < 10; ++round) {
    ASSERT_EQ(Fill(kNoisy, round * 10'000, 20'000, 1000), 20'000);
  }
  EXPECT_EQ(Intact(Keyspace{}, 0, kQuietItems, 1000), kQuietItems);
  EXPECT_EQ(store_->GetKeyspaceStats(Keyspace{}).evictions, 0u);
  EXPECT_LE(store_->GetKeyspaceStats(kNoisy).item_bytes, 16 * kMiB);
  StoreStats s = store_->GetStats();
  EXPECT_LE(s.resident_bytes, s.memory_limit);
}

TEST_F(QuotaTest, WithEvictionOffAKeyspaceOverItsQuotaIsOutOfMemory) {
  Open(StoreOptions(64 * kMiB, /*eviction=*/false));
  store_->SetKeyspaceQuota(kNoisy, 1 * kMiB);
  int stored = 0;
  Outcome last = Outcome::kStored;
  for (int i = 0; i < 2000 && last == Outcome::kStored; ++i) {
    last = store_->Write(kNoisy, SetMode::kSet, Key(i), Pattern(1000, i), 0, 0);
    stored += last == Outcome::kStored;
  }
  EXPECT_EQ(last, Outcome::kOutOfMemory);
  EXPECT_GT(stored, 900);
  KeyspaceStats noisy = store_->GetKeyspaceStats(kNoisy);
  EXPECT_LE(noisy.item_bytes, 1 * kMiB);
  EXPECT_EQ(noisy.evictions, 0u);
  EXPECT_EQ(Intact(kNoisy, 0, stored, 1000), stored) << "nothing evicted";
  // Another keyspace is not affected; deleting makes room in the quota again.
  EXPECT_EQ(Fill(kQuiet, 0, 2000, 1000), 2000);
  EXPECT_EQ(store_->Write(kNoisy, SetMode::kSet, "more", Pattern(1000, 1), 0, 0),
            Outcome::kOutOfMemory);
  ASSERT_EQ(store_->Delete(kNoisy, Key(0)), Outcome::kDeleted);
  ASSERT_EQ(store_->Delete(kNoisy, Key(1)), Outcome::kDeleted);
  EXPECT_EQ(store_->Write(kNoisy, SetMode::kSet, "more", Pattern(1000, 1), 0, 0), Outcome::kStored);
  // Read-modify-writes and streaming writes count too.
  uint64_t unused;
  ASSERT_EQ(store_->Write(kNoisy, SetMode::kSet, "n", "1", 0, 0), Outcome::kStored);
  EXPECT_EQ(store_->Write(kNoisy, SetMode::kAppend, Key(2), Pattern(3000, 2), 0, 0),
            Outcome::kOutOfMemory);
  EXPECT_EQ(store_->Incr(kNoisy, "n", 1, &unused), Outcome::kStored) << "same size: fits";
  ValueWriter w;
  EXPECT_EQ(store_->BeginWrite(kNoisy, SetMode::kSet, "big", 64 * kKiB, 0, 0, &w),
            Outcome::kOutOfMemory);
  EXPECT_EQ(Intact(kNoisy, 2, stored - 2, 1000), stored - 2);
}

TEST_F(QuotaTest, AppendAndStreamingWritesEvictWithinTheQuota) {
  Open(StoreOptions(64 * kMiB));
  store_->SetKeyspaceQuota(kNoisy, 2 * kMiB);
  ASSERT_EQ(Fill(kQuiet, 0, 1000, 1000), 1000);
  ASSERT_EQ(Fill(kNoisy, 0, 2000, 1000), 2000);
  ASSERT_EQ(store_->Write(kNoisy, SetMode::kSet, "a", "x", 0, 0), Outcome::kStored);
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(store_->Write(kNoisy, SetMode::kAppend, "a", Pattern(1000, i), 0, 0),
              Outcome::kStored);
    ASSERT_LE(store_->GetKeyspaceStats(kNoisy).item_bytes, 2 * kMiB);
  }
  EXPECT_EQ(Value(kNoisy, "a")->size(), 1 + 500 * 1000u);
  ValueWriter w;
  ASSERT_EQ(store_->BeginWrite(kNoisy, SetMode::kSet, "big", 512 * kKiB, 0, 0, &w),
            Outcome::kStored);
  std::string big = Pattern(512 * kKiB, 7);
  std::copy(big.begin(), big.end(), w.data());
  ASSERT_EQ(w.Commit(), Outcome::kStored);
  EXPECT_EQ(Value(kNoisy, "big"), big);
  EXPECT_LE(store_->GetKeyspaceStats(kNoisy).item_bytes, 2 * kMiB + 64 * kKiB);
  EXPECT_EQ(Intact(kQuiet, 0, 1000, 1000), 1000);
  // An item larger than the whole quota can never fit.
  EXPECT_EQ(store_->Write(kNoisy, SetMode::kSet, "huge", Pattern(900 * kKiB, 1), 0, 0),
            Outcome::kStored);
  store_->SetKeyspaceQuota(kNoisy, 512 * kKiB);
  EXPECT_LE(store_->GetKeyspaceStats(kNoisy).item_bytes, 512 * kKiB) << "lowered: evicts now";
  EXPECT_EQ(store_->Write(kNoisy, SetMode::kSet, "huge", Pattern(900 * kKiB, 1), 0, 0),
            Outcome::kOutOfMemory);
  EXPECT_EQ(Intact(kQuiet, 0, 1000, 1000), 1000);
}

TEST_F(QuotaTest, RemovingAQuotaLiftsTheBound) {
  Open(StoreOptions(64 * kMiB));
  store_->SetKeyspaceQuota(kNoisy, 1 * kMiB);
  ASSERT_EQ(Fill(kNoisy, 0, 3000, 1000), 3000);
  EXPECT_LE(store_->GetKeyspaceStats(kNoisy).item_bytes, 1 * kMiB);
  store_->SetKeyspaceQuota(kNoisy, 0);
  ASSERT_EQ(Fill(kNoisy, 3000, 3000, 1000), 3000);
  EXPECT_EQ(Intact(kNoisy, 3000, 3000, 1000), 3000);
  EXPECT_EQ(store_->GetKeyspaceStats(kNoisy).quota, 0u);
}

// Quotas adding up to twice the memory: the limit holds, the two noisy keyspaces lose items,
// the one under its fair share loses none.
TEST_F(QuotaTest, OvercommittedQuotasEvictFromKeyspacesOverTheirShare) {
  Open(StoreOptions(32 * kMiB));
  store_->SetKeyspaceQuota(kNoisy, 24 * kMiB);
  store_->SetKeyspaceQuota(kOther, 24 * kMiB);
  store_->SetKeyspaceQuota(kQuiet, 16 * kMiB);  // a fair share of ~7 MiB: holds 5 MB
  constexpr int kQuietItems = 5000;
  ASSERT_EQ(Fill(kQuiet, 0, kQuietItems, 1000), kQuietItems);
  for (int round = 0; round < 20; ++round) {
    ASSERT_EQ(Fill(kNoisy, round * 5000, 5000, 1000), 5000);
    ASSERT_EQ(Fill(kOther, round * 5000, 5000, 1000), 5000);
    StoreStats s = store_->GetStats();
    ASSERT_LE(s.resident_bytes, s.memory_limit);
  }
  EXPECT_EQ(Intact(kQuiet, 0, kQuietItems, 1000), kQuietItems);
  EXPECT_EQ(store_->GetKeyspaceStats(kQuiet).evictions, 0u);
  KeyspaceStats noisy = store_->GetKeyspaceStats(kNoisy);
  KeyspaceStats other = store_->GetKeyspaceStats(kOther);
  EXPECT_GT(noisy.evictions, 0u);
  EXPECT_GT(other.evictions, 0u);
  // Each holds a fair part of what is left: neither was starved by the other.
  EXPECT_GT(noisy.item_bytes, 4 * kMiB);
  EXPECT_GT(other.item_bytes, 4 * kMiB);
  EXPECT_EQ(Value(kNoisy, Key(99'999)), Pattern(1000, 99'999));
  EXPECT_EQ(Value(kOther, Key(99'999)), Pattern(1000, 99'999));
}

// With 4 KiB segments and a quota of a few of them, the quota'd keyspace's items sit in its
// open segments: eviction seals them. Another keyspace's items stay.
TEST_F(QuotaTest, QuotaOfAFewSegmentsOnATinyStore) {
  Open(test::TinyOptions(&clock_, 40, /*eviction=*/true));
  store_->SetKeyspaceQuota(kNoisy, 8 * kKiB);
  ASSERT_EQ(Fill(kQuiet, 0, 40, 100), 40);
  ASSERT_EQ(Fill(kNoisy, 0, 2000, 100), 2000);
  EXPECT_LE(store_->GetKeyspaceStats(kNoisy).item_bytes, 8 * kKiB);
  EXPECT_EQ(Value(kNoisy, Key(1999)), Pattern(100, 1999));
  EXPECT_EQ(Intact(kQuiet, 0, 40, 100), 40);
}

TEST_F(QuotaTest, FlushOfOneKeyspaceLeavesTheOthers) {
  Open(StoreOptions(64 * kMiB));
  ASSERT_EQ(Fill(kNoisy, 0, 100, 100), 100);
  ASSERT_EQ(Fill(kQuiet, 0, 100, 100), 100);
  ASSERT_EQ(Fill(Keyspace{}, 0, 100, 100), 100);
  store_->FlushAll(kNoisy, 0);
  EXPECT_EQ(Intact(kNoisy, 0, 100, 100), 0);
  EXPECT_EQ(Intact(kQuiet, 0, 100, 100), 100);
  EXPECT_EQ(Intact(Keyspace{}, 0, 100, 100), 100);
  ASSERT_EQ(Fill(kNoisy, 0, 10, 100), 10) << "written after the flush";
  EXPECT_EQ(Intact(kNoisy, 0, 10, 100), 10);
  store_->RunCleanerOnce();
  EXPECT_EQ(store_->GetKeyspaceStats(kNoisy).items, 10u);
  EXPECT_EQ(store_->GetKeyspaceStats(kNoisy).flushes, 1u);
  EXPECT_EQ(store_->GetKeyspaceStats(kQuiet).items, 100u);
  // The default keyspace alone.
  store_->FlushAll(Keyspace{}, 0);
  EXPECT_EQ(Intact(Keyspace{}, 0, 100, 100), 0);
  EXPECT_EQ(Intact(kQuiet, 0, 100, 100), 100);
  EXPECT_EQ(Intact(kNoisy, 0, 10, 100), 10);
  // The store-wide flush still takes every keyspace.
  store_->FlushAll();
  EXPECT_EQ(Intact(kQuiet, 0, 100, 100), 0);
  EXPECT_EQ(Intact(kNoisy, 0, 10, 100), 0);
}

TEST_F(QuotaTest, DelayedFlushOfOneKeyspace) {
  Open(StoreOptions(64 * kMiB));
  ASSERT_EQ(Fill(kNoisy, 0, 100, 100), 100);
  ASSERT_EQ(Fill(kQuiet, 0, 100, 100), 100);
  store_->FlushAll(kNoisy, 10);
  store_->FlushAll(kQuiet, 30);
  clock_.Advance(5);
  EXPECT_EQ(Intact(kNoisy, 0, 100, 100), 100) << "not due yet";
  ASSERT_EQ(Fill(kNoisy, 100, 10, 100), 10);  // before the deadline: flushed with the rest
  clock_.Advance(5);
  EXPECT_EQ(Intact(kNoisy, 0, 110, 100), 0);
  EXPECT_EQ(Intact(kQuiet, 0, 100, 100), 100) << "its own flush is not due";
  ASSERT_EQ(Fill(kNoisy, 0, 10, 100), 10);
  EXPECT_EQ(Intact(kNoisy, 0, 10, 100), 10) << "after the deadline: kept";
  // A pending delayed flush is replaced by a later call, as memcached's.
  store_->FlushAll(kQuiet, 100);
  clock_.Advance(25);
  store_->RunCleanerOnce();
  EXPECT_EQ(Intact(kQuiet, 0, 100, 100), 100);
  clock_.Advance(80);
  store_->RunCleanerOnce();  // the cleaner runs a due flush too, without a read of the keyspace
  EXPECT_EQ(store_->GetKeyspaceStats(kQuiet).items, 0u);
  EXPECT_EQ(Intact(kQuiet, 0, 100, 100), 0);
  EXPECT_EQ(Intact(kNoisy, 0, 10, 100), 10);
}

TEST_F(QuotaTest, StatsPerKeyspace) {
  Open(StoreOptions(64 * kMiB));
  store_->SetKeyspaceQuota(kNoisy, 1 * kMiB);
  ASSERT_EQ(Fill(kNoisy, 0, 10, 100), 10);
  ASSERT_EQ(Fill(Keyspace{}, 0, 5, 100), 5);
  EXPECT_TRUE(Value(kNoisy, Key(1)));
  EXPECT_TRUE(Value(kNoisy, Key(2)));
  EXPECT_FALSE(Value(kNoisy, "absent"));
  EXPECT_TRUE(Value(Keyspace{}, Key(1)));
  EXPECT_FALSE(Value(Keyspace{}, "absent"));
  EXPECT_FALSE(Value(Keyspace{}, "absent too"));
  ItemRef ref;
  FetchResult fr;
  EXPECT_TRUE(store_->Fetch(kNoisy, Key(3), FetchOptions{}, &ref, &fr));
  EXPECT_FALSE(store_->Fetch(kNoisy, "gone", FetchOptions{}, &ref, &fr));
  ref.Reset();

  KeyspaceStats noisy = store_->GetKeyspaceStats(kNoisy);
  EXPECT_EQ(noisy.items, 10u);
  EXPECT_EQ(noisy.key_value_bytes, 10 * (100 + Key(1).size()));
  EXPECT_EQ(noisy.quota, 1 * kMiB);
  EXPECT_EQ(noisy.get_hits, 3u);
  EXPECT_EQ(noisy.get_misses, 2u);
  EXPECT_EQ(noisy.evictions, 0u);
  KeyspaceStats def = store_->GetKeyspaceStats(Keyspace{});
  EXPECT_EQ(def.items, 5u);
  EXPECT_EQ(def.get_hits, 1u);
  EXPECT_EQ(def.get_misses, 2u);
  EXPECT_EQ(def.quota, 0u);
  EXPECT_EQ(store_->GetKeyspaceStats(kQuiet).get_misses, 0u) << "never used";
  // Evictions for the quota are the keyspace's.
  ASSERT_EQ(Fill(kNoisy, 100, 3000, 1000), 3000);
  noisy = store_->GetKeyspaceStats(kNoisy);
  EXPECT_GT(noisy.evictions, 1000u);
  EXPECT_EQ(store_->GetKeyspaceStats(Keyspace{}).evictions, 0u);
  EXPECT_EQ(store_->GetStats().evictions, noisy.evictions);
}

}  // namespace
}  // namespace cinch
