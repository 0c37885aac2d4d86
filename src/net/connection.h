// Connection: one client socket, its Session, its read buffer and output queue.
//
// The worker owning it reports epoll events with OnEvents() and then calls Drive(), which
// does as much work as it can without blocking and says what should happen next. The socket
// is registered edge-triggered for EPOLLIN | EPOLLOUT | EPOLLRDHUP, so the connection keeps
// its own "readable" and "writable" flags: they are set by events and cleared only when a
// read or write finds the socket dry (EAGAIN or a short transfer).
//
// One turn of Drive(), repeated while there is progress:
//   1. write what is queued (one sendmsg of up to IOV_MAX spans per step);
//   2. closing: once the output is written, shut down and close;
//   3. output >= output_limit: stop (no session call, no read) until EPOLLOUT drains it;
//   4. output starved of memory: stop until a spare chunk can be charged (timer retry);
//   5. unprocessed input: let the session consume every complete request, then go to 1
//      (so replies to a pipelined batch leave in one write);
//   6. session needs more and the buffer is full: double it, up to
//      max(read_buffer_max, Session::WantedInput()); at that limit, close;
//   7. read once (at most kMaxReadsPerTurn reads per turn, then yield to other connections).
//
// The output limit is LoopOptions::output_limit, or tight_output_limit while the budget is
// tight (MemoryBudget::Tight): clients that do not read their replies cannot take all of it.
//
// Idle connections hold no buffer: the read buffer is taken from the worker's BufferPool when
// input is to be read and given back once everything read is consumed and the socket is dry.
// A connection idle with part of a request buffered keeps only those bytes (Park).
//
// Peer EOF (a half-close): requests already buffered are answered and written, then the socket
// is closed. EPOLLERR, EPOLLHUP or a socket error: closed at once. Either way the destructor
// releases queued references before it destroys the session.
//
// io_uring mode (ConnectionEnv::ring set): the same turn, but step 1 queues one sendmsg
// (at most kSendIov spans) unless one is in flight, and step 7 queues one receive into the
// read buffer unless one is in flight; the worker reports their completions with OnSent()
// and OnReceived() and drives the connection again. "writable" then means "no send in
// flight". A receive in flight needs a buffer, so a connection that is new or was idle for a
// while (Park) is *parked*: instead of a receive it keeps a poll for input in flight, which
// needs no buffer, and queues a receive once the poll completes (OnPolled). While a receive is in
// flight the read buffer is neither moved nor resized: a receive is queued only when every buffered
// request has been handled, and the next completion is what gives the session new input. A
// connection with requests in flight cannot be freed: the worker cancels them (CancelIo) and frees
// it once both completed.
//
// Waiting on another thread (SessionResult::wait; the server promotes items from its file tier
// that way): the connection is *waiting*. Drive writes queued output and returns kIdle; nothing
// is read, the session is not called, the read buffer is neither moved nor shrunk (Park and
// Stalled leave it alone). Resume() (any thread) puts it on its worker's ResumeQueue and wakes
// the worker, which calls OnResumed() and drives it: the session gets the same input again. A
// waiting connection that is closed (client gone, server stopping) is kept by the worker, like
// one with io_uring requests in flight, and freed once resumed.
//
// Thread safety: owned by one worker thread, except Resume().
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "net/intrusive_list.h"
#include "net/memory_meter.h"
#include "net/output_queue.h"
#include "net/read_buffer.h"
#include "net/server_loop.h"
#include "net/session.h"
#include "net/uring.h"

namespace cinch::net {

// Per-worker counters, written by the worker only (plain load + store), read by GetStats.
struct WorkerCounters {
  std::atomic<uint64_t> curr_connections{0};
  std::atomic<uint64_t> total_connections{0};
  std::atomic<uint64_t> rejected_connections{0};
  std::atomic<uint64_t> revoked_connections{0};  // closed by a recheck (Session::StillAllowed)
  std::atomic<uint64_t> idle_kicks{0};           // closed by LoopOptions::idle_timeout_s
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<uint64_t> bytes_written{0};

  static void Add(std::atomic<uint64_t>* c, uint64_t delta) {
    c->store(c->load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
};

class Connection;

// Connections resumed by other threads (Resumer::Resume) for their worker to drive. An
// intrusive list: pushing allocates nothing.
class ResumeQueue {
 public:
  // The worker's eventfd, written after each push so that its poll returns.
  void set_wake_fd(int fd) { wake_fd_ = fd; }
  // Any thread.
  void Push(Connection* c);
  // The worker: every connection pushed so far, in no particular order, linked through
  // Connection::resume_next.
  Connection* TakeAll();

 private:
  std::mutex mu_;
  Connection* head_ = nullptr;
  int wake_fd_ = -1;
};

// What the connections of one worker share.
struct ConnectionEnv {
  const LoopOptions* options;
  MemoryMeter* meter;
  ChunkPool* pool;
  BufferPool* buffers;
  WorkerCounters* counters;
  Uring* ring;                                       // null: epoll mode
  const std::chrono::steady_clock::time_point* now;  // the worker's clock, read once a turn
  ResumeQueue* resumed;
};

// List tags: every connection is in its worker's list of all connections, and in at most one
// of the ready / retry lists.
struct AllTag {};
struct ScheduleTag {};

class Connection final : public ListLink<AllTag>, public ListLink<ScheduleTag>, public Resumer {
 public:
  static constexpr int kMaxReadsPerTurn = 16;
  static constexpr uint64_t kMaxWritePerTurn = 256 * 1024;  // epoll: then yield
  static constexpr size_t kSendIov = 64;                    // io_uring mode: spans per sendmsg

  enum class Action {
    kIdle,   // nothing to do until the next epoll event
    kYield,  // more work to do: drive again after other connections had their turn
    kRetry,  // waiting for memory: drive again after a short delay
    kClose,  // done (or broken): destroy
  };

  // Takes ownership of `fd` (a unix socket's when `is_unix`). Holds no buffer until there is
  // input to read.
  Connection(int fd, bool is_unix, std::unique_ptr<Session> session, const ConnectionEnv& env);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Releases queued references, then destroys the session, then closes the socket.
  ~Connection();

  int fd() const { return fd_; }
  bool StillAllowed() const { return session_->StillAllowed(); }

  void OnEvents(uint32_t epoll_events);
  Action Drive();
  // Server stopping: read no more, write what is owed, then close.
  void BeginDrain() { closing_ = true; }

  // io_uring mode: completions of the receive, the send and the poll this connection queued.
  void OnReceived(int res);
  void OnSent(int res);
  void OnPolled(int res);
  // io_uring mode: a receive, send or poll is in flight (the connection must not be freed).
  bool io_pending() const { return receiving_ || polling_ || !writable_; }

  // Called by the worker for a connection waiting on its client: if no input arrived since the
  // last call (or `force`: memory is short), it gives back the read buffer memory it does not
  // need. io_uring mode: cancels the receive in flight; the cancellation's completion parks
  // the connection (OnReceived).
  void Park(bool force);
  // Holds memory and makes no progress: part of a request in a grown buffer and no input for
  // `holding` (a client that stalled mid-value), or unwritten output and nothing written for
  // `unread` (a client that does not read its replies). When memory is short the worker closes
  // such connections, so that they cannot keep the others waiting for ever (hostile.py
  // close_mid_value: fifty clients each leave half of a 1 MB value behind).
  bool Stalled(std::chrono::milliseconds holding, std::chrono::milliseconds unread) const;
  // Idle for longer than `timeout` (LoopOptions::idle_timeout_s): no byte read or written for
  // that long, no reply queued, not waiting on another thread. Never for a unix socket's
  // connection, as memcached times out TCP connections only.
  bool IdleLongerThan(std::chrono::seconds timeout) const;
  // Closed by the worker: io_uring mode asks the kernel to cancel what is in flight
  // (completions still follow). The connection is freed once nothing is in flight and it is
  // not waiting.
  void CancelIo();
  bool cancelled() const { return cancelled_; }

  // Waiting for its session's work on another thread (SessionResult::wait).
  bool waiting() const { return waiting_; }
  // Resumer: any thread.
  void Resume() override { env_.resumed->Push(this); }
  // The worker, for a connection taken from its ResumeQueue.
  void OnResumed() { waiting_ = false; }
  Connection* resume_next = nullptr;  // ResumeQueue's link

 private:
  enum class Step { kContinue, kStop, kClose };
  // Writes what the socket takes (epoll) or queues a send (io_uring); adds bytes written.
  Step Flush(uint64_t* turn_written);
  void RunSession();
  Step Read();
  bool AcquireBuffer(Action* action);
  void QueueReceive();
  void QueuePoll();
  size_t OutputLimit() const;
  void QueueSend();
  void Discard();
  bool GrowOrClose(Action* action);
  // Notes a failed charge; true once the connection has waited LoopOptions::memory_wait_ms in
  // a row for memory to grow its read buffer and finish a request. Without that
  // limit, clients that each hold part of a large value can take the whole budget and wait
  // for one another forever.
  bool StarvedTooLong();

  const int fd_;
  const bool is_unix_;
  std::unique_ptr<Session> session_;
  const ConnectionEnv env_;
  ReadBuffer in_;
  OutputQueue out_;
  size_t swallow_ = 0;        // input bytes still to discard, unbuffered
  bool readable_ = false;     // the socket may have input (cleared on EAGAIN or a short read)
  bool writable_ = true;      // the socket may take output (cleared on EAGAIN or a short write)
  bool peer_shut_ = false;    // EPOLLRDHUP seen: read until EOF, short reads prove nothing
  bool eof_ = false;          // read returned 0: process what is buffered, then close
  bool broken_ = false;       // EPOLLERR / EPOLLHUP / read error: close at once
  bool closing_ = false;      // write what is queued, then close
  bool unprocessed_ = false;  // input arrived (or output drained) since the session last ran
  bool grow_ = false;         // the session needs more input and the buffer is full
  bool receiving_ = false;    // io_uring: a receive into in_ is in flight
  bool polling_ = false;      // io_uring: a poll for input is in flight
  bool parked_ = false;       // io_uring: poll for input before the next receive
  bool active_ = false;       // input arrived since the last Park call
  bool cancelled_ = false;    // CancelIo() was called: closed, freed once nothing is pending
  bool waiting_ = false;      // the session waits for another thread (SessionResult::wait)
  msghdr send_msg_{};         // io_uring: the sendmsg in flight (writable_ false)
  iovec send_iov_[kSendIov];
  std::chrono::steady_clock::time_point starved_since_{};  // first failed charge; {}: none
  std::chrono::steady_clock::time_point last_progress_{};  // *env_.now when bytes last moved
};

// Charged per connection on top of its buffers, with SessionFactory::SessionBytes(): the
// struct and the allocator's headers of it and of the session.
inline constexpr size_t kConnectionOverhead = sizeof(Connection) + 32;

}  // namespace cinch::net
