// MemoryGovernor: cinchd's memory limit at run time (docs/memory-pressure.md).
//
// The process's limit is the least of: -m (the ceiling, what the store reserved at start),
// memcached's `cache_memlimit`, the cgroup's limit less a margin, and a target that memory
// pressure lowers in steps and that grows back slowly once the pressure is gone. The governor
// turns that process figure into the store's share as the server sized it at start (the limit
// less what the process keeps for itself and its connections) and hands it to
// Store::SetMemoryLimit, which evicts down to it and gives the memory back to the OS. Every
// change is logged in one line on stderr.
//
// Evaluate() holds the policy and is deterministic (inputs and time passed in), for tests;
// Start() runs a thread that reads the cgroup and the pressure signals (PressureWatcher) every
// interval and calls it.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "cinch/store.h"
#include "server/memory_sources.h"

namespace cinch::server {

// Signs that the host or the cgroup is short of memory, in order of preference: a PSI trigger
// (the v2 cgroup's memory.pressure or /proc/pressure/memory; woken by the kernel) or PSI's
// stall total read every interval, the v2 cgroup's memory.events (high and max), and where
// there is no PSI, MemAvailable under 5 % of MemTotal.
class PressureWatcher {
 public:
  // `triggers`: try to arm a PSI trigger (tests reading fixtures turn it off).
  PressureWatcher(const MemorySources* sources, bool triggers);
  ~PressureWatcher();
  PressureWatcher(const PressureWatcher&) = delete;
  PressureWatcher& operator=(const PressureWatcher&) = delete;

  // Waits up to `timeout_ms` for the PSI trigger or for `stop_fd` (an eventfd) to be readable.
  // Returns true if the trigger fired.
  bool Wait(int timeout_ms, int stop_fd);
  // Whether pressure was seen since the last call `elapsed_ms` ago (a trigger that fired
  // counts, passed in as `fired`).
  bool Check(bool fired, int64_t elapsed_ms);
  // What it watches, for the start-up log line.
  std::string Describe() const;

 private:
  const MemorySources* sources_;
  int trigger_fd_ = -1;
  std::optional<uint64_t> last_psi_total_;
  std::optional<MemoryEvents> last_events_;
};

class MemoryGovernor {
 public:
  struct Config {
    size_t ceiling = 0;  // -m
    // The part of the process's limit that is not the store's: the process's own reserve and
    // the connections' (and gRPC's) budgets, as at start.
    size_t fixed = 0;
    bool pressure = true;  // -o memory_pressure
    int interval_ms = 1000;
    bool triggers = true;  // PSI triggers (PressureWatcher)
    MemorySources::Roots roots;
  };
  // What Evaluate sees: the cgroup's limit (nullopt: none) and whether pressure was seen.
  struct Inputs {
    std::optional<uint64_t> cgroup_limit;
    bool pressure = false;
    int64_t now_ms = 0;  // any monotonic clock
  };

  // Policy (docs/memory-pressure.md).
  // The cgroup's limit less max(1/16 of it, kCgroupMarginMin): page cache, kernel memory and
  // what RSS does not show are charged to the cgroup too.
  static constexpr size_t kCgroupMarginMin = size_t{4} << 20;
  static constexpr int kShrinkDivisor = 8;           // a step under pressure: 1/8 off
  static constexpr int64_t kShrinkSpacingMs = 2000;  // at most one step per 2 s
  static constexpr int64_t kCalmMs = 30000;          // no pressure this long: grow back
  static constexpr int64_t kGrowSpacingMs = 10000;   // then 1/16 of -m every 10 s
  static constexpr int kGrowDivisor = 16;
  // PSI: tasks stalled on memory at least 10 % of the time (100 ms in a 1 s window).
  static constexpr double kPsiShare = 0.10;
  static constexpr int kMemAvailablePercent = 5;

  // The cgroup's limit less the margin: what the process may hold inside it.
  static size_t CgroupShare(uint64_t cgroup_limit);

  MemoryGovernor(const Config& config, Store* store);
  ~MemoryGovernor();
  MemoryGovernor(const MemoryGovernor&) = delete;
  MemoryGovernor& operator=(const MemoryGovernor&) = delete;

  // Reads the cgroup once and applies it (before the server serves), then starts the thread.
  void Start();
  void Stop();

  // cache_memlimit: `bytes` 0 removes it. Applied before it returns.
  void SetCacheMemlimit(size_t bytes);
  // One decision, applied to the store if it changes the limit.
  void Evaluate(const Inputs& in);

  size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  // "-m", "cache_memlimit", "cgroup" or "pressure": which bound is the limit now.
  const char* source() const { return source_.load(std::memory_order_relaxed); }
  uint64_t cgroup_limit() const { return cgroup_limit_.load(std::memory_order_relaxed); }
  uint64_t pressure_shrinks() const { return pressure_shrinks_.load(std::memory_order_relaxed); }
  uint64_t pressure_grows() const { return pressure_grows_.load(std::memory_order_relaxed); }
  bool pressure_enabled() const { return config_.pressure; }

 private:
  void Run();
  // REQUIRES: mu_ held.
  void UpdatePressureTarget(const Inputs& in);
  void Apply();

  const Config config_;
  Store* const store_;
  MemorySources sources_;
  std::unique_ptr<PressureWatcher> watcher_;

  std::mutex mu_;
  size_t cache_memlimit_ = 0;               // guarded by mu_; 0: none
  std::optional<uint64_t> cgroup_;          // guarded by mu_: the last reading
  size_t pressure_target_ = SIZE_MAX;       // guarded by mu_; SIZE_MAX: none
  int64_t last_shrink_ms_ = INT64_MIN / 2;  // guarded by mu_
  int64_t last_pressure_ms_ = INT64_MIN / 2;
  int64_t last_grow_ms_ = INT64_MIN / 2;
  bool first_ = true;  // guarded by mu_: nothing logged yet
  // Guarded by mu_: the pressure target was raised to what the store can get down to (its
  // least limit); further steps would change nothing.
  bool pressure_at_floor_ = false;

  std::atomic<size_t> limit_;
  std::atomic<const char*> source_;
  std::atomic<uint64_t> cgroup_limit_{0};
  std::atomic<uint64_t> pressure_shrinks_{0};
  std::atomic<uint64_t> pressure_grows_{0};

  int stop_fd_ = -1;  // eventfd
  std::thread thread_;
};

}  // namespace cinch::server
