// HashIndex: the compact hash index from key hash to item location.
//
// The only way to reach an item is through one 8-byte slot, so moving an item means rewriting
// one slot. The index is split into shards (a power of two, chosen from the memory limit); each
// shard is a table of 64-byte buckets of 8 slots, guarded by its own spin lock. Slots are placed
// by linear probing with Robin Hood ordering: the home of a slot (the first slot of its home
// bucket) is computed from its tag alone, runs of slots stay sorted by home, a lookup stops at
// the first slot whose home lies past its own, and a delete shifts the run back (no
// tombstones). Because homes come from tags, a shard grows and shrinks by rebuilding into a
// second region without reading a key; a resize stalls only the keys of one shard.
//
// Slot (64 bits):
//
//    63                 43  42  41 40 39                                     0
//   +---------------------+-----+-----+----------------------------------------+
//   |      tag (21)       | cas | freq|         location (40)                  |
//   +---------------------+-----+-----+----------------------------------------+
//   tag:      the top 21 bits of the key hash, never 0 (0 is mapped to 1)
//   cas:      the item's CAS value was handed to a client; a move must preserve it
//   freq:     saturating access counter used by eviction (0..3)
//   location: where the item starts: a byte of the segment arena, (segment id << segment_shift)
//             | offset, or one value per jumbo slot past the arena (mem/segment_pool.h); 40 bits
//             cover a 1 TiB limit, jumbo slots included, and leave the tag its 21 bits
//
//   0 is an empty slot.
//
// Home bucket of a key in a shard of n buckets: (tag * n) >> 21; its home slot is 8 times that.
// Shard of a key: hash & (shards - 1).
//
// Memory: one reservation for all shards (mem/mapping.h: no transparent huge pages, so touching
// a table page makes one page resident); every table page is charged to the Accountant before
// it is touched, and given back (madvise) when the table shrinks or moves. See docs/index.md.
//
// Thread safety: Shard::lock must be held for every call that takes a Shard&; different shards
// are independent.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "cinch/status.h"
#include "common/spin_lock.h"
#include "mem/accountant.h"

namespace cinch::index {

constexpr int kTagBits = 21;
constexpr int kFreqBits = 2;
constexpr uint64_t kCasExposedBit = uint64_t{1} << 42;
constexpr int kLocationBits = 40;
constexpr uint32_t kMaxFreq = (1u << kFreqBits) - 1;
constexpr uint64_t kLocationMask = (uint64_t{1} << kLocationBits) - 1;
static_assert(kTagBits + 1 + kFreqBits + kLocationBits == 64, "a slot is 8 bytes");
static_assert(kLocationBits >= 40, "locations must reach 1 TiB of segments");
constexpr uint64_t kEmptySlot = 0;
constexpr int kSlotsPerBucket = 8;

inline uint32_t TagOf(uint64_t hash) {
  uint32_t tag = static_cast<uint32_t>(hash >> (64 - kTagBits));
  return tag == 0 ? 1 : tag;
}
inline uint64_t MakeSlot(uint32_t tag, uint32_t freq, uint64_t location) {
  return (uint64_t{tag} << (1 + kFreqBits + kLocationBits)) | (uint64_t{freq} << kLocationBits) |
         location;
}
inline uint32_t SlotTag(uint64_t slot) {
  return static_cast<uint32_t>(slot >> (1 + kFreqBits + kLocationBits));
}
inline bool SlotCasExposed(uint64_t slot) { return (slot & kCasExposedBit) != 0; }
inline uint32_t SlotFreq(uint64_t slot) {
  return static_cast<uint32_t>(slot >> kLocationBits) & kMaxFreq;
}
inline uint64_t SlotLocation(uint64_t slot) { return slot & kLocationMask; }
inline bool SlotLive(uint64_t slot) { return SlotTag(slot) != 0; }
inline uint64_t WithFreq(uint64_t slot, uint32_t freq) {
  return (slot & ~(uint64_t{kMaxFreq} << kLocationBits)) | (uint64_t{freq} << kLocationBits);
}
inline uint64_t WithLocation(uint64_t slot, uint64_t location) {
  return (slot & ~kLocationMask) | location;
}

struct alignas(64) Bucket {
  uint64_t slots[kSlotsPerBucket];
};
static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

struct alignas(64) Shard {
  SpinLock lock;
  uint8_t active = 0;    // which of the shard's two regions holds the table
  uint32_t buckets = 0;  // table size; a multiple of a page's worth of buckets
  uint32_t live = 0;     // live slots
  Bucket* table = nullptr;
  // Copies of table and buckets for PrefetchHome, which reads them without the lock: stale or
  // mismatched values only prefetch a useless line inside the shard's reservation.
  std::atomic<const Bucket*> table_hint{nullptr};
  std::atomic<uint32_t> buckets_hint{0};

  uint32_t slot_count() const { return buckets * kSlotsPerBucket; }
  uint64_t* slots() { return table[0].slots; }
};

class HashIndex {
 public:
  struct Config {
    uint32_t shards;                 // power of two
    uint32_t max_buckets_per_shard;  // multiple of kBucketsPerPage
    size_t reserve_bytes;            // growth must leave this much of the limit unused
  };
  static constexpr uint32_t kBucketsPerPage = 4096 / sizeof(Bucket);
  static constexpr double kMaxLoad = 0.95;     // grow when live slots would pass this
  static constexpr double kTargetLoad = 0.90;  // load right after growing

  enum class InsertResult { kOk, kNoMemory, kFull, kExists };

  static Status Create(const Config& config, mem::Accountant* accountant,
                       std::unique_ptr<HashIndex>* index);
  ~HashIndex();

  uint32_t shard_count() const { return config_.shards; }
  Shard& ShardFor(uint64_t hash) { return shards_[ShardIndex(hash)]; }
  Shard& shard(uint32_t i) { return shards_[i]; }

  // Returns the live slot of `hash`'s probe sequence whose tag matches and for which
  // matches(location) is true, or nullptr. REQUIRES: shard.lock held.
  template <typename Matches>
  uint64_t* Find(Shard& shard, uint64_t hash, Matches&& matches);
  // Starts loading the home bucket of `hash` into the cache, without the lock: a writer calls
  // it before preparing its item, so the index miss overlaps that work.
  void PrefetchHome(uint64_t hash) const {
    const Shard& shard = shards_[ShardIndex(hash)];
    const Bucket* table = shard.table_hint.load(std::memory_order_relaxed);
    uint32_t buckets = shard.buckets_hint.load(std::memory_order_relaxed);
    __builtin_prefetch(table + HomeBucket(buckets, TagOf(hash)));
  }
  // The slot of `hash` that points at `location`, or nullptr. REQUIRES: shard.lock held.
  uint64_t* FindLocation(Shard& shard, uint64_t hash, uint64_t location) {
    return Find(shard, hash, [location](uint64_t l) { return l == location; });
  }

  // Adds a slot; the caller has checked that the key is absent. May rebuild the shard.
  // kNoMemory: the shard must grow but the limit has no room; kFull: the shard is at its
  // maximum size. REQUIRES: shard.lock held.
  InsertResult Insert(Shard& shard, uint64_t hash, uint64_t location, uint32_t freq);
  // Adds `slot` (MakeSlot of the key's tag, with its freq and cas bits) unless the key is there
  // already: one probe both looks for the key and finds the slot's place, where Find and then
  // Insert walk the run twice. Live slots of the tag met on the way are passed to
  // matches(location); the first for which it is true stops the insert (kExists, the index
  // unchanged). May rebuild the shard first, as Insert. REQUIRES: shard.lock held.
  template <typename Matches>
  InsertResult InsertIfAbsent(Shard& shard, uint64_t slot, Matches&& matches);
  // Grows the shard, if it is smaller, to hold `items` live slots at the target load, so that
  // inserting that many rebuilds it no more (a store loading a snapshot knows its item count).
  // False if the memory is short. REQUIRES: shard.lock held.
  bool Reserve(Shard& shard, uint32_t items);
  // Makes the shard's table resident and writable at once (mem::PopulateForWrite), for a caller
  // about to fill it: inserts then take no page faults (a first read of an untouched page maps
  // the shared zero page, and the write after it faults again to replace it, with a TLB
  // shootdown on every other core the process runs on). The table is charged already.
  // REQUIRES: shard.lock held.
  void Populate(Shard& shard);
  // The live slot with the lowest freq in `hash`'s home bucket (a victim when the shard is at
  // its maximum size), or nullptr. REQUIRES: shard.lock held.
  uint64_t* ColdestInHome(Shard& shard, uint64_t hash);
  // Removes a slot returned by Find; later slots of its run may move. May shrink the shard.
  // REQUIRES: shard.lock held.
  void Erase(Shard& shard, uint64_t* slot);
  // Removes every live slot whose location satisfies drop(location); returns how many.
  // REQUIRES: shard.lock held.
  template <typename Drop>
  size_t EraseIf(Shard& shard, Drop&& drop);
  // Calls visit(slot&) for every live slot; visit may change freq or location but not the tag.
  template <typename Visit>
  void ForEach(Shard& shard, Visit&& visit);
  // ForEach for the live slots whose tag is in [tag_begin, tag_end), reading only the runs
  // that can hold them. A tag's slots are in its range whatever the shard's size, so a walk of
  // the tags range by range (TagAfter) visits each slot live throughout it once, even if the
  // shard is resized between ranges. REQUIRES: shard.lock held; tag_begin < tag_end <= kTagLimit.
  template <typename Visit>
  void ForEachInTags(Shard& shard, uint32_t tag_begin, uint32_t tag_end, Visit&& visit);
  // The first tag whose home bucket is at least `buckets_ahead` (> 0) buckets past the home of
  // `tag` in the shard's table now, or kTagLimit: where a walk by ranges of that many buckets
  // goes next. REQUIRES: shard.lock held.
  static uint32_t TagAfter(const Shard& shard, uint32_t tag, uint32_t buckets_ahead) {
    const uint64_t bucket = uint64_t{Home(shard, tag)} + buckets_ahead;
    if (bucket >= shard.buckets) return kTagLimit;
    // The least t with (t * buckets) >> kTagBits >= bucket.
    return static_cast<uint32_t>(((bucket << kTagBits) + shard.buckets - 1) / shard.buckets);
  }
  static constexpr uint32_t kTagLimit = uint32_t{1} << kTagBits;  // tags are below it

  size_t resident_bytes() const { return accountant_->ByKind(mem::MemoryKind::kIndex); }
  uint64_t resizes() const { return resizes_.load(std::memory_order_relaxed); }

 private:
  HashIndex(const Config& config, mem::Accountant* accountant);
  uint32_t ShardIndex(uint64_t hash) const {
    return static_cast<uint32_t>(hash & (config_.shards - 1));
  }
  // The home bucket of a tag in a table of `buckets`.
  static uint32_t HomeBucket(uint32_t buckets, uint32_t tag) {
    return static_cast<uint32_t>((uint64_t{tag} * buckets) >> kTagBits);
  }
  static uint32_t Home(const Shard& shard, uint32_t tag) { return HomeBucket(shard.buckets, tag); }
  static uint32_t HomeSlot(uint32_t buckets, uint64_t slot) {
    return HomeBucket(buckets, SlotTag(slot)) * kSlotsPerBucket;
  }
  // How far position i is from the home slot of `slot`, cyclically.
  static uint32_t Displacement(uint32_t buckets, uint32_t i, uint64_t slot) {
    uint32_t home = HomeSlot(buckets, slot);
    return i >= home ? i - home : i + buckets * kSlotsPerBucket - home;
  }
  // Robin Hood insertion of a live slot into a table of `buckets` with at least one empty slot.
  static void Place(uint64_t* slots, uint32_t buckets, uint64_t slot) {
    PlaceFrom(slots, buckets, HomeSlot(buckets, slot), 0, slot);
  }
  // Place, from position i, which is d slots past the home of `slot`, where the probe for it
  // has not yet met an empty slot nor one closer to its home.
  static void PlaceFrom(uint64_t* slots, uint32_t buckets, uint32_t i, uint32_t d, uint64_t slot);
  // Grows a shard that one more slot would load past kMaxLoad: kOk if the slot fits now.
  InsertResult MakeRoom(Shard& shard) {
    if (shard.live + 1 > kMaxLoad * shard.slot_count()) [[unlikely]] {
      return Grow(shard);
    }
    return InsertResult::kOk;
  }
  InsertResult Grow(Shard& shard);
  // Empties position i and shifts the rest of its run back.
  static void RemoveAt(uint64_t* slots, uint32_t buckets, uint32_t i);
  Bucket* Region(uint32_t shard_id, uint8_t which) const;
  uint32_t ShardId(const Shard& shard) const {
    return static_cast<uint32_t>(&shard - shards_.get());
  }
  // Moves the shard's live slots into a fresh table of `buckets`; false if memory is short.
  bool Rebuild(Shard& shard, uint32_t buckets);
  void MaybeShrink(Shard& shard);

  const Config config_;
  mem::Accountant* const accountant_;
  std::unique_ptr<Shard[]> shards_;
  char* regions_ = nullptr;
  size_t region_bytes_ = 0;
  std::atomic<uint64_t> resizes_{0};
};

template <typename Matches>
uint64_t* HashIndex::Find(Shard& shard, uint64_t hash, Matches&& matches) {
  uint32_t tag = TagOf(hash);
  uint32_t n = shard.slot_count();
  uint64_t* slots = shard.slots();
  uint32_t i = Home(shard, tag) * kSlotsPerBucket;
  for (uint32_t d = 0; d < n; ++d) {
    uint64_t& slot = slots[i];
    // Runs are sorted by home: a slot closer to its home than we are to ours ends the search.
    if (slot == kEmptySlot || Displacement(shard.buckets, i, slot) < d) return nullptr;
    if (SlotTag(slot) == tag && matches(SlotLocation(slot))) return &slot;
    if (++i == n) i = 0;
  }
  return nullptr;
}

template <typename Matches>
HashIndex::InsertResult HashIndex::InsertIfAbsent(Shard& shard, uint64_t slot, Matches&& matches) {
  if (InsertResult room = MakeRoom(shard); room != InsertResult::kOk) return room;
  const uint32_t tag = SlotTag(slot);
  const uint32_t n = shard.slot_count();
  uint64_t* slots = shard.slots();
  uint32_t i = Home(shard, tag) * kSlotsPerBucket;
  // Find's walk; where Find would stop (the key is absent), the slot goes. MakeRoom left an
  // empty slot, so the walk ends.
  uint32_t d = 0;
  for (;; ++d) {
    const uint64_t here = slots[i];
    if (here == kEmptySlot || Displacement(shard.buckets, i, here) < d) break;
    if (SlotTag(here) == tag && matches(SlotLocation(here))) return InsertResult::kExists;
    if (++i == n) i = 0;
  }
  PlaceFrom(slots, shard.buckets, i, d, slot);
  ++shard.live;
  return InsertResult::kOk;
}

template <typename Drop>
size_t HashIndex::EraseIf(Shard& shard, Drop&& drop) {
  size_t erased = 0;
  uint64_t* slots = shard.slots();
  for (uint32_t i = 0; i < shard.slot_count(); ++i) {
    // RemoveAt shifts the next slot of the run into i: look at i again.
    while (SlotLive(slots[i]) && drop(SlotLocation(slots[i]))) {
      RemoveAt(slots, shard.buckets, i);
      ++erased;
    }
  }
  shard.live -= static_cast<uint32_t>(erased);
  if (erased > 0) MaybeShrink(shard);
  return erased;
}

template <typename Visit>
void HashIndex::ForEach(Shard& shard, Visit&& visit) {
  for (uint32_t b = 0; b < shard.buckets; ++b) {
    for (uint64_t& slot : shard.table[b].slots) {
      if (SlotLive(slot)) visit(slot);
    }
  }
}

template <typename Visit>
void HashIndex::ForEachInTags(Shard& shard, uint32_t tag_begin, uint32_t tag_end, Visit&& visit) {
  if (shard.buckets == 0 || shard.live == 0) return;
  const uint32_t n = shard.slot_count();
  uint64_t* slots = shard.slots();
  // The range's slots have their homes in [lo, hi] and lie from lo on, possibly past the end
  // of the table (then at its start). Positions are counted unwrapped from lo (j, from lo on,
  // at position j mod n); the walk ends at the first empty slot or the first slot whose home
  // is past hi, both after hi, which come within n slots of it.
  const int64_t lo = int64_t{Home(shard, tag_begin)} * kSlotsPerBucket;
  const int64_t hi = int64_t{Home(shard, tag_end - 1)} * kSlotsPerBucket;
  for (int64_t j = lo; j < hi + 2 * int64_t{n}; ++j) {
    const uint32_t i = static_cast<uint32_t>(j % n);
    uint64_t& slot = slots[i];
    if (slot == kEmptySlot) {
      if (j > hi) break;  // a run starting after it has its homes past hi
      continue;
    }
    // A slot is at most n - 1 positions past its home: its home, unwrapped.
    const int64_t home = j - Displacement(shard.buckets, i, slot);
    if (home > hi) break;  // runs are sorted by home: the rest of the run is past hi too
    // Displaced from before the range; or, early in the walk, a slot that wrapped past the
    // end of the table from a home in the range, which the walk meets again n slots later.
    if (home < lo) continue;
    const uint32_t tag = SlotTag(slot);
    if (tag >= tag_begin && tag < tag_end) visit(slot);
  }
}

}  // namespace cinch::index
