#include "net/read_buffer.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace cinch::net {

char* BufferPool::Get() {
  if (!free_.empty()) {
    char* buffer = free_.back();
    free_.pop_back();
    return buffer;
  }
  if (!meter_->Charge(buffer_bytes_)) return nullptr;
  return new char[buffer_bytes_];  // not value-initialized: no zeroing
}

void BufferPool::Put(char* buffer) {
  if (free_.size() < max_cached_) {
    free_.push_back(buffer);
    return;
  }
  delete[] buffer;
  meter_->Release(buffer_bytes_);
}

void BufferPool::Trim() {
  for (char* buffer : free_) {
    delete[] buffer;
    meter_->Release(buffer_bytes_);
  }
  free_.clear();
}

bool ReadBuffer::Acquire() { return buf_ != nullptr || Reallocate(pool_->buffer_bytes()); }

void ReadBuffer::Free() {
  if (buf_ == nullptr) return;
  Deallocate(buf_, capacity_);
  buf_ = nullptr;
  capacity_ = start_ = end_ = 0;
}

void ReadBuffer::Consume(size_t n) {
  CINCH_DCHECK(n <= size());
  start_ += n;
  if (start_ == end_) start_ = end_ = 0;
}

void ReadBuffer::MakeRoom() {
  if (start_ > 0 && space_size() < capacity_ / 4) Compact();
}

void ReadBuffer::Compact() {
  if (start_ == 0) return;
  std::memmove(buf_, buf_ + start_, size());
  end_ -= start_;
  start_ = 0;
}

ReadBuffer::GrowResult ReadBuffer::Grow(size_t limit) {
  if (capacity_ >= limit) return GrowResult::kAtLimit;
  size_t capacity = std::min(limit, std::max(capacity_ * 2, pool_->buffer_bytes()));
  return Reallocate(capacity) ? GrowResult::kGrown : GrowResult::kNoMemory;
}

// Needs no charge, so it works when the budget is exhausted (which is when it is wanted): the
// smaller buffer takes part of the larger one's charge, and the rest is released.
void ReadBuffer::ShrinkToFit() {
  if (buf_ == nullptr) return;
  if (empty()) return Free();
  const size_t fit = (size() + kFitRounding - 1) / kFitRounding * kFitRounding;
  if (fit >= capacity_) return;
  char* buf = new char[fit];
  std::memcpy(buf, buf_ + start_, size());
  delete[] buf_;  // pooled buffers are plain new[] allocations too
  meter_->Release(capacity_ - fit);
  end_ = size();
  start_ = 0;
  buf_ = buf;
  capacity_ = fit;
}

bool ReadBuffer::Reallocate(size_t capacity) {
  char* buf = Allocate(capacity);
  if (buf == nullptr) return false;
  size_t n = size();
  CINCH_CHECK(n <= capacity);
  if (n > 0) std::memcpy(buf, buf_ + start_, n);
  if (buf_ != nullptr) Deallocate(buf_, capacity_);
  buf_ = buf;
  capacity_ = capacity;
  start_ = 0;
  end_ = n;
  return true;
}

char* ReadBuffer::Allocate(size_t capacity) {
  if (capacity == pool_->buffer_bytes()) return pool_->Get();
  if (!meter_->Charge(capacity)) return nullptr;
  return new char[capacity];  // not value-initialized: no zeroing
}

void ReadBuffer::Deallocate(char* buf, size_t capacity) {
  if (capacity == pool_->buffer_bytes()) return pool_->Put(buf);
  delete[] buf;
  meter_->Release(capacity);
}

}  // namespace cinch::net
