// SessionDriver: feeds a net::Session a byte stream in reads, as a connection does (see
// net/connection.cc RunSession), for the session fuzz targets (session_fuzzer,
// http_session_fuzzer). One place for the connection's side of the Session contract:
//   - OnInput consumes at most its input and makes progress unless it needs more input, closes,
//     or stopped because the output is full (FUZZ_CHECK);
//   - swallowed bytes are dropped from this read and the following ones;
//   - values queued by reference are read only when "written" (drained after each OnInput),
//     then released, and every reference is released before the session is destroyed.
// What the output must look like is the target's: SessionChecks.
//
// Thread safety: single-threaded, like a connection on its worker.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/session.h"

namespace cinch::fuzz {

// A target's checks, called by the driver.
class SessionChecks {
 public:
  virtual ~SessionChecks() = default;
  // After each OnInput: its result and the input it was given.
  virtual void CheckResult(const net::Session& session, const net::SessionResult& result,
                           std::string_view input) {}
  // After each drain, with everything written so far; `final` once the session is gone (the
  // output is then complete).
  virtual void CheckOutput(std::string_view output, bool final) = 0;
};

// Queues bytes like the connection's output queue: copies are kept, references are read only
// when drained (the "write to the socket"), then released.
class QueueOutput final : public net::Output {
 public:
  void Append(std::string_view bytes) override;
  void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) override;
  size_t pending() const override { return pending_; }

  // Appends everything queued to `sink` and releases the references.
  void Drain(std::string* sink);

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

class SessionDriver {
 public:
  // REQUIRES: `checks` outlives the driver, and whatever `session` uses outlives the driver.
  SessionDriver(std::unique_ptr<net::Session> session, size_t output_limit, SessionChecks* checks);
  // Drains the output, destroys the session, then checks the whole output (final).
  ~SessionDriver();

  SessionDriver(const SessionDriver&) = delete;
  SessionDriver& operator=(const SessionDriver&) = delete;

  // One read of `bytes` from the socket; ignored once the session asked to close.
  void Receive(std::string_view bytes);

 private:
  std::unique_ptr<net::Session> session_;
  const size_t output_limit_;
  SessionChecks* const checks_;
  QueueOutput out_;
  std::string pending_;  // read and not consumed
  size_t swallow_ = 0;   // bytes still to drop from the next reads
  bool closed_ = false;
  std::string output_;  // everything drained
};

}  // namespace cinch::fuzz
