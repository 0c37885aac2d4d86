#include "load/connection_set.h"

#include <unistd.h>

namespace cinch::load {

ConnectionSet::~ConnectionSet() {
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

std::string ConnectionSet::Open(const sockaddr_in& address, Protocol protocol, int count,
                                uint32_t max_inflight, uint32_t max_value) {
  if (epoll_fd_ < 0) epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < count; ++i) {
    conns_.push_back(std::make_unique<Connection>(protocol, max_inflight, max_value));
    Connection& c = *conns_.back();
    std::string error = c.Connect(address);
    if (!error.empty()) return error;
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

std::string ConnectionSet::SendAll() {
  for (auto& c : conns_) {
    if (c->has_unsent() && !c->Send()) return c->error();
  }
  return "";
}

}  // namespace cinch::load
