// Engine: the file tier (docs/file-tier.md). When memory is full, the cleaner's eviction victim
// is written to a file segment instead of being evicted (Demote): its items keep their offsets,
// so their slots are repointed from the RAM segment to the file segment and derived CAS values
// do not change. Items whose bytes are on file are immutable; a lookup that meets one reads it
// (FindOnFile, blocking) and promotes it back into memory, so every operation works on them.
// When no file segment is free, an empty or stale one is freed, a sparse one compacted (its
// live items move into memory, to be written again with others) or the oldest evicted.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/check.h"
#include "common/file_io.h"
#include "common/hash.h"
#include "store/engine.h"

namespace cinch::store {

namespace {

// The first read of an item on file: its header and key always fit (at most 24 + 250 bytes),
// and a small item whole.
constexpr size_t kFirstRead = 4096;
// A file segment at most this live is compacted (its live items moved into memory) rather than
// the oldest evicted, when a demotion needs a file segment.
constexpr double kFileCompactMaxLive = 0.5;
// Rounds of freeing file segments for one demotion (another thread may take what was freed).
constexpr int kFileAttempts = 4;
constexpr uint64_t kNoLocation = index::kLocationMask + 1;

}  // namespace

// --- files ---

Status Engine::OpenTierFiles(uint32_t minimum_segments, bool open_files) {
  // Emptying a file segment reads it through this buffer: an item (at most an eighth of a
  // segment) and the header of the next always fit (plus room to decode a header at its end).
  tier_scratch_bytes_ = jumbo_threshold_ + kFirstRead;
  // All charged now: a demotion takes a file segment when memory is full, so the file
  // segments' metadata cannot wait for it. What is left must still hold the segments Open
  // requires; a limit that cannot is refused (the tier is not cut short).
  const size_t charge = tier_scratch_bytes_ + mem::kMaxItemHeader +
                        size_t{pool_->file_count()} * sizeof(FileSegmentState);
  const size_t tier_bytes = charge + pool_->FileMetadataBytes();
  const size_t memory_bytes = size_t{minimum_segments} * pool_->segment_size();
  if (accountant_.Available() < tier_bytes + memory_bytes ||
      !accountant_.TryCharge(mem::MemoryKind::kMetadata, charge) || !pool_->ChargeFileMetadata()) {
    return Status::InvalidArgument(TierTooLarge(tier_bytes, memory_bytes));
  }
  if (!open_files) return Status::Ok();
  const int shift = pool_->segment_shift();
  uint32_t next = pool_->file_first();
  for (const TierFile& file : options_.tier_files) {
    // Scratch: truncated, never synced, never read back by a later Open.
    int fd = open(file.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::IoError("cannot open tier file " + file.path + ": " + std::strerror(errno));
    }
    uint32_t count = static_cast<uint32_t>(file.size >> shift);
    tier_files_.push_back(TierFileHandle{fd, next, count});
    next += count;
  }
  tier_scratch_.reset(new char[tier_scratch_bytes_ + mem::kMaxItemHeader]());
  file_state_.reset(new FileSegmentState[pool_->file_count()]);
  return Status::Ok();
}

std::string Engine::TierTooLarge(size_t tier_bytes, size_t memory_bytes) const {
  auto kib = [](size_t bytes) { return std::to_string((bytes + 1023) >> 10) + " KiB"; };
  return "memory_limit too small for the file tier: its " + std::to_string(pool_->file_count()) +
         " segments of " + kib(pool_->segment_size()) + " need " + kib(tier_bytes) +
         " of memory (their metadata and a read buffer) beside the " + kib(memory_bytes) +
         " of segments the store needs, and " + kib(accountant_.Available()) +
         " of the limit is left after the index: a smaller tier, larger segments or a larger " +
         "limit";
}

void Engine::FilePosition(uint32_t id, int* fd, uint64_t* offset) const {
  for (const TierFileHandle& file : tier_files_) {
    if (id >= file.first && id < file.first + file.count) {
      *fd = file.fd;
      *offset = uint64_t{id - file.first} << pool_->segment_shift();
      return;
    }
  }
  CINCH_CHECK(false && "not a file segment");
}

bool Engine::ReadFileItem(uint64_t location, std::string* buf, mem::ItemView* item) const {
  const uint32_t id = SegmentOf(location);
  const uint32_t offset = OffsetOf(location);
  const uint32_t end = pool_->meta(id).write_offset.load(std::memory_order_acquire);
  if (offset >= end) return false;
  int fd;
  uint64_t base;
  FilePosition(id, &fd, &base);
  size_t first = std::min<size_t>(kFirstRead, end - offset);
  buf->resize(first);
  if (!PreadAll(fd, buf->data(), first, base + offset)) return false;
  tier_reads_.fetch_add(1, std::memory_order_relaxed);
  tier_read_bytes_.fetch_add(first, std::memory_order_relaxed);
  // The bytes may not be an item (the file was changed behind the store): check before
  // decoding, with zeros past a short item so that decoding reads no further.
  buf->resize(std::max(first, mem::kMaxItemHeader));
  if (!mem::MayStartItem(buf->data())) return false;
  *item = mem::DecodeItem(buf->data());
  if (item->size > end - offset) return false;
  if (item->size > first) {
    buf->resize(item->size);
    if (!PreadAll(fd, buf->data() + first, item->size - first, base + offset + first)) {
      return false;
    }
    tier_reads_.fetch_add(1, std::memory_order_relaxed);
    tier_read_bytes_.fetch_add(item->size - first, std::memory_order_relaxed);
    *item = mem::DecodeItem(buf->data());
  }
  return true;
}

bool Engine::ItemOrRead(uint64_t location, std::string* buf, mem::ItemView* item) const {
  if (const char* p = ItemAt(location)) {
    *item = mem::DecodeItem(p);
    return true;
  }
  return ReadFileItem(location, buf, item);
}

// --- I/O errors ---

void Engine::FailFileSegment(uint32_t id) {
  file_state_[id - pool_->file_first()].lost.store(true, std::memory_order_release);
  if (Claim(id)) DropLostFileSegment(id);
}

void Engine::DropLostFileSegment(uint32_t id) {
  mem::SegmentMeta& m = pool_->meta(id);
  FileSegmentState& fs = file_state_[id - pool_->file_first()];
  const uint64_t begin = Location(id, 0);
  const uint64_t end = begin + pool_->segment_size();
  for (uint32_t i = 0; i < index_->shard_count(); ++i) {
    index::Shard& shard = index_->shard(i);
    std::lock_guard<SpinLock> lock(shard.lock);
    index_->EraseIf(shard, [&](uint64_t location) { return location >= begin && location < end; });
  }
  // No slot points into it any more: its counters are final. Its items' sizes cannot be read,
  // so they leave the counters as sums (shard 0's take the shard counters' share: stats add
  // them up).
  const int64_t items = m.live_items.load(std::memory_order_acquire);
  const int64_t bytes = m.live_bytes.load(std::memory_order_relaxed);
  const int64_t headers = fs.header_bytes.load(std::memory_order_relaxed);
  {
    std::lock_guard<SpinLock> lock(index_->shard(0).lock);
    ShardCounters& c = counters_[0];
    ShardCounters::Add(c.items, -items);
    ShardCounters::Add(c.kv_bytes, headers - bytes);
    ShardCounters::Add(c.header_bytes, -headers);
  }
  if (uint16_t ks = m.keyspace.load(std::memory_order_relaxed); ks != 0) {
    KeyspaceState* state = FindKeyspace(ks);
    state->items.fetch_sub(items, std::memory_order_relaxed);
    state->kv_bytes.fetch_add(headers - bytes, std::memory_order_relaxed);
    state->item_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  }
  m.live_items.store(0, std::memory_order_release);
  m.live_bytes.store(0, std::memory_order_relaxed);
  fs.header_bytes.store(0, std::memory_order_relaxed);
  fs.lost.store(false, std::memory_order_relaxed);
  tier_io_errors_.fetch_add(static_cast<uint64_t>(items), std::memory_order_relaxed);
  DrainOrFree(id);  // readers still reading it (pinned) keep it until they are done
}

// --- reads of items on file ---

uint64_t* Engine::FindOnFile(index::Shard& shard, ShardCounters& counters, uint64_t hash,
                             Keyspace ks, std::string_view key, int64_t now, mem::ItemView* item,
                             Miss* miss, uint64_t candidate, bool promote) {
  std::vector<uint64_t> other_keys;  // on-file locations read and found to hold other keys
  Miss gone = Miss::kAbsent;         // why the key's item was dropped, if it was
  for (;;) {
    Miss why = Miss::kAbsent;
    switch (ResolveOnFile(shard, counters, hash, ks, key, candidate, now, &why, promote, item)) {
      case Resolution::kOtherKey:
      case Resolution::kUnreadable:  // lost: its slot is gone, or will be; a miss
        other_keys.push_back(candidate);
        break;
      case Resolution::kFound:
        if (miss != nullptr) *miss = Miss::kNone;
        return index_->FindLocation(shard, hash, candidate);  // there: checked under the lock
      case Resolution::kGone:
        gone = why;
        break;
      case Resolution::kNoRoom:  // still there, not to be read again by this lookup
        other_keys.push_back(candidate);
        gone = why;
        break;
      case Resolution::kPromoted:
      case Resolution::kRetry:
        break;
    }
    // The lock was released: find again, in memory first.
    candidate = kNoLocation;
    uint64_t* slot = index_->Find(shard, hash, [&](uint64_t location) {
      const char* p = ItemAt(location);
      if (p == nullptr) {
        if (candidate == kNoLocation &&
            std::find(other_keys.begin(), other_keys.end(), location) == other_keys.end()) {
          candidate = location;
        }
        return false;
      }
      mem::ItemView v = mem::DecodeItem(p);
      if (v.key != key || KeyspaceOf(location) != ks.id) return false;
      *item = v;
      return true;
    });
    if (slot != nullptr) return LiveOrDrop(shard, counters, slot, now, item, miss);
    if (candidate == kNoLocation) {
      if (miss != nullptr) *miss = gone;
      return nullptr;
    }
  }
}

Engine::Resolution Engine::ResolveOnFile(index::Shard& shard, ShardCounters& c, uint64_t hash,
                                         Keyspace ks, std::string_view key, uint64_t location,
                                         int64_t now, Miss* why, bool promote,
                                         mem::ItemView* item) {
  const uint32_t id = SegmentOf(location);
  mem::SegmentMeta& fm = pool_->meta(id);
  const uint64_t* found = index_->FindLocation(shard, hash, location);
  CINCH_CHECK(found != nullptr);
  const bool exposed = index::SlotCasExposed(*found);
  const uint32_t tag = index::SlotTag(*found);
  // The pin keeps the file segment from being freed and written again while it is read.
  fm.pins.fetch_add(1, std::memory_order_acq_rel);
  shard.lock.unlock();
  std::string buf;
  mem::ItemView v;
  auto finish = [&](Resolution r) {
    fm.pins.fetch_sub(1, std::memory_order_release);
    return r;
  };
  // A failed or short read, or bytes whose key is not of the slot's tag (the file was changed
  // behind the store): the segment's items are lost, not the process.
  if (!ReadFileItem(location, &buf, &v) ||
      index::TagOf(HashKey(v.key, fm.keyspace.load(std::memory_order_relaxed))) != tag) {
    FailFileSegment(id);
    shard.lock.lock();
    return finish(Resolution::kUnreadable);
  }
  if (v.key != key || fm.keyspace.load(std::memory_order_relaxed) != ks.id) {
    shard.lock.lock();
    return finish(Resolution::kOtherKey);
  }
  if (IsStale(location, v, now)) {
    shard.lock.lock();
    if (uint64_t* slot = index_->FindLocation(shard, hash, location)) {
      bool expired = v.meta.expiry != 0 && v.meta.expiry <= now;
      (expired ? expirations_ : flushed_items_).fetch_add(1, std::memory_order_relaxed);
      *why = expired ? Miss::kExpired : Miss::kFlushed;
      Unlink(shard, c, slot, v);
    }
    return finish(Resolution::kGone);
  }
  if (!promote) {
    // The caller decides on it, drops or replaces it: no copy in memory. Its view lives in a
    // buffer of this thread until the thread's next lookup of an item on file.
    thread_local std::string kept;
    shard.lock.lock();
    if (index_->FindLocation(shard, hash, location) == nullptr) return finish(Resolution::kRetry);
    kept.swap(buf);
    *item = mem::DecodeItem(kept.data());
    return finish(Resolution::kFound);
  }
  // Promotion: a copy in a cleaner head (the main FIFO: it was read again), made as the
  // cleaner moves an item (the CAS value written down if a client has seen it).
  mem::ItemMeta meta = v.meta;
  meta.cas = exposed ? CasOf(location, v) : 0;
  const size_t header = mem::ItemHeaderSize(v.key.size(), v.value.size(), meta);
  const size_t size = header + v.key.size() + v.value.size();
  KeyspaceState& state = *FindKeyspace(ks.id);  // exists: its item is stored
  const int head = CleanerHead(ExpiryClass(meta.expiry, now));
  Deadline deadline = SpaceDeadline();
  Reservation r;
  // A jumbo item (demoted from its own mapping) comes back into a mapping of its own.
  const bool jumbo = size > jumbo_threshold_;
  auto reserve = [&] {
    return jumbo ? ReserveJumbo(ks.id, size, &r, /*precharged=*/false)
                 : ReserveInHead(state, ks.id, head, size, &r, /*as_writer=*/true);
  };
  bool reserved = reserve();
  // Bounded by the deadline even with eviction on (unlike a write): the caller may hold a
  // reservation of its own (Publish), and a store whose RAM is all open heads and pending
  // writes would otherwise make room forever without this copy finding any.
  while (!reserved && ReclaimSpace(jumbo ? mem::RoundUpToPage(size) : 0, deadline)) {
    reserved = reserve();
    if (!reserved && deadline.Passed()) break;
  }
  // Last resort before dropping the item: the cleaner's reserve (a pass gives it back).
  if (!reserved && !jumbo) reserved = ReserveInHead(state, ks.id, head, size, &r);
  if (!reserved) {
    // No memory to bring it back: it stays on file, where it is safe, and this lookup fails
    // for want of memory (memcached answers such a get with an out-of-memory error too).
    tier_read_oom_.fetch_add(1, std::memory_order_relaxed);
    *why = Miss::kNoMemory;
    shard.lock.lock();
    return finish(Resolution::kNoRoom);
  }
  NoteExpiry(r.segment, meta.expiry);
  mem::EncodeItemHeader(r.data, v.key.size(), v.value.size(), meta);
  std::memcpy(r.data + header, v.key.data(), v.key.size());
  std::memcpy(r.data + header + v.key.size(), v.value.data(), v.value.size());
  shard.lock.lock();
  Resolution result = Resolution::kRetry;
  uint64_t* slot = index_->FindLocation(shard, hash, location);
  // The copy must be of the item's flush generation (a flush_all since: the item is stale, the
  // next resolution drops it) and carry its CAS value if a client saw it meanwhile.
  const bool same_gen = pool_->meta(r.segment).flush_gen.load(std::memory_order_relaxed) ==
                        fm.flush_gen.load(std::memory_order_relaxed);
  if (slot != nullptr && same_gen && (meta.cas != 0 || !index::SlotCasExposed(*slot))) {
    const uint64_t to = Location(r.segment, r.offset);
    MoveLive(location, v.size, v.header_size, to, size, header, c);
    *slot = index::WithLocation(*slot, to);
    tier_promotions_.fetch_add(1, std::memory_order_relaxed);
    result = Resolution::kPromoted;
  }
  FinishReservation(r);  // a copy not published is dead bytes, reclaimed with its segment
  return finish(result);
}

bool Engine::InFileTier(Keyspace ks, std::string_view key) const {
  if (!HasTier() || key.empty() || key.size() > Store::kMaxKeyLength) return false;
  const uint64_t hash = HashKey(key, ks.id);
  index::Shard& shard = index_->ShardFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  bool on_file = false;
  const uint64_t* slot = index_->Find(shard, hash, [&](uint64_t location) {
    const char* p = ItemAt(location);
    if (p == nullptr) {
      on_file = true;
      return false;
    }
    return mem::DecodeItem(p, /*read_meta=*/false).key == key && KeyspaceOf(location) == ks.id;
  });
  return slot == nullptr && on_file;
}

void Engine::Promote(Keyspace ks, std::string_view key) {
  if (!HasTier() || key.empty() || key.size() > Store::kMaxKeyLength) return;
  const int64_t now = Now();
  MaybeFlushDue(now);
  const uint64_t hash = HashKey(key, ks.id);
  index::Shard& shard = index_->ShardFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  mem::ItemView item;
  FindLive(shard, CountersFor(hash), hash, ks, key, now, &item);
}

uint64_t Engine::MoveOffFile(uint64_t* slot, const mem::ItemView& item, ShardCounters& c,
                             mem::ItemView* moved) {
  const uint64_t location = index::SlotLocation(*slot);
  Evacuation ev;
  if (Relocate(slot, item, location, /*evict=*/false, Now(), c, ev) != MoveResult::kMoved) {
    return location;  // no room: it stays as it is (a flushed copy: the next lookup drops it)
  }
  const uint64_t to = index::SlotLocation(*slot);
  *moved = mem::DecodeItem(ItemAt(to));
  return to;
}

// --- demotion ---

void Engine::QuiescenceBarrier() {
  for (uint32_t i = 0; i < index_->shard_count(); ++i) {
    index::Shard& shard = index_->shard(i);
    shard.lock.lock();
    shard.lock.unlock();
  }
}

bool Engine::Demote(uint32_t segment, uint32_t file) {
  mem::SegmentMeta& s = pool_->meta(segment);
  mem::SegmentMeta& f = pool_->meta(file);
  const uint32_t end = s.write_offset.load(std::memory_order_acquire);
  const uint16_t ks = s.keyspace.load(std::memory_order_relaxed);
  // The file segment takes over the facts lookups read about an item's segment: the same
  // open_seq and offsets give the same derived CAS values.
  f.keyspace.store(ks, std::memory_order_relaxed);
  f.open_seq.store(s.open_seq.load(std::memory_order_relaxed), std::memory_order_relaxed);
  f.flush_gen.store(s.flush_gen.load(std::memory_order_relaxed), std::memory_order_relaxed);
  f.max_expiry.store(s.max_expiry.load(std::memory_order_relaxed), std::memory_order_relaxed);
  f.write_time.store(s.write_time.load(std::memory_order_relaxed), std::memory_order_relaxed);
  f.head.store(s.head.load(std::memory_order_relaxed), std::memory_order_relaxed);
  f.write_offset.store(end, std::memory_order_relaxed);
  f.state.store(mem::SegState::kCleaning, std::memory_order_release);
  file_state_[file - pool_->file_first()].lost.store(false, std::memory_order_relaxed);
  file_state_[file - pool_->file_first()].jumbo.store(pool_->IsJumbo(segment),
                                                      std::memory_order_relaxed);
  pool_->SetFileBacking(file, segment);
  pool_->SetFileMemory(file, s.base);
  // 1. Repoint every live item (under its shard lock) from the RAM segment to the file
  // segment, still backed by the same bytes. From here on nobody changes them in place.
  auto walk = [&](auto&& visit) {
    for (uint32_t offset = 0; offset < end;) {
      mem::ItemView item = mem::DecodeItem(s.base + offset, /*read_meta=*/false);
      const uint64_t hash = HashKey(item.key, ks);
      index::Shard& shard = index_->ShardFor(hash);
      std::lock_guard<SpinLock> lock(shard.lock);
      visit(shard, CountersFor(hash), hash, offset, item);
      offset += static_cast<uint32_t>(item.size);
    }
  };
  walk([&](index::Shard& shard, ShardCounters& c, uint64_t hash, uint32_t offset,
           const mem::ItemView& item) {
    const uint64_t from = Location(segment, offset);
    if (uint64_t* slot = index_->FindLocation(shard, hash, from)) {
      const uint64_t to = Location(file, offset);
      MoveLive(from, item.size, item.header_size, to, item.size, item.header_size, c);
      *slot = index::WithLocation(*slot, to);
    }
  });
  // 2. Write the frozen bytes, no copy. The writer short of memory that runs this waits for
  // it: that is the backpressure of a client writing faster than the file takes.
  int fd;
  uint64_t position;
  FilePosition(file, &fd, &position);
  const bool written = PwriteAll(fd, s.base, end, position);
  if (written) {
    tier_writes_.fetch_add(1, std::memory_order_relaxed);
    tier_write_bytes_.fetch_add(end, std::memory_order_relaxed);
  } else {
    // Nothing reliable on file (a full disk, an I/O error): drop the items, as eviction would.
    walk([&](index::Shard& shard, ShardCounters& c, uint64_t hash, uint32_t offset,
             const mem::ItemView&) {
      if (uint64_t* slot = index_->FindLocation(shard, hash, Location(file, offset))) {
        Unlink(shard, c, slot, mem::DecodeItem(s.base + offset));
        CountEviction(KeyspaceOf(Location(file, offset)));
        tier_evictions_.fetch_add(1, std::memory_order_relaxed);
        tier_io_errors_.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  // 3. Withdraw the RAM backing: lookups from now on read the file. The barrier waits out
  // every critical section that may have seen the backing (and pinned the RAM segment through
  // PinsOf before unlocking); the RAM segment then drains its pins as usual.
  pool_->SetFileMemory(file, nullptr);
  QuiescenceBarrier();
  pool_->SetFileBacking(file, mem::kNoSegment);
  // 4. Only now can the file segment be cleaned (claimed, emptied, freed and taken by another
  // demotion): sealed any earlier, a segment emptied meanwhile (its items all read back, or
  // compacted when the files are full) could be demoted into again during the barrier, and the
  // line above would then withdraw the new demotion's backing, whose readers would pin the
  // file segment instead of the RAM segment whose bytes they read.
  if (written) {
    f.state.store(mem::SegState::kSealed, std::memory_order_release);
  } else {
    DrainOrFree(file);
  }
  return written;
}

// --- file segments: freeing, compaction, eviction ---

uint32_t Engine::TakeFileSegment(uint32_t demoted, int64_t now) {
  uint32_t file = pool_->AllocateFile();
  if (file != mem::kNoSegment) return file;
  std::lock_guard<std::mutex> lock(tier_mu_);
  const int64_t demoted_live = pool_->meta(demoted).live_bytes.load(std::memory_order_relaxed);
  for (int attempt = 0; attempt < kFileAttempts; ++attempt) {
    FreeDrained();  // file segments freed earlier whose readers have let go
    file = pool_->AllocateFile();
    if (file != mem::kNoSegment) return file;
    FileClean how;
    uint32_t victim = PickFileVictim(now, demoted_live, &how);
    if (victim == mem::kNoSegment) return mem::kNoSegment;
    if (!Claim(victim)) continue;
    EmptyFileSegment(victim, how, now);
  }
  return pool_->AllocateFile();
}

uint32_t Engine::PickFileVictim(int64_t now, int64_t demoted_live, FileClean* how) const {
  const uint32_t end = pool_->file_high_water();
  uint32_t emptiest = mem::kNoSegment, oldest = mem::kNoSegment;
  int64_t emptiest_live = 0;
  uint64_t oldest_seq = 0;
  for (uint32_t id = pool_->file_first(); id < end; ++id) {
    const mem::SegmentMeta& m = pool_->meta(id);
    if (m.state.load(std::memory_order_acquire) != mem::SegState::kSealed) continue;
    if (m.live_items.load(std::memory_order_acquire) == 0) {
      *how = FileClean::kEmpty;
      return id;
    }
    if (AllStale(m, now)) {
      *how = FileClean::kDrop;
      return id;
    }
    int64_t live = m.live_bytes.load(std::memory_order_relaxed);
    // A jumbo item compacted would come back into a mapping of its own, then go to a file
    // segment of its own again: nothing gained.
    const bool jumbo = file_state_[id - pool_->file_first()].jumbo.load(std::memory_order_relaxed);
    if (!jumbo && (emptiest == mem::kNoSegment || live < emptiest_live)) {
      emptiest = id;
      emptiest_live = live;
    }
    // Oldest by the opening of the RAM segment it was written from: segments of the main FIFO
    // (items read again) are younger than those of the small FIFO demoted at the same time.
    uint64_t seq = m.open_seq.load(std::memory_order_relaxed);
    if (oldest == mem::kNoSegment || seq < oldest_seq) {
      oldest = id;
      oldest_seq = seq;
    }
  }
  // A compaction bringing back as many live bytes as the demotion writes out makes no room in
  // memory: near the least limit, with both tiers full, a head sealed for room would be
  // demoted, compacted back into a new head, sealed and demoted again, forever (a writer with
  // eviction on waits for as long as room is being made).
  if (emptiest != mem::kNoSegment && emptiest_live < demoted_live &&
      emptiest_live <= kFileCompactMaxLive * static_cast<double>(pool_->segment_size())) {
    *how = FileClean::kCompact;
    return emptiest;
  }
  if (!options_.eviction) return mem::kNoSegment;
  *how = FileClean::kEvict;
  return oldest;
}

void Engine::EmptyFileSegment(uint32_t id, FileClean how, int64_t now) {
  mem::SegmentMeta& m = pool_->meta(id);
  const uint32_t end = m.write_offset.load(std::memory_order_acquire);
  const uint16_t ks = m.keyspace.load(std::memory_order_relaxed);
  int fd;
  uint64_t position;
  FilePosition(id, &fd, &position);
  char* buf = tier_scratch_.get();
  uint32_t window = 0, window_end = 0;  // the segment's bytes [window, window_end) are in buf
  auto load = [&](uint32_t offset) {
    const size_t n = std::min<size_t>(tier_scratch_bytes_, end - offset);
    if (!PreadAll(fd, buf, n, position + offset)) return false;
    tier_reads_.fetch_add(1, std::memory_order_relaxed);
    tier_read_bytes_.fetch_add(n, std::memory_order_relaxed);
    window = offset;
    window_end = static_cast<uint32_t>(offset + n);
    std::memset(buf + n, 0, mem::kMaxItemHeader);  // a header cut short decodes no further
    return true;
  };
  // A failed or short read, or bytes that are not items (the file was changed behind the
  // store): what is left of its items is lost.
  bool lost = false;
  bool kept = false;  // with eviction off, a compaction that found no room keeps the rest
  for (uint32_t offset = 0; how != FileClean::kEmpty && offset < end;) {
    if (offset < window || offset + std::min<size_t>(kFirstRead, end - offset) > window_end) {
      if (!load(offset)) {
        lost = true;
        break;
      }
    }
    if (!mem::MayStartItem(buf + (offset - window))) {
      lost = true;
      break;
    }
    mem::ItemView item = mem::DecodeItem(buf + (offset - window));
    if (item.size > end - offset) {
      lost = true;
      break;
    }
    std::string jumbo;  // a jumbo item (alone in its file segment) is larger than the buffer
    if (item.size > tier_scratch_bytes_) {
      if (!ReadFileItem(Location(id, offset), &jumbo, &item)) {
        lost = true;
        break;
      }
    } else if (offset + item.size > window_end) {
      if (!load(offset)) {
        lost = true;
        break;
      }
      item = mem::DecodeItem(buf);
    }
    const uint64_t location = Location(id, offset);
    const uint64_t hash = HashKey(item.key, ks);
    index::Shard& shard = index_->ShardFor(hash);
    ShardCounters& c = CountersFor(hash);
    {
      std::lock_guard<SpinLock> lock(shard.lock);
      if (uint64_t* slot = index_->FindLocation(shard, hash, location)) {
        if (IsStale(location, item, now)) {
          bool expired = item.meta.expiry != 0 && item.meta.expiry <= now;
          (expired ? expirations_ : flushed_items_).fetch_add(1, std::memory_order_relaxed);
          Unlink(shard, c, slot, item);
        } else {
          MoveResult moved = MoveResult::kNoRoom;
          if (how == FileClean::kCompact) {
            Evacuation ev;
            moved = Relocate(slot, item, location, /*evict=*/false, now, c, ev);
          }
          if (moved == MoveResult::kFlushed) {
            flushed_items_.fetch_add(1, std::memory_order_relaxed);
            Unlink(shard, c, slot, item);
          } else if (moved == MoveResult::kNoRoom && !options_.eviction) {
            kept = true;
            break;  // this item and the rest stay where they are
          } else if (moved == MoveResult::kNoRoom) {
            Unlink(shard, c, slot, item);
            CountEviction(ks);
            tier_evictions_.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
    }
    offset += static_cast<uint32_t>(item.size);
  }
  if (lost || file_state_[id - pool_->file_first()].lost.load(std::memory_order_acquire)) {
    DropLostFileSegment(id);
    return;
  }
  if (kept) {
    m.state.store(mem::SegState::kSealed, std::memory_order_release);  // claimable again
    return;
  }
  if (how == FileClean::kCompact) tier_compactions_.fetch_add(1, std::memory_order_relaxed);
  CINCH_CHECK(m.live_items.load(std::memory_order_acquire) == 0);
  DrainOrFree(id);  // readers reading it (pinned) keep it until they are done
}

void Engine::FreeStaleFileSegments(int64_t now) {
  if (!HasTier()) return;
  std::unique_lock<std::mutex> lock(tier_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // a demotion is freeing file segments: next pass
  const uint32_t end = pool_->file_high_water();
  for (uint32_t id = pool_->file_first(); id < end; ++id) {
    const mem::SegmentMeta& m = pool_->meta(id);
    if (m.state.load(std::memory_order_acquire) != mem::SegState::kSealed) continue;
    const bool empty = m.live_items.load(std::memory_order_acquire) == 0;
    if (file_state_[id - pool_->file_first()].lost.load(std::memory_order_acquire)) {
      if (Claim(id)) DropLostFileSegment(id);  // a read failed where it could not be dropped
    } else if ((empty || AllStale(m, now)) && Claim(id)) {
      EmptyFileSegment(id, empty ? FileClean::kEmpty : FileClean::kDrop, now);
    }
  }
}

void Engine::TierStats(StoreStats* s) const {
  if (!HasTier()) return;
  s->tier_capacity_bytes = uint64_t{pool_->file_count()} * pool_->segment_size();
  s->tier_used_bytes = uint64_t{pool_->files_in_use()} * pool_->segment_size();
  const uint32_t end = pool_->file_high_water();
  for (uint32_t id = pool_->file_first(); id < end; ++id) {
    const mem::SegmentMeta& m = pool_->meta(id);
    s->tier_items += m.live_items.load(std::memory_order_relaxed);
    s->tier_item_bytes +=
        static_cast<uint64_t>(std::max<int64_t>(m.live_bytes.load(std::memory_order_relaxed), 0));
  }
  s->tier_reads = tier_reads_.load(std::memory_order_relaxed);
  s->tier_read_bytes = tier_read_bytes_.load(std::memory_order_relaxed);
  s->tier_writes = tier_writes_.load(std::memory_order_relaxed);
  s->tier_write_bytes = tier_write_bytes_.load(std::memory_order_relaxed);
  s->tier_promotions = tier_promotions_.load(std::memory_order_relaxed);
  s->tier_compactions = tier_compactions_.load(std::memory_order_relaxed);
  s->tier_evictions = tier_evictions_.load(std::memory_order_relaxed);
  s->tier_io_errors = tier_io_errors_.load(std::memory_order_relaxed);
  s->tier_read_oom = tier_read_oom_.load(std::memory_order_relaxed);
  s->tier_unmarked_reads = tier_unmarked_reads_.load(std::memory_order_relaxed);
}

}  // namespace cinch::store
