// ReadBuffer: a connection's unconsumed input, one contiguous charged allocation.
//
//   0          start_           end_            capacity_
//   |  consumed  |  unconsumed   |  free for read |
//
// It starts at the initial size, grows only when a session cannot make progress with a full
// buffer, and shrinks back to the initial size when the connection is idle. Every allocation
// is charged to the MemoryMeter first; growth and shrinking charge the new buffer before the
// old one is released, so the meter never undercounts.
//
// Thread safety: owned by one worker thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "net/memory_meter.h"

namespace cinch::net {

class ReadBuffer {
 public:
  explicit ReadBuffer(MemoryMeter* meter) : meter_(meter) {}
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { Free(); }

  // Allocates `capacity` bytes; false (and nothing allocated) when the budget refuses.
  [[nodiscard]] bool Init(size_t capacity);
  void Free();

  std::string_view data() const { return {buf_.get() + start_, end_ - start_}; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  size_t capacity() const { return capacity_; }
  // No room for input without growing.
  bool full() const { return start_ == 0 && end_ == capacity_; }

  void Consume(size_t n);
  // Moves unconsumed bytes to the front (only when that frees a useful amount of room).
  void MakeRoom();
  // Moves unconsumed bytes to the front unconditionally.
  void Compact();
  char* space() { return buf_.get() + end_; }
  size_t space_size() const { return capacity_ - end_; }
  void Commit(size_t n) { end_ += n; }

  enum class GrowResult { kGrown, kNoMemory, kAtLimit };
  // Doubles, up to `limit`. Not straight to the limit: a session's wanted input is an upper
  // bound (the largest item), and most requests that overflow the buffer are far smaller.
  GrowResult Grow(size_t limit);
  // Back to `capacity` bytes if empty and larger; keeps the buffer if the budget refuses.
  void ShrinkIfEmpty(size_t capacity);

 private:
  bool Reallocate(size_t capacity);

  MemoryMeter* const meter_;
  std::unique_ptr<char[]> buf_;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace cinch::net
