// Request counters of the server (memcached's "stats" names), kept per worker thread so that
// counting never contends, and summed when a client asks.
//
// Thread safety: each ThreadCounters is written by one thread (relaxed atomics, so a reader
// on another thread sees a consistent-enough snapshot); Registry is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "cinch/store.h"
#include "common/latency_histogram.h"

namespace cinch::server {

#define CINCH_SERVER_COUNTERS(X)                                                            \
  X(cmd_get)                                                                                \
  X(cmd_set)                                                                                \
  X(cmd_flush)                                                                              \
  X(cmd_touch)                                                                              \
  X(cmd_meta)                                                                               \
  X(get_hits)                                                                               \
  X(get_misses)                                                                             \
  X(get_expired)                                                                            \
  X(get_flushed) X(delete_misses) X(delete_hits) X(incr_misses) X(incr_hits) X(decr_misses) \
      X(decr_hits) X(cas_misses) X(cas_hits) X(cas_badval) X(touch_hits) X(touch_misses)    \
          X(store_too_large) X(store_no_memory) X(total_items) X(zero_copy_values)          \
              X(copied_values) X(tier_waits) X(tier_sync_reads) X(auth_cmds) X(auth_errors)

// The classes of requests whose latency is measured (GET /metrics,
// cinch_request_duration_seconds{command=...}).
enum class CommandClass : uint8_t { kGet, kSet, kOther };
inline constexpr int kCommandClasses = 3;

struct Counters {
#define CINCH_DECLARE(name) uint64_t name = 0;
  CINCH_SERVER_COUNTERS(CINCH_DECLARE)
#undef CINCH_DECLARE
};

class ThreadCounters {
 public:
#define CINCH_DECLARE(name) std::atomic<uint64_t> name{0};
  CINCH_SERVER_COUNTERS(CINCH_DECLARE)
#undef CINCH_DECLARE

  // Only the owning thread calls this, so a load + store is enough (no read-modify-write).
  static void Add(std::atomic<uint64_t>& c, uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void AddTo(Counters* sum) const;
  void Reset();

  // Time from a request parsed to its reply queued, by class. Not reset by "stats reset":
  // only /metrics shows them, and a Prometheus histogram only grows.
  std::array<LatencyHistogram, kCommandClasses> latency;
};

// Hands each worker thread its own counters; they live as long as the registry.
class CounterRegistry {
 public:
  CounterRegistry();
  ThreadCounters* ForThisThread();
  Counters Sum() const;
  std::array<LatencySnapshot, kCommandClasses> SumLatency() const;
  void Reset();

 private:
  const uint64_t id_;
  mutable std::mutex mu_;
  std::deque<ThreadCounters> all_;  // deque: stable addresses
};

// What a tenant's "stats reset" resets. The store's counters of a keyspace only grow, so a
// reset records them, and the tenant's "stats" show the counts since (Since); the server's
// counters, which the operator and the default keyspace's users see, are not touched.
// Thread-safe.
class TenantResets {
 public:
  // `now` with its counters (get_hits, get_misses, evictions) less those at the keyspace's
  // last reset; unchanged if it was never reset.
  KeyspaceStats Since(Keyspace keyspace, KeyspaceStats now) const;
  void Reset(Keyspace keyspace, const KeyspaceStats& now);

 private:
  struct Base {
    uint64_t get_hits = 0;
    uint64_t get_misses = 0;
    uint64_t evictions = 0;
  };
  mutable std::mutex mu_;
  std::unordered_map<uint16_t, Base> base_;
};

}  // namespace cinch::server
