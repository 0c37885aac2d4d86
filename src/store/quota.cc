// Engine: keyspace quotas (Store::SetKeyspaceQuota) and the fair shares of an overcommitted
// store. See docs/keyspaces.md, "Quotas".
//
// A quota bounds what a keyspace's items take as stored (KeyspaceState::item_bytes) plus its
// pending streaming writes. A writer that would pass it evicts the keyspace's own oldest
// segment (S3-FIFO among its segments, as the store's eviction), never another keyspace's, and
// tries again. Memory the keyspace holds beyond its items (dead bytes, open tails) is the
// store's to reclaim: when the whole store must evict, it picks its victim first in the
// keyspace whose segments exceed its fair share the most (PickEvictionVictim).
#include <algorithm>
#include <thread>
#include <utility>

#include "store/engine.h"

namespace cinch::store {

void Engine::SetKeyspaceQuota(Keyspace ks, size_t bytes) {
  KeyspaceState* state = EnsureKeyspace(ks.id);
  {
    std::lock_guard<std::mutex> lock(keyspace_mu_);
    state->quota.store(bytes, std::memory_order_relaxed);
    auto it = std::find(quota_ids_.begin(), quota_ids_.end(), ks.id);
    if (bytes != 0 && it == quota_ids_.end()) quota_ids_.push_back(ks.id);
    if (bytes == 0 && it != quota_ids_.end()) quota_ids_.erase(it);
    quota_count_.store(static_cast<int>(quota_ids_.size()), std::memory_order_relaxed);
  }
  // A quota lowered below what the keyspace holds: down to it now, not at its next write.
  if (options_.eviction && OverQuota(*state, 0)) {
    Deadline deadline = SpaceDeadline();
    (void)FitQuota(*state, ks.id, 0, deadline);
  }
}

bool Engine::FitQuota(KeyspaceState& ks, uint16_t ks_id, int64_t growth, Deadline& deadline) {
  if (!OverQuota(ks, growth)) return true;
  if (growth > static_cast<int64_t>(ks.quota.load())) return false;
  if (!options_.eviction) return ReclaimStaleInQuota(ks, ks_id, growth);
  while (OverQuota(ks, growth)) {
    if (EvictFromKeyspace(ks_id, Now())) continue;
    // Nothing of the keyspace could be claimed now: its segments are being cleaned by another
    // thread, written by its other writers, or it holds only pending streaming writes.
    if (deadline.Passed()) return !OverQuota(ks, growth);
    std::this_thread::yield();
  }
  return true;
}

// Expired and flushed items count until a cleaner drops them. With eviction off, a keyspace at
// its quota compacts its own sealed segments, which drops them and keeps every live item. A
// compaction that freed nothing is not repeated within the same second unless the keyspace's
// items changed (expiry moves with the clock only).
bool Engine::ReclaimStaleInQuota(KeyspaceState& ks, uint16_t ks_id, int64_t growth) {
  const int64_t now = Now();
  const int64_t used = QuotaUsed(ks);
  if (ks.fruitless_at.load(std::memory_order_relaxed) == now &&
      used >= ks.fruitless_used.load(std::memory_order_relaxed)) {
    return false;
  }
  std::vector<uint32_t> ids;
  pool_->InUse(&ids);
  for (uint32_t id : ids) {
    if (!OverQuota(ks, growth)) return true;
    const mem::SegmentMeta& m = pool_->meta(id);
    if (m.keyspace.load(std::memory_order_relaxed) != ks_id || !Claim(id)) continue;
    Evacuation ev{Cleaner::kWriter};
    Evacuate(id, /*evict=*/false, now, ev);
  }
  if (!OverQuota(ks, growth)) return true;
  ks.fruitless_used.store(QuotaUsed(ks), std::memory_order_relaxed);
  ks.fruitless_at.store(now, std::memory_order_relaxed);
  return false;
}

bool Engine::EvictFromKeyspace(uint16_t ks_id, int64_t now) {
  std::vector<uint32_t> ids;
  pool_->InUse(&ids);
  uint32_t victim = PickEvictionVictimOf(ids, ks_id);
  if (victim == mem::kNoSegment) {
    // All its items are in open segments (a quota of a few segments): seal those no writer
    // is filling; their tails are lost, as when a head fills up.
    SealHeadsOf(*FindKeyspace(ks_id), [](const mem::SegmentMeta& m) {
      return m.writers.load(std::memory_order_acquire) == 0 &&
             m.live_items.load(std::memory_order_acquire) != 0;
    });
    victim = PickEvictionVictimOf(ids, ks_id);
  }
  if (victim == mem::kNoSegment || !Claim(victim)) return false;
  Evacuation ev{Cleaner::kWriter};
  Evacuate(victim, /*evict=*/true, now, ev);
  return true;
}

Engine::ShareChoice Engine::ChooseByShare(const std::vector<uint32_t>& ids) const {
  struct Held {
    uint16_t id;
    uint64_t quota;
    int64_t bytes = 0;
  };
  std::vector<Held> held;
  {
    std::lock_guard<std::mutex> lock(keyspace_mu_);
    for (uint16_t id : quota_ids_) {
      held.push_back(Held{id, FindKeyspace(id)->quota.load(std::memory_order_relaxed)});
    }
  }
  ShareChoice choice;
  if (held.empty()) return choice;
  std::sort(held.begin(), held.end(), [](const Held& a, const Held& b) { return a.id < b.id; });
  for (uint32_t segment : ids) {
    const mem::SegmentMeta& m = pool_->meta(segment);
    const uint16_t ks = m.keyspace.load(std::memory_order_relaxed);
    auto it = std::lower_bound(held.begin(), held.end(), ks,
                               [](const Held& h, uint16_t id) { return h.id < id; });
    if (it != held.end() && it->id == ks) it->bytes += m.capacity;
  }
  // Quotas adding up to more than the memory segments can have are scaled down alike.
  uint64_t sum = 0;
  for (const Held& h : held) sum += h.quota;
  using mem::MemoryKind;
  const double usable = static_cast<double>(accountant_.limit()) -
                        static_cast<double>(accountant_.ByKind(MemoryKind::kIndex) +
                                            accountant_.ByKind(MemoryKind::kMetadata) +
                                            accountant_.ByKind(MemoryKind::kExternal));
  const double scale = std::max(0.0, std::min(1.0, usable / static_cast<double>(sum)));
  double most_over = 0, fullest = 0;
  for (const Held& h : held) {
    const double share = scale * static_cast<double>(h.quota);
    const double bytes = static_cast<double>(h.bytes);
    if (bytes - share > most_over) {
      choice.over = h.id;
      most_over = bytes - share;
    }
    if (h.bytes > 0 && (share <= 0 || bytes / share > fullest)) {
      choice.fullest = h.id;
      fullest = share <= 0 ? 1e300 : bytes / share;
    }
  }
  return choice;
}

}  // namespace cinch::store
