#include "index/hash_index.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <span>
#include <utility>

#include "common/check.h"
#include "mem/mapping.h"

namespace cinch::index {

namespace {

size_t TableBytes(uint32_t buckets) { return size_t{buckets} * sizeof(Bucket); }

uint32_t RoundUpToPage(double buckets) {
  uint32_t b = static_cast<uint32_t>(std::ceil(buckets));
  uint32_t page = HashIndex::kBucketsPerPage;
  return std::max(page, (b + page - 1) / page * page);
}

}  // namespace

HashIndex::HashIndex(const Config& config, mem::Accountant* accountant)
    : config_(config), accountant_(accountant) {}

HashIndex::~HashIndex() {
  if (regions_ == nullptr) return;  // Create failed before anything was charged
  for (uint32_t i = 0; i < config_.shards; ++i) {
    accountant_->Release(mem::MemoryKind::kIndex, TableBytes(shards_[i].buckets));
  }
  munmap(regions_, region_bytes_ * 2 * config_.shards);
}

Status HashIndex::Create(const Config& config, mem::Accountant* accountant,
                         std::unique_ptr<HashIndex>* index) {
  if (!std::has_single_bit(config.shards)) {
    return Status::InvalidArgument("index shards must be a power of two");
  }
  if (config.max_buckets_per_shard % kBucketsPerPage != 0 || config.max_buckets_per_shard == 0) {
    return Status::InvalidArgument("index shard size must be whole pages");
  }
  std::unique_ptr<HashIndex> idx(new HashIndex(config, accountant));
  idx->region_bytes_ = TableBytes(config.max_buckets_per_shard);
  size_t total = idx->region_bytes_ * 2 * config.shards;
  char* p = mem::MapNoReserve(total);
  if (p == nullptr) return Status::IoError("mmap of the index reservation failed");
  idx->regions_ = p;
  idx->shards_.reset(new Shard[config.shards]);
  size_t initial = TableBytes(kBucketsPerPage) * config.shards;
  if (!accountant->TryCharge(mem::MemoryKind::kIndex, initial)) {
    munmap(p, total);
    idx->regions_ = nullptr;
    return Status::InvalidArgument("memory limit too small for the index");
  }
  for (uint32_t i = 0; i < config.shards; ++i) {
    Shard& s = idx->shards_[i];
    s.buckets = kBucketsPerPage;
    s.table = idx->Region(i, 0);
    s.table_hint.store(s.table, std::memory_order_relaxed);
    s.buckets_hint.store(s.buckets, std::memory_order_relaxed);
  }
  *index = std::move(idx);
  return Status::Ok();
}

Bucket* HashIndex::Region(uint32_t shard_id, uint8_t which) const {
  return reinterpret_cast<Bucket*>(regions_ + region_bytes_ * (2 * size_t{shard_id} + which));
}

void HashIndex::PlaceFrom(uint64_t* slots, uint32_t buckets, uint32_t i, uint32_t d,
                          uint64_t slot) {
  const uint32_t n = buckets * kSlotsPerBucket;
  for (;; ++d) {
    uint64_t& here = slots[i];
    if (here == kEmptySlot) {
      here = slot;
      return;
    }
    uint32_t dh = Displacement(buckets, i, here);
    if (dh < d) {  // `here` is closer to its home: take its place and carry it on
      std::swap(here, slot);
      d = dh;
    }
    if (++i == n) i = 0;
  }
}

void HashIndex::RemoveAt(uint64_t* slots, uint32_t buckets, uint32_t i) {
  uint32_t n = buckets * kSlotsPerBucket;
  for (;;) {
    uint32_t next = i + 1 == n ? 0 : i + 1;
    uint64_t s = slots[next];
    if (s == kEmptySlot || Displacement(buckets, next, s) == 0) {
      slots[i] = kEmptySlot;
      return;
    }
    slots[i] = s;
    i = next;
  }
}

bool HashIndex::Rebuild(Shard& shard, uint32_t buckets) {
  size_t new_bytes = TableBytes(buckets);
  if (accountant_->Available() < new_bytes + config_.reserve_bytes ||
      !accountant_->TryCharge(mem::MemoryKind::kIndex, new_bytes)) {
    return false;
  }
  uint8_t target = shard.active ^ 1;
  Bucket* table = Region(ShardId(shard), target);  // zero: never touched, or madvised
  uint32_t old_buckets = shard.buckets;
  for (uint64_t slot : std::span(shard.slots(), shard.slot_count())) {
    if (SlotLive(slot)) Place(table[0].slots, buckets, slot);
  }
  shard.buckets = buckets;
  size_t old_bytes = TableBytes(old_buckets);
  CINCH_CHECK(madvise(shard.table, old_bytes, MADV_DONTNEED) == 0);
  accountant_->Release(mem::MemoryKind::kIndex, old_bytes);
  shard.table = table;
  shard.active = target;
  shard.table_hint.store(table, std::memory_order_relaxed);
  shard.buckets_hint.store(buckets, std::memory_order_relaxed);
  resizes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

HashIndex::InsertResult HashIndex::Grow(Shard& shard) {
  uint32_t want = std::min(RoundUpToPage((shard.live + 1) / kTargetLoad / kSlotsPerBucket),
                           config_.max_buckets_per_shard);
  bool grown = want > shard.buckets && Rebuild(shard, want);
  bool at_max = shard.buckets >= config_.max_buckets_per_shard;
  // A shard at its maximum size fills up completely before it refuses.
  if (!grown && (!at_max || shard.live >= shard.slot_count())) {
    return at_max ? InsertResult::kFull : InsertResult::kNoMemory;
  }
  return InsertResult::kOk;
}

HashIndex::InsertResult HashIndex::Insert(Shard& shard, uint64_t hash, uint64_t location,
                                          uint32_t freq) {
  if (InsertResult room = MakeRoom(shard); room != InsertResult::kOk) return room;
  Place(shard.slots(), shard.buckets, MakeSlot(TagOf(hash), freq, location));
  ++shard.live;
  return InsertResult::kOk;
}

bool HashIndex::Reserve(Shard& shard, uint32_t items) {
  uint32_t want =
      std::min(RoundUpToPage(items / kTargetLoad / kSlotsPerBucket), config_.max_buckets_per_shard);
  return want <= shard.buckets || Rebuild(shard, want);
}

void HashIndex::Populate(Shard& shard) {
  mem::PopulateForWrite(reinterpret_cast<char*>(shard.table), TableBytes(shard.buckets));
}

uint64_t* HashIndex::ColdestInHome(Shard& shard, uint64_t hash) {
  uint64_t* coldest = nullptr;
  for (uint64_t& slot : shard.table[Home(shard, TagOf(hash))].slots) {
    if (SlotLive(slot) && (coldest == nullptr || SlotFreq(slot) < SlotFreq(*coldest))) {
      coldest = &slot;
    }
  }
  return coldest;
}

void HashIndex::Erase(Shard& shard, uint64_t* slot) {
  CINCH_DCHECK(SlotLive(*slot));
  RemoveAt(shard.slots(), shard.buckets, static_cast<uint32_t>(slot - shard.slots()));
  --shard.live;
  MaybeShrink(shard);
}

void HashIndex::MaybeShrink(Shard& shard) {
  if (shard.buckets <= kBucketsPerPage) return;
  if (shard.live > shard.slot_count() / 4) return;
  uint32_t want = RoundUpToPage(shard.live / 0.6 / kSlotsPerBucket);
  if (want < shard.buckets) Rebuild(shard, want);
}

}  // namespace cinch::index
