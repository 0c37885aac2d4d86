// The "mixed" workload: gets and sets over a key space for a fixed time, from many
// connections on a few threads, either closed-loop (each connection keeps `pipeline` requests
// in flight: maximum throughput) or open-loop (requests are sent on a Poisson schedule at a
// fixed total rate and latency is measured from the scheduled send time, so a slow server is
// not hidden by the generator waiting for it: no coordinated omission).
//
// Every hit is checked byte for byte. Versions make stale reads visible too: at most one set
// per key is in flight at a time (across all connections), the version a set wrote is known
// once the server acknowledged it, and a get must return at least the version acknowledged
// before it was sent and at most the latest version sent.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "load/histogram.h"
#include "load/protocol.h"
#include "load/connection_set.h"
#include "load/workload.h"

namespace cinch::load {

struct MixedOptions {
  Protocol protocol = Protocol::kMemcache;
  IoMode io = IoMode::kUring;
  sockaddr_in address{};
  int threads = 1;
  int connections = 16;           // in total, spread over the threads
  uint32_t pipeline = 1;          // closed loop: requests in flight per connection
  uint32_t max_inflight = 1024;   // open loop: cap per connection (later requests wait)
  double get_fraction = 0.9;
  double rate = 0;                // open loop: requests per second in total; 0 = closed loop
  double warmup_s = 1;
  double duration_s = 5;
  bool preload = true;            // set every key once (version 1) before the warm-up
  KeyDistribution keys;
  SizeDistribution sizes;
  uint32_t nonce = 1;
};

struct Counters {
  uint64_t gets = 0, hits = 0, misses = 0;
  uint64_t sets = 0, stored = 0, not_stored = 0;
  uint64_t wrong = 0;          // hits whose value failed the check
  uint64_t errors = 0;         // error replies (SERVER_ERROR, -ERR) to gets
  uint64_t sets_as_gets = 0;   // a set turned into a get: every drawn key had a set in flight
  uint64_t late = 0;           // open loop: requests due before the end but never sent
  void Add(const Counters& o);
};

struct MixedResult {
  std::string error;          // "" if the run completed
  IoMode io = IoMode::kUring;  // what the generator used (kEpoll if io_uring was refused)
  double seconds = 0;         // measured window
  Counters counters;          // requests scheduled in the measured window
  Histogram all, get, set;    // latency in ns, measured window
  uint64_t preload_keys = 0, preload_stored = 0;
  double preload_seconds = 0;
  uint64_t preload_bytes = 0;  // key + value bytes sent by the preload
};

MixedResult RunMixed(const MixedOptions& options);

}  // namespace cinch::load
