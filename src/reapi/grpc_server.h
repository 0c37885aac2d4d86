// The gRPC front end: REAPI v2's Capabilities, ContentAddressableStorage and ActionCache
// services and google.bytestream.ByteStream, serving one buildcache::BuildCache as a remote
// cache (no execution). docs/grpc-cache.md maps each RPC onto BuildCache and states the limits.
//
// This header is the module's face to src/server: it names no generated type.
//
// Thread safety: Start, Stop and port from one controlling thread; the services run on gRPC's
// own threads (bounded: see GrpcOptions) and share the BuildCache, which is
// thread-safe. Lifetime: the BuildCache must outlive the GrpcServer.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "cinch/status.h"

namespace cinch::buildcache {
class BuildCache;
}

namespace cinch::reapi {

// The largest total of blob bytes one BatchUpdateBlobs or BatchReadBlobs may carry: gRPC's
// default 4 MiB message limit, which most clients keep.
inline constexpr size_t kMaxBatchTotalBytes = size_t{4} << 20;
// Data per ByteStream ReadResponse: responses stay well under gRPC Java's (Bazel's) 4 MiB
// default receive limit.
inline constexpr size_t kReadChunkBytes = size_t{1} << 20;

struct GrpcOptions {
  // gRPC listen addresses, "host:port" or "[v6]:port"; all must bind.
  std::vector<std::string> addresses;
  // The bound on gRPC's own buffers (grpc::ResourceQuota::Resize): transport read and write
  // buffers and the memory of calls in flight.
  size_t memory = size_t{16} << 20;
  // Calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS):
  // clients queue the rest. gRPC's threads are capped (grpc::ResourceQuota::SetMaxThreads) at
  // twice that plus two: a call that finds no thread is refused RESOURCE_EXHAUSTED, and a
  // thread that has just sent a call's status still counts for a moment, so an exact cap would
  // refuse calls the stream limit admits.
  int max_concurrent_calls = 8;
  // CacheCapabilities.max_batch_total_size_bytes, at most kMaxBatchTotalBytes; BatchReadBlobs
  // asking for more is INVALID_ARGUMENT.
  size_t max_batch_total_bytes = kMaxBatchTotalBytes;
  // Largest message a client may send: a full batch plus room for per-blob framing.
  size_t max_receive_message = kMaxBatchTotalBytes + (size_t{1} << 20);
};

// What the gRPC front end has answered, counted as each call ends (whatever the RPC).
struct GrpcStats {
  uint64_t curr_calls = 0;  // calls open now (started, not yet ended)
  uint64_t calls = 0;       // calls ended (a status sent, or cancelled)
  uint64_t not_found = 0;   // ended NOT_FOUND: an action result or a blob read that missed
  uint64_t errors = 0;      // ended with another status than OK and NOT_FOUND
};

class GrpcServer {
 public:
  explicit GrpcServer(buildcache::BuildCache* cache);
  ~GrpcServer();  // stops if running
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds every address and starts serving.
  Status Start(const GrpcOptions& options);
  // The port the first address bound (useful with port 0); 0 before Start.
  int port() const;
  // Any thread.
  GrpcStats GetStats() const;
  // Stops accepting, cancels calls still running after a short grace period and waits for
  // them to return. Idempotent.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cinch::reapi
