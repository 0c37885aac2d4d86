// The request paths of Bazel's HTTP cache protocol (bazel-remote's API):
//
//   /cas/<sha256 hex>             a content-addressed blob
//   /ac/<sha256 hex>              an action result, under the action's digest
//   /<instance>/cas/<hex>, /<instance>/ac/<hex>
//                                 the same with an instance name (any number of segments)
//
// The instance is ignored, as bazel-remote does: every instance shares one cache (a blob is
// named by its content, so instances cannot disagree about it). A query string is ignored; a
// target in absolute form (http://host/cas/...) is reduced to its path.
//
// Thread safety: a pure function.
#pragma once

#include <string_view>

#include "buildcache/build_cache.h"

namespace cinch::http {

enum class PathMatch {
  kEntry,      // *kind and *digest name a cache entry
  kBadDigest,  // .../cas/<x> or .../ac/<x> where x is not 64 hex digits (HTTP 400)
  kNotCache,   // anything else (HTTP 404)
};

PathMatch ParseCachePath(std::string_view target, buildcache::Kind* kind,
                         buildcache::Digest* digest);

// Whether the target is /metrics (a query string ignored, absolute form reduced to its path):
// the Prometheus exposition, docs/metrics.md.
bool IsMetricsPath(std::string_view target);

}  // namespace cinch::http
