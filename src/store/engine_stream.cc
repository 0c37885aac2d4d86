// Engine: streaming writes (Store::BeginWrite, ValueWriter). See docs/keyspaces.md.
//
// BeginWrite reserves and charges the whole item at once and encodes its header and key; the
// caller fills the value in place, for as long as it takes; Commit publishes it under the key's
// shard lock as any write (kAdd's condition is checked there again). Where the bytes wait:
//   - an item above the jumbo threshold (an eighth of a segment) gets a jumbo mapping of its
//     own, born sealed with one writer: no cleaner claims it, no eviction picks it, flush_all
//     does not reach it, until Commit publishes it in place (no copy) or Abort frees it;
//   - a smaller item is staged in a heap buffer charged as MemoryKind::kStaging and copied
//     into a write head's segment at Commit. Reserving it in an open segment would keep that
//     segment from being sealed, cleaned or evicted for as long as a slow client takes; a copy
//     of at most an eighth of a segment costs nothing next to that.
// Either way the reservation counts against memory_limit, and making room for it may evict.
#include <cstring>

#include "common/check.h"
#include "common/hash.h"
#include "store/engine.h"

namespace cinch::store {

namespace {

bool ValidKey(std::string_view key) { return !key.empty() && key.size() <= Store::kMaxKeyLength; }

}  // namespace

Outcome Engine::BeginWrite(Keyspace ks, SetMode mode, std::string_view key, size_t value_size,
                           uint32_t flags, int64_t exptime, ValueWriter* out) {
  out->Abort();
  if (!ValidKey(key) || (mode != SetMode::kSet && mode != SetMode::kAdd)) {
    return Outcome::kNotStored;
  }
  if (value_size > options_.max_item_size) return Outcome::kTooLarge;
  const int64_t now = Now();
  MaybeFlushDue(now);
  bool expired;
  const uint32_t expiry = AbsoluteExpiry(exptime, now, &expired);
  const mem::ItemMeta meta{flags, expiry, 0, 0};
  const size_t size = mem::ItemSize(key.size(), value_size, meta);
  if (size > options_.max_item_size) return Outcome::kTooLarge;
  const uint64_t hash = HashKey(key, ks.id);
  if (mode == SetMode::kAdd && PreCheck(mode, hash, ks, key, 0) != Outcome::kStored) {
    return Outcome::kNotStored;  // present now: the caller need not send the value
  }
  Deadline deadline = SpaceDeadline();
  KeyspaceState* state = KeyspaceFor(ks.id, deadline);
  if (state != nullptr && !FitQuota(*state, ks.id, static_cast<int64_t>(size), deadline)) {
    state = nullptr;  // out of quota: as out of memory
  }
  char* item = nullptr;
  uint32_t segment = mem::kNoSegment;
  if (state != nullptr && size > jumbo_threshold_) {
    Reservation r;
    if (ReserveJumboWaiting(ks.id, size, deadline, &r)) {
      NoteExpiry(r.segment, expiry);
      item = r.data;
      segment = r.segment;
    }
  } else if (state != nullptr) {
    bool charged = (accountant_.Available() >= size + pool_->reserve_bytes() &&
                    accountant_.TryCharge(mem::MemoryKind::kStaging, size)) ||
                   ChargeWaiting(mem::MemoryKind::kStaging, size, deadline);
    if (charged) item = new char[size];
  }
  if (item == nullptr) {
    out_of_memory_.fetch_add(1, std::memory_order_relaxed);
    return Outcome::kOutOfMemory;
  }
  const size_t header = mem::EncodeItemHeader(item, key.size(), value_size, meta);
  std::memcpy(item + header, key.data(), key.size());
  state->pending_bytes.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
  pending_writes_.fetch_add(1, std::memory_order_relaxed);
  out->engine_ = this;
  out->item_ = item;
  out->value_ = item + header + key.size();
  out->size_ = value_size;
  out->item_size_ = size;
  out->segment_ = segment;
  out->keyspace_ = ks.id;
  out->add_ = mode == SetMode::kAdd;
  out->expired_ = expired;
  return Outcome::kStored;
}

Outcome Engine::CommitWrite(ValueWriter* w) {
  CINCH_CHECK(w->engine_ == this);
  const Keyspace ks{w->keyspace_};
  const SetMode mode = w->add_ ? SetMode::kAdd : SetMode::kSet;
  const mem::ItemView item = mem::DecodeItem(w->item_);
  const uint64_t hash = HashKey(item.key, ks.id);
  const int64_t now = Now();
  MaybeFlushDue(now);
  // An expiry that passed while the value was arriving: stored and at once invisible, as a
  // write born expired (it removes the current item when its condition holds).
  const bool expired = w->expired_ || (item.meta.expiry != 0 && item.meta.expiry <= now);
  Outcome o;
  bool published = false;
  if (w->segment_ == mem::kNoSegment) {
    o = WriteDecided(ks, mode, hash, item.key, item.value, w->item_, item.meta, expired, 0, now);
  } else if (expired) {
    o = WriteExpiredOnArrival(mode, hash, ks, item.key, 0);
  } else {
    Reservation r{w->segment_, 0, w->item_};
    Deadline deadline = SpaceDeadline();
    for (;;) {
      // Stored now, so after any flush_all since BeginWrite: the item joins the current flush
      // generation. Safe: no cleaner looks at the segment while it has a writer.
      pool_->meta(r.segment).flush_gen.store(GenOf(ks.id), std::memory_order_relaxed);
      bool retry = false;
      size_t need_bytes = 0;
      o = Publish(mode, hash, ks, item.key, 0, r, &retry, &need_bytes);
      if (!retry) break;  // a flush_all passed meanwhile: publish again, in its generation
      if (need_bytes != 0 && !ReclaimSpace(need_bytes, deadline)) {
        o = Outcome::kOutOfMemory;
        out_of_memory_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    published = o == Outcome::kStored;
    if (published) FinishReservation(r);
  }
  ReleaseWrite(w, /*published=*/published);
  return o;
}

void Engine::AbortWrite(ValueWriter* w) {
  CINCH_CHECK(w->engine_ == this);
  ReleaseWrite(w, /*published=*/false);
}

// Gives back what a pending write holds (its staging buffer, or its jumbo segment unless it was
// published) and empties the writer.
void Engine::ReleaseWrite(ValueWriter* w, bool published) {
  if (w->segment_ == mem::kNoSegment) {
    delete[] w->item_;
    accountant_.Release(mem::MemoryKind::kStaging, w->item_size_);
  } else if (!published) {
    DropJumboReservation(w->segment_);
  }
  FindKeyspace(w->keyspace_)
      ->pending_bytes.fetch_sub(static_cast<int64_t>(w->item_size_), std::memory_order_relaxed);
  pending_writes_.fetch_sub(1, std::memory_order_relaxed);
  w->engine_ = nullptr;  // first: assigning below must not abort it again
  *w = ValueWriter();
}

// Frees a jumbo segment reserved for an item that was never published. Its writer count keeps
// every cleaner off it until this claims it (a cleaner's Claim may hold the state for a moment,
// seeing the writer, and gives it back); then no slot and no pin can reach it.
void Engine::DropJumboReservation(uint32_t segment) {
  mem::SegmentMeta& m = pool_->meta(segment);
  for (;;) {
    mem::SegState sealed = mem::SegState::kSealed;
    if (m.state.compare_exchange_weak(sealed, mem::SegState::kCleaning,
                                      std::memory_order_acq_rel)) {
      break;
    }
  }
  m.writers.store(0, std::memory_order_release);
  CINCH_CHECK(m.live_items.load(std::memory_order_acquire) == 0);
  DrainOrFree(segment);
}

}  // namespace cinch::store
