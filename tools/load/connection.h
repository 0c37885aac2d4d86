// One non-blocking TCP connection to the server under test, with its requests in flight.
//
// Requests are encoded straight into a fixed send buffer and remembered in a fixed ring of
// Pending slots; replies are parsed in place from a fixed receive buffer and handed to the
// caller with their Pending slot, in order (both protocols answer in request order). Nothing
// is allocated after construction.
//
// Thread safety: none; a connection belongs to one thread.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "load/protocol.h"
#include "load/workload.h"

namespace cinch::load {

// What a request in flight needs when its reply arrives.
struct Pending {
  uint64_t start_ns;     // latency is measured from here: send time, or scheduled time
  uint32_t key;
  uint32_t version;      // set: the version written
  uint32_t min_version;  // get: a hit must be at least this version (0: anything written)
  Op op;
};

class Connection {
 public:
  // max_inflight: the ring's size. max_value: the largest value sent or expected.
  Connection(Protocol protocol, uint32_t max_inflight, uint32_t max_value);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects (blocking), then makes the socket non-blocking unless `blocking` (io_uring mode:
  // io_uring waits for readiness itself). Returns "" or an error message.
  std::string Connect(const sockaddr_in& address, bool blocking = false);
  int fd() const { return fd_; }
  uint32_t inflight() const { return inflight_; }
  bool ring_full() const { return inflight_ == ring_.size(); }

  // True if a request with a value of `value_size` bytes (0 for none) can be queued now.
  bool CanQueue(uint32_t value_size) const {
    return !ring_full() && send_.size() - send_end_ >= value_size + kSlack;
  }
  // REQUIRES: CanQueue(...) for the request's value size.
  void QueueGet(uint32_t key, uint32_t min_version, uint64_t start_ns);
  void QueueSet(uint32_t key, uint32_t version, uint64_t start_ns, const ValueCodec& codec);
  void QueueDelete(uint32_t key, uint64_t start_ns);
  void QueueFlush(uint64_t start_ns);

  // Sends what the socket takes. Returns false (and sets error()) on a socket error.
  bool Send();
  bool has_unsent() const { return send_begin_ < send_end_; }

  // Reads what the socket has and calls on_reply(const Pending&, const Reply&, uint64_t now_ns)
  // for each complete reply. Returns false (and sets error()) on EOF, a socket error, a reply
  // that does not parse, or when on_reply returns false.
  template <typename F>
  bool Receive(F&& on_reply);

  // io_uring mode (ConnectionSet owns the ring; at most one send and one receive in flight,
  // and the buffers are not moved while they are):
  // The bytes to send next, and how many of them the kernel took.
  std::string_view Unsent() const { return {send_.data() + send_begin_, send_end_ - send_begin_}; }
  void Sent(size_t n);
  // Where the next receive may write (after moving unparsed bytes to the front); false (and
  // error() set) when a reply would not fit.
  bool ReceiveSpace(char** at, size_t* room);
  // `n` bytes arrived where ReceiveSpace said: hands each complete reply to on_reply.
  template <typename F>
  bool Received(size_t n, F&& on_reply) {
    recv_end_ += n;
    return ParseReplies(on_reply);
  }

  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kSlack = kKeyBytes + kMaxPrefixOverhead + 8;
  Pending& PushSlot(Op op, uint32_t key, uint64_t start_ns);
  bool ReadSome(bool* would_block);
  template <typename F>
  bool ParseReplies(F&& on_reply);
  void CompactSend();
  void CompactReceive();
  bool Fail(std::string message);

  Protocol protocol_;
  int fd_ = -1;
  std::vector<Pending> ring_;
  uint32_t head_ = 0, inflight_ = 0;  // oldest slot, slots in use
  std::vector<char> send_;
  size_t send_begin_ = 0, send_end_ = 0;
  std::vector<char> recv_;
  size_t recv_begin_ = 0, recv_end_ = 0;
  std::string error_;
};

uint64_t NowNs();

template <typename F>
bool Connection::Receive(F&& on_reply) {
  for (;;) {
    bool would_block = false;
    if (!ReadSome(&would_block)) return false;
    if (!ParseReplies(on_reply)) return false;
    if (would_block) return true;
  }
}

template <typename F>
bool Connection::ParseReplies(F&& on_reply) {
  uint64_t now = NowNs();
  while (inflight_ > 0) {
    Reply reply;
    Pending& p = ring_[head_];
    std::string_view data(recv_.data() + recv_begin_, recv_end_ - recv_begin_);
    long n = ParseReply(protocol_, p.op, data, &reply);
    if (n == 0) break;
    if (n < 0) return Fail("unexpected reply '" + std::string(reply.value.substr(0, 120)) + "'");
    if (!on_reply(static_cast<const Pending&>(p), static_cast<const Reply&>(reply), now)) {
      return Fail("stopped by the reply handler");
    }
    recv_begin_ += static_cast<size_t>(n);
    head_ = head_ + 1 == ring_.size() ? 0 : head_ + 1;
    --inflight_;
  }
  if (inflight_ == 0 && recv_begin_ != recv_end_) return Fail("bytes beyond the last reply");
  return true;
}

}  // namespace cinch::load
