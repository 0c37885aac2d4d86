// SegmentPool: the store's memory. One virtual reservation (mmap, MAP_NORESERVE) cut into
// fixed-size segments, plus out-of-line "jumbo" segments (one mmap each) for items larger than a
// quarter of a segment. Every resident byte is charged to the Accountant first.
//
// Segment ids index one metadata table: [0, regular_count) are regular segments,
// [regular_count, regular_count + jumbo_count) are jumbo slots. A location (docs/index.md) is
// (segment id << segment_shift) | offset.
//
// Free regular segments are given back to the OS (madvise MADV_DONTNEED) except up to
// `keep_resident` of them, which stay charged and resident so a busy store does not page-fault
// on every segment it opens.
//
// The pool owns memory and the free lists; the engine owns the lifecycle held in SegmentMeta.
// Thread safety: all methods are safe from any thread; the free lists sit behind one mutex
// taken once per segment (not per item).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cinch/status.h"
#include "mem/accountant.h"

namespace cinch::mem {

enum class SegState : uint8_t {
  kFree,      // on a free list
  kOpen,      // owned by a write head, being appended to
  kSealed,    // full; items are only read, overwritten or deleted
  kCleaning,  // the cleaner is moving or dropping its items
  kDraining,  // no index slot points here any more; waiting for pins to drop
};

constexpr uint32_t kNoSegment = ~uint32_t{0};

// Bytes rounded up to whole pages of the system.
size_t RoundUpToPage(size_t bytes);
constexpr uint32_t kNeverExpires = ~uint32_t{0};

// Metadata of one segment, kept outside the segment so that free segments hold no resident
// pages. Hot counters are atomics; fields without atomics are written only while the segment
// is not reachable (free or being opened) and published by the index shard lock.
struct alignas(64) SegmentMeta {
  std::atomic<uint32_t> pins{0};          // ItemRefs that may read the bytes
  std::atomic<uint32_t> writers{0};       // reservations not yet published or abandoned
  std::atomic<uint32_t> write_offset{0};  // bytes reserved so far
  std::atomic<uint32_t> live_items{0};
  std::atomic<int64_t> live_bytes{0};   // bytes of items some index slot points at
  std::atomic<uint64_t> open_seq{0};    // unique per opening; the base of derived CAS values
  std::atomic<uint32_t> max_expiry{0};  // latest expiry of any item written (kNeverExpires)
  std::atomic<uint32_t> flush_gen{0};   // flush generation the segment was opened in
  char* base = nullptr;
  uint32_t capacity = 0;  // usable bytes (segment size, or the jumbo mapping's size)
  std::atomic<SegState> state{SegState::kFree};
  // Write head that filled it. Atomic: cleaners scan sealed segments while another cleaner may
  // free one and a writer reopen it.
  std::atomic<uint8_t> head{0};
  bool jumbo = false;
};
static_assert(sizeof(SegmentMeta) == 64, "one cache line per segment: no false sharing");

class SegmentPool {
 public:
  struct Config {
    size_t segment_size;
    uint32_t regular_count;  // segments in the reservation
    uint32_t jumbo_count;    // jumbo slots
    uint32_t keep_resident;  // free segments kept resident
    uint32_t reserve;        // free segments only the cleaner may take
  };

  // Reserves address space; charges the metadata table to `accountant`.
  static Status Create(const Config& config, Accountant* accountant,
                       std::unique_ptr<SegmentPool>* pool);
  ~SegmentPool();

  size_t segment_size() const { return config_.segment_size; }
  int segment_shift() const { return segment_shift_; }
  uint32_t regular_count() const { return config_.regular_count; }
  uint32_t total_count() const { return config_.regular_count + config_.jumbo_count; }
  SegmentMeta& meta(uint32_t id) { return metas_[id]; }
  const SegmentMeta& meta(uint32_t id) const { return metas_[id]; }
  size_t metadata_bytes() const { return metadata_bytes_; }

  // Takes a free regular segment (state still kFree; capacity = segment size), or returns
  // kNoSegment. Writers (for_cleaner=false) may not take the last `reserve` segments' worth of
  // memory; the cleaner may.
  uint32_t Allocate(bool for_cleaner);
  // Maps a jumbo segment of at least `bytes` usable bytes, or returns kNoSegment when the
  // memory (beyond the reserve) or the jumbo slots are exhausted. With `precharged`, the
  // caller has already charged RoundUpToPage(bytes) as kJumbo (and keeps it on failure).
  uint32_t AllocateJumbo(size_t bytes, bool precharged = false);
  // Returns a segment (regular or jumbo) whose bytes nobody can reach any more.
  void Free(uint32_t id);

  // Gives every resident free segment back to the OS (when memory is wanted elsewhere); returns
  // how many it gave back.
  size_t TrimResident();

  // Free segments that writers could take now, counting memory not yet charged.
  uint32_t FreeCapacity() const;
  uint32_t resident_free() const;
  uint32_t free_count() const;
  uint64_t bytes_released() const { return bytes_released_.load(std::memory_order_relaxed); }
  // Bytes of headroom that memory other than segments must leave for the cleaner.
  size_t reserve_bytes() const { return size_t{config_.reserve} * config_.segment_size; }

 private:
  SegmentPool(const Config& config, Accountant* accountant);
  void ReleaseToOs(uint32_t id);

  const Config config_;
  Accountant* const accountant_;
  int segment_shift_ = 0;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::unique_ptr<SegmentMeta[]> metas_;
  size_t metadata_bytes_ = 0;

  mutable std::mutex mu_;
  std::vector<uint32_t> resident_free_;  // charged, pages may be resident
  std::vector<uint32_t> released_free_;  // not charged, no resident pages
  std::vector<uint32_t> jumbo_free_;     // unused jumbo slots
  std::atomic<uint64_t> bytes_released_{0};
};

}  // namespace cinch::mem
