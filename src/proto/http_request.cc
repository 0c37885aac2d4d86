#include "proto/http_request.h"

#include <strings.h>

#include <algorithm>
#include <cstdint>

namespace cinch::proto {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

HttpMethod MethodOf(unsigned method) {
  switch (method) {
    case HTTP_GET:
      return HttpMethod::kGet;
    case HTTP_HEAD:
      return HttpMethod::kHead;
    case HTTP_PUT:
      return HttpMethod::kPut;
    case HTTP_POST:
      return HttpMethod::kPost;
    case HTTP_DELETE:
      return HttpMethod::kDelete;
    default:
      return HttpMethod::kOther;
  }
}

// Extends `*piece` by a callback's next piece (pieces of one field are contiguous in the input).
void Extend(std::string_view* piece, const char* at, size_t length) {
  if (piece->empty()) {
    *piece = std::string_view(at, length);
  } else {
    *piece = std::string_view(piece->data(), static_cast<size_t>(at + length - piece->data()));
  }
}

}  // namespace

HttpRequestParser::HttpRequestParser() { Reset(); }

void HttpRequestParser::Reset() {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  head_ = HttpHead();
  in_body_ = false;
}

HttpParseResult HttpRequestParser::Parse(std::string_view input) {
  return in_body_ ? ParseBody(input) : ParseHead(input);
}

// The head is parsed from its first byte on every call until it is complete, by a fresh
// parser state: nothing is consumed before, so the target and header values are views into
// one contiguous input. Heads are short (kMaxHead), so a client sending one byte at a time
// costs at most kMaxHead^2 / 2 byte steps.
HttpParseResult HttpRequestParser::ParseHead(std::string_view input) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  head_ = HttpHead();
  head_done_ = false;
  field_ = Field::kOther;
  seen_authorization_ = false;
  std::string_view window = input.substr(0, std::min(input.size(), kMaxHead));
  size_t n = http_parser_execute(&parser_, &Settings(), window.data(), window.size());
  HttpParseResult r;
  // CONNECT and protocol upgrades turn the rest of the stream into something else (the parser
  // completes the message at the head, ignoring any Content-Length): a cache has no use for
  // them, so they are malformed here, and the connection closes.
  // A Content-Length beyond what HttpHead::content_length (int64_t) holds is malformed too.
  if ((head_done_ && parser_.upgrade != 0) ||
      (head_done_ && (parser_.flags & F_CONTENTLENGTH) != 0 &&
       parser_.content_length > static_cast<uint64_t>(INT64_MAX))) {
    r.event = HttpEvent::kError;
    r.error = HttpParseError::kMalformed;
    return r;
  }
  if (head_done_ && HTTP_PARSER_ERRNO(&parser_) == HPE_PAUSED) {
    http_parser_pause(&parser_, 0);
    CaptureHead();
    in_body_ = true;
    r.event = HttpEvent::kHead;
    r.consumed = n;
    return r;
  }
  if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
    r.event = HttpEvent::kError;
    r.error = HttpParseError::kMalformed;
  } else if (window.size() == kMaxHead) {
    r.event = HttpEvent::kError;
    r.error = HttpParseError::kHeadTooLarge;
  }
  return r;  // kNeedMore: nothing consumed
}

HttpParseResult HttpRequestParser::ParseBody(std::string_view input) {
  body_ = {};
  message_done_ = false;
  size_t n = http_parser_execute(&parser_, &Settings(), input.data(), input.size());
  HttpParseResult r;
  r.consumed = n;
  http_errno error = HTTP_PARSER_ERRNO(&parser_);
  if (error == HPE_PAUSED) {
    http_parser_pause(&parser_, 0);
    if (message_done_) {
      in_body_ = false;
      r.event = HttpEvent::kEnd;
    } else {
      r.event = HttpEvent::kBody;
      r.body = body_;
    }
  } else if (error != HPE_OK) {
    r.event = HttpEvent::kError;
    r.error = HttpParseError::kMalformed;
  }
  return r;
}

void HttpRequestParser::CaptureHead() {
  head_.method = MethodOf(parser_.method);
  head_.version_major = static_cast<uint8_t>(parser_.http_major);
  head_.version_minor = static_cast<uint8_t>(parser_.http_minor);
  head_.chunked = (parser_.flags & F_CHUNKED) != 0;
  if ((parser_.flags & F_CONTENTLENGTH) != 0 && !head_.chunked) {
    head_.content_length = static_cast<int64_t>(parser_.content_length);
  }
  head_.keep_alive = http_should_keep_alive(&parser_) != 0;
}

int HttpRequestParser::OnUrl(http_parser* p, const char* at, size_t length) {
  Extend(&Self(p)->head_.target, at, length);
  return 0;
}

int HttpRequestParser::OnHeaderField(http_parser* p, const char* at, size_t length) {
  HttpRequestParser* self = Self(p);
  const std::string_view name(at, length);
  if (EqualsIgnoreCase(name, "expect")) {
    self->field_ = Field::kExpect;
  } else if (EqualsIgnoreCase(name, "authorization")) {
    // A second one makes the credentials ambiguous: the request has none.
    self->field_ = self->seen_authorization_ ? Field::kIgnored : Field::kAuthorization;
    if (self->seen_authorization_) self->head_.authorization = {};
    self->seen_authorization_ = true;
  } else {
    self->field_ = Field::kOther;
  }
  return 0;
}

int HttpRequestParser::OnHeaderValue(http_parser* p, const char* at, size_t length) {
  HttpRequestParser* self = Self(p);
  if (self->field_ == Field::kExpect &&
      EqualsIgnoreCase(std::string_view(at, length), "100-continue")) {
    self->head_.expect_continue = true;
  } else if (self->field_ == Field::kAuthorization) {
    Extend(&self->head_.authorization, at, length);
  }
  return 0;
}

int HttpRequestParser::OnHeadersComplete(http_parser* p) {
  Self(p)->head_done_ = true;
  http_parser_pause(p, 1);
  return 0;
}

int HttpRequestParser::OnBody(http_parser* p, const char* at, size_t length) {
  Self(p)->body_ = std::string_view(at, length);
  http_parser_pause(p, 1);
  return 0;
}

int HttpRequestParser::OnMessageComplete(http_parser* p) {
  Self(p)->message_done_ = true;
  http_parser_pause(p, 1);
  return 0;
}

// Callbacks that stop the parser (http_parser_pause) so that each Parse call reports one event.
const http_parser_settings& HttpRequestParser::Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s{};
    s.on_url = &HttpRequestParser::OnUrl;
    s.on_header_field = &HttpRequestParser::OnHeaderField;
    s.on_header_value = &HttpRequestParser::OnHeaderValue;
    s.on_headers_complete = &HttpRequestParser::OnHeadersComplete;
    s.on_body = &HttpRequestParser::OnBody;
    s.on_message_complete = &HttpRequestParser::OnMessageComplete;
    return s;
  }();
  return settings;
}

}  // namespace cinch::proto
