// Configuration of cinchd: a plain struct. Only tools/cinchd.cc maps command-line flags into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cinch/options.h"
#include "net/server_loop.h"

namespace cinch::server {

struct ServerOptions {
  // -m: hard limit on the whole process's resident memory, in bytes. It is split three ways:
  // the process's own baseline (code, stacks, allocator: process_reserve), the connections'
  // budget (connection_memory), and the store, which gets the rest. Connections never take
  // memory from the store: when their budget is short they are throttled or refused.
  size_t memory_limit = size_t{64} << 20;
  // -o memory_pressure: shrink the cache when the host or the cgroup is short of memory
  // (docs/memory-pressure.md). The cgroup's limit and cache_memlimit apply either way.
  bool memory_pressure = true;
  // Store settings (segment size, eviction, max item size, ...). memory_limit is derived.
  Options store;
  net::LoopOptions loop;
  bool cas_enabled = true;         // -C turns it off: gets/gats report cas 0, cas fails
  bool flush_enabled = true;       // -F turns it off
  bool debugtime_enabled = false;  // -o debugtime=1: the "debugtime <seconds>" command
  int verbosity = 0;               // -v, -vv
  // -B: which protocols a connection may speak. kAuto picks by the first byte (0x80: binary),
  // kAscii answers a binary packet with an error and closes, kBinary closes a text connection.
  enum class Protocol : uint8_t { kAuto, kAscii, kBinary };
  Protocol protocol = Protocol::kAuto;
  // Values at least this long are written to the socket straight from the store's read
  // guard (no copy); shorter ones are copied into the output buffer.
  size_t zero_copy_min = 4096;
  // Bytes the process needs beyond the store and buffers (code, stacks, allocator slack):
  // 0 = measure at start. See docs/server.md.
  size_t process_reserve = 0;
  // --http-port: Bazel's HTTP remote cache (docs/http-cache.md) on this TCP port of every -l
  // address, beside the memcached port. 0: off; -1: any free port (tests).
  int http_port = 0;
  // The budget of every connection's memory (the connection and session objects, read
  // buffers, output chunks): 0 = DefaultConnectionMemory(). See docs/server.md.
  size_t connection_memory = 0;
  // --grpc-port: REAPI v2 cache and ByteStream over gRPC on this port of every -l host (a port
  // an -l address names is memcached's). 0: off. See docs/grpc-cache.md.
  int grpc_port = 0;
  // -o grpc_memory: gRPC's share of -m, its grpc::ResourceQuota (transport buffers and the
  // messages of calls in flight), taken from the store like the connections' budget. 0 =
  // DefaultGrpcMemory(). Unused while grpc_port is 0.
  size_t grpc_memory = 0;
  // -o ac_check: an action result is served only while every blob it references is in this
  // cache (docs/http-cache.md). Off (0) for a cache sharded by digest across servers (haproxy
  // `balance uri`), where a result's outputs live on other shards; bazel-remote's
  // --disable_http_ac_validation.
  bool ac_check = true;
  // -e: the memory file (docs/restart-format.md). Loaded at Start when present (the store
  // then holds what was saved), written by Server::SaveMemoryFile after Stop and Wait.
  // Empty: items are not kept across restarts.
  std::string memory_file;
  // -Y: memcached's auth file (docs/auth.md). Empty: no authentication. When set, every
  // connection authenticates before any other command (text: memcached's `set` of
  // "<user> <password>"; binary: SASL PLAIN), and SIGHUP reloads it.
  std::string auth_file;
  // -S: memcached's "require SASL"; cinch checks SASL PLAIN against the -Y file (no libsasl2),
  // so -S needs -Y. Shown as auth_enabled_sasl.
  bool require_sasl = false;
};

}  // namespace cinch::server
