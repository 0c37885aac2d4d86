#include "index/hash_index.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "common/check.h"

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
  for (uint32_t i = 0; i < config_.shards; ++i) {
    accountant_->Release(mem::MemoryKind::kIndex, TableBytes(shards_[i].buckets));
  }
  if (regions_ != nullptr) munmap(regions_, region_bytes_ * 2 * config_.shards);
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
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return Status::IoError("mmap of the index reservation failed");
  idx->regions_ = static_cast<char*>(p);
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
  }
  *index = std::move(idx);
  return Status::Ok();
}

Bucket* HashIndex::Region(uint32_t shard_id, uint8_t which) const {
  return reinterpret_cast<Bucket*>(regions_ + region_bytes_ * (2 * size_t{shard_id} + which));
}

void HashIndex::Place(Bucket* table, uint32_t buckets, uint32_t home, uint64_t slot) {
  for (uint32_t b = home;; b = (b + 1 == buckets) ? 0 : b + 1) {
    for (uint64_t& s : table[b].slots) {
      if (s == kEmptySlot) {
        s = slot;
        return;
      }
    }
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
  shard.buckets = buckets;
  for (uint32_t b = 0; b < old_buckets; ++b) {
    for (uint64_t slot : shard.table[b].slots) {
      if (SlotLive(slot)) Place(table, buckets, Home(shard, SlotTag(slot)), slot);
    }
  }
  size_t old_bytes = TableBytes(old_buckets);
  CINCH_CHECK(madvise(shard.table, old_bytes, MADV_DONTNEED) == 0);
  accountant_->Release(mem::MemoryKind::kIndex, old_bytes);
  shard.table = table;
  shard.active = target;
  shard.tombstones = 0;
  resizes_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

HashIndex::InsertResult HashIndex::Insert(Shard& shard, uint64_t hash, uint64_t location,
                                          uint32_t freq) {
  double capacity = static_cast<double>(shard.buckets) * kSlotsPerBucket;
  if (shard.live + shard.tombstones + 1 > kMaxLoad * capacity) {
    bool mostly_tombstones = shard.tombstones > shard.live / 8;
    uint32_t want = mostly_tombstones
                        ? shard.buckets
                        : RoundUpToPage((shard.live + 1) / kTargetLoad / kSlotsPerBucket);
    want = std::min(want, config_.max_buckets_per_shard);
    bool rebuilt = (want > shard.buckets || mostly_tombstones) && Rebuild(shard, want);
    bool at_max = shard.buckets >= config_.max_buckets_per_shard;
    // A shard at its maximum size fills up completely before it refuses.
    if (!rebuilt && (at_max ? shard.live >= capacity : shard.live + 1 > kMaxLoad * capacity)) {
      return at_max ? InsertResult::kFull : InsertResult::kNoMemory;
    }
  }
  uint32_t tag = TagOf(hash);
  uint64_t slot = MakeSlot(tag, freq, location);
  for (uint32_t b = Home(shard, tag);; b = (b + 1 == shard.buckets) ? 0 : b + 1) {
    for (uint64_t& s : shard.table[b].slots) {
      if (s == kEmptySlot || s == kTombstone) {
        if (s == kTombstone) --shard.tombstones;
        s = slot;
        ++shard.live;
        return InsertResult::kOk;
      }
    }
  }
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
  *slot = kTombstone;
  --shard.live;
  ++shard.tombstones;
  MaybeShrink(shard);
}

void HashIndex::MaybeShrink(Shard& shard) {
  if (shard.buckets <= kBucketsPerPage) return;
  double capacity = static_cast<double>(shard.buckets) * kSlotsPerBucket;
  if (shard.live > capacity / 4) return;
  uint32_t want = RoundUpToPage(shard.live / 0.6 / kSlotsPerBucket);
  if (want < shard.buckets) Rebuild(shard, want);
}

}  // namespace cinch::index
