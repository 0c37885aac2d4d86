// ReadBuffer: a connection's unconsumed input, one contiguous charged allocation, or none.
//
//   0          start_           end_            capacity_
//   |  consumed  |  unconsumed   |  free for read |
//
// A connection holds a buffer only while it has input to read or to process: an idle one
// releases it (Release), so idle connections cost no buffer memory. Buffers of the usual size
// come from the worker's BufferPool, so steady traffic neither allocates nor touches the shared
// budget. A buffer grows only when a session cannot make progress with a full one, and an idle
// connection holding part of a request gives back what it does not use (ShrinkToFit). Every
// allocation is charged to the MemoryMeter first; growing and shrinking charge the new buffer
// before the old one is released, so the meter never undercounts.
//
// Thread safety: owned by one worker thread.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "net/memory_meter.h"

namespace cinch::net {

// A worker's cache of free read buffers of one size. Cached buffers stay charged.
// Thread safety: owned by one worker thread.
class BufferPool {
 public:
  BufferPool(MemoryMeter* meter, size_t buffer_bytes, size_t max_cached)
      : meter_(meter), buffer_bytes_(buffer_bytes), max_cached_(max_cached) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool() { Trim(); }

  size_t buffer_bytes() const { return buffer_bytes_; }
  // A charged buffer of buffer_bytes(), or null when the budget refuses.
  char* Get();
  void Put(char* buffer);
  // Frees every cached buffer.
  void Trim();

 private:
  MemoryMeter* const meter_;
  const size_t buffer_bytes_;
  const size_t max_cached_;
  std::vector<char*> free_;
};

class ReadBuffer {
 public:
  ReadBuffer(MemoryMeter* meter, BufferPool* pool) : meter_(meter), pool_(pool) {}
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { Free(); }

  // Makes sure there is a buffer (of the pool's size when there is none); false when the
  // budget refuses.
  [[nodiscard]] bool Acquire();
  bool allocated() const { return buf_ != nullptr; }
  // Gives the buffer back if it holds no input.
  void Release() {
    if (empty()) Free();
  }
  void Free();

  std::string_view data() const { return {buf_ + start_, end_ - start_}; }
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
  char* space() { return buf_ + end_; }
  size_t space_size() const { return capacity_ - end_; }
  void Commit(size_t n) { end_ += n; }

  enum class GrowResult { kGrown, kNoMemory, kAtLimit };
  // Doubles, up to `limit` (at least to the pool's size). Not straight to the limit: a
  // session's wanted input is an upper bound (the largest item), and most requests that
  // overflow the buffer are far smaller.
  GrowResult Grow(size_t limit);
  // An idle connection holding part of a request: keeps only its bytes, rounded up to
  // kFitRounding, and releases the rest of its charge (no new charge is needed).
  void ShrinkToFit();
  static constexpr size_t kFitRounding = 512;

 private:
  bool Reallocate(size_t capacity);
  char* Allocate(size_t capacity);
  void Deallocate(char* buf, size_t capacity);

  MemoryMeter* const meter_;
  BufferPool* const pool_;
  char* buf_ = nullptr;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace cinch::net
