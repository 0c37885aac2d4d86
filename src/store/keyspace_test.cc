// Keyspaces (docs/keyspaces.md) through the public API: the same key in two keyspaces is two
// items, through every operation and through the cleaner's moves, evictions and flushes.
//
// Time comes from a ManualClock and the background cleaner is off, so every test is
// deterministic; RunCleanerOnce() forces a cleaner pass where one is needed.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "common/hash.h"
#include "index/hash_index.h"
#include "store/store_fixture.h"
#include "store/test_data.h"

namespace cinch {

static void PrintTo(Outcome outcome, std::ostream* os) { *os << OutcomeName(outcome); }

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;
constexpr Keyspace kDefault{};
constexpr Keyspace kOne{1};
constexpr Keyspace kFar{40000};  // in another leaf of the keyspace directory

using test::Key;
using test::Pattern;

class KeyspaceTest : public test::StoreFixture {
 protected:
  Options RoomyOptions() { return BaseOptions(64 * kMiB); }

  // 4 KiB segments, `extra_segments` above the minimum Open accepts.
  Options TinyOptions(size_t extra_segments, bool eviction) {
    return test::TinyOptions(&clock_, extra_segments, eviction);
  }
};

TEST_F(KeyspaceTest, SameKeyInTwoKeyspacesIsTwoItems) {
  Open(RoomyOptions());
  ASSERT_EQ(store_->Set("k", "default"), Outcome::kStored);
  ASSERT_EQ(store_->Write(kOne, SetMode::kSet, "k", "one", 1, 0), Outcome::kStored);
  ASSERT_EQ(store_->Write(kFar, SetMode::kSet, "k", "far", 2, 0), Outcome::kStored);
  EXPECT_EQ(Value(kDefault, "k"), "default");
  EXPECT_EQ(Value(kOne, "k"), "one");
  EXPECT_EQ(Value(kFar, "k"), "far");
  EXPECT_EQ(Value(Keyspace{2}, "k"), std::nullopt) << "a keyspace never written";
  ItemRef ref;
  ASSERT_TRUE(store_->Get("k", &ref));  // the signatures without a keyspace are keyspace 0
  EXPECT_EQ(ref.value(), "default");
  ref.Reset();

  // Conditional writes look at their own keyspace only.
  EXPECT_EQ(store_->Write(kOne, SetMode::kAdd, "k", "x", 0, 0), Outcome::kNotStored);
  EXPECT_EQ(store_->Write(Keyspace{2}, SetMode::kReplace, "k", "x", 0, 0), Outcome::kNotStored);
  EXPECT_EQ(store_->Write(Keyspace{2}, SetMode::kAdd, "k", "two", 0, 0), Outcome::kStored);
  EXPECT_EQ(store_->Write(kOne, SetMode::kAppend, "k", "+", 0, 0), Outcome::kStored);
  EXPECT_EQ(Value(kOne, "k"), "one+");
  EXPECT_EQ(Value(kDefault, "k"), "default");

  // CAS values of one keyspace do not match another's item.
  ASSERT_TRUE(store_->Get(kOne, "k", &ref, /*with_cas=*/true));
  const uint64_t cas_one = ref.cas();
  ref.Reset();
  ASSERT_TRUE(store_->Get(kFar, "k", &ref, /*with_cas=*/true));
  EXPECT_NE(ref.cas(), cas_one);
  ref.Reset();
  EXPECT_EQ(store_->Write(kOne, SetMode::kCas, "k", "cas", 0, 0, cas_one), Outcome::kStored);
  EXPECT_EQ(Value(kOne, "k"), "cas");

  // Delete, touch, arithmetic, meta get and invalidate: each in its own keyspace.
  EXPECT_EQ(store_->Delete(kFar, "k"), Outcome::kDeleted);
  EXPECT_EQ(store_->Delete(kFar, "k"), Outcome::kNotFound);
  EXPECT_EQ(Value(kDefault, "k"), "default");
  EXPECT_EQ(Value(kOne, "k"), "cas");
  EXPECT_EQ(store_->Touch(kFar, "k", 100), Outcome::kNotFound);
  EXPECT_EQ(store_->Touch(kOne, "k", 100), Outcome::kTouched);
  ASSERT_TRUE(store_->Get(kOne, "k", &ref));
  EXPECT_EQ(ref.expiry(), clock_.NowSeconds() + 100);
  ref.Reset();
  ASSERT_TRUE(store_->Get("k", &ref));
  EXPECT_EQ(ref.expiry(), 0) << "the touch reached another keyspace";
  ref.Reset();
  ASSERT_EQ(store_->Write(kOne, SetMode::kSet, "n", "5", 0, 0), Outcome::kStored);
  ASSERT_EQ(store_->Set("n", "100"), Outcome::kStored);
  uint64_t result = 0;
  EXPECT_EQ(store_->Incr(kOne, "n", 2, &result), Outcome::kStored);
  EXPECT_EQ(result, 7u);
  EXPECT_EQ(store_->Decr(kOne, "n", 10, &result), Outcome::kStored);
  EXPECT_EQ(result, 0u);
  EXPECT_EQ(store_->Incr(kFar, "n", 1, &result), Outcome::kNotFound);
  EXPECT_EQ(Value(kDefault, "n"), "100");
  EXPECT_EQ(store_->GetAndTouch(kFar, "n", 10, &ref), Outcome::kNotFound);
  EXPECT_EQ(store_->GetAndTouch(kOne, "n", 10, &ref), Outcome::kTouched);
  ref.Reset();
  FetchOptions vivify;
  vivify.vivify = true;
  FetchResult fr;
  ASSERT_TRUE(store_->Fetch(kFar, "n", vivify, &ref, &fr));
  EXPECT_TRUE(fr.created) << "vivified in its own keyspace";
  ref.Reset();
  EXPECT_EQ(Value(kDefault, "n"), "100");
  EXPECT_EQ(store_->Invalidate(kOne, "n", 0, false, 0), Outcome::kStored);
  ASSERT_TRUE(store_->Peek(kOne, "n", &ref));
  EXPECT_TRUE(ref.stale());
  ref.Reset();
  ASSERT_TRUE(store_->Peek("n", &ref));
  EXPECT_FALSE(ref.stale());
}

// The keyspace seeds the hash, so the same key in two keyspaces rarely shares an index tag;
// when it does (1 in 2^21 with one shard), the lookup still tells the items apart by the
// keyspace of their segments. Find such a key and check.
TEST_F(KeyspaceTest, KeysWhoseHashesCollideAcrossKeyspaces) {
  Options o = RoomyOptions();
  o.index_shards = 1;
  Open(o);
  std::string key;
  uint16_t other = 0;
  for (uint64_t i = 0; other == 0 && i < (uint64_t{1} << 26); ++i) {
    std::string k = std::to_string(i) + "c";  // ("c" + ...: a GCC 12 -Wrestrict false positive)
    uint16_t ks = static_cast<uint16_t>(1 + i % 7);
    if (index::TagOf(HashKey(k, 0)) == index::TagOf(HashKey(k, ks))) {
      key = k;
      other = ks;
    }
  }
  ASSERT_NE(other, 0) << "no colliding key found";
  const Keyspace ks{other};
  ASSERT_EQ(store_->Set(key, "zero"), Outcome::kStored);
  EXPECT_EQ(Value(ks, key), std::nullopt);
  EXPECT_EQ(store_->Write(ks, SetMode::kAdd, key, "other", 0, 0), Outcome::kStored);
  EXPECT_EQ(Value(kDefault, key), "zero");
  EXPECT_EQ(Value(ks, key), "other");
  EXPECT_EQ(store_->Delete(ks, key), Outcome::kDeleted);
  EXPECT_EQ(Value(kDefault, key), "zero");
  EXPECT_EQ(store_->Delete(ks, key), Outcome::kNotFound);
  ASSERT_EQ(store_->Write(ks, SetMode::kSet, key, "again", 0, 0), Outcome::kStored);
  EXPECT_EQ(store_->Delete(kDefault, key), Outcome::kDeleted);
  EXPECT_EQ(Value(ks, key), "again");
}

TEST_F(KeyspaceTest, StatsCountEachKeyspace) {
  Open(RoomyOptions());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(store_->Set(Key(i), "vv"), Outcome::kStored);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(store_->Write(kOne, SetMode::kSet, Key(i), "value", 0, 0), Outcome::kStored);
  }
  KeyspaceStats one = store_->GetKeyspaceStats(kOne);
  EXPECT_EQ(one.items, 4u);
  EXPECT_EQ(one.key_value_bytes, 4 * (Key(0).size() + 5));
  EXPECT_GT(one.item_bytes, one.key_value_bytes);
  KeyspaceStats zero = store_->GetKeyspaceStats(kDefault);
  EXPECT_EQ(zero.items, 10u);
  EXPECT_EQ(zero.key_value_bytes, 10 * (Key(0).size() + 2));
  EXPECT_EQ(store_->GetStats().items, 14u);
  EXPECT_EQ(store_->GetKeyspaceStats(Keyspace{9}).items, 0u);
  std::vector<uint16_t> ids;
  for (Keyspace ks : store_->Keyspaces()) ids.push_back(ks.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint16_t>{kDefault.id, kOne.id}));
  ASSERT_EQ(store_->Delete(kOne, Key(0)), Outcome::kDeleted);
  EXPECT_EQ(store_->GetKeyspaceStats(kOne).items, 3u);
  EXPECT_EQ(store_->GetKeyspaceStats(kDefault).items, 10u);
}

// Every keyspace has write heads of its own; keyspaces gone quiet must not keep their open
// segments (which no cleaner takes) once memory is short.
TEST_F(KeyspaceTest, QuietKeyspacesDoNotPinOpenSegments) {
  Options o = TinyOptions(/*extra_segments=*/24, /*eviction=*/true);
  o.compact_max_live = 0.05;  // room comes from eviction (oldest segments first), not compaction
  Open(o);
  // Open a segment in each of 20 keyspaces, with live items in it.
  for (uint16_t ks = 1; ks <= 20; ++ks) {
    ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, "a", Pattern(500, ks), 0, 0),
              Outcome::kStored);
  }
  clock_.Advance(10);
  // Keyspace 0 now needs the memory: the quiet heads are sealed and become evictable.
  int stored = 0;
  for (int i = 0; i < 400; ++i) stored += store_->Set(Key(i), Pattern(300, i)) == Outcome::kStored;
  EXPECT_EQ(stored, 400);
  StoreStats st = store_->GetStats();
  EXPECT_LE(st.resident_bytes, o.memory_limit);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.out_of_memory, 0u);
  // The quiet keyspaces' segments, the oldest, were sealed and evicted first.
  int gone = 0;
  for (uint16_t ks = 1; ks <= 20; ++ks) gone += store_->GetKeyspaceStats(Keyspace{ks}).items == 0;
  EXPECT_GE(gone, 15);
}

// The cleaner moves and evicts items of several keyspaces: whatever survives is in its own
// keyspace with its own value, and nothing crosses over.
TEST_F(KeyspaceTest, CompactionAndEvictionKeepKeyspacesApart) {
  Options o = TinyOptions(/*extra_segments=*/16, /*eviction=*/true);
  Open(o);
  auto value = [](uint16_t ks, int i, int version) {
    return "ks" + std::to_string(ks) + ":" + std::to_string(i) + ":" + std::to_string(version) +
           Pattern(40 + (i * 7) % 200, i);
  };
  std::vector<std::vector<int>> version(3, std::vector<int>(300, -1));
  for (int round = 0; round < 12; ++round) {
    for (uint16_t ks = 0; ks < 3; ++ks) {
      for (int i = round % 3; i < 300; i += 2 + ks) {
        ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, Key(i), value(ks, i, round), 0, 0),
                  Outcome::kStored);
        version[ks][i] = round;
        if (i % 5 == 0) {
          ItemRef ref;
          store_->Get(Keyspace{ks}, Key(i), &ref);  // a read: a second chance on eviction
        }
      }
      // Some deletes, so that compaction has sparse segments to take.
      for (int i = round % 7; i < 300; i += 9) {
        store_->Delete(Keyspace{ks}, Key(i));
        version[ks][i] = -1;
      }
    }
    store_->RunCleanerOnce();
  }
  StoreStats st = store_->GetStats();
  EXPECT_GT(st.relocated_items, 0u) << "compaction never ran";
  EXPECT_GT(st.evictions, 0u) << "eviction never ran";
  int found = 0;
  for (uint16_t ks = 0; ks < 3; ++ks) {
    for (int i = 0; i < 300; ++i) {
      std::optional<std::string> got = Value(Keyspace{ks}, Key(i));
      if (version[ks][i] < 0) {
        EXPECT_EQ(got, std::nullopt) << "deleted key " << i << " in keyspace " << ks;
      } else if (got.has_value()) {
        ++found;
        EXPECT_EQ(*got, value(ks, i, version[ks][i])) << "key " << i << " in keyspace " << ks;
      }
    }
  }
  EXPECT_GT(found, 0);
  uint64_t items = 0;
  for (uint16_t ks = 0; ks < 3; ++ks) items += store_->GetKeyspaceStats(Keyspace{ks}).items;
  EXPECT_EQ(items, store_->GetStats().items);
}

TEST_F(KeyspaceTest, FlushAllIsGlobal) {
  Open(RoomyOptions());
  ASSERT_EQ(store_->Set("k", "0"), Outcome::kStored);
  ASSERT_EQ(store_->Write(kOne, SetMode::kSet, "k", "1", 0, 0), Outcome::kStored);
  store_->FlushAll();
  EXPECT_EQ(Value(kDefault, "k"), std::nullopt);
  EXPECT_EQ(Value(kOne, "k"), std::nullopt);
  ASSERT_EQ(store_->Write(kOne, SetMode::kSet, "k", "again", 0, 0), Outcome::kStored);
  store_->RunCleanerOnce();
  EXPECT_EQ(Value(kOne, "k"), "again");
  EXPECT_EQ(store_->GetKeyspaceStats(kOne).items, 1u);
}

// A new keyspace's heads are charged: on a store full of keyspace 0's items, creating one
// makes room (with eviction) rather than failing.
TEST_F(KeyspaceTest, NewKeyspaceOnAFullStore) {
  Options o = TinyOptions(/*extra_segments=*/8, /*eviction=*/true);
  Open(o);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(store_->Set(Key(i), Pattern(200, i)), Outcome::kStored);
  for (uint16_t ks = 1; ks <= 8; ++ks) {
    ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, "x", "y", 0, 0), Outcome::kStored) << ks;
    EXPECT_EQ(Value(Keyspace{ks}, "x"), "y");
  }
  EXPECT_LE(store_->GetStats().resident_bytes, o.memory_limit);
}

// More keyspaces written round robin than memory has segments for their open heads, with a
// clock that does not move: no head is ever idle for kIdleSealSeconds. Every write must still
// be stored at once (busy heads give up their tails), never wait for heads to go idle.
TEST_F(KeyspaceTest, MoreBusyKeyspacesThanSegments) {
  Options o = TinyOptions(/*extra_segments=*/8, /*eviction=*/true);
  Open(o);
  const uint64_t segments = o.memory_limit / o.segment_size;
  const uint16_t keyspaces = static_cast<uint16_t>(2 * segments);
  for (int round = 0; round < 4; ++round) {
    for (uint16_t ks = 1; ks <= keyspaces; ++ks) {
      const std::string key = "k" + std::to_string(round);
      ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, key, Pattern(100, ks), 0, 0),
                Outcome::kStored)
          << "round " << round << " keyspace " << ks;
      EXPECT_EQ(Value(Keyspace{ks}, key), Pattern(100, ks));
    }
  }
  StoreStats st = store_->GetStats();
  EXPECT_LE(st.resident_bytes, o.memory_limit);
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.out_of_memory, 0u);
}

// A keyspace's only segment (its other segments open heads) is never compacted: its items
// would only move into a new segment of their own keyspace, one segment for another, and the
// next pass would do it again. It is evicted instead. Here every keyspace's head goes idle
// and is sealed (a quiet keyspace) while more keyspaces are written than there are segments.
TEST_F(KeyspaceTest, LoneSegmentOfAKeyspaceIsEvictedNotCompacted) {
  Options o = TinyOptions(/*extra_segments=*/8, /*eviction=*/true);
  Open(o);
  const auto keyspaces = static_cast<uint16_t>(o.memory_limit / o.segment_size);
  for (int round = 0; round < 2; ++round) {
    for (uint16_t ks = 1; ks <= keyspaces; ++ks) {
      const uint16_t id = static_cast<uint16_t>(ks + round * keyspaces);
      ASSERT_EQ(store_->Write(Keyspace{id}, SetMode::kSet, "k", Pattern(100, id), 0, 0),
                Outcome::kStored);
    }
    clock_.Advance(3);  // every head idle: sealed by the next pass short of memory
  }
  StoreStats st = store_->GetStats();
  EXPECT_GT(st.evictions, 0u);
  EXPECT_EQ(st.segments_compacted, 0u);
  EXPECT_EQ(st.relocated_items, 0u);
  EXPECT_LE(st.resident_bytes, o.memory_limit);
}

// In the same regime, the heads sealed for room are those holding the fewest live bytes: the
// keyspaces whose heads have filled keep their items, and the newest heads (of the keyspaces
// memory has no room for) are the ones evicted, rather than every head in turn.
TEST_F(KeyspaceTest, BusyHeadsSealedForRoomAreTheEmptiest) {
  Options o = TinyOptions(/*extra_segments=*/8, /*eviction=*/true);
  Open(o);
  constexpr uint16_t kFilled = 3;  // keyspaces 1..3: ten items each
  constexpr int kItems = 10;
  for (uint16_t ks = 1; ks <= kFilled; ++ks) {
    for (int i = 0; i < kItems; ++i) {
      ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, Key(i), Pattern(100, i), 0, 0),
                Outcome::kStored);
    }
  }
  // Then one item each in many more keyspaces than there are segments, twice round, while
  // the filled keyspaces are written too (one item more each round: busy, not quiet).
  const auto keyspaces = static_cast<uint16_t>(2 * o.memory_limit / o.segment_size);
  for (int round = 0; round < 2; ++round) {
    for (uint16_t ks = kFilled + 1; ks <= kFilled + keyspaces; ++ks) {
      ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, "k", Pattern(100, ks), 0, 0),
                Outcome::kStored);
    }
    for (uint16_t ks = 1; ks <= kFilled; ++ks) {
      ASSERT_EQ(store_->Write(Keyspace{ks}, SetMode::kSet, Key(kItems + round), "x", 0, 0),
                Outcome::kStored);
    }
  }
  for (uint16_t ks = 1; ks <= kFilled; ++ks) {
    for (int i = 0; i < kItems; ++i) {
      EXPECT_EQ(Value(Keyspace{ks}, Key(i)), Pattern(100, i)) << "keyspace " << ks << " item " << i;
    }
  }
  StoreStats st = store_->GetStats();
  EXPECT_GT(st.evictions, 0u);
  EXPECT_LE(st.resident_bytes, o.memory_limit);
}

}  // namespace
}  // namespace cinch
