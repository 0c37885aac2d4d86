// libFuzzer target: cinch::Store driven by a fuzzed stream of operations and checked against a
// std::unordered_map model (the fuzzing twin of tests/model_test.cc, whose semantics it follows).
//
// The store is tiny (4 KiB segments, a few above the smallest limit Store::Open accepts) so
// that eviction, compaction and out-of-line items happen within a few operations. Eviction is
// on, the cleaner runs only inside writers and on the RunCleanerOnce operation, and time comes
// from a ManualClock: a run depends on its input only.
//
// Input: the first byte picks the configuration; then each operation is an opcode, a key index
// and its arguments (FuzzedDataProvider: numbers are taken from the end of the input, values
// are generated from a counter and a fuzzed length). After every operation:
//   - a key the store returns holds the model's latest value, flags and expiry, and its CAS is
//     stable until the key is modified and then changes;
//   - a key the model holds as absent (deleted, expired, flushed, refused) is never returned;
//   - a key the model holds but the store lacks was evicted: allowed, the model forgets it;
//   - outcomes are the model's (kOutOfMemory never: eviction is on and every item fits);
//   - GetStats().resident_bytes <= memory_limit.
// At the end every key is read back.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "fuzz_check.h"

namespace cinch {
namespace {

constexpr size_t kSegmentSize = 4096;
constexpr int64_t kThirtyDays = 2592000;
constexpr int64_t kStart = 1'700'000'000;
constexpr int64_t kLatestExpiry = 0xFFFFFFFD;  // the store keeps expiries in 32 bits
constexpr size_t kKeyCount = 24;
// Item header bytes: at least 2, at most 2 + 4 (value length) + 4 (flags) + 4 (expiry) + 8 (CAS).
constexpr size_t kMinHeader = 2;
constexpr size_t kMaxHeader = 22;

struct Config {
  size_t extra_segments;  // above the smallest limit Store::Open accepts
  size_t max_item_size;   // at most a quarter of the extra memory: every item fits
};
constexpr Config kConfigs[] = {{4, 1024}, {6, 512}, {8, 2048}, {12, 4096}};

Options BaseOptions(const Config& c, const Clock* clock) {
  Options o;
  o.segment_size = kSegmentSize;
  o.max_item_size = c.max_item_size;
  o.index_shards = 1;
  o.eviction = true;
  o.background_cleaner = false;
  o.clock = clock;
  return o;
}

// memcached's reading of a counter (strtoull + safe_strtoull), as in tests/model_test.cc:
// blanks, one optional sign, digits, then the end, a blank or a NUL; no overflow; a '-'
// negates, and a result of 2^63 or more is refused when the value holds a '-' before its
// first NUL (safe_strtoull's strchr).
bool ParseNumber(std::string_view v, uint64_t* parsed) {
  auto blank = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  size_t i = 0;
  while (i < v.size() && blank(v[i])) ++i;
  const bool minus = i < v.size() && v[i] == '-';
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
  const size_t digits = i;
  uint64_t n = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    const uint64_t d = static_cast<uint64_t>(v[i] - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    n = n * 10 + d;
  }
  if (i == digits || (i < v.size() && !blank(v[i]) && v[i] != '\0')) return false;
  if (minus) n = 0 - n;  // strtoull negates
  if ((n >> 63) != 0 && v.substr(0, v.find('\0')).find('-') != std::string_view::npos) {
    return false;
  }
  *parsed = n;
  return true;
}

// With CINCH_FUZZ_TRACE set, every operation is printed: run a failing input alone to see how
// it got there.
bool Tracing() {
  static const bool enabled = std::getenv("CINCH_FUZZ_TRACE") != nullptr;
  return enabled;
}

void Trace(const char* format, ...) {
  if (!Tracing()) return;
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

const char* Name(Outcome o) { return OutcomeName(o).data(); }  // the names are literals

// The model's view of one key.
struct Entry {
  std::string value;
  uint32_t flags = 0;
  int64_t expiry = 0;  // absolute Unix seconds; 0 = never
  uint64_t cas = 0;    // the store's CAS of this version once seen; 0 = not seen yet
};

// How an operation picks its CAS value.
enum class CasChoice { kNone, kRight, kWrong, kAny };

class Model {
 public:
  Model(FuzzedDataProvider* in, Store* store, ManualClock* clock, size_t max_item_size)
      : in_(in), store_(store), clock_(clock), max_item_size_(max_item_size) {
    static constexpr size_t kLengths[] = {1, 4, 16, 60, 120, 250};
    for (size_t i = 0; i < kKeyCount; ++i) {
      std::string key(kLengths[i % 6], 'k');
      key[0] = static_cast<char>(i * 11);  // distinct, some not printable
      keys_.push_back(std::move(key));
    }
  }

  void Run() {
    while (in_->remaining_bytes() > 0) {
      Step();
      CheckMemory();
    }
    for (size_t ki = 0; ki < kKeyCount; ++ki) DoGet(ki);
  }

 private:
  // --- Inputs ----------------------------------------------------------------------------

  std::string Value() {
    const uint8_t kind = in_->ConsumeIntegral<uint8_t>();
    if (kind < 48) return Number();
    size_t n = kind < 128   ? in_->ConsumeIntegralInRange<size_t>(0, 64)
               : kind < 200 ? in_->ConsumeIntegralInRange<size_t>(65, 600)
                            : in_->ConsumeIntegralInRange<size_t>(0, max_item_size_ + 32);
    std::string v(n, '\0');
    uint32_t x = static_cast<uint32_t>(++version_) * 2654435761u;
    for (char& c : v) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
    return v;
  }

  // Something incr/decr may read as a number (or almost).
  std::string Number() {
    std::string v;
    const uint8_t shape = in_->ConsumeIntegral<uint8_t>();
    if (shape & 1) v += ' ';
    if (shape & 2) v += '+';
    if (shape & 4) v += '-';
    const uint64_t n = shape & 8 ? std::numeric_limits<uint64_t>::max() - (shape >> 4)
                                 : in_->ConsumeIntegral<uint64_t>() >> (shape >> 2);
    v += std::to_string(n);
    if (shape & 16) v += shape & 32 ? " junk" : "x";
    return v;
  }

  uint32_t Flags() {
    const uint8_t kind = in_->ConsumeIntegral<uint8_t>();
    return kind < 128 ? 0 : kind < 200 ? kind & 7 : in_->ConsumeIntegral<uint32_t>();
  }

  int64_t Exptime() {
    const int64_t now = Now();
    switch (in_->ConsumeIntegralInRange<int>(0, 9)) {
      case 1:
        return in_->ConsumeIntegralInRange<int64_t>(1, 60);  // relative, expires soon
      case 2:
        return in_->ConsumeIntegralInRange<int64_t>(61, kThirtyDays);  // relative
      case 3:
        return -in_->ConsumeIntegralInRange<int64_t>(1, 1000);  // already expired
      case 4:
        return now + in_->ConsumeIntegralInRange<int64_t>(-2, 100);  // absolute, near now
      case 5:
        return in_->ConsumeIntegralInRange<int64_t>(kThirtyDays + 1, now);  // absolute, past
      case 6:
        return in_->ConsumeIntegral<int32_t>();  // anything the protocol can carry
      case 7:
        return in_->ConsumeIntegral<int64_t>();  // anything the API takes
      default:
        return 0;
    }
  }

  CasChoice PickCas(const Entry* e, bool allow_none, uint64_t* cas) {
    const uint8_t kind = in_->ConsumeIntegralInRange<uint8_t>(allow_none ? 0 : 1, 3);
    if (kind == 0) {
      *cas = 0;
      return CasChoice::kNone;
    }
    if (e != nullptr && e->cas != 0 && kind < 3) {
      *cas = kind == 1 ? e->cas : e->cas ^ in_->ConsumeIntegralInRange<uint64_t>(1, ~uint64_t{0});
      return kind == 1 ? CasChoice::kRight : CasChoice::kWrong;
    }
    *cas = in_->ConsumeIntegral<uint64_t>();  // the model does not know whether it matches
    return CasChoice::kAny;
  }

  // --- The model -------------------------------------------------------------------------

  int64_t Now() const { return clock_->NowSeconds(); }

  // For traces: what the model holds for a key.
  const char* Held(const Entry* e) {
    if (!Tracing()) return "";
    if (e == nullptr) return "absent";
    std::snprintf(trace_buf_, sizeof(trace_buf_), "%zuB flags %u expiry %lld cas %llu",
                  e->value.size(), e->flags, static_cast<long long>(e->expiry),
                  static_cast<unsigned long long>(e->cas));
    return trace_buf_;
  }

  // Expiry of an item written now with `exptime`, as the store computes it; *expired when it
  // is born expired.
  int64_t ExpiryFor(int64_t exptime, bool* expired) const {
    *expired = false;
    if (exptime == 0) return 0;
    const int64_t at = exptime <= kThirtyDays ? Now() + exptime : exptime;
    if (exptime < 0 || at <= Now()) {
      *expired = true;
      return 0;
    }
    return std::min(at, kLatestExpiry);
  }

  // The live model entry of `key`, or nullptr; forgets it once expired.
  Entry* Find(size_t ki) {
    auto it = model_.find(ki);
    if (it == model_.end()) return nullptr;
    if (it->second.expiry != 0 && it->second.expiry <= Now()) {
      Forget(ki);
      return nullptr;
    }
    return &it->second;
  }

  void Forget(size_t ki) {
    auto it = model_.find(ki);
    if (it == model_.end()) return;
    if (it->second.cas != 0) prev_cas_[ki] = it->second.cas;
    model_.erase(it);
  }

  void Put(size_t ki, std::string value, uint32_t flags, int64_t expiry) {
    Forget(ki);
    model_[ki] = Entry{std::move(value), flags, expiry, 0};
  }

  // An item of `kv` key + value bytes: must it be, may it be, refused as too large?
  bool MustBeTooLarge(size_t kv) const { return kv + kMinHeader > max_item_size_; }
  bool MayBeTooLarge(size_t kv) const { return kv + kMaxHeader > max_item_size_; }

  void Expect(Outcome got, Outcome want, const char* what) {
    if (got == want) return;
    std::fprintf(stderr, "%s: got %s, model expects %s\n", what, Name(got), Name(want));
    FUZZ_CHECK(got == want);
  }

  // A returned item must be the model's latest version of its key.
  void CheckItem(size_t ki, const ItemRef& ref, Entry* e, bool check_expiry, bool with_cas) {
    FUZZ_CHECK(e != nullptr);  // never a key the model holds as absent
    FUZZ_CHECK(ref.key() == keys_[ki]);
    FUZZ_CHECK(ref.value() == e->value);
    FUZZ_CHECK(ref.flags() == e->flags);
    if (check_expiry) FUZZ_CHECK(ref.expiry() == e->expiry);
    if (!with_cas) {
      FUZZ_CHECK(ref.cas() == 0);
      return;
    }
    FUZZ_CHECK(ref.cas() != 0);
    if (e->cas == 0) {
      auto prev = prev_cas_.find(ki);
      FUZZ_CHECK(prev == prev_cas_.end() || prev->second != ref.cas());  // a new CAS per version
      e->cas = ref.cas();
    }
    FUZZ_CHECK(ref.cas() == e->cas);  // stable until modified
  }

  void CheckMemory() {
    const StoreStats st = store_->GetStats();
    FUZZ_CHECK(st.resident_bytes <= st.memory_limit);
  }

  // --- Operations ------------------------------------------------------------------------

  void Step() {
    const uint8_t op = in_->ConsumeIntegralInRange<uint8_t>(0, 15);
    const size_t ki = in_->ConsumeIntegralInRange<size_t>(0, kKeyCount - 1);
    switch (op) {
      case 0:
        return DoWrite(ki, SetMode::kSet);
      case 1:
        return DoWrite(ki, SetMode::kAdd);
      case 2:
        return DoWrite(ki, SetMode::kReplace);
      case 3:
        return DoWrite(ki, SetMode::kAppend);
      case 4:
        return DoWrite(ki, SetMode::kPrepend);
      case 5:
        return DoCas(ki);
      case 6:
        return DoDelete(ki);
      case 7:
      case 8:
        return DoArithmetic(ki, op == 7);
      case 9:
        return DoTouch(ki);
      case 10:
        return DoGetAndTouch(ki);
      case 11:
        return DoGet(ki);
      case 12:
        return DoFlush();
      case 13:
        return AdvanceClock();
      case 14:
        Trace("run cleaner");
        return store_->RunCleanerOnce();
      default:
        for (size_t k = 0; k < kKeyCount; ++k) DoGet(k);
    }
  }

  void DoGet(size_t ki) {
    Entry* e = Find(ki);
    const bool with_cas = in_->ConsumeBool();
    ItemRef ref;
    const bool hit = store_->Get(keys_[ki], &ref, with_cas);
    Trace("get%s k%zu -> %s (model %s)", with_cas ? "s" : "", ki, hit ? "hit" : "miss", Held(e));
    if (hit) return CheckItem(ki, ref, e, true, with_cas);
    FUZZ_CHECK(!ref);
    Forget(ki);  // absent, or evicted
  }

  void DoWrite(size_t ki, SetMode mode) {
    Entry* e = Find(ki);
    const bool concat = mode == SetMode::kAppend || mode == SetMode::kPrepend;
    std::string data = Value();
    const uint32_t flags = Flags();
    const int64_t exptime = Exptime();
    const Outcome got = store_->Write(mode, keys_[ki], data, flags, exptime);
    Trace("write mode %d k%zu %zuB flags %u exptime %lld -> %s (model %s)", static_cast<int>(mode),
          ki, data.size(), flags, static_cast<long long>(exptime), Name(got), Held(e));
    FUZZ_CHECK(got != Outcome::kOutOfMemory);

    // Too large: for append/prepend the grown value, checked only once the key is found; for
    // the others the new value, checked first.
    const size_t kv = keys_[ki].size() + data.size() + (concat && e ? e->value.size() : 0);
    if (got == Outcome::kTooLarge) {
      FUZZ_CHECK(MayBeTooLarge(kv) && (!concat || e != nullptr));
      if (mode == SetMode::kSet) Forget(ki);  // a refused set drops the stale value
      return;
    }
    FUZZ_CHECK(!MustBeTooLarge(kv) || (concat && got != Outcome::kStored));

    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (mode == SetMode::kSet) {
      Expect(got, Outcome::kStored, "set");
    } else if (mode == SetMode::kAdd) {
      if (e == nullptr) Expect(got, Outcome::kStored, "add of an absent key");
      if (e != nullptr && got == Outcome::kStored) e = nullptr;  // it was evicted
      if (e != nullptr) Expect(got, Outcome::kNotStored, "add of a present key");
    } else {
      if (e == nullptr) return Expect(got, Outcome::kNotStored, "replace/append/prepend, absent");
      if (got == Outcome::kNotStored) return Forget(ki);  // evicted
      Expect(got, Outcome::kStored, "replace/append/prepend of a present key");
    }
    if (got != Outcome::kStored) return;
    if (concat) {
      std::string value = mode == SetMode::kAppend ? e->value + data : data + e->value;
      Put(ki, std::move(value), e->flags, e->expiry);  // flags and expiry are kept
    } else if (born_expired) {
      Forget(ki);
    } else {
      Put(ki, std::move(data), flags, expiry);
    }
  }

  void DoCas(size_t ki) {
    Entry* e = Find(ki);
    uint64_t cas;
    const CasChoice choice = PickCas(e, /*allow_none=*/false, &cas);
    std::string data = Value();
    const uint32_t flags = Flags();
    const int64_t exptime = Exptime();
    const Outcome got = store_->Write(SetMode::kCas, keys_[ki], data, flags, exptime, cas);
    Trace("cas k%zu %zuB cas %llu (choice %d) exptime %lld -> %s (model %s)", ki, data.size(),
          static_cast<unsigned long long>(cas), static_cast<int>(choice),
          static_cast<long long>(exptime), Name(got), Held(e));
    FUZZ_CHECK(got != Outcome::kOutOfMemory);
    const size_t kv = keys_[ki].size() + data.size();
    if (got == Outcome::kTooLarge) {
      FUZZ_CHECK(MayBeTooLarge(kv));
      return;
    }
    FUZZ_CHECK(!MustBeTooLarge(kv));
    if (e == nullptr) return Expect(got, Outcome::kNotFound, "cas of an absent key");
    if (got == Outcome::kNotFound) return Forget(ki);  // evicted
    if (choice == CasChoice::kRight) Expect(got, Outcome::kStored, "cas with the current CAS");
    if (choice == CasChoice::kWrong) Expect(got, Outcome::kExists, "cas with a wrong CAS");
    if (got == Outcome::kExists) return;
    Expect(got, Outcome::kStored, "cas");
    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (born_expired) return Forget(ki);
    Put(ki, std::move(data), flags, expiry);
  }

  void DoDelete(size_t ki) {
    Entry* e = Find(ki);
    uint64_t cas;
    const CasChoice choice = PickCas(e, /*allow_none=*/true, &cas);
    const Outcome got = store_->Delete(keys_[ki], cas);
    Trace("delete k%zu cas %llu (choice %d) -> %s (model %s)", ki,
          static_cast<unsigned long long>(cas), static_cast<int>(choice), Name(got), Held(e));
    if (e == nullptr) return Expect(got, Outcome::kNotFound, "delete of an absent key");
    if (got == Outcome::kNotFound) return Forget(ki);  // evicted
    if (choice == CasChoice::kWrong) return Expect(got, Outcome::kExists, "delete, wrong CAS");
    if (choice != CasChoice::kAny) Expect(got, Outcome::kDeleted, "delete");
    if (got == Outcome::kExists) return;
    Expect(got, Outcome::kDeleted, "delete");
    Forget(ki);
  }

  void DoArithmetic(size_t ki, bool incr) {
    Entry* e = Find(ki);
    uint64_t cas;
    const CasChoice choice = PickCas(e, /*allow_none=*/true, &cas);
    const uint64_t delta = in_->ConsumeIntegral<uint64_t>() >> in_->ConsumeIntegralInRange(0, 63);
    uint64_t result = 0;
    const Outcome got = incr ? store_->Incr(keys_[ki], delta, &result, cas)
                             : store_->Decr(keys_[ki], delta, &result, cas);
    Trace("%s k%zu %llu cas %llu -> %s %llu (model %s)", incr ? "incr" : "decr", ki,
          static_cast<unsigned long long>(delta), static_cast<unsigned long long>(cas), Name(got),
          static_cast<unsigned long long>(result), Held(e));
    FUZZ_CHECK(got != Outcome::kOutOfMemory);
    if (e == nullptr) return Expect(got, Outcome::kNotFound, "incr/decr of an absent key");
    if (got == Outcome::kNotFound) return Forget(ki);  // evicted
    // An empty value is not a number, whatever the CAS (memcached looks at its length first).
    if (e->value.empty()) return Expect(got, Outcome::kNonNumeric, "incr/decr of an empty value");
    if (choice == CasChoice::kWrong) return Expect(got, Outcome::kExists, "incr/decr, wrong CAS");
    if (choice == CasChoice::kAny && got == Outcome::kExists) return;
    uint64_t n = 0;
    if (!ParseNumber(e->value, &n)) return Expect(got, Outcome::kNonNumeric, "incr/decr");
    const uint64_t want = incr ? n + delta : (n > delta ? n - delta : 0);
    std::string text = std::to_string(want);
    if (text.size() < e->value.size()) text.resize(e->value.size(), ' ');  // memcached pads
    if (got == Outcome::kTooLarge) {  // the number grew a digit past the item size
      FUZZ_CHECK(MayBeTooLarge(keys_[ki].size() + text.size()));
      return;
    }
    Expect(got, Outcome::kStored, "incr/decr");
    FUZZ_CHECK(result == want);
    Put(ki, std::move(text), e->flags, e->expiry);
  }

  void DoTouch(size_t ki) {
    Entry* e = Find(ki);
    const int64_t exptime = Exptime();
    const Outcome got = store_->Touch(keys_[ki], exptime);
    Trace("touch k%zu exptime %lld -> %s (model %s)", ki, static_cast<long long>(exptime),
          Name(got), Held(e));
    FUZZ_CHECK(got != Outcome::kOutOfMemory);
    if (e == nullptr) return Expect(got, Outcome::kNotFound, "touch of an absent key");
    if (got == Outcome::kNotFound) return Forget(ki);  // evicted
    Expect(got, Outcome::kTouched, "touch");
    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (born_expired) return Forget(ki);
    e->expiry = expiry;  // value, flags and CAS unchanged
  }

  void DoGetAndTouch(size_t ki) {
    Entry* e = Find(ki);
    const int64_t exptime = Exptime();
    const bool with_cas = in_->ConsumeBool();
    ItemRef ref;
    const Outcome got = store_->GetAndTouch(keys_[ki], exptime, &ref, with_cas);
    Trace("gat k%zu exptime %lld -> %s (model %s)", ki, static_cast<long long>(exptime), Name(got),
          Held(e));
    FUZZ_CHECK(got != Outcome::kOutOfMemory);
    bool born_expired = false;
    const int64_t expiry = ExpiryFor(exptime, &born_expired);
    if (got != Outcome::kTouched) {
      Expect(got, Outcome::kNotFound, "gat");
      return Forget(ki);  // absent, evicted, or (born expired) not pinned down
    }
    if (e != nullptr && !born_expired) e->expiry = expiry;
    CheckItem(ki, ref, e, /*check_expiry=*/!born_expired, with_cas);
    if (born_expired) Forget(ki);
  }

  // flush_all [delay]: everything stored before now + delay is gone once that time comes.
  void DoFlush() {
    const int64_t delay = in_->ConsumeIntegralInRange<int64_t>(-2, 40);
    store_->FlushAll(delay);
    Trace("flush_all %lld at %lld", static_cast<long long>(delay), static_cast<long long>(Now()));
    if (delay > 0) {
      flush_deadline_ = Now() + delay;
      return;
    }
    flush_deadline_ = 0;
    while (!model_.empty()) Forget(model_.begin()->first);
  }

  void AdvanceClock() {
    const uint8_t kind = in_->ConsumeIntegral<uint8_t>();
    const int64_t step = kind < 200   ? 1 + kind % 4
                         : kind < 250 ? in_->ConsumeIntegralInRange<int64_t>(1, 120)
                                      : in_->ConsumeIntegralInRange<int64_t>(1, 100000);
    clock_->Advance(step);
    Trace("advance clock by %lld to %lld", static_cast<long long>(step),
          static_cast<long long>(Now()));
    // Every operation first applies a delayed flush that has come due, to all items (all were
    // stored before the deadline).
    if (flush_deadline_ != 0 && Now() >= flush_deadline_) {
      flush_deadline_ = 0;
      while (!model_.empty()) Forget(model_.begin()->first);
    }
  }

  FuzzedDataProvider* const in_;
  Store* const store_;
  ManualClock* const clock_;
  const size_t max_item_size_;
  std::vector<std::string> keys_;
  std::unordered_map<size_t, Entry> model_;
  std::unordered_map<size_t, uint64_t> prev_cas_;  // CAS of the last superseded version
  int64_t flush_deadline_ = 0;                     // a pending delayed flush_all, or 0
  uint64_t version_ = 0;                           // makes every generated value different
  char trace_buf_[96];
};

}  // namespace
}  // namespace cinch

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cinch;
  if (size < 1) return 0;
  static std::array<size_t, std::size(kConfigs)> min_limits{};
  const size_t pick = data[0] % std::size(kConfigs);
  const Config& config = kConfigs[pick];
  ManualClock clock(kStart);
  Options o = BaseOptions(config, &clock);
  if (min_limits[pick] == 0) min_limits[pick] = Store::MinimumMemoryLimit(o);
  o.memory_limit = min_limits[pick] + config.extra_segments * kSegmentSize;
  std::unique_ptr<Store> store;
  FUZZ_CHECK(Store::Open(o, &store).ok());
  FuzzedDataProvider in(data + 1, size - 1);
  Model(&in, store.get(), &clock, config.max_item_size).Run();
  return 0;
}
