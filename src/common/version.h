// The version of cinch, held here and nowhere else: cinchd's -V and -h, the `version` command and
// `stats` all print it from these constants.
//
// The server reports memcached's version first ("1.6.18-cinch-0.1.0"): clients and tools that
// parse the version (to choose features, as some do for meta commands) see the memcached release
// whose protocol cinchd follows, and the tail tells them it is cinch.
//
// The macros exist only so that kServerVersion can be joined at compile time; use the constants
// (string_views of literals, so data() is NUL-terminated for printf).
#pragma once

#include <string_view>

#define CINCH_VERSION_STRING "0.1.0"
#define CINCH_MEMCACHED_VERSION_STRING "1.6.18"

namespace cinch {

// cinch's own release.
inline constexpr std::string_view kCinchVersion = CINCH_VERSION_STRING;
// The memcached release whose protocol and command line cinchd follows.
inline constexpr std::string_view kMemcachedVersion = CINCH_MEMCACHED_VERSION_STRING;
// What the server answers to `version` and shows as `STAT version`.
inline constexpr std::string_view kServerVersion =
    CINCH_MEMCACHED_VERSION_STRING "-cinch-" CINCH_VERSION_STRING;

}  // namespace cinch
