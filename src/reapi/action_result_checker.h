// Decides whether an action cache entry can be served: an ActionResult is complete only when
// every blob it references is in the CAS, so that a build never receives a result whose outputs
// the cache has evicted (bazel-remote does the same). Referenced blobs: output files, stdout and
// stderr when given by digest, and each output directory's Tree blob together with the files
// of every Directory in that Tree. Output symlinks reference nothing. Bytes that do not parse
// as an ActionResult (or a Tree that does not parse) make the entry incomplete.
//
// Thread safety: stateless; one instance may serve all threads.
#pragma once

#include <string_view>

#include "buildcache/build_cache.h"

namespace cinch::reapi {

class ProtoActionResultChecker : public buildcache::ActionResultChecker {
 public:
  bool Complete(std::string_view action_result, buildcache::BuildCache& cache) override;
};

}  // namespace cinch::reapi
