// Samples another process's resident set size (VmRSS in /proc/<pid>/status) every period on
// its own thread, so memory can be plotted over a run and its peak reported.
//
// Thread safety: Start/Stop and the accessors from one thread; the sampler thread only
// appends to its own vector until Stop() joins it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace cinch::load {

// VmRSS of `pid` in bytes, or 0 if it cannot be read.
uint64_t ReadRss(pid_t pid);

class RssSampler {
 public:
  struct Sample {
    double seconds;  // since Start()
    uint64_t rss_bytes;
  };
  ~RssSampler() { Stop(); }
  // pid <= 0: does nothing.
  void Start(pid_t pid, int period_ms);
  void Stop();
  uint64_t peak() const { return peak_; }
  const std::vector<Sample>& samples() const { return samples_; }
  // Writes "seconds,rss_bytes" lines with a header. Returns "" or an error message.
  std::string WriteCsv(const std::string& path) const;

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<Sample> samples_;
  uint64_t peak_ = 0;
};

}  // namespace cinch::load
