// The connections one thread drives, and the epoll instance that waits on them.
//
// Thread safety: none; a set belongs to one thread.
#pragma once

#include <sys/epoll.h>

#include <memory>
#include <string>
#include <vector>

#include "load/connection.h"

namespace cinch::load {

class ConnectionSet {
 public:
  ~ConnectionSet();
  // Opens `count` connections. Returns "" or an error message.
  std::string Open(const sockaddr_in& address, Protocol protocol, int count,
                   uint32_t max_inflight, uint32_t max_value);
  size_t size() const { return conns_.size(); }
  Connection& operator[](size_t i) { return *conns_[i]; }
  uint64_t Inflight() const;

  // Sends what every connection has queued. Returns "" or the first error.
  std::string SendAll();
  // Waits up to timeout_ns for replies and hands each to on_reply (see Connection::Receive).
  // Returns "" or the first error.
  template <typename F>
  std::string Poll(int64_t timeout_ns, F&& on_reply);

 private:
  std::vector<std::unique_ptr<Connection>> conns_;
  int epoll_fd_ = -1;
  epoll_event events_[64];
};

template <typename F>
std::string ConnectionSet::Poll(int64_t timeout_ns, F&& on_reply) {
  timespec timeout{static_cast<time_t>(timeout_ns / 1000000000),
                   static_cast<long>(timeout_ns % 1000000000)};
  int n = epoll_pwait2(epoll_fd_, events_, 64, &timeout, nullptr);
  for (int i = 0; i < n; ++i) {
    Connection& c = *conns_[events_[i].data.u32];
    if ((events_[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c.Receive(on_reply)) {
      return c.error();
    }
  }
  return "";
}

}  // namespace cinch::load
