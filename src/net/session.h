// The contract between the network layer (src/net) and whatever speaks a protocol over it
// (src/server's memcached dispatch, or a toy backend in tests).
//
// The network layer owns sockets, the event loops and every connection's buffers. For each
// connection it creates one Session through the SessionFactory and feeds it the bytes read;
// the session consumes whole requests and appends replies to an Output.
//
// Thread safety: a Session is used only by the worker thread that owns its connection. The
// factory is called from worker threads concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace cinch::net {

// Where a session writes replies. Implemented by the connection's output queue.
class Output {
 public:
  virtual ~Output() = default;
  // Copies `bytes` into the output.
  virtual void Append(std::string_view bytes) = 0;
  // Queues `bytes` without copying: they must stay valid until release(arg) is called, which
  // happens once they are written to the socket, or when the connection closes. This is how
  // values are written straight from the store's read guards.
  using ReleaseFn = void (*)(void* arg);
  virtual void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) = 0;
  // Bytes queued and not yet written; a session stops producing when this is large.
  virtual size_t pending() const = 0;
};

// What a session asks of its connection after consuming input.
struct SessionResult {
  size_t consumed = 0;     // bytes of input used; the rest is offered again with more data
  size_t swallow = 0;      // discard this many further input bytes before calling again
  bool close = false;      // close the connection once the output is written
  bool need_more = false;  // the rest of the input is an incomplete request
  // The session handed work to another thread (e.g. a disk read) before it can run its next
  // request, and that thread will call Resumer::Resume() once done. Until then the connection
  // is parked: it writes the output already queued but neither reads nor calls the session,
  // and its unconsumed input stays in place, unmoved, so the other thread may read it. Its
  // other connections keep running on the worker. Then the session is called again with the
  // same unconsumed input. Not with `close` or `swallow`. A session that has worked long
  // enough in one call yields the same way: it calls Resume() itself before it returns, and
  // is called again after the connections the worker found ready meanwhile.
  bool wait = false;
};

// How a session that waits (SessionResult::wait) has its connection driven again.
// Implemented by the connection; valid for the session's whole life.
class Resumer {
 public:
  // Any thread, exactly once per wait, after the work is done (it must not touch the session
  // or its input afterwards), or the session itself during the call that returns the wait. The
  // connection, even one closed meanwhile, stays allocated until this call.
  virtual void Resume() = 0;

 protected:
  ~Resumer() = default;
};

class Session {
 public:
  virtual ~Session() = default;
  // Consumes as many complete requests from `input` as it can while output->pending() stays
  // below `output_limit`, appending their replies. Called again with the unconsumed rest plus
  // new bytes, and also with the same input when output has drained (if it stopped early).
  virtual SessionResult OnInput(std::string_view input, Output* output, size_t output_limit) = 0;
  // The largest input the session may need buffered to make progress (e.g. a storage
  // command's whole data block); the connection grows its read buffer up to this.
  virtual size_t WantedInput() const = 0;
  // Called once by the connection before the first OnInput. A session that never waits
  // ignores it.
  virtual void SetResumer(Resumer* resumer) { (void)resumer; }
  // Whether the connection may stay open: false once what it authenticated with was revoked
  // (a user removed from the server's table). Asked by the worker after
  // ServerLoop::RecheckSessions; a connection whose session says false is closed at once, idle
  // or not.
  virtual bool StillAllowed() const { return true; }
};

class SessionFactory {
 public:
  virtual ~SessionFactory() = default;
  virtual std::unique_ptr<Session> NewSession() = 0;
  // What one session takes (its object and whatever it keeps for its whole life), charged
  // with the connection.
  virtual size_t SessionBytes() const = 0;
};

// Memory the network layer uses for buffers is charged here before it is used, so the whole
// process stays within one limit (the server gives connections a budget of their own:
// net/fixed_budget.h). The connections' own objects are not: whoever sets max_connections
// sets aside max_connections * (kConnectionOverhead + SessionBytes()) for them.
class MemoryBudget {
 public:
  virtual ~MemoryBudget() = default;
  // False: the bytes are not available now; charge nothing.
  virtual bool Charge(size_t bytes) = 0;
  virtual void Release(size_t bytes) = 0;
  // Memory is getting short: connections holding much unwritten output stop producing more
  // (LoopOptions::tight_output_limit) so that non-reading clients cannot take it all.
  virtual bool Tight() const { return false; }
  // Charges refused so far, by every user of the budget: a worker that sees it change gives
  // back the buffers its idle connections hold, whichever worker was refused.
  virtual uint64_t Refusals() const { return 0; }
};

}  // namespace cinch::net
