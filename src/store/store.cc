// cinch::Store: the public face of store::Engine.
#include "cinch/store.h"

#include "common/check.h"
#include "store/engine.h"

namespace cinch {

ItemRef& ItemRef::operator=(ItemRef&& other) noexcept {
  if (this != &other) {
    Reset();
    pin_ = other.pin_;
    key_ = other.key_;
    value_ = other.value_;
    flags_ = other.flags_;
    cas_ = other.cas_;
    expiry_ = other.expiry_;
    last_access_ = other.last_access_;
    fetched_before_ = other.fetched_before_;
    stale_ = other.stale_;
    win_token_sent_ = other.win_token_sent_;
    binary_key_ = other.binary_key_;
    other.pin_ = nullptr;
  }
  return *this;
}

void ItemRef::Reset() {
  if (pin_ == nullptr) return;
  pin_->fetch_sub(1, std::memory_order_release);
  pin_ = nullptr;
  key_ = value_ = {};
  flags_ = 0;
  cas_ = 0;
  expiry_ = 0;
  last_access_ = 0;
  fetched_before_ = stale_ = win_token_sent_ = binary_key_ = false;
}

ValueWriter& ValueWriter::operator=(ValueWriter&& other) noexcept {
  if (this != &other) {
    Abort();
    engine_ = other.engine_;
    item_ = other.item_;
    value_ = other.value_;
    size_ = other.size_;
    item_size_ = other.item_size_;
    segment_ = other.segment_;
    keyspace_ = other.keyspace_;
    add_ = other.add_;
    expired_ = other.expired_;
    other.engine_ = nullptr;
    other.item_ = other.value_ = nullptr;
    other.size_ = other.item_size_ = 0;
  }
  return *this;
}

Outcome ValueWriter::Commit() {
  CINCH_CHECK(engine_ != nullptr);
  return engine_->CommitWrite(this);
}

void ValueWriter::Abort() {
  if (engine_ != nullptr) engine_->AbortWrite(this);
}

Store::Store(std::unique_ptr<store::Engine> engine) : engine_(std::move(engine)) {}
Store::~Store() = default;

Status Store::Open(const Options& options, std::unique_ptr<Store>* store) {
  std::unique_ptr<store::Engine> engine;
  Status s = store::Engine::Open(options, &engine);
  if (!s.ok()) return s;
  store->reset(new Store(std::move(engine)));
  return Status::Ok();
}

Status Store::OpenFrom(const Options& options, const std::string& path,
                       const SnapshotOptions& snapshot, std::unique_ptr<Store>* store,
                       RestoreReport* report) {
  std::unique_ptr<store::Engine> engine;
  const uint64_t limit = snapshot.memory_limit != 0 ? snapshot.memory_limit : options.memory_limit;
  Status s = store::Engine::OpenFrom(options, path, limit, &engine, report);
  if (!s.ok()) return s;
  store->reset(new Store(std::move(engine)));
  return Status::Ok();
}

Status Store::SaveTo(const std::string& path, const SnapshotOptions& snapshot) {
  const uint64_t limit =
      snapshot.memory_limit != 0 ? snapshot.memory_limit : engine_->options().memory_limit;
  return engine_->SaveTo(path, limit);
}

size_t Store::MinimumMemoryLimit(const Options& options) {
  auto accepts = [&](size_t segments) {
    Options o = options;
    o.memory_limit = segments * o.segment_size;
    return store::Engine::Fits(o);  // the tier's memory counts; its files are not opened
  };
  size_t lo = 0, hi = 1;  // accepts(lo) is false (assumed), accepts(hi) is true
  while (!accepts(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > (size_t{1} << 20)) return 0;
  }
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    (accepts(mid) ? hi : lo) = mid;
  }
  return hi * options.segment_size;
}

// The engine's floor (Engine::min_limit) is at least MinimumMemoryLimit(options()): a store
// of that limit would have no more heads, index pages or metadata than this one had at Open.
void Store::SetMemoryLimit(size_t bytes) { engine_->SetMemoryLimit(bytes); }

Outcome Store::Write(SetMode mode, std::string_view key, std::string_view value, uint32_t flags,
                     int64_t exptime, uint64_t cas_unique, bool binary_key) {
  return engine_->Write(Keyspace{}, mode, key, value, flags, exptime, cas_unique, binary_key);
}

Outcome Store::Write(Keyspace keyspace, SetMode mode, std::string_view key, std::string_view value,
                     uint32_t flags, int64_t exptime, uint64_t cas_unique, bool binary_key) {
  return engine_->Write(keyspace, mode, key, value, flags, exptime, cas_unique, binary_key);
}

Outcome Store::BeginWrite(Keyspace keyspace, SetMode mode, std::string_view key, size_t value_size,
                          uint32_t flags, int64_t exptime, ValueWriter* out) {
  return engine_->BeginWrite(keyspace, mode, key, value_size, flags, exptime, out);
}

bool Store::Get(std::string_view key, ItemRef* out, bool with_cas, Miss* miss) {
  return engine_->Get(Keyspace{}, key, out, with_cas, miss);
}

bool Store::Get(Keyspace keyspace, std::string_view key, ItemRef* out, bool with_cas, Miss* miss) {
  return engine_->Get(keyspace, key, out, with_cas, miss);
}

bool Store::Peek(std::string_view key, ItemRef* out, bool with_cas) {
  return engine_->Read(Keyspace{}, key, out, with_cas, /*bump=*/false, nullptr);
}

bool Store::Peek(Keyspace keyspace, std::string_view key, ItemRef* out, bool with_cas) {
  return engine_->Read(keyspace, key, out, with_cas, /*bump=*/false, nullptr);
}

bool Store::ListItems(Keyspace keyspace, ListCursor* cursor, size_t max_items, bool with_cas,
                      bool may_block, ItemList* list) {
  return engine_->ListItems(keyspace, cursor, max_items, with_cas, may_block, list);
}

bool Store::Fetch(std::string_view key, const FetchOptions& options, ItemRef* out,
                  FetchResult* result) {
  return engine_->Fetch(Keyspace{}, key, options, out, result);
}

bool Store::Fetch(Keyspace keyspace, std::string_view key, const FetchOptions& options,
                  ItemRef* out, FetchResult* result) {
  return engine_->Fetch(keyspace, key, options, out, result);
}

Outcome Store::GetAndTouch(std::string_view key, int64_t exptime, ItemRef* out, bool with_cas,
                           Miss* miss) {
  return engine_->GetAndTouch(Keyspace{}, key, exptime, out, with_cas, miss);
}

Outcome Store::GetAndTouch(Keyspace keyspace, std::string_view key, int64_t exptime, ItemRef* out,
                           bool with_cas, Miss* miss) {
  return engine_->GetAndTouch(keyspace, key, exptime, out, with_cas, miss);
}

Outcome Store::Touch(std::string_view key, int64_t exptime) {
  return engine_->Touch(Keyspace{}, key, exptime);
}

Outcome Store::Touch(Keyspace keyspace, std::string_view key, int64_t exptime) {
  return engine_->Touch(keyspace, key, exptime);
}

Outcome Store::Delete(std::string_view key, uint64_t cas_unique) {
  return engine_->Delete(Keyspace{}, key, cas_unique);
}

Outcome Store::Delete(Keyspace keyspace, std::string_view key, uint64_t cas_unique) {
  return engine_->Delete(keyspace, key, cas_unique);
}

uint64_t Store::UnusedCas() { return engine_->UnusedCas(); }

Outcome Store::Invalidate(std::string_view key, uint64_t cas_unique, bool set_exptime,
                          int64_t exptime) {
  return engine_->Invalidate(Keyspace{}, key, cas_unique, set_exptime, exptime);
}

Outcome Store::Invalidate(Keyspace keyspace, std::string_view key, uint64_t cas_unique,
                          bool set_exptime, int64_t exptime) {
  return engine_->Invalidate(keyspace, key, cas_unique, set_exptime, exptime);
}

Outcome Store::Incr(std::string_view key, uint64_t delta, uint64_t* result, uint64_t cas_unique) {
  return engine_->Arithmetic(Keyspace{}, key, true, delta, result, cas_unique);
}

Outcome Store::Decr(std::string_view key, uint64_t delta, uint64_t* result, uint64_t cas_unique) {
  return engine_->Arithmetic(Keyspace{}, key, false, delta, result, cas_unique);
}

Outcome Store::Incr(Keyspace keyspace, std::string_view key, uint64_t delta, uint64_t* result,
                    uint64_t cas_unique) {
  return engine_->Arithmetic(keyspace, key, true, delta, result, cas_unique);
}

Outcome Store::Decr(Keyspace keyspace, std::string_view key, uint64_t delta, uint64_t* result,
                    uint64_t cas_unique) {
  return engine_->Arithmetic(keyspace, key, false, delta, result, cas_unique);
}

void Store::FlushAll(int64_t delay_seconds) { engine_->FlushAll(delay_seconds); }

void Store::FlushAll(Keyspace keyspace, int64_t delay_seconds) {
  engine_->FlushKeyspace(keyspace, delay_seconds);
}

void Store::SetKeyspaceQuota(Keyspace keyspace, size_t bytes) {
  engine_->SetKeyspaceQuota(keyspace, bytes);
}
StoreStats Store::GetStats() const { return engine_->GetStats(); }
KeyspaceStats Store::GetKeyspaceStats(Keyspace keyspace) const {
  return engine_->GetKeyspaceStats(keyspace);
}

std::vector<Keyspace> Store::Keyspaces() const { return engine_->Keyspaces(); }
bool Store::ChargeExternal(size_t bytes) { return engine_->ChargeExternal(bytes); }
void Store::ReleaseExternal(size_t bytes) { engine_->ReleaseExternal(bytes); }
void Store::RunCleanerOnce() { engine_->RunCleanerOnce(); }

bool Store::InFileTier(Keyspace keyspace, std::string_view key) const {
  return engine_->InFileTier(keyspace, key);
}

void Store::Promote(Keyspace keyspace, std::string_view key) { engine_->Promote(keyspace, key); }
const Options& Store::options() const { return engine_->options(); }

}  // namespace cinch
