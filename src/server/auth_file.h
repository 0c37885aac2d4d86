// memcached's authentication file (-Y): one `user:password` a line, read the way memcached
// 1.6.18 reads it (authfile.c), plus cinch's tenant quota: `user:password:QUOTA`.
//
//   line     := user ':' password [':' quota] ['\r' anything] '\n'?
//   user     := everything before the FIRST colon (may be empty, as in memcached)
//   password := the rest of the line up to the first '\r' or '\n'
//   quota    := the text after the LAST colon, only when it matches ^[0-9]+[mMgG]?$
//               (MiB without a suffix, like -m; g/G: GiB); it is cut off the password then.
//
// So `a:b:c` is user "a" with password "b:c" (memcached splits at the first colon and so does
// cinch), while `a:b:16` is user "a", password "b", quota 16 MiB. A line without a colon
// (a blank line included) makes the whole file invalid, as in memcached; there are no comments.
// Differences from memcached, each to refuse what memcached would silently mangle: memcached
// keeps only the first 8 entries and splits lines over 255 bytes; cinch takes any number of
// entries and refuses a line longer than kMaxLine, a NUL byte, a user named twice, and a quota
// of 0 or beyond 2^40 MiB.
//
// Pure: bytes in, entries or an error out (fuzzed by fuzz/auth_file_fuzzer.cc).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "cinch/status.h"

namespace cinch::server {

struct AuthEntry {
  std::string user;
  std::string password;
  size_t quota = 0;  // bytes; 0: no quota (the user shares the default keyspace)
};

// memcached's MAX_ENTRY_LEN is 256 bytes with the newline and fgets' terminator.
inline constexpr size_t kMaxAuthLine = 254;

// Whether `s` is a quota (^[0-9]+[mMgG]?$); *bytes gets its size when it also fits.
bool ParseQuota(std::string_view s, size_t* bytes, bool* fits);

// Parses the contents of an auth file. On error, the message names the line (1-based).
Status ParseAuthFile(std::string_view text, std::vector<AuthEntry>* out);

// Reads and parses the file at `path`; an error names the file.
Status LoadAuthFile(const std::string& path, std::vector<AuthEntry>* out);

}  // namespace cinch::server
