#include "buildcache/build_cache.h"

#include <algorithm>
#include <array>
#include <utility>

#include "common/check.h"

namespace cinch::buildcache {

namespace {

// The store key of an entry (docs/http-cache.md):
//
//   byte 0     1 ............................ 32
//   +------+----------------------------------+
//   | kind | sha256 digest, 32 binary bytes    |
//   +------+----------------------------------+
//   kind: 'C' for CAS, 'A' for AC
class EntryKey {
 public:
  EntryKey(Kind kind, const Digest& digest) {
    bytes_[0] = kind == Kind::kCas ? 'C' : 'A';
    std::string_view hash = digest.bytes();
    std::copy(hash.begin(), hash.end(), bytes_.begin() + 1);
  }
  std::string_view view() const { return {bytes_.data(), bytes_.size()}; }

 private:
  std::array<char, 1 + Digest::kHashBytes> bytes_;
};

bool HashMatches(const Digest& digest, const Sha256::Hash& hash) { return digest.hash == hash; }

}  // namespace

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
  return store_->Peek(EntryKey(kind, digest).view(), &ref);
}

bool BuildCache::Get(Kind kind, const Digest& digest, ItemRef* out) {
  if (!store_->Get(EntryKey(kind, digest).view(), out)) return false;
  if (kind == Kind::kAc && checker_ != nullptr && !checker_->Complete(out->value(), *this)) {
    out->Reset();
    return false;
  }
  return true;
}

BlobOutcome BuildCache::Put(Kind kind, const Digest& digest, std::string_view bytes) {
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
  // A CAS key names its content, so a blob that appeared meanwhile is the same blob: kAdd
  // leaves it alone instead of writing a second copy.
  SetMode mode = kind == Kind::kCas ? SetMode::kAdd : SetMode::kSet;
  Outcome outcome = store_->Write(mode, EntryKey(kind, digest).view(), bytes, /*flags=*/0,
                                  /*exptime=*/0, /*cas_unique=*/0, /*binary_key=*/true);
  switch (outcome) {
    case Outcome::kStored:
    case Outcome::kNotStored:  // kAdd: present already
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

BlobOutcome BuildCache::BeginUpload(Kind kind, const Digest& digest, int64_t size, Upload* out) {
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
  if (!out->present_ && size != Digest::kUnknownSize) out->buffer_.reserve(size);
  return BlobOutcome::kOk;
}

uint64_t BuildCache::max_blob_size() const { return store_->options().max_item_size; }

bool BuildCache::Upload::Append(std::string_view bytes) {
  CINCH_DCHECK(active());
  if (failure_ != BlobOutcome::kOk) return false;
  if (bytes.size() > limit_ - received_) {
    failure_ = size_ == Digest::kUnknownSize ? BlobOutcome::kTooLarge : BlobOutcome::kSizeMismatch;
    std::string().swap(buffer_);
    return false;
  }
  received_ += bytes.size();
  if (kind_ == Kind::kCas) sha_.Update(bytes);
  if (!present_) buffer_.append(bytes);
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
  if (outcome == BlobOutcome::kOk && !present_) outcome = cache_->Write(kind_, digest_, buffer_);
  Abort();
  return outcome;
}

void BuildCache::Upload::Abort() {
  cache_ = nullptr;
  received_ = 0;
  present_ = false;
  failure_ = BlobOutcome::kOk;
  sha_.Reset();
  std::string().swap(buffer_);
}

}  // namespace cinch::buildcache
