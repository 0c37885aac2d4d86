// BuildCache: a remote build cache (Bazel's HTTP cache, REAPI's CAS and action cache) over a
// cinch::Store. It is protocol-free: src/http and src/reapi map their requests onto it.
//
// Two kinds of entries, both keyed by a SHA-256 digest:
//   - CAS (content-addressed storage): the blob whose sha256 is the digest. A write whose
//     bytes do not hash to the digest is refused and stores nothing, so a reader never gets
//     bytes that do not match the name it asked for.
//   - AC (action cache): an ActionResult (serialized protobuf) under the digest of the action
//     that produced it, stored as sent. The engine evicts; an ActionResult whose outputs were
//     evicted from the CAS must not be served, or a build would fetch blobs that are gone. When
//     an ActionResultChecker is given, Get answers a miss for such an entry (as bazel-remote).
//
// Keys: the 32 binary digest bytes (not 64 hex characters), CAS blobs and action results each
// in a keyspace of their own (kCasKeyspace, kAcKeyspace), apart from memcached's keys and from
// each other (an Action stored as a CAS blob has the same digest as its action result). Every
// Store call of the build cache is in build_cache.cc.
//
// Writes come whole (Put: small blobs, BatchUpdateBlobs, UpdateActionResult) or streamed
// (BeginUpload + Upload::Append + Upload::Commit: HTTP bodies, ByteStream.Write). An upload of a
// known size reserves the entry's memory in the store at BeginUpload and its bytes are written
// straight into it (Store::BeginWrite), so a 1 GiB blob needs 1 GiB; one of unknown size (HTTP
// chunked) gathers the bytes first. Re-uploading a
// CAS blob that is present only hashes the bytes: no second copy and no write, so a client that
// sends everything again (Bazel does) causes no eviction churn.
//
// Thread safety: every BuildCache method may be called from any number of threads at once. An
// Upload is used by one thread at a time. The Store (and the checker) must outlive the
// BuildCache and its Uploads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "buildcache/digest.h"
#include "buildcache/sha256.h"
#include "cinch/store.h"

namespace cinch::buildcache {

enum class Kind : uint8_t { kCas, kAc };

// The store keyspaces of the two kinds (docs/keyspaces.md lists every keyspace in use).
inline constexpr Keyspace kCasKeyspace{1};
inline constexpr Keyspace kAcKeyspace{2};
Keyspace KeyspaceOf(Kind kind);

// How a write ended. Protocol mapping (HTTP / gRPC) is the front end's business.
enum class BlobOutcome {
  kOk,              // stored (Put, Commit) or ready for Append (BeginUpload)
  kDigestMismatch,  // CAS: the bytes' sha256 (or size) is not the digest; nothing stored
  kSizeMismatch,    // more or fewer bytes than BeginUpload announced; nothing stored
  kTooLarge,        // larger than max_blob_size(), or than the store takes with key and header
  kOutOfMemory,     // the store is full and evicts nothing (eviction disabled)
};

// Short, stable name ("OK", "DIGEST_MISMATCH", ...), for logs and tests.
std::string_view BlobOutcomeName(BlobOutcome outcome);

class BuildCache;

// What the build cache did, whichever front end (HTTP, gRPC) asked: reads (Get) by kind and
// answer, and writes (Put, Upload::Commit) stored or refused. A CAS read includes those of
// the checker (output directories' Tree blobs); Contains is not counted.
struct BuildCacheStats {
  uint64_t cas_hits = 0;
  uint64_t cas_misses = 0;
  uint64_t ac_hits = 0;
  uint64_t ac_misses = 0;      // absent, or incomplete (below)
  uint64_t ac_incomplete = 0;  // stored, but an output was evicted: answered as a miss
  uint64_t cas_stored = 0;     // including blobs already present (not written again)
  uint64_t ac_stored = 0;
  uint64_t refused = 0;  // any other outcome than kOk, of either kind
};

// Whether every blob an ActionResult references is present in the CAS (output files,
// stdout/stderr, output directories' Tree blobs and the files they list). Implemented where the
// generated protobuf code is (src/reapi); called from BuildCache::Get on any thread.
class ActionResultChecker {
 public:
  virtual ~ActionResultChecker() = default;
  // `action_result` is the stored entry's bytes. A result that does not parse is incomplete.
  virtual bool Complete(std::string_view action_result, BuildCache& cache) = 0;
};

class BuildCache {
 public:
  class Upload;

  // Neither is owned; `checker` may be null (then AC entries are served as stored).
  BuildCache(Store* store, ActionResultChecker* checker);

  // Whether the entry is stored. Not an access (no read bump) and copies nothing.
  bool Contains(Kind kind, const Digest& digest);
  // Reads the entry in place (see ItemRef: release it once written). An AC entry that the
  // checker finds incomplete is a miss. False leaves *out empty.
  bool Get(Kind kind, const Digest& digest, ItemRef* out);

  // Stores a whole blob. CAS: verifies sha256 (and digest.size when known); a present blob is
  // not written again. AC: stored as sent, replacing any previous entry.
  BlobOutcome Put(Kind kind, const Digest& digest, std::string_view bytes);

  // Starts a streamed write of `size` bytes (Digest::kUnknownSize when not known in advance,
  // e.g. an HTTP chunked body). kOk: *out is ready for Append; kTooLarge: `size` exceeds
  // max_blob_size(); kSizeMismatch: a CAS digest.size that differs from `size`. *out is reset
  // first either way.
  BlobOutcome BeginUpload(Kind kind, const Digest& digest, int64_t size, Upload* out);

  // A snapshot of the counters (relaxed: each counter is exact, not all at one instant).
  BuildCacheStats GetStats() const;

  // The largest blob a write may announce (the store's max_item_size, -I); the store may still
  // refuse one close to it with kTooLarge (key and item header count too).
  uint64_t max_blob_size() const;

 private:
  BlobOutcome Write(Kind kind, const Digest& digest, std::string_view bytes);
  BlobOutcome PutUncounted(Kind kind, const Digest& digest, std::string_view bytes);
  BlobOutcome BeginUploadUncounted(Kind kind, const Digest& digest, int64_t size, Upload* out);

  // Counts a write's outcome; returns it.
  BlobOutcome Counted(Kind kind, BlobOutcome outcome);
  static void Bump(std::atomic<uint64_t>* counter) {
    counter->fetch_add(1, std::memory_order_relaxed);
  }

  Store* store_;
  ActionResultChecker* checker_;
  std::atomic<uint64_t> cas_hits_{0}, cas_misses_{0}, ac_hits_{0}, ac_misses_{0}, ac_incomplete_{0},
      cas_stored_{0}, ac_stored_{0}, refused_{0};
};

// One streamed write. Default-constructed inactive; BeginUpload makes it active; Commit or
// Abort (or destruction, or another BeginUpload) ends it, storing nothing unless Commit said
// kOk. Move-only.
class BuildCache::Upload {
 public:
  Upload() = default;
  Upload(Upload&&) = default;
  Upload& operator=(Upload&&) = default;
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  bool active() const { return cache_ != nullptr; }
  // The CAS blob was present at BeginUpload: Append only hashes, Commit verifies and writes
  // nothing.
  bool already_present() const { return present_; }
  uint64_t received() const { return received_; }

  // Takes the next bytes. False once the upload has failed (more bytes than announced or than
  // max_blob_size()); it then ignores further bytes, and Commit reports the failure.
  // REQUIRES: active().
  bool Append(std::string_view bytes);
  // Verifies (CAS: sha256 and size) and stores. Ends the upload. REQUIRES: active().
  BlobOutcome Commit();
  // Drops what was received. Ends the upload.
  void Abort();

 private:
  friend class BuildCache;

  BuildCache* cache_ = nullptr;
  Kind kind_ = Kind::kCas;
  Digest digest_;
  int64_t size_ = Digest::kUnknownSize;
  uint64_t limit_ = 0;  // the most bytes Append accepts
  uint64_t received_ = 0;
  bool present_ = false;
  BlobOutcome failure_ = BlobOutcome::kOk;
  Sha256 sha_;          // CAS only
  ValueWriter writer_;  // size known and not present_: the entry being filled in place
  std::string buffer_;  // size unknown and not present_: the bytes so far
};

}  // namespace cinch::buildcache
