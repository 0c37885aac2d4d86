// Item: the byte layout of one key-value object inside a segment.
//
// Items are packed back to back, byte aligned, with no per-item padding. The header is 2 bytes
// in the common case (no flags, no expiry, value < 128 B, key < 128 B, CAS implied by the item's
// location) and grows only by the fields an item actually has:
//
//   compact form (info bit 7 = 1):
//     +---+--------------+---+--------------+------------+--------------+
//     | 1 | vlen (7 bit) | H | klen (7 bit) | key bytes  | value bytes  |
//     +---+--------------+---+--------------+------------+--------------+
//
//   extended form (info bit 7 = 0):
//     +-----------------------------+------+-------------+---------+----------+-------+---------+-----+-------+
//     | 0 H S cas exp flg vlen_sz-1 | klen | vlen 1..4 B | [flags] | [expiry] | [cas] | [state] |
//     key | value |
//     +-----------------------------+------+-------------+---------+----------+-------+---------+-----+-------+
//       flags: u32, expiry: u32 absolute Unix seconds, cas: u64 (all little endian, unaligned),
//       state: u8 (kStateStale, kStateWinTokenSent, kStateBinaryKey)
//
//   H: the item has been read ("hit before", memcached's ITEM_FETCHED): the top bit of the
//      klen byte in the compact form, bit 6 of the info byte in the extended form.
//   S: a state byte is present: the item is stale, its recache token was handed out, or its
//      key was stored as binary (the rare items of meta commands' I, N, R and b flags).
//
// An explicit cas field is present only when the item's CAS value could not be derived from
// where it lives: after the cleaner moved it, or after touch. See docs/item-format.md.
//
// Mutability: items are immutable once published except for three things, each changed in place
// under the key's index shard lock: the H bit (MarkFetched), the expiry field (SetExpiryInPlace)
// and the state byte (SetStateInPlace). The first two bytes are also read without that lock
// (the cleaner decodes the layout of items it walks), so they are always accessed atomically
// (relaxed): H never changes the layout, so a reader without the lock sees the right layout
// either way.
//
// Thread safety: these functions are pure apart from the in-place setters described above.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/check.h"

namespace cinch::mem {

// Bits of the state byte.
constexpr uint8_t kStateStale = 0x01;         // memcached ITEM_STALE: md/ms with 'I'
constexpr uint8_t kStateWinTokenSent = 0x02;  // memcached ITEM_TOKEN_SENT: a client got 'W'
constexpr uint8_t kStateBinaryKey = 0x04;     // memcached ITEM_KEY_BINARY: stored by "ms ... b"

// What an item carries besides key and value. Zero means "absent" for each field.
struct ItemMeta {
  uint32_t flags = 0;
  uint32_t expiry = 0;   // absolute Unix seconds; 0 = never
  uint64_t cas = 0;      // explicit CAS; 0 = derived from the location
  uint8_t state = 0;     // kState* bits; 0 = no state byte
  bool fetched = false;  // H: read at least once (costs no space)
};

// A decoded item header pointing into segment memory.
struct ItemView {
  std::string_view key;
  std::string_view value;
  ItemMeta meta;
  size_t size = 0;  // header + key + value
  size_t header_size = 0;
};

namespace item_internal {
constexpr uint8_t kCompactBit = 0x80;
constexpr uint8_t kCompactFetchedBit = 0x80;  // in the klen byte
constexpr uint8_t kCompactMask = 0x7F;
constexpr uint8_t kFetchedBit = 0x40;  // in the info byte of the extended form
constexpr uint8_t kHasState = 0x20;
constexpr uint8_t kHasCas = 0x10;
constexpr uint8_t kHasExpiry = 0x08;
constexpr uint8_t kHasFlags = 0x04;
constexpr size_t kMaxCompactValue = 127;
constexpr size_t kMaxCompactKey = 127;

inline size_t VlenBytes(size_t vlen) {
  return vlen < (1u << 8) ? 1 : vlen < (1u << 16) ? 2 : vlen < (1u << 24) ? 3 : 4;
}
inline bool IsCompact(size_t klen, size_t vlen, const ItemMeta& m) {
  return vlen <= kMaxCompactValue && klen <= kMaxCompactKey && m.flags == 0 && m.expiry == 0 &&
         m.cas == 0 && m.state == 0;
}
inline void PutLe(char* dst, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}
inline uint64_t GetLe(const char* src, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(src[i])} << (8 * i);
  return v;
}
// The first two header bytes, which MarkFetched may change under a reader that holds no lock.
inline uint8_t LoadByte(const char* p) {
  return __atomic_load_n(reinterpret_cast<const uint8_t*>(p), __ATOMIC_RELAXED);
}
inline void StoreByte(char* p, uint8_t v) {
  __atomic_store_n(reinterpret_cast<uint8_t*>(p), v, __ATOMIC_RELAXED);
}
// Offset of the state byte of an extended item whose info byte is `info`.
inline size_t StateOffset(uint8_t info) {
  return 2 + (info & 3) + 1 + ((info & kHasFlags) ? 4 : 0) + ((info & kHasExpiry) ? 4 : 0) +
         ((info & kHasCas) ? 8 : 0);
}
}  // namespace item_internal

inline size_t ItemHeaderSize(size_t klen, size_t vlen, const ItemMeta& m) {
  using namespace item_internal;
  if (IsCompact(klen, vlen, m)) return 2;
  return 2 + VlenBytes(vlen) + (m.flags ? 4 : 0) + (m.expiry ? 4 : 0) + (m.cas ? 8 : 0) +
         (m.state ? 1 : 0);
}

inline size_t ItemSize(size_t klen, size_t vlen, const ItemMeta& m) {
  return ItemHeaderSize(klen, vlen, m) + klen + vlen;
}

// Writes the header for an item of `klen`/`vlen` at dst and returns its size; the caller copies
// the key and then the value right after it.
// REQUIRES: 1 <= klen <= 255, vlen < 2^32, dst has ItemHeaderSize(klen, vlen, m) bytes.
inline size_t EncodeItemHeader(char* dst, size_t klen, size_t vlen, const ItemMeta& m) {
  using namespace item_internal;
  CINCH_DCHECK(klen >= 1 && klen <= 255);
  if (IsCompact(klen, vlen, m)) {
    StoreByte(dst, static_cast<uint8_t>(kCompactBit | vlen));
    StoreByte(dst + 1, static_cast<uint8_t>((m.fetched ? kCompactFetchedBit : 0) | klen));
    return 2;
  }
  size_t vbytes = VlenBytes(vlen);
  uint8_t info = (m.fetched ? kFetchedBit : 0) | static_cast<uint8_t>(vbytes - 1);
  if (m.flags) info |= kHasFlags;
  if (m.expiry) info |= kHasExpiry;
  if (m.cas) info |= kHasCas;
  if (m.state) info |= kHasState;
  StoreByte(dst, info);
  StoreByte(dst + 1, static_cast<uint8_t>(klen));
  size_t pos = 2;
  PutLe(dst + pos, vlen, vbytes);
  pos += vbytes;
  if (m.flags) PutLe(dst + pos, m.flags, 4), pos += 4;
  if (m.expiry) PutLe(dst + pos, m.expiry, 4), pos += 4;
  if (m.cas) PutLe(dst + pos, m.cas, 8), pos += 8;
  if (m.state) dst[pos++] = static_cast<char>(m.state);
  return pos;
}

// Writes a whole item at dst; returns its size.
inline size_t EncodeItem(char* dst, std::string_view key, std::string_view value,
                         const ItemMeta& m) {
  size_t h = EncodeItemHeader(dst, key.size(), value.size(), m);
  std::memcpy(dst + h, key.data(), key.size());
  if (!value.empty()) std::memcpy(dst + h + key.size(), value.data(), value.size());
  return h + key.size() + value.size();
}

// The most bytes an item header takes (the extended form with every field).
constexpr size_t kMaxItemHeader = 2 + 4 + 4 + 4 + 8 + 1;

// Whether the bytes at p may start an item (its key is not empty): a check of bytes read back
// from a file before DecodeItem, which CHECK-fails on them. p has kMaxItemHeader bytes.
inline bool MayStartItem(const char* p) {
  using namespace item_internal;
  uint8_t info = LoadByte(p);
  uint8_t klen_byte = LoadByte(p + 1);
  return ((info & kCompactBit) ? (klen_byte & kCompactMask) : klen_byte) != 0;
}

// Decodes the item starting at p. CHECK-fails on bytes that are not an item header.
// The expiry field, the state byte and the H bit may change in place under the key's index
// shard lock; callers not holding that lock pass read_meta = false and get the layout only
// (key, value, sizes).
inline ItemView DecodeItem(const char* p, bool read_meta = true) {
  using namespace item_internal;
  uint8_t info = LoadByte(p);
  uint8_t klen_byte = LoadByte(p + 1);
  ItemView v;
  size_t klen;
  size_t vlen;
  size_t pos = 2;
  if (info & kCompactBit) {
    vlen = info & kCompactMask;
    klen = klen_byte & kCompactMask;
    if (read_meta) v.meta.fetched = (klen_byte & kCompactFetchedBit) != 0;
  } else {
    klen = klen_byte;
    if (read_meta) v.meta.fetched = (info & kFetchedBit) != 0;
    size_t vbytes = (info & 3) + 1;
    vlen = GetLe(p + pos, vbytes);
    pos += vbytes;
    if (info & kHasFlags) {
      if (read_meta) v.meta.flags = static_cast<uint32_t>(GetLe(p + pos, 4));
      pos += 4;
    }
    if (info & kHasExpiry) {
      if (read_meta) v.meta.expiry = static_cast<uint32_t>(GetLe(p + pos, 4));
      pos += 4;
    }
    if (info & kHasCas) {
      if (read_meta) v.meta.cas = GetLe(p + pos, 8);
      pos += 8;
    }
    if (info & kHasState) {
      if (read_meta) v.meta.state = static_cast<uint8_t>(p[pos]);
      pos += 1;
    }
  }
  CINCH_CHECK(klen != 0);
  v.header_size = pos;
  v.key = std::string_view(p + pos, klen);
  v.value = std::string_view(p + pos + klen, vlen);
  v.size = pos + klen + vlen;
  return v;
}

// Sets the H bit ("hit before") of the item at p. Returns the previous value.
// REQUIRES: the index shard lock of the item's key held.
inline bool MarkFetched(char* p) {
  using namespace item_internal;
  const bool compact = (LoadByte(p) & kCompactBit) != 0;
  char* at = compact ? p + 1 : p;
  const uint8_t bit = compact ? kCompactFetchedBit : kFetchedBit;
  const uint8_t byte = LoadByte(at);
  if (byte & bit) return true;
  StoreByte(at, byte | bit);
  return false;
}

// Overwrites the expiry of the item at p in place, if it has an expiry field; returns false if
// it has none. REQUIRES: the index shard lock of the item's key held; expiry != 0.
inline bool SetExpiryInPlace(char* p, uint32_t expiry) {
  using namespace item_internal;
  uint8_t info = LoadByte(p);
  if ((info & kCompactBit) || !(info & kHasExpiry)) return false;
  size_t pos = 2 + (info & 3) + 1 + ((info & kHasFlags) ? 4 : 0);
  PutLe(p + pos, expiry, 4);
  return true;
}

// Overwrites the state byte of the item at p in place, if it has one; returns false if it has
// none. REQUIRES: the index shard lock of the item's key held; state != 0.
inline bool SetStateInPlace(char* p, uint8_t state) {
  using namespace item_internal;
  uint8_t info = LoadByte(p);
  if ((info & kCompactBit) || !(info & kHasState)) return false;
  p[StateOffset(info)] = static_cast<char>(state);
  return true;
}

}  // namespace cinch::mem
