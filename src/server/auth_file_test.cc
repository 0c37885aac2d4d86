// The auth file parser: memcached's split at the first colon, its line endings and its
// refusal of lines without a colon; cinch's quota rule ^[0-9]+[mMgG]?$ on the last field.
#include "server/auth_file.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cinch::server {
namespace {

std::vector<AuthEntry> Parse(std::string_view text) {
  std::vector<AuthEntry> e;
  Status s = ParseAuthFile(text, &e);
  EXPECT_TRUE(s.ok()) << s.message();
  return e;
}

TEST(AuthFile, UserAndPasswordSplitAtTheFirstColon) {
  auto e = Parse("alice:secret\nbob:b:c\ncarol::x\n:nameless\n");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0].user, "alice");
  EXPECT_EQ(e[0].password, "secret");
  EXPECT_EQ(e[0].quota, 0u);
  EXPECT_EQ(e[1].user, "bob");
  EXPECT_EQ(e[1].password, "b:c");  // "c" is no quota: the password keeps it, as memcached
  EXPECT_EQ(e[1].quota, 0u);
  EXPECT_EQ(e[2].password, ":x");
  EXPECT_EQ(e[3].user, "");
  EXPECT_EQ(e[3].password, "nameless");
}

TEST(AuthFile, LineEndsAsInMemcached) {
  auto e = Parse("a:one\r\nb:two\rjunk\nc:three");  // CR ends the password; no final newline
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].password, "one");
  EXPECT_EQ(e[1].password, "two");
  EXPECT_EQ(e[2].password, "three");
  e = Parse("a: spaced pass \n");  // spaces are part of the password
  EXPECT_EQ(e[0].password, " spaced pass ");
  EXPECT_TRUE(Parse("").empty());
}

TEST(AuthFile, QuotaOnlyWhenTheLastFieldMatches) {
  auto e = Parse("a:pw:16\nb:pw:2g\nc:pw:3M\nd:x:y:64m\ne:pw:16k\nf:pw:\ng:pw:1 \nh:pw:-1\ni:16\n");
  ASSERT_EQ(e.size(), 9u);
  EXPECT_EQ(e[0].password, "pw");
  EXPECT_EQ(e[0].quota, size_t{16} << 20);
  EXPECT_EQ(e[1].quota, size_t{2} << 30);
  EXPECT_EQ(e[2].quota, size_t{3} << 20);
  EXPECT_EQ(e[3].password, "x:y");  // split at the last colon for the quota
  EXPECT_EQ(e[3].quota, size_t{64} << 20);
  for (int i : {4, 5, 6, 7}) {  // 16k, empty, "1 ", -1: not quotas, part of the password
    EXPECT_EQ(e[i].quota, 0u) << i;
  }
  EXPECT_EQ(e[4].password, "pw:16k");
  EXPECT_EQ(e[5].password, "pw:");
  EXPECT_EQ(e[8].password, "16");  // one colon: always user:password
  EXPECT_EQ(e[8].quota, 0u);
}

TEST(AuthFile, Refused) {
  for (const std::string& bad : std::vector<std::string>{
           "nocolon\n", "a:b\n\nc:d\n", "a:b\n#comment\n", "a:b\na:c\n", "a:b:0\n",
           "a:b:99999999999999999999\n", "a:b:2000000000g\n", std::string("a:b\0c\n", 6)}) {
    std::vector<AuthEntry> e;
    Status s = ParseAuthFile(bad, &e);
    EXPECT_FALSE(s.ok()) << bad;
  }
  std::vector<AuthEntry> e;
  Status s = ParseAuthFile("a:b\nc\n", &e);
  EXPECT_NE(s.message().find("line 2"), std::string::npos) << s.message();
  EXPECT_TRUE(ParseAuthFile("u:" + std::string(kMaxAuthLine - 2, 'p'), &e).ok());
  EXPECT_FALSE(ParseAuthFile("u:" + std::string(kMaxAuthLine - 1, 'p'), &e).ok());
}

TEST(AuthFile, LoadNamesTheFile) {
  std::vector<AuthEntry> e;
  Status s = LoadAuthFile("/nonexistent/auth", &e);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/auth"), std::string::npos);
}

}  // namespace
}  // namespace cinch::server
