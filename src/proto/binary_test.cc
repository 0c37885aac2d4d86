#include "proto/binary.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace cinch::proto::binary {
namespace {

// A request packet: header fields as given, body = extras + key + value.
std::string Packet(uint8_t opcode, std::string_view extras, std::string_view key,
                   std::string_view value, uint64_t cas = 0, uint32_t opaque = 0x01020304,
                   int64_t bodylen = -1) {
  std::string p(kHeaderSize, '\0');
  p[0] = static_cast<char>(kRequestMagic);
  p[1] = static_cast<char>(opcode);
  p[2] = static_cast<char>(key.size() >> 8);
  p[3] = static_cast<char>(key.size() & 0xff);
  p[4] = static_cast<char>(extras.size());
  p[6] = 0x12;
  p[7] = 0x34;
  const size_t body = extras.size() + key.size() + value.size();
  StoreBig32(bodylen < 0 ? static_cast<uint32_t>(body) : static_cast<uint32_t>(bodylen),
             p.data() + 8);
  std::memcpy(p.data() + 12, &opaque, 4);
  StoreBig64(cas, p.data() + 16);
  p.append(extras).append(key).append(value);
  return p;
}

std::string SetExtras(uint32_t flags, uint32_t exptime) {
  std::string e(8, '\0');
  StoreBig32(flags, e.data());
  StoreBig32(exptime, e.data() + 4);
  return e;
}

TEST(BinaryParser, ParsesAGet) {
  std::string p = Packet(0x00, "", "foo", "", 7);
  Request r;
  ParseResult pr = ParseRequest(p, {}, &r);
  ASSERT_EQ(pr.status, ParseStatus::kOk);
  EXPECT_EQ(pr.consumed, p.size());
  EXPECT_EQ(r.opcode, Opcode::kGet);
  EXPECT_EQ(r.key, "foo");
  EXPECT_EQ(r.cas, 7u);
  EXPECT_EQ(r.vbucket, 0x1234);
  uint32_t opaque = 0x01020304;
  EXPECT_EQ(std::memcmp(&r.opaque, &opaque, 4), 0);
}

TEST(BinaryParser, ParsesASetWithExtrasKeyAndValue) {
  std::string p = Packet(0x11, SetExtras(0xdeadbeef, 300), "key", "value");
  const std::string input = p + "trailing";  // the request's views point into it
  Request r;
  ParseResult pr = ParseRequest(input, {}, &r);
  ASSERT_EQ(pr.status, ParseStatus::kOk);
  EXPECT_EQ(pr.consumed, p.size());
  EXPECT_EQ(r.opcode, Opcode::kSetQ);
  EXPECT_EQ(BaseOpcode(r.opcode), Opcode::kSet);
  EXPECT_TRUE(IsQuiet(r.opcode));
  EXPECT_EQ(LoadBig32(r.extras.data()), 0xdeadbeefu);
  EXPECT_EQ(LoadBig32(r.extras.data() + 4), 300u);
  EXPECT_EQ(r.key, "key");
  EXPECT_EQ(r.value, "value");
}

TEST(BinaryParser, NeedsTheWholePacketAtEveryCut) {
  std::string p = Packet(0x01, SetExtras(1, 2), "key", "some value");
  for (size_t cut = 0; cut < p.size(); ++cut) {
    Request r;
    ParseResult pr = ParseRequest(std::string_view(p).substr(0, cut), {}, &r);
    EXPECT_EQ(pr.status, ParseStatus::kNeedMore) << cut;
    EXPECT_EQ(pr.consumed, 0u);
  }
}

TEST(BinaryParser, BadMagicCloses) {
  Request r;
  ParseResult pr = ParseRequest("get foo\r\n", {}, &r);
  ASSERT_EQ(pr.status, ParseStatus::kError);
  EXPECT_EQ(pr.error, Error::kBadMagic);
  EXPECT_TRUE(pr.close);
}

TEST(BinaryParser, KeyAndExtrasLongerThanBodyIsUnknownCommandAndClose) {
  std::string p = Packet(0x00, "", "foo", "", 0, 0, /*bodylen=*/2);
  Request r;
  ParseResult pr = ParseRequest(p, {}, &r);
  ASSERT_EQ(pr.status, ParseStatus::kError);
  EXPECT_EQ(pr.error, Error::kBadLengths);
  EXPECT_EQ(pr.reply, Status::kUnknownCommand);
  EXPECT_TRUE(pr.close);
}

TEST(BinaryParser, KeyOver250BytesIsInvalidAndCloses) {
  std::string p = Packet(0x00, "", std::string(251, 'k'), "");
  Request r;
  ParseResult pr = ParseRequest(std::string_view(p).substr(0, kHeaderSize), {}, &r);
  ASSERT_EQ(pr.status, ParseStatus::kError);  // decided on the header alone
  EXPECT_EQ(pr.error, Error::kKeyTooLong);
  EXPECT_EQ(pr.reply, Status::kInvalidArguments);
  EXPECT_TRUE(pr.close);
}

TEST(BinaryParser, WrongShapesAreInvalidArguments) {
  const std::string cases[] = {
      Packet(0x00, "", "", ""),                  // get without a key
      Packet(0x00, "abcd", "foo", ""),           // get with extras
      Packet(0x01, "", "foo", "v"),              // set without extras
      Packet(0x05, SetExtras(1, 2), "foo", ""),  // incr with 8 bytes of extras
      Packet(0x0a, "", "", "x"),                 // noop with a body
      Packet(0x08, "ab", "", ""),                // flush with 2 bytes of extras
      Packet(0x1c, "", "foo", ""),               // touch without exptime
      Packet(0x0e, "abcd", "foo", "v"),          // append with extras
      Packet(0x10, "", "items", "x"),            // stat with a value
  };
  for (const std::string& p : cases) {
    Request r;
    ParseResult pr = ParseRequest(p, {}, &r);
    ASSERT_EQ(pr.status, ParseStatus::kError) << static_cast<int>(p[1]);
    EXPECT_EQ(pr.error, Error::kBadFormat) << static_cast<int>(p[1]);
    EXPECT_EQ(pr.reply, Status::kInvalidArguments);
    EXPECT_TRUE(pr.close);
  }
}

TEST(BinaryParser, UnknownOpcodeSwallowsItsBody) {
  for (int op : {0x1b, 0x25, 0x30, 0x83, 0xff}) {
    std::string p = Packet(static_cast<uint8_t>(op), "ab", "key", "value");
    Request r;
    ParseResult pr = ParseRequest(std::string_view(p).substr(0, kHeaderSize), {}, &r);
    ASSERT_EQ(pr.status, ParseStatus::kError) << op;
    EXPECT_EQ(pr.error, Error::kUnknownCommand);
    EXPECT_EQ(pr.reply, Status::kUnknownCommand);
    EXPECT_FALSE(pr.close);
    EXPECT_EQ(pr.consumed + pr.swallow, p.size());
  }
}

TEST(BinaryParser, ValueOverTheItemLimitIsTooLargeWithoutBufferingIt) {
  ParserLimits limits{.max_item_size = 100};
  std::string extras = SetExtras(0, 0);
  std::string p = Packet(0x01, extras, "big", std::string(101, 'v'));
  Request r;
  // The header, extras and key are enough to decide.
  ParseResult pr = ParseRequest(std::string_view(p).substr(0, kHeaderSize + 8 + 3), limits, &r);
  ASSERT_EQ(pr.status, ParseStatus::kError);
  EXPECT_EQ(pr.error, Error::kTooLarge);
  EXPECT_EQ(pr.reply, Status::kTooLarge);
  EXPECT_FALSE(pr.close);
  EXPECT_EQ(pr.consumed, kHeaderSize + 8 + 3);
  EXPECT_EQ(pr.swallow, 101u);
  EXPECT_EQ(pr.request.key, "big");
  // At the limit it is a request.
  std::string ok = Packet(0x01, extras, "big", std::string(100, 'v'));
  EXPECT_EQ(ParseRequest(ok, limits, &r).status, ParseStatus::kOk);
  EXPECT_LE(ok.size(), MaxPacketSize(limits));
}

TEST(BinaryParser, AValueOfGigabytesIsTooLargeOnItsHeader) {
  Request r;
  for (uint32_t body : {0x40000000u, 0xfffffff0u}) {
    std::string p = Packet(0x01, SetExtras(0, 0), "k", "", 0, 0, body);
    ParseResult pr = ParseRequest(p, {}, &r);
    ASSERT_EQ(pr.status, ParseStatus::kError);
    EXPECT_EQ(pr.error, Error::kTooLarge);
    EXPECT_FALSE(pr.close);
    EXPECT_EQ(pr.swallow, body - 9u);
  }
}

TEST(BinaryParser, HugeBodyOfAFixedShapeCommandIsRefusedOnTheHeader) {
  std::string p = Packet(0x00, "", "foo", "", 0, 0, /*bodylen=*/0x7fffffff);
  Request r;
  ParseResult pr = ParseRequest(std::string_view(p).substr(0, kHeaderSize), {}, &r);
  ASSERT_EQ(pr.status, ParseStatus::kError);
  EXPECT_EQ(pr.error, Error::kBadFormat);
}

TEST(BinaryParser, EncodesAResponseHeader) {
  char h[kHeaderSize];
  uint32_t opaque = 0xaabbccdd;
  EncodeResponseHeader({.opcode = Opcode::kGetK,
                        .status = Status::kKeyNotFound,
                        .extlen = 4,
                        .keylen = 0x0102,
                        .bodylen = 0x01020304,
                        .opaque = opaque,
                        .cas = 0x0102030405060708},
                       h);
  const unsigned char want[kHeaderSize] = {0x81, 0x0c, 0x01, 0x02, 0x04, 0x00, 0x00, 0x01,
                                           0x01, 0x02, 0x03, 0x04, 0xdd, 0xcc, 0xbb, 0xaa,
                                           0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  EXPECT_EQ(std::memcmp(h, want, kHeaderSize), 0);
}

TEST(BinaryParser, StatusMessagesAreMemcachedsText) {
  EXPECT_EQ(StatusMessage(Status::kKeyNotFound), "Not found");
  EXPECT_EQ(StatusMessage(Status::kKeyExists), "Data exists for key.");
  EXPECT_EQ(StatusMessage(Status::kTooLarge), "Too large.");
  EXPECT_EQ(StatusMessage(Status::kNotStored), "Not stored.");
  EXPECT_EQ(StatusMessage(Status::kUnknownCommand), "Unknown command");
  EXPECT_EQ(StatusMessage(Status::kAuthError), "Auth failure.");
}

TEST(BinaryStatGroup, MatchesAsMemcachedsBinaryStat) {
  std::string_view group = "x";
  ASSERT_TRUE(StatGroup("", &group));
  EXPECT_EQ(group, "");
  for (std::string_view key : {"reset", "resetting", "reset all"}) {
    ASSERT_TRUE(StatGroup(key, &group)) << key;
    EXPECT_EQ(group, "reset");
  }
  ASSERT_TRUE(StatGroup("settings2", &group));
  EXPECT_EQ(group, "settings");
  for (std::string_view key : {"items", "slabs", "sizes", "cinch"}) {
    ASSERT_TRUE(StatGroup(key, &group)) << key;
    EXPECT_EQ(group, key);
  }
  for (std::string_view key : {"conns", "Reset", "rese", "items2", "detail dump", "nonsense"}) {
    EXPECT_FALSE(StatGroup(key, &group)) << key;
  }
}

TEST(SaslPlain, SplitsAuthzidUserPassword) {
  SaslPlain p;
  ASSERT_TRUE(ParseSaslPlain(std::string_view("\0alice\0se:cret", 14), &p));
  EXPECT_EQ(p.authzid, "");
  EXPECT_EQ(p.user, "alice");
  EXPECT_EQ(p.password, "se:cret");
  ASSERT_TRUE(ParseSaslPlain(std::string_view("admin\0bob\0", 10), &p));
  EXPECT_EQ(p.authzid, "admin");
  EXPECT_EQ(p.user, "bob");
  EXPECT_EQ(p.password, "");
}

TEST(SaslPlain, RefusesOtherShapes) {
  SaslPlain p;
  EXPECT_FALSE(ParseSaslPlain("alice", &p));
  EXPECT_FALSE(ParseSaslPlain(std::string_view("alice\0pw", 8), &p));
  EXPECT_FALSE(ParseSaslPlain(std::string_view("\0\0pw", 4), &p));  // empty user
  EXPECT_FALSE(ParseSaslPlain(std::string_view("\0a\0b\0c", 6), &p));
}

}  // namespace
}  // namespace cinch::proto::binary
