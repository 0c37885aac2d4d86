#include <ctime>

#include "cinch/clock.h"

namespace cinch {

int64_t SystemClock::NowSeconds() const { return static_cast<int64_t>(std::time(nullptr)); }

const SystemClock* SystemClock::Default() {
  static const SystemClock* clock = new SystemClock();
  return clock;
}

int64_t OffsetClock::NowSeconds() const {
  return SystemClock::Default()->NowSeconds() + offset_.load(std::memory_order_relaxed);
}

}  // namespace cinch
