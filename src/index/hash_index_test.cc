#include "index/hash_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/hash.h"
#include "mem/smaps_for_test.h"

namespace cinch::index {
namespace {

using InsertResult = HashIndex::InsertResult;

constexpr size_t kNoLimit = size_t{1} << 40;
constexpr size_t kPageBytes = HashIndex::kBucketsPerPage * sizeof(Bucket);

uint64_t HashWithTag(uint32_t tag, uint64_t low_bits = 0) {
  return (uint64_t{tag} << (64 - kTagBits)) | low_bits;
}

double Capacity(const Shard& shard) { return static_cast<double>(shard.buckets) * kSlotsPerBucket; }

// Drives a HashIndex like the store does, next to a model: key -> (hash, location), with a
// fresh unique location per insert and a `matches` predicate that asks the model which key a
// location belongs to, so tag collisions are resolved as by comparing keys in segment memory.
class IndexHarness {
 public:
  IndexHarness(HashIndex::Config config, size_t limit, std::optional<uint32_t> force_shard)
      : accountant_(limit), shards_(config.shards), force_shard_(force_shard) {
    Status s = HashIndex::Create(config, &accountant_, &index_);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }

  HashIndex& index() { return *index_; }
  mem::Accountant& accountant() { return accountant_; }
  Shard& ShardOf(uint64_t key) { return index_->ShardFor(HashOf(key)); }
  const std::unordered_map<uint64_t, uint64_t>& locations() const { return location_of_; }

  // The key's hash: a real key hash, optionally steered into one shard.
  uint64_t HashOf(uint64_t key) const {
    auto it = hash_override_.find(key);
    if (it != hash_override_.end()) return it->second;
    uint64_t h = HashKey(std::string_view(reinterpret_cast<const char*>(&key), sizeof(key)));
    if (force_shard_) h = (h & ~uint64_t{shards_ - 1}) | *force_shard_;
    return h;
  }
  void SetHash(uint64_t key, uint64_t hash) { hash_override_[key] = hash; }

  bool Contains(uint64_t key) const { return location_of_.count(key) != 0; }

  uint64_t* FindLocked(Shard& shard, uint64_t key) {
    return index_->Find(shard, HashOf(key), [this, key](uint64_t location) {
      auto it = key_at_.find(location);
      return it != key_at_.end() && it->second == key;
    });
  }

  // Find under the shard lock; returns the slot's value or 0 when absent.
  uint64_t Lookup(uint64_t key) {
    Shard& shard = ShardOf(key);
    std::lock_guard<SpinLock> lock(shard.lock);
    uint64_t* slot = FindLocked(shard, key);
    return slot == nullptr ? 0 : *slot;
  }

  InsertResult Insert(uint64_t key, uint32_t freq = 0) {
    EXPECT_FALSE(Contains(key));
    uint64_t location = next_location_++;
    Shard& shard = ShardOf(key);
    std::lock_guard<SpinLock> lock(shard.lock);
    InsertResult r = index_->Insert(shard, HashOf(key), location, freq);
    if (r == InsertResult::kOk) {
      location_of_[key] = location;
      key_at_[location] = key;
    }
    return r;
  }

  // InsertIfAbsent of `key` (which may be present): the model's matches, as Find's.
  InsertResult InsertIfAbsent(uint64_t key, uint32_t freq = 0, bool cas = false) {
    uint64_t location = next_location_++;
    Shard& shard = ShardOf(key);
    std::lock_guard<SpinLock> lock(shard.lock);
    uint64_t slot = MakeSlot(TagOf(HashOf(key)), freq, location) | (cas ? kCasExposedBit : 0);
    InsertResult r = index_->InsertIfAbsent(shard, slot, [this, key](uint64_t l) {
      auto it = key_at_.find(l);
      return it != key_at_.end() && it->second == key;
    });
    if (r == InsertResult::kOk) {
      EXPECT_FALSE(Contains(key)) << "key " << key << " inserted twice";
      location_of_[key] = location;
      key_at_[location] = key;
    } else if (r == InsertResult::kExists) {
      EXPECT_TRUE(Contains(key)) << "key " << key << " said present";
    }
    return r;
  }

  void Erase(uint64_t key) {
    Shard& shard = ShardOf(key);
    std::lock_guard<SpinLock> lock(shard.lock);
    uint64_t* slot = FindLocked(shard, key);
    ASSERT_NE(slot, nullptr) << "key " << key;
    index_->Erase(shard, slot);
    key_at_.erase(location_of_[key]);
    location_of_.erase(key);
  }

  // Points the key at a new location, as the cleaner does when it moves an item.
  void Move(uint64_t key) {
    Shard& shard = ShardOf(key);
    std::lock_guard<SpinLock> lock(shard.lock);
    uint64_t old_location = location_of_.at(key);
    uint64_t* slot = index_->FindLocation(shard, HashOf(key), old_location);
    ASSERT_NE(slot, nullptr);
    uint64_t location = next_location_++;
    *slot = WithLocation(*slot, location);
    key_at_.erase(old_location);
    key_at_[location] = key;
    location_of_[key] = location;
  }

  // Removes keys from the model whose location satisfies drop (after EraseIf dropped them).
  template <typename Drop>
  size_t ForgetIf(Drop&& drop) {
    size_t n = 0;
    for (auto it = location_of_.begin(); it != location_of_.end();) {
      if (drop(it->second)) {
        key_at_.erase(it->second);
        it = location_of_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  // Every model key is found at its location with its tag; nothing else is live; the memory
  // charged for the index is exactly the tables' size.
  void CheckConsistent() {
    for (const auto& [key, location] : location_of_) {
      uint64_t slot = Lookup(key);
      ASSERT_NE(slot, 0u) << "key " << key << " lost";
      ASSERT_EQ(SlotLocation(slot), location);
      ASSERT_EQ(SlotTag(slot), TagOf(HashOf(key)));
    }
    size_t live = 0;
    for (uint32_t i = 0; i < index_->shard_count(); ++i) {
      Shard& shard = index_->shard(i);
      std::lock_guard<SpinLock> lock(shard.lock);
      size_t visited = 0;
      index_->ForEach(shard, [&](uint64_t& slot) {
        ++visited;
        EXPECT_EQ(key_at_.count(SlotLocation(slot)), 1u) << "stray slot " << slot;
      });
      EXPECT_EQ(visited, shard.live);
      live += shard.live;
    }
    EXPECT_EQ(live, location_of_.size());
    ExpectMemoryMatchesTables();
  }

  void ExpectMemoryMatchesTables() {
    size_t bytes = 0;
    for (uint32_t i = 0; i < index_->shard_count(); ++i) {
      bytes += size_t{index_->shard(i).buckets} * sizeof(Bucket);
    }
    EXPECT_EQ(accountant_.ByKind(mem::MemoryKind::kIndex), bytes);
    EXPECT_EQ(index_->resident_bytes(), bytes);
  }

 private:
  mem::Accountant accountant_;  // outlives index_
  std::unique_ptr<HashIndex> index_;
  uint32_t shards_;
  std::optional<uint32_t> force_shard_;
  uint64_t next_location_ = 1;
  std::unordered_map<uint64_t, uint64_t> location_of_;  // key -> location
  std::unordered_map<uint64_t, uint64_t> key_at_;       // location -> key
  std::unordered_map<uint64_t, uint64_t> hash_override_;
};

// ---------------------------------------------------------------------------------------------
// Slot bits

TEST(SlotTest, FieldsRoundTrip) {
  const uint32_t kMaxTag = (1u << kTagBits) - 1;
  for (uint32_t tag : {1u, 2u, 0x155555u, 0xAAAAAu, kMaxTag}) {
    for (uint32_t freq = 0; freq <= kMaxFreq; ++freq) {
      for (uint64_t location : {uint64_t{0}, uint64_t{1}, uint64_t{0x5555555555},
                                uint64_t{0xAAAAAAAAAA}, kLocationMask}) {
        uint64_t slot = MakeSlot(tag, freq, location);
        EXPECT_EQ(SlotTag(slot), tag);
        EXPECT_EQ(SlotFreq(slot), freq);
        EXPECT_EQ(SlotLocation(slot), location);
        EXPECT_FALSE(SlotCasExposed(slot));
        EXPECT_TRUE(SlotLive(slot));
        EXPECT_NE(slot, kEmptySlot);
      }
    }
  }
}

TEST(SlotTest, FieldsCoverAllBitsWithoutOverlap) {
  const uint32_t kMaxTag = (1u << kTagBits) - 1;
  EXPECT_EQ(MakeSlot(kMaxTag, 0, 0) & MakeSlot(0, kMaxFreq, 0), 0u);
  EXPECT_EQ(MakeSlot(kMaxTag, 0, 0) & kLocationMask, 0u);
  EXPECT_EQ(MakeSlot(0, kMaxFreq, 0) & kLocationMask, 0u);
  EXPECT_EQ(MakeSlot(kMaxTag, kMaxFreq, kLocationMask) & kCasExposedBit, 0u);
  EXPECT_EQ(MakeSlot(kMaxTag, kMaxFreq, kLocationMask) | kCasExposedBit, ~uint64_t{0});
  EXPECT_EQ(kTagBits + 1 + kFreqBits + kLocationBits, 64);
}

TEST(SlotTest, SettersDoNotClobberOtherFields) {
  uint64_t slot = MakeSlot(0x12345, 1, 0x123456789A) | kCasExposedBit;
  EXPECT_TRUE(SlotCasExposed(slot));
  for (uint32_t freq = 0; freq <= kMaxFreq; ++freq) {
    uint64_t s = WithFreq(slot, freq);
    EXPECT_EQ(SlotFreq(s), freq);
    EXPECT_EQ(SlotTag(s), 0x12345u);
    EXPECT_EQ(SlotLocation(s), 0x123456789Au);
    EXPECT_TRUE(SlotCasExposed(s));
  }
  for (uint64_t location : {uint64_t{0}, uint64_t{42}, kLocationMask}) {
    uint64_t s = WithLocation(slot, location);
    EXPECT_EQ(SlotLocation(s), location);
    EXPECT_EQ(SlotTag(s), 0x12345u);
    EXPECT_EQ(SlotFreq(s), 1u);
    EXPECT_TRUE(SlotCasExposed(s));
  }
  uint64_t cleared = slot & ~kCasExposedBit;
  EXPECT_FALSE(SlotCasExposed(cleared));
  EXPECT_EQ(SlotTag(cleared), 0x12345u);
  EXPECT_EQ(SlotFreq(cleared), 1u);
  EXPECT_EQ(SlotLocation(cleared), 0x123456789Au);
}

TEST(SlotTest, TagIsTheTopBitsAndNeverZero) {
  EXPECT_EQ(TagOf(0), 1u);
  EXPECT_EQ(TagOf((uint64_t{1} << (64 - kTagBits)) - 1), 1u);  // only low bits set
  EXPECT_EQ(TagOf(HashWithTag(1)), 1u);
  EXPECT_EQ(TagOf(HashWithTag(2)), 2u);
  EXPECT_EQ(TagOf(~uint64_t{0}), (1u << kTagBits) - 1);
  EXPECT_EQ(TagOf(HashWithTag(0x1ABCDE, 0xFFFF)), 0x1ABCDEu);
  for (uint64_t i = 0; i < 100'000; ++i) EXPECT_NE(TagOf(i * 0x9E3779B97F4A7C15ull), 0u);
  EXPECT_FALSE(SlotLive(kEmptySlot));
}

// ---------------------------------------------------------------------------------------------
// Create

TEST(HashIndexTest, CreateValidatesConfig) {
  mem::Accountant a(kNoLimit);
  std::unique_ptr<HashIndex> index;
  EXPECT_FALSE(HashIndex::Create({0, 64, 0}, &a, &index).ok());
  EXPECT_FALSE(HashIndex::Create({3, 64, 0}, &a, &index).ok());
  EXPECT_FALSE(HashIndex::Create({4, 0, 0}, &a, &index).ok());
  EXPECT_FALSE(HashIndex::Create({4, 65, 0}, &a, &index).ok());
  EXPECT_FALSE(HashIndex::Create({4, 96, 0}, &a, &index).ok());
  EXPECT_EQ(index, nullptr);
  EXPECT_EQ(a.total(), 0u);

  mem::Accountant tiny(4 * kPageBytes - 1);
  EXPECT_FALSE(HashIndex::Create({4, 64, 0}, &tiny, &index).ok());
  EXPECT_EQ(index, nullptr);
  EXPECT_EQ(tiny.total(), 0u);
}

TEST(HashIndexTest, CreateFailsCleanlyWhenTheReservationCannotBeMapped) {
  // 2^20 shards x 2 regions x 4 GiB = 8 PiB: more address space than any machine has.
  mem::Accountant a(kNoLimit);
  std::unique_ptr<HashIndex> index;
  Status s = HashIndex::Create({1u << 20, 1u << 26, 0}, &a, &index);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(index, nullptr);
  EXPECT_EQ(a.total(), 0u);
}

// One touched table page must make one page resident, not a 2 MiB huge page (THP `always`).
TEST(HashIndexTest, ReservationIsNotBackedByHugePages) {
  if (!mem::KernelHasThp()) GTEST_SKIP() << "kernel without transparent huge pages";
  mem::Accountant a(kNoLimit);
  std::unique_ptr<HashIndex> index;
  ASSERT_TRUE(HashIndex::Create({4, 1u << 14, 0}, &a, &index).ok());
  for (uint32_t i = 0; i < index->shard_count(); ++i) {
    const Bucket* table = index->shard(i).table;
    EXPECT_TRUE(mem::NoHugePagesAt(table)) << "shard " << i << " VmFlags:" << mem::VmFlagsAt(table);
  }
}

TEST(HashIndexTest, CreateChargesOnePagePerShard) {
  mem::Accountant a(kNoLimit);
  {
    std::unique_ptr<HashIndex> index;
    ASSERT_TRUE(HashIndex::Create({8, 1024, 0}, &a, &index).ok());
    EXPECT_EQ(index->shard_count(), 8u);
    EXPECT_EQ(a.ByKind(mem::MemoryKind::kIndex), 8 * kPageBytes);
    EXPECT_EQ(index->resident_bytes(), 8 * kPageBytes);
    EXPECT_EQ(index->resizes(), 0u);
    for (uint32_t i = 0; i < 8; ++i) {
      EXPECT_EQ(index->shard(i).buckets, HashIndex::kBucketsPerPage);
      EXPECT_EQ(index->shard(i).live, 0u);
    }
  }
  EXPECT_EQ(a.total(), 0u) << "the index gives its memory back when destroyed";
}

TEST(HashIndexTest, ShardForUsesTheLowBits) {
  mem::Accountant a(kNoLimit);
  std::unique_ptr<HashIndex> index;
  ASSERT_TRUE(HashIndex::Create({8, 64, 0}, &a, &index).ok());
  for (uint64_t h : {uint64_t{0}, uint64_t{5}, uint64_t{13}, ~uint64_t{0}, HashWithTag(9, 3)}) {
    EXPECT_EQ(&index->ShardFor(h), &index->shard(static_cast<uint32_t>(h & 7)));
  }
}

// ---------------------------------------------------------------------------------------------
// Insert / Find / Erase

TEST(HashIndexTest, EmptyShardFindsNothing) {
  IndexHarness h({4, 1024, 0}, kNoLimit, std::nullopt);
  Shard& shard = h.index().shard(0);
  std::lock_guard<SpinLock> lock(shard.lock);
  EXPECT_EQ(h.index().FindLocation(shard, 0, 0), nullptr);
  EXPECT_EQ(h.index().Find(shard, 12345, [](uint64_t) { return true; }), nullptr);
  EXPECT_EQ(h.index().ColdestInHome(shard, 12345), nullptr);
}

TEST(HashIndexTest, InsertFindEraseAgainstModelInOneShard) {
  IndexHarness h({4, 1024, 0}, kNoLimit, /*force_shard=*/2);
  for (uint64_t key = 0; key < 6000; ++key) {
    ASSERT_EQ(h.Insert(key, static_cast<uint32_t>(key % 4)), InsertResult::kOk);
  }
  h.CheckConsistent();
  for (uint64_t key = 0; key < 6000; ++key) {
    EXPECT_EQ(SlotFreq(h.Lookup(key)), key % 4);
  }
  for (uint64_t key = 6000; key < 7000; ++key) EXPECT_EQ(h.Lookup(key), 0u) << key;

  for (uint64_t key = 0; key < 6000; key += 2) h.Erase(key);
  h.CheckConsistent();
  for (uint64_t key = 0; key < 6000; key += 2) EXPECT_EQ(h.Lookup(key), 0u) << key;
  for (uint64_t key = 6000; key < 9000; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  h.CheckConsistent();

  for (uint32_t i : {0u, 1u, 3u}) {
    EXPECT_EQ(h.index().shard(i).live, 0u);
    EXPECT_EQ(h.index().shard(i).buckets, HashIndex::kBucketsPerPage);
  }
}

TEST(HashIndexTest, MatchesPredicateSeparatesKeysWithTheSameHash) {
  IndexHarness h({1, 64, 0}, kNoLimit, std::nullopt);
  const uint64_t kHash = HashWithTag(777, 0);
  for (uint64_t key = 0; key < 20; ++key) {
    h.SetHash(key, kHash);
    ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  }
  h.CheckConsistent();  // 20 equal tags spill over three buckets; each found by location
  h.Erase(3);
  h.Erase(0);
  h.Erase(19);
  h.CheckConsistent();
  EXPECT_EQ(h.Lookup(3), 0u);

  Shard& shard = h.index().shard(0);
  std::lock_guard<SpinLock> lock(shard.lock);
  EXPECT_EQ(h.index().FindLocation(shard, kHash, h.locations().at(7)), h.FindLocked(shard, 7));
  EXPECT_EQ(h.index().Find(shard, kHash, [](uint64_t) { return false; }), nullptr);
  EXPECT_EQ(h.index().FindLocation(shard, HashWithTag(778), h.locations().at(7)), nullptr)
      << "a location under another tag must not match";
}

// InsertIfAbsent makes the table Find + Insert would: same slots in the same places (Robin Hood
// order fixes them), growing the same way; present keys are refused and change nothing.
TEST(HashIndexTest, InsertIfAbsentBuildsTheTableOfFindThenInsert) {
  IndexHarness one_walk({2, 1024, 0}, kNoLimit, std::nullopt);
  IndexHarness two_walks({2, 1024, 0}, kNoLimit, std::nullopt);
  std::mt19937_64 rng(7);
  // Few distinct tags, so runs are long and a key often meets slots of its own tag.
  for (uint64_t key = 0; key < 6000; ++key) {
    const uint64_t hash = HashWithTag(1 + static_cast<uint32_t>(rng() % 500), rng() & 1);
    one_walk.SetHash(key, hash);
    two_walks.SetHash(key, hash);
  }
  size_t refused = 0;
  for (int op = 0; op < 12000; ++op) {
    const uint64_t key = rng() % 6000;
    const uint32_t freq = static_cast<uint32_t>(rng() % 4);
    const InsertResult r = one_walk.InsertIfAbsent(key, freq);
    if (two_walks.Lookup(key) != 0) {
      ASSERT_EQ(r, InsertResult::kExists) << "key " << key;
      ++refused;
    } else {
      ASSERT_EQ(r, InsertResult::kOk) << "key " << key;
      ASSERT_EQ(two_walks.Insert(key, freq), InsertResult::kOk);
    }
  }
  EXPECT_GT(refused, 1000u);
  one_walk.CheckConsistent();
  two_walks.CheckConsistent();
  for (uint32_t i = 0; i < 2; ++i) {
    Shard& a = one_walk.index().shard(i);
    Shard& b = two_walks.index().shard(i);
    ASSERT_EQ(a.buckets, b.buckets);
    ASSERT_GT(a.buckets, HashIndex::kBucketsPerPage) << "the shards grew meanwhile";
    ASSERT_EQ(a.live, b.live);
    for (uint32_t j = 0; j < a.slot_count(); ++j) {
      // Locations differ (each harness numbers its own); tags, bits and places do not.
      ASSERT_EQ(a.slots()[j] & ~kLocationMask, b.slots()[j] & ~kLocationMask) << "slot " << j;
      ASSERT_EQ(a.slots()[j] == kEmptySlot, b.slots()[j] == kEmptySlot) << "slot " << j;
    }
  }
}

TEST(HashIndexTest, InsertIfAbsentFindsTheKeyAnywhereInItsRun) {
  IndexHarness h({1, 64, 0}, kNoLimit, std::nullopt);
  const uint64_t kHash = HashWithTag(777, 0);
  for (uint64_t key = 0; key < 30; ++key) h.SetHash(key, kHash);
  for (uint64_t key = 0; key < 30; ++key) {
    ASSERT_EQ(h.InsertIfAbsent(key, 1, /*cas=*/key % 2 == 1), InsertResult::kOk);
  }
  // 30 equal tags spill over four buckets: the last is found at the run's end.
  for (uint64_t key = 0; key < 30; ++key) {
    ASSERT_EQ(h.InsertIfAbsent(key), InsertResult::kExists) << key;
    const uint64_t slot = h.Lookup(key);
    EXPECT_EQ(SlotFreq(slot), 1u);
    EXPECT_EQ(SlotCasExposed(slot), key % 2 == 1);
  }
  EXPECT_EQ(h.index().shard(0).live, 30u);
  h.CheckConsistent();
}

TEST(HashIndexTest, InsertIfAbsentRefusesLikeInsertWhenTheShardIsFull) {
  IndexHarness h({1, 64, 0}, kNoLimit, std::nullopt);  // one page: 512 slots at most
  uint64_t key = 0;
  while (h.InsertIfAbsent(key) == InsertResult::kOk) ++key;
  EXPECT_EQ(h.InsertIfAbsent(key), InsertResult::kFull);
  EXPECT_EQ(key, 64u * kSlotsPerBucket) << "a shard at its maximum fills up before it refuses";
  h.CheckConsistent();
}

TEST(HashIndexTest, HashWithZeroTopBitsIsStillLive) {
  IndexHarness h({1, 64, 0}, kNoLimit, std::nullopt);
  h.SetHash(1, 0);  // tag 0 maps to 1, so the slot is not empty
  ASSERT_EQ(h.Insert(1), InsertResult::kOk);
  uint64_t slot = h.Lookup(1);
  EXPECT_TRUE(SlotLive(slot));
  EXPECT_EQ(SlotTag(slot), 1u);
  EXPECT_EQ(h.index().shard(0).live, 1u);
  h.CheckConsistent();
  h.Erase(1);
  EXPECT_EQ(h.index().shard(0).live, 0u);
}

TEST(HashIndexTest, LargestLocationSurvives) {
  IndexHarness h({1, 64, 0}, kNoLimit, std::nullopt);
  Shard& shard = h.index().shard(0);
  std::lock_guard<SpinLock> lock(shard.lock);
  uint64_t hash = HashWithTag((1u << kTagBits) - 1);
  ASSERT_EQ(h.index().Insert(shard, hash, kLocationMask, kMaxFreq), InsertResult::kOk);
  uint64_t* slot = h.index().FindLocation(shard, hash, kLocationMask);
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(SlotFreq(*slot), kMaxFreq);
  EXPECT_EQ(SlotTag(*slot), (1u << kTagBits) - 1);
  EXPECT_FALSE(SlotCasExposed(*slot));
}

TEST(HashIndexTest, DeletesShiftTheRunBack) {
  IndexHarness h({1, 64, 0}, kNoLimit, std::nullopt);
  Shard& shard = h.index().shard(0);
  // Keys 1..3 share a home (same tag); erasing the first moves the others back one slot.
  for (uint64_t key = 1; key <= 3; ++key) h.SetHash(key, HashWithTag(5000));
  for (uint64_t key = 1; key <= 3; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  const uint64_t* first;
  {
    std::lock_guard<SpinLock> lock(shard.lock);
    first = h.FindLocked(shard, 1);
  }
  h.Erase(1);
  EXPECT_EQ(shard.live, 2u);
  {
    std::lock_guard<SpinLock> lock(shard.lock);
    EXPECT_EQ(h.FindLocked(shard, 2), first);
    EXPECT_EQ(h.FindLocked(shard, 3), first + 1);
    EXPECT_EQ(first[2], kEmptySlot) << "no tombstone is left behind";
  }

  // Many insert/erase cycles at a fixed live count never grow the table.
  for (uint64_t key = 10; key < 10'000; ++key) {
    ASSERT_EQ(h.Insert(key), InsertResult::kOk);
    h.Erase(key);
    ASSERT_EQ(shard.buckets, HashIndex::kBucketsPerPage);
    ASSERT_LE(shard.live, HashIndex::kMaxLoad * Capacity(shard));
  }
  h.CheckConsistent();
}

// ---------------------------------------------------------------------------------------------
// Growth, shrinking and memory

TEST(HashIndexTest, ShardGrowsAndShrinks) {
  IndexHarness h({4, 4096, 0}, kNoLimit, /*force_shard=*/1);
  Shard& shard = h.index().shard(1);
  uint32_t buckets = shard.buckets;
  for (uint64_t key = 0; key < 20'000; ++key) {
    ASSERT_EQ(h.Insert(key), InsertResult::kOk);
    EXPECT_LE(shard.live, HashIndex::kMaxLoad * Capacity(shard));
    EXPECT_GE(shard.buckets, buckets);
    EXPECT_EQ(shard.buckets % HashIndex::kBucketsPerPage, 0u);
    buckets = shard.buckets;
  }
  EXPECT_GT(h.index().resizes(), 0u);
  EXPECT_GE(Capacity(shard), 20'000 / HashIndex::kMaxLoad);
  h.CheckConsistent();
  const uint32_t grown = shard.buckets;
  const uint64_t resizes = h.index().resizes();

  for (uint64_t key = 0; key < 19'500; ++key) {
    h.Erase(key);
    EXPECT_LE(shard.buckets, buckets);
    // With memory to spare, a shard never stays below a quarter full.
    EXPECT_TRUE(shard.buckets == HashIndex::kBucketsPerPage || shard.live > Capacity(shard) / 4)
        << "live " << shard.live << " buckets " << shard.buckets;
    buckets = shard.buckets;
  }
  EXPECT_LT(shard.buckets, grown / 8);
  EXPECT_GT(h.index().resizes(), resizes);
  h.CheckConsistent();

  for (uint64_t key = 19'500; key < 20'000; ++key) h.Erase(key);
  EXPECT_EQ(shard.buckets, HashIndex::kBucketsPerPage);
  EXPECT_EQ(shard.live, 0u);
  h.ExpectMemoryMatchesTables();
}

TEST(HashIndexTest, GrowthNeedsMemory) {
  // Exactly one page of index memory: the shard cannot grow past 64 buckets.
  IndexHarness h({1, 1024, 0}, kPageBytes + kPageBytes / 2, std::nullopt);
  Shard& shard = h.index().shard(0);
  const uint32_t kFits = static_cast<uint32_t>(HashIndex::kMaxLoad * Capacity(shard));  // 486
  for (uint64_t key = 0; key < kFits; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk) << key;
  EXPECT_EQ(h.Insert(kFits), InsertResult::kNoMemory);
  EXPECT_EQ(h.Insert(kFits + 1), InsertResult::kNoMemory);
  EXPECT_EQ(shard.live, kFits) << "a refused insert changed the shard";
  EXPECT_EQ(shard.buckets, HashIndex::kBucketsPerPage);
  EXPECT_EQ(h.index().resizes(), 0u);
  h.CheckConsistent();
  // Not sticky: after a few deletes the same number of inserts succeed again.
  for (uint64_t key = 0; key < 10; ++key) h.Erase(key);
  for (uint64_t key = kFits; key < kFits + 10; ++key) {
    ASSERT_EQ(h.Insert(key), InsertResult::kOk) << key;
  }
  EXPECT_EQ(h.Insert(kFits + 10), InsertResult::kNoMemory);
  h.CheckConsistent();
}

TEST(HashIndexTest, GrowthLeavesTheReserve) {
  // Plenty of memory but almost all of it reserved for the cleaner.
  const size_t kLimit = 64 * kPageBytes;
  IndexHarness h({1, 1024, kLimit - 2 * kPageBytes}, kLimit, std::nullopt);
  uint64_t key = 0;
  while (h.Insert(key) == InsertResult::kOk) ++key;
  EXPECT_EQ(h.Insert(key), InsertResult::kNoMemory);
  EXPECT_EQ(h.index().shard(0).buckets, HashIndex::kBucketsPerPage);
  EXPECT_LE(h.accountant().total(), kLimit - (kLimit - 2 * kPageBytes));
  h.CheckConsistent();
}

TEST(HashIndexTest, ShardAtMaxSizeFillsCompletelyThenRefuses) {
  IndexHarness h({2, 2 * HashIndex::kBucketsPerPage, 0}, kNoLimit, /*force_shard=*/0);
  Shard& shard = h.index().shard(0);
  const uint64_t kSlots = 2 * HashIndex::kBucketsPerPage * kSlotsPerBucket;
  for (uint64_t key = 0; key < kSlots; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk) << key;
  EXPECT_EQ(shard.buckets, 2 * HashIndex::kBucketsPerPage);
  EXPECT_EQ(shard.live, kSlots);
  EXPECT_EQ(h.Insert(kSlots), InsertResult::kFull);
  EXPECT_EQ(shard.live, kSlots);
  h.CheckConsistent();
  EXPECT_EQ(h.Lookup(kSlots + 5), 0u) << "a miss in a full shard terminates";

  // A delete makes room for exactly one more key.
  h.Erase(100);
  EXPECT_EQ(h.Insert(kSlots), InsertResult::kOk);
  EXPECT_EQ(h.Insert(kSlots + 1), InsertResult::kFull);
  h.CheckConsistent();
  EXPECT_EQ(h.index().shard(1).live, 0u);
}

TEST(HashIndexTest, FullWinsOverNoMemoryAtMaxSize) {
  IndexHarness h({1, HashIndex::kBucketsPerPage, 0}, kPageBytes, std::nullopt);
  uint64_t key = 0;
  InsertResult r;
  while ((r = h.Insert(key)) == InsertResult::kOk) ++key;
  EXPECT_EQ(r, InsertResult::kFull);
  EXPECT_EQ(key, uint64_t{HashIndex::kBucketsPerPage} * kSlotsPerBucket);
}

// A shard whose live count sits a little under its grow threshold, under steady churn (insert a
// new key, erase a random one, as a cache at a stable population does), stays consistent and
// under its load limit.
TEST(HashIndexTest, SteadyChurnStaysUnderMaxLoad) {
  IndexHarness h({1, 1u << 16, 0}, kNoLimit, std::nullopt);
  Shard& shard = h.index().shard(0);
  std::vector<uint64_t> keys;
  uint64_t next_key = 0;
  while (shard.buckets < 1024) {
    ASSERT_EQ(h.Insert(next_key), InsertResult::kOk);
    keys.push_back(next_key++);
  }
  std::mt19937_64 rng(1);
  auto erase_random = [&] {
    size_t i = rng() % keys.size();
    h.Erase(keys[i]);
    keys[i] = keys.back();
    keys.pop_back();
  };
  for (int i = 0; i < 50; ++i) erase_random();  // live ~0.88 of the slots: no growth needed
  for (int i = 0; i < 100'000; ++i) {
    ASSERT_EQ(h.Insert(next_key), InsertResult::kOk);
    keys.push_back(next_key++);
    ASSERT_LE(shard.live, HashIndex::kMaxLoad * Capacity(shard))
        << "after " << i << " churn steps: live " << shard.live << " buckets " << shard.buckets;
    erase_random();
  }
  h.CheckConsistent();
}

// ---------------------------------------------------------------------------------------------
// EraseIf, ForEach, ColdestInHome

TEST(HashIndexTest, EraseIfDropsMatchingLocations) {
  IndexHarness h({2, 1024, 0}, kNoLimit, std::nullopt);
  for (uint64_t key = 0; key < 4000; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  auto odd = [](uint64_t location) { return location % 2 == 1; };
  size_t expected = 0;
  for (const auto& [k, location] : h.locations()) expected += odd(location);
  size_t erased = 0;
  for (uint32_t i = 0; i < h.index().shard_count(); ++i) {
    Shard& shard = h.index().shard(i);
    std::lock_guard<SpinLock> lock(shard.lock);
    erased += h.index().EraseIf(shard, odd);
  }
  EXPECT_EQ(erased, expected);
  EXPECT_EQ(h.ForgetIf(odd), expected);
  h.CheckConsistent();

  // Nothing matches: nothing changes.
  Shard& shard0 = h.index().shard(0);
  {
    std::lock_guard<SpinLock> lock(shard0.lock);
    uint32_t live = shard0.live;
    EXPECT_EQ(h.index().EraseIf(shard0, odd), 0u);
    EXPECT_EQ(shard0.live, live);
  }

  // Everything matches: the shards shrink back to one page.
  auto all = [](uint64_t) { return true; };
  for (uint32_t i = 0; i < h.index().shard_count(); ++i) {
    Shard& shard = h.index().shard(i);
    std::lock_guard<SpinLock> lock(shard.lock);
    h.index().EraseIf(shard, all);
    EXPECT_EQ(shard.live, 0u);
    EXPECT_EQ(shard.buckets, HashIndex::kBucketsPerPage);
  }
  h.ForgetIf(all);
  h.CheckConsistent();
}

TEST(HashIndexTest, ForEachVisitsEveryLiveSlotOnceAndMayRewriteIt) {
  IndexHarness h({1, 1024, 0}, kNoLimit, std::nullopt);
  for (uint64_t key = 0; key < 3000; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  for (uint64_t key = 0; key < 3000; key += 3) h.Erase(key);
  Shard& shard = h.index().shard(0);

  std::multiset<uint64_t> visited;
  {
    std::lock_guard<SpinLock> lock(shard.lock);
    h.index().ForEach(shard, [&](uint64_t& slot) { visited.insert(SlotLocation(slot)); });
  }
  std::multiset<uint64_t> expected;
  for (const auto& [k, location] : h.locations()) expected.insert(location);
  EXPECT_EQ(visited, expected);

  // Rewrite freq and location in place, as the cleaner and the eviction clock do.
  constexpr uint64_t kShift = uint64_t{1} << 39;
  {
    std::lock_guard<SpinLock> lock(shard.lock);
    h.index().ForEach(shard, [&](uint64_t& slot) {
      slot = WithLocation(WithFreq(slot, kMaxFreq), SlotLocation(slot) + kShift);
    });
    for (const auto& [k, location] : h.locations()) {
      uint64_t hash = h.HashOf(k);
      EXPECT_EQ(h.index().FindLocation(shard, hash, location), nullptr);
      uint64_t* slot = h.index().FindLocation(shard, hash, location + kShift);
      ASSERT_NE(slot, nullptr);
      EXPECT_EQ(SlotFreq(*slot), kMaxFreq);
      EXPECT_EQ(SlotTag(*slot), TagOf(hash));
    }
    EXPECT_EQ(shard.live, expected.size());
  }
}

// Walks shard 0 by tag ranges of `width` buckets, calling between(range) after each range.
template <typename Between>
std::multiset<uint64_t> WalkByTags(HashIndex& index, uint32_t width, Between&& between) {
  Shard& shard = index.shard(0);
  std::multiset<uint64_t> visited;
  for (uint32_t tag = 0, ranges = 0; tag < HashIndex::kTagLimit; ++ranges) {
    {
      std::lock_guard<SpinLock> lock(shard.lock);
      const uint32_t end = HashIndex::TagAfter(shard, tag, width);
      EXPECT_GT(end, tag);
      index.ForEachInTags(shard, tag, end, [&](uint64_t& slot) {
        EXPECT_GE(SlotTag(slot), tag);
        EXPECT_LT(SlotTag(slot), end);
        visited.insert(SlotLocation(slot));
      });
      tag = end;
    }
    between(ranges);
  }
  return visited;
}

TEST(HashIndexTest, ForEachInTagsVisitsEachSlotOfItsRangeOnce) {
  IndexHarness h({1, 4096, 0}, kNoLimit, std::nullopt);
  for (uint64_t key = 0; key < 20'000; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  for (uint64_t key = 0; key < 20'000; key += 5) h.Erase(key);
  // 20 keys of the largest tag: their home is the last bucket, and 12 of them wrap past the
  // end of the table to its start.
  for (uint64_t key = 100'000; key < 100'020; ++key) {
    h.SetHash(key, ~uint64_t{0});
    ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  }
  std::multiset<uint64_t> expected;
  for (const auto& [k, location] : h.locations()) expected.insert(location);
  // Widths from one bucket to more than the table (runs that wrap past its end included).
  for (uint32_t width : {1u, 3u, 8u, 64u, 1000u, 1u << 20}) {
    EXPECT_EQ(WalkByTags(h.index(), width, [](uint32_t) {}), expected) << "width " << width;
  }
  Shard& shard = h.index().shard(0);
  std::lock_guard<SpinLock> lock(shard.lock);
  const uint64_t first = shard.slots()[0];
  EXPECT_EQ((uint64_t{SlotTag(first)} * shard.buckets) >> kTagBits, shard.buckets - 1)
      << "the table should wrap";
}

TEST(HashIndexTest, WalkByTagsSurvivesResizesBetweenRanges) {
  IndexHarness h({1, 4096, 0}, kNoLimit, std::nullopt);
  for (uint64_t key = 0; key < 2'000; ++key) ASSERT_EQ(h.Insert(key), InsertResult::kOk);
  std::multiset<uint64_t> throughout;
  for (const auto& [k, location] : h.locations()) throughout.insert(location);
  Shard& shard = h.index().shard(0);
  uint64_t next = 2'000;
  // Between ranges the shard grows to about ten times its size, then shrinks back.
  std::multiset<uint64_t> visited = WalkByTags(h.index(), 4, [&](uint32_t range) {
    if (range < 30) {
      for (int i = 0; i < 600; ++i) ASSERT_EQ(h.Insert(next++), InsertResult::kOk);
    } else if (next > 2'000) {
      for (int i = 0; i < 600 && next > 2'000; ++i) h.Erase(--next);
    }
  });
  EXPECT_GT(h.index().resizes(), 2u);
  // Every slot live throughout the walk was visited exactly once; the others at most once.
  for (uint64_t location : throughout) EXPECT_EQ(visited.count(location), 1u) << location;
  for (uint64_t location : visited) EXPECT_EQ(visited.count(location), 1u) << location;
}

TEST(HashIndexTest, ColdestInHomeReturnsTheLowestFreq) {
  IndexHarness h({1, 1024, 0}, kNoLimit, std::nullopt);
  Shard& shard = h.index().shard(0);
  ASSERT_EQ(shard.buckets, 64u);
  // Home bucket of a tag in a 64-bucket shard: its top 6 bits. All these live in bucket 5.
  const uint32_t kFreqs[] = {3, 2, 1, 3, 2, 2};
  for (uint64_t key = 0; key < 6; ++key) {
    h.SetHash(key, HashWithTag((5u << 15) | static_cast<uint32_t>(key * 100)));
    ASSERT_EQ(h.Insert(key, kFreqs[key]), InsertResult::kOk);
  }
  h.SetHash(100, HashWithTag(5u << 15 | 0x7FFF));  // same home, not inserted
  h.SetHash(101, HashWithTag(6u << 15));           // empty home
  std::lock_guard<SpinLock> lock(shard.lock);
  uint64_t* coldest = h.index().ColdestInHome(shard, h.HashOf(100));
  ASSERT_NE(coldest, nullptr);
  EXPECT_EQ(SlotFreq(*coldest), 1u);
  EXPECT_EQ(SlotLocation(*coldest), h.locations().at(2));
  EXPECT_EQ(h.index().ColdestInHome(shard, h.HashOf(101)), nullptr);

  // Tombstones are not candidates; the next coldest has freq 2.
  h.index().Erase(shard, coldest);
  coldest = h.index().ColdestInHome(shard, h.HashOf(100));
  ASSERT_NE(coldest, nullptr);
  EXPECT_EQ(SlotFreq(*coldest), 2u);
  // Freq updates are seen.
  for (uint64_t key : {1, 4, 5}) {
    uint64_t* slot = h.FindLocked(shard, key);
    *slot = WithFreq(*slot, 3);
  }
  coldest = h.index().ColdestInHome(shard, h.HashOf(100));
  ASSERT_NE(coldest, nullptr);
  EXPECT_EQ(SlotFreq(*coldest), 3u);
}

// ---------------------------------------------------------------------------------------------
// Randomized differential test

TEST(HashIndexTest, RandomizedOpsMatchModel) {
  IndexHarness h({4, 1u << 14, 0}, kNoLimit, std::nullopt);
  std::mt19937_64 rng(20240601);
  constexpr int kOps = 200'000;
  constexpr uint64_t kKeySpace = 24'000;
  for (int op = 0; op < kOps; ++op) {
    // Phases: fill, drain (shrinks), churn (tombstones), small hot set.
    int insert_pct = op < 50'000 ? 75 : op < 90'000 ? 15 : op < 160'000 ? 50 : 40;
    uint64_t key_space = op < 160'000 ? kKeySpace : 500;
    uint64_t key = rng() % key_space;
    int dice = static_cast<int>(rng() % 100);
    bool present = h.Contains(key);
    if (dice < insert_pct) {
      if (present) {
        h.Move(key);
      } else {
        ASSERT_EQ(h.Insert(key, static_cast<uint32_t>(key & kMaxFreq)), InsertResult::kOk);
      }
    } else if (dice < 95) {
      if (present) h.Erase(key);
    }
    // Every op also checks one lookup against the model.
    uint64_t probe = rng() % kKeySpace;
    uint64_t slot = h.Lookup(probe);
    if (h.Contains(probe)) {
      ASSERT_NE(slot, 0u) << "op " << op << " key " << probe;
      ASSERT_EQ(SlotLocation(slot), h.locations().at(probe));
      ASSERT_EQ(SlotFreq(slot), probe & kMaxFreq);
    } else {
      ASSERT_EQ(slot, 0u) << "op " << op << " key " << probe;
    }
    Shard& shard = h.ShardOf(key);
    ASSERT_LE(shard.live, HashIndex::kMaxLoad * Capacity(shard));
    if (op % 20'000 == 0 || op == kOps - 1) {
      h.CheckConsistent();
      if (HasFatalFailure() || HasNonfatalFailure()) return;
    }
  }
  EXPECT_GT(h.index().resizes(), 8u);
  h.CheckConsistent();
}

}  // namespace
}  // namespace cinch::index
