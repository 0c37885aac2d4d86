#include "mem/accountant.h"

#include "common/check.h"

namespace cinch::mem {

bool Accountant::TryCharge(MemoryKind kind, size_t bytes) {
  size_t current = total_.load(std::memory_order_relaxed);
  const size_t limit = this->limit();
  do {
    if (bytes > limit || current > limit - bytes) return false;
  } while (!total_.compare_exchange_weak(current, current + bytes, std::memory_order_relaxed));
  by_kind_[static_cast<int>(kind)].fetch_add(bytes, std::memory_order_relaxed);
  return true;
}

void Accountant::ForceCharge(MemoryKind kind, size_t bytes) {
  total_.fetch_add(bytes, std::memory_order_relaxed);
  by_kind_[static_cast<int>(kind)].fetch_add(bytes, std::memory_order_relaxed);
}

void Accountant::Release(MemoryKind kind, size_t bytes) {
  size_t before = total_.fetch_sub(bytes, std::memory_order_relaxed);
  CINCH_CHECK(before >= bytes);
  by_kind_[static_cast<int>(kind)].fetch_sub(bytes, std::memory_order_relaxed);
}

}  // namespace cinch::mem
