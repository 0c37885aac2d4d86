// cinch::Store: an in-memory key-value cache with memcached's semantics that holds a hard memory
// limit and does not fragment.
//
// Items live in fixed-size log segments and are reached only through a compact hash index, so
// the background cleaner can move (compact) or drop (evict, expire) any item by rewriting one
// index slot. See docs/ for the formats and the cleaner.
//
// Thread safety: every method may be called concurrently from any number of threads, with the
// cleaner running at the same time. There are no global pauses: operations on one key serialize
// on the index shard of that key only.
//
// Expiry ("exptime") has memcached's meaning everywhere: 0 never expires; 1..2592000 (30 days)
// is relative seconds from now; larger values are absolute Unix time; negative values mean
// "already expired" (cinch/expiry.h). An expired item is never returned.
//
// Keys are 1..250 bytes (Store::kMaxKeyLength) of any content. Every key lives in a keyspace
// (Keyspace below; docs/keyspaces.md): the same key in two keyspaces is two items. Methods
// without a Keyspace argument use Keyspace{}, the keyspace of memcached's keys.
//
// Large values can be written in place as they arrive (Store::BeginWrite, ValueWriter): the
// item's memory is reserved once and filled by the caller, then published.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"

namespace cinch {

namespace store {
class Engine;
}

// A keyspace: items in different keyspaces never see each other (the same key in two keyspaces
// is two items, and a lookup in one never returns another's). Keyspace{} (id 0) is the default,
// memcached's keys. Costs no byte per item: every segment holds the items of one keyspace.
struct Keyspace {
  uint16_t id = 0;
  friend bool operator==(Keyspace a, Keyspace b) { return a.id == b.id; }
};

// What one keyspace holds now, and its counters since the store opened
// (Store::GetKeyspaceStats). A tenant's memcached `stats` are these: curr_items = items,
// bytes = item_bytes, limit_maxbytes = quota (or the store's limit when 0).
struct KeyspaceStats {
  uint64_t items = 0;            // live items (expired ones not yet reclaimed count)
  uint64_t key_value_bytes = 0;  // sum of their key + value lengths
  uint64_t item_bytes = 0;       // the same items with their headers, as stored
  // Bytes reserved by streaming writes (ValueWriter) not yet committed or aborted.
  uint64_t pending_write_bytes = 0;
  // Store::SetKeyspaceQuota's bound on item_bytes + pending_write_bytes; 0: none.
  uint64_t quota = 0;
  uint64_t get_hits = 0;    // reads that found an item (as StoreStats::get_hits)
  uint64_t get_misses = 0;  // reads that found none
  // Live items dropped to make room, for any reason: the keyspace's quota, or the store's
  // memory limit (StoreStats::evictions counts both, for every keyspace).
  uint64_t evictions = 0;
  uint64_t flushes = 0;  // FlushAll(keyspace, ...) that took effect (not the store-wide ones)
};

// A read handle on one item: key and value are read in place, without copying.
//
// While an ItemRef is alive, the segment holding the item is not reused, so key() and value()
// stay valid. ItemRefs must be short-lived (release them once the reply is written): the cleaner
// waits for them before it reuses a segment, and memory held by a segment with a live ItemRef is
// not given back. Move-only; not thread-safe itself (use one per thread).
class ItemRef {
 public:
  ItemRef() = default;
  ~ItemRef() { Reset(); }
  ItemRef(ItemRef&& other) noexcept { *this = std::move(other); }
  ItemRef& operator=(ItemRef&& other) noexcept;
  ItemRef(const ItemRef&) = delete;
  ItemRef& operator=(const ItemRef&) = delete;

  explicit operator bool() const { return pin_ != nullptr; }
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  uint32_t flags() const { return flags_; }
  // Identifies this version of the item: changes on every modification, never 0 when it was
  // asked for (Store::Get with_cas), 0 otherwise.
  uint64_t cas() const { return cas_; }
  // Absolute Unix time of expiry, or 0 for never.
  int64_t expiry() const { return expiry_; }
  // The per-item state memcached's meta commands report, as it was before this read:
  // whether the item had been read before (meta 'h'), its last access in Unix seconds (meta
  // 'l'; the time it was written, to within the life of the segment holding it: reads are not
  // recorded), whether it is stale (marked by Store::Invalidate or a kCasInvalidate write; meta
  // 'X') and whether a client was already told to recache it (meta 'Z'), and whether its key
  // was stored as binary (written with binary_key; meta 'k' then returns it in base64).
  bool fetched_before() const { return fetched_before_; }
  int64_t last_access() const { return last_access_; }
  bool stale() const { return stale_; }
  bool win_token_sent() const { return win_token_sent_; }
  bool binary_key() const { return binary_key_; }

  // Releases the pin early; the ItemRef becomes empty.
  void Reset();

 private:
  friend class store::Engine;

  std::atomic<uint32_t>* pin_ = nullptr;
  std::string_view key_;
  std::string_view value_;
  uint32_t flags_ = 0;
  uint64_t cas_ = 0;
  int64_t expiry_ = 0;
  int64_t last_access_ = 0;
  bool fetched_before_ = false;
  bool stale_ = false;
  bool win_token_sent_ = false;
  bool binary_key_ = false;
};

// How a write relates to the item already stored under the key.
enum class SetMode {
  kSet,      // store unconditionally
  kAdd,      // only if absent
  kReplace,  // only if present
  kAppend,   // append data to the present value (flags and expiry kept)
  kPrepend,  // prepend data to the present value (flags and expiry kept)
  kCas,      // only if present and unmodified since the client read cas_unique
  // As kCas, but a cas_unique lower than the item's still stores the value, marked stale and
  // with the item's exptime and recache token kept (memcached's ms with C and I).
  kCasInvalidate,
};

// Why a read found nothing (memcached counts get_expired and get_flushed).
enum class Miss : uint8_t {
  kNone,     // it found the item
  kAbsent,   // no item under the key
  kExpired,  // the item had expired (it is removed now)
  kFlushed,  // the item was invalidated by flush_all (it is removed now)
  // The item is on the file tier and no memory could be made to read it back into within the
  // store's space wait: it is kept there (memcached's get_oom_extstore). Reads that also change
  // the item (GetAndTouch, Fetch with touch) answer Outcome::kOutOfMemory for it.
  kNoMemory,
};

// What Store::Fetch does besides reading: memcached's meta get (mg) flags. Times are exptimes
// as everywhere (0 never, up to 30 days relative, else absolute, negative already expired).
struct FetchOptions {
  bool with_cas = false;  // as Get's with_cas
  bool no_bump = false;   // 'u': not an access: "hit before" and eviction's frequency unchanged
  bool touch = false;     // 'T': set a new exptime (a negative one: the item is read, then gone)
  int64_t exptime = 0;
  // 'N': on a miss, create an empty item (flags 0) with vivify_exptime; its creator wins the
  // recache token.
  bool vivify = false;
  int64_t vivify_exptime = 0;
  // 'R': win the recache token when the item has an expiry less than recache_seconds away
  // (measured after the touch if recache_after_touch: memcached applies flags in order).
  bool recache = false;
  int64_t recache_seconds = 0;
  bool recache_after_touch = false;
  // Only the touch: no recache token is handed out, not even for a stale item (meta
  // arithmetic's T, which memcached applies to the item without reading it).
  bool no_token = false;
};

struct FetchResult {
  Miss miss = Miss::kNone;
  bool created = false;         // vivified by this call
  bool won = false;             // this client was handed the recache token (meta 'W')
  int64_t previous_expiry = 0;  // the expiry before the touch (absolute, 0 for never)
};

// Listing the items of a keyspace (Store::ListItems), a batch at a time: memcached's
// "lru_crawler metadump" and "stats cachedump".
struct ListedItem {
  uint32_t key_offset = 0;  // the key is ItemList::key(item)
  uint32_t key_size = 0;
  bool binary_key = false;  // as ItemRef::binary_key
  bool fetched_before = false;
  uint32_t flags = 0;
  size_t value_size = 0;
  int64_t expiry = 0;       // absolute Unix time; 0: never
  int64_t last_access = 0;  // as ItemRef::last_access
  uint64_t cas = 0;         // 0 unless asked for
};

// A batch of listed items and their keys' bytes: the caller's memory, reused from call to call.
struct ItemList {
  std::vector<ListedItem> items;
  std::string keys;
  std::string_view key(const ListedItem& item) const {
    return std::string_view(keys).substr(item.key_offset, item.key_size);
  }
  void clear() {
    items.clear();
    keys.clear();
  }
};

// Where a listing goes on: a position in the index, not an item, so that what is written or
// moved meanwhile does not make it skip or repeat the other items.
struct ListCursor {
  uint32_t shard = 0;
  uint32_t tag = 0;
  bool done = false;
  // Stretches of the index read so far (each a few dozen slots): a caller may bound its work
  // per turn by it.
  uint64_t stretches = 0;
};

// A value being written in place (Store::BeginWrite). The item's memory was reserved and
// charged when the write began; the caller fills data()[0, size()) in any order and over any
// time, then Commit() publishes the item or Abort() drops it and gives the memory back. Readers
// never see an uncommitted value. Destroying a writer that was neither committed nor aborted
// aborts it. Move-only; not thread-safe itself (one thread at a time may use it). Must not
// outlive its Store.
class ValueWriter {
 public:
  ValueWriter() = default;
  ~ValueWriter() { Abort(); }
  ValueWriter(ValueWriter&& other) noexcept { *this = std::move(other); }
  ValueWriter& operator=(ValueWriter&& other) noexcept;
  ValueWriter(const ValueWriter&) = delete;
  ValueWriter& operator=(const ValueWriter&) = delete;

  // Whether a write is pending (begun, not yet committed or aborted).
  explicit operator bool() const { return engine_ != nullptr; }
  char* data() const { return value_; }
  size_t size() const { return size_; }

  // Publishes the item under its key: kStored, or kNotStored for a kAdd whose key was stored
  // meanwhile (the value is dropped then). The item's memory was reserved by BeginWrite, but a
  // value of up to an eighth of a segment is staged outside the segments and copied into one
  // here, and the index may have to grow for a new key: both make room as any write does.
  // With eviction on that fails only if nothing at all can be freed (every segment pinned by
  // readers or held by pending writes until the write's deadline); with eviction off and the
  // store full, kOutOfMemory (a kSet then drops the old value, as Write). A value above an
  // eighth of a segment that replaces a present key needs no memory at all. The writer is
  // empty afterwards, whatever the outcome.
  // REQUIRES: a write is pending.
  Outcome Commit();
  // Drops the pending write, if any, and gives its memory back.
  void Abort();

 private:
  friend class store::Engine;

  store::Engine* engine_ = nullptr;
  char* item_ = nullptr;   // the encoded item: header, key, then the value being filled
  char* value_ = nullptr;  // inside item_
  size_t size_ = 0;
  size_t item_size_ = 0;
  uint32_t segment_ = ~uint32_t{0};  // its own jumbo segment, or none: staged in item_'s buffer
  uint16_t keyspace_ = 0;
  bool add_ = false;      // SetMode::kAdd, else kSet
  bool expired_ = false;  // written with an exptime already past: a delete when committed
};

// Ties a snapshot file (Store::SaveTo, Store::OpenFrom; docs/restart-format.md) to the
// configuration it was saved under: a file saved under another is refused.
struct SnapshotOptions {
  // The memory limit the file belongs to. 0: Options::memory_limit. An embedder that sizes the
  // store from a limit of its own (cinchd sizes it from -m less what the process needs) passes
  // that limit, which stays the same from one start to the next.
  uint64_t memory_limit = 0;
};

// What Store::OpenFrom did with the file.
struct RestoreReport {
  enum class Result {
    kLoaded,       // a complete snapshot: every item not expired since is back
    kPartial,      // a save that did not finish, or damaged records: what verified is back
    kNoFile,       // no file at the path: an empty store
    kEmpty,        // an empty file (nothing saved in it, or a save killed at once): empty store
    kConsumed,     // loaded once already (the store ran since: kill -9 or a crash): empty store
    kOtherConfig,  // another format version, segment size or memory limit: empty store
    kNotSnapshot,  // not a snapshot file at all (no magic): an empty store
    kDamaged,      // a snapshot whose header is damaged: an empty store
    kIoError,      // the file could not be read: an empty store
  };
  Result result = Result::kNoFile;
  uint64_t items = 0;            // items loaded
  uint64_t key_value_bytes = 0;  // their key + value bytes
  uint64_t segments = 0;         // segment records loaded
  uint64_t expired = 0;          // items that expired while the store was down (not loaded)
  uint64_t records_refused = 0;  // records that failed a check (checksum, structure) or did not fit
  uint64_t items_refused = 0;    // items of refused records, and duplicates of loaded keys
  std::string message;           // one line for a log: what was loaded, or why not
  // Of the items loaded, those whose bytes went to the file tier (Options::tier_files): saved
  // from it, or beyond what memory holds.
  uint64_t items_on_file = 0;
  // Of the refused records and items, those that did not fit: no room in memory nor in the
  // file tier (a store with a smaller memory limit or tier, or none).
  uint64_t records_no_room = 0;
  uint64_t items_no_room = 0;
  // Whether items were loaded from the file (kLoaded or kPartial).
  bool loaded() const { return result == Result::kLoaded || result == Result::kPartial; }
};

class Store {
 public:
  static constexpr size_t kMaxKeyLength = 250;

  // Opens a store. Fails (InvalidArgument) if the options are inconsistent, e.g. a memory limit
  // too small to hold the index, the segment table and the cleaner's reserve segments.
  static Status Open(const Options& options, std::unique_ptr<Store>* store);
  // The smallest memory_limit, a whole number of segments, that Open accepts with the other
  // options as given (index, segment table, reserve segments and the file tier's metadata must
  // fit; the tier files are not opened); 0 if none up to 2^20 segments does.
  static size_t MinimumMemoryLimit(const Options& options);

  // Opens a store and loads the snapshot at `path` (written by SaveTo) into it. The file is
  // never trusted: a record is loaded only when its checksum and structure verify; a file of
  // another format, segment size or memory limit (snapshot.memory_limit), one consumed
  // already, or garbage leaves the store empty, and *report says why (report may be null).
  // Items that expired meanwhile are not loaded; keys, values, flags, CAS values, expiry
  // (absolute), keyspaces and eviction order come back as saved. With a file tier, items saved
  // from the tier go back to it, and items that memory cannot hold go to it too; what fits in
  // neither is counted in *report (records_no_room, items_no_room), never silently dropped. Once
  // items are loaded the file is marked consumed (and synced) before this returns, so a store that
  // later dies without saving never brings back this older state. Fails only when Open would, or
  // when the file could not be marked consumed (then no store is returned).
  static Status OpenFrom(const Options& options, const std::string& path,
                         const SnapshotOptions& snapshot, std::unique_ptr<Store>* store,
                         RestoreReport* report);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Writes. `exptime` as described above. `cas_unique` is compared by SetMode::kCas and
  // kCasInvalidate, and by kAppend and kPrepend when not 0 (kExists if it differs).
  // `binary_key` marks the key as binary for ItemRef::binary_key().
  // Returns kStored, kNotStored, kExists, kNotFound (cas on an absent key), kTooLarge or
  // kOutOfMemory. A kSet refused with kTooLarge or kOutOfMemory also deletes the value it
  // would have replaced, as memcached does, so a reader never sees the stale one.
  Outcome Write(SetMode mode, std::string_view key, std::string_view value, uint32_t flags,
                int64_t exptime, uint64_t cas_unique = 0, bool binary_key = false);
  Outcome Write(Keyspace keyspace, SetMode mode, std::string_view key, std::string_view value,
                uint32_t flags, int64_t exptime, uint64_t cas_unique = 0, bool binary_key = false);
  Outcome Set(std::string_view key, std::string_view value, uint32_t flags = 0,
              int64_t exptime = 0) {
    return Write(SetMode::kSet, key, value, flags, exptime);
  }

  // Begins a streaming write of a value of `value_size` bytes under `key` (SetMode::kSet or
  // kAdd; flags and exptime as Write; exptime relative to now, the time of BeginWrite).
  // Reserves and charges the item's memory once, making room as a write does (eviction may
  // free it): a value larger than an eighth of a segment gets an out-of-line mapping of its
  // own, in which the caller writes it in place; a smaller one is staged in a buffer charged
  // to the store and copied into a segment at Commit. Either way no segment is held open for
  // the caller, who may take any time to fill it. Returns kStored with *out ready; kNotStored
  // for kAdd when the key is present now (it is checked again at Commit); kTooLarge (the item
  // would exceed max_item_size; unlike Write, the current value is kept); kOutOfMemory; or
  // kNotStored for an invalid key or a mode other than kSet/kAdd. *out is aborted first if it
  // held a pending write.
  Outcome BeginWrite(Keyspace keyspace, SetMode mode, std::string_view key, size_t value_size,
                     uint32_t flags, int64_t exptime, ValueWriter* out);

  // Reads. Return false (and leave *out empty) when the key is absent or expired.
  // out->cas() is filled only when `with_cas` is true (memcached's gets/gats, meta `c`): an item
  // whose CAS value was handed out keeps it explicitly when the cleaner moves it, which costs
  // 8 bytes, so plain reads do not ask for it.
  // A read counts as an access: the item's fetched_before() is true from the next read on.
  // `miss`, if given, says why a read found nothing.
  bool Get(std::string_view key, ItemRef* out, bool with_cas = false, Miss* miss = nullptr);
  bool Get(Keyspace keyspace, std::string_view key, ItemRef* out, bool with_cas = false,
           Miss* miss = nullptr);
  // A read that is not an access: the item's fetched_before() and eviction frequency stay as
  // they are (memcached's lookups without a bump: meta debug, reading back what was written).
  bool Peek(std::string_view key, ItemRef* out, bool with_cas = false);
  bool Peek(Keyspace keyspace, std::string_view key, ItemRef* out, bool with_cas = false);
  // A read with memcached's meta get options, in one step under the key's lock (see
  // FetchOptions). Returns whether *out holds the item (found or created).
  bool Fetch(std::string_view key, const FetchOptions& options, ItemRef* out, FetchResult* result);
  bool Fetch(Keyspace keyspace, std::string_view key, const FetchOptions& options, ItemRef* out,
             FetchResult* result);
  // Get and set a new exptime in one step (memcached's gat). The CAS value is unchanged.
  // kTouched with *out filled, kNotFound, or kOutOfMemory as for Touch (the item is intact).
  // An exptime already past: this call gets the item, later reads do not (as memcached).
  // `miss`, if given, says why it found nothing (kNotFound).
  Outcome GetAndTouch(std::string_view key, int64_t exptime, ItemRef* out, bool with_cas = false,
                      Miss* miss = nullptr);
  Outcome GetAndTouch(Keyspace keyspace, std::string_view key, int64_t exptime, ItemRef* out,
                      bool with_cas = false, Miss* miss = nullptr);

  // kTouched or kNotFound. Changes only the expiry; the CAS value is unchanged. An item stored
  // with an exptime is touched in place; one stored without must be rewritten, which needs
  // memory: with eviction disabled and the store full, that touch answers kOutOfMemory and
  // leaves the item as it was.
  Outcome Touch(std::string_view key, int64_t exptime);
  Outcome Touch(Keyspace keyspace, std::string_view key, int64_t exptime);

  // kDeleted, kNotFound, or kExists when cas_unique != 0 and does not match.
  Outcome Delete(std::string_view key, uint64_t cas_unique = 0);
  Outcome Delete(Keyspace keyspace, std::string_view key, uint64_t cas_unique = 0);

  // A CAS value that no item has or will have, unique over the store's life: what memcached
  // answers for a write whose item was gone at once (its exptime already past).
  uint64_t UnusedCas();

  // Marks the item stale instead of deleting it (memcached's md with I): it gets a new CAS
  // value, loses a handed-out recache token (the next reader wins it) and, with set_exptime, a
  // new exptime. kStored, kNotFound, kExists (cas_unique != 0 and does not match) or
  // kOutOfMemory (the new version needs memory; the item is left as it was).
  Outcome Invalidate(std::string_view key, uint64_t cas_unique, bool set_exptime, int64_t exptime);
  Outcome Invalidate(Keyspace keyspace, std::string_view key, uint64_t cas_unique, bool set_exptime,
                     int64_t exptime);

  // Unsigned 64-bit decimal arithmetic, as memcached: incr wraps at 2^64, decr floors at 0; the
  // stored text may have leading whitespace and anything after whitespace is ignored; a result
  // shorter than the old value is padded with spaces to the old length. On kStored the new
  // value is in *result. kNotFound, kNonNumeric, kOutOfMemory, or kExists when cas_unique != 0
  // and does not match (meta arithmetic's C flag).
  Outcome Incr(std::string_view key, uint64_t delta, uint64_t* result, uint64_t cas_unique = 0);
  Outcome Decr(std::string_view key, uint64_t delta, uint64_t* result, uint64_t cas_unique = 0);
  Outcome Incr(Keyspace keyspace, std::string_view key, uint64_t delta, uint64_t* result,
               uint64_t cas_unique = 0);
  Outcome Decr(Keyspace keyspace, std::string_view key, uint64_t delta, uint64_t* result,
               uint64_t cas_unique = 0);

  // Invalidates every item stored before now + delay_seconds (memcached's flush_all [delay]),
  // in every keyspace. From then on, no operation sees them; the cleaner removes them and
  // frees their memory later (items in GetStats falls then), so the call costs O(1), not
  // O(items).
  void FlushAll(int64_t delay_seconds = 0);
  // The same for the items of one keyspace only (a tenant's flush_all): the other keyspaces'
  // items, and their pending delayed flushes, are untouched. A later call for the same
  // keyspace replaces a pending delayed one (a delay of 0 cancels it), as in memcached.
  void FlushAll(Keyspace keyspace, int64_t delay_seconds);

  // Bounds the bytes of one keyspace's items (KeyspaceStats::item_bytes, headers included,
  // plus pending_write_bytes) to `bytes`; 0 removes the bound (the default). A write that
  // would take the keyspace over its quota first evicts that keyspace's own coldest items
  // (S3-FIFO order, a segment at a time), never another keyspace's; with eviction off it
  // answers kOutOfMemory instead. Writes in flight at the same moment may pass the bound by
  // their own sizes. Lowering a quota below what the keyspace holds evicts down to it at once
  // (eviction on) or refuses its writes until deletes bring it under (eviction off).
  // Quotas may add up to more than memory_limit (overcommit): the limit still holds, and when
  // the whole store must evict, it takes first from the keyspace furthest above its fair share
  // of memory (its quota, scaled down by the overcommit); see docs/keyspaces.md.
  void SetKeyspaceQuota(Keyspace keyspace, size_t bytes);

  // Sets the store's effective memory limit to `bytes`, clamped to [the smallest limit this
  // store can run with (at least MinimumMemoryLimit(options())), options().memory_limit]: the
  // limit it was opened with is the most it can ever hold, reserved at Open. Lowering it makes
  // the cleaner evict, coldest first in its usual order (with a file tier it demotes first),
  // and give the freed segments' pages back to the OS, while the store keeps serving; the
  // background cleaner gets there within a few passes (a store without one: the next writes
  // and RunCleanerOnce). Writes never fail because a lowering is in progress: with eviction on
  // they evict as they do in any full store; with eviction off they answer kOutOfMemory, as a
  // full store does, until deletes bring the store under the limit. Raising it lets the store
  // grow again. GetStats().memory_limit reports the effective limit.
  void SetMemoryLimit(size_t bytes);

  StoreStats GetStats() const;
  // Counters of one keyspace. Cheap (no walk), but not a consistent snapshot with GetStats.
  KeyspaceStats GetKeyspaceStats(Keyspace keyspace) const;
  // The keyspaces that have been used since the store opened (written, loaded from a file,
  // given a quota or flushed), keyspace 0 among them, in no particular order: those that can
  // hold items.
  std::vector<Keyspace> Keyspaces() const;

  // Memory the embedder keeps (e.g. a server's connection buffers) is charged against the same
  // limit. ChargeExternal returns false, charging nothing, if the bytes do not fit even after
  // a cleaner pass on the calling thread has freed what it can now (no pass when another
  // thread's is running). It never waits, so an event loop may call it and retry later.
  bool ChargeExternal(size_t bytes);
  void ReleaseExternal(size_t bytes);

  // The file tier (Options::tier_files, docs/file-tier.md). Every method above works on items
  // whose bytes are on file, but reading them blocks the calling thread on the disk. A server
  // running event loops asks InFileTier first and, when it says yes, calls Promote on another
  // thread before the operation, so that the operation finds the item in memory.
  //
  // Whether an operation on `key` now may have to read the file tier (its item, or an item of
  // another key that the index cannot tell from it without reading, is on file). Never blocks;
  // false without a tier.
  bool InFileTier(Keyspace keyspace, std::string_view key) const;
  // Brings `key`'s item from the file tier into memory if it is there, so that an operation on
  // the key right after finds it in memory (unless it was written back to the file meanwhile).
  // Blocks on the disk: call it off an event loop. Counts no hit or miss. Without a tier, or
  // when the item is in memory or absent, does nothing.
  void Promote(Keyspace keyspace, std::string_view key);

  // Appends to *list the live items of `keyspace` in the next stretches of the index from
  // *cursor (a stretch is a few dozen index slots), until the list holds `max_items` or more,
  // the index ends (cursor->done), or the call has read Store::kListStretchesPerCall stretches
  // (32,768 slots: then the list may hold fewer items, even none, with the cursor moved on),
  // and moves the cursor past them, adding the stretches read to cursor->stretches. A walk from a
  // fresh cursor to done lists every item present throughout it exactly once; one stored or removed
  // meanwhile is listed once or not at all. Lists without touching the items (no hit, no
  // fetched mark), as memcached's metadump; with `with_cas` the items' CAS values are filled
  // in, and stay what they were listed as until the items change. Items on the file tier are
  // read from it, blocking the calling thread on the disk, unless `may_block` is false: then
  // the call stops before a stretch that holds items on file, leaving the cursor there, and
  // returns false (call again where waiting on the disk is fine). True otherwise.
  static constexpr uint32_t kListStretchesPerCall = 512;
  bool ListItems(Keyspace keyspace, ListCursor* cursor, size_t max_items, bool with_cas,
                 bool may_block, ItemList* list);

  // Writes every live item to the file at `path` (created or truncated), straight from the
  // store's memory (no copy), with a checksum per segment, then syncs it and marks it clean
  // (docs/restart-format.md). Items on the file tier are copied from their file through the
  // tier's buffer (already counted in the memory limit). Needs no memory beyond a small fixed
  // buffer. Holds off the cleaner while it runs. REQUIRES: no other thread uses the store
  // meanwhile (a server saves after its workers stopped): the snapshot is then exact.
  Status SaveTo(const std::string& path, const SnapshotOptions& snapshot = {});

  // Runs one full cleaner pass on the calling thread (expiry, compaction, give-back).
  void RunCleanerOnce();

  const Options& options() const;

 private:
  explicit Store(std::unique_ptr<store::Engine> engine);
  std::unique_ptr<store::Engine> engine_;
};

}  // namespace cinch
