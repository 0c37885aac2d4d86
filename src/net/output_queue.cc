#include "net/output_queue.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>

namespace cinch::net {

// --- ChunkPool ---

ChunkPool::ChunkPool(MemoryMeter* meter, size_t max_cached)
    : meter_(meter), max_cached_(max_cached) {
  free_.reserve(max_cached);
}

Chunk* ChunkPool::Get() {
  if (!free_.empty()) {
    Chunk* c = free_.back();
    free_.pop_back();
    return c;
  }
  if (!meter_->Charge(sizeof(Chunk))) return nullptr;
  Chunk* c = new Chunk;  // no parentheses: data[] is left uninitialized
  c->charged = 1;
  return c;
}

Chunk* ChunkPool::GetEmergency() {
  Chunk* c = new Chunk;
  c->charged = 0;
  meter_->NoteUncharged(sizeof(Chunk));
  return c;
}

void ChunkPool::Put(Chunk* chunk) {
  chunk->used = 0;
  chunk->refs = 0;
  if (chunk->charged && free_.size() < max_cached_) {
    free_.push_back(chunk);
    return;
  }
  if (chunk->charged) {
    meter_->Release(sizeof(Chunk));
  } else {
    meter_->NoteUncharged(-static_cast<int64_t>(sizeof(Chunk)));
  }
  delete chunk;
}

bool ChunkPool::Reserve() {
  if (!free_.empty()) return true;
  Chunk* c = Get();
  if (c == nullptr) return false;
  free_.push_back(c);
  return true;
}

void ChunkPool::Trim() {
  for (Chunk* c : free_) {
    meter_->Release(sizeof(Chunk));
    delete c;
  }
  free_.clear();
}

// --- OutputQueue ---

void OutputQueue::Append(std::string_view bytes) {
  while (!bytes.empty()) {
    if (tail_ == nullptr || tail_->used == Chunk::kCapacity) {
      Chunk* old = tail_;
      tail_ = NewChunk();
      if (old != nullptr && old->refs == 0) pool_->Put(old);
    }
    size_t n = std::min(bytes.size(), Chunk::kCapacity - tail_->used);
    char* dst = tail_->data + tail_->used;
    std::memcpy(dst, bytes.data(), n);
    Entry* last = count_ == 0 ? nullptr : &At(count_ - 1);
    if (last != nullptr && last->chunk == tail_ && last->data + last->len == dst) {
      last->len += n;  // contiguous with the previous copy: one iovec
    } else {
      Entry* e = PushEntry();
      *e = Entry{dst, n, nullptr, nullptr, tail_};
      ++tail_->refs;
    }
    tail_->used += static_cast<uint32_t>(n);
    bytes_ += n;
    bytes.remove_prefix(n);
  }
}

void OutputQueue::AppendReference(std::string_view bytes, ReleaseFn release, void* arg) {
  Entry* e = PushEntry();
  *e = Entry{bytes.data(), bytes.size(), release, arg, nullptr};
  bytes_ += bytes.size();
}

bool OutputQueue::Recover() {
  if (starved_ && pool_->Reserve()) starved_ = false;
  return !starved_;
}

size_t OutputQueue::Gather(iovec* iov, size_t max_iov, size_t* n_iov) {
  *n_iov = std::min(count_, max_iov);
  size_t offered = 0;
  for (size_t i = 0; i < *n_iov; ++i) {
    const Entry& e = At(i);
    iov[i].iov_base = const_cast<char*>(e.data);
    iov[i].iov_len = e.len;
    offered += e.len;
  }
  return offered;
}

void OutputQueue::Written(size_t n) {
  Consume(n);
  while (count_ > 0 && At(0).len == 0) PopFront();  // empty references are written at once
  if (count_ == 0) OnEmpty();
}

OutputQueue::WriteResult OutputQueue::WriteTo(int fd, uint64_t* written) {
  iovec iov[IOV_MAX];
  size_t n_iov;
  size_t offered = Gather(iov, IOV_MAX, &n_iov);
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = n_iov;
  ssize_t n;
  do {
    n = offered == 0 ? 0 : sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return errno == EAGAIN || errno == EWOULDBLOCK ? WriteResult::kBlocked : WriteResult::kError;
  }
  *written += static_cast<uint64_t>(n);
  Written(static_cast<size_t>(n));
  return static_cast<size_t>(n) < offered ? WriteResult::kBlocked : WriteResult::kProgress;
}

void OutputQueue::Clear() {
  while (count_ > 0) PopFront();
  bytes_ = 0;
  OnEmpty();
  FreeRing();
  starved_ = false;
}

OutputQueue::Entry* OutputQueue::PushEntry() {
  if (count_ == ring_cap_) {
    size_t cap = ring_cap_ == 0 ? kInitialRing : ring_cap_ * 2;
    bool charged = meter_->Charge(cap * sizeof(Entry));
    if (!charged) {
      meter_->NoteUncharged(static_cast<int64_t>(cap * sizeof(Entry)));
      starved_ = true;
    }
    Entry* ring = new Entry[cap];
    for (size_t i = 0; i < count_; ++i) ring[i] = At(i);
    FreeRing();
    ring_ = ring;
    ring_cap_ = cap;
    ring_charged_ = charged;
    head_ = 0;
  }
  ++count_;
  return &At(count_ - 1);
}

void OutputQueue::PopFront() {
  Entry e = At(0);
  head_ = (head_ + 1) & (ring_cap_ - 1);
  --count_;
  bytes_ -= e.len;
  if (e.release != nullptr) e.release(e.arg);
  if (e.chunk != nullptr) DropChunkRef(e.chunk);
}

void OutputQueue::Consume(size_t n) {
  while (n > 0) {
    Entry& e = At(0);
    if (n < e.len) {
      e.data += n;
      e.len -= n;
      bytes_ -= n;
      return;
    }
    n -= e.len;
    PopFront();
  }
}

void OutputQueue::DropChunkRef(Chunk* chunk) {
  if (--chunk->refs > 0) return;
  if (chunk == tail_) {
    tail_->used = 0;  // everything in it is written: append from the start again
  } else {
    pool_->Put(chunk);
  }
}

Chunk* OutputQueue::NewChunk() {
  Chunk* c = pool_->Get();
  if (c != nullptr) return c;
  starved_ = true;
  return pool_->GetEmergency();
}

void OutputQueue::OnEmpty() {
  if (tail_ != nullptr) {
    pool_->Put(tail_);
    tail_ = nullptr;
  }
  head_ = 0;
  if (ring_cap_ > kKeepRing) FreeRing();
}

void OutputQueue::FreeRing() {
  if (ring_ == nullptr) return;
  size_t bytes = ring_cap_ * sizeof(Entry);
  if (ring_charged_) {
    meter_->Release(bytes);
  } else {
    meter_->NoteUncharged(-static_cast<int64_t>(bytes));
  }
  delete[] ring_;
  ring_ = nullptr;
  ring_cap_ = 0;
  ring_charged_ = false;
}

}  // namespace cinch::net
