// The text protocol's authentication exchange (memcached's -Y), parsed exactly as memcached
// 1.6.18 does before a connection has authenticated (try_read_command_asciiauth):
//
//   set <key> <flags> <exptime> <bytes> [anything]\n      key, flags, exptime ignored
//   <bytes> bytes of data, then \r\n                      data: "<user> <password>[ ...]"
//
// The command line is split on spaces only (runs of spaces count once; a '\r' before the '\n'
// stays on the last word). Any line that is not such a set is one kUnauthenticated reply. The
// data, cut at a NUL byte as memcached's C string is, is split on spaces too: its first word
// is the user and its second the password (more words are ignored; fewer is kBadFormat). So a
// password with a space cannot authenticate this way (SASL PLAIN can).
//
// Pure: bytes in, a verdict and the bytes it used out; no allocation.
#pragma once

#include <cstddef>
#include <string_view>

namespace cinch::proto {

enum class AuthStatus {
  kNeedMore,         // consumed nothing; call again with more input
  kClose,            // no line end in 2048 bytes, or a data block over max_data: close
  kUnauthenticated,  // not an authentication set (reply kUnauthenticated)
  kBadTermination,   // the data block does not end in \r\n (reply kAuthBadTermination)
  kBadFormat,        // the data is not "<user> <password>" (reply kAuthBadFormat)
  kCredentials,      // user and password are set: check them
};

struct AuthParse {
  AuthStatus status = AuthStatus::kNeedMore;
  size_t consumed = 0;
  std::string_view user;  // views into the input (kCredentials only)
  std::string_view password;
};

// memcached closes a connection whose input has no '\n' in more than this many bytes.
inline constexpr size_t kAuthMaxLine = 2048;

// Parses one request at the start of `input`. A data block longer than max_data bytes closes
// the connection (memcached would wait for it in a buffer that cannot hold it).
AuthParse ParseTextAuth(std::string_view input, size_t max_data);

}  // namespace cinch::proto
