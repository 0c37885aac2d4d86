#include "buildcache/sha256.h"

#include <openssl/evp.h>

#include <utility>

#include "common/check.h"

namespace cinch::buildcache {

namespace {

void Init(EVP_MD_CTX* ctx) { CINCH_CHECK(EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1); }

}  // namespace

Sha256::Sha256() : ctx_(nullptr) {}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }  // null after a move: a no-op

Sha256::Sha256(Sha256&& other) noexcept : ctx_(std::exchange(other.ctx_, nullptr)) {}

Sha256& Sha256::operator=(Sha256&& other) noexcept {
  std::swap(ctx_, other.ctx_);
  return *this;
}

void Sha256::Ensure() {
  if (ctx_ != nullptr) return;
  ctx_ = EVP_MD_CTX_new();
  CINCH_CHECK(ctx_ != nullptr);
  Init(ctx_);
}

void Sha256::Update(std::string_view bytes) {
  Ensure();
  CINCH_CHECK(EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) == 1);
}

Sha256::Hash Sha256::Final() {
  Ensure();
  Hash hash;
  unsigned int length = 0;
  CINCH_CHECK(EVP_DigestFinal_ex(ctx_, hash.data(), &length) == 1 && length == hash.size());
  Init(ctx_);
  return hash;
}

void Sha256::Reset() {
  if (ctx_ != nullptr) Init(ctx_);
}

Sha256::Hash Sha256::Of(std::string_view bytes) {
  Sha256 sha;
  sha.Update(bytes);
  return sha.Final();
}

}  // namespace cinch::buildcache
