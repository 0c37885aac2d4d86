#include "reapi/grpc_status.h"

#include <string>

namespace cinch::reapi {

namespace {
std::string Name(const buildcache::Digest& d) {
  return buildcache::HexDigest(d) + "/" + std::to_string(d.size);
}
}  // namespace

grpc::Status WriteStatus(buildcache::BlobOutcome outcome, const buildcache::Digest& d) {
  switch (outcome) {
    case buildcache::BlobOutcome::kOk:
      return grpc::Status::OK;
    case buildcache::BlobOutcome::kDigestMismatch:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the data's SHA-256 is not the digest's hash " + Name(d));
    case buildcache::BlobOutcome::kSizeMismatch:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the data's size is not the digest's size " + Name(d));
    case buildcache::BlobOutcome::kTooLarge:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          Name(d) + " is larger than the largest item the cache stores (-I)");
    case buildcache::BlobOutcome::kOutOfMemory:
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "no memory for " + Name(d) + " (eviction is off and the cache is full)");
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unknown outcome");
}

grpc::Status NotFound(const buildcache::Digest& d) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, Name(d) + " is not in the cache");
}

}  // namespace cinch::reapi
