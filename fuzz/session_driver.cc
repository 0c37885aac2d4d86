#include "session_driver.h"

#include <algorithm>
#include <utility>

#include "fuzz_check.h"

namespace cinch::fuzz {

void QueueOutput::Append(std::string_view bytes) {
  parts_.push_back({std::string(bytes), {}, nullptr, nullptr});
  pending_ += bytes.size();
}

void QueueOutput::AppendReference(std::string_view bytes, ReleaseFn release, void* arg) {
  FUZZ_CHECK(release != nullptr);
  parts_.push_back({{}, bytes, release, arg});
  pending_ += bytes.size();
}

void QueueOutput::Drain(std::string* sink) {
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

SessionDriver::SessionDriver(std::unique_ptr<net::Session> session, size_t output_limit,
                             SessionChecks* checks)
    : session_(std::move(session)), output_limit_(output_limit), checks_(checks) {}

SessionDriver::~SessionDriver() {
  out_.Drain(&output_);  // the connection releases every reference before the session
  session_.reset();
  checks_->CheckOutput(output_, /*final=*/true);
}

void SessionDriver::Receive(std::string_view bytes) {
  if (closed_) return;
  const size_t skip = std::min(swallow_, bytes.size());
  swallow_ -= skip;
  pending_.append(bytes.substr(skip));
  while (!pending_.empty() && !closed_) {
    const net::SessionResult r = session_->OnInput(pending_, &out_, output_limit_);
    FUZZ_CHECK(r.consumed <= pending_.size());
    checks_->CheckResult(*session_, r, pending_);
    pending_.erase(0, r.consumed);
    const size_t drop = std::min(r.swallow, pending_.size());
    pending_.erase(0, drop);
    swallow_ += r.swallow - drop;
    closed_ = r.close;
    const bool output_full = out_.pending() >= output_limit_;
    FUZZ_CHECK(r.consumed > 0 || r.swallow > 0 || r.need_more || r.close || output_full);
    out_.Drain(&output_);
    checks_->CheckOutput(output_, /*final=*/false);
    if (r.need_more) break;
  }
}

}  // namespace cinch::fuzz
