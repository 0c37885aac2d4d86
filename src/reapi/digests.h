// Conversions between REAPI's Digest message and buildcache::Digest. Internal to src/reapi:
// the only header besides services.h that names generated types.
#pragma once

#include "build/bazel/remote/execution/v2/remote_execution.pb.h"
#include "buildcache/build_cache.h"
#include "cinch/store.h"

namespace cinch::reapi {

namespace rev2 = build::bazel::remote::execution::v2;

// False for anything but 64 hex digits and a size >= 0.
bool FromProto(const rev2::Digest& in, buildcache::Digest* out);
void ToProto(const buildcache::Digest& in, rev2::Digest* out);

// The digest of zero bytes. REAPI clients may reference it without ever uploading it (Bazel
// does for empty outputs), so it is present by definition.
bool IsEmptyBlob(const buildcache::Digest& d);

// Present in the CAS (the empty blob always is). No read bump.
bool CasContains(buildcache::BuildCache& cache, const buildcache::Digest& d);

// Reads a CAS blob whose length is d.size. Entries are keyed by hash alone (an HTTP PUT carries
// no size), so a digest naming the right hash with another size finds a blob that is not the
// one asked for: a miss, never bytes read past the value.
bool CasGet(buildcache::BuildCache& cache, const buildcache::Digest& d, ItemRef* out);

}  // namespace cinch::reapi
