#include "load/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace cinch::load {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

Connection::Connection(Protocol protocol, uint32_t max_inflight, uint32_t max_value)
    : protocol_(protocol),
      ring_(std::max<uint32_t>(max_inflight, 1)),
      send_(std::max<size_t>(256 << 10, 2 * (size_t{max_value} + kSlack))),
      recv_(std::max<size_t>(256 << 10, 2 * (size_t{max_value} + 256))) {}

Connection::~Connection() {
  if (fd_ >= 0) close(fd_);
}

std::string Connection::Connect(const sockaddr_in& address, bool blocking) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return std::string("connect: ") + std::strerror(errno);
  }
  if (!blocking) fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  return "";
}

bool Connection::Fail(std::string message) {
  if (error_.empty()) error_ = std::move(message);
  return false;
}

Pending& Connection::PushSlot(Op op, uint32_t key, uint64_t start_ns) {
  uint32_t tail = head_ + inflight_;
  if (tail >= ring_.size()) tail -= static_cast<uint32_t>(ring_.size());
  ++inflight_;
  Pending& p = ring_[tail];
  p = Pending{start_ns, key, 0, 0, op};
  return p;
}

void Connection::QueueGet(uint32_t key, uint32_t min_version, uint64_t start_ns) {
  char name[kKeyBytes];
  FormatKey(key, name);
  send_end_ += EncodeGet(protocol_, {name, kKeyBytes}, send_.data() + send_end_);
  PushSlot(Op::kGet, key, start_ns).min_version = min_version;
}

void Connection::QueueSet(uint32_t key, uint32_t version, uint64_t start_ns,
                          const ValueCodec& codec) {
  char name[kKeyBytes];
  FormatKey(key, name);
  uint32_t size = codec.SizeOf(key, version);
  char* out = send_.data() + send_end_;
  size_t n = EncodeSetPrefix(protocol_, {name, kKeyBytes}, size, out);
  codec.Write(key, version, out + n);
  n += size;
  const std::string_view trailer = ValueTrailer(protocol_);
  std::memcpy(out + n, trailer.data(), trailer.size());
  send_end_ += n + trailer.size();
  PushSlot(Op::kSet, key, start_ns).version = version;
}

void Connection::QueueDelete(uint32_t key, uint64_t start_ns) {
  char name[kKeyBytes];
  FormatKey(key, name);
  send_end_ += EncodeDelete(protocol_, {name, kKeyBytes}, send_.data() + send_end_);
  PushSlot(Op::kDelete, key, start_ns);
}

void Connection::QueueFlush(uint64_t start_ns) {
  send_end_ += EncodeFlush(protocol_, send_.data() + send_end_);
  PushSlot(Op::kFlush, 0, start_ns);
}

bool Connection::Send() {
  while (send_begin_ < send_end_) {
    ssize_t n = send(fd_, send_.data() + send_begin_, send_end_ - send_begin_, MSG_NOSIGNAL);
    if (n > 0) {
      send_begin_ += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return Fail(std::string("send: ") + std::strerror(errno));
    }
  }
  CompactSend();
  return true;
}

void Connection::Sent(size_t n) {
  send_begin_ += n;
  CompactSend();
}

void Connection::CompactSend() {
  if (send_begin_ == send_end_) {
    send_begin_ = send_end_ = 0;
  } else if (send_begin_ > send_.size() / 2) {
    std::memmove(send_.data(), send_.data() + send_begin_, send_end_ - send_begin_);
    send_end_ -= send_begin_;
    send_begin_ = 0;
  }
}

void Connection::CompactReceive() {
  if (recv_begin_ == recv_end_) {
    recv_begin_ = recv_end_ = 0;
  } else if (recv_begin_ > 0 && recv_.size() - recv_end_ < recv_.size() / 2) {
    std::memmove(recv_.data(), recv_.data() + recv_begin_, recv_end_ - recv_begin_);
    recv_end_ -= recv_begin_;
    recv_begin_ = 0;
  }
}

bool Connection::ReceiveSpace(char** at, size_t* room) {
  CompactReceive();
  if (recv_end_ == recv_.size()) return Fail("a reply larger than the receive buffer");
  *at = recv_.data() + recv_end_;
  *room = recv_.size() - recv_end_;
  return true;
}

bool Connection::ReadSome(bool* would_block) {
  CompactReceive();
  if (recv_end_ == recv_.size()) return Fail("a reply larger than the receive buffer");
  for (;;) {
    ssize_t n = recv(fd_, recv_.data() + recv_end_, recv_.size() - recv_end_, 0);
    if (n > 0) {
      recv_end_ += static_cast<size_t>(n);
      *would_block = recv_end_ < recv_.size();
      // A short read means the socket is drained for now (edge-triggered: read again only if
      // the buffer filled up).
      return true;
    }
    if (n == 0) return Fail("the server closed the connection");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      *would_block = true;
      return true;
    }
    return Fail(std::string("recv: ") + std::strerror(errno));
  }
}

}  // namespace cinch::load
