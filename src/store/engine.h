// Engine: composes the segment pool (mem), the hash index (index) and the cleaner into the
// store behind include/cinch/store.h.
//
// Write path: an item is appended to the open segment of a write head (heads per keyspace and
// expiry class, so a segment holds one keyspace and its items age together), written in full,
// then published by inserting or rewriting its index slot under the key's shard lock. Reads
// find the slot under the same lock, verify the key and the keyspace of its segment, and pin the
// segment before unlocking. See docs/cleaner.md for how segments come back and
// docs/keyspaces.md for keyspaces and streaming writes.
//
// Lock order: cleaner_mu_ -> tier_mu_ -> shard lock -> keyspace_mu_ -> head lock -> pool mutex;
// drain_mu_ -> pool mutex; space_mu_ and wake_mu_ last. Nothing waits for memory while holding a
// shard or head lock, and no write waits on cleaner_mu_ for memory: a writer short of it frees some
// itself (docs/cleaner.md).
//
// With a file tier (docs/file-tier.md), a lookup that meets an item on file reads it with the
// shard lock released (FindLive), and a demotion writes a segment with no lock held.
//
// Thread safety: every public method is safe from any thread.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "common/spin_lock.h"
#include "index/hash_index.h"
#include "mem/accountant.h"
#include "mem/item.h"
#include "mem/segment_pool.h"

namespace cinch::store {

// Counters kept per index shard and updated under its lock, so that the hot path touches no
// shared cache line. Readers of stats load them without the lock.
struct alignas(64) ShardCounters {
  std::atomic<int64_t> items{0};
  std::atomic<int64_t> kv_bytes{0};
  std::atomic<int64_t> header_bytes{0};
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};

  static void Add(std::atomic<int64_t>& c, int64_t d) {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  static void Inc(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

// One place writers append to. A head owns at most one open segment.
struct WriteHead {
  SpinLock lock;
  uint32_t segment = mem::kNoSegment;
};

// A cache line of heads. A keyspace's heads are laid out (Engine::HeadSlot) so that each
// stripe of writer heads, and the cleaner heads, have lines of their own: threads writing
// through different stripes, or a writer and the cleaner, never share a line, while a
// keyspace costs 8 B per head rather than a line (1,000 tenants on a large store hold 40,000).
struct alignas(64) HeadLine {
  static constexpr int kHeads = 8;
  WriteHead heads[kHeads];
};
static_assert(sizeof(HeadLine) == 64);

// The write heads and counters of one keyspace, created with its first write (or its quota,
// or flush) and kept for the life of the store (charged as metadata: ~0.5 KiB on a large
// store). Items, hits, misses and evictions of keyspace 0 are counted by the shard counters
// only; the others here as well, for GetKeyspaceStats.
struct KeyspaceState {
  explicit KeyspaceState(int lines) : lines(new HeadLine[lines]) {}
  // The heads, placed by Engine::HeadSlot; reached through Engine::HeadOf.
  std::unique_ptr<HeadLine[]> lines;
  // Bit i: heads[i] may hold an open segment (set before the head opens one, cleared when it
  // is sealed, under the head's lock), so that walks of every head (SealHeads) cost
  // O(keyspaces + open heads), not O(keyspaces * heads): 1,000 tenants have 40,000 heads on a
  // large store.
  std::atomic<uint64_t> open_heads{0};
  std::atomic<int64_t> items{0};
  std::atomic<int64_t> kv_bytes{0};
  std::atomic<int64_t> item_bytes{0};
  std::atomic<int64_t> pending_bytes{0};  // reserved by unfinished streaming writes
  std::atomic<uint64_t> quota{0};         // bytes; 0: none (docs/keyspaces.md, "Quotas")
  std::atomic<uint64_t> hits{0};
  std::atomic<uint64_t> misses{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> flushes{0};
  // The keyspace's own flush generation, added to the store's: a segment of the keyspace is
  // current while its flush_gen equals the sum (Engine::GenOf). Keyspace 0 uses
  // Engine::default_flush_gen_ instead (beside the store's, on the hot path).
  std::atomic<uint32_t> flush_gen{0};
  std::atomic<int64_t> flush_deadline{0};  // a pending delayed FlushAll(keyspace); 0: none
  // When a write over the quota last found nothing stale to drop (eviction off), and the
  // bytes used then (Engine::ReclaimStaleInQuota).
  std::atomic<int64_t> fruitless_at{0};
  std::atomic<int64_t> fruitless_used{0};
};

// A region reserved in a segment for one item; pins the segment until published or dropped.
struct Reservation {
  uint32_t segment = mem::kNoSegment;
  uint32_t offset = 0;
  char* data = nullptr;
  uint32_t sealed_tail = 0;  // bytes left unused in the head's previous segment, sealed for it
};

class Engine {
 public:
  static Status Open(const Options& options, std::unique_ptr<Engine>* engine);
  // Whether Open accepts `options`, found as Open would (the tier's memory included) but
  // without touching the tier files or starting the cleaner thread.
  static bool Fits(const Options& options);
  ~Engine();

  Outcome Write(Keyspace ks, SetMode mode, std::string_view key, std::string_view value,
                uint32_t flags, int64_t exptime, uint64_t cas_unique, bool binary_key = false);
  bool Get(Keyspace ks, std::string_view key, ItemRef* out, bool with_cas, Miss* miss = nullptr) {
    return Read(ks, key, out, with_cas, /*bump=*/true, miss);
  }
  // Get, and with bump = false Store::Peek.
  bool Read(Keyspace ks, std::string_view key, ItemRef* out, bool with_cas, bool bump, Miss* miss);
  // Meta get and meta delete's invalidate (engine_meta.cc).
  bool Fetch(Keyspace ks, std::string_view key, const FetchOptions& options, ItemRef* out,
             FetchResult* result);
  Outcome Invalidate(Keyspace ks, std::string_view key, uint64_t cas_unique, bool set_exptime,
                     int64_t exptime);
  Outcome Touch(Keyspace ks, std::string_view key, int64_t exptime);
  // Touch and Get of the same version in one lookup when the item can be touched in place.
  Outcome GetAndTouch(Keyspace ks, std::string_view key, int64_t exptime, ItemRef* out,
                      bool with_cas, Miss* miss = nullptr);
  Outcome Delete(Keyspace ks, std::string_view key, uint64_t cas_unique);
  uint64_t UnusedCas();
  Outcome Arithmetic(Keyspace ks, std::string_view key, bool incr, uint64_t delta, uint64_t* result,
                     uint64_t cas_unique);
  // Streaming writes (engine_stream.cc).
  Outcome BeginWrite(Keyspace ks, SetMode mode, std::string_view key, size_t value_size,
                     uint32_t flags, int64_t exptime, ValueWriter* out);
  Outcome CommitWrite(ValueWriter* w);
  void AbortWrite(ValueWriter* w);
  void FlushAll(int64_t delay_seconds);
  void FlushKeyspace(Keyspace ks, int64_t delay_seconds);
  void SetKeyspaceQuota(Keyspace ks, size_t bytes);
  StoreStats GetStats() const;
  KeyspaceStats GetKeyspaceStats(Keyspace ks) const;
  std::vector<Keyspace> Keyspaces() const;
  bool ChargeExternal(size_t bytes);
  void ReleaseExternal(size_t bytes);
  void RunCleanerOnce();
  // Store::SetMemoryLimit, clamped to [min_limit(), options().memory_limit].
  void SetMemoryLimit(size_t bytes);
  // The least effective limit this store runs with: what it holds from Open on, room for every
  // write head, the reserve and two segments, and twice max_item_size.
  size_t min_limit() const { return min_limit_; }
  const Options& options() const { return options_; }
  // Snapshots (engine_snapshot.cc, docs/restart-format.md): Store::SaveTo and Store::OpenFrom,
  // with the memory limit the file is tied to resolved.
  Status SaveTo(const std::string& path, uint64_t memory_limit);
  static Status OpenFrom(const Options& options, const std::string& path, uint64_t memory_limit,
                         std::unique_ptr<Engine>* engine, RestoreReport* report);
  // Store::ListItems (engine_list.cc).
  bool ListItems(Keyspace ks, ListCursor* cursor, size_t max_items, bool with_cas, bool may_block,
                 ItemList* list);
  // The file tier (tier.cc, docs/file-tier.md): see Store::InFileTier and Store::Promote.
  bool InFileTier(Keyspace ks, std::string_view key) const;
  void Promote(Keyspace ks, std::string_view key);

  // Holds the cleaner lock as a pass would, for tests: while held, the store behaves as if a
  // cleaner pass were running on a thread that is not scheduled.
  std::unique_lock<std::mutex> TEST_HoldCleanerLock() {
    return std::unique_lock<std::mutex>(cleaner_mu_);
  }
  // Runs `hook` in every read-modify-write that may lose a race (not holding the shard lock),
  // between writing the new version and publishing it: what another writer of the key does
  // there makes it lose. For tests; set before any other thread uses the engine.
  void TEST_SetRewriteHook(std::function<void()> hook) { test_rewrite_hook_ = std::move(hook); }

  // Builds the new version of an item in read-modify-write operations: Prepare() sees the
  // current item under the shard lock and decides; WriteValue() runs later, with the old item
  // pinned. Implementations: engine_write.cc, engine_meta.cc.
  class Rewriter {
   public:
    virtual ~Rewriter() = default;
    // Returns kStored to go on, or the final outcome of the operation.
    virtual Outcome Prepare(const mem::ItemView& old, uint64_t old_cas, bool cas_exposed) = 0;
    virtual void WriteValue(char* dst, const mem::ItemView& old) const = 0;

    mem::ItemMeta meta;
    size_t value_size = 0;
    Outcome success = Outcome::kStored;
    // Whether the new version must fit max_item_size. A touch only rewrites the header
    // (memcached touches in place), so it may grow an item that fits by its expiry and CAS
    // fields, as the cleaner's moves do.
    bool size_limited = true;
  };

 private:
  friend class SnapshotWriter;  // engine_snapshot.cc
  friend class SnapshotReader;

  explicit Engine(const Options& options);
  // With `open_files` false (Fits), the tier's memory is charged but its files are not opened.
  Status Init(bool open_files = true);
  void StartCleanerThread();

  // --- locations and items (engine.cc) ---
  // Locations are the pool's (mem/segment_pool.h): arena bytes, then one per jumbo slot.
  uint64_t Location(uint32_t segment, uint32_t offset) const {
    return pool_->Location(segment, offset);
  }
  uint32_t SegmentOf(uint64_t location) const { return pool_->SegmentOf(location); }
  uint32_t OffsetOf(uint64_t location) const { return pool_->OffsetOf(location); }
  const char* ItemAt(uint64_t location) const { return pool_->ItemAt(location); }
  uint64_t CasOf(uint64_t location, const mem::ItemView& item) const;
  bool IsStale(uint64_t location, const mem::ItemView& item, int64_t now) const;
  // Finds the live, unexpired item of `key` in keyspace `ks`; removes an expired or flushed one
  // it meets, and says so in *miss (if given) when it returns null. An item whose bytes are on
  // file is read first (FindOnFile), for which the shard lock is released and taken again (slot
  // pointers of the shard from before are invalid); it is promoted into memory, unless
  // `promote` is false (a caller that only decides on it, drops or replaces it: delete, set,
  // add's check, a read-modify-write): the slot then stays at its file location and *item
  // points into a buffer of the calling thread, valid until its next lookup of an item on
  // file. A promotion that finds no memory leaves the item on file and returns null with
  // Miss::kNoMemory. REQUIRES: the shard's lock held.
  uint64_t* FindLive(index::Shard& shard, ShardCounters& counters, uint64_t hash, Keyspace ks,
                     std::string_view key, int64_t now, mem::ItemView* item, Miss* miss = nullptr,
                     bool promote = true);
  // The end of FindLive once the index has answered: drops a stale item.
  uint64_t* LiveOrDrop(index::Shard& shard, ShardCounters& counters, uint64_t* slot, int64_t now,
                       mem::ItemView* item, Miss* miss);
  // The pin count that keeps the bytes at `location` readable: its segment's, or for a file
  // segment being written, that of the RAM segment backing it. REQUIRES: the item's shard lock,
  // and ItemAt(location) non-null in the same critical section.
  std::atomic<uint32_t>& PinsOf(uint64_t location) {
    uint32_t segment = SegmentOf(location);
    if (pool_->IsFile(segment)) [[unlikely]] {
      if (uint32_t ram = pool_->FileBacking(segment); ram != mem::kNoSegment) segment = ram;
    }
    return pool_->meta(segment).pins;
  }
  uint16_t KeyspaceOf(uint64_t location) const {
    return pool_->meta(SegmentOf(location)).keyspace.load(std::memory_order_relaxed);
  }
  // Drops the slot's item from the index and from the counters. Invalidates `slot`.
  void Unlink(index::Shard& shard, ShardCounters& counters, uint64_t* slot,
              const mem::ItemView& item);
  void AccountLive(uint64_t location, const mem::ItemView& item, int sign, ShardCounters& c);
  // The same item moved from one location to another: only segment counters (and the header
  // size, if the move added an explicit CAS) change. Sizes are whole items and their headers.
  void MoveLive(uint64_t from, size_t from_size, size_t from_header, uint64_t to, size_t to_size,
                size_t to_header, ShardCounters& c);
  ShardCounters& CountersFor(uint64_t hash) {
    return counters_[hash & (index_->shard_count() - 1)];
  }
  void FillRef(uint64_t location, const mem::ItemView& item, ItemRef* out);
  // Per-keyspace counters beside the shard counters (keyspace 0 has only those).
  void CountMiss(ShardCounters& c, Keyspace ks) {
    ShardCounters::Inc(c.misses);
    if (ks.id != 0) CountFor(ks.id, &KeyspaceState::misses);
  }
  // An item of keyspace `ks_id` was evicted.
  void CountEviction(uint16_t ks_id) {
    evictions_.fetch_add(1, std::memory_order_relaxed);
    if (ks_id != 0) CountFor(ks_id, &KeyspaceState::evictions);
  }
  void CountFor(uint16_t id, std::atomic<uint64_t> KeyspaceState::*counter) {
    if (KeyspaceState* state = FindKeyspace(id)) {
      (state->*counter).fetch_add(1, std::memory_order_relaxed);
    }
  }
  std::optional<Outcome> TouchInPlace(Keyspace ks, std::string_view key, uint32_t expiry,
                                      int64_t now, ItemRef* out, bool with_cas,
                                      Miss* miss = nullptr);
  // A read hit on `slot`: counts it, fills *out and, with `bump`, records the access (the
  // eviction frequency and the item's "hit before" bit). REQUIRES: shard lock.
  void ReadHit(Keyspace ks, uint64_t* slot, const mem::ItemView& item, ShardCounters& c,
               ItemRef* out, bool with_cas, bool bump = true);
  // Fetch's changes to a found item: a new expiry and/or state bits. In place when the item has
  // the fields; else false, and the caller rewrites it (RewriteMeta). REQUIRES: shard lock.
  bool ChangeMetaInPlace(uint64_t location, const mem::ItemView& item, bool set_expiry,
                         uint32_t expiry, uint8_t add_state);
  Outcome RewriteMeta(Keyspace ks, std::string_view key, bool set_expiry, uint32_t expiry,
                      uint8_t add_state);
  // What a meta get saw of an item before it changed it (reported to the client).
  struct SeenState {
    bool fetched = false;
    bool stale = false;
    bool token_sent = false;
    int64_t last_access = 0;
  };
  static void ReportSeen(const SeenState& seen, ItemRef* out);
  // Creates the empty item of a meta get's vivify (N), holding the recache token.
  Outcome Vivify(Keyspace ks, std::string_view key, int64_t exptime);
  // kCasInvalidate before writing: kStored with *mode and *meta set for a plain CAS store or a
  // stale one, or the outcome that refuses the write.
  Outcome PrepareInvalidatingCas(Keyspace ks, uint64_t hash, std::string_view key,
                                 uint64_t cas_unique, SetMode* mode, mem::ItemMeta* meta);
  Outcome WriteItem(Keyspace ks, SetMode mode, std::string_view key, std::string_view value,
                    uint32_t flags, int64_t exptime, uint64_t cas_unique, uint8_t state);
  // The rest of a write once its expiry is known. With `encoded`, the item (of `key`, `value`
  // and `meta`) is already encoded there (a streaming write's staged item) and is copied.
  Outcome WriteDecided(Keyspace ks, SetMode mode, uint64_t hash, std::string_view key,
                       std::string_view value, const char* encoded, const mem::ItemMeta& meta,
                       bool expired, uint64_t cas_unique, int64_t now);

  // --- time and expiry ---
  // An expiry field that was touched to "never" in place holds this (Feb 2106).
  static constexpr uint32_t kStoredNever = mem::kNeverExpires - 1;
  int64_t Now() const { return clock_->NowSeconds(); }
  // The flush generation segments of keyspace `ks_id` are opened in now: the store's (bumped
  // by FlushAll) plus the keyspace's own (bumped by FlushAll(keyspace)). Both only grow, so
  // either flush changes the sum; a segment whose flush_gen differs holds only stale items.
  uint32_t GenOf(uint16_t ks_id) const {
    uint32_t gen = flush_gen_.load(std::memory_order_acquire);
    if (ks_id == 0) return gen + default_flush_gen_.load(std::memory_order_acquire);
    const KeyspaceState* state = FindKeyspace(ks_id);
    return state == nullptr ? gen : gen + state->flush_gen.load(std::memory_order_acquire);
  }
  bool IsCurrent(const mem::SegmentMeta& m) const {
    return m.flush_gen.load(std::memory_order_relaxed) ==
           GenOf(m.keyspace.load(std::memory_order_relaxed));
  }
  // Converts memcached's exptime to an absolute expiry; *expired when it is already past.
  static uint32_t AbsoluteExpiry(int64_t exptime, int64_t now, bool* expired);
  int ExpiryClass(uint32_t expiry, int64_t now) const;
  void MaybeFlushDue(int64_t now);
  // Starts a new flush generation: O(heads); the cleaner drops the flushed items later.
  void FlushNow();
  // The same for one keyspace: O(its heads).
  void FlushKeyspaceNow(uint16_t ks_id);
  // Runs the delayed per-keyspace flushes due by `now` (keyspace_flush_due_).
  void RunDueKeyspaceFlushes(int64_t now);
  // Lowers keyspace_flush_due_ to `deadline` if it is earlier (0: none pending).
  void NoteKeyspaceFlushDue(int64_t deadline);
  // Wakes the background cleaner thread, if there is one, for a pass now.
  void WakeCleaner();

  // --- space (engine_write.cc) ---
  // How long one operation may wait for memory: every wait of a write, whatever its retries,
  // ends at the same deadline, Options::space_wait_ms after the operation first had to wait.
  // Most operations never wait, so the clock (~30 ns through a VM's kvm-clock, a few percent
  // of a set) is read only when one does.
  class Deadline {
   public:
    using Clock = std::chrono::steady_clock;
    // wait_ms 0: already past; at most a pass of its own (if no other is running), no wait.
    explicit Deadline(uint32_t wait_ms) : wait_(std::chrono::milliseconds(wait_ms)) {}
    Clock::time_point at() {
      if (at_ == Clock::time_point{}) at_ = Clock::now() + wait_;  // the first time asked
      return at_;
    }
    bool Passed() { return Clock::now() >= at(); }

   private:
    Clock::duration wait_;
    Clock::time_point at_{};
  };
  Deadline SpaceDeadline() const { return Deadline(options_.space_wait_ms); }

  // --- keyspaces (engine.cc) ---
  // The state of keyspace `id`, or null if it has never been written.
  KeyspaceState* FindKeyspace(uint16_t id) const {
    Leaf* leaf = keyspace_dir_[id >> 8].load(std::memory_order_acquire);
    return leaf == nullptr ? nullptr : leaf->states[id & 255].load(std::memory_order_acquire);
  }
  // The state of keyspace `id`, created (and its memory charged) if needed; null if the memory
  // cannot be found until `deadline`. REQUIRES: no shard lock held.
  KeyspaceState* KeyspaceFor(uint16_t id, Deadline& deadline);
  KeyspaceState* TryCreateKeyspace(uint16_t id, bool force = false);
  // KeyspaceFor for the control calls (quota, flush), which cannot fail: when no memory can
  // be found for the state, it is charged beyond the limit (a few KiB).
  KeyspaceState* EnsureKeyspace(uint16_t id);

  // --- quotas (quota.cc, docs/keyspaces.md "Quotas") ---
  // Bytes a keyspace's quota counts: its items as stored and its pending streaming writes.
  static int64_t QuotaUsed(const KeyspaceState& ks) {
    return ks.item_bytes.load(std::memory_order_relaxed) +
           ks.pending_bytes.load(std::memory_order_relaxed);
  }
  // Makes room within the keyspace's quota for `growth` more bytes: evicts the keyspace's own
  // coldest segments (eviction on) until they fit. True if they fit (or there is no quota);
  // false with eviction off, for an item larger than the quota, or at the deadline.
  // REQUIRES: no shard lock held.
  bool FitQuota(KeyspaceState& ks, uint16_t ks_id, int64_t growth, Deadline& deadline);
  bool OverQuota(const KeyspaceState& ks, int64_t growth) const {
    uint64_t quota = ks.quota.load(std::memory_order_relaxed);
    return quota != 0 && QuotaUsed(ks) + growth > static_cast<int64_t>(quota);
  }
  // With eviction off: drops the keyspace's expired and flushed items by compacting its sealed
  // segments, until `growth` more bytes fit. False if they do not.
  bool ReclaimStaleInQuota(KeyspaceState& ks, uint16_t ks_id, int64_t growth);
  // Evicts one segment of keyspace `ks_id` (its oldest, S3-FIFO), sealing its idle open heads
  // first if it has no sealed one. False if none could be claimed.
  bool EvictFromKeyspace(uint16_t ks_id, int64_t now);
  // Choices of eviction by fair share (PickEvictionVictim), among the keyspaces with a quota:
  // the one whose segments exceed its fair share of memory the most (its quota, scaled down
  // when the quotas add up to more than the memory there is), and the one whose segments fill
  // the largest fraction of its share. kAnyKeyspace: none. `ids`: the segments in use.
  struct ShareChoice {
    int over = kAnyKeyspace;
    int fullest = kAnyKeyspace;
  };
  ShareChoice ChooseByShare(const std::vector<uint32_t>& ids) const;
  // Keyspace filters of PickEvictionVictimOf, beside a keyspace's id.
  static constexpr int kAnyKeyspace = -1;
  static constexpr int kWithoutQuota = -2;
  bool InKeyspaces(uint16_t ks_id, int filter) const {
    if (filter == kAnyKeyspace) return true;
    if (filter == kWithoutQuota) {
      const KeyspaceState* state = FindKeyspace(ks_id);
      return state == nullptr || state->quota.load(std::memory_order_relaxed) == 0;
    }
    return ks_id == filter;
  }

  // Whether a write that made room but lost it (to another writer, a flush_all passing) tries
  // again. With eviction on, always: each retry follows memory freed, and the data to evict is
  // finite. Without, retries end at the deadline, but not before a few attempts.
  bool MayRetry(int attempt, Deadline& deadline) const;
  // Reserves `size` bytes for an item of expiry class `cls`, making room when the store is
  // full. False: no memory (eviction disabled and the store full, or nothing could be freed
  // until `deadline`: everything pinned by readers).
  bool Reserve(KeyspaceState& ks, uint16_t ks_id, size_t size, int cls, uint32_t expiry,
               Deadline& deadline, Reservation* r);
  // Reserves without making room. Safe under a shard lock.
  bool TryReserve(KeyspaceState& ks, uint16_t ks_id, size_t size, int cls, Reservation* r);
  // In `head`; the cleaner's heads may take the reserve, unless `as_writer` (a promotion from
  // the file tier, which fills a cleaner head but is no cleaning).
  bool ReserveInHead(KeyspaceState& ks, uint16_t ks_id, int head, size_t size, Reservation* r,
                     bool as_writer = false);
  bool ReserveJumbo(uint16_t ks_id, size_t size, Reservation* r, bool precharged);
  bool ReserveJumboWaiting(uint16_t ks_id, size_t size, Deadline& deadline, Reservation* r);
  // Charges `bytes` of `kind`, making room as a jumbo item does. False at the deadline.
  bool ChargeWaiting(mem::MemoryKind kind, size_t bytes, Deadline& deadline);
  int WriterHead(int cls) const;
  int CleanerHead(int cls) const { return writer_heads_ + cls; }
  int head_count() const { return writer_heads_ + expiry_classes_; }
  // Where head `head` lives in a KeyspaceState's lines (see HeadLine): stripe by stripe, each
  // stripe's writer heads (one per expiry class) from a line of their own, then the cleaner
  // heads from a line of their own.
  int HeadSlot(int head) const { return head_slot_[head]; }
  int head_lines() const { return head_lines_; }
  static WriteHead& HeadAt(KeyspaceState& ks, int slot) {
    return ks.lines[slot / HeadLine::kHeads].heads[slot % HeadLine::kHeads];
  }
  WriteHead& HeadOf(KeyspaceState& ks, int head) const { return HeadAt(ks, HeadSlot(head)); }
  bool IsMainHead(int head) const { return head >= writer_heads_; }
  void OpenSegment(uint32_t segment, int head, bool jumbo, uint16_t ks_id);
  void NoteExpiry(uint32_t segment, uint32_t expiry);
  // An item was published in `segment` now. REQUIRES: the item's shard lock.
  void NoteWriteTime(uint32_t segment, int64_t now);
  void FinishReservation(const Reservation& r);
  // Frees memory for a writer: a free segment (`bytes` 0) or `bytes` beyond the reserve. Runs
  // a cleaner pass if none is running, else (eviction on) frees a segment itself; waits
  // (until `deadline`) only when neither can free anything now. False when no progress is
  // possible (eviction off and the store full) or the deadline passed. At least one attempt
  // whatever the deadline.
  bool ReclaimSpace(size_t bytes, Deadline& deadline);
  enum class PassResult { kBusy, kProgress, kNoProgress, kStoreFull };
  // One cleaner pass in the calling thread, unless another is running (kBusy). kStoreFull:
  // nothing freed with eviction off and no freed segment waiting for readers.
  PassResult TryWriterPass(size_t bytes);
  // A writer's own reclaim while another thread holds the cleaner lock (eviction on):
  // compacts the emptiest segment or, when compaction does not pay, evicts the eviction
  // victim, until the writer can take `bytes` (0: a segment). True then, or when some memory
  // was freed meanwhile; false when nothing could be claimed.
  bool ReclaimInline(size_t bytes);
  // Whether a writer could take `bytes` (0: a segment) now.
  bool WriterCanTake(size_t bytes) const;
  // Waits until memory is freed after space_epoch_ was `seen`, at most `wait`. True if it was.
  bool WaitForSpace(uint64_t seen, Deadline::Clock::duration wait);
  // Wakes writers waiting in ReclaimSpace: a segment or memory was freed.
  void NoteSpaceFreed();
  // Publishes an item written at r if `mode`'s condition holds. *retry: write it again (a flush
  // passed, or the index needs memory first).
  Outcome Publish(SetMode mode, uint64_t hash, Keyspace ks, std::string_view key,
                  uint64_t cas_unique, const Reservation& r, bool* retry, size_t* need_bytes);
  // Inserts a slot, evicting from a full shard if allowed. On kOutOfMemory, *need_bytes says
  // how much memory the index needs to grow (0: it cannot grow).
  Outcome InsertSlot(index::Shard& shard, uint64_t hash, uint64_t location, uint32_t freq,
                     size_t* need_bytes);
  Outcome PreCheck(SetMode mode, uint64_t hash, Keyspace ks, std::string_view key,
                   uint64_t cas_unique);
  // Whether a write in `mode` may replace what FindLive found (`slot` null: nothing): kStored,
  // or the outcome that refuses it (add: present; replace: absent; cas: absent or changed).
  Outcome WriteCondition(SetMode mode, const uint64_t* slot, const mem::ItemView& item,
                         uint64_t cas_unique) const;
  Outcome WriteExpiredOnArrival(SetMode mode, uint64_t hash, Keyspace ks, std::string_view key,
                                uint64_t cas_unique);
  Outcome Modify(Keyspace ks, std::string_view key, Rewriter& rewriter);
  enum class RewriteStep { kDone, kLostRace, kNoMemory, kOverQuota };
  // One attempt of Modify. With `hold_lock` the shard lock is held from reading the old
  // version to publishing the new one, so the attempt cannot lose a race. kNoMemory:
  // *need_bytes to make room for (0: a segment); kOverQuota: the keyspace's quota has no room
  // for *need_bytes more.
  RewriteStep RewriteOnce(Keyspace ks, std::string_view key, uint64_t hash, Rewriter& rewriter,
                          bool hold_lock, Outcome* outcome, size_t* need_bytes);
  Outcome Concatenate(Keyspace ks, std::string_view key, std::string_view data, bool append,
                      uint64_t cas_unique);

  // --- streaming writes (engine_stream.cc) ---
  void ReleaseWrite(ValueWriter* w, bool published);
  void DropJumboReservation(uint32_t segment);

  // --- listing (engine_list.cc) ---
  // Adds an item found at `location` to the list.
  void AddListed(uint64_t location, const mem::ItemView& item, uint64_t cas, ItemList* list) const;
  // Lists the items of `slots` (of the shard) that are on the file tier, pinned by the caller:
  // each read, checked to still be the slot's item, and added.
  void ListFromFile(index::Shard& shard, const std::vector<uint64_t>& slots, Keyspace ks,
                    int64_t now, bool with_cas, ItemList* list);

  // --- file tier (tier.cc, docs/file-tier.md) ---
  bool HasTier() const { return pool_->file_count() != 0; }
  // Opens the tier files and charges the tier's memory, leaving room for `minimum_segments`.
  Status OpenTierFiles(uint32_t minimum_segments, bool open_files);
  // Why Open refuses a tier whose memory (`tier_bytes`) does not fit beside `memory_bytes`.
  std::string TierTooLarge(size_t tier_bytes, size_t memory_bytes) const;
  // Where file segment `id` starts: its file and the offset in it.
  void FilePosition(uint32_t id, int* fd, uint64_t* offset) const;
  // Reads the item at an on-file `location` into *buf; *item points into it. False on an I/O
  // error, a short read or bytes that cannot be the item there (a file changed behind us).
  bool ReadFileItem(uint64_t location, std::string* buf, mem::ItemView* item) const;
  // The item at `location`, read from the file if it is there (into *buf). Blocks on the disk
  // for an on-file item: only for rare paths (a full index shard's eviction). False if it
  // could not be read.
  bool ItemOrRead(uint64_t location, std::string* buf, mem::ItemView* item) const;
  // Header bytes of the live items of file segments, which a segment lost to an I/O error
  // cannot read back to drop its items from the counters.
  void NoteFileHeaders(uint32_t segment, int64_t delta) {
    if (pool_->IsFile(segment)) [[unlikely]] {
      file_state_[segment - pool_->file_first()].header_bytes.fetch_add(delta,
                                                                        std::memory_order_relaxed);
    }
  }
  // File segment `id` could not be read (or its bytes are wrong): its items are lost. Marks it
  // so that it is dropped (here if it can be claimed, else by whoever cleans it or by the next
  // cleaner pass) and counts the I/O error. REQUIRES: no shard lock held.
  void FailFileSegment(uint32_t id);
  // The same, where it cannot be dropped (under a shard lock): the next cleaner pass drops it.
  void MarkFileSegmentLost(uint32_t id) {
    file_state_[id - pool_->file_first()].lost.store(true, std::memory_order_release);
  }
  // Unlinks every slot still pointing into lost file segment `id` (claimed), drops what is left
  // of its items from the counters (as tier_io_errors) and frees it. REQUIRES: no shard lock.
  void DropLostFileSegment(uint32_t id);
  // FindLive's slow path: the index holds tag matches at on-file locations (`candidate` one of
  // them) and none in memory. Reads them until one is the key, promotes it, and finds again.
  uint64_t* FindOnFile(index::Shard& shard, ShardCounters& counters, uint64_t hash, Keyspace ks,
                       std::string_view key, int64_t now, mem::ItemView* item, Miss* miss,
                       uint64_t candidate, bool promote);
  // kFound: the key's item, left on file (promote false).
  // kUnreadable: the file could not be read (the item is lost; a miss).
  // kNoRoom: the key's item, left on file: no memory could be had to promote it into
  // (*why is Miss::kNoMemory).
  enum class Resolution { kOtherKey, kPromoted, kFound, kRetry, kGone, kUnreadable, kNoRoom };
  // Reads the item at on-file `location` (the shard lock released meanwhile): another key's, or
  // the key's, which is then promoted (kPromoted; kRetry: it changed meanwhile), or dropped
  // when stale (kGone, *why says which).
  Resolution ResolveOnFile(index::Shard& shard, ShardCounters& counters, uint64_t hash, Keyspace ks,
                           std::string_view key, uint64_t location, int64_t now, Miss* why,
                           bool promote, mem::ItemView* item);
  // Whether an eviction victim's items can go to a file segment: a regular segment's, or a
  // jumbo item that fits one (written at its offset 0).
  bool Demotable(uint32_t segment) const {
    return !pool_->IsJumbo(segment) || pool_->meta(segment).write_offset.load(
                                           std::memory_order_relaxed) <= pool_->segment_size();
  }
  // A free file segment for the demotion of RAM segment `demoted`: freeing empty or stale ones,
  // compacting a sparse one or (with eviction on) evicting the oldest if none is free.
  // kNoSegment if none can be had.
  uint32_t TakeFileSegment(uint32_t demoted, int64_t now);
  enum class FileClean { kEmpty, kDrop, kCompact, kEvict };
  // A file segment to free and how, or kNoSegment. A compaction must move fewer live bytes
  // into memory than the demotion takes out. REQUIRES: tier_mu_ held.
  uint32_t PickFileVictim(int64_t now, int64_t demoted_live, FileClean* how) const;
  // Drops (stale; kEvict: every item) or moves into RAM (kCompact) the live items of a claimed
  // file segment, reading it sequentially, then frees it. REQUIRES: tier_mu_ held.
  void EmptyFileSegment(uint32_t id, FileClean how, int64_t now);
  // A pass's share: frees empty, expired and flushed file segments.
  void FreeStaleFileSegments(int64_t now);
  // Writes claimed RAM segment `segment`'s live items to free file segment `file`: repoints
  // their slots, writes the bytes, withdraws the RAM backing behind a barrier. Afterwards no
  // slot points into `segment`. False if the write failed (its items were dropped).
  bool Demote(uint32_t segment, uint32_t file);
  // Copies the item of `slot`, at a file location whose bytes are in memory (a file segment
  // being written), into a cleaner head, so that it can be changed in place; returns its
  // location (unchanged if there was no room) and *moved, its view. REQUIRES: shard lock.
  uint64_t MoveOffFile(uint64_t* slot, const mem::ItemView& item, ShardCounters& c,
                       mem::ItemView* moved);
  // Returns once every critical section of every index shard begun before has ended.
  void QuiescenceBarrier();
  void TierStats(StoreStats* s) const;

  // --- cleaner (cleaner.cc) ---
  void CleanerThread();
  // One pass; with `want_bytes` > 0 (a writer short of memory) it frees only until that much
  // memory (beyond the reserve) is available, and skips give-back work. Returns true if it
  // freed anything or the memory wanted is now there.
  bool CleanerPass(size_t want_bytes);
  bool NeedSpace(size_t want_bytes) const;
  // Memory a writer could take: the accountant's and that of free segments.
  uint64_t WriterRoom() const;
  // Seals every head's open segment, in every keyspace, for which seal(meta) is true.
  template <typename Seal>
  void SealHeads(Seal&& seal);
  // The same for one keyspace's heads. Needs no keyspace_mu_.
  template <typename Seal>
  void SealHeadsOf(KeyspaceState& ks, Seal&& seal);
  bool FreeEmptyAndExpired(int64_t now, bool short_of_memory);
  // Whether every item of the segment is stale: written before its keyspace's current flush
  // generation (GenOf), or expired by `now`.
  bool AllStale(const mem::SegmentMeta& m, int64_t now) const;
  // A sealed segment no writer is filling whose every item is stale (flushed or expired), or
  // kNoSegment: emptying it copies nothing.
  uint32_t PickStaleSegment(const std::vector<uint32_t>& ids, int64_t now) const;
  // Seals open segments that hold no live item, so they can be freed; with `short_of_memory`
  // also those nobody has written to for kIdleSealSeconds (a keyspace gone quiet), so they can
  // be compacted or evicted.
  void SealIdleHeads(int64_t now, bool short_of_memory);
  // Seals at least `count` (and 1/16) of the open segments holding items and no writer,
  // whatever their age, those with the fewest live bytes first: the last resort of a cleaner
  // that finds nothing sealed to clean (more keyspaces being written than memory has segments
  // for their heads). Returns how many it sealed.
  size_t SealHeadsForRoom(size_t count);
  // Whether every regular segment in `ids` is open: none is sealed, being cleaned by another
  // cleaner or waiting for readers, any of which frees memory without sealing busy heads.
  bool OnlyHeads(const std::vector<uint32_t>& ids) const;
  // Segments short of the low-water mark NeedSpace keeps free (at least 1).
  size_t RoomSealCount() const;
  // Regular segments the effective limit holds (the arena may have more: SetMemoryLimit).
  uint32_t LimitSegments() const;
  // Whether the store holds more than a limit SetMemoryLimit lowered: the cleaner then gives
  // back resident free segments and runs passes back to back. Not for a total above the
  // opened limit (a keyspace's forced metadata charge), where that would only starve writers.
  bool OverLoweredLimit() const {
    return accountant_.limit() < options_.memory_limit && accountant_.Excess() > 0;
  }
  // Free segments below which memory is short: the reserve, one for writers, a few more on
  // large stores.
  uint32_t LowWater() const;
  // Takes a sealed segment no writer is filling for cleaning (kSealed -> kCleaning). Passes
  // and writers short of memory clean concurrently; each segment has one cleaner.
  bool Claim(uint32_t segment);
  // One evacuation of a segment. A cleaner pass yields the CPU now and then, and (with
  // eviction on) drops an item it has no room to move; a writer making room for itself does
  // not yield (it is the thread waiting), and stops a compaction that has no room rather than
  // drop. A compaction pays when it frees more than it fills: each cleaner counts the bytes
  // it filled itself (cleaners share the cleaner heads, so counting the segments opened would
  // charge one with what another filled).
  enum class Cleaner { kPass, kWriter };
  struct Evacuation {
    Cleaner by = Cleaner::kPass;
    int64_t capacity = 0;  // of the segment evacuated
    // Bytes of cleaner segments used: items moved, tails left unused when an item did not fit
    // (which sealed the segment), out-of-line mappings.
    int64_t bytes_filled = 0;
    // What emptying the segment gained (if it was emptied).
    int64_t gain() const { return capacity - bytes_filled; }
    // Eviction with a file tier: a free file segment the items not kept in RAM go to, instead
    // of being evicted (kNoSegment: evicted).
    uint32_t file_segment = mem::kNoSegment;
  };
  // REQUIRES: `segment` claimed.
  bool Evacuate(uint32_t segment, bool evict, int64_t now, Evacuation& ev);
  bool Evacuate(uint32_t segment, bool evict, int64_t now) {
    Evacuation ev;
    return Evacuate(segment, evict, now, ev);
  }
  bool EvacuateItem(uint32_t segment, uint32_t offset, bool evict, Evacuation& ev,
                    size_t* kept_budget, int64_t now, mem::ItemView* item);
  enum class MoveResult { kMoved, kNoRoom, kFlushed };
  MoveResult Relocate(uint64_t* slot, const mem::ItemView& item, uint64_t location, bool evict,
                      int64_t now, ShardCounters& c, Evacuation& ev);
  bool DrainOrFree(uint32_t segment);
  void FreeDrained();
  bool HasDraining();
  // Compactions over which the segments freed must exceed those the cleaner opened.
  int CompactionWindow() const;
  // The candidates below come from `ids`, a list of segments in use taken by the caller
  // (SegmentPool::InUse): a pass costs O(segments in use), not O(the limit's segments).
  // Skips the keyspaces in `no_room` (if given): a pass found no room to move their items.
  // The emptiest sealed segment at most `max_live` live, of a keyspace not in `no_room`; with
  // eviction on, one whose compaction can free memory (HasSibling, PickGainfulCompaction).
  uint32_t PickCompactionVictim(const std::vector<uint32_t>& ids, double max_live,
                                const std::vector<uint16_t>* no_room = nullptr) const;
  uint32_t EmptiestSealed(const std::vector<uint32_t>& ids, double max_live,
                          const std::vector<uint16_t>* skip) const;
  // Sealed, regular, no writer, at most `max_live` live, of a keyspace not in `skip` (if
  // given).
  bool Compactable(uint32_t id, double max_live, const std::vector<uint16_t>* skip) const;
  // Whether another compactable segment of the victim's keyspace may fill the cleaner segment
  // its compaction opens (see cleaner.cc).
  bool HasSibling(uint32_t victim, const std::vector<uint32_t>& ids, double max_live) const;
  uint32_t PickGainfulCompaction(const std::vector<uint32_t>& ids, double max_live,
                                 const std::vector<uint16_t>* skip) const;
  // Whether a cleaner head of the keyspace holds an open segment.
  bool HasCleanerHead(uint16_t ks_id) const;
  // Live bytes over the capacity of regular segments in use.
  double StoreLiveRatio(const std::vector<uint32_t>& ids) const;
  uint64_t StoreLiveBytes(const std::vector<uint32_t>& ids) const;
  // With quotas set, from the keyspace furthest over its fair share first (KeyspaceOverShare).
  uint32_t PickEvictionVictim(const std::vector<uint32_t>& ids) const;
  // The S3-FIFO victim among the segments of keyspace `ks_id`, or of the keyspaces a filter
  // (kAnyKeyspace, kWithoutQuota) names.
  uint32_t PickEvictionVictimOf(const std::vector<uint32_t>& ids, int ks_id) const;
  // REQUIRES: cleaner_mu_ held (uses in_use_).
  bool CompactOrEvict(size_t want_bytes, int64_t now);

  Options options_;
  const Clock* clock_;
  // Its limit is the effective one (SetMemoryLimit); options_.memory_limit the most it can be.
  mem::Accountant accountant_;
  size_t min_limit_ = 0;  // set by Init
  std::unique_ptr<mem::SegmentPool> pool_;
  std::unique_ptr<index::HashIndex> index_;
  std::unique_ptr<ShardCounters[]> counters_;
  size_t jumbo_threshold_ = 0;
  int expiry_classes_ = 1;

  int write_stripes_ = 1;  // writer heads per expiry class, so writers do not share a segment
  int writer_heads_ = 1;   // expiry_classes_ * write_stripes_
  std::array<uint8_t, 64> head_slot_{};  // HeadSlot, by head
  int head_lines_ = 1;                   // HeadLines per KeyspaceState
  // Heads of every keyspace, in each KeyspaceState: [0, writer_heads_) writer heads by (expiry
  // class, stripe); then one cleaner head per class. Segments filled by writer heads are the
  // "small" FIFO of eviction, cleaner ones the "main". Keyspaces are found through a two-level
  // directory (256 leaves of 256), created on first use and never freed.
  struct Leaf {
    std::atomic<KeyspaceState*> states[256] = {};
  };
  std::atomic<Leaf*> keyspace_dir_[256] = {};
  KeyspaceState* default_keyspace_ = nullptr;  // keyspace 0, created by Init
  mutable std::mutex keyspace_mu_;             // creation, and the lists below
  std::vector<std::unique_ptr<Leaf>> leaves_;
  std::vector<std::unique_ptr<KeyspaceState>> keyspaces_;
  std::vector<uint16_t> keyspace_ids_;  // parallel to keyspaces_
  std::vector<uint16_t> quota_ids_;     // keyspaces with a quota (guarded by keyspace_mu_)
  std::atomic<int> quota_count_{0};     // quota_ids_.size(), read without the lock
  std::atomic<uint64_t> open_seq_{0};
  std::atomic<uint32_t> flush_gen_{1};
  std::atomic<uint32_t> default_flush_gen_{0};  // keyspace 0's own (GenOf)
  std::atomic<int64_t> flush_deadline_{0};      // pending delayed flush_all; 0 = none
  // The earliest pending delayed FlushAll(keyspace) deadline; 0: none.
  std::atomic<int64_t> keyspace_flush_due_{0};

  // The cleaner: one pass at a time, on the background thread or in a writer; beside it,
  // writers short of memory clean segments they claim (Claim) without this lock.
  std::mutex cleaner_mu_;
  std::mutex drain_mu_;
  std::vector<uint32_t> draining_;  // guarded by drain_mu_
  // A pass's list of segments in use (SegmentPool::InUse); guarded by cleaner_mu_. A writer
  // cleaning beside a pass takes its own.
  std::vector<uint32_t> in_use_;
  // Live bytes when a writer's pass last found nothing to compact (eviction off); guarded by
  // cleaner_mu_.
  uint64_t fruitless_live_bytes_ = UINT64_MAX;
  // SetMemoryLimit raised the limit: the next pass forgets fruitless_live_bytes_.
  std::atomic<bool> limit_raised_{false};
  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  bool stop_ = false;  // guarded by wake_mu_
  bool wake_ = false;  // guarded by wake_mu_
  std::thread cleaner_thread_;
  std::atomic<uint64_t> space_epoch_{0};  // bumped whenever the cleaner frees memory
  std::function<void()> test_rewrite_hook_;
  std::mutex space_mu_;
  std::condition_variable space_cv_;

  // Cumulative counters.
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> expirations_{0};
  std::atomic<uint64_t> flushed_items_{0};
  std::atomic<uint64_t> relocated_items_{0};
  std::atomic<uint64_t> relocated_bytes_{0};
  std::atomic<uint64_t> segments_compacted_{0};
  std::atomic<uint64_t> segments_evicted_{0};
  std::atomic<uint64_t> out_of_memory_{0};
  std::atomic<uint64_t> writer_cleaner_passes_{0};
  std::atomic<uint64_t> writer_reclaims_{0};
  std::atomic<uint64_t> writer_space_waits_{0};
  std::atomic<uint64_t> pending_writes_{0};

  // The file tier (tier.cc). Files: open from Init on, closed by the destructor.
  struct TierFileHandle {
    int fd = -1;
    uint32_t first = 0;  // file segment ids [first, first + count) are in this file
    uint32_t count = 0;
  };
  std::vector<TierFileHandle> tier_files_;
  // One thread at a time frees file segments (they are read through one scratch buffer).
  // Lock order: cleaner_mu_ -> tier_mu_ -> shard lock.
  std::mutex tier_mu_;
  std::unique_ptr<char[]> tier_scratch_;  // guarded by tier_mu_; charged as metadata
  size_t tier_scratch_bytes_ = 0;
  mutable std::atomic<uint64_t> tier_reads_{0};
  mutable std::atomic<uint64_t> tier_read_bytes_{0};
  std::atomic<uint64_t> tier_writes_{0};
  std::atomic<uint64_t> tier_write_bytes_{0};
  std::atomic<uint64_t> tier_promotions_{0};
  std::atomic<uint64_t> tier_compactions_{0};
  std::atomic<uint64_t> tier_evictions_{0};
  std::atomic<uint64_t> tier_read_oom_{0};
  std::atomic<uint64_t> tier_unmarked_reads_{0};
  std::atomic<uint64_t> tier_io_errors_{0};
  // Per file segment (index: id - file_first), charged as metadata.
  struct FileSegmentState {
    std::atomic<int64_t> header_bytes{0};  // of its live items (NoteFileHeaders)
    std::atomic<bool> lost{false};         // a read failed: its items are to be dropped
    std::atomic<bool> jumbo{false};        // it holds a jumbo item (never compacted)
  };
  std::unique_ptr<FileSegmentState[]> file_state_;
};

template <typename Seal>
void Engine::SealHeadsOf(KeyspaceState& ks, Seal&& seal) {
  // The bits are read again at each step, as the heads were when every one was visited in
  // turn: a head opened meanwhile at a later index is visited (its bit is set before it opens).
  for (int from = 0;;) {
    const uint64_t rest = ks.open_heads.load(std::memory_order_acquire) & (~uint64_t{0} << from);
    if (rest == 0) break;
    const int i = std::countr_zero(rest);
    from = i + 1;
    WriteHead& head = HeadOf(ks, i);
    std::lock_guard<SpinLock> lock(head.lock);
    if (head.segment == mem::kNoSegment) continue;
    mem::SegmentMeta& m = pool_->meta(head.segment);
    if (!seal(m)) continue;
    m.state.store(mem::SegState::kSealed, std::memory_order_release);
    head.segment = mem::kNoSegment;
    ks.open_heads.fetch_and(~(uint64_t{1} << i), std::memory_order_relaxed);
  }
}

template <typename Seal>
void Engine::SealHeads(Seal&& seal) {
  std::lock_guard<std::mutex> keyspaces(keyspace_mu_);
  for (const std::unique_ptr<KeyspaceState>& ks : keyspaces_) SealHeadsOf(*ks, seal);
}

}  // namespace cinch::store
