#include "net/read_buffer.h"

#include <algorithm>
#include <cstring>

#include "common/check.h"

namespace cinch::net {

bool ReadBuffer::Init(size_t capacity) {
  CINCH_CHECK(buf_ == nullptr && capacity > 0);
  return Reallocate(capacity);
}

void ReadBuffer::Free() {
  if (buf_ == nullptr) return;
  buf_.reset();
  meter_->Release(capacity_);
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
  std::memmove(buf_.get(), buf_.get() + start_, size());
  end_ -= start_;
  start_ = 0;
}

ReadBuffer::GrowResult ReadBuffer::Grow(size_t limit) {
  if (capacity_ >= limit) return GrowResult::kAtLimit;
  size_t capacity = std::min(limit, capacity_ * 2);
  return Reallocate(capacity) ? GrowResult::kGrown : GrowResult::kNoMemory;
}

void ReadBuffer::ShrinkIfEmpty(size_t capacity) {
  if (empty() && capacity_ > capacity) (void)Reallocate(capacity);
}

bool ReadBuffer::Reallocate(size_t capacity) {
  if (!meter_->Charge(capacity)) return false;
  std::unique_ptr<char[]> buf(new char[capacity]);  // not value-initialized: no zeroing
  size_t n = size();
  CINCH_CHECK(n <= capacity);
  if (n > 0) std::memcpy(buf.get(), buf_.get() + start_, n);
  if (buf_ != nullptr) meter_->Release(capacity_);
  buf_ = std::move(buf);
  capacity_ = capacity;
  start_ = 0;
  end_ = n;
  return true;
}

}  // namespace cinch::net
