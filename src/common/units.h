// Sizes written for people, in log lines and error messages ("memory limit 61.4 MiB").
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace cinch {

// `bytes` in MiB with one decimal: "61.4 MiB". UINT64_MAX, which limits use for "no limit"
// (SIZE_MAX on the 64-bit targets cinch builds for), reads "none".
inline std::string Mib(uint64_t bytes) {
  if (bytes == UINT64_MAX) return "none";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace cinch
