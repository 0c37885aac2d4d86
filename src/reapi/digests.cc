#include "reapi/digests.h"

#include <array>
#include <cstdint>

namespace cinch::reapi {

namespace {
// sha256("")
constexpr std::array<uint8_t, 32> kEmptySha256 = {
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
}  // namespace

bool FromProto(const rev2::Digest& in, buildcache::Digest* out) {
  if (in.size_bytes() < 0 || !buildcache::ParseHexDigest(in.hash(), out)) return false;
  out->size = in.size_bytes();
  return true;
}

void ToProto(const buildcache::Digest& in, rev2::Digest* out) {
  out->set_hash(buildcache::HexDigest(in));
  out->set_size_bytes(in.size);
}

bool IsEmptyBlob(const buildcache::Digest& d) { return d.size == 0 && d.hash == kEmptySha256; }

bool CasContains(buildcache::BuildCache& cache, const buildcache::Digest& d) {
  return IsEmptyBlob(d) || cache.Contains(buildcache::Kind::kCas, d);
}

bool CasGet(buildcache::BuildCache& cache, const buildcache::Digest& d, ItemRef* out) {
  if (!cache.Get(buildcache::Kind::kCas, d, out)) return false;
  if (static_cast<int64_t>(out->value().size()) == d.size) return true;
  out->Reset();
  return false;
}

}  // namespace cinch::reapi
