// libFuzzer target: the HTTP/1.1 request parser (proto::HttpRequestParser over libhttp-parser)
// fed a byte stream the way HttpSession feeds it: the bytes received and not consumed yet,
// again after every event, until it needs more input; then the next read is appended.
//
// Input layout:  [stride] [cut low byte] [cut high byte] [stream bytes...]
// The stream is parsed whole, cut into two reads at (cut % (stream size + 1)), and, when stride
// is not 0, in reads of `stride` bytes. Checked on every call (a failure traps):
//   - consumed <= input; kNeedMore in a head consumes nothing; kHead and kEnd consume at least
//     one byte; kBody delivers at least one byte, inside the input, at most one byte past what
//     it consumes (the parser reads a body's last byte again to end the message);
//   - a head's target lies inside the input; a body never exceeds its Content-Length, and a
//     message with a Content-Length that ends delivered exactly that many bytes;
//   - the three runs see the same transcript (heads, body bytes, ends, the error), so where a
//     stream is cut never changes what is parsed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "proto/http_request.h"

namespace {

using cinch::proto::HttpEvent;
using cinch::proto::HttpHead;
using cinch::proto::HttpParseResult;
using cinch::proto::HttpRequestParser;

bool Inside(std::string_view inner, std::string_view outer) {
  return inner.data() >= outer.data() && inner.data() + inner.size() <= outer.data() + outer.size();
}

// What one run saw. Body bytes of one message are merged, so the cut does not show.
std::vector<std::string> Drive(std::string_view stream, const std::vector<size_t>& cuts) {
  HttpRequestParser parser;
  std::vector<std::string> events;
  std::string buffer;
  size_t fed = 0;
  int64_t body_bytes = 0;
  bool stopped = false;
  for (size_t cut_index = 0; cut_index <= cuts.size() && !stopped; ++cut_index) {
    size_t end = cut_index < cuts.size() ? cuts[cut_index] : stream.size();
    if (end < fed) continue;
    buffer.append(stream.substr(fed, end - fed));
    fed = end;
    size_t pos = 0;
    while (pos < buffer.size()) {
      std::string_view input = std::string_view(buffer).substr(pos);
      bool in_message = parser.in_message();
      HttpParseResult r = parser.Parse(input);
      FUZZ_CHECK(r.consumed <= input.size());
      if (r.event == HttpEvent::kError) {
        events.push_back("error " + std::to_string(static_cast<int>(r.error)));
        stopped = true;
        break;
      }
      if (r.event == HttpEvent::kNeedMore) {
        FUZZ_CHECK(in_message || r.consumed == 0);
        FUZZ_CHECK(!in_message || r.consumed == input.size());
        pos += r.consumed;
        break;
      }
      if (r.event == HttpEvent::kHead) {
        FUZZ_CHECK(!in_message && r.consumed > 0);
        const HttpHead& h = parser.head();
        FUZZ_CHECK(Inside(h.target, input.substr(0, r.consumed)));
        FUZZ_CHECK(!(h.chunked && h.content_length != HttpHead::kNoLength));
        events.push_back("head " + std::to_string(static_cast<int>(h.method)) + " " +
                         std::string(h.target) + " " + std::to_string(h.content_length) + " " +
                         std::to_string(h.chunked) + std::to_string(h.keep_alive) +
                         std::to_string(h.expect_continue));
        body_bytes = 0;
      } else if (r.event == HttpEvent::kBody) {
        FUZZ_CHECK(in_message && !r.body.empty() && Inside(r.body, input));
        FUZZ_CHECK(r.consumed + 1 >= r.body.size());
        body_bytes += static_cast<int64_t>(r.body.size());
        const HttpHead& h = parser.head();
        FUZZ_CHECK(h.content_length == HttpHead::kNoLength || body_bytes <= h.content_length);
        if (events.back().rfind("body ", 0) != 0) events.push_back("body ");
        events.back() += r.body;
      } else {
        FUZZ_CHECK(in_message && r.consumed > 0 && !parser.in_message());
        const HttpHead& h = parser.head();
        FUZZ_CHECK(h.content_length == HttpHead::kNoLength || body_bytes == h.content_length);
        events.push_back("end");
      }
      pos += r.consumed;
    }
    buffer.erase(0, pos);
  }
  if (!stopped) events.push_back("pending " + std::to_string(buffer.size()));
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const size_t stride = data[0];
  const size_t cut_seed = data[1] | size_t{data[2]} << 8;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 3, size - 3);
  const std::vector<std::string> whole = Drive(stream, {});
  FUZZ_CHECK(Drive(stream, {cut_seed % (stream.size() + 1)}) == whole);
  if (stride != 0) {
    std::vector<size_t> cuts;
    for (size_t at = stride; at < stream.size(); at += stride) cuts.push_back(at);
    FUZZ_CHECK(Drive(stream, cuts) == whole);
  }
  return 0;
}
