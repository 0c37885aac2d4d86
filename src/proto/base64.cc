#include "proto/base64.h"

#include <array>
#include <cstdint>

namespace cinch::proto {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Sextet value of each byte; '=' counts as a (zero) character; kSkip marks bytes the decoder
// ignores.
constexpr uint8_t kSkip = 0x80;
constexpr std::array<uint8_t, 256> MakeDecodeTable() {
  std::array<uint8_t, 256> table{};
  for (auto& v : table) v = kSkip;
  for (size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint8_t>(i);
  }
  table['='] = 0;
  return table;
}
constexpr std::array<uint8_t, 256> kDecode = MakeDecodeTable();

uint8_t Sextet(char c) { return kDecode[static_cast<uint8_t>(c)]; }

size_t CountedChars(std::string_view in) {
  size_t count = 0;
  for (char c : in) count += Sextet(c) != kSkip;
  return count;
}

void EncodeBlock(const uint8_t* in, size_t n, char* out) {
  uint32_t bits = uint32_t{in[0]} << 16;
  if (n > 1) bits |= uint32_t{in[1]} << 8;
  if (n > 2) bits |= in[2];
  out[0] = kAlphabet[bits >> 18];
  out[1] = kAlphabet[(bits >> 12) & 0x3f];
  out[2] = n > 1 ? kAlphabet[(bits >> 6) & 0x3f] : '=';
  out[3] = n > 2 ? kAlphabet[bits & 0x3f] : '=';
}

}  // namespace

size_t Base64Encode(std::string_view in, char* out, size_t out_size) {
  const size_t size = Base64EncodedSize(in.size());
  if (in.empty() || out_size < size) return 0;
  const auto* bytes = reinterpret_cast<const uint8_t*>(in.data());
  for (size_t i = 0; i < in.size(); i += 3, out += 4) {
    EncodeBlock(bytes + i, in.size() - i < 3 ? in.size() - i : 3, out);
  }
  return size;
}

size_t Base64Decode(std::string_view in, char* out, size_t out_size) {
  const size_t count = CountedChars(in);
  if (count == 0 || count % 4 != 0 || count / 4 * 3 > out_size) return 0;
  uint8_t block[4];
  size_t filled = 0, written = 0;
  int pad = 0;
  for (char c : in) {
    if (Sextet(c) == kSkip) continue;
    pad += c == '=';
    block[filled++] = Sextet(c);
    if (filled < 4) continue;
    out[written++] = static_cast<char>((block[0] << 2) | (block[1] >> 4));
    out[written++] = static_cast<char>((block[1] << 4) | (block[2] >> 2));
    out[written++] = static_cast<char>((block[2] << 6) | block[3]);
    filled = 0;
    if (pad == 0) continue;
    if (pad > 2) return 0;  // "A===" and "====" are not padding
    return written - pad;   // the first padded block ends the input
  }
  return written;
}

}  // namespace cinch::proto
