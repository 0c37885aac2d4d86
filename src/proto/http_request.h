// HTTP/1.1 requests as the build cache front end (src/http) sees them, parsed by
// HttpRequestParser over the maintained libhttp-parser (Debian's libhttp-parser-dev; the
// nodejs parser): a pure parser, bytes in, events out, no sockets and no allocation.
//
// Events, in order for every request: kHead once (method, target, framing), kBody for each run
// of body bytes as they arrive (never buffered: a body of any size streams through), kEnd.
// Pipelined requests follow one another in the same input. The caller feeds the bytes it has
// received and not yet consumed, as net::Session::OnInput gets them:
//   - kNeedMore: consumed bytes are gone (part of a chunked body's framing, say); call again with
//     the rest plus more input. While the head is incomplete nothing is consumed (the head is
//     parsed in one piece, so the target can be a view into the input): the caller keeps the
//     bytes, and a head longer than kMaxHead is an error.
//   - kHead: head() holds the request; its target views the input and is valid until the
//     caller drops the consumed bytes.
//   - kBody: `body` views the input (valid likewise). It may extend one byte past `consumed`:
//     the parser reads the body's last byte again to end the message, and does not deliver it
//     twice.
//   - kEnd: the request is complete; the next call starts the next request.
//   - kError: malformed (or kHeadTooLarge); the stream cannot be resynchronized: reply and close.
//
// Thread safety: one parser per connection.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cinch::proto {

enum class HttpMethod : uint8_t { kGet, kHead, kPut, kPost, kDelete, kOther };

struct HttpHead {
  static constexpr int64_t kNoLength = -1;

  HttpMethod method = HttpMethod::kOther;
  std::string_view target;  // the request-target as sent (origin or absolute form)
  uint8_t version_major = 1;
  uint8_t version_minor = 1;
  int64_t content_length = kNoLength;  // kNoLength without a Content-Length header
  bool chunked = false;                // Transfer-Encoding: chunked
  // HTTP/1.1 without "Connection: close", or HTTP/1.0 with "Connection: keep-alive".
  bool keep_alive = true;
  bool expect_continue = false;  // "Expect: 100-continue"
  // The Authorization header's value (a view into the input, valid until the next Parse);
  // empty without one, and when the head has more than one.
  std::string_view authorization;
};

enum class HttpEvent : uint8_t { kNeedMore, kHead, kBody, kEnd, kError };

enum class HttpParseError : uint8_t {
  kNone,
  kMalformed,     // anything libhttp-parser refuses (bad syntax, bad lengths, both framings...),
                  // and CONNECT or an Upgrade (the stream would stop being HTTP requests)
  kHeadTooLarge,  // no complete head within kMaxHead bytes
};

struct HttpParseResult {
  HttpEvent event = HttpEvent::kNeedMore;
  HttpParseError error = HttpParseError::kNone;
  size_t consumed = 0;
  std::string_view body;  // kBody only
};

class HttpRequestParser {
 public:
  // The longest request head (request line and headers) accepted.
  static constexpr size_t kMaxHead = 8 * 1024;

  HttpRequestParser();
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  // REQUIRES: !input.empty(); not called again after kError (without Reset).
  HttpParseResult Parse(std::string_view input);
  // The head of the request in progress (after kHead, until the next request's kHead).
  const HttpHead& head() const { return head_; }
  // Between a kHead and its kEnd.
  bool in_message() const { return in_body_; }
  // Forgets any request in progress (e.g. to reuse the parser for a new connection).
  void Reset();

 private:
  HttpParseResult ParseHead(std::string_view input);
  HttpParseResult ParseBody(std::string_view input);
  void CaptureHead();

  static const http_parser_settings& Settings();
  static int OnUrl(http_parser* p, const char* at, size_t length);
  static int OnHeaderField(http_parser* p, const char* at, size_t length);
  static int OnHeaderValue(http_parser* p, const char* at, size_t length);
  static int OnHeadersComplete(http_parser* p);
  static int OnBody(http_parser* p, const char* at, size_t length);
  static int OnMessageComplete(http_parser* p);
  static HttpRequestParser* Self(http_parser* p) {
    return static_cast<HttpRequestParser*>(p->data);
  }

  http_parser parser_;
  HttpHead head_;
  bool in_body_ = false;
  // Set by the callbacks during one http_parser_execute.
  bool head_done_ = false;
  bool message_done_ = false;
  enum class Field : uint8_t { kOther, kExpect, kAuthorization, kIgnored };
  Field field_ = Field::kOther;  // the header whose value comes next
  bool seen_authorization_ = false;
  std::string_view body_;
};

}  // namespace cinch::proto
