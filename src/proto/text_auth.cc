#include "proto/text_auth.h"

#include <cstdint>

namespace cinch::proto {

namespace {

// memcached's tokenize_command on a line: words separated by runs of ' '. Returns how many of
// the first `max` words it found.
size_t Words(std::string_view s, std::string_view* words, size_t max) {
  size_t n = 0;
  size_t i = 0;
  while (i < s.size() && n < max) {
    while (i < s.size() && s[i] == ' ') ++i;
    const size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) words[n++] = s.substr(start, i - start);
  }
  return n;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// memcached's safe_strtoul: strtoul (leading space, a sign, decimal digits) that must end at
// the word's end or a space, without overflow, refusing a negative number; truncated to 32 bits.
bool SafeStrtoul(std::string_view s, uint32_t* out) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  bool minus = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) minus = s[i++] == '-';
  const size_t digits = i;
  uint64_t v = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // ERANGE
    v = v * 10 + d;
  }
  if (i == digits) return false;
  if (i < s.size() && !IsSpace(s[i])) return false;
  if (minus) v = 0 - v;
  if (static_cast<int64_t>(v) < 0 && minus) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

AuthParse ParseTextAuth(std::string_view input, size_t max_data) {
  AuthParse r;
  if (input.size() < 2) return r;
  const size_t nl = input.find('\n');
  if (nl == std::string_view::npos) {
    if (input.size() > kAuthMaxLine) r.status = AuthStatus::kClose;
    return r;
  }
  std::string_view words[5];
  uint32_t size = 0;
  if (Words(input.substr(0, nl), words, 5) < 5 || words[0] != "set" ||
      !SafeStrtoul(words[4], &size)) {
    r.status = AuthStatus::kUnauthenticated;
    r.consumed = nl + 1;
    return r;
  }
  if (size > max_data) {
    r.status = AuthStatus::kClose;
    return r;
  }
  const size_t block = size_t{size} + 2;
  if (input.size() - (nl + 1) < block) return r;
  r.consumed = nl + 1 + block;
  std::string_view data = input.substr(nl + 1, block);
  if (data.substr(size) != "\r\n") {
    r.status = AuthStatus::kBadTermination;
    return r;
  }
  data = data.substr(0, size);
  data = data.substr(0, data.find('\0'));
  std::string_view credentials[2];
  if (Words(data, credentials, 2) < 2) {
    r.status = AuthStatus::kBadFormat;
    return r;
  }
  r.status = AuthStatus::kCredentials;
  r.user = credentials[0];
  r.password = credentials[1];
  return r;
}

}  // namespace cinch::proto
