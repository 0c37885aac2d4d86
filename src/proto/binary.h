// memcached's binary protocol: the packet layout, opcodes and status codes (the names of
// memcached's protocol_binary.h), a pure parser of request packets and the response encoder.
//
// A packet is a 24-byte header followed by extras, key and value (all lengths in the header,
// numbers big-endian):
//
//      0        1        2        3        4        5        6        7
//   +--------+--------+--------+--------+--------+--------+--------+--------+
//  0| magic  | opcode | key length      | extlen | dtype  | vbucket/status  |
//   +--------+--------+--------+--------+--------+--------+--------+--------+
//  8| total body length (extras+key+value)| opaque (echoed back)              |
//   +--------+--------+--------+--------+--------+--------+--------+--------+
// 16| cas                                                                   |
//   +--------+--------+--------+--------+--------+--------+--------+--------+
// 24| extras (extlen) | key (key length) | value (the rest of the body)      |
//
// Requests carry magic 0x80 and a vbucket; responses magic 0x81 and a status.
//
// The parser is pure: bytes in, a request (views into the input), "need more", or an error
// (the status to answer and whether to close or to discard the rest of the packet) out. It
// never waits for more than the header, extras, key and a value of at most max_item_size bytes,
// so a connection's buffered input stays bounded whatever the header claims.
//
// Thread safety: pure functions and plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cinch::proto::binary {

inline constexpr uint8_t kRequestMagic = 0x80;
inline constexpr uint8_t kResponseMagic = 0x81;
inline constexpr size_t kHeaderSize = 24;
inline constexpr size_t kMaxKeySize = 250;  // memcached's KEY_MAX_LENGTH
inline constexpr size_t kMaxExtras = 20;    // incr/decr: delta, initial, exptime

enum class Opcode : uint8_t {
  kGet = 0x00,
  kSet = 0x01,
  kAdd = 0x02,
  kReplace = 0x03,
  kDelete = 0x04,
  kIncrement = 0x05,
  kDecrement = 0x06,
  kQuit = 0x07,
  kFlush = 0x08,
  kGetQ = 0x09,
  kNoop = 0x0a,
  kVersion = 0x0b,
  kGetK = 0x0c,
  kGetKQ = 0x0d,
  kAppend = 0x0e,
  kPrepend = 0x0f,
  kStat = 0x10,
  kSetQ = 0x11,
  kAddQ = 0x12,
  kReplaceQ = 0x13,
  kDeleteQ = 0x14,
  kIncrementQ = 0x15,
  kDecrementQ = 0x16,
  kQuitQ = 0x17,
  kFlushQ = 0x18,
  kAppendQ = 0x19,
  kPrependQ = 0x1a,
  kVerbosity = 0x1b,  // defined by the protocol; memcached 1.6 answers kUnknownCommand
  kTouch = 0x1c,
  kGat = 0x1d,
  kGatQ = 0x1e,
  kSaslListMechs = 0x20,
  kSaslAuth = 0x21,
  kSaslStep = 0x22,
  kGatK = 0x23,
  kGatKQ = 0x24,
};

enum class Status : uint16_t {
  kSuccess = 0x00,
  kKeyNotFound = 0x01,
  kKeyExists = 0x02,
  kTooLarge = 0x03,
  kInvalidArguments = 0x04,
  kNotStored = 0x05,
  kNonNumeric = 0x06,  // incr/decr on a value that is not a number
  kAuthError = 0x20,
  kAuthContinue = 0x21,
  kUnknownCommand = 0x81,
  kOutOfMemory = 0x82,
};

// The text memcached sends as the body of an error response ("Not found", "Too large." ...).
std::string_view StatusMessage(Status status);

// The command an opcode names with its quiet form folded in: kGetQ -> kGet, kSetQ -> kSet...
// (a quiet command answers only errors; quiet gets do not answer misses).
Opcode BaseOpcode(Opcode op);
bool IsQuiet(Opcode op);

struct Request {
  Opcode opcode = Opcode::kNoop;
  uint8_t datatype = 0;
  uint16_t vbucket = 0;
  uint32_t opaque = 0;  // as sent (byte order kept: it is only echoed)
  uint64_t cas = 0;
  std::string_view extras;
  std::string_view key;
  std::string_view value;
};

// Why a packet was refused, and what memcached does about it.
enum class Error : uint8_t {
  kNone,
  kBadMagic,        // first byte not 0x80: close without a reply (consumes nothing)
  kBadLengths,      // key + extras longer than the body: kUnknownCommand, then close
  kKeyTooLong,      // key over 250 bytes: kInvalidArguments, then close
  kBadFormat,       // extras/key/body lengths wrong for the opcode: kInvalidArguments, close
  kUnknownCommand,  // opcode not implemented: kUnknownCommand, body discarded
  kTooLarge,        // storage value over max_item_size: kTooLarge, value discarded
};

enum class ParseStatus : uint8_t {
  kOk,        // *request is complete; `consumed` bytes are used up
  kNeedMore,  // no complete packet yet; call again with more bytes (nothing consumed)
  kError,     // answer `status` (unless kBadMagic), drop `consumed` (+ `swallow` more bytes)
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  Error error = Error::kNone;
  Status reply = Status::kSuccess;  // kError: the status to answer with
  size_t consumed = 0;
  size_t swallow = 0;  // kError: bytes of the packet past `consumed`, maybe not yet received
  bool close = false;  // kError: close after the reply
  // kError: header fields the reply needs (echoed opaque and opcode), and for kTooLarge the
  // key (a set refused as too large also deletes the key's old value, as memcached does).
  Request request;
};

struct ParserLimits {
  size_t max_item_size = size_t{1} << 20;  // storage values longer than this: kTooLarge
};

// Parses the first packet in `input`. A complete storage packet's value is at most
// max_item_size bytes; every other request's body is at most kMaxExtras + kMaxKeySize (SASL
// data: max_item_size).
ParseResult ParseRequest(std::string_view input, const ParserLimits& limits, Request* request);

// The most bytes ParseRequest may need buffered to make progress.
size_t MaxPacketSize(const ParserLimits& limits);

struct ResponseHeader {
  Opcode opcode = Opcode::kNoop;
  Status status = Status::kSuccess;
  uint8_t extlen = 0;
  uint16_t keylen = 0;
  uint32_t bodylen = 0;  // extras + key + value
  uint32_t opaque = 0;   // as the request had it
  uint64_t cas = 0;
};

// Writes the 24-byte response header for `h` to out[0, kHeaderSize).
void EncodeResponseHeader(const ResponseHeader& h, char* out);

// The statistics group a stat request's key names, as memcached 1.6.18's binary protocol
// matches it: the whole list for no key, "reset" and "settings" for any key they begin
// (memcached compares only their length), "items", "slabs", "sizes" and cinch's own "cinch"
// exactly. Empty for any other key (the text protocol's "conns" included): not a group, which
// memcached answers kKeyNotFound. `*group` is set for a group ("" for the whole list).
bool StatGroup(std::string_view key, std::string_view* group);

// Big-endian helpers for extras.
uint32_t LoadBig32(const char* p);
uint64_t LoadBig64(const char* p);
void StoreBig32(uint32_t v, char* p);
void StoreBig64(uint64_t v, char* p);

// SASL PLAIN (RFC 4616): "authzid NUL authcid NUL password". False when the message does not
// have exactly that shape or the user name is empty.
struct SaslPlain {
  std::string_view authzid;
  std::string_view user;
  std::string_view password;
};
bool ParseSaslPlain(std::string_view message, SaslPlain* out);

inline constexpr std::string_view kSaslMechanisms = "PLAIN";
inline constexpr std::string_view kSaslAuthenticated = "Authenticated";

}  // namespace cinch::proto::binary
