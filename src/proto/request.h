// One parsed memcached request (text or meta protocol), and the parser that produces it.
//
// The parser is pure: bytes in, a Request (views into the input) or "need more" or an error
// out. It allocates nothing and never touches sockets or the store. All string_views in a
// Request point into the input passed to ParseRequest and are valid as long as that input is.
//
// Thread safety: ParseRequest is a pure function; a Request is a plain value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cinch::proto {

enum class Command : uint8_t {
  // text protocol
  kGet,
  kGets,
  kGat,
  kGats,
  kSet,
  kAdd,
  kReplace,
  kAppend,
  kPrepend,
  kCas,
  kDelete,
  kIncr,
  kDecr,
  kTouch,
  kFlushAll,
  kVersion,
  kVerbosity,
  kQuit,
  kStats,
  kDebugTime,      // "debugtime <seconds>": test clock; the server decides whether it is enabled
  kCacheMemlimit,  // "cache_memlimit <megabytes> [noreply]": `number` holds the megabytes
  kLruCrawler,     // "lru_crawler metadump <classes>": stats_arg "metadump", `number` below
  // meta protocol
  kMetaGet,
  kMetaSet,
  kMetaDelete,
  kMetaArithmetic,
  kMetaNoop,
  kMetaDebug,
};

// Errors, each with exactly one wire string (see errors.h). Several errors share a string
// (memcached reuses "bad command line format"); they stay separate so callers and tests can
// tell what went wrong.
enum class Error : uint8_t {
  kNone,
  kUnknownCommand,   // "ERROR"
  kBadFormat,        // "CLIENT_ERROR bad command line format"
  kKeyTooLong,       // memcached answers "CLIENT_ERROR bad command line format" too
  kBadDataChunk,     // "CLIENT_ERROR bad data chunk": data block not followed by "\r\n"
  kTooLarge,         // "SERVER_ERROR object too large for cache": value swallowed
  kLineTooLong,      // no newline within the line limit (not get/gets): close, no reply
  kHttpRequest,      // unknown command whose last token starts "HTTP/": close, no reply
  kBinaryProtocol,   // first byte 0x80 (binary protocol magic): error reply, then close
  kInvalidMetaFlag,  // "CLIENT_ERROR invalid flag"
  kBadBase64Key,     // "CLIENT_ERROR error decoding key"
  kBadDataLength,    // ms <datalen> not a number in 0..INT_MAX-2: "...bad command line format"
  // Added while matching memcached 1.6.18 (see the table in parser.cc):
  kBadExptime,          // "CLIENT_ERROR invalid exptime argument" (touch, gat/gats, flush_all)
  kBadDelta,            // "CLIENT_ERROR invalid numeric delta argument" (incr/decr)
  kDeleteUsage,         // "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
  kDuplicateMetaFlag,   // "CLIENT_ERROR duplicate flag" (also any flag byte >= 127)
  kBadMetaToken,        // "CLIENT_ERROR bad token in command line format" (N, T, R, C)
  kBadMetaModeLength,   // "CLIENT_ERROR incorrect length for M token"
  kBadMetaInitial,      // "CLIENT_ERROR invalid numeric initial value" (J)
  kBadMetaDelta,        // "CLIENT_ERROR invalid numeric delta value" (D)
  kBadMetaFlagMdMa,     // "CLIENT_ERROR invalid or duplicate flag": any md/ma flag error
  kMetaOpaqueTooLong,   // "CLIENT_ERROR opaque token too long" (O token over 32 bytes)
  kMetaTooManyFlagsMg,  // "CLIENT_ERROR options flags are too long" (mg)
  kMetaTooManyFlags,    // "CLIENT_ERROR options flags too long" (ms, md, ma)
  kBadMsMode,           // "CLIENT_ERROR invalid mode for ms M token"
  kBadMaMode,           // "CLIENT_ERROR invalid mode for ma M token"
  kShutdownDisabled,    // "ERROR: shutdown not enabled" (memcached without -A; cinchd has no -A)
  kBadClass,            // "BADCLASS invalid class id" (lru_crawler metadump: not in 1..63)
  kNoClassToCrawl,      // "NOTSTARTED no items to crawl" (lru_crawler metadump: no class named)
  kCachedumpUsage,      // "CLIENT_ERROR bad command line" (stats cachedump: too few arguments)
  kIllegalSlabId,       // "CLIENT_ERROR Illegal slab id" (stats cachedump: class 64 or more)
};

// One meta flag: a letter and its token (empty for flags without one), e.g. "T30" -> {'T',"30"}.
// For mg, ms, md and ma the parser has validated every flag as memcached does: known letter, no
// duplicates, numeric tokens parse, M token is one valid mode character (ms, ma), O token at most
// 32 bytes. For me the flags are only split (memcached looks at a first flag "b" and nothing else).
struct MetaFlag {
  char letter = 0;
  std::string_view token;
  // Numeric flags, parsed exactly as memcached does: N, T, R hold an int32 (memcached truncates
  // to 32 bits) sign-extended, read it as static_cast<int64_t>(number); F holds a uint32; C, J, D
  // a uint64. 0 for other flags.
  uint64_t number = 0;
};

// memcached splits a line into at most 23 tokens, and rejects a meta line with more than 19
// (mg/md/ma: 17 flags, ms: 16), so 24 is always enough.
constexpr size_t kMaxMetaFlags = 24;

struct Request {
  Command command = Command::kGet;

  // Single-key commands: the key. Meta commands: the key as sent (still base64 with flag 'b';
  // the parser checks it is valid base64 but does not decode it).
  std::string_view key;

  // get/gets/gat/gats: the keys, separated by one or more spaces, as sent. Iterate with
  // NextKey(). Every key in it has been checked (1..250 bytes). When `partial` is true the line
  // is longer than the parser was willing to wait for: `keys` holds only the complete keys read
  // so far and the request line continues; the caller must call ParseGetContinuation() on the
  // following bytes until it returns a Request with partial == false (see there).
  std::string_view keys;
  bool partial = false;
  // Parser state for a partial line, left alone by callers: skip_rest ignores the rest of the
  // line (after a NUL byte, which ends a line for memcached, or after an error), and
  // line_error, when not kNone, is returned once the line's newline has been consumed.
  bool skip_rest = false;
  Error line_error = Error::kNone;

  // Storage commands (set/add/replace/append/prepend/cas, ms): the data block, without its
  // "\r\n". Only set when the whole block is in the input.
  std::string_view data;
  // Numbers are parsed as memcached does (strtol & co., lenient about a sign and leading
  // blanks): client flags and exptimes are truncated to 32 bits, so "4294967297" means 1.
  uint32_t client_flags = 0;  // set/add/replace/append/prepend/cas
  uint32_t dump_limit = 0;    // stats cachedump (see stats_arg)
  int64_t exptime = 0;        // storage commands, gat/gats, touch (an int32 value)
  uint64_t cas_unique = 0;    // cas
  uint64_t delta = 0;         // incr/decr
  bool noreply = false;       // text commands that take "noreply"

  // flush_all [delay] (int32), verbosity <level> (uint32), debugtime <seconds> (int64),
  // cache_memlimit <megabytes> (uint32, as memcached cuts it): the number when given.
  int64_t number = 0;
  bool has_number = false;

  // debugtime: "p" pauses the clock, "r" resumes it, a number shifts it (as memcached's debug
  // builds).
  enum class ClockControl : uint8_t { kShift, kPause, kResume };
  ClockControl clock_control = ClockControl::kShift;

  // stats [arg]: the first argument, e.g. "settings", "items", "slabs", "cinch"; empty when
  // absent. Further arguments are not kept, but for "stats cachedump <class> <limit>": the
  // class in `number`, the limit in `dump_limit` (0: none). lru_crawler: its subcommand
  // ("metadump"); `number` is 1 when the classes named include class 1 ("all" and "hash" do),
  // the only slab class cinch reports, else 0.
  std::string_view stats_arg;

  // Meta commands: the flags in the order sent. ms: data length in `data_length` and the
  // block in `data`.
  std::array<MetaFlag, kMaxMetaFlags> meta_flags{};
  uint8_t num_meta_flags = 0;
  size_t data_length = 0;
};

enum class ParseStatus : uint8_t {
  kOk,        // *request is complete; `consumed` bytes are used up
  kNeedMore,  // no complete request yet; call again with more bytes (nothing consumed)
  kError,     // reply `error`, then drop `consumed` bytes (+ `swallow` more, maybe not yet read)
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  Error error = Error::kNone;
  // Bytes of the input used by this request (or to drop on error).
  size_t consumed = 0;
  // kError only: bytes beyond `consumed` that belong to the rejected request and must be read
  // and discarded, e.g. the value of an over-large set (its length + 2).
  size_t swallow = 0;
  // kError only: close the connection after writing the error.
  bool close = false;
  // kError only: the text command ended in "noreply", and memcached then writes no error line
  // at all (the bytes are still consumed/swallowed).
  bool noreply = false;
};

// Partial get lines rely on max_get_line >= kMinGetLine: a get line that long always holds its
// command, an exptime and one whole key (the parser checks this in debug builds).
struct ParserLimits {
  static constexpr size_t kMinGetLine = 512;
  size_t max_line = 2048;                  // without a newline: close (except get/gets)
  size_t max_item_size = size_t{1} << 20;  // larger data blocks: kTooLarge + swallow
  size_t max_get_line = 64 * 1024;         // a get line longer than this is delivered partially
};

// Parses the first request in `input`.
ParseResult ParseRequest(std::string_view input, const ParserLimits& limits, Request* request);

// Continues a partial get/gets/gat/gats line: `input` starts where the previous Request's
// consumed bytes ended. Fills request->keys with the next complete keys (command and exptime
// are left as they were) and sets request->partial = false once the line's newline is
// consumed. keys may be empty while partial (e.g. the rest of the line is being skipped).
// Returns kNeedMore while there is no newline and at most limits.max_get_line bytes. An error
// in a part of the line not yet delivered (a key over 250 bytes, a bad gat exptime) comes back
// as kError when the newline is consumed; memcached, which buffers the whole line, would have
// answered the error alone, without the values of the keys delivered before it.
// REQUIRES: request->partial, from the previous ParseRequest/ParseGetContinuation.
ParseResult ParseGetContinuation(std::string_view input, const ParserLimits& limits,
                                 Request* request);

// Iterates the space-separated keys of Request::keys: returns false when none are left.
// Usage: std::string_view rest = r.keys, key; while (NextKey(&rest, &key)) { ... }
bool NextKey(std::string_view* rest, std::string_view* key);

}  // namespace cinch::proto
