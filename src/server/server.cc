#include "server/server.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "cinch/clock.h"
#include "cinch/store.h"
#include "net/connection.h"
#include "net/fixed_budget.h"
#include "net/server_loop.h"
#include "server/memcache_session.h"
#include "server/server_context.h"

namespace cinch::server {

namespace {

size_t ResidentBytes() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<size_t>(pages_resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// What the process holds besides the store and connection buffers: what it holds now (code,
// libraries, heap so far), the part of each worker's stack it will touch, each worker's
// io_uring, and slack for the allocator's own pages (its arenas keep some freed memory).
size_t ProcessReserve(const ServerOptions& o) {
  if (o.process_reserve != 0) return o.process_reserve;
  constexpr size_t kStackTouched = 256 * 1024;
  constexpr size_t kAllocatorSlack = 3 << 20;
  return ResidentBytes() + static_cast<size_t>(o.loop.threads + 2) * kStackTouched +
         static_cast<size_t>(o.loop.threads) * net::IoUringBytes(o.loop) + kAllocatorSlack;
}

}  // namespace

namespace {

// What -c connections take idle: their objects, set aside so that none is ever refused.
size_t ConnectionObjects(const ServerOptions& o) {
  const size_t per_connection = net::kConnectionOverhead + sizeof(MemcacheSession);
  return static_cast<size_t>(o.loop.max_connections) * per_connection;
}

constexpr size_t kMinBufferMemory = size_t{2} << 20;

}  // namespace

size_t DefaultConnectionMemory(const ServerOptions& o) {
  const size_t buffers = std::clamp(o.memory_limit / 16, kMinBufferMemory, size_t{1} << 30);
  return ConnectionObjects(o) + buffers;
}

class Server::Impl {
 public:
  explicit Impl(const ServerOptions& options) : options_(options) {}

  Status Start() {
    // Buffers of 64 KiB and more come straight from mmap and go back on free; the heap is
    // trimmed eagerly, so freed connection memory does not stay resident uncounted.
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    mallopt(M_ARENA_MAX, 2);
    context_.process_reserve = ProcessReserve(options_);
    context_.connection_memory = options_.connection_memory != 0
                                     ? options_.connection_memory
                                     : DefaultConnectionMemory(options_);
    if (context_.connection_memory < ConnectionObjects(options_) + kMinBufferMemory) {
      return Status::InvalidArgument(
          "conn_memory " + std::to_string(context_.connection_memory >> 10) +
          " KiB is too small for -c " + std::to_string(options_.loop.max_connections) + ": " +
          std::to_string(ConnectionObjects(options_) >> 10) + " KiB for the connections and " +
          std::to_string(kMinBufferMemory >> 10) + " KiB for their buffers at least");
    }
    const size_t fixed = context_.process_reserve + context_.connection_memory;
    if (options_.memory_limit <= fixed) {
      return Status::InvalidArgument(
          "memory limit " + std::to_string(options_.memory_limit >> 10) + " KiB is too small for " +
          std::to_string(context_.process_reserve >> 10) + " KiB for the process itself and " +
          std::to_string(context_.connection_memory >> 10) +
          " KiB for connections; raise -m, or lower -c or -o conn_memory");
    }
    options_.store.memory_limit = options_.memory_limit - fixed;
    options_.store.clock = &clock_;
    Status s = Store::Open(options_.store, &store_);
    if (!s.ok()) {
      return Status::InvalidArgument(
          "memory limit " + std::to_string(options_.memory_limit >> 20) + " MiB leaves " +
          std::to_string(options_.store.memory_limit >> 10) + " KiB for the store after " +
          std::to_string(context_.process_reserve >> 10) + " KiB for the process itself and " +
          std::to_string(context_.connection_memory >> 10) + " KiB for connections (" +
          s.message() + "); raise -m or lower -I");
    }
    context_.store = store_.get();
    context_.options = &options_;
    context_.clock = &clock_;
    context_.started_at = clock_.NowSeconds();
    context_.verbosity.store(options_.verbosity);
    factory_ = std::make_unique<MemcacheSessionFactory>(&context_);
    budget_ = std::make_unique<net::FixedBudget>(context_.connection_memory -
                                                 ConnectionObjects(options_));
    loop_ = std::make_unique<net::ServerLoop>(options_.loop, factory_.get(), budget_.get());
    context_.loop = loop_.get();
    return loop_->Start();
  }

  int port() const { return loop_ ? loop_->port() : 0; }
  void Stop() {
    if (loop_) loop_->Stop();
  }
  void Wait() {
    if (loop_) loop_->Wait();
  }

 private:
  ServerOptions options_;
  OffsetClock clock_;
  std::unique_ptr<Store> store_;
  ServerContext context_;
  std::unique_ptr<MemcacheSessionFactory> factory_;
  std::unique_ptr<net::FixedBudget> budget_;
  std::unique_ptr<net::ServerLoop> loop_;
};

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Server::~Server() {
  if (impl_) {
    impl_->Stop();
    impl_->Wait();
  }
}
Status Server::Start() { return impl_->Start(); }
int Server::port() const { return impl_->port(); }
void Server::Stop() { impl_->Stop(); }
void Server::Wait() { impl_->Wait(); }

}  // namespace cinch::server
