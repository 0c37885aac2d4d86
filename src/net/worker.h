// Worker: one thread's event loop, on io_uring or on epoll. It accepts from the shared
// listening sockets (epoll: registered with EPOLLEXCLUSIVE, level-triggered, so one worker wakes
// per pending connection) and runs every connection it accepted until that connection closes.
//
// Scheduling: a connection is driven when epoll reports it. A connection that used its turn
// (Connection::kMaxReadsPerTurn reads) goes on the ready list and is driven again right after
// the next poll (timeout 0), so one busy client cannot starve the others. A connection
// waiting for memory goes on the retry list, driven again kRetryDelayMs later: it neither
// spins nor is forgotten (with edge-triggered events nothing else would wake it).
//
// Stopping: Shared::stop plus a write to each worker's eventfd. The worker removes the
// listeners from its epoll (the last worker to do so closes them), tells every connection to
// drain, keeps running until all are closed or drain_timeout_ms passed, then closes the rest.
//
// io_uring (LoopOptions::io_uring, when the kernel allows it): the same loop and lists, but
// instead of epoll_wait the worker calls Uring::SubmitAndWait, which submits every receive,
// send and accept queued during the last turn and collects their completions. Each listener
// has one accept in flight per worker; the eventfd has one read in flight. A connection
// closed with a receive or send in flight is cancelled and kept (zombies_) until both
// completed; only then is it freed and its memory released. On exit the worker cancels what
// remains and waits for every completion before the buffers go away.
//
// Connections waiting on another thread (SessionResult::wait, connection.h) come back through
// the worker's ResumeQueue: the resuming thread pushes the connection and writes the eventfd,
// and the worker drives what was pushed after each poll. A waiting connection that is closed
// is kept in zombies_ until resumed; on exit the worker waits for every such resume (the
// server keeps the resuming threads running until the loops have stopped).
//
// Thread safety: Run() on the worker's own thread; Wake(), the ResumeQueue and counters from
// any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include "cinch/status.h"
#include "net/connection.h"
#include "net/intrusive_list.h"
#include "net/listener.h"
#include "net/memory_meter.h"
#include "net/output_queue.h"
#include "net/server_loop.h"
#include "net/session.h"
#include "net/uring.h"

namespace cinch::net {

// What the workers of one ServerLoop share.
struct Shared {
  Shared(const LoopOptions& o, SessionFactory* f, MemoryBudget* b)
      : options(o), factory(f), budget(b) {}
  const LoopOptions options;
  SessionFactory* const factory;
  MemoryBudget* const budget;
  Listeners listeners;
  std::atomic<bool> stop{false};
  std::atomic<int> connections{0};        // all workers: enforces max_connections
  std::atomic<int> listening_workers{0};  // workers with the listeners in their epoll
  std::atomic<uint64_t> recheck{0};       // ServerLoop::RecheckSessions calls so far
};

class Worker {
 public:
  static constexpr int kRetryDelayMs = 10;
  static constexpr int kListenerPauseMs = 100;    // after EMFILE and the like
  static constexpr size_t kMaxCachedChunks = 32;  // 512 KiB, charged
  static constexpr size_t kMaxCachedBuffers = 8;  // read buffers, charged
  // How often idle connections give back their read buffers (Connection::Park): one that saw
  // no input for one to two periods.
  static constexpr int kParkIntervalMs = 1000;
  // When memory is short, connections that hold memory and made no progress for this long
  // are closed (Connection::Stalled): mid-request in a grown buffer, or with replies unread.
  static constexpr int kShedStalledMs = 100;
  static constexpr int kShedUnreadMs = 1000;

  explicit Worker(Shared* shared);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker();

  // Creates the epoll set and eventfd and registers the listeners.
  Status Init();
  void Run();
  // Any thread: interrupts epoll_wait.
  void Wake();

  const WorkerCounters& counters() const { return counters_; }
  bool uses_io_uring() const { return uring_; }
  uint64_t buffer_bytes() const { return meter_.charged(); }

 private:
  using Clock = std::chrono::steady_clock;
  using ConnList = IntrusiveList<Connection, ScheduleTag>;

  void Dispatch(uint32_t events, uint64_t tag);
  void AcceptFrom(const Listeners::Entry& listener);
  void Admit(int fd, bool is_unix);
  static void SendRefusal(int fd, std::string_view message);
  void Refuse(int fd, std::string_view message);
  void Act(Connection* c, Connection::Action action);
  void Destroy(Connection* c);
  void Free(Connection* c);
  // io_uring mode.
  void Complete(uint64_t user_data, int res);
  void Accepted(size_t listener, int res);
  void ArmWake();
  void ArmAccept(size_t listener);
  void FinishUring();
  void RunList(ConnList* list);
  // Drives the connections resumed by other threads; frees the closed ones.
  void RunResumed();
  // On exit: waits until no closed connection waits for another thread.
  void AwaitResumes();
  void Poll(int timeout_ms);
  void AddListeners();
  void RemoveListeners();
  // Parks the connections waiting on their clients (not scheduled to run); closes those idle
  // past LoopOptions::idle_timeout_s and, with `force`, the stalled ones.
  void ParkIdle(bool force);
  void BeginDrain();
  // Closes the connections whose session is no longer allowed (Session::StillAllowed).
  void CloseRevoked();
  int PollTimeoutMs(Clock::time_point now) const;

  Shared* const shared_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  Uring ring_;
  bool uring_ = false;
  bool exiting_ = false;     // io_uring: Run's loop is over; re-arm nothing
  uint64_t wake_value_ = 0;  // io_uring: the eventfd read lands here
  bool wake_armed_ = false;
  std::vector<char> accepting_;                // io_uring: an accept is in flight on listener i
  IntrusiveList<Connection, AllTag> zombies_;  // io_uring: closed, requests still in flight
  MemoryMeter meter_;
  ChunkPool pool_;
  BufferPool buffers_;
  WorkerCounters counters_;
  ResumeQueue resumed_;
  ConnectionEnv env_;
  IntrusiveList<Connection, AllTag> all_;
  ConnList ready_;
  ConnList retry_;
  Clock::time_point retry_at_;
  Clock::time_point park_at_;
  Clock::time_point forced_park_at_;  // forced parking: at most once per kRetryDelayMs
  Clock::time_point now_;             // read once a loop turn while there are connections
  uint64_t refusals_seen_ = 0;        // meter_.refusals() when connections were last parked
  bool listening_ = false;
  bool listeners_paused_ = false;
  Clock::time_point resume_listeners_at_;
  bool draining_ = false;
  uint64_t recheck_seen_ = 0;  // Shared::recheck when this worker last rechecked
  Clock::time_point drain_deadline_;
};

}  // namespace cinch::net
