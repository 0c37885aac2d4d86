// Randomized differential test of cinch::Store against a std::unordered_map model.
//
// The store gets a tiny heap (4 KiB segments, a few dozen of them) so that eviction,
// compaction and out-of-line items are exercised on nearly every write. After every operation
// the store's answer must be consistent with the model:
//   - a key the store returns holds exactly the model's latest value, flags, expiry and CAS;
//   - a key the model holds as absent, deleted, expired or flushed is never returned;
//   - a key the model holds but the store lacks is allowed only with eviction enabled (the model
//     then forgets it);
//   - kOutOfMemory is allowed only with eviction disabled, when the model's live data fills at
//     least half of the segment memory the limit leaves;
//   - GetStats().resident_bytes never exceeds memory_limit (the limit the store was opened
//     with; Resize variants lower and raise the effective one while running, and without a
//     background cleaner one pass must bring the store under a lowered one);
//   - the per-item state of memcached's meta commands (hit before, stale, recache token,
//     binary key) that a read reports is the model's, and Fetch hands the recache token to
//     exactly the client the model expects.
//
// Every key is stored in three keyspaces (0, 1, 700) under the same bytes: the model tracks them
// as different keys, so any answer crossing keyspaces is a mismatch. Streaming writes
// (Store::BeginWrite) run beside everything else: up to four outstanding, filled in two halves
// at their beginning and end, then committed or aborted; the model learns a value at its commit.
//
// No variant has quotas without eviction beside a background cleaner: there a writer whose
// every attempt finds the background pass running answers kOutOfMemory when space_wait_ms
// passes, and a pass descheduled that long on a loaded machine made the check below fail on a
// store holding only flushed items (a timing dependency of the store, not yet removed).
// Quota variants (docs/keyspaces.md, "Quotas") bound keyspaces 1 and 700 to a few segments
// each, so that they evict their own items (or, with eviction off, refuse writes) all the time,
// and half of the flushes are of one keyspace (FlushAll(keyspace, delay)).
//
// Time comes from a ManualClock. Variants: eviction on/off x background cleaner on/off x seeds,
// and a few with a tiny file tier (docs/file-tier.md): RAM evicts to the file, reads promote
// from it, and the file compacts and evicts, all the time. A read of an item on file that finds
// no memory to promote it into is refused (Miss::kNoMemory, or kOutOfMemory for gat; other
// changes read it without promoting it): the item stays on file, and so in the model.
// With the background cleaner off a failure reproduces exactly from (variant, seed); the failure
// message lists the last operations before it.
//
// CINCH_MODEL_OPS overrides the number of operations per variant.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CINCH_MODEL_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define CINCH_MODEL_TEST_SANITIZED 1
#endif
#endif

namespace cinch {

namespace {

constexpr int64_t kThirtyDays = 2592000;
constexpr size_t kSegmentSize = 4096;
constexpr size_t kExtraSegments = 24;  // above the smallest limit Store::Open accepts
// The tier variants: 8 KiB segments, so that values above 1 KiB (a tenth of RandomValue's, and
// appends up to kMaxValue) are jumbo items that fit a file segment and are demoted and
// promoted too (streamed values above 8 KiB are evicted: they fit none), few segments in RAM,
// and a file small beside the key space (600 keys of up to 2000 bytes; a jumbo item takes a
// file segment of its own), so that it fills up and its segments are compacted and evicted.
constexpr size_t kTierSegmentSize = 8192;
constexpr size_t kTierExtraSegments = 12;
constexpr size_t kTierSegments = 12;
constexpr uint16_t kKeyspaces[] = {0, 1, 700};
constexpr size_t kKeyCount = 600;      // 200 keys, each in every keyspace
constexpr size_t kMaxValue = 2000;     // appends never grow a value beyond this
constexpr size_t kMaxItemHeader = 24;  // an upper bound, used only to estimate footprints
constexpr int kSweepEvery = 4096;      // ops between full sweeps of the key space
constexpr size_t kHistory = 40;        // operations shown when a check fails
constexpr size_t kKeyHistory = 8;      // operations on the failing key shown
constexpr size_t kNoKey = ~size_t{0};

int64_t OpsPerVariant() {
  if (const char* env = std::getenv("CINCH_MODEL_OPS")) return std::atoll(env);
#if defined(CINCH_MODEL_TEST_SANITIZED)
  return 30000;
#elif !defined(NDEBUG)
  return 60000;
#else
  return 200000;
#endif
}

// How incr/decr must treat a value.
enum class Numeric {
  kYes,    // a number, whose value the model knows
  kNo,     // certainly not a number
  kMaybe,  // kept for values whose reading is left to the implementation (none at present)
};

// memcached's reading (strtoull + safe_strtoull): leading blanks and one sign skipped, then
// at least one digit, then the end, a blank or a NUL (anything after it ignored); no overflow.
// '-' negates modulo 2^64, and a result of 2^63 or more is refused when the value holds a '-'
// before its first NUL (safe_strtoull's strchr).
Numeric ClassifyNumber(std::string_view v, uint64_t* parsed) {
  auto blank = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t i = 0;
  while (i < v.size() && blank(v[i])) ++i;
  const bool negative = i < v.size() && v[i] == '-';
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
  size_t digits = i;
  uint64_t n = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    uint64_t d = static_cast<uint64_t>(v[i] - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) return Numeric::kNo;  // overflow
    n = n * 10 + d;
  }
  if (i == digits || (i < v.size() && !blank(v[i]) && v[i] != '\0')) return Numeric::kNo;
  if (negative) n = 0 - n;
  if ((n >> 63) != 0 && v.substr(0, v.find('\0')).find('-') != std::string_view::npos) {
    return Numeric::kNo;
  }
  *parsed = n;
  return Numeric::kYes;
}

std::string Printable(std::string_view s, size_t max = 24) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

struct Variant {
  bool eviction;
  bool background_cleaner;
  uint64_t seed;
  bool tier = false;    // a file tier of kTierSegments: demotion, promotion, file compaction
  bool quotas = false;  // kQuotas on keyspaces 1 and 700
  // Store::SetMemoryLimit to a random limit between the least and the one opened with, now
  // and then: the store evicts down to a lowered one while serving, and grows again.
  bool resize = false;
};

// The quota variants' quotas, in segments of kSegmentSize.
constexpr std::pair<uint16_t, size_t> kQuotas[] = {{1, 3}, {700, 6}};

void PrintTo(const Variant& v, std::ostream* os) {
  *os << (v.tier ? "file tier, " : "") << (v.quotas ? "quotas, " : "")
      << (v.eviction ? "eviction" : "no eviction") << ", "
      << (v.background_cleaner ? "background cleaner" : "inline cleaner") << ", seed " << v.seed;
}

// The model's view of one key.
struct Entry {
  std::string value;
  uint32_t flags = 0;
  int64_t expiry = 0;     // absolute Unix seconds; 0 = never
  int64_t stored_at = 0;  // clock second of the last write, for delayed flush_all
  uint64_t cas = 0;       // the store's CAS of this version once seen; 0 = not seen yet
  bool fetched = false;   // read since written (meta 'h')
  bool stale = false;     // marked stale (Invalidate, kCasInvalidate)
  bool token = false;     // the recache token was handed out
  bool binary_key = false;
};

class Differential {
 public:
  Differential(const Variant& variant, const Options& options, Store* store, ManualClock* clock)
      : variant_(variant), options_(options), store_(store), clock_(clock), rng_(variant.seed) {
    // Every key's bytes are stored in each of the keyspaces: the same key in several keyspaces
    // must be as many items. A model key is the keyspace id (2 bytes) then the store's key.
    std::unordered_set<std::string> seen;
    while (keys_.size() < kKeyCount) {
      size_t len = 1 + rng_() % 40;
      std::string key(len, '\0');
      for (char& c : key) c = static_cast<char>(rng_());
      if (!seen.insert(key).second) continue;
      for (uint16_t ks : kKeyspaces) {
        std::string model_key = {static_cast<char>(ks >> 8), static_cast<char>(ks & 255)};
        model_key += key;
        key_index_[model_key] = keys_.size();
        keys_.push_back(model_key);
      }
    }
    key_trace_.resize(keys_.size());
    min_limit_ = Store::MinimumMemoryLimit(options_);
  }

  // Runs the first `stop` of the `ops` random operations (which set the mix); stops at the
  // first inconsistency.
  void Run(int64_t ops, int64_t stop = INT64_MAX) {
    flush_one_in_ = static_cast<uint64_t>(std::max<int64_t>(ops / 8, 1000));  // ~8 flushes
    for (op_ = 0; op_ < std::min(ops, stop) && !failed_; ++op_) {
      Step();
      if (failed_) break;
      CheckMemory();
      if (op_ % kSweepEvery == kSweepEvery - 1) {
        ListAll();
        Sweep();
      }
    }
    if (!failed_) ListAll();
    if (!failed_) Sweep();
  }

  bool failed() const { return failed_; }
  int64_t lost() const { return lost_; }
  int64_t out_of_memory() const { return oom_; }
  int64_t refused_reads() const { return refused_reads_; }
  uint64_t unmarked_reads() const { return unmarked_reads_; }
  int64_t ops() const { return op_; }
  int64_t resizes() const { return resizes_; }

 private:
  // ------------------------------------------------------------------------------------------
  // Randomness

  uint64_t Uniform(uint64_t n) { return rng_() % n; }
  bool OneIn(uint64_t n) { return Uniform(n) == 0; }
  size_t RandomKeyIndex() { return Uniform(keys_.size()); }

  int64_t RandomExptime() {
    const int64_t now = clock_->NowSeconds();
    switch (Uniform(20)) {
      case 11:
      case 12:
      case 13:
        return 1 + static_cast<int64_t>(Uniform(30));  // relative, expires during the run
      case 14:
        return 1000 + static_cast<int64_t>(Uniform(kThirtyDays - 1000));  // relative, long
      case 15:
        return kThirtyDays;  // the largest relative value
      case 16:
        return -1 - static_cast<int64_t>(Uniform(1000));  // already expired
      case 17:
        return now + 1 + static_cast<int64_t>(Uniform(60));  // absolute, future
      case 18:
        return kThirtyDays + 1 + static_cast<int64_t>(Uniform(now - kThirtyDays));  // past
      case 19:
        return now - static_cast<int64_t>(Uniform(3));  // absolute, now or just past
      default:
        return 0;
    }
  }

  uint32_t RandomFlags() {
    switch (Uniform(4)) {
      case 0:
        return static_cast<uint32_t>(rng_());
      case 1:
        return static_cast<uint32_t>(Uniform(10));
      default:
        return 0;
    }
  }

  std::string RandomBytes(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; i += 8) {
      uint64_t r = rng_();
      for (size_t j = i; j < n && j < i + 8; ++j, r >>= 8) s[j] = static_cast<char>(r);
    }
    return s;
  }

  std::string RandomNumber() {
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    switch (Uniform(4)) {
      case 0:
        return std::to_string(rng_());
      case 1:
        return std::to_string(max - Uniform(1000));
      default:
        return std::to_string(Uniform(1000));
    }
  }

  std::string RandomValue() {
    if (OneIn(5)) return RandomNumber();
    uint64_t r = Uniform(100);
    size_t n = r < 40   ? Uniform(65)
               : r < 70 ? 65 + Uniform(436)
               : r < 90 ? 501 + Uniform(500)
                        : 1001 + Uniform(500);
    return RandomBytes(n);
  }

  // Data to append or prepend to `current`, keeping the value within kMaxValue.
  std::string RandomPiece(size_t current) {
    size_t room = current >= kMaxValue ? 0 : kMaxValue - current;
    if (OneIn(3)) {
      return std::string(std::min<size_t>(room, 1 + Uniform(3)),
                         static_cast<char>('0' + Uniform(10)));
    }
    return RandomBytes(std::min<size_t>(room, Uniform(400)));
  }

  uint64_t RandomDelta() {
    switch (Uniform(8)) {
      case 0:
        return std::numeric_limits<uint64_t>::max() - Uniform(1000);
      case 1:
        return rng_();
      default:
        return Uniform(100);
    }
  }

  // ------------------------------------------------------------------------------------------
  // The model

  int64_t Now() const { return clock_->NowSeconds(); }

  // Expiry of an item written now with `exptime`; sets *expired when it is born expired.
  int64_t ExpiryFor(int64_t exptime, bool* expired) const {
    const int64_t now = Now();
    *expired = false;
    if (exptime == 0) return 0;
    if (exptime < 0) {
      *expired = true;
      return 0;
    }
    int64_t at = exptime <= kThirtyDays ? now + exptime : exptime;
    *expired = at <= now;
    return at;
  }

  // The live model entry of `key`, or nullptr; forgets it once expired.
  Entry* Find(const std::string& key) {
    auto it = model_.find(key);
    if (it == model_.end()) return nullptr;
    if (it->second.expiry != 0 && it->second.expiry <= Now()) {
      TraceKey(key, "model: expired (expiry " + std::to_string(it->second.expiry) + ")");
      Forget(it);
      return nullptr;
    }
    return &it->second;
  }

  void Forget(std::unordered_map<std::string, Entry>::iterator it) {
    if (it->second.cas != 0) prev_cas_[it->first] = it->second.cas;
    model_.erase(it);
  }
  void Forget(const std::string& key) {
    auto it = model_.find(key);
    if (it != model_.end()) Forget(it);
  }

  // Records a new version of `key`.
  Entry& Put(const std::string& key, std::string value, uint32_t flags, int64_t expiry) {
    Forget(key);
    Entry& e = model_[key];
    e.value = std::move(value);
    e.flags = flags;
    e.expiry = expiry;
    e.stored_at = Now();
    return e;
  }

  // The same item with meta state carried over (incr, touch, invalidate keep it).
  void PutKeepingState(const std::string& key, std::string value, uint32_t flags, int64_t expiry,
                       const Entry& old) {
    const Entry kept = old;
    Entry& e = Put(key, std::move(value), flags, expiry);
    e.fetched = kept.fetched;
    e.stale = kept.stale;
    e.token = kept.token;
    e.binary_key = kept.binary_key;
  }

  // The store lacks a key the model holds: allowed only when it may have been evicted, or when
  // it is on file and no memory could be had to read it back (it is kept: the model too).
  void Lost(const std::string& key, const char* what) {
    if (TierReadRefused()) {
      ++refused_reads_;
      return;
    }
    if (!variant_.eviction) {
      Fail(std::string("store lost a key with eviction disabled (") + what + ")");
      return;
    }
    ++lost_;
    Forget(key);
  }

  // Footprint estimate of an item of `kv` key + value bytes: generous, so that only a store far
  // from full fails the check. Items above segment_size / 8 are counted as out of line (page
  // rounded), although only those above a quarter must be.
  static uint64_t Footprint(size_t kv) {
    size_t item = kv + kMaxItemHeader;
    if (item <= kSegmentSize / 8) return item;
    return (item + 4095) / 4096 * 4096;
  }

  // Whether a read of an item on file found no memory to promote it into since last asked
  // (Miss::kNoMemory: the item stays on file, a change that needed it answers kOutOfMemory).
  bool TierReadRefused() {
    if (!variant_.tier) return false;
    const uint64_t refused = store_->GetStats().tier_read_oom;
    return std::exchange(tier_read_oom_seen_, refused) != refused;
  }

  // Whether a read since last asked found its item in a segment being written to the file with
  // no memory for the copy that marks it read (StoreStats::tier_unmarked_reads): the item was
  // served and its H bit stays unset. Reads are the model's only, so the count is this read's.
  bool TierMarkLost() {
    if (!variant_.tier) return false;
    const uint64_t lost = store_->GetStats().tier_unmarked_reads;
    if (std::exchange(tier_unmarked_seen_, lost) == lost) return false;
    ++unmarked_reads_;
    return true;
  }

  // A read served `e`'s item (a bump): it is marked read, unless the store reports the mark lost.
  void MarkRead(Entry* e) {
    if (!TierMarkLost() && e != nullptr) e->fetched = true;
  }

  // kOutOfMemory is acceptable only with eviction off and a genuinely full store, or for an
  // item on file with no memory to read it into.
  bool OomAllowed(size_t new_kv) {
    if (TierReadRefused()) {
      ++refused_reads_;
      return true;
    }
    ++oom_;
    // A quota that the keyspace's pending streaming writes and this write cannot share: no
    // eviction makes room (pending writes cannot be evicted).
    if (variant_.quotas && PendingOverQuota(op_ks_, new_kv)) return true;
    if (variant_.eviction) {
      Fail("kOutOfMemory with eviction enabled");
      return false;
    }
    if (variant_.quotas && KeyspaceAtQuota(op_ks_, new_kv)) return true;
    StoreStats st = store_->GetStats();
    // Each keyspace beyond the first holds open segments of its own, a writer head's and a
    // cleaner head's (one expiry class and one stripe on this tiny store), whose unwritten
    // tails no cleaner can reclaim: count them as fixed too.
    constexpr uint64_t kHeadsPerKeyspace = 2;
    uint64_t extra_heads = kHeadsPerKeyspace * (std::size(kKeyspaces) - 1);
    uint64_t fixed = st.index_bytes + st.metadata_bytes + st.external_bytes +
                     (uint64_t{options_.reserve_segments} + extra_heads) * options_.segment_size;
    uint64_t usable = st.memory_limit > fixed ? st.memory_limit - fixed : 0;
    uint64_t live = Footprint(new_kv);
    for (const Pending& p : pending_) live += Footprint(p.key.size() + p.value.size());
    const int64_t now = Now();
    for (const auto& [k, e] : model_) {
      if (e.expiry == 0 || e.expiry > now) live += Footprint(k.size() + e.value.size());
    }
    if (2 * live >= usable) return true;
    std::ostringstream msg;
    msg << "kOutOfMemory on a store far from full: live footprint " << live << " of usable "
        << usable << " (index " << st.index_bytes << ", metadata " << st.metadata_bytes
        << ", segments used " << st.segments_used << " free " << st.segments_free << ", jumbo "
        << st.jumbo_bytes << ", resident " << st.resident_bytes << "/" << st.memory_limit
        << ", store items " << st.items << ", model items " << model_.size() << ")";
    Fail(msg.str());
    return false;
  }

  size_t QuotaOf(uint16_t ks) const {
    for (const auto& [id, segments] : kQuotas) {
      if (id == ks) return segments * kSegmentSize;
    }
    return 0;
  }

  bool PendingOverQuota(uint16_t ks, size_t new_kv) const {
    const size_t quota = QuotaOf(ks);
    if (quota == 0) return false;
    uint64_t bytes = new_kv + kMaxItemHeader;
    for (const Pending& p : pending_) {
      if (Ks(p.key).id == ks) bytes += p.key.size() - 2 + p.value.size() + kMaxItemHeader;
    }
    return bytes > quota;
  }

  // Whether keyspace `ks` has a quota that its live data (the model's, with a write of
  // `new_kv` bytes more) fills at least half of. Item bytes count whole: jumbo items are no
  // larger against a quota, which counts the items as stored.
  bool KeyspaceAtQuota(uint16_t ks, size_t new_kv) {
    const size_t quota = QuotaOf(ks);
    if (quota == 0) return false;
    uint64_t live = new_kv + kMaxItemHeader;
    const int64_t now = Now();
    for (const auto& [k, e] : model_) {
      if (Ks(k).id == ks && (e.expiry == 0 || e.expiry > now)) {
        live += k.size() - 2 + e.value.size() + kMaxItemHeader;
      }
    }
    for (const Pending& p : pending_) {
      if (Ks(p.key).id == ks) live += p.key.size() - 2 + p.value.size() + kMaxItemHeader;
    }
    return 2 * live >= quota;
  }

  // ------------------------------------------------------------------------------------------
  // Checks

  void Fail(const std::string& what) {
    if (failed_) return;
    failed_ = true;
    std::ostringstream msg;
    msg << "seed " << variant_.seed << (variant_.eviction ? " eviction" : " no-eviction")
        << (variant_.background_cleaner ? " background-cleaner" : " inline-cleaner") << ", op #"
        << op_ << ", now " << Now() << ": " << what << "\nlast operations:\n";
    for (const std::string& h : history_) msg << "  " << h << "\n";
    if (last_key_ != kNoKey) {
      msg << "earlier operations on " << Describe(last_key_) << ":\n";
      for (const std::string& h : key_trace_[last_key_]) msg << "  " << h << "\n";
    }
    ADD_FAILURE() << msg.str();
  }

  // Records an operation for failure messages; `ki` names the key it was about, if any.
  void Note(std::string line, size_t ki = kNoKey) {
    if (ki != kNoKey) TraceKey(keys_[ki], line);
    last_key_ = ki;
    if (history_.size() == kHistory) history_.pop_front();
    history_.push_back(std::move(line));
  }

  // Records what happened to one key (an operation, or the model expiring or flushing it).
  void TraceKey(const std::string& key, const std::string& what) {
    std::deque<std::string>& t = key_trace_[key_index_.at(key)];
    if (t.size() == kKeyHistory) t.pop_front();
    t.push_back("op #" + std::to_string(op_) + ", now " + std::to_string(Now()) + ": " + what);
  }

  std::string Describe(size_t ki) const {
    return "k" + std::to_string(ki) + "[ks " + std::to_string(Ks(keys_[ki]).id) + " " +
           Printable(Sk(keys_[ki]), 12) + "]";
  }

  // A model key's keyspace and the key the store sees.
  static Keyspace Ks(std::string_view model_key) {
    return Keyspace{static_cast<uint16_t>((static_cast<uint8_t>(model_key[0]) << 8) |
                                          static_cast<uint8_t>(model_key[1]))};
  }
  static std::string_view Sk(std::string_view model_key) { return model_key.substr(2); }

  std::string Mismatch(const char* what, std::string_view got, std::string_view want) {
    std::ostringstream m;
    m << what << ": got " << got.size() << " bytes '" << Printable(got) << "', model has "
      << want.size() << " bytes '" << Printable(want) << "'";
    return m.str();
  }

  // A returned item must match the model's latest version of its key.
  void CheckItem(const std::string& key, const ItemRef& ref, Entry* e, bool check_expiry,
                 bool with_cas, const char* what) {
    if (e == nullptr) {
      Fail(std::string(what) + ": store returned a key the model holds as absent/expired: '" +
           Printable(ref.value()) + "'");
      return;
    }
    if (ref.key() != Sk(key)) return Fail(std::string(what) + ": wrong key in ItemRef");
    if (ref.value() != e->value) return Fail(Mismatch(what, ref.value(), e->value));
    if (ref.flags() != e->flags) {
      return Fail(std::string(what) + ": flags " + std::to_string(ref.flags()) + " != model " +
                  std::to_string(e->flags));
    }
    if (check_expiry && ref.expiry() != e->expiry) {
      return Fail(std::string(what) + ": expiry " + std::to_string(ref.expiry()) + " != model " +
                  std::to_string(e->expiry));
    }
    if (ref.fetched_before() != e->fetched || ref.stale() != e->stale ||
        ref.win_token_sent() != e->token || ref.binary_key() != e->binary_key) {
      return Fail(std::string(what) + ": state (fetched, stale, token, binary) " +
                  std::to_string(ref.fetched_before()) + std::to_string(ref.stale()) +
                  std::to_string(ref.win_token_sent()) + std::to_string(ref.binary_key()) +
                  " != model " + std::to_string(e->fetched) + std::to_string(e->stale) +
                  std::to_string(e->token) + std::to_string(e->binary_key));
    }
    if (!with_cas) {
      if (ref.cas() != 0) Fail(std::string(what) + ": CAS filled in although not asked for");
      return;
    }
    if (ref.cas() == 0) return Fail(std::string(what) + ": CAS 0");
    if (e->cas == 0) {
      auto prev = prev_cas_.find(key);
      if (prev != prev_cas_.end() && prev->second == ref.cas()) {
        return Fail(std::string(what) + ": new version kept the CAS of an older one");
      }
      e->cas = ref.cas();
    } else if (ref.cas() != e->cas) {
      return Fail(std::string(what) + ": CAS changed without a modification: " +
                  std::to_string(ref.cas()) + " != " + std::to_string(e->cas));
    }
  }

  void CheckMemory() {
    StoreStats st = store_->GetStats();
    if (st.resident_bytes > options_.memory_limit) {
      Fail("resident_bytes " + std::to_string(st.resident_bytes) + " > memory_limit " +
           std::to_string(options_.memory_limit));
    }
  }

  void ExpectOutcome(Outcome got, Outcome want, const char* what) {
    if (got != want) {
      Fail(std::string(what) + ": got " + std::string(OutcomeName(got)) + ", model expects " +
           std::string(OutcomeName(want)));
    }
  }

  // Lists every keyspace's items (Store::ListItems, every other time with their CAS values)
  // and compares them with the model: each listed item is the model's, listed once; without
  // eviction every item of the model is listed. Consumes no randomness.
  void ListAll() {
    std::unordered_set<uint16_t> spaces;
    for (const std::string& key : keys_) spaces.insert(Ks(key).id);
    const bool with_cas = (op_ / kSweepEvery) % 2 == 0;
    std::unordered_set<std::string> listed;
    ItemList list;
    for (uint16_t id : spaces) {
      const std::string prefix{static_cast<char>(id >> 8), static_cast<char>(id & 255)};
      ListCursor cursor;
      while (!cursor.done) {
        list.clear();
        store_->ListItems(Keyspace{id}, &cursor, 64, with_cas, /*may_block=*/true, &list);
        for (const ListedItem& item : list.items) {
          const std::string key = prefix + std::string(list.key(item));
          const std::string what = "list " + Printable(key, 12);
          if (!listed.insert(key).second) return Fail(what + ": listed twice");
          Entry* e = Find(key);
          if (e == nullptr) return Fail(what + ": the model does not hold it");
          if (item.value_size != e->value.size() || item.flags != e->flags ||
              item.expiry != e->expiry || item.binary_key != e->binary_key) {
            return Fail(what + ": size, flags, expiry or binary " +
                        std::to_string(item.value_size) + " " + std::to_string(item.flags) + " " +
                        std::to_string(item.expiry) + " " + std::to_string(item.binary_key) +
                        " != model's");
          }
          if (!with_cas) {
            if (item.cas != 0) return Fail(what + ": CAS filled in although not asked for");
          } else if (e->cas == 0) {
            e->cas = item.cas;  // seen by a client now: it must not change until modified
          } else if (item.cas != e->cas) {
            return Fail(what + ": CAS " + std::to_string(item.cas) +
                        " != " + std::to_string(e->cas));
          }
        }
      }
    }
    Note("list: " + std::to_string(listed.size()) + " items" + (with_cas ? " with CAS" : ""));
    if (variant_.eviction) return;
    for (const std::string& key : keys_) {
      if (listed.count(key) == 0 && Find(key) != nullptr) {
        return Fail("list " + Printable(key, 12) + ": not listed, the model holds it");
      }
    }
  }

  // Reads every key and compares with the model.
  void Sweep() {
    for (size_t ki = 0; ki < keys_.size() && !failed_; ++ki) DoGet(ki, "sweep");
  }

  // ------------------------------------------------------------------------------------------
  // Operations

  void Step() {
    if (variant_.resize && OneIn(300)) return Resize();
    if (OneIn(100)) return AdvanceClock();
    if (OneIn(flush_one_in_)) return Flush();
    const size_t ki = RandomKeyIndex();
    op_ks_ = Ks(keys_[ki]).id;
    const uint64_t r = Uniform(1000);
    const uint64_t del = variant_.eviction ? 60 : 140;  // without eviction, deletes make room
    if (r < 230) return DoGet(ki, "get");
    if (r < 420) return DoWrite(ki, SetMode::kSet);
    if (r < 470) return DoWrite(ki, SetMode::kAdd);
    if (r < 520) return DoWrite(ki, SetMode::kReplace);
    if (r < 570) return DoWrite(ki, SetMode::kAppend);
    if (r < 610) return DoWrite(ki, SetMode::kPrepend);
    if (r < 690) return DoCas(ki);
    if (r < 760) return DoArith(ki, /*incr=*/!OneIn(3));
    if (r < 800) return DoTouch(ki);
    if (r < 840) return DoGat(ki);
    if (r < 840 + del) return DoDelete(ki);
    if (r < 940) return DoFetch(ki);
    if (r < 960) return DoInvalidate(ki);
    if (r < 980) return DoCasInvalidate(ki);
    return DoStream(ki);
  }

  // A new effective limit, down to the least Open accepts (a file tier's variant too). With
  // eviction on and no background cleaner, one pass must bring a store without pending
  // streaming writes (which nothing can evict) under a lowered limit.
  void Resize() {
    const size_t low = min_limit_;
    const size_t segments = (options_.memory_limit - low) / options_.segment_size;
    const size_t limit = low + Uniform(segments + 1) * options_.segment_size;
    store_->SetMemoryLimit(limit);
    StoreStats st = store_->GetStats();
    Note("memory limit " + std::to_string(limit) + " (effective " +
         std::to_string(st.memory_limit) + ", resident " + std::to_string(st.resident_bytes) + ")");
    if (st.memory_limit < limit || st.memory_limit > options_.memory_limit) {
      return Fail("effective limit " + std::to_string(st.memory_limit) + " outside [" +
                  std::to_string(limit) + ", " + std::to_string(options_.memory_limit) + "]");
    }
    ++resizes_;
    if (variant_.background_cleaner || !variant_.eviction) return;
    store_->RunCleanerOnce();
    st = store_->GetStats();
    if (st.pending_writes == 0 && st.resident_bytes > st.memory_limit) {
      Fail("a pass left resident_bytes " + std::to_string(st.resident_bytes) +
           " above the lowered limit " + std::to_string(st.memory_limit));
    }
  }

  void AdvanceClock() {
    int64_t now = Now();
    int64_t next = now + (OneIn(20) ? 100 + static_cast<int64_t>(Uniform(5000))
                                    : 1 + static_cast<int64_t>(Uniform(3)));
    // A pending delayed flush takes effect at its deadline D; the second D - 1 is skipped so
    // that sub-second rounding (memcached flushes "before D" as of D - 1) cannot matter.
    if (flush_deadline_ != 0 && next >= flush_deadline_ - 1) {
      next = std::max(next, flush_deadline_);
    }
    clock_->Set(next);
    Note("advance clock " + std::to_string(now) + " -> " + std::to_string(next));
    if (flush_deadline_ != 0 && next >= flush_deadline_) {
      for (auto it = model_.begin(); it != model_.end();) {
        auto cur = it++;
        if (cur->second.stored_at < flush_deadline_ &&
            (flush_ks_ < 0 || Ks(cur->first).id == flush_ks_)) {
          TraceKey(cur->first, "model: flushed (stored at " +
                                   std::to_string(cur->second.stored_at) + ", flush deadline " +
                                   std::to_string(flush_deadline_) + ")");
          Forget(cur);
        }
      }
      flush_deadline_ = 0;
    }
  }

  void Flush() {
    if (flush_deadline_ != 0) return;  // one pending flush at a time
    const int64_t now = Now();
    // Quota variants: half of the flushes are of one keyspace.
    flush_ks_ = variant_.quotas && OneIn(2) ? kKeyspaces[Uniform(std::size(kKeyspaces))] : -1;
    const std::string which =
        flush_ks_ < 0 ? std::string() : " (keyspace " + std::to_string(flush_ks_) + ")";
    if (OneIn(2)) {
      Note("flush_all" + which);
      if (flush_ks_ < 0) {
        store_->FlushAll(0);
      } else {
        store_->FlushAll(Keyspace{static_cast<uint16_t>(flush_ks_)}, 0);
      }
      for (auto it = model_.begin(); it != model_.end();) {
        auto cur = it++;
        if (flush_ks_ >= 0 && Ks(cur->first).id != flush_ks_) continue;
        TraceKey(cur->first, "model: flushed");
        Forget(cur);
      }
    } else {
      int64_t delay = 2 + static_cast<int64_t>(Uniform(30));
      Note("flush_all " + std::to_string(delay) + " (deadline " + std::to_string(now + delay) +
           ")" + which);
      if (flush_ks_ < 0) {
        store_->FlushAll(delay);
      } else {
        store_->FlushAll(Keyspace{static_cast<uint16_t>(flush_ks_)}, delay);
      }
      flush_deadline_ = now + delay;
    }
  }

  void DoGet(size_t ki, const char* what) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    ItemRef ref;
    const bool with_cas = OneIn(2);
    bool found = store_->Get(Ks(key), Sk(key), &ref, with_cas);
    Note(std::string(what) + (with_cas ? "s " : " ") + Describe(ki) + " -> " +
             (found ? "hit " + std::to_string(ref.value().size()) + "B cas " +
                          std::to_string(ref.cas())
                    : "miss") +
             (e ? " (model " + std::to_string(e->value.size()) + "B)" : " (model absent)"),
         ki);
    if (found) {
      CheckItem(key, ref, e, /*check_expiry=*/true, with_cas, what);
      MarkRead(e);
    } else if (e != nullptr) {
      if (ref) return Fail("failed Get left the ItemRef non-empty");
      Lost(key, what);
    }
  }

  void DoWrite(size_t ki, SetMode mode) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    const bool concat = mode == SetMode::kAppend || mode == SetMode::kPrepend;
    std::string data = concat ? RandomPiece(e ? e->value.size() : 0) : RandomValue();
    const uint32_t flags = RandomFlags();
    const int64_t exptime = RandomExptime();
    const bool binary_key = OneIn(8);
    // Append and prepend compare a CAS value when given one.
    uint64_t cas = 0;
    bool right_cas = true;
    if (concat && e != nullptr && e->cas != 0 && OneIn(4)) {
      right_cas = OneIn(2);
      cas = right_cas ? e->cas : e->cas + 1 + Uniform(1000);
    }
    const char* name = mode == SetMode::kSet       ? "set"
                       : mode == SetMode::kAdd     ? "add"
                       : mode == SetMode::kReplace ? "replace"
                       : mode == SetMode::kAppend  ? "append"
                                                   : "prepend";
    Outcome got = store_->Write(Ks(key), mode, Sk(key), data, flags, exptime, cas, binary_key);
    Note(std::string(name) + " " + Describe(ki) + " " + std::to_string(data.size()) + "B cas " +
             std::to_string(cas) + (binary_key ? " binary" : "") + " flags " +
             std::to_string(flags) + " exptime " + std::to_string(exptime) + " -> " +
             std::string(OutcomeName(got)) +
             (e ? " (model " + std::to_string(e->value.size()) + "B)" : " (model absent)"),
         ki);

    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    const bool wants_present = mode == SetMode::kReplace || concat;

    if (got == Outcome::kOutOfMemory) {
      size_t kv = key.size() + data.size() + (concat && e ? e->value.size() : 0);
      OomAllowed(kv);
      // A refused set drops the stale value (memcached); other refused writes change nothing.
      if (mode == SetMode::kSet) Forget(key);
      return;
    }
    if (mode == SetMode::kSet) {
      ExpectOutcome(got, Outcome::kStored, name);
    } else if (mode == SetMode::kAdd) {
      if (e == nullptr) {
        ExpectOutcome(got, Outcome::kStored, name);
      } else if (got == Outcome::kStored) {
        Lost(key, "add stored over a present key");
        e = nullptr;
      } else {
        ExpectOutcome(got, Outcome::kNotStored, name);
      }
    } else if (wants_present) {
      if (e == nullptr) {
        ExpectOutcome(got, Outcome::kNotStored, name);
      } else if (got == Outcome::kNotStored) {
        Lost(key, name);
        e = nullptr;
      } else {
        ExpectOutcome(got, right_cas ? Outcome::kStored : Outcome::kExists, name);
      }
    }
    if (failed_ || got != Outcome::kStored) return;

    if (concat) {  // a new item: not fetched, no state (memcached allocates one)
      std::string value = mode == SetMode::kAppend ? e->value + data : data + e->value;
      Put(key, std::move(value), e->flags, e->expiry);
    } else if (born_expired) {
      Forget(key);
    } else {
      Put(key, std::move(data), flags, expiry).binary_key = binary_key;
    }
  }

  void DoCas(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    const bool right = e != nullptr && e->cas != 0 && !OneIn(4);
    uint64_t cas;
    if (right) {
      cas = e->cas;
    } else {
      auto prev = prev_cas_.find(key);
      cas = prev != prev_cas_.end() && !OneIn(4) ? prev->second : (rng_() | 1);
    }
    std::string data = RandomValue();
    const uint32_t flags = RandomFlags();
    const int64_t exptime = RandomExptime();
    Outcome got = store_->Write(Ks(key), SetMode::kCas, Sk(key), data, flags, exptime, cas);
    Note("cas " + Describe(ki) + " " + std::to_string(data.size()) + "B cas " +
             std::to_string(cas) + (right ? " (current)" : " (stale)") + " exptime " +
             std::to_string(exptime) + " -> " + std::string(OutcomeName(got)) +
             (e ? " (model " + std::to_string(e->value.size()) + "B cas " + std::to_string(e->cas) +
                      ")"
                : " (model absent)"),
         ki);
    if (got == Outcome::kOutOfMemory) {
      // Like memcached, a store may allocate before it compares; a full store may refuse.
      OomAllowed(key.size() + data.size());
      return;
    }
    if (e == nullptr) return ExpectOutcome(got, Outcome::kNotFound, "cas on absent key");
    if (got == Outcome::kNotFound) return Lost(key, "cas");
    if (!right) return ExpectOutcome(got, Outcome::kExists, "cas with a stale value");
    ExpectOutcome(got, Outcome::kStored, "cas with the current value");
    if (failed_) return;
    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (born_expired) {
      Forget(key);
    } else {
      Put(key, std::move(data), flags, expiry);
    }
  }

  void DoDelete(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    uint64_t cas = 0;
    bool right = true;
    if (OneIn(3)) {
      right = e != nullptr && e->cas != 0 && OneIn(2);
      if (right) {
        cas = e->cas;
      } else {
        auto prev = prev_cas_.find(key);
        cas = prev != prev_cas_.end() ? prev->second : (rng_() | 1);
      }
    }
    Outcome got = store_->Delete(Ks(key), Sk(key), cas);
    Note("delete " + Describe(ki) + " cas " + std::to_string(cas) + " -> " +
             std::string(OutcomeName(got)) + (e ? " (model present)" : " (model absent)"),
         ki);
    if (e == nullptr) return ExpectOutcome(got, Outcome::kNotFound, "delete of absent key");
    if (got == Outcome::kNotFound) return Lost(key, "delete");
    if (!right) return ExpectOutcome(got, Outcome::kExists, "delete with a stale cas");
    ExpectOutcome(got, Outcome::kDeleted, "delete");
    Forget(key);
  }

  void DoArith(size_t ki, bool incr) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    // Mostly aim arithmetic at keys that hold numbers.
    if (e != nullptr && OneIn(4)) {
      uint64_t unused;
      if (ClassifyNumber(e->value, &unused) == Numeric::kNo) {
        std::string number = RandomNumber();
        Outcome got = store_->Write(Ks(key), SetMode::kSet, Sk(key), number, e->flags, 0);
        Note("set " + Describe(ki) + " '" + number + "' -> " + std::string(OutcomeName(got)), ki);
        if (got == Outcome::kOutOfMemory) {
          OomAllowed(key.size() + number.size());
          Forget(key);  // a refused set drops the stale value
          return;
        }
        ExpectOutcome(got, Outcome::kStored, "set");
        if (failed_) return;
        Put(key, number, e->flags, 0);
        e = Find(key);
      }
    }
    const uint64_t delta = RandomDelta();
    uint64_t result = 0xBADBADBADull;
    Outcome got = incr ? store_->Incr(Ks(key), Sk(key), delta, &result)
                       : store_->Decr(Ks(key), Sk(key), delta, &result);
    const char* name = incr ? "incr" : "decr";
    Note(std::string(name) + " " + Describe(ki) + " " + std::to_string(delta) + " -> " +
             std::string(OutcomeName(got)) + " " + std::to_string(result) +
             (e ? " (model '" + Printable(e->value) + "')" : " (model absent)"),
         ki);
    if (e == nullptr) return ExpectOutcome(got, Outcome::kNotFound, name);
    if (got == Outcome::kNotFound) return Lost(key, name);
    uint64_t n = 0;
    Numeric kind = ClassifyNumber(e->value, &n);
    if (got == Outcome::kOutOfMemory) {
      if (kind != Numeric::kNo) {
        OomAllowed(key.size() + 20);
      } else if (TierReadRefused()) {  // on file, and no memory to read it into
        ++refused_reads_;
      } else {
        Fail("kOutOfMemory for incr/decr on a non-numeric value");
      }
      return;
    }
    if (kind == Numeric::kNo) return ExpectOutcome(got, Outcome::kNonNumeric, name);
    if (kind == Numeric::kMaybe && got == Outcome::kNonNumeric) return;
    ExpectOutcome(got, Outcome::kStored, name);
    if (failed_) return;
    if (kind == Numeric::kYes) {
      uint64_t want = incr ? n + delta : (n > delta ? n - delta : 0);
      if (result != want) {
        return Fail(std::string(name) + " result " + std::to_string(result) + ", model expects " +
                    std::to_string(want));
      }
    }
    std::string text = std::to_string(result);
    // A longer number is a new item in memcached, without the old one's state.
    if (text.size() > e->value.size()) return (void)Put(key, text, e->flags, e->expiry);
    if (text.size() < e->value.size()) text.resize(e->value.size(), ' ');  // memcached pads
    PutKeepingState(key, text, e->flags, e->expiry, *e);  // as memcached's in-place update
  }

  void DoTouch(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    const int64_t exptime = RandomExptime();
    Outcome got = store_->Touch(Ks(key), Sk(key), exptime);
    Note("touch " + Describe(ki) + " exptime " + std::to_string(exptime) + " -> " +
             std::string(OutcomeName(got)) + (e ? " (model present)" : " (model absent)"),
         ki);
    // A touch of an item on file, or one that must rewrite the item (it has no expiry field),
    // needs memory.
    if (got == Outcome::kOutOfMemory && e != nullptr && (e->expiry == 0 || variant_.tier)) {
      OomAllowed(key.size() + e->value.size());
      return;
    }
    if (e == nullptr) return ExpectOutcome(got, Outcome::kNotFound, "touch of absent key");
    if (got == Outcome::kNotFound) return Lost(key, "touch");
    ExpectOutcome(got, Outcome::kTouched, "touch");
    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (born_expired) {
      Forget(key);
    } else {
      e->expiry = expiry;  // value, flags, CAS and store time unchanged
      e->fetched = true;   // a touch is an access
    }
  }

  void DoGat(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    const int64_t exptime = RandomExptime();
    ItemRef ref;
    const bool with_cas = OneIn(2);
    Outcome gat = store_->GetAndTouch(Ks(key), Sk(key), exptime, &ref, with_cas);
    if (gat == Outcome::kOutOfMemory && e != nullptr && (e->expiry == 0 || variant_.tier)) {
      Note("gat " + Describe(ki) + " -> OUT_OF_MEMORY", ki);
      OomAllowed(key.size() + e->value.size());
      return;
    }
    bool found = gat == Outcome::kTouched;
    Note(std::string(with_cas ? "gats " : "gat ") + Describe(ki) + " exptime " +
             std::to_string(exptime) + " -> " +
             (found ? "hit " + std::to_string(ref.value().size()) + "B" : "miss") +
             (e ? " (model present)" : " (model absent)"),
         ki);
    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (!found) {
      if (e == nullptr) return;
      if (born_expired) return Forget(key);  // whether gat returns it once is not pinned down
      return Lost(key, "gat");
    }
    if (e != nullptr && !born_expired) e->expiry = expiry;
    CheckItem(key, ref, e, /*check_expiry=*/!born_expired, with_cas, "gat");
    MarkRead(e);
    if (born_expired) Forget(key);
  }

  // memcached's meta get: a read that may touch, vivify and hand out the recache token.
  void DoFetch(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    FetchOptions o;
    o.with_cas = OneIn(2);
    o.no_bump = OneIn(4);
    o.touch = OneIn(4);
    if (o.touch) o.exptime = RandomExptime();
    o.vivify = OneIn(3);
    if (o.vivify) o.vivify_exptime = OneIn(2) ? 0 : RandomExptime();
    o.recache = OneIn(3);
    if (o.recache) o.recache_seconds = static_cast<int64_t>(Uniform(60));
    o.recache_after_touch = OneIn(2);
    ItemRef ref;
    FetchResult fr;
    const bool found = store_->Fetch(Ks(key), Sk(key), o, &ref, &fr);
    Note("fetch " + Describe(ki) + (o.no_bump ? " u" : "") +
             (o.touch ? " T" + std::to_string(o.exptime) : "") +
             (o.vivify ? " N" + std::to_string(o.vivify_exptime) : "") +
             (o.recache ? " R" + std::to_string(o.recache_seconds) : "") +
             (o.recache_after_touch ? " (R after T)" : "") + " -> " +
             (found ? std::string(fr.created ? "created" : "hit") + (fr.won ? " W" : "") +
                          (ref.win_token_sent() ? " Z" : "") + (ref.stale() ? " X" : "")
                    : "miss") +
             (e ? " (model " + std::to_string(e->value.size()) + "B" + (e->token ? " token" : "") +
                      (e->stale ? " stale" : "") + ")"
                : " (model absent)"),
         ki);
    const int64_t now = Now();
    if (e != nullptr && found && fr.created) {  // evicted, then created anew
      Lost(key, "fetch (vivified)");
      if (failed_) return;
      e = nullptr;
    }
    if (e == nullptr) {
      if (!o.vivify) {
        if (found) Fail("fetch returned a key the model holds as absent");
        return;
      }
      if (!found) {  // the creation failed for lack of memory
        OomAllowed(key.size());
        return;
      }
      if (!fr.created || !fr.won || !ref.value().empty() || ref.flags() != 0 ||
          ref.fetched_before() || ref.stale() || ref.win_token_sent()) {
        return Fail("vivified item: wrong result or state");
      }
      bool born_expired = false;
      const int64_t expiry = ExpiryFor(o.vivify_exptime, &born_expired);
      if (born_expired) return;  // its creator saw it; nobody else does
      if (ref.expiry() != expiry) return Fail("vivified item: wrong expiry");
      Entry& n = Put(key, "", 0, expiry);
      n.token = true;
      n.fetched = !o.no_bump;
      if (o.with_cas) n.cas = ref.cas();
      return;
    }
    if (!found) return Lost(key, "fetch");
    if (fr.created) return Fail("fetch created an item the model holds");
    if (fr.previous_expiry != e->expiry) return Fail("fetch: wrong previous expiry");
    bool touch_expired = false;
    const int64_t touch_expiry = o.touch ? ExpiryFor(o.exptime, &touch_expired) : 0;
    bool want_won = false;
    if (!e->token) {
      if (o.recache) {
        int64_t at = e->expiry;
        if (o.recache_after_touch && o.touch) at = touch_expired ? now : touch_expiry;
        want_won = at != 0 && o.recache_seconds > 0 && at < now + o.recache_seconds;
      }
      want_won = want_won || e->stale;
    }
    // A change the item has no field for is a rewrite, which may fail for lack of memory:
    // then the item is read as it was, without the change and without the token.
    const bool applied = !o.touch || touch_expired || ref.expiry() == touch_expiry;
    if (!applied || fr.won != want_won) {
      const bool unchanged = !fr.won && (!o.touch || touch_expired || ref.expiry() == e->expiry);
      if (!unchanged) {
        return Fail("fetch: won " + std::to_string(fr.won) + ", model expects " +
                    std::to_string(want_won) + "; touch applied " + std::to_string(applied));
      }
      OomAllowed(key.size() + e->value.size());
      if (failed_) return;
      CheckItem(key, ref, e, /*check_expiry=*/true, o.with_cas, "fetch (unchanged)");
      if (!o.no_bump) MarkRead(e);
      return;
    }
    if (o.touch && !touch_expired) e->expiry = touch_expiry;
    CheckItem(key, ref, e, /*check_expiry=*/true, o.with_cas, "fetch");
    if (failed_) return;
    if (fr.won) e->token = true;
    if (!o.no_bump) MarkRead(e);
    if (o.touch && touch_expired) Forget(key);
  }

  // Streaming writes: begin one (at most kMaxPending outstanding, so they overlap each other
  // and every other operation, cleaner passes and flushes included), or finish one: commit
  // (3 in 4) or abort. Half the value is written at the start, the rest at the end.
  void DoStream(size_t ki) {
    if (!pending_.empty() && (pending_.size() == kMaxPending || OneIn(2))) {
      return FinishStream(Uniform(pending_.size()));
    }
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    Pending p;
    p.key = key;
    p.mode = OneIn(3) ? SetMode::kAdd : SetMode::kSet;
    // Values above segment_size / 8 get their own mapping; smaller ones are staged.
    p.value = OneIn(3) ? RandomBytes(kSegmentSize / 8 + Uniform(3 * kSegmentSize)) : RandomValue();
    p.flags = RandomFlags();
    const int64_t exptime = RandomExptime();
    p.expiry = ExpiryFor(exptime, &p.born_expired);
    Outcome got =
        store_->BeginWrite(Ks(key), p.mode, Sk(key), p.value.size(), p.flags, exptime, &p.writer);
    const char* name = p.mode == SetMode::kAdd ? "begin stream add " : "begin stream set ";
    Note(name + Describe(ki) + " " + std::to_string(p.value.size()) + "B exptime " +
             std::to_string(exptime) + " -> " + std::string(OutcomeName(got)) +
             (e ? " (model present)" : " (model absent)"),
         ki);
    if (got == Outcome::kOutOfMemory) {
      OomAllowed(key.size() + p.value.size());
      return;
    }
    if (p.mode == SetMode::kAdd && e != nullptr) {
      if (got == Outcome::kStored) {
        Lost(key, "stream add begun over a present key");
      } else {
        return ExpectOutcome(got, Outcome::kNotStored, name);
      }
    }
    ExpectOutcome(got, Outcome::kStored, name);
    if (failed_) return;
    if (p.writer.size() != p.value.size()) return Fail("writer size differs from the value's");
    std::memcpy(p.writer.data(), p.value.data(), p.value.size() / 2);
    pending_.push_back(std::move(p));
  }

  void FinishStream(size_t i) {
    Pending p = std::move(pending_[i]);
    pending_.erase(pending_.begin() + static_cast<ptrdiff_t>(i));
    const size_t ki = key_index_.at(p.key);
    const size_t half = p.value.size() / 2;
    std::memcpy(p.writer.data() + half, p.value.data() + half, p.value.size() - half);
    if (OneIn(4)) {
      Note("abort stream " + Describe(ki), ki);
      if (OneIn(2)) {
        p.writer.Abort();
        if (p.writer) Fail("an aborted writer is still pending");
      }  // else the destructor aborts it
      return;
    }
    Entry* e = Find(p.key);
    Outcome got = p.writer.Commit();
    Note("commit stream " + Describe(ki) + " " + std::to_string(p.value.size()) + "B -> " +
             std::string(OutcomeName(got)) + (e ? " (model present)" : " (model absent)"),
         ki);
    if (p.writer) return Fail("a committed writer is still pending");
    // The expiry counts from the write's beginning; passed by now, the value is stored
    // invisible (removing the current one if the mode's condition holds).
    const bool expired = p.born_expired || (p.expiry != 0 && p.expiry <= Now());
    if (got == Outcome::kOutOfMemory) {
      OomAllowed(p.key.size() + p.value.size());
      if (p.mode == SetMode::kSet) Forget(p.key);  // a refused set drops the stale value
      return;
    }
    if (p.mode == SetMode::kAdd && e != nullptr) {
      if (got != Outcome::kStored) return ExpectOutcome(got, Outcome::kNotStored, "commit add");
      Lost(p.key, "stream add committed over a present key");
    }
    ExpectOutcome(got, Outcome::kStored, "commit stream");
    if (failed_) return;
    if (expired) return Forget(p.key);
    Put(p.key, std::move(p.value), p.flags, p.expiry);
  }

  // memcached's md with I.
  void DoInvalidate(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    uint64_t cas = 0;
    bool right = true;
    if (OneIn(3)) {
      right = e != nullptr && e->cas != 0 && OneIn(2);
      cas = right ? e->cas : (e != nullptr && e->cas != 0 ? e->cas + 1 : (rng_() | 1));
    }
    const bool set_exptime = OneIn(2);
    const int64_t exptime = set_exptime ? RandomExptime() : 0;
    Outcome got = store_->Invalidate(Ks(key), Sk(key), cas, set_exptime, exptime);
    Note("invalidate " + Describe(ki) + " cas " + std::to_string(cas) +
             (set_exptime ? " T" + std::to_string(exptime) : "") + " -> " +
             std::string(OutcomeName(got)) + (e ? " (model present)" : " (model absent)"),
         ki);
    if (e == nullptr) return ExpectOutcome(got, Outcome::kNotFound, "invalidate of absent key");
    if (got == Outcome::kNotFound) return Lost(key, "invalidate");
    if (!right) return ExpectOutcome(got, Outcome::kExists, "invalidate with a wrong cas");
    if (got == Outcome::kOutOfMemory) {
      OomAllowed(key.size() + e->value.size());
      return;
    }
    ExpectOutcome(got, Outcome::kStored, "invalidate");
    if (failed_) return;
    bool born_expired = false;
    const int64_t expiry = set_exptime ? ExpiryFor(exptime, &born_expired) : e->expiry;
    if (born_expired) return Forget(key);
    PutKeepingState(key, e->value, e->flags, expiry, *e);  // a new version: a new CAS value
    Entry& n = model_[key];
    n.stale = true;
    n.token = false;
  }

  // memcached's ms with C and I: a CAS value lower than the item's stores a stale value.
  void DoCasInvalidate(size_t ki) {
    const std::string& key = keys_[ki];
    Entry* e = Find(key);
    // 1 is below every CAS value the store hands out; ~0 above.
    const uint64_t kind = Uniform(3);
    uint64_t cas = kind == 0 ? 1 : ~uint64_t{0};
    if (kind == 2) cas = e != nullptr && e->cas != 0 ? e->cas : 1;
    std::string data = RandomValue();
    const uint32_t flags = RandomFlags();
    const int64_t exptime = RandomExptime();
    Outcome got =
        store_->Write(Ks(key), SetMode::kCasInvalidate, Sk(key), data, flags, exptime, cas);
    Note("cas-invalidate " + Describe(ki) + " " + std::to_string(data.size()) + "B cas " +
             std::to_string(cas) + " exptime " + std::to_string(exptime) + " -> " +
             std::string(OutcomeName(got)) + (e ? " (model present)" : " (model absent)"),
         ki);
    if (got == Outcome::kOutOfMemory) {
      OomAllowed(key.size() + data.size());
      return;
    }
    if (e == nullptr) return ExpectOutcome(got, Outcome::kNotFound, "cas-invalidate absent");
    if (got == Outcome::kNotFound) return Lost(key, "cas-invalidate");
    if (cas == ~uint64_t{0}) return ExpectOutcome(got, Outcome::kExists, "cas-invalidate high");
    ExpectOutcome(got, Outcome::kStored, "cas-invalidate");
    if (failed_) return;
    if (cas == e->cas) {  // a plain CAS store
      bool born_expired = false;
      const int64_t expiry = ExpiryFor(exptime, &born_expired);
      if (born_expired) return Forget(key);
      Put(key, std::move(data), flags, expiry);
      return;
    }
    // Stored stale, with the item's expiry and token.
    const bool token = e->token;
    const int64_t expiry = e->expiry;
    Entry& n = Put(key, std::move(data), flags, expiry);
    n.stale = true;
    n.token = token;
  }

  struct Pending {
    ValueWriter writer;
    std::string key;  // the model's
    std::string value;
    SetMode mode = SetMode::kSet;
    uint32_t flags = 0;
    int64_t expiry = 0;
    bool born_expired = false;
  };
  static constexpr size_t kMaxPending = 4;

  const Variant variant_;
  const Options options_;
  Store* const store_;
  ManualClock* const clock_;
  std::mt19937_64 rng_;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, Entry> model_;
  std::unordered_map<std::string, uint64_t> prev_cas_;  // CAS of the last superseded version
  int64_t flush_deadline_ = 0;                          // pending delayed flush_all, or 0
  int flush_ks_ = -1;   // the keyspace of the last flush_all, or -1 for all of them
  uint16_t op_ks_ = 0;  // the keyspace of the current operation's key
  uint64_t flush_one_in_ = 1;
  std::deque<std::string> history_;
  std::unordered_map<std::string, size_t> key_index_;
  std::vector<std::deque<std::string>> key_trace_;  // the last operations on each key
  size_t last_key_ = kNoKey;
  std::vector<Pending> pending_;  // streaming writes begun, not yet finished
  size_t min_limit_ = 0;          // Store::MinimumMemoryLimit(options_)
  int64_t resizes_ = 0;
  int64_t op_ = 0;
  int64_t lost_ = 0;
  int64_t oom_ = 0;
  int64_t refused_reads_ = 0;        // lookups of items on file refused for want of memory
  uint64_t tier_read_oom_seen_ = 0;  // StoreStats::tier_read_oom when last looked at
  uint64_t tier_unmarked_seen_ = 0;  // StoreStats::tier_unmarked_reads when last looked at
  uint64_t unmarked_reads_ = 0;      // reads whose mark the store reported lost
  bool failed_ = false;
};

// The options of a variant's store, without its file tier; time comes from `clock`.
Options ModelOptions(const Variant& v, ManualClock* clock) {
  Options o;
  o.segment_size = v.tier ? kTierSegmentSize : kSegmentSize;
  o.max_item_size = 64 * 1024;
  o.index_shards = 1;
  o.eviction = v.eviction;
  o.background_cleaner = v.background_cleaner;
  o.cleaner_interval_ms = 1;
  o.clock = clock;
  o.memory_limit = Store::MinimumMemoryLimit(o) +
                   (v.tier ? kTierExtraSegments : kExtraSegments) * o.segment_size;
  return o;
}

void SetModelQuotas(const Variant& v, Store* store) {
  if (!v.quotas) return;
  for (const auto& [id, segments] : kQuotas) {
    store->SetKeyspaceQuota(Keyspace{id}, segments * kSegmentSize);
  }
}

class ModelTest : public ::testing::TestWithParam<Variant> {};

TEST_P(ModelTest, MatchesUnorderedMap) {
  const Variant v = GetParam();
  ManualClock clock;
  Options o = ModelOptions(v, &clock);
  const size_t min_limit = Store::MinimumMemoryLimit(o);
  ASSERT_GT(min_limit, 0u);
  std::string tier_path;
  if (v.tier) {
    tier_path = ::testing::TempDir() + "/cinch_model_tier_" + std::to_string(getpid()) + "_" +
                std::to_string(v.seed) + ".data";
    o.tier_files.push_back(TierFile{tier_path, kTierSegments * kTierSegmentSize});
  }
  struct RemoveFile {  // declared before the store: removes the file after the store is gone
    std::string path;
    ~RemoveFile() {
      if (!path.empty()) std::remove(path.c_str());
    }
  } remove_tier{tier_path};

  std::unique_ptr<Store> store;
  Status s = Store::Open(o, &store);
  ASSERT_TRUE(s.ok()) << s.ToString();
  SetModelQuotas(v, store.get());

  Differential diff(v, o, store.get(), &clock);
  diff.Run(OpsPerVariant());
  const StoreStats st = store->GetStats();
  std::printf(
      "[ model ] seed %" PRIu64 " %s %s: %" PRId64 " ops, limit %zu B (min %zu), keys lost %" PRId64
      ", out_of_memory %" PRId64
      "\n"
      "          evictions %" PRIu64 ", segments_evicted %" PRIu64 ", relocated_items %" PRIu64
      ", segments_compacted %" PRIu64 ", expirations_reclaimed %" PRIu64 ", flushed %" PRIu64
      ", index_resizes %" PRIu64 ", items %" PRIu64 ", resident %" PRIu64
      "\n"
      "          writers short of memory: passes %" PRIu64 ", segments cleaned %" PRIu64
      ", waits %" PRIu64 "\n",
      v.seed, v.eviction ? "eviction" : "no-eviction",
      v.background_cleaner ? "background-cleaner" : "inline-cleaner", diff.ops(), o.memory_limit,
      min_limit, diff.lost(), diff.out_of_memory(), st.evictions, st.segments_evicted,
      st.relocated_items, st.segments_compacted, st.expirations_reclaimed, st.flushed_items,
      st.index_resizes, st.items, st.resident_bytes, st.writer_cleaner_passes, st.writer_reclaims,
      st.writer_space_waits);
  if (v.quotas) {
    for (const auto& [id, segments] : kQuotas) {
      const KeyspaceStats ks = store->GetKeyspaceStats(Keyspace{id});
      std::printf("          keyspace %u: quota %" PRIu64 ", item_bytes %" PRIu64
                  ", evictions %" PRIu64 ", flushes %" PRIu64 "\n",
                  id, ks.quota, ks.item_bytes, ks.evictions, ks.flushes);
      if (!diff.failed()) {
        EXPECT_LE(ks.item_bytes, ks.quota + 2 * kMaxValue) << "keyspace " << id;
        if (v.eviction) {
          EXPECT_GT(ks.evictions, 0u) << "keyspace " << id;
        }
      }
    }
  }
  if (v.tier) {
    std::printf("          tier: writes %" PRIu64 ", reads %" PRIu64 ", promotions %" PRIu64
                ", compactions %" PRIu64 ", evictions %" PRIu64 ", items %" PRIu64
                ", reads refused for want of memory %" PRIu64 " (%" PRId64
                " seen by the model), reads left unmarked %" PRIu64 " (%" PRIu64 ")\n",
                st.tier_writes, st.tier_reads, st.tier_promotions, st.tier_compactions,
                st.tier_evictions, st.tier_items, st.tier_read_oom, diff.refused_reads(),
                st.tier_unmarked_reads, diff.unmarked_reads());
  }
  if (v.resize) std::printf("          memory limit changed %" PRId64 " times\n", diff.resizes());
  if (diff.failed()) return;
  EXPECT_LE(st.resident_bytes, o.memory_limit);
  if (v.resize) {
    EXPECT_GT(diff.resizes(), 0);
  }
  // The heap is tiny on purpose: the run must have made the cleaner work.
  EXPECT_GT(st.relocated_items, 0u) << "compaction never ran";
  if (v.tier) {
    EXPECT_GT(st.tier_writes, 0u) << "demotion never ran";
    EXPECT_GT(st.tier_promotions, 0u) << "promotion never ran";
    if (v.eviction) {
      EXPECT_GT(st.tier_compactions + st.tier_evictions, 0u) << "the file never filled up";
    } else {
      // Without eviction a full file is compacted only when RAM has room, which a full store
      // seldom has; reads of it then find no memory, and are refused, not dropped.
      EXPECT_EQ(st.tier_evictions, 0u);
      // The inline cleaner's run is its seed's alone, so it meets such reads every time; with
      // the background cleaner whether one finds memory short is a matter of timing (an ASan
      // run once met none), and the run's counts are printed above instead.
      if (!v.background_cleaner) {
        EXPECT_GT(st.tier_read_oom, 0u) << "no read of the file ever found memory short";
      }
    }
  }
  if (v.eviction) {
    EXPECT_GT(st.evictions, 0u) << "eviction never ran";
    // With quotas, only where pending streaming writes fill the quota (OomAllowed).
    if (!v.quotas) {
      EXPECT_EQ(diff.out_of_memory(), 0);
    }
  } else {
    EXPECT_EQ(st.evictions, 0u);
    EXPECT_EQ(diff.lost(), 0);
    EXPECT_GT(diff.out_of_memory(), 0) << "the store never filled up";
  }
}

// With the cleaner inline, a run depends on its seed alone: the store's only other input is
// the wall clock that bounds a writer's wait for memory, and a writer must not spend that time
// repeating work that gains nothing (as many times as the machine's speed allows), which would
// make two runs of one seed differ. Its first 8,000 ops include a write that used to.
TEST(ModelRepeatTest, InlineCleanerRunDependsOnItsSeedAlone) {
  const Variant v{false, false, 8, false, true};
  auto run = [&v] {
    ManualClock clock;
    const Options o = ModelOptions(v, &clock);
    std::unique_ptr<Store> store;
    EXPECT_TRUE(Store::Open(o, &store).ok());
    SetModelQuotas(v, store.get());
    Differential diff(v, o, store.get(), &clock);
    diff.Run(30000, 8000);  // the mix of the sanitized variants
    EXPECT_FALSE(diff.failed());
    const StoreStats st = store->GetStats();
    return std::vector<uint64_t>{st.items,
                                 st.segments_used,
                                 st.segments_compacted,
                                 st.relocated_items,
                                 st.out_of_memory,
                                 st.writer_cleaner_passes,
                                 static_cast<uint64_t>(diff.out_of_memory())};
  };
  const std::vector<uint64_t> first = run();
  EXPECT_GT(first[4], 0u) << "the store never filled up";
  EXPECT_EQ(first, run()) << "items, segments used, compacted, relocated, out of memory, "
                             "writer passes, model's out of memory";
}

std::string VariantName(const ::testing::TestParamInfo<Variant>& info) {
  return std::string(info.param.tier ? "Tier" : "") + (info.param.quotas ? "Quotas" : "") +
         (info.param.resize ? "Resize" : "") + (info.param.eviction ? "Evict" : "NoEvict") +
         (info.param.background_cleaner ? "BackgroundCleaner" : "InlineCleaner") + "Seed" +
         std::to_string(info.param.seed);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, ModelTest,
    ::testing::Values(
        Variant{true, false, 1}, Variant{true, false, 2}, Variant{false, false, 1},
        Variant{false, false, 2}, Variant{true, true, 3}, Variant{false, true, 3},
        Variant{true, false, 4, true}, Variant{true, false, 5, true}, Variant{true, true, 6, true},
        Variant{true, true, 7, true}, Variant{true, false, 8, false, true},
        Variant{true, false, 9, false, true}, Variant{false, false, 8, false, true},
        Variant{true, true, 10, false, true}, Variant{true, false, 11, false, false, true},
        Variant{true, false, 12, false, false, true}, Variant{false, false, 11, false, false, true},
        Variant{false, false, 12, false, false, true}, Variant{true, true, 13, false, false, true},
        Variant{true, false, 14, true, false, true}, Variant{false, false, 15, true},
        Variant{false, true, 16, true}),
    VariantName);

}  // namespace
}  // namespace cinch
