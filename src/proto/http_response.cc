#include "proto/http_response.h"

#include <charconv>
#include <cstring>

#include "proto/prometheus_text.h"

namespace cinch::proto {

std::string_view HttpReason(HttpStatus status) {
  switch (status) {
    case HttpStatus::kOk:
      return "OK";
    case HttpStatus::kBadRequest:
      return "Bad Request";
    case HttpStatus::kUnauthorized:
      return "Unauthorized";
    case HttpStatus::kForbidden:
      return "Forbidden";
    case HttpStatus::kNotFound:
      return "Not Found";
    case HttpStatus::kMethodNotAllowed:
      return "Method Not Allowed";
    case HttpStatus::kLengthRequired:
      return "Length Required";
    case HttpStatus::kPayloadTooLarge:
      return "Payload Too Large";
    case HttpStatus::kHeaderFieldsTooLarge:
      return "Request Header Fields Too Large";
    case HttpStatus::kInsufficientStorage:
      return "Insufficient Storage";
  }
  return "Unknown";
}

namespace {

class Writer {
 public:
  explicit Writer(char* buffer) : start_(buffer), at_(buffer) {}
  void Add(std::string_view s) {
    std::memcpy(at_, s.data(), s.size());
    at_ += s.size();
  }
  void Add(uint64_t n) { at_ = std::to_chars(at_, at_ + 20, n).ptr; }
  size_t size() const { return static_cast<size_t>(at_ - start_); }

 private:
  char* start_;
  char* at_;
};

std::string_view ContentType(HttpBody body) {
  switch (body) {
    case HttpBody::kText:
      return "text/plain";
    case HttpBody::kBinary:
      return "application/octet-stream";
    case HttpBody::kMetrics:
      return kPrometheusContentType;
  }
  return "text/plain";
}

}  // namespace

size_t FormatHttpHead(const HttpResponseHead& head, char* buffer) {
  Writer w(buffer);
  w.Add("HTTP/1.1 ");
  w.Add(static_cast<uint64_t>(head.status));
  w.Add(" ");
  w.Add(HttpReason(head.status));
  w.Add("\r\nContent-Length: ");
  w.Add(head.content_length);
  w.Add("\r\nContent-Type: ");
  w.Add(ContentType(head.body));
  if (head.status == HttpStatus::kMethodNotAllowed) {
    w.Add(head.read_only ? "\r\nAllow: GET, HEAD" : "\r\nAllow: GET, HEAD, PUT");
  }
  if (head.status == HttpStatus::kUnauthorized) {
    w.Add("\r\n");
    w.Add(kBasicChallenge);
  }
  if (head.close) {
    w.Add("\r\nConnection: close");
  } else if (head.keep_alive) {
    w.Add("\r\nConnection: keep-alive");
  }
  w.Add("\r\n\r\n");
  return w.size();
}

}  // namespace cinch::proto
