#include "reapi/services.h"

namespace cinch::reapi {

namespace {
void SetVersion(build::bazel::semver::SemVer* v, int major, int minor) {
  v->set_major(major);
  v->set_minor(minor);
}
}  // namespace

// SHA-256 only; action cache writes allowed; no execution (execution_capabilities unset).
// API 2.0 through 2.2: the messages this server reads and writes are 2.0's, and nothing from
// 2.1 or 2.2 that a cache must honour is missing (compressed blobs came in 2.1 as optional).
grpc::Status CapabilitiesService::GetCapabilities(grpc::ServerContext* context,
                                                  const rev2::GetCapabilitiesRequest* request,
                                                  rev2::ServerCapabilities* response) {
  rev2::CacheCapabilities* cache = response->mutable_cache_capabilities();
  cache->add_digest_function(rev2::DigestFunction::SHA256);
  cache->mutable_action_cache_update_capabilities()->set_update_enabled(true);
  cache->set_max_batch_total_size_bytes(static_cast<int64_t>(max_batch_bytes_));
  cache->set_symlink_absolute_path_strategy(rev2::SymlinkAbsolutePathStrategy::ALLOWED);
  SetVersion(response->mutable_low_api_version(), 2, 0);
  SetVersion(response->mutable_high_api_version(), 2, 2);
  return grpc::Status::OK;
}

}  // namespace cinch::reapi
