// The connections one thread drives, and what waits on them: epoll, or an io_uring.
//
// With epoll, SendAll() calls send() on each connection with queued bytes and Poll() waits
// for readiness, then recv()s: at least two system calls per request at pipeline depth 1.
// With io_uring, SendAll() only queues send requests and Poll() keeps one receive in flight
// per connection; one io_uring_enter() submits them all and waits for completions, so the
// generator makes about one system call per round of replies however many connections it
// drives. That keeps the generator from being the bottleneck of a non-pipelined benchmark
// (both sides of loopback are bound by system calls on a 2-core VM).
//
// Thread safety: none; a set belongs to one thread.
#pragma once

#include <liburing.h>
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "load/connection.h"

namespace cinch::load {

enum class IoMode { kEpoll, kUring };

class ConnectionSet {
 public:
  ConnectionSet() = default;
  ConnectionSet(const ConnectionSet&) = delete;
  ConnectionSet& operator=(const ConnectionSet&) = delete;
  ~ConnectionSet();
  // Opens `count` connections. With kUring, falls back to epoll when the kernel refuses an
  // io_uring (io_mode() says which). Returns "" or an error message.
  std::string Open(const sockaddr_in& address, Protocol protocol, int count, uint32_t max_inflight,
                   uint32_t max_value, IoMode mode = IoMode::kEpoll);
  size_t size() const { return conns_.size(); }
  Connection& operator[](size_t i) { return *conns_[i]; }
  uint64_t Inflight() const;
  IoMode io_mode() const { return mode_; }

  // Sends what every connection has queued (io_uring: queues the sends; Poll submits them).
  // Returns "" or the first error.
  std::string SendAll();
  // Waits up to timeout_ns for replies and hands each to on_reply (see Connection::Receive).
  // Returns "" or the first error.
  template <typename F>
  std::string Poll(int64_t timeout_ns, F&& on_reply);

 private:
  // io_uring user_data: connection index * 2 + kind.
  static constexpr uint64_t kRecv = 0, kSend = 1;
  struct Flight {
    bool send = false;
    bool recv = false;
  };
  io_uring_sqe* Sqe();
  std::string ArmReceives();
  template <typename F>
  std::string PollUring(int64_t timeout_ns, F&& on_reply);

  std::vector<std::unique_ptr<Connection>> conns_;
  IoMode mode_ = IoMode::kEpoll;
  int epoll_fd_ = -1;
  epoll_event events_[64];
  bool ring_open_ = false;
  io_uring ring_;
  std::vector<Flight> flight_;
};

template <typename F>
std::string ConnectionSet::Poll(int64_t timeout_ns, F&& on_reply) {
  if (mode_ == IoMode::kUring) return PollUring(timeout_ns, on_reply);
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

template <typename F>
std::string ConnectionSet::PollUring(int64_t timeout_ns, F&& on_reply) {
  std::string e = ArmReceives();
  if (!e.empty()) return e;
  __kernel_timespec timeout{timeout_ns / 1000000000, timeout_ns % 1000000000};
  io_uring_cqe* cqe = nullptr;
  int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
    return std::string("io_uring_submit_and_wait_timeout: ") + std::strerror(-r);
  }
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    size_t i = static_cast<size_t>(cqe->user_data >> 1);
    Connection& c = *conns_[i];
    int res = cqe->res;
    if ((cqe->user_data & 1) == kSend) {
      flight_[i].send = false;
      if (res >= 0) {
        c.Sent(static_cast<size_t>(res));
      } else if (res != -EAGAIN && res != -EINTR) {
        e = std::string("send: ") + std::strerror(-res);
      }
    } else {
      flight_[i].recv = false;
      if (res > 0) {
        if (!c.Received(static_cast<size_t>(res), on_reply)) e = c.error();
      } else if (res == 0) {
        e = "the server closed the connection";
      } else if (res != -EAGAIN && res != -EINTR) {
        e = std::string("recv: ") + std::strerror(-res);
      }
    }
    if (!e.empty()) break;
  }
  io_uring_cq_advance(&ring_, seen);
  return e;
}

}  // namespace cinch::load
