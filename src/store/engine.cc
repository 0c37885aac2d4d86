// Engine: opening, reads, deletes, flush and stats. Writes are in engine_write.cc, the cleaner in
// cleaner.cc.
#include "store/engine.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "cinch/expiry.h"
#include "common/check.h"
#include "common/hash.h"

namespace cinch::store {

namespace {

constexpr uint32_t kMaxBucketsPerShard = 16384;  // 1 MiB of slots per shard
constexpr size_t kMinItemBytesEstimate = 16;     // sizes the shard count
// Every shard holds at least one table page from Open on, so the shard count is the floor of
// index memory: 4096 shards are 16 MiB. Beyond it shards grow larger instead (rebuilds stall
// one shard longer, tags filter less), up to 2^16 buckets of 4 MiB: 2^31 items in all.
constexpr uint32_t kMaxAutoShards = 4096;
constexpr uint32_t kMaxBucketsPerLargeShard = 65536;

double SlotsPerShard(uint32_t buckets) {
  return static_cast<double>(buckets) * index::kSlotsPerBucket * index::HashIndex::kTargetLoad;
}

uint32_t AutoShards(size_t memory_limit) {
  double max_items = static_cast<double>(memory_limit) / kMinItemBytesEstimate;
  uint32_t shards = static_cast<uint32_t>(
      std::min<double>(std::ceil(max_items / SlotsPerShard(kMaxBucketsPerShard)), kMaxAutoShards));
  return std::bit_ceil(std::max<uint32_t>(shards, 1));
}

// Buckets a shard may grow to: kMaxBucketsPerShard, or more where `shards` of that size could
// not index a limit full of the smallest items.
uint32_t MaxBucketsPerShard(size_t memory_limit, uint32_t shards) {
  double max_items = static_cast<double>(memory_limit) / kMinItemBytesEstimate;
  uint32_t buckets = kMaxBucketsPerShard;
  while (buckets < kMaxBucketsPerLargeShard && SlotsPerShard(buckets) * shards < max_items) {
    buckets *= 2;
  }
  return buckets;
}

}  // namespace

Engine::Engine(const Options& options)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : SystemClock::Default()),
      accountant_(options.memory_limit) {}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stop_ = true;
  }
  wake_cv_.notify_all();
  if (cleaner_thread_.joinable()) cleaner_thread_.join();
  for (const TierFileHandle& file : tier_files_) close(file.fd);
}

Status Engine::Open(const Options& options, std::unique_ptr<Engine>* engine) {
  std::unique_ptr<Engine> e(new Engine(options));
  Status s = e->Init();
  if (!s.ok()) return s;
  e->StartCleanerThread();
  *engine = std::move(e);
  return Status::Ok();
}

bool Engine::Fits(const Options& options) {
  Options o = options;
  o.background_cleaner = false;
  std::unique_ptr<Engine> e(new Engine(o));
  return e->Init(/*open_files=*/false).ok();
}

void Engine::StartCleanerThread() {
  if (!options_.background_cleaner) return;
  cleaner_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cinch-cleaner");  // as top -H and gdb show it
    CleanerThread();
  });
}

Status Engine::Init(bool open_files) {
  const Options& o = options_;
  if (!std::has_single_bit(o.segment_size) || o.segment_size < 4096 ||
      o.segment_size > (size_t{64} << 20)) {
    return Status::InvalidArgument("segment_size must be a power of two in [4 KiB, 64 MiB]");
  }
  if (o.compact_max_live <= 0 || o.compact_max_live >= 1) {
    return Status::InvalidArgument("compact_max_live must be in (0, 1)");
  }
  if (o.max_item_size < 64 || o.max_item_size >= (size_t{1} << 32) ||
      o.max_item_size > o.memory_limit / 2) {
    return Status::InvalidArgument("max_item_size must be in [64 B, memory_limit / 2]");
  }
  // 2^40 locations: the arena's bytes, then one per jumbo slot (mem/segment_pool.h).
  constexpr uint64_t kLocations = uint64_t{1} << index::kLocationBits;
  if (o.memory_limit > kLocations) {
    return Status::InvalidArgument("memory_limit above 1 TiB (40-bit item locations)");
  }
  jumbo_threshold_ = o.segment_size / 8;
  // Jumbo slots: enough for a store full of the smallest jumbo items (at least a page each).
  uint64_t jumbo = o.memory_limit / std::max<size_t>(jumbo_threshold_, 4096) + 1;
  int shift = std::countr_zero(o.segment_size);
  // Near 1 TiB the jumbo slots' locations come out of the last regular segments' (at most
  // 1/4096 of the limit): that memory still serves jumbo items, the index and buffers.
  uint32_t regular = static_cast<uint32_t>(
      std::min<uint64_t>(o.memory_limit / o.segment_size, (kLocations - jumbo) >> shift));
  expiry_classes_ = regular >= 256 ? 8 : regular >= 32 ? 2 : 1;
  write_stripes_ = regular >= 256 ? 4 : 1;
  writer_heads_ = expiry_classes_ * write_stripes_;
  CINCH_CHECK(head_count() <= 64);  // KeyspaceState::open_heads has a bit per head
  constexpr int kLine = HeadLine::kHeads;
  const int stripe_lines = (expiry_classes_ + kLine - 1) / kLine;
  for (int cls = 0; cls < expiry_classes_; ++cls) {
    for (int stripe = 0; stripe < write_stripes_; ++stripe) {
      head_slot_[cls * write_stripes_ + stripe] =
          static_cast<uint8_t>(stripe * stripe_lines * kLine + cls);
    }
    head_slot_[CleanerHead(cls)] =
        static_cast<uint8_t>(write_stripes_ * stripe_lines * kLine + cls);
  }
  head_lines_ = (write_stripes_ + 1) * stripe_lines;
  uint32_t reserve = std::max<uint32_t>(o.reserve_segments, 1);
  // Every head may hold an open segment, plus the cleaner's reserve.
  uint32_t minimum = static_cast<uint32_t>(head_count()) + reserve + 2;
  if (regular < minimum) {
    return Status::InvalidArgument("memory_limit too small: need at least " +
                                   std::to_string(minimum) + " segments");
  }
  // The file tier's segments take the locations after the jumbo slots (docs/file-tier.md).
  uint64_t file_segments = 0;
  for (const TierFile& file : o.tier_files) {
    if ((file.size >> shift) == 0) {
      return Status::InvalidArgument("tier file " + file.path + " is smaller than a segment");
    }
    file_segments += file.size >> shift;
  }
  const uint64_t file_base =
      ((uint64_t{regular} << shift) + jumbo + o.segment_size - 1) & ~uint64_t{o.segment_size - 1};
  if (file_base + (file_segments << shift) > kLocations || file_segments > UINT32_MAX / 2) {
    return Status::InvalidArgument(
        "memory_limit plus tier files above 1 TiB (40-bit item locations)");
  }
  mem::SegmentPool::Config pc{o.segment_size, regular, static_cast<uint32_t>(jumbo),
                              reserve,        reserve, static_cast<uint32_t>(file_segments)};
  Status s = mem::SegmentPool::Create(pc, &accountant_, &pool_);
  if (!s.ok()) return s;
  CINCH_CHECK(pool_->location_end() <= kLocations);
  uint32_t shards = o.index_shards != 0 ? o.index_shards : AutoShards(o.memory_limit);
  // Items on file need index slots too: a shard may grow as for a limit of RAM plus files.
  index::HashIndex::Config ic{shards,
                              MaxBucketsPerShard(o.memory_limit + (file_segments << shift), shards),
                              pool_->reserve_bytes()};
  s = index::HashIndex::Create(ic, &accountant_, &index_);
  if (!s.ok()) return s;
  counters_.reset(new ShardCounters[shards]);
  default_keyspace_ = TryCreateKeyspace(0);
  if (default_keyspace_ == nullptr || accountant_.Available() < size_t{minimum} * o.segment_size) {
    return Status::InvalidArgument("memory_limit too small for the index, metadata and " +
                                   std::to_string(minimum) + " segments");
  }
  if (HasTier()) {
    if (s = OpenTierFiles(minimum, open_files); !s.ok()) return s;
  }
  // What the store holds from Open on (index, metadata, the tier's), and room for every head,
  // the reserve and two more segments: the least it can run with (SetMemoryLimit).
  const size_t floor = accountant_.total() + size_t{minimum} * o.segment_size;
  min_limit_ =
      std::max((floor + o.segment_size - 1) / o.segment_size * o.segment_size, 2 * o.max_item_size);
  return Status::Ok();
}

void Engine::SetMemoryLimit(size_t bytes) {
  const size_t limit =
      std::clamp(bytes, std::min(min_limit_, options_.memory_limit), options_.memory_limit);
  const size_t before = accountant_.limit();
  accountant_.SetLimit(limit);
  if (limit > before) {
    limit_raised_.store(true, std::memory_order_relaxed);
    NoteSpaceFreed();  // writers waiting for memory may take it now
  }
  if (limit < before) WakeCleaner();  // the background cleaner evicts down to it
}

uint32_t Engine::LimitSegments() const {
  return static_cast<uint32_t>(
      std::min<size_t>(pool_->regular_count(), accountant_.limit() / pool_->segment_size()));
}

// --- keyspaces ---

namespace {
size_t KeyspaceBytes(int lines) { return sizeof(KeyspaceState) + sizeof(HeadLine) * lines; }
}  // namespace

KeyspaceState* Engine::TryCreateKeyspace(uint16_t id, bool force) {
  std::lock_guard<std::mutex> lock(keyspace_mu_);
  if (KeyspaceState* ks = FindKeyspace(id)) return ks;  // created meanwhile
  Leaf* leaf = keyspace_dir_[id >> 8].load(std::memory_order_relaxed);
  // Keyspace 0 (created by Init) is part of the engine's fixed state, like the engine object;
  // the others are charged, as there may be thousands.
  size_t bytes = id == 0 ? 0 : KeyspaceBytes(head_lines()) + (leaf == nullptr ? sizeof(Leaf) : 0);
  if (force) {
    accountant_.ForceCharge(mem::MemoryKind::kMetadata, bytes);
  } else if (bytes > 0 && (accountant_.Available() < bytes + pool_->reserve_bytes() ||
                           !accountant_.TryCharge(mem::MemoryKind::kMetadata, bytes))) {
    return nullptr;
  }
  if (leaf == nullptr) {
    leaves_.push_back(std::make_unique<Leaf>());
    leaf = leaves_.back().get();
    keyspace_dir_[id >> 8].store(leaf, std::memory_order_release);
  }
  keyspaces_.push_back(std::make_unique<KeyspaceState>(head_lines()));
  keyspace_ids_.push_back(id);
  KeyspaceState* ks = keyspaces_.back().get();
  leaf->states[id & 255].store(ks, std::memory_order_release);
  return ks;
}

KeyspaceState* Engine::KeyspaceFor(uint16_t id, Deadline& deadline) {
  if (id == 0) return default_keyspace_;
  if (KeyspaceState* ks = FindKeyspace(id)) return ks;
  for (;;) {
    if (KeyspaceState* ks = TryCreateKeyspace(id)) return ks;
    if (!ReclaimSpace(KeyspaceBytes(head_lines()) + sizeof(Leaf), deadline)) return nullptr;
  }
}

KeyspaceState* Engine::EnsureKeyspace(uint16_t id) {
  Deadline deadline = SpaceDeadline();
  if (KeyspaceState* state = KeyspaceFor(id, deadline)) return state;
  return TryCreateKeyspace(id, /*force=*/true);
}

namespace {

uint64_t Load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }
uint64_t Load(const std::atomic<int64_t>& v) {
  return static_cast<uint64_t>(std::max<int64_t>(v.load(std::memory_order_relaxed), 0));
}

// The fields every keyspace keeps in its KeyspaceState (keyspace 0 too).
void FillOwnStats(const KeyspaceState& state, KeyspaceStats* out) {
  out->pending_write_bytes = Load(state.pending_bytes);
  out->quota = Load(state.quota);
  out->flushes = Load(state.flushes);
}

}  // namespace

std::vector<Keyspace> Engine::Keyspaces() const {
  std::lock_guard<std::mutex> lock(keyspace_mu_);
  std::vector<Keyspace> out;
  out.reserve(keyspace_ids_.size());
  for (uint16_t id : keyspace_ids_) out.push_back(Keyspace{id});
  return out;
}

KeyspaceStats Engine::GetKeyspaceStats(Keyspace ks) const {
  KeyspaceStats out;
  if (ks.id != 0) {
    const KeyspaceState* state = FindKeyspace(ks.id);
    if (state == nullptr) return out;
    out.items = Load(state->items);
    out.key_value_bytes = Load(state->kv_bytes);
    out.item_bytes = Load(state->item_bytes);
    out.get_hits = Load(state->hits);
    out.get_misses = Load(state->misses);
    out.evictions = Load(state->evictions);
    FillOwnStats(*state, &out);
    return out;
  }
  // Keyspace 0 keeps no counters of its own (its items, hits and misses are counted on the hot
  // path by the shard counters only): the store's totals less every other keyspace's.
  StoreStats all = GetStats();
  int64_t items = static_cast<int64_t>(all.items);
  int64_t kv = static_cast<int64_t>(all.key_value_bytes);
  int64_t bytes = static_cast<int64_t>(all.key_value_bytes + all.item_header_bytes);
  int64_t hits = static_cast<int64_t>(all.get_hits);
  int64_t misses = static_cast<int64_t>(all.get_misses);
  int64_t evictions = static_cast<int64_t>(all.evictions);
  {
    std::lock_guard<std::mutex> lock(keyspace_mu_);
    for (const std::unique_ptr<KeyspaceState>& state : keyspaces_) {
      if (state.get() == default_keyspace_) continue;
      items -= state->items.load(std::memory_order_relaxed);
      kv -= state->kv_bytes.load(std::memory_order_relaxed);
      bytes -= state->item_bytes.load(std::memory_order_relaxed);
      hits -= static_cast<int64_t>(Load(state->hits));
      misses -= static_cast<int64_t>(Load(state->misses));
      evictions -= static_cast<int64_t>(Load(state->evictions));
    }
  }
  auto floor0 = [](int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(v, 0)); };
  out.items = floor0(items);
  out.key_value_bytes = floor0(kv);
  out.item_bytes = floor0(bytes);
  out.get_hits = floor0(hits);
  out.get_misses = floor0(misses);
  out.evictions = floor0(evictions);
  FillOwnStats(*default_keyspace_, &out);
  return out;
}

// --- items ---

// A sequence number no segment is opened with: the CAS values derived from it belong to no item.
uint64_t Engine::UnusedCas() {
  return (open_seq_.fetch_add(1, std::memory_order_relaxed) + 1) << pool_->segment_shift();
}

uint64_t Engine::CasOf(uint64_t location, const mem::ItemView& item) const {
  if (item.meta.cas != 0) return item.meta.cas;
  uint64_t seq = pool_->meta(SegmentOf(location)).open_seq.load(std::memory_order_relaxed);
  return (seq << pool_->segment_shift()) | OffsetOf(location);
}

bool Engine::IsStale(uint64_t location, const mem::ItemView& item, int64_t now) const {
  if (item.meta.expiry != 0 && item.meta.expiry <= now) return true;
  return !IsCurrent(pool_->meta(SegmentOf(location)));
}

void Engine::AccountLive(uint64_t location, const mem::ItemView& item, int sign, ShardCounters& c) {
  mem::SegmentMeta& m = pool_->meta(SegmentOf(location));
  m.live_bytes.fetch_add(sign * static_cast<int64_t>(item.size), std::memory_order_relaxed);
  if (sign > 0) {
    m.live_items.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Release: whoever sees the segment empty (the cleaner, with acquire) also sees every
    // access made to it under the index locks before the item was dropped.
    m.live_items.fetch_sub(1, std::memory_order_release);
  }
  ShardCounters::Add(c.items, sign);
  ShardCounters::Add(c.kv_bytes, sign * static_cast<int64_t>(item.key.size() + item.value.size()));
  ShardCounters::Add(c.header_bytes, sign * static_cast<int64_t>(item.header_size));
  NoteFileHeaders(SegmentOf(location), sign * static_cast<int64_t>(item.header_size));
  if (uint16_t id = m.keyspace.load(std::memory_order_relaxed); id != 0) {
    KeyspaceState* ks = FindKeyspace(id);  // exists: its segment was opened for it
    ks->items.fetch_add(sign, std::memory_order_relaxed);
    ks->kv_bytes.fetch_add(sign * static_cast<int64_t>(item.key.size() + item.value.size()),
                           std::memory_order_relaxed);
    ks->item_bytes.fetch_add(sign * static_cast<int64_t>(item.size), std::memory_order_relaxed);
  }
}

void Engine::MoveLive(uint64_t from, size_t from_size, size_t from_header, uint64_t to,
                      size_t to_size, size_t to_header, ShardCounters& c) {
  const int64_t header_delta = static_cast<int64_t>(to_header) - static_cast<int64_t>(from_header);
  mem::SegmentMeta& src = pool_->meta(SegmentOf(from));
  mem::SegmentMeta& dst = pool_->meta(SegmentOf(to));
  dst.live_bytes.fetch_add(static_cast<int64_t>(to_size), std::memory_order_relaxed);
  dst.live_items.fetch_add(1, std::memory_order_relaxed);
  src.live_bytes.fetch_sub(static_cast<int64_t>(from_size), std::memory_order_relaxed);
  src.live_items.fetch_sub(1, std::memory_order_release);
  NoteFileHeaders(SegmentOf(from), -static_cast<int64_t>(from_header));
  NoteFileHeaders(SegmentOf(to), static_cast<int64_t>(to_header));
  if (header_delta != 0) ShardCounters::Add(c.header_bytes, header_delta);
  // A move stays in its keyspace (the cleaner moves an item only into a segment of its own).
  CINCH_DCHECK(src.keyspace.load(std::memory_order_relaxed) ==
               dst.keyspace.load(std::memory_order_relaxed));
  if (uint16_t id = dst.keyspace.load(std::memory_order_relaxed); id != 0 && header_delta != 0) {
    FindKeyspace(id)->item_bytes.fetch_add(header_delta, std::memory_order_relaxed);
  }
}

void Engine::Unlink(index::Shard& shard, ShardCounters& counters, uint64_t* slot,
                    const mem::ItemView& item) {
  AccountLive(index::SlotLocation(*slot), item, -1, counters);
  index_->Erase(shard, slot);
}

uint64_t* Engine::FindLive(index::Shard& shard, ShardCounters& counters, uint64_t hash, Keyspace ks,
                           std::string_view key, int64_t now, mem::ItemView* item, Miss* miss,
                           bool promote) {
  uint64_t on_file = index::kLocationMask + 1;  // none
  uint64_t* slot = index_->Find(shard, hash, [&](uint64_t location) {
    const char* p = ItemAt(location);
    if (p == nullptr) [[unlikely]] {  // on file: the key cannot be compared without reading
      on_file = location;
      return false;
    }
    // An item of a few dozen bytes usually spans two cache lines. The key is compared and the
    // value read only after the header is decoded: fetch the next line now, with the header,
    // rather than one memory latency later (a get that reads a 32 B value's last byte: 11 %
    // slower than one reading its first without this prefetch, 1 % with it).
    __builtin_prefetch(p + 64 - (reinterpret_cast<uintptr_t>(p) & 63));
    mem::ItemView v = mem::DecodeItem(p);
    // The same key may be stored in several keyspaces: the segment's keyspace decides (its
    // metadata line, read only on a key match, is hot: a few hundred segments per GiB).
    if (v.key != key || KeyspaceOf(location) != ks.id) return false;
    *item = v;
    return true;
  });
  if (slot == nullptr && on_file <= index::kLocationMask) [[unlikely]] {
    return FindOnFile(shard, counters, hash, ks, key, now, item, miss, on_file, promote);
  }
  return LiveOrDrop(shard, counters, slot, now, item, miss);
}

uint64_t* Engine::LiveOrDrop(index::Shard& shard, ShardCounters& counters, uint64_t* slot,
                             int64_t now, mem::ItemView* item, Miss* miss) {
  if (slot == nullptr) {
    if (miss != nullptr) *miss = Miss::kAbsent;
    return nullptr;
  }
  if (IsStale(index::SlotLocation(*slot), *item, now)) {
    bool expired = item->meta.expiry != 0 && item->meta.expiry <= now;
    (expired ? expirations_ : flushed_items_).fetch_add(1, std::memory_order_relaxed);
    if (miss != nullptr) *miss = expired ? Miss::kExpired : Miss::kFlushed;
    Unlink(shard, counters, slot, *item);
    return nullptr;
  }
  return slot;
}

void Engine::FillRef(uint64_t location, const mem::ItemView& item, ItemRef* out) {
  out->Reset();
  mem::SegmentMeta& m = pool_->meta(SegmentOf(location));
  std::atomic<uint32_t>& pins = PinsOf(location);  // m's, unless a RAM segment backs it
  pins.fetch_add(1, std::memory_order_acq_rel);
  out->pin_ = &pins;
  out->key_ = item.key;
  out->value_ = item.value;
  out->flags_ = item.meta.flags;
  out->expiry_ = item.meta.expiry == kStoredNever ? 0 : item.meta.expiry;
  out->cas_ = 0;
  out->last_access_ = m.write_time.load(std::memory_order_relaxed);
  out->fetched_before_ = item.meta.fetched;
  out->stale_ = (item.meta.state & mem::kStateStale) != 0;
  out->win_token_sent_ = (item.meta.state & mem::kStateWinTokenSent) != 0;
  out->binary_key_ = (item.meta.state & mem::kStateBinaryKey) != 0;
}

int Engine::WriterHead(int cls) const {
  static std::atomic<uint32_t> next_stripe{0};
  thread_local uint32_t stripe = next_stripe.fetch_add(1, std::memory_order_relaxed);
  return cls * write_stripes_ + static_cast<int>(stripe % write_stripes_);
}

// --- time ---

uint32_t Engine::AbsoluteExpiry(int64_t exptime, int64_t now, bool* expired) {
  *expired = false;
  if (exptime == 0) return 0;
  if (ExpiresAtOnce(exptime, now)) {
    *expired = true;
    return 0;
  }
  return static_cast<uint32_t>(std::min<int64_t>(AbsoluteExptime(exptime, now), kStoredNever - 1));
}

int Engine::ExpiryClass(uint32_t expiry, int64_t now) const {
  if (expiry == 0) return 0;
  static constexpr int64_t kBounds[] = {60, 300, 1800, 3 * 3600, 86400, 7 * 86400};
  int64_t ttl = int64_t{expiry} - now;
  int cls = 1;
  for (int64_t bound : kBounds) {
    if (ttl < bound) break;
    ++cls;
  }
  return std::min(cls, expiry_classes_ - 1);
}

// --- reads ---

bool Engine::Read(Keyspace ks, std::string_view key, ItemRef* out, bool with_cas, bool bump,
                  Miss* miss) {
  out->Reset();
  if (key.empty() || key.size() > Store::kMaxKeyLength) {
    if (miss != nullptr) *miss = Miss::kAbsent;
    return false;
  }
  int64_t now = Now();
  MaybeFlushDue(now);
  uint64_t hash = HashKey(key, ks.id);
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  uint64_t* slot = FindLive(shard, c, hash, ks, key, now, &item, miss);
  if (slot == nullptr) {
    CountMiss(c, ks);
    return false;
  }
  if (miss != nullptr) *miss = Miss::kNone;
  ReadHit(ks, slot, item, c, out, with_cas, bump);
  return true;
}

void Engine::ReadHit(Keyspace ks, uint64_t* slot, const mem::ItemView& found, ShardCounters& c,
                     ItemRef* out, bool with_cas, bool bump) {
  ShardCounters::Inc(c.hits);
  if (ks.id != 0) CountFor(ks.id, &KeyspaceState::hits);
  uint64_t location = index::SlotLocation(*slot);
  mem::ItemView item = found;
  if (bump) {
    uint32_t freq = index::SlotFreq(*slot);
    if (freq < index::kMaxFreq) *slot = index::WithFreq(*slot, freq + 1);
    // An item being written to the file tier is immutable (docs/file-tier.md): its first read
    // copies it back into memory (from the RAM segment still backing it), where H is set.
    if (!item.meta.fetched && pool_->IsFileLocation(location)) [[unlikely]] {
      location = MoveOffFile(slot, item, c, &item);
      // No memory for the copy: served as it is, unmarked (docs/file-tier.md, "Limits").
      if (pool_->IsFileLocation(location))
        tier_unmarked_reads_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!item.meta.fetched && !pool_->IsFileLocation(location)) {
      mem::MarkFetched(const_cast<char*>(ItemAt(location)));
    }
  }
  FillRef(location, item, out);
  if (with_cas) {
    *slot |= index::kCasExposedBit;
    out->cas_ = CasOf(location, item);
  }
}

Outcome Engine::Delete(Keyspace ks, std::string_view key, uint64_t cas_unique) {
  if (key.empty() || key.size() > Store::kMaxKeyLength) return Outcome::kNotFound;
  int64_t now = Now();
  MaybeFlushDue(now);
  uint64_t hash = HashKey(key, ks.id);
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  uint64_t* slot = FindLive(shard, c, hash, ks, key, now, &item, nullptr, /*promote=*/false);
  if (slot == nullptr) return Outcome::kNotFound;
  if (cas_unique != 0 && CasOf(index::SlotLocation(*slot), item) != cas_unique) {
    return Outcome::kExists;
  }
  Unlink(shard, c, slot, item);
  return Outcome::kDeleted;
}

// --- flush ---

void Engine::FlushAll(int64_t delay_seconds) {
  if (delay_seconds > 0) {
    // A delayed flush that came due takes effect before its deadline is replaced; else what it
    // invalidated would come back unless an operation or the cleaner had run in between.
    MaybeFlushDue(Now());
    flush_deadline_.store(Now() + delay_seconds, std::memory_order_relaxed);
    return;
  }
  flush_deadline_.store(0, std::memory_order_relaxed);
  FlushNow();
}

void Engine::MaybeFlushDue(int64_t now) {
  if (int64_t due = keyspace_flush_due_.load(std::memory_order_relaxed); due != 0 && now >= due)
      [[unlikely]] {
    RunDueKeyspaceFlushes(now);
  }
  int64_t deadline = flush_deadline_.load(std::memory_order_relaxed);
  if (deadline == 0 || now < deadline) return;
  if (!flush_deadline_.compare_exchange_strong(deadline, 0)) return;
  FlushNow();
}

// A keyspace's flush_all: its own generation, so that only its segments become stale.
void Engine::FlushKeyspace(Keyspace ks, int64_t delay_seconds) {
  KeyspaceState* state = EnsureKeyspace(ks.id);
  const int64_t now = Now();
  // As FlushAll: a delayed flush that came due takes effect before it is replaced.
  MaybeFlushDue(now);
  if (delay_seconds > 0) {
    state->flush_deadline.store(now + delay_seconds);
    NoteKeyspaceFlushDue(now + delay_seconds);
    return;
  }
  state->flush_deadline.store(0);
  FlushKeyspaceNow(ks.id);
}

void Engine::NoteKeyspaceFlushDue(int64_t deadline) {
  int64_t due = keyspace_flush_due_.load();
  while ((due == 0 || deadline < due) &&
         !keyspace_flush_due_.compare_exchange_weak(due, deadline)) {
  }
}

// Whoever takes the due mark runs every flush due and marks the earliest still pending; a
// delayed flush set meanwhile marks itself (NoteKeyspaceFlushDue), after storing its deadline,
// so either this scan sees it or its mark survives.
void Engine::RunDueKeyspaceFlushes(int64_t now) {
  int64_t due = keyspace_flush_due_.load();
  if (due == 0 || now < due || !keyspace_flush_due_.compare_exchange_strong(due, 0)) return;
  std::vector<uint16_t> flush;
  int64_t next = 0;
  {
    std::lock_guard<std::mutex> lock(keyspace_mu_);
    for (size_t i = 0; i < keyspaces_.size(); ++i) {
      std::atomic<int64_t>& deadline = keyspaces_[i]->flush_deadline;
      int64_t d = deadline.load();
      if (d == 0) continue;
      if (d <= now && deadline.compare_exchange_strong(d, 0)) {
        flush.push_back(keyspace_ids_[i]);
      } else if (d > now && (next == 0 || d < next)) {
        next = d;
      }
    }
  }
  for (uint16_t id : flush) FlushKeyspaceNow(id);
  if (next != 0) NoteKeyspaceFlushDue(next);
}

void Engine::FlushKeyspaceNow(uint16_t ks_id) {
  KeyspaceState* state = FindKeyspace(ks_id);
  std::atomic<uint32_t>& gen = ks_id == 0 ? default_flush_gen_ : state->flush_gen;
  gen.fetch_add(1, std::memory_order_acq_rel);
  state->flushes.fetch_add(1, std::memory_order_relaxed);
  // As FlushNow, for this keyspace's heads only: its writes go to segments of the new
  // generation, and the cleaner can take the old ones.
  SealHeadsOf(*state, [](const mem::SegmentMeta&) { return true; });
  WakeCleaner();
}

// O(heads), whatever the number of items: from the new generation on, every item of an older
// segment is stale to reads and writes (IsStale), which drop its slot when they meet it; the
// cleaner drops the rest, segment by segment (FreeEmptyAndExpired, or ReclaimInline in a
// writer short of memory). Needs no cleaner_mu_: heads are sealed under their own locks, as a
// full head is by its writer, and a cleaner moving an item in a flushed segment drops it
// (Relocate). Safe from any thread, with or without cleaner_mu_ held.
void Engine::FlushNow() {
  flush_gen_.fetch_add(1, std::memory_order_acq_rel);
  // Segments opened from now on carry the new generation; the open ones of older ones are
  // sealed so that writes go to new segments (a write published into an older one is retried,
  // Publish) and the cleaner can take them.
  SealHeads([](const mem::SegmentMeta&) { return true; });
  WakeCleaner();
}

void Engine::WakeCleaner() {
  std::lock_guard<std::mutex> wake(wake_mu_);
  wake_ = true;
  wake_cv_.notify_one();
}

// --- accounting ---

bool Engine::ChargeExternal(size_t bytes) {
  auto charge = [&] {
    return accountant_.Available() >= bytes + pool_->reserve_bytes() &&
           accountant_.TryCharge(mem::MemoryKind::kExternal, bytes);
  };
  if (charge()) return true;
  // Callers may be event loops that retry later, for many connections in a row: one pass of
  // its own if no other is running, or with eviction on the cleaning a writer does beside a
  // running pass (it must not depend on the cleaner thread being scheduled either), never a
  // wait (waits multiplied by the starved connections of one loop would stall it for seconds).
  for (int attempt = 0; attempt < 2; ++attempt) {
    PassResult pass = TryWriterPass(bytes);
    bool progress = pass == PassResult::kProgress ||
                    (pass == PassResult::kBusy && options_.eviction && ReclaimInline(bytes));
    if (!progress) return false;
    if (charge()) return true;
  }
  return false;
}

void Engine::ReleaseExternal(size_t bytes) {
  accountant_.Release(mem::MemoryKind::kExternal, bytes);
}

StoreStats Engine::GetStats() const {
  StoreStats s;
  for (uint32_t i = 0; i < index_->shard_count(); ++i) {
    const ShardCounters& c = counters_[i];
    s.items += c.items.load(std::memory_order_relaxed);
    s.key_value_bytes += c.kv_bytes.load(std::memory_order_relaxed);
    s.item_header_bytes += c.header_bytes.load(std::memory_order_relaxed);
    s.get_hits += c.hits.load(std::memory_order_relaxed);
    s.get_misses += c.misses.load(std::memory_order_relaxed);
  }
  using mem::MemoryKind;
  s.memory_limit = accountant_.limit();
  s.resident_bytes = accountant_.total();
  s.segment_bytes = accountant_.ByKind(MemoryKind::kSegments);
  s.jumbo_bytes = accountant_.ByKind(MemoryKind::kJumbo);
  s.index_bytes = accountant_.ByKind(MemoryKind::kIndex);
  s.metadata_bytes = accountant_.ByKind(MemoryKind::kMetadata);
  s.external_bytes = accountant_.ByKind(MemoryKind::kExternal);
  s.staging_bytes = accountant_.ByKind(MemoryKind::kStaging);
  s.pending_writes = pending_writes_.load(std::memory_order_relaxed);
  s.overhead_bytes = s.resident_bytes - s.external_bytes - s.key_value_bytes;
  s.segment_size = pool_->segment_size();
  s.segments_total = LimitSegments();
  uint32_t free = pool_->free_count();
  s.segments_free = pool_->resident_free();
  s.segments_released = free - s.segments_free;
  s.segments_used = pool_->regular_count() - free;
  s.evictions = evictions_.load(std::memory_order_relaxed);
  s.expirations_reclaimed = expirations_.load(std::memory_order_relaxed);
  s.flushed_items = flushed_items_.load(std::memory_order_relaxed);
  s.relocated_items = relocated_items_.load(std::memory_order_relaxed);
  s.relocated_bytes = relocated_bytes_.load(std::memory_order_relaxed);
  s.segments_compacted = segments_compacted_.load(std::memory_order_relaxed);
  s.segments_evicted = segments_evicted_.load(std::memory_order_relaxed);
  s.bytes_released_to_os = pool_->bytes_released();
  s.index_resizes = index_->resizes();
  s.out_of_memory = out_of_memory_.load(std::memory_order_relaxed);
  s.writer_cleaner_passes = writer_cleaner_passes_.load(std::memory_order_relaxed);
  s.writer_reclaims = writer_reclaims_.load(std::memory_order_relaxed);
  s.writer_space_waits = writer_space_waits_.load(std::memory_order_relaxed);
  TierStats(&s);
  return s;
}

}  // namespace cinch::store
