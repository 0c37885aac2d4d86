// Counters of the HTTP build cache front end, shared by every HttpSession of one server and
// reported by the server's "stats" command (http_* lines).
//
// Thread safety: relaxed atomics, incremented by worker threads once per request.
#pragma once

#include <atomic>
#include <cstdint>

namespace cinch::http {

struct HttpStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> get_hits{0};    // GET and HEAD answered 200
  std::atomic<uint64_t> get_misses{0};  // GET and HEAD on a cache path answered 404
  std::atomic<uint64_t> puts{0};        // PUT stored (200), including blobs already present
  std::atomic<uint64_t> put_errors{0};  // PUT refused: 400, 411, 413, 507
  std::atomic<uint64_t> errors{0};      // other requests answered 4xx (bad paths, methods, syntax)

  static void Add(std::atomic<uint64_t>* counter) {
    counter->fetch_add(1, std::memory_order_relaxed);
  }
};

}  // namespace cinch::http
