#include "server/memory_governor.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "common/log.h"
#include "common/units.h"

namespace cinch::server {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// PSI triggers: wake when tasks stall on memory for 10 % of a window (MemoryGovernor::
// kPsiShare), 1 s, else 2 s (unprivileged users on recent kernels need a multiple of 2 s).
// Where neither is accepted (no PSI triggers: EINVAL on some VMs' kernels), cinchd reads the
// stall total every interval instead.
constexpr const char* kPsiTriggers[] = {"some 100000 1000000", "some 200000 2000000"};

}  // namespace

// --- PressureWatcher ---

PressureWatcher::PressureWatcher(const MemorySources* sources, bool triggers) : sources_(sources) {
  if (triggers && !sources_->psi_path().empty()) {
    for (const char* trigger : kPsiTriggers) {
      // One trigger per open file: a refused write leaves the file without one.
      const int fd = open(sources_->psi_path().c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) break;
      if (write(fd, trigger, std::strlen(trigger) + 1) >= 0) {
        trigger_fd_ = fd;
        break;
      }
      close(fd);
    }
  }
  if (std::optional<PsiReading> psi = sources_->ReadPsi()) last_psi_total_ = psi->some_total_us;
  last_events_ = sources_->ReadMemoryEvents();
}

PressureWatcher::~PressureWatcher() {
  if (trigger_fd_ >= 0) close(trigger_fd_);
}

bool PressureWatcher::Wait(int timeout_ms, int stop_fd) {
  pollfd fds[2] = {{stop_fd, POLLIN, 0}, {trigger_fd_, POLLPRI, 0}};
  const int n = poll(fds, trigger_fd_ >= 0 ? 2 : 1, timeout_ms);
  if (n <= 0 || trigger_fd_ < 0) return false;
  if (fds[1].revents & (POLLERR | POLLNVAL)) {  // the file went away: read totals instead
    close(trigger_fd_);
    trigger_fd_ = -1;
    return false;
  }
  return (fds[1].revents & POLLPRI) != 0;
}

bool PressureWatcher::Check(bool fired, int64_t elapsed_ms) {
  bool pressure = fired;
  if (std::optional<PsiReading> psi = sources_->ReadPsi()) {
    if (last_psi_total_ && psi->some_total_us >= *last_psi_total_) {
      const double stalled_us = static_cast<double>(psi->some_total_us - *last_psi_total_);
      pressure |= elapsed_ms > 0 &&
                  stalled_us >= MemoryGovernor::kPsiShare * static_cast<double>(elapsed_ms) * 1000;
    }
    last_psi_total_ = psi->some_total_us;
  } else if (std::optional<MemInfo> info = sources_->ReadMemInfo()) {
    pressure |= info->available * 100 < info->total * MemoryGovernor::kMemAvailablePercent;
  }
  if (std::optional<MemoryEvents> events = sources_->ReadMemoryEvents()) {
    if (last_events_) {
      pressure |= events->high > last_events_->high || events->max > last_events_->max;
    }
    last_events_ = events;
  }
  return pressure;
}

std::string PressureWatcher::Describe() const {
  std::string what;
  if (trigger_fd_ >= 0) {
    what = "PSI trigger on " + sources_->psi_path();
  } else if (!sources_->psi_path().empty()) {
    what = "PSI " + sources_->psi_path();
  } else {
    what = "MemAvailable";
  }
  if (last_events_) what += " and memory.events";
  return what;
}

// --- MemoryGovernor ---

size_t MemoryGovernor::CgroupShare(uint64_t cgroup_limit) {
  const uint64_t margin = std::max<uint64_t>(cgroup_limit / 16, kCgroupMarginMin);
  return cgroup_limit > margin ? static_cast<size_t>(cgroup_limit - margin) : 0;
}

MemoryGovernor::MemoryGovernor(const Config& config, Store* store)
    : config_(config),
      store_(store),
      sources_(config.roots),
      limit_(config.ceiling),
      source_("-m") {
  if (config_.pressure) watcher_ = std::make_unique<PressureWatcher>(&sources_, config_.triggers);
}

MemoryGovernor::~MemoryGovernor() { Stop(); }

void MemoryGovernor::Start() {
  Evaluate(Inputs{sources_.CgroupLimit(), false, NowMs()});
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { Run(); });
}

void MemoryGovernor::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  ssize_t n = write(stop_fd_, &one, sizeof one);
  (void)n;
  thread_.join();
  close(stop_fd_);
  stop_fd_ = -1;
}

void MemoryGovernor::Run() {
  int64_t last = NowMs();
  for (;;) {
    bool fired = false;
    if (watcher_ != nullptr) {
      fired = watcher_->Wait(config_.interval_ms, stop_fd_);
    } else {
      pollfd fd{stop_fd_, POLLIN, 0};
      poll(&fd, 1, config_.interval_ms);
    }
    pollfd stop{stop_fd_, POLLIN, 0};
    if (poll(&stop, 1, 0) > 0) return;
    const int64_t now = NowMs();
    const bool pressure = watcher_ != nullptr && watcher_->Check(fired, now - last);
    last = now;
    Evaluate(Inputs{sources_.CgroupLimit(), pressure, now});
  }
}

void MemoryGovernor::SetCacheMemlimit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_memlimit_ = bytes;
  Apply();
}

void MemoryGovernor::Evaluate(const Inputs& in) {
  std::lock_guard<std::mutex> lock(mu_);
  cgroup_ = in.cgroup_limit;
  cgroup_limit_.store(in.cgroup_limit.value_or(0), std::memory_order_relaxed);
  if (config_.pressure) UpdatePressureTarget(in);
  Apply();
}

// Under pressure: 1/8 off the current limit, at most every kShrinkSpacingMs. Once it has been
// gone for kCalmMs: 1/16 of -m back every kGrowSpacingMs, until the target reaches -m and
// stops counting.
void MemoryGovernor::UpdatePressureTarget(const Inputs& in) {
  if (in.pressure) {
    last_pressure_ms_ = in.now_ms;
    if (in.now_ms - last_shrink_ms_ < kShrinkSpacingMs || pressure_at_floor_) return;
    const size_t current = limit_.load(std::memory_order_relaxed);
    const size_t next = current - current / kShrinkDivisor;
    if (next >= pressure_target_) return;
    pressure_target_ = next;
    last_shrink_ms_ = in.now_ms;
    pressure_shrinks_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (pressure_target_ == SIZE_MAX || in.now_ms - last_pressure_ms_ < kCalmMs ||
      in.now_ms - last_grow_ms_ < kGrowSpacingMs) {
    return;
  }
  pressure_target_ += config_.ceiling / kGrowDivisor;
  pressure_at_floor_ = false;
  last_grow_ms_ = in.now_ms;
  pressure_grows_.fetch_add(1, std::memory_order_relaxed);
  if (pressure_target_ >= config_.ceiling) pressure_target_ = SIZE_MAX;
}

// REQUIRES: mu_ held.
void MemoryGovernor::Apply() {
  struct Bound {
    size_t bytes;
    const char* name;
  };
  const Bound bounds[] = {
      {config_.ceiling, "-m"},
      {cache_memlimit_ != 0 ? cache_memlimit_ : SIZE_MAX, "cache_memlimit"},
      {cgroup_ ? CgroupShare(*cgroup_) : SIZE_MAX, "cgroup"},
      {pressure_target_, "pressure"},
  };
  Bound least = bounds[0];
  for (const Bound& b : bounds) {
    if (b.bytes < least.bytes) least = b;
  }
  const size_t before = limit_.load(std::memory_order_relaxed);
  const char* before_source = source_.load(std::memory_order_relaxed);
  if (least.bytes == before && std::strcmp(least.name, before_source) == 0 && !first_) return;
  const size_t store_before = store_->GetStats().memory_limit;
  store_->SetMemoryLimit(least.bytes > config_.fixed ? least.bytes - config_.fixed : 0);
  const size_t store_after = store_->GetStats().memory_limit;
  pressure_at_floor_ = false;
  if (std::strcmp(least.name, "pressure") == 0 && config_.fixed + store_after > least.bytes) {
    // The store is as small as it gets: pressure cannot take the limit lower.
    pressure_target_ = least.bytes = config_.fixed + store_after;
    pressure_at_floor_ = true;
  }
  limit_.store(least.bytes, std::memory_order_relaxed);
  source_.store(least.name, std::memory_order_relaxed);
  const bool quiet = first_ && least.bytes == config_.ceiling;  // -m, as the start line says
  first_ = false;
  if (quiet || (least.bytes == before && store_after == store_before &&
                std::strcmp(least.name, before_source) == 0)) {
    return;
  }
  std::string why = least.name;
  if (std::strcmp(least.name, "cgroup") == 0) {
    const std::string& name = sources_.cgroup_name();
    why = (name.empty() ? "cgroup" : name) + " limit " + Mib(*cgroup_) + " less its margin";
  }
  CINCH_LOG_NOTICE("memory limit %s (%s), was %s; store %s, was %s", Mib(least.bytes).c_str(),
                   why.c_str(), Mib(before).c_str(), Mib(store_after).c_str(),
                   Mib(store_before).c_str());
}

}  // namespace cinch::server
