// One client connection speaking Bazel's HTTP cache protocol (docs/http-cache.md): parses
// requests with proto::HttpRequestParser and maps them onto a buildcache::BuildCache.
//
//   GET  /[<instance>/](cas|ac)/<sha256>   200 with the bytes, or 404
//   HEAD the same                          200 with Content-Length, or 404
//   PUT  the same                          200 stored; 400 CAS digest mismatch (nothing
//                                          stored); 411 no length; 413 over -I; 507 full
//   any request, with an HttpAccess (-Y)   401 without valid Basic credentials, 403 with a
//                                          tenant's; otherwise as below
//   GET  /metrics                          200 with the server's figures in Prometheus's text
//                                          format (HEAD: its length), when the session has a
//                                          MetricsSource; 405 to other methods
//
// Streaming: a PUT body goes into a BuildCache::Upload run by run as it arrives; the session
// consumes every body byte it is given, so the connection's read buffer never grows with the
// body (it needs at most one request head: WantedInput). A GET value of at least
// HttpOptions::zero_copy_min bytes is queued by reference while a read guard (ItemRef) pins it,
// released once written; smaller ones are copied. At most kMaxPins guards are held; with the
// threshold at least output_limit / kMaxPins (the server sets it so), the output limit is
// reached before the pins run out, so a large value is never copied.
//
// Replies go out in request order (keep-alive and pipelining). A PUT is answered once its body
// is complete, except that a PUT with "Expect: 100-continue" is answered at once: "100
// Continue" when the body will be read, or its final error status with "Connection: close"
// (the client may or may not send the body then; the connection cannot tell, so it closes). A
// rejected body without Expect (413, 404, ...) is read and discarded, and the connection goes
// on serving. A malformed request is answered 400 (431 for a head over 8 KiB) and closes.
//
// Thread safety: used by one worker thread only (see net::Session).
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <string_view>

#include "buildcache/build_cache.h"
#include "cinch/store.h"
#include "http/http_access.h"
#include "http/http_stats.h"
#include "http/metrics_source.h"
#include "net/session.h"
#include "proto/http_request.h"
#include "proto/http_response.h"

namespace cinch::http {

struct HttpOptions {
  // GET values at least this long are written by reference (no copy).
  size_t zero_copy_min = 64 * 1024;
};

class HttpSession final : public net::Session {
 public:
  static constexpr int kMaxPins = 16;
  // The most input a session needs buffered: one request head.
  static constexpr size_t kMaxInput = proto::HttpRequestParser::kMaxHead;

  // The cache, stats, metrics and access outlive the session; without metrics (null),
  // /metrics is a path like any other (404); without access, every request is allowed.
  HttpSession(buildcache::BuildCache* cache, const HttpOptions& options, HttpStats* stats,
              const MetricsSource* metrics = nullptr, const HttpAccess* access = nullptr);
  ~HttpSession() override;
  net::SessionResult OnInput(std::string_view input, net::Output* out,
                             size_t output_limit) override;
  size_t WantedInput() const override { return kMaxInput; }

 private:
  struct Pin {
    ItemRef ref;
    HttpSession* owner = nullptr;
    bool busy = false;
  };
  // The reply a request gets unless its body changes it (a PUT's upload decides at the end).
  struct Reply {
    proto::HttpStatus status = proto::HttpStatus::kOk;
    std::string_view text;  // error body (http_reply::...)
  };

  // Returns false when the connection must close now (a final reply to an Expect request).
  bool OnHead(const proto::HttpHead& head, net::Output* out);
  bool StartPut(const proto::HttpHead& head);
  // With access_: whether the head's credentials let the request through; if not, reply_
  // says why (401, 403).
  bool Authorized(const proto::HttpHead& head);
  void OnBody(std::string_view bytes);
  void OnEnd(net::Output* out);
  void Retrieve(net::Output* out);
  void SendMetrics(net::Output* out);
  void FinishPut(net::Output* out);
  void Send(const Reply& reply, net::Output* out);
  void SendHead(proto::HttpStatus status, uint64_t length, proto::HttpBody body, net::Output* out);
  void AppendValue(ItemRef* ref, net::Output* out);
  static void ReleasePin(void* arg);

  buildcache::BuildCache* const cache_;
  const HttpOptions options_;
  HttpStats* const stats_;
  const MetricsSource* const metrics_;
  const HttpAccess* const access_;
  proto::HttpRequestParser parser_;
  buildcache::BuildCache::Upload upload_;
  // The request in progress (from its head to its end).
  proto::HttpMethod method_ = proto::HttpMethod::kOther;
  buildcache::Kind kind_ = buildcache::Kind::kCas;
  buildcache::Digest digest_;
  Reply reply_;
  bool uploading_ = false;
  bool metrics_request_ = false;  // GET or HEAD /metrics
  bool close_after_ = false;      // answer with Connection: close and close
  bool keep_alive_header_ = false;
  std::array<Pin, kMaxPins> pins_;
  int pins_busy_ = 0;
};

class HttpSessionFactory final : public net::SessionFactory {
 public:
  // Not owned; outlive the factory and its sessions. `metrics` and `access` may be null.
  HttpSessionFactory(buildcache::BuildCache* cache, const HttpOptions& options, HttpStats* stats,
                     const MetricsSource* metrics = nullptr, const HttpAccess* access = nullptr)
      : cache_(cache), options_(options), stats_(stats), metrics_(metrics), access_(access) {}
  std::unique_ptr<net::Session> NewSession() override {
    return std::make_unique<HttpSession>(cache_, options_, stats_, metrics_, access_);
  }
  size_t SessionBytes() const override { return sizeof(HttpSession); }

 private:
  buildcache::BuildCache* const cache_;
  const HttpOptions options_;
  HttpStats* const stats_;
  const MetricsSource* const metrics_;
  const HttpAccess* const access_;
};

}  // namespace cinch::http
