// The HTTP cache session on a real store and BuildCache, without sockets: bytes in, response
// bytes out.
#include "http/http_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "buildcache/sha256.h"
#include "cinch/options.h"

namespace cinch::http {
namespace {

using buildcache::BuildCache;
using buildcache::Digest;

// Collects responses. References are kept as views (not copied) until Flush(), which copies
// their bytes and releases them, as a connection does once they are on the socket.
class FakeOutput final : public net::Output {
 public:
  void Append(std::string_view bytes) override {
    Materialize();
    data_.append(bytes);
    copied_ += bytes.size();
  }
  void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) override {
    refs_.push_back({bytes, release, arg, data_.size()});
    referenced_ += bytes.size();
  }
  size_t pending() const override {
    size_t n = data_.size();
    for (const Ref& r : refs_) n += r.bytes.size();
    return n;
  }
  void Flush() {
    Materialize();
    for (const Ref& r : refs_) r.release(r.arg);
    refs_.clear();
    flushed_ = 0;
  }
  std::string Take() {
    Flush();
    std::string s;
    s.swap(data_);
    return s;
  }
  size_t copied() const { return copied_; }
  size_t referenced() const { return referenced_; }
  size_t references() const { return refs_.size(); }

 private:
  struct Ref {
    std::string_view bytes;
    ReleaseFn release;
    void* arg;
    size_t at;  // where in data_ it goes
  };
  // Splices referenced bytes into data_ at their positions (kept in order for Take()).
  void Materialize() {
    size_t shift = 0;
    for (size_t i = flushed_; i < refs_.size(); ++i) {
      data_.insert(refs_[i].at + shift, refs_[i].bytes);
      shift += refs_[i].bytes.size();
    }
    for (size_t i = flushed_; i < refs_.size(); ++i) refs_[i].at = SIZE_MAX;
    flushed_ = refs_.size();
  }
  std::string data_;
  std::vector<Ref> refs_;
  size_t flushed_ = 0;
  size_t copied_ = 0;
  size_t referenced_ = 0;
};

std::string Hex(std::string_view bytes) {
  Digest d;
  d.hash = buildcache::Sha256::Of(bytes);
  return buildcache::HexDigest(d);
}

std::string Put(std::string_view path, std::string_view body, std::string_view extra = "") {
  return "PUT " + std::string(path) +
         " HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}
std::string Get(std::string_view path, std::string_view method = "GET") {
  return std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}
std::string Response(int code, std::string_view reason, std::string_view body, bool binary = false,
                     std::string_view extra = "") {
  return "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) +
         "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nContent-Type: " + (binary ? "application/octet-stream" : "text/plain") + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}
std::string Ok() { return Response(200, "OK", ""); }
std::string NotFound() { return Response(404, "Not Found", "not found\n"); }

class HttpSessionTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(1 << 20); }
  void TearDown() override {
    out_.Flush();
    session_.reset();
  }

  void Open(size_t max_item_size) {
    if (session_) out_.Flush();
    session_.reset();
    Options o;
    o.memory_limit = 256 << 20;
    o.max_item_size = max_item_size;
    o.background_cleaner = false;
    ASSERT_TRUE(Store::Open(o, &store_).ok());
    cache_ = std::make_unique<BuildCache>(store_.get(), nullptr);
    session_ = std::make_unique<HttpSession>(cache_.get(), options_, &stats_);
  }

  // Sends `input` in reads of `step` bytes (0: whole) as a connection does, keeping what the
  // session does not consume; returns the responses. Checks that the buffer never holds more
  // than one head plus one read.
  std::string Send(std::string_view input, size_t step = 0) {
    for (size_t fed = 0; fed < input.size() && !closed_;) {
      size_t n = step == 0 ? input.size() - fed : std::min(step, input.size() - fed);
      pending_.append(input.substr(fed, n));
      fed += n;
      Drive();
      EXPECT_LE(pending_.size(), session_->WantedInput() + (step == 0 ? input.size() : step));
    }
    return out_.Take();
  }
  void Drive() {
    while (!pending_.empty() && !closed_) {
      net::SessionResult r = session_->OnInput(pending_, &out_, 1 << 20);
      EXPECT_LE(r.consumed, pending_.size());
      pending_.erase(0, r.consumed);
      closed_ |= r.close;
      if (r.need_more) break;
      if (r.consumed == 0) out_.Flush();  // stopped for output
    }
  }

  HttpOptions options_;
  HttpStats stats_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BuildCache> cache_;
  std::unique_ptr<HttpSession> session_;
  FakeOutput out_;
  std::string pending_;
  bool closed_ = false;
};

TEST_F(HttpSessionTest, PutGetHeadCas) {
  std::string blob = "hello build cache";
  std::string path = "/cas/" + Hex(blob);
  EXPECT_EQ(Send(Get(path)), NotFound());
  std::string not_found = NotFound();  // HEAD: the same head, no body
  EXPECT_EQ(Send(Get(path, "HEAD")), not_found.substr(0, not_found.size() - 10));
  EXPECT_EQ(Send(Put(path, blob)), Ok());
  EXPECT_EQ(Send(Get(path)), Response(200, "OK", blob, true));
  std::string head = Response(200, "OK", blob, true);
  EXPECT_EQ(Send(Get(path, "HEAD")), head.substr(0, head.size() - blob.size()));
  EXPECT_EQ(Send(Get("/ac/" + Hex(blob))), NotFound());  // a different keyspace
  EXPECT_FALSE(closed_);
  EXPECT_EQ(stats_.requests, 6u);
  EXPECT_EQ(stats_.get_hits, 2u);
  EXPECT_EQ(stats_.get_misses, 3u);
  EXPECT_EQ(stats_.puts, 1u);
}

TEST_F(HttpSessionTest, InstancePrefixSharesTheCache) {
  std::string blob = "x";
  EXPECT_EQ(Send(Put("/inst-a/cas/" + Hex(blob), blob)), Ok());
  EXPECT_EQ(Send(Get("/cas/" + Hex(blob))), Response(200, "OK", blob, true));
  EXPECT_EQ(Send(Get("/some/other/cas/" + Hex(blob))), Response(200, "OK", blob, true));
}

TEST_F(HttpSessionTest, AcStoredAsSent) {
  std::string path = "/ac/" + Hex("action");
  EXPECT_EQ(Send(Put(path, "not the action's bytes")), Ok());
  EXPECT_EQ(Send(Get(path)), Response(200, "OK", "not the action's bytes", true));
}

TEST_F(HttpSessionTest, DigestMismatchStoresNothing) {
  std::string path = "/cas/" + Hex("right");
  EXPECT_EQ(Send(Put(path, "wrong")),
            Response(400, "Bad Request", "sha256 of the body does not match the digest\n"));
  EXPECT_EQ(Send(Get(path)), NotFound());
  EXPECT_EQ(store_->GetStats().items, 0u);
  EXPECT_EQ(stats_.put_errors, 1u);
  EXPECT_FALSE(closed_);
}

TEST_F(HttpSessionTest, MalformedDigestOtherPathsAndMethods) {
  std::string bad = Response(400, "Bad Request", "digest must be 64 hex digits (sha256)\n");
  EXPECT_EQ(Send(Get("/cas/1234")), bad);
  EXPECT_EQ(Send(Put("/ac/zz", "body")), bad);
  EXPECT_EQ(Send(Get("/")), NotFound());
  EXPECT_EQ(Send(Put("/foo/" + Hex("x"), "x")), NotFound());
  EXPECT_EQ(Send(Get("/cas/" + Hex("x"), "DELETE")),
            Response(405, "Method Not Allowed", "only GET, HEAD and PUT are served\n", false,
                     "Allow: GET, HEAD, PUT\r\n"));
  EXPECT_EQ(Send(Get("/cas/" + Hex("x"), "POST")).substr(0, 12), "HTTP/1.1 405");
  EXPECT_FALSE(closed_);
  EXPECT_EQ(store_->GetStats().items, 0u);
}

TEST_F(HttpSessionTest, LengthRequired) {
  EXPECT_EQ(Send("PUT /cas/" + Hex("") + " HTTP/1.1\r\n\r\n"),
            Response(411, "Length Required", "Content-Length or chunked encoding needed\n"));
  EXPECT_FALSE(closed_);
}

TEST_F(HttpSessionTest, TooLargeIsDrainedAndTheConnectionServes) {
  Open(64 * 1024);
  std::string big(100 * 1024, 'b');
  std::string small = "small";
  std::string too_large =
      Response(413, "Payload Too Large", "blob larger than the cache's item size limit\n");
  // Content-Length over the limit: the body is read and dropped, 413, then the next request.
  EXPECT_EQ(Send(Put("/cas/" + Hex(big), big) + Put("/cas/" + Hex(small), small), 4096),
            too_large + Ok());
  // Chunked, over the limit only once the chunks have arrived.
  std::string chunked = "PUT /cas/" + Hex(big) + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t at = 0; at < big.size(); at += 10000) {
    std::string piece = big.substr(at, 10000);
    char size[16];
    snprintf(size, sizeof size, "%zx", piece.size());
    chunked += std::string(size) + "\r\n" + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  EXPECT_EQ(Send(chunked + Get("/cas/" + Hex(small)), 3000),
            too_large + Response(200, "OK", small, true));
  EXPECT_FALSE(closed_);
  EXPECT_EQ(store_->GetStats().items, 1u);
}

TEST_F(HttpSessionTest, ChunkedUpload) {
  std::string blob(300000, '\0');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 7 + i / 300);
  std::string request = "PUT /cas/" + Hex(blob) + " HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (size_t at = 0, n = 1; at < blob.size(); at += n, n = n * 2 + 1) {
    std::string piece = blob.substr(at, n);
    char size[16];
    snprintf(size, sizeof size, "%zX", piece.size());
    request += std::string(size) + "\r\n" + piece + "\r\n";
  }
  request += "0\r\n\r\n";
  EXPECT_EQ(Send(request, 1000), Ok());
  EXPECT_EQ(Send(Get("/cas/" + Hex(blob))), Response(200, "OK", blob, true));
}

TEST_F(HttpSessionTest, PipelinedByteByByte) {
  std::string a = "first", b(5000, 'B');
  std::string input = Put("/cas/" + Hex(a), a) + Put("/ac/" + Hex(b), b) + Get("/cas/" + Hex(a)) +
                      Get("/ac/" + Hex(b), "HEAD") + Get("/nowhere");
  std::string head_b = Response(200, "OK", b, true);
  std::string expected = Ok() + Ok() + Response(200, "OK", a, true) +
                         head_b.substr(0, head_b.size() - b.size()) + NotFound();
  EXPECT_EQ(Send(input, 1), expected);
  EXPECT_EQ(Send(input, 0), expected);
  EXPECT_EQ(Send(input, 13), expected);
}

TEST_F(HttpSessionTest, LargeValueByReference) {
  Open(8 << 20);
  std::string blob(4 << 20, 'L');
  std::string path = "/cas/" + Hex(blob);
  ASSERT_EQ(Send(Put(path, blob), 65536), Ok());
  size_t copied = out_.copied();
  session_->OnInput(Get(path) + Get(path), &out_, 1 << 20);
  EXPECT_EQ(out_.references(), 1u);  // stopped at the output limit after the first
  EXPECT_EQ(out_.referenced(), blob.size());
  EXPECT_LT(out_.copied() - copied, 256u);  // the head only
  std::string response = out_.Take();
  EXPECT_EQ(response, Response(200, "OK", blob, true));
  // Small values are copied.
  std::string small(100, 's');
  ASSERT_EQ(Send(Put("/cas/" + Hex(small), small)), Ok());
  EXPECT_EQ(Send(Get("/cas/" + Hex(small))), Response(200, "OK", small, true));
  EXPECT_EQ(out_.referenced(), blob.size());
}

TEST_F(HttpSessionTest, ExpectContinue) {
  std::string blob = "expected";
  std::string path = "/cas/" + Hex(blob);
  std::string head =
      "PUT " + path + " HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 8\r\n\r\n";
  EXPECT_EQ(Send(head), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(Send(blob), Ok());
  EXPECT_FALSE(closed_);
  // Refused at once: the final status, and the connection closes.
  Open(64 * 1024);
  std::string big_head =
      "PUT " + path + " HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n";
  EXPECT_EQ(Send(big_head),
            Response(413, "Payload Too Large", "blob larger than the cache's item size limit\n",
                     false, "Connection: close\r\n"));
  EXPECT_TRUE(closed_);
}

TEST_F(HttpSessionTest, ConnectionCloseAndHttp10) {
  EXPECT_EQ(Send("GET /x HTTP/1.1\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\n\r\n"),
            Response(404, "Not Found", "not found\n", false, "Connection: close\r\n"));
  EXPECT_TRUE(closed_);
  closed_ = false;
  pending_.clear();
  EXPECT_EQ(Send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Response(404, "Not Found", "not found\n", false, "Connection: keep-alive\r\n"));
  EXPECT_FALSE(closed_);
  EXPECT_EQ(Send("GET /x HTTP/1.0\r\n\r\n"),
            Response(404, "Not Found", "not found\n", false, "Connection: close\r\n"));
  EXPECT_TRUE(closed_);
}

TEST_F(HttpSessionTest, MalformedRequestCloses) {
  EXPECT_EQ(Send("BLAH\r\n\r\n"), Response(400, "Bad Request", "malformed HTTP request\n", false,
                                           "Connection: close\r\n"));
  EXPECT_TRUE(closed_);
  closed_ = false;
  pending_.clear();
  session_ = std::make_unique<HttpSession>(cache_.get(), options_, &stats_);
  std::string response = Send("GET / HTTP/1.1\r\nX: " + std::string(10000, 'x'), 1000);
  EXPECT_EQ(response.substr(0, 12), "HTTP/1.1 431");
  EXPECT_TRUE(closed_);
  // A broken chunked body of a HEAD request: 400 without a body.
  closed_ = false;
  pending_.clear();
  session_ = std::make_unique<HttpSession>(cache_.get(), options_, &stats_);
  std::string bad =
      Response(400, "Bad Request", "malformed HTTP request\n", false, "Connection: close\r\n");
  EXPECT_EQ(Send("HEAD /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe*\r\n"),
            bad.substr(0, bad.size() - 23));
  EXPECT_TRUE(closed_);
}

}  // namespace
}  // namespace cinch::http

namespace cinch::http {
namespace {

// A source whose exposition says how often it was rendered.
class CountingMetrics final : public MetricsSource {
 public:
  void Render(std::string* out) const override {
    out->append("# HELP t_renders_total Renders.\n# TYPE t_renders_total counter\n");
    out->append("t_renders_total " + std::to_string(++renders_) + "\n");
  }
  mutable int renders_ = 0;
};

class HttpMetricsTest : public HttpSessionTest {
 protected:
  void WithMetrics() {
    session_ = std::make_unique<HttpSession>(cache_.get(), options_, &stats_, &metrics_);
  }
  static std::string MetricsResponse(std::string_view body) {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\r\n" + std::string(body);
  }
  static std::string Body(int n) {
    return "# HELP t_renders_total Renders.\n# TYPE t_renders_total counter\nt_renders_total " +
           std::to_string(n) + "\n";
  }
  CountingMetrics metrics_;
};

TEST_F(HttpMetricsTest, GetMetricsRendersEachTime) {
  WithMetrics();
  EXPECT_EQ(Send(Get("/metrics")), MetricsResponse(Body(1)));
  EXPECT_EQ(Send(Get("/metrics?name[]=x")), MetricsResponse(Body(2)));
  EXPECT_EQ(Send(Get("http://host:8080/metrics")), MetricsResponse(Body(3)));
  // HEAD: the head of a GET, length included, no body.
  std::string head = MetricsResponse(Body(4));
  EXPECT_EQ(Send(Get("/metrics", "HEAD")), head.substr(0, head.size() - Body(4).size()));
  EXPECT_FALSE(closed_);
  EXPECT_EQ(stats_.get_hits + stats_.get_misses, 0u);  // not cache reads
}

TEST_F(HttpMetricsTest, PipelinedWithCacheRequests) {
  WithMetrics();
  std::string blob = "b";
  std::string path = "/cas/" + Hex(blob);
  EXPECT_EQ(Send(Put(path, blob) + Get("/metrics") + Get(path), 1),
            Ok() + MetricsResponse(Body(1)) + Response(200, "OK", blob, true));
}

TEST_F(HttpMetricsTest, OtherMethodsAre405WithAllowGetHead) {
  WithMetrics();
  EXPECT_EQ(Send(Put("/metrics", "x")),
            Response(405, "Method Not Allowed", "only GET and HEAD are served\n", false,
                     "Allow: GET, HEAD\r\n"));
  EXPECT_EQ(metrics_.renders_, 0);
  EXPECT_FALSE(closed_);
  EXPECT_EQ(stats_.errors, 1u);
}

TEST_F(HttpMetricsTest, WithoutASourceMetricsIsNotFound) {
  EXPECT_EQ(Send(Get("/metrics")), NotFound());
  WithMetrics();
  EXPECT_EQ(Send(Get("/metricsx")), NotFound());
  EXPECT_EQ(Send(Get("/x/metrics")), NotFound());
}

}  // namespace
}  // namespace cinch::http

namespace cinch::http {
namespace {

// Allows "op" / "pw"; "tenant" / "tp" is valid but not allowed.
class FakeAccess final : public HttpAccess {
 public:
  AccessResult Check(std::string_view user, std::string_view password) const override {
    ++checks_;
    if (user == "op" && password == "pw") return AccessResult::kAllowed;
    if (user == "tenant" && password == "tp") return AccessResult::kForbidden;
    return AccessResult::kUnauthenticated;
  }
  mutable int checks_ = 0;
};

class HttpAccessTest : public HttpSessionTest {
 protected:
  void SetUp() override {
    HttpSessionTest::SetUp();
    session_ = std::make_unique<HttpSession>(cache_.get(), options_, &stats_, nullptr, &access_);
  }
  static std::string With(std::string request, std::string_view credentials) {
    request.insert(request.find("\r\n") + 2, "Authorization: " + std::string(credentials) + "\r\n");
    return request;
  }
  static std::string Unauthorized() {
    return Response(401, "Unauthorized", "authentication required\n", false,
                    "WWW-Authenticate: Basic realm=\"cinch\", charset=\"UTF-8\"\r\n");
  }
  FakeAccess access_;
};

TEST_F(HttpAccessTest, EveryRequestNeedsCredentials) {
  std::string blob = "secret build output";
  std::string path = "/cas/" + Hex(blob);
  EXPECT_EQ(Send(Put(path, blob)), Unauthorized());  // the body is drained, not stored
  EXPECT_EQ(store_->GetStats().items, 0u);
  EXPECT_EQ(Send(Get(path)), Unauthorized());
  EXPECT_EQ(Send(Get("/no/such/path")), Unauthorized());  // paths are not revealed either
  EXPECT_EQ(Send(With(Get(path), "Basic b3A6d3Jvbmc=")), Unauthorized());  // op:wrong
  EXPECT_EQ(Send(With(Get(path), "Bearer b3A6cHc=")), Unauthorized());
  EXPECT_FALSE(closed_);                                           // and the connection goes on
  EXPECT_EQ(Send(With(Put(path, blob), "Basic b3A6cHc=")), Ok());  // op:pw
  EXPECT_EQ(Send(With(Get(path), "basic b3A6cHc=")), Response(200, "OK", blob, true));
  EXPECT_EQ(
      Send(With(Get(path), "Basic dGVuYW50OnRw")),  // tenant:tp
      Response(403, "Forbidden", "a tenant's credentials: the HTTP port is the operator's\n"));
  EXPECT_EQ(stats_.puts, 1u);
  EXPECT_EQ(stats_.get_hits, 1u);
}

TEST_F(HttpAccessTest, ExpectContinueWithoutCredentialsIsRefusedAtOnce) {
  std::string path = "/cas/" + Hex("x");
  std::string head =
      "PUT " + path + " HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n";
  std::string reply = Send(head);
  EXPECT_EQ(reply.substr(0, 25), "HTTP/1.1 401 Unauthorized");
  EXPECT_NE(reply.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(closed_);
}

}  // namespace
}  // namespace cinch::http
