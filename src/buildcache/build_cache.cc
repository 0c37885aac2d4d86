#include "buildcache/build_cache.h"

#include <algorithm>
#include <array>
#include <utility>

#include "common/check.h"

namespace cinch::buildcache {

namespace {

std::string_view StoreKey(const Digest& digest) { return digest.bytes(); }

bool HashMatches(const Digest& digest, const Sha256::Hash& hash) { return digest.hash == hash; }

BlobOutcome FromStoreOutcome(Outcome outcome) {
  switch (outcome) {
    case Outcome::kStored:
    case Outcome::kNotStored:  // kAdd: present already (a CAS key names its content)
      return BlobOutcome::kOk;
    case Outcome::kTooLarge:
      return BlobOutcome::kTooLarge;
    case Outcome::kOutOfMemory:
      return BlobOutcome::kOutOfMemory;
    default:
      CINCH_CHECK(false && "a set or add answers only the outcomes above");
  }
  return BlobOutcome::kOutOfMemory;
}

// A CAS key names its content, so a blob that appeared meanwhile is the same blob: kAdd leaves
// it alone instead of writing a second copy. An action result replaces the previous one.
SetMode ModeOf(Kind kind) { return kind == Kind::kCas ? SetMode::kAdd : SetMode::kSet; }

}  // namespace

Keyspace KeyspaceOf(Kind kind) { return kind == Kind::kCas ? kCasKeyspace : kAcKeyspace; }

std::string_view BlobOutcomeName(BlobOutcome outcome) {
  switch (outcome) {
    case BlobOutcome::kOk:
      return "OK";
    case BlobOutcome::kDigestMismatch:
      return "DIGEST_MISMATCH";
    case BlobOutcome::kSizeMismatch:
      return "SIZE_MISMATCH";
    case BlobOutcome::kTooLarge:
      return "TOO_LARGE";
    case BlobOutcome::kOutOfMemory:
      return "OUT_OF_MEMORY";
  }
  return "UNKNOWN";
}

BuildCache::BuildCache(Store* store, ActionResultChecker* checker)
    : store_(store), checker_(checker) {}

bool BuildCache::Contains(Kind kind, const Digest& digest) {
  ItemRef ref;
  return store_->Peek(KeyspaceOf(kind), StoreKey(digest), &ref);
}

bool BuildCache::Get(Kind kind, const Digest& digest, ItemRef* out) {
  const bool cas = kind == Kind::kCas;
  if (!store_->Get(KeyspaceOf(kind), StoreKey(digest), out)) {
    Bump(cas ? &cas_misses_ : &ac_misses_);
    return false;
  }
  if (!cas && checker_ != nullptr && !checker_->Complete(out->value(), *this)) {
    out->Reset();
    Bump(&ac_incomplete_);
    Bump(&ac_misses_);
    return false;
  }
  Bump(cas ? &cas_hits_ : &ac_hits_);
  return true;
}

BuildCacheStats BuildCache::GetStats() const {
  BuildCacheStats s;
  s.cas_hits = cas_hits_.load(std::memory_order_relaxed);
  s.cas_misses = cas_misses_.load(std::memory_order_relaxed);
  s.ac_hits = ac_hits_.load(std::memory_order_relaxed);
  s.ac_misses = ac_misses_.load(std::memory_order_relaxed);
  s.ac_incomplete = ac_incomplete_.load(std::memory_order_relaxed);
  s.cas_stored = cas_stored_.load(std::memory_order_relaxed);
  s.ac_stored = ac_stored_.load(std::memory_order_relaxed);
  s.refused = refused_.load(std::memory_order_relaxed);
  return s;
}

BlobOutcome BuildCache::Counted(Kind kind, BlobOutcome outcome) {
  if (outcome != BlobOutcome::kOk) {
    Bump(&refused_);
  } else {
    Bump(kind == Kind::kCas ? &cas_stored_ : &ac_stored_);
  }
  return outcome;
}

BlobOutcome BuildCache::Put(Kind kind, const Digest& digest, std::string_view bytes) {
  return Counted(kind, PutUncounted(kind, digest, bytes));
}

BlobOutcome BuildCache::PutUncounted(Kind kind, const Digest& digest, std::string_view bytes) {
  if (bytes.size() > max_blob_size()) return BlobOutcome::kTooLarge;
  if (kind == Kind::kCas) {
    if (digest.size != Digest::kUnknownSize && static_cast<uint64_t>(digest.size) != bytes.size()) {
      return BlobOutcome::kDigestMismatch;
    }
    if (!HashMatches(digest, Sha256::Of(bytes))) return BlobOutcome::kDigestMismatch;
    if (Contains(kind, digest)) return BlobOutcome::kOk;
  }
  return Write(kind, digest, bytes);
}

BlobOutcome BuildCache::Write(Kind kind, const Digest& digest, std::string_view bytes) {
  return FromStoreOutcome(store_->Write(KeyspaceOf(kind), ModeOf(kind), StoreKey(digest), bytes,
                                        /*flags=*/0, /*exptime=*/0));
}

BlobOutcome BuildCache::BeginUpload(Kind kind, const Digest& digest, int64_t size, Upload* out) {
  const BlobOutcome outcome = BeginUploadUncounted(kind, digest, size, out);
  if (outcome != BlobOutcome::kOk) Bump(&refused_);  // an upload begun is counted at Commit
  return outcome;
}

BlobOutcome BuildCache::BeginUploadUncounted(Kind kind, const Digest& digest, int64_t size,
                                             Upload* out) {
  out->Abort();
  if (size != Digest::kUnknownSize && static_cast<uint64_t>(size) > max_blob_size()) {
    return BlobOutcome::kTooLarge;
  }
  if (kind == Kind::kCas && digest.size != Digest::kUnknownSize && size != Digest::kUnknownSize &&
      digest.size != size) {
    return BlobOutcome::kSizeMismatch;
  }
  out->cache_ = this;
  out->kind_ = kind;
  out->digest_ = digest;
  out->size_ = size;
  out->limit_ = size == Digest::kUnknownSize ? max_blob_size() : static_cast<uint64_t>(size);
  out->present_ = kind == Kind::kCas && Contains(kind, digest);
  if (out->present_ || size == Digest::kUnknownSize) return BlobOutcome::kOk;
  Outcome begun =
      store_->BeginWrite(KeyspaceOf(kind), ModeOf(kind), StoreKey(digest),
                         static_cast<size_t>(size), /*flags=*/0, /*exptime=*/0, &out->writer_);
  if (begun == Outcome::kNotStored) {  // a CAS blob stored since Contains: only hash
    out->present_ = true;
    return BlobOutcome::kOk;
  }
  BlobOutcome outcome = FromStoreOutcome(begun);
  if (outcome != BlobOutcome::kOk) out->Abort();
  return outcome;
}

uint64_t BuildCache::max_blob_size() const { return store_->options().max_item_size; }

bool BuildCache::Upload::Append(std::string_view bytes) {
  CINCH_DCHECK(active());
  if (failure_ != BlobOutcome::kOk) return false;
  if (bytes.size() > limit_ - received_) {
    failure_ = size_ == Digest::kUnknownSize ? BlobOutcome::kTooLarge : BlobOutcome::kSizeMismatch;
    std::string().swap(buffer_);
    writer_.Abort();
    return false;
  }
  if (kind_ == Kind::kCas) sha_.Update(bytes);
  if (writer_) {
    std::copy(bytes.begin(), bytes.end(), writer_.data() + received_);
  } else if (!present_) {
    buffer_.append(bytes);
  }
  received_ += bytes.size();
  return true;
}

BlobOutcome BuildCache::Upload::Commit() {
  CINCH_DCHECK(active());
  BlobOutcome outcome = failure_;
  if (outcome == BlobOutcome::kOk && size_ != Digest::kUnknownSize &&
      received_ != static_cast<uint64_t>(size_)) {
    outcome = BlobOutcome::kSizeMismatch;
  }
  if (outcome == BlobOutcome::kOk && kind_ == Kind::kCas) {
    bool size_ok =
        digest_.size == Digest::kUnknownSize || static_cast<uint64_t>(digest_.size) == received_;
    if (!size_ok || !HashMatches(digest_, sha_.Final())) outcome = BlobOutcome::kDigestMismatch;
  }
  if (outcome == BlobOutcome::kOk && writer_) {
    outcome = FromStoreOutcome(writer_.Commit());
  } else if (outcome == BlobOutcome::kOk && !present_) {
    outcome = cache_->Write(kind_, digest_, buffer_);
  }
  BuildCache* cache = cache_;
  const Kind kind = kind_;
  Abort();
  return cache->Counted(kind, outcome);
}

void BuildCache::Upload::Abort() {
  cache_ = nullptr;
  received_ = 0;
  present_ = false;
  failure_ = BlobOutcome::kOk;
  sha_.Reset();
  writer_.Abort();
  std::string().swap(buffer_);
}

}  // namespace cinch::buildcache
