// One client connection speaking memcached's text and meta protocols, or its binary protocol
// (chosen by the connection's first byte, as memcached does: 0x80 is binary): parses requests
// with src/proto, runs them on the store, writes replies to the connection's output.
//
// Values of at least ServerOptions::zero_copy_min bytes are queued by reference while a read
// guard (ItemRef) pins them; the guard is released as soon as the bytes are on the socket. At
// most kMaxPins guards are held per connection (further values are copied), and the output
// limit bounds how long a non-reading client can keep them: it is not read from until it reads.
//
// With a file tier (ServerContext::promoter), a request whose keys the store may have to read
// from the file waits (net::SessionResult::wait) while an I/O thread promotes them, then runs.
//
// With an auth file (ServerContext::users), a connection must authenticate first (memcached's
// text authentication, proto/text_auth.h; docs/auth.md); its user's keyspace is then the one
// every command uses (keyspace_), and the connection is closed when a reload revokes the user.
//
// Thread safety: used by one worker thread only (see net::Session).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "cinch/store.h"
#include "net/session.h"
#include "proto/binary.h"
#include "proto/request.h"
#include "server/server_context.h"
#include "server/tier_promoter.h"

namespace cinch::server {

class MemcacheSession final : public net::Session {
 public:
  explicit MemcacheSession(ServerContext* context);
  ~MemcacheSession() override;
  net::SessionResult OnInput(std::string_view input, net::Output* out,
                             size_t output_limit) override;
  size_t WantedInput() const override;
  void SetResumer(net::Resumer* resumer) override { tier_job_.done = resumer; }
  bool StillAllowed() const override;

 private:
  static constexpr int kMaxPins = 16;
  struct Pin {
    ItemRef ref;
    MemcacheSession* owner = nullptr;
    bool busy = false;
  };

  // File tier: true when `r` names a key the store may have to read from the file; then the
  // keys are in tier_job_ (not yet submitted).
  bool NeedsFileTier(const proto::Request& r);
  // Hands the request's keys to the I/O threads: the session waits for them.
  void WaitForFileTier(std::string_view at, const proto::ParseResult& pr);

  // Before authentication: the exchange at the start of `input`; its bytes consumed, or false
  // when the session needs more input or must close (result says which).
  bool Authenticate(std::string_view input, net::Output* out, net::SessionResult* result,
                    size_t* consumed);
  bool NeedsAuthentication() const { return context_->users != nullptr && auth_generation_ == 0; }

  // Runs one parsed request. Returns false when the connection must close (quit).
  bool Execute(const proto::Request& r, net::Output* out);

  // Text protocol. Retrieve stops early when the output reaches `output_limit` with keys left:
  // it returns the rest of the keys (a view into r.keys), to be taken up again once the output
  // has drained, so one get line of many large values cannot grow the output without bound.
  std::string_view Retrieve(const proto::Request& r, net::Output* out, size_t output_limit);
  void Store(const proto::Request& r, net::Output* out);
  void Delete(const proto::Request& r, net::Output* out);
  void Arithmetic(const proto::Request& r, net::Output* out);
  void Touch(const proto::Request& r, net::Output* out);
  // flush_all: every item without an auth file; with one, the items of the session's
  // keyspace only (a tenant's, or the default keyspace its users share).
  void Flush(int64_t delay_seconds);
  void FlushAll(const proto::Request& r, net::Output* out);
  void Stats(const proto::Request& r, net::Output* out);
  void DebugTime(const proto::Request& r, net::Output* out);
  void CacheMemlimit(const proto::Request& r, net::Output* out);

  // Key dumps (dump_command.cc): "lru_crawler metadump" and "stats cachedump". A dump runs a
  // batch of items at a time as the output drains; its request line stays at the start of the
  // input until it ends. With a file tier, batches that must read the file are listed on an
  // I/O thread (the session waits meanwhile).
  static bool IsDump(const proto::Request& r);
  // Starts the dump `r` asks for (its line is `consumed` bytes): true if it runs from now on,
  // false if it was answered at once (an error, or no class of cinch's named).
  bool StartDump(const proto::Request& r, size_t consumed, net::Output* out);
  enum class DumpStep : uint8_t { kDone, kOutputFull, kWait };
  DumpStep ContinueDump(net::Output* out, size_t output_limit);
  // Ends the dump, giving its memory back; returns its request line's size.
  size_t EndDump();
  // The dump's next batch (Store::ListItems); false: it stopped before items on file.
  bool ListNextBatch(bool may_block);
  static void ListOnIoThread(void* session);

  // Meta protocol (meta_commands.cc).
  void MetaGet(const proto::Request& r, net::Output* out);
  void MetaSet(const proto::Request& r, net::Output* out);
  void MetaDelete(const proto::Request& r, net::Output* out);
  void MetaArithmetic(const proto::Request& r, net::Output* out);
  void MetaDebug(const proto::Request& r, net::Output* out);
  void DropRefusedSet(const proto::Request& r);

  // Binary protocol (binary_commands.cc). BinaryInput is OnInput for a binary connection;
  // ExecuteBinary returns false when the connection must close (quit, a refused packet).
  net::SessionResult BinaryInput(std::string_view input, net::Output* out, size_t output_limit);
  bool BinaryRefused(const proto::binary::ParseResult& pr, net::Output* out);
  // As NeedsFileTier, for a binary request (its key, into tier_job_).
  bool BinaryNeedsFileTier(const proto::binary::Request& r);
  bool ExecuteBinary(const proto::binary::Request& r, net::Output* out);
  void BinaryGet(const proto::binary::Request& r, net::Output* out);
  void BinaryStore(const proto::binary::Request& r, net::Output* out);
  void BinaryDelete(const proto::binary::Request& r, net::Output* out);
  void BinaryArithmetic(const proto::binary::Request& r, net::Output* out);
  uint64_t StoredCas(std::string_view key);  // the CAS value a binary write answers
  void BinaryFlush(const proto::binary::Request& r, net::Output* out);
  void BinaryStats(const proto::binary::Request& r, net::Output* out);
  void BinarySasl(const proto::binary::Request& r, net::Output* out);
  // SASL: on with a users table (-Y); a PLAIN login is checked against it like the text
  // protocol's authentication and takes the user's keyspace.
  bool SaslEnabled() const;
  bool SaslLogin(std::string_view user, std::string_view password);

  // Writes a value: by reference (pinned) when large, copied otherwise. Takes the guard.
  // The text protocol ends it with "\r\n" (crlf), the binary one does not.
  void AppendValue(ItemRef* ref, net::Output* out, bool crlf = true);
  static void ReleasePin(void* arg);
  // Records a request's latency in its class: from *start (the previous request's end, or the
  // input's arrival at the session) to now, which becomes the next request's start. One clock
  // read per request.
  void Timed(CommandClass c, uint64_t* start) {
    const uint64_t now = MonotonicNanos();
    counters_->latency[static_cast<int>(c)].Record(now - *start);
    *start = now;
  }
  void Reply(net::Output* out, std::string_view line, bool noreply) {
    if (!noreply) out->Append(line);
  }

  ServerContext* const context_;
  ::cinch::Store* const store_;
  ThreadCounters* const counters_;
  const proto::ParserLimits limits_;
  // Every store call uses it: the authenticated user's keyspace; Keyspace{} without one.
  Keyspace keyspace_;
  uint64_t auth_generation_ = 0;  // User::generation once authenticated; 0: not
  enum class Protocol : uint8_t { kUndecided, kText, kBinary };
  Protocol protocol_ = Protocol::kUndecided;
  proto::Request request_;
  bool in_partial_get_ = false;
  // A key of the get line being answered was on file with no memory to read it into: the line
  // ends with memcached's out-of-memory error instead of END.
  bool get_out_of_memory_ = false;
  std::array<Pin, kMaxPins> pins_;
  int pins_busy_ = 0;
  // The request that waited for the file tier, as parsed then (parsing again is not idempotent
  // for a get line taken up again): it starts at tier_waited_at_, where the connection keeps
  // the input until resumed.
  TierPromoter::Job tier_job_;
  bool tier_waited_ = false;
  const char* tier_waited_at_ = nullptr;
  proto::ParseResult tier_waited_parse_;
  struct Dump {
    bool metadump = false;      // else stats cachedump
    bool listed_class = false;  // the classes named include cinch's one
    size_t consumed = 0;        // bytes of the request line
    uint32_t limit = 0;         // cachedump: items at most (0: no limit)
    size_t items = 0;           // cachedump: items and bytes written so far
    size_t bytes = 0;
    size_t charged = 0;  // bytes charged to the store (Store::ChargeExternal)
    ListCursor cursor;
    ItemList list;
    size_t next = 0;  // list.items[next] is the next item to write
  };
  std::unique_ptr<Dump> dump_;  // the dump running; null without one
};

class MemcacheSessionFactory final : public net::SessionFactory {
 public:
  explicit MemcacheSessionFactory(ServerContext* context) : context_(context) {}
  std::unique_ptr<net::Session> NewSession() override;
  size_t SessionBytes() const override { return sizeof(MemcacheSession); }

 private:
  ServerContext* const context_;
};

}  // namespace cinch::server
