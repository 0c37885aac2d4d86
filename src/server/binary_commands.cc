// memcached's binary protocol on a MemcacheSession (docs/server.md, "Binary protocol"):
// packets parsed by proto/binary.h, run on the same store calls and counters as the text
// commands, answered the way memcached 1.6.18's proto_bin.c answers them.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "common/check.h"
#include "common/version.h"
#include "proto/binary.h"
#include "proto/errors.h"
#include "server/memcache_session.h"
#include "server/tier_promoter.h"
#include "server/users.h"

namespace cinch::server {

namespace bin = proto::binary;
using bin::Opcode;
using bin::Status;

namespace {

// memcached's binary exptime meaning "do not create the item on an incr/decr miss".
constexpr uint32_t kNoInitialValue = 0xffffffff;

// A response: header, extras and key in one piece (at most 24 + 20 + 250 bytes), then the
// value, copied.
void Respond(net::Output* out, const bin::Request& r, Status status, uint64_t cas,
             std::string_view extras = {}, std::string_view key = {}, std::string_view value = {}) {
  char head[bin::kHeaderSize + bin::kMaxExtras + bin::kMaxKeySize];
  CINCH_CHECK(extras.size() <= bin::kMaxExtras && key.size() <= bin::kMaxKeySize);
  bin::EncodeResponseHeader(
      {.opcode = r.opcode,
       .status = status,
       .extlen = static_cast<uint8_t>(extras.size()),
       .keylen = static_cast<uint16_t>(key.size()),
       .bodylen = static_cast<uint32_t>(extras.size() + key.size() + value.size()),
       .opaque = r.opaque,
       .cas = cas},
      head);
  if (!extras.empty()) std::memcpy(head + bin::kHeaderSize, extras.data(), extras.size());
  if (!key.empty()) std::memcpy(head + bin::kHeaderSize + extras.size(), key.data(), key.size());
  out->Append(std::string_view(head, bin::kHeaderSize + extras.size() + key.size()));
  if (!value.empty()) out->Append(value);
}

// Errors are answered even to quiet commands, with memcached's text as the body.
void Error(net::Output* out, const bin::Request& r, Status status) {
  Respond(out, r, status, 0, {}, {}, bin::StatusMessage(status));
}

// A success: quiet commands do not answer it.
void Success(net::Output* out, const bin::Request& r, uint64_t cas = 0,
             std::string_view value = {}) {
  if (!bin::IsQuiet(r.opcode)) Respond(out, r, Status::kSuccess, cas, {}, {}, value);
}

// Before authentication memcached serves only these (and answers anything else with
// kAuthError, then closes).
bool AllowedBeforeAuth(Opcode op) {
  switch (op) {
    case Opcode::kSaslListMechs:
    case Opcode::kSaslAuth:
    case Opcode::kSaslStep:
    case Opcode::kVersion:
      return true;
    default:
      return false;
  }
}

// Collects the text protocol's stats reply, which BinaryStats turns into packets.
class StringOutput final : public net::Output {
 public:
  void Append(std::string_view bytes) override { text_.append(bytes); }
  void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) override {
    text_.append(bytes);
    release(arg);
  }
  size_t pending() const override { return text_.size(); }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

CommandClass ClassOf(Opcode op) {
  switch (bin::BaseOpcode(op)) {
    case Opcode::kGet:
    case Opcode::kGetK:
    case Opcode::kGat:
    case Opcode::kGatK:
      return CommandClass::kGet;
    case Opcode::kSet:
    case Opcode::kAdd:
    case Opcode::kReplace:
    case Opcode::kAppend:
    case Opcode::kPrepend:
      return CommandClass::kSet;
    default:
      return CommandClass::kOther;
  }
}

}  // namespace

net::SessionResult MemcacheSession::BinaryInput(std::string_view input, net::Output* out,
                                                size_t output_limit) {
  const bin::ParserLimits limits{.max_item_size = limits_.max_item_size};
  net::SessionResult result;
  size_t pos = 0;
  uint64_t started = MonotonicNanos();
  while (pos < input.size() && out->pending() < output_limit) {
    const bool resumed = std::exchange(tier_waited_, false);
    // The connection kept the packet that waited for the file tier in place.
    if (resumed) CINCH_CHECK(input.data() + pos == tier_waited_at_);
    bin::Request request;
    bin::ParseResult pr = bin::ParseRequest(input.substr(pos), limits, &request);
    if (pr.status == bin::ParseStatus::kNeedMore) {
      result.need_more = true;
      break;
    }
    pos += pr.consumed;
    if (pr.status == bin::ParseStatus::kError) {
      const bool go_on = BinaryRefused(pr, out);
      Timed(CommandClass::kOther, &started);  // a refused request is a request too
      if (!go_on) {
        result.close = true;
        break;
      }
      const size_t here = std::min(pr.swallow, input.size() - pos);
      pos += here;
      if (here < pr.swallow) {
        result.swallow = pr.swallow - here;
        break;
      }
      continue;
    }
    if (context_->promoter != nullptr && BinaryNeedsFileTier(request)) {
      if (!resumed) {  // the packet stays unconsumed; parsed again when resumed
        tier_waited_ = true;
        tier_waited_at_ = input.data() + pos - pr.consumed;
        ThreadCounters::Add(counters_->tier_waits);
        context_->promoter->Submit(&tier_job_);
        pos -= pr.consumed;
        result.wait = true;
        break;
      }
      // Written back to the file since it was promoted: the store reads it on this thread.
      ThreadCounters::Add(counters_->tier_sync_reads);
    }
    if (!ExecuteBinary(request, out)) {
      result.close = true;
      break;
    }
    Timed(ClassOf(request.opcode), &started);
  }
  result.consumed = pos;
  return result;
}

bool MemcacheSession::BinaryNeedsFileTier(const bin::Request& r) {
  switch (bin::BaseOpcode(r.opcode)) {
    case Opcode::kStat:
    case Opcode::kSaslAuth:
    case Opcode::kSaslStep:
      return false;
    default:
      break;
  }
  if (r.key.empty()) return false;
  tier_job_.keyspace = keyspace_;
  tier_job_.keys = r.key;
  tier_job_.form = TierKeys::kOne;
  return store_->InFileTier(keyspace_, r.key);
}

bool MemcacheSession::BinaryRefused(const bin::ParseResult& pr, net::Output* out) {
  const bin::Request& r = pr.request;
  switch (pr.error) {
    case bin::Error::kBadMagic:
      return false;
    case bin::Error::kBadLengths:  // memcached checks these before authentication
      Error(out, r, pr.reply);
      return false;
    default:
      break;
  }
  if (NeedsAuthentication() && !AllowedBeforeAuth(bin::BaseOpcode(r.opcode))) {
    Error(out, r, Status::kAuthError);
    return false;
  }
  if (pr.error == bin::Error::kTooLarge) {
    ThreadCounters::Add(counters_->cmd_set);
    ThreadCounters::Add(counters_->store_too_large);
    // A set that cannot be stored must not leave the old value readable (as memcached).
    if (bin::BaseOpcode(r.opcode) == Opcode::kSet) (void)store_->Delete(keyspace_, r.key);
  }
  Error(out, r, pr.reply);
  return !pr.close;
}

bool MemcacheSession::ExecuteBinary(const bin::Request& r, net::Output* out) {
  const Opcode base = bin::BaseOpcode(r.opcode);
  if (NeedsAuthentication() && !AllowedBeforeAuth(base)) {
    Error(out, r, Status::kAuthError);
    return false;
  }
  switch (base) {
    case Opcode::kGet:
    case Opcode::kGetK:
    case Opcode::kTouch:
    case Opcode::kGat:
    case Opcode::kGatK:
      BinaryGet(r, out);
      break;
    case Opcode::kSet:
    case Opcode::kAdd:
    case Opcode::kReplace:
    case Opcode::kAppend:
    case Opcode::kPrepend:
      BinaryStore(r, out);
      break;
    case Opcode::kDelete:
      BinaryDelete(r, out);
      break;
    case Opcode::kIncrement:
    case Opcode::kDecrement:
      BinaryArithmetic(r, out);
      break;
    case Opcode::kQuit:
      Success(out, r);
      return false;
    case Opcode::kFlush:
      BinaryFlush(r, out);
      break;
    case Opcode::kNoop:
      Success(out, r);
      break;
    case Opcode::kVersion:
      Success(out, r, 0, kServerVersion);
      break;
    case Opcode::kStat:
      BinaryStats(r, out);
      break;
    case Opcode::kSaslListMechs:
    case Opcode::kSaslAuth:
    case Opcode::kSaslStep:
      BinarySasl(r, out);
      break;
    default:
      CINCH_CHECK(false);  // the parser refuses every other opcode
  }
  return true;
}

// get, getk, touch, gat, gatk and their quiet forms. A hit answers the flags as extras, the key
// (k forms) and the value (not touch); a quiet miss answers nothing.
void MemcacheSession::BinaryGet(const bin::Request& r, net::Output* out) {
  const Opcode base = bin::BaseOpcode(r.opcode);
  const bool touch = base == Opcode::kTouch || base == Opcode::kGat || base == Opcode::kGatK;
  const bool with_key = base == Opcode::kGetK || base == Opcode::kGatK;
  const bool with_value = base != Opcode::kTouch;
  // Binary replies always carry the CAS value, so the item keeps it (docs/server.md).
  const bool ask_cas = context_->options->cas_enabled;
  ItemRef ref;
  Miss miss = Miss::kNone;
  bool hit;
  if (touch) {
    ThreadCounters::Add(counters_->cmd_touch);
    const int64_t exptime = bin::LoadBig32(r.extras.data());
    Outcome o = store_->GetAndTouch(keyspace_, r.key, exptime, &ref, ask_cas, &miss);
    if (o == Outcome::kOutOfMemory) return Error(out, r, Status::kOutOfMemory);
    hit = o == Outcome::kTouched;
    ThreadCounters::Add(hit ? counters_->touch_hits : counters_->touch_misses);
  } else {
    ThreadCounters::Add(counters_->cmd_get);
    hit = store_->Get(keyspace_, r.key, &ref, ask_cas, &miss);
    // On file with no memory to read it into: kept, and an error even when quiet.
    if (miss == Miss::kNoMemory) return Error(out, r, Status::kOutOfMemory);
    ThreadCounters::Add(hit ? counters_->get_hits : counters_->get_misses);
    if (miss == Miss::kExpired) ThreadCounters::Add(counters_->get_expired);
    if (miss == Miss::kFlushed) ThreadCounters::Add(counters_->get_flushed);
  }
  if (!hit) {
    if (bin::IsQuiet(r.opcode)) return;
    if (with_key) return Respond(out, r, Status::kKeyNotFound, 0, {}, r.key);
    return Error(out, r, Status::kKeyNotFound);
  }
  char flags[4];
  bin::StoreBig32(ref.flags(), flags);
  const std::string_view key = with_key ? r.key : std::string_view();
  const std::string_view value = with_value ? ref.value() : std::string_view();
  // The header announces the value, which follows by reference when large.
  char head[bin::kHeaderSize + sizeof(flags) + bin::kMaxKeySize];
  bin::EncodeResponseHeader(
      {.opcode = r.opcode,
       .status = Status::kSuccess,
       .extlen = sizeof(flags),
       .keylen = static_cast<uint16_t>(key.size()),
       .bodylen = static_cast<uint32_t>(sizeof(flags) + key.size() + value.size()),
       .opaque = r.opaque,
       .cas = ref.cas()},
      head);
  std::memcpy(head + bin::kHeaderSize, flags, sizeof(flags));
  if (!key.empty()) std::memcpy(head + bin::kHeaderSize + sizeof(flags), key.data(), key.size());
  out->Append(std::string_view(head, bin::kHeaderSize + sizeof(flags) + key.size()));
  if (value.empty()) return ref.Reset();
  AppendValue(&ref, out, /*crlf=*/false);
}

// set, add, replace (extras: flags, exptime), append, prepend (no extras). A CAS value in the
// header makes set/add/replace a compare-and-swap, and append/prepend conditional on it.
void MemcacheSession::BinaryStore(const bin::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_set);
  const Opcode base = bin::BaseOpcode(r.opcode);
  const bool cas_enabled = context_->options->cas_enabled;
  const uint64_t cas = cas_enabled ? r.cas : 0;  // without CAS memcached ignores it
  SetMode mode = SetMode::kSet;
  uint32_t flags = 0;
  int64_t exptime = 0;
  switch (base) {
    case Opcode::kAppend:
      mode = SetMode::kAppend;
      break;
    case Opcode::kPrepend:
      mode = SetMode::kPrepend;
      break;
    default:
      mode = cas != 0                   ? SetMode::kCas
             : base == Opcode::kAdd     ? SetMode::kAdd
             : base == Opcode::kReplace ? SetMode::kReplace
                                        : SetMode::kSet;
      flags = bin::LoadBig32(r.extras.data());
      exptime = bin::LoadBig32(r.extras.data() + 4);
  }
  Outcome o = store_->Write(keyspace_, mode, r.key, r.value, flags, exptime, cas);
  if (mode == SetMode::kCas) {
    if (o == Outcome::kStored) ThreadCounters::Add(counters_->cas_hits);
    if (o == Outcome::kExists) ThreadCounters::Add(counters_->cas_badval);
    if (o == Outcome::kNotFound) ThreadCounters::Add(counters_->cas_misses);
  }
  switch (o) {
    case Outcome::kStored:
      ThreadCounters::Add(counters_->total_items);
      if (bin::IsQuiet(r.opcode)) return;
      return Success(out, r, StoredCas(r.key));
    case Outcome::kNotStored:
      return Error(out, r,
                   base == Opcode::kAdd       ? Status::kKeyExists
                   : base == Opcode::kReplace ? Status::kKeyNotFound
                                              : Status::kNotStored);
    case Outcome::kExists:
      return Error(out, r, Status::kKeyExists);
    case Outcome::kNotFound:
      return Error(out, r, Status::kKeyNotFound);
    case Outcome::kTooLarge:
      ThreadCounters::Add(counters_->store_too_large);
      // Growing a value past the limit is "not stored" in memcached, as in the text protocol.
      return Error(out, r,
                   mode == SetMode::kAppend || mode == SetMode::kPrepend ? Status::kNotStored
                                                                         : Status::kTooLarge);
    default:
      ThreadCounters::Add(counters_->store_no_memory);
      return Error(out, r, Status::kOutOfMemory);
  }
}

void MemcacheSession::BinaryDelete(const bin::Request& r, net::Output* out) {
  Outcome o = store_->Delete(keyspace_, r.key, r.cas);
  switch (o) {
    case Outcome::kDeleted:
      ThreadCounters::Add(counters_->delete_hits);
      return Success(out, r);
    case Outcome::kExists:
      return Error(out, r, Status::kKeyExists);
    default:
      ThreadCounters::Add(counters_->delete_misses);
      return Error(out, r, Status::kKeyNotFound);
  }
}

// incr/decr, extras: delta (8), initial value (8), exptime (4). A miss creates the item with
// the initial value (delta not applied) unless the exptime is 0xffffffff. The reply's value is
// the new number, 8 bytes big-endian.
void MemcacheSession::BinaryArithmetic(const bin::Request& r, net::Output* out) {
  const bool incr = bin::BaseOpcode(r.opcode) == Opcode::kIncrement;
  const uint64_t delta = bin::LoadBig64(r.extras.data());
  const uint64_t initial = bin::LoadBig64(r.extras.data() + 8);
  const uint32_t exptime = bin::LoadBig32(r.extras.data() + 16);
  const bool cas_enabled = context_->options->cas_enabled;
  const uint64_t cas = cas_enabled ? r.cas : 0;
  uint64_t value = 0;
  Outcome o = incr ? store_->Incr(keyspace_, r.key, delta, &value, cas)
                   : store_->Decr(keyspace_, r.key, delta, &value, cas);
  if (o == Outcome::kStored) {
    ThreadCounters::Add(incr ? counters_->incr_hits : counters_->decr_hits);
  } else if (o == Outcome::kNotFound && exptime != kNoInitialValue) {
    o = store_->Write(keyspace_, SetMode::kAdd, r.key, std::to_string(initial), 0, exptime);
    value = initial;
  }
  switch (o) {
    case Outcome::kStored: {
      if (bin::IsQuiet(r.opcode)) return;
      char number[8];
      bin::StoreBig64(value, number);
      return Success(out, r, StoredCas(r.key), std::string_view(number, sizeof(number)));
    }
    case Outcome::kNotFound:
      ThreadCounters::Add(incr ? counters_->incr_misses : counters_->decr_misses);
      return Error(out, r, Status::kKeyNotFound);
    case Outcome::kNonNumeric:
      return Error(out, r, Status::kNonNumeric);
    case Outcome::kExists:
      return Error(out, r, Status::kKeyExists);
    case Outcome::kNotStored:  // another client created it first, as memcached answers
      return Error(out, r, Status::kNotStored);
    default:
      ThreadCounters::Add(counters_->store_no_memory);
      return Error(out, r, Status::kOutOfMemory);
  }
}

// The CAS value a write's reply carries: the item's, read back (a later writer's if one came
// in between, as `ms ... c`). An item already gone (its exptime was past, or it was deleted
// meanwhile) had one in memcached too: an unused value stands for it. 0 with CAS disabled.
uint64_t MemcacheSession::StoredCas(std::string_view key) {
  if (!context_->options->cas_enabled) return 0;
  ItemRef ref;
  return store_->Peek(keyspace_, key, &ref, true) ? ref.cas() : store_->UnusedCas();
}

void MemcacheSession::BinaryFlush(const bin::Request& r, net::Output* out) {
  // memcached -F answers a binary flush with an authentication error.
  if (!context_->options->flush_enabled) return Error(out, r, Status::kAuthError);
  ThreadCounters::Add(counters_->cmd_flush);
  const int64_t delay = r.extras.size() == 4 ? bin::LoadBig32(r.extras.data()) : 0;
  Flush(delay);
  Success(out, r);
}

// One packet per statistic (key: name, value: its text), then an empty one; the groups
// memcached serves in binary (bin::StatGroup), produced by the text "stats <group>" (one place
// for every statistic).
void MemcacheSession::BinaryStats(const bin::Request& r, net::Output* out) {
  proto::Request text;
  text.command = proto::Command::kStats;
  if (!bin::StatGroup(r.key, &text.stats_arg)) return Error(out, r, Status::kKeyNotFound);
  StringOutput lines;
  Stats(text, &lines);
  std::string_view rest = lines.text();
  if (rest == proto::reply::kError) return Error(out, r, Status::kKeyNotFound);
  const std::string_view prefix = proto::reply::kStatPrefix;
  while (rest.substr(0, prefix.size()) == prefix) {
    const size_t end = rest.find(proto::reply::kCrlf);
    CINCH_CHECK(end != std::string_view::npos);
    std::string_view line = rest.substr(prefix.size(), end - prefix.size());
    rest.remove_prefix(end + proto::reply::kCrlf.size());
    const size_t space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    const std::string_view value =
        space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    Respond(out, r, Status::kSuccess, 0, {}, name, value);
  }
  Respond(out, r, Status::kSuccess, 0);  // "END" or "RESET"
}

// SASL with the PLAIN mechanism only. While SASL is off the opcodes are unknown commands, as
// in memcached without -S.
void MemcacheSession::BinarySasl(const bin::Request& r, net::Output* out) {
  if (!SaslEnabled()) return Error(out, r, Status::kUnknownCommand);
  const Opcode base = bin::BaseOpcode(r.opcode);
  if (base == Opcode::kSaslListMechs) return Success(out, r, 0, bin::kSaslMechanisms);
  bin::SaslPlain plain;
  // PLAIN is one step: a step, another mechanism or a bad message is a failure.
  const bool ok = base == Opcode::kSaslAuth && r.key == bin::kSaslMechanisms &&
                  bin::ParseSaslPlain(r.value, &plain) && SaslLogin(plain.user, plain.password);
  if (!ok) return Error(out, r, Status::kAuthError);
  Success(out, r, 0, bin::kSaslAuthenticated);
}

// Without a users table (-Y/-S) SASL is off; with one, a PLAIN login is checked against it as
// the text protocol's authentication is, and sets the session's keyspace to the user's.
bool MemcacheSession::SaslEnabled() const { return context_->users != nullptr; }

bool MemcacheSession::SaslLogin(std::string_view user, std::string_view password) {
  ThreadCounters::Add(counters_->auth_cmds);
  std::shared_ptr<const User> u = context_->users->Authenticate(user, password);
  if (u == nullptr) {
    ThreadCounters::Add(counters_->auth_errors);
    return false;
  }
  keyspace_ = u->keyspace;
  auth_generation_ = u->generation;
  return true;
}

}  // namespace cinch::server
