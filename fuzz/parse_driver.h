// Drives the memcached parser (src/proto) over a byte stream as a connection does, checking the
// parser's contract (proto/request.h) on every call. Shared by the text and meta parser targets.
//
// The stream arrives in chunks. Like MemcacheSession::OnInput, the driver calls
// ParseRequest, or ParseGetContinuation while a long get line is being delivered in parts, on the
// bytes received and not consumed yet; stops at kNeedMore until the next chunk arrives; drops
// `consumed` bytes, then `swallow` more, on kError; and stops for good on `close`.
//
// Each call is checked with FUZZ_CHECK (a failure traps):
//   - kNeedMore consumes nothing; kOk and kError consume at most the input and at least one
//     byte (kError may consume nothing only when it closes);
//   - every string_view of a kOk Request (key, keys, data, stats_arg, meta tokens) lies inside
//     the consumed bytes; every key (NextKey over `keys` for get lines) is 1..250 bytes without
//     ' ', '\n' or NUL; a data block is exactly data_length bytes, followed by "\r\n" which ends
//     the consumed bytes; meta flags are unique;
//   - an error with no reply line closes; kTooLarge and ms errors swallow data_length + 2;
//   - parsing the same input into a fresh Request gives the same result as into the reused one,
//     and so does parsing only the bytes a complete request consumed (the parser never looks
//     past its request).
//
// Thread safety: none needed (one fuzzing thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/request.h"

namespace cinch::fuzz {

// What one run saw, in a form that does not depend on where the stream was cut.
struct Transcript {
  // One line per request: its command and every parsed field, or its error. A get line
  // delivered in parts counts once, with all its keys, or as its error alone. The last line says
  // how the stream ended: "closed", an unfinished get line, or the bytes left pending.
  std::vector<std::string> events;
  // The index of the first event that may legitimately depend on where the stream was cut: the
  // parser closed a line that had no newline yet for being longer than the limits, which a
  // stream with its newline in the same read would have parsed. SIZE_MAX when none.
  size_t cut_dependent_from = SIZE_MAX;
};

// Called with every request parsed kOk (e.g. for the meta target's base64 checks).
using RequestHook = void (*)(const proto::Request& request);

// Feeds `stream` in chunks that end at `cuts` (ascending offsets) and at the stream's end.
Transcript Drive(std::string_view stream, const std::vector<size_t>& cuts,
                 const proto::ParserLimits& limits, RequestHook hook);

// Parser limits picked by a byte: the server's (2 KiB lines, 1 MiB items, 64 KiB get lines) or
// small ones, so that line-too-long, too-large and long get lines are reachable with inputs of
// a few KiB.
proto::ParserLimits PickLimits(uint8_t selector);

// Drives `stream` whole, cut in two at `cut`, and (when `stride` > 0) cut every `stride` bytes,
// and checks that the cut runs saw the same requests as the whole one, up to their first
// cut-dependent event.
void CheckStream(std::string_view stream, size_t cut, size_t stride,
                 const proto::ParserLimits& limits, RequestHook hook = nullptr);

}  // namespace cinch::fuzz
