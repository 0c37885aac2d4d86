// Brings items from the store's file tier (Options::tier_files) back into memory on a few I/O
// threads, so that an event loop never waits on the disk (docs/server.md, "The file tier").
//
// A session about to run a request whose keys Store::InFileTier says may need the file hands
// the keys here as a Job and waits (net::SessionResult::wait); an I/O thread calls
// Store::Promote for each such key and then resumes the session's connection, which runs the
// request again and finds the items in memory.
//
// Memory: a Job lives inside its session (one at most per session, charged with the
// connection), and the queue is a list through the jobs, so the queue holds at most one job
// per connection and allocates nothing.
//
// Thread safety: Submit from any thread; Stop from the owning thread, after every loop that
// submits has stopped (Stop still runs what is queued, since workers wait for their resumes).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "cinch/store.h"
#include "net/session.h"
#include "proto/base64.h"
#include "proto/request.h"

namespace cinch::server {

// How a job's keys are written in the request.
enum class TierKeys : uint8_t {
  kList,    // space-separated keys (a get line)
  kOne,     // one key
  kBase64,  // one key in base64 (meta flag 'b')
};

// Calls f(key) for each key of `keys`; a base64 key that does not decode names no key.
template <typename F>
void ForEachTierKey(std::string_view keys, TierKeys form, F f) {
  switch (form) {
    case TierKeys::kList: {
      std::string_view key;
      while (proto::NextKey(&keys, &key)) f(key);
      return;
    }
    case TierKeys::kOne:
      f(keys);
      return;
    case TierKeys::kBase64: {
      char decoded[proto::Base64MaxDecodedSize(2 * Store::kMaxKeyLength)];
      size_t n = proto::Base64Decode(keys, decoded, sizeof(decoded));
      if (n > 0 && n <= Store::kMaxKeyLength) f(std::string_view(decoded, n));
      return;
    }
  }
}

class TierPromoter {
 public:
  // One request's keys, or other work that may wait on the disk: with `run` set, the thread
  // calls run(arg) instead of promoting keys. Owned by the submitter, who leaves it (and the
  // bytes `keys` points at) untouched until `done->Resume()` is called.
  struct Job {
    Keyspace keyspace;
    std::string_view keys;
    TierKeys form = TierKeys::kOne;
    void (*run)(void* arg) = nullptr;
    void* arg = nullptr;
    net::Resumer* done = nullptr;
    Job* next = nullptr;  // the queue's link
  };

  // I/O threads: promotions are disk reads (one or two preads per item) and a copy; two
  // threads keep a disk busy on the 2-core machines this is sized for.
  static constexpr int kThreads = 2;

  explicit TierPromoter(Store* store, int threads = kThreads);
  ~TierPromoter();
  TierPromoter(const TierPromoter&) = delete;
  TierPromoter& operator=(const TierPromoter&) = delete;

  // Queues the job; never blocks.
  void Submit(Job* job);
  // Runs every queued job, then joins the threads. Idempotent.
  void Stop();

  uint64_t queued() const;    // jobs waiting for a thread now
  uint64_t promoted() const;  // keys promoted so far (Promote calls)

 private:
  void Run();

  Store* const store_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  Job* head_ = nullptr;  // FIFO: head_ .. tail_
  Job* tail_ = nullptr;
  uint64_t queued_ = 0;
  uint64_t promoted_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cinch::server
