// gRPC statuses for BuildCache outcomes, in one place: every service answers the same outcome
// with the same code (REAPI: INVALID_ARGUMENT for a digest that does not match its data,
// RESOURCE_EXHAUSTED when the cache cannot take it, NOT_FOUND for a miss).
#pragma once

#include <grpcpp/grpcpp.h>

#include "buildcache/build_cache.h"

namespace cinch::reapi {

grpc::Status WriteStatus(buildcache::BlobOutcome outcome, const buildcache::Digest& d);
grpc::Status NotFound(const buildcache::Digest& d);

}  // namespace cinch::reapi
