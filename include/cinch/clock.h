// Time source of a store.
//
// Expiry is decided in whole seconds of Unix time, as in memcached. The store reads time only
// through a Clock so that tests (and the server's `debugtime` command) can move time without
// sleeping.
//
// Thread safety: implementations must be safe to call from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace cinch {

class Clock {
 public:
  virtual ~Clock() = default;
  // Current Unix time in seconds.
  virtual int64_t NowSeconds() const = 0;
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  int64_t NowSeconds() const override;
  // A process-wide instance; never destroyed.
  static const SystemClock* Default();
};

// A clock that stands still until moved: starts at `start` and advances only by Advance() or Set().
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start = 1'700'000'000) : now_(start) {}
  int64_t NowSeconds() const override { return now_.load(std::memory_order_relaxed); }
  void Advance(int64_t seconds) { now_.fetch_add(seconds, std::memory_order_relaxed); }
  void Set(int64_t now) { now_.store(now, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

// The real clock shifted by an adjustable offset, and pausable: what the server's `debugtime`
// moves. While paused the real clock's second is frozen (shifts still apply); Resume() follows
// the real clock again, as memcached's debug builds do.
class OffsetClock final : public Clock {
 public:
  int64_t NowSeconds() const override;
  void Shift(int64_t seconds) { offset_.fetch_add(seconds, std::memory_order_relaxed); }
  // Idempotent: pausing a paused clock keeps the first frozen second.
  void Pause();
  void Resume() { frozen_at_.store(kRunning, std::memory_order_relaxed); }

 private:
  static constexpr int64_t kRunning = INT64_MIN;
  std::atomic<int64_t> offset_{0};
  std::atomic<int64_t> frozen_at_{kRunning};  // the real second the clock stands at, if paused
};

}  // namespace cinch
