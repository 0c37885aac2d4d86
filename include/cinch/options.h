// Configuration of a cinch store: a plain struct, validated by Store::Open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cinch {

class Clock;

// One file of the file tier (docs/file-tier.md): memcached's `-o ext_path=PATH:SIZE`.
struct TierFile {
  std::string path;
  uint64_t size = 0;  // bytes; rounded down to whole segments
};

struct Options {
  // Hard bound on everything the store keeps resident: segments, index, segment metadata and
  // cleaner scratch, plus whatever the embedder charges through Store::ChargeExternal().
  size_t memory_limit = size_t{64} << 20;

  // Size of one log segment. A power of two, at least 4 KiB (one page) and at most 64 MiB.
  size_t segment_size = size_t{1} << 20;

  // Largest item (key + value + header) accepted. Items larger than an eighth of a segment are
  // stored out of line ("jumbo" items), so this may exceed segment_size.
  size_t max_item_size = size_t{1} << 20;

  // When the store is full: evict cold items (true), or answer Outcome::kOutOfMemory (false).
  bool eviction = true;

  // The longest one write waits for memory that cannot be freed at once (segments pinned by
  // readers or still being filled by other threads, memory the embedder is about to release;
  // with eviction off, also a cleaner pass running on another thread) before answering
  // kOutOfMemory. With eviction on, a write never needs another thread to make room: it
  // cleans segments itself, and 0 only stops it giving a running pass a moment first. A
  // waiting write blocks its thread: keep it short when that thread is an event loop.
  uint32_t space_wait_ms = 100;

  // Run the cleaner on a background thread. When false, the cleaner runs only inside writers
  // that find no free segment and in RunCleanerOnce(); tests use this for determinism.
  bool background_cleaner = true;

  // How often the background cleaner wakes when nobody asks it to (expiry, give-back, flush).
  uint32_t cleaner_interval_ms = 100;

  // A sealed segment whose live bytes are at most this fraction of its size is compacted
  // (live items moved, segment freed) rather than evicted when memory is needed.
  double compact_max_live = 0.95;

  // Segments the cleaner keeps resident and free for itself; writers never take the last ones.
  uint32_t reserve_segments = 2;

  // Number of index shards (a power of two); 0 picks one from memory_limit.
  uint32_t index_shards = 0;

  // The file tier: when memory is full, cold segments are written to these files instead of
  // being evicted, and items are evicted only once the files are full too. Empty: no tier.
  // The files are scratch space: created or truncated by Open, never synced, never read back
  // by a later Open. Memory limit plus tier sizes stay within 1 TiB (40-bit locations).
  std::vector<TierFile> tier_files;

  // Time source; nullptr means SystemClock::Default(). Not owned; must outlive the store.
  const Clock* clock = nullptr;
};

}  // namespace cinch
