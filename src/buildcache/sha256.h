// Incremental SHA-256 over OpenSSL's EVP interface (the issue asks for OpenSSL's, not a
// hand-written one).
//
// Thread safety: one Sha256 per thread; distinct objects are independent. Move-only.
// The OpenSSL context is allocated on first use (a default-constructed or moved-from Sha256
// allocates nothing) and reused for every later message.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "buildcache/digest.h"

// OpenSSL's context type, declared here so this header does not pull in <openssl/evp.h>.
struct evp_md_ctx_st;

namespace cinch::buildcache {

class Sha256 {
 public:
  using Hash = std::array<uint8_t, Digest::kHashBytes>;

  Sha256();
  ~Sha256();
  Sha256(Sha256&& other) noexcept;
  Sha256& operator=(Sha256&& other) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  // The hash of everything updated since construction, the last Final or Reset; the object is
  // ready for a new message afterwards.
  Hash Final();
  // Forgets what was updated: ready for a new message.
  void Reset();

  // The hash of `bytes` in one call.
  static Hash Of(std::string_view bytes);

 private:
  void Ensure();

  evp_md_ctx_st* ctx_;  // null until first used
};

}  // namespace cinch::buildcache
