// BuildCache over a real Store (no background cleaner, so every outcome is deterministic).

#include "buildcache/build_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>

#include "cinch/options.h"
#include "cinch/stats.h"

namespace cinch::buildcache {

static void PrintTo(BlobOutcome outcome, std::ostream* os) { *os << BlobOutcomeName(outcome); }

namespace {

constexpr size_t kMiB = 1024 * 1024;

Digest DigestOf(std::string_view bytes, bool with_size = false) {
  Digest d;
  d.hash = Sha256::Of(bytes);
  if (with_size) d.size = static_cast<int64_t>(bytes.size());
  return d;
}

std::string Blob(size_t size, int seed) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>(i * 31 + seed * 7 + i / 251);
  return s;
}

// A checker whose action results are lists of 64-hex CAS digests, one per line: complete when
// every listed blob is in the CAS. Counts its calls.
class ListChecker : public ActionResultChecker {
 public:
  bool Complete(std::string_view result, BuildCache& cache) override {
    ++calls;
    while (!result.empty()) {
      size_t end = result.find('\n');
      std::string_view line = result.substr(0, end);
      Digest d;
      if (!ParseHexDigest(line, &d) || !cache.Contains(Kind::kCas, d)) return false;
      result = end == std::string_view::npos ? std::string_view() : result.substr(end + 1);
    }
    return true;
  }
  int calls = 0;
};

class BuildCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(/*max_item_size=*/kMiB, &checker_); }

  void Open(size_t max_item_size, ActionResultChecker* checker) {
    Options o;
    o.memory_limit = 64 * kMiB;
    o.max_item_size = max_item_size;
    o.background_cleaner = false;
    ASSERT_TRUE(Store::Open(o, &store_).ok());
    cache_ = std::make_unique<BuildCache>(store_.get(), checker);
  }

  std::string GetValue(Kind kind, const Digest& d) {
    ItemRef ref;
    if (!cache_->Get(kind, d, &ref)) return "<miss>";
    return std::string(ref.value());
  }
  uint64_t Items() { return store_->GetStats().items; }
  // Where the stored value lives: a write (even of the same bytes) appends a new version
  // elsewhere in the log, so an unchanged address means nothing was written.
  const char* Location(Kind kind, const Digest& d) {
    ItemRef ref;
    return store_->Peek(KeyspaceOf(kind), d.bytes(), &ref) ? ref.value().data() : nullptr;
  }
  // Removes an entry as eviction would.
  void Evict(Kind kind, const Digest& d) { store_->Delete(KeyspaceOf(kind), d.bytes()); }

  ListChecker checker_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BuildCache> cache_;
};

TEST_F(BuildCacheTest, CasPutGetContains) {
  std::string blob = Blob(1000, 1);
  Digest d = DigestOf(blob);
  EXPECT_FALSE(cache_->Contains(Kind::kCas, d));
  EXPECT_EQ(GetValue(Kind::kCas, d), "<miss>");
  EXPECT_EQ(cache_->Put(Kind::kCas, d, blob), BlobOutcome::kOk);
  EXPECT_TRUE(cache_->Contains(Kind::kCas, d));
  EXPECT_EQ(GetValue(Kind::kCas, d), blob);
  // The same digest is a different entry in the AC.
  EXPECT_FALSE(cache_->Contains(Kind::kAc, d));
  EXPECT_EQ(GetValue(Kind::kAc, d), "<miss>");
  // Empty blob.
  Digest empty = DigestOf("", /*with_size=*/true);
  EXPECT_EQ(cache_->Put(Kind::kCas, empty, ""), BlobOutcome::kOk);
  EXPECT_EQ(GetValue(Kind::kCas, empty), "");
}

TEST_F(BuildCacheTest, KeyIsTheBinaryDigestInTheKindsKeyspace) {
  std::string blob = "hello";
  Digest d = DigestOf(blob);
  ASSERT_EQ(cache_->Put(Kind::kCas, d, blob), BlobOutcome::kOk);
  ItemRef ref;
  ASSERT_TRUE(store_->Get(kCasKeyspace, d.bytes(), &ref));
  EXPECT_EQ(ref.value(), blob);
  EXPECT_EQ(ref.key().size(), 32u);
  EXPECT_FALSE(store_->Get(d.bytes(), &ref));               // not among memcached's keys
  EXPECT_FALSE(store_->Get(HexDigest(d), &ref));            // nor under the hex form
  EXPECT_FALSE(store_->Get(kAcKeyspace, d.bytes(), &ref));  // nor in the action cache
  // A blob of 40-128 bytes costs the compact 2-byte item header: no flags, expiry or state.
  std::string small = Blob(100, 3);
  ASSERT_EQ(cache_->Put(Kind::kCas, DigestOf(small), small), BlobOutcome::kOk);
  KeyspaceStats stats = store_->GetKeyspaceStats(kCasKeyspace);
  EXPECT_EQ(stats.items, 2u);
  EXPECT_EQ(stats.item_bytes - stats.key_value_bytes, 2u * 2u);
}

// An upload of a known size reserves the entry in the store at BeginUpload and fills it in
// place: the memory is the store's (charged to it) from the first byte, not a buffer's.
TEST_F(BuildCacheTest, SizedUploadIsReservedInTheStore) {
  std::string blob = Blob(300'000, 12);
  Digest d = DigestOf(blob, /*with_size=*/true);
  BuildCache::Upload up;
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, blob.size(), &up), BlobOutcome::kOk);
  EXPECT_GE(store_->GetKeyspaceStats(kCasKeyspace).pending_write_bytes, blob.size());
  EXPECT_TRUE(up.Append(blob));
  EXPECT_EQ(up.Commit(), BlobOutcome::kOk);
  EXPECT_EQ(store_->GetKeyspaceStats(kCasKeyspace).pending_write_bytes, 0u);
  EXPECT_EQ(GetValue(Kind::kCas, d), blob);
  // A wrong body gives the reservation back and stores nothing.
  std::string other = Blob(300'000, 13);
  Digest o = DigestOf(other, true);
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, o, other.size(), &up), BlobOutcome::kOk);
  other[5] ^= 1;
  EXPECT_TRUE(up.Append(other));
  EXPECT_EQ(up.Commit(), BlobOutcome::kDigestMismatch);
  EXPECT_EQ(store_->GetKeyspaceStats(kCasKeyspace).pending_write_bytes, 0u);
  EXPECT_FALSE(cache_->Contains(Kind::kCas, o));
}

TEST_F(BuildCacheTest, CasMismatchRefusedNothingStored) {
  std::string blob = Blob(300, 2);
  Digest d = DigestOf(blob);
  std::string other = blob;
  other[150] ^= 1;
  EXPECT_EQ(cache_->Put(Kind::kCas, d, other), BlobOutcome::kDigestMismatch);
  EXPECT_FALSE(cache_->Contains(Kind::kCas, d));
  // A right hash with a wrong size is refused too.
  Digest sized = DigestOf(blob, true);
  sized.size += 1;
  EXPECT_EQ(cache_->Put(Kind::kCas, sized, blob), BlobOutcome::kDigestMismatch);
  // Streamed.
  BuildCache::Upload up;
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, other.size(), &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(other));
  EXPECT_EQ(up.Commit(), BlobOutcome::kDigestMismatch);
  EXPECT_FALSE(up.active());
  EXPECT_FALSE(cache_->Contains(Kind::kCas, d));
  EXPECT_EQ(Items(), 0u);
}

TEST_F(BuildCacheTest, PresentBlobIsNotWrittenAgain) {
  std::string blob = Blob(5000, 3);
  Digest d = DigestOf(blob);
  ASSERT_EQ(cache_->Put(Kind::kCas, d, blob), BlobOutcome::kOk);
  const char* location = Location(Kind::kCas, d);
  ASSERT_NE(location, nullptr);
  EXPECT_EQ(cache_->Put(Kind::kCas, d, blob), BlobOutcome::kOk);
  BuildCache::Upload up;
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, blob.size(), &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.already_present());
  EXPECT_TRUE(up.Append(blob));
  EXPECT_EQ(up.Commit(), BlobOutcome::kOk);
  EXPECT_EQ(Location(Kind::kCas, d), location);
  EXPECT_EQ(Items(), 1u);
  // (An AC entry rewritten does move: the check above can fail.)
  ASSERT_EQ(cache_->Put(Kind::kAc, d, blob), BlobOutcome::kOk);
  const char* ac_location = Location(Kind::kAc, d);
  ASSERT_EQ(cache_->Put(Kind::kAc, d, blob), BlobOutcome::kOk);
  EXPECT_NE(Location(Kind::kAc, d), ac_location);
  // Still verified: wrong bytes for a present digest are refused, the blob stays intact.
  std::string wrong = blob;
  wrong[0] ^= 0x40;
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, wrong.size(), &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(wrong));
  EXPECT_EQ(up.Commit(), BlobOutcome::kDigestMismatch);
  EXPECT_EQ(cache_->Put(Kind::kCas, d, wrong), BlobOutcome::kDigestMismatch);
  EXPECT_EQ(GetValue(Kind::kCas, d), blob);
  EXPECT_EQ(Location(Kind::kCas, d), location);
}

TEST_F(BuildCacheTest, TooLarge) {
  Open(/*max_item_size=*/64 * 1024, &checker_);
  uint64_t max = cache_->max_blob_size();
  EXPECT_EQ(max, 64u * 1024);
  std::string big = Blob(max + 1, 4);
  Digest d = DigestOf(big);
  EXPECT_EQ(cache_->Put(Kind::kCas, d, big), BlobOutcome::kTooLarge);
  EXPECT_EQ(cache_->Put(Kind::kAc, d, big), BlobOutcome::kTooLarge);
  BuildCache::Upload up;
  EXPECT_EQ(cache_->BeginUpload(Kind::kCas, d, big.size(), &up), BlobOutcome::kTooLarge);
  EXPECT_FALSE(up.active());
  // Unknown size (chunked): refused once the bytes pass the limit.
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, Digest::kUnknownSize, &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(std::string_view(big).substr(0, max)));
  EXPECT_FALSE(up.Append(std::string_view(big).substr(max)));
  EXPECT_FALSE(up.Append("x"));
  EXPECT_EQ(up.Commit(), BlobOutcome::kTooLarge);
  // Exactly max bytes of value: the key and item header push it over the store's limit.
  std::string at_max = Blob(max, 5);
  EXPECT_EQ(cache_->Put(Kind::kCas, DigestOf(at_max), at_max), BlobOutcome::kTooLarge);
  EXPECT_EQ(Items(), 0u);
  std::string fits = Blob(max - 200, 6);
  EXPECT_EQ(cache_->Put(Kind::kCas, DigestOf(fits), fits), BlobOutcome::kOk);
}

TEST_F(BuildCacheTest, UploadChunked) {
  std::string blob = Blob(300000, 7);
  for (int64_t announced : {static_cast<int64_t>(blob.size()), Digest::kUnknownSize}) {
    Digest d = DigestOf(blob, /*with_size=*/announced != Digest::kUnknownSize);
    BuildCache::Upload up;
    ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, announced, &up), BlobOutcome::kOk);
    EXPECT_FALSE(up.already_present());
    for (size_t at = 0, step = 1; at < blob.size(); at += step, step = step * 3 + 1) {
      ASSERT_TRUE(up.Append(std::string_view(blob).substr(at, step)));
      EXPECT_FALSE(cache_->Contains(Kind::kCas, d));  // not visible before Commit
    }
    EXPECT_EQ(up.received(), blob.size());
    EXPECT_EQ(up.Commit(), BlobOutcome::kOk);
    EXPECT_EQ(GetValue(Kind::kCas, d), blob);
    Evict(Kind::kCas, d);
  }
}

TEST_F(BuildCacheTest, UploadSizeMismatches) {
  std::string blob = Blob(1000, 8);
  Digest d = DigestOf(blob, true);
  BuildCache::Upload up;
  EXPECT_EQ(cache_->BeginUpload(Kind::kCas, d, 999, &up), BlobOutcome::kSizeMismatch);
  // Short.
  ASSERT_EQ(cache_->BeginUpload(Kind::kAc, d, 1000, &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(std::string_view(blob).substr(0, 999)));
  EXPECT_EQ(up.Commit(), BlobOutcome::kSizeMismatch);
  // Long.
  ASSERT_EQ(cache_->BeginUpload(Kind::kAc, d, 1000, &up), BlobOutcome::kOk);
  EXPECT_FALSE(up.Append(blob + "x"));
  EXPECT_EQ(up.Commit(), BlobOutcome::kSizeMismatch);
  EXPECT_EQ(Items(), 0u);
}

TEST_F(BuildCacheTest, AbandonedUploadStoresNothing) {
  std::string blob = Blob(2000, 9);
  Digest d = DigestOf(blob);
  {
    BuildCache::Upload up;
    ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, blob.size(), &up), BlobOutcome::kOk);
    EXPECT_TRUE(up.Append(blob));
  }
  BuildCache::Upload up;
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d, blob.size(), &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(blob));
  up.Abort();
  EXPECT_FALSE(up.active());
  EXPECT_EQ(Items(), 0u);
}

TEST_F(BuildCacheTest, AcStoredAsSentAndCheckedOnGet) {
  std::string out1 = Blob(100, 10), out2 = Blob(200, 11);
  Digest d1 = DigestOf(out1), d2 = DigestOf(out2);
  std::string result = HexDigest(d1) + "\n" + HexDigest(d2);
  Digest action = DigestOf("the action");
  // AC bytes are not the digest's content: stored as sent.
  EXPECT_EQ(cache_->Put(Kind::kAc, action, result), BlobOutcome::kOk);
  EXPECT_TRUE(cache_->Contains(Kind::kAc, action));  // Contains does not check
  EXPECT_EQ(GetValue(Kind::kAc, action), "<miss>");  // outputs absent
  ASSERT_EQ(cache_->Put(Kind::kCas, d1, out1), BlobOutcome::kOk);
  EXPECT_EQ(GetValue(Kind::kAc, action), "<miss>");  // one still absent
  ASSERT_EQ(cache_->Put(Kind::kCas, d2, out2), BlobOutcome::kOk);
  EXPECT_EQ(GetValue(Kind::kAc, action), result);
  // An output evicted (deleted here) makes the entry a miss again.
  Evict(Kind::kCas, d2);
  EXPECT_EQ(GetValue(Kind::kAc, action), "<miss>");
  EXPECT_EQ(checker_.calls, 4);
  // Replaced by a later Put, streamed.
  BuildCache::Upload up;
  ASSERT_EQ(cache_->BeginUpload(Kind::kAc, action, Digest::kUnknownSize, &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(HexDigest(d1)));
  EXPECT_EQ(up.Commit(), BlobOutcome::kOk);
  EXPECT_EQ(GetValue(Kind::kAc, action), HexDigest(d1));
  // CAS Get never consults the checker.
  int calls = checker_.calls;
  EXPECT_EQ(GetValue(Kind::kCas, d1), out1);
  EXPECT_EQ(checker_.calls, calls);
}

TEST_F(BuildCacheTest, CountsReadsAndWritesByKindAndOutcome) {
  std::string out1 = Blob(100, 20);
  Digest d1 = DigestOf(out1);
  Digest action = DigestOf("counted action");
  EXPECT_EQ(GetValue(Kind::kCas, d1), "<miss>");
  ASSERT_EQ(cache_->Put(Kind::kCas, d1, out1), BlobOutcome::kOk);
  ASSERT_EQ(cache_->Put(Kind::kCas, d1, out1), BlobOutcome::kOk);  // present: stored again
  EXPECT_EQ(cache_->Put(Kind::kCas, DigestOf("other"), out1), BlobOutcome::kDigestMismatch);
  EXPECT_EQ(GetValue(Kind::kCas, d1), out1);
  ASSERT_EQ(cache_->Put(Kind::kAc, action, HexDigest(d1)), BlobOutcome::kOk);
  EXPECT_EQ(GetValue(Kind::kAc, action), HexDigest(d1));  // complete
  EXPECT_EQ(GetValue(Kind::kAc, DigestOf("never")), "<miss>");
  Evict(Kind::kCas, d1);
  EXPECT_EQ(GetValue(Kind::kAc, action), "<miss>");  // incomplete
  BuildCache::Upload up;
  EXPECT_EQ(cache_->BeginUpload(Kind::kCas, d1, 2 * kMiB, &up), BlobOutcome::kTooLarge);
  ASSERT_EQ(cache_->BeginUpload(Kind::kCas, d1, out1.size(), &up), BlobOutcome::kOk);
  EXPECT_TRUE(up.Append(out1));
  EXPECT_EQ(up.Commit(), BlobOutcome::kOk);
  const BuildCacheStats s = cache_->GetStats();
  EXPECT_EQ(s.cas_hits, 1u);
  EXPECT_EQ(s.cas_misses, 1u);
  EXPECT_EQ(s.ac_hits, 1u);
  EXPECT_EQ(s.ac_misses, 2u);
  EXPECT_EQ(s.ac_incomplete, 1u);
  EXPECT_EQ(s.cas_stored, 3u);
  EXPECT_EQ(s.ac_stored, 1u);
  EXPECT_EQ(s.refused, 2u);
}

TEST_F(BuildCacheTest, AcWithoutCheckerServedAsStored) {
  Open(kMiB, /*checker=*/nullptr);
  Digest action = DigestOf("a");
  EXPECT_EQ(cache_->Put(Kind::kAc, action, "anything"), BlobOutcome::kOk);
  EXPECT_EQ(GetValue(Kind::kAc, action), "anything");
}

TEST_F(BuildCacheTest, OutOfMemoryWithoutEviction) {
  Options o;
  o.memory_limit = 16 * kMiB;
  o.max_item_size = 512 * 1024;
  o.eviction = false;
  o.space_wait_ms = 0;
  o.background_cleaner = false;
  ASSERT_TRUE(Store::Open(o, &store_).ok());
  cache_ = std::make_unique<BuildCache>(store_.get(), nullptr);
  BlobOutcome last = BlobOutcome::kOk;
  int stored = 0;
  for (int i = 0; i < 200 && last == BlobOutcome::kOk; ++i) {
    std::string blob = Blob(400 * 1024, 100 + i);
    last = cache_->Put(Kind::kCas, DigestOf(blob), blob);
    if (last == BlobOutcome::kOk) ++stored;
  }
  EXPECT_EQ(last, BlobOutcome::kOutOfMemory);
  EXPECT_GT(stored, 0);
}

}  // namespace
}  // namespace cinch::buildcache
