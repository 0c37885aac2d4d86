// Listeners and worker event loops: accepts connections on TCP and/or a unix socket and runs
// each on one of `threads` event loops (io_uring, or epoll).
//
// Threading: Start() spawns the worker threads; every connection lives on one worker for its
// whole life. Stop() may be called from any thread (e.g. after a signal): listeners close,
// connections finish writing what they owe (for at most `drain_timeout_ms`) and close, and
// Wait() returns when all workers have exited.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cinch/status.h"
#include "net/session.h"

namespace cinch::net {

struct LoopOptions {
  // TCP listen addresses in memcached's -l forms (see ListenAddress in listener.h: "host",
  // "host:port", "[v6]:port", "*"); each binds every address its host resolves to. Empty: no
  // TCP listener.
  std::vector<std::string> listen = {"127.0.0.1"};
  int port = 11211;         // for addresses naming no port. 0: no TCP listener; -1: a free port
  std::string unix_socket;  // path; empty: none
  int unix_mask = 0700;
  int threads = 4;
  int max_connections = 1024;
  int backlog = 1024;
  size_t read_buffer_initial = 16 * 1024;
  size_t read_buffer_max = (size_t{1} << 20) + 4096;  // hard cap (raised to Session::WantedInput)
  size_t output_limit = 1 << 20;  // stop reading from a connection with this much unwritten
  // The output limit while the memory budget is tight (more than half used), so that clients
  // that do not read their replies cannot take the whole budget.
  size_t tight_output_limit = 16 * 1024;
  int drain_timeout_ms = 2000;
  // A connection that has waited this long in a row for the memory to grow its read buffer
  // (to finish a request) answers "SERVER_ERROR out of memory" and closes, so its buffers go
  // back to the budget. Waiting for a first read buffer or an output chunk is throttling only.
  int memory_wait_ms = 250;
  // memcached's -o idle_timeout: a TCP connection whose client has sent nothing and been sent
  // nothing for longer than this many seconds, with no reply queued and no request being
  // worked on, is closed (LoopStats::idle_kicks). Checked every second. 0: never.
  int idle_timeout_s = 0;
  // Workers use io_uring instead of epoll when the kernel allows it (see worker.h).
  bool io_uring = true;
};

// The sizes of each worker's io_uring: submissions are flushed as they fill; completions have
// room for a receive and a send per connection the server may have, plus accepts, the wakeup
// and cancellations.
inline constexpr unsigned kIoUringEntries = 256;
// Beyond this (over 2,000 busy connections on one worker in one turn) completions wait in the
// kernel's overflow list: correct, slower, and rare; a larger queue would cost every process
// memory (16 B a slot) taken from the store's share of -m.
inline constexpr unsigned kIoUringMaxCompletions = 4096;
unsigned IoUringCompletions(const LoopOptions& options);
// What one worker's io_uring takes (its submission and completion rings, about 16 B per
// completion slot), counted by the server in the process's fixed memory rather than charged
// to the budget, like the workers' stacks. 0 when options.io_uring is off.
size_t IoUringBytes(const LoopOptions& options);

// File descriptors the loop may hold at once: one per connection up to max_connections, one
// more to refuse a connection beyond it, the listeners, each worker's epoll or io_uring and its
// eventfd, the standard streams, and a margin for short-lived files (e.g. /proc reads). What
// RLIMIT_NOFILE must allow; a host name listener counts twice (IPv4 and IPv6).
uint64_t FilesNeeded(const LoopOptions& options);

struct LoopStats {
  uint64_t curr_connections = 0;
  uint64_t total_connections = 0;
  uint64_t rejected_connections = 0;
  uint64_t revoked_connections = 0;  // closed because their session was no longer allowed
  uint64_t idle_kicks = 0;           // closed by LoopOptions::idle_timeout_s
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  uint64_t buffer_bytes = 0;  // charged to the budget right now
  int io_uring_workers = 0;   // workers running on io_uring (the rest on epoll)
};

class ServerLoop {
 public:
  // The factory and budget are not owned and must outlive the loop.
  ServerLoop(const LoopOptions& options, SessionFactory* factory, MemoryBudget* budget);
  ~ServerLoop();
  // Binds the listeners and starts the workers.
  Status Start();
  // The TCP port the first TCP listener bound (useful with port -1); 0 without one.
  int port() const;
  void Stop();
  void Wait();
  LoopStats GetStats() const;
  // Any thread: every worker asks each of its connections' sessions Session::StillAllowed on
  // its next turn (woken now) and closes those that say false, idle ones included.
  void RecheckSessions();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cinch::net
