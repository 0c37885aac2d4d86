// The REAPI module as cinchd loads it: a shared object (cinch_reapi.so, beside the cinchd
// binary) opened only when a build-cache port is asked for.
//
// Why a plugin: gRPC, protobuf and their dependencies add ~9 MiB of resident memory to a
// process the moment they are linked (their code paged in by static initializers and
// relocations), before any call. -m bounds the whole process, so a memcached-only cinchd at
// -m 32 lost a third of its store to libraries it never used. Loaded on demand, they cost only
// the servers that serve a build cache.
//
// The plugin's code reaches the rest of cinchd (BuildCache, Store, Status) through the
// executable's exported symbols (cinchd is linked with ENABLE_EXPORTS); it links only the
// generated code and gRPC/protobuf itself.
//
// Thread safety: as GrpcServer and ActionResultChecker.
#pragma once

#include "buildcache/build_cache.h"
#include "cinch/status.h"
#include "reapi/grpc_server.h"

namespace cinch::reapi {

// What the plugin gives cinchd: the ActionResult checker (HTTP and gRPC action-cache reads)
// and the gRPC front end.
class FrontEnd {
 public:
  virtual ~FrontEnd() = default;
  virtual buildcache::ActionResultChecker* checker() = 0;
  // Starts gRPC serving `cache`, which must outlive StopGrpc(). Once per FrontEnd.
  virtual Status StartGrpc(buildcache::BuildCache* cache, const GrpcOptions& options) = 0;
  virtual int grpc_port() const = 0;         // 0 when not started
  virtual void StopGrpc() = 0;               // idempotent
  virtual GrpcStats grpc_stats() const = 0;  // all 0 when not started; any thread
};

// The shared object's file name and its one entry point, `FrontEnd* CinchReapiNewFrontEnd_<N>()`
// (extern "C"; the caller owns the result and deletes it before closing the library). N is the
// interface's version: bump it whenever FrontEnd or a type it passes changes, so that a plugin
// built before (an older install found on the search path) is passed over, not called.
#define CINCH_REAPI_ENTRY CinchReapiNewFrontEnd_2
#define CINCH_REAPI_STRINGIFY2(x) #x
#define CINCH_REAPI_STRINGIFY(x) CINCH_REAPI_STRINGIFY2(x)
inline constexpr char kPluginFile[] = "cinch_reapi.so";
inline constexpr char kPluginEntry[] = CINCH_REAPI_STRINGIFY(CINCH_REAPI_ENTRY);
using NewFrontEndFn = FrontEnd* (*)();

}  // namespace cinch::reapi
