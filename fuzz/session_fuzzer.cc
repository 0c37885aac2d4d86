// libFuzzer target: cinch::server::MemcacheSession (parser + store + reply writers) fed a byte
// stream in fuzzed reads, as a connection feeds it (see net/connection.cc RunSession).
//
// Input: the first byte picks the server settings (CAS, flush_all, debugtime, zero-copy size,
// output limit); the rest is split by FuzzedDataProvider into reads of fuzzed lengths. The
// store is small (4 KiB segments, 1 KiB items) so that eviction and too-large values happen.
//
// Checked (FUZZ_CHECK, plus ASan/UBSan and the session's own CINCH_CHECKs):
//   - OnInput consumes at most its input and always makes progress unless it needs more input,
//     closes, or stopped because the output is full;
//   - the output is a sequence of well-formed replies: lines ending in "\r\n" that start like a
//     memcached reply, VALUE/VA lines followed by exactly the announced bytes and "\r\n";
//   - values queued by reference are still readable when "written" (at the next drain) and every
//     reference is released before the session is destroyed.
// The clock is the server's (real time + debugtime offset), so expiry may vary between runs.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/clock.h"
#include "cinch/store.h"
#include "fuzz_check.h"
#include "net/session.h"
#include "server/memcache_session.h"
#include "server/server_context.h"
#include "server/server_options.h"

namespace cinch::server {
namespace {

// Queues bytes like the connection's output queue: copies are kept, references are read only
// when drained (the "write to the socket"), then released.
class QueueOutput final : public net::Output {
 public:
  void Append(std::string_view bytes) override {
    parts_.push_back({std::string(bytes), {}, nullptr, nullptr});
    pending_ += bytes.size();
  }
  void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) override {
    FUZZ_CHECK(release != nullptr);
    parts_.push_back({{}, bytes, release, arg});
    pending_ += bytes.size();
  }
  size_t pending() const override { return pending_; }

  // Writes everything queued to `sink` and releases the references.
  void Drain(std::string* sink) {
    for (Part& p : parts_) {
      if (p.release == nullptr) {
        sink->append(p.copy);
      } else {
        sink->append(p.ref.data(), p.ref.size());
        p.release(p.arg);
      }
    }
    parts_.clear();
    pending_ = 0;
  }

 private:
  struct Part {
    std::string copy;
    std::string_view ref;
    ReleaseFn release;
    void* arg;
  };
  std::vector<Part> parts_;
  size_t pending_ = 0;
};

bool IsDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// The n-th space-separated field of a line (fields are separated by exactly one space).
std::string_view Field(std::string_view line, size_t n) {
  for (; n > 0; --n) {
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) return {};
    line.remove_prefix(space + 1);
  }
  return line.substr(0, line.find(' '));
}

bool StartsWord(std::string_view line, std::string_view word) {
  return line.starts_with(word) && (line.size() == word.size() || line[word.size()] == ' ');
}

// Checks the replies in `out` from *pos on; all must be complete.
void CheckReplies(std::string_view out, size_t* pos) {
  static constexpr std::string_view kWords[] = {
      "STORED", "NOT_STORED", "EXISTS", "NOT_FOUND",    "DELETED",      "TOUCHED", "END", "OK",
      "RESET",  "ERROR",      "STAT",   "VERSION",      "HD",           "NS",      "EX",  "NF",
      "EN",     "MN",         "ME",     "CLIENT_ERROR", "SERVER_ERROR", "ERROR:"};
  while (*pos < out.size()) {
    const size_t eol = out.find("\r\n", *pos);
    FUZZ_CHECK(eol != std::string_view::npos);
    const std::string_view line = out.substr(*pos, eol - *pos);
    *pos = eol + 2;
    FUZZ_CHECK(line.find('\n') == std::string_view::npos);
    size_t data = std::string_view::npos;
    if (line.starts_with("VALUE ")) {
      FUZZ_CHECK(IsDigits(Field(line, 2)) && IsDigits(Field(line, 3)));
      data = std::stoull(std::string(Field(line, 3)));
    } else if (line.starts_with("VA ")) {
      FUZZ_CHECK(IsDigits(Field(line, 1)));
      data = std::stoull(std::string(Field(line, 1)));
    } else if (!IsDigits(line)) {  // incr/decr answer with the number alone
      bool known = false;
      for (std::string_view w : kWords) known |= StartsWord(line, w);
      if (!known)
        std::fprintf(stderr, "unexpected reply line: %.*s\n", int(line.size()), line.data());
      FUZZ_CHECK(known);
    }
    if (data == std::string_view::npos) continue;
    FUZZ_CHECK(out.size() - *pos >= data + 2);
    FUZZ_CHECK(out.substr(*pos + data, 2) == "\r\n");
    *pos += data + 2;
  }
}

ServerOptions PickOptions(uint8_t selector, OffsetClock* clock) {
  ServerOptions o;
  o.cas_enabled = !(selector & 1);
  o.flush_enabled = !(selector & 2);
  o.debugtime_enabled = selector & 4;
  o.zero_copy_min = selector & 8 ? 16 : 4096;
  o.store.segment_size = 4096;
  o.store.max_item_size = 1024;
  o.store.memory_limit = size_t{1} << 20;
  o.store.background_cleaner = false;
  o.store.clock = clock;
  return o;
}

class Client {
 public:
  Client(uint8_t selector) : options_(PickOptions(selector, &clock_)) {
    output_limit_ = selector & 16 ? 64 : size_t{1} << 20;
    FUZZ_CHECK(Store::Open(options_.store, &store_).ok());
    context_.store = store_.get();
    context_.options = &options_;
    context_.clock = &clock_;
    session_ = std::make_unique<MemcacheSession>(&context_);
  }

  ~Client() {
    out_.Drain(&replies_);  // the connection releases every reference before the session
    CheckReplies(replies_, &checked_);
    session_.reset();
  }

  // One read of `bytes` from the socket.
  void Receive(std::string_view bytes) {
    if (closed_) return;
    const size_t skip = std::min(swallow_, bytes.size());
    swallow_ -= skip;
    pending_.append(bytes.substr(skip));
    while (!pending_.empty() && !closed_) {
      const net::SessionResult r = session_->OnInput(pending_, &out_, output_limit_);
      FUZZ_CHECK(r.consumed <= pending_.size());
      pending_.erase(0, r.consumed);
      const size_t drop = std::min(r.swallow, pending_.size());
      pending_.erase(0, drop);
      swallow_ += r.swallow - drop;
      closed_ = r.close;
      const bool output_full = out_.pending() >= output_limit_;
      FUZZ_CHECK(r.consumed > 0 || r.swallow > 0 || r.need_more || r.close || output_full);
      out_.Drain(&replies_);
      CheckReplies(replies_, &checked_);
      if (r.need_more) break;
    }
  }

 private:
  OffsetClock clock_;
  ServerOptions options_;
  std::unique_ptr<Store> store_;
  ServerContext context_;
  std::unique_ptr<MemcacheSession> session_;
  QueueOutput out_;
  size_t output_limit_;
  std::string pending_;  // read and not consumed
  size_t swallow_ = 0;
  bool closed_ = false;
  std::string replies_;
  size_t checked_ = 0;  // replies_ bytes already checked
};

}  // namespace
}  // namespace cinch::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  cinch::server::Client client(data[0]);
  FuzzedDataProvider in(data + 1, size - 1);
  while (in.remaining_bytes() > 0) {
    const size_t n = in.ConsumeIntegralInRange<size_t>(1, 512);
    client.Receive(in.ConsumeBytesAsString(n));
  }
  return 0;
}
