// Store::ListItems: listing a keyspace's items a batch at a time (memcached's metadump).
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store_fixture.h"
#include "store/test_data.h"

namespace cinch {
namespace {

class ListTest : public test::StoreFixture {
 protected:
  // Every item of `ks` by key, listed `batch` items at a time; fails the test on a key listed
  // twice.
  std::map<std::string, ListedItem> ListAll(Keyspace ks, size_t batch, bool with_cas = false) {
    std::map<std::string, ListedItem> out;
    ListCursor cursor;
    ItemList list;
    int calls = 0;
    while (!cursor.done) {
      list.clear();
      EXPECT_TRUE(store_->ListItems(ks, &cursor, batch, with_cas, /*may_block=*/true, &list));
      for (const ListedItem& item : list.items) {
        EXPECT_TRUE(out.emplace(std::string(list.key(item)), item).second)
            << "listed twice: " << list.key(item);
      }
      EXPECT_LT(++calls, 1'000'000) << "the cursor does not advance";
      if (calls >= 1'000'000) break;
    }
    return out;
  }

  static std::string Key(int i) { return "key:" + std::to_string(i); }
};

TEST_F(ListTest, ListsEachItemOfItsKeyspaceOnceWithItsFields) {
  Options o = BaseOptions(64 << 20);
  o.index_shards = 4;
  Open(o);
  clock_.Set(1'000'000);
  const Keyspace tenant{7};
  for (int i = 0; i < 3000; ++i) {
    ASSERT_EQ(store_->Write(Keyspace{}, SetMode::kSet, Key(i), std::string(i % 50, 'v'),
                            static_cast<uint32_t>(i), i % 3 == 0 ? 0 : 100 + i, 0),
              Outcome::kStored);
  }
  for (int i = 0; i < 500; ++i)
    ASSERT_EQ(store_->Write(tenant, SetMode::kSet, Key(i), "t", 0, 0, 0), Outcome::kStored);
  ASSERT_EQ(store_->Write(Keyspace{}, SetMode::kSet, "gone", "x", 0, 5, 0), Outcome::kStored);
  clock_.Advance(10);  // "gone" expires
  ItemRef ref;
  ASSERT_TRUE(store_->Get(Key(4), &ref));  // fetched before
  ref.Reset();

  for (size_t batch : {size_t{1}, size_t{7}, size_t{100000}}) {
    std::map<std::string, ListedItem> all = ListAll(Keyspace{}, batch);
    ASSERT_EQ(all.size(), 3000u) << "batch " << batch;
    for (int i = 0; i < 3000; ++i) {
      auto it = all.find(Key(i));
      ASSERT_NE(it, all.end()) << Key(i);
      const ListedItem& item = it->second;
      EXPECT_EQ(item.value_size, static_cast<size_t>(i % 50));
      EXPECT_EQ(item.flags, static_cast<uint32_t>(i));
      EXPECT_EQ(item.expiry, i % 3 == 0 ? 0 : 1'000'000 + 100 + i);
      EXPECT_EQ(item.fetched_before, i == 4);
      EXPECT_EQ(item.cas, 0u);  // not asked for
      EXPECT_GE(item.last_access, 1'000'000);
    }
  }
  EXPECT_EQ(ListAll(tenant, 64).size(), 500u);
  EXPECT_TRUE(ListAll(Keyspace{9}, 64).empty());
  // Listing is no access.
  EXPECT_EQ(store_->GetStats().get_hits, 1u);
  ASSERT_TRUE(store_->Peek(Key(5), &ref));
  EXPECT_FALSE(ref.fetched_before());
  // Flushed items are not listed.
  store_->FlushAll(tenant, 0);
  EXPECT_TRUE(ListAll(tenant, 64).empty());
  EXPECT_EQ(ListAll(Keyspace{}, 64).size(), 3000u);
}

// A keyspace with few items in a large index: each call reads a bounded stretch of the index
// and may return with none, the cursor moved on; the walk still lists each item once.
TEST_F(ListTest, SparseKeyspaceIsListedInBoundedCalls) {
  Options o = BaseOptions(64 << 20);
  o.index_shards = 1;
  Open(o);
  const Keyspace quiet{5};
  for (int i = 0; i < 200'000; ++i) ASSERT_EQ(store_->Set(Key(i), "v"), Outcome::kStored);
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(store_->Write(quiet, SetMode::kSet, Key(i), "q", 0, 0, 0), Outcome::kStored);
  ListCursor cursor;
  ItemList list;
  int calls = 0;
  int empty_calls = 0;
  std::set<std::string> seen;
  while (!cursor.done && calls < 100'000) {
    list.clear();
    ASSERT_TRUE(store_->ListItems(quiet, &cursor, 64, false, /*may_block=*/true, &list));
    ++calls;
    if (list.items.empty() && !cursor.done) ++empty_calls;
    for (const ListedItem& item : list.items)
      EXPECT_TRUE(seen.insert(std::string(list.key(item))).second) << list.key(item);
  }
  EXPECT_EQ(seen, (std::set<std::string>{Key(0), Key(1), Key(2)}));
  // 200,000 items take as many slots at least: 32,768 at most a call.
  EXPECT_GE(calls, 7);
  EXPECT_GT(empty_calls, 0);
  // Every stretch (64 slots) counted once: as many as the walk read, no more than a call may.
  EXPECT_GE(cursor.stretches, 200'000u / 64);
  EXPECT_LE(cursor.stretches, uint64_t{Store::kListStretchesPerCall} * calls);
  // The default keyspace's batches are full until the end.
  cursor = ListCursor{};
  list.clear();
  ASSERT_TRUE(store_->ListItems(Keyspace{}, &cursor, 64, false, true, &list));
  EXPECT_GE(list.items.size(), 64u);
}

TEST_F(ListTest, ListedCasIsTheItemsCasAfterTheCleanerMovesIt) {
  Options o = test::TinyOptions(&clock_, /*extra_segments=*/16, /*eviction=*/true);
  Open(o);
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(store_->Set(Key(i), std::string(40, 'a')), Outcome::kStored);
  }
  std::map<std::string, ListedItem> listed = ListAll(Keyspace{}, 50, /*with_cas=*/true);
  ASSERT_EQ(listed.size(), 400u);
  // Half the items deleted, then the cleaner compacts the sparse segments: the rest move.
  for (int i = 0; i < 400; i += 2) ASSERT_EQ(store_->Delete(Key(i)), Outcome::kDeleted);
  const uint64_t moved_before = store_->GetStats().relocated_items;
  store_->RunCleanerOnce();
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(store_->Set("filler:" + std::to_string(i), std::string(40, 'b')), Outcome::kStored);
  }
  EXPECT_GT(store_->GetStats().relocated_items, moved_before)
      << "nothing moved: the test tests nothing";
  for (int i = 1; i < 400; i += 2) {
    ItemRef ref;
    ASSERT_TRUE(store_->Get(Key(i), &ref, /*with_cas=*/true)) << Key(i);
    EXPECT_NE(listed[Key(i)].cas, 0u);
    EXPECT_EQ(ref.cas(), listed[Key(i)].cas) << Key(i);
  }
}

// A writer deletes and adds other keys (the index shards shrink and grow) and the cleaner
// compacts the segments they leave sparse (the kept items move) while the walk goes on: the
// kept keys are listed exactly once.
TEST_F(ListTest, ConcurrentWritesNeitherHideNorRepeatOtherItems) {
  Options o = BaseOptions(32 << 20);
  o.segment_size = 64 << 10;
  o.index_shards = 2;
  o.background_cleaner = true;
  o.cleaner_interval_ms = 1;
  Open(o);
  for (int i = 0; i < 20'000; ++i) {
    ASSERT_EQ(store_->Set(Key(i), "stay"), Outcome::kStored);
    ASSERT_EQ(store_->Set("churn:" + std::to_string(i), std::string(i % 200, 'c')),
              Outcome::kStored);
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int round = 0; !stop.load(); ++round) {
      for (int i = 0; i < 20'000 && !stop.load(); ++i) {
        std::string k = "churn:" + std::to_string(i);
        if (round % 2 == 0) {
          store_->Delete(k);
        } else {
          store_->Set(k, std::string(i % 200, 'c'));
        }
      }
    }
  });
  std::map<std::string, ListedItem> all = ListAll(Keyspace{}, 16);
  stop.store(true);
  writer.join();
  for (int i = 0; i < 20'000; ++i) EXPECT_EQ(all.count(Key(i)), 1u) << Key(i);
}

// The same, deterministically: between batches other keys are deleted and added, so that the
// index resizes and the cleaner compacts (moves the kept items) in the middle of the walk.
TEST_F(ListTest, ItemsMovedAndIndexResizedBetweenBatchesAreListedOnce) {
  Options o = test::TinyOptions(&clock_, /*extra_segments=*/80, /*eviction=*/false);
  Open(o);
  auto churn = [](int i) { return "churn:" + std::to_string(i); };
  for (int i = 0; i < 3000; ++i) {
    if (i < 600) ASSERT_EQ(store_->Set(Key(i), "stay"), Outcome::kStored);
    ASSERT_EQ(store_->Set(churn(i), "c"), Outcome::kStored);
  }
  const StoreStats before = store_->GetStats();
  std::map<std::string, int> seen;
  ListCursor cursor;
  ItemList list;
  for (int batch = 0; !cursor.done; ++batch) {
    list.clear();
    ASSERT_TRUE(store_->ListItems(Keyspace{}, &cursor, 20, false, true, &list));
    for (const ListedItem& item : list.items) ++seen[std::string(list.key(item))];
    if (batch % 2 == 0) {
      for (int i = 0; i < 3000; ++i) store_->Delete(churn(i));
      store_->RunCleanerOnce();
    } else {
      // More than the free memory: the writes make room by compacting (eviction is off).
      for (int i = 0; i < 3000; ++i) store_->Set(churn(i), std::string(100, 'c'));
    }
  }
  const StoreStats after = store_->GetStats();
  EXPECT_GT(after.relocated_items, before.relocated_items);
  EXPECT_GT(after.index_resizes, before.index_resizes);
  for (int i = 0; i < 600; ++i) EXPECT_EQ(seen[Key(i)], 1) << Key(i);
  for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key;
}

}  // namespace
}  // namespace cinch
