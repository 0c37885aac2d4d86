#include "buildcache/digest.h"

#include <gtest/gtest.h>

#include <string>

#include "buildcache/sha256.h"

namespace cinch::buildcache {
namespace {

constexpr char kEmptyHex[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, ParsesLowerAndUpperHexAndRoundTrips) {
  Digest lower, upper;
  ASSERT_TRUE(ParseHexDigest(kEmptyHex, &lower));
  std::string upper_hex = kEmptyHex;
  for (char& c : upper_hex) c = static_cast<char>(toupper(c));
  ASSERT_TRUE(ParseHexDigest(upper_hex, &upper));
  EXPECT_EQ(lower, upper);
  EXPECT_EQ(lower.hash[0], 0xe3);
  EXPECT_EQ(lower.hash[31], 0x55);
  EXPECT_EQ(HexDigest(lower), kEmptyHex);
  EXPECT_EQ(lower.size, Digest::kUnknownSize);
}

TEST(DigestTest, RefusesWrongLengthAndNonHex) {
  Digest d;
  d.hash.fill(7);
  Digest before = d;
  std::string hex = kEmptyHex;
  EXPECT_FALSE(ParseHexDigest(hex.substr(1), &d));
  EXPECT_FALSE(ParseHexDigest(hex + "0", &d));
  EXPECT_FALSE(ParseHexDigest("", &d));
  for (char bad : {'g', 'G', ' ', '\0', '/', ':', '@', '`'}) {
    std::string broken = hex;
    broken[63] = bad;
    EXPECT_FALSE(ParseHexDigest(broken, &d)) << int(bad);
    broken = hex;
    broken[0] = bad;
    EXPECT_FALSE(ParseHexDigest(broken, &d)) << int(bad);
  }
  EXPECT_EQ(d, before);
}

TEST(DigestTest, EveryByteValueRoundTrips) {
  Digest d;
  for (int start = 0; start < 256; start += 32) {
    for (int i = 0; i < 32; ++i) d.hash[i] = static_cast<uint8_t>(start + i);
    Digest back;
    ASSERT_TRUE(ParseHexDigest(HexDigest(d), &back));
    EXPECT_EQ(back.hash, d.hash);
  }
}

struct Vector {
  std::string message;
  const char* hex;
};

TEST(Sha256Test, KnownVectors) {
  const Vector vectors[] = {
      {"", kEmptyHex},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const Vector& v : vectors) {
    Digest d;
    d.hash = Sha256::Of(v.message);
    EXPECT_EQ(HexDigest(d), v.hex) << v.message.size();
  }
}

TEST(Sha256Test, IncrementalEqualsOneShotAndFinalRestarts) {
  std::string message(100000, '\0');
  for (size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i * 131 + i / 7);
  Sha256 sha;
  for (size_t at = 0, step = 1; at < message.size(); at += step, step = step * 2 + 1) {
    sha.Update(std::string_view(message).substr(at, step));
  }
  EXPECT_EQ(sha.Final(), Sha256::Of(message));
  sha.Update("abc");  // a new message after Final
  EXPECT_EQ(sha.Final(), Sha256::Of("abc"));
  sha.Update("garbage");
  sha.Reset();
  EXPECT_EQ(sha.Final(), Sha256::Of(""));
}

TEST(Sha256Test, MovedFromIsUsable) {
  Sha256 a;
  a.Update("ab");
  Sha256 b = std::move(a);
  b.Update("c");
  EXPECT_EQ(b.Final(), Sha256::Of("abc"));
  a.Update("abc");  // NOLINT(bugprone-use-after-move): a moved-from Sha256 starts afresh
  EXPECT_EQ(a.Final(), Sha256::Of("abc"));
}

}  // namespace
}  // namespace cinch::buildcache
