// cinchd as a library: a store, the memcached sessions and the network loops, composed; with
// --http-port, also the build cache (src/buildcache) and its HTTP front end (src/http) on a
// second loop that shares the connections' budget.
//
// Memory: ServerOptions::memory_limit bounds the process's resident memory. At Start() the
// server measures what the process already holds and reserves headroom for code, thread
// stacks and allocator slack (process_reserve), sets aside the connections' budget
// (connection_memory), and gives the store the rest. Connection memory is charged to its own
// budget, never to the store's, so connections can never make the store evict items.
//
// Thread safety: Start/Stop/Wait may be called from any one controlling thread; Stop() also
// from another thread while Wait() blocks.
#pragma once

#include <cstddef>
#include <memory>

#include "cinch/status.h"
#include "server/server_options.h"

namespace cinch::server {

// The connections' budget when ServerOptions::connection_memory is 0: what -c connections
// need idle (their objects, ~3.9 KiB each) plus buffers for the active ones: 1/16 of -m,
// between 2 MiB and 1 GiB.
size_t DefaultConnectionMemory(const ServerOptions& options);
// gRPC's share of -m when ServerOptions::grpc_memory is 0: 1/16 of -m, between 4 MiB and
// 1 GiB.
size_t DefaultGrpcMemory(const ServerOptions& options);

class Server {
 public:
  explicit Server(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start();
  int port() const;       // TCP port bound (after Start)
  int http_port() const;  // the HTTP cache's port (after Start); 0 when off
  int grpc_port() const;  // the gRPC port bound, 0 without one
  void Stop();
  void Wait();
  // SIGHUP: reads ServerOptions::auth_file again. On success the new users take effect for
  // new authentications, the connections of users removed or changed are closed (idle ones
  // too) and the others stay; on error nothing changes. Any thread, after Start.
  Status ReloadUsers();
  // Writes the store to ServerOptions::memory_file (nothing without one) and logs it on
  // stderr. REQUIRES: Stop() and Wait() returned (no worker uses the store).
  Status SaveMemoryFile();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cinch::server
