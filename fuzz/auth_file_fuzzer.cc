// libFuzzer target: what an authenticating server reads from outside, the auth file
// (server::ParseAuthFile) and the text protocol's authentication exchange
// (proto::ParseTextAuth).
//
// Input layout:  [selector] [bytes...]
// selector even: the bytes are an auth file. A parsed file has one entry per line, users
//   without ':' and unique, passwords without '\r' or '\n', quotas 0 or whole MiB; written
//   back as user:password[:quota] it parses to the same entries.
// selector odd: the bytes are a connection's input before authentication, with max_data
//   selector / 2 * 16. Consumed bytes stay within the input (none for kNeedMore and kClose);
//   user and password are non-empty views inside the input without spaces or NULs; the input
//   cut right after what a verdict consumed (2 bytes or more) gives the same verdict.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "proto/text_auth.h"
#include "server/auth_file.h"

namespace {

using cinch::proto::AuthParse;
using cinch::proto::AuthStatus;
using cinch::proto::ParseTextAuth;
using cinch::server::AuthEntry;
using cinch::server::ParseAuthFile;

bool Inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

std::string Write(const std::vector<AuthEntry>& entries) {
  std::string text;
  for (const AuthEntry& e : entries) {
    text += e.user + ":" + e.password;
    const size_t mib = e.quota >> 20;
    if (e.quota != 0)
      text += mib % 1024 == 0 ? ":" + std::to_string(mib / 1024) + "g" : ":" + std::to_string(mib);
    text += "\n";
  }
  return text;
}

void CheckAuthFile(std::string_view text) {
  std::vector<AuthEntry> entries;
  if (!ParseAuthFile(text, &entries).ok()) return;
  size_t lines = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' || i + 1 == text.size()) ++lines;
  }
  FUZZ_CHECK(entries.size() == lines);
  for (size_t i = 0; i < entries.size(); ++i) {
    const AuthEntry& e = entries[i];
    FUZZ_CHECK(e.user.find(':') == std::string::npos);
    FUZZ_CHECK(e.user.find('\n') == std::string::npos);
    FUZZ_CHECK(e.password.find_first_of("\r\n") == std::string::npos);
    FUZZ_CHECK(e.quota % (size_t{1} << 20) == 0);
    for (size_t j = 0; j < i; ++j) FUZZ_CHECK(entries[j].user != e.user);
  }
  std::vector<AuthEntry> again;
  FUZZ_CHECK(ParseAuthFile(Write(entries), &again).ok());
  FUZZ_CHECK(again.size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    FUZZ_CHECK(again[i].user == entries[i].user);
    FUZZ_CHECK(again[i].password == entries[i].password);
    FUZZ_CHECK(again[i].quota == entries[i].quota);
  }
}

void CheckTextAuth(std::string_view input, size_t max_data) {
  const AuthParse a = ParseTextAuth(input, max_data);
  FUZZ_CHECK(a.consumed <= input.size());
  if (a.status == AuthStatus::kNeedMore || a.status == AuthStatus::kClose) {
    FUZZ_CHECK(a.consumed == 0);
    return;
  }
  FUZZ_CHECK(a.consumed > 0);
  if (a.status == AuthStatus::kCredentials) {
    for (std::string_view s : {a.user, a.password}) {
      FUZZ_CHECK(!s.empty() && Inside(s, input.substr(0, a.consumed)));
      FUZZ_CHECK(s.find(' ') == std::string_view::npos);
      FUZZ_CHECK(s.find('\0') == std::string_view::npos);
    }
  }
  // A lone "\n" waits for a second byte, as memcached's does (it parses from 2 bytes on).
  if (a.consumed < 2) return;
  const std::string cut(input.substr(0, a.consumed));  // its own buffer: ASan sees overreads
  const AuthParse b = ParseTextAuth(cut, max_data);
  FUZZ_CHECK(b.status == a.status && b.consumed == a.consumed);
  if (a.status == AuthStatus::kCredentials) {
    FUZZ_CHECK(b.user == a.user && b.password == a.password);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (selector % 2 == 0) {
    CheckAuthFile(bytes);
  } else {
    CheckTextAuth(bytes, size_t{selector / 2u} * 16);
  }
  return 0;
}
