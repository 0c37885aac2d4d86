#include "load/connection_set.h"

#include <unistd.h>

#include <algorithm>

namespace cinch::load {

ConnectionSet::~ConnectionSet() {
  if (ring_open_) io_uring_queue_exit(&ring_);  // cancels what is in flight
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

std::string ConnectionSet::Open(const sockaddr_in& address, Protocol protocol, int count,
                                uint32_t max_inflight, uint32_t max_value, IoMode mode) {
  if (mode == IoMode::kUring && !ring_open_) {
    // Two requests per connection at most; the completion queue is twice the size.
    unsigned entries = 64;
    while (entries < 2u * static_cast<unsigned>(count) && entries < 4096) entries *= 2;
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    ring_open_ = io_uring_queue_init_params(entries, &ring_, &params) == 0;
    if (!ring_open_) {
      params = io_uring_params{};
      ring_open_ = io_uring_queue_init_params(entries, &ring_, &params) == 0;
    }
  }
  mode_ = ring_open_ ? IoMode::kUring : IoMode::kEpoll;
  if (mode_ == IoMode::kEpoll && epoll_fd_ < 0) epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < count; ++i) {
    conns_.push_back(std::make_unique<Connection>(protocol, max_inflight, max_value));
    flight_.emplace_back();
    Connection& c = *conns_.back();
    std::string error = c.Connect(address, /*blocking=*/mode_ == IoMode::kUring);
    if (!error.empty()) return error;
    if (mode_ == IoMode::kUring) continue;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u32 = static_cast<uint32_t>(conns_.size() - 1);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd(), &ev) != 0) return "epoll_ctl failed";
  }
  return "";
}

uint64_t ConnectionSet::Inflight() const {
  uint64_t n = 0;
  for (const auto& c : conns_) n += c->inflight();
  return n;
}

io_uring_sqe* ConnectionSet::Sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {  // the submission queue is full: hand it to the kernel first
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

std::string ConnectionSet::SendAll() {
  for (size_t i = 0; i < conns_.size(); ++i) {
    Connection& c = *conns_[i];
    if (!c.has_unsent()) continue;
    if (mode_ == IoMode::kEpoll) {
      if (!c.Send()) return c.error();
      continue;
    }
    if (flight_[i].send) continue;  // the rest goes when this one completes
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return "io_uring: no submission queue entry";
    std::string_view bytes = c.Unsent();
    io_uring_prep_send(sqe, c.fd(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, i * 2 + kSend);
    flight_[i].send = true;
  }
  return "";
}

std::string ConnectionSet::ArmReceives() {
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (flight_[i].recv) continue;
    Connection& c = *conns_[i];
    char* at;
    size_t room;
    if (!c.ReceiveSpace(&at, &room)) return c.error();
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return "io_uring: no submission queue entry";
    io_uring_prep_recv(sqe, c.fd(), at, room, 0);
    io_uring_sqe_set_data64(sqe, i * 2 + kRecv);
    flight_[i].recv = true;
  }
  return "";
}

}  // namespace cinch::load
