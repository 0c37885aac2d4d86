#include "proto/http_auth.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cinch::proto {
namespace {

bool Parse(std::string_view header, BasicCredentials* c, std::vector<char>* buffer) {
  buffer->assign(BasicAuthBufferSize(header.size()), '\0');
  return ParseBasicAuth(header, buffer->data(), buffer->size(), c);
}

TEST(BasicAuth, DecodesUserAndPassword) {
  std::vector<char> b;
  BasicCredentials c;
  ASSERT_TRUE(Parse("Basic YWxpY2U6c2VjcmV0", &c, &b));  // alice:secret
  EXPECT_EQ(c.user, "alice");
  EXPECT_EQ(c.password, "secret");
  ASSERT_TRUE(Parse("basic   YTpiOmM=  ", &c, &b));  // a:b:c; any case, spaces around
  EXPECT_EQ(c.user, "a");
  EXPECT_EQ(c.password, "b:c");
  ASSERT_TRUE(Parse("BASIC Ojo=", &c, &b));  // "::": empty user
  EXPECT_EQ(c.user, "");
  EXPECT_EQ(c.password, ":");
}

TEST(BasicAuth, RefusesOtherSchemesAndBadTokens) {
  std::vector<char> b;
  BasicCredentials c;
  for (std::string_view h :
       {"", "Basic", "Basic ", "Basic    ", "Bearer YWxpY2U6c2VjcmV0", "BasicYWxpY2U6c2VjcmV0",
        "Basic YWxpY2U",  // "alice": no colon
        "Basic YWxp!Y2U6c2VjcmV0", "Basic YW", "Basic ====", "Basic YWxpY2U6 c2VjcmV0"}) {
    EXPECT_FALSE(Parse(h, &c, &b)) << h;
  }
}

TEST(BasicAuth, RefusesASmallBuffer) {
  char small[2];
  BasicCredentials c;
  EXPECT_FALSE(ParseBasicAuth("Basic YWxpY2U6c2VjcmV0", small, sizeof small, &c));
}

}  // namespace
}  // namespace cinch::proto
