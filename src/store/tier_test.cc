// The file tier (docs/file-tier.md): items demoted to a file when memory is full read back
// exactly, every operation works on them, and the file's own cleaning (freeing, compaction,
// eviction when full) keeps the index right. Tiny stores (4 KiB segments) so that demotion
// happens after a few hundred items; the tier files live in the test temp dir and are removed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "store/test_data.h"

namespace cinch {

static void PrintTo(Outcome outcome, std::ostream* os) { *os << OutcomeName(outcome); }

namespace {

using test::Key;
using test::Pattern;

constexpr size_t kSegment = 4096;

// A value that says which key and version it is: a reader can check any value it gets.
std::string ValueFor(int key, uint32_t version, size_t size) {
  return Pattern(size, static_cast<uint32_t>(key) * 7919u + version);
}

class TierTest : public ::testing::Test {
 protected:
  void TearDown() override {
    store_.reset();
    for (const std::string& path : paths_) std::remove(path.c_str());
  }

  std::string TempPath() {
    static std::atomic<int> counter{0};
    std::string path = ::testing::TempDir() + "/cinch_tier_" + std::to_string(getpid()) + "_" +
                       std::to_string(counter.fetch_add(1)) + ".data";
    paths_.push_back(path);
    return path;
  }

  // `file_segments` of file tier in `files` files, RAM 32 segments above the minimum (which
  // holds the tier's metadata).
  Options TierOptions(size_t file_segments, bool eviction = true, int files = 1) {
    Options o = test::TinyOptions(&clock_, /*extra_segments=*/0, eviction);
    for (int i = 0; i < files; ++i) {
      o.tier_files.push_back(TierFile{TempPath(), file_segments / files * kSegment});
    }
    o.memory_limit = Store::MinimumMemoryLimit(o) + 32 * kSegment;
    return o;
  }

  void Open(const Options& o) {
    Status s = Store::Open(o, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Opens with the background cleaner running every millisecond: demotions, promotions and
  // compactions race the test's threads.
  void OpenWithBackgroundCleaner(Options o) {
    o.background_cleaner = true;
    o.cleaner_interval_ms = 1;
    Open(o);
  }

  std::optional<std::string> Get(std::string_view key, Keyspace ks = {}) {
    ItemRef ref;
    if (!store_->Get(ks, key, &ref)) return std::nullopt;
    return std::string(ref.value());
  }

  // Writes keys [first, first + n) of `size` bytes (version 0).
  void Fill(int first, int n, size_t size, Keyspace ks = {}) {
    for (int i = first; i < first + n; ++i) {
      ASSERT_EQ(store_->Write(ks, SetMode::kSet, Key(i), ValueFor(i, 0, size), 0, 0, 0),
                Outcome::kStored);
    }
  }

  // Keys of [0, n) whose items are on file now.
  std::vector<int> OnFile(int n, Keyspace ks = {}) {
    std::vector<int> keys;
    for (int i = 0; i < n; ++i) {
      if (store_->InFileTier(ks, Key(i))) keys.push_back(i);
    }
    return keys;
  }

  ManualClock clock_;
  std::unique_ptr<Store> store_;
  std::vector<std::string> paths_;
};

TEST_F(TierTest, OpenChecksItsFiles) {
  Options o = TierOptions(64);
  o.tier_files[0].size = kSegment - 1;
  std::unique_ptr<Store> store;
  EXPECT_FALSE(Store::Open(o, &store).ok());  // smaller than a segment
  o = TierOptions(64);
  o.tier_files[0].path = ::testing::TempDir() + "/no/such/dir/tier.data";
  EXPECT_FALSE(Store::Open(o, &store).ok());
  o = TierOptions(64);
  o.tier_files[0].size = uint64_t{1} << 40;  // with the RAM, past 40-bit locations
  EXPECT_FALSE(Store::Open(o, &store).ok());
}

// The tier's memory (every file segment's metadata, its read buffer) is charged at open within
// the limit: MinimumMemoryLimit counts it, and a limit that cannot hold it beside the segments
// the store needs is refused, saying so (the tier files are left alone).
TEST_F(TierTest, TierMemoryCountsAgainstTheLimit) {
  Options o = TierOptions(4096);
  const size_t minimum = Store::MinimumMemoryLimit(o);
  Options no_tier = o;
  no_tier.tier_files.clear();
  const size_t without = Store::MinimumMemoryLimit(no_tier);
  EXPECT_GE(minimum, without + 4096 * 64 + 4096 * 32) << "96 B per file segment at least";
  o.memory_limit = minimum;
  Open(o);
  StoreStats s = store_->GetStats();
  EXPECT_GE(s.metadata_bytes, 4096u * 96);
  EXPECT_LE(s.resident_bytes, o.memory_limit);
  store_.reset();
  o.memory_limit = minimum - kSegment;
  std::remove(o.tier_files[0].path.c_str());
  Status st = Store::Open(o, &store_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("too small for the file tier"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("4096 segments of 4 KiB"), std::string::npos) << st.message();
  EXPECT_NE(access(o.tier_files[0].path.c_str(), F_OK), 0) << "a refused tier creates no file";
}

// Values, flags, expiry and CAS values come back exactly from the file, and reading an item
// promotes it.
TEST_F(TierTest, DemotedItemsReadBackExactly) {
  Open(TierOptions(512));
  const int n = 2000;  // ~300 KiB of items: several times the RAM
  std::vector<uint64_t> cas(n, 0);
  const int64_t expiry = clock_.NowSeconds() + 3600;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), ValueFor(i, 0, 40 + i % 200), 1000u + i,
                            i % 3 == 0 ? expiry : 0, 0),
              Outcome::kStored);
    if (i % 10 == 0) {  // a client sees these CAS values right after the write
      ItemRef ref;
      ASSERT_TRUE(store_->Peek(Key(i), &ref, /*with_cas=*/true));
      cas[i] = ref.cas();
    }
  }
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.tier_writes, 0u);
  EXPECT_GT(s.tier_items, 0u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.items, static_cast<uint64_t>(n));
  std::vector<int> on_file = OnFile(n);
  ASSERT_GT(on_file.size(), static_cast<size_t>(n / 2));
  for (int i = 0; i < n; ++i) {
    ItemRef ref;
    ASSERT_TRUE(store_->Get(Key(i), &ref, /*with_cas=*/true)) << i;
    EXPECT_EQ(ref.value(), ValueFor(i, 0, 40 + i % 200)) << i;
    EXPECT_EQ(ref.flags(), 1000u + i);
    EXPECT_EQ(ref.expiry(), i % 3 == 0 ? expiry : 0);
    if (cas[i] != 0) EXPECT_EQ(ref.cas(), cas[i]) << i;
  }
  s = store_->GetStats();
  EXPECT_GT(s.tier_promotions, 0u);
  EXPECT_GT(s.tier_reads, 0u);
  EXPECT_EQ(s.evictions, 0u);
  // A CAS handed out for an item on file is the one it keeps when promoted.
  Fill(n, 1500, 100);
  on_file = OnFile(n);
  ASSERT_FALSE(on_file.empty());
  const int k = on_file.front();
  ItemRef ref;
  ASSERT_TRUE(store_->Get(Key(k), &ref, true));
  const uint64_t seen = ref.cas();
  ref.Reset();
  EXPECT_EQ(store_->Write(SetMode::kCas, Key(k), "new", 0, 0, seen), Outcome::kStored);
  EXPECT_EQ(Get(Key(k)), "new");
}

// Listing reads the keys of items on file without bringing them back; a caller that may not
// block on the disk is stopped before them.
TEST_F(TierTest, ListingReadsItemsOnFileWithoutPromotingThem) {
  Open(TierOptions(512));
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), ValueFor(i, 0, 40 + i % 200), 1000u + i, 0, 0),
              Outcome::kStored);
  }
  Fill(0, 300, 30, Keyspace{3});  // another keyspace's, on file too
  const std::vector<int> on_file = OnFile(n);
  ASSERT_GT(on_file.size(), static_cast<size_t>(n / 2));
  const uint64_t promotions = store_->GetStats().tier_promotions;

  // Without blocking: stopped at the first stretch holding an item on file, cursor left there.
  ListCursor cursor;
  ItemList list;
  size_t without_blocking = 0;
  while (store_->ListItems(Keyspace{}, &cursor, 1, false, /*may_block=*/false, &list)) {
    without_blocking += list.items.size();
    list.clear();
    ASSERT_FALSE(cursor.done) << "a walk of items mostly on file met none";
  }
  EXPECT_TRUE(list.items.empty());
  EXPECT_LT(without_blocking, static_cast<size_t>(n));

  // Blocking, from the start: every item once, with its fields.
  std::map<std::string, ListedItem> all;
  cursor = ListCursor{};
  while (!cursor.done) {
    list.clear();
    ASSERT_TRUE(store_->ListItems(Keyspace{}, &cursor, 50, true, /*may_block=*/true, &list));
    for (const ListedItem& item : list.items) {
      ASSERT_TRUE(all.emplace(std::string(list.key(item)), item).second) << list.key(item);
    }
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const ListedItem& item = all[Key(i)];
    EXPECT_EQ(item.value_size, 40u + i % 200) << i;
    EXPECT_EQ(item.flags, 1000u + i);
  }
  EXPECT_EQ(store_->GetStats().tier_promotions, promotions);
  EXPECT_EQ(OnFile(n), on_file) << "listing moved items off the file";
  // The CAS values listed are those the items answer with once promoted.
  for (int k : {on_file.front(), on_file.back()}) {
    ItemRef ref;
    ASSERT_TRUE(store_->Get(Keyspace{}, Key(k), &ref, /*with_cas=*/true));
    EXPECT_EQ(ref.cas(), all[Key(k)].cas) << k;
  }
}

TEST_F(TierTest, PromoteBringsAnItemBack) {
  Open(TierOptions(512));
  Fill(0, 2000, 100);
  std::vector<int> on_file = OnFile(2000);
  ASSERT_FALSE(on_file.empty());
  const int k = on_file[on_file.size() / 2];
  const uint64_t promotions = store_->GetStats().tier_promotions;
  const uint64_t hits = store_->GetStats().get_hits;
  store_->Promote(Keyspace{}, Key(k));
  EXPECT_FALSE(store_->InFileTier(Keyspace{}, Key(k)));
  EXPECT_EQ(store_->GetStats().tier_promotions, promotions + 1);
  EXPECT_EQ(store_->GetStats().get_hits, hits);  // Promote counts no hit
  EXPECT_EQ(Get(Key(k)), ValueFor(k, 0, 100));
  store_->Promote(Keyspace{}, "absent");  // nothing to do
  EXPECT_FALSE(store_->InFileTier(Keyspace{}, "absent"));
}

// A read of an item on file that finds no memory to promote it into (every RAM segment pinned
// by readers, the cleaner's reserve taken) keeps the item on file and fails for want of memory:
// the item is read back once the readers let go.
TEST_F(TierTest, PromotionWithoutMemoryKeepsTheItem) {
  Options o = TierOptions(512);
  o.space_wait_ms = 20;
  Open(o);
  const int n = 2000;
  Fill(0, n, 100);
  std::vector<int> on_file = OnFile(n);
  ASSERT_GT(on_file.size(), 100u);
  // Every item in RAM read and held: no RAM segment can be freed or written again.
  std::vector<ItemRef> held;
  for (int i = 0; i < n; ++i) {
    if (store_->InFileTier(Keyspace{}, Key(i))) continue;
    ItemRef ref;
    if (store_->Get(Key(i), &ref)) held.push_back(std::move(ref));
  }
  // Items on file read and held in turn, until a promotion finds no memory.
  int refused = -1;
  for (int k : on_file) {
    ItemRef ref;
    Miss miss = Miss::kNone;
    if (store_->Get(Keyspace{}, Key(k), &ref, false, &miss)) {
      ASSERT_EQ(ref.value(), ValueFor(k, 0, 100));
      held.push_back(std::move(ref));
      continue;
    }
    ASSERT_EQ(miss, Miss::kNoMemory) << "key " << k;
    refused = k;
    break;
  }
  ASSERT_NE(refused, -1) << "every item on file was promoted";
  const StoreStats st = store_->GetStats();
  EXPECT_GE(st.tier_read_oom, 1u);
  EXPECT_EQ(st.tier_evictions, 0u);
  EXPECT_TRUE(store_->InFileTier(Keyspace{}, Key(refused)));  // still there
  // A read that changes it (gat: promoted, then touched in place) refuses too, and keeps it.
  ItemRef touched;
  EXPECT_EQ(store_->GetAndTouch(Key(refused), 100, &touched), Outcome::kOutOfMemory);
  EXPECT_TRUE(store_->InFileTier(Keyspace{}, Key(refused)));
  // A read-modify-write reads it without promoting it: it needs memory for its new version
  // alone, which the writers' open head still has.
  EXPECT_EQ(store_->Write(Keyspace{}, SetMode::kAppend, Key(refused), "x", 0, 0, 0),
            Outcome::kStored);
  EXPECT_FALSE(store_->InFileTier(Keyspace{}, Key(refused)));
  held.clear();
  EXPECT_EQ(Get(Key(refused)), ValueFor(refused, 0, 100) + "x");
  EXPECT_EQ(store_->GetStats().tier_evictions, 0u);
}

// Every operation works on an item whose bytes are on file; in-place changes (touch, meta
// state) rewrite it into memory.
TEST_F(TierTest, OperationsOnItemsOnFile) {
  Open(TierOptions(512));
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), std::to_string(i * 10), 7, 0, 0),
              Outcome::kStored);
  }
  Fill(n, 1000, 120);  // push the numbers out to the file
  std::vector<int> on_file = OnFile(n);
  ASSERT_GE(on_file.size(), 12u);
  auto next = [&] {
    int k = on_file.back();
    on_file.pop_back();
    EXPECT_TRUE(store_->InFileTier(Keyspace{}, Key(k)));
    return k;
  };
  // A set or delete reads the old item (to tell its key) but does not bring it back first.
  const uint64_t promotions = store_->GetStats().tier_promotions;
  int k = next();
  EXPECT_EQ(store_->Write(SetMode::kSet, Key(k), "over", 0, 0, 0), Outcome::kStored);
  const int deleted = next();
  EXPECT_EQ(store_->Delete(Key(deleted)), Outcome::kDeleted);
  EXPECT_EQ(store_->GetStats().tier_promotions, promotions);
  EXPECT_EQ(Get(Key(k)), "over");
  EXPECT_EQ(Get(Key(deleted)), std::nullopt);
  k = next();
  EXPECT_EQ(store_->Write(SetMode::kAdd, Key(k), "x", 0, 0, 0), Outcome::kNotStored);
  k = next();
  EXPECT_EQ(store_->Write(SetMode::kReplace, Key(k), "r", 0, 0, 0), Outcome::kStored);
  EXPECT_EQ(Get(Key(k)), "r");
  k = next();
  uint64_t result = 0;
  EXPECT_EQ(store_->Incr(Key(k), 5, &result), Outcome::kStored);
  EXPECT_EQ(result, static_cast<uint64_t>(k * 10 + 5));
  k = next();
  EXPECT_EQ(store_->Write(SetMode::kAppend, Key(k), "+a", 0, 0, 0), Outcome::kStored);
  EXPECT_EQ(Get(Key(k)), std::to_string(k * 10) + "+a");
  k = next();
  EXPECT_EQ(store_->Write(SetMode::kCas, Key(k), "c", 0, 0, 12345), Outcome::kExists);
  EXPECT_EQ(Get(Key(k)), std::to_string(k * 10));
  k = next();
  EXPECT_EQ(store_->Touch(Key(k), 100), Outcome::kTouched);
  {
    ItemRef ref;
    ASSERT_TRUE(store_->Get(Key(k), &ref));
    EXPECT_EQ(ref.expiry(), clock_.NowSeconds() + 100);
    EXPECT_EQ(ref.flags(), 7u);
  }
  k = next();
  {
    ItemRef ref;
    EXPECT_EQ(store_->GetAndTouch(Key(k), 200, &ref), Outcome::kTouched);
    EXPECT_EQ(ref.value(), std::to_string(k * 10));
    EXPECT_EQ(ref.expiry(), clock_.NowSeconds() + 200);
  }
  k = next();
  EXPECT_EQ(store_->Invalidate(Key(k), 0, false, 0), Outcome::kStored);
  {
    ItemRef ref;
    ASSERT_TRUE(store_->Get(Key(k), &ref));
    EXPECT_TRUE(ref.stale());
  }
  k = next();
  {
    FetchOptions fo;
    fo.touch = true;
    fo.exptime = 300;
    ItemRef ref;
    FetchResult fr;
    ASSERT_TRUE(store_->Fetch(Key(k), fo, &ref, &fr));
    EXPECT_EQ(ref.value(), std::to_string(k * 10));
    EXPECT_EQ(ref.expiry(), clock_.NowSeconds() + 300);
  }
  k = next();
  EXPECT_EQ(store_->Write(SetMode::kPrepend, Key(k), "p-", 0, 0, 0), Outcome::kStored);
  EXPECT_EQ(Get(Key(k)), "p-" + std::to_string(k * 10));
  EXPECT_EQ(store_->GetStats().evictions, 0u);
}

TEST_F(TierTest, ExpiryAndFlushOfItemsOnFile) {
  Open(TierOptions(512));
  const int n = 1500;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), ValueFor(i, 0, 100), 0, i % 2 ? 60 : 0, 0),
              Outcome::kStored);
  }
  std::vector<int> on_file = OnFile(n);
  ASSERT_GE(on_file.size(), 10u);
  clock_.Advance(61);
  int expired_seen = 0;
  for (int k : on_file) {
    ItemRef ref;
    Miss miss = Miss::kNone;
    bool hit = store_->Get(Keyspace{}, Key(k), &ref, false, &miss);
    if (k % 2) {
      // Expired: dropped by this read, or with its whole file segment by a cleaner pass that
      // an earlier read's promotion ran (these items have segments of their own).
      EXPECT_FALSE(hit) << k;
      EXPECT_TRUE(miss == Miss::kExpired || miss == Miss::kAbsent) << k;
      expired_seen += miss == Miss::kExpired;
    } else {
      ASSERT_TRUE(hit) << k;
      EXPECT_EQ(ref.value(), ValueFor(k, 0, 100));
    }
  }
  EXPECT_GT(expired_seen + store_->GetStats().expirations_reclaimed, 0u);
  store_->FlushAll();
  on_file = OnFile(n);
  for (int i = 0; i < n; ++i) EXPECT_EQ(Get(Key(i)), std::nullopt) << i;
  // The cleaner frees the flushed file segments.
  store_->RunCleanerOnce();
  StoreStats s = store_->GetStats();
  EXPECT_EQ(s.tier_items, 0u);
  EXPECT_EQ(s.tier_used_bytes, 0u);
  EXPECT_EQ(s.items, 0u);
  // And the tier takes new items after the flush.
  Fill(0, n, 100);
  EXPECT_GT(store_->GetStats().tier_items, 0u);
  for (int i = 0; i < n; ++i) ASSERT_EQ(Get(Key(i)), ValueFor(i, 0, 100)) << i;
}

TEST_F(TierTest, KeyspacesStayApartOnFile) {
  Open(TierOptions(1024));
  const int n = 1500;
  for (int i = 0; i < n; ++i) {
    for (uint16_t ks = 0; ks < 3; ++ks) {
      ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, Key(i), ValueFor(i, ks, 60), ks, 0, 0),
                Outcome::kStored);
    }
  }
  EXPECT_FALSE(OnFile(n, Keyspace{1}).empty());
  EXPECT_FALSE(OnFile(n, Keyspace{0}).empty());
  EXPECT_EQ(store_->GetKeyspaceStats(Keyspace{2}).items, static_cast<uint64_t>(n));
  for (int i = 0; i < n; ++i) {
    for (uint16_t ks = 0; ks < 3; ++ks) {
      ItemRef ref;
      ASSERT_TRUE(store_->Get(Keyspace{ks}, Key(i), &ref)) << i << " " << ks;
      EXPECT_EQ(ref.value(), ValueFor(i, ks, 60));
      EXPECT_EQ(ref.flags(), ks);
    }
  }
  EXPECT_EQ(store_->Delete(Keyspace{1}, Key(5)), Outcome::kDeleted);
  EXPECT_EQ(Get(Key(5), Keyspace{2}), ValueFor(5, 2, 60));
  EXPECT_EQ(store_->GetStats().evictions, 0u);
}

// Jumbo items (above an eighth of a segment, each in a mapping of its own) whose size fits a
// file segment are demoted as segments are, one per file segment: they read back exactly
// (value, flags, CAS) and can be overwritten and deleted while on file.
void CheckJumboItemsOnFile(Store* store, int n, size_t min_value, size_t max_value) {
  auto size_of = [&](int i) { return min_value + (uint64_t{7919} * i) % (max_value - min_value); };
  std::vector<uint64_t> cas(n, 0);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store->Write(SetMode::kSet, Key(i), ValueFor(i, 0, size_of(i)), 100u + i, 0, 0),
              Outcome::kStored);
    if (i % 3 == 0) {  // a client sees these CAS values right after the write
      ItemRef ref;
      ASSERT_TRUE(store->Peek(Key(i), &ref, /*with_cas=*/true));
      cas[i] = ref.cas();
    }
  }
  StoreStats s = store->GetStats();
  EXPECT_GT(s.tier_writes, 0u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.items, static_cast<uint64_t>(n));
  std::vector<int> on_file;
  for (int i = 0; i < n; ++i) {
    if (store->InFileTier(Keyspace{}, Key(i))) on_file.push_back(i);
  }
  ASSERT_GT(on_file.size(), static_cast<size_t>(n / 2));
  EXPECT_EQ(s.tier_items, on_file.size());
  // Changed while on file: one overwritten (another jumbo value), one deleted.
  const int overwritten = on_file[0], deleted = on_file[1];
  ASSERT_EQ(
      store->Write(SetMode::kSet, Key(overwritten), ValueFor(overwritten, 1, max_value), 7, 0, 0),
      Outcome::kStored);
  EXPECT_EQ(store->Delete(Key(deleted)), Outcome::kDeleted);
  for (int i = 0; i < n; ++i) {
    ItemRef ref;
    if (i == deleted) {
      EXPECT_FALSE(store->Get(Key(i), &ref));
      continue;
    }
    ASSERT_TRUE(store->Get(Key(i), &ref, /*with_cas=*/true)) << i;
    if (i == overwritten) {
      EXPECT_EQ(ref.value(), ValueFor(i, 1, max_value));
      EXPECT_EQ(ref.flags(), 7u);
      continue;
    }
    EXPECT_EQ(ref.value(), ValueFor(i, 0, size_of(i))) << i;
    EXPECT_EQ(ref.flags(), 100u + i);
    if (cas[i] != 0) EXPECT_EQ(ref.cas(), cas[i]) << i;
  }
  s = store->GetStats();
  EXPECT_GT(s.tier_promotions, 0u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.items, static_cast<uint64_t>(n - 1));
}

TEST_F(TierTest, JumboItemsAreDemoted) {
  Open(TierOptions(512));  // 4 KiB segments: jumbo above 512 B
  CheckJumboItemsOnFile(store_.get(), 300, 600, 3800);
}

TEST_F(TierTest, JumboItemsOfLargeSegmentsAreDemoted) {
  Options o;  // the default segment and item sizes (1 MiB): 200 KiB values are jumbo items
  o.index_shards = 1;
  o.background_cleaner = false;
  o.clock = &clock_;
  o.memory_limit = Store::MinimumMemoryLimit(o) + 4 * o.segment_size;
  o.tier_files.push_back(TierFile{TempPath(), 128 * o.segment_size});
  Open(o);
  // ~24 MiB of values through a few MiB of RAM: each jumbo item takes a file segment.
  CheckJumboItemsOnFile(store_.get(), 120, 150 * 1024, 250 * 1024);
}

// A jumbo item larger than a segment cannot go to a file segment: it is evicted.
TEST_F(TierTest, JumboItemsLargerThanASegmentAreEvicted) {
  Options o = TierOptions(512);
  o.max_item_size = 4 * kSegment;
  Open(o);
  const int n = 200;
  Fill(0, n, 2 * kSegment);
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.evictions, 0u);
  EXPECT_EQ(s.tier_writes, 0u);
  EXPECT_TRUE(OnFile(n).empty());
}

// A tier file changed behind the store's back (truncated: reads come back short, or read
// zeros where later writes left a hole) loses items, not the process: each lost item is a
// miss counted in tier_io_errors, the counters agree with what is left, and the store keeps
// demoting to and reading from the file.
TEST_F(TierTest, TruncatedFileMakesMisses) {
  Options o = TierOptions(512);
  const std::string path = o.tier_files[0].path;
  Open(o);
  const int n = 3000;
  const size_t size = 100;
  Fill(0, n, size);
  const std::vector<int> on_file = OnFile(n);
  ASSERT_GT(on_file.size(), 1000u);
  const StoreStats before = store_->GetStats();
  EXPECT_EQ(before.tier_io_errors, 0u);
  // Cut the file in half: the segments past the cut read short.
  const uint64_t used = before.tier_used_bytes;
  ASSERT_GE(used, 8 * kSegment);
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(used / 2)), 0);
  // New items are demoted past the old ones, so the file grows again: the cut half is a hole
  // of zeros now, which the store must not take for items.
  Fill(n, n, size);
  ASSERT_GT(store_->GetStats().tier_writes, before.tier_writes);
  int kept = 0, lost = 0;
  for (int i : on_file) {
    std::optional<std::string> v = Get(Key(i));
    if (v) {
      EXPECT_EQ(*v, ValueFor(i, 0, size)) << i;
      ++kept;
    } else {
      ++lost;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(lost, 0);
  StoreStats s = store_->GetStats();
  EXPECT_EQ(s.tier_io_errors, static_cast<uint64_t>(lost));
  // Every other item is there, exact, and the counters are those of what is left.
  uint64_t items = 0, kv_bytes = 0;
  for (int i = 0; i < 2 * n; ++i) {
    std::optional<std::string> v = Get(Key(i));
    if (!v) continue;
    EXPECT_EQ(*v, ValueFor(i, 0, size)) << i;
    ++items;
    kv_bytes += Key(i).size() + size;
  }
  EXPECT_EQ(items, static_cast<uint64_t>(2 * n - lost));
  s = store_->GetStats();
  EXPECT_EQ(s.items, items);
  EXPECT_EQ(s.key_value_bytes, kv_bytes);
  EXPECT_EQ(s.evictions, 0u);
  // And it goes on: overwrite everything, read it all back from RAM and file.
  for (int i = 0; i < 2 * n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), ValueFor(i, 1, size), 0, 0, 0),
              Outcome::kStored);
  }
  EXPECT_FALSE(OnFile(2 * n).empty());
  for (int i = 0; i < 2 * n; ++i) ASSERT_EQ(Get(Key(i)), ValueFor(i, 1, size)) << i;
  s = store_->GetStats();
  EXPECT_EQ(s.items, static_cast<uint64_t>(2 * n));
  EXPECT_EQ(s.tier_io_errors, static_cast<uint64_t>(lost));
}

// A file emptied behind the store while it must clean its file segments to go on (a small
// file: compaction and eviction read segments back): the reads fail, the segments' items are
// dropped, and writes and reads go on.
TEST_F(TierTest, TruncatedFileWhileTheFileIsFull) {
  Options o = TierOptions(16);
  const std::string path = o.tier_files[0].path;
  Open(o);
  const int n = 3000;
  Fill(0, n, 100);
  ASSERT_FALSE(OnFile(n).empty());
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  Fill(n, n, 100);  // demotions that must free file segments: read short, dropped
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.tier_io_errors, 0u);
  EXPECT_LE(s.tier_items, s.items);
  // The last keys written are in RAM or on file, written after the cut: all readable.
  for (int i = 2 * n - 200; i < 2 * n; ++i) ASSERT_EQ(Get(Key(i)), ValueFor(i, 0, 100)) << i;
  for (int i = 0; i < n; ++i) {
    std::optional<std::string> v = Get(Key(i));
    if (v) {
      EXPECT_EQ(*v, ValueFor(i, 0, 100)) << i;
    }
  }
}

// A file that fills up: its oldest segments are evicted (or sparse ones compacted); what is
// left reads back exactly, and the counters agree with the index.
TEST_F(TierTest, FileFullEvictsFromTheFile) {
  Open(TierOptions(32, true, /*files=*/2));  // two files of 16 segments
  const int n = 6000;
  Fill(0, n, 100);
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.tier_evictions, 0u);
  EXPECT_EQ(s.tier_capacity_bytes, 32 * kSegment);
  EXPECT_LE(s.tier_used_bytes, s.tier_capacity_bytes);
  // The newest items are all there (the oldest leave first). Checked before the reads below:
  // each read of an item on file promotes it, and the demotions that make room for it send
  // segments of items not read again to the file, where they are the oldest.
  for (int i = n - 100; i < n; ++i) EXPECT_EQ(Get(Key(i)), ValueFor(i, 0, 100)) << i;
  int present = 0;
  for (int i = 0; i < n; ++i) {
    std::optional<std::string> v = Get(Key(i));
    if (!v) continue;
    ++present;
    EXPECT_EQ(*v, ValueFor(i, 0, 100)) << i;
  }
  s = store_->GetStats();
  EXPECT_LE(s.tier_items, s.items);
  EXPECT_GT(present, n / 10);
}

// Items deleted or overwritten leave file segments sparse: they are compacted (live items
// back into memory, written again with others) rather than the oldest evicted.
TEST_F(TierTest, SparseFileSegmentsAreCompacted) {
  Open(TierOptions(64));
  const int n = 2500;
  Fill(0, n, 100);
  ASSERT_GT(store_->GetStats().tier_items, 0u);
  // Delete three keys in four: each is read from the file first.
  for (int i = 0; i < n; ++i) {
    if (i % 4 != 0) store_->Delete(Key(i));
  }
  const uint64_t evictions_before = store_->GetStats().tier_evictions;
  Fill(n, 3000, 100);
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.tier_compactions, 0u);
  int kept = 0;
  for (int i = 0; i < n; i += 4) {
    std::optional<std::string> v = Get(Key(i));
    if (!v) continue;
    ++kept;
    EXPECT_EQ(*v, ValueFor(i, 0, 100)) << i;
  }
  for (int i = n; i < n + 3000; ++i) {
    std::optional<std::string> v = Get(Key(i));
    if (v) {
      EXPECT_EQ(*v, ValueFor(i, 0, 100)) << i;
    }
  }
  EXPECT_GT(kept, 0);
  (void)evictions_before;
}

// With eviction off, the file still takes what memory cannot hold; a store full of both answers
// kOutOfMemory rather than dropping what it holds, and a read that finds no memory to bring an
// item back refuses for want of memory and keeps it.
TEST_F(TierTest, EvictionOffFillsTheFileThenRefuses) {
  Open(TierOptions(32, /*eviction=*/false));
  int stored = 0;
  for (int i = 0; i < 20000; ++i) {
    Outcome o = store_->Write(SetMode::kSet, Key(i), ValueFor(i, 0, 100), 0, 0, 0);
    if (o == Outcome::kOutOfMemory) break;
    ASSERT_EQ(o, Outcome::kStored);
    ++stored;
  }
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.tier_items, 0u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_LT(stored, 20000);
  // Every item is kept: read, or (on file, with no memory to read it into) refused.
  int present = 0, refused = 0;
  for (int i = 0; i < stored; ++i) {
    ItemRef ref;
    Miss miss = Miss::kNone;
    if (!store_->Get(Keyspace{}, Key(i), &ref, false, &miss)) {
      ASSERT_EQ(miss, Miss::kNoMemory) << i;
      EXPECT_TRUE(store_->InFileTier(Keyspace{}, Key(i))) << i;
      ++refused;
      continue;
    }
    ++present;
    EXPECT_EQ(ref.value(), ValueFor(i, 0, 100)) << i;
  }
  s = store_->GetStats();
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.tier_evictions, 0u);
  EXPECT_EQ(s.tier_read_oom, static_cast<uint64_t>(refused));
  EXPECT_EQ(s.items, static_cast<uint64_t>(stored));
  EXPECT_GT(present, 0);
}

// Readers and writers while the background cleaner demotes, promotes, compacts and evicts:
// every value read is one that was written for its key.
TEST_F(TierTest, ConcurrentReadersAndWriters) {
  OpenWithBackgroundCleaner(TierOptions(96));
  constexpr int kKeys = 3000;
  constexpr int kOpsPerThread = 20000;
  std::atomic<int> bad{0};
  auto worker = [&](int id) {
    std::mt19937 rng(id);
    for (int op = 0; op < kOpsPerThread; ++op) {
      int k = static_cast<int>(rng() % kKeys);
      size_t size = 20 + k % 150;
      if (rng() % 3 == 0) {
        uint32_t version = rng() % 1000;
        store_->Write(SetMode::kSet, Key(k), ValueFor(k, version, size), version, 0, 0);
      } else if (rng() % 8 == 0) {
        store_->Delete(Key(k));
      } else {
        ItemRef ref;
        if (store_->Get(Key(k), &ref) && ref.value() != ValueFor(k, ref.flags(), size)) ++bad;
      }
      if (op % 500 == 0) store_->InFileTier(Keyspace{}, Key(k));
    }
  };
  // What a server does: ask InFileTier, and Promote on another thread before the operation.
  std::atomic<bool> done{false};
  std::thread promoter([&] {
    std::mt19937 rng(99);
    while (!done.load(std::memory_order_relaxed)) {
      int k = static_cast<int>(rng() % kKeys);
      if (store_->InFileTier(Keyspace{}, Key(k))) store_->Promote(Keyspace{}, Key(k));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  done = true;
  promoter.join();
  EXPECT_EQ(bad.load(), 0);
  StoreStats s = store_->GetStats();
  EXPECT_GT(s.tier_writes, 0u);
  EXPECT_GT(s.tier_promotions, 0u);
  for (int k = 0; k < kKeys; ++k) {
    ItemRef ref;
    if (store_->Get(Key(k), &ref)) EXPECT_EQ(ref.value(), ValueFor(k, ref.flags(), 20 + k % 150));
  }
}

// A read-modify-write of an item on file in a store at its least limit (beside its heads and
// the cleaner's reserve, about two segments) completes. It reads the item without promoting it
// first: a promoted copy (a jumbo item's is a sealed mapping of its own) would be the only
// victim the room for the new version could come from, demoted again, found on file by the
// next attempt and promoted again, forever.
TEST_F(TierTest, RewritesOfItemsOnFileAtTheLeastLimit) {
  Options o = TierOptions(64);
  o.memory_limit = Store::MinimumMemoryLimit(o);
  Open(o);
  const int n = 600;  // small numbers: a few segments' worth
  const int m = 20;
  const size_t jumbo = 2 * kSegment / 8;  // above the jumbo threshold (an eighth of a segment)
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), std::to_string(i), 0, 0, 0), Outcome::kStored);
  }
  for (int i = n; i < n + m; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), ValueFor(i, 0, jumbo), 0, 0, 0),
              Outcome::kStored);
  }
  std::vector<int> on_file = OnFile(n + m);
  std::vector<int> small, large;
  for (int k : on_file) (k < n ? small : large).push_back(k);
  ASSERT_GE(small.size(), 3u);
  ASSERT_GE(large.size(), 3u);
  uint64_t result = 0;
  EXPECT_EQ(store_->Incr(Key(small[0]), 5, &result), Outcome::kStored);
  EXPECT_EQ(result, static_cast<uint64_t>(small[0] + 5));
  EXPECT_EQ(store_->Write(SetMode::kAppend, Key(small[1]), "+a", 0, 0, 0), Outcome::kStored);
  EXPECT_EQ(Get(Key(small[1])), std::to_string(small[1]) + "+a");
  EXPECT_EQ(store_->Touch(Key(small[2]), 100), Outcome::kTouched);
  EXPECT_EQ(store_->Write(SetMode::kAppend, Key(large[0]), "+a", 0, 0, 0), Outcome::kStored);
  EXPECT_EQ(Get(Key(large[0])), ValueFor(large[0], 0, jumbo) + "+a");
  EXPECT_EQ(store_->Write(SetMode::kPrepend, Key(large[1]), "p-", 0, 0, 0), Outcome::kStored);
  EXPECT_EQ(Get(Key(large[1])), "p-" + ValueFor(large[1], 0, jumbo));
  EXPECT_EQ(store_->Touch(Key(large[2]), 100), Outcome::kTouched);
  ItemRef ref;
  ASSERT_TRUE(store_->Get(Key(large[2]), &ref));
  EXPECT_EQ(ref.value(), ValueFor(large[2], 0, jumbo));
  EXPECT_EQ(ref.expiry(), clock_.NowSeconds() + 100);
  EXPECT_EQ(store_->GetStats().out_of_memory, 0u);
}

// Increments racing with the background cleaner's demotions, promotions and file compactions
// and with each other lose nothing: a rewrite of an item on file publishes its new version
// only if the slot still points at the version it read.
TEST_F(TierTest, ConcurrentRewritesOfItemsOnFileLoseNothing) {
  OpenWithBackgroundCleaner(TierOptions(512));
  constexpr int kCounters = 1000;
  constexpr int kFillerKeys = 1500;
  constexpr int kIncrsPerThread = 4000;
  constexpr int kSetsPerThread = 4000;
  for (int c = 0; c < kCounters; ++c) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(c), "0", 0, 0, 0), Outcome::kStored);
  }
  Fill(kCounters, kFillerKeys, 300);  // the counters go to the file
  std::vector<std::atomic<int>> stored(kCounters);
  std::atomic<int> on_file{0};  // increments of a counter seen on file just before
  auto incrementer = [&](int id) {
    std::mt19937 rng(id);
    for (int i = 0; i < kIncrsPerThread; ++i) {
      const int c = static_cast<int>(rng() % kCounters);
      if (store_->InFileTier(Keyspace{}, Key(c))) ++on_file;
      uint64_t result;
      if (store_->Incr(Key(c), 1, &result) == Outcome::kStored) ++stored[c];
    }
  };
  auto filler = [&](int id) {
    std::mt19937 rng(id);
    for (int i = 0; i < kSetsPerThread; ++i) {
      const int k = kCounters + static_cast<int>(rng() % kFillerKeys);
      store_->Write(SetMode::kSet, Key(k), ValueFor(k, 0, 300), 0, 0, 0);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(incrementer, t);
  for (int t = 0; t < 2; ++t) threads.emplace_back(filler, 100 + t);
  for (std::thread& t : threads) t.join();
  EXPECT_GT(on_file.load(), 0) << "no counter was incremented on file";
  int present = 0;
  for (int c = 0; c < kCounters; ++c) {
    std::optional<std::string> v = Get(Key(c));
    if (!v) continue;  // evicted (the files full): its later increments were misses
    ++present;
    EXPECT_EQ(std::stoi(*v), stored[c].load()) << "counter " << c;
  }
  EXPECT_GT(present, kCounters / 2);
  EXPECT_GT(store_->GetStats().tier_writes, 0u);
}

// Demotions run when memory is full. Taking a file segment must then need no memory: the
// metadata of every file segment is charged when the tier opens, never by a demotion (one that
// could not charge a metadata page found no file segment and evicted while the file had room).
// Items read once get a second chance in the cleaner's heads, which takes the reserve.
TEST_F(TierTest, TakingAFileSegmentNeedsNoMemory) {
  Open(TierOptions(512));
  StoreStats s = store_->GetStats();
  EXPECT_GE(s.metadata_bytes, 512 * 64) << "every file segment's metadata, charged at open";
  const int n = 1500;  // ~220 file segments of 4 KiB: four pages of their metadata
  uint64_t metadata = 0;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(store_->Write(SetMode::kSet, Key(i), ValueFor(i, 0, 500), 0, 0, 0), Outcome::kStored);
    if (i % 2 == 0) Get(Key(i));
    // The first segment taken charges the segment table's first page, which holds every RAM
    // segment's entry (fewer than 64 of them).
    if (i == 0) metadata = store_->GetStats().metadata_bytes;
  }
  ASSERT_LT(s.segments_total, 64u);
  s = store_->GetStats();
  ASSERT_GT(s.tier_used_bytes, 200 * kSegment);
  EXPECT_LT(s.tier_used_bytes, s.tier_capacity_bytes);
  EXPECT_EQ(s.metadata_bytes, metadata);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_EQ(s.items, static_cast<uint64_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(Get(Key(i)), ValueFor(i, 0, 500)) << i;
  EXPECT_EQ(store_->GetStats().evictions, 0u);
}

}  // namespace
}  // namespace cinch
