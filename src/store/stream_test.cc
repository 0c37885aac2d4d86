// Streaming writes (Store::BeginWrite, ValueWriter; docs/keyspaces.md) through the public API:
// memory reserved once and counted against the limit, values invisible until committed, and
// the cleaner, eviction and flush_all correct while reservations are outstanding.
//
// Time comes from a ManualClock and the background cleaner is off.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
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
#include "store/store_fixture.h"
#include "store/test_data.h"

namespace cinch {

static void PrintTo(Outcome outcome, std::ostream* os) { *os << OutcomeName(outcome); }

namespace {

constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;
constexpr Keyspace kBlobs{3};

using test::Key;
using test::Pattern;

class StreamTest : public test::StoreFixture {
 protected:
  Options RoomyOptions() {
    Options o = BaseOptions(64 * kMiB);
    o.max_item_size = 8 * kMiB;
    return o;
  }

  // Resident bytes other than metadata (a keyspace's heads and segment table pages are charged
  // when first used, and kept).
  uint64_t Resident() {
    StoreStats st = store_->GetStats();
    return st.resident_bytes - st.metadata_bytes;
  }

  // Fills the writer's value in `chunks` pieces, as a body arriving over time would.
  static void Fill(ValueWriter& w, const std::string& value, int chunks = 4) {
    ASSERT_EQ(w.size(), value.size());
    size_t step = value.size() / chunks + 1;
    for (size_t at = 0; at < value.size(); at += step) {
      std::memcpy(w.data() + at, value.data() + at, std::min(step, value.size() - at));
    }
  }
};

// Small values are staged (copied at commit), large ones written in place in their own
// mapping: both publish only on Commit.
TEST_F(StreamTest, ReadersSeeTheValueOnlyOnceCommitted) {
  Open(RoomyOptions());
  for (size_t size : {size_t{0}, size_t{100}, 128 * kKiB, 3 * kMiB}) {
    SCOPED_TRACE(size);
    const std::string key = "blob" + std::to_string(size);
    const std::string value = Pattern(size, static_cast<uint32_t>(size));
    ASSERT_EQ(store_->Write(kBlobs, SetMode::kSet, key, "old", 0, 0), Outcome::kStored);
    ValueWriter w;
    ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, key, size, 42, 0, &w), Outcome::kStored);
    ASSERT_TRUE(w);
    EXPECT_EQ(store_->GetStats().pending_writes, 1u);
    EXPECT_EQ(store_->GetKeyspaceStats(kBlobs).pending_write_bytes >= size, true);
    Fill(w, value);
    EXPECT_EQ(Value(kBlobs, key), "old") << "an uncommitted value is never read";
    EXPECT_EQ(Value(Keyspace{}, key), std::nullopt);
    EXPECT_EQ(w.Commit(), Outcome::kStored);
    EXPECT_FALSE(w);
    ItemRef ref;
    ASSERT_TRUE(store_->Get(kBlobs, key, &ref));
    EXPECT_EQ(ref.value(), value);
    EXPECT_EQ(ref.flags(), 42u);
    ref.Reset();
    StoreStats st = store_->GetStats();
    EXPECT_EQ(st.pending_writes, 0u);
    EXPECT_EQ(st.staging_bytes, 0u);
    EXPECT_EQ(store_->GetKeyspaceStats(kBlobs).pending_write_bytes, 0u);
  }
}

TEST_F(StreamTest, AbortAndDestructionGiveTheMemoryBack) {
  Open(RoomyOptions());
  const uint64_t before = Resident();
  for (size_t size : {size_t{1000}, 5 * kMiB}) {
    SCOPED_TRACE(size);
    {
      ValueWriter w;
      ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "k", size, 0, 0, &w), Outcome::kStored);
      EXPECT_GE(Resident(), before + size) << "charged at once";
      Fill(w, Pattern(size, 1));
      w.Abort();
      EXPECT_FALSE(w);
      w.Abort();  // a second abort is a no-op
    }
    EXPECT_EQ(Resident(), before);
    {
      ValueWriter w;
      ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "k", size, 0, 0, &w), Outcome::kStored);
    }  // destroyed unfinished: aborted
    EXPECT_EQ(Resident(), before);
    EXPECT_EQ(Value(kBlobs, "k"), std::nullopt);
  }
  // Moving a writer moves the pending write; assigning over one aborts it.
  ValueWriter a, b;
  ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "a", 10, 0, 0, &a), Outcome::kStored);
  ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "b", 2 * kMiB, 0, 0, &b), Outcome::kStored);
  std::memset(a.data(), 'a', 10);
  b = std::move(a);  // the 2 MiB write is dropped
  EXPECT_FALSE(a);
  EXPECT_EQ(store_->GetStats().pending_writes, 1u);
  EXPECT_EQ(b.Commit(), Outcome::kStored);
  EXPECT_EQ(Value(kBlobs, "a"), std::string(10, 'a'));
  EXPECT_EQ(Value(kBlobs, "b"), std::nullopt);
  store_->RunCleanerOnce();
  EXPECT_EQ(store_->GetStats().jumbo_bytes, 0u);
}

TEST_F(StreamTest, AddIsCheckedAtBeginAndAgainAtCommit) {
  Open(RoomyOptions());
  ASSERT_EQ(store_->Write(kBlobs, SetMode::kSet, "present", "v", 0, 0), Outcome::kStored);
  ValueWriter w;
  EXPECT_EQ(store_->BeginWrite(kBlobs, SetMode::kAdd, "present", 10, 0, 0, &w),
            Outcome::kNotStored);
  EXPECT_FALSE(w);
  const uint64_t before = Resident();
  for (size_t size : {size_t{10}, 2 * kMiB}) {
    ValueWriter first, second;
    ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kAdd, "race", size, 0, 0, &first),
              Outcome::kStored);
    ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kAdd, "race", size, 0, 0, &second),
              Outcome::kStored);
    Fill(first, Pattern(size, 1));
    Fill(second, Pattern(size, 2));
    EXPECT_EQ(second.Commit(), Outcome::kStored);
    EXPECT_EQ(first.Commit(), Outcome::kNotStored) << "the key appeared meanwhile";
    EXPECT_EQ(Value(kBlobs, "race"), Pattern(size, 2));
    ASSERT_EQ(store_->Delete(kBlobs, "race"), Outcome::kDeleted);
  }
  store_->RunCleanerOnce();
  EXPECT_EQ(Resident(), before) << "the losers' memory came back";
}

TEST_F(StreamTest, RefusesWhatWriteRefuses) {
  Options o = RoomyOptions();
  o.max_item_size = 1 * kMiB;
  Open(o);
  ASSERT_EQ(store_->Write(kBlobs, SetMode::kSet, "k", "kept", 0, 0), Outcome::kStored);
  ValueWriter w;
  EXPECT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "k", 1 * kMiB, 0, 0, &w), Outcome::kTooLarge);
  EXPECT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "k", ~size_t{0}, 0, 0, &w),
            Outcome::kTooLarge);
  EXPECT_EQ(Value(kBlobs, "k"), "kept");
  EXPECT_EQ(store_->BeginWrite(kBlobs, SetMode::kReplace, "k", 1, 0, 0, &w), Outcome::kNotStored);
  EXPECT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "", 1, 0, 0, &w), Outcome::kNotStored);
  EXPECT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, std::string(251, 'k'), 1, 0, 0, &w),
            Outcome::kNotStored);
  EXPECT_FALSE(w);
  EXPECT_EQ(store_->GetStats().pending_writes, 0u);
}

// The exptime counts from BeginWrite; a value whose expiry passed before its commit is
// stored invisible (and removes the current one), as a write born expired.
TEST_F(StreamTest, ExpiryCountsFromBegin) {
  Open(RoomyOptions());
  for (size_t size : {size_t{50}, 2 * kMiB}) {
    ASSERT_EQ(store_->Write(kBlobs, SetMode::kSet, "e", "old", 0, 0), Outcome::kStored);
    ValueWriter w;
    ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "e", size, 0, 10, &w), Outcome::kStored);
    clock_.Advance(5);
    ValueWriter v;
    ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "f", size, 0, 10, &v), Outcome::kStored);
    ASSERT_EQ(v.Commit(), Outcome::kStored);
    ItemRef ref;
    ASSERT_TRUE(store_->Get(kBlobs, "f", &ref));
    EXPECT_EQ(ref.expiry(), clock_.NowSeconds() + 10);
    ref.Reset();
    clock_.Advance(6);
    EXPECT_EQ(w.Commit(), Outcome::kStored);
    EXPECT_EQ(Value(kBlobs, "e"), std::nullopt);
    EXPECT_TRUE(Value(kBlobs, "f").has_value()) << "its own 10 s are not over";
  }
}

// A large reservation is charged in full and made room for by eviction; with eviction off, it
// fails rather than exceed the limit.
TEST_F(StreamTest, ReservationsCountAgainstTheLimit) {
  for (bool eviction : {true, false}) {
    SCOPED_TRACE(eviction);
    Options o;
    o.memory_limit = 16 * kMiB;
    o.segment_size = 256 * kKiB;
    o.max_item_size = 6 * kMiB;
    o.eviction = eviction;
    o.background_cleaner = false;
    o.clock = &clock_;
    Open(o);
    int stored = 0;
    for (int i = 0; i < 300; ++i) {
      stored += store_->Write(Keyspace{}, SetMode::kSet, Key(i), Pattern(40 * kKiB, i), 0, 0) ==
                Outcome::kStored;
    }
    ASSERT_GT(stored, 100);
    std::vector<ValueWriter> writers(4);
    int begun = 0;
    for (ValueWriter& w : writers) {
      Outcome o2 = store_->BeginWrite(kBlobs, SetMode::kSet, "big" + std::to_string(begun),
                                      5 * kMiB, 0, 0, &w);
      if (o2 != Outcome::kStored) {
        EXPECT_EQ(o2, Outcome::kOutOfMemory);
        break;
      }
      ++begun;
      EXPECT_LE(store_->GetStats().resident_bytes, o.memory_limit);
    }
    if (eviction) {
      EXPECT_EQ(begun, 3) << "three 5 MiB reservations fit a 16 MiB store once it evicts, not 4";
      EXPECT_GT(store_->GetStats().evictions, 0u);
    } else {
      EXPECT_LT(begun, 3);
      EXPECT_EQ(store_->GetStats().evictions, 0u);
    }
    for (int i = 0; i < begun; ++i) {
      Fill(writers[i], Pattern(5 * kMiB, 100 + i));
      EXPECT_EQ(writers[i].Commit(), Outcome::kStored);
      EXPECT_EQ(Value(kBlobs, "big" + std::to_string(i)), Pattern(5 * kMiB, 100 + i));
    }
    EXPECT_LE(store_->GetStats().resident_bytes, o.memory_limit);
    store_.reset();
  }
}

// Outstanding reservations, large and small, while the cleaner compacts and evicts everything
// around them and a flush_all passes: nothing is lost or freed under the writer, and a value
// committed after the flush is visible (it was stored after it).
TEST_F(StreamTest, CleanerEvictionAndFlushWithReservationsOutstanding) {
  Options o;
  o.memory_limit = 16 * kMiB;
  o.segment_size = 256 * kKiB;
  o.max_item_size = 4 * kMiB;
  o.background_cleaner = false;
  o.clock = &clock_;
  Open(o);
  ValueWriter big, small, flushed_after;
  ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "big", 3 * kMiB, 0, 0, &big),
            Outcome::kStored);
  ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "small", 3000, 0, 0, &small),
            Outcome::kStored);
  Fill(big, Pattern(3 * kMiB, 7), 2);
  // Churn: many times the memory, in two keyspaces, with cleaner passes.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(store_->Write(Keyspace{static_cast<uint16_t>(i % 2)}, SetMode::kSet, Key(i % 1000),
                            Pattern(20 * kKiB + i % 3000, i), 0, 0),
              Outcome::kStored);
    if (i % 200 == 0) store_->RunCleanerOnce();
  }
  EXPECT_GT(store_->GetStats().evictions, 0u);
  Fill(small, Pattern(3000, 8));
  store_->FlushAll();
  store_->RunCleanerOnce();
  ASSERT_EQ(store_->BeginWrite(kBlobs, SetMode::kSet, "third", 1 * kMiB, 0, 0, &flushed_after),
            Outcome::kStored);
  store_->FlushAll();
  store_->RunCleanerOnce();
  EXPECT_EQ(big.Commit(), Outcome::kStored);
  EXPECT_EQ(small.Commit(), Outcome::kStored);
  Fill(flushed_after, Pattern(1 * kMiB, 9));
  EXPECT_EQ(flushed_after.Commit(), Outcome::kStored);
  store_->RunCleanerOnce();
  EXPECT_EQ(Value(kBlobs, "big"), Pattern(3 * kMiB, 7));
  EXPECT_EQ(Value(kBlobs, "small"), Pattern(3000, 8));
  EXPECT_EQ(Value(kBlobs, "third"), Pattern(1 * kMiB, 9));
  EXPECT_EQ(store_->GetStats().items, 3u);
  EXPECT_LE(store_->GetStats().resident_bytes, o.memory_limit);
}

}  // namespace
}  // namespace cinch
