// Test data shared by the store's unit tests (store_test.cc, engine_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cinch/options.h"
#include "cinch/store.h"

namespace cinch::test {

// A deterministic, non-repeating filler so that a misplaced byte shows up as a mismatch.
inline std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

inline std::string Key(int i) { return "key:" + std::to_string(i); }

// A tiny store for tests that want eviction and compaction all the time: 4 KiB segments, one
// index shard, no background cleaner, `extra_segments` segments above the smallest limit Open
// accepts (0 if there is none: Open then fails).
inline Options TinyOptions(const Clock* clock, size_t extra_segments, bool eviction) {
  Options o;
  o.segment_size = 4 * 1024;
  o.max_item_size = 4 * 1024;
  o.index_shards = 1;
  o.eviction = eviction;
  o.background_cleaner = false;
  o.clock = clock;
  size_t min_limit = Store::MinimumMemoryLimit(o);
  o.memory_limit = min_limit == 0 ? 0 : min_limit + extra_segments * o.segment_size;
  return o;
}

}  // namespace cinch::test
