// libFuzzer target: the memcached binary protocol parser (proto::binary::ParseRequest) fed a
// byte stream the way MemcacheSession feeds it: the unconsumed bytes, again after each packet,
// until it needs more input; errors drop `consumed` plus `swallow` bytes, or end the stream
// when they close the connection.
//
// Input layout:  [max item size selector] [cut low byte] [cut high byte] [stream bytes...]
// The stream is parsed whole and cut into two reads at (cut % (stream size + 1)). Checked on
// every call (a failure traps):
//   - consumed <= input; kNeedMore consumes nothing; kOk consumes exactly header + body, at
//     most MaxPacketSize; extras, key and value lie inside the input, in that order, with the
//     lengths the header gave; the key is 1..250 bytes where the command has one;
//   - a kNeedMore input is shorter than MaxPacketSize (the session never buffers more);
//   - kTooLarge only for a value over the limit; an error that does not close consumes;
//   - both runs see the same transcript, so where the stream is cut never changes the parse.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "proto/binary.h"

namespace {

namespace bin = cinch::proto::binary;

bool Inside(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

void CheckRequest(const bin::Request& r, std::string_view input, const bin::ParseResult& pr) {
  FUZZ_CHECK(pr.consumed >= bin::kHeaderSize);
  const size_t body = bin::LoadBig32(input.data() + 8);
  FUZZ_CHECK(pr.consumed == bin::kHeaderSize + body);
  FUZZ_CHECK(r.extras.size() + r.key.size() + r.value.size() == body);
  FUZZ_CHECK(Inside(r.extras, input) && Inside(r.key, input) && Inside(r.value, input));
  FUZZ_CHECK(r.extras.data() == input.data() + bin::kHeaderSize);
  FUZZ_CHECK(r.key.data() == r.extras.data() + r.extras.size());
  FUZZ_CHECK(r.value.data() == r.key.data() + r.key.size());
  FUZZ_CHECK(r.key.size() <= bin::kMaxKeySize);
  FUZZ_CHECK(r.extras.size() <= bin::kMaxExtras);
  FUZZ_CHECK(static_cast<uint8_t>(r.opcode) == static_cast<uint8_t>(input[1]));
}

std::vector<std::string> Drive(std::string_view stream, size_t cut, const bin::ParserLimits& lim) {
  std::vector<std::string> events;
  std::string buffer;
  size_t fed = 0, swallow = 0;
  for (int read = 0; read < 2; ++read) {
    const size_t end = read == 0 ? cut : stream.size();
    buffer.append(stream.substr(fed, end - fed));
    fed = end;
    for (;;) {
      const size_t drop = std::min(swallow, buffer.size());
      buffer.erase(0, drop);
      swallow -= drop;
      if (buffer.empty()) break;
      bin::Request r;
      const bin::ParseResult pr = bin::ParseRequest(buffer, lim, &r);
      FUZZ_CHECK(pr.consumed <= buffer.size());
      if (pr.status == bin::ParseStatus::kNeedMore) {
        FUZZ_CHECK(pr.consumed == 0);
        FUZZ_CHECK(buffer.size() < bin::MaxPacketSize(lim));
        break;
      }
      if (pr.status == bin::ParseStatus::kOk) {
        CheckRequest(r, buffer, pr);
        const auto op = static_cast<uint8_t>(r.opcode);
        const bin::Opcode base = bin::BaseOpcode(r.opcode);
        if (base == bin::Opcode::kSet || base == bin::Opcode::kAppend) {
          FUZZ_CHECK(r.value.size() <= lim.max_item_size);
        }
        events.push_back("ok " + std::to_string(op) + " " + std::string(r.extras) + "|" +
                         std::string(r.key) + "|" + std::string(r.value));
      } else {
        FUZZ_CHECK(pr.error != bin::Error::kNone);
        FUZZ_CHECK(pr.close || pr.consumed > 0);
        if (pr.error == bin::Error::kTooLarge) FUZZ_CHECK(pr.swallow > lim.max_item_size);
        events.push_back("error " + std::to_string(static_cast<int>(pr.error)) + " " +
                         std::to_string(pr.consumed) + "+" + std::to_string(pr.swallow));
        if (pr.close) return events;
        swallow = pr.swallow;
      }
      buffer.erase(0, pr.consumed);
    }
  }
  if (!buffer.empty()) events.push_back("rest " + std::to_string(buffer.size()));
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  bin::ParserLimits limits;
  limits.max_item_size = data[0] & 1 ? 16 : size_t{1} << 20;
  const size_t cut_seed = data[1] | (size_t{data[2]} << 8);
  std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);
  const size_t cut = cut_seed % (stream.size() + 1);
  const std::vector<std::string> whole = Drive(stream, stream.size(), limits);
  const std::vector<std::string> split = Drive(stream, cut, limits);
  if (whole != split) {
    for (const std::string& e : whole) std::fprintf(stderr, "whole: %s\n", e.c_str());
    for (const std::string& e : split) std::fprintf(stderr, "split: %s\n", e.c_str());
  }
  FUZZ_CHECK(whole == split);
  return 0;
}
