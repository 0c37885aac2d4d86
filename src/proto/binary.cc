#include "proto/binary.h"

#include <cstring>

namespace cinch::proto::binary {

namespace {

struct Lengths {
  size_t ext;
  size_t key;
  size_t body;
  size_t value() const { return body - ext - key; }
};

enum class Shape : uint8_t { kUnknown, kValid, kInvalid };

bool Empty(const Lengths& n) { return n.ext == 0 && n.key == 0 && n.body == 0; }

// The header checks memcached 1.6.18 makes per command (dispatch_bin_command), plus: stat,
// touch and gat must have no value (memcached does not look and would read a value as the next
// packet; here it is a bad packet).
Shape ShapeOf(Opcode base, const Lengths& n) {
  auto valid = [](bool ok) { return ok ? Shape::kValid : Shape::kInvalid; };
  switch (base) {
    case Opcode::kVersion:
    case Opcode::kNoop:
    case Opcode::kQuit:
    case Opcode::kSaslListMechs:
      return valid(Empty(n));
    case Opcode::kFlush:
      return valid(n.key == 0 && n.body == n.ext && (n.ext == 0 || n.ext == 4));
    case Opcode::kSet:
    case Opcode::kAdd:
    case Opcode::kReplace:
      return valid(n.ext == 8 && n.key != 0);
    case Opcode::kGet:
    case Opcode::kGetK:
    case Opcode::kDelete:
      return valid(n.ext == 0 && n.key != 0 && n.body == n.key);
    case Opcode::kIncrement:
    case Opcode::kDecrement:
      return valid(n.ext == 20 && n.key != 0 && n.body == n.key + n.ext);
    case Opcode::kAppend:
    case Opcode::kPrepend:
      return valid(n.ext == 0 && n.key != 0);
    case Opcode::kStat:
      return valid(n.ext == 0 && n.body == n.key);
    case Opcode::kSaslAuth:
    case Opcode::kSaslStep:
      return valid(n.ext == 0 && n.key != 0);
    case Opcode::kTouch:
    case Opcode::kGat:
    case Opcode::kGatK:
      return valid(n.ext == 4 && n.key != 0 && n.body == n.key + n.ext);
    default:
      return Shape::kUnknown;
  }
}

bool CarriesValue(Opcode base) {
  switch (base) {
    case Opcode::kSet:
    case Opcode::kAdd:
    case Opcode::kReplace:
    case Opcode::kAppend:
    case Opcode::kPrepend:
    case Opcode::kSaslAuth:
    case Opcode::kSaslStep:
      return true;
    default:
      return false;
  }
}

uint16_t LoadBig16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

ParseResult Fail(Error error, Status reply, size_t consumed, size_t swallow, bool close,
                 const Request& request) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error = error;
  r.reply = reply;
  r.consumed = consumed;
  r.swallow = swallow;
  r.close = close;
  r.request = request;
  return r;
}

}  // namespace

std::string_view StatusMessage(Status status) {
  switch (status) {
    case Status::kKeyNotFound:
      return "Not found";
    case Status::kKeyExists:
      return "Data exists for key.";
    case Status::kTooLarge:
      return "Too large.";
    case Status::kInvalidArguments:
      return "Invalid arguments";
    case Status::kNotStored:
      return "Not stored.";
    case Status::kNonNumeric:
      return "Non-numeric server-side value for incr or decr";
    case Status::kAuthError:
      return "Auth failure.";
    case Status::kUnknownCommand:
      return "Unknown command";
    case Status::kOutOfMemory:
      return "Out of memory";
    default:
      return {};
  }
}

Opcode BaseOpcode(Opcode op) {
  switch (op) {
    case Opcode::kGetQ:
      return Opcode::kGet;
    case Opcode::kGetKQ:
      return Opcode::kGetK;
    case Opcode::kSetQ:
      return Opcode::kSet;
    case Opcode::kAddQ:
      return Opcode::kAdd;
    case Opcode::kReplaceQ:
      return Opcode::kReplace;
    case Opcode::kDeleteQ:
      return Opcode::kDelete;
    case Opcode::kIncrementQ:
      return Opcode::kIncrement;
    case Opcode::kDecrementQ:
      return Opcode::kDecrement;
    case Opcode::kQuitQ:
      return Opcode::kQuit;
    case Opcode::kFlushQ:
      return Opcode::kFlush;
    case Opcode::kAppendQ:
      return Opcode::kAppend;
    case Opcode::kPrependQ:
      return Opcode::kPrepend;
    case Opcode::kGatQ:
      return Opcode::kGat;
    case Opcode::kGatKQ:
      return Opcode::kGatK;
    default:
      return op;
  }
}

bool IsQuiet(Opcode op) { return BaseOpcode(op) != op; }

ParseResult ParseRequest(std::string_view input, const ParserLimits& limits, Request* request) {
  ParseResult result;
  if (input.empty()) return result;
  if (static_cast<uint8_t>(input[0]) != kRequestMagic) {
    return Fail(Error::kBadMagic, Status::kSuccess, 0, 0, true, Request{});
  }
  if (input.size() < kHeaderSize) return result;
  const char* h = input.data();
  Request r;
  r.opcode = static_cast<Opcode>(static_cast<uint8_t>(h[1]));
  r.datatype = static_cast<uint8_t>(h[5]);
  r.vbucket = LoadBig16(h + 6);
  std::memcpy(&r.opaque, h + 12, 4);
  r.cas = LoadBig64(h + 16);
  const Lengths n{static_cast<uint8_t>(h[4]), LoadBig16(h + 2), LoadBig32(h + 8)};
  if (n.key > n.body || n.key + n.ext > n.body) {
    return Fail(Error::kBadLengths, Status::kUnknownCommand, kHeaderSize, 0, true, r);
  }
  if (n.key > kMaxKeySize) {
    return Fail(Error::kKeyTooLong, Status::kInvalidArguments, kHeaderSize, 0, true, r);
  }
  const Opcode base = BaseOpcode(r.opcode);
  switch (ShapeOf(base, n)) {
    case Shape::kUnknown:
      return Fail(Error::kUnknownCommand, Status::kUnknownCommand, kHeaderSize, n.body, false, r);
    case Shape::kInvalid:
      return Fail(Error::kBadFormat, Status::kInvalidArguments, kHeaderSize, 0, true, r);
    case Shape::kValid:
      break;
  }
  const size_t head = kHeaderSize + n.ext + n.key;
  if (CarriesValue(base) && n.value() > limits.max_item_size) {
    if (input.size() < head) return result;
    r.extras = input.substr(kHeaderSize, n.ext);
    r.key = input.substr(kHeaderSize + n.ext, n.key);
    return Fail(Error::kTooLarge, Status::kTooLarge, head, n.value(), false, r);
  }
  if (input.size() < kHeaderSize + n.body) return result;
  r.extras = input.substr(kHeaderSize, n.ext);
  r.key = input.substr(kHeaderSize + n.ext, n.key);
  r.value = input.substr(head, n.value());
  *request = r;
  result.status = ParseStatus::kOk;
  result.consumed = kHeaderSize + n.body;
  return result;
}

size_t MaxPacketSize(const ParserLimits& limits) {
  return kHeaderSize + kMaxExtras + kMaxKeySize + limits.max_item_size;
}

void EncodeResponseHeader(const ResponseHeader& h, char* out) {
  out[0] = static_cast<char>(kResponseMagic);
  out[1] = static_cast<char>(h.opcode);
  out[2] = static_cast<char>(h.keylen >> 8);
  out[3] = static_cast<char>(h.keylen & 0xff);
  out[4] = static_cast<char>(h.extlen);
  out[5] = 0;  // datatype: raw bytes
  const auto status = static_cast<uint16_t>(h.status);
  out[6] = static_cast<char>(status >> 8);
  out[7] = static_cast<char>(status & 0xff);
  StoreBig32(h.bodylen, out + 8);
  std::memcpy(out + 12, &h.opaque, 4);
  StoreBig64(h.cas, out + 16);
}

bool StatGroup(std::string_view key, std::string_view* group) {
  for (std::string_view prefix : {std::string_view("reset"), std::string_view("settings")}) {
    if (key.starts_with(prefix)) {
      *group = prefix;
      return true;
    }
  }
  for (std::string_view whole : {"", "items", "slabs", "sizes", "cinch"}) {
    if (key == whole) {
      *group = whole;
      return true;
    }
  }
  return false;
}

uint32_t LoadBig32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

uint64_t LoadBig64(const char* p) { return (uint64_t{LoadBig32(p)} << 32) | LoadBig32(p + 4); }

void StoreBig32(uint32_t v, char* p) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

void StoreBig64(uint64_t v, char* p) {
  StoreBig32(static_cast<uint32_t>(v >> 32), p);
  StoreBig32(static_cast<uint32_t>(v), p + 4);
}

bool ParseSaslPlain(std::string_view message, SaslPlain* out) {
  const size_t first = message.find('\0');
  if (first == std::string_view::npos) return false;
  const size_t second = message.find('\0', first + 1);
  if (second == std::string_view::npos) return false;
  if (message.find('\0', second + 1) != std::string_view::npos) return false;
  out->authzid = message.substr(0, first);
  out->user = message.substr(first + 1, second - first - 1);
  out->password = message.substr(second + 1);
  return !out->user.empty();
}

}  // namespace cinch::proto::binary
