#include "proto/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace cinch::proto {
namespace {

std::string Encode(std::string_view in) {
  std::string out(Base64EncodedSize(in.size()), '?');
  out.resize(Base64Encode(in, out.data(), out.size()));
  return out;
}

// Decodes as the parser and server do: into a buffer as long as the input.
std::string Decode(std::string_view in) {
  std::string out(in.size(), '?');
  out.resize(Base64Decode(in, out.data(), out.size()));
  return out;
}

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(Encode("f"), "Zg==");
  EXPECT_EQ(Encode("fo"), "Zm8=");
  EXPECT_EQ(Encode("foo"), "Zm9v");
  EXPECT_EQ(Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Encode("key"), "a2V5");
  EXPECT_EQ(Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64Test, EncodeRefusesEmptyInputAndShortBuffers) {
  char out[8];
  EXPECT_EQ(Base64Encode("", out, sizeof(out)), 0u);
  EXPECT_EQ(Base64Encode("foo", out, 3), 0u);
  EXPECT_EQ(Base64Encode("foo", out, 4), 4u);
}

TEST(Base64Test, DecodesRfc4648Vectors) {
  EXPECT_EQ(Decode("Zg=="), "f");
  EXPECT_EQ(Decode("Zm8="), "fo");
  EXPECT_EQ(Decode("Zm9v"), "foo");
  EXPECT_EQ(Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(Decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(Decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(Decode("//4A"), std::string("\xff\xfe\x00", 3));
}

// memcached 1.6.18: "mg a2V5 b" decodes, "mg a2V5= b", "mg a2V b", "mg ==== b" and "mg k b"
// answer "CLIENT_ERROR error decoding key".
TEST(Base64Test, RejectsWhatMemcachedRejects) {
  EXPECT_EQ(Decode(""), "");
  EXPECT_EQ(Decode("k"), "");
  EXPECT_EQ(Decode("a2V"), "");
  EXPECT_EQ(Decode("a2V5="), "");
  EXPECT_EQ(Decode("===="), "");
  EXPECT_EQ(Decode("A==="), "");
  EXPECT_EQ(Decode("!!!!"), "");
}

// memcached's decoder skips bytes outside the alphabet and stops after the first padded block.
TEST(Base64Test, LenientLikeMemcached) {
  EXPECT_EQ(Decode("a2V5!"), "key");
  EXPECT_EQ(Decode("a2\tV5"), "key");
  EXPECT_EQ(Decode("Zg==Zm9v"), "f");
  EXPECT_EQ(Decode("Zm=v"), "f`");  // one '=' in the block: drop a byte
}

TEST(Base64Test, DecodeRefusesShortBuffers) {
  char out[3];
  EXPECT_EQ(Base64Decode("Zm9v", out, 2), 0u);
  EXPECT_EQ(Base64Decode("Zg==", out, 2), 0u);  // memcached sizes before removing padding
  EXPECT_EQ(Base64Decode("Zg==", out, 3), 1u);
}

TEST(Base64Test, RoundTripsRandomBinary) {
  std::mt19937 rng(42);
  for (size_t size = 1; size < 200; ++size) {
    std::string in(size, '\0');
    for (char& c : in) c = static_cast<char>(rng());
    const std::string encoded = Encode(in);
    ASSERT_EQ(encoded.size(), Base64EncodedSize(size));
    ASSERT_LE(size, Base64MaxDecodedSize(encoded.size()));
    EXPECT_EQ(Decode(encoded), in) << size;
  }
}

}  // namespace
}  // namespace cinch::proto
