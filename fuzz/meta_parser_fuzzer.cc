// libFuzzer target: the parser's meta commands (mg, ms, md, ma) and the base64 key codec.
//
// Input layout:  [selector] [cut low byte] [cut high byte] [bytes...]
// The stream is "mg " / "ms " / "md " / "ma " (selector % 4) followed by the bytes, so the fuzzer
// spends its time in keys and flags rather than in finding a command name; it is checked as in
// text_parser_fuzzer.cc, with limits PickLimits(selector / 4 % 4) and reads of selector / 16
// bytes (none when 0). Every key of a meta request parsed kOk also goes through the base64
// checks below.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "parse_driver.h"
#include "proto/base64.h"

namespace {

using cinch::proto::Base64Decode;
using cinch::proto::Base64Encode;
using cinch::proto::Base64EncodedSize;
using cinch::proto::Base64MaxDecodedSize;
using cinch::proto::Command;

// A heap buffer of exactly `size` bytes, so that AddressSanitizer catches writes past it.
std::unique_ptr<char[]> Exact(size_t size) { return std::unique_ptr<char[]>(new char[size]); }

bool InAlphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// Encoding any bytes gives Base64EncodedSize characters of the alphabet, '=' only at the end,
// which decode back to the same bytes; an output buffer one byte short is refused.
void CheckEncodeRoundTrip(std::string_view bytes) {
  if (bytes.empty()) return;
  const size_t size = Base64EncodedSize(bytes.size());
  auto encoded = Exact(size);
  FUZZ_CHECK(Base64Encode(bytes, encoded.get(), size - 1) == 0);
  FUZZ_CHECK(Base64Encode(bytes, encoded.get(), size) == size);
  const std::string_view text(encoded.get(), size);
  const size_t pad = text.size() - text.find_last_not_of('=') - 1;
  FUZZ_CHECK(pad == (3 - bytes.size() % 3) % 3);
  for (char c : text.substr(0, size - pad)) FUZZ_CHECK(InAlphabet(c));
  const size_t room = Base64MaxDecodedSize(size);
  auto decoded = Exact(room);
  FUZZ_CHECK(Base64Decode(text, decoded.get(), room) == bytes.size());
  FUZZ_CHECK(std::memcmp(decoded.get(), bytes.data(), bytes.size()) == 0);
}

// Decoding a key (as the parser does for flag 'b': into key.size() bytes) writes within the
// buffer, at most 3/4 of the key, and what it gives survives an encode/decode round trip.
void CheckDecode(std::string_view key) {
  auto decoded = Exact(key.size());
  const size_t n = Base64Decode(key, decoded.get(), key.size());
  FUZZ_CHECK(n <= Base64MaxDecodedSize(key.size()));
  if (n == 0) return;
  CheckEncodeRoundTrip(std::string_view(decoded.get(), n));
}

bool HasBase64Flag(const cinch::proto::Request& r) {
  if (r.command == Command::kMetaDebug) {
    return r.num_meta_flags > 0 && r.meta_flags[0].letter == 'b' && r.meta_flags[0].token.empty();
  }
  for (size_t i = 0; i < r.num_meta_flags; ++i) {
    if (r.meta_flags[i].letter == 'b') return true;
  }
  return false;
}

void CheckMetaKey(const cinch::proto::Request& r) {
  switch (r.command) {
    case Command::kMetaGet:
    case Command::kMetaSet:
    case Command::kMetaDelete:
    case Command::kMetaArithmetic:
    case Command::kMetaDebug:
      break;
    default:
      return;
  }
  CheckEncodeRoundTrip(r.key);
  CheckDecode(r.key);
  if (HasBase64Flag(r)) {  // the parser accepted the key as base64: it must decode
    auto decoded = Exact(r.key.size());
    FUZZ_CHECK(Base64Decode(r.key, decoded.get(), r.key.size()) > 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static constexpr std::string_view kPrefixes[] = {"mg ", "ms ", "md ", "ma "};
  const cinch::proto::ParserLimits limits = cinch::fuzz::PickLimits(data[0] / 4 % 4);
  const size_t stride = data[0] / 16;
  std::string stream(kPrefixes[data[0] % 4]);
  stream.append(reinterpret_cast<const char*>(data) + 3, size - 3);
  const size_t cut_seed = data[1] | size_t{data[2]} << 8;
  cinch::fuzz::CheckStream(stream, cut_seed % (stream.size() + 1), stride, limits, CheckMetaKey);
  return 0;
}
