#include "load/mixed.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "load/connection_set.h"

namespace cinch::load {

void Counters::Add(const Counters& o) {
  gets += o.gets;
  hits += o.hits;
  misses += o.misses;
  sets += o.sets;
  stored += o.stored;
  not_stored += o.not_stored;
  wrong += o.wrong;
  errors += o.errors;
  sets_as_gets += o.sets_as_gets;
  late += o.late;
}

namespace {

constexpr uint32_t kSetInFlight = 0x80000000u;
constexpr int kMaxKeyDraws = 8;
constexpr int kMaxReportedWrong = 5;
constexpr int64_t kIdleWaitNs = 1000000;       // wake at least every millisecond
constexpr uint64_t kDrainTimeoutNs = 5000000000ULL;

// What every thread knows about one key. `issued` is the latest version sent (with
// kSetInFlight while that set is unanswered); `acked` the latest version the server said it
// stored. Only the thread whose set is in flight writes either.
struct KeyState {
  std::atomic<uint32_t> issued{0};
  std::atomic<uint32_t> acked{0};
};

struct Shared {
  const MixedOptions* options;
  ValueCodec codec;
  std::unique_ptr<KeyState[]> keys;
  std::atomic<bool> abort{false};
  std::atomic<int> reported_wrong{0};
  uint64_t preload_start = 0, run_start = 0, measure_start = 0, end = 0;
};

// Runs once every thread has preloaded: the clock of the warm-up and measured window starts.
struct StartClock {
  Shared* shared;
  void operator()() noexcept {
    const MixedOptions& o = *shared->options;
    shared->run_start = NowNs();
    shared->measure_start = shared->run_start + static_cast<uint64_t>(o.warmup_s * 1e9);
    shared->end = shared->measure_start + static_cast<uint64_t>(o.duration_s * 1e9);
  }
};
using StartBarrier = std::barrier<StartClock>;

class Worker {
 public:
  Worker(Shared* shared, int index, int connections)
      : shared_(shared),
        options_(*shared->options),
        index_(index),
        connections_(connections),
        rng_(Mix64(shared->options->nonce * 977ULL + index)) {}

  // The thread's body: connect, preload this thread's share, wait for the others, run.
  void Run(StartBarrier* preloaded);
  const Counters& counters() const { return counters_; }
  const std::string& error() const { return error_; }
  IoMode io_mode() const { return conns_.io_mode(); }
  Histogram all, get, set;
  uint64_t preload_stored = 0, preload_bytes = 0;

 private:
  bool Preload();
  bool RunLoop();
  bool Drain();
  void IssueClosed(Connection& c, uint64_t now);
  int64_t IssueOpen(size_t i, uint64_t now);
  void IssueOne(Connection& c, uint64_t start_ns);
  bool OnReply(const Pending& p, const Reply& r, uint64_t now);
  void CheckHit(const Pending& p, const Reply& r, bool measured);
  bool Fail(std::string error);
  double NextGapNs();

  Shared* shared_;
  const MixedOptions& options_;
  int index_;
  int connections_;
  Rng rng_;
  ConnectionSet conns_;
  std::vector<uint64_t> next_due_;  // open loop: per connection
  Counters counters_;
  bool preloading_ = false;
  std::string error_;
};

bool Worker::Fail(std::string error) {
  if (error_.empty()) error_ = std::move(error);
  shared_->abort.store(true);
  return false;
}

void Worker::Run(StartBarrier* preloaded) {
  uint32_t inflight = options_.rate > 0 ? options_.max_inflight : options_.pipeline;
  inflight = std::max<uint32_t>(inflight, options_.preload ? 16 : 1);
  std::string e = conns_.Open(options_.address, options_.protocol, connections_, inflight,
                              options_.sizes.max(), options_.io);
  if (!e.empty()) Fail(e);
  if (error_.empty() && options_.preload) Preload();
  preloaded->arrive_and_wait();
  if (error_.empty() && !shared_->abort.load()) RunLoop();
}

bool Worker::Preload() {
  preloading_ = true;
  uint32_t depth = std::max<uint32_t>(options_.pipeline, 16);
  uint32_t next = static_cast<uint32_t>(index_);
  uint32_t count = options_.keys.count();
  uint32_t step = static_cast<uint32_t>(options_.threads);
  while (next < count || conns_.Inflight() > 0) {
    if (shared_->abort.load()) return false;
    uint64_t now = NowNs();
    for (size_t i = 0; i < conns_.size() && next < count; ++i) {
      Connection& c = conns_[i];
      while (next < count && c.inflight() < depth && c.CanQueue(options_.sizes.max())) {
        shared_->keys[next].issued.store(1, std::memory_order_relaxed);
        preload_bytes += kKeyBytes + shared_->codec.SizeOf(next, 1);
        c.QueueSet(next, 1, now, shared_->codec);
        next += step;
      }
    }
    std::string e = conns_.SendAll();
    if (e.empty()) {
      e = conns_.Poll(kIdleWaitNs, [this](const Pending& p, const Reply& r, uint64_t now) {
        return OnReply(p, r, now);
      });
    }
    if (!e.empty()) return Fail(e);
  }
  preloading_ = false;
  return true;
}

double Worker::NextGapNs() {
  double per_connection_rate = options_.rate / options_.connections;
  double u = rng_.Unit();
  return -std::log1p(-u) * 1e9 / per_connection_rate;
}

bool Worker::RunLoop() {
  bool open = options_.rate > 0;
  if (open) {
    next_due_.resize(conns_.size());
    for (auto& due : next_due_) due = shared_->run_start + static_cast<uint64_t>(NextGapNs());
  }
  auto on_reply = [this](const Pending& p, const Reply& r, uint64_t now) {
    return OnReply(p, r, now);
  };
  for (;;) {
    if (shared_->abort.load(std::memory_order_relaxed)) return false;
    uint64_t now = NowNs();
    if (now >= shared_->end) break;
    int64_t wait = kIdleWaitNs;
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (open) {
        wait = std::min(wait, IssueOpen(i, now));
      } else {
        IssueClosed(conns_[i], now);
      }
    }
    std::string e = conns_.SendAll();
    if (e.empty()) e = conns_.Poll(std::max<int64_t>(wait, 0), on_reply);
    if (!e.empty()) return Fail(e);
  }
  if (open) {
    // Requests due before the end that never went out: the generator or the server fell
    // behind. They are reported, not silently dropped.
    for (uint64_t due : next_due_) {
      while (due < shared_->end) {
        if (due >= shared_->measure_start) ++counters_.late;
        due += static_cast<uint64_t>(NextGapNs());
      }
    }
  }
  return Drain();
}

bool Worker::Drain() {
  uint64_t deadline = NowNs() + kDrainTimeoutNs;
  while (conns_.Inflight() > 0) {
    if (NowNs() > deadline) return Fail("replies still missing 5 s after the end");
    std::string e = conns_.SendAll();
    if (e.empty()) {
      e = conns_.Poll(kIdleWaitNs, [this](const Pending& p, const Reply& r, uint64_t now) {
        return OnReply(p, r, now);
      });
    }
    if (!e.empty()) return Fail(e);
  }
  return true;
}

void Worker::IssueClosed(Connection& c, uint64_t now) {
  while (c.inflight() < options_.pipeline && c.CanQueue(options_.sizes.max())) {
    IssueOne(c, now);
  }
}

// Sends what is due on connection i; returns the nanoseconds until its next request is due.
int64_t Worker::IssueOpen(size_t i, uint64_t now) {
  Connection& c = conns_[i];
  uint64_t& due = next_due_[i];
  while (due <= now && due < shared_->end && c.CanQueue(options_.sizes.max())) {
    IssueOne(c, due);
    due += static_cast<uint64_t>(NextGapNs());
  }
  if (due <= now) return 0;  // blocked by a full ring or buffer: poll for replies right away
  return static_cast<int64_t>(due - now);
}

void Worker::IssueOne(Connection& c, uint64_t start_ns) {
  bool is_get = rng_.Unit() < options_.get_fraction;
  uint32_t key = options_.keys.Sample(rng_);
  if (!is_get) {
    for (int draw = 0; draw < kMaxKeyDraws; ++draw) {
      if (draw > 0) key = options_.keys.Sample(rng_);
      std::atomic<uint32_t>& issued = shared_->keys[key].issued;
      uint32_t v = issued.load(std::memory_order_acquire);
      if ((v & kSetInFlight) == 0 &&
          issued.compare_exchange_strong(v, (v + 1) | kSetInFlight, std::memory_order_acq_rel)) {
        c.QueueSet(key, v + 1, start_ns, shared_->codec);
        return;
      }
    }
    if (start_ns >= shared_->measure_start) ++counters_.sets_as_gets;
  }
  c.QueueGet(key, shared_->keys[key].acked.load(std::memory_order_acquire), start_ns);
}

bool Worker::OnReply(const Pending& p, const Reply& r, uint64_t now) {
  bool measured = !preloading_ && p.start_ns >= shared_->measure_start && p.start_ns < shared_->end;
  uint64_t latency = now > p.start_ns ? now - p.start_ns : 0;
  if (r.outcome == Outcome::kError) {
    if (measured) ++counters_.errors;
    return true;
  }
  if (p.op == Op::kSet) {
    KeyState& k = shared_->keys[p.key];
    bool stored = r.outcome == Outcome::kStored;
    if (stored) k.acked.store(p.version, std::memory_order_release);
    k.issued.store(p.version, std::memory_order_release);  // no longer in flight
    if (preloading_) {
      preload_stored += stored;
    } else if (measured) {
      ++counters_.sets;
      stored ? ++counters_.stored : ++counters_.not_stored;
      set.Record(latency);
      all.Record(latency);
    }
    return true;
  }
  if (p.op != Op::kGet) return true;
  if (r.outcome == Outcome::kHit) CheckHit(p, r, measured);
  if (measured) {
    ++counters_.gets;
    r.outcome == Outcome::kHit ? ++counters_.hits : ++counters_.misses;
    get.Record(latency);
    all.Record(latency);
  }
  return true;
}

// A wrong value is counted whether or not the request was in the measured window.
void Worker::CheckHit(const Pending& p, const Reply& r, bool measured) {
  uint32_t version = 0;
  const char* why = nullptr;
  char name[kKeyBytes];
  FormatKey(p.key, name);
  if (!shared_->codec.Check(p.key, r.value, &version, &why)) {
    // why is set
  } else if (!r.key.empty() && r.key != std::string_view(name, kKeyBytes)) {
    why = "the reply names another key";
  } else if (version < p.min_version) {
    why = "stale: older than a version acknowledged before the get was sent";
  } else if (version > (shared_->keys[p.key].issued.load(std::memory_order_acquire) &
                        ~kSetInFlight)) {
    why = "a version never written";
  }
  if (why == nullptr) return;
  ++counters_.wrong;
  if (shared_->reported_wrong.fetch_add(1) < kMaxReportedWrong) {
    std::fprintf(stderr,
                 "cinch_load: WRONG value for key %.*s: %s (got %zu bytes, version %u; "
                 "acknowledged version at send %u)\n",
                 static_cast<int>(kKeyBytes), name, why, r.value.size(), version, p.min_version);
  }
}

}  // namespace

MixedResult RunMixed(const MixedOptions& options) {
  MixedResult result;
  Shared shared{&options, ValueCodec(options.nonce, &options.sizes),
                std::make_unique<KeyState[]>(options.keys.count())};
  int threads = std::max(1, std::min(options.threads, options.connections));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    int conns = options.connections / threads + (t < options.connections % threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(&shared, t, conns));
  }
  shared.preload_start = NowNs();
  StartBarrier preloaded(threads, StartClock{&shared});
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w, &preloaded] { w->Run(&preloaded); });
  for (auto& t : running) t.join();
  result.preload_seconds = static_cast<double>(shared.run_start - shared.preload_start) / 1e9;
  result.preload_keys = options.preload ? options.keys.count() : 0;
  result.seconds = options.duration_s;
  for (auto& w : workers) {
    if (result.error.empty()) result.error = w->error();
    if (w->io_mode() == IoMode::kEpoll) result.io = IoMode::kEpoll;
    result.counters.Add(w->counters());
    result.all.Merge(w->all);
    result.get.Merge(w->get);
    result.set.Merge(w->set);
    result.preload_stored += w->preload_stored;
    result.preload_bytes += w->preload_bytes;
  }
  return result;
}

}  // namespace cinch::load
