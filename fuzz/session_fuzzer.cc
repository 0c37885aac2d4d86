// libFuzzer target: cinch::server::MemcacheSession (parser + store + reply writers) fed a byte
// stream in fuzzed reads, as a connection feeds it (see net/connection.cc RunSession).
//
// Input: the first byte picks the server settings (CAS, flush_all, debugtime, zero-copy size,
// output limit); the rest is split by FuzzedDataProvider into reads of fuzzed lengths. The
// store is small (4 KiB segments, 1 KiB items) so that eviction and too-large values happen.
//
// Checked (FUZZ_CHECK, plus ASan/UBSan and the session's own CINCH_CHECKs):
//   - the Session contract as a connection sees it (session_driver.h): progress of OnInput,
//     references readable when "written" and all released before the session is destroyed;
//   - the output is a sequence of well-formed replies: lines ending in "\r\n" that start like a
//     memcached reply, VALUE/VA lines followed by exactly the announced bytes and "\r\n"; or,
//     on a connection that began with byte 0x80 (the binary protocol), response packets: magic
//     0x81, extras + key within the body, and the whole output made of complete packets.
// The clock is the server's (real time + debugtime offset), so expiry may vary between runs.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "cinch/clock.h"
#include "cinch/store.h"
#include "fuzz_check.h"
#include "proto/binary.h"
#include "server/memcache_session.h"
#include "server/server_context.h"
#include "server/server_options.h"
#include "session_driver.h"

namespace cinch::server {
namespace {

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
  static constexpr std::string_view kWords[] = {"STORED",
                                                "NOT_STORED",
                                                "EXISTS",
                                                "NOT_FOUND",
                                                "DELETED",
                                                "TOUCHED",
                                                "END",
                                                "OK",
                                                "RESET",
                                                "ERROR",
                                                "STAT",
                                                "VERSION",
                                                "HD",
                                                "NS",
                                                "EX",
                                                "NF",
                                                "EN",
                                                "MN",
                                                "ME",
                                                "CLIENT_ERROR",
                                                "SERVER_ERROR",
                                                "ERROR:",
                                                "MEMLIMIT_TOO_SMALL",
                                                "MEMLIMIT_ADJUST_FAILED",
                                                "ITEM",
                                                "BUSY",
                                                "BADCLASS",
                                                "NOTSTARTED"};
  while (*pos < out.size()) {
    if (out.substr(*pos).starts_with("key=")) {  // a metadump line: memcached ends it with \n
      const size_t nl = out.find('\n', *pos);
      FUZZ_CHECK(nl != std::string_view::npos);
      FUZZ_CHECK(out.substr(*pos, nl - *pos).find('\r') == std::string_view::npos);
      *pos = nl + 1;
      continue;
    }
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

// Checks the binary response packets in `out` from *pos on; all must be complete.
void CheckPackets(std::string_view out, size_t* pos) {
  namespace bin = proto::binary;
  while (*pos < out.size()) {
    FUZZ_CHECK(out.size() - *pos >= bin::kHeaderSize);
    const char* h = out.data() + *pos;
    FUZZ_CHECK(static_cast<uint8_t>(h[0]) == bin::kResponseMagic);
    const size_t keylen = (static_cast<uint8_t>(h[2]) << 8) | static_cast<uint8_t>(h[3]);
    const size_t extlen = static_cast<uint8_t>(h[4]);
    const size_t body = bin::LoadBig32(h + 8);
    FUZZ_CHECK(extlen + keylen <= body);
    FUZZ_CHECK(keylen <= bin::kMaxKeySize);
    FUZZ_CHECK(out.size() - *pos - bin::kHeaderSize >= body);
    *pos += bin::kHeaderSize + body;
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

// The replies must be well formed, each checked once.
class ReplyChecks final : public fuzz::SessionChecks {
 public:
  void CheckOutput(std::string_view output, bool final) override {
    if (!output.empty() && static_cast<uint8_t>(output[0]) == proto::binary::kResponseMagic) {
      CheckPackets(output, &checked_);
    } else {
      CheckReplies(output, &checked_);
    }
  }

 private:
  size_t checked_ = 0;  // output bytes already checked
};

// A MemcacheSession on a small store, as one connection of a server with these settings.
class Client {
 public:
  explicit Client(uint8_t selector) : options_(PickOptions(selector, &clock_)) {
    FUZZ_CHECK(Store::Open(options_.store, &store_).ok());
    context_.store = store_.get();
    context_.options = &options_;
    context_.clock = &clock_;
    const size_t output_limit = selector & 16 ? 64 : size_t{1} << 20;
    driver_ = std::make_unique<fuzz::SessionDriver>(std::make_unique<MemcacheSession>(&context_),
                                                    output_limit, &checks_);
  }

  void Receive(std::string_view bytes) { driver_->Receive(bytes); }

 private:
  OffsetClock clock_;
  ServerOptions options_;
  std::unique_ptr<Store> store_;
  ServerContext context_;
  ReplyChecks checks_;
  std::unique_ptr<fuzz::SessionDriver> driver_;  // destroyed first: the session uses the rest
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
