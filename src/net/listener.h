// Listening sockets: TCP (IPv4) and unix stream sockets, non-blocking and close-on-exec, ready
// to be shared by every worker's epoll (EPOLLEXCLUSIVE wakes one worker per connection).
//
// Thread safety: Open* are plain functions. Listeners::Close() may race with itself (the first
// caller closes); the fds must not be in use by then.
#pragma once

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "cinch/status.h"

namespace cinch::net {

// Binds `address` ("" or "0.0.0.0": any; a dotted quad or a host name resolving to IPv4) and
// `port` (-1: any free port) and listens. On success *fd is the socket and *bound_port the
// port actually bound.
Status OpenTcpListener(const std::string& address, int port, int backlog, int* fd, int* bound_port);

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
