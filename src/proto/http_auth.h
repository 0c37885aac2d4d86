// HTTP Basic authentication (RFC 7617): the credentials of an "Authorization" header,
// "Basic <base64 of user:password>". With -Y, the HTTP port asks every request for them
// (docs/metrics.md, docs/auth.md).
//
// Thread safety: a pure function; no allocation (the caller passes the buffer).
#pragma once

#include <cstddef>
#include <string_view>

namespace cinch::proto {

struct BasicCredentials {
  std::string_view user;      // up to the first ':' (RFC 7617: a user-id holds no colon)
  std::string_view password;  // the rest, colons included
};

// The most bytes ParseBasicAuth decodes into its buffer for a header of `n` bytes.
constexpr size_t BasicAuthBufferSize(size_t n) { return n / 4 * 3 + 3; }

// Reads `header` (an Authorization header's value). True when it is the Basic scheme (any
// case) followed by a base64 token that decodes to "user:password"; the views point into
// `buffer`, which must hold BasicAuthBufferSize(header.size()) bytes. False otherwise (another
// scheme, no token, not base64, no colon).
bool ParseBasicAuth(std::string_view header, char* buffer, size_t buffer_size,
                    BasicCredentials* out);

}  // namespace cinch::proto
