// Key hashing. One 64-bit hash per key feeds the index: low bits pick the shard, high bits the
// tag (see docs/index.md).
#pragma once

#include <cstdint>
#include <string_view>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace cinch {

inline uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

}  // namespace cinch
