// memcached's meta commands (mg ms md ma me) on the store, byte for byte as memcached 1.6.18
// answers them. The per-item state behind 'h', 'l', stale items (I, X) and the recache token
// (N, R, W, Z) is the engine's (Store::Fetch, Store::Invalidate, ItemRef's state); what cinch
// reports differently is in docs/server.md ("Protocol coverage").
#include <string>

#include "cinch/expiry.h"
#include "proto/base64.h"
#include "proto/errors.h"
#include "server/memcache_session.h"
#include "server/reply_format.h"

namespace cinch::server {

namespace {

// The flags of one meta request, decoded. The parser has checked them as memcached does
// (known letters, no duplicates, numbers in range, one mode character).
struct MetaArgs {
  bool base64 = false, quiet = false, value = false, invalidate = false, no_bump = false;
  bool has_ttl = false, has_vivify = false, has_recache = false, has_compare = false;
  int64_t ttl = 0, vivify_ttl = 0, recache = 0;
  uint64_t compare_cas = 0, delta = 1, initial = 0;
  uint32_t client_flags = 0;
  char mode = 0;
  char key_buf[proto::Base64MaxDecodedSize(2 * Store::kMaxKeyLength)];
  std::string_view key;  // decoded when base64
};

// N, T and R carry an int32, sign-extended into MetaFlag::number.
int64_t SignedNumber(const proto::MetaFlag& f) {
  return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(f.number)));
}

// Returns false when a base64 key does not decode.
bool DecodeArgs(const proto::Request& r, MetaArgs* a) {
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    const proto::MetaFlag& f = r.meta_flags[i];
    switch (f.letter) {
      case 'b':
        a->base64 = true;
        break;
      case 'q':
        a->quiet = true;
        break;
      case 'v':
        a->value = true;
        break;
      case 'I':
        a->invalidate = true;
        break;
      case 'u':
        a->no_bump = true;
        break;
      case 'T':
        a->has_ttl = true;
        a->ttl = SignedNumber(f);
        break;
      case 'N':
        a->has_vivify = true;
        a->vivify_ttl = SignedNumber(f);
        break;
      case 'R':
        a->has_recache = true;
        a->recache = SignedNumber(f);
        break;
      case 'C':
        a->has_compare = true;
        a->compare_cas = f.number;
        break;
      case 'D':
        a->delta = f.number;
        break;
      case 'J':
        a->initial = f.number;
        break;
      case 'F':
        a->client_flags = static_cast<uint32_t>(f.number);
        break;
      case 'M':
        a->mode = f.token.empty() ? 0 : f.token[0];
        break;
      default:
        break;
    }
  }
  if (!a->base64) {
    a->key = r.key;
    return true;
  }
  size_t n = proto::Base64Decode(r.key, a->key_buf, sizeof(a->key_buf));
  if (n == 0 || n > Store::kMaxKeyLength) return false;
  a->key = std::string_view(a->key_buf, n);
  return true;
}

// A key returned by 'k': as stored, or in base64 (followed by " b") when it is binary.
void AppendKey(std::string_view key, bool binary, LineBuilder* line) {
  if (!binary) {
    line->Flag('k', key);
    return;
  }
  char encoded[proto::Base64EncodedSize(Store::kMaxKeyLength)];
  size_t n = proto::Base64Encode(key, encoded, sizeof(encoded));
  line->Flag('k', std::string_view(encoded, n)).Append(" b");
}

// Appends the flags every meta reply echoes, in the order they were sent: the opaque and the
// key. The key is the decoded one; `binary` says whether to return it in base64.
void AppendEchoFlags(const proto::Request& r, std::string_view key, bool binary,
                     LineBuilder* line) {
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    const proto::MetaFlag& f = r.meta_flags[i];
    if (f.letter == 'O') line->Flag('O', f.token);
    if (f.letter == 'k') AppendKey(key, binary, line);
  }
}

int64_t RemainingTtl(int64_t expiry, int64_t now) {
  if (expiry == 0) return -1;
  return expiry > now ? expiry - now : 0;
}

// The remaining TTL memcached prints for an item given an exptime token (T, N) in this request.
// An exptime that expires the item at once prints as memcached computes it: its exptime as its
// realtime() makes it (1, or the time since its process_started, which is its start time
// minus 62 seconds) minus its current_time, as an unsigned 32-bit number.
int64_t TokenTtl(int64_t exptime, int64_t now, int64_t started_at) {
  if (exptime == 0) return -1;
  if (exptime > 0 && exptime <= kMaxRelativeExpiry) return exptime;
  if (!ExpiresAtOnce(exptime, now)) return exptime - now;
  const int64_t process_started = started_at - 62;  // ITEM_UPDATE_INTERVAL + 2
  const int64_t relative = exptime > process_started ? exptime - process_started : 1;
  return static_cast<uint32_t>(relative - (now - process_started));
}

bool Wants(const proto::Request& r, char letter) {
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    if (r.meta_flags[i].letter == letter) return true;
  }
  return false;
}

// Position of the first flag `letter` in the request, or kMaxMetaFlags when absent.
size_t FlagIndex(const proto::Request& r, char letter) {
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    if (r.meta_flags[i].letter == letter) return i;
  }
  return proto::kMaxMetaFlags;
}

std::string_view StoreCode(Outcome o) {
  switch (o) {
    case Outcome::kStored:
      return proto::reply::kMetaStoredCode;
    case Outcome::kNotStored:
      return proto::reply::kMetaNotStoredCode;
    case Outcome::kExists:
      return proto::reply::kMetaExistsCode;
    default:
      return proto::reply::kMetaNotFoundCode;
  }
}

}  // namespace

void MemcacheSession::MetaGet(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  FetchOptions o;
  o.with_cas = Wants(r, 'c') && context_->options->cas_enabled;
  o.no_bump = a.no_bump;
  o.touch = a.has_ttl;
  o.exptime = a.ttl;
  o.vivify = a.has_vivify;
  // memcached applies the flags in order: a T after N sets the new item's TTL.
  const size_t n_at = FlagIndex(r, 'N'), t_at = FlagIndex(r, 'T');
  o.vivify_exptime = a.has_ttl && t_at > n_at ? a.ttl : a.vivify_ttl;
  o.recache = a.has_recache;
  o.recache_seconds = a.recache;
  o.recache_after_touch = t_at < FlagIndex(r, 'R');
  ItemRef ref;
  FetchResult fr;
  if (!store_->Fetch(keyspace_, a.key, o, &ref, &fr)) {
    ThreadCounters::Add(counters_->cmd_get);
    // On file with no memory to read it into: kept, and an error even when quiet.
    if (fr.miss == Miss::kNoMemory) return out->Append(proto::reply::kOutOfMemoryGet);
    ThreadCounters::Add(counters_->get_misses);
    if (fr.miss == Miss::kExpired) ThreadCounters::Add(counters_->get_expired);
    if (fr.miss == Miss::kFlushed) ThreadCounters::Add(counters_->get_flushed);
    if (a.quiet) return;
    LineBuilder line;  // a miss still echoes the opaque and the key (memcached)
    line.Append(proto::reply::kMetaMissCode);
    AppendEchoFlags(r, a.key, a.base64, &line);
    line.Append(proto::reply::kCrlf);
    return out->Append(line.view());
  }
  if (a.has_ttl) {
    ThreadCounters::Add(counters_->cmd_touch);
    ThreadCounters::Add(counters_->touch_hits);
  } else {
    ThreadCounters::Add(counters_->cmd_get);
    ThreadCounters::Add(counters_->get_hits);
  }
  const int64_t now = context_->clock->NowSeconds();
  // 't' reports the TTL as of its place among the flags: before T (or N, for a new item) the
  // item's previous one.
  int64_t ttl = fr.created ? -1 : RemainingTtl(fr.previous_expiry, now);
  LineBuilder line;
  if (a.value) {
    line.Append(proto::reply::kMetaValuePrefix).Number(ref.value().size());
  } else {
    line.Append(proto::reply::kMetaStoredCode);
  }
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    const proto::MetaFlag& f = r.meta_flags[i];
    switch (f.letter) {
      case 'T':
        ttl = TokenTtl(a.ttl, now, context_->started_at);
        break;
      case 'N':
        if (fr.created) ttl = TokenTtl(a.vivify_ttl, now, context_->started_at);
        break;
      case 's':
        line.Flag('s', ref.value().size());
        break;
      case 't':
        line.Flag('t', ttl);
        break;
      case 'c':
        line.Flag('c', ref.cas());
        break;
      case 'f':
        line.Flag('f', ref.flags());
        break;
      case 'l':
        line.Flag('l', std::max<int64_t>(0, now - ref.last_access()));
        break;
      case 'h':
        line.Flag('h', ref.fetched_before() ? 1 : 0);
        break;
      case 'O':
        line.Flag('O', f.token);
        break;
      case 'k':
        AppendKey(ref.key(), ref.binary_key(), &line);
        break;
      default:
        break;
    }
  }
  if (ref.win_token_sent()) line.Append(" Z");
  if (ref.stale()) line.Append(" X");
  if (fr.won) line.Append(" W");
  line.Append(proto::reply::kCrlf);
  out->Append(line.view());
  if (a.value) AppendValue(&ref, out);
}

void MemcacheSession::MetaSet(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  ThreadCounters::Add(counters_->cmd_set);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  SetMode mode = SetMode::kSet;
  switch (a.mode) {
    case 0:
    case 'S':
    case 's':
      mode = SetMode::kSet;
      break;
    case 'E':
    case 'e':
      mode = SetMode::kAdd;
      break;
    case 'A':
    case 'a':
      mode = SetMode::kAppend;
      break;
    case 'P':
    case 'p':
      mode = SetMode::kPrepend;
      break;
    case 'R':
    case 'r':
      mode = SetMode::kReplace;
      break;
    default:
      return out->Append(proto::reply::kMetaBadMsMode);
  }
  // A CAS value turns set and replace into a CAS store (with I: one that may store a stale
  // value); append and prepend compare it too; add ignores it (memcached).
  uint64_t compare = 0;
  if (a.has_compare) {
    if (mode == SetMode::kSet || mode == SetMode::kReplace) {
      // C0 is no CAS value at all: never lower than the item's, so never a stale store.
      mode = a.invalidate && a.compare_cas != 0 ? SetMode::kCasInvalidate : SetMode::kCas;
    }
    if (mode != SetMode::kAdd) compare = a.compare_cas;
  }
  Outcome o;
  const bool cas_store = mode == SetMode::kCas || mode == SetMode::kCasInvalidate;
  if (!context_->options->cas_enabled && cas_store) {
    // Without CAS (-C) memcached drops the value of C: a CAS store compares nothing and is
    // refused (EX, or NF on a missing key); append and prepend ignore it.
    ItemRef ref;
    o = store_->Peek(keyspace_, a.key, &ref) ? Outcome::kExists : Outcome::kNotFound;
  } else {
    if (!context_->options->cas_enabled) compare = 0;
    o = store_->Write(keyspace_, mode, a.key, r.data, a.client_flags, a.ttl, compare, a.base64);
  }
  switch (o) {
    case Outcome::kStored:
    case Outcome::kNotStored:
    case Outcome::kExists:
    case Outcome::kNotFound:
      break;
    case Outcome::kTooLarge:
      ThreadCounters::Add(counters_->store_too_large);
      return out->Append(proto::reply::kTooLarge);
    default:
      ThreadCounters::Add(counters_->store_no_memory);
      return out->Append(proto::reply::kOutOfMemoryStoring);
  }
  if (mode == SetMode::kCas || mode == SetMode::kCasInvalidate) {
    if (o == Outcome::kStored) ThreadCounters::Add(counters_->cas_hits);
    if (o == Outcome::kExists) ThreadCounters::Add(counters_->cas_badval);
    if (o == Outcome::kNotFound) ThreadCounters::Add(counters_->cas_misses);
  }
  if (o == Outcome::kStored) ThreadCounters::Add(counters_->total_items);
  if (o == Outcome::kStored && a.quiet) return;
  uint64_t cas = 0;  // memcached returns 0 when nothing was stored
  if (o == Outcome::kStored && Wants(r, 'c') && context_->options->cas_enabled) {
    // The new CAS value, read back: another client may have written the key in between, in
    // which case this is that client's value (documented in docs/server.md). An item that
    // expired as it was stored (or was deleted since) has a CAS value nothing else has, as
    // memcached's gone item had.
    ItemRef ref;
    cas = store_->Peek(keyspace_, a.key, &ref, true) ? ref.cas() : store_->UnusedCas();
  }
  LineBuilder line;
  line.Append(StoreCode(o));
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    const proto::MetaFlag& f = r.meta_flags[i];
    if (f.letter == 'O') line.Flag('O', f.token);
    if (f.letter == 'k') AppendKey(a.key, a.base64, &line);
    if (f.letter == 'c') line.Flag('c', cas);
  }
  line.Append(proto::reply::kCrlf);
  out->Append(line.view());
}

void MemcacheSession::MetaDelete(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  const uint64_t compare = a.has_compare ? a.compare_cas : 0;
  Outcome o;
  if (a.has_compare && compare == 0 && context_->options->cas_enabled) {
    // No item has the CAS value 0, so C0 never matches (memcached compares it like any other).
    ItemRef ref;
    o = store_->Peek(keyspace_, a.key, &ref) ? Outcome::kExists : Outcome::kNotFound;
  } else {
    o = a.invalidate ? store_->Invalidate(keyspace_, a.key, compare, a.has_ttl, a.ttl)
                     : store_->Delete(keyspace_, a.key, compare);
  }
  if (o == Outcome::kOutOfMemory) return out->Append(proto::reply::kOutOfMemory);
  const bool done = o == Outcome::kDeleted || o == Outcome::kStored;
  if (o == Outcome::kDeleted) ThreadCounters::Add(counters_->delete_hits);
  if (!done) ThreadCounters::Add(counters_->delete_misses);
  if (done && a.quiet) return;
  LineBuilder line;
  line.Append(done                    ? proto::reply::kMetaStoredCode
              : o == Outcome::kExists ? proto::reply::kMetaExistsCode
                                      : proto::reply::kMetaNotFoundCode);
  AppendEchoFlags(r, a.key, a.base64, &line);
  line.Append(proto::reply::kCrlf);
  out->Append(line.view());
}

void MemcacheSession::MetaArithmetic(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  bool incr = true;
  switch (a.mode) {
    case 0:
    case 'I':
    case 'i':
    case '+':
      incr = true;
      break;
    case 'D':
    case 'd':
    case '-':
      incr = false;
      break;
    default:
      return out->Append(proto::reply::kMetaBadMaMode);
  }
  // memcached applies T to the item it incremented in place; a number longer than the value
  // goes into a new item, and T then changes the replaced one: no effect.
  size_t old_size = 0;
  if (a.has_ttl) {
    ItemRef old;
    if (store_->Peek(keyspace_, a.key, &old)) old_size = old.value().size();
  }
  uint64_t value = 0;
  Outcome o = Outcome::kNotFound;
  bool created = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    o = incr ? store_->Incr(keyspace_, a.key, a.delta, &value, a.compare_cas)
             : store_->Decr(keyspace_, a.key, a.delta, &value, a.compare_cas);
    if (o != Outcome::kNotFound || !a.has_vivify) break;
    // Created on a miss with the initial value, delta not applied, no exptime: N sets it
    // below (as memcached).
    std::string initial = std::to_string(a.initial);
    o = store_->Write(keyspace_, SetMode::kAdd, a.key, initial, 0, 0);
    if (o == Outcome::kStored) {
      value = a.initial;
      created = true;
      break;
    }
    if (o != Outcome::kNotStored) break;  // lost a race with another creator: incr again
  }
  if (o == Outcome::kExists) {  // memcached checks for an empty value before the CAS value
    ItemRef item;
    if (store_->Peek(keyspace_, a.key, &item) && item.value().empty()) o = Outcome::kNonNumeric;
  }
  std::string_view code;
  switch (o) {
    case Outcome::kStored:
      ThreadCounters::Add(incr ? counters_->incr_hits : counters_->decr_hits);
      code = proto::reply::kMetaStoredCode;
      break;
    case Outcome::kNotFound:
      ThreadCounters::Add(incr ? counters_->incr_misses : counters_->decr_misses);
      code = proto::reply::kMetaNotFoundCode;
      break;
    case Outcome::kNotStored:
      code = proto::reply::kMetaNotStoredCode;
      break;
    case Outcome::kExists:
      code = proto::reply::kMetaExistsCode;
      break;
    case Outcome::kNonNumeric:
      return out->Append(proto::reply::kNonNumeric);
    default:
      return out->Append(proto::reply::kOutOfMemory);
  }
  LineBuilder line;
  if (o != Outcome::kStored) {
    line.Append(code);
    AppendEchoFlags(r, a.key, a.base64, &line);
    line.Append(proto::reply::kCrlf);
    return out->Append(line.view());
  }
  // memcached then reads the flags in order: T sets the item's exptime, N that of an item this
  // request created, t prints it as of its place. The item is read before its exptime changes,
  // which may expire it at once.
  ItemRef ref;
  if (Wants(r, 't') || Wants(r, 'c')) {
    (void)store_->Peek(keyspace_, a.key, &ref, Wants(r, 'c') && context_->options->cas_enabled);
  }
  LineBuilder number;
  number.Number(value);
  size_t t_at = FlagIndex(r, 'T');
  if (!created && number.size() > old_size) t_at = proto::kMaxMetaFlags;
  const size_t n_at = created ? FlagIndex(r, 'N') : proto::kMaxMetaFlags;
  if (t_at != proto::kMaxMetaFlags || n_at != proto::kMaxMetaFlags) {
    const bool t_last =
        n_at == proto::kMaxMetaFlags || (t_at != proto::kMaxMetaFlags && t_at > n_at);
    // Not a read: memcached sets the exptime without marking the item fetched or handing out
    // the recache token of a stale item.
    FetchOptions touch;
    touch.no_bump = true;
    touch.no_token = true;
    touch.touch = true;
    touch.exptime = t_last ? a.ttl : a.vivify_ttl;
    ItemRef touched;
    FetchResult unused;
    if (touch.exptime != 0 || !created) {
      (void)store_->Fetch(keyspace_, a.key, touch, &touched, &unused);
    }
  }
  // memcached hides a success with q, but not the reply to a miss that created the item.
  if (a.quiet && !created) return;
  if (a.value) {
    line.Append(proto::reply::kMetaValuePrefix).Number(number.size());
  } else {
    line.Append(code);
  }
  const int64_t now = context_->clock->NowSeconds();
  int64_t ttl = ref ? RemainingTtl(ref.expiry(), now) : -1;
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    const proto::MetaFlag& f = r.meta_flags[i];
    switch (f.letter) {
      case 'c':
        line.Flag('c', ref ? ref.cas() : 0);
        break;
      case 'T':
        ttl = TokenTtl(a.ttl, now, context_->started_at);
        break;
      case 'N':
        if (created) ttl = TokenTtl(a.vivify_ttl, now, context_->started_at);
        break;
      case 't':
        line.Flag('t', ttl);
        break;
      case 'O':
        line.Flag('O', f.token);
        break;
      case 'k':
        AppendKey(a.key, a.base64, &line);
        break;
      default:
        break;
    }
  }
  line.Append(proto::reply::kCrlf);
  out->Append(line.view());
  if (a.value) {
    out->Append(number.view());
    out->Append(proto::reply::kCrlf);
  }
}

// A set (or ms in set mode) refused as too large before it reached the store still removes the
// value it would have replaced, as memcached does, so no client reads the stale one.
void MemcacheSession::DropRefusedSet(const proto::Request& r) {
  if (r.command == proto::Command::kSet) {
    store_->Delete(keyspace_, r.key);
    return;
  }
  if (r.command != proto::Command::kMetaSet) return;
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return;
  if (a.mode == 0 || a.mode == 'S' || a.mode == 's') store_->Delete(keyspace_, a.key);
}

// me: memcached prints "exp" as now - expiry (so negative for a future expiry, -1 for none)
// and looks the item up without counting an access.
void MemcacheSession::MetaDebug(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  std::string_view key = r.key;
  char decoded[proto::Base64MaxDecodedSize(2 * Store::kMaxKeyLength)];
  if (r.num_meta_flags > 0 && r.meta_flags[0].letter == 'b' && r.meta_flags[0].token.empty()) {
    size_t n = proto::Base64Decode(r.key, decoded, sizeof(decoded));
    if (n == 0 || n > Store::kMaxKeyLength) return out->Append(proto::reply::kBadFormat);
    key = std::string_view(decoded, n);
  }
  ItemRef ref;
  if (!store_->Peek(keyspace_, key, &ref, context_->options->cas_enabled)) {
    return out->Append(proto::reply::kMetaMiss);
  }
  const int64_t now = context_->clock->NowSeconds();
  LineBuilder line;
  line.Append(proto::reply::kMetaDebugPrefix);
  if (ref.binary_key()) {
    char encoded[proto::Base64EncodedSize(Store::kMaxKeyLength)];
    line.Append(
        std::string_view(encoded, proto::Base64Encode(ref.key(), encoded, sizeof(encoded))));
  } else {
    line.Append(ref.key());
  }
  line.Append(" exp=").Number(ref.expiry() == 0 ? -1 : now - ref.expiry());
  line.Append(" la=").Number(std::max<int64_t>(0, now - ref.last_access()));
  line.Append(" cas=").Number(ref.cas());
  line.Append(ref.fetched_before() ? " fetch=yes" : " fetch=no").Append(" cls=1 size=");
  line.Number(ref.key().size() + ref.value().size()).Append(proto::reply::kCrlf);
  out->Append(line.view());
}

}  // namespace cinch::server
