// Request encoding and reply parsing for the protocols cinch_load speaks: memcached's text and
// binary protocols and Redis's RESP2. Pure functions over byte buffers: no sockets, no allocation.
//
// Requests are written in three steps so a value is generated straight into the send buffer:
// a prefix (everything up to the value), the value, then ValueTrailer(protocol).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cinch::load {

enum class Protocol : uint8_t { kMemcache, kResp, kMemcacheBinary };
enum class Op : uint8_t { kGet, kSet, kDelete, kFlush };

// What follows a set's value: "\r\n", nothing in the binary protocol.
std::string_view ValueTrailer(Protocol p);
// Room any prefix below needs, beyond the key.
inline constexpr size_t kMaxPrefixOverhead = 64;

// Each writes to `out` (which must have kMaxPrefixOverhead + key.size() bytes) and returns the
// number of bytes written.
size_t EncodeGet(Protocol p, std::string_view key, char* out);
size_t EncodeDelete(Protocol p, std::string_view key, char* out);
size_t EncodeFlush(Protocol p, char* out);
// Everything of a set before its `value_size` value bytes; ValueTrailer() follows the value.
size_t EncodeSetPrefix(Protocol p, std::string_view key, uint32_t value_size, char* out);

enum class Outcome : uint8_t {
  kHit,        // get found a value
  kMiss,       // get found nothing
  kStored,     // set stored
  kNotStored,  // set refused: out of memory or similar (SERVER_ERROR, -OOM, NOT_STORED)
  kDeleted,    // delete removed the key
  kNotFound,   // delete found nothing
  kOk,         // flush done
  kError,      // the server answered an error line (SERVER_ERROR, -ERR) where none was due
};

struct Reply {
  Outcome outcome = Outcome::kError;
  std::string_view value;  // kHit: the value; kError, kNotStored: the server's line
  std::string_view key;    // kHit, memcached only: the key the server named (binary: getk)
};

// Parses the reply to one request of kind `op` at the front of `data`. Returns the bytes the
// reply takes (> 0), 0 if more bytes are needed, or -1 if the bytes are not a reply to `op`
// in this protocol (reply->value then holds the offending line).
long ParseReply(Protocol p, Op op, std::string_view data, Reply* reply);

}  // namespace cinch::load
