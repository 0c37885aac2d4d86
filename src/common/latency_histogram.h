// Request latencies counted in log-spaced buckets, cheap enough to record on every request:
// bucket i holds latencies of at most 2^i microseconds (1 µs, 2 µs, ... 2^20 µs ~ 1.05 s), and
// one more bucket those above. Finding the bucket is a division and a bit-width; recording is
// three relaxed loads and stores, no lock and no read-modify-write.
//
// Thread safety: one thread records into a histogram (its owner: a worker thread); any thread
// may read it (Add into a LatencySnapshot) at the same time and sees each count at some recent
// value. Counts only grow.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>

namespace cinch {

class LatencyHistogram {
 public:
  static constexpr int kBounds = 21;            // finite upper bounds: 2^0 .. 2^20 µs
  static constexpr int kBuckets = kBounds + 1;  // and the bucket above the last

  // The bucket of a latency of `nanos`: the least i with nanos <= 1000 * 2^i, else kBounds.
  static int BucketOf(uint64_t nanos) {
    // Rounded up (the bound is inclusive), without the overflow of (nanos + 999) / 1000.
    const uint64_t micros = nanos / 1000 + (nanos % 1000 != 0);
    if (micros <= 1) return 0;
    const int i = std::bit_width(micros - 1);
    return i < kBounds ? i : kBounds;
  }
  // Bucket i's upper bound, in seconds (i < kBounds).
  static constexpr double BoundSeconds(int i) {
    return static_cast<double>(uint64_t{1} << i) / 1e6;
  }

  // Owner thread only.
  void Record(uint64_t nanos) {
    Bump(counts_[BucketOf(nanos)], 1);
    Bump(sum_nanos_, nanos);
  }

 private:
  friend struct LatencySnapshot;
  static void Bump(std::atomic<uint64_t>& c, uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> sum_nanos_{0};
};

// The clock latencies are measured with (steady: never jumps with the wall clock).
inline uint64_t MonotonicNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Histograms added up (e.g. every worker's).
struct LatencySnapshot {
  std::array<uint64_t, LatencyHistogram::kBuckets> counts{};  // per bucket, not cumulative
  uint64_t sum_nanos = 0;

  void Add(const LatencyHistogram& h) {
    for (int i = 0; i < LatencyHistogram::kBuckets; ++i) {
      counts[i] += h.counts_[i].load(std::memory_order_relaxed);
    }
    sum_nanos += h.sum_nanos_.load(std::memory_order_relaxed);
  }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    return n;
  }
};

}  // namespace cinch
