// Engine: listing a keyspace's items (Store::ListItems), memcached's metadump.
//
// The walk goes through the index, shard by shard, each shard by ranges of tags
// (HashIndex::ForEachInTags): a key's tag never changes, so a range holds the same keys whatever
// the shard's size, and a cursor that is a (shard, tag) pair neither skips nor repeats a key
// that stays put while the walk goes on, however the cleaner moves items or the index resizes.
// A stretch is read under its shard's lock: items in memory are copied into the list there;
// items on the file tier are pinned, read after the lock is released, and listed if their slot
// still points at them.
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common/hash.h"
#include "store/engine.h"

namespace cinch::store {

namespace {
// Buckets per stretch: 64 slots, the most one lock hold reads.
constexpr uint32_t kStretchBuckets = 8;
}  // namespace

void Engine::AddListed(uint64_t location, const mem::ItemView& item, uint64_t cas,
                       ItemList* list) const {
  ListedItem l;
  l.key_offset = static_cast<uint32_t>(list->keys.size());
  l.key_size = static_cast<uint32_t>(item.key.size());
  l.binary_key = (item.meta.state & mem::kStateBinaryKey) != 0;
  l.fetched_before = item.meta.fetched;
  l.flags = item.meta.flags;
  l.value_size = item.value.size();
  l.expiry = item.meta.expiry == kStoredNever ? 0 : item.meta.expiry;
  l.last_access = pool_->meta(SegmentOf(location)).write_time.load(std::memory_order_relaxed);
  l.cas = cas;
  list->keys.append(item.key);
  list->items.push_back(l);
}

bool Engine::ListItems(Keyspace ks, ListCursor* cursor, size_t max_items, bool with_cas,
                       bool may_block, ItemList* list) {
  const int64_t now = Now();
  MaybeFlushDue(now);
  std::vector<uint64_t> on_file;  // slots of the stretch whose items are on file
  // At most Store::kListStretchesPerCall stretches (32,768 slots, a fraction of a millisecond):
  // a keyspace with few items in a large index is listed over many calls, each short, so that
  // the caller's thread (an event loop) can serve its other connections between them.
  for (uint32_t stretches = 0;
       !cursor->done && list->items.size() < max_items && stretches < Store::kListStretchesPerCall;
       ++stretches) {
    index::Shard& shard = index_->shard(cursor->shard);
    const size_t items_before = list->items.size();
    const size_t keys_before = list->keys.size();
    uint32_t end;
    on_file.clear();
    {
      std::lock_guard<SpinLock> lock(shard.lock);
      end = index::HashIndex::TagAfter(shard, cursor->tag, kStretchBuckets);
      index_->ForEachInTags(shard, cursor->tag, end, [&](uint64_t& slot) {
        const uint64_t location = index::SlotLocation(slot);
        // A file segment's metadata names its keyspace too: other keyspaces' items on file
        // are neither read nor a reason to block.
        if (KeyspaceOf(location) != ks.id) return;
        const char* p = ItemAt(location);
        if (p == nullptr) {
          on_file.push_back(slot);
          return;
        }
        const mem::ItemView item = mem::DecodeItem(p);
        if (IsStale(location, item, now)) return;
        if (with_cas) slot |= index::kCasExposedBit;  // a client sees it: moves must keep it
        AddListed(location, item, with_cas ? CasOf(location, item) : 0, list);
      });
      if (!on_file.empty()) {
        if (!may_block) {
          list->items.resize(items_before);
          list->keys.resize(keys_before);
          return false;
        }
        // Pinned while the slots still point at them: the segments are not reused meanwhile.
        for (uint64_t slot : on_file) {
          pool_->meta(SegmentOf(index::SlotLocation(slot)))
              .pins.fetch_add(1, std::memory_order_acq_rel);
        }
      }
    }
    if (!on_file.empty()) ListFromFile(shard, on_file, ks, now, with_cas, list);
    cursor->tag = end;
    ++cursor->stretches;
    if (end == index::HashIndex::kTagLimit) {
      cursor->tag = 0;
      if (++cursor->shard == index_->shard_count()) cursor->done = true;
    }
  }
  return true;
}

void Engine::ListFromFile(index::Shard& shard, const std::vector<uint64_t>& slots, Keyspace ks,
                          int64_t now, bool with_cas, ItemList* list) {
  std::string buf;
  for (uint64_t slot : slots) {
    const uint64_t location = index::SlotLocation(slot);
    const uint32_t id = SegmentOf(location);
    mem::SegmentMeta& m = pool_->meta(id);
    mem::ItemView item;
    const uint16_t item_ks = m.keyspace.load(std::memory_order_relaxed);
    // Another keyspace's item is not read at all. One that cannot be read, or whose key is not
    // of the slot's tag and shard (the file was changed behind the store), is left to the
    // lookups, which drop its segment.
    if (item_ks == ks.id && ReadFileItem(location, &buf, &item)) {
      const uint64_t hash = HashKey(item.key, item_ks);
      if (index::TagOf(hash) == index::SlotTag(slot) && &index_->ShardFor(hash) == &shard &&
          !IsStale(location, item, now)) {
        std::lock_guard<SpinLock> lock(shard.lock);
        if (uint64_t* s = index_->FindLocation(shard, hash, location)) {
          if (with_cas) *s |= index::kCasExposedBit;
          AddListed(location, item, with_cas ? CasOf(location, item) : 0, list);
        } else {
          // Moved while it was read: a read promoted it, or a compaction brought it back into
          // memory. Listed from there (the cursor is past its tag: now or never).
          mem::ItemView moved;
          uint64_t* now_at = index_->Find(shard, hash, [&](uint64_t l) {
            const char* p = ItemAt(l);
            if (p == nullptr || KeyspaceOf(l) != ks.id) return false;
            moved = mem::DecodeItem(p);
            return moved.key == item.key;
          });
          if (now_at != nullptr && !IsStale(index::SlotLocation(*now_at), moved, now)) {
            const uint64_t l = index::SlotLocation(*now_at);
            if (with_cas) *now_at |= index::kCasExposedBit;
            AddListed(l, moved, with_cas ? CasOf(l, moved) : 0, list);
          }
        }
      }
    }
    m.pins.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace cinch::store
