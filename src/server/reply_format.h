// Building reply lines without allocating: a fixed buffer large enough for the longest line a
// reply can have (a base64 key of 250 bytes plus every meta flag with its token).
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "common/check.h"

namespace cinch::server {

class LineBuilder {
 public:
  static constexpr size_t kCapacity = 1024;

  LineBuilder& Append(std::string_view s) {
    CINCH_CHECK(size_ + s.size() <= kCapacity);
    std::memcpy(buf_ + size_, s.data(), s.size());
    size_ += s.size();
    return *this;
  }
  LineBuilder& Char(char c) { return Append(std::string_view(&c, 1)); }
  template <typename Int>
  LineBuilder& Number(Int n) {
    char tmp[24];
    auto res = std::to_chars(tmp, tmp + sizeof(tmp), n);
    return Append(std::string_view(tmp, static_cast<size_t>(res.ptr - tmp)));
  }
  // " <letter><number>", the shape of a meta return flag.
  template <typename Int>
  LineBuilder& Flag(char letter, Int n) {
    return Char(' ').Char(letter).Number(n);
  }
  LineBuilder& Flag(char letter, std::string_view token) {
    return Char(' ').Char(letter).Append(token);
  }
  std::string_view view() const { return std::string_view(buf_, size_); }
  size_t size() const { return size_; }

 private:
  char buf_[kCapacity];
  size_t size_ = 0;
};

}  // namespace cinch::server
