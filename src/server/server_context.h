// What every session of one server shares: the store, the settings, the counters, the clock.
//
// Thread safety: all members are safe to use from any worker thread; the context outlives
// every session.
#pragma once

#include <atomic>
#include <cstdint>

#include "buildcache/build_cache.h"
#include "cinch/clock.h"
#include "cinch/store.h"
#include "http/http_stats.h"
#include "net/server_loop.h"
#include "server/server_options.h"
#include "server/server_stats.h"

namespace cinch::reapi {
class FrontEnd;
}  // namespace cinch::reapi

namespace cinch::server {
class MemoryGovernor;
class TierPromoter;
class UserTable;
}  // namespace cinch::server

namespace cinch::server {

struct ServerContext {
  Store* store = nullptr;
  const ServerOptions* options = nullptr;
  OffsetClock* clock = nullptr;  // the store's clock; debugtime shifts it
  CounterRegistry counters;
  TenantResets tenant_resets;  // tenants' "stats reset", which leaves `counters` alone
  int64_t started_at = 0;      // clock seconds at start, for "uptime"
  // Filled in once the loop runs, for "stats".
  const net::ServerLoop* loop = nullptr;
  // The HTTP cache's loop and counters; null when --http-port is off.
  const net::ServerLoop* http_loop = nullptr;
  const http::HttpStats* http_stats = nullptr;
  // The build cache both front ends share; null without --http-port and --grpc-port.
  const buildcache::BuildCache* build_cache = nullptr;
  // The REAPI plugin serving gRPC (reapi/plugin.h); null without --grpc-port.
  const reapi::FrontEnd* grpc = nullptr;
  size_t process_reserve = 0;    // bytes of -m for the process itself
  size_t connection_memory = 0;  // bytes of -m for connections (their budget)
  // The memory limit at run time (cache_memlimit, cgroup, pressure); null without a server.
  MemoryGovernor* governor = nullptr;
  // The file tier's I/O threads (tier_promoter.h); null without a file tier.
  TierPromoter* promoter = nullptr;
  // The users of the -Y auth file (users.h); null without one: then no connection
  // authenticates and every command uses the default keyspace.
  UserTable* users = nullptr;
  // A connection is running "lru_crawler metadump": memcached runs one at a time (one crawler).
  std::atomic<bool> metadump_running{false};
};

}  // namespace cinch::server
