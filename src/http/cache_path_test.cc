#include "http/cache_path.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cinch::http {
namespace {

using buildcache::Digest;
using buildcache::Kind;

const std::string kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(CachePathTest, CasAndAcWithOrWithoutInstance) {
  Kind kind;
  Digest d, expected;
  ASSERT_TRUE(buildcache::ParseHexDigest(kHex, &expected));
  struct Case {
    std::string target;
    Kind kind;
  } cases[] = {
      {"/cas/" + kHex, Kind::kCas},          {"/ac/" + kHex, Kind::kAc},
      {"/main/cas/" + kHex, Kind::kCas},     {"/a/b/c/ac/" + kHex, Kind::kAc},
      {"/cas/" + kHex + "?x=1", Kind::kCas}, {"http://cache:8080/inst/ac/" + kHex, Kind::kAc},
  };
  for (const Case& c : cases) {
    d.hash.fill(1);
    d.size = 9;
    ASSERT_EQ(ParseCachePath(c.target, &kind, &d), PathMatch::kEntry) << c.target;
    EXPECT_EQ(kind, c.kind) << c.target;
    EXPECT_EQ(d, expected) << c.target;  // size reset to unknown
  }
}

TEST(CachePathTest, BadDigests) {
  Kind kind;
  Digest d;
  for (const std::string& target :
       std::vector<std::string>{"/cas/" + kHex.substr(1), "/ac/" + kHex + "0", "/cas/",
                                "/x/cas/" + kHex.substr(0, 63) + "g", "/cas/xyz"}) {
    EXPECT_EQ(ParseCachePath(target, &kind, &d), PathMatch::kBadDigest) << target;
  }
}

TEST(CachePathTest, OtherPaths) {
  Kind kind;
  Digest d;
  for (const std::string& target : std::vector<std::string>{
           "/", "", "*", "/" + kHex, "/CAS/" + kHex, "/cas", "/cas/" + kHex + "/",
           "/cas/" + kHex + "/x", "/status", "/casx/" + kHex, "cas/" + kHex}) {
    EXPECT_EQ(ParseCachePath(target, &kind, &d), PathMatch::kNotCache) << target;
  }
}

}  // namespace
}  // namespace cinch::http
