// OutputQueue: a connection's unwritten replies, the Output a Session appends to.
//
// Copied bytes go into 16 KiB chunks taken from the worker's ChunkPool; references are queued
// as they are. The queue is a ring of entries, each a span that is either part of a chunk or
// a reference; WriteTo() hands up to IOV_MAX of them to one sendmsg().
//
//   entries (ring)          chunks
//   +------------------+    +-----------------------------------------+
//   | chunk A [0, 40)  |--->| A: "VALUE k 0 5000\r\n" ... "END\r\n"   |  refs = 2
//   | ref  (5000 B)    |    +-----------------------------------------+
//   | chunk A [40, 47) |
//   +------------------+
//
// A chunk returns to the pool when no entry points into it any more and it is not the one
// being appended to; when the queue empties, that last chunk goes back too, so an idle
// connection holds no output memory.
//
// Memory: chunks and the entry ring are charged to the worker's MemoryMeter. When a charge is
// refused the bytes are still needed (a reply may be half written), so the queue allocates
// them uncharged and turns *starved*: pending() then reports kStarvedPending, far above any
// output limit, so the session stops after the current request; the connection does not call
// it again until Recover() can charge a spare chunk. The overshoot is therefore at most the
// copied part of one request's reply (values go by reference) per starved connection.
//
// Thread safety: owned by one worker thread.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "net/memory_meter.h"
#include "net/session.h"

namespace cinch::net {

// One output buffer; exactly kChunkBytes including its header.
struct Chunk {
  static constexpr size_t kBytes = 16 * 1024;
  static constexpr size_t kHeader = 3 * sizeof(uint32_t);
  static constexpr size_t kCapacity = kBytes - kHeader;

  uint32_t used = 0;     // bytes of data[] appended so far
  uint32_t refs = 0;     // entries pointing into data[]
  uint32_t charged = 0;  // 1: charged to the meter; 0: an uncharged emergency chunk
  char data[kCapacity];
};
static_assert(sizeof(Chunk) == Chunk::kBytes);

// A worker's cache of free chunks, so steady traffic never allocates. Cached chunks stay
// charged. Thread safety: owned by one worker thread.
class ChunkPool {
 public:
  ChunkPool(MemoryMeter* meter, size_t max_cached);
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;
  ~ChunkPool() { Trim(); }

  // A charged chunk, or null when the budget refuses.
  Chunk* Get();
  // An uncharged chunk; never fails. Only to finish a reply already begun.
  Chunk* GetEmergency();
  void Put(Chunk* chunk);
  // Makes sure a charged chunk is cached; false when the budget refuses.
  bool Reserve();
  // Frees every cached chunk.
  void Trim();

 private:
  MemoryMeter* const meter_;
  const size_t max_cached_;
  std::vector<Chunk*> free_;
};

class OutputQueue final : public Output {
 public:
  static constexpr size_t kStarvedPending = std::numeric_limits<size_t>::max() / 4;

  OutputQueue(ChunkPool* pool, MemoryMeter* meter) : pool_(pool), meter_(meter) {}
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;
  ~OutputQueue() override { Clear(); }

  void Append(std::string_view bytes) override;
  void AppendReference(std::string_view bytes, ReleaseFn release, void* arg) override;
  size_t pending() const override { return starved_ ? kStarvedPending : bytes_; }

  // Bytes queued and unwritten, whether or not starved.
  size_t bytes() const { return bytes_; }
  bool empty() const { return count_ == 0; }
  bool starved() const { return starved_; }
  // Leaves the starved state if a spare chunk can be charged now.
  bool Recover();

  enum class WriteResult {
    kProgress,  // wrote everything offered; more may remain
    kBlocked,   // the socket is full (EAGAIN or a short write): wait for EPOLLOUT
    kError,     // the connection is broken
  };
  // One sendmsg() of up to IOV_MAX entries. Adds the bytes written to *written.
  WriteResult WriteTo(int fd, uint64_t* written);

  // For a send that completes later (io_uring): describes the first entries in `iov` (at most
  // max_iov; *n_iov says how many) and returns their bytes. The bytes stay valid and in place
  // until Written() or Clear(): appending never moves queued data.
  size_t Gather(iovec* iov, size_t max_iov, size_t* n_iov);
  // `n` bytes from the front were written: releases what they used.
  void Written(size_t n);

  // Drops everything unwritten: references are released, chunks go back to the pool, the
  // entry ring is freed.
  void Clear();

 private:
  struct Entry {
    const char* data;
    size_t len;
    ReleaseFn release;  // references only
    void* arg;
    Chunk* chunk;  // chunk spans only
  };
  static constexpr size_t kInitialRing = 16;
  static constexpr size_t kKeepRing = 256;  // a larger ring is freed when the queue empties

  Entry& At(size_t i) { return ring_[(head_ + i) & (ring_cap_ - 1)]; }
  Entry* PushEntry();
  void PopFront();
  void Consume(size_t n);
  void DropChunkRef(Chunk* chunk);
  Chunk* NewChunk();
  void OnEmpty();
  void FreeRing();

  ChunkPool* const pool_;
  MemoryMeter* const meter_;
  Entry* ring_ = nullptr;
  size_t ring_cap_ = 0;  // a power of two
  bool ring_charged_ = false;
  size_t head_ = 0;
  size_t count_ = 0;
  Chunk* tail_ = nullptr;  // the chunk being appended to
  size_t bytes_ = 0;
  bool starved_ = false;
};

}  // namespace cinch::net
