#include "proto/http_auth.h"

#include "proto/base64.h"

namespace cinch::proto {

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool IsBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/' || c == '=';
}

}  // namespace

bool ParseBasicAuth(std::string_view header, char* buffer, size_t buffer_size,
                    BasicCredentials* out) {
  constexpr std::string_view kScheme = "basic";
  if (header.size() <= kScheme.size() || !EqualsIgnoreCase(header.substr(0, 5), kScheme) ||
      header[5] != ' ') {
    return false;
  }
  std::string_view token = header.substr(6);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return false;
  // Strict: the shared decoder skips foreign bytes (memcached's way, for meta keys).
  for (char c : token) {
    if (!IsBase64Char(c)) return false;
  }
  if (buffer_size < BasicAuthBufferSize(token.size())) return false;
  const size_t n = Base64Decode(token, buffer, buffer_size);
  if (n == 0) return false;
  const std::string_view decoded(buffer, n);
  const size_t colon = decoded.find(':');
  if (colon == std::string_view::npos) return false;
  out->user = decoded.substr(0, colon);
  out->password = decoded.substr(colon + 1);
  return true;
}

}  // namespace cinch::proto
