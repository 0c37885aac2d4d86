// MemoryMeter: one worker's view of the MemoryBudget. Every buffer byte the worker allocates is
// charged through it first and released through it after being freed, so the total it has
// charged is exact and readable from other threads for LoopStats::buffer_bytes.
//
// Thread safety: Charge and Release only from the owning worker thread; charged() from any.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/check.h"
#include "net/session.h"

namespace cinch::net {

class MemoryMeter {
 public:
  // `budget` may be null: nothing is refused, bytes are still counted.
  explicit MemoryMeter(MemoryBudget* budget) : budget_(budget) {}
  MemoryMeter(const MemoryMeter&) = delete;
  MemoryMeter& operator=(const MemoryMeter&) = delete;
  ~MemoryMeter() { CINCH_DCHECK(charged() == 0); }

  // False: the budget refused; nothing was charged.
  [[nodiscard]] bool Charge(size_t bytes) {
    if (budget_ != nullptr && !budget_->Charge(bytes)) return false;
    Add(&charged_, bytes);
    return true;
  }
  void Release(size_t bytes) {
    CINCH_DCHECK(bytes <= charged());
    if (budget_ != nullptr) budget_->Release(bytes);
    Add(&charged_, -static_cast<uint64_t>(bytes));
  }
  // Memory set aside outside the budget (a connection's own objects: LoopOptions::
  // max_connections of them are reserved), counted but never refused.
  void CountReserved(size_t bytes) { Add(&charged_, bytes); }
  void ReleaseReserved(size_t bytes) {
    CINCH_DCHECK(bytes <= charged());
    Add(&charged_, -static_cast<uint64_t>(bytes));
  }

  // Bytes allocated without a charge because the budget refused and the bytes were needed to
  // finish a reply already begun (see OutputQueue). Never charged later.
  void NoteUncharged(int64_t delta) { Add(&uncharged_, static_cast<uint64_t>(delta)); }

  // The budget is getting short (MemoryBudget::Tight).
  bool tight() const { return budget_ != nullptr && budget_->Tight(); }

  uint64_t charged() const { return charged_.load(std::memory_order_relaxed); }
  uint64_t uncharged() const { return uncharged_.load(std::memory_order_relaxed); }
  // Charges the budget refused so far, to any of its users (MemoryBudget::Refusals).
  uint64_t refusals() const { return budget_ != nullptr ? budget_->Refusals() : 0; }

 private:
  // Single writer: a plain load + store, no locked read-modify-write.
  static void Add(std::atomic<uint64_t>* counter, uint64_t delta) {
    counter->store(counter->load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }

  MemoryBudget* const budget_;
  std::atomic<uint64_t> charged_{0};
  std::atomic<uint64_t> uncharged_{0};
};

}  // namespace cinch::net
