#include "store/snapshot.h"

namespace cinch::store::snapshot {

uint64_t HeaderChecksum(const FileHeader& h) {
  FileHeader copy = h;
  copy.state = 0;
  copy.checksum = 0;
  return XXH3_64bits(&copy, sizeof(copy));
}

uint64_t RecordHash::Finish(const RecordHeader& h) {
  RecordHeader copy = h;
  copy.checksum = 0;
  // GCC follows inlined XXH3 code paths for inputs longer than this one and warns of them.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
  Add(&copy, sizeof(copy));
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  return XXH3_64bits_digest(&state_);
}

bool DecodeItemChecked(const char* p, size_t avail, mem::ItemView* v) {
  using namespace mem::item_internal;
  if (avail < 2) return false;
  const auto info = static_cast<uint8_t>(p[0]);
  const auto klen_byte = static_cast<uint8_t>(p[1]);
  size_t klen, vlen, header;
  if (info & kCompactBit) {
    klen = klen_byte & kCompactMask;
    vlen = info & kCompactMask;
    header = 2;
  } else {
    klen = klen_byte;
    const size_t vbytes = (info & 3) + 1;
    header = 2 + vbytes + ((info & kHasFlags) ? 4 : 0) + ((info & kHasExpiry) ? 4 : 0) +
             ((info & kHasCas) ? 8 : 0) + ((info & kHasState) ? 1 : 0);
    if (header > avail) return false;
    vlen = GetLe(p + 2, vbytes);
  }
  if (klen == 0 || klen > 250) return false;
  if (header + klen > avail || vlen > avail - header - klen) return false;
  *v = mem::DecodeItem(p);
  return true;
}

}  // namespace cinch::store::snapshot
