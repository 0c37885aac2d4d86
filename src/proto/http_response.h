// Every HTTP status line, header and error body the build cache front end (src/http) sends, in
// one place, and the formatting of a response head into a caller's buffer (no allocation).
//
// Thread safety: constants and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cinch::proto {

enum class HttpStatus : uint16_t {
  kOk = 200,
  kBadRequest = 400,            // malformed request or digest, CAS digest mismatch
  kUnauthorized = 401,          // -Y: no valid Basic credentials (WWW-Authenticate sent)
  kForbidden = 403,             // -Y: valid credentials of a user not allowed (a tenant)
  kNotFound = 404,              // no such entry, or not a cache path
  kMethodNotAllowed = 405,      // a cache path with a method other than GET, HEAD, PUT
  kLengthRequired = 411,        // PUT with neither Content-Length nor chunked encoding
  kPayloadTooLarge = 413,       // body larger than -I
  kHeaderFieldsTooLarge = 431,  // request head longer than HttpRequestParser::kMaxHead
  kInsufficientStorage = 507,   // the store is full and evicts nothing
};

// "Not Found", ...
std::string_view HttpReason(HttpStatus status);

namespace http_reply {

// Sent before reading the body of a request with "Expect: 100-continue" that will be read.
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// Bodies of error responses (text/plain), one line each.
inline constexpr std::string_view kBadDigest = "digest must be 64 hex digits (sha256)\n";
inline constexpr std::string_view kDigestMismatch =
    "sha256 of the body does not match the digest\n";
inline constexpr std::string_view kSizeMismatch = "body length does not match its framing\n";
inline constexpr std::string_view kMalformed = "malformed HTTP request\n";
inline constexpr std::string_view kHeadTooLarge = "request head too large\n";
inline constexpr std::string_view kNotFound = "not found\n";
inline constexpr std::string_view kMethodNotAllowed = "only GET, HEAD and PUT are served\n";
inline constexpr std::string_view kLengthRequired = "Content-Length or chunked encoding needed\n";
inline constexpr std::string_view kTooLarge = "blob larger than the cache's item size limit\n";
inline constexpr std::string_view kOutOfMemory = "cache full\n";
inline constexpr std::string_view kReadOnly = "only GET and HEAD are served\n";
inline constexpr std::string_view kUnauthorized = "authentication required\n";
inline constexpr std::string_view kForbidden =
    "a tenant's credentials: the HTTP port is the operator's\n";

}  // namespace http_reply

// What a response body is, for its Content-Type.
enum class HttpBody : uint8_t {
  kText,     // text/plain: error lines
  kBinary,   // application/octet-stream: cache entries
  kMetrics,  // Prometheus's text format 0.0.4 (kPrometheusContentType)
};

// What a response head says besides its status.
struct HttpResponseHead {
  HttpStatus status = HttpStatus::kOk;
  uint64_t content_length = 0;
  bool close = false;       // "Connection: close": the server closes after this response
  bool keep_alive = false;  // "Connection: keep-alive" (an HTTP/1.0 client that asked for it)
  HttpBody body = HttpBody::kText;
  bool read_only = false;  // a 405's Allow header: "GET, HEAD" (else "GET, HEAD, PUT")
};

// The challenge of a 401 (the realm names the server; credentials are sent as UTF-8).
inline constexpr std::string_view kBasicChallenge =
    "WWW-Authenticate: Basic realm=\"cinch\", charset=\"UTF-8\"";

// Longest head FormatHttpHead writes.
inline constexpr size_t kMaxHttpResponseHead = 320;

// Writes the status line and headers, ending with the empty line, into `buffer`; returns the
// bytes written (at most kMaxHttpResponseHead).
size_t FormatHttpHead(const HttpResponseHead& head, char* buffer);

}  // namespace cinch::proto
