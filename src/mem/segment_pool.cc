#include "mem/segment_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
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
  p->jumbo_base_ = uint64_t{config.regular_count} << p->segment_shift_;
  p->file_first_ = config.regular_count + config.jumbo_count;
  p->file_base_ = (p->jumbo_base_ + config.jumbo_count + config.segment_size - 1) &
                  ~uint64_t{config.segment_size - 1};
  // The file segments' backing state: charged by ChargeFileMetadata.
  if (config.file_count > 0) p->files_.reset(new FileSlot[config.file_count]);
  p->fresh_file_ = p->file_first_;
  p->metas_bytes_ = RoundUpToPage(sizeof(SegmentMeta) * size_t{p->total_count()});
  p->metas_ = reinterpret_cast<SegmentMeta*>(MapNoReserve(p->metas_bytes_));
  if (p->metas_ == nullptr) return Status::IoError("mmap of the segment table failed");
  size_t pages = p->metas_bytes_ / PageSize();
  p->meta_pages_.assign((pages + 63) / 64, 0);
  p->fresh_jumbo_ = config.regular_count;
  *pool = std::move(p);
  return Status::Ok();
}

SegmentPool::~SegmentPool() {
  for (uint32_t id = config_.regular_count; id < fresh_jumbo_; ++id) {  // jumbo mappings
    SegmentMeta& m = metas_[id];
    if (m.base != nullptr) munmap(m.base, m.capacity);
  }
  if (metas_ != nullptr) {
    // Entries are trivially destructible in effect (atomics of integers): the pages just go.
    munmap(metas_, metas_bytes_);
    accountant_->Release(MemoryKind::kMetadata, metadata_bytes_.load());
  }
  if (arena_ != nullptr) munmap(arena_, arena_bytes_);
}

bool SegmentPool::EnsureMetaPage(uint32_t id) {
  size_t page = MetaPageOf(id);
  if (MetaPageCharged(page)) return true;
  if (!accountant_->TryCharge(MemoryKind::kMetadata, PageSize())) return false;
  metadata_bytes_.fetch_add(PageSize(), std::memory_order_relaxed);
  ConstructMetaPage(page);
  return true;
}

size_t SegmentPool::MetaPageOf(uint32_t id) {
  return size_t{id} * sizeof(SegmentMeta) / PageSize();
}

bool SegmentPool::MetaPageCharged(size_t page) const {
  return (meta_pages_[page / 64] >> (page % 64)) & 1;
}

void SegmentPool::ConstructMetaPage(size_t page) {
  meta_pages_[page / 64] |= uint64_t{1} << (page % 64);
  size_t per_page = PageSize() / sizeof(SegmentMeta);
  uint32_t first = static_cast<uint32_t>(page * per_page);
  uint32_t end = std::min<uint32_t>(first + static_cast<uint32_t>(per_page), total_count());
  for (uint32_t i = first; i < end; ++i) {
    SegmentMeta* m = new (&metas_[i]) SegmentMeta;
    if (i < config_.regular_count) {
      m->base = arena_ + size_t{i} * config_.segment_size;
      m->capacity = static_cast<uint32_t>(config_.segment_size);
    }
  }
}

size_t SegmentPool::FileMetadataBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return UnchargedFileMetadata();
}

size_t SegmentPool::UnchargedFileMetadata() const {
  if (config_.file_count == 0 || files_charged_) return 0;
  size_t pages = 0;
  for (size_t page = MetaPageOf(file_first_); page <= MetaPageOf(total_count() - 1); ++page) {
    pages += MetaPageCharged(page) ? 0 : 1;
  }
  return pages * PageSize() + sizeof(FileSlot) * size_t{config_.file_count};
}

bool SegmentPool::ChargeFileMetadata() {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t bytes = UnchargedFileMetadata();
  if (bytes == 0) return true;
  if (!accountant_->TryCharge(MemoryKind::kMetadata, bytes)) return false;
  metadata_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  for (size_t page = MetaPageOf(file_first_); page <= MetaPageOf(total_count() - 1); ++page) {
    if (!MetaPageCharged(page)) ConstructMetaPage(page);
  }
  files_charged_ = true;
  return true;
}

uint32_t SegmentPool::TakeFresh(uint32_t* next, uint32_t end) {
  if (*next == end || !EnsureMetaPage(*next)) return kNoSegment;
  return (*next)++;
}

void SegmentPool::AddInUse(uint32_t id) {
  metas_[id].in_use_pos = static_cast<uint32_t>(in_use_.size());
  in_use_.push_back(id);
}

void SegmentPool::RemoveInUse(uint32_t id) {
  uint32_t pos = metas_[id].in_use_pos;
  CINCH_DCHECK(pos < in_use_.size() && in_use_[pos] == id);
  uint32_t last = in_use_.back();
  in_use_[pos] = last;
  metas_[last].in_use_pos = pos;
  in_use_.pop_back();
}

void SegmentPool::InUse(std::vector<uint32_t>* ids) const {
  std::lock_guard<std::mutex> lock(mu_);
  ids->assign(in_use_.begin(), in_use_.end());
}

uint32_t SegmentPool::FreeCapacity() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t uncharged = accountant_->Available() / config_.segment_size;
  size_t capacity = resident_free_.size() + std::min(uncharged, ReleasedCount());
  return static_cast<uint32_t>(capacity);
}

uint32_t SegmentPool::resident_free() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(resident_free_.size());
}

uint32_t SegmentPool::free_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(resident_free_.size() + ReleasedCount());
}

uint32_t SegmentPool::Allocate(bool for_cleaner) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t uncharged = accountant_->Available() / config_.segment_size;
  size_t capacity = resident_free_.size() + std::min(uncharged, ReleasedCount());
  if (!for_cleaner && capacity <= config_.reserve) return kNoSegment;
  uint32_t id = kNoSegment;
  if (!resident_free_.empty()) {
    id = resident_free_.back();
    resident_free_.pop_back();
  } else if (ReleasedCount() > 0) {
    if (!accountant_->TryCharge(MemoryKind::kSegments, config_.segment_size)) return kNoSegment;
    if (!released_free_.empty()) {
      id = released_free_.back();
      released_free_.pop_back();
    } else {
      id = TakeFresh(&fresh_regular_, config_.regular_count);
      if (id == kNoSegment) {
        accountant_->Release(MemoryKind::kSegments, config_.segment_size);
        return kNoSegment;
      }
    }
  }
  if (id != kNoSegment) AddInUse(id);
  return id;
}

uint32_t SegmentPool::AllocateJumbo(size_t bytes, bool precharged) {
  size_t mapped = RoundUpToPage(bytes);
  uint32_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jumbo_free_.empty() && fresh_jumbo_ == file_first_) return kNoSegment;
    if (!precharged && (accountant_->Available() < mapped + reserve_bytes() ||
                        !accountant_->TryCharge(MemoryKind::kJumbo, mapped))) {
      return kNoSegment;
    }
    if (!jumbo_free_.empty()) {
      id = jumbo_free_.back();
      jumbo_free_.pop_back();
    } else {
      id = TakeFresh(&fresh_jumbo_, file_first_);
      if (id == kNoSegment) {
        if (!precharged) accountant_->Release(MemoryKind::kJumbo, mapped);
        return kNoSegment;
      }
    }
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
  std::lock_guard<std::mutex> lock(mu_);
  AddInUse(id);
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
  if (IsFile(id)) {
    m.capacity = 0;
    std::lock_guard<std::mutex> lock(mu_);
    file_free_.push_back(id);
    --files_in_use_;
    return;
  }
  if (IsJumbo(id)) {
    size_t mapped = m.capacity;
    munmap(m.base, mapped);
    m.base = nullptr;
    m.capacity = 0;
    accountant_->Release(MemoryKind::kJumbo, mapped);
    bytes_released_.fetch_add(mapped, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    RemoveInUse(id);
    jumbo_free_.push_back(id);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  RemoveInUse(id);
  if (resident_free_.size() < config_.keep_resident) {
    resident_free_.push_back(id);
    return;
  }
  ReleaseToOs(id);
  released_free_.push_back(id);
}

}  // namespace cinch::mem

namespace cinch::mem {

uint32_t SegmentPool::AllocateFile() {
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t id;
  if (!file_free_.empty()) {
    // Lowest first, as regular ids: the metadata pages in use follow the most ever used.
    auto lowest = std::min_element(file_free_.begin(), file_free_.end());
    id = *lowest;
    *lowest = file_free_.back();
    file_free_.pop_back();
  } else {
    id = TakeFresh(&fresh_file_, total_count());
    if (id == kNoSegment) return kNoSegment;
  }
  metas_[id].capacity = static_cast<uint32_t>(config_.segment_size);
  ++files_in_use_;
  return id;
}

uint32_t SegmentPool::file_high_water() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fresh_file_;
}

uint32_t SegmentPool::files_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return files_in_use_;
}

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
