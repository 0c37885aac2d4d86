// Accountant: the single counter of resident bytes charged against the hard memory limit.
//
// Every component that makes memory resident (segments, jumbo items, index pages, metadata, the
// embedder's buffers) charges it here first and releases it after giving it back. A charge
// never takes the total over the limit: TryCharge either charges all the bytes or none. The
// limit may be lowered below the total (SetLimit, Store::SetMemoryLimit): nothing more can be
// charged then until releases bring the total under it (the cleaner evicts for that).
//
// Thread safety: all methods are lock-free and safe from any thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace cinch::mem {

// kStaging: values of streaming writes small enough to be copied into a segment at commit,
// held in heap buffers until then (docs/keyspaces.md).
enum class MemoryKind { kSegments, kJumbo, kIndex, kMetadata, kExternal, kStaging, kCount };

class Accountant {
 public:
  explicit Accountant(size_t limit) : limit_(limit) {}

  // Changes the limit. Charges already made stay; a total above the new limit only blocks new
  // charges until enough is released.
  void SetLimit(size_t limit) { limit_.store(limit, std::memory_order_relaxed); }

  // Charges `bytes` of `kind` if the total stays within the limit; returns false otherwise.
  bool TryCharge(MemoryKind kind, size_t bytes);
  // Charges unconditionally (used only for fixed metadata checked against the limit at Open).
  void ForceCharge(MemoryKind kind, size_t bytes);
  void Release(MemoryKind kind, size_t bytes);

  size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  size_t total() const { return total_.load(std::memory_order_relaxed); }
  size_t Available() const {
    size_t t = total(), l = limit();
    return t >= l ? 0 : l - t;
  }
  // Bytes charged beyond the limit (after it was lowered); 0 normally.
  size_t Excess() const {
    size_t t = total(), l = limit();
    return t > l ? t - l : 0;
  }
  size_t ByKind(MemoryKind kind) const {
    return by_kind_[static_cast<int>(kind)].load(std::memory_order_relaxed);
  }

 private:
  std::atomic<size_t> limit_;
  std::atomic<size_t> total_{0};
  std::atomic<size_t> by_kind_[static_cast<int>(MemoryKind::kCount)] = {};
};

}  // namespace cinch::mem
