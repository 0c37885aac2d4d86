// The only bytes the network layer itself writes to clients: refusals of new connections. Every
// other reply comes from a Session. Kept in one place so they can be matched by tests.
#pragma once

#include <string_view>

namespace cinch::net {

inline constexpr std::string_view kRefuseTooManyConnections = "ERROR Too many open connections\r\n";
inline constexpr std::string_view kRefuseOutOfMemory = "SERVER_ERROR out of memory\r\n";

}  // namespace cinch::net
