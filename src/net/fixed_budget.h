// FixedBudget: a MemoryBudget with a hard limit of its own, for memory that must never be paid
// for by anything else (a server's connection memory is carved out of -m this way, so that
// connections are refused or throttled when it runs out, and items are never evicted for them).
//
// Thread safety: every method may be called from any thread. Charge is all-or-nothing (a
// compare-and-swap loop), so the charged total never exceeds the limit.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "net/session.h"

namespace cinch::net {

class FixedBudget final : public MemoryBudget {
 public:
  explicit FixedBudget(size_t limit) : limit_(limit) {}

  bool Charge(size_t bytes) override {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ - used) {
        refusals_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void Release(size_t bytes) override { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  // Over half used: connections that hold much unwritten output are throttled early.
  bool Tight() const override { return used() > limit_ / 2; }
  uint64_t Refusals() const override { return refusals_.load(std::memory_order_relaxed); }

  size_t limit() const { return limit_; }
  size_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
  std::atomic<uint64_t> refusals_{0};
};

}  // namespace cinch::net
