// Key hashing. One 64-bit hash per key feeds the index: low bits pick the shard, high bits the
// tag (see docs/index.md).
#pragma once

#include <cstdint>
#include <string_view>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace cinch {

inline uint64_t HashKey(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

// The hash of a key in a keyspace (docs/keyspaces.md): the keyspace id seeds XXH3, so the same
// key lands on different shards and tags in different keyspaces. Keyspace 0 hashes as above
// (XXH3 with seed 0 is XXH3_64bits).
inline uint64_t HashKey(std::string_view key, uint16_t keyspace) {
  return keyspace == 0 ? HashKey(key) : XXH3_64bits_withSeed(key.data(), key.size(), keyspace);
}

}  // namespace cinch
