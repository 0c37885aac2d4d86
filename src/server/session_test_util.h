// The session tests' harness: a MemcacheSession on a real store, without sockets. Bytes go in
// as a connection would hand them over, and reply bytes come out.
#ifndef CINCH_SERVER_SESSION_TEST_UTIL_H_
#define CINCH_SERVER_SESSION_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/memcache_session.h"

namespace cinch::server::test {

// A connection's Resumer that counts its Resume() calls (any thread).
class CountingResumer final : public net::Resumer {
 public:
  void Resume() override { resumes.fetch_add(1); }
  std::atomic<int> resumes{0};
};

// Collects replies; references are copied at once and released when Flush() is called, as a
// connection does once the bytes are on the socket.
class FakeOutput final : public net::Output {
 public:
  void Append(std::string_view bytes) override { data_.append(bytes); }
  void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) override {
    data_.append(bytes);
    pending_refs_.push_back({release, arg});
  }
  size_t pending() const override { return data_.size(); }
  void Flush() {
    for (auto& [fn, arg] : pending_refs_) fn(arg);
    pending_refs_.clear();
  }
  size_t references() const { return pending_refs_.size(); }
  std::string Take() {
    std::string s;
    s.swap(data_);
    return s;
  }

 private:
  std::string data_;
  std::vector<std::pair<ReleaseFn, void*>> pending_refs_;
};

class SessionFixture : public ::testing::Test {
 protected:
  void SetUp() override { Open(ServerOptions{}); }
  void TearDown() override {
    out_.Flush();
    session_.reset();
  }

  // A new store of `memory_limit` (the clock is clock_, no background cleaner) and a new
  // session on it.
  void Open(ServerOptions options, size_t memory_limit = 32 << 20) {
    session_.reset();
    options_ = std::move(options);
    options_.store.memory_limit = memory_limit;
    options_.store.clock = &clock_;
    options_.store.background_cleaner = false;
    ASSERT_TRUE(Store::Open(options_.store, &store_).ok());
    context_ = std::make_unique<ServerContext>();
    context_->store = store_.get();
    context_->options = &options_;
    context_->clock = &clock_;
    session_ = std::make_unique<MemcacheSession>(context_.get());
    pending_.clear();
    swallow_ = 0;
    closed_ = false;
  }

  // Sends `input` (whole) and returns the replies, their references released; leftover bytes
  // stay pending for the next call. Nothing more is read once the session has closed.
  std::string SendRaw(std::string_view input) {
    pending_.append(input);
    while (!closed_) {
      if (swallow_ > 0) {
        size_t n = std::min(swallow_, pending_.size());
        pending_.erase(0, n);
        swallow_ -= n;
      }
      net::SessionResult r = session_->OnInput(pending_, &out_, 1 << 20);
      EXPECT_LE(r.consumed, pending_.size());
      pending_.erase(0, r.consumed);
      swallow_ += r.swallow;
      closed_ |= r.close;
      if (r.need_more || pending_.empty() || r.consumed == 0) break;
    }
    out_.Flush();
    return out_.Take();
  }

  OffsetClock clock_;
  ServerOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ServerContext> context_;
  std::unique_ptr<MemcacheSession> session_;
  FakeOutput out_;
  std::string pending_;
  size_t swallow_ = 0;
  bool closed_ = false;
};

}  // namespace cinch::server::test

#endif  // CINCH_SERVER_SESSION_TEST_UTIL_H_
