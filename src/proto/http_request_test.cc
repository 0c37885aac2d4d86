#include "proto/http_request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/http_response.h"

namespace cinch::proto {
namespace {

// Feeds `stream` as a connection does, `step` bytes per read (0: all at once), keeping the
// bytes not consumed. Returns one line per event: "HEAD <method> <target> cl=<n> chunked=<b>
// ka=<b> expect=<b>", "BODY <bytes>" (runs of body bytes merged), "END", "ERROR <n>", and
// "PENDING <n>" for the unconsumed bytes at the end.
std::vector<std::string> Feed(std::string_view stream, size_t step = 0) {
  HttpRequestParser parser;
  std::vector<std::string> events;
  std::string buffer;
  size_t fed = 0;
  bool failed = false;
  while (fed < stream.size() && !failed) {
    size_t n = step == 0 ? stream.size() : std::min(step, stream.size() - fed);
    buffer.append(stream.substr(fed, n));
    fed += n;
    size_t pos = 0;
    while (pos < buffer.size()) {
      std::string_view input = std::string_view(buffer).substr(pos);
      HttpParseResult r = parser.Parse(input);
      EXPECT_LE(r.consumed, input.size());
      if (r.event == HttpEvent::kError) {
        events.push_back("ERROR " + std::to_string(static_cast<int>(r.error)));
        failed = true;
        break;
      }
      if (r.event == HttpEvent::kNeedMore) {
        pos += r.consumed;
        break;
      }
      if (r.event == HttpEvent::kHead) {
        const HttpHead& h = parser.head();
        events.push_back(
            "HEAD " + std::to_string(static_cast<int>(h.method)) + " " + std::string(h.target) +
            " cl=" + std::to_string(h.content_length) + " chunked=" + std::to_string(h.chunked) +
            " ka=" + std::to_string(h.keep_alive) + " expect=" + std::to_string(h.expect_continue));
      } else if (r.event == HttpEvent::kBody) {
        EXPECT_GE(r.body.data(), input.data());
        EXPECT_LE(r.body.data() + r.body.size(), input.data() + input.size());
        EXPECT_FALSE(r.body.empty());
        if (!events.empty() && events.back().rfind("BODY ", 0) == 0) {
          events.back() += r.body;
        } else {
          events.push_back("BODY " + std::string(r.body));
        }
      } else {
        events.push_back("END");
      }
      // Progress: a body's last byte may be consumed by the kEnd that follows.
      if (r.event == HttpEvent::kBody) {
        EXPECT_GE(r.consumed + 1, r.body.size());
      } else {
        EXPECT_GT(r.consumed, 0u) << events.back();
      }
      pos += r.consumed;
    }
    buffer.erase(0, pos);
  }
  if (!buffer.empty() && !failed) events.push_back("PENDING " + std::to_string(buffer.size()));
  return events;
}

// The same events whole, one byte per read, and in reads of 7 bytes.
std::vector<std::string> RunAllWays(std::string_view stream) {
  std::vector<std::string> whole = Feed(stream);
  EXPECT_EQ(Feed(stream, 1), whole);
  EXPECT_EQ(Feed(stream, 7), whole);
  return whole;
}

using Events = std::vector<std::string>;

TEST(HttpRequestParserTest, GetWithoutBody) {
  EXPECT_EQ(RunAllWays("GET /cas/abc HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"),
            (Events{"HEAD 0 /cas/abc cl=-1 chunked=0 ka=1 expect=0", "END"}));
  EXPECT_EQ(RunAllWays("HEAD /ac/x HTTP/1.1\r\n\r\n"),
            (Events{"HEAD 1 /ac/x cl=-1 chunked=0 ka=1 expect=0", "END"}));
}

TEST(HttpRequestParserTest, PutWithContentLength) {
  EXPECT_EQ(RunAllWays("PUT /cas/h HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"),
            (Events{"HEAD 2 /cas/h cl=11 chunked=0 ka=1 expect=0", "BODY hello world", "END"}));
  EXPECT_EQ(RunAllWays("PUT /cas/h HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
            (Events{"HEAD 2 /cas/h cl=0 chunked=0 ka=1 expect=0", "END"}));
}

TEST(HttpRequestParserTest, PutChunked) {
  EXPECT_EQ(RunAllWays("PUT /ac/h HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"),
            (Events{"HEAD 2 /ac/h cl=-1 chunked=1 ka=1 expect=0", "BODY hello world", "END"}));
}

TEST(HttpRequestParserTest, PipelinedAndIncomplete) {
  std::string stream =
      "PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
      "GET /b HTTP/1.1\r\n\r\n"
      "HEAD /c HTTP/1.1\r\nConnection: close\r\n\r\n"
      "GET /d HTTP/1.1\r\nHo";
  EXPECT_EQ(RunAllWays(stream),
            (Events{"HEAD 2 /a cl=3 chunked=0 ka=1 expect=0", "BODY abc", "END",
                    "HEAD 0 /b cl=-1 chunked=0 ka=1 expect=0", "END",
                    "HEAD 1 /c cl=-1 chunked=0 ka=0 expect=0", "END", "PENDING 19"}));
}

TEST(HttpRequestParserTest, KeepAliveRules) {
  EXPECT_EQ(Feed("GET / HTTP/1.0\r\n\r\n")[0], "HEAD 0 / cl=-1 chunked=0 ka=0 expect=0");
  EXPECT_EQ(Feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0],
            "HEAD 0 / cl=-1 chunked=0 ka=1 expect=0");
  EXPECT_EQ(Feed("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n")[0],
            "HEAD 0 / cl=-1 chunked=0 ka=0 expect=0");
}

TEST(HttpRequestParserTest, ExpectContinueAndOtherMethods) {
  EXPECT_EQ(Feed("PUT /x HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nz"),
            (Events{"HEAD 2 /x cl=1 chunked=0 ka=1 expect=1", "BODY z", "END"}));
  EXPECT_EQ(Feed("DELETE /x HTTP/1.1\r\n\r\n")[0], "HEAD 4 /x cl=-1 chunked=0 ka=1 expect=0");
  EXPECT_EQ(Feed("PATCH /x HTTP/1.1\r\n\r\n")[0], "HEAD 5 /x cl=-1 chunked=0 ka=1 expect=0");
}

// The Authorization header's value, as the parser reports it with the head (whole input).
std::string AuthorizationOf(std::string_view request) {
  HttpRequestParser parser;
  HttpParseResult r = parser.Parse(request);
  EXPECT_EQ(r.event, HttpEvent::kHead);
  return std::string(parser.head().authorization);
}

TEST(HttpRequestParserTest, AuthorizationHeader) {
  EXPECT_EQ(AuthorizationOf("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "");
  EXPECT_EQ(AuthorizationOf("GET / HTTP/1.1\r\nauthorization:   Basic YTpi\r\n\r\n"), "Basic YTpi");
  EXPECT_EQ(AuthorizationOf("GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\nX: y\r\n\r\n"),
            "Basic YTpi");
  // Two of them: ambiguous, so none.
  EXPECT_EQ(AuthorizationOf("GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\n"
                            "Authorization: Basic YzpkCg==\r\n\r\n"),
            "");
  // Not carried over to the next request.
  HttpRequestParser parser;
  std::string two = "GET / HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  HttpParseResult r = parser.Parse(two);
  ASSERT_EQ(r.event, HttpEvent::kHead);
  size_t pos = r.consumed;
  r = parser.Parse(std::string_view(two).substr(pos));
  EXPECT_EQ(r.event, HttpEvent::kEnd);
  pos += r.consumed;
  r = parser.Parse(std::string_view(two).substr(pos));
  ASSERT_EQ(r.event, HttpEvent::kHead);
  EXPECT_EQ(parser.head().authorization, "");
}

TEST(HttpRequestParserTest, LargeBodyStreamsWithoutBuffering) {
  std::string body(1 << 20, 'q');
  std::string stream =
      "PUT /big HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  EXPECT_EQ(Feed(stream, 4096),
            (Events{"HEAD 2 /big cl=1048576 chunked=0 ka=1 expect=0", "BODY " + body, "END"}));
}

TEST(HttpRequestParserTest, Errors) {
  const int malformed = static_cast<int>(HttpParseError::kMalformed);
  const int too_large = static_cast<int>(HttpParseError::kHeadTooLarge);
  EXPECT_EQ(RunAllWays("GARBAGE\r\n\r\n").back(), "ERROR " + std::to_string(malformed));
  EXPECT_EQ(RunAllWays("GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .back(),
            "ERROR " + std::to_string(malformed));
  EXPECT_EQ(RunAllWays("PUT / HTTP/1.1\r\nContent-Length: x\r\n\r\n").back(),
            "ERROR " + std::to_string(malformed));
  EXPECT_EQ(RunAllWays("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").back(),
            "ERROR " + std::to_string(malformed));
  // CONNECT and upgrades: the parser would end the message at the head, body or not.
  EXPECT_EQ(RunAllWays("CONNECT h:1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").back(),
            "ERROR " + std::to_string(malformed));
  EXPECT_EQ(RunAllWays("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").back(),
            "ERROR " + std::to_string(malformed));
  std::string long_head = "GET / HTTP/1.1\r\nX: " + std::string(HttpRequestParser::kMaxHead, 'a');
  EXPECT_EQ(Feed(long_head, 1000).back(), "ERROR " + std::to_string(too_large));
  // Just under the limit is fine.
  std::string near = "GET / HTTP/1.1\r\nX: ";
  near += std::string(HttpRequestParser::kMaxHead - near.size() - 4, 'a') + "\r\n\r\n";
  EXPECT_EQ(Feed(near, 1000).back(), "END");
}

TEST(HttpResponseTest, FormatsHeads) {
  char buffer[kMaxHttpResponseHead];
  HttpResponseHead h;
  h.content_length = 1234567890123;
  h.body = HttpBody::kBinary;
  EXPECT_EQ(std::string_view(buffer, FormatHttpHead(h, buffer)),
            "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123\r\n"
            "Content-Type: application/octet-stream\r\n\r\n");
  h = HttpResponseHead();
  h.status = HttpStatus::kMethodNotAllowed;
  h.close = true;
  EXPECT_EQ(std::string_view(buffer, FormatHttpHead(h, buffer)),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nContent-Type: text/plain\r\n"
            "Allow: GET, HEAD, PUT\r\nConnection: close\r\n\r\n");
  h = HttpResponseHead();
  h.content_length = 5;
  h.body = HttpBody::kMetrics;
  EXPECT_EQ(std::string_view(buffer, FormatHttpHead(h, buffer)),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n\r\n");
  h.status = HttpStatus::kMethodNotAllowed;
  h.body = HttpBody::kText;
  h.read_only = true;
  EXPECT_EQ(std::string_view(buffer, FormatHttpHead(h, buffer)),
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
            "Allow: GET, HEAD\r\n\r\n");
  h.status = HttpStatus::kHeaderFieldsTooLarge;
  h.body = HttpBody::kMetrics;
  h.close = true;
  h.content_length = UINT64_MAX;
  h.close = false;
  h.keep_alive = true;
  EXPECT_LE(FormatHttpHead(h, buffer), kMaxHttpResponseHead);
}

}  // namespace
}  // namespace cinch::proto
