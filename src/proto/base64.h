// Base64 (RFC 4648 alphabet, '=' padding) for binary meta keys (meta flag 'b').
//
// Decoding copies memcached 1.6's decoder bit for bit, because a key it accepts must be
// accepted here too: bytes outside the alphabet are skipped, the remaining characters (counting
// '=') must be a non-zero multiple of 4, decoding stops after the first block holding '=', and
// a block with more than two '=' fails. So "a2V5" -> "key", "a2V5!" -> "key", "a2V" fails.
//
// No allocation: callers pass the output buffer. Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string_view>

namespace cinch::proto {

// Bytes Base64Encode writes for `n` input bytes.
constexpr size_t Base64EncodedSize(size_t n) { return (n + 2) / 3 * 4; }

// An upper bound on the bytes Base64Decode writes for `n` input characters.
constexpr size_t Base64MaxDecodedSize(size_t n) { return n / 4 * 3; }

// Writes the padded encoding of `in` to `out` and returns its length, or 0 when `in` is empty
// or `out_size` < Base64EncodedSize(in.size()).
size_t Base64Encode(std::string_view in, char* out, size_t out_size);

// Decodes `in` into `out` and returns the decoded length, or 0 when `in` is not decodable (see
// above) or the output may not fit: memcached requires out_size >= 3/4 of the characters that
// count, before padding is taken off.
size_t Base64Decode(std::string_view in, char* out, size_t out_size);

}  // namespace cinch::proto
