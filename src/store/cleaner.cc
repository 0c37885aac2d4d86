// Engine: the cleaner. It frees whole segments, in this order of preference:
//   1. segments with no live item (freed without copying);
//   2. segments whose every item has expired, or that were written before a flush_all (whose
//      caller only starts a new generation: the cleaner drops the flushed items);
//   3. sparse segments (live <= 50 %) even when memory is not short, once under 60 % of the
//      bytes in segments is live, so resident memory follows the live data down;
//   4. when memory is short, the sealed segment with the fewest live bytes if it is at most
//      Options::compact_max_live full: its live items move to a cleaner head (compaction);
//   5. otherwise, with eviction on, the oldest segment: items read since they were written or
//      last moved get a second chance and move (their frequency drops by one), up to half a
//      segment; the rest are evicted (merge eviction in the spirit of Segcache, FIFO with
//      reinsertion as in S3-FIFO).
// A freed segment whose bytes an ItemRef still pins waits in draining_ and is retried on every
// pass; the cleaner never waits for a reader. Writers short of memory clean segments of their
// own beside a pass (ReclaimInline, engine_write.cc): every segment is claimed first (Claim),
// so each has one cleaner. See docs/cleaner.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <tuple>
#include <utility>

#include "common/check.h"
#include "common/hash.h"
#include "store/engine.h"

namespace cinch::store {

namespace {

// Give-back compaction (without memory pressure) starts when less than kGiveBackStoreLive of the
// bytes in regular segments is live, and takes segments at most kGiveBackMaxLive live. Waiting
// for garbage to pile up makes cleaning cheaper: the emptiest segments empty further meanwhile.
constexpr double kGiveBackStoreLive = 0.6;
constexpr double kGiveBackMaxLive = 0.5;
constexpr int kMaxEvacuationsPerPass = 256;
constexpr int kItemsBetweenYields = 256;
// An open segment nobody has published into for this long is sealed when memory is short.
constexpr int64_t kIdleSealSeconds = 2;
// Keyspaces with a single compactable segment whose cleaner heads a pick looks up
// (PickGainfulCompaction) before it gives up compacting.
constexpr int kMaxHeadLookups = 4;
// Heads sealed at once when nothing else is left to clean: at least this share of the open ones.
constexpr size_t kRoomSealShare = 16;

}  // namespace

void Engine::CleanerThread() {
  bool again = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(wake_mu_);
      if (!again) {
        wake_cv_.wait_for(lock, std::chrono::milliseconds(options_.cleaner_interval_ms),
                          [this] { return stop_ || wake_; });
      }
      if (stop_) return;
      wake_ = false;
    }
    std::lock_guard<std::mutex> lock(cleaner_mu_);
    // A lowered limit (SetMemoryLimit): the next pass at once while the store holds more than
    // the limit and passes bring the total down, rather than kMaxEvacuationsPerPass per
    // interval. A pass that only moves items about (eviction off) waits as usual.
    const size_t before = accountant_.total();
    CleanerPass(0);
    again = OverLoweredLimit() && accountant_.total() < before;
  }
}

void Engine::RunCleanerOnce() {
  std::lock_guard<std::mutex> lock(cleaner_mu_);
  CleanerPass(0);
}

// REQUIRES: cleaner_mu_ held.
bool Engine::CleanerPass(size_t want_bytes) {
  int64_t now = Now();
  int64_t deadline = flush_deadline_.load(std::memory_order_relaxed);
  if (deadline != 0 && now >= deadline && flush_deadline_.compare_exchange_strong(deadline, 0)) {
    FlushNow();
  }
  RunDueKeyspaceFlushes(now);
  FreeDrained();
  bool freed = FreeEmptyAndExpired(now, want_bytes > 0 || NeedSpace(0));
  // With eviction off, a full store would repeat the same fruitless compaction for every
  // refused write: skip it until some live data has gone since it last freed nothing, or the
  // limit was raised since (SetMemoryLimit): the same live data may fit now.
  if (limit_raised_.exchange(false, std::memory_order_relaxed)) fruitless_live_bytes_ = UINT64_MAX;
  pool_->InUse(&in_use_);
  bool skip =
      !options_.eviction && want_bytes > 0 && StoreLiveBytes(in_use_) >= fruitless_live_bytes_;
  if (!skip) {
    const uint64_t room = WriterRoom();
    bool compacted = CompactOrEvict(want_bytes, now);
    // Compactions may free segments only as fast as they fill others (heads of several
    // keyspaces, each compaction's lost tail): a writer is then no better off, and a writer
    // that took it for progress would repeat the pass, moving the same items round and round
    // until its deadline, as many times as the machine's speed allows. Without eviction,
    // nothing else would make room: such a pass freed nothing.
    if (compacted && !options_.eviction && want_bytes > 0 && WriterRoom() <= room) {
      compacted = false;
    }
    freed |= compacted;
    bool fruitless = !options_.eviction && want_bytes > 0 && !compacted && NeedSpace(want_bytes);
    if (fruitless) pool_->InUse(&in_use_);
    fruitless_live_bytes_ = fruitless ? StoreLiveBytes(in_use_) : UINT64_MAX;
  }
  FreeDrained();
  // Memory is wanted for something other than a segment, or the store holds more than a
  // lowered limit: give back resident free ones.
  const bool wanted =
      want_bytes > 0 && accountant_.Available() < want_bytes + pool_->reserve_bytes();
  if ((wanted || OverLoweredLimit()) && pool_->TrimResident() > 0) NoteSpaceFreed();
  return freed || !NeedSpace(want_bytes);
}

uint64_t Engine::WriterRoom() const {
  return accountant_.Available() + uint64_t{pool_->FreeCapacity()} * pool_->segment_size();
}

bool Engine::NeedSpace(size_t want_bytes) const {
  if (pool_->FreeCapacity() < LowWater()) return true;
  if (want_bytes == 0) return false;
  size_t available =
      accountant_.Available() + size_t{pool_->resident_free()} * pool_->segment_size();
  return available < want_bytes + pool_->reserve_bytes() + pool_->segment_size();
}

// Every keyspace has heads of its own, so a keyspace that stops being written would keep its
// partly filled open segments, which no cleaner takes, for good. When memory is short, those
// not written to for kIdleSealSeconds are sealed: their unused tails are lost, and their items
// become cleanable. A head written to all along is not sealed (that would waste a tail per
// pass), nor is any head while memory is plentiful.
void Engine::SealIdleHeads(int64_t now, bool short_of_memory) {
  SealHeads([&](const mem::SegmentMeta& m) {
    if (m.writers.load(std::memory_order_acquire) != 0) return false;
    if (m.live_items.load(std::memory_order_acquire) == 0) return true;
    return short_of_memory &&
           int64_t{m.write_time.load(std::memory_order_relaxed)} + kIdleSealSeconds <= now;
  });
}

// More keyspaces being written than memory has room for their heads: nothing sealed is left to
// clean, and every head was written within kIdleSealSeconds. Busy heads are sealed, at least
// `count` and a share of those open, so that their items can be evicted (compaction would only
// move them into new segments of their keyspaces: HasSibling). Those holding the fewest
// live bytes go first (then the least recently written, then the oldest opened): each frees a
// segment, and these lose the fewest items for it. Keyspaces written round robin thus keep
// the heads that have filled up, and the newest heads (of the keyspaces memory has no room
// for) are the ones sealed and evicted, rather than every head in turn losing its items before
// the round comes back to it. A batch, because each call walks every keyspace's open heads.
size_t Engine::SealHeadsForRoom(size_t count) {
  struct Head {
    int64_t live_bytes;
    uint32_t write_time;
    uint64_t open_seq;
    const mem::SegmentMeta* meta;
  };
  std::vector<Head> open;
  SealHeads([&](const mem::SegmentMeta& m) {
    if (m.writers.load(std::memory_order_acquire) != 0 ||
        m.live_items.load(std::memory_order_acquire) == 0) {
      return false;
    }
    open.push_back({m.live_bytes.load(std::memory_order_relaxed),
                    m.write_time.load(std::memory_order_relaxed),
                    m.open_seq.load(std::memory_order_relaxed), &m});
    return false;
  });
  count = std::min(std::max(count, open.size() / kRoomSealShare), open.size());
  if (count == 0) return 0;
  auto first = [](const Head& a, const Head& b) {
    return std::tuple(a.live_bytes, a.write_time, a.open_seq) <
           std::tuple(b.live_bytes, b.write_time, b.open_seq);
  };
  std::nth_element(open.begin(), open.begin() + static_cast<ptrdiff_t>(count - 1), open.end(),
                   first);
  std::vector<const mem::SegmentMeta*> take;
  for (size_t i = 0; i < count; ++i) take.push_back(open[i].meta);
  std::sort(take.begin(), take.end());
  size_t sealed = 0;
  SealHeads([&](const mem::SegmentMeta& m) {
    const bool seal = std::binary_search(take.begin(), take.end(), &m) &&
                      m.writers.load(std::memory_order_acquire) == 0;
    sealed += seal ? 1 : 0;
    return seal;
  });
  return sealed;
}

bool Engine::FreeEmptyAndExpired(int64_t now, bool short_of_memory) {
  SealIdleHeads(now, short_of_memory);
  FreeStaleFileSegments(now);
  bool freed = false;
  pool_->InUse(&in_use_);
  for (uint32_t id : in_use_) {
    mem::SegmentMeta& m = pool_->meta(id);
    if (m.state.load(std::memory_order_acquire) != mem::SegState::kSealed ||
        m.writers.load(std::memory_order_acquire) != 0) {
      continue;
    }
    if (m.live_items.load(std::memory_order_acquire) == 0) {
      if (!Claim(id)) continue;
      DrainOrFree(id);
      freed = true;
      continue;
    }
    if (AllStale(m, now) && Claim(id)) freed |= Evacuate(id, false, now);
  }
  return freed;
}

bool Engine::AllStale(const mem::SegmentMeta& m, int64_t now) const {
  if (!IsCurrent(m)) return true;
  uint32_t max_expiry = m.max_expiry.load(std::memory_order_relaxed);
  return max_expiry != mem::kNeverExpires && max_expiry != 0 && max_expiry <= now;
}

uint32_t Engine::PickStaleSegment(const std::vector<uint32_t>& ids, int64_t now) const {
  for (uint32_t id : ids) {
    const mem::SegmentMeta& m = pool_->meta(id);
    if (m.state.load(std::memory_order_acquire) == mem::SegState::kSealed &&
        m.writers.load(std::memory_order_acquire) == 0 && AllStale(m, now)) {
      return id;
    }
  }
  return mem::kNoSegment;
}

uint32_t Engine::PickCompactionVictim(const std::vector<uint32_t>& ids, double max_live,
                                      const std::vector<uint16_t>* no_room) const {
  uint32_t best = EmptiestSealed(ids, max_live, no_room);
  // Without eviction a compaction when memory is short is the only way to make room; give-back
  // compaction (at most kGiveBackMaxLive live) is optional either way.
  const bool must_gain = options_.eviction || max_live <= kGiveBackMaxLive;
  if (best == mem::kNoSegment || !must_gain || HasSibling(best, ids, max_live)) {
    return best;
  }
  return PickGainfulCompaction(ids, max_live, no_room);
}

uint32_t Engine::EmptiestSealed(const std::vector<uint32_t>& ids, double max_live,
                                const std::vector<uint16_t>* skip) const {
  uint32_t best = mem::kNoSegment;
  int64_t best_live = 0;
  for (uint32_t id : ids) {
    if (!Compactable(id, max_live, skip)) continue;
    int64_t live = pool_->meta(id).live_bytes.load(std::memory_order_relaxed);
    if (best == mem::kNoSegment || live < best_live) {
      best = id;
      best_live = live;
    }
  }
  return best;
}

bool Engine::Compactable(uint32_t id, double max_live, const std::vector<uint16_t>* skip) const {
  const mem::SegmentMeta& m = pool_->meta(id);
  if (pool_->IsJumbo(id) || m.state.load(std::memory_order_acquire) != mem::SegState::kSealed ||
      m.writers.load(std::memory_order_acquire) != 0) {
    return false;
  }
  if (skip != nullptr && std::find(skip->begin(), skip->end(),
                                   m.keyspace.load(std::memory_order_relaxed)) != skip->end()) {
    return false;
  }
  return m.live_bytes.load(std::memory_order_relaxed) <= max_live * static_cast<double>(m.capacity);
}

// A compaction moves the victim's items into its keyspace's cleaner heads. If the keyspace has
// another compactable segment, or an open cleaner head, the cleaner segment the move fills or
// opens will be filled further by later moves (the usual case: one keyspace, many segments).
// Otherwise (every other segment of the keyspace is an open writer head: more keyspaces being
// written than memory has room for their heads, each sealed in turn by SealHeadsForRoom, or a
// quiet keyspace's heads sealed idle) it trades the victim for a new segment of the same
// keyspace holding the same items, which is then sealed in its turn: nothing is gained, and
// the next pass would do it again. Such a victim is evicted instead, and give-back compaction
// passes over it. Without eviction, when memory is short, the trade is kept: compaction is the
// only way to make room.
bool Engine::HasSibling(uint32_t victim, const std::vector<uint32_t>& ids, double max_live) const {
  const uint16_t ks = pool_->meta(victim).keyspace.load(std::memory_order_relaxed);
  for (uint32_t id : ids) {
    if (id != victim && pool_->meta(id).keyspace.load(std::memory_order_relaxed) == ks &&
        Compactable(id, max_live, nullptr)) {
      return true;
    }
  }
  return false;
}

// The emptiest compactable segment whose compaction frees memory: of a keyspace with another
// compactable segment or an open cleaner head (looked up for the emptiest few only: it takes
// the heads' locks). O(n log n) in the candidates; run only when the emptiest segment of all
// is its keyspace's only one (many keyspaces, few segments).
uint32_t Engine::PickGainfulCompaction(const std::vector<uint32_t>& ids, double max_live,
                                       const std::vector<uint16_t>* skip) const {
  struct Candidate {
    uint16_t ks;
    int64_t live;
    uint32_t id;
  };
  std::vector<Candidate> c;
  for (uint32_t id : ids) {
    if (!Compactable(id, max_live, skip)) continue;
    const mem::SegmentMeta& m = pool_->meta(id);
    c.push_back({m.keyspace.load(std::memory_order_relaxed),
                 m.live_bytes.load(std::memory_order_relaxed), id});
  }
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    return std::pair(a.ks, a.live) < std::pair(b.ks, b.live);
  });
  // Each keyspace's emptiest, and whether it has company.
  std::vector<std::pair<Candidate, bool>> firsts;
  for (size_t i = 0; i < c.size(); ++i) {
    if (i > 0 && c[i].ks == c[i - 1].ks) {
      firsts.back().second = true;
      continue;
    }
    firsts.push_back({c[i], false});
  }
  std::sort(firsts.begin(), firsts.end(),
            [](const auto& a, const auto& b) { return a.first.live < b.first.live; });
  int head_lookups = 0;
  for (const auto& [candidate, company] : firsts) {
    if (company) return candidate.id;
    if (head_lookups++ < kMaxHeadLookups && HasCleanerHead(candidate.ks)) return candidate.id;
  }
  return mem::kNoSegment;  // compaction frees nothing here: evict
}

bool Engine::HasCleanerHead(uint16_t ks_id) const {
  KeyspaceState* ks = FindKeyspace(ks_id);
  if (ks == nullptr) return false;
  for (int cls = 0; cls < expiry_classes_; ++cls) {
    WriteHead& head = HeadOf(*ks, CleanerHead(cls));
    std::lock_guard<SpinLock> lock(head.lock);
    if (head.segment != mem::kNoSegment) return true;
  }
  return false;
}

uint64_t Engine::StoreLiveBytes(const std::vector<uint32_t>& ids) const {
  uint64_t live = 0;
  for (uint32_t id : ids) {
    live += static_cast<uint64_t>(pool_->meta(id).live_bytes.load(std::memory_order_relaxed));
  }
  return live;
}

double Engine::StoreLiveRatio(const std::vector<uint32_t>& ids) const {
  double live = 0, used = 0;
  for (uint32_t id : ids) {
    const mem::SegmentMeta& m = pool_->meta(id);
    mem::SegState state = m.state.load(std::memory_order_acquire);
    if (pool_->IsJumbo(id) || (state != mem::SegState::kOpen && state != mem::SegState::kSealed)) {
      continue;
    }
    live += static_cast<double>(m.live_bytes.load(std::memory_order_relaxed));
    used += static_cast<double>(m.capacity);
  }
  return used == 0 ? 1.0 : live / used;
}

// The oldest sealed segment of the "small" FIFO (filled by writers: new items) while it holds at
// least kSmallShare of the sealed segments, else of the "main" FIFO (items that earned a second
// chance). As in S3-FIFO, an item read once is dropped soon unless it is read again, while items
// read repeatedly live on in the main FIFO.
// With quotas (docs/keyspaces.md, "Quotas"): first from the keyspace furthest above its fair
// share, then from keyspaces without a quota, then from the quota'd keyspace fullest relative
// to its share; a keyspace under its share loses items only when no other has any to lose.
uint32_t Engine::PickEvictionVictim(const std::vector<uint32_t>& ids) const {
  if (quota_count_.load(std::memory_order_relaxed) != 0) {
    ShareChoice choice = ChooseByShare(ids);
    for (int ks : {choice.over, kWithoutQuota, choice.fullest}) {
      if (ks == kAnyKeyspace) continue;
      if (uint32_t victim = PickEvictionVictimOf(ids, ks); victim != mem::kNoSegment) {
        return victim;
      }
    }
  }
  return PickEvictionVictimOf(ids, kAnyKeyspace);
}

uint32_t Engine::PickEvictionVictimOf(const std::vector<uint32_t>& ids, int ks_id) const {
  constexpr double kSmallShare = 0.1;
  uint32_t oldest[2] = {mem::kNoSegment, mem::kNoSegment};
  uint64_t oldest_seq[2] = {0, 0};
  uint32_t count[2] = {0, 0};
  for (uint32_t id : ids) {
    const mem::SegmentMeta& m = pool_->meta(id);
    if (m.state.load(std::memory_order_acquire) != mem::SegState::kSealed ||
        m.writers.load(std::memory_order_acquire) != 0 ||
        !InKeyspaces(m.keyspace.load(std::memory_order_relaxed), ks_id)) {
      continue;
    }
    int fifo = !pool_->IsJumbo(id) && IsMainHead(m.head.load(std::memory_order_relaxed)) ? 1 : 0;
    ++count[fifo];
    uint64_t seq = m.open_seq.load(std::memory_order_relaxed);
    if (oldest[fifo] == mem::kNoSegment || seq < oldest_seq[fifo]) {
      oldest[fifo] = id;
      oldest_seq[fifo] = seq;
    }
  }
  bool small = oldest[1] == mem::kNoSegment ||
               (oldest[0] != mem::kNoSegment && count[0] >= kSmallShare * (count[0] + count[1]));
  return oldest[small ? 0 : 1];
}

bool Engine::CompactOrEvict(size_t want_bytes, int64_t now) {
  // Compaction frees a segment but fills part of another. When segments are nearly full (or
  // their tails are wasted) compaction can free nothing on balance. Over a window long enough
  // to gain one segment at compact_max_live, the bytes freed by compaction must exceed those
  // it filled in cleaner segments (items moved, tails left unused); otherwise the pass stops
  // compacting and evicts (or, with eviction off, gives up: the store is full).
  const int window = CompactionWindow();
  const double max_live = options_.compact_max_live;
  bool freed = false;
  bool compaction_pays = true;
  int compactions = 0;
  int64_t window_gain = 0;  // bytes freed by compaction less the bytes it filled
  // Keyspaces whose items found no room to move (eviction off, or a file tier): a keyspace
  // moves items only into its own cleaner heads, and another keyspace's open cleaner segments
  // may hold the free memory there is; compacting other keyspaces (into their heads' room)
  // frees segments. Give-back compaction skips them too: a victim left as it was would be
  // picked again and again, to the end of the pass, over a lowered limit.
  std::vector<uint16_t> no_room;
  bool sealed_busy = false;
  size_t busy_to_evict = 0;  // heads SealHeadsForRoom sealed, not yet evicted
  for (int i = 0; i < kMaxEvacuationsPerPass; ++i) {
    pool_->InUse(&in_use_);  // the last evacuation freed one and may have opened others
    uint32_t victim = mem::kNoSegment;
    if (compaction_pays && want_bytes == 0 && StoreLiveRatio(in_use_) < kGiveBackStoreLive) {
      victim = PickCompactionVictim(in_use_, kGiveBackMaxLive, &no_room);
    }
    if (victim == mem::kNoSegment) {
      if (!NeedSpace(want_bytes) && busy_to_evict == 0) break;
      if (compaction_pays) victim = PickCompactionVictim(in_use_, max_live, &no_room);
      // Nothing gains from compaction; it will not until the next pass (evictions free
      // segments, they do not make others compactable).
      if (victim == mem::kNoSegment) compaction_pays = false;
    }
    bool evict = victim == mem::kNoSegment;
    // With a file tier, the victim's items go to a file segment rather than away (eviction
    // off: only then).
    uint32_t file = mem::kNoSegment;
    if (evict) {
      if (!options_.eviction && !HasTier()) break;
      victim = PickEvictionVictim(in_use_);
      if (victim == mem::kNoSegment && options_.eviction && !sealed_busy && OnlyHeads(in_use_)) {
        // Every segment is an open head: more keyspaces are being written than memory has
        // room for their heads (each written again within kIdleSealSeconds). A batch of them
        // is sealed and evicted at once, so the next writer short of memory does not walk
        // the heads again.
        sealed_busy = true;
        busy_to_evict = SealHeadsForRoom(RoomSealCount());
        if (busy_to_evict > 0) continue;
      }
      if (busy_to_evict > 0) --busy_to_evict;
      if (victim == mem::kNoSegment) break;
      if (HasTier() && Demotable(victim)) {
        file = TakeFileSegment(victim, now);
      }
      if (file == mem::kNoSegment && !options_.eviction) break;
    }
    if (!Claim(victim)) {  // a writer making room took it first
      if (file != mem::kNoSegment) pool_->Free(file);
      continue;
    }
    Evacuation ev;
    ev.file_segment = file;
    bool emptied = Evacuate(victim, evict, now, ev);
    freed |= emptied;
    if (evict) continue;  // a victim not emptied kept a jumbo item for a second chance
    if (!emptied) {       // no room to move items: try the other keyspaces
      no_room.push_back(pool_->meta(victim).keyspace.load(std::memory_order_relaxed));
      continue;
    }
    window_gain += ev.gain();
    if (++compactions % window == 0) {
      compaction_pays = window_gain > 0;
      window_gain = 0;
    }
  }
  return freed;
}

bool Engine::OnlyHeads(const std::vector<uint32_t>& ids) const {
  for (uint32_t id : ids) {
    if (!pool_->IsJumbo(id) &&
        pool_->meta(id).state.load(std::memory_order_acquire) != mem::SegState::kOpen) {
      return false;
    }
  }
  return true;
}

uint32_t Engine::LowWater() const {
  uint32_t reserve = static_cast<uint32_t>(pool_->reserve_bytes() / pool_->segment_size());
  // Keep one segment beyond the reserve for writers, a few more on large stores (as large as
  // the effective limit: SetMemoryLimit).
  return reserve + 1 + LimitSegments() / 128;
}

size_t Engine::RoomSealCount() const {
  uint32_t free = pool_->FreeCapacity();
  return free < LowWater() ? LowWater() - free : 1;
}

int Engine::CompactionWindow() const {
  return static_cast<int>(std::ceil(1 / (1 - options_.compact_max_live))) + 2;
}

bool Engine::Claim(uint32_t segment) {
  mem::SegmentMeta& m = pool_->meta(segment);
  mem::SegState sealed = mem::SegState::kSealed;
  if (!m.state.compare_exchange_strong(sealed, mem::SegState::kCleaning,
                                       std::memory_order_acq_rel)) {
    return false;
  }
  // Picked while sealed and idle, but it may have been freed, opened and sealed again since,
  // with reservations still being written: no new ones once sealed, so this check is final.
  if (m.writers.load(std::memory_order_acquire) != 0) {
    m.state.store(mem::SegState::kSealed, std::memory_order_release);
    return false;
  }
  return true;
}

// Moves or drops every live item of `segment`, then frees it. Returns false if the segment could
// not be emptied (no room to move an item, or a jumbo item kept for a second chance); it is then
// sealed again with whatever items are left.
bool Engine::Evacuate(uint32_t segment, bool evict, int64_t now, Evacuation& ev) {
  mem::SegmentMeta& m = pool_->meta(segment);
  CINCH_CHECK(m.state.load(std::memory_order_relaxed) == mem::SegState::kCleaning);
  ev.capacity = m.capacity;
  size_t keep_budget = evict ? m.capacity / 2 : SIZE_MAX;
  uint32_t end = m.write_offset.load(std::memory_order_acquire);
  int since_yield = 0;
  for (uint32_t offset = 0; offset < end;) {
    // A segment of small items is ~10,000 of them (a millisecond or two of work). Where the
    // cleaner shares a core with a worker, the worker's requests would wait for all of it; a
    // yield every few hundred items lets them through (and costs next to nothing elsewhere).
    if (ev.by == Cleaner::kPass && ++since_yield == kItemsBetweenYields) {
      since_yield = 0;
      std::this_thread::yield();
    }
    mem::ItemView item;
    if (!EvacuateItem(segment, offset, evict, ev, &keep_budget, now, &item)) {
      if (ev.file_segment != mem::kNoSegment) pool_->Free(ev.file_segment);
      m.state.store(mem::SegState::kSealed, std::memory_order_release);
      return false;
    }
    offset += static_cast<uint32_t>(item.size);
  }
  // With a file tier, what an eviction did not keep in RAM is written to the file.
  bool demoted = false;
  if (ev.file_segment != mem::kNoSegment) {
    if (m.live_items.load(std::memory_order_acquire) != 0) {
      demoted = Demote(segment, ev.file_segment);
    } else {
      pool_->Free(ev.file_segment);  // nothing left to write
    }
  }
  CINCH_CHECK(m.live_items.load(std::memory_order_acquire) == 0);
  if (!demoted) {
    (evict ? segments_evicted_ : segments_compacted_).fetch_add(1, std::memory_order_relaxed);
  }
  DrainOrFree(segment);
  return true;
}

bool Engine::EvacuateItem(uint32_t segment, uint32_t offset, bool evict, Evacuation& ev,
                          size_t* keep_budget, int64_t now, mem::ItemView* item) {
  mem::SegmentMeta& m = pool_->meta(segment);
  *item = mem::DecodeItem(m.base + offset, /*read_meta=*/false);
  uint64_t location = Location(segment, offset);
  uint16_t ks = m.keyspace.load(std::memory_order_relaxed);
  uint64_t hash = HashKey(item->key, ks);
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  std::lock_guard<SpinLock> lock(shard.lock);
  uint64_t* slot = index_->FindLocation(shard, hash, location);
  if (slot == nullptr) return true;          // overwritten or deleted: dead bytes
  *item = mem::DecodeItem(m.base + offset);  // the expiry may have been touched in place
  if (IsStale(location, *item, now)) {
    bool expired = item->meta.expiry != 0 && item->meta.expiry <= now;
    (expired ? expirations_ : flushed_items_).fetch_add(1, std::memory_order_relaxed);
    Unlink(shard, c, slot, *item);
    return true;
  }
  uint32_t freq = index::SlotFreq(*slot);
  if (evict && pool_->IsJumbo(segment) && freq > 0) {
    *slot = index::WithFreq(*slot, freq - 1);  // second chance in place: nothing to copy
    return false;
  }
  if (evict && (freq == 0 || item->size > *keep_budget)) {
    if (ev.file_segment != mem::kNoSegment) return true;  // stays: it goes to the file tier
    Unlink(shard, c, slot, *item);
    CountEviction(ks);
    return true;
  }
  switch (Relocate(slot, *item, location, evict, now, c, ev)) {
    case MoveResult::kMoved:
      if (evict) *keep_budget -= item->size;
      return true;
    case MoveResult::kFlushed:
      flushed_items_.fetch_add(1, std::memory_order_relaxed);
      Unlink(shard, c, slot, *item);
      return true;
    case MoveResult::kNoRoom:
      if (ev.file_segment != mem::kNoSegment) return true;  // goes to the file tier instead
      // A writer's compaction with no room stops: it evicts by policy instead. So does every
      // compaction with a file tier: the segment goes to the file (or is evicted) by policy.
      if (!options_.eviction || (!evict && (ev.by == Cleaner::kWriter || HasTier()))) {
        return false;
      }
      Unlink(shard, c, slot, *item);  // nowhere to move it: a cache may drop it
      CountEviction(ks);
      return true;
  }
  return true;
}

// REQUIRES: the shard lock of the item's key held.
Engine::MoveResult Engine::Relocate(uint64_t* slot, const mem::ItemView& item, uint64_t location,
                                    bool evict, int64_t now, ShardCounters& c, Evacuation& ev) {
  mem::ItemMeta meta = item.meta;
  bool exposed = index::SlotCasExposed(*slot);
  meta.cas = exposed ? CasOf(location, item) : 0;  // a CAS nobody has seen may change
  size_t header = mem::ItemHeaderSize(item.key.size(), item.value.size(), meta);
  size_t size = header + item.key.size() + item.value.size();
  // The copy goes to a segment of the item's own keyspace: a segment holds one keyspace.
  const uint16_t ks_id = KeyspaceOf(location);
  KeyspaceState& ks = *FindKeyspace(ks_id);
  Reservation r;
  bool jumbo = size > jumbo_threshold_;
  if (jumbo ? !ReserveJumbo(ks_id, size, &r, false)
            : !ReserveInHead(ks, ks_id, CleanerHead(ExpiryClass(meta.expiry, now)), size, &r)) {
    return MoveResult::kNoRoom;
  }
  ev.bytes_filled +=
      jumbo ? int64_t{pool_->meta(r.segment).capacity} : static_cast<int64_t>(size + r.sealed_tail);
  NoteExpiry(r.segment, meta.expiry);
  mem::EncodeItemHeader(r.data, item.key.size(), item.value.size(), meta);
  std::memcpy(r.data + header, item.key.data(), item.key.size());
  std::memcpy(r.data + header + item.key.size(), item.value.data(), item.value.size());
  // A flush_all that began after the caller found the item live (no evacuation excludes
  // flushes) may have opened the destination: the item belongs to the flushed generation and
  // must not move into the new one, where it would pass for an item written after the flush.
  if (pool_->meta(r.segment).flush_gen.load(std::memory_order_relaxed) !=
      pool_->meta(SegmentOf(location)).flush_gen.load(std::memory_order_relaxed)) {
    FinishReservation(r);  // a dead copy, reclaimed with its segment
    return MoveResult::kFlushed;
  }
  uint64_t new_location = Location(r.segment, r.offset);
  MoveLive(location, item.size, item.header_size, new_location, size, header, c);
  uint32_t freq = index::SlotFreq(*slot);
  *slot = index::WithLocation(evict ? index::WithFreq(*slot, freq - 1) : *slot, new_location);
  FinishReservation(r);
  relocated_items_.fetch_add(1, std::memory_order_relaxed);
  relocated_bytes_.fetch_add(size, std::memory_order_relaxed);
  return MoveResult::kMoved;
}

bool Engine::DrainOrFree(uint32_t segment) {
  mem::SegmentMeta& m = pool_->meta(segment);
  CINCH_CHECK(m.state.load(std::memory_order_relaxed) == mem::SegState::kCleaning);
  m.state.store(mem::SegState::kDraining, std::memory_order_release);
  if (m.pins.load(std::memory_order_acquire) != 0) {
    std::lock_guard<std::mutex> lock(drain_mu_);
    draining_.push_back(segment);
    return false;
  }
  pool_->Free(segment);
  NoteSpaceFreed();
  return true;
}

void Engine::FreeDrained() {
  auto free_unpinned = [this](uint32_t segment) {
    if (pool_->meta(segment).pins.load(std::memory_order_acquire) != 0) return false;  // keep
    pool_->Free(segment);
    NoteSpaceFreed();
    return true;  // freed: drop from the list
  };
  std::lock_guard<std::mutex> lock(drain_mu_);
  draining_.erase(std::remove_if(draining_.begin(), draining_.end(), free_unpinned),
                  draining_.end());
}

bool Engine::HasDraining() {
  std::lock_guard<std::mutex> lock(drain_mu_);
  return !draining_.empty();
}

}  // namespace cinch::store
