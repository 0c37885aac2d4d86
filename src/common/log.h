// cinchd's log: one line per event on stderr, written with one write(2) so that lines of
// different threads never interleave:
//
//   2026-12-07T14:25:54.123Z cinchd[4242] notice: listening on 127.0.0.1:11211
//
// Levels, most severe first. A line is written when its level is within the verbosity:
//   kError, kWarning  something failed or was refused, or a setting is not what was asked
//   kNotice           notable events: start (limits, listeners), stop, reloads, memory-limit
//                     changes, refused connections (rate-limited: LogLimiter)     default
//   kInfo             more detail: each refused connection, accept errors          -v
//   kDebug            per-connection events: accepted, closed                      -vv
// No line per request at any level (memcached's -vv command echo is not kept).
//
// Thread safety: everything here may be called from any thread. The verbosity is a relaxed
// atomic: CINCH_LOG costs one load when its level is off, and formats nothing.
#pragma once

#include <atomic>
#include <cstdint>

namespace cinch::log {

enum class Level : int { kError = 0, kWarning = 1, kNotice = 2, kInfo = 3, kDebug = 4 };

// 0 (default): errors, warnings, notices; 1 (-v): info too; 2 and more (-vv): debug too.
void SetVerbosity(int verbosity);
int Verbosity();

namespace internal {
extern std::atomic<int> verbosity;  // set through SetVerbosity only
}  // namespace internal

inline bool Enabled(Level level) {
  return static_cast<int>(level) <=
         static_cast<int>(Level::kNotice) + internal::verbosity.load(std::memory_order_relaxed);
}

// Writes one line (a newline is added; text past ~4 KiB is cut). Prefer CINCH_LOG, which
// skips the formatting when the level is off.
void Write(Level level, const char* format, ...) __attribute__((format(printf, 2, 3)));

// Lets one line through per interval, counting those held back, so that an event that can
// repeat thousands of times a second (a refused connection) costs a line a second at most.
class LogLimiter {
 public:
  explicit LogLimiter(int64_t interval_ms) : interval_ms_(interval_ms) {}
  // True when a line may be written now; *suppressed is then the number of events held back
  // since the last line. Otherwise counts this event as held back.
  bool Allow(int64_t now_ms, uint64_t* suppressed);
  // Allow(now) with the monotonic clock.
  bool Allow(uint64_t* suppressed);

 private:
  const int64_t interval_ms_;
  std::atomic<int64_t> next_ms_{INT64_MIN};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace cinch::log

#define CINCH_LOG(level, ...)                                                  \
  do {                                                                         \
    if (::cinch::log::Enabled(level)) ::cinch::log::Write(level, __VA_ARGS__); \
  } while (0)

#define CINCH_LOG_ERROR(...) CINCH_LOG(::cinch::log::Level::kError, __VA_ARGS__)
#define CINCH_LOG_WARNING(...) CINCH_LOG(::cinch::log::Level::kWarning, __VA_ARGS__)
#define CINCH_LOG_NOTICE(...) CINCH_LOG(::cinch::log::Level::kNotice, __VA_ARGS__)
#define CINCH_LOG_INFO(...) CINCH_LOG(::cinch::log::Level::kInfo, __VA_ARGS__)
#define CINCH_LOG_DEBUG(...) CINCH_LOG(::cinch::log::Level::kDebug, __VA_ARGS__)
