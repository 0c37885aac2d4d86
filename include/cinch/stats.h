// A snapshot of a store's counters, as returned by Store::GetStats().
#pragma once

#include <cstdint>

namespace cinch {

struct StoreStats {
  // Contents.
  uint64_t items = 0;            // live items in the index (expired ones not yet reclaimed count)
  uint64_t key_value_bytes = 0;  // sum of key + value lengths of live items

  // Memory, in bytes. resident_bytes is what the store charges against memory_limit, the
  // effective limit (Store::SetMemoryLimit; Options::memory_limit until it is called).
  // resident_bytes exceeds it only for a while after the limit was lowered.
  uint64_t memory_limit = 0;
  uint64_t resident_bytes = 0;  // everything below plus external_bytes
  uint64_t segment_bytes = 0;   // resident segments (in use or held free in reserve)
  uint64_t jumbo_bytes = 0;     // out-of-line items, page rounded
  uint64_t index_bytes = 0;     // resident index pages
  uint64_t metadata_bytes = 0;  // segment table and other fixed metadata
  uint64_t external_bytes = 0;  // charged by the embedder (e.g. server buffers)
  // Heap buffers of streaming writes not yet committed (values of up to an eighth of a segment;
  // larger ones are reserved in place and count in jumbo_bytes).
  uint64_t staging_bytes = 0;
  uint64_t pending_writes = 0;     // streaming writes begun and not yet committed or aborted
  uint64_t item_header_bytes = 0;  // headers of live items
  uint64_t overhead_bytes = 0;     // resident_bytes - external_bytes - key_value_bytes

  // Segments.
  uint64_t segment_size = 0;
  uint64_t segments_total = 0;     // segments the effective limit allows at most
  uint64_t segments_used = 0;      // holding items (open or sealed)
  uint64_t segments_free = 0;      // free and resident
  uint64_t segments_released = 0;  // free and returned to the OS

  // Cleaner and traffic.
  uint64_t evictions = 0;              // live items dropped to make room
  uint64_t expirations_reclaimed = 0;  // expired items removed by the cleaner
  uint64_t flushed_items = 0;          // items flush_all invalidated, once removed (lazily)
  uint64_t relocated_items = 0;        // items moved by compaction or merge eviction
  uint64_t relocated_bytes = 0;
  uint64_t segments_compacted = 0;
  uint64_t segments_evicted = 0;
  uint64_t bytes_released_to_os = 0;  // cumulative madvise(MADV_DONTNEED) bytes
  uint64_t index_resizes = 0;
  uint64_t out_of_memory = 0;  // writes refused for lack of memory
  // Writes (and ChargeExternal calls) that found no free memory: cleaner passes they ran
  // themselves; segments they cleaned themselves while another thread's pass was running; and
  // waits (of at most 5 ms each) for memory that no cleaner could free at once (segments
  // pinned by readers). All stay near 0 while the background cleaner keeps ahead; each is
  // latency a client saw.
  uint64_t writer_cleaner_passes = 0;
  uint64_t writer_reclaims = 0;
  uint64_t writer_space_waits = 0;
  uint64_t get_hits = 0;
  uint64_t get_misses = 0;

  // The file tier (Options::tier_files; all 0 without one).
  uint64_t tier_capacity_bytes = 0;  // sum of the files' usable sizes
  uint64_t tier_used_bytes = 0;      // bytes of file segments holding items
  uint64_t tier_items = 0;           // live items whose bytes are on file
  uint64_t tier_item_bytes = 0;      // their bytes on file (item headers included)
  uint64_t tier_reads = 0;           // reads from the files (pread calls)
  uint64_t tier_read_bytes = 0;
  uint64_t tier_writes = 0;  // segments written to the files
  uint64_t tier_write_bytes = 0;
  uint64_t tier_promotions = 0;   // items brought back into memory
  uint64_t tier_compactions = 0;  // file segments compacted
  uint64_t tier_evictions = 0;    // live items dropped from the files (files full)
  uint64_t tier_io_errors = 0;    // live items lost to failed or short file reads and writes
  uint64_t tier_read_oom = 0;     // reads of items on file that found no memory (Miss::kNoMemory)
  // First reads of items in a segment being written to the file that found no memory for the
  // copy that marks them read: served, but their H bit ("fetched before") stays unset.
  uint64_t tier_unmarked_reads = 0;
};

}  // namespace cinch
