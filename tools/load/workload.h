// What cinch_load sends: key names, key distributions, value sizes and value bytes.
//
// Every value is a pure function of (run nonce, key id, version): its length comes from the
// size distribution seeded by a hash of (key id, version), and its bytes are
//
//   +-------+--------+---------+--------------------------------------------+
//   | nonce | key id | version | SplitMix64 stream seeded by all three ...   |
//   |  4 B  |  4 B   |   4 B   | (length - 12) bytes                         |
//   +-------+--------+---------+--------------------------------------------+
//
// so a value read back is checked byte for byte without keeping a copy: a value served for
// the wrong key, from an earlier run, of a stale version, truncated or torn all show up.
//
// Thread safety: every class here is immutable after construction (samplers take the caller's
// Rng), so one instance may be shared by all threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cinch::load {

// The value header; values are never shorter than this.
inline constexpr uint32_t kValueHeaderBytes = 12;
// Keys are "cl:" + the zero-padded decimal key id: always this long.
inline constexpr size_t kKeyBytes = 13;

inline uint64_t Mix64(uint64_t x) {  // SplitMix64's finalizer: a good 64-bit bijection.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A small, fast generator (SplitMix64). Not shared between threads.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix64(state_++); }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Below(uint64_t n) { return static_cast<uint64_t>((__uint128_t{Next()} * n) >> 64); }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t state_;
};

// Writes the key of `id` (kKeyBytes bytes) to `out`.
void FormatKey(uint32_t id, char* out);

// Which key a request uses: uniform over [0, count) or Zipf(theta) with the hot ranks spread
// over the key space by a fixed permutation (YCSB's "scrambled" Zipfian).
class KeyDistribution {
 public:
  // spec: "uniform" or "zipf:<theta>" (0 < theta < 1, e.g. zipf:0.99). Returns an error
  // message, or "" on success.
  static std::string Parse(std::string_view spec, uint32_t count, KeyDistribution* out);
  uint32_t Sample(Rng& rng) const;
  uint32_t count() const { return count_; }
  std::string Describe() const;

 private:
  uint32_t count_ = 1;
  double theta_ = 0;  // 0 = uniform
  // Gray et al. "Quickly generating billion-record synthetic databases" (the YCSB sampler).
  double zetan_ = 0, alpha_ = 0, eta_ = 0, half_pow_theta_ = 0;
};

// How long a value is, as a function of (key id, version).
class SizeDistribution {
 public:
  // spec: "fixed:<n>", "uniform:<min>-<max>" or "mixed" (up to 4 KiB: 60 % 32-256 B,
  // 30 % 257-1024 B, 10 % 1025-4096 B, uniform inside each band). Sizes below
  // kValueHeaderBytes are refused. Returns an error message, or "" on success.
  static std::string Parse(std::string_view spec, SizeDistribution* out);
  uint32_t SizeOf(uint32_t key, uint32_t version) const;
  uint32_t min() const { return min_; }
  uint32_t max() const { return max_; }
  double Mean() const;
  std::string Describe() const;

 private:
  struct Band {
    uint32_t min, max;
    double weight;  // cumulative, the last is 1
  };
  std::vector<Band> bands_;
  uint32_t min_ = 0, max_ = 0;
  std::string spec_;
};

// The bytes of one value (see the diagram at the top).
class ValueCodec {
 public:
  // Versions with kAltSizes set take their length from `alt_sizes` (a workload whose value
  // sizes change half way, like RAMCloud's W2-W8); the others from `sizes`.
  static constexpr uint32_t kAltSizes = 0x80000000u;
  ValueCodec(uint32_t nonce, const SizeDistribution* sizes,
             const SizeDistribution* alt_sizes = nullptr)
      : nonce_(nonce), sizes_(sizes), alt_sizes_(alt_sizes != nullptr ? alt_sizes : sizes) {}
  uint32_t SizeOf(uint32_t key, uint32_t version) const {
    return (version & kAltSizes ? alt_sizes_ : sizes_)->SizeOf(key, version);
  }
  // Writes the value of (key, version), SizeOf(key, version) bytes, to `out`.
  void Write(uint32_t key, uint32_t version, char* out) const;
  // Checks `value` as the value of `key`: on success stores its version and returns true.
  // On failure returns false and, if `why` is not null, points it at a static reason.
  bool Check(uint32_t key, std::string_view value, uint32_t* version, const char** why) const;

 private:
  uint64_t StreamSeed(uint32_t key, uint32_t version) const;

  uint32_t nonce_;
  const SizeDistribution* sizes_;
  const SizeDistribution* alt_sizes_;
};

}  // namespace cinch::load
