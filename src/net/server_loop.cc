#include "net/server_loop.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "net/listener.h"
#include "net/worker.h"

namespace cinch::net {

unsigned IoUringCompletions(const LoopOptions& options) {
  const uint64_t want = 2 * static_cast<uint64_t>(std::max(options.max_connections, 1)) + 64;
  unsigned n = 1024;
  while (n < want && n < kIoUringMaxCompletions) n *= 2;
  return n;
}

size_t IoUringBytes(const LoopOptions& options) {
  if (!options.io_uring) return 0;
  // Submission queue: a 64 B entry and a 4 B index per slot; completion queue: 16 B per slot;
  // a page for each ring's head.
  return size_t{kIoUringEntries} * (64 + 4) + size_t{IoUringCompletions(options)} * 16 + 2 * 4096;
}

uint64_t FilesNeeded(const LoopOptions& options) {
  constexpr uint64_t kStandardStreams = 3;
  constexpr uint64_t kPerWorker = 2;  // epoll + eventfd, or io_uring + eventfd
  constexpr uint64_t kMargin = 32;
  const uint64_t listeners =
      (options.port != 0 ? 2 * options.listen.size() : 0) + (options.unix_socket.empty() ? 0 : 1);
  return static_cast<uint64_t>(std::max(options.max_connections, 0)) + 1 + listeners +
         kPerWorker * static_cast<uint64_t>(std::max(options.threads, 0)) + kStandardStreams +
         kMargin;
}

class ServerLoop::Impl {
 public:
  Impl(const LoopOptions& options, SessionFactory* factory, MemoryBudget* budget)
      : shared_(options, factory, budget) {}

  ~Impl() {
    Stop();
    Wait();
    workers_.clear();
    shared_.listeners.Close();  // if the workers never ran
  }

  Status Start() {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status::InvalidArgument("ServerLoop already started");
    if (shared_.stop.load()) return Status::InvalidArgument("ServerLoop stopped before Start");
    started_ = true;  // even if this fails: listeners are not reopened
    Status s = Validate(shared_.options);
    if (!s.ok()) return s;
    s = OpenListeners();
    if (!s.ok()) return s;
    for (int i = 0; i < shared_.options.threads; ++i) {
      workers_.push_back(std::make_unique<Worker>(&shared_));
      s = workers_.back()->Init();
      if (!s.ok()) {
        workers_.clear();
        shared_.listeners.Close();
        return s;
      }
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      threads_.emplace_back([worker = workers_[i].get(), i] {
        char name[16];
        std::snprintf(name, sizeof(name), "cinch-worker%zu", i % 100);
        pthread_setname_np(pthread_self(), name);  // as top -H and gdb show it
        worker->Run();
      });
    }
    return Status::Ok();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    shared_.stop.store(true, std::memory_order_release);
    for (auto& w : workers_) w->Wake();
  }

  void RecheckSessions() {
    std::lock_guard<std::mutex> lock(mu_);
    shared_.recheck.fetch_add(1, std::memory_order_release);
    for (auto& w : workers_) w->Wake();
  }

  void Wait() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!started_) return;
    }
    // threads_ is never modified after Start: joining needs only its own lock.
    std::lock_guard<std::mutex> lock(wait_mu_);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  int port() const { return port_.load(std::memory_order_relaxed); }

  LoopStats GetStats() const {
    std::lock_guard<std::mutex> lock(mu_);
    LoopStats s;
    for (const auto& w : workers_) {
      const WorkerCounters& c = w->counters();
      s.curr_connections += c.curr_connections.load(std::memory_order_relaxed);
      s.total_connections += c.total_connections.load(std::memory_order_relaxed);
      s.rejected_connections += c.rejected_connections.load(std::memory_order_relaxed);
      s.revoked_connections += c.revoked_connections.load(std::memory_order_relaxed);
      s.idle_kicks += c.idle_kicks.load(std::memory_order_relaxed);
      s.bytes_read += c.bytes_read.load(std::memory_order_relaxed);
      s.bytes_written += c.bytes_written.load(std::memory_order_relaxed);
      s.buffer_bytes += w->buffer_bytes();
      if (w->uses_io_uring()) ++s.io_uring_workers;
    }
    return s;
  }

 private:
  static Status Validate(const LoopOptions& o) {
    if (o.threads < 1) return Status::InvalidArgument("threads must be at least 1");
    if (o.max_connections < 1) return Status::InvalidArgument("max_connections must be >= 1");
    if (o.read_buffer_initial == 0 || o.read_buffer_max < o.read_buffer_initial) {
      return Status::InvalidArgument("read buffer sizes must satisfy 0 < initial <= max");
    }
    if (o.output_limit == 0) return Status::InvalidArgument("output_limit must be positive");
    if (o.drain_timeout_ms < 0) return Status::InvalidArgument("drain_timeout_ms is negative");
    if (o.idle_timeout_s < 0) return Status::InvalidArgument("idle_timeout_s is negative");
    return Status::Ok();
  }

  Status OpenListeners() {
    const LoopOptions& o = shared_.options;
    if (o.port != 0) {
      for (const std::string& spec : o.listen) {
        ListenAddress address;
        Status s = ParseListenAddress(spec, o.port, &address);
        std::vector<int> fds;
        int bound = 0;
        if (s.ok()) s = OpenTcpListeners(address, o.backlog, &fds, &bound);
        if (!s.ok()) {
          shared_.listeners.Close();
          return s;
        }
        for (int fd : fds) shared_.listeners.Add(fd, /*is_unix=*/false);
        if (port_.load(std::memory_order_relaxed) == 0) {
          port_.store(bound, std::memory_order_relaxed);
        }
      }
    }
    if (!o.unix_socket.empty()) {
      int fd = -1;
      Status s = OpenUnixListener(o.unix_socket, o.unix_mask, o.backlog, &fd);
      if (!s.ok()) {
        shared_.listeners.Close();
        return s;
      }
      shared_.listeners.Add(fd, /*is_unix=*/true);
      shared_.listeners.SetUnixPath(o.unix_socket);
    }
    return Status::Ok();
  }

  Shared shared_;
  // Guards started_ and workers_/threads_ while Start fills them; they never change after.
  mutable std::mutex mu_;
  bool started_ = false;  // Start was called
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::mutex wait_mu_;
  std::atomic<int> port_{0};
};

ServerLoop::ServerLoop(const LoopOptions& options, SessionFactory* factory, MemoryBudget* budget)
    : impl_(std::make_unique<Impl>(options, factory, budget)) {}

ServerLoop::~ServerLoop() = default;

Status ServerLoop::Start() { return impl_->Start(); }
int ServerLoop::port() const { return impl_->port(); }
void ServerLoop::Stop() { impl_->Stop(); }
void ServerLoop::Wait() { impl_->Wait(); }
LoopStats ServerLoop::GetStats() const { return impl_->GetStats(); }
void ServerLoop::RecheckSessions() { impl_->RecheckSessions(); }

}  // namespace cinch::net
