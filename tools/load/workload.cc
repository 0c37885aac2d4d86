#include "load/workload.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace cinch::load {
namespace {

constexpr char kKeyPrefix[] = "cl:";
constexpr size_t kKeyPrefixBytes = 3;
constexpr uint64_t kLengthSalt = 0x6c656e677468ULL;  // "length"

bool ParseU32(std::string_view s, uint32_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool ParseDouble(std::string_view s, double* out) {
  std::string str(s);
  char* end = nullptr;
  *out = std::strtod(str.c_str(), &end);
  return !str.empty() && end == str.c_str() + str.size();
}

double Zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

uint32_t ReadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

void FormatKey(uint32_t id, char* out) {
  std::memcpy(out, kKeyPrefix, kKeyPrefixBytes);
  char* p = out + kKeyBytes;
  for (size_t i = kKeyPrefixBytes; i < kKeyBytes; ++i) {
    *--p = static_cast<char>('0' + id % 10);
    id /= 10;
  }
}

std::string KeyDistribution::Parse(std::string_view spec, uint32_t count, KeyDistribution* out) {
  if (count == 0) return "key count must be positive";
  *out = KeyDistribution();
  out->count_ = count;
  if (spec == "uniform") return "";
  if (spec.substr(0, 5) != "zipf:") return "key distribution must be uniform or zipf:<theta>";
  double theta = 0;
  if (!ParseDouble(spec.substr(5), &theta) || theta <= 0 || theta >= 1) {
    return "zipf theta must be in (0, 1)";
  }
  out->theta_ = theta;
  out->zetan_ = Zeta(count, theta);
  double zeta2 = Zeta(2, theta);
  out->alpha_ = 1.0 / (1.0 - theta);
  out->eta_ = (1.0 - std::pow(2.0 / count, 1.0 - theta)) / (1.0 - zeta2 / out->zetan_);
  out->half_pow_theta_ = 1.0 + std::pow(0.5, theta);
  return "";
}

uint32_t KeyDistribution::Sample(Rng& rng) const {
  if (theta_ == 0) return static_cast<uint32_t>(rng.Below(count_));
  double u = rng.Unit();
  double uz = u * zetan_;
  uint64_t rank;
  if (uz < 1.0) {
    rank = 0;
  } else if (uz < half_pow_theta_) {
    rank = 1;
  } else {
    rank = static_cast<uint64_t>(count_ * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    if (rank >= count_) rank = count_ - 1;
  }
  // Spread the hot ranks: multiplication by a prime is a permutation of [0, count) unless the
  // prime divides count, which a uint32_t count below the prime cannot.
  return static_cast<uint32_t>((rank * 2654435761ULL) % count_);
}

std::string KeyDistribution::Describe() const {
  char buf[64];
  if (theta_ == 0) return "uniform";
  std::snprintf(buf, sizeof(buf), "zipf:%.2f", theta_);
  return buf;
}

std::string SizeDistribution::Parse(std::string_view spec, SizeDistribution* out) {
  *out = SizeDistribution();
  out->spec_ = std::string(spec);
  uint32_t lo = 0, hi = 0;
  if (spec == "mixed") {
    out->bands_ = {{32, 256, 0.6}, {257, 1024, 0.9}, {1025, 4096, 1.0}};
  } else if (spec.substr(0, 6) == "fixed:" && ParseU32(spec.substr(6), &lo)) {
    out->bands_ = {{lo, lo, 1.0}};
  } else if (spec.substr(0, 8) == "uniform:") {
    std::string_view range = spec.substr(8);
    size_t dash = range.find('-');
    if (dash == std::string_view::npos || !ParseU32(range.substr(0, dash), &lo) ||
        !ParseU32(range.substr(dash + 1), &hi) || hi < lo) {
      return "value sizes: uniform:<min>-<max> with min <= max";
    }
    out->bands_ = {{lo, hi, 1.0}};
  } else {
    return "value sizes must be fixed:<n>, uniform:<min>-<max> or mixed";
  }
  out->min_ = out->bands_.front().min;
  for (const Band& b : out->bands_) {
    if (b.min < kValueHeaderBytes) return "values must be at least 12 bytes (the check header)";
    if (b.max > (64u << 20)) return "values must be at most 64 MiB";
    out->max_ = std::max(out->max_, b.max);
  }
  return "";
}

uint32_t SizeDistribution::SizeOf(uint32_t key, uint32_t version) const {
  uint64_t h = Mix64(kLengthSalt ^ (uint64_t{key} << 32 | version));
  const Band* band = &bands_.back();
  if (bands_.size() > 1) {
    double u = static_cast<double>(h >> 40) * 0x1.0p-24;
    for (const Band& b : bands_) {
      if (u < b.weight) {
        band = &b;
        break;
      }
    }
    h = Mix64(h);
  }
  uint32_t span = band->max - band->min + 1;
  return band->min + static_cast<uint32_t>((h & 0xffffffff) * span >> 32);
}

double SizeDistribution::Mean() const {
  double mean = 0, prev = 0;
  for (const Band& b : bands_) {
    mean += (b.weight - prev) * (b.min + b.max) / 2.0;
    prev = b.weight;
  }
  return mean;
}

std::string SizeDistribution::Describe() const { return spec_; }

uint64_t ValueCodec::StreamSeed(uint32_t key, uint32_t version) const {
  return Mix64(uint64_t{nonce_} << 32 ^ Mix64(uint64_t{key} << 32 | version));
}

void ValueCodec::Write(uint32_t key, uint32_t version, char* out) const {
  uint32_t size = SizeOf(key, version);
  std::memcpy(out, &nonce_, 4);
  std::memcpy(out + 4, &key, 4);
  std::memcpy(out + 8, &version, 4);
  uint64_t state = StreamSeed(key, version);
  uint32_t i = kValueHeaderBytes;
  for (; i + 8 <= size; i += 8) {
    uint64_t word = Mix64(state++);
    std::memcpy(out + i, &word, 8);
  }
  if (i < size) {
    uint64_t word = Mix64(state);
    std::memcpy(out + i, &word, size - i);
  }
}

bool ValueCodec::Check(uint32_t key, std::string_view value, uint32_t* version,
                       const char** why) const {
  const char* reason = nullptr;
  if (value.size() < kValueHeaderBytes) {
    reason = "shorter than the header";
  } else if (ReadU32(value.data()) != nonce_) {
    reason = "written by another run (nonce)";
  } else if (ReadU32(value.data() + 4) != key) {
    reason = "value of another key";
  } else {
    *version = ReadU32(value.data() + 8);
    if (value.size() != SizeOf(key, *version)) {
      reason = "wrong length for its version";
    } else {
      uint64_t state = StreamSeed(key, *version);
      const char* p = value.data();
      uint32_t size = static_cast<uint32_t>(value.size());
      uint32_t i = kValueHeaderBytes;
      for (; i + 8 <= size && reason == nullptr; i += 8) {
        uint64_t word = Mix64(state++);
        if (std::memcmp(p + i, &word, 8) != 0) reason = "corrupt bytes";
      }
      if (reason == nullptr && i < size) {
        uint64_t word = Mix64(state);
        if (std::memcmp(p + i, &word, size - i) != 0) reason = "corrupt tail bytes";
      }
    }
  }
  if (why != nullptr) *why = reason;
  return reason == nullptr;
}

}  // namespace cinch::load
