// Engine: the write paths. An item is reserved in a segment, written in full, then published
// under the key's shard lock; conditions (add, replace, cas) are checked at publication.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>

#include "common/check.h"
#include "common/hash.h"
#include "store/engine.h"

namespace cinch::store {

namespace {

// Without eviction, retries of one operation (memory freed but taken by another writer, a
// flush_all passing) end at its space deadline, but not before this many attempts.
constexpr int kMinAttempts = 8;
// A read-modify-write loses a race when the item changes between its read and its publication
// (a hot key); after this many it holds the shard lock from read to publication, as memcached
// holds the item lock through incr and append.
constexpr int kOptimisticRewrites = 1;
// Segments a writer may clean in one ReclaimInline before it lets the caller retry.
constexpr int kMaxInlineVictims = 64;
// How long a writer short of memory gives a running pass to free some before cleaning itself.
constexpr auto kPassGrace = std::chrono::milliseconds(5);
// The longest single wait for memory, after which a writer looks again.
constexpr auto kMaxWait = std::chrono::milliseconds(5);

bool ValidKey(std::string_view key) { return !key.empty() && key.size() <= Store::kMaxKeyLength; }

}  // namespace

bool Engine::MayRetry(int attempt, Deadline& deadline) const {
  return options_.eviction || attempt < kMinAttempts || !deadline.Passed();
}

// --- reservations ---

void Engine::OpenSegment(uint32_t segment, int head, bool jumbo, uint16_t ks_id) {
  mem::SegmentMeta& m = pool_->meta(segment);
  m.keyspace.store(ks_id, std::memory_order_relaxed);
  m.open_seq.store(open_seq_.fetch_add(1, std::memory_order_relaxed) + 1,
                   std::memory_order_relaxed);
  m.flush_gen.store(GenOf(ks_id), std::memory_order_relaxed);
  m.write_time.store(static_cast<uint32_t>(Now()), std::memory_order_relaxed);
  m.head.store(static_cast<uint8_t>(head), std::memory_order_relaxed);
  m.state.store(jumbo ? mem::SegState::kSealed : mem::SegState::kOpen, std::memory_order_release);
}

void Engine::NoteExpiry(uint32_t segment, uint32_t expiry) {
  uint32_t e = expiry == 0 ? mem::kNeverExpires : expiry;
  std::atomic<uint32_t>& max = pool_->meta(segment).max_expiry;
  uint32_t cur = max.load(std::memory_order_relaxed);
  while (cur < e && !max.compare_exchange_weak(cur, e, std::memory_order_relaxed)) {
  }
}

bool Engine::ReserveInHead(KeyspaceState& ks, uint16_t ks_id, int head_index, size_t size,
                           Reservation* r, bool as_writer) {
  WriteHead& head = HeadOf(ks, head_index);
  bool for_cleaner = IsMainHead(head_index) && !as_writer;
  std::lock_guard<SpinLock> lock(head.lock);
  uint32_t sealed_tail = 0;
  if (head.segment != mem::kNoSegment) {
    mem::SegmentMeta& m = pool_->meta(head.segment);
    uint32_t offset = m.write_offset.load(std::memory_order_relaxed);
    // A segment of an older flush generation (a flush_all has begun and not sealed this head
    // yet) takes no more items: they would be stale at once. A cleaner moving an item written
    // since the flush would drop it (Relocate), a writer would write it again (Publish).
    if (IsCurrent(m) && offset + size <= m.capacity) {
      m.write_offset.store(static_cast<uint32_t>(offset + size), std::memory_order_relaxed);
      m.writers.fetch_add(1, std::memory_order_relaxed);
      *r = Reservation{head.segment, offset, m.base + offset};
      return true;
    }
    m.state.store(mem::SegState::kSealed, std::memory_order_release);
    head.segment = mem::kNoSegment;
    sealed_tail = m.capacity - offset;
  }
  // Set before the head holds a segment, so that a walk of the heads (SealHeadsOf) that has
  // not passed this one yet finds it.
  const uint64_t bit = uint64_t{1} << head_index;
  ks.open_heads.fetch_or(bit, std::memory_order_acq_rel);
  uint32_t segment = pool_->Allocate(for_cleaner);
  if (segment == mem::kNoSegment) {
    ks.open_heads.fetch_and(~bit, std::memory_order_relaxed);
    return false;
  }
  OpenSegment(segment, head_index, false, ks_id);
  head.segment = segment;
  mem::SegmentMeta& m = pool_->meta(segment);
  m.write_offset.store(static_cast<uint32_t>(size), std::memory_order_relaxed);
  m.writers.fetch_add(1, std::memory_order_relaxed);
  *r = Reservation{segment, 0, m.base, sealed_tail};
  if (!for_cleaner && pool_->FreeCapacity() <= pool_->reserve_bytes() / pool_->segment_size() + 1) {
    WakeCleaner();
  }
  return true;
}

bool Engine::ReserveJumbo(uint16_t ks_id, size_t size, Reservation* r, bool precharged) {
  uint32_t segment = pool_->AllocateJumbo(size, precharged);
  if (segment == mem::kNoSegment) return false;
  mem::SegmentMeta& m = pool_->meta(segment);
  // A jumbo segment is born sealed: the writer must be counted before the cleaner can see it.
  m.writers.store(1, std::memory_order_relaxed);
  m.write_offset.store(static_cast<uint32_t>(size), std::memory_order_relaxed);
  OpenSegment(segment, 0, true, ks_id);
  *r = Reservation{segment, 0, m.base};
  return true;
}

bool Engine::Reserve(KeyspaceState& ks, uint16_t ks_id, size_t size, int cls, uint32_t expiry,
                     Deadline& deadline, Reservation* r) {
  bool ok = size > jumbo_threshold_ ? ReserveJumboWaiting(ks_id, size, deadline, r)
                                    : ReserveInHead(ks, ks_id, WriterHead(cls), size, r);
  // Memory freed may be taken by another writer first: retry, with eviction on for as long as
  // room is being made (no clock: a writer that is not scheduled for a while must not fail for
  // it), without eviction until the deadline, not a number of times (with a few busy threads,
  // any fixed count runs out within milliseconds).
  while (!ok && size <= jumbo_threshold_ && ReclaimSpace(0, deadline)) {
    ok = ReserveInHead(ks, ks_id, WriterHead(cls), size, r);
    if (!ok && !options_.eviction && deadline.Passed()) break;
  }
  if (!ok) return false;
  NoteExpiry(r->segment, expiry);
  return true;
}

bool Engine::TryReserve(KeyspaceState& ks, uint16_t ks_id, size_t size, int cls, Reservation* r) {
  return size > jumbo_threshold_ ? ReserveJumbo(ks_id, size, r, false)
                                 : ReserveInHead(ks, ks_id, WriterHead(cls), size, r);
}

// A jumbo item needs its whole size free at once, which writers of small items could keep
// taking as the cleaner frees it; so the memory is claimed (charged) as soon as it is there.
bool Engine::ReserveJumboWaiting(uint16_t ks_id, size_t size, Deadline& deadline, Reservation* r) {
  if (ReserveJumbo(ks_id, size, r, false)) return true;
  size_t mapped = mem::RoundUpToPage(size);
  if (!ChargeWaiting(mem::MemoryKind::kJumbo, mapped, deadline)) return false;
  if (ReserveJumbo(ks_id, size, r, true)) return true;
  accountant_.Release(mem::MemoryKind::kJumbo, mapped);
  return false;  // out of jumbo slots or address space
}

bool Engine::ChargeWaiting(mem::MemoryKind kind, size_t bytes, Deadline& deadline) {
  while (ReclaimSpace(bytes, deadline)) {
    if (accountant_.Available() >= bytes + pool_->reserve_bytes() &&
        accountant_.TryCharge(kind, bytes)) {
      return true;
    }
    if (!options_.eviction && deadline.Passed()) break;
  }
  return false;
}

void Engine::FinishReservation(const Reservation& r) {
  pool_->meta(r.segment).writers.fetch_sub(1, std::memory_order_release);
}

bool Engine::ReclaimSpace(size_t bytes, Deadline& deadline) {
  // With eviction on, a writer never depends on another thread's pass: that thread may not be
  // scheduled for a long while (a loaded machine, a sanitizer), and a pass may be busy with
  // work the writer does not need. It cleans a segment of its own instead (as memcached's
  // writers evict from the LRU tail themselves). Waiting helps only with what frees itself
  // soon: segments pinned by readers or claimed by other cleaners, or memory another thread
  // releases. A writer blocks its thread (an event loop in the server, whose other clients may
  // hold the very memory it waits for), so every wait of one operation ends at one deadline.
  // Without eviction, a writer waits for a running pass (cleaning of its own could only
  // compact, and on a full store would repeat fruitless compactions for every refused write),
  // and a pass of its own that freed nothing while no freed segment waits for readers means
  // the store is full: say so at once.
  for (;;) {
    uint64_t seen = space_epoch_.load(std::memory_order_acquire);
    PassResult pass = TryWriterPass(bytes);
    if (pass == PassResult::kProgress) return true;
    if (pass == PassResult::kStoreFull) return false;
    if (pass == PassResult::kBusy && options_.eviction) {
      // A running pass usually frees a segment within a millisecond or two, and cleaning beside
      // it takes the second emptiest segment where the pass would have taken the emptiest next
      // (write amplification u / (1 - u) grows fast with u): give it that long (within the
      // deadline), then clean for ourselves.
      auto at = deadline.at();  // first: the deadline of a first wait starts now
      auto now = Deadline::Clock::now();
      if (now < at &&
          WaitForSpace(seen, std::min<Deadline::Clock::duration>(kPassGrace, at - now))) {
        return true;
      }
      if (ReclaimInline(bytes)) return true;
    }
    auto at = deadline.at();
    auto now = Deadline::Clock::now();
    if (now >= at) return false;
    if (WaitForSpace(seen, std::min<Deadline::Clock::duration>(at - now, kMaxWait))) return true;
  }
}

bool Engine::WaitForSpace(uint64_t seen, Deadline::Clock::duration wait) {
  writer_space_waits_.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(space_mu_);
  return space_cv_.wait_for(lock, wait,
                            [&] { return space_epoch_.load(std::memory_order_acquire) != seen; });
}

Engine::PassResult Engine::TryWriterPass(size_t bytes) {
  if (!cleaner_mu_.try_lock()) return PassResult::kBusy;
  writer_cleaner_passes_.fetch_add(1, std::memory_order_relaxed);
  bool progress = CleanerPass(bytes == 0 ? 1 : bytes);
  cleaner_mu_.unlock();
  if (progress) return PassResult::kProgress;
  bool pinned = HasDraining();  // segments that free themselves once readers let go
  return options_.eviction || pinned ? PassResult::kNoProgress : PassResult::kStoreFull;
}

bool Engine::WriterCanTake(size_t bytes) const {
  if (bytes == 0) return pool_->FreeCapacity() > pool_->reserve_bytes() / pool_->segment_size();
  return accountant_.Available() >= bytes + pool_->reserve_bytes();
}

// The same choices as a pass (compaction of the emptiest segment before eviction, S3-FIFO
// victims, compaction only while it frees more segments than it fills), made for one writer's
// need: it stops as soon as that writer can take its memory. Memory freed goes back to the
// pool, where another writer may take it first; the caller then comes back.
// REQUIRES: eviction on.
bool Engine::ReclaimInline(size_t bytes) {
  uint64_t seen = space_epoch_.load(std::memory_order_acquire);
  auto has_room = [&] {
    if (bytes > 0 && accountant_.Available() < bytes + pool_->reserve_bytes()) {
      pool_->TrimResident();  // memory wanted outside segments: give back resident free ones
    }
    return WriterCanTake(bytes);
  };
  FreeDrained();
  if (has_room()) return true;
  const int64_t now = Now();
  const int window = CompactionWindow();
  bool compact = true;
  int compactions = 0;
  int64_t gain = 0;  // bytes this writer's compactions freed, less the bytes they filled
  // Its own list of segments in use: the pass's (in_use_) is the cleaner lock's, which a
  // writer here does not hold.
  std::vector<uint32_t> in_use;
  bool sealed_idle = false;
  bool sealed_busy = false;
  bool none_gains = false;  // no compaction frees memory (PickCompactionVictim found none)
  for (int i = 0; i < kMaxInlineVictims; ++i) {
    pool_->InUse(&in_use);  // the last evacuation freed one and may have opened others
    // Flushed or expired segments first: emptying them copies nothing (after a flush_all, the
    // whole store until the pass running beside has swept it).
    uint32_t victim = PickStaleSegment(in_use, now);
    if (victim == mem::kNoSegment && compact && !none_gains) {
      victim = PickCompactionVictim(in_use, options_.compact_max_live);
      // None gains now, and evictions will not change that: do not look again (it costs a
      // sort where many keyspaces each have a single sealed segment).
      none_gains = victim == mem::kNoSegment;
    }
    bool evict = victim == mem::kNoSegment;
    if (evict) victim = PickEvictionVictim(in_use);
    if (victim == mem::kNoSegment && !sealed_idle) {
      // Nothing sealed to clean: open segments of keyspaces gone quiet may hold the memory.
      sealed_idle = true;
      SealIdleHeads(now, /*short_of_memory=*/true);
      none_gains = false;  // the quiet keyspaces' segments may compact together
      continue;
    }
    if (victim == mem::kNoSegment && !sealed_busy && OnlyHeads(in_use)) {
      // Still nothing: the memory is in the open segments of more keyspaces being written
      // than it has room for. Waiting would not help (each is written again within 2 s):
      // busy heads, the emptiest, give up their tails instead.
      sealed_busy = true;
      if (SealHeadsForRoom(RoomSealCount()) > 0) continue;
    }
    if (victim == mem::kNoSegment) break;  // all sealed segments are being cleaned
    // With a file tier, the victim's items go to a file segment rather than away: the writer
    // waits for that write (backpressure).
    uint32_t file = mem::kNoSegment;
    if (evict && HasTier() && Demotable(victim)) {
      file = TakeFileSegment(victim, now);
    }
    if (!Claim(victim)) {  // another cleaner took it: pick again
      if (file != mem::kNoSegment) pool_->Free(file);
      continue;
    }
    writer_reclaims_.fetch_add(1, std::memory_order_relaxed);
    Evacuation ev{Cleaner::kWriter};
    ev.file_segment = file;
    bool emptied = Evacuate(victim, evict, now, ev);
    if (!evict) {
      gain += ev.gain();
      // No room to move items, or compaction that has not paid over a window: evict instead.
      if (!emptied || (++compactions >= window && gain <= 0)) compact = false;
    }
    if (has_room()) return true;
  }
  return space_epoch_.load(std::memory_order_acquire) != seen;
}

void Engine::NoteSpaceFreed() {
  space_epoch_.fetch_add(1, std::memory_order_acq_rel);
  std::lock_guard<std::mutex> lock(space_mu_);
  space_cv_.notify_all();
}

// --- set, add, replace, cas ---

Outcome Engine::PreCheck(SetMode mode, uint64_t hash, Keyspace ks, std::string_view key,
                         uint64_t cas_unique) {
  index::Shard& shard = index_->ShardFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  uint64_t* slot = FindLive(shard, CountersFor(hash), hash, ks, key, Now(), &item, nullptr,
                            /*promote=*/false);
  return WriteCondition(mode, slot, item, cas_unique);
}

Outcome Engine::WriteCondition(SetMode mode, const uint64_t* slot, const mem::ItemView& item,
                               uint64_t cas_unique) const {
  switch (mode) {
    case SetMode::kAdd:
      return slot != nullptr ? Outcome::kNotStored : Outcome::kStored;
    case SetMode::kReplace:
      return slot == nullptr ? Outcome::kNotStored : Outcome::kStored;
    case SetMode::kCas:
      if (slot == nullptr) return Outcome::kNotFound;
      return CasOf(index::SlotLocation(*slot), item) == cas_unique ? Outcome::kStored
                                                                   : Outcome::kExists;
    case SetMode::kCasInvalidate:  // the stale store PrepareInvalidatingCas chose
      if (slot == nullptr) return Outcome::kNotFound;
      return cas_unique < CasOf(index::SlotLocation(*slot), item) ? Outcome::kStored
                                                                  : Outcome::kExists;
    default:
      return Outcome::kStored;
  }
}

// A write whose expiry is already past is accepted and immediately invisible, as in memcached:
// it removes the current item when its condition holds.
Outcome Engine::WriteExpiredOnArrival(SetMode mode, uint64_t hash, Keyspace ks,
                                      std::string_view key, uint64_t cas_unique) {
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  uint64_t* slot = FindLive(shard, c, hash, ks, key, Now(), &item, nullptr, /*promote=*/false);
  Outcome o = WriteCondition(mode, slot, item, cas_unique);
  if (o != Outcome::kStored || slot == nullptr) return o;
  Unlink(shard, c, slot, item);
  return Outcome::kStored;
}

Outcome Engine::InsertSlot(index::Shard& shard, uint64_t hash, uint64_t location, uint32_t freq,
                           size_t* need_bytes) {
  using Result = index::HashIndex::InsertResult;
  Result result = index_->Insert(shard, hash, location, freq);
  if (result == Result::kFull && options_.eviction) {
    uint64_t* victim = index_->ColdestInHome(shard, hash);
    CINCH_CHECK(victim != nullptr);
    std::string on_file;  // the victim's bytes, if they are on file (read under the lock: rare)
    mem::ItemView item;
    const uint16_t victim_ks = KeyspaceOf(index::SlotLocation(*victim));
    if (ItemOrRead(index::SlotLocation(*victim), &on_file, &item)) {
      Unlink(shard, CountersFor(hash), victim, item);
    } else {
      // Lost to an I/O error: its counters are dropped with the rest of its file segment's.
      MarkFileSegmentLost(SegmentOf(index::SlotLocation(*victim)));
      index_->Erase(shard, victim);
    }
    CountEviction(victim_ks);
    result = index_->Insert(shard, hash, location, freq);
  }
  if (result == Result::kOk) return Outcome::kStored;
  // Growing rebuilds the shard into a second table: both are resident for a moment.
  if (result == Result::kNoMemory) *need_bytes = (size_t{shard.buckets} + 64) * 64 * 2;
  return Outcome::kOutOfMemory;
}

Outcome Engine::Publish(SetMode mode, uint64_t hash, Keyspace ks, std::string_view key,
                        uint64_t cas_unique, const Reservation& r, bool* retry,
                        size_t* need_bytes) {
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView old;
  const int64_t now = Now();
  uint64_t* slot = FindLive(shard, c, hash, ks, key, now, &old, nullptr, /*promote=*/false);
  // After FindLive, which may have released the lock to read the file tier.
  if (!IsCurrent(pool_->meta(r.segment))) {
    *retry = true;  // a flush_all passed while the item was written; write it again
    return Outcome::kStored;
  }
  if (Outcome o = WriteCondition(mode, slot, old, cas_unique); o != Outcome::kStored) return o;
  uint64_t location = Location(r.segment, r.offset);
  mem::ItemView item = mem::DecodeItem(r.data);
  if (slot != nullptr) {
    AccountLive(index::SlotLocation(*slot), old, -1, c);
    *slot = index::WithLocation(*slot & ~index::kCasExposedBit, location);
  } else {
    Outcome o = InsertSlot(shard, hash, location, 0, need_bytes);
    if (o != Outcome::kStored) {
      *retry = *need_bytes != 0;
      return o;
    }
  }
  AccountLive(location, item, +1, c);
  NoteWriteTime(r.segment, now);
  return Outcome::kStored;
}

void Engine::NoteWriteTime(uint32_t segment, int64_t now) {
  std::atomic<uint32_t>& t = pool_->meta(segment).write_time;
  const auto seconds = static_cast<uint32_t>(now);
  if (t.load(std::memory_order_relaxed) != seconds) t.store(seconds, std::memory_order_relaxed);
}

Outcome Engine::PrepareInvalidatingCas(Keyspace ks, uint64_t hash, std::string_view key,
                                       uint64_t cas_unique, SetMode* mode, mem::ItemMeta* meta) {
  index::Shard& shard = index_->ShardFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  uint64_t* slot = FindLive(shard, CountersFor(hash), hash, ks, key, Now(), &item, nullptr,
                            /*promote=*/false);
  if (slot == nullptr) return Outcome::kNotFound;
  uint64_t cas = CasOf(index::SlotLocation(*slot), item);
  if (cas == cas_unique) {
    *mode = SetMode::kCas;
    return Outcome::kStored;
  }
  if (cas_unique > cas) return Outcome::kExists;
  // Older than the item: stored anyway, stale, with the item's expiry and recache token.
  *mode = SetMode::kCasInvalidate;
  meta->expiry = item.meta.expiry == kStoredNever ? 0 : item.meta.expiry;
  meta->state |= mem::kStateStale | (item.meta.state & mem::kStateWinTokenSent);
  return Outcome::kStored;
}

Outcome Engine::Write(Keyspace ks, SetMode mode, std::string_view key, std::string_view value,
                      uint32_t flags, int64_t exptime, uint64_t cas_unique, bool binary_key) {
  return WriteItem(ks, mode, key, value, flags, exptime, cas_unique,
                   binary_key ? mem::kStateBinaryKey : 0);
}

Outcome Engine::WriteItem(Keyspace ks, SetMode mode, std::string_view key, std::string_view value,
                          uint32_t flags, int64_t exptime, uint64_t cas_unique, uint8_t state) {
  if (!ValidKey(key)) return Outcome::kNotStored;
  if (mode == SetMode::kAppend || mode == SetMode::kPrepend) {
    Outcome o = Concatenate(ks, key, value, mode == SetMode::kAppend, cas_unique);
    return o == Outcome::kNotFound ? Outcome::kNotStored : o;
  }
  int64_t now = Now();
  MaybeFlushDue(now);
  uint64_t hash = HashKey(key, ks.id);
  index_->PrefetchHome(hash);  // the index miss overlaps reserving and encoding the item
  bool expired;
  uint32_t expiry = AbsoluteExpiry(exptime, now, &expired);
  mem::ItemMeta meta{flags, expiry, 0, state};
  size_t size = mem::ItemSize(key.size(), value.size(), meta);
  if (size > options_.max_item_size) {
    if (mode == SetMode::kSet) Delete(ks, key, 0);  // memcached drops the stale value too
    return Outcome::kTooLarge;
  }
  if (mode == SetMode::kCasInvalidate) {
    Outcome o = PrepareInvalidatingCas(ks, hash, key, cas_unique, &mode, &meta);
    if (o != Outcome::kStored) return o;
    expired = expired && mode == SetMode::kCas;  // a stale store keeps the item's expiry
  }
  return WriteDecided(ks, mode, hash, key, value, nullptr, meta, expired, cas_unique, now);
}

Outcome Engine::WriteDecided(Keyspace ks, SetMode mode, uint64_t hash, std::string_view key,
                             std::string_view value, const char* encoded, const mem::ItemMeta& meta,
                             bool expired, uint64_t cas_unique, int64_t now) {
  if (expired) return WriteExpiredOnArrival(mode, hash, ks, key, cas_unique);
  if (mode != SetMode::kSet && mode != SetMode::kCasInvalidate) {
    Outcome o = PreCheck(mode, hash, ks, key, cas_unique);
    if (o != Outcome::kStored) return o;
  }
  const size_t size = mem::ItemSize(key.size(), value.size(), meta);
  int cls = ExpiryClass(meta.expiry, now);
  Deadline deadline = SpaceDeadline();
  KeyspaceState* state = KeyspaceFor(ks.id, deadline);
  // A streaming write's staged item (`encoded`) was counted against the quota at BeginWrite.
  if (state != nullptr && encoded == nullptr &&
      !FitQuota(*state, ks.id, static_cast<int64_t>(size), deadline)) {
    state = nullptr;  // out of quota: as out of memory
  }
  for (int attempt = 0; state != nullptr && MayRetry(attempt, deadline); ++attempt) {
    Reservation r;
    if (!Reserve(*state, ks.id, size, cls, meta.expiry, deadline, &r)) break;
    if (encoded != nullptr) {
      std::memcpy(r.data, encoded, size);
    } else {
      mem::EncodeItem(r.data, key, value, meta);
    }
    bool retry = false;
    size_t need_bytes = 0;
    Outcome o = Publish(mode, hash, ks, key, cas_unique, r, &retry, &need_bytes);
    FinishReservation(r);
    if (!retry) return o;
    if (need_bytes != 0 && !ReclaimSpace(need_bytes, deadline)) break;
  }
  if (mode == SetMode::kSet) Delete(ks, key, 0);
  out_of_memory_.fetch_add(1, std::memory_order_relaxed);
  return Outcome::kOutOfMemory;
}

// --- read-modify-write: append, prepend, incr, decr, touch ---

namespace {

// A new item (memcached allocates one): not fetched, no stale state.
class ConcatRewriter : public Engine::Rewriter {
 public:
  ConcatRewriter(std::string_view data, bool append, uint64_t cas_unique)
      : data_(data), append_(append), cas_unique_(cas_unique) {}
  Outcome Prepare(const mem::ItemView& old, uint64_t old_cas, bool) override {
    if (cas_unique_ != 0 && old_cas != cas_unique_) return Outcome::kExists;
    meta = mem::ItemMeta{old.meta.flags, old.meta.expiry, 0};
    value_size = old.value.size() + data_.size();
    return Outcome::kStored;
  }
  void WriteValue(char* dst, const mem::ItemView& old) const override {
    std::string_view first = append_ ? old.value : data_;
    std::string_view second = append_ ? data_ : old.value;
    std::memcpy(dst, first.data(), first.size());
    std::memcpy(dst + first.size(), second.data(), second.size());
  }

 private:
  std::string_view data_;
  bool append_;
  uint64_t cas_unique_;
};

// memcached's incr/decr reads the value as its safe_strtoull does (strtoull in base 10, then a
// look at what follows): optional leading whitespace, an optional sign, at least one digit,
// then the end of the value, whitespace or a NUL (memcached's value ends in "\r\n"; whatever
// follows is ignored, so the spaces memcached pads a shrunken number with are fine). A number
// over 2^64 - 1 is refused. '-' negates modulo 2^64 as strtoull does, and a result of 2^63 or
// more is refused when the value holds a '-' before its first NUL: "-0" is 0, "-5" is not a
// number.
bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool ParseCounter(std::string_view text, uint64_t* out) {
  size_t i = 0;
  while (i < text.size() && IsSpace(text[i])) ++i;
  const bool negative = i < text.size() && text[i] == '-';
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  size_t end = i;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
  if (end == i || (end < text.size() && !IsSpace(text[end]) && text[end] != '\0')) return false;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data() + i, text.data() + end, v);
  if (ec != std::errc() || ptr != text.data() + end) return false;
  if (negative) v = 0 - v;
  const bool sign_bit = (v >> 63) != 0;
  if (sign_bit && text.substr(0, text.find('\0')).find('-') != std::string_view::npos) {
    return false;
  }
  *out = v;
  return true;
}

// The new number replaces the value; a number shorter than the old value is padded with
// spaces to the old length, as memcached does when it rewrites the value in place, so clients
// see the same bytes from both. Like memcached's in-place update it keeps the item's "hit
// before" bit and stale state, unless the number grew longer than the value.
class ArithmeticRewriter : public Engine::Rewriter {
 public:
  ArithmeticRewriter(bool incr, uint64_t delta, uint64_t cas_unique)
      : incr_(incr), delta_(delta), cas_unique_(cas_unique) {}
  Outcome Prepare(const mem::ItemView& old, uint64_t old_cas, bool) override {
    // An empty value is not a number whatever the CAS value (memcached looks at it first).
    if (old.value.empty()) return Outcome::kNonNumeric;
    if (cas_unique_ != 0 && old_cas != cas_unique_) return Outcome::kExists;
    uint64_t v;
    if (!ParseCounter(old.value, &v)) return Outcome::kNonNumeric;
    result = incr_ ? v + delta_ : (v > delta_ ? v - delta_ : 0);
    auto [ptr, ec] = std::to_chars(text_, text_ + sizeof(text_), result);
    digits_ = static_cast<size_t>(ptr - text_);
    value_size = std::max(digits_, old.value.size());
    // A longer number does not fit where memcached would write it in place: its new item
    // starts without the old one's item flags (fetched, stale, token sent, binary key).
    const bool grown = digits_ > old.value.size();
    meta = mem::ItemMeta{old.meta.flags, old.meta.expiry, 0, grown ? uint8_t{0} : old.meta.state,
                         !grown && old.meta.fetched};
    return Outcome::kStored;
  }
  void WriteValue(char* dst, const mem::ItemView&) const override {
    std::memcpy(dst, text_, digits_);
    std::memset(dst + digits_, ' ', value_size - digits_);
  }
  uint64_t result = 0;

 private:
  bool incr_;
  uint64_t delta_;
  uint64_t cas_unique_;
  char text_[24];
  size_t digits_ = 0;
};

class TouchRewriter : public Engine::Rewriter {
 public:
  explicit TouchRewriter(uint32_t expiry) : expiry_(expiry) {
    success = Outcome::kTouched;
    size_limited = false;
  }
  Outcome Prepare(const mem::ItemView& old, uint64_t old_cas, bool cas_exposed) override {
    // The CAS value survives a touch; it must be written down only if a client has seen it.
    // A touch is an access (memcached bumps the item), so the item counts as fetched.
    meta = mem::ItemMeta{old.meta.flags, expiry_, cas_exposed ? old_cas : 0, old.meta.state, true};
    value_size = old.value.size();
    return Outcome::kStored;
  }
  void WriteValue(char* dst, const mem::ItemView& old) const override {
    std::memcpy(dst, old.value.data(), old.value.size());
  }

 private:
  uint32_t expiry_;
};

}  // namespace

Outcome Engine::Modify(Keyspace ks, std::string_view key, Rewriter& rewriter) {
  if (!ValidKey(key)) return Outcome::kNotFound;
  uint64_t hash = HashKey(key, ks.id);
  Deadline deadline = SpaceDeadline();
  int lost_races = 0;
  for (int attempt = 0;;) {
    // Losing races to other writers of a hot key is not running out of memory: after
    // kOptimisticRewrites, an attempt holds the shard lock throughout and cannot lose again.
    bool hold_lock = lost_races >= kOptimisticRewrites;
    Outcome outcome;
    size_t need_bytes = 0;
    switch (RewriteOnce(ks, key, hash, rewriter, hold_lock, &outcome, &need_bytes)) {
      case RewriteStep::kDone:
        return outcome;
      case RewriteStep::kLostRace:
        ++lost_races;
        continue;
      case RewriteStep::kNoMemory:
        break;
      case RewriteStep::kOverQuota:
        // need_bytes: the growth. The keyspace exists: its item was found.
        if (FitQuota(*FindKeyspace(ks.id), ks.id, static_cast<int64_t>(need_bytes), deadline)) {
          continue;
        }
        out_of_memory_.fetch_add(1, std::memory_order_relaxed);
        return Outcome::kOutOfMemory;
    }
    if (!MayRetry(attempt++, deadline) || !ReclaimSpace(need_bytes, deadline)) break;
  }
  out_of_memory_.fetch_add(1, std::memory_order_relaxed);
  return Outcome::kOutOfMemory;
}

Engine::RewriteStep Engine::RewriteOnce(Keyspace ks, std::string_view key, uint64_t hash,
                                        Rewriter& rewriter, bool hold_lock, Outcome* outcome,
                                        size_t* need_bytes) {
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  int64_t now = Now();
  MaybeFlushDue(now);
  std::unique_lock<SpinLock> lock(shard.lock);
  mem::ItemView old;
  // An item on file is read, not promoted: the new version is its copy in memory. A promoted
  // copy would take room only to be dropped by this rewrite, and making room for the new
  // version could demote that copy again (near the least limit, the only victim there is: a
  // livelock), for the next attempt to find it on file and promote it again. Without memory
  // for the new version, Modify makes room and tries again, and refuses the change
  // (kOutOfMemory) once none can be made by its deadline: the item stays on file.
  uint64_t* slot = FindLive(shard, c, hash, ks, key, now, &old, nullptr, /*promote=*/false);
  if (slot == nullptr) {
    *outcome = Outcome::kNotFound;
    return RewriteStep::kDone;
  }
  uint64_t old_location = index::SlotLocation(*slot);
  *outcome = rewriter.Prepare(old, CasOf(old_location, old), index::SlotCasExposed(*slot));
  if (*outcome != Outcome::kStored) return RewriteStep::kDone;
  size_t header = mem::ItemHeaderSize(key.size(), rewriter.value_size, rewriter.meta);
  size_t size = header + key.size() + rewriter.value_size;
  if (rewriter.size_limited && size > options_.max_item_size) {
    *outcome = Outcome::kTooLarge;
    return RewriteStep::kDone;
  }
  // The old item stays readable while the new one is written: pinned (or under the lock; one
  // read from the file is in this thread's buffer, which no other lookup reuses meanwhile). No
  // room is made here: a pin held meanwhile can keep the very segment a cleaner would free
  // (and a shard lock, every cleaner touching the shard). Without space, let go, make room,
  // and decide again.
  // The keyspace exists: its item was just found. The new version replaces the old one: the
  // quota needs room for the difference only.
  KeyspaceState& state = *FindKeyspace(ks.id);
  if (const int64_t growth = static_cast<int64_t>(size) - static_cast<int64_t>(old.size);
      growth > 0 && OverQuota(state, growth)) {
    *need_bytes = static_cast<size_t>(growth);
    return RewriteStep::kOverQuota;
  }
  // The version decided on is published only if its slot still points at its location (below):
  // pinned, its segment is not freed and written again meanwhile. An item on file pins its file
  // segment too: PinsOf names the RAM segment backing one being written.
  std::atomic<uint32_t>& old_pins = PinsOf(old_location);
  std::atomic<uint32_t>* file_pins = nullptr;
  if (pool_->IsFileLocation(old_location)) [[unlikely]] {
    file_pins = &pool_->meta(SegmentOf(old_location)).pins;
    file_pins->fetch_add(1, std::memory_order_acq_rel);
  }
  old_pins.fetch_add(1, std::memory_order_acq_rel);
  auto unpin = [&] {
    old_pins.fetch_sub(1, std::memory_order_release);
    if (file_pins != nullptr) file_pins->fetch_sub(1, std::memory_order_release);
  };
  if (!hold_lock) lock.unlock();
  Reservation r;
  if (!TryReserve(state, ks.id, size, ExpiryClass(rewriter.meta.expiry, now), &r)) {
    if (lock.owns_lock()) lock.unlock();
    unpin();
    *need_bytes = size > jumbo_threshold_ ? mem::RoundUpToPage(size) : 0;
    return RewriteStep::kNoMemory;
  }
  NoteExpiry(r.segment, rewriter.meta.expiry);
  mem::EncodeItemHeader(r.data, key.size(), rewriter.value_size, rewriter.meta);
  std::memcpy(r.data + header, key.data(), key.size());
  rewriter.WriteValue(r.data + header + key.size(), old);
  if (!hold_lock) {
    if (test_rewrite_hook_) test_rewrite_hook_();
    lock.lock();
  }
  bool published = false;
  // Found by its location, not by the key: a lookup of the key would read an item on file
  // again. The slot still pointing there is the key's (the location is pinned), and the item
  // there is the version decided on unless changed in place since (bytes on file never are).
  slot = index_->FindLocation(shard, hash, old_location);
  const char* bytes = slot != nullptr ? ItemAt(old_location) : nullptr;
  const mem::ItemView current = bytes != nullptr ? mem::DecodeItem(bytes) : old;
  bool same_gen = IsCurrent(pool_->meta(r.segment));
  // In-place changes (touch, a meta get's token, a first read) made meanwhile to the old
  // version would be lost: decide again on the current version then; so for one gone stale.
  const bool unchanged = slot != nullptr && current.meta.expiry == old.meta.expiry &&
                         current.meta.state == old.meta.state &&
                         current.meta.fetched == old.meta.fetched &&
                         !IsStale(old_location, current, Now());
  if (unchanged && same_gen) {
    uint64_t location = Location(r.segment, r.offset);
    AccountLive(old_location, current, -1, c);
    uint64_t keep_exposed = rewriter.meta.cas != 0 ? index::kCasExposedBit : 0;
    *slot = index::WithLocation(*slot & ~index::kCasExposedBit, location) | keep_exposed;
    AccountLive(location, mem::DecodeItem(r.data), +1, c);
    NoteWriteTime(r.segment, now);
    published = true;
  }
  lock.unlock();
  FinishReservation(r);
  unpin();
  if (published) {
    *outcome = rewriter.success;
    return RewriteStep::kDone;
  }
  return RewriteStep::kLostRace;  // changed, moved, expired or flushed meanwhile: decide again
}

Outcome Engine::Concatenate(Keyspace ks, std::string_view key, std::string_view data, bool append,
                            uint64_t cas_unique) {
  ConcatRewriter rewriter(data, append, cas_unique);
  return Modify(ks, key, rewriter);
}

Outcome Engine::Arithmetic(Keyspace ks, std::string_view key, bool incr, uint64_t delta,
                           uint64_t* result, uint64_t cas_unique) {
  ArithmeticRewriter rewriter(incr, delta, cas_unique);
  Outcome o = Modify(ks, key, rewriter);
  if (o == Outcome::kStored && result != nullptr) *result = rewriter.result;
  return o;
}

// An item that has an expiry field is touched in place: no copy, no memory needed, the
// location (and so the CAS value) unchanged. "Never" is stored as the latest time there is.
// With `out`, the touched version is also read (a hit) under the same shard lock. Returns
// kTouched or kNotFound, or nothing when the item has no expiry field and must be rewritten.
std::optional<Outcome> Engine::TouchInPlace(Keyspace ks, std::string_view key, uint32_t expiry,
                                            int64_t now, ItemRef* out, bool with_cas, Miss* miss) {
  uint64_t hash = HashKey(key, ks.id);
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  // A touch alone of an item on file rewrites it (below): no promoted copy first. A read too
  // (gat) brings it back, to be touched in place.
  Miss why = Miss::kNone;
  uint64_t* slot = FindLive(shard, c, hash, ks, key, now, &item, &why, /*promote=*/out != nullptr);
  if (miss != nullptr) *miss = why;
  if (slot == nullptr) return why == Miss::kNoMemory ? Outcome::kOutOfMemory : Outcome::kNotFound;
  uint64_t location = index::SlotLocation(*slot);
  // An item in the file tier is immutable (docs/file-tier.md): rewritten into memory.
  if (pool_->IsFileLocation(location)) return std::nullopt;
  if (!mem::SetExpiryInPlace(const_cast<char*>(ItemAt(location)),
                             expiry == 0 ? kStoredNever : expiry)) {
    return std::nullopt;
  }
  NoteExpiry(SegmentOf(location), expiry);
  if (out != nullptr) {
    ReadHit(ks, slot, mem::DecodeItem(ItemAt(location)), c, out, with_cas);
  } else if (!item.meta.fetched) {
    mem::MarkFetched(const_cast<char*>(ItemAt(location)));  // a touch is an access too
  }
  return Outcome::kTouched;
}

Outcome Engine::Touch(Keyspace ks, std::string_view key, int64_t exptime) {
  int64_t now = Now();
  MaybeFlushDue(now);
  bool expired;
  uint32_t expiry = AbsoluteExpiry(exptime, now, &expired);
  if (expired) {
    return Delete(ks, key, 0) == Outcome::kDeleted ? Outcome::kTouched : Outcome::kNotFound;
  }
  if (!ValidKey(key)) return Outcome::kNotFound;
  if (std::optional<Outcome> o = TouchInPlace(ks, key, expiry, now, nullptr, false)) return *o;
  TouchRewriter rewriter(expiry);
  return Modify(ks, key, rewriter);
}

Outcome Engine::GetAndTouch(Keyspace ks, std::string_view key, int64_t exptime, ItemRef* out,
                            bool with_cas, Miss* miss) {
  out->Reset();
  int64_t now = Now();
  MaybeFlushDue(now);
  bool expired;
  uint32_t expiry = AbsoluteExpiry(exptime, now, &expired);
  if (expired) {
    // memcached sets the time on the item it returns: this reader gets it, later ones do not
    // (as meta's negative T).
    FetchResult result;
    const FetchOptions o{.with_cas = with_cas, .touch = true, .exptime = exptime};
    if (Fetch(ks, key, o, out, &result)) return Outcome::kTouched;
    if (miss != nullptr) *miss = result.miss;
    return result.miss == Miss::kNoMemory ? Outcome::kOutOfMemory : Outcome::kNotFound;
  }
  if (ValidKey(key)) {
    // The common case: the reader gets exactly the version it touched, in one lookup.
    if (std::optional<Outcome> o = TouchInPlace(ks, key, expiry, now, out, with_cas, miss)) {
      return *o;
    }
  }
  // An item without an expiry field: rewritten, then read. The read
  // reports whether the item had been read before the touch (which counts as a read).
  ItemRef before;
  const bool was_fetched =
      Read(ks, key, &before, false, /*bump=*/false, miss) && before.fetched_before();
  before.Reset();
  Outcome o = Touch(ks, key, exptime);
  if (o != Outcome::kTouched) return o;
  if (!Get(ks, key, out, with_cas)) return Outcome::kNotFound;
  out->fetched_before_ = was_fetched;
  return Outcome::kTouched;
}

}  // namespace cinch::store
