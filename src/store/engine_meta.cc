// Engine: the per-item state of memcached's meta commands. A meta get (Fetch) reads an item and
// may touch it, create it on a miss (vivify), and hand out its recache token; a meta delete with
// I (Invalidate) marks it stale. The state lives in the item (docs/item-format.md): the "hit
// before" bit in every header, the stale and token bits in an optional state byte. A change
// is made in place under the key's shard lock when the item has the field, else the item is
// rewritten with it (Modify), as a touch is.
#include <cstring>

#include "cinch/expiry.h"
#include "common/check.h"
#include "common/hash.h"
#include "store/engine.h"

namespace cinch::store {

namespace {

// The same item with a new expiry and/or more state bits; CAS value and "hit before" kept.
class MetaRewriter : public Engine::Rewriter {
 public:
  MetaRewriter(bool set_expiry, uint32_t expiry, uint8_t add_state)
      : set_expiry_(set_expiry), expiry_(expiry), add_state_(add_state) {
    success = Outcome::kTouched;
    size_limited = false;
  }
  Outcome Prepare(const mem::ItemView& old, uint64_t old_cas, bool cas_exposed) override {
    meta = old.meta;
    if (set_expiry_) meta.expiry = expiry_;
    meta.cas = cas_exposed ? old_cas : 0;  // as a touch: kept if a client has seen it
    meta.state |= add_state_;
    value_size = old.value.size();
    return Outcome::kStored;
  }
  void WriteValue(char* dst, const mem::ItemView& old) const override {
    std::memcpy(dst, old.value.data(), old.value.size());
  }

 private:
  bool set_expiry_;
  uint32_t expiry_;
  uint8_t add_state_;
};

// memcached's md with I: same value, a new CAS value (a new location derives one), stale, the
// recache token taken back, and optionally a new expiry.
class InvalidateRewriter : public Engine::Rewriter {
 public:
  InvalidateRewriter(uint64_t cas_unique, bool set_expiry, uint32_t expiry)
      : cas_unique_(cas_unique), set_expiry_(set_expiry), expiry_(expiry) {
    size_limited = false;
  }
  Outcome Prepare(const mem::ItemView& old, uint64_t old_cas, bool) override {
    if (cas_unique_ != 0 && old_cas != cas_unique_) return Outcome::kExists;
    meta = old.meta;
    if (set_expiry_) meta.expiry = expiry_;
    meta.cas = 0;
    meta.state =
        static_cast<uint8_t>((old.meta.state | mem::kStateStale) & ~mem::kStateWinTokenSent);
    value_size = old.value.size();
    return Outcome::kStored;
  }
  void WriteValue(char* dst, const mem::ItemView& old) const override {
    std::memcpy(dst, old.value.data(), old.value.size());
  }

 private:
  uint64_t cas_unique_;
  bool set_expiry_;
  uint32_t expiry_;
};

// memcached's realtime() for the R token: the absolute time below which an expiry wins. 0 and
// negative tokens never win.
int64_t RecacheThreshold(int64_t seconds, int64_t now) {
  if (seconds <= 0) return 0;
  return AbsoluteExptime(seconds, now);
}

}  // namespace

bool Engine::ChangeMetaInPlace(uint64_t location, const mem::ItemView& item, bool set_expiry,
                               uint32_t expiry, uint8_t add_state) {
  if (set_expiry && item.meta.expiry == 0 && expiry == 0) set_expiry = false;  // still never
  const uint8_t state = item.meta.state | add_state;
  if (state == item.meta.state) add_state = 0;
  if ((set_expiry && item.meta.expiry == 0) || (add_state != 0 && item.meta.state == 0)) {
    return false;  // the field is missing: rewrite
  }
  if (!set_expiry && add_state == 0) return true;  // nothing changes
  // An item in the file tier is immutable (docs/file-tier.md): rewritten into memory.
  if (pool_->IsFileLocation(location)) return false;
  char* p = const_cast<char*>(ItemAt(location));
  if (set_expiry) {
    CINCH_CHECK(mem::SetExpiryInPlace(p, expiry == 0 ? kStoredNever : expiry));
    NoteExpiry(SegmentOf(location), expiry);
  }
  if (add_state != 0) CINCH_CHECK(mem::SetStateInPlace(p, state));
  return true;
}

Outcome Engine::RewriteMeta(Keyspace ks, std::string_view key, bool set_expiry, uint32_t expiry,
                            uint8_t add_state) {
  MetaRewriter rewriter(set_expiry, expiry, add_state);
  return Modify(ks, key, rewriter);
}

Outcome Engine::Vivify(Keyspace ks, std::string_view key, int64_t exptime) {
  return WriteItem(ks, SetMode::kAdd, key, {}, 0, exptime, 0, mem::kStateWinTokenSent);
}

bool Engine::Fetch(Keyspace ks, std::string_view key, const FetchOptions& o, ItemRef* out,
                   FetchResult* result) {
  out->Reset();
  *result = FetchResult{};
  if (key.empty() || key.size() > Store::kMaxKeyLength) {
    result->miss = Miss::kAbsent;
    return false;
  }
  const int64_t now = Now();
  MaybeFlushDue(now);
  bool touch_expired = false;
  const uint32_t touch_expiry = o.touch ? AbsoluteExpiry(o.exptime, now, &touch_expired) : 0;
  // A vivify with an expiry already past still creates the item for its creator's reply
  // (memcached), but no later reader sees it.
  bool vivify_expired = false;
  if (o.vivify) (void)AbsoluteExpiry(o.vivify_exptime, now, &vivify_expired);
  const uint64_t hash = HashKey(key, ks.id);
  index::Shard& shard = index_->ShardFor(hash);
  ShardCounters& c = CountersFor(hash);
  bool created = false;
  bool decided = false;  // the changes are made (or given up): read and report `seen`
  SeenState seen;
  for (int pass = 0; pass < 4; ++pass) {
    std::unique_lock<SpinLock> lock(shard.lock);
    mem::ItemView item;
    Miss miss = Miss::kNone;
    uint64_t* slot = FindLive(shard, c, hash, ks, key, now, &item, &miss);
    if (slot == nullptr) {
      CountMiss(c, ks);
      // On file with no memory to read it into: kept, and not to be created again.
      if (!o.vivify || created || decided || miss == Miss::kNoMemory) {
        result->miss = miss;
        result->won = false;
        return false;
      }
      lock.unlock();
      Outcome v = Vivify(ks, key, vivify_expired ? 0 : o.vivify_exptime);
      if (v == Outcome::kStored) {
        created = true;
      } else if (v != Outcome::kNotStored) {  // kNotStored: another client created it first
        result->miss = miss;
        return false;
      }
      continue;
    }
    const uint64_t location = index::SlotLocation(*slot);
    if (!decided) {
      const bool token_sent = (item.meta.state & mem::kStateWinTokenSent) != 0;
      const bool stale = (item.meta.state & mem::kStateStale) != 0;
      const uint32_t old_expiry = item.meta.expiry == kStoredNever ? 0 : item.meta.expiry;
      result->previous_expiry = old_expiry;
      result->created = created;
      // The creator's own token is not reported as somebody else's (no 'Z').
      seen = SeenState{item.meta.fetched, stale, token_sent && !created,
                       pool_->meta(SegmentOf(location)).write_time.load(std::memory_order_relaxed)};
      // The creator of a vivified item wins; otherwise a near expiry (R) or a stale item win
      // the token if nobody holds it yet.
      bool won = created;
      if (!created && !token_sent && !o.no_token) {
        if (o.recache) {
          int64_t at = old_expiry;
          if (o.recache_after_touch && o.touch) at = touch_expired ? now : touch_expiry;
          won = at != 0 && at < RecacheThreshold(o.recache_seconds, now);
        }
        won = won || stale;
      }
      result->won = won;
      const bool set_expiry = o.touch && !touch_expired && !created;
      const uint8_t add_state = won && !created ? mem::kStateWinTokenSent : 0;
      if (!ChangeMetaInPlace(location, item, set_expiry, touch_expiry, add_state)) {
        lock.unlock();
        Outcome r = RewriteMeta(ks, key, set_expiry, touch_expiry, add_state);
        // Without memory for the change the item is read as it is; the token, which could not
        // be recorded, is not handed out. Anything else: it changed meanwhile, decide again.
        if (r == Outcome::kOutOfMemory) result->won = false;
        decided = r == Outcome::kTouched || r == Outcome::kOutOfMemory;
        continue;
      }
      decided = true;
      // Changed in place, or unchanged (only then may it be in the file tier).
      if (!pool_->IsFileLocation(location)) item = mem::DecodeItem(ItemAt(location));
    }
    ReadHit(ks, slot, item, c, out, o.with_cas, !o.no_bump);
    ReportSeen(seen, out);
    // A negative T: the reader gets the item, later readers do not (memcached sets it expired).
    if ((o.touch && touch_expired && !created) || (created && vivify_expired)) {
      Unlink(shard, c, slot, item);
    }
    return true;
  }
  result->miss = Miss::kAbsent;  // the item kept changing under us: report a miss
  result->won = false;
  return false;
}

void Engine::ReportSeen(const SeenState& seen, ItemRef* out) {
  out->fetched_before_ = seen.fetched;
  out->stale_ = seen.stale;
  out->win_token_sent_ = seen.token_sent;
  out->last_access_ = seen.last_access;
}

Outcome Engine::Invalidate(Keyspace ks, std::string_view key, uint64_t cas_unique, bool set_exptime,
                           int64_t exptime) {
  if (key.empty() || key.size() > Store::kMaxKeyLength) return Outcome::kNotFound;
  const int64_t now = Now();
  MaybeFlushDue(now);
  bool expired = false;
  const uint32_t expiry = set_exptime ? AbsoluteExpiry(exptime, now, &expired) : 0;
  if (expired) {  // memcached marks it stale with an expiry already past: gone for readers
    Outcome o = Delete(ks, key, cas_unique);
    return o == Outcome::kDeleted ? Outcome::kStored : o;
  }
  InvalidateRewriter rewriter(cas_unique, set_exptime, expiry);
  return Modify(ks, key, rewriter);
}

}  // namespace cinch::store
