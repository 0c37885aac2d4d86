// memcached's meta commands (mg ms md ma me) on the store. What the engine does not track is
// not pretended: 'h' and 'l' (hit before, last access) are not returned, the stale/invalidate
// mode ('I') and explicit CAS values ('E') are refused with "CLIENT_ERROR invalid flag", and a
// vivified item ('N') answers 'W' to the client that created it but not 'Z' to later ones.
#include <string>

#include "proto/base64.h"
#include "proto/errors.h"
#include "server/memcache_session.h"
#include "server/reply_format.h"

namespace cinch::server {

namespace {

// The flags of one meta request, decoded. The parser has checked them as memcached does
// (known letters, no duplicates, numbers in range, one mode character).
struct MetaArgs {
  bool base64 = false, quiet = false, value = false, invalidate = false, explicit_cas = false;
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
      case 'E':
        a->explicit_cas = true;
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

// Appends the return flags asked for, in the order they were sent.
struct ItemFacts {
  uint64_t cas = 0;
  uint32_t flags = 0;
  size_t size = 0;
  int64_t ttl = -1;  // remaining seconds, -1 for never
  bool have_item = false;
};

void AppendReturnFlags(const proto::Request& r, const ItemFacts& item, LineBuilder* line) {
  bool base64 = false;
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) base64 |= r.meta_flags[i].letter == 'b';
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    const proto::MetaFlag& f = r.meta_flags[i];
    switch (f.letter) {
      case 'O':
        line->Flag('O', f.token);
        break;
      case 'k':  // a binary key goes back in base64, marked by a 'b' after it (memcached)
        line->Flag('k', r.key);
        if (base64) line->Append(" b");
        break;
      case 'c':
        if (item.have_item) line->Flag('c', item.cas);
        break;
      case 'f':
        if (item.have_item) line->Flag('f', item.flags);
        break;
      case 's':
        if (item.have_item) line->Flag('s', item.size);
        break;
      case 't':
        if (item.have_item) line->Flag('t', item.ttl);
        break;
      default:
        break;
    }
  }
}

int64_t RemainingTtl(int64_t expiry, int64_t now) {
  if (expiry == 0) return -1;
  return expiry > now ? expiry - now : 0;
}

bool Wants(const proto::Request& r, char letter) {
  for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
    if (r.meta_flags[i].letter == letter) return true;
  }
  return false;
}

}  // namespace

void MemcacheSession::MetaGet(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  if (a.invalidate || a.explicit_cas) return out->Append(proto::reply::kMetaInvalidFlag);
  const bool want_cas = Wants(r, 'c') && context_->options->cas_enabled;
  ThreadCounters::Add(counters_->cmd_get);
  ItemRef ref;
  bool hit = a.has_ttl ? store_->GetAndTouch(a.key, a.ttl, &ref, want_cas) == Outcome::kTouched
                       : store_->Get(a.key, &ref, want_cas);
  bool won = false;
  if (!hit && a.has_vivify &&
      store_->Write(SetMode::kAdd, a.key, {}, 0, a.vivify_ttl) == Outcome::kStored) {
    won = true;
    hit = store_->Get(a.key, &ref, want_cas);
  }
  if (!hit) {
    ThreadCounters::Add(counters_->get_misses);
    if (a.quiet) return;
    LineBuilder line;  // a miss still echoes the key and opaque flags (memcached)
    line.Append("EN");
    AppendReturnFlags(r, ItemFacts{}, &line);
    line.Append("\r\n");
    return out->Append(line.view());
  }
  ThreadCounters::Add(counters_->get_hits);
  ItemFacts item{ref.cas(), ref.flags(), ref.value().size(),
                 RemainingTtl(ref.expiry(), context_->clock->NowSeconds()), true};
  if (a.has_recache && item.ttl != -1 && item.ttl < a.recache) won = true;
  LineBuilder line;
  if (a.value) {
    line.Append("VA ").Number(item.size);
  } else {
    line.Append("HD");
  }
  AppendReturnFlags(r, item, &line);
  if (won) line.Append(" W");
  line.Append("\r\n");
  out->Append(line.view());
  if (a.value) AppendValue(&ref, out);
}

void MemcacheSession::MetaSet(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  ThreadCounters::Add(counters_->cmd_set);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  if (a.invalidate || a.explicit_cas) return out->Append(proto::reply::kMetaInvalidFlag);
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
  if (a.has_compare) {
    // The engine compares CAS values for plain sets only.
    if (mode != SetMode::kSet) return out->Append(proto::reply::kMetaInvalidFlag);
    mode = SetMode::kCas;
  }
  Outcome o = store_->Write(mode, a.key, r.data, a.client_flags, a.ttl, a.compare_cas);
  std::string_view code;
  switch (o) {
    case Outcome::kStored:
      code = "HD";
      break;
    case Outcome::kNotStored:
      code = "NS";
      break;
    case Outcome::kExists:
      code = "EX";
      break;
    case Outcome::kNotFound:
      code = "NF";
      break;
    case Outcome::kTooLarge:
      ThreadCounters::Add(counters_->store_too_large);
      return out->Append(proto::reply::kTooLarge);
    default:
      ThreadCounters::Add(counters_->store_no_memory);
      return out->Append(proto::reply::kOutOfMemoryStoring);
  }
  if (o == Outcome::kStored) ThreadCounters::Add(counters_->total_items);
  if (o == Outcome::kStored && a.quiet) return;
  ItemFacts item;
  if (o == Outcome::kStored && Wants(r, 'c') && context_->options->cas_enabled) {
    // The new CAS value, read back: another client may have written the key in between, in
    // which case this is that client's value (documented in docs/server.md).
    ItemRef ref;
    if (store_->Get(a.key, &ref, true)) item.cas = ref.cas();
  }
  item.have_item = Wants(r, 'c');
  LineBuilder line;
  line.Append(code);
  AppendReturnFlags(r, item, &line);
  line.Append("\r\n");
  out->Append(line.view());
}

void MemcacheSession::MetaDelete(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  if (a.invalidate || a.explicit_cas) return out->Append(proto::reply::kMetaInvalidFlag);
  Outcome o = store_->Delete(a.key, a.has_compare ? a.compare_cas : 0);
  std::string_view code = o == Outcome::kDeleted ? "HD" : o == Outcome::kExists ? "EX" : "NF";
  ThreadCounters::Add(o == Outcome::kDeleted ? counters_->delete_hits : counters_->delete_misses);
  if (o == Outcome::kDeleted && a.quiet) return;
  LineBuilder line;
  line.Append(code);
  AppendReturnFlags(r, ItemFacts{}, &line);
  line.Append("\r\n");
  out->Append(line.view());
}

void MemcacheSession::MetaArithmetic(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  if (a.invalidate || a.explicit_cas) return out->Append(proto::reply::kMetaInvalidFlag);
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
  uint64_t value = 0;
  Outcome o = Outcome::kNotFound;
  for (int attempt = 0; attempt < 2; ++attempt) {
    o = incr ? store_->Incr(a.key, a.delta, &value, a.compare_cas)
             : store_->Decr(a.key, a.delta, &value, a.compare_cas);
    if (o != Outcome::kNotFound || !a.has_vivify) break;
    // Created on a miss with the initial value, delta not applied (as memcached).
    std::string initial = std::to_string(a.initial);
    o = store_->Write(SetMode::kAdd, a.key, initial, 0, a.vivify_ttl);
    if (o == Outcome::kStored) {
      value = a.initial;
      break;
    }
    if (o != Outcome::kNotStored) break;  // lost a race with another creator: incr again
  }
  std::string_view code;
  switch (o) {
    case Outcome::kStored:
      ThreadCounters::Add(incr ? counters_->incr_hits : counters_->decr_hits);
      code = "HD";
      break;
    case Outcome::kNotFound:
      ThreadCounters::Add(incr ? counters_->incr_misses : counters_->decr_misses);
      code = "NF";
      break;
    case Outcome::kNotStored:
      code = "NS";
      break;
    case Outcome::kExists:
      code = "EX";
      break;
    case Outcome::kNonNumeric:
      return out->Append(proto::reply::kNonNumeric);
    default:
      return out->Append(proto::reply::kOutOfMemory);
  }
  ItemFacts item;
  if (o == Outcome::kStored) {
    if (a.has_ttl) (void)store_->Touch(a.key, a.ttl);
    if (Wants(r, 't') || Wants(r, 'c')) {
      ItemRef ref;
      if (store_->Get(a.key, &ref, Wants(r, 'c') && context_->options->cas_enabled)) {
        item = ItemFacts{ref.cas(), ref.flags(), ref.value().size(),
                         RemainingTtl(ref.expiry(), context_->clock->NowSeconds()), true};
      }
    }
    if (a.quiet && !a.value) return;
  }
  LineBuilder number;
  number.Number(value);
  LineBuilder line;
  if (o == Outcome::kStored && a.value) {
    line.Append("VA ").Number(number.size());
  } else {
    line.Append(code);
  }
  AppendReturnFlags(r, item, &line);
  line.Append("\r\n");
  out->Append(line.view());
  if (o == Outcome::kStored && a.value) {
    out->Append(number.view());
    out->Append("\r\n");
  }
}

// A set (or ms in set mode) refused as too large before it reached the store still removes the
// value it would have replaced, as memcached does, so no client reads the stale one.
void MemcacheSession::DropRefusedSet(const proto::Request& r) {
  if (r.command == proto::Command::kSet) {
    store_->Delete(r.key);
    return;
  }
  if (r.command != proto::Command::kMetaSet) return;
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return;
  if (a.mode == 0 || a.mode == 'S' || a.mode == 's') store_->Delete(a.key);
}

void MemcacheSession::MetaDebug(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_meta);
  MetaArgs a;
  if (!DecodeArgs(r, &a)) return out->Append(proto::reply::kMetaBadBase64Key);
  ItemRef ref;
  if (!store_->Get(a.key, &ref, context_->options->cas_enabled)) {
    return out->Append(proto::reply::kMetaMiss);
  }
  LineBuilder line;
  line.Append("ME ").Append(r.key).Append(" exp=");
  line.Number(RemainingTtl(ref.expiry(), context_->clock->NowSeconds()));
  line.Append(" la=0 cas=").Number(ref.cas()).Append(" fetch=no cls=1 size=");
  line.Number(ref.key().size() + ref.value().size()).Append("\r\n");
  out->Append(line.view());
}

}  // namespace cinch::server
