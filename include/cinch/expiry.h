// memcached's exptime tokens, as every cinch interface reads them (include/cinch/store.h): 0
// never expires; 1..kMaxRelativeExpiry is seconds from now; larger is an absolute Unix time;
// negative means already expired.
#pragma once

#include <cstdint>

namespace cinch {

// memcached's REALTIME_MAXDELTA: 30 days.
inline constexpr int64_t kMaxRelativeExpiry = 60 * 60 * 24 * 30;

// The absolute Unix time a positive exptime stands for at `now`.
constexpr int64_t AbsoluteExptime(int64_t exptime, int64_t now) {
  return exptime <= kMaxRelativeExpiry ? now + exptime : exptime;
}

// Whether an item written with `exptime` at `now` has expired as soon as it is written.
constexpr bool ExpiresAtOnce(int64_t exptime, int64_t now) {
  return exptime < 0 || (exptime > kMaxRelativeExpiry && exptime <= now);
}

}  // namespace cinch
