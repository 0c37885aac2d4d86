#include "buildcache/digest.h"

namespace cinch::buildcache {

namespace {

// The value of one hex digit, or -1.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool ParseHexDigest(std::string_view hex, Digest* out) {
  if (hex.size() != Digest::kHexChars) return false;
  std::array<uint8_t, Digest::kHashBytes> hash;
  for (size_t i = 0; i < hash.size(); ++i) {
    int high = HexValue(hex[2 * i]);
    int low = HexValue(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    hash[i] = static_cast<uint8_t>(high << 4 | low);
  }
  out->hash = hash;
  return true;
}

std::string HexDigest(const Digest& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(Digest::kHexChars, '\0');
  for (size_t i = 0; i < digest.hash.size(); ++i) {
    hex[2 * i] = kDigits[digest.hash[i] >> 4];
    hex[2 * i + 1] = kDigits[digest.hash[i] & 0xf];
  }
  return hex;
}

}  // namespace cinch::buildcache
