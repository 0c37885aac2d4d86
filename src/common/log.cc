#include "common/log.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace cinch::log {

namespace internal {
std::atomic<int> verbosity{0};
}  // namespace internal

namespace {

const char* LevelName(Level level) {
  switch (level) {
    case Level::kError:
      return "error";
    case Level::kWarning:
      return "warning";
    case Level::kNotice:
      return "notice";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "?";
}

int64_t MonotonicMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// "2026-12-07T14:25:54.123Z" (UTC), into `out` of at least 32 bytes; returns its length.
size_t Timestamp(char* out, size_t size) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc;
  gmtime_r(&ts.tv_sec, &utc);
  size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &utc);
  int m = std::snprintf(out + n, size - n, ".%03ldZ", static_cast<long>(ts.tv_nsec / 1'000'000));
  return n + static_cast<size_t>(m > 0 ? m : 0);
}

}  // namespace

void SetVerbosity(int verbosity) {
  internal::verbosity.store(verbosity < 0 ? 0 : verbosity, std::memory_order_relaxed);
}

int Verbosity() { return internal::verbosity.load(std::memory_order_relaxed); }

void Write(Level level, const char* format, ...) {
  char line[4096];
  size_t n = Timestamp(line, sizeof line);
  int m = std::snprintf(line + n, sizeof line - n, " cinchd[%ld] %s: ", static_cast<long>(getpid()),
                        LevelName(level));
  n += static_cast<size_t>(m > 0 ? m : 0);
  va_list args;
  va_start(args, format);
  m = std::vsnprintf(line + n, sizeof line - n, format, args);
  va_end(args);
  if (m > 0) n = std::min(n + static_cast<size_t>(m), sizeof line - 1);  // cut: keep the '\0' slot
  line[n++] = '\n';
  // One write: a line is never split by another thread's (stderr is unbuffered anyway).
  const char* at = line;
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, at, n);
    if (w <= 0) return;  // stderr closed (a daemon's /dev/null never fails): nothing to do
    at += w;
    n -= static_cast<size_t>(w);
  }
}

bool LogLimiter::Allow(int64_t now_ms, uint64_t* suppressed) {
  int64_t next = next_ms_.load(std::memory_order_relaxed);
  if (now_ms >= next &&
      next_ms_.compare_exchange_strong(next, now_ms + interval_ms_, std::memory_order_relaxed)) {
    *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool LogLimiter::Allow(uint64_t* suppressed) { return Allow(MonotonicMs(), suppressed); }

}  // namespace cinch::log
