#include "server/auth_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

namespace cinch::server {

namespace {

constexpr size_t kMaxQuotaMiB = size_t{1} << 40;

Status LineError(size_t line, std::string_view why) {
  return Status::InvalidArgument("line " + std::to_string(line) + ": " + std::string(why));
}

// One line (without its '\n') into *e; the quota rule on the text after the last colon.
Status ParseLine(std::string_view line, size_t number, AuthEntry* e) {
  if (line.size() > kMaxAuthLine) {
    return LineError(number, "longer than " + std::to_string(kMaxAuthLine) + " bytes");
  }
  if (line.find('\0') != std::string_view::npos) return LineError(number, "holds a NUL byte");
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return LineError(number, "malformed entry, should be 'user:password'");
  }
  std::string_view password = line.substr(colon + 1);
  password = password.substr(0, password.find('\r'));  // memcached ends it at '\r' too
  e->user.assign(line.substr(0, colon));
  e->quota = 0;
  const size_t last = password.rfind(':');
  if (last != std::string_view::npos) {
    bool fits = false;
    if (ParseQuota(password.substr(last + 1), &e->quota, &fits)) {
      if (!fits || e->quota == 0) {
        return LineError(number, "quota must be 1 MiB or more and at most 2^40 MiB");
      }
      password = password.substr(0, last);
    }
  }
  e->password.assign(password);
  return Status::Ok();
}

}  // namespace

bool ParseQuota(std::string_view s, size_t* bytes, bool* fits) {
  size_t shift = 20;
  if (!s.empty() && (s.back() == 'g' || s.back() == 'G')) shift = 30;
  if (!s.empty() && (s.back() == 'g' || s.back() == 'G' || s.back() == 'm' || s.back() == 'M')) {
    s.remove_suffix(1);
  }
  if (s.empty()) return false;
  size_t n = 0;
  *fits = true;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (n > kMaxQuotaMiB) *fits = false;  // keep scanning: it is still a quota
    if (*fits) n = n * 10 + static_cast<size_t>(c - '0');
  }
  if (shift == 30) {
    if (n > kMaxQuotaMiB >> 10) *fits = false;
    n <<= 10;
  }
  if (n > kMaxQuotaMiB) *fits = false;
  *bytes = *fits ? n << 20 : 0;
  return true;
}

Status ParseAuthFile(std::string_view text, std::vector<AuthEntry>* out) {
  out->clear();
  std::unordered_set<std::string_view> users;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    AuthEntry e;
    Status s = ParseLine(line, number, &e);
    if (!s.ok()) return s;
    out->push_back(std::move(e));
  }
  for (const AuthEntry& e : *out) {
    if (!users.insert(e.user).second) {
      return Status::InvalidArgument("user '" + e.user + "' is named twice");
    }
  }
  return Status::Ok();
}

Status LoadAuthFile(const std::string& path, std::vector<AuthEntry>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::IoError("could not open auth file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("could not read auth file " + path);
  Status s = ParseAuthFile(text.str(), out);
  if (!s.ok()) return Status::InvalidArgument("auth file " + path + ": " + s.message());
  return Status::Ok();
}

}  // namespace cinch::server
