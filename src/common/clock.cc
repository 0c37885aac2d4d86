#include "cinch/clock.h"

#include <ctime>

namespace cinch {

int64_t SystemClock::NowSeconds() const { return static_cast<int64_t>(std::time(nullptr)); }

const SystemClock* SystemClock::Default() {
  static const SystemClock* clock = new SystemClock();
  return clock;
}

int64_t OffsetClock::NowSeconds() const {
  int64_t base = frozen_at_.load(std::memory_order_relaxed);
  if (base == kRunning) base = SystemClock::Default()->NowSeconds();
  return base + offset_.load(std::memory_order_relaxed);
}

void OffsetClock::Pause() {
  int64_t expected = kRunning;
  frozen_at_.compare_exchange_strong(expected, SystemClock::Default()->NowSeconds(),
                                     std::memory_order_relaxed);
}

}  // namespace cinch
