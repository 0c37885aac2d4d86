// The memcached binary protocol on a MemcacheSession over a real store, without sockets:
// packets in, response packets out, decoded and checked field by field.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/version.h"
#include "proto/binary.h"
#include "server/memcache_session.h"
#include "server/session_test_util.h"
#include "server/users.h"

namespace cinch::server {
namespace {

namespace bin = proto::binary;
using bin::Opcode;
using bin::Status;

struct Response {
  uint8_t magic = 0;
  Opcode opcode = Opcode::kNoop;
  Status status = Status::kSuccess;
  uint32_t opaque = 0;
  uint64_t cas = 0;
  std::string extras, key, value;
};

std::vector<Response> Decode(std::string_view bytes) {
  std::vector<Response> out;
  while (bytes.size() >= bin::kHeaderSize) {
    const char* h = bytes.data();
    Response r;
    r.magic = static_cast<uint8_t>(h[0]);
    r.opcode = static_cast<Opcode>(static_cast<uint8_t>(h[1]));
    const size_t keylen = (static_cast<uint8_t>(h[2]) << 8) | static_cast<uint8_t>(h[3]);
    const size_t extlen = static_cast<uint8_t>(h[4]);
    r.status = static_cast<Status>((static_cast<uint8_t>(h[6]) << 8) | static_cast<uint8_t>(h[7]));
    const size_t body = bin::LoadBig32(h + 8);
    std::memcpy(&r.opaque, h + 12, 4);
    r.cas = bin::LoadBig64(h + 16);
    EXPECT_GE(bytes.size(), bin::kHeaderSize + body);
    std::string_view b = bytes.substr(bin::kHeaderSize, body);
    r.extras = b.substr(0, extlen);
    r.key = b.substr(extlen, keylen);
    r.value = b.substr(extlen + keylen);
    out.push_back(r);
    bytes.remove_prefix(bin::kHeaderSize + body);
  }
  EXPECT_TRUE(bytes.empty()) << "a partial response";
  return out;
}

std::string Packet(Opcode op, std::string_view extras = {}, std::string_view key = {},
                   std::string_view value = {}, uint64_t cas = 0, uint32_t opaque = 0xfeed) {
  std::string p(bin::kHeaderSize, '\0');
  p[0] = static_cast<char>(bin::kRequestMagic);
  p[1] = static_cast<char>(op);
  p[2] = static_cast<char>(key.size() >> 8);
  p[3] = static_cast<char>(key.size() & 0xff);
  p[4] = static_cast<char>(extras.size());
  bin::StoreBig32(static_cast<uint32_t>(extras.size() + key.size() + value.size()), p.data() + 8);
  std::memcpy(p.data() + 12, &opaque, 4);
  bin::StoreBig64(cas, p.data() + 16);
  p.append(extras).append(key).append(value);
  return p;
}

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  bin::StoreBig32(v, s.data());
  return s;
}

std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  bin::StoreBig64(v, s.data());
  return s;
}

std::string Set(Opcode op, std::string_view key, std::string_view value, uint32_t flags = 0,
                uint32_t exptime = 0, uint64_t cas = 0) {
  return Packet(op, Be32(flags) + Be32(exptime), key, value, cas);
}

std::string Incr(Opcode op, std::string_view key, uint64_t delta, uint64_t initial,
                 uint32_t exptime, uint64_t cas = 0) {
  return Packet(op, Be64(delta) + Be64(initial) + Be32(exptime), key, {}, cas);
}

class BinarySessionTest : public test::SessionFixture {
 protected:
  void SetUp() override { Open(ServerOptions{}); }
  void Open(ServerOptions options) {
    options.store.max_item_size = 64 << 10;
    SessionFixture::Open(std::move(options));
  }
  std::vector<Response> Send(std::string_view input) { return Decode(SendRaw(input)); }
  Response One(std::string_view input) {
    std::vector<Response> rs = Send(input);
    EXPECT_EQ(rs.size(), 1u);
    return rs.empty() ? Response{} : rs[0];
  }
};

TEST_F(BinarySessionTest, SetThenGetReturnsFlagsValueAndTheSameCas) {
  Response set = One(Set(Opcode::kSet, "k", "hello", 0xabcd, 0));
  EXPECT_EQ(set.magic, bin::kResponseMagic);
  EXPECT_EQ(set.opcode, Opcode::kSet);
  EXPECT_EQ(set.status, Status::kSuccess);
  EXPECT_EQ(set.opaque, 0xfeedu);
  EXPECT_NE(set.cas, 0u);
  Response get = One(Packet(Opcode::kGet, {}, "k"));
  EXPECT_EQ(get.status, Status::kSuccess);
  EXPECT_EQ(get.extras, Be32(0xabcd));
  EXPECT_EQ(get.key, "");
  EXPECT_EQ(get.value, "hello");
  EXPECT_EQ(get.cas, set.cas);
  Response getk = One(Packet(Opcode::kGetK, {}, "k"));
  EXPECT_EQ(getk.key, "k");
  EXPECT_EQ(getk.value, "hello");
  // The text protocol sees the same item.
  ItemRef ref;
  ASSERT_TRUE(store_->Get("k", &ref));
  EXPECT_EQ(ref.value(), "hello");
}

TEST_F(BinarySessionTest, MissesAndQuietGets) {
  Response miss = One(Packet(Opcode::kGet, {}, "nope"));
  EXPECT_EQ(miss.status, Status::kKeyNotFound);
  EXPECT_EQ(miss.value, "Not found");
  Response missk = One(Packet(Opcode::kGetK, {}, "nope"));
  EXPECT_EQ(missk.status, Status::kKeyNotFound);
  EXPECT_EQ(missk.key, "nope");
  EXPECT_EQ(missk.value, "");
  ASSERT_EQ(One(Set(Opcode::kSet, "a", "1")).status, Status::kSuccess);
  // getq/getkq: misses answer nothing, hits answer, noop ends the batch.
  std::vector<Response> rs = Send(Packet(Opcode::kGetQ, {}, "x") + Packet(Opcode::kGetKQ, {}, "a") +
                                  Packet(Opcode::kGetQ, {}, "y") + Packet(Opcode::kNoop));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].opcode, Opcode::kGetKQ);
  EXPECT_EQ(rs[0].key, "a");
  EXPECT_EQ(rs[0].value, "1");
  EXPECT_EQ(rs[1].opcode, Opcode::kNoop);
}

TEST_F(BinarySessionTest, StorageOutcomesUseMemcachedsStatusCodes) {
  EXPECT_EQ(One(Set(Opcode::kReplace, "k", "v")).status, Status::kKeyNotFound);
  EXPECT_EQ(One(Set(Opcode::kAdd, "k", "v")).status, Status::kSuccess);
  Response again = One(Set(Opcode::kAdd, "k", "v"));
  EXPECT_EQ(again.status, Status::kKeyExists);
  EXPECT_EQ(again.value, "Data exists for key.");
  EXPECT_EQ(One(Packet(Opcode::kAppend, {}, "missing", "x")).status, Status::kNotStored);
  EXPECT_EQ(One(Packet(Opcode::kAppend, {}, "k", "+")).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kPrepend, {}, "k", "-")).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).value, "-v+");
  // Quiet storage commands answer only errors.
  EXPECT_TRUE(Send(Set(Opcode::kSetQ, "q", "1")).empty());
  Response addq = One(Set(Opcode::kAddQ, "q", "1"));
  EXPECT_EQ(addq.opcode, Opcode::kAddQ);
  EXPECT_EQ(addq.status, Status::kKeyExists);
}

TEST_F(BinarySessionTest, CompareAndSwap) {
  const uint64_t cas = One(Set(Opcode::kSet, "k", "v1")).cas;
  EXPECT_EQ(One(Set(Opcode::kSet, "k", "v2", 0, 0, cas + 1)).status, Status::kKeyExists);
  EXPECT_EQ(One(Set(Opcode::kSet, "nope", "v2", 0, 0, cas)).status, Status::kKeyNotFound);
  Response ok = One(Set(Opcode::kSet, "k", "v2", 0, 0, cas));
  EXPECT_EQ(ok.status, Status::kSuccess);
  EXPECT_NE(ok.cas, cas);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).value, "v2");
  EXPECT_EQ(One(Packet(Opcode::kDelete, {}, "k", {}, cas)).status, Status::kKeyExists);
  EXPECT_EQ(One(Packet(Opcode::kDelete, {}, "k", {}, ok.cas)).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kDelete, {}, "k")).status, Status::kKeyNotFound);
  EXPECT_TRUE(Send(Set(Opcode::kSetQ, "d", "1") + Packet(Opcode::kDeleteQ, {}, "d")).empty());
}

TEST_F(BinarySessionTest, IncrDecrWithInitialValueAndExpiry) {
  Response created = One(Incr(Opcode::kIncrement, "n", 5, 10, 0));
  EXPECT_EQ(created.status, Status::kSuccess);
  EXPECT_EQ(created.value, Be64(10));  // the initial value, delta not applied
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "n", 5, 10, 0)).value, Be64(15));
  EXPECT_EQ(One(Incr(Opcode::kDecrement, "n", 100, 10, 0)).value, Be64(0));
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "m", 1, 1, 0xffffffff)).status, Status::kKeyNotFound);
  ASSERT_EQ(One(Set(Opcode::kSet, "t", "text")).status, Status::kSuccess);
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "t", 1, 0, 0)).status, Status::kNonNumeric);
  EXPECT_TRUE(Send(Incr(Opcode::kIncrementQ, "n", 1, 0, 0)).empty());
  // memcached pads a shorter result with spaces to the old length ("15" -> "0 " -> "1 ").
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "n")).value, "1 ");
  // Created with an exptime: gone once it passes.
  ASSERT_EQ(One(Incr(Opcode::kIncrement, "e", 1, 7, 100)).status, Status::kSuccess);
  clock_.Shift(101);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "e")).status, Status::kKeyNotFound);
}

TEST_F(BinarySessionTest, TouchAndGat) {
  ASSERT_EQ(One(Set(Opcode::kSet, "k", "v", 3, 100)).status, Status::kSuccess);
  Response touch = One(Packet(Opcode::kTouch, Be32(1000), "k"));
  EXPECT_EQ(touch.status, Status::kSuccess);
  EXPECT_EQ(touch.extras, Be32(3));
  EXPECT_EQ(touch.value, "");  // touch answers the flags, not the value
  clock_.Shift(200);
  Response gat = One(Packet(Opcode::kGatK, Be32(0), "k"));
  EXPECT_EQ(gat.key, "k");
  EXPECT_EQ(gat.value, "v");
  EXPECT_EQ(One(Packet(Opcode::kTouch, Be32(0), "x")).status, Status::kKeyNotFound);
  EXPECT_TRUE(Send(Packet(Opcode::kGatQ, Be32(0), "x")).empty());
  clock_.Shift(2000);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).value, "v");  // gat made it permanent
  // A time already past (absolute, before 1970 + 30 days + 1 s): memcached answers the item
  // with its CAS value, then it is gone.
  const uint64_t cas = One(Packet(Opcode::kGet, {}, "k")).cas;
  Response past = One(Packet(Opcode::kGat, Be32(2592001), "k"));
  EXPECT_EQ(past.status, Status::kSuccess);
  EXPECT_EQ(past.value, "v");
  EXPECT_EQ(past.cas, cas);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).status, Status::kKeyNotFound);
}

// A write whose item is gone at once (an absolute time already past) still answers a CAS
// value, as memcached, one that matches nothing.
TEST_F(BinarySessionTest, AWriteExpiredOnArrivalAnswersAnUnusedCas) {
  Response set = One(Set(Opcode::kSet, "k", "v", 0, 2592001));
  EXPECT_EQ(set.status, Status::kSuccess);
  EXPECT_NE(set.cas, 0u);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).status, Status::kKeyNotFound);
  Response created = One(Incr(Opcode::kIncrement, "n", 1, 7, 2592001));
  EXPECT_EQ(created.value, Be64(7));
  EXPECT_NE(created.cas, 0u);
  EXPECT_NE(created.cas, set.cas);
  EXPECT_EQ(One(Set(Opcode::kAdd, "n", "1")).status, Status::kSuccess);  // it is gone
  EXPECT_EQ(One(Set(Opcode::kSet, "n", "2", 0, 0, set.cas)).status, Status::kKeyExists);
}

// incr/decr read the value as memcached's safe_strtoull; an empty value is not a number even
// when the CAS value differs.
TEST_F(BinarySessionTest, IncrReadsValuesAsMemcached) {
  ASSERT_EQ(One(Set(Opcode::kSet, "z", std::string("5\0x", 3))).status, Status::kSuccess);
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "z", 1, 0, 0)).value, Be64(6));
  ASSERT_EQ(One(Set(Opcode::kSet, "m", "-0")).status, Status::kSuccess);
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "m", 1, 0, 0)).value, Be64(1));
  ASSERT_EQ(One(Set(Opcode::kSet, "n", "-5")).status, Status::kSuccess);
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "n", 1, 0, 0)).status, Status::kNonNumeric);
  ASSERT_EQ(One(Set(Opcode::kSet, "e", "")).status, Status::kSuccess);
  EXPECT_EQ(One(Incr(Opcode::kIncrement, "e", 1, 0, 0, /*cas=*/999999)).status,
            Status::kNonNumeric);
}

TEST_F(BinarySessionTest, ValueOverTheLimitIsTooLargeAndTheStreamGoesOn) {
  ASSERT_EQ(One(Set(Opcode::kSet, "big", "old")).status, Status::kSuccess);
  std::string huge(options_.store.max_item_size + 1, 'x');
  std::vector<Response> rs = Send(Set(Opcode::kSet, "big", huge) + Packet(Opcode::kNoop));
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].status, Status::kTooLarge);
  EXPECT_EQ(rs[1].opcode, Opcode::kNoop);
  EXPECT_FALSE(closed_);
  // The old value does not survive a set that failed (as memcached).
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "big")).status, Status::kKeyNotFound);
  // The session never asks for more than one packet's worth of buffer.
  EXPECT_LE(session_->WantedInput(), huge.size() + 512);
}

TEST_F(BinarySessionTest, BadPacketsCloseWithInvalidArguments) {
  Response r = One(Packet(Opcode::kGet, {}, std::string(251, 'k')));
  EXPECT_EQ(r.status, Status::kInvalidArguments);
  EXPECT_TRUE(closed_);
  Open(ServerOptions{});
  r = One(Packet(Opcode::kNoop, {}, {}, "body"));
  EXPECT_EQ(r.status, Status::kInvalidArguments);
  EXPECT_TRUE(closed_);
}

TEST_F(BinarySessionTest, UnknownOpcodesAndSaslWithoutUsersAreUnknownCommands) {
  std::vector<Response> rs = Send(
      Packet(static_cast<Opcode>(0x1b), Be32(1)) + Packet(static_cast<Opcode>(0x40)) +
      Packet(Opcode::kSaslListMechs) +
      Packet(Opcode::kSaslAuth, {}, "PLAIN", std::string("\0u\0p", 4)) + Packet(Opcode::kVersion));
  ASSERT_EQ(rs.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(rs[i].status, Status::kUnknownCommand) << i;
  EXPECT_EQ(rs[4].value, kServerVersion);
  EXPECT_FALSE(closed_);
}

// With an auth file, binary connections authenticate with SASL PLAIN against it (memcached's
// -S, checked against -Y's users here): VERSION and the SASL commands are served first, a bad
// login fails without closing, any other command first fails and closes; a tenant's items are
// its own.
TEST_F(BinarySessionTest, SaslPlainAgainstTheAuthFile) {
  UserTable users;
  ASSERT_TRUE(users.Load({{"alice", "pw", 0}, {"ten", "tp", 16 << 20}}).ok());
  context_->users = &users;
  auto connect = [&] {
    session_ = std::make_unique<MemcacheSession>(context_.get());
    pending_.clear();
    swallow_ = 0;
    closed_ = false;
  };
  auto plain = [](std::string_view user, std::string_view password) {
    return Packet(Opcode::kSaslAuth, {}, "PLAIN",
                  std::string(1, '\0') + std::string(user) + '\0' + std::string(password));
  };
  connect();
  EXPECT_EQ(One(Packet(Opcode::kVersion)).value, kServerVersion);
  EXPECT_EQ(One(Packet(Opcode::kSaslListMechs)).value, "PLAIN");
  EXPECT_EQ(One(plain("ten", "wrong")).status, Status::kAuthError);
  EXPECT_EQ(One(plain("nobody", "tp")).status, Status::kAuthError);
  EXPECT_EQ(One(Packet(Opcode::kSaslAuth, {}, "CRAM-MD5", "x")).status, Status::kAuthError);
  EXPECT_FALSE(closed_);
  Response ok = One(plain("ten", "tp"));
  EXPECT_EQ(ok.status, Status::kSuccess);
  EXPECT_EQ(ok.value, "Authenticated");
  EXPECT_EQ(One(Set(Opcode::kSet, "k", "tenant's")).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).value, "tenant's");

  connect();  // alice shares the default keyspace: the tenant's key is not there
  EXPECT_EQ(One(plain("alice", "pw")).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).status, Status::kKeyNotFound);
  EXPECT_EQ(One(Set(Opcode::kSet, "k", "alice's")).status, Status::kSuccess);

  connect();
  EXPECT_EQ(One(plain("ten", "tp")).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).value, "tenant's");

  connect();  // nothing before authentication
  Response refused = One(Packet(Opcode::kGet, {}, "k"));
  EXPECT_EQ(refused.status, Status::kAuthError);
  EXPECT_TRUE(refused.value.find("k") == std::string::npos);
  EXPECT_TRUE(closed_);
  context_->users = nullptr;
}

TEST_F(BinarySessionTest, StatsGroupsAndTheirTerminator) {
  std::vector<Response> rs = Send(Packet(Opcode::kStat));
  ASSERT_GT(rs.size(), 10u);
  EXPECT_EQ(rs[0].key, "pid");
  EXPECT_EQ(rs.back().key, "");
  EXPECT_EQ(rs.back().value, "");
  rs = Send(Packet(Opcode::kStat, {}, "settings"));
  bool found = false;
  for (const Response& r : rs) {
    if (r.key == "binding_protocol") found = r.value == "auto-negotiate";
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(One(Packet(Opcode::kStat, {}, "nonsense")).status, Status::kKeyNotFound);
  EXPECT_EQ(One(Packet(Opcode::kStat, {}, "reset")).key, "");
  // memcached's binary stat matches "reset" and "settings" by their length only, and has no
  // "conns" group (the text protocol has).
  Response reset = One(Packet(Opcode::kStat, {}, "resetting"));
  EXPECT_EQ(reset.status, Status::kSuccess);
  EXPECT_EQ(reset.key, "");
  rs = Send(Packet(Opcode::kStat, {}, "settings2"));
  ASSERT_GT(rs.size(), 10u);
  EXPECT_EQ(rs.back().key, "");
  EXPECT_EQ(One(Packet(Opcode::kStat, {}, "conns")).status, Status::kKeyNotFound);
}

TEST_F(BinarySessionTest, FlushQuitAndQuietQuit) {
  ASSERT_EQ(One(Set(Opcode::kSet, "k", "v")).status, Status::kSuccess);
  EXPECT_TRUE(Send(Packet(Opcode::kFlushQ)).empty());
  EXPECT_EQ(One(Packet(Opcode::kGet, {}, "k")).status, Status::kKeyNotFound);
  EXPECT_EQ(One(Packet(Opcode::kFlush, Be32(0))).status, Status::kSuccess);
  EXPECT_EQ(One(Packet(Opcode::kQuit)).status, Status::kSuccess);
  EXPECT_TRUE(closed_);
  Open(ServerOptions{});
  EXPECT_TRUE(Send(Packet(Opcode::kQuitQ) + Packet(Opcode::kNoop)).empty());
  EXPECT_TRUE(closed_);
  ServerOptions no_flush;
  no_flush.flush_enabled = false;
  Open(no_flush);
  EXPECT_EQ(One(Packet(Opcode::kFlush)).status, Status::kAuthError);  // memcached -F
}

TEST_F(BinarySessionTest, TextAfterBinaryClosesAndAsciiOnlyRefusesBinary) {
  ASSERT_EQ(One(Packet(Opcode::kNoop)).status, Status::kSuccess);
  EXPECT_EQ(SendRaw("get k\r\n"), "");
  EXPECT_TRUE(closed_);
  ServerOptions ascii;
  ascii.protocol = ServerOptions::Protocol::kAscii;
  Open(ascii);
  EXPECT_EQ(SendRaw(Packet(Opcode::kNoop)), "ERROR\r\n");
  EXPECT_TRUE(closed_);
  ServerOptions binary;
  binary.protocol = ServerOptions::Protocol::kBinary;
  Open(binary);
  EXPECT_EQ(SendRaw("version\r\n"), "");  // -B binary: a text connection is closed
  EXPECT_TRUE(closed_);
  Open(binary);
  EXPECT_EQ(One(Packet(Opcode::kNoop)).status, Status::kSuccess);
}

TEST_F(BinarySessionTest, SplitAtEveryByteGivesTheSameResponses) {
  std::string batch = Set(Opcode::kSet, "a", std::string(5000, 'v'), 1) +
                      Packet(Opcode::kGetK, {}, "a") + Incr(Opcode::kIncrement, "n", 1, 5, 0) +
                      Packet(Opcode::kGetQ, {}, "zz") + Packet(Opcode::kNoop);
  std::string whole = SendRaw(batch);
  Open(ServerOptions{});
  std::string split;
  for (char c : batch) split += SendRaw(std::string_view(&c, 1));
  std::vector<Response> a = Decode(whole), b = Decode(split);
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].opcode, b[i].opcode);
    EXPECT_EQ(a[i].status, b[i].status);
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_EQ(a[i].value, b[i].value);
  }
  EXPECT_EQ(a[1].value, std::string(5000, 'v'));
}

}  // namespace
}  // namespace cinch::server
