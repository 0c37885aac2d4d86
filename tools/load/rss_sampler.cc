#include "load/rss_sampler.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "load/connection.h"

namespace cinch::load {

uint64_t ReadRss(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::strtoull(line + 6, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kib * 1024;
}

void RssSampler::Start(pid_t pid, int period_ms) {
  if (pid <= 0) return;
  samples_.reserve(1 << 16);
  thread_ = std::thread([this, pid, period_ms] {
    uint64_t start = NowNs();
    auto next = std::chrono::steady_clock::now();
    while (!stop_.load(std::memory_order_relaxed)) {
      uint64_t rss = ReadRss(pid);
      if (rss == 0) break;  // the server is gone
      samples_.push_back({static_cast<double>(NowNs() - start) / 1e9, rss});
      if (rss > peak_) peak_ = rss;
      next += std::chrono::milliseconds(period_ms);
      std::this_thread::sleep_until(next);
    }
  });
}

void RssSampler::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::string RssSampler::WriteCsv(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return "cannot write " + path + ": " + std::strerror(errno);
  std::fprintf(f, "seconds,rss_bytes\n");
  for (const Sample& s : samples_) {
    std::fprintf(f, "%.3f,%llu\n", s.seconds, static_cast<unsigned long long>(s.rss_bytes));
  }
  std::fclose(f);
  return "";
}

}  // namespace cinch::load
