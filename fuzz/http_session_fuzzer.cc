// libFuzzer target: cinch::http::HttpSession (parser + BuildCache + response writer) on a real,
// small store, fed a byte stream in reads of a fuzzed size, as a connection feeds it.
//
// Input layout:  [selector] [stride] [stream bytes...]
// selector bit 0: GET values by reference from 16 B (else 64 KiB); bit 1: output limit 64 B
// (else 1 MiB); bit 2: -I 4 KiB (else 1 KiB). stride: bytes per read (0: the whole stream).
// The store is tiny (4 KiB segments, 1 MiB) so eviction and 413 happen.
//
// Checked (FUZZ_CHECK, plus ASan/UBSan and the session's own CINCH_CHECKs):
//   - the Session contract as a connection sees it (session_driver.h): progress of OnInput,
//     references readable when "written" and all released before the session goes; and
//     nothing swallowed, only an unfinished request head left for more input;
//   - the output is a sequence of well-formed responses ("HTTP/1.1 <code> <reason>", headers,
//     a body of exactly Content-Length bytes, none for HEAD or 100), one final response per
//     request in request order (the requests are those a separate parser finds in the stream);
//   - a 200 to a GET of /cas/<h> carries bytes whose sha256 is h: a blob is never served under
//     a digest it does not have, whatever was PUT.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "buildcache/build_cache.h"
#include "buildcache/sha256.h"
#include "cinch/store.h"
#include "fuzz_check.h"
#include "http/cache_path.h"
#include "http/http_session.h"
#include "proto/http_request.h"
#include "session_driver.h"

namespace cinch::http {
namespace {

struct RequestSeen {
  proto::HttpMethod method;
  std::string target;
};

// The request heads in `stream`, in order, as a connection would deliver them.
std::vector<RequestSeen> Requests(std::string_view stream) {
  std::vector<RequestSeen> seen;
  proto::HttpRequestParser parser;
  size_t pos = 0;
  while (pos < stream.size()) {
    proto::HttpParseResult r = parser.Parse(stream.substr(pos));
    if (r.event == proto::HttpEvent::kError || r.event == proto::HttpEvent::kNeedMore) break;
    if (r.event == proto::HttpEvent::kHead) {
      seen.push_back({parser.head().method, std::string(parser.head().target)});
    }
    pos += r.consumed;
  }
  return seen;
}

uint64_t ContentLength(std::string_view head) {
  constexpr std::string_view kName = "\r\nContent-Length: ";
  size_t at = head.find(kName);
  FUZZ_CHECK(at != std::string_view::npos);
  at += kName.size();
  size_t end = head.find("\r\n", at);
  std::string digits(head.substr(at, end - at));
  FUZZ_CHECK(!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos);
  return std::stoull(digits);
}

// Checks every complete response in `out` from *pos on, pairing final ones with `requests`.
void CheckResponses(std::string_view out, const std::vector<RequestSeen>& requests, size_t* pos,
                    size_t* answered, bool final_check) {
  while (*pos < out.size()) {
    size_t end = out.find("\r\n\r\n", *pos);
    if (end == std::string_view::npos) {
      FUZZ_CHECK(!final_check);
      return;
    }
    std::string_view head = out.substr(*pos, end + 4 - *pos);
    FUZZ_CHECK(head.starts_with("HTTP/1.1 ") && head.size() > 13 && head[12] == ' ');
    std::string_view code = head.substr(9, 3);
    if (code == "100") {
      FUZZ_CHECK(head == "HTTP/1.1 100 Continue\r\n\r\n");
      *pos = end + 4;
      continue;
    }
    static constexpr std::string_view kCodes[] = {"200", "400", "404", "405",
                                                  "411", "413", "431", "507"};
    FUZZ_CHECK(std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes));
    const RequestSeen* request = *answered < requests.size() ? &requests[*answered] : nullptr;
    // Beyond the requests found: only the answer to a malformed one.
    FUZZ_CHECK(request != nullptr || code == "400" || code == "431");
    bool head_only = request != nullptr && request->method == proto::HttpMethod::kHead;
    uint64_t length = ContentLength(head);
    size_t body_at = end + 4;
    if (!head_only && out.size() - body_at < length) {
      FUZZ_CHECK(!final_check);
      return;
    }
    std::string_view body = head_only ? std::string_view() : out.substr(body_at, length);
    if (code == "200" && request != nullptr && request->method == proto::HttpMethod::kGet) {
      buildcache::Kind kind;
      buildcache::Digest digest;
      FUZZ_CHECK(ParseCachePath(request->target, &kind, &digest) == PathMatch::kEntry);
      if (kind == buildcache::Kind::kCas) FUZZ_CHECK(buildcache::Sha256::Of(body) == digest.hash);
    }
    *pos = body_at + body.size();
    ++*answered;
  }
}

// The HTTP session's side of the contract, and its responses paired with the requests seen.
class ResponseChecks final : public fuzz::SessionChecks {
 public:
  explicit ResponseChecks(std::vector<RequestSeen> requests) : requests_(std::move(requests)) {}

  void CheckResult(const net::Session& session, const net::SessionResult& r,
                   std::string_view input) override {
    FUZZ_CHECK(r.swallow == 0);
    // Only an unfinished head is left for more input: bodies stream through.
    FUZZ_CHECK(!r.need_more || input.size() - r.consumed < session.WantedInput());
  }
  void CheckOutput(std::string_view output, bool final) override {
    CheckResponses(output, requests_, &checked_, &answered_, final);
  }

 private:
  std::vector<RequestSeen> requests_;
  size_t checked_ = 0;   // output bytes already checked
  size_t answered_ = 0;  // requests answered by a final response
};

// An HttpSession on a tiny store, as one connection of a server with these settings.
class Client {
 public:
  Client(uint8_t selector, std::vector<RequestSeen> requests) : checks_(std::move(requests)) {
    Options o;
    o.segment_size = 4096;
    o.max_item_size = selector & 4 ? 4096 : 1024;
    o.memory_limit = size_t{1} << 20;
    o.background_cleaner = false;
    FUZZ_CHECK(Store::Open(o, &store_).ok());
    cache_ = std::make_unique<buildcache::BuildCache>(store_.get(), nullptr);
    HttpOptions options;
    options.zero_copy_min = selector & 1 ? 16 : 64 * 1024;
    const size_t output_limit = selector & 2 ? 64 : size_t{1} << 20;
    driver_ = std::make_unique<fuzz::SessionDriver>(
        std::make_unique<HttpSession>(cache_.get(), options, &stats_), output_limit, &checks_);
  }

  void Receive(std::string_view bytes) { driver_->Receive(bytes); }

 private:
  ResponseChecks checks_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<buildcache::BuildCache> cache_;
  HttpStats stats_;
  std::unique_ptr<fuzz::SessionDriver> driver_;  // destroyed first: the session uses the rest
};

}  // namespace
}  // namespace cinch::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  cinch::http::Client client(data[0], cinch::http::Requests(stream));
  const size_t stride = data[1] == 0 ? std::max<size_t>(stream.size(), 1) : data[1];
  for (size_t at = 0; at < stream.size(); at += stride) client.Receive(stream.substr(at, stride));
  return 0;
}
