// Uring: one worker's io_uring, used instead of epoll when the kernel allows it.
//
// Why: at pipeline depth 1 every request costs an epoll server one read() and one sendmsg(),
// and on a virtual machine each system call's entry and exit is a large part of the request's
// cost. With io_uring a worker keeps one receive in flight per connection (the data lands in
// the connection's read buffer) and queues its sends; one io_uring_enter() per loop turn
// submits them all and collects every completion.
//
// Requests are tagged in user_data: the low 3 bits say what completed, the rest is a
// Connection* (8-byte aligned) or a listener index.
//
// The ring is set up with SINGLE_ISSUER | DEFER_TASKRUN (completions are processed only when
// the worker enters the kernel to wait), so it needs Linux 6.1; on older kernels the worker
// uses epoll. It is created disabled (Init may run on another thread) and enabled by the
// thread that uses it. The completion queue holds two completions per connection the server
// may have (a receive and a send each), so it does not spill into the kernel's slower
// overflow list under load.
//
// Thread safety: owned by one worker thread.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>

#include "cinch/status.h"

namespace cinch::net {

class Uring {
 public:
  enum Tag : uint64_t {
    kWake = 0,     // the worker's eventfd was read
    kAccept = 1,   // (listener index << 3) | kAccept
    kReceive = 2,  // Connection* | kReceive
    kSend = 3,     // Connection* | kSend
    kCancel = 4,   // a cancellation request's own completion
    kPoll = 5,     // Connection* | kPoll
  };
  static constexpr uint64_t kTagMask = 7;

  Uring() = default;
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;
  ~Uring();

  // `entries` submissions, `completions` completions (rounded up to powers of two). Fails on
  // kernels before 6.1 (SINGLE_ISSUER | DEFER_TASKRUN).
  Status Init(unsigned entries, unsigned completions);
  // On the thread that will submit: the only thread allowed to from now on.
  Status Enable();
  bool ready() const { return ready_; }
  // Memory the rings take (the SQE array, the SQ and CQ rings); at most IoUringBytes()
  // (server_loop.h) for the sizes the worker asks for.
  size_t bytes() const { return bytes_; }
  // Requests submitted or queued whose completion has not been seen yet.
  uint64_t in_flight() const { return in_flight_; }

  // A submission entry tagged `user_data`; submits what is queued first if the SQ is full.
  // Never null: a full SQ is flushed to the kernel.
  io_uring_sqe* Get(uint64_t user_data);
  // Hands what is queued to the kernel without waiting.
  void Submit();
  // Submits what is queued and waits for at least one completion, or until `timeout_ms`
  // passes (-1: no limit; 0: do not wait).
  void SubmitAndWait(int timeout_ms);
  // Hands each available completion to fn(user_data, res), then marks them seen.
  template <typename F>
  void ForEachCompletion(F&& fn) {
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      fn(cqe->user_data, cqe->res);
    }
    io_uring_cq_advance(&ring_, seen);
    in_flight_ -= seen;
  }

 private:
  io_uring ring_{};
  bool ready_ = false;
  size_t bytes_ = 0;
  uint64_t in_flight_ = 0;
};

}  // namespace cinch::net
