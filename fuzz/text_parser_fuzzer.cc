// libFuzzer target: the memcached text/meta parser (src/proto) fed a byte stream the way a
// connection feeds it, with the contract checks of parse_driver.h.
//
// Input layout:  [selector] [cut low byte] [cut high byte] [stream bytes...]
// The parser limits are PickLimits(selector % 4). The stream is parsed whole, cut into two reads
// at (cut % (stream size + 1)), and, when selector / 4 is not 0, in reads of that many bytes.
// Every run must see the same requests (a get line delivered in parts counts once), except from
// the point where a cut run closed a line for being too long before its newline arrived.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "parse_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const cinch::proto::ParserLimits limits = cinch::fuzz::PickLimits(data[0] % 4);
  const size_t stride = data[0] / 4;
  const size_t cut_seed = data[1] | size_t{data[2]} << 8;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);
  cinch::fuzz::CheckStream(stream, cut_seed % (stream.size() + 1), stride, limits);
  return 0;
}
