#include "net/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/check.h"
#include "common/log.h"
#include "net/refusals.h"

namespace cinch::net {

namespace {

// epoll_event.data.u64: the eventfd, a listener (kListenerTag + index) or a Connection*.
constexpr uint64_t kWakeTag = 0;
constexpr uint64_t kListenerTag = 1;
constexpr int kMaxEvents = 256;
constexpr int kMaxAcceptsPerEvent = 64;

Status Errno(const std::string& what) {
  return Status::IoError(what + ": " + std::strerror(errno));
}

}  // namespace

Worker::Worker(Shared* shared)
    : shared_(shared),
      meter_(shared->budget),
      pool_(&meter_, kMaxCachedChunks),
      buffers_(&meter_, shared->options.read_buffer_initial, kMaxCachedBuffers),
      env_{&shared->options, &meter_, &pool_, &buffers_, &counters_, nullptr, &now_, &resumed_} {}

Worker::~Worker() {
  while (Connection* c = all_.Front()) Destroy(c);
  CINCH_CHECK(zombies_.empty());  // Run drains them; without Run nothing was ever in flight
  pool_.Trim();
  buffers_.Trim();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

Status Worker::Init() {
  const LoopOptions& o = shared_->options;
  if (o.io_uring && ring_.Init(kIoUringEntries, IoUringCompletions(o)).ok()) {
    // A fixed cost per worker, like its stack: the server counts it in its process reserve.
    CINCH_CHECK(ring_.bytes() <= IoUringBytes(o));
    uring_ = true;
    env_.ring = &ring_;
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) return Errno("eventfd");
    resumed_.set_wake_fd(wake_fd_);
    accepting_.assign(shared_->listeners.entries().size(), 0);
    listening_ = true;  // the accepts are queued by Run, on the ring's own thread
    shared_->listening_workers.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return Errno("epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return Errno("eventfd");
  resumed_.set_wake_fd(wake_fd_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) return Errno("epoll_ctl(eventfd)");
  const auto& entries = shared_->listeners.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenerTag + i;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, entries[i].fd, &ev) != 0) {
      return Errno("epoll_ctl(listener)");
    }
  }
  listening_ = true;
  shared_->listening_workers.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

void Worker::Wake() {
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // EAGAIN: the counter is already non-zero, the worker will wake anyway
}

void Worker::Run() {
  if (uring_) {
    CINCH_CHECK(ring_.Enable().ok());
    ArmWake();
    if (listening_) AddListeners();
  }
  park_at_ = Clock::now() + std::chrono::milliseconds(kParkIntervalMs);
  while (true) {
    if (!draining_ && shared_->stop.load(std::memory_order_acquire)) BeginDrain();
    bool timed = draining_ || !retry_.empty() || listeners_paused_ || !all_.empty();
    Clock::time_point now = timed ? Clock::now() : Clock::time_point();
    now_ = now;
    if (meter_.refusals() != refusals_seen_ && now >= forced_park_at_) {
      refusals_seen_ = meter_.refusals();  // memory is short: give back what idles now
      forced_park_at_ = now + std::chrono::milliseconds(kRetryDelayMs);
      ParkIdle(true);
    } else if (!all_.empty() && now >= park_at_) {
      park_at_ = now + std::chrono::milliseconds(kParkIntervalMs);
      ParkIdle(false);
    }
    if (draining_ && (all_.empty() || now >= drain_deadline_)) break;
    Poll(PollTimeoutMs(now));
    RunResumed();
    if (shared_->recheck.load(std::memory_order_acquire) != recheck_seen_) CloseRevoked();
    RunList(&ready_);
    if (!retry_.empty() || listeners_paused_) {
      now = Clock::now();
      now_ = now;
      if (!retry_.empty() && now >= retry_at_) RunList(&retry_);
      if (listeners_paused_ && now >= resume_listeners_at_) {
        listeners_paused_ = false;
        if (listening_) AddListeners();
      }
    }
  }
  // Drain timeout: whatever is still unwritten is dropped (references released).
  while (Connection* c = all_.Front()) Destroy(c);
  AwaitResumes();
  if (uring_) FinishUring();
  pool_.Trim();
  buffers_.Trim();
}

// The clock is read again once the wait returns: what happens next (reads, writes, accepts)
// is stamped with it, and the wait may have lasted up to a second (idle_timeout counts from
// those stamps).
void Worker::Poll(int timeout_ms) {
  if (uring_) {
    ring_.SubmitAndWait(timeout_ms);
    now_ = Clock::now();
    ring_.ForEachCompletion([this](uint64_t data, int res) { Complete(data, res); });
    return;
  }
  epoll_event events[kMaxEvents];
  int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  now_ = Clock::now();
  if (n < 0) {
    CINCH_CHECK(errno == EINTR);
    n = 0;
  }
  for (int i = 0; i < n; ++i) Dispatch(events[i].events, events[i].data.u64);
}

void Worker::RunResumed() {
  Connection* next = resumed_.TakeAll();
  while (Connection* c = next) {
    next = c->resume_next;
    c->resume_next = nullptr;
    c->OnResumed();
    if (c->cancelled()) {  // closed while it waited
      if (!uring_ || !c->io_pending()) Free(c);
      continue;
    }
    ConnList::Remove(c);
    Act(c, c->Drive());
  }
}

// The threads that resume connections run until every loop has stopped, and each wait ends
// once its work is done (a disk read), so this ends; there is no safe time limit: the other
// thread may still read the connection's input.
void Worker::AwaitResumes() {
  auto waiting = [this] {
    bool any = false;
    zombies_.ForEach([&any](Connection* c) { any = any || c->waiting(); });
    return any;
  };
  while (waiting()) {
    Poll(100);
    RunResumed();
  }
}

void Worker::FinishUring() {
  exiting_ = true;
  RemoveListeners();
  if (wake_armed_) io_uring_prep_cancel64(ring_.Get(Uring::kCancel), Uring::kWake, 0);
  // Cancellations complete at once; the bound only guards against a completion the kernel
  // lost (an overflow it could not allocate), which must not hang shutdown.
  for (int i = 0; i < 100 && ring_.in_flight() > 0; ++i) {
    ring_.SubmitAndWait(100);
    ring_.ForEachCompletion([this](uint64_t data, int res) { Complete(data, res); });
  }
  // Whatever the kernel may still write into is left allocated: the process is stopping.
  while (Connection* c = zombies_.PopFront()) (void)c;
}

void Worker::Complete(uint64_t user_data, int res) {
  const uint64_t tag = user_data & Uring::kTagMask;
  switch (tag) {
    case Uring::kWake:
      wake_armed_ = false;
      if (!exiting_) ArmWake();  // the stop flag, checked every turn, says why we were woken
      return;
    case Uring::kAccept:
      accepting_[user_data >> 3] = 0;
      Accepted(user_data >> 3, res);
      return;
    case Uring::kCancel:
      return;
    case Uring::kReceive:
    case Uring::kSend:
    case Uring::kPoll:
      break;
    default:
      CINCH_CHECK(false);
  }
  auto* c = reinterpret_cast<Connection*>(static_cast<uintptr_t>(user_data & ~Uring::kTagMask));
  if (tag == Uring::kReceive) {
    c->OnReceived(res);
  } else if (tag == Uring::kSend) {
    c->OnSent(res);
  } else {
    c->OnPolled(res);
  }
  if (c->cancelled()) {  // closed already: free it once nothing is in flight
    if (!c->io_pending() && !c->waiting()) Free(c);
    return;
  }
  ConnList::Remove(c);  // whatever it was scheduled for, it is driven now
  Act(c, c->Drive());
}

void Worker::Accepted(size_t listener, int res) {
  if (res >= 0) {
    if (!listening_ || exiting_) {  // stopping: an accept that was already done
      close(res);
      return;
    }
    const bool is_unix = shared_->listeners.entries()[listener].is_unix;
    if (!is_unix) {
      int one = 1;
      setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    Admit(res, is_unix);
    if (!listeners_paused_) ArmAccept(listener);
    return;
  }
  if (!listening_ || listeners_paused_ || exiting_) return;
  // ECANCELED while listening: a pause's cancellation that arrived after the pause ended.
  if (res == -ECANCELED || res == -EINTR || res == -ECONNABORTED || res == -EAGAIN) {
    ArmAccept(listener);
    return;
  }
  // EMFILE, ENFILE, ENOBUFS...: stop accepting here for a while, as the epoll loop does.
  RemoveListeners();
  listeners_paused_ = true;
  resume_listeners_at_ = Clock::now() + std::chrono::milliseconds(kListenerPauseMs);
}

void Worker::ArmWake() {
  io_uring_prep_read(ring_.Get(Uring::kWake), wake_fd_, &wake_value_, sizeof(wake_value_), 0);
  wake_armed_ = true;
}

void Worker::ArmAccept(size_t listener) {
  if (accepting_[listener]) return;
  io_uring_sqe* sqe = ring_.Get((static_cast<uint64_t>(listener) << 3) | Uring::kAccept);
  io_uring_prep_accept(sqe, shared_->listeners.entries()[listener].fd, nullptr, nullptr,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
  accepting_[listener] = 1;
}

int Worker::PollTimeoutMs(Clock::time_point now) const {
  if (!ready_.empty()) return 0;
  bool any = false;
  Clock::time_point at = Clock::time_point::max();
  if (!retry_.empty()) at = std::min(at, retry_at_), any = true;
  if (listeners_paused_) at = std::min(at, resume_listeners_at_), any = true;
  if (draining_) at = std::min(at, drain_deadline_), any = true;
  if (!all_.empty()) at = std::min(at, park_at_), any = true;
  if (!any) return -1;
  if (at <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(at - now).count();
  return static_cast<int>(std::min<int64_t>(ms, 60 * 1000));
}

void Worker::Dispatch(uint32_t events, uint64_t tag) {
  const auto& listeners = shared_->listeners.entries();
  if (tag == kWakeTag) {
    uint64_t value;
    ssize_t n = read(wake_fd_, &value, sizeof(value));
    (void)n;  // the stop flag, checked every iteration, says why we were woken
    return;
  }
  if (tag < kListenerTag + listeners.size()) {
    if (listening_ && !listeners_paused_) AcceptFrom(listeners[tag - kListenerTag]);
    return;
  }
  Connection* c = reinterpret_cast<Connection*>(static_cast<uintptr_t>(tag));
  ConnList::Remove(c);  // whatever it was scheduled for, it is driven now
  c->OnEvents(events);
  Act(c, c->Drive());
}

namespace {

// Refusals and accept failures can come thousands a second: a line a second at most each,
// saying how many were held back (each one at -v).
log::LogLimiter refusal_log(1000);
log::LogLimiter accept_error_log(1000);

void LogRefusal(const char* what) {
  uint64_t held = 0;
  if (!refusal_log.Allow(&held)) {
    CINCH_LOG_INFO("%s", what);
  } else if (held == 0) {
    CINCH_LOG_NOTICE("%s", what);
  } else {
    CINCH_LOG_NOTICE("%s (and %llu more since the last such line)", what,
                     static_cast<unsigned long long>(held));
  }
}

}  // namespace

void Worker::AcceptFrom(const Listeners::Entry& listener) {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    int fd = accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EMFILE, ENFILE, ENOBUFS...: the listener stays readable, so level-triggered epoll
      // would spin. Stop listening here for a while; other workers may still accept.
      uint64_t held = 0;
      if (accept_error_log.Allow(&held)) {
        CINCH_LOG_WARNING(
            "accept: %s: this worker stops accepting for %d ms (%llu more failures "
            "since the last such line)",
            std::strerror(errno), kListenerPauseMs, static_cast<unsigned long long>(held));
      }
      RemoveListeners();
      listeners_paused_ = true;
      resume_listeners_at_ = Clock::now() + std::chrono::milliseconds(kListenerPauseMs);
      return;
    }
    if (!listener.is_unix) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    Admit(fd, listener.is_unix);
  }
}

void Worker::Admit(int fd, bool is_unix) {
  const int max = shared_->options.max_connections;
  if (shared_->connections.fetch_add(1, std::memory_order_relaxed) >= max) {
    shared_->connections.fetch_sub(1, std::memory_order_relaxed);
    Refuse(fd, kRefuseTooManyConnections);
    LogRefusal("refused a connection: as many connections as -c are open");
    return;
  }
  // The connection's own objects: reserved for max_connections outside the buffer budget,
  // so a connection under -c is never refused for memory.
  const size_t overhead = kConnectionOverhead + shared_->factory->SessionBytes();
  meter_.CountReserved(overhead);
  std::unique_ptr<Session> session = shared_->factory->NewSession();
  bool ok = session != nullptr;
  auto* c = new Connection(fd, is_unix, std::move(session), env_);  // owns fd from here
  if (ok && !uring_) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = reinterpret_cast<uintptr_t>(c);
    ok = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  if (!ok) {
    WorkerCounters::Add(&counters_.rejected_connections, 1);
    SendRefusal(fd, kRefuseOutOfMemory);
    LogRefusal("refused a connection: no memory for its buffers");
    delete c;
    meter_.ReleaseReserved(overhead);
    shared_->connections.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  all_.PushBack(c);
  WorkerCounters::Add(&counters_.curr_connections, 1);
  WorkerCounters::Add(&counters_.total_connections, 1);
  CINCH_LOG_DEBUG("connection %d accepted", fd);
  if (uring_) Act(c, c->Drive());  // queues the first receive; epoll reports the socket instead
}

void Worker::SendRefusal(int fd, std::string_view message) {
  ssize_t n = send(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)n;  // best effort
}

void Worker::Refuse(int fd, std::string_view message) {
  WorkerCounters::Add(&counters_.rejected_connections, 1);  // counted before the client sees it
  SendRefusal(fd, message);
  close(fd);
}

void Worker::Act(Connection* c, Connection::Action action) {
  switch (action) {
    case Connection::Action::kIdle:
      return;
    case Connection::Action::kYield:
      ready_.PushBack(c);
      return;
    case Connection::Action::kRetry:
      if (retry_.empty()) retry_at_ = Clock::now() + std::chrono::milliseconds(kRetryDelayMs);
      retry_.PushBack(c);
      return;
    case Connection::Action::kClose:
      Destroy(c);
      return;
  }
}

void Worker::Destroy(Connection* c) {
  CINCH_LOG_DEBUG("connection %d closed", c->fd());
  ConnList::Remove(c);
  IntrusiveList<Connection, AllTag>::Remove(c);
  if (c->waiting() || (uring_ && c->io_pending())) {
    // epoll: no more events for it (the socket is closed only when it is freed).
    if (!uring_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd(), nullptr);
    c->CancelIo();
    zombies_.PushBack(c);
    return;
  }
  Free(c);
}

void Worker::Free(Connection* c) {
  IntrusiveList<Connection, AllTag>::Remove(c);  // from zombies_, if it was there
  delete c;  // closes the socket, which also removes it from the epoll set
  meter_.ReleaseReserved(kConnectionOverhead + shared_->factory->SessionBytes());
  shared_->connections.fetch_sub(1, std::memory_order_relaxed);
  WorkerCounters::Add(&counters_.curr_connections, static_cast<uint64_t>(-1));
  if (all_.empty() && zombies_.empty()) {  // an idle worker holds no buffer memory
    pool_.Trim();
    buffers_.Trim();
  }
}

void Worker::RunList(ConnList* list) {
  ConnList batch;
  batch.TakeAll(list);  // connections rescheduled while driving wait for the next round
  while (Connection* c = batch.PopFront()) Act(c, c->Drive());
}

void Worker::ParkIdle(bool force) {
  std::vector<Connection*> stalled;
  std::vector<Connection*> idle;
  const std::chrono::seconds idle_timeout(shared_->options.idle_timeout_s);
  all_.ForEach([&](Connection* c) {
    if (ConnList::Linked(c)) return;  // on the ready or retry list: busy
    if (idle_timeout.count() > 0 && c->IdleLongerThan(idle_timeout)) {
      idle.push_back(c);
      return;
    }
    if (force && c->Stalled(std::chrono::milliseconds(kShedStalledMs),
                            std::chrono::milliseconds(kShedUnreadMs))) {
      stalled.push_back(c);
      return;
    }
    c->Park(force);
  });
  for (Connection* c : stalled) {
    SendRefusal(c->fd(), kRefuseOutOfMemory);
    LogRefusal("closed a stalled connection: no memory for its buffers");
    Destroy(c);
  }
  for (Connection* c : idle) Destroy(c);  // silently, as memcached
  WorkerCounters::Add(&counters_.idle_kicks, idle.size());
  if (force) {
    buffers_.Trim();
    pool_.Trim();
  }
}

void Worker::AddListeners() {
  if (uring_) {
    for (size_t i = 0; i < accepting_.size(); ++i) ArmAccept(i);
    return;
  }
  const auto& entries = shared_->listeners.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenerTag + i;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, entries[i].fd, &ev);
  }
}

void Worker::RemoveListeners() {
  if (uring_) {
    for (size_t i = 0; i < accepting_.size(); ++i) {
      if (!accepting_[i]) continue;
      uint64_t accept = (static_cast<uint64_t>(i) << 3) | Uring::kAccept;
      io_uring_prep_cancel64(ring_.Get(Uring::kCancel), accept, 0);
    }
    ring_.Submit();  // the accepts hold their listener: closing its fd is safe from here on
    return;
  }
  for (const Listeners::Entry& e : shared_->listeners.entries()) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, e.fd, nullptr);  // ENOENT while paused: fine
  }
}

void Worker::BeginDrain() {
  draining_ = true;
  drain_deadline_ = Clock::now() + std::chrono::milliseconds(shared_->options.drain_timeout_ms);
  if (listening_) {
    listening_ = false;
    if (!listeners_paused_) RemoveListeners();
    listeners_paused_ = false;
    if (shared_->listening_workers.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      shared_->listeners.Close();  // no worker polls or accepts on them any more
    }
  }
  all_.ForEach([this](Connection* c) {
    c->BeginDrain();
    ConnList::Remove(c);
    ready_.PushBack(c);
  });
}

void Worker::CloseRevoked() {
  recheck_seen_ = shared_->recheck.load(std::memory_order_acquire);
  std::vector<Connection*> revoked;
  all_.ForEach([&](Connection* c) {
    if (!c->StillAllowed()) revoked.push_back(c);
  });
  for (Connection* c : revoked) Destroy(c);
  WorkerCounters::Add(&counters_.revoked_connections, revoked.size());
}

}  // namespace cinch::net
