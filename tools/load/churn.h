// The "churn" workload: RAMCloud's memory-efficiency workloads W1-W8 (Rumble, Kejriwal and
// Ousterhout, "Log-structured Memory for DRAM-based Storage", FAST'14), and "fill" (write N
// keys once, read them all back) for the per-item overhead.
//
//   Phase A  inserts new keys with `before` sizes until the live key + value bytes reach
//            live_fraction x limit (fill: exactly fill_keys keys).
//   Phase B  deletes delete_fraction of the live keys, chosen at random.
//   Phase C  writes `after` sizes: below the live target it inserts new keys; otherwise it
//            overwrites a random live key or inserts a new one (50/50), then deletes random
//            live keys until the live bytes are back at the target; until the key + value
//            bytes written in all phases reach write_factor x limit.
//   Verify   reads every key ever written: a live key must hold exactly its latest value
//            (kept) or be absent (missing: evicted); a deleted key must be absent.
//
// And "shift", a cache whose values change size (memcached's slab calcification case): phase
// A writes new keys with `before` sizes until write_factor x limit bytes were written, phase
// C does the same with `after` sizes; nothing is deleted, the server evicts. Verify reads back
// every key of phase C: `retained_bytes` (key + value bytes of the keys present and correct)
// over the limit says how much of its memory the server gives to the current data.
//
// One thread; every request for a key goes over the same connection, so the server sees a
// key's requests in the order the model made them and the model stays exact. A set the server
// refuses is counted and its key dropped from the model (the server may keep the old value).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>

#include "load/connection_set.h"
#include "load/protocol.h"
#include "load/workload.h"

namespace cinch::load {

struct ChurnOptions {
  Protocol protocol = Protocol::kMemcache;
  IoMode io = IoMode::kUring;
  sockaddr_in address{};
  int connections = 8;
  uint32_t pipeline = 32;
  SizeDistribution before, after;
  double delete_fraction = 0;
  uint64_t limit_bytes = 0;
  double live_fraction = 0.8;
  double write_factor = 3;
  uint64_t fill_keys = 0;  // > 0: the fill workload
  bool shift = false;      // the shift workload
  uint32_t nonce = 1;
  uint64_t seed = 1;
};

struct ChurnResult {
  std::string error;
  IoMode io = IoMode::kUring;  // what the generator used (kEpoll if io_uring was refused)
  uint64_t keys_written = 0;  // distinct keys ever written
  uint64_t live_keys = 0, live_bytes = 0;
  uint64_t kept = 0, missing = 0;
  uint64_t wrong = 0;            // live keys with a wrong value, plus deleted keys present
  uint64_t deleted_present = 0;  // of which: deleted keys still readable
  uint64_t not_stored = 0;       // sets the server refused
  uint64_t errors = 0;           // error replies to gets and deletes
  uint64_t sets = 0, deletes = 0, gets = 0;
  uint64_t bytes_written = 0;    // key + value bytes of all sets
  uint64_t retained_bytes = 0;   // shift: key + value bytes of phase C keys kept
  double seconds_a = 0, seconds_b = 0, seconds_c = 0, seconds_verify = 0;
};

ChurnResult RunChurn(const ChurnOptions& options);

}  // namespace cinch::load
