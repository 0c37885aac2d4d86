// The gRPC service implementations (synchronous API: each call runs on one of gRPC's threads).
// Internal to src/reapi: they see generated types; src/server sees only grpc_server.h.
//
// Instance names are accepted and ignored: there is one cache. Every service is stateless
// beyond the shared, thread-safe BuildCache.
#pragma once

#include <grpcpp/grpcpp.h>

#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "buildcache/build_cache.h"
#include "google/bytestream/bytestream.grpc.pb.h"
#include "reapi/digests.h"

namespace cinch::reapi {

class CapabilitiesService final : public rev2::Capabilities::Service {
 public:
  explicit CapabilitiesService(size_t max_batch_bytes) : max_batch_bytes_(max_batch_bytes) {}
  grpc::Status GetCapabilities(grpc::ServerContext* context,
                               const rev2::GetCapabilitiesRequest* request,
                               rev2::ServerCapabilities* response) override;

 private:
  size_t max_batch_bytes_;
};

class CasService final : public rev2::ContentAddressableStorage::Service {
 public:
  CasService(buildcache::BuildCache* cache, size_t max_batch_bytes)
      : cache_(cache), max_batch_bytes_(max_batch_bytes) {}
  grpc::Status FindMissingBlobs(grpc::ServerContext* context,
                                const rev2::FindMissingBlobsRequest* request,
                                rev2::FindMissingBlobsResponse* response) override;
  grpc::Status BatchUpdateBlobs(grpc::ServerContext* context,
                                const rev2::BatchUpdateBlobsRequest* request,
                                rev2::BatchUpdateBlobsResponse* response) override;
  grpc::Status BatchReadBlobs(grpc::ServerContext* context,
                              const rev2::BatchReadBlobsRequest* request,
                              rev2::BatchReadBlobsResponse* response) override;
  // Streams every Directory reachable from the root (each once, breadth first) in pages of at
  // most page_size directories and ~1 MiB; each page's next_page_token resumes after it, so a
  // client may also stop after one page and ask again with the token. Directories missing
  // from the CAS are left out (REAPI: "the portion present"); a missing root is NOT_FOUND.
  grpc::Status GetTree(grpc::ServerContext* context, const rev2::GetTreeRequest* request,
                       grpc::ServerWriter<rev2::GetTreeResponse>* writer) override;

 private:
  buildcache::BuildCache* cache_;
  size_t max_batch_bytes_;
};

class ActionCacheService final : public rev2::ActionCache::Service {
 public:
  explicit ActionCacheService(buildcache::BuildCache* cache) : cache_(cache) {}
  // NOT_FOUND when absent or incomplete (an output blob was evicted). inline_stdout and
  // inline_stderr are ignored (REAPI allows it): clients read them by digest.
  grpc::Status GetActionResult(grpc::ServerContext* context,
                               const rev2::GetActionResultRequest* request,
                               rev2::ActionResult* response) override;
  grpc::Status UpdateActionResult(grpc::ServerContext* context,
                                  const rev2::UpdateActionResultRequest* request,
                                  rev2::ActionResult* response) override;

 private:
  buildcache::BuildCache* cache_;
};

class ByteStreamService final : public google::bytestream::ByteStream::Service {
 public:
  explicit ByteStreamService(buildcache::BuildCache* cache) : cache_(cache) {}
  grpc::Status Read(grpc::ServerContext* context, const google::bytestream::ReadRequest* request,
                    grpc::ServerWriter<google::bytestream::ReadResponse>* writer) override;
  grpc::Status Write(grpc::ServerContext* context,
                     grpc::ServerReader<google::bytestream::WriteRequest>* reader,
                     google::bytestream::WriteResponse* response) override;
  // Uploads do not survive their stream (an interrupted one is dropped), so the status is
  // either complete (the blob is present) or nothing committed.
  grpc::Status QueryWriteStatus(grpc::ServerContext* context,
                                const google::bytestream::QueryWriteStatusRequest* request,
                                google::bytestream::QueryWriteStatusResponse* response) override;

 private:
  buildcache::BuildCache* cache_;
};

}  // namespace cinch::reapi
