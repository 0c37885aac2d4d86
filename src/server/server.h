// cinchd as a library: a store, the memcached sessions and the network loops, composed.
//
// Memory: ServerOptions::memory_limit bounds the process's resident memory. At Start() the
// server measures what the process already holds and reserves headroom for code, thread
// stacks and allocator slack (process_reserve); the store gets the rest, and every connection
// buffer is charged against the store's limit, so buffers and items share one budget.
//
// Thread safety: Start/Stop/Wait may be called from any one controlling thread; Stop() also
// from another thread while Wait() blocks.
#pragma once

#include <memory>

#include "cinch/status.h"
#include "server/server_options.h"

namespace cinch::server {

class Server {
 public:
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start();
  int port() const;  // TCP port bound (after Start)
  void Stop();
  void Wait();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cinch::server
