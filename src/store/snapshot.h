// The snapshot file of a store (Store::SaveTo / Store::OpenFrom): its byte layout and the checks
// a reader makes before it trusts any of it. The engine's side (walking segments, loading
// records into a fresh store) is src/store/engine_snapshot.cc; docs/restart-format.md has the
// format and the crash-safety argument.
//
//   +-------------+----------------------------------------------+---------+
//   | FileHeader  | record: RecordHeader | live list | bytes      | ... | trailer (RecordHeader)
//   | 64 B        | 48 B                 | 4 B/item  | length B   |     | 48 B
//   +-------------+----------------------------------------------+---------+
//
// All integers little endian. Every record carries an XXH3-64 of its live list, its bytes and
// its header (checksum field zero); the file header one of its own fields except `state`,
// which is rewritten in place: kWriting while a save runs, kClean once the whole file is
// synced, kConsumed once a store has loaded it.
//
// Thread safety: pure functions and plain structs.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/hash.h"  // xxhash.h, inline
#include "mem/item.h"

namespace cinch::store::snapshot {

static_assert(std::endian::native == std::endian::little, "the format is little endian");

constexpr char kMagic[8] = {'C', 'I', 'N', 'C', 'H', 'S', 'N', 'P'};
constexpr uint32_t kFormatVersion = 1;

// FileHeader::state. Distinct 32-bit words, so that a damaged word is none of them.
constexpr uint32_t kStateWriting = 0x54495257;   // "WRIT"
constexpr uint32_t kStateClean = 0x4e41454c;     // "LEAN"
constexpr uint32_t kStateConsumed = 0x534e4f43;  // "CONS"

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t header_size;  // sizeof(FileHeader)
  uint64_t segment_size;
  uint64_t memory_limit;   // SnapshotOptions::memory_limit of the save
  uint64_t snapshot_id;    // random per save; every record repeats it
  uint64_t next_open_seq;  // the engine's segment-opening counter at the save
  uint32_t saved_at;       // Unix seconds (the store's clock)
  uint32_t state;          // kState*: not covered by the checksum
  uint64_t checksum;       // XXH3 of the header with state and checksum zero
};
static_assert(sizeof(FileHeader) == 64);
constexpr size_t kStateOffset = offsetof(FileHeader, state);

constexpr uint32_t kRecordMagic = 0x43455253;  // "SREC"
constexpr uint8_t kTypeSegment = 1;
constexpr uint8_t kTypeTrailer = 2;

// One segment's worth of items, or the trailer (type kTypeTrailer, open_seq = the number of
// segment records before it, no list, no bytes).
struct RecordHeader {
  uint32_t magic;
  uint8_t type;
  uint8_t main_fifo;  // filled by the cleaner (S3-FIFO's main queue), else a writer (small)
  uint8_t jumbo;      // one out-of-line item (docs/item-format.md)
  uint8_t on_file;    // the bytes were on the file tier (docs/file-tier.md): a hint for loading
  uint64_t snapshot_id;
  uint64_t open_seq;  // kept: derived CAS values are open_seq << shift | offset
  uint16_t keyspace;
  uint16_t reserved2;
  uint32_t write_time;
  uint32_t length;      // bytes of the segment, [0, write_offset)
  uint32_t live_count;  // entries of the live list
  uint64_t checksum;    // XXH3 of live list, bytes, header (checksum 0)
};
static_assert(sizeof(RecordHeader) == 48);

// A live list entry: where a live item starts in the segment, and its index slot's bits.
//   31 30 29 28 27 26                                  0
//   +-----+---+------+-------------------------------------+
//   |  0  |cas| freq |               offset                 |
//   +-----+---+------+-------------------------------------+
constexpr int kOffsetBits = 27;  // segments of up to 64 MiB
constexpr uint32_t kOffsetMask = (1u << kOffsetBits) - 1;
inline uint32_t LiveEntry(uint32_t offset, uint32_t freq, bool cas) {
  return offset | (freq << kOffsetBits) | (cas ? 1u << (kOffsetBits + 2) : 0);
}
inline uint32_t EntryOffset(uint32_t e) { return e & kOffsetMask; }
inline uint32_t EntryFreq(uint32_t e) { return (e >> kOffsetBits) & 3; }
inline bool EntryCas(uint32_t e) { return (e >> (kOffsetBits + 2)) & 1; }
inline bool EntryValid(uint32_t e) { return (e >> (kOffsetBits + 3)) == 0; }

uint64_t HeaderChecksum(const FileHeader& h);

// The checksum of a record, fed in pieces as they are written or read: the live list, the
// bytes, then (Finish) the header with its checksum field taken as 0, since the header is
// written last, once the list's length is known.
class RecordHash {
 public:
  RecordHash() { XXH3_64bits_reset(&state_); }
  void Add(const void* data, size_t size) { XXH3_64bits_update(&state_, data, size); }
  uint64_t Finish(const RecordHeader& h);

 private:
  XXH3_state_t state_;
};

// Decodes the item at p, of which `avail` bytes are readable, without trusting it: false if the
// header or the item does not fit, or the key is not 1..250 bytes. Else *v as mem::DecodeItem.
bool DecodeItemChecked(const char* p, size_t avail, mem::ItemView* v);

// Whether a segment of `length` bytes is a sequence of whole items from offset 0 to its end
// (what a segment always is: docs/item-format.md), and every live entry (strictly increasing)
// starts one of them. decode(offset, &view) decodes the item at an offset without trusting it
// (false: it does not fit or is no item); calls visit(entry, item) for each live one.
template <typename Decode, typename Visit>
bool CheckItems(size_t length, const uint32_t* live, uint32_t live_count, Decode&& decode,
                Visit&& visit) {
  size_t pos = 0;
  uint32_t next = 0;
  while (pos < length) {
    mem::ItemView v;
    if (!decode(pos, &v)) return false;
    if (next < live_count && EntryOffset(live[next]) == pos) {
      visit(live[next], v);
      ++next;
    }
    if (next < live_count && EntryOffset(live[next]) < pos + v.size) return false;  // inside
    pos += v.size;
  }
  return next == live_count;
}

// CheckItems of a segment's bytes in memory.
template <typename Visit>
bool CheckSegment(std::string_view bytes, const uint32_t* live, uint32_t live_count,
                  Visit&& visit) {
  return CheckItems(
      bytes.size(), live, live_count,
      [&](size_t pos, mem::ItemView* v) {
        return DecodeItemChecked(bytes.data() + pos, bytes.size() - pos, v);
      },
      visit);
}

}  // namespace cinch::store::snapshot
