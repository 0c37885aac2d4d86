// Listening sockets: TCP (IPv4 and IPv6) and unix stream sockets, non-blocking and close-on-exec,
// ready to be shared by every worker's epoll (EPOLLEXCLUSIVE wakes one worker per connection).
//
// Thread safety: Parse* and Open* are plain functions. Listeners::Close() may race with itself
// (the first caller closes); the fds must not be in use by then.
#pragma once

#include <atomic>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cinch/status.h"

namespace cinch::net {

// One TCP listen address in memcached's `-l` forms:
//   "127.0.0.1", "host.name", "::1" (a bare IPv6 address has no port), "[::1]", "*" (any),
//   and each with a port: "127.0.0.1:11311", "[::1]:11311", "*:11311".
struct ListenAddress {
  std::string host;  // "" : every local address (IPv4 and IPv6)
  int port = 0;      // -1: any free port
};

// Parses one address as above; `default_port` (the -p port) applies when it names none.
Status ParseListenAddress(std::string_view spec, int default_port, ListenAddress* out);

// Splits a `-l` argument at ',' and ';' (memcached accepts both), dropping empty parts.
std::vector<std::string> SplitListenList(std::string_view list);

// Binds every address `address.host` resolves to (for "": 0.0.0.0 and ::, the IPv6 socket
// IPV6_V6ONLY as memcached does) at `address.port` and listens, appending the sockets to *fds.
// Succeeds when at least one address was bound; a resolved address the host has no stack for
// is skipped. With port -1 the first socket picks a free port and the others reuse it.
// *bound_port is the port the first socket bound.
Status OpenTcpListeners(const ListenAddress& address, int backlog, std::vector<int>* fds,
                        int* bound_port);

// Binds a unix stream socket at `path`, replacing a stale socket file there (not any other
// kind of file), sets its permissions to `mask` and listens.
Status OpenUnixListener(const std::string& path, int mask, int backlog, int* fd);

class Listeners {
 public:
  struct Entry {
    int fd;
    bool is_unix;
  };
  Listeners() = default;
  Listeners(const Listeners&) = delete;
  Listeners& operator=(const Listeners&) = delete;
  ~Listeners() { Close(); }

  // Before any worker runs.
  void Add(int fd, bool is_unix) { entries_.push_back({fd, is_unix}); }
  void SetUnixPath(std::string path) { unix_path_ = std::move(path); }
  const std::vector<Entry>& entries() const { return entries_; }

  // Closes every socket and removes the unix socket file. Idempotent.
  void Close();

 private:
  std::vector<Entry> entries_;
  std::string unix_path_;
  std::atomic<bool> closed_{false};
};

}  // namespace cinch::net
