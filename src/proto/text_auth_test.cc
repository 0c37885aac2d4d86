// memcached 1.6.18's text authentication exchange, as tests/integration/auth.py checks it
// against the real memcached -Y.
#include "proto/text_auth.h"

#include <gtest/gtest.h>

#include <string>

namespace cinch::proto {
namespace {

TEST(TextAuth, Credentials) {
  AuthParse a = ParseTextAuth("set any 0 0 12\r\nalice secret\r\nget x\r\n", 1024);
  ASSERT_EQ(a.status, AuthStatus::kCredentials);
  EXPECT_EQ(a.user, "alice");
  EXPECT_EQ(a.password, "secret");
  EXPECT_EQ(a.consumed, 30u);
  // Key, flags and exptime are ignored; extra words too; runs of spaces count once.
  a = ParseTextAuth("set  k a b 15 noreply\nalice  secret x\r\n", 1024);
  ASSERT_EQ(a.status, AuthStatus::kCredentials);
  EXPECT_EQ(a.user, "alice");
  EXPECT_EQ(a.password, "secret");
}

TEST(TextAuth, AnythingElseIsUnauthenticated) {
  for (std::string_view line :
       {"get foo\r\n", "version\r\n", "quit\r\n", "mn\r\n", "\r\n", "add x 0 0 12\r\n",
        "SET x 0 0 12\r\n", "set\tx 0 0 12\r\n", "set x 0 0\r\n", "set x 0 0 -1\r\n",
        "set x 0 0 12junk\r\n", "cas x 0 0 12 1\r\n"}) {
    AuthParse a = ParseTextAuth(line, 1024);
    EXPECT_EQ(a.status, AuthStatus::kUnauthenticated) << line;
    EXPECT_EQ(a.consumed, line.size()) << line;
  }
}

TEST(TextAuth, BadData) {
  AuthParse a = ParseTextAuth("set x 0 0 12\r\nalice secret\n\n", 1024);
  EXPECT_EQ(a.status, AuthStatus::kBadTermination);
  EXPECT_EQ(a.consumed, 28u);
  for (std::string_view s : {"set x 0 0 5\r\nalice\r\n", "set x 0 0 12\r\nalice\tsecret\r\n",
                             "set x 0 0 12\r\n alicesecret\r\n", "set x 0 0 0\r\n\r\n"}) {
    a = ParseTextAuth(s, 1024);
    EXPECT_EQ(a.status, AuthStatus::kBadFormat) << s;
    EXPECT_EQ(a.consumed, s.size()) << s;
  }
  // The data is a C string in memcached: a NUL ends it.
  a = ParseTextAuth(std::string_view("set x 0 0 12\r\nalice\0secret\r\n", 28), 1024);
  EXPECT_EQ(a.status, AuthStatus::kBadFormat);
}

TEST(TextAuth, NeedsMoreOrCloses) {
  for (std::string_view s : {"", "s", "set x 0 0 12", "set x 0 0 12\r\n",
                             "set x 0 0 12\r\nalice sec", "set x 0 0 12\r\nalice secret\r"}) {
    AuthParse a = ParseTextAuth(s, 1024);
    EXPECT_EQ(a.status, AuthStatus::kNeedMore) << s;
    EXPECT_EQ(a.consumed, 0u);
  }
  EXPECT_EQ(ParseTextAuth(std::string(2048, 'x'), 1024).status, AuthStatus::kNeedMore);
  EXPECT_EQ(ParseTextAuth(std::string(2049, 'x'), 1024).status, AuthStatus::kClose);
  EXPECT_EQ(ParseTextAuth("set x 0 0 1025\r\n", 1024).status, AuthStatus::kClose);
}

}  // namespace
}  // namespace cinch::proto
