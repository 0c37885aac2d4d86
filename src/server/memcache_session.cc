// Text protocol commands; meta commands are in meta_commands.cc, stats in stats_command.cc.
#include "server/memcache_session.h"

#include <charconv>
#include <cstring>
#include <utility>

#include "common/check.h"
#include "common/log.h"
#include "common/version.h"
#include "proto/errors.h"
#include "proto/text_auth.h"
#include "server/memory_governor.h"
#include "server/reply_format.h"
#include "server/users.h"

namespace cinch::server {

using proto::Command;
using proto::ParseStatus;

namespace {

proto::ParserLimits LimitsFor(const ServerOptions& o) {
  proto::ParserLimits limits;
  limits.max_item_size = o.store.max_item_size;
  return limits;
}

std::string_view StoreReply(Outcome o) {
  switch (o) {
    case Outcome::kStored:
      return proto::reply::kStored;
    case Outcome::kNotStored:
      return proto::reply::kNotStored;
    case Outcome::kExists:
      return proto::reply::kExists;
    case Outcome::kNotFound:
      return proto::reply::kNotFound;
    case Outcome::kTooLarge:
      return proto::reply::kTooLarge;
    default:
      return proto::reply::kOutOfMemoryStoring;
  }
}

SetMode ModeOf(Command c) {
  switch (c) {
    case Command::kAdd:
      return SetMode::kAdd;
    case Command::kReplace:
      return SetMode::kReplace;
    case Command::kAppend:
      return SetMode::kAppend;
    case Command::kPrepend:
      return SetMode::kPrepend;
    case Command::kCas:
      return SetMode::kCas;
    default:
      return SetMode::kSet;
  }
}

bool IsRetrieval(Command c) {
  return c == Command::kGet || c == Command::kGets || c == Command::kGat || c == Command::kGats;
}

CommandClass ClassOf(Command c) {
  switch (c) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
    case Command::kMetaGet:
      return CommandClass::kGet;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
    case Command::kMetaSet:
      return CommandClass::kSet;
    default:
      return CommandClass::kOther;
  }
}

}  // namespace

MemcacheSession::MemcacheSession(ServerContext* context)
    : context_(context),
      store_(context->store),
      counters_(context->counters.ForThisThread()),
      limits_(LimitsFor(*context->options)) {
  for (Pin& p : pins_) p.owner = this;
}

// The connection releases every queued reference before it destroys its session.
MemcacheSession::~MemcacheSession() {
  CINCH_CHECK(pins_busy_ == 0);
  if (dump_ != nullptr) EndDump();  // the client left during a dump
}

size_t MemcacheSession::WantedInput() const {
  if (protocol_ == Protocol::kBinary) {
    return proto::binary::MaxPacketSize({.max_item_size = limits_.max_item_size});
  }
  return limits_.max_item_size + limits_.max_line + 2;
}

net::SessionResult MemcacheSession::OnInput(std::string_view input, net::Output* out,
                                            size_t output_limit) {
  if (protocol_ == Protocol::kUndecided && !input.empty()) {
    using P = ServerOptions::Protocol;
    const P allowed = context_->options->protocol;
    const bool magic = static_cast<uint8_t>(input[0]) == proto::binary::kRequestMagic;
    protocol_ = allowed == P::kBinary || (allowed == P::kAuto && magic) ? Protocol::kBinary
                                                                        : Protocol::kText;
  }
  if (protocol_ == Protocol::kBinary) return BinaryInput(input, out, output_limit);
  net::SessionResult result;
  size_t pos = 0;
  uint64_t started = MonotonicNanos();
  while (pos < input.size() && out->pending() < output_limit) {
    std::string_view rest = input.substr(pos);
    if (NeedsAuthentication()) {
      size_t used = 0;
      if (!Authenticate(rest, out, &result, &used)) break;
      pos += used;
      Timed(CommandClass::kOther, &started);
      continue;
    }
    if (dump_ != nullptr) {
      const DumpStep step = ContinueDump(out, output_limit);
      if (step == DumpStep::kWait) {
        result.wait = true;
        break;
      }
      if (step == DumpStep::kOutputFull) break;
      pos += EndDump();
      Timed(CommandClass::kOther, &started);
      continue;
    }
    proto::ParseResult pr;
    const bool resumed = std::exchange(tier_waited_, false);
    if (resumed) {
      CINCH_CHECK(rest.data() == tier_waited_at_);  // the connection kept the input in place
      pr = tier_waited_parse_;
    } else {
      pr = in_partial_get_ ? proto::ParseGetContinuation(rest, limits_, &request_)
                           : proto::ParseRequest(rest, limits_, &request_);
    }
    if (pr.status == ParseStatus::kNeedMore) {
      result.need_more = true;
      break;
    }
    if (pr.status == ParseStatus::kError) {
      pos += pr.consumed;
      in_partial_get_ = false;
      if (pr.error == proto::Error::kTooLarge) DropRefusedSet(request_);
      if (!pr.noreply) out->Append(proto::ErrorLine(pr.error));
      Timed(CommandClass::kOther, &started);  // a refused request is a request too
      if (pr.close) {
        result.close = true;
        break;
      }
      size_t here = std::min(pr.swallow, input.size() - pos);
      pos += here;
      if (here < pr.swallow) {
        result.swallow = pr.swallow - here;
        break;
      }
      continue;
    }
    if (context_->promoter != nullptr && NeedsFileTier(request_)) {
      if (!resumed) {
        WaitForFileTier(rest, pr);
        result.wait = true;
        break;
      }
      // Written back to the file since it was promoted: the store reads it on this thread.
      ThreadCounters::Add(counters_->tier_sync_reads);
    }
    if (IsDump(request_)) {
      // Started: the loop's top runs it, its line left in the input until it ends.
      if (StartDump(request_, pr.consumed, out)) continue;
      pos += pr.consumed;
      Timed(CommandClass::kOther, &started);
      continue;
    }
    pos += pr.consumed;
    if (IsRetrieval(request_.command)) {
      std::string_view left = Retrieve(request_, out, output_limit);
      if (!left.empty()) {  // output full: take the line up again at its next key
        pos = static_cast<size_t>(left.data() - input.data());
        request_.partial = true;
        in_partial_get_ = true;
        break;
      }
      Timed(CommandClass::kGet, &started);
      continue;
    }
    if (!Execute(request_, out)) {
      result.close = true;
      break;
    }
    Timed(ClassOf(request_.command), &started);
  }
  result.consumed = pos;
  return result;
}

bool MemcacheSession::Authenticate(std::string_view input, net::Output* out,
                                   net::SessionResult* result, size_t* consumed) {
  const proto::AuthParse a = proto::ParseTextAuth(input, limits_.max_item_size);
  *consumed = a.consumed;
  switch (a.status) {
    case proto::AuthStatus::kNeedMore:
      result->need_more = true;
      return false;
    case proto::AuthStatus::kClose:
      result->close = true;
      return false;
    case proto::AuthStatus::kUnauthenticated:
      out->Append(proto::reply::kUnauthenticated);
      return true;
    case proto::AuthStatus::kBadTermination:
      out->Append(proto::reply::kAuthBadTermination);
      return true;
    case proto::AuthStatus::kBadFormat:
      out->Append(proto::reply::kAuthBadFormat);
      return true;
    case proto::AuthStatus::kCredentials:
      break;
  }
  ThreadCounters::Add(counters_->auth_cmds);
  std::shared_ptr<const User> user = context_->users->Authenticate(a.user, a.password);
  if (user == nullptr) {
    ThreadCounters::Add(counters_->auth_errors);
    out->Append(proto::reply::kAuthFailure);
    return true;
  }
  keyspace_ = user->keyspace;
  auth_generation_ = user->generation;
  out->Append(proto::reply::kStored);
  return true;
}

bool MemcacheSession::StillAllowed() const {
  return auth_generation_ == 0 || context_->users->StillValid(auth_generation_);
}

bool MemcacheSession::NeedsFileTier(const proto::Request& r) {
  TierPromoter::Job& job = tier_job_;
  job.keyspace = keyspace_;
  job.run = nullptr;
  switch (r.command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
      job.keys = r.keys;
      job.form = TierKeys::kList;
      break;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
    case Command::kDelete:
    case Command::kIncr:
    case Command::kDecr:
    case Command::kTouch:
      job.keys = r.key;
      job.form = TierKeys::kOne;
      break;
    case Command::kMetaGet:
    case Command::kMetaSet:
    case Command::kMetaDelete:
    case Command::kMetaArithmetic:
    case Command::kMetaDebug:
      job.keys = r.key;
      job.form = TierKeys::kOne;
      for (uint8_t i = 0; i < r.num_meta_flags; ++i) {
        if (r.meta_flags[i].letter == 'b') job.form = TierKeys::kBase64;
      }
      break;
    default:
      return false;
  }
  bool any = false;
  ForEachTierKey(job.keys, job.form,
                 [&](std::string_view key) { any = any || store_->InFileTier(job.keyspace, key); });
  return any;
}

void MemcacheSession::WaitForFileTier(std::string_view at, const proto::ParseResult& pr) {
  tier_waited_ = true;
  tier_waited_at_ = at.data();
  tier_waited_parse_ = pr;
  ThreadCounters::Add(counters_->tier_waits);
  context_->promoter->Submit(&tier_job_);
}

bool MemcacheSession::Execute(const proto::Request& r, net::Output* out) {
  switch (r.command) {
    case Command::kGet:
    case Command::kGets:
    case Command::kGat:
    case Command::kGats:
    case Command::kLruCrawler:
      CINCH_CHECK(false);  // OnInput runs them (Retrieve, StartDump)
      break;
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      Store(r, out);
      break;
    case Command::kDelete:
      Delete(r, out);
      break;
    case Command::kIncr:
    case Command::kDecr:
      Arithmetic(r, out);
      break;
    case Command::kTouch:
      Touch(r, out);
      break;
    case Command::kFlushAll:
      FlushAll(r, out);
      break;
    case Command::kVersion:
      out->Append(proto::reply::kVersionPrefix);
      out->Append(kServerVersion);
      out->Append(proto::reply::kCrlf);
      break;
    case Command::kVerbosity:
      // The server's log level is the operator's: a tenant's verbosity is accepted and changes
      // nothing (as its "stats settings" is empty). memcached's level is the process's.
      if (keyspace_.id < kFirstTenantKeyspace) log::SetVerbosity(static_cast<int>(r.number));
      Reply(out, proto::reply::kOk, r.noreply);
      break;
    case Command::kQuit:
      return false;
    case Command::kStats:
      Stats(r, out);
      break;
    case Command::kDebugTime:
      DebugTime(r, out);
      break;
    case Command::kCacheMemlimit:
      CacheMemlimit(r, out);
      break;
    case Command::kMetaGet:
      MetaGet(r, out);
      break;
    case Command::kMetaSet:
      MetaSet(r, out);
      break;
    case Command::kMetaDelete:
      MetaDelete(r, out);
      break;
    case Command::kMetaArithmetic:
      MetaArithmetic(r, out);
      break;
    case Command::kMetaNoop:
      out->Append(proto::reply::kMetaNoop);
      break;
    case Command::kMetaDebug:
      MetaDebug(r, out);
      break;
  }
  return true;
}

// --- retrieval ---

std::string_view MemcacheSession::Retrieve(const proto::Request& r, net::Output* out,
                                           size_t output_limit) {
  const bool touch = r.command == Command::kGat || r.command == Command::kGats;
  const bool with_cas = r.command == Command::kGets || r.command == Command::kGats;
  // Without CAS (-C) items never pay for an explicit CAS value; gets reports 0 as memcached.
  const bool ask_cas = with_cas && context_->options->cas_enabled;
  std::string_view rest = r.keys, key;
  ItemRef ref;
  while (proto::NextKey(&rest, &key)) {
    ThreadCounters::Add(counters_->cmd_get);
    if (touch) ThreadCounters::Add(counters_->cmd_touch);
    Miss miss = Miss::kNone;
    // An exptime that expires the item at once returns it, then it is gone (as memcached).
    const bool hit = touch ? store_->GetAndTouch(keyspace_, key, r.exptime, &ref, ask_cas, &miss) ==
                                 Outcome::kTouched
                           : store_->Get(keyspace_, key, &ref, ask_cas, &miss);
    if (!hit && miss == Miss::kNoMemory) {  // kept on file; not a miss (get_oom_extstore)
      get_out_of_memory_ = true;
      continue;
    }
    if (!hit) {
      ThreadCounters::Add(counters_->get_misses);
      if (miss == Miss::kExpired) ThreadCounters::Add(counters_->get_expired);
      if (miss == Miss::kFlushed) ThreadCounters::Add(counters_->get_flushed);
      if (touch) ThreadCounters::Add(counters_->touch_misses);
      continue;
    }
    ThreadCounters::Add(counters_->get_hits);
    if (touch) ThreadCounters::Add(counters_->touch_hits);
    LineBuilder line;
    line.Append(proto::reply::kValuePrefix).Append(key).Char(' ').Number(ref.flags()).Char(' ');
    line.Number(ref.value().size());
    if (with_cas) line.Char(' ').Number(ref.cas());
    line.Append(proto::reply::kCrlf);
    out->Append(line.view());
    AppendValue(&ref, out);
    if (out->pending() >= output_limit) {
      std::string_view left = rest, next;
      if (proto::NextKey(&left, &next)) return rest;
    }
  }
  in_partial_get_ = r.partial;
  if (!r.partial) {
    out->Append(std::exchange(get_out_of_memory_, false) ? proto::reply::kOutOfMemoryGet
                                                         : proto::reply::kEnd);
  }
  return {};
}

void MemcacheSession::AppendValue(ItemRef* ref, net::Output* out, bool crlf) {
  std::string_view value = ref->value();
  if (value.size() >= context_->options->zero_copy_min && pins_busy_ < kMaxPins) {
    for (Pin& p : pins_) {
      if (p.busy) continue;
      p.busy = true;
      ++pins_busy_;
      p.ref = std::move(*ref);
      out->AppendReference(value, &MemcacheSession::ReleasePin, &p);
      if (crlf) out->Append(proto::reply::kCrlf);
      ThreadCounters::Add(counters_->zero_copy_values);
      return;
    }
  }
  out->Append(value);
  if (crlf) out->Append(proto::reply::kCrlf);
  ref->Reset();
  ThreadCounters::Add(counters_->copied_values);
}

void MemcacheSession::ReleasePin(void* arg) {
  Pin* p = static_cast<Pin*>(arg);
  p->ref.Reset();
  p->busy = false;
  --p->owner->pins_busy_;
}

// --- storage ---

void MemcacheSession::Store(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_set);
  SetMode mode = ModeOf(r.command);
  if (mode == SetMode::kCas && !context_->options->cas_enabled) {
    // Without CAS no item has a CAS value a client could hold: memcached answers EXISTS, or
    // NOT_FOUND when there is no item.
    ItemRef ref;
    const bool exists = store_->Peek(keyspace_, r.key, &ref);
    ThreadCounters::Add(exists ? counters_->cas_badval : counters_->cas_misses);
    return Reply(out, exists ? proto::reply::kExists : proto::reply::kNotFound, r.noreply);
  }
  Outcome o =
      store_->Write(keyspace_, mode, r.key, r.data, r.client_flags, r.exptime, r.cas_unique);
  if (mode == SetMode::kCas) {
    if (o == Outcome::kStored) ThreadCounters::Add(counters_->cas_hits);
    if (o == Outcome::kExists) ThreadCounters::Add(counters_->cas_badval);
    if (o == Outcome::kNotFound) ThreadCounters::Add(counters_->cas_misses);
  }
  if (o == Outcome::kStored) ThreadCounters::Add(counters_->total_items);
  if (o == Outcome::kTooLarge) ThreadCounters::Add(counters_->store_too_large);
  // Growing a value past the item size limit is NOT_STORED in memcached, not an error.
  if (o == Outcome::kTooLarge && (mode == SetMode::kAppend || mode == SetMode::kPrepend)) {
    o = Outcome::kNotStored;
  }
  if (o == Outcome::kOutOfMemory) ThreadCounters::Add(counters_->store_no_memory);
  // Errors are sent even with noreply, as memcached does.
  bool error = o == Outcome::kTooLarge || o == Outcome::kOutOfMemory;
  Reply(out, StoreReply(o), r.noreply && !error);
}

void MemcacheSession::Delete(const proto::Request& r, net::Output* out) {
  Outcome o = store_->Delete(keyspace_, r.key);
  bool deleted = o == Outcome::kDeleted;
  ThreadCounters::Add(deleted ? counters_->delete_hits : counters_->delete_misses);
  Reply(out, deleted ? proto::reply::kDeleted : proto::reply::kNotFound, r.noreply);
}

void MemcacheSession::Arithmetic(const proto::Request& r, net::Output* out) {
  const bool incr = r.command == Command::kIncr;
  uint64_t value = 0;
  Outcome o = incr ? store_->Incr(keyspace_, r.key, r.delta, &value)
                   : store_->Decr(keyspace_, r.key, r.delta, &value);
  switch (o) {
    case Outcome::kStored: {
      ThreadCounters::Add(incr ? counters_->incr_hits : counters_->decr_hits);
      if (r.noreply) return;
      LineBuilder line;
      line.Number(value).Append(proto::reply::kCrlf);
      out->Append(line.view());
      return;
    }
    case Outcome::kNotFound:
      ThreadCounters::Add(incr ? counters_->incr_misses : counters_->decr_misses);
      return Reply(out, proto::reply::kNotFound, r.noreply);
    case Outcome::kNonNumeric:  // memcached's noreply hides errors here too
      return Reply(out, proto::reply::kNonNumeric, r.noreply);
    default:
      ThreadCounters::Add(counters_->store_no_memory);
      return Reply(out, proto::reply::kOutOfMemory, r.noreply);
  }
}

void MemcacheSession::Touch(const proto::Request& r, net::Output* out) {
  ThreadCounters::Add(counters_->cmd_touch);
  Outcome o = store_->Touch(keyspace_, r.key, r.exptime);
  if (o == Outcome::kOutOfMemory) return out->Append(proto::reply::kOutOfMemoryStoring);
  bool touched = o == Outcome::kTouched;
  ThreadCounters::Add(touched ? counters_->touch_hits : counters_->touch_misses);
  Reply(out, touched ? proto::reply::kTouched : proto::reply::kNotFound, r.noreply);
}

void MemcacheSession::FlushAll(const proto::Request& r, net::Output* out) {
  if (!context_->options->flush_enabled) return out->Append(proto::reply::kFlushDisabled);
  ThreadCounters::Add(counters_->cmd_flush);
  Flush(r.has_number ? r.number : 0);
  Reply(out, proto::reply::kOk, r.noreply);
}

void MemcacheSession::Flush(int64_t delay_seconds) {
  if (context_->users == nullptr) return store_->FlushAll(delay_seconds);
  store_->FlushAll(keyspace_, delay_seconds);
}

void MemcacheSession::DebugTime(const proto::Request& r, net::Output* out) {
  if (!context_->options->debugtime_enabled) return out->Append(proto::reply::kError);
  switch (r.clock_control) {
    case proto::Request::ClockControl::kPause:
      context_->clock->Pause();
      break;
    case proto::Request::ClockControl::kResume:
      context_->clock->Resume();
      break;
    case proto::Request::ClockControl::kShift:
      context_->clock->Shift(r.number);
      break;
  }
  out->Append(proto::reply::kOk);
}

// memcached's replies and bounds (8 MiB .. 10^9 MiB). The value is a bound on the process,
// like -m; the governor takes the least of it, -m, the cgroup's and the pressure's
// (docs/memory-pressure.md), so a value above -m is accepted and changes nothing. The memory
// is the operator's: a tenant's connection gets ERROR, as for an unknown command.
void MemcacheSession::CacheMemlimit(const proto::Request& r, net::Output* out) {
  constexpr uint64_t kMinMegabytes = 8;
  constexpr uint64_t kMaxMegabytes = 1000000000;
  if (keyspace_.id >= kFirstTenantKeyspace) return Reply(out, proto::reply::kError, r.noreply);
  const uint64_t megabytes = static_cast<uint64_t>(r.number);
  if (megabytes < kMinMegabytes) return Reply(out, proto::reply::kMemlimitTooSmall, r.noreply);
  if (megabytes > kMaxMegabytes) return Reply(out, proto::reply::kMemlimitNotBytes, r.noreply);
  const size_t bytes = static_cast<size_t>(megabytes) << 20;
  if (context_->governor != nullptr) {
    context_->governor->SetCacheMemlimit(bytes);
  } else {
    store_->SetMemoryLimit(bytes);  // a session without a server (tests)
  }
  Reply(out, proto::reply::kOk, r.noreply);
}

std::unique_ptr<net::Session> MemcacheSessionFactory::NewSession() {
  return std::make_unique<MemcacheSession>(context_);
}

}  // namespace cinch::server
