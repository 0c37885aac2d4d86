// Test data shared by the store's unit tests (store_test.cc, engine_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cinch::test {

// A deterministic, non-repeating filler so that a misplaced byte shows up as a mismatch.
inline std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

inline std::string Key(int i) { return "key:" + std::to_string(i); }

}  // namespace cinch::test
