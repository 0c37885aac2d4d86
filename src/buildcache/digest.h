// A content digest as the build cache protocols name blobs: a SHA-256 hash and, when the
// protocol carries it, the blob's size (REAPI's Digest has both; Bazel's HTTP paths only the
// hash).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cinch::buildcache {

struct Digest {
  static constexpr size_t kHashBytes = 32;
  static constexpr size_t kHexChars = 2 * kHashBytes;
  static constexpr int64_t kUnknownSize = -1;

  std::array<uint8_t, kHashBytes> hash{};
  int64_t size = kUnknownSize;  // bytes of the blob, or kUnknownSize (HTTP)

  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(hash.data()), hash.size()};
  }
  friend bool operator==(const Digest&, const Digest&) = default;
};

// Parses exactly 64 hex digits (either case) into out->hash; out->size is left as it was.
// False, leaving *out unchanged, for any other length or a non-hex character.
bool ParseHexDigest(std::string_view hex, Digest* out);

// The hash as 64 lowercase hex digits (the form REAPI and Bazel send).
std::string HexDigest(const Digest& digest);

}  // namespace cinch::buildcache
