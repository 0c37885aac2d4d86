#include "mem/segment_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <string>

#include "common/check.h"

namespace cinch::mem {

SegmentPool::SegmentPool(const Config& config, Accountant* accountant)
    : config_(config), accountant_(accountant) {}

Status SegmentPool::Create(const Config& config, Accountant* accountant,
                           std::unique_ptr<SegmentPool>* pool) {
  if (!std::has_single_bit(config.segment_size) || config.segment_size < PageSize()) {
    return Status::InvalidArgument("segment size must be a power of two of at least one page");
  }
  if (config.regular_count == 0) return Status::InvalidArgument("no room for any segment");
  std::unique_ptr<SegmentPool> p(new SegmentPool(config, accountant));
  p->segment_shift_ = std::countr_zero(config.segment_size);
  p->arena_bytes_ = config.segment_size * config.regular_count;
  p->arena_ = MapNoReserve(p->arena_bytes_);
  if (p->arena_ == nullptr) return Status::IoError("mmap of the segment arena failed");
  uint32_t total = p->total_count();
  p->metas_.reset(new SegmentMeta[total]);
  p->metadata_bytes_ = sizeof(SegmentMeta) * total;
  accountant->ForceCharge(MemoryKind::kMetadata, p->metadata_bytes_);
  p->released_free_.reserve(config.regular_count);
  for (uint32_t id = config.regular_count; id-- > 0;) {
    SegmentMeta& m = p->metas_[id];
    m.base = p->arena_ + size_t{id} * config.segment_size;
    m.capacity = static_cast<uint32_t>(config.segment_size);
    p->released_free_.push_back(id);  // lowest id on top: fills the arena front to back
  }
  for (uint32_t id = total; id-- > config.regular_count;) {
    p->metas_[id].jumbo = true;
    p->jumbo_free_.push_back(id);
  }
  *pool = std::move(p);
  return Status::Ok();
}

SegmentPool::~SegmentPool() {
  if (metas_ == nullptr) return;  // Create failed before anything was charged
  for (uint32_t id = config_.regular_count; id < total_count(); ++id) {
    SegmentMeta& m = metas_[id];
    if (m.base != nullptr) munmap(m.base, m.capacity);
  }
  if (arena_ != nullptr) munmap(arena_, arena_bytes_);
  accountant_->Release(MemoryKind::kMetadata, metadata_bytes_);
}

uint32_t SegmentPool::FreeCapacity() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t uncharged = accountant_->Available() / config_.segment_size;
  size_t capacity = resident_free_.size() + std::min(uncharged, released_free_.size());
  return static_cast<uint32_t>(capacity);
}

uint32_t SegmentPool::resident_free() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(resident_free_.size());
}

uint32_t SegmentPool::free_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(resident_free_.size() + released_free_.size());
}

uint32_t SegmentPool::Allocate(bool for_cleaner) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t uncharged = accountant_->Available() / config_.segment_size;
  size_t capacity = resident_free_.size() + std::min(uncharged, released_free_.size());
  if (!for_cleaner && capacity <= config_.reserve) return kNoSegment;
  if (!resident_free_.empty()) {
    uint32_t id = resident_free_.back();
    resident_free_.pop_back();
    return id;
  }
  if (released_free_.empty()) return kNoSegment;
  if (!accountant_->TryCharge(MemoryKind::kSegments, config_.segment_size)) return kNoSegment;
  uint32_t id = released_free_.back();
  released_free_.pop_back();
  return id;
}

uint32_t SegmentPool::AllocateJumbo(size_t bytes, bool precharged) {
  size_t mapped = RoundUpToPage(bytes);
  uint32_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jumbo_free_.empty()) return kNoSegment;
    if (!precharged && (accountant_->Available() < mapped + reserve_bytes() ||
                        !accountant_->TryCharge(MemoryKind::kJumbo, mapped))) {
      return kNoSegment;
    }
    id = jumbo_free_.back();
    jumbo_free_.pop_back();
  }
  char* base = MapNoReserve(mapped);
  if (base == nullptr) {
    if (!precharged) accountant_->Release(MemoryKind::kJumbo, mapped);
    std::lock_guard<std::mutex> lock(mu_);
    jumbo_free_.push_back(id);
    return kNoSegment;
  }
  SegmentMeta& m = metas_[id];
  m.base = base;
  m.capacity = static_cast<uint32_t>(mapped);
  return id;
}

void SegmentPool::ReleaseToOs(uint32_t id) {
  SegmentMeta& m = metas_[id];
  CINCH_CHECK(madvise(m.base, m.capacity, MADV_DONTNEED) == 0);
  accountant_->Release(MemoryKind::kSegments, m.capacity);
  bytes_released_.fetch_add(m.capacity, std::memory_order_relaxed);
}

void SegmentPool::Free(uint32_t id) {
  SegmentMeta& m = metas_[id];
  CINCH_DCHECK(m.pins.load() == 0);
  m.write_offset.store(0, std::memory_order_relaxed);
  m.live_bytes.store(0, std::memory_order_relaxed);
  m.live_items.store(0, std::memory_order_relaxed);
  m.max_expiry.store(0, std::memory_order_relaxed);
  m.writers.store(0, std::memory_order_relaxed);
  m.state.store(SegState::kFree, std::memory_order_release);
  if (m.jumbo) {
    size_t mapped = m.capacity;
    munmap(m.base, mapped);
    m.base = nullptr;
    m.capacity = 0;
    accountant_->Release(MemoryKind::kJumbo, mapped);
    bytes_released_.fetch_add(mapped, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    jumbo_free_.push_back(id);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (resident_free_.size() < config_.keep_resident) {
    resident_free_.push_back(id);
    return;
  }
  ReleaseToOs(id);
  released_free_.push_back(id);
}

}  // namespace cinch::mem

namespace cinch::mem {

size_t SegmentPool::TrimResident() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t trimmed = resident_free_.size();
  while (!resident_free_.empty()) {
    uint32_t id = resident_free_.back();
    resident_free_.pop_back();
    ReleaseToOs(id);
    released_free_.push_back(id);
  }
  return trimmed;
}

}  // namespace cinch::mem
