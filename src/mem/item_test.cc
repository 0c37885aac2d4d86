#include "mem/item.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace cinch::mem {
namespace {

constexpr char kSentinel = static_cast<char>(0xA5);

// A value of `n` bytes whose content depends on the position (so misplaced bytes show).
std::string PatternValue(size_t n) {
  std::string v(n, '\0');
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<char>((i * 131 + 7) & 0xFF);
  return v;
}

// Every byte value, so no escaping or NUL handling sneaks in.
std::string BinaryKey(size_t n) {
  std::string k(n, '\0');
  for (size_t i = 0; i < n; ++i) k[i] = static_cast<char>((255 - i) & 0xFF);
  return k;
}

size_t ExpectedVlenBytes(size_t vlen) {
  if (vlen <= 0xFF) return 1;
  if (vlen <= 0xFFFF) return 2;
  if (vlen <= 0xFFFFFF) return 3;
  return 4;
}

// Encodes into a sentinel-filled buffer with slack, checks the size reported by every function
// and that nothing past the item was written, then decodes and checks the round trip.
void ExpectRoundTrip(const std::string& key, const std::string& value, const ItemMeta& meta,
                     size_t expected_header) {
  SCOPED_TRACE("klen=" + std::to_string(key.size()) + " vlen=" + std::to_string(value.size()) +
               " flags=" + std::to_string(meta.flags) + " expiry=" + std::to_string(meta.expiry) +
               " cas=" + std::to_string(meta.cas));
  EXPECT_EQ(ItemHeaderSize(key.size(), value.size(), meta), expected_header);
  size_t size = ItemSize(key.size(), value.size(), meta);
  EXPECT_EQ(size, expected_header + key.size() + value.size());

  std::vector<char> buf(size + 16, kSentinel);
  EXPECT_EQ(EncodeItemHeader(buf.data(), key.size(), value.size(), meta), expected_header);
  for (size_t i = expected_header; i < expected_header + 16; ++i) {
    ASSERT_EQ(buf[i], kSentinel) << "header wrote past its size at " << i;
  }

  std::fill(buf.begin(), buf.end(), kSentinel);
  ASSERT_EQ(EncodeItem(buf.data(), key, value, meta), size);
  for (size_t i = size; i < buf.size(); ++i) ASSERT_EQ(buf[i], kSentinel);

  ItemView v = DecodeItem(buf.data());
  EXPECT_EQ(v.size, size);
  EXPECT_EQ(v.header_size, expected_header);
  EXPECT_EQ(v.key.data(), buf.data() + expected_header);
  EXPECT_EQ(v.value.data(), buf.data() + expected_header + key.size());
  EXPECT_EQ(v.key, key);
  EXPECT_EQ(v.value.size(), value.size());
  EXPECT_TRUE(v.value == value);  // not EXPECT_EQ: a 16 MiB diff would swamp the log
  EXPECT_EQ(v.meta.flags, meta.flags);
  EXPECT_EQ(v.meta.expiry, meta.expiry);
  EXPECT_EQ(v.meta.cas, meta.cas);
  EXPECT_EQ(v.meta.state, meta.state);
  EXPECT_EQ(v.meta.fetched, meta.fetched);
}

TEST(ItemTest, CompactFormForSmallPlainItems) {
  std::string key = "user:1";
  for (size_t vlen = 0; vlen <= 127; ++vlen) {
    std::string value = PatternValue(vlen);
    ExpectRoundTrip(key, value, ItemMeta{}, 2);
    ExpectRoundTrip(key, value, ItemMeta{.fetched = true}, 2);
    char buf[2 + 6 + 127];
    EncodeItem(buf, key, value, ItemMeta{});
    // Layout: 1 | vlen (7 bits), then H | klen (7 bits).
    EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0x80 | vlen);
    EXPECT_EQ(static_cast<uint8_t>(buf[1]), key.size());
    EncodeItem(buf, key, value, ItemMeta{.fetched = true});
    EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0x80 | vlen);
    EXPECT_EQ(static_cast<uint8_t>(buf[1]), 0x80 | key.size());
  }
}

TEST(ItemTest, PlainValueOf128BytesIsExtended) {
  std::string value = PatternValue(128);
  ExpectRoundTrip("k", value, ItemMeta{}, 3);
  char buf[3 + 1 + 128];
  EncodeItem(buf, "k", value, ItemMeta{});
  EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0x00);  // no fields, not fetched, 1 vlen byte
  EXPECT_EQ(static_cast<uint8_t>(buf[1]), 1);
  EXPECT_EQ(static_cast<uint8_t>(buf[2]), 128);
  EncodeItem(buf, "k", value, ItemMeta{.fetched = true});
  EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0x40);
  EXPECT_EQ(static_cast<uint8_t>(buf[1]), 1);
}

TEST(ItemTest, KeyOf128BytesIsExtended) {
  const std::string key(128, 'k');
  ExpectRoundTrip(key, "v", ItemMeta{}, 3);
  ExpectRoundTrip(key, "v", ItemMeta{.fetched = true}, 3);
  ExpectRoundTrip(std::string(127, 'k'), "v", ItemMeta{.fetched = true}, 2);
}

TEST(ItemTest, StateByteComesLastAndForcesTheExtendedForm) {
  ExpectRoundTrip("k", "", ItemMeta{.state = kStateStale}, 2 + 1 + 1);
  ItemMeta meta{.flags = 0x04030201,
                .expiry = 0x08070605,
                .cas = 0x100F0E0D0C0B0A09ull,
                .state = kStateWinTokenSent | kStateBinaryKey,
                .fetched = true};
  ExpectRoundTrip("k", "v", meta, 2 + 1 + 16 + 1);
  char buf[2 + 1 + 16 + 1 + 1 + 1];
  ASSERT_EQ(EncodeItem(buf, "k", "v", meta), sizeof(buf));
  EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0x40 | 0x20 | 0x10 | 0x08 | 0x04);
  EXPECT_EQ(static_cast<uint8_t>(buf[19]), kStateWinTokenSent | kStateBinaryKey);
  EXPECT_EQ(buf[20], 'k');
}

TEST(ItemTest, InPlaceChangesKeepTheLayout) {
  for (size_t vlen : {size_t{20}, size_t{200}}) {  // compact (H in the klen byte), extended
    for (const ItemMeta& meta : {ItemMeta{}, ItemMeta{.flags = 3}, ItemMeta{.expiry = 100},
                                 ItemMeta{.expiry = 100, .state = kStateStale},
                                 ItemMeta{.cas = 9, .state = kStateBinaryKey}}) {
      std::string value = PatternValue(vlen);
      std::vector<char> buf(ItemSize(3, value.size(), meta));
      EncodeItem(buf.data(), "abc", value, meta);
      EXPECT_FALSE(MarkFetched(buf.data()));
      EXPECT_TRUE(MarkFetched(buf.data()));
      EXPECT_EQ(SetExpiryInPlace(buf.data(), 555), meta.expiry != 0);
      EXPECT_EQ(SetStateInPlace(buf.data(), kStateStale | kStateWinTokenSent), meta.state != 0);
      ItemView v = DecodeItem(buf.data());
      EXPECT_TRUE(v.meta.fetched);
      EXPECT_EQ(v.meta.expiry, meta.expiry != 0 ? 555u : 0u);
      EXPECT_EQ(v.meta.state, meta.state != 0 ? kStateStale | kStateWinTokenSent : 0);
      EXPECT_EQ(v.meta.flags, meta.flags);
      EXPECT_EQ(v.meta.cas, meta.cas);
      EXPECT_EQ(v.key, "abc");
      EXPECT_TRUE(v.value == value);
      EXPECT_EQ(v.size, buf.size());
    }
  }
}

TEST(ItemTest, AnyMetaFieldForcesTheExtendedForm) {
  ExpectRoundTrip("k", "", ItemMeta{.flags = 1}, 2 + 1 + 4);
  ExpectRoundTrip("k", "", ItemMeta{.expiry = 1}, 2 + 1 + 4);
  ExpectRoundTrip("k", "", ItemMeta{.cas = 1}, 2 + 1 + 8);
  ExpectRoundTrip("k", "v", ItemMeta{.flags = 7}, 2 + 1 + 4);
}

TEST(ItemTest, ExtendedFormEveryFieldCombinationAndLengthBoundary) {
  const size_t kLengths[] = {
      0, 127, 128, 255, 256, 65535, 65536, (size_t{1} << 24) - 1, size_t{1} << 24};
  const std::string big = PatternValue(size_t{1} << 24);
  const std::string key = "some:key";
  for (int fields = 0; fields < 8; ++fields) {
    ItemMeta meta;
    if (fields & 1) meta.flags = 0xDEADBEEF;
    if (fields & 2) meta.expiry = 1'800'000'000;
    if (fields & 4) meta.cas = 0x0123456789ABCDEFull;
    for (size_t vlen : kLengths) {
      if (fields == 0 && vlen <= 127) continue;  // compact; covered above
      size_t header = 2 + ExpectedVlenBytes(vlen) + (meta.flags ? 4 : 0) + (meta.expiry ? 4 : 0) +
                      (meta.cas ? 8 : 0);
      std::string value = big.substr(0, vlen);
      ExpectRoundTrip(key, value, meta, header);

      // Pin the info byte and the little-endian vlen against the diagram in item.h.
      std::vector<char> buf(header);
      ASSERT_EQ(EncodeItemHeader(buf.data(), key.size(), vlen, meta), header);
      uint8_t info = static_cast<uint8_t>(buf[0]);
      EXPECT_EQ(info & 0x80, 0);
      EXPECT_EQ(info & 0x60, 0);  // not fetched, no state byte
      EXPECT_EQ((info & 0x10) != 0, meta.cas != 0);
      EXPECT_EQ((info & 0x08) != 0, meta.expiry != 0);
      EXPECT_EQ((info & 0x04) != 0, meta.flags != 0);
      EXPECT_EQ(static_cast<size_t>(info & 0x03) + 1, ExpectedVlenBytes(vlen));
      EXPECT_EQ(static_cast<uint8_t>(buf[1]), key.size());
      uint64_t encoded_vlen = 0;
      for (size_t i = 0; i < ExpectedVlenBytes(vlen); ++i) {
        encoded_vlen |= uint64_t{static_cast<uint8_t>(buf[2 + i])} << (8 * i);
      }
      EXPECT_EQ(encoded_vlen, vlen);
    }
  }
}

TEST(ItemTest, MetaFieldsAreLittleEndianInOrder) {
  ItemMeta meta{.flags = 0x04030201, .expiry = 0x08070605, .cas = 0x100F0E0D0C0B0A09ull};
  char buf[2 + 1 + 16 + 1 + 1];
  ASSERT_EQ(EncodeItem(buf, "k", "v", meta), sizeof(buf));
  // flags, expiry, cas follow the 1-byte vlen: bytes 0x01..0x10 in order.
  for (int i = 0; i < 16; ++i) EXPECT_EQ(static_cast<uint8_t>(buf[3 + i]), i + 1) << i;
  EXPECT_EQ(buf[19], 'k');
  EXPECT_EQ(buf[20], 'v');
}

TEST(ItemTest, ExtremeMetaValues) {
  ItemMeta meta{.flags = ~uint32_t{0}, .expiry = ~uint32_t{0}, .cas = ~uint64_t{0}};
  ExpectRoundTrip("k", "value", meta, 2 + 1 + 16);
  ExpectRoundTrip("k", PatternValue(300), ItemMeta{.cas = 1}, 2 + 2 + 8);
  ExpectRoundTrip("k", "x", ItemMeta{.flags = 0x80000000u}, 2 + 1 + 4);
}

TEST(ItemTest, KeyLengthsAndBinaryBytes) {
  for (size_t klen : {size_t{1}, size_t{2}, size_t{127}, size_t{128}, size_t{250}, size_t{255}}) {
    std::string key = BinaryKey(klen);
    const size_t plain = klen <= 127 ? 2 : 3;  // a key over 127 bytes takes the extended form
    ExpectRoundTrip(key, "", ItemMeta{}, plain);
    ExpectRoundTrip(key, PatternValue(127), ItemMeta{}, plain);
    ExpectRoundTrip(key, PatternValue(1000), ItemMeta{.flags = 3, .cas = 99}, 2 + 2 + 4 + 8);
  }
  // Keys and values made only of bytes that look like header bits.
  ExpectRoundTrip(std::string(1, '\0'), std::string(5, '\0'), ItemMeta{}, 2);
  ExpectRoundTrip(std::string(250, '\xFF'), std::string(200, '\x80'), ItemMeta{}, 3);
  ExpectRoundTrip(std::string(100, '\xFF'), std::string(100, '\xFF'), ItemMeta{}, 2);
}

TEST(ItemTest, ItemsPackedBackToBackDecodeInSequence) {
  struct Expected {
    std::string key;
    std::string value;
    ItemMeta meta;
  };
  std::mt19937_64 rng(12345);
  std::vector<Expected> items;
  std::vector<char> segment;
  for (int i = 0; i < 2000; ++i) {
    Expected e;
    e.key = BinaryKey(1 + rng() % 250);
    e.key[0] = static_cast<char>(i);
    size_t vlen = rng() % 4 == 0 ? rng() % 70000 : rng() % 200;
    e.value = PatternValue(vlen);
    if (rng() % 3 == 0) e.meta.flags = static_cast<uint32_t>(rng());
    if (rng() % 3 == 0) e.meta.expiry = static_cast<uint32_t>(rng());
    if (rng() % 3 == 0) e.meta.cas = rng();
    if (rng() % 5 == 0) e.meta.state = static_cast<uint8_t>(1 + rng() % 7);
    e.meta.fetched = rng() % 2 == 0;
    size_t at = segment.size();
    segment.resize(at + ItemSize(e.key.size(), e.value.size(), e.meta));
    ASSERT_EQ(EncodeItem(segment.data() + at, e.key, e.value, e.meta), segment.size() - at);
    items.push_back(std::move(e));
  }
  size_t pos = 0;
  for (const Expected& e : items) {
    ASSERT_LT(pos, segment.size());
    ItemView v = DecodeItem(segment.data() + pos);
    ASSERT_EQ(v.key, e.key);
    ASSERT_TRUE(v.value == e.value);
    EXPECT_EQ(v.meta.flags, e.meta.flags);
    EXPECT_EQ(v.meta.expiry, e.meta.expiry);
    EXPECT_EQ(v.meta.cas, e.meta.cas);
    EXPECT_EQ(v.meta.state, e.meta.state);
    EXPECT_EQ(v.meta.fetched, e.meta.fetched);
    EXPECT_EQ(v.size, ItemSize(e.key.size(), e.value.size(), e.meta));
    pos += v.size;
  }
  EXPECT_EQ(pos, segment.size());
}

TEST(ItemTest, DecodeWorksAtUnalignedAddresses) {
  ItemMeta meta{.flags = 5, .expiry = 6, .cas = 7};
  for (size_t offset = 0; offset < 8; ++offset) {
    std::vector<char> buf(offset + ItemSize(3, 300, meta));
    std::string value = PatternValue(300);
    EncodeItem(buf.data() + offset, "abc", value, meta);
    ItemView v = DecodeItem(buf.data() + offset);
    EXPECT_EQ(v.key, "abc");
    EXPECT_EQ(v.value, value);
    EXPECT_EQ(v.meta.cas, 7u);
  }
}

TEST(ItemDeathTest, DecodeRejectsAZeroKeyLength) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char compact[] = {static_cast<char>(0x81), static_cast<char>(0x80), 'v'};
  const char extended[] = {0x00, 0x00, 0x01, 'v'};
  EXPECT_DEATH(DecodeItem(compact), "CINCH_CHECK");
  EXPECT_DEATH(DecodeItem(extended), "CINCH_CHECK");
}

}  // namespace
}  // namespace cinch::mem
