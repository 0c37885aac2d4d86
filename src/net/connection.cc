#include "net/connection.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "net/refusals.h"

namespace cinch::net {

Connection::Connection(int fd, bool is_unix, std::unique_ptr<Session> session,
                       const ConnectionEnv& env)
    : fd_(fd),
      is_unix_(is_unix),
      session_(std::move(session)),
      env_(env),
      in_(env.meter, env.buffers),
      out_(env.pool, env.meter),
      parked_(env.ring != nullptr),
      last_progress_(*env.now) {
  if (session_ != nullptr) session_->SetResumer(this);
}

Connection::~Connection() {
  CINCH_CHECK(env_.ring == nullptr || !io_pending());  // the kernel may still use the buffers
  CINCH_CHECK(!waiting_);                              // another thread may still read the input
  out_.Clear();  // release callbacks may refer to the session: they run first
  session_.reset();
  in_.Free();
  close(fd_);
}

void Connection::OnEvents(uint32_t epoll_events) {
  if (epoll_events & (EPOLLERR | EPOLLHUP)) broken_ = true;
  if (epoll_events & EPOLLRDHUP) peer_shut_ = true;
  if (epoll_events & (EPOLLIN | EPOLLRDHUP)) readable_ = true;
  if (epoll_events & EPOLLOUT) writable_ = true;
}

size_t Connection::OutputLimit() const {
  const LoopOptions& o = *env_.options;
  return env_.meter->tight() ? std::min(o.output_limit, o.tight_output_limit) : o.output_limit;
}

Connection::Action Connection::Drive() {
  int reads = 0;
  uint64_t written = 0;
  while (true) {
    if (broken_) return Action::kClose;
    if (!out_.empty() && writable_) {
      // A client taking many large values (the kernel takes megabytes into the socket before
      // it pushes back) yields to the others between writes.
      if (written >= kMaxWritePerTurn) return Action::kYield;
      if (Flush(&written) == Step::kClose) return Action::kClose;
    }
    // Parked for the session's work on another thread: Resume() brings us back.
    if (waiting_) return Action::kIdle;
    if (closing_) {
      if (!out_.empty()) return Action::kIdle;  // EPOLLOUT brings us back
      shutdown(fd_, SHUT_WR);
      return Action::kClose;
    }
    // Backpressure: neither the session nor the socket is touched until output drains.
    // Here the socket is known full (Flush stopped early), so EPOLLOUT will come.
    if (out_.bytes() >= OutputLimit()) return Action::kIdle;
    // Starved output holds nothing another connection waits for: wait for a chunk (the
    // worker sheds connections that hold memory and make no progress, Stalled()). The read
    // buffer keeps only the requests not yet processed meanwhile (none: it goes back):
    // hundreds of connections each waiting for a chunk with an idle buffer once held the
    // whole budget, and none could get one.
    if (out_.starved() && !out_.Recover()) {
      if (!receiving_) in_.ShrinkToFit();
      return Action::kRetry;
    }
    if (unprocessed_) {
      RunSession();
      continue;
    }
    if (eof_) {
      closing_ = true;  // every complete request has been answered
      continue;
    }
    if (grow_) {
      Action action;
      if (!GrowOrClose(&action)) return action;
      continue;
    }
    if (env_.ring != nullptr) {
      if (receiving_ || polling_) return Action::kIdle;
      if (parked_) {
        QueuePoll();
        return Action::kIdle;  // the completion brings us back
      }
      Action action;
      if (!AcquireBuffer(&action)) return action;
      QueueReceive();
      if (grow_) continue;
      return Action::kIdle;  // the completion brings us back
    }
    if (!readable_) {
      in_.Release();  // nothing buffered: an idle connection holds no read buffer
      return Action::kIdle;
    }
    if (reads++ == kMaxReadsPerTurn) return Action::kYield;
    Action action;
    if (!AcquireBuffer(&action)) return action;
    if (Read() == Step::kClose) return Action::kClose;
  }
}

Connection::Step Connection::Flush(uint64_t* turn_written) {
  if (env_.ring != nullptr) {
    QueueSend();
    return Step::kStop;  // OnSent() says how much went
  }
  while (!out_.empty()) {
    uint64_t written = 0;
    OutputQueue::WriteResult r = out_.WriteTo(fd_, &written);
    WorkerCounters::Add(&env_.counters->bytes_written, written);
    *turn_written += written;
    if (written > 0) last_progress_ = *env_.now;
    if (r == OutputQueue::WriteResult::kError) {
      broken_ = true;
      return Step::kClose;
    }
    if (r == OutputQueue::WriteResult::kBlocked) {
      writable_ = false;
      return Step::kStop;
    }
  }
  return Step::kContinue;
}

void Connection::RunSession() {
  const size_t limit = OutputLimit();
  SessionResult r = session_->OnInput(in_.data(), &out_, limit);
  CINCH_CHECK(r.consumed <= in_.size());
  in_.Consume(r.consumed);  // moves no byte: a waiting session's work may read the rest
  if (r.wait) {
    CINCH_CHECK(!r.close && r.swallow == 0);
    waiting_ = true;  // unprocessed_ stays set: the session runs again once resumed
    return;
  }
  if (r.swallow > 0) {
    swallow_ += r.swallow;
    Discard();
  }
  if (r.close) {
    closing_ = true;
    unprocessed_ = false;
    return;
  }
  // A session that stopped for output is called again once it drains; one that made no
  // progress for no reason is treated as needing more input, so it cannot spin.
  bool output_full = out_.pending() >= limit;
  bool no_progress = r.consumed == 0 && r.swallow == 0 && !output_full;
  if (in_.empty() || r.need_more || no_progress) {
    unprocessed_ = false;
    if (!in_.empty()) {
      in_.Compact();
      grow_ = in_.full();
    }
  }
}

Connection::Step Connection::Read() {
  in_.MakeRoom();
  size_t room = in_.space_size();
  if (room == 0) {
    grow_ = true;
    return Step::kContinue;
  }
  ssize_t n;
  do {
    n = read(fd_, in_.space(), room);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    WorkerCounters::Add(&env_.counters->bytes_read, static_cast<uint64_t>(n));
    in_.Commit(static_cast<size_t>(n));
    if (swallow_ > 0) Discard();
    if (!in_.empty()) unprocessed_ = true;
    active_ = true;
    last_progress_ = *env_.now;
    // A short read drained the socket: edge-triggered epoll reports the next arrival. After
    // EPOLLRDHUP keep reading until EOF, which no further event would announce.
    if (static_cast<size_t>(n) < room && !peer_shut_) readable_ = false;
    return Step::kContinue;
  }
  if (n == 0) {
    eof_ = true;
    readable_ = false;
    return Step::kContinue;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable_ = false;
    return Step::kContinue;
  }
  broken_ = true;
  return Step::kClose;
}

// Waiting for a read buffer holds nothing anybody waits for (unlike a buffer that must grow
// to finish a request), so the connection is throttled, not closed: its input waits in the
// kernel until buffers come back (connections finishing, idle ones parked).
bool Connection::AcquireBuffer(Action* action) {
  if (in_.Acquire()) return true;
  *action = Action::kRetry;
  return false;
}

void Connection::QueueReceive() {
  in_.MakeRoom();
  size_t room = in_.space_size();
  if (room == 0) {
    grow_ = true;
    return;
  }
  io_uring_sqe* sqe = env_.ring->Get(reinterpret_cast<uintptr_t>(this) | Uring::kReceive);
  io_uring_prep_recv(sqe, fd_, in_.space(), room, 0);
  receiving_ = true;
}

void Connection::QueuePoll() {
  io_uring_sqe* sqe = env_.ring->Get(reinterpret_cast<uintptr_t>(this) | Uring::kPoll);
  io_uring_prep_poll_add(sqe, fd_, POLLIN | POLLRDHUP);
  polling_ = true;
}

void Connection::Park(bool force) {
  if (waiting_) return;  // its input must stay where it is
  const bool idle = !active_;
  active_ = false;
  if (!idle && !force) return;
  if (env_.ring == nullptr) {
    in_.ShrinkToFit();
    return;
  }
  if (!receiving_ || cancelled_) return;
  io_uring_prep_cancel64(env_.ring->Get(Uring::kCancel),
                         reinterpret_cast<uintptr_t>(this) | Uring::kReceive, 0);
}

bool Connection::Stalled(std::chrono::milliseconds holding,
                         std::chrono::milliseconds unread) const {
  if (closing_ || cancelled_ || waiting_) return false;  // waiting: the disk, not the client
  const auto still = *env_.now - last_progress_;
  if (!out_.empty()) return still >= unread;
  return !in_.empty() && in_.capacity() > env_.options->read_buffer_initial && still >= holding;
}

bool Connection::IdleLongerThan(std::chrono::seconds timeout) const {
  if (is_unix_ || closing_ || cancelled_ || waiting_ || !out_.empty()) return false;
  return *env_.now - last_progress_ > timeout;
}

void Connection::OnPolled(int res) {
  polling_ = false;
  if (cancelled_) return;
  parked_ = false;  // input (or an error, which the receive reports) is there
  if (res > 0) last_progress_ = *env_.now;  // not idle: its input is about to be received
}

void Connection::QueueSend() {
  size_t n_iov = 0;
  size_t bytes = 0;
  while (!out_.empty() && (bytes = out_.Gather(send_iov_, kSendIov, &n_iov)) == 0) {
    out_.Written(0);  // only empty references so far: released now
  }
  if (bytes == 0) return;
  send_msg_ = msghdr{};
  send_msg_.msg_iov = send_iov_;
  send_msg_.msg_iovlen = n_iov;
  io_uring_sqe* sqe = env_.ring->Get(reinterpret_cast<uintptr_t>(this) | Uring::kSend);
  io_uring_prep_sendmsg(sqe, fd_, &send_msg_, MSG_NOSIGNAL);
  writable_ = false;
}

void Connection::OnReceived(int res) {
  receiving_ = false;
  if (cancelled_) return;
  if (res > 0) {
    WorkerCounters::Add(&env_.counters->bytes_read, static_cast<uint64_t>(res));
    in_.Commit(static_cast<size_t>(res));
    if (swallow_ > 0) Discard();
    if (!in_.empty()) unprocessed_ = true;
    active_ = true;
    last_progress_ = *env_.now;
  } else if (res == -ECANCELED) {  // Park: keep only what is buffered, poll from now on
    parked_ = true;
    in_.ShrinkToFit();
  } else if (res == 0) {
    eof_ = true;
  } else if (res != -EAGAIN && res != -EINTR && res != -ENOBUFS) {
    broken_ = true;
  }
}

void Connection::OnSent(int res) {
  writable_ = true;
  if (cancelled_) return;
  if (res >= 0) {
    WorkerCounters::Add(&env_.counters->bytes_written, static_cast<uint64_t>(res));
    if (res > 0) last_progress_ = *env_.now;
    out_.Written(static_cast<size_t>(res));
  } else if (res != -EAGAIN && res != -EINTR && res != -ENOBUFS) {
    broken_ = true;
  }
}

void Connection::CancelIo() {
  if (cancelled_) return;
  cancelled_ = true;
  if (env_.ring == nullptr) return;
  const uintptr_t self = reinterpret_cast<uintptr_t>(this);
  if (receiving_) io_uring_prep_cancel64(env_.ring->Get(Uring::kCancel), self | Uring::kReceive, 0);
  if (!writable_) io_uring_prep_cancel64(env_.ring->Get(Uring::kCancel), self | Uring::kSend, 0);
  if (polling_) io_uring_prep_cancel64(env_.ring->Get(Uring::kCancel), self | Uring::kPoll, 0);
}

void Connection::Discard() {
  size_t n = std::min(swallow_, in_.size());
  in_.Consume(n);
  swallow_ -= n;
}

bool Connection::StarvedTooLong() {
  auto now = std::chrono::steady_clock::now();
  if (starved_since_ == std::chrono::steady_clock::time_point{}) starved_since_ = now;
  return now - starved_since_ >= std::chrono::milliseconds(env_.options->memory_wait_ms);
}

bool Connection::GrowOrClose(Action* action) {
  size_t limit = std::max(env_.options->read_buffer_max, session_->WantedInput());
  switch (in_.Grow(limit)) {
    case ReadBuffer::GrowResult::kGrown:
      grow_ = false;
      starved_since_ = {};
      return true;
    case ReadBuffer::GrowResult::kNoMemory:
      if (StarvedTooLong()) {
        grow_ = false;
        out_.Append(kRefuseOutOfMemory);
        closing_ = true;
        return true;
      }
      *action = Action::kRetry;  // keep grow_: try again after the retry delay
      return false;
    case ReadBuffer::GrowResult::kAtLimit:
      grow_ = false;
      closing_ = true;  // the session wants more than it may have: give up on this client
      return true;
  }
  return true;
}

void ResumeQueue::Push(Connection* c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    c->resume_next = head_;
    head_ = c;
  }
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // EAGAIN: the counter is already non-zero, the worker wakes anyway
}

Connection* ResumeQueue::TakeAll() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(head_, nullptr);
}

}  // namespace cinch::net
