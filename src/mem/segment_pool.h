// SegmentPool: the store's memory. One virtual reservation (mmap, MAP_NORESERVE) cut into
// fixed-size segments, plus out-of-line "jumbo" segments (one mmap each) for items larger than an
// eighth of a segment. Every resident byte is charged to the Accountant first.
//
// Segment ids index one metadata table: [0, regular_count) are regular segments,
// [regular_count, regular_count + jumbo_count) are jumbo slots. The table is a reservation too:
// a page of it is charged (kMetadata) and its entries constructed the first time an id in it is
// handed out, so memory and work follow the segments in use, not the limit. Ids are handed out
// lowest first (fresh ones only when no freed one is left), and the ids in use are listed, so
// the cleaner walks what is in use rather than the whole table. The file segments' pages are
// the exception: ChargeFileMetadata charges them all when the tier opens, since file segments
// are taken when memory is full (a demotion) and must then need none.
//
// Locations (the index's 40 bits, docs/index.md) number the bytes of the arena, then the jumbo
// slots, one value each (a jumbo item always starts at offset 0), then the bytes of the file
// tier's segments (docs/file-tier.md), from file_base, the first segment boundary past the
// jumbo slots:
//
//   0                  jumbo_base = regular_count << shift          file_base          file_end
//   +----------------------------------------+-------------------+--+---------------------+
//   | regular: (id << shift) | offset        | jumbo: base + j   |  | file: (f << shift)  |
//   |          (arena bytes)                 |                   |  |        | offset     |
//   +----------------------------------------+-------------------+--+---------------------+
//
// so a regular item's address is arena + location (no table lookup), and 2^40 locations cover
// 1 TiB of segments, their jumbo slots and file segments (the engine trims regular_count where
// they would not fit, and refuses tier files that do not).
//
// File segments have ids too, after the jumbo slots, and metadata entries like the others (live
// counts, open_seq, keyspace, flush generation, expiry: every fact the engine reads about an
// item's segment), but no memory of their own: while one is being written (demotion), the RAM
// segment it copies "backs" it, and ItemAt of its locations resolves there; afterwards ItemAt
// returns nullptr (the bytes are on file only). File ids are not listed by InUse.
//
// Free regular segments are given back to the OS (madvise MADV_DONTNEED) except up to
// `keep_resident` of them, which stay charged and resident so a busy store does not page-fault
// on every segment it opens.
//
// The pool owns memory and the free lists; the engine owns the lifecycle held in SegmentMeta.
// Thread safety: all methods are safe from any thread; the free lists sit behind one mutex
// taken once per segment (not per item). meta(id) is valid only for an id handed out since
// Create (by Allocate or AllocateJumbo) or listed by InUse.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cinch/status.h"
#include "mem/accountant.h"
#include "mem/mapping.h"

namespace cinch::mem {

enum class SegState : uint8_t {
  kFree,      // on a free list
  kOpen,      // owned by a write head, being appended to
  kSealed,    // full; items are only read, overwritten or deleted
  kCleaning,  // the cleaner is moving or dropping its items
  kDraining,  // no index slot points here any more; waiting for pins to drop
};

constexpr uint32_t kNoSegment = ~uint32_t{0};

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
  // Unix seconds when the segment was opened or an item was last published in it: an item's
  // write time, to within the segment's life (meta 'l', "last access", reports it).
  std::atomic<uint32_t> write_time{0};
  uint32_t in_use_pos = 0;  // index in the pool's list of ids in use; guarded by its mutex
  std::atomic<SegState> state{SegState::kFree};
  // Write head that filled it, within its keyspace's heads. Atomic: cleaners scan sealed
  // segments while another cleaner may free one and a writer reopen it.
  std::atomic<uint8_t> head{0};
  // Keyspace of every item in the segment (docs/keyspaces.md): set when it is opened, before
  // any item of it is published; a lookup matches it as well as the key bytes.
  std::atomic<uint16_t> keyspace{0};
};
static_assert(sizeof(SegmentMeta) == 64, "one cache line per segment: no false sharing");

class SegmentPool {
 public:
  struct Config {
    size_t segment_size;
    uint32_t regular_count;   // segments in the reservation
    uint32_t jumbo_count;     // jumbo slots
    uint32_t keep_resident;   // free segments kept resident
    uint32_t reserve;         // free segments only the cleaner may take
    uint32_t file_count = 0;  // file tier segments
  };

  // Reserves address space for the segments and their metadata table; charges nothing (file
  // segments' metadata included: see ChargeFileMetadata).
  static Status Create(const Config& config, Accountant* accountant,
                       std::unique_ptr<SegmentPool>* pool);
  ~SegmentPool();

  size_t segment_size() const { return config_.segment_size; }
  int segment_shift() const { return segment_shift_; }
  uint32_t regular_count() const { return config_.regular_count; }
  uint32_t total_count() const {
    return config_.regular_count + config_.jumbo_count + config_.file_count;
  }
  SegmentMeta& meta(uint32_t id) { return metas_[id]; }
  // Whether `id` is a jumbo slot (an out-of-line item) rather than a regular segment.
  bool IsJumbo(uint32_t id) const { return id >= config_.regular_count && id < file_first_; }
  // Whether `id` is a file tier segment.
  bool IsFile(uint32_t id) const { return id >= file_first_; }
  uint32_t file_first() const { return file_first_; }
  uint32_t file_count() const { return config_.file_count; }
  bool IsFileLocation(uint64_t location) const { return location >= file_base_; }
  const SegmentMeta& meta(uint32_t id) const { return metas_[id]; }
  // Pages of the metadata table charged so far (every id handed out has its page charged).
  size_t metadata_bytes() const { return metadata_bytes_.load(std::memory_order_relaxed); }

  // Locations: see the diagram above. REQUIRES: offset == 0 for a jumbo id.
  uint64_t Location(uint32_t id, uint32_t offset) const {
    if (id < config_.regular_count) return (uint64_t{id} << segment_shift_) | offset;
    if (id < file_first_) return jumbo_base_ + (id - config_.regular_count);
    return file_base_ + (uint64_t{id - file_first_} << segment_shift_) + offset;
  }
  uint32_t SegmentOf(uint64_t location) const {
    if (location < jumbo_base_) return static_cast<uint32_t>(location >> segment_shift_);
    if (location < file_base_) {
      return config_.regular_count + static_cast<uint32_t>(location - jumbo_base_);
    }
    return file_first_ + static_cast<uint32_t>((location - file_base_) >> segment_shift_);
  }
  uint32_t OffsetOf(uint64_t location) const {
    // file_base is a multiple of the segment size.
    return location < jumbo_base_ || location >= file_base_
               ? static_cast<uint32_t>(location & (config_.segment_size - 1))
               : 0;
  }
  // The first byte of the item at `location`; nullptr for an item whose bytes are on file only.
  char* ItemAt(uint64_t location) const {
    if (location < jumbo_base_) return arena_ + location;
    if (location < file_base_) return metas_[SegmentOf(location)].base;
    char* mem = files_[SegmentOf(location) - file_first_].memory.load(std::memory_order_acquire);
    return mem == nullptr ? nullptr : mem + OffsetOf(location);
  }
  // One past the largest location: the jumbo slots' end, or with a tier the file segments'.
  uint64_t location_end() const {
    return config_.file_count == 0 ? jumbo_base_ + config_.jumbo_count
                                   : file_base_ + (uint64_t{config_.file_count} << segment_shift_);
  }

  // --- file segments (docs/file-tier.md) ---
  // What ChargeFileMetadata charges: the metadata table's pages holding file ids (not yet
  // charged) and 16 B of backing state per file segment; 0 once it has charged them.
  size_t FileMetadataBytes() const;
  // Charges, all or nothing, and constructs the metadata of every file segment, so that
  // AllocateFile never needs memory (it runs when memory is full: a demotion). Returns false,
  // charging nothing, if the limit has no room for it. REQUIRES: no file segment taken yet.
  bool ChargeFileMetadata();
  // Takes a free file segment (state kFree), or returns kNoSegment. Freed by Free. Charges
  // nothing after ChargeFileMetadata (before it, the metadata page of a fresh id).
  uint32_t AllocateFile();
  // File segment `id` is backed by RAM segment `ram` (kNoSegment: no longer): its items'
  // bytes are read from there. Memory and backing id are separate steps so that a reader
  // that saw the memory can still find the segment to pin after it is withdrawn.
  void SetFileMemory(uint32_t id, char* memory) {
    files_[id - file_first_].memory.store(memory, std::memory_order_release);
  }
  void SetFileBacking(uint32_t id, uint32_t ram) {
    files_[id - file_first_].backing.store(ram, std::memory_order_release);
  }
  uint32_t FileBacking(uint32_t id) const {
    return files_[id - file_first_].backing.load(std::memory_order_acquire);
  }
  // File ids below this have been handed out at least once (their metadata exists).
  uint32_t file_high_water() const;
  uint32_t files_in_use() const;

  // Replaces *ids with the ids now in use (handed out and not freed since), in no set order.
  // O(ids in use). An id listed may be freed by another thread right after.
  void InUse(std::vector<uint32_t>* ids) const;

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
  // Charges and constructs the metadata page holding `id` if it is not yet; false if the
  // limit has no room for it. REQUIRES: mu_ held.
  bool EnsureMetaPage(uint32_t id);
  static size_t MetaPageOf(uint32_t id);
  // REQUIRES: mu_ held.
  bool MetaPageCharged(size_t page) const;
  // Marks `page` charged and constructs its entries. REQUIRES: mu_ held, the page charged.
  void ConstructMetaPage(size_t page);
  // FileMetadataBytes. REQUIRES: mu_ held.
  size_t UnchargedFileMetadata() const;
  // Takes a never used id of [first, end) from *next, with its metadata page; kNoSegment if
  // none is left or the page cannot be charged. REQUIRES: mu_ held.
  uint32_t TakeFresh(uint32_t* next, uint32_t end);
  // REQUIRES: mu_ held.
  void AddInUse(uint32_t id);
  void RemoveInUse(uint32_t id);
  // Regular segments free and not charged: freed ones and never used ones. REQUIRES: mu_ held.
  size_t ReleasedCount() const {
    return released_free_.size() + (config_.regular_count - fresh_regular_);
  }

  const Config config_;
  Accountant* const accountant_;
  int segment_shift_ = 0;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  uint64_t jumbo_base_ = 0;  // location of jumbo slot 0
  uint64_t file_base_ = 0;   // location of file segment 0's first byte
  uint32_t file_first_ = 0;  // id of file segment 0
  struct FileSlot {
    std::atomic<char*> memory{nullptr};
    std::atomic<uint32_t> backing{kNoSegment};
  };
  std::unique_ptr<FileSlot[]> files_;      // file_count entries
  SegmentMeta* metas_ = nullptr;           // a reservation of total_count() entries
  size_t metas_bytes_ = 0;                 // its size, page rounded
  std::atomic<size_t> metadata_bytes_{0};  // charged pages of it

  mutable std::mutex mu_;
  std::vector<uint64_t> meta_pages_;     // bit per page of metas_: charged and constructed
  uint32_t fresh_regular_ = 0;           // regular ids below this have been handed out
  uint32_t fresh_jumbo_ = 0;             // jumbo ids below this have been handed out
  std::vector<uint32_t> resident_free_;  // charged, pages may be resident
  std::vector<uint32_t> released_free_;  // freed, not charged, no resident pages
  std::vector<uint32_t> jumbo_free_;     // freed jumbo slots
  uint32_t fresh_file_ = 0;              // file ids below this have been handed out
  std::vector<uint32_t> file_free_;      // freed file segments
  bool files_charged_ = false;           // by ChargeFileMetadata
  uint32_t files_in_use_ = 0;
  std::vector<uint32_t> in_use_;  // ids handed out and not freed
  std::atomic<uint64_t> bytes_released_{0};
};

}  // namespace cinch::mem
