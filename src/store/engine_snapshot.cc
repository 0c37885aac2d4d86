// Engine: saving the live items to a snapshot file and loading one into a fresh store
// (src/store/snapshot.h has the format, docs/restart-format.md the crash-safety argument).
//
// Saving walks every segment in use as the cleaner does (each item's slot looked up by its
// location under its shard lock) and writes the segment's bytes with pwrite straight from the
// arena or the jumbo mapping: no copy of the heap, and no memory beyond a 64 KiB buffer of live
// entries. Segments on the file tier are read from their file through the tier's scratch buffer
// (segment_size / 8 + 4 KiB, charged as metadata): once to list their live items, once to copy
// their bytes. Loading reads each record's bytes straight into a free segment, verifies the
// checksum and the structure, and only then inserts its live items' slots; with a file tier,
// records saved from it, and records memory cannot hold, are copied into file segments through
// the same buffer and verified there.
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/check.h"
#include "common/file_io.h"
#include "common/hash.h"
#include "common/units.h"
#include "mem/mapping.h"
#include "store/engine.h"
#include "store/snapshot.h"

namespace cinch::store {

namespace {

using snapshot::FileHeader;
using snapshot::RecordHeader;

Status Errno(const std::string& what, const std::string& path) {
  return Status::IoError(what + " " + path + ": " + std::strerror(errno));
}

uint64_t RandomId() {
  uint64_t id = 0;
  if (getrandom(&id, sizeof(id), 0) != sizeof(id)) {
    id = static_cast<uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^
         static_cast<uint64_t>(time(nullptr));
  }
  return id;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads the items of a segment stored in a file (a tier file segment), in increasing offsets,
// through a caller's buffer: a window of the segment's bytes, reloaded at an item that does not
// fit in it. Items are decoded without trusting them (snapshot::DecodeItemChecked): an item
// larger than the buffer, or bytes that are no item, fail.
class ItemWindow {
 public:
  ItemWindow(int fd, uint64_t position, size_t length, char* buf, size_t size)
      : fd_(fd), position_(position), length_(length), buf_(buf), size_(size) {}

  // The item at `offset` (not below the previous one's), valid until the next call.
  bool At(size_t offset, mem::ItemView* v) {
    if (offset >= length_) return false;
    if (offset < start_ || offset >= end_) {
      if (!Load(offset)) return false;
    }
    if (snapshot::DecodeItemChecked(buf_ + (offset - start_), end_ - offset, v)) return true;
    // The item may go on past the window: load the window from it.
    if (offset == start_ || !Load(offset)) return false;
    return snapshot::DecodeItemChecked(buf_, end_ - offset, v);
  }

  uint64_t reads() const { return reads_; }
  uint64_t read_bytes() const { return read_bytes_; }

 private:
  bool Load(size_t offset) {
    const size_t n = std::min(size_, length_ - offset);
    if (!PreadAll(fd_, buf_, n, position_ + offset)) return false;
    start_ = offset;
    end_ = offset + n;
    ++reads_;
    read_bytes_ += n;
    return true;
  }

  int fd_;
  uint64_t position_;  // of the segment in the file
  size_t length_;      // of the segment's bytes
  char* buf_;
  size_t size_;
  size_t start_ = 0, end_ = 0;  // the segment's bytes [start_, end_) are in buf_
  uint64_t reads_ = 0;
  uint64_t read_bytes_ = 0;
};

}  // namespace

// --- saving ---

class SnapshotWriter {
 public:
  SnapshotWriter(Engine* e, int fd, uint64_t id) : e_(e), fd_(fd), id_(id) {}

  // Writes the record of `segment` (in memory, or on the file tier) at *pos, if it holds live
  // items; advances *pos.
  bool WriteSegment(uint32_t segment, int64_t now, uint64_t* pos) {
    mem::SegmentMeta& m = e_->pool_->meta(segment);
    const mem::SegState state = m.state.load(std::memory_order_acquire);
    const bool on_file = e_->pool_->IsFile(segment);
    // A file segment is on file once sealed (being written or emptied it would be kCleaning:
    // neither runs during a save, which holds off the cleaner and the tier's cleaning).
    if (on_file ? state != mem::SegState::kSealed
                : state == mem::SegState::kFree || state == mem::SegState::kDraining) {
      return true;
    }
    const uint32_t length = m.write_offset.load(std::memory_order_acquire);
    if (length == 0 || m.live_items.load(std::memory_order_acquire) == 0 || !e_->IsCurrent(m)) {
      return true;  // nothing live, or every item flushed
    }
    RecordHeader h{};
    h.magic = snapshot::kRecordMagic;
    h.type = snapshot::kTypeSegment;
    h.jumbo = e_->pool_->IsJumbo(segment) ? 1 : 0;
    h.main_fifo = !h.jumbo && e_->IsMainHead(m.head.load(std::memory_order_relaxed)) ? 1 : 0;
    h.on_file = on_file ? 1 : 0;
    h.snapshot_id = id_;
    h.open_seq = m.open_seq.load(std::memory_order_relaxed);
    h.keyspace = m.keyspace.load(std::memory_order_relaxed);
    h.write_time = m.write_time.load(std::memory_order_relaxed);
    h.length = length;
    list_pos_ = *pos + sizeof(RecordHeader);
    count_ = 0;
    used_ = 0;
    hash_.emplace();
    if (!(on_file ? WalkFile(segment, m, length, now) : Walk(segment, m, length, now))) {
      return false;
    }
    if (count_ == 0) return true;
    if (!Flush()) return false;
    const uint64_t bytes_pos = list_pos_;
    if (on_file) {
      if (!CopyFromFile(segment, length, bytes_pos)) return false;
    } else {
      // The bytes as they are in memory: no copy.
      if (!PwriteAll(fd_, m.base, length, bytes_pos)) return false;
      hash_->Add(m.base, length);
    }
    h.live_count = count_;
    h.checksum = hash_->Finish(h);
    if (!PwriteAll(fd_, &h, sizeof(h), *pos)) return false;
    *pos = bytes_pos + length;
    ++records_;
    items_ += count_;
    return true;
  }

  bool WriteTrailer(uint64_t pos) {
    RecordHeader t{};
    t.magic = snapshot::kRecordMagic;
    t.type = snapshot::kTypeTrailer;
    t.snapshot_id = id_;
    t.open_seq = records_;
    snapshot::RecordHash hash;
    t.checksum = hash.Finish(t);
    return PwriteAll(fd_, &t, sizeof(t), pos);
  }

  uint64_t records() const { return records_; }
  uint64_t items() const { return items_; }

 private:
  // Lists the live items of the segment (as the cleaner finds them: the slot that points at
  // the item's location), writing the list as it fills.
  // Items go in batches whose index buckets are prefetched first (each lookup is a random
  // access into the index: overlapping the misses halves the walk).
  bool Walk(uint32_t segment, mem::SegmentMeta& m, uint32_t length, int64_t now) {
    const uint16_t ks = m.keyspace.load(std::memory_order_relaxed);
    constexpr size_t kBatch = 16;
    uint32_t offsets[kBatch];
    uint64_t hashes[kBatch];
    for (uint32_t offset = 0; offset < length;) {
      size_t n = 0;
      for (; n < kBatch && offset < length; ++n) {
        mem::ItemView v = mem::DecodeItem(m.base + offset, /*read_meta=*/false);
        offsets[n] = offset;
        hashes[n] = HashKey(v.key, ks);
        e_->index_->PrefetchHome(hashes[n]);
        offset += static_cast<uint32_t>(v.size);
      }
      for (size_t i = 0; i < n; ++i) {
        if (IsLive(segment, m.base + offsets[i], offsets[i], hashes[i], now)) ++count_;
        if (used_ == kBuffer && !Flush()) return false;
      }
    }
    return true;
  }

  // Walk for a segment on the file tier: its items read in order through the tier's buffer.
  bool WalkFile(uint32_t segment, mem::SegmentMeta& m, uint32_t length, int64_t now) {
    const uint16_t ks = m.keyspace.load(std::memory_order_relaxed);
    int fd;
    uint64_t position;
    e_->FilePosition(segment, &fd, &position);
    ItemWindow window(fd, position, length, e_->tier_scratch_.get(), e_->tier_scratch_bytes_);
    bool ok = true;
    for (uint32_t offset = 0; ok && offset < length;) {
      mem::ItemView v;
      ok = window.At(offset, &v);  // false: a read error (the tier wrote these bytes itself)
      if (!ok) break;
      const char* p = v.key.data() - v.header_size;
      if (IsLive(segment, p, offset, HashKey(v.key, ks), now)) ++count_;
      if (used_ == kBuffer) ok = Flush();
      offset += static_cast<uint32_t>(v.size);
    }
    e_->tier_reads_.fetch_add(window.reads(), std::memory_order_relaxed);
    e_->tier_read_bytes_.fetch_add(window.read_bytes(), std::memory_order_relaxed);
    return ok;
  }

  // Copies a file segment's bytes [0, length) to the snapshot at `to` through the tier's
  // buffer, adding them to the record's checksum.
  bool CopyFromFile(uint32_t segment, uint32_t length, uint64_t to) {
    int fd;
    uint64_t position;
    e_->FilePosition(segment, &fd, &position);
    char* buf = e_->tier_scratch_.get();
    for (uint32_t offset = 0; offset < length;) {
      const size_t n = std::min<size_t>(e_->tier_scratch_bytes_, length - offset);
      if (!PreadAll(fd, buf, n, position + offset)) return false;
      e_->tier_reads_.fetch_add(1, std::memory_order_relaxed);
      e_->tier_read_bytes_.fetch_add(n, std::memory_order_relaxed);
      hash_->Add(buf, n);
      if (!PwriteAll(fd_, buf, n, to + offset)) return false;
      offset += static_cast<uint32_t>(n);
    }
    return true;
  }

  // Whether the item at `offset` is live (a slot points at it) and unexpired; lists it if so.
  bool IsLive(uint32_t segment, const char* p, uint32_t offset, uint64_t hash, int64_t now) {
    index::Shard& shard = e_->index_->ShardFor(hash);
    std::lock_guard<SpinLock> lock(shard.lock);
    const uint64_t* slot = e_->index_->FindLocation(shard, hash, e_->Location(segment, offset));
    if (slot == nullptr) return false;
    mem::ItemView item = mem::DecodeItem(p);
    if (item.meta.expiry != 0 && item.meta.expiry <= now) return false;
    buffer_[used_++] =
        snapshot::LiveEntry(offset, index::SlotFreq(*slot), index::SlotCasExposed(*slot));
    return true;
  }

  bool Flush() {
    if (used_ == 0) return true;
    const size_t bytes = used_ * sizeof(uint32_t);
    if (!PwriteAll(fd_, buffer_, bytes, list_pos_)) return false;
    hash_->Add(buffer_, bytes);
    list_pos_ += bytes;
    used_ = 0;
    return true;
  }

  static constexpr size_t kBuffer = 16384;  // 64 KiB of live entries
  Engine* e_;
  int fd_;
  uint64_t id_;
  std::optional<snapshot::RecordHash> hash_;
  uint32_t buffer_[kBuffer];
  size_t used_ = 0;
  uint32_t count_ = 0;
  uint64_t list_pos_ = 0;
  uint64_t records_ = 0;
  uint64_t items_ = 0;
};

Status Engine::SaveTo(const std::string& path, uint64_t memory_limit) {
  // No cleaner pass moves or frees a segment while it is written, and no file segment is
  // emptied (the tier's buffer is the save's while it reads file segments).
  std::lock_guard<std::mutex> cleaner(cleaner_mu_);
  std::unique_lock<std::mutex> tier(tier_mu_, std::defer_lock);
  if (HasTier()) tier.lock();
  const int64_t now = Now();
  MaybeFlushDue(now);
  Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Errno("cannot create", path);
  FileHeader h{};
  std::memcpy(h.magic, snapshot::kMagic, sizeof(h.magic));
  h.version = snapshot::kFormatVersion;
  h.header_size = sizeof(FileHeader);
  h.segment_size = pool_->segment_size();
  h.memory_limit = memory_limit;
  h.snapshot_id = RandomId();
  h.next_open_seq = open_seq_.load(std::memory_order_relaxed);
  h.saved_at = static_cast<uint32_t>(now);
  h.checksum = snapshot::HeaderChecksum(h);
  h.state = snapshot::kStateWriting;
  if (!PwriteAll(fd.get(), &h, sizeof(h), 0)) return Errno("cannot write", path);

  auto writer = std::make_unique<SnapshotWriter>(this, fd.get(), h.snapshot_id);
  std::vector<uint32_t> ids;
  pool_->InUse(&ids);
  std::sort(ids.begin(), ids.end());
  uint64_t pos = sizeof(FileHeader);
  for (uint32_t id : ids) {
    if (!writer->WriteSegment(id, now, &pos)) return Errno("cannot write", path);
  }
  // Then the file tier's segments (after memory's: a load fills memory first).
  if (HasTier()) {
    const uint32_t end = pool_->file_high_water();
    for (uint32_t id = pool_->file_first(); id < end; ++id) {
      if (!writer->WriteSegment(id, now, &pos)) return Errno("cannot write", path);
    }
  }
  if (!writer->WriteTrailer(pos)) return Errno("cannot write", path);
  // The records are on disk before the header says so.
  if (fdatasync(fd.get()) != 0) return Errno("cannot sync", path);
  const uint32_t clean = snapshot::kStateClean;
  if (!PwriteAll(fd.get(), &clean, sizeof(clean), snapshot::kStateOffset) ||
      fdatasync(fd.get()) != 0) {
    return Errno("cannot mark clean", path);
  }
  return Status::Ok();
}

// --- loading ---

class SnapshotReader {
 public:
  SnapshotReader(Engine* e, int fd, uint64_t file_size, RestoreReport* report)
      : e_(e), fd_(fd), size_(file_size), report_(report) {}

  // Checks the header; false (with the report's result and message) if the file is not to be
  // loaded.
  bool ReadHeader(uint64_t memory_limit) {
    using Result = RestoreReport::Result;
    if (size_ == 0) return Refuse(Result::kEmpty, "empty (nothing was saved in it)");
    if (size_ < sizeof(FileHeader) || !PreadAll(fd_, &h_, sizeof(h_), 0) ||
        std::memcmp(h_.magic, snapshot::kMagic, sizeof(h_.magic)) != 0) {
      return Refuse(Result::kNotSnapshot, "not a cinch memory file");
    }
    if (h_.version != snapshot::kFormatVersion || h_.header_size != sizeof(FileHeader)) {
      return Refuse(Result::kOtherConfig, "format version " + std::to_string(h_.version) +
                                              ", this cinch reads version " +
                                              std::to_string(snapshot::kFormatVersion));
    }
    if (h_.checksum != snapshot::HeaderChecksum(h_)) {
      return Refuse(Result::kDamaged, "damaged header (checksum mismatch)");
    }
    if (h_.segment_size != e_->pool_->segment_size()) {
      return Refuse(Result::kOtherConfig,
                    "saved with segments of " + std::to_string(h_.segment_size >> 10) +
                        " KiB, this store has " + std::to_string(e_->pool_->segment_size() >> 10) +
                        " KiB");
    }
    if (h_.memory_limit != memory_limit) {
      return Refuse(Result::kOtherConfig, "saved under a memory limit of " + Mib(h_.memory_limit) +
                                              ", this one is " + Mib(memory_limit));
    }
    if (h_.state == snapshot::kStateConsumed) {
      return Refuse(Result::kConsumed,
                    "loaded once already and not saved since (the process was killed or "
                    "crashed): stale");
    }
    if (h_.state != snapshot::kStateClean && h_.state != snapshot::kStateWriting) {
      return Refuse(Result::kDamaged, "damaged header (unknown state)");
    }
    return true;
  }

  // Reads the record headers (the framing), then loads the records on a few threads: each
  // record is independent (its own segment; items inserted under their shard locks, so of two
  // records naming one key exactly one wins).
  void LoadRecords() {
    const uint64_t max_seq = uint64_t{1} << (64 - e_->pool_->segment_shift());
    std::vector<Job> jobs;
    bool trailer = false;
    uint64_t seen = 0;
    uint64_t items = 0;
    uint64_t next_seq = 0;
    std::unordered_set<uint64_t> seqs;
    for (uint64_t pos = sizeof(FileHeader); pos + sizeof(RecordHeader) <= size_;) {
      RecordHeader r;
      if (!PreadAll(fd_, &r, sizeof(r), pos) || r.magic != snapshot::kRecordMagic ||
          r.snapshot_id != h_.snapshot_id) {
        break;  // the end of what was written, or damage: nothing after it can be placed
      }
      if (r.type == snapshot::kTypeTrailer) {
        snapshot::RecordHash hash;
        trailer = hash.Finish(r) == r.checksum && r.open_seq == seen &&
                  pos + sizeof(RecordHeader) == size_;
        break;
      }
      ++seen;
      const uint64_t end = pos + sizeof(RecordHeader) + uint64_t{r.live_count} * 4 + r.length;
      if (r.type != snapshot::kTypeSegment || end > size_) {
        Refused(*report_, r.live_count);
        break;
      }
      if (r.open_seq == 0 || r.open_seq >= max_seq || !seqs.insert(r.open_seq).second) {
        Refused(*report_, r.live_count);
      } else {
        jobs.push_back(Job{r, pos + sizeof(RecordHeader)});
        items += std::min<uint64_t>(r.live_count, r.length / 3);
        next_seq = std::max(next_seq, r.open_seq);
      }
      pos = end;
    }
    ReserveIndex(items);  // the file segments' metadata was charged when the tier opened
    RunJobs(jobs);
    if (h_.next_open_seq < max_seq) next_seq = std::max(next_seq, h_.next_open_seq);
    e_->open_seq_.store(next_seq, std::memory_order_relaxed);
    whole_file_ = h_.state == snapshot::kStateClean && trailer;
    complete_ = whole_file_ && report_->records_refused == 0;
  }

  // Marks the file consumed (and syncs): it is never loaded again, whatever happens next.
  bool Consume() {
    const uint32_t consumed = snapshot::kStateConsumed;
    return PwriteAll(fd_, &consumed, sizeof(consumed), snapshot::kStateOffset) &&
           fdatasync(fd_) == 0;
  }

  void Summarize() {
    RestoreReport& r = *report_;
    r.result = complete_ ? RestoreReport::Result::kLoaded : RestoreReport::Result::kPartial;
    std::string what = std::to_string(r.items) + " items (" + Mib(r.key_value_bytes) +
                       " of keys and values) in " + std::to_string(r.segments) + " segments";
    if (r.items_on_file > 0) what += ", " + std::to_string(r.items_on_file) + " on the file tier";
    const std::string no_room = std::to_string(r.records_no_room) + " segment records (" +
                                std::to_string(r.items_no_room) + " items) did not fit in memory" +
                                (e_->HasTier() ? " nor the file tier" : " (no file tier)");
    if (complete_) {
      r.message = "loaded " + what;
    } else if (whole_file_ && r.records_refused == r.records_no_room) {
      r.message = "loaded what fits: " + what + "; " + no_room;
    } else {
      r.message =
          std::string("loaded what verified of a ") +
          (h_.state == snapshot::kStateWriting ? "save that did not finish" : "damaged file") +
          ": " + what + "; " + std::to_string(r.records_refused) + " segment records refused (" +
          std::to_string(r.items_refused) + " items)";
      if (r.records_no_room > 0) r.message += ", of which " + no_room;
    }
    if (r.expired > 0) r.message += "; " + std::to_string(r.expired) + " expired while down";
  }

 private:
  bool Refuse(RestoreReport::Result result, const std::string& why) {
    report_->result = result;
    report_->message = why;
    return false;
  }

  static void Refused(RestoreReport& tally, uint64_t items) {
    ++tally.records_refused;
    tally.items_refused += items;
  }

  struct Job {
    RecordHeader header;
    uint64_t pos;  // of its live list
  };
  // An item InsertItems is about to insert.
  struct Pending {
    uint64_t hash;
    uint64_t kv_bytes;
    uint32_t entry;  // its live entry: offset, freq and cas bits
    uint32_t header_bytes;
  };
  // One loading thread's scratch and counts (merged into the report at the end).
  struct Loader {
    std::vector<uint32_t> list;
    RestoreReport tally;
    // InsertItems' chunk of items (kChunk, sorted through `spare`: 384 KiB in all) and the
    // runs of it put off.
    std::vector<Pending> pending, spare;
    std::vector<std::pair<uint32_t, uint32_t>> deferred;
    uint32_t first_shard = 0;  // where this thread's sweeps of the index start
  };
  // What the items inserted add to the counters.
  struct Totals {
    uint32_t items = 0;
    uint64_t kv_bytes = 0;
    uint64_t header_bytes = 0;
  };

  // Sizes every index shard for `items` (what the records say they hold, at most what their
  // bytes could), so that loading rebuilds no shard: growing step by step as writes do would
  // rebuild each one a few dozen times (a third of the loading time).
  void ReserveIndex(uint64_t items) {
    index::HashIndex& index = *e_->index_;
    const uint64_t per_shard = items / index.shard_count() + items / index.shard_count() / 32;
    if (per_shard == 0) return;
    for (uint32_t i = 0; i < index.shard_count(); ++i) {
      index::Shard& shard = index.shard(i);
      std::lock_guard<SpinLock> lock(shard.lock);
      if (!index.Reserve(shard, static_cast<uint32_t>(std::min<uint64_t>(per_shard, UINT32_MAX)))) {
        return;  // memory is short: loading grows the shards as it goes
      }
      index.Populate(shard);
    }
  }

  // Loads the records on up to kMaxThreads threads (one per core), this one included.
  void RunJobs(const std::vector<Job>& jobs) {
    constexpr unsigned kMaxThreads = 4;
    const unsigned threads = static_cast<unsigned>(std::min<size_t>(
        {std::max(1u, std::thread::hardware_concurrency()), kMaxThreads, jobs.size()}));
    std::vector<Loader> loaders(std::max(threads, 1u));
    for (size_t t = 0; t < loaders.size(); ++t) {
      loaders[t].first_shard =
          static_cast<uint32_t>(t * e_->index_->shard_count() / loaders.size());
    }
    std::atomic<size_t> next{0};
    auto work = [&](Loader& l) {
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < jobs.size();) {
        const uint32_t items = jobs[i].header.live_count;
        switch (LoadRecord(l, jobs[i].header, jobs[i].pos)) {
          case Load::kLoaded:
            break;
          case Load::kNoRoom:
            ++l.tally.records_no_room;
            l.tally.items_no_room += items;
            Refused(l.tally, items);
            break;
          case Load::kRefused:
            Refused(l.tally, items);
            break;
        }
      }
    };
    std::vector<std::thread> helpers;
    for (unsigned t = 1; t < threads; ++t) helpers.emplace_back(work, std::ref(loaders[t]));
    work(loaders[0]);
    for (std::thread& t : helpers) t.join();
    for (const Loader& l : loaders) {
      report_->items += l.tally.items;
      report_->key_value_bytes += l.tally.key_value_bytes;
      report_->segments += l.tally.segments;
      report_->expired += l.tally.expired;
      report_->records_refused += l.tally.records_refused;
      report_->items_refused += l.tally.items_refused;
      report_->items_on_file += l.tally.items_on_file;
      report_->records_no_room += l.tally.records_no_room;
      report_->items_no_room += l.tally.items_no_room;
    }
  }

  enum class Load { kLoaded, kRefused, kNoRoom };

  // Loads one segment record whose list starts at `pos`. With a file tier, a record saved from
  // it goes back to it, and one that memory cannot hold goes to it; jumbo records only to
  // memory (the tier holds regular segments).
  Load LoadRecord(Loader& l, const RecordHeader& r, uint64_t pos) {
    mem::SegmentPool& pool = *e_->pool_;
    const bool jumbo = r.jumbo != 0;
    if (r.jumbo > 1 || r.main_fifo > 1 || r.on_file > 1 || (jumbo && r.on_file) || r.length == 0 ||
        r.live_count == 0 ||
        (jumbo ? r.live_count != 1 || r.length > e_->options_.memory_limit / 2
               : r.length > pool.segment_size())) {
      return Load::kRefused;
    }
    l.list.resize(r.live_count);
    if (!PreadAll(fd_, l.list.data(), l.list.size() * 4, pos)) return Load::kRefused;
    const bool tier = e_->HasTier() && !jumbo;
    if (tier && r.on_file) {
      if (Load to_file = LoadToFile(l, r, pos); to_file != Load::kNoRoom) return to_file;
    }
    const uint32_t segment = jumbo ? pool.AllocateJumbo(r.length) : pool.Allocate(false);
    if (segment == mem::kNoSegment) {
      return tier && !r.on_file ? LoadToFile(l, r, pos) : Load::kNoRoom;
    }
    mem::SegmentMeta& m = pool.meta(segment);
    mem::PopulateForWrite(m.base, r.length);
    if (!PreadAll(fd_, m.base, r.length, pos + l.list.size() * 4) || !Verify(l, r, m.base) ||
        !HaveKeyspace(r.keyspace)) {
      pool.Free(segment);
      return Load::kRefused;
    }
    Describe(r, m);
    m.state.store(mem::SegState::kSealed, std::memory_order_release);
    if (InsertItems(l, segment, m) == 0) {
      m.state.store(mem::SegState::kFree, std::memory_order_relaxed);
      pool.Free(segment);
    } else {
      ++l.tally.segments;
    }
    return Load::kLoaded;
  }

  // Loads a record into a file segment of the tier: its bytes copied through the tier's buffer
  // (one loader at a time), checksum and structure verified by reading them back from the
  // file, then its items' slots inserted. kNoRoom if no file segment is free.
  Load LoadToFile(Loader& l, const RecordHeader& r, uint64_t pos) {
    mem::SegmentPool& pool = *e_->pool_;
    std::lock_guard<std::mutex> lock(e_->tier_mu_);
    const uint32_t segment = pool.AllocateFile();
    if (segment == mem::kNoSegment) return Load::kNoRoom;
    int fd;
    uint64_t position;
    e_->FilePosition(segment, &fd, &position);
    char* buf = e_->tier_scratch_.get();
    const size_t size = e_->tier_scratch_bytes_;
    snapshot::RecordHash hash;
    hash.Add(l.list.data(), l.list.size() * 4);
    const uint64_t bytes_pos = pos + l.list.size() * 4;
    bool ok = true;
    for (uint32_t offset = 0; ok && offset < r.length;) {
      const size_t n = std::min<size_t>(size, r.length - offset);
      ok = PreadAll(fd_, buf, n, bytes_pos + offset);
      if (ok) hash.Add(buf, n);
      ok = ok && PwriteAll(fd, buf, n, position + offset);
      offset += static_cast<uint32_t>(n);
    }
    if (ok) {
      e_->tier_writes_.fetch_add(1, std::memory_order_relaxed);
      e_->tier_write_bytes_.fetch_add(r.length, std::memory_order_relaxed);
    }
    ItemWindow window(fd, position, r.length, buf, size);
    auto decode = [&](size_t offset, mem::ItemView* v) { return window.At(offset, v); };
    ok = ok && hash.Finish(r) == r.checksum && ValidEntries(l) &&
         snapshot::CheckItems(r.length, l.list.data(), static_cast<uint32_t>(l.list.size()), decode,
                              [](uint32_t, const mem::ItemView&) {}) &&
         HaveKeyspace(r.keyspace);
    mem::SegmentMeta& m = pool.meta(segment);
    uint32_t inserted = 0;
    if (ok) {
      Describe(r, m);
      m.state.store(mem::SegState::kSealed, std::memory_order_release);
      const Keyspace ks{r.keyspace};
      uint32_t max_expiry = 0;
      for (uint32_t entry : l.list) {
        mem::ItemView v;
        const uint32_t offset = snapshot::EntryOffset(entry);
        if (!window.At(offset, &v)) {  // verified already: a read error
          ++l.tally.items_refused;
          continue;
        }
        if (v.meta.expiry != 0 && v.meta.expiry <= now_) {
          ++l.tally.expired;
          continue;
        }
        const uint64_t hash = HashKey(v.key, ks.id);
        index::Shard& shard = e_->index_->ShardFor(hash);
        ShardCounters& c = e_->CountersFor(hash);
        std::lock_guard<SpinLock> lock(shard.lock);
        const uint64_t location = e_->Location(segment, offset);
        if (!InsertSlot(shard, hash, ks, location, entry, v.key.data() - v.header_size)) {
          ++l.tally.items_refused;
          continue;
        }
        e_->AccountLive(location, v, +1, c);
        ++inserted;
        max_expiry = std::max(max_expiry, v.meta.expiry == 0 ? mem::kNeverExpires : v.meta.expiry);
        ++l.tally.items;
        ++l.tally.items_on_file;
        l.tally.key_value_bytes += v.key.size() + v.value.size();
      }
      m.max_expiry.store(max_expiry, std::memory_order_relaxed);
    }
    e_->tier_reads_.fetch_add(window.reads(), std::memory_order_relaxed);
    e_->tier_read_bytes_.fetch_add(window.read_bytes(), std::memory_order_relaxed);
    if (inserted == 0) {
      pool.Free(segment);  // no slot points into it: nobody can have pinned it
      return ok ? Load::kLoaded : Load::kRefused;
    }
    ++l.tally.segments;
    return Load::kLoaded;
  }

  // The facts of a loaded segment that lookups and the cleaner read (its state is set after).
  void Describe(const RecordHeader& r, mem::SegmentMeta& m) {
    m.keyspace.store(r.keyspace, std::memory_order_relaxed);
    m.open_seq.store(r.open_seq, std::memory_order_relaxed);
    m.flush_gen.store(e_->GenOf(r.keyspace), std::memory_order_relaxed);
    m.write_time.store(r.write_time, std::memory_order_relaxed);
    m.head.store(static_cast<uint8_t>(r.main_fifo ? e_->CleanerHead(0) : 0),
                 std::memory_order_relaxed);
    m.write_offset.store(r.length, std::memory_order_relaxed);
    m.max_expiry.store(0, std::memory_order_relaxed);
  }

  bool HaveKeyspace(uint16_t id) {
    return e_->FindKeyspace(id) != nullptr || e_->TryCreateKeyspace(id) != nullptr;
  }

  static bool ValidEntries(const Loader& l) {
    for (uint32_t e : l.list) {
      if (!snapshot::EntryValid(e)) return false;
    }
    return true;
  }

  bool Verify(const Loader& l, const RecordHeader& r, const char* bytes) {
    snapshot::RecordHash hash;
    hash.Add(l.list.data(), l.list.size() * 4);
    hash.Add(bytes, r.length);
    if (hash.Finish(r) != r.checksum || !ValidEntries(l)) return false;
    return snapshot::CheckSegment(std::string_view(bytes, r.length), l.list.data(),
                                  static_cast<uint32_t>(l.list.size()),
                                  [](uint32_t, const mem::ItemView&) {});
  }

  // Inserts the slots of the record's live items; returns how many. The items go a chunk at a
  // time: decoded and hashed in the segment's order, then inserted in the order of their place
  // in the index (shard, then home bucket), so that the inserts sweep the index's memory in
  // one direction instead of each missing the cache and the TLB at a random place, and a
  // shard's lock is taken, and its counters added to, once for all of the chunk's items in it.
  uint32_t InsertItems(Loader& l, uint32_t segment, mem::SegmentMeta& m) {
    const Keyspace ks{m.keyspace.load(std::memory_order_relaxed)};
    l.pending.resize(kChunk);
    l.spare.resize(kChunk);
    Totals record;
    uint32_t max_expiry = 0;
    for (size_t first = 0; first < l.list.size(); first += kChunk) {
      const size_t end = std::min<size_t>(l.list.size(), first + kChunk);
      uint32_t n = 0;
      for (size_t i = first; i < end; ++i) {
        const mem::ItemView v = mem::DecodeItem(m.base + snapshot::EntryOffset(l.list[i]));
        if (v.meta.expiry != 0 && v.meta.expiry <= now_) {
          ++l.tally.expired;
          continue;
        }
        // An upper bound, as the cleaner needs: items refused below are counted too.
        max_expiry = std::max(max_expiry, v.meta.expiry == 0 ? mem::kNeverExpires : v.meta.expiry);
        l.pending[n++] = Pending{HashKey(v.key, ks.id), v.key.size() + v.value.size(), l.list[i],
                                 static_cast<uint32_t>(v.header_size)};
      }
      SortByPlace(l, n);
      InsertSorted(l, n, ks, segment, m.base, &record);
    }
    // The segment is this thread's until its items are in (the cleaner starts after loading):
    // its counters are added once.
    m.live_items.fetch_add(record.items, std::memory_order_relaxed);
    m.live_bytes.fetch_add(static_cast<int64_t>(record.kv_bytes + record.header_bytes),
                           std::memory_order_relaxed);
    m.max_expiry.store(max_expiry, std::memory_order_relaxed);
    if (ks.id != 0) {
      KeyspaceState* state = e_->FindKeyspace(ks.id);  // HaveKeyspace made it
      state->items.fetch_add(record.items, std::memory_order_relaxed);
      state->kv_bytes.fetch_add(static_cast<int64_t>(record.kv_bytes), std::memory_order_relaxed);
      state->item_bytes.fetch_add(static_cast<int64_t>(record.kv_bytes + record.header_bytes),
                                  std::memory_order_relaxed);
    }
    l.tally.items += record.items;
    l.tally.key_value_bytes += record.kv_bytes;
    return record.items;
  }

  // Orders the chunk's n items in l.pending by place in the index: by the top 16 bits of
  // (shard, tag), the order of the home buckets, with two passes of a radix sort.
  void SortByPlace(Loader& l, uint32_t n) {
    const uint64_t mask = e_->index_->shard_count() - 1;
    const int shift = std::popcount(mask) + index::kTagBits - 16;
    auto place = [&](const Pending& p) {
      return static_cast<uint32_t>((((p.hash & mask) << index::kTagBits) | index::TagOf(p.hash)) >>
                                   shift);
    };
    for (int digit : {0, 8}) {
      uint32_t starts[257] = {};
      for (uint32_t j = 0; j < n; ++j) ++starts[((place(l.pending[j]) >> digit) & 255) + 1];
      for (int b = 0; b < 256; ++b) starts[b + 1] += starts[b];
      for (uint32_t j = 0; j < n; ++j) {
        l.spare[starts[(place(l.pending[j]) >> digit) & 255]++] = l.pending[j];
      }
      std::swap(l.pending, l.spare);
    }
  }

  // Inserts the sorted chunk shard by shard, from this thread's first shard on (the loading
  // threads start their sweeps apart). A shard whose lock another thread holds is put off to
  // the end of the sweep rather than waited for: two threads that met would otherwise go on in
  // step, one waiting at every shard for the other.
  void InsertSorted(Loader& l, uint32_t n, Keyspace ks, uint32_t segment, const char* base,
                    Totals* record) {
    index::HashIndex& index = *e_->index_;
    const uint64_t mask = index.shard_count() - 1;
    uint32_t start = 0;
    while (start < n && (l.pending[start].hash & mask) < l.first_shard) ++start;
    if (start == n) start = 0;
    l.deferred.clear();
    for (uint32_t k = start, done = 0; done < n;) {
      uint32_t end = k + 1;
      while (end < n && ((l.pending[end].hash ^ l.pending[k].hash) & mask) == 0) ++end;
      index::Shard& shard = index.ShardFor(l.pending[k].hash);
      if (shard.lock.try_lock()) {
        InsertRun(l, n, k, end, ks, segment, base, record);
        shard.lock.unlock();
      } else {
        l.deferred.emplace_back(k, end);
      }
      done += end - k;
      k = end == n ? 0 : end;
    }
    for (const auto& [k, end] : l.deferred) {
      index::Shard& shard = index.ShardFor(l.pending[k].hash);
      std::lock_guard<SpinLock> lock(shard.lock);
      InsertRun(l, n, k, end, ks, segment, base, record);
    }
  }

  // Inserts the items [k, end) of the chunk's n, all of one shard. REQUIRES: its lock held.
  void InsertRun(Loader& l, uint32_t n, uint32_t k, uint32_t end, Keyspace ks, uint32_t segment,
                 const char* base, Totals* record) {
    constexpr uint32_t kAhead = 8;  // inserts whose home bucket is being loaded meanwhile
    index::Shard& shard = e_->index_->ShardFor(l.pending[k].hash);
    ShardCounters& c = e_->CountersFor(l.pending[k].hash);
    Totals run;
    for (; k < end; ++k) {
      if (k + kAhead < n) e_->index_->PrefetchHome(l.pending[k + kAhead].hash);
      const Pending& p = l.pending[k];
      const uint32_t offset = snapshot::EntryOffset(p.entry);
      if (!InsertSlot(shard, p.hash, ks, e_->Location(segment, offset), p.entry, base + offset)) {
        ++l.tally.items_refused;
        continue;
      }
      ++run.items;
      run.kv_bytes += p.kv_bytes;
      run.header_bytes += p.header_bytes;
    }
    ShardCounters::Add(c.items, run.items);
    ShardCounters::Add(c.kv_bytes, static_cast<int64_t>(run.kv_bytes));
    ShardCounters::Add(c.header_bytes, static_cast<int64_t>(run.header_bytes));
    record->items += run.items;
    record->kv_bytes += run.kv_bytes;
    record->header_bytes += run.header_bytes;
  }

  // Inserts the slot of the item at `item` (its bytes, for its key) unless its key is there
  // already (a file may name one twice): false if it is, or if the index has no room. Slots of
  // the same tag are compared by key and keyspace; one on the file tier (loaded by LoadToFile)
  // is read for it, with the shard's lock held: nothing is served yet, and letting the lock go
  // would let another loader insert the key meanwhile. One that cannot be read refuses the
  // item: the key's absence is not proven. A slot inserted by this load is never stale (not
  // expired at now_, of this flush generation): the same key is a duplicate.
  // REQUIRES: shard.lock held.
  bool InsertSlot(index::Shard& shard, uint64_t hash, Keyspace ks, uint64_t location,
                  uint32_t entry, const char* item) {
    const uint64_t slot =
        index::MakeSlot(index::TagOf(hash), snapshot::EntryFreq(entry), location) |
        (snapshot::EntryCas(entry) ? index::kCasExposedBit : 0);
    auto same_key = [&](uint64_t other) {
      const std::string_view key = mem::DecodeItem(item, /*read_meta=*/false).key;
      std::string read;  // an item on file is read into it (no allocation otherwise)
      mem::ItemView v;
      if (!e_->ItemOrRead(other, &read, &v)) return true;
      return v.key == key && e_->KeyspaceOf(other) == ks.id;
    };
    return e_->index_->InsertIfAbsent(shard, slot, same_key) == index::HashIndex::InsertResult::kOk;
  }

  static constexpr uint32_t kChunk = 8192;  // items inserted in one sorted sweep

  Engine* e_;
  int fd_;
  uint64_t size_;
  RestoreReport* report_;
  FileHeader h_{};
  const int64_t now_ = e_->Now();
  bool whole_file_ = false;  // a clean save, read to its trailer
  bool complete_ = false;
};

Status Engine::OpenFrom(const Options& options, const std::string& path, uint64_t memory_limit,
                        std::unique_ptr<Engine>* engine, RestoreReport* report) {
  RestoreReport ignored;
  if (report == nullptr) report = &ignored;
  *report = RestoreReport{};
  std::unique_ptr<Engine> e(new Engine(options));
  if (Status s = e->Init(); !s.ok()) return s;
  Fd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  struct stat st {};
  if (fd.get() < 0 || fstat(fd.get(), &st) != 0) {
    const bool absent = errno == ENOENT;
    report->result = absent ? RestoreReport::Result::kNoFile : RestoreReport::Result::kIoError;
    report->message = absent ? "no file" : std::string("cannot open: ") + std::strerror(errno);
  } else {
    SnapshotReader reader(e.get(), fd.get(), static_cast<uint64_t>(st.st_size), report);
    if (reader.ReadHeader(memory_limit)) {
      reader.LoadRecords();
      // Before anything is served from it.
      if (!reader.Consume()) return Errno("cannot mark consumed", path);
      reader.Summarize();
    }
  }
  e->StartCleanerThread();
  *engine = std::move(e);
  return Status::Ok();
}

}  // namespace cinch::store
