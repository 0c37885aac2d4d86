#include "load/protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace cinch::load {
namespace {

size_t Append(char* out, std::string_view s) {
  std::memcpy(out, s.data(), s.size());
  return s.size();
}

size_t AppendNumber(char* out, uint64_t n) {
  return static_cast<size_t>(std::to_chars(out, out + 20, n).ptr - out);
}

size_t RespBulk(char* out, std::string_view s) {
  size_t n = Append(out, "$");
  n += AppendNumber(out + n, s.size());
  n += Append(out + n, "\r\n");
  n += Append(out + n, s);
  return n + Append(out + n, "\r\n");
}

// The first line of `data` without its CRLF, or npos in *end if incomplete.
std::string_view Line(std::string_view data, size_t* end) {
  size_t crlf = data.find("\r\n");
  *end = crlf == std::string_view::npos ? crlf : crlf + 2;
  return crlf == std::string_view::npos ? std::string_view() : data.substr(0, crlf);
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool ParseU64(std::string_view s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

long Fail(std::string_view line, Reply* reply) {
  reply->outcome = Outcome::kError;
  reply->value = line;
  return -1;
}

// "VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n" or "END\r\n".
long ParseMemcacheGet(std::string_view data, std::string_view line, size_t end, Reply* r) {
  if (line == "END") {
    r->outcome = Outcome::kMiss;
    return static_cast<long>(end);
  }
  if (!StartsWith(line, "VALUE ")) return Fail(line, r);
  std::string_view rest = line.substr(6);
  size_t sp1 = rest.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : rest.find(' ', sp1 + 1);
  uint64_t bytes = 0;
  if (sp2 == std::string_view::npos) return Fail(line, r);
  std::string_view bytes_field = rest.substr(sp2 + 1);
  size_t sp3 = bytes_field.find(' ');  // a cas field may follow
  if (!ParseU64(bytes_field.substr(0, sp3), &bytes)) return Fail(line, r);
  size_t total = end + bytes + 2 + 5;
  if (data.size() < total) return 0;
  if (data.substr(end + bytes, 7) != "\r\nEND\r\n") return Fail(line, r);
  r->outcome = Outcome::kHit;
  r->key = rest.substr(0, sp1);
  r->value = data.substr(end, bytes);
  return static_cast<long>(total);
}

long ParseMemcache(Op op, std::string_view data, Reply* r) {
  size_t end = 0;
  std::string_view line = Line(data, &end);
  if (end == std::string_view::npos) return data.size() > 4096 ? Fail(data.substr(0, 80), r) : 0;
  r->value = line;
  if (StartsWith(line, "SERVER_ERROR") && op != Op::kSet) {
    r->outcome = Outcome::kError;  // the server refused: counted, the stream stays in sync
    return static_cast<long>(end);
  }
  if (op == Op::kGet) return ParseMemcacheGet(data, line, end, r);
  if (op == Op::kSet && line == "STORED") {
    r->outcome = Outcome::kStored;
  } else if (op == Op::kSet && (line == "NOT_STORED" || StartsWith(line, "SERVER_ERROR"))) {
    r->outcome = Outcome::kNotStored;
  } else if (op == Op::kDelete && line == "DELETED") {
    r->outcome = Outcome::kDeleted;
  } else if (op == Op::kDelete && line == "NOT_FOUND") {
    r->outcome = Outcome::kNotFound;
  } else if (op == Op::kFlush && line == "OK") {
    r->outcome = Outcome::kOk;
  } else {
    return Fail(line, r);
  }
  return static_cast<long>(end);
}

long ParseResp(Op op, std::string_view data, Reply* r) {
  size_t end = 0;
  std::string_view line = Line(data, &end);
  if (end == std::string_view::npos) return data.size() > 4096 ? Fail(data.substr(0, 80), r) : 0;
  r->value = line;
  if (op == Op::kGet && line == "$-1") {
    r->outcome = Outcome::kMiss;
  } else if (op == Op::kGet && StartsWith(line, "$")) {
    uint64_t bytes = 0;
    if (!ParseU64(line.substr(1), &bytes)) return Fail(line, r);
    if (data.size() < end + bytes + 2) return 0;
    if (data.substr(end + bytes, 2) != "\r\n") return Fail(line, r);
    r->outcome = Outcome::kHit;
    r->value = data.substr(end, bytes);
    return static_cast<long>(end + bytes + 2);
  } else if ((op == Op::kSet || op == Op::kFlush) && line == "+OK") {
    r->outcome = op == Op::kSet ? Outcome::kStored : Outcome::kOk;
  } else if (op == Op::kSet && StartsWith(line, "-OOM")) {
    r->outcome = Outcome::kNotStored;
  } else if (op == Op::kDelete && (line == ":1" || line == ":0")) {
    r->outcome = line == ":1" ? Outcome::kDeleted : Outcome::kNotFound;
  } else if (StartsWith(line, "-")) {
    r->outcome = Outcome::kError;  // the server refused: counted, the stream stays in sync
  } else {
    return Fail(line, r);
  }
  return static_cast<long>(end);
}

// memcached's binary protocol: a 24-byte header (magic 0x80, opcode, key length, extras
// length, body length; big-endian), then extras, key, value. Replies: magic 0x81 and a status.
constexpr size_t kBinaryHeader = 24;
constexpr uint8_t kGetK = 0x0c, kSet = 0x01, kDelete = 0x04, kFlush = 0x08;

void Big32(uint32_t v, char* p) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}

uint32_t LoadBig32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

size_t BinaryHeader(uint8_t opcode, std::string_view key, uint8_t extlen, uint32_t value_size,
                    char* out) {
  std::memset(out, 0, kBinaryHeader + extlen);
  out[0] = static_cast<char>(0x80);
  out[1] = static_cast<char>(opcode);
  out[2] = static_cast<char>(key.size() >> 8);
  out[3] = static_cast<char>(key.size() & 0xff);
  out[4] = static_cast<char>(extlen);
  Big32(static_cast<uint32_t>(extlen + key.size() + value_size), out + 8);
  return kBinaryHeader + extlen + Append(out + kBinaryHeader + extlen, key);
}

long ParseBinary(Op op, std::string_view data, Reply* r) {
  if (data.size() < kBinaryHeader) return 0;
  if (static_cast<uint8_t>(data[0]) != 0x81) return Fail(data.substr(0, kBinaryHeader), r);
  const size_t keylen = (static_cast<uint8_t>(data[2]) << 8) | static_cast<uint8_t>(data[3]);
  const size_t extlen = static_cast<uint8_t>(data[4]);
  const uint16_t status =
      static_cast<uint16_t>((static_cast<uint8_t>(data[6]) << 8) | static_cast<uint8_t>(data[7]));
  const size_t body = LoadBig32(data.data() + 8);
  if (data.size() < kBinaryHeader + body) return 0;
  const std::string_view b = data.substr(kBinaryHeader, body);
  const long total = static_cast<long>(kBinaryHeader + body);
  r->value = b.substr(std::min(b.size(), extlen + keylen));
  switch (status) {
    case 0x00:
      r->outcome = op == Op::kGet      ? Outcome::kHit
                   : op == Op::kSet    ? Outcome::kStored
                   : op == Op::kDelete ? Outcome::kDeleted
                                       : Outcome::kOk;
      if (op == Op::kGet) r->key = b.substr(extlen, keylen);
      return total;
    case 0x01:  // not found
      if (op == Op::kGet || op == Op::kDelete) {
        r->outcome = op == Op::kGet ? Outcome::kMiss : Outcome::kNotFound;
        return total;
      }
      break;
    case 0x03:  // too large
    case 0x05:  // not stored
    case 0x82:  // out of memory
      if (op == Op::kSet) {
        r->outcome = Outcome::kNotStored;
        return total;
      }
      break;
    default:
      break;
  }
  r->outcome = Outcome::kError;  // the server refused: counted, the stream stays in sync
  return total;
}

}  // namespace

std::string_view ValueTrailer(Protocol p) {
  return p == Protocol::kMemcacheBinary ? std::string_view() : std::string_view("\r\n");
}

size_t EncodeGet(Protocol p, std::string_view key, char* out) {
  if (p == Protocol::kMemcacheBinary) return BinaryHeader(kGetK, key, 0, 0, out);
  if (p == Protocol::kResp) {
    size_t n = Append(out, "*2\r\n$3\r\nGET\r\n");
    return n + RespBulk(out + n, key);
  }
  size_t n = Append(out, "get ");
  n += Append(out + n, key);
  return n + Append(out + n, "\r\n");
}

size_t EncodeDelete(Protocol p, std::string_view key, char* out) {
  if (p == Protocol::kMemcacheBinary) return BinaryHeader(kDelete, key, 0, 0, out);
  if (p == Protocol::kResp) {
    size_t n = Append(out, "*2\r\n$3\r\nDEL\r\n");
    return n + RespBulk(out + n, key);
  }
  size_t n = Append(out, "delete ");
  n += Append(out + n, key);
  return n + Append(out + n, "\r\n");
}

size_t EncodeFlush(Protocol p, char* out) {
  if (p == Protocol::kMemcacheBinary) return BinaryHeader(kFlush, {}, 0, 0, out);
  return Append(out, p == Protocol::kResp ? "*1\r\n$8\r\nFLUSHALL\r\n" : "flush_all\r\n");
}

size_t EncodeSetPrefix(Protocol p, std::string_view key, uint32_t value_size, char* out) {
  // Extras: flags 0, exptime 0.
  if (p == Protocol::kMemcacheBinary) return BinaryHeader(kSet, key, 8, value_size, out);
  size_t n = 0;
  if (p == Protocol::kResp) {
    n = Append(out, "*3\r\n$3\r\nSET\r\n");
    n += RespBulk(out + n, key);
    n += Append(out + n, "$");
  } else {
    n = Append(out, "set ");
    n += Append(out + n, key);
    n += Append(out + n, " 0 0 ");
  }
  n += AppendNumber(out + n, value_size);
  return n + Append(out + n, "\r\n");
}

long ParseReply(Protocol p, Op op, std::string_view data, Reply* reply) {
  *reply = Reply();
  switch (p) {
    case Protocol::kResp:
      return ParseResp(op, data, reply);
    case Protocol::kMemcacheBinary:
      return ParseBinary(op, data, reply);
    default:
      return ParseMemcache(op, data, reply);
  }
}

}  // namespace cinch::load
