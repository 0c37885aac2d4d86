// The memcached text and meta protocol parser (see request.h for the contract).
//
// Reference: memcached 1.6.18 (Debian build), probed over TCP and read in proto_text.c. Every
// row below was checked against the running daemon; the parser reproduces it (unit tests in
// parser_test.cc pin each one). "sw" = bytes swallowed after the line, "nr" = the error line is
// suppressed when the command ends in "noreply".
//
//   request line                          memcached 1.6.18                       here
//   ------------------------------------  -------------------------------------  --------------
//   "" / "\r\n" / "x" / "SET ..." / tabs  ERROR (names are case-sensitive; only  kUnknownCommand
//   as separators ("set\tk 0 0 1")        ' ' separates tokens, a tab is a byte)
//   "get" / "get " / "gat" / "gat abc"    ERROR / ERROR / ERROR / CLIENT_ERROR   kUnknownCommand,
//                                         invalid exptime argument               kBadExptime
//   "gat 10" (no key)                     END                                    kOk, no keys
//   get with a 251-byte key anywhere      CLIENT_ERROR bad command line format,  kKeyTooLong
//                                         no VALUE lines at all
//   "get a noreply" / "get a\tb"          keys "a","noreply" / one key "a\tb"    same
//   "set k 0 0 abc" / "set k 0 0 -1"      CLIENT_ERROR bad command line format,  kBadFormat
//   / "set k -1 0 1" / "set k 0x1 0 1"    data line then parsed as a command
//   "set <251-byte key> 0 0 5"            same: bad command line format, no sw  kKeyTooLong
//   "set k 0 0" / 8 tokens / "cas k 0 0   ERROR (token count), data line parsed   kUnknownCommand
//   1" (missing cas)                      as a command
//   "cas k 0 0 1 x"                       CLIENT_ERROR bad command line format   kBadFormat
//   "set k 4294967297 0 1"                STORED with flags 1: numbers go         client_flags 1
//   exptime 4294967296 / vlen 4294967297  through strtol/strtoul and are cut to   exptime 0,
//                                         32 bits; "+1", "01", "\t1" accepted     length 1
//   "set k 0 0 2147483646" (> INT_MAX-2)  CLIENT_ERROR bad command line format   kBadFormat
//   "set k 0 0 1 foo"                     6th token ignored (not "noreply")      noreply false
//   data "a\n" / "abcd\r\n" for 1 byte    CLIENT_ERROR bad data chunk after      kBadDataChunk,
//                                         reading exactly bytes+2; rest parsed   consumed +n+2
//   data > item size                      SERVER_ERROR object too large for      kTooLarge,
//                                         cache, sw bytes+2 (trailer unchecked)  swallow n+2
//   "... noreply" + any error above       no reply at all (nr), same consumption result.noreply
//   "incr k abc" / "incr k -1" / 2^64     CLIENT_ERROR invalid numeric delta     kBadDelta
//   "incr k" / "touch k"                  ERROR                                  kUnknownCommand
//   "touch k abc" / "flush_all abc"       CLIENT_ERROR invalid exptime argument  kBadExptime
//   "flush_all 10 x" / "flush_all -1"     OK (only the first argument is read)   number 10 / -1
//   "flush_all 1 2 3"                     ERROR                                  kUnknownCommand
//   "verbosity" / "verbosity 1 2 3"       ERROR                                  kUnknownCommand
//   "verbosity abc" / "verbosity -1"      CLIENT_ERROR bad command line format   kBadFormat
//   "delete k 0" / "delete k 0 noreply"   accepted (legacy hold time 0)          kOk
//   "delete k x" / "delete k 0 0"         CLIENT_ERROR bad command line format.  kDeleteUsage
//                                         (two spaces) Usage: delete <key> [...]
//   "version foo" / "quit foo" / "mn x"   arguments ignored                      kOk
//   "stats foo"                           ERROR (server decides; parser: arg)    stats_arg
//   "debugtime 1"                         ERROR (MEMCACHED_DEBUG builds only)    kDebugTime
//   "bget k"                              ancient alias of get                   kGet
//   "get k\0junk" / "set k 0 0 1\0x"      a NUL byte ends the line (strlen)      same
//   "\n" alone ends a line; "\r\n" too    both accepted                          same
//   unknown cmd, last token "HTTP/..."    connection closed, no reply (only if   kHttpRequest
//   ("GET / HTTP/1.1", "foo HTTP/1.0")    the name does not start with g s a c   close
//                                         i d t, is not m? and not lru, watch,
//                                         lru_crawler, extstore, refresh_certs)
//   "lru x noreply" (memcached-only cmd)  nothing: lru honours noreply on its    kUnknownCommand
//                                         errors                                 + noreply
//   "cache_memlimit" / 4 tokens           ERROR (token count; noreply no help)   kUnknownCommand
//   "cache_memlimit -1 [noreply]" / "x"   ERROR (hidden by noreply)              + noreply
//   "cache_memlimit 4294967396"           100 (safe_strtoul, cut to 32 bits)     number 100
//   > 2048 bytes without '\n'             connection closed, no reply, unless    kLineTooLong
//                                         the line is "get "/"gets " after at    close
//                                         most 100 spaces (memcached closes long
//                                         gat/gats lines too; cinch accepts them)
//   0x80 first byte                       binary protocol (-B ascii: ERROR)      kBinaryProtocol
//   mg/md/ma/ms without key               ERROR; "me" without key: CLIENT_ERROR  kUnknownCommand
//                                         bad command line format                kBadFormat
//   meta key > 250 bytes                  CLIENT_ERROR bad command line format   kKeyTooLong
//   mg with > 17 flags                    CLIENT_ERROR options flags are too     kMetaTooMany-
//   ms (>16) / md, ma (>17)               long / ... options flags too long      FlagsMg / ...
//   flag letter not in bcfhklstvOquCDFI   CLIENT_ERROR invalid flag              kInvalidMetaFlag
//   JLMNPRT (e.g. "1", "x", "S5", "E1")
//   repeated flag, or byte >= 127         CLIENT_ERROR duplicate flag            kDuplicate...
//   "T"/"Tabc"/"N"/"R"/"Cx"               CLIENT_ERROR bad token in command      kBadMetaToken
//                                         line format
//   "M" / "Mxy"                           CLIENT_ERROR incorrect length for M    kBadMetaMode-
//                                         token                                  Length
//   "Jx" / "Dx"                           CLIENT_ERROR invalid numeric initial   kBadMetaInitial
//                                         value / ... delta value                kBadMetaDelta
//   "Fabc"                                keeps the previous flag error, default kBadFormat
//                                         CLIENT_ERROR bad command line format
//   several token errors                  the last one wins ("Tabc Dx": delta)   same
//   'b' with a key that is not base64     CLIENT_ERROR error decoding key        kBadBase64Key
//   md/ma: any flag error above           CLIENT_ERROR invalid or duplicate flag kBadMetaFlagMdMa
//   O token over 32 bytes (with the 'O')  CLIENT_ERROR opaque token too long     kMetaOpaque...
//   ms: no datalen / "abc" / -1           CLIENT_ERROR bad command line format,  kBadFormat /
//                                         no sw                                  kBadDataLength
//   ms: flag error, mode not EAPRS,       the error, then sw datalen+2 ("q" does Fail + swallow
//   opaque too long, too large            not hide errors); mode error beats O
//   ma: mode not I + D -                  CLIENT_ERROR invalid mode for ma M     kBadMaMode
//   me k b (undecodable)                  CLIENT_ERROR bad command line format   kBadFormat
//
// Known differences, all on lines no client sends: memcached checks an ma opaque token only
// after applying the delta (here: rejected up front); a >64 KiB get line is delivered in parts,
// so an error late in it follows VALUEs already sent; a >64 KiB get line that is only blanks, or
// whose gat exptime token alone is huge, is closed as too long.
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string_view>

#include "common/check.h"
#include "proto/base64.h"
#include "proto/request.h"

namespace cinch::proto {
namespace {

constexpr size_t kNpos = std::string_view::npos;
constexpr size_t kMaxKeyLength = 250;      // memcached KEY_MAX_LENGTH
constexpr size_t kMaxTokens = 23;          // memcached MAX_TOKENS (24) minus its end marker
constexpr size_t kMaxMetaTokens = 19;      // more (with the end marker: > 20) is "too long"
constexpr size_t kMaxOpaqueToken = 32;     // counting the 'O'
constexpr size_t kMaxLeadingSpaces = 100;  // before a get line allowed to grow long
constexpr int64_t kMaxDataLength = std::numeric_limits<int32_t>::max() - 2;
constexpr uint8_t kBinaryMagic = 0x80;
static_assert(kMaxTokens - 2 <= kMaxMetaFlags, "me keeps all its flags");

// ---- Results ----------------------------------------------------------------------------

ParseResult NeedMore() { return {}; }

ParseResult Ok(size_t consumed) { return {.status = ParseStatus::kOk, .consumed = consumed}; }

ParseResult Fail(Error error, size_t consumed, size_t swallow = 0, bool noreply = false) {
  return {.status = ParseStatus::kError,
          .error = error,
          .consumed = consumed,
          .swallow = swallow,
          .noreply = noreply};
}

ParseResult Close(Error error, size_t consumed) {
  return {.status = ParseStatus::kError, .error = error, .consumed = consumed, .close = true};
}

// ---- Numbers, read as memcached's safe_strto* (util.c) read them --------------------------

// isspace() in the C locale; ' ' never occurs inside a token, the others can.
bool IsBlank(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// What strtoull() sees in a token: leading blanks, a sign, decimal digits. `ok` is false where
// safe_strto* fail before their own checks: no digits, digits followed by something other than
// the token's end or a blank, or a magnitude over 64 bits (ERANGE).
struct Decimal {
  bool ok = false;
  bool negative = false;
  uint64_t magnitude = 0;
};

Decimal ReadDecimal(std::string_view token) {
  Decimal d;
  size_t i = 0;
  while (i < token.size() && IsBlank(token[i])) ++i;
  if (i < token.size() && (token[i] == '+' || token[i] == '-')) d.negative = token[i++] == '-';
  const size_t first_digit = i;
  for (; i < token.size() && token[i] >= '0' && token[i] <= '9'; ++i) {
    const uint64_t digit = token[i] - '0';
    if (d.magnitude > (std::numeric_limits<uint64_t>::max() - digit) / 10) return d;
    d.magnitude = d.magnitude * 10 + digit;
  }
  d.ok = i > first_digit && (i == token.size() || IsBlank(token[i]));
  return d;
}

// safe_strtoull: a '-' is refused only when the (wrapped) result looks negative as int64.
bool ParseU64(std::string_view token, uint64_t* out) {
  const Decimal d = ReadDecimal(token);
  if (!d.ok) return false;
  const uint64_t value = d.negative ? 0 - d.magnitude : d.magnitude;
  if (static_cast<int64_t>(value) < 0 && token.find('-') != kNpos) return false;
  *out = value;
  return true;
}

// safe_strtoul: strtoul() is 64-bit on LP64, the result is cut to 32 bits.
bool ParseU32(std::string_view token, uint32_t* out) {
  uint64_t value;
  if (!ParseU64(token, &value)) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

// safe_strtoll.
bool ParseI64(std::string_view token, int64_t* out) {
  const Decimal d = ReadDecimal(token);
  const uint64_t limit = uint64_t{std::numeric_limits<int64_t>::max()} + (d.negative ? 1 : 0);
  if (!d.ok || d.magnitude > limit) return false;
  *out = static_cast<int64_t>(d.negative ? 0 - d.magnitude : d.magnitude);
  return true;
}

// safe_strtol: strtol() is 64-bit on LP64, the result is cut to 32 bits.
bool ParseI32(std::string_view token, int32_t* out) {
  int64_t value;
  if (!ParseI64(token, &value)) return false;
  *out = static_cast<int32_t>(value);
  return true;
}

// Request{} but for meta_flags, of which only the first num_meta_flags count: clearing the
// whole array cost a third of a small get's parse time.
static_assert(sizeof(void*) != 8 || sizeof(Request) == 920,
              "Request changed: make ResetRequest reset the new field");
void ResetRequest(Request* r) {
  r->command = Command::kGet;
  r->key = r->keys = r->data = r->stats_arg = {};
  r->partial = r->skip_rest = r->noreply = r->has_number = false;
  r->line_error = Error::kNone;
  r->client_flags = r->dump_limit = 0;
  r->exptime = r->number = 0;
  r->cas_unique = r->delta = 0;
  r->num_meta_flags = 0;
  r->data_length = 0;
}

// ---- Lines and tokens -------------------------------------------------------------------

// The request line ending at input[newline]: without the '\r' before the '\n', and cut at the
// first NUL byte, because memcached hands the line to strlen().
std::string_view LineText(std::string_view input, size_t newline) {
  std::string_view text = input.substr(0, newline);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text.substr(0, text.find('\0'));
}

// memcached splits a line on ' ' only and keeps at most kMaxTokens tokens.
struct Tokens {
  std::string_view token[kMaxTokens];
  size_t count = 0;

  std::string_view operator[](size_t i) const { return token[i]; }
  std::string_view last() const { return token[count - 1]; }
};

void Tokenize(std::string_view text, Tokens* tokens) {
  std::string_view token;
  while (tokens->count < kMaxTokens && NextKey(&text, &token)) {
    tokens->token[tokens->count++] = token;
  }
}

bool KeysFit(std::string_view keys) {
  std::string_view key;
  while (NextKey(&keys, &key)) {
    if (key.size() > kMaxKeyLength) return false;
  }
  return true;
}

bool HasKey(std::string_view keys) { return keys.find_first_not_of(' ') != kNpos; }

// One complete request line and what surrounds it.
struct Line {
  std::string_view input;  // everything passed to ParseRequest
  std::string_view text;   // the line (see LineText)
  size_t end;              // input bytes up to and including the '\n'
  const ParserLimits* limits;
  Request* request;
};

// The data block of a storage command, which starts right after the line.
ParseResult TakeData(const Line& line, size_t length, bool noreply) {
  if (length > line.limits->max_item_size)
    return Fail(Error::kTooLarge, line.end, length + 2, noreply);
  const size_t end = line.end + length + 2;
  if (line.input.size() < end) return NeedMore();
  if (line.input.substr(line.end + length, 2) != "\r\n") {
    return Fail(Error::kBadDataChunk, end, 0, noreply);
  }
  line.request->data = line.input.substr(line.end, length);
  return Ok(end);
}

// ---- Text commands ----------------------------------------------------------------------

bool IsTouchingGet(Command c) { return c == Command::kGat || c == Command::kGats; }

// get/gets/bget <key>+, gat/gats <exptime> <key>*
ParseResult ParseRetrieval(const Line& line, std::string_view args) {
  Request* r = line.request;
  if (IsTouchingGet(r->command)) {
    std::string_view exptime_token;
    int32_t exptime;
    if (!NextKey(&args, &exptime_token)) return Fail(Error::kUnknownCommand, line.end);
    if (!ParseI32(exptime_token, &exptime)) return Fail(Error::kBadExptime, line.end);
    r->exptime = exptime;
  } else if (!HasKey(args)) {
    return Fail(Error::kUnknownCommand, line.end);
  }
  if (!KeysFit(args)) return Fail(Error::kKeyTooLong, line.end);
  r->keys = args;
  return Ok(line.end);
}

// <cmd> <key> <flags> <exptime> <bytes> [noreply], cas with <cas unique> before [noreply].
ParseResult ParseStorage(const Line& line, std::string_view) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  const bool cas = r->command == Command::kCas;
  const size_t required = cas ? 6 : 5;
  if (t.count != required && t.count != required + 1) return Fail(Error::kUnknownCommand, line.end);
  // memcached looks at the last token whatever the count, e.g. "set k 0 0 noreply".
  r->noreply = t.last() == "noreply";
  const auto fail = [&](Error e) { return Fail(e, line.end, 0, r->noreply); };
  if (t[1].size() > kMaxKeyLength) return fail(Error::kKeyTooLong);
  int32_t exptime, length;
  if (!ParseU32(t[2], &r->client_flags) || !ParseI32(t[3], &exptime) || !ParseI32(t[4], &length) ||
      (cas && !ParseU64(t[5], &r->cas_unique))) {
    return fail(Error::kBadFormat);
  }
  if (length < 0 || length > kMaxDataLength) return fail(Error::kBadFormat);
  r->key = t[1];
  r->exptime = exptime;
  r->data_length = length;
  return TakeData(line, length, r->noreply);
}

// delete <key> [0] [noreply]: the "0" is a legacy hold time.
ParseResult ParseDelete(const Line& line, std::string_view) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count < 2 || t.count > 4) return Fail(Error::kUnknownCommand, line.end);
  if (t.count > 2) {
    const bool hold_zero = t[2] == "0";
    r->noreply = t.last() == "noreply";
    const bool valid =
        (t.count == 3 && (hold_zero || r->noreply)) || (t.count == 4 && hold_zero && r->noreply);
    if (!valid) return Fail(Error::kDeleteUsage, line.end, 0, r->noreply);
  }
  if (t[1].size() > kMaxKeyLength) return Fail(Error::kKeyTooLong, line.end, 0, r->noreply);
  r->key = t[1];
  return Ok(line.end);
}

// Commands shaped "<cmd> <key> <arg> [noreply]" (incr, decr, touch). Returns the argument
// after checking the count and the key, or sets *error.
std::string_view KeyAndArgument(const Line& line, ParseResult* error) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count != 3 && t.count != 4) {
    *error = Fail(Error::kUnknownCommand, line.end);
    return {};
  }
  r->noreply = t.last() == "noreply";
  if (t[1].size() > kMaxKeyLength) {
    *error = Fail(Error::kKeyTooLong, line.end, 0, r->noreply);
    return {};
  }
  r->key = t[1];
  return t[2];
}

ParseResult ParseArithmetic(const Line& line, std::string_view) {
  ParseResult result = Ok(line.end);
  const std::string_view delta = KeyAndArgument(line, &result);
  if (result.status != ParseStatus::kOk) return result;
  if (!ParseU64(delta, &line.request->delta)) {
    return Fail(Error::kBadDelta, line.end, 0, line.request->noreply);
  }
  return result;
}

ParseResult ParseTouch(const Line& line, std::string_view) {
  ParseResult result = Ok(line.end);
  const std::string_view exptime_token = KeyAndArgument(line, &result);
  if (result.status != ParseStatus::kOk) return result;
  int32_t exptime;
  if (!ParseI32(exptime_token, &exptime)) {
    return Fail(Error::kBadExptime, line.end, 0, line.request->noreply);
  }
  line.request->exptime = exptime;
  return result;
}

// flush_all [delay] [noreply]: the delay is read unless the only argument is "noreply".
ParseResult ParseFlushAll(const Line& line, std::string_view) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count > 3) return Fail(Error::kUnknownCommand, line.end);
  r->noreply = t.last() == "noreply";
  if (t.count == (r->noreply ? 2u : 1u)) return Ok(line.end);
  int32_t delay;
  if (!ParseI32(t[1], &delay)) return Fail(Error::kBadExptime, line.end, 0, r->noreply);
  r->number = delay;
  r->has_number = true;
  return Ok(line.end);
}

// verbosity <level> [noreply]
ParseResult ParseVerbosity(const Line& line, std::string_view) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count != 2 && t.count != 3) return Fail(Error::kUnknownCommand, line.end);
  r->noreply = t.last() == "noreply";
  uint32_t level;
  if (!ParseU32(t[1], &level)) return Fail(Error::kBadFormat, line.end, 0, r->noreply);
  r->number = level;
  r->has_number = true;
  return Ok(line.end);
}

// The slab classes memcached has (MAX_NUMBER_OF_SLAB_CLASSES): ids 1..63 for a dump.
constexpr uint32_t kSlabClasses = 64;

// stats [arg]; "stats cachedump <class> <limit>" as memcached checks it: fewer than two numbers,
// a number safe_strtoul refuses, then a class past the last.
ParseResult ParseStats(const Line& line, std::string_view args) {
  Request* r = line.request;
  NextKey(&args, &r->stats_arg);
  if (r->stats_arg != "cachedump") return Ok(line.end);
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count < 4) return Fail(Error::kCachedumpUsage, line.end);
  uint32_t id;
  if (!ParseU32(t[2], &id) || !ParseU32(t[3], &r->dump_limit)) {
    return Fail(Error::kBadFormat, line.end);
  }
  if (id >= kSlabClasses) return Fail(Error::kIllegalSlabId, line.end);
  r->number = id;
  r->has_number = true;
  return Ok(line.end);
}

// lru_crawler metadump <all|hash|class,class,...>: the one lru_crawler subcommand cinch has
// (the others steer memcached's crawler thread: ERROR, as any other form). Classes are
// safe_strtoul numbers in 1..63; empty ones between commas are skipped.
ParseResult ParseLruCrawler(const Line& line, std::string_view) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count != 3 || t[1] != "metadump") return Fail(Error::kUnknownCommand, line.end);
  r->stats_arg = t[1];
  r->has_number = true;
  const std::string_view classes = t[2];
  if (classes == "all" || classes == "hash") {
    r->number = 1;
    return Ok(line.end);
  }
  r->number = 0;
  bool any = false;
  for (size_t pos = 0; pos <= classes.size();) {
    size_t comma = std::min(classes.find(',', pos), classes.size());
    std::string_view id_token = classes.substr(pos, comma - pos);
    pos = comma + 1;
    if (id_token.empty()) continue;
    uint32_t id;
    if (!ParseU32(id_token, &id) || id < 1 || id >= kSlabClasses) {
      return Fail(Error::kBadClass, line.end);
    }
    any = true;
    if (id == 1) r->number = 1;
  }
  return any ? Ok(line.end) : Fail(Error::kNoClassToCrawl, line.end);
}

// debugtime p | r | <seconds>: as memcached's debug builds, "ERROR" for anything else.
ParseResult ParseDebugTime(const Line& line, std::string_view args) {
  std::string_view arg;
  if (!NextKey(&args, &arg)) return Fail(Error::kUnknownCommand, line.end);
  using ClockControl = Request::ClockControl;
  if (arg == "p" || arg == "r") {
    line.request->clock_control = arg == "p" ? ClockControl::kPause : ClockControl::kResume;
    return Ok(line.end);
  }
  if (!ParseI64(arg, &line.request->number)) return Fail(Error::kUnknownCommand, line.end);
  line.request->clock_control = ClockControl::kShift;
  line.request->has_number = true;
  return Ok(line.end);
}

// cache_memlimit <megabytes> [noreply]: memcached checks the token count first (ERROR, which
// no noreply hides), then reads the number as safe_strtoul does (cut to 32 bits: 4294967396
// is 100); a bad number is ERROR, hidden by noreply. Whether the value is accepted is the
// server's: memcached answers MEMLIMIT_TOO_SMALL below 8 and MEMLIMIT_ADJUST_FAILED above 10^9.
ParseResult ParseCacheMemlimit(const Line& line, std::string_view) {
  Request* r = line.request;
  Tokens t;
  Tokenize(line.text, &t);
  if (t.count != 2 && t.count != 3) return Fail(Error::kUnknownCommand, line.end);
  r->noreply = t.last() == "noreply";
  uint32_t megabytes;
  if (!ParseU32(t[1], &megabytes)) return Fail(Error::kUnknownCommand, line.end, 0, r->noreply);
  r->number = megabytes;
  r->has_number = true;
  return Ok(line.end);
}

// version, quit: arguments are ignored.
ParseResult ParseBare(const Line& line, std::string_view) { return Ok(line.end); }

struct TextCommand {
  std::string_view name;
  Command command;
  ParseResult (*parse)(const Line&, std::string_view args);
};

constexpr TextCommand kTextCommands[] = {
    {"get", Command::kGet, ParseRetrieval},
    {"set", Command::kSet, ParseStorage},
    {"gets", Command::kGets, ParseRetrieval},
    {"delete", Command::kDelete, ParseDelete},
    {"incr", Command::kIncr, ParseArithmetic},
    {"decr", Command::kDecr, ParseArithmetic},
    {"add", Command::kAdd, ParseStorage},
    {"replace", Command::kReplace, ParseStorage},
    {"append", Command::kAppend, ParseStorage},
    {"prepend", Command::kPrepend, ParseStorage},
    {"cas", Command::kCas, ParseStorage},
    {"touch", Command::kTouch, ParseTouch},
    {"gat", Command::kGat, ParseRetrieval},
    {"gats", Command::kGats, ParseRetrieval},
    {"bget", Command::kGet, ParseRetrieval},  // memcached's ancient alias
    {"flush_all", Command::kFlushAll, ParseFlushAll},
    {"version", Command::kVersion, ParseBare},
    {"verbosity", Command::kVerbosity, ParseVerbosity},
    {"quit", Command::kQuit, ParseBare},
    {"stats", Command::kStats, ParseStats},
    {"debugtime", Command::kDebugTime, ParseDebugTime},
    {"cache_memlimit", Command::kCacheMemlimit, ParseCacheMemlimit},
    {"lru_crawler", Command::kLruCrawler, ParseLruCrawler},
};

// memcached closes the connection on an unknown command whose last token starts with "HTTP/",
// but only in the branch of its dispatcher that names starting with these letters, two-letter
// m-commands and the commands below never reach.
bool MayBeHttp(std::string_view name) {
  constexpr std::string_view kOtherBranches = "gsacidt";
  constexpr std::string_view kHandledNames[] = {"lru_crawler", "watch", "lru", "extstore",
                                                "refresh_certs"};
  if (kOtherBranches.find(name[0]) != kNpos || (name[0] == 'm' && name.size() == 2)) return false;
  for (std::string_view handled : kHandledNames) {
    if (name == handled) return false;
  }
  return true;
}

ParseResult ParseUnknown(const Line& line, std::string_view name) {
  Tokens t;
  Tokenize(line.text, &t);
  if (MayBeHttp(name) && t.last().starts_with("HTTP/")) return Close(Error::kHttpRequest, line.end);
  if (name == "shutdown") return Fail(Error::kShutdownDisabled, line.end);
  // memcached's own "lru" (not a cinch command) honours noreply on errors.
  const bool noreply = name == "lru" && t.count > 1 && t.last() == "noreply";
  return Fail(Error::kUnknownCommand, line.end, 0, noreply);
}

// ---- Meta commands ----------------------------------------------------------------------

// How memcached's flag preparse treats each flag letter (identical for mg, ms, md, ma).
enum class FlagKind : uint8_t {
  kUnknown,  // "invalid flag"
  kPlain,    // no token, or a token nobody checks
  kBase64,   // b: the key must decode
  kInt32,    // N, T, R
  kUint32,   // F
  kCas,      // C
  kInitial,  // J
  kDelta,    // D
  kMode,     // M: exactly one character
};

constexpr std::array<FlagKind, 128> MakeFlagKinds() {
  std::array<FlagKind, 128> kinds{};
  for (uint8_t c : std::string_view("cfhklstvOquIPL")) kinds[c] = FlagKind::kPlain;
  for (uint8_t c : std::string_view("NTR")) kinds[c] = FlagKind::kInt32;
  kinds['b'] = FlagKind::kBase64;
  kinds['F'] = FlagKind::kUint32;
  kinds['C'] = FlagKind::kCas;
  kinds['J'] = FlagKind::kInitial;
  kinds['D'] = FlagKind::kDelta;
  kinds['M'] = FlagKind::kMode;
  return kinds;
}
constexpr std::array<FlagKind, 128> kFlagKinds = MakeFlagKinds();

bool KeyDecodes(std::string_view key) {
  char decoded[kMaxKeyLength];
  return Base64Decode(key, decoded, key.size()) != 0;
}

// Checks one flag and fills flag->number. Returns the error memcached records for it (kNone if
// fine); kBadFormat stands for F's failure, which records no message of its own.
Error CheckFlag(FlagKind kind, std::string_view key, MetaFlag* flag) {
  int32_t i32;
  uint32_t u32;
  switch (kind) {
    case FlagKind::kUnknown:
      return Error::kInvalidMetaFlag;
    case FlagKind::kPlain:
      return Error::kNone;
    case FlagKind::kBase64:
      return KeyDecodes(key) ? Error::kNone : Error::kBadBase64Key;
    case FlagKind::kInt32:
      if (!ParseI32(flag->token, &i32)) return Error::kBadMetaToken;
      flag->number = static_cast<uint64_t>(int64_t{i32});
      return Error::kNone;
    case FlagKind::kUint32:
      if (!ParseU32(flag->token, &u32)) return Error::kBadFormat;
      flag->number = u32;
      return Error::kNone;
    case FlagKind::kCas:
      return ParseU64(flag->token, &flag->number) ? Error::kNone : Error::kBadMetaToken;
    case FlagKind::kInitial:
      return ParseU64(flag->token, &flag->number) ? Error::kNone : Error::kBadMetaInitial;
    case FlagKind::kDelta:
      return ParseU64(flag->token, &flag->number) ? Error::kNone : Error::kBadMetaDelta;
    case FlagKind::kMode:
      return flag->token.size() == 1 ? Error::kNone : Error::kBadMetaModeLength;
  }
  return Error::kInvalidMetaFlag;
}

// memcached's _meta_flag_preparse over tokens [first, count): a duplicate or unknown flag stops
// at once; other errors are recorded and the last recorded message is returned at the end.
Error ReadMetaFlags(const Tokens& t, size_t first, Request* r) {
  uint64_t seen[2] = {0, 0};
  Error recorded = Error::kNone;
  bool failed = false;
  for (size_t i = first; i < t.count; ++i) {
    const auto letter = static_cast<uint8_t>(t[i][0]);
    if (letter >= 127 || (seen[letter / 64] >> (letter % 64) & 1)) {
      return Error::kDuplicateMetaFlag;
    }
    seen[letter / 64] |= uint64_t{1} << (letter % 64);
    MetaFlag& flag = r->meta_flags[r->num_meta_flags++];
    flag = {static_cast<char>(letter), t[i].substr(1), 0};
    const Error e = CheckFlag(kFlagKinds[letter], r->key, &flag);
    if (e == Error::kInvalidMetaFlag) return e;
    if (e == Error::kNone) continue;
    failed = true;
    if (e != Error::kBadFormat || recorded == Error::kNone) recorded = e;
  }
  return failed ? recorded : Error::kNone;
}

const MetaFlag* FindFlag(const Request& r, char letter) {
  for (size_t i = 0; i < r.num_meta_flags; ++i) {
    if (r.meta_flags[i].letter == letter) return &r.meta_flags[i];
  }
  return nullptr;
}

bool ModeAllowed(const Request& r, std::string_view modes) {
  const MetaFlag* mode = FindFlag(r, 'M');
  return mode == nullptr || modes.find(mode->token[0]) != kNpos;
}

bool OpaqueTooLong(const Request& r) {
  const MetaFlag* opaque = FindFlag(r, 'O');
  return opaque != nullptr && opaque->token.size() + 1 > kMaxOpaqueToken;
}

// ms <key> <datalen> <flags>*: errors after a valid datalen swallow the data block.
ParseResult ParseMetaSet(const Line& line, const Tokens& t) {
  Request* r = line.request;
  if (t.count == 2) return Fail(Error::kBadFormat, line.end);
  if (t.count > kMaxMetaTokens) return Fail(Error::kMetaTooManyFlags, line.end);
  int32_t length;
  if (!ParseI32(t[2], &length) || length < 0 || length > kMaxDataLength) {
    return Fail(Error::kBadDataLength, line.end);
  }
  r->data_length = length;
  Error e = ReadMetaFlags(t, 3, r);
  if (e == Error::kNone && !ModeAllowed(*r, "EAPRS")) e = Error::kBadMsMode;
  if (e == Error::kNone && OpaqueTooLong(*r)) e = Error::kMetaOpaqueTooLong;
  if (e != Error::kNone) return Fail(e, line.end, r->data_length + 2);
  return TakeData(line, r->data_length, false);
}

// mg, md, ma: <key> <flags>*
ParseResult ParseMetaKeyed(const Line& line, const Tokens& t) {
  Request* r = line.request;
  const bool get = r->command == Command::kMetaGet;
  if (t.count > kMaxMetaTokens) {
    return Fail(get ? Error::kMetaTooManyFlagsMg : Error::kMetaTooManyFlags, line.end);
  }
  const Error e = ReadMetaFlags(t, 2, r);
  if (e != Error::kNone) return Fail(get ? e : Error::kBadMetaFlagMdMa, line.end);
  if (r->command == Command::kMetaArithmetic && !ModeAllowed(*r, "I+D-")) {
    return Fail(Error::kBadMaMode, line.end);
  }
  if (OpaqueTooLong(*r)) return Fail(Error::kMetaOpaqueTooLong, line.end);
  return Ok(line.end);
}

// me <key> [b]: memcached only looks at a first flag "b", and words its errors differently.
ParseResult ParseMetaDebug(const Line& line, const Tokens& t) {
  Request* r = line.request;
  if (t.count < 2) return Fail(Error::kBadFormat, line.end);
  if (t[1].size() > kMaxKeyLength) return Fail(Error::kKeyTooLong, line.end);
  r->key = t[1];
  if (t.count > 2 && t[2] == "b" && !KeyDecodes(r->key)) return Fail(Error::kBadFormat, line.end);
  for (size_t i = 2; i < t.count; ++i)
    r->meta_flags[r->num_meta_flags++] = {t[i][0], t[i].substr(1)};
  return Ok(line.end);
}

ParseResult ParseMeta(const Line& line, char op) {
  Request* r = line.request;
  switch (op) {
    case 'n':
      r->command = Command::kMetaNoop;
      return Ok(line.end);
    case 'e':
      r->command = Command::kMetaDebug;
      break;
    case 'g':
      r->command = Command::kMetaGet;
      break;
    case 's':
      r->command = Command::kMetaSet;
      break;
    case 'd':
      r->command = Command::kMetaDelete;
      break;
    case 'a':
      r->command = Command::kMetaArithmetic;
      break;
    default:
      return Fail(Error::kUnknownCommand, line.end);
  }
  Tokens t;
  Tokenize(line.text, &t);
  if (r->command == Command::kMetaDebug) return ParseMetaDebug(line, t);
  if (t.count < 2) return Fail(Error::kUnknownCommand, line.end);
  if (t[1].size() > kMaxKeyLength) return Fail(Error::kKeyTooLong, line.end);
  r->key = t[1];
  if (r->command == Command::kMetaSet) return ParseMetaSet(line, t);
  return ParseMetaKeyed(line, t);
}

// ---- Lines ------------------------------------------------------------------------------

ParseResult ParseLine(const Line& line) {
  std::string_view args = line.text, name;
  if (!NextKey(&args, &name) || name.size() < 2) return Fail(Error::kUnknownCommand, line.end);
  if (name[0] == 'm' && name.size() == 2) return ParseMeta(line, name[1]);
  for (const TextCommand& c : kTextCommands) {
    if (c.name != name) continue;
    line.request->command = c.command;
    return c.parse(line, args);
  }
  return ParseUnknown(line, name);
}

// ---- Long get lines ---------------------------------------------------------------------

// Reports the rest of a partial line as skipped, with `error` due at its end.
void SkipRest(Request* r, Error error) {
  r->keys = {};
  r->skip_rest = true;
  r->line_error = error;
}

// A key longer than the limit is certain once this many bytes of it (the '\r' of "\r\n" may
// still follow a key of exactly kMaxKeyLength) have arrived.
bool TailTooLong(std::string_view tail) {
  return tail.size() > kMaxKeyLength + 1 ||
         (tail.size() == kMaxKeyLength + 1 && tail.back() != '\r');
}

// Delivers the complete keys of `chunk`, bytes of a get line with no '\n' in them. Returns the
// bytes used: through the last space, or all of them when the rest of the line is skipped.
size_t TakeCompleteKeys(std::string_view chunk, Request* r) {
  const size_t nul = chunk.find('\0');
  if (nul != kNpos) {  // the line ends here for memcached; every key before it is complete
    const std::string_view keys = chunk.substr(0, nul);
    SkipRest(r, KeysFit(keys) ? Error::kNone : Error::kKeyTooLong);
    r->keys = r->line_error == Error::kNone ? keys : std::string_view();
    return chunk.size();
  }
  const size_t last_space = chunk.rfind(' ');
  const size_t used = last_space == kNpos ? 0 : last_space + 1;
  const std::string_view keys = chunk.substr(0, used);
  if (!KeysFit(keys) || TailTooLong(chunk.substr(used))) {
    SkipRest(r, Error::kKeyTooLong);
    return chunk.size();
  }
  r->keys = keys;
  return used;
}

// The start of a get line too long to wait for. `args` begins after "<cmd> " at input[offset].
ParseResult StartPartialGet(std::string_view input, size_t offset, Request* r) {
  r->partial = true;
  std::string_view args = input.substr(offset);
  if (IsTouchingGet(r->command)) {  // the exptime token must be complete, and come before a NUL
    const size_t begin = args.find_first_not_of(' ');
    const size_t end = begin == kNpos ? kNpos : args.find(' ', begin);
    if (end == kNpos || args.find('\0') < end) return Close(Error::kLineTooLong, input.size());
    int32_t exptime;
    if (!ParseI32(args.substr(begin, end - begin), &exptime)) {
      SkipRest(r, Error::kBadExptime);
      return Ok(input.size());
    }
    r->exptime = exptime;
    offset += end;
    args.remove_prefix(end);
  }
  const size_t used = TakeCompleteKeys(args, r);
  if (r->line_error == Error::kNone && !HasKey(r->keys)) {
    // No key yet in more than max_get_line bytes: only blanks, or a NUL right away.
    if (!r->skip_rest) return Close(Error::kLineTooLong, input.size());
    if (!IsTouchingGet(r->command)) r->line_error = Error::kUnknownCommand;  // "get" alone
  }
  return Ok(offset + used);
}

// A line with no '\n' yet. memcached waits for at most 2048 bytes of it, except for get lines
// (after at most 100 spaces), which may grow without bound.
ParseResult ParseUnterminated(std::string_view input, const ParserLimits& limits, Request* r) {
  if (input.size() <= limits.max_line) return NeedMore();
  const size_t start = input.find_first_not_of(' ');
  if (start == kNpos || start > kMaxLeadingSpaces) return Close(Error::kLineTooLong, input.size());
  for (const TextCommand& c : kTextCommands) {
    if (c.parse != ParseRetrieval || c.name == "bget") continue;
    const std::string_view rest = input.substr(start);
    if (!rest.starts_with(c.name) || rest.size() == c.name.size() || rest[c.name.size()] != ' ') {
      continue;
    }
    if (input.size() <= limits.max_get_line) return NeedMore();
    ResetRequest(r);
    r->command = c.command;
    return StartPartialGet(input, start + c.name.size() + 1, r);
  }
  return Close(Error::kLineTooLong, input.size());
}

// The '\n' of a partial line has arrived: report the pending error, if any.
ParseResult FinishPartialLine(Request* r, size_t consumed) {
  const Error error = r->line_error;
  r->partial = false;
  r->skip_rest = false;
  r->line_error = Error::kNone;
  return error == Error::kNone ? Ok(consumed) : Fail(error, consumed);
}

}  // namespace

ParseResult ParseRequest(std::string_view input, const ParserLimits& limits, Request* request) {
  static_assert(ParserLimits::kMinGetLine >
                kMaxLeadingSpaces + sizeof("gats -2147483648 ") + kMaxKeyLength);
  CINCH_DCHECK(limits.max_get_line >= ParserLimits::kMinGetLine);
  if (input.empty()) return NeedMore();
  if (static_cast<uint8_t>(input[0]) == kBinaryMagic) {
    return Close(Error::kBinaryProtocol, input.size());
  }
  const size_t newline = input.find('\n');
  if (newline == kNpos) return ParseUnterminated(input, limits, request);
  ResetRequest(request);
  return ParseLine({input, LineText(input, newline), newline + 1, &limits, request});
}

ParseResult ParseGetContinuation(std::string_view input, const ParserLimits& limits,
                                 Request* request) {
  CINCH_DCHECK(request->partial);
  request->keys = {};
  const size_t newline = input.find('\n');
  if (request->skip_rest) {
    if (newline != kNpos) return FinishPartialLine(request, newline + 1);
    return input.empty() ? NeedMore() : Ok(input.size());
  }
  if (newline == kNpos) {
    if (input.size() <= limits.max_get_line) return NeedMore();
    return Ok(TakeCompleteKeys(input, request));
  }
  const std::string_view keys = LineText(input, newline);
  if (!KeysFit(keys))
    request->line_error = Error::kKeyTooLong;
  else
    request->keys = keys;
  return FinishPartialLine(request, newline + 1);
}

// A byte loop: keys are short, and memchr's call overhead dominated a profile of small gets.
bool NextKey(std::string_view* rest, std::string_view* key) {
  const char* p = rest->data();
  const char* const end = p + rest->size();
  while (p != end && *p == ' ') ++p;
  const char* const begin = p;
  while (p != end && *p != ' ') ++p;
  *key = std::string_view(begin, p - begin);
  *rest = std::string_view(p, end - p);
  return p != begin;
}

}  // namespace cinch::proto
