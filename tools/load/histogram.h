// A log-bucketed latency histogram (HdrHistogram-like): each power of two is split into 64
// linear sub-buckets, so a recorded value is known to within 1/64 (1.6 %) of itself. Fixed
// size, no allocation after construction, so Record() is safe in the hot loop.
//
// Thread safety: none; each thread keeps its own and Merge()s them at the end.
#pragma once

#include <array>
#include <cstdint>

namespace cinch::load {

class Histogram {
 public:
  void Record(uint64_t value_ns);
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  double Mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The smallest bucket bound at or above the given fraction of samples (0 < q <= 1);
  // 0 if empty. Never above max().
  uint64_t Percentile(double q) const;

 private:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits + 1) * kSub;
  static int Index(uint64_t v);
  static uint64_t UpperBound(int index);

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

}  // namespace cinch::load
