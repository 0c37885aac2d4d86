#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "proto/errors.h"
#include "proto/request.h"

namespace cinch::proto {
namespace {

constexpr ParseStatus kOk = ParseStatus::kOk;
constexpr ParseStatus kNeedMore = ParseStatus::kNeedMore;
constexpr ParseStatus kError = ParseStatus::kError;

struct Parsed {
  ParseResult result;
  Request request;
};

Parsed Parse(std::string_view input, const ParserLimits& limits = {}) {
  Parsed p;
  p.result = ParseRequest(input, limits, &p.request);
  return p;
}

// Parses a request that must be complete and use all of `input`.
Request ParseOk(std::string_view input) {
  Parsed p = Parse(input);
  EXPECT_EQ(p.result.status, kOk) << input << " error " << static_cast<int>(p.result.error);
  EXPECT_EQ(p.result.consumed, input.size()) << input;
  return p.request;
}

std::vector<std::string> Keys(std::string_view keys) {
  std::vector<std::string> out;
  std::string_view key;
  while (NextKey(&keys, &key)) out.emplace_back(key);
  return out;
}

std::string Repeat(char c, size_t n) { return std::string(n, c); }

// ---- Retrieval ----------------------------------------------------------------------------

TEST(ParserTest, Get) {
  const Request r = ParseOk("get foo\r\n");
  EXPECT_EQ(r.command, Command::kGet);
  EXPECT_EQ(Keys(r.keys), std::vector<std::string>{"foo"});
  EXPECT_FALSE(r.partial);
}

TEST(ParserTest, GetManyKeysAnySpacing) {
  const Request r = ParseOk("  get  a   bb ccc  \r\n");
  EXPECT_EQ(Keys(r.keys), (std::vector<std::string>{"a", "bb", "ccc"}));
}

TEST(ParserTest, GetFamily) {
  EXPECT_EQ(ParseOk("gets a b\r\n").command, Command::kGets);
  EXPECT_EQ(ParseOk("bget a\r\n").command, Command::kGet);
  const Request gat = ParseOk("gat 30 a b\r\n");
  EXPECT_EQ(gat.command, Command::kGat);
  EXPECT_EQ(gat.exptime, 30);
  EXPECT_EQ(Keys(gat.keys), (std::vector<std::string>{"a", "b"}));
  const Request gats = ParseOk("gats -1 a\r\n");
  EXPECT_EQ(gats.command, Command::kGats);
  EXPECT_EQ(gats.exptime, -1);
}

TEST(ParserTest, GatWithoutKeysIsValid) {  // memcached answers END
  const Request r = ParseOk("gat 10\r\n");
  EXPECT_TRUE(Keys(r.keys).empty());
}

TEST(ParserTest, GatExptimeIsCutTo32Bits) {
  EXPECT_EQ(ParseOk("gat 99999999999 a\r\n").exptime, int32_t(99999999999LL & 0xffffffff));
}

TEST(ParserTest, KeysAreBytesBetweenSpaces) {
  EXPECT_EQ(Keys(ParseOk("get a\tb\r\n").keys), std::vector<std::string>{"a\tb"});
  EXPECT_EQ(Keys(ParseOk("get a noreply\r\n").keys), (std::vector<std::string>{"a", "noreply"}));
  EXPECT_EQ(Keys(ParseOk("get a\rb\r\n").keys), std::vector<std::string>{"a\rb"});
}

TEST(ParserTest, BareNewlineEndsALine) {
  EXPECT_EQ(Keys(ParseOk("get a\n").keys), std::vector<std::string>{"a"});
}

TEST(ParserTest, NulEndsTheLine) {  // memcached hands the line to strlen()
  EXPECT_EQ(Keys(ParseOk(std::string("get k\0junk x\r\n", 14)).keys),
            std::vector<std::string>{"k"});
}

TEST(ParserTest, KeyOf250BytesFits) {
  const std::string key = Repeat('k', 250);
  EXPECT_EQ(Keys(ParseOk("get a " + key + "\r\n").keys).back(), key);
}

// ---- Storage ------------------------------------------------------------------------------

TEST(ParserTest, Set) {
  const Request r = ParseOk("set k 5 60 3\r\nabc\r\n");
  EXPECT_EQ(r.command, Command::kSet);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.client_flags, 5u);
  EXPECT_EQ(r.exptime, 60);
  EXPECT_EQ(r.data_length, 3u);
  EXPECT_EQ(r.data, "abc");
  EXPECT_FALSE(r.noreply);
}

TEST(ParserTest, StorageCommands) {
  EXPECT_EQ(ParseOk("add k 0 0 1\r\na\r\n").command, Command::kAdd);
  EXPECT_EQ(ParseOk("replace k 0 0 1\r\na\r\n").command, Command::kReplace);
  EXPECT_EQ(ParseOk("append k 0 0 1\r\na\r\n").command, Command::kAppend);
  EXPECT_EQ(ParseOk("prepend k 0 0 1\r\na\r\n").command, Command::kPrepend);
  const Request cas = ParseOk("cas k 1 2 1 18446744073709551615 noreply\r\na\r\n");
  EXPECT_EQ(cas.command, Command::kCas);
  EXPECT_EQ(cas.cas_unique, 18446744073709551615ull);
  EXPECT_TRUE(cas.noreply);
}

TEST(ParserTest, DataMayHoldAnyBytes) {
  const std::string data("a\r\nb\0c\n", 7);
  EXPECT_EQ(ParseOk("set k 0 0 7\r\n" + data + "\r\n").data, data);
  EXPECT_EQ(ParseOk("set k 0 0 0\r\n\r\n").data, "");
}

TEST(ParserTest, Noreply) {
  EXPECT_TRUE(ParseOk("set k 0 0 1 noreply\r\na\r\n").noreply);
  EXPECT_FALSE(ParseOk("set k 0 0 1 foo\r\na\r\n").noreply);  // memcached ignores the token
}

// memcached reads numbers with strtol/strtoul and keeps 32 bits.
TEST(ParserTest, StorageNumbersAsMemcachedReadsThem) {
  EXPECT_EQ(ParseOk("set k 4294967295 0 1\r\na\r\n").client_flags, 4294967295u);
  EXPECT_EQ(ParseOk("set k 4294967297 0 1\r\na\r\n").client_flags, 1u);
  EXPECT_EQ(ParseOk("set k -0 0 1\r\na\r\n").client_flags, 0u);
  EXPECT_EQ(ParseOk("set k -18446744073709551615 0 1\r\na\r\n").client_flags, 1u);
  EXPECT_EQ(ParseOk("set k 0 -1 1\r\na\r\n").exptime, -1);
  EXPECT_EQ(ParseOk("set k 0 2147483648 1\r\na\r\n").exptime, -2147483648LL);
  EXPECT_EQ(ParseOk("set k 0 4294967296 1\r\na\r\n").exptime, 0);
  EXPECT_EQ(ParseOk("set k 0 0 4294967297\r\na\r\n").data, "a");
  EXPECT_EQ(ParseOk("set k 0 0 -4294967295\r\na\r\n").data, "a");
  EXPECT_EQ(ParseOk("set k 0 0 +1\r\na\r\n").data, "a");
  EXPECT_EQ(ParseOk("set k 0 0 01\r\na\r\n").data, "a");
  EXPECT_EQ(ParseOk("set k 0 0 \t1\r\na\r\n").data, "a");
  EXPECT_EQ(ParseOk("set k 0 0 1\tx\r\na\r\n").data, "a");  // a blank ends the number
  EXPECT_EQ(ParseOk("set k 0 0 1\r\r\na\r\n").data, "a");   // so does a stray '\r'
  EXPECT_EQ(ParseOk(std::string("set k 0 0 1\0x\r\na\r\n", 18)).data, "a");
}

TEST(ParserTest, LongLineWithNewlineIsParsed) {  // the 2048 limit is for lines without '\n'
  Parsed p = Parse("set " + Repeat('x', 3000) + " 0 0 1\r\na\r\n");
  EXPECT_EQ(p.result.error, Error::kKeyTooLong);
}

// ---- Other text commands ------------------------------------------------------------------

TEST(ParserTest, Delete) {
  EXPECT_EQ(ParseOk("delete k\r\n").key, "k");
  EXPECT_TRUE(ParseOk("delete k noreply\r\n").noreply);
  EXPECT_FALSE(ParseOk("delete k 0\r\n").noreply);
  EXPECT_TRUE(ParseOk("delete k 0 noreply\r\n").noreply);
  EXPECT_EQ(ParseOk("delete noreply\r\n").key, "noreply");
}

TEST(ParserTest, IncrDecr) {
  const Request incr = ParseOk("incr k 18446744073709551615\r\n");
  EXPECT_EQ(incr.command, Command::kIncr);
  EXPECT_EQ(incr.key, "k");
  EXPECT_EQ(incr.delta, 18446744073709551615ull);
  const Request decr = ParseOk("decr k 7 noreply\r\n");
  EXPECT_EQ(decr.command, Command::kDecr);
  EXPECT_EQ(decr.delta, 7u);
  EXPECT_TRUE(decr.noreply);
  EXPECT_FALSE(ParseOk("incr k 1 x\r\n").noreply);
}

TEST(ParserTest, Touch) {
  const Request r = ParseOk("touch k 100 noreply\r\n");
  EXPECT_EQ(r.command, Command::kTouch);
  EXPECT_EQ(r.key, "k");
  EXPECT_EQ(r.exptime, 100);
  EXPECT_TRUE(r.noreply);
}

TEST(ParserTest, FlushAll) {
  Request r = ParseOk("flush_all\r\n");
  EXPECT_EQ(r.command, Command::kFlushAll);
  EXPECT_FALSE(r.has_number);
  r = ParseOk("flush_all noreply\r\n");
  EXPECT_TRUE(r.noreply);
  EXPECT_FALSE(r.has_number);
  r = ParseOk("flush_all 10 noreply\r\n");
  EXPECT_TRUE(r.noreply);
  EXPECT_EQ(r.number, 10);
  r = ParseOk("flush_all 10 x\r\n");
  EXPECT_FALSE(r.noreply);
  EXPECT_EQ(r.number, 10);
  EXPECT_EQ(ParseOk("flush_all -1\r\n").number, -1);
}

TEST(ParserTest, Verbosity) {
  Request r = ParseOk("verbosity 1\r\n");
  EXPECT_EQ(r.command, Command::kVerbosity);
  EXPECT_EQ(r.number, 1);
  EXPECT_TRUE(r.has_number);
  EXPECT_TRUE(ParseOk("verbosity 5 noreply\r\n").noreply);
  EXPECT_EQ(ParseOk("verbosity 1 x\r\n").number, 1);
}

// As memcached 1.6.18 answers (probed): classes 1..63, "all" and "hash"; cinch reports only
// class 1, so `number` says whether it was named.
TEST(ParserTest, LruCrawlerMetadump) {
  Request r = ParseOk("lru_crawler metadump all\r\n");
  EXPECT_EQ(r.command, Command::kLruCrawler);
  EXPECT_EQ(r.stats_arg, "metadump");
  EXPECT_EQ(r.number, 1);
  EXPECT_EQ(ParseOk("lru_crawler metadump hash\r\n").number, 1);
  EXPECT_EQ(ParseOk("lru_crawler metadump 3,1\r\n").number, 1);
  EXPECT_EQ(ParseOk("lru_crawler metadump ,1,,\r\n").number, 1);
  EXPECT_EQ(ParseOk("lru_crawler metadump 4294967297\r\n").number, 1);  // 32 bits
  EXPECT_EQ(ParseOk("lru_crawler metadump 2,63\r\n").number, 0);
  const std::pair<std::string_view, Error> bad[] = {
      {"lru_crawler metadump 0\r\n", Error::kBadClass},
      {"lru_crawler metadump 64\r\n", Error::kBadClass},
      {"lru_crawler metadump 1,x\r\n", Error::kBadClass},
      {"lru_crawler metadump -1\r\n", Error::kBadClass},
      {"lru_crawler metadump All\r\n", Error::kBadClass},
      {"lru_crawler metadump ,\r\n", Error::kNoClassToCrawl},
      {"lru_crawler metadump\r\n", Error::kUnknownCommand},
      {"lru_crawler metadump all x\r\n", Error::kUnknownCommand},
      {"lru_crawler crawl all\r\n", Error::kUnknownCommand},
      {"lru_crawler enable\r\n", Error::kUnknownCommand},
  };
  for (const auto& [line, error] : bad) {
    Parsed p = Parse(line);
    EXPECT_EQ(p.result.status, kError) << line;
    EXPECT_EQ(p.result.error, error) << line;
    EXPECT_FALSE(p.result.close) << line;
  }
}

TEST(ParserTest, StatsCachedump) {
  Request r = ParseOk("stats cachedump 1 100\r\n");
  EXPECT_EQ(r.command, Command::kStats);
  EXPECT_EQ(r.stats_arg, "cachedump");
  EXPECT_EQ(r.number, 1);
  EXPECT_EQ(r.dump_limit, 100u);
  EXPECT_EQ(ParseOk("stats cachedump 63 0 extra\r\n").number, 63);
  EXPECT_EQ(ParseOk("stats items\r\n").dump_limit, 0u);
  const std::pair<std::string_view, Error> bad[] = {
      {"stats cachedump\r\n", Error::kCachedumpUsage},
      {"stats cachedump 1\r\n", Error::kCachedumpUsage},
      {"stats cachedump 1 x\r\n", Error::kBadFormat},
      {"stats cachedump -1 0\r\n", Error::kBadFormat},
      {"stats cachedump 64 0\r\n", Error::kIllegalSlabId},
  };
  for (const auto& [line, error] : bad) {
    Parsed p = Parse(line);
    EXPECT_EQ(p.result.status, kError) << line;
    EXPECT_EQ(p.result.error, error) << line;
  }
}

// As memcached 1.6.18 answers (probed): the server checks the range (8 .. 10^9).
TEST(ParserTest, CacheMemlimit) {
  Request r = ParseOk("cache_memlimit 100\r\n");
  EXPECT_EQ(r.command, Command::kCacheMemlimit);
  EXPECT_EQ(r.number, 100);
  EXPECT_TRUE(r.has_number);
  EXPECT_FALSE(r.noreply);
  EXPECT_TRUE(ParseOk("cache_memlimit 100 noreply\r\n").noreply);
  EXPECT_FALSE(ParseOk("cache_memlimit 100 x\r\n").noreply);  // a third token is ignored
  EXPECT_EQ(ParseOk("cache_memlimit 7\r\n").number, 7);
  EXPECT_EQ(ParseOk("cache_memlimit 4294967396\r\n").number, 100);  // cut to 32 bits
  EXPECT_EQ(ParseOk("cache_memlimit -0\r\n").number, 0);
  for (std::string_view bad :
       {"cache_memlimit\r\n", "cache_memlimit 100 noreply x\r\n", "cache_memlimit -1\r\n",
        "cache_memlimit abc\r\n", "cache_memlimit 12abc\r\n",
        "cache_memlimit 18446744073709551616\r\n"}) {
    Parsed p = Parse(bad);
    EXPECT_EQ(p.result.status, kError) << bad;
    EXPECT_EQ(p.result.error, Error::kUnknownCommand) << bad;
    EXPECT_FALSE(p.result.noreply) << bad;
    EXPECT_FALSE(p.result.close) << bad;
  }
  // noreply hides a bad number's ERROR, not a bad token count's.
  EXPECT_TRUE(Parse("cache_memlimit -1 noreply\r\n").result.noreply);
  EXPECT_TRUE(Parse("cache_memlimit noreply\r\n").result.noreply);
  EXPECT_FALSE(Parse("cache_memlimit 1 noreply x\r\n").result.noreply);
}

TEST(ParserTest, VersionQuitStatsDebugTime) {
  EXPECT_EQ(ParseOk("version\r\n").command, Command::kVersion);
  EXPECT_EQ(ParseOk("version foo\r\n").command, Command::kVersion);
  EXPECT_EQ(ParseOk("quit\r\n").command, Command::kQuit);
  EXPECT_EQ(ParseOk("quit foo\r\n").command, Command::kQuit);
  Request stats = ParseOk("stats\r\n");
  EXPECT_EQ(stats.command, Command::kStats);
  EXPECT_EQ(stats.stats_arg, "");
  EXPECT_EQ(ParseOk("stats settings x\r\n").stats_arg, "settings");
  const Request debug = ParseOk("debugtime -30\r\n");
  EXPECT_EQ(debug.command, Command::kDebugTime);
  EXPECT_EQ(debug.number, -30);
  EXPECT_TRUE(debug.has_number);
  EXPECT_EQ(debug.clock_control, Request::ClockControl::kShift);
  EXPECT_EQ(ParseOk("debugtime p\r\n").clock_control, Request::ClockControl::kPause);
  EXPECT_EQ(ParseOk("debugtime r\r\n").clock_control, Request::ClockControl::kResume);
}

// ---- Meta ---------------------------------------------------------------------------------

TEST(ParserTest, MetaNoopIgnoresArguments) {
  EXPECT_EQ(ParseOk("mn\r\n").command, Command::kMetaNoop);
  EXPECT_EQ(ParseOk("mn foo\r\n").command, Command::kMetaNoop);
}

TEST(ParserTest, MetaGetFlags) {
  const Request r = ParseOk("mg foo v T30 N-5 Oabc k F7 C99 D5 J6 Mx q\r\n");
  EXPECT_EQ(r.command, Command::kMetaGet);
  EXPECT_EQ(r.key, "foo");
  ASSERT_EQ(r.num_meta_flags, 11);
  EXPECT_EQ(r.meta_flags[0].letter, 'v');
  EXPECT_EQ(r.meta_flags[0].token, "");
  EXPECT_EQ(r.meta_flags[1].letter, 'T');
  EXPECT_EQ(r.meta_flags[1].token, "30");
  EXPECT_EQ(r.meta_flags[1].number, 30u);
  EXPECT_EQ(static_cast<int64_t>(r.meta_flags[2].number), -5);
  EXPECT_EQ(r.meta_flags[3].token, "abc");
  EXPECT_EQ(r.meta_flags[5].number, 7u);
  EXPECT_EQ(r.meta_flags[6].number, 99u);
  EXPECT_EQ(r.meta_flags[7].number, 5u);
  EXPECT_EQ(r.meta_flags[8].number, 6u);
  EXPECT_EQ(r.meta_flags[9].token, "x");  // mg does not check the mode
  EXPECT_EQ(r.meta_flags[10].letter, 'q');
}

TEST(ParserTest, MetaGetAcceptsEveryKnownFlag) {
  EXPECT_EQ(ParseOk("mg a2V5 b c f h k l s t v O1 q u I\r\n").num_meta_flags, 13);
  EXPECT_EQ(ParseOk("mg k C1 D1 F1 I J1 L M1 N1 P R1 T1\r\n").num_meta_flags, 11);
}

TEST(ParserTest, MetaGetMaxFlags) {
  std::string line = "mg k";
  for (char c : std::string_view("cfhklstvOquIPLCDF")) line += std::string(" ") + c + "1";
  EXPECT_EQ(ParseOk(line + "\r\n").num_meta_flags, 17);
}

TEST(ParserTest, MetaGetBase64Key) {
  const Request r = ParseOk("mg a2V5 b v\r\n");
  EXPECT_EQ(r.key, "a2V5");  // left encoded
  EXPECT_EQ(r.meta_flags[0].letter, 'b');
}

TEST(ParserTest, MetaSet) {
  const Request r = ParseOk("ms foo 3 T10 F5 MA\r\nabc\r\n");
  EXPECT_EQ(r.command, Command::kMetaSet);
  EXPECT_EQ(r.key, "foo");
  EXPECT_EQ(r.data_length, 3u);
  EXPECT_EQ(r.data, "abc");
  ASSERT_EQ(r.num_meta_flags, 3);
  EXPECT_EQ(r.meta_flags[2].token, "A");
  EXPECT_EQ(ParseOk("ms k 0\r\n\r\n").data, "");
  EXPECT_EQ(ParseOk("ms k 4294967297\r\na\r\n").data, "a");  // 32-bit cut, as memcached
}

TEST(ParserTest, MetaDeleteArithmeticDebug) {
  EXPECT_EQ(ParseOk("md k q C5 I T30\r\n").command, Command::kMetaDelete);
  const Request ma = ParseOk("ma k MD D10 N0 J5 v\r\n");
  EXPECT_EQ(ma.command, Command::kMetaArithmetic);
  EXPECT_EQ(ma.meta_flags[1].number, 10u);
  EXPECT_EQ(ParseOk("ma k M+\r\n").meta_flags[0].token, "+");
  const Request me = ParseOk("me a2V5 b\r\n");
  EXPECT_EQ(me.command, Command::kMetaDebug);
  EXPECT_EQ(me.key, "a2V5");
  EXPECT_EQ(me.num_meta_flags, 1);
  EXPECT_EQ(ParseOk("me k x y\r\n").num_meta_flags, 2);  // me does not check its flags
  EXPECT_EQ(ParseOk("me a2V5 c b\r\n").num_meta_flags, 2);
}

TEST(ParserTest, ReusedRequestIsReset) {
  Request r;
  const ParserLimits limits;
  ASSERT_EQ(ParseRequest("cas k 1 2 1 3 noreply\r\na\r\n", limits, &r).status, kOk);
  ASSERT_EQ(ParseRequest("flush_all 5\r\n", limits, &r).status, kOk);
  ASSERT_EQ(ParseRequest("stats items\r\n", limits, &r).status, kOk);
  ASSERT_EQ(ParseRequest("mg k v T1\r\n", limits, &r).status, kOk);
  ASSERT_EQ(ParseRequest("incr k 9\r\n", limits, &r).status, kOk);
  ASSERT_EQ(ParseRequest("gat 7 a\r\n", limits, &r).status, kOk);
  const Request fresh = ParseOk("get a\r\n");
  ASSERT_EQ(ParseRequest("get a\r\n", limits, &r).status, kOk);
  EXPECT_EQ(r.command, fresh.command);
  EXPECT_EQ(r.key, fresh.key);
  EXPECT_EQ(r.keys, fresh.keys);
  EXPECT_EQ(r.data, fresh.data);
  EXPECT_EQ(r.client_flags, 0u);
  EXPECT_EQ(r.exptime, 0);
  EXPECT_EQ(r.cas_unique, 0u);
  EXPECT_EQ(r.delta, 0u);
  EXPECT_FALSE(r.noreply);
  EXPECT_EQ(r.number, 0);
  EXPECT_FALSE(r.has_number);
  EXPECT_EQ(r.stats_arg, "");
  EXPECT_EQ(r.num_meta_flags, 0);
  EXPECT_EQ(r.data_length, 0u);
  EXPECT_FALSE(r.partial || r.skip_rest);
}

// ---- Errors -------------------------------------------------------------------------------

struct ErrorCase {
  std::string input;
  Error error;
  size_t swallow = 0;
  bool noreply = false;
  bool close = false;
  size_t consumed = std::string::npos;  // npos: all of `input`
};

// Each row was answered this way by memcached 1.6.18 (see the table in parser.cc).
std::vector<ErrorCase> ErrorCases() {
  const std::string k251 = Repeat('a', 251);
  const std::string o32 = "O" + Repeat('o', 32);
  return {
      // Unknown commands and token counts.
      {"\r\n", Error::kUnknownCommand},
      {"\n", Error::kUnknownCommand},
      {" \r\n", Error::kUnknownCommand},
      {"x\r\n", Error::kUnknownCommand},
      {"SET k 0 0 1\r\n", Error::kUnknownCommand},
      {"Get a\r\n", Error::kUnknownCommand},
      {"getx a\r\n", Error::kUnknownCommand},
      {"set\tk 0 0 1\r\n", Error::kUnknownCommand},
      {"set k\t0 0 1\r\n", Error::kUnknownCommand},
      {"set k 0 0\r\n", Error::kUnknownCommand},
      {"set k 0 0 1 noreply x\r\n", Error::kUnknownCommand},
      {"cas k 0 0 1\r\n", Error::kUnknownCommand},
      {"get\r\n", Error::kUnknownCommand},
      {"get \r\n", Error::kUnknownCommand},
      {"gat\r\n", Error::kUnknownCommand},
      {"incr k\r\n", Error::kUnknownCommand},
      {"decr k 1 2 3\r\n", Error::kUnknownCommand},
      {"incr k 5 noreply x\r\n", Error::kUnknownCommand},
      {"touch k\r\n", Error::kUnknownCommand},
      {"delete\r\n", Error::kUnknownCommand},
      {"delete k 0 noreply x\r\n", Error::kUnknownCommand},
      {"flush_all 1 2 3\r\n", Error::kUnknownCommand},
      {"verbosity\r\n", Error::kUnknownCommand},
      {"verbosity 1 2 3\r\n", Error::kUnknownCommand},
      {"debugtime\r\n", Error::kUnknownCommand},
      {"debugtime x\r\n", Error::kUnknownCommand},
      {"debugtime pr\r\n", Error::kUnknownCommand},
      {"mx k\r\n", Error::kUnknownCommand},
      {"mgg k\r\n", Error::kUnknownCommand},
      {"mg\r\n", Error::kUnknownCommand},
      {"ms\r\n", Error::kUnknownCommand},
      {"md\r\n", Error::kUnknownCommand},
      {"ma\r\n", Error::kUnknownCommand},
      {std::string("\0version\r\n", 10), Error::kUnknownCommand},
      // Keys.
      {"get " + k251 + "\r\n", Error::kKeyTooLong},
      {"get a " + k251 + " b\r\n", Error::kKeyTooLong},
      {"gat 1 a " + k251 + "\r\n", Error::kKeyTooLong},
      {"set " + k251 + " 0 0 5\r\n", Error::kKeyTooLong},  // no swallow: data is a command
      {"delete " + k251 + "\r\n", Error::kKeyTooLong},
      {"incr " + k251 + " 1\r\n", Error::kKeyTooLong},
      {"touch " + k251 + " 1\r\n", Error::kKeyTooLong},
      {"mg " + k251 + " v\r\n", Error::kKeyTooLong},
      {"ms " + k251 + " 2\r\n", Error::kKeyTooLong},
      {"md " + k251 + "\r\n", Error::kKeyTooLong},
      {"me " + k251 + "\r\n", Error::kKeyTooLong},
      // Storage numbers.
      {"set k 0 0 abc\r\n", Error::kBadFormat},
      {"set k 0 0 -1\r\n", Error::kBadFormat},
      {"set k 0 0 1a\r\n", Error::kBadFormat},
      {"set k 0x10 0 1\r\n", Error::kBadFormat},
      {"set k -1 0 1\r\n", Error::kBadFormat},
      {"set k 18446744073709551616 0 1\r\n", Error::kBadFormat},
      {"set k 0 0 2147483646\r\n", Error::kBadFormat},
      {"set k 0 0 2147483648\r\n", Error::kBadFormat},
      {"cas k 0 0 1 abc\r\n", Error::kBadFormat},
      {"cas k 0 0 1 -1\r\n", Error::kBadFormat},
      // noreply hides errors found after it was seen.
      {"set k 0 0 abc noreply\r\n", Error::kBadFormat, 0, true},
      {"set k 0 0 noreply\r\n", Error::kBadFormat, 0, true},
      {"set " + k251 + " 0 0 1 noreply\r\n", Error::kKeyTooLong, 0, true},
      {"cas k 0 0 1 x noreply\r\n", Error::kBadFormat, 0, true},
      // Other commands' arguments.
      {"incr k abc\r\n", Error::kBadDelta},
      {"incr k -1\r\n", Error::kBadDelta},
      {"incr k 18446744073709551616\r\n", Error::kBadDelta},
      {"incr k abc noreply\r\n", Error::kBadDelta, 0, true},
      {"touch k abc\r\n", Error::kBadExptime},
      {"touch k noreply\r\n", Error::kBadExptime, 0, true},
      {"gat abc a\r\n", Error::kBadExptime},
      {"flush_all abc\r\n", Error::kBadExptime},
      {"flush_all x 10\r\n", Error::kBadExptime},
      {"flush_all noreply 5\r\n", Error::kBadExptime},
      {"flush_all abc noreply\r\n", Error::kBadExptime, 0, true},
      {"verbosity abc\r\n", Error::kBadFormat},
      {"verbosity -1\r\n", Error::kBadFormat},
      {"verbosity noreply\r\n", Error::kBadFormat, 0, true},
      {"delete k x\r\n", Error::kDeleteUsage},
      {"delete k 0 0\r\n", Error::kDeleteUsage},
      {"delete k 1 noreply\r\n", Error::kDeleteUsage, 0, true},
      {"delete k noreply noreply\r\n", Error::kDeleteUsage, 0, true},
      {"delete " + k251 + " noreply\r\n", Error::kKeyTooLong, 0, true},
      // HTTP.
      {"GET / HTTP/1.1\r\n", Error::kHttpRequest, 0, false, true},
      {"foo HTTP/1.0\r\n", Error::kHttpRequest, 0, false, true},
      {"foo bar HTTP/2\r\n", Error::kHttpRequest, 0, false, true},
      {"HTTP/1.1\r\n", Error::kHttpRequest, 0, false, true},
      {"mxx HTTP/1.1\r\n", Error::kHttpRequest, 0, false, true},
      {"foo HTTP/1.1 x\r\n", Error::kUnknownCommand},
      {"x HTTP/1.1\r\n", Error::kUnknownCommand},
      {"sxx HTTP/1.1\r\n", Error::kUnknownCommand},
      {"gett / HTTP/1.1\r\n", Error::kUnknownCommand},
      {"lru_crawler HTTP/1.1\r\n", Error::kUnknownCommand},
      // Meta flags.
      {"ms k\r\n", Error::kBadFormat},
      {"me\r\n", Error::kBadFormat},
      {"me k b\r\n", Error::kBadFormat},
      {"me k b c\r\n", Error::kBadFormat},
      {"mg k 1\r\n", Error::kInvalidMetaFlag},
      {"mg k x\r\n", Error::kInvalidMetaFlag},
      {"mg k A\r\n", Error::kInvalidMetaFlag},
      {"mg k E1\r\n", Error::kInvalidMetaFlag},
      {"mg k ~\r\n", Error::kInvalidMetaFlag},
      {"mg k Tabc x\r\n", Error::kInvalidMetaFlag},
      {"mg k v v\r\n", Error::kDuplicateMetaFlag},
      {"mg k \x80\r\n", Error::kDuplicateMetaFlag},
      {"mg k Tabc v v\r\n", Error::kDuplicateMetaFlag},
      {"mg k T\r\n", Error::kBadMetaToken},
      {"mg k Tabc\r\n", Error::kBadMetaToken},
      {"mg k N\r\n", Error::kBadMetaToken},
      {"mg k R1x\r\n", Error::kBadMetaToken},
      {"mg k Cx\r\n", Error::kBadMetaToken},
      {"mg k M\r\n", Error::kBadMetaModeLength},
      {"mg k MSS\r\n", Error::kBadMetaModeLength},
      {"mg k D\r\n", Error::kBadMetaDelta},
      {"mg k Jx\r\n", Error::kBadMetaInitial},
      {"mg k Fabc\r\n", Error::kBadFormat},
      {"mg k Tabc Fabc\r\n", Error::kBadMetaToken},  // F records no message of its own
      {"mg k Tabc Dxyz\r\n", Error::kBadMetaDelta},  // the last message wins
      {"mg k b\r\n", Error::kBadBase64Key},
      {"mg a2V5= b\r\n", Error::kBadBase64Key},
      {"mg a2V b\r\n", Error::kBadBase64Key},
      {"mg ==== b\r\n", Error::kBadBase64Key},
      {"mg k " + o32 + "\r\n", Error::kMetaOpaqueTooLong},
      {"mg k " + o32 + " k\r\n", Error::kMetaOpaqueTooLong},
      {"mg k a b c d e f g h i j k l m n o p q r\r\n", Error::kMetaTooManyFlagsMg},
      {"md k x\r\n", Error::kBadMetaFlagMdMa},
      {"md k q q\r\n", Error::kBadMetaFlagMdMa},
      {"md k Tabc\r\n", Error::kBadMetaFlagMdMa},
      {"md k b\r\n", Error::kBadMetaFlagMdMa},
      {"md k a b c d e f g h i j k l m n o p q\r\n", Error::kBadMetaFlagMdMa},
      {"md k " + o32 + "\r\n", Error::kMetaOpaqueTooLong},
      {"md k v v v v v v v v v v v v v v v v v v v v v v v v v v v\r\n", Error::kMetaTooManyFlags},
      {"ma k Dabc\r\n", Error::kBadMetaFlagMdMa},
      {"ma k x\r\n", Error::kBadMetaFlagMdMa},
      {"ma k MX\r\n", Error::kBadMaMode},
      {"ma k " + o32 + "\r\n", Error::kMetaOpaqueTooLong},
      // ms: errors before the length is known leave the data to be read as a command...
      {"ms k abc\r\n", Error::kBadDataLength},
      {"ms k -1\r\n", Error::kBadDataLength},
      {"ms k 2147483646\r\n", Error::kBadDataLength},
      {"ms k 2 k c O1 q T1 F2 C3 I MS P L u v s t f h l\r\n", Error::kMetaTooManyFlags},
      // ...the others swallow the data block, 'q' or not.
      {"ms k 2 x\r\n", Error::kInvalidMetaFlag, 4},
      {"ms k 2 v v\r\n", Error::kDuplicateMetaFlag, 4},
      {"ms k 2 S5\r\n", Error::kInvalidMetaFlag, 4},
      {"ms k 2 T\r\n", Error::kBadMetaToken, 4},
      {"ms k 2 Fabc\r\n", Error::kBadFormat, 4},
      {"ms k 2 b\r\n", Error::kBadBase64Key, 4},
      {"ms k 2 MX\r\n", Error::kBadMsMode, 4},
      {"ms k 2 MX " + o32 + "\r\n", Error::kBadMsMode, 4},
      {"ms k 2 " + o32 + " q\r\n", Error::kMetaOpaqueTooLong, 4},
      {"ms k 2 a b c d e f g h i j k l m n o p\r\n", Error::kInvalidMetaFlag, 4},
      // Data blocks and sizes.
      {"set k 0 0 1\r\na\nv", Error::kBadDataChunk},
      {"set k 0 0 1\r\nabcd\r\n", Error::kBadDataChunk, 0, false, false, 16},
      {"set k 0 0 3\r\nab\r\nv", Error::kBadDataChunk},
      {"set k 0 0 1 noreply\r\nabc", Error::kBadDataChunk, 0, true},
      {"ms k 2\r\nabc\r\n", Error::kBadDataChunk, 0, false, false, 12},
      {"ms k 2 q\r\nabc\r\n", Error::kBadDataChunk, 0, false, false, 14},
      {"set k 0 0 1048577\r\n", Error::kTooLarge, 1048579},
      {"set k 0 0 2147483645 noreply\r\n", Error::kTooLarge, 2147483647, true},
      {"ms k 1048577 T1\r\n", Error::kTooLarge, 1048579},
      // Binary protocol and line length.
      {"\x80\x00\x00\x00", Error::kBinaryProtocol, 0, false, true},
      {"x" + Repeat('x', 2048), Error::kLineTooLong, 0, false, true},
      {"set " + Repeat('x', 3000), Error::kLineTooLong, 0, false, true},
      {Repeat(' ', 101) + "get " + Repeat('x', 3000), Error::kLineTooLong, 0, false, true},
  };
}

TEST(ParserTest, ErrorsMatchMemcached) {
  for (const ErrorCase& c : ErrorCases()) {
    SCOPED_TRACE(c.input.substr(0, 80));
    const Parsed p = Parse(c.input);
    EXPECT_EQ(p.result.status, kError);
    EXPECT_EQ(static_cast<int>(p.result.error), static_cast<int>(c.error));
    EXPECT_EQ(p.result.consumed, c.consumed == std::string::npos ? c.input.size() : c.consumed);
    EXPECT_EQ(p.result.swallow, c.swallow);
    EXPECT_EQ(p.result.noreply, c.noreply);
    EXPECT_EQ(p.result.close, c.close);
  }
}

// Errors are only reported once the input that proves them is complete.
TEST(ParserTest, ErrorsWaitForTheirWholeInput) {
  for (const ErrorCase& c : ErrorCases()) {
    if (c.close) continue;  // decided by the first byte or by the lack of a newline
    const size_t end = c.consumed == std::string::npos ? c.input.size() : c.consumed;
    for (size_t i = 0; i < end; ++i) {
      ASSERT_EQ(Parse(c.input.substr(0, i)).result.status, kNeedMore)
          << c.input.substr(0, 80) << " @" << i;
    }
  }
}

TEST(ParserTest, LineErrorsConsumeOnlyTheLine) {
  // memcached parses the data line of a rejected set as a command of its own.
  const Parsed p = Parse("set k 0 0 -1\r\nabc\r\n");
  EXPECT_EQ(p.result.error, Error::kBadFormat);
  EXPECT_EQ(p.result.consumed, 14u);
}

TEST(ParserTest, TooLargeDoesNotWaitForTheData) {
  const Parsed p = Parse("set k 0 0 11\r\nhel", ParserLimits{.max_item_size = 10});
  EXPECT_EQ(p.result.error, Error::kTooLarge);
  EXPECT_EQ(p.result.consumed, 14u);
  EXPECT_EQ(p.result.swallow, 13u);
  EXPECT_EQ(
      Parse("set k 0 0 10\r\n0123456789\r\n", ParserLimits{.max_item_size = 10}).result.status,
      kOk);
}

TEST(ParserTest, EveryErrorHasAWireLine) {
  for (int e = static_cast<int>(Error::kUnknownCommand); e <= static_cast<int>(Error::kBadMaMode);
       ++e) {
    const auto error = static_cast<Error>(e);
    const std::string_view line = ErrorLine(error);
    if (error == Error::kLineTooLong || error == Error::kHttpRequest) {
      EXPECT_TRUE(line.empty());
      continue;
    }
    ASSERT_GE(line.size(), 2u) << e;
    EXPECT_TRUE(line.ends_with("\r\n")) << e;
    EXPECT_EQ(line.find("\r\n"), line.size() - 2) << e;
  }
  EXPECT_EQ(ErrorLine(Error::kKeyTooLong), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(ErrorLine(Error::kBadMetaFlagMdMa), "CLIENT_ERROR invalid or duplicate flag\r\n");
  EXPECT_EQ(ErrorLine(Error::kNone), "");
}

// ---- Partial input ------------------------------------------------------------------------

// Every proper prefix of a valid request is kNeedMore; the whole is kOk and uses it all.
TEST(ParserTest, NeedMoreAtEverySplitPoint) {
  const std::vector<std::string> requests = {
      "get foo\r\n",
      "gets a bb ccc\r\n",
      "gat 10 a b\n",
      "set k 5 60 3\r\nabc\r\n",
      "cas k 0 0 4 99 noreply\r\na\r\nb\r\n",
      "append k 0 0 0\r\n\r\n",
      "delete k 0 noreply\r\n",
      "incr k 5\r\n",
      "touch k 10\r\n",
      "flush_all 5\r\n",
      "verbosity 1\r\n",
      "version\r\n",
      "stats items\r\n",
      "mn\r\n",
      "mg a2V5 b v k T30\r\n",
      "ms k 5 T10 F1 c\r\nhello\r\n",
      "md k q\r\n",
      "ma k D5 MD\r\n",
      "me k\r\n",
  };
  for (const std::string& request : requests) {
    for (size_t i = 0; i < request.size(); ++i) {
      ASSERT_EQ(Parse(request.substr(0, i)).result.status, kNeedMore) << request << " @" << i;
    }
    ParseOk(request);
  }
}

TEST(ParserTest, PipelinedRequests) {
  const std::string input = "set a 0 0 1\r\n1\r\nget a b\r\nmn\r\n";
  std::string_view rest = input;
  std::vector<Command> commands;
  while (!rest.empty()) {
    const Parsed p = Parse(rest);
    ASSERT_EQ(p.result.status, kOk);
    commands.push_back(p.request.command);
    rest.remove_prefix(p.result.consumed);
  }
  EXPECT_EQ(commands, (std::vector<Command>{Command::kSet, Command::kGet, Command::kMetaNoop}));
}

TEST(ParserTest, ShortLinesWaitWithoutANewline) {
  EXPECT_EQ(Parse(Repeat('x', 2048)).result.status, kNeedMore);
  EXPECT_EQ(Parse("get " + Repeat('x', 3000)).result.status, kNeedMore);  // below max_get_line
  EXPECT_EQ(Parse("gat 0 " + Repeat('x', 3000)).result.status, kNeedMore);
  EXPECT_EQ(Parse("").result.status, kNeedMore);
}

// Runs a connection's read loop over `stream`, `read_size` bytes at a time (0: all at once),
// and describes every request or error it yields.
std::vector<std::string> Drive(std::string_view stream, size_t read_size) {
  const ParserLimits limits;
  std::vector<std::string> events;
  std::string buffer, keys;
  size_t fed = 0, to_swallow = 0;
  bool continuing = false;
  Request r;
  for (size_t rounds = 0;; ++rounds) {
    if (rounds > 10 * stream.size() + 100) {
      ADD_FAILURE() << "no progress";
      return events;
    }
    const size_t drop = std::min(to_swallow, buffer.size());
    buffer.erase(0, drop);
    to_swallow -= drop;
    const ParseResult res = buffer.empty() || to_swallow > 0 ? ParseResult{}
                            : continuing ? ParseGetContinuation(buffer, limits, &r)
                                         : ParseRequest(buffer, limits, &r);
    if (res.status == kNeedMore) {
      if (fed == stream.size()) return events;
      const size_t n = read_size == 0 ? stream.size() : std::min(read_size, stream.size() - fed);
      buffer.append(stream.substr(fed, n));
      fed += n;
      continue;
    }
    EXPECT_GT(res.consumed, 0u);
    continuing = res.status == kOk && r.partial;
    if (res.status == kOk) keys += std::string(r.keys) + "|";
    if (res.status == kError) {
      events.push_back("error " + std::to_string(static_cast<int>(res.error)) +
                       (res.noreply ? " noreply" : "") + (res.close ? " close" : ""));
      to_swallow = res.swallow;
    } else if (!continuing) {
      events.push_back("ok " + std::to_string(static_cast<int>(r.command)) + " " +
                       std::string(r.key) + " " + keys + " " + std::string(r.data) + " " +
                       std::to_string(r.num_meta_flags));
    }
    buffer.erase(0, res.consumed);  // after copying: the views point into it
    if (res.close) return events;
    if (continuing) continue;
    keys.clear();
  }
}

std::string RandomStream(std::mt19937* rng) {
  static const std::vector<std::string> kPieces = {"get",
                                                   "gets",
                                                   "gat",
                                                   "set",
                                                   "cas",
                                                   "delete",
                                                   "incr",
                                                   "touch",
                                                   "flush_all",
                                                   "mg",
                                                   "ms",
                                                   "md",
                                                   "ma",
                                                   "mn",
                                                   "me",
                                                   "k",
                                                   "a2V5",
                                                   "0",
                                                   "1",
                                                   "2",
                                                   "5",
                                                   "-1",
                                                   "abc",
                                                   "noreply",
                                                   "v",
                                                   "T1",
                                                   "b",
                                                   "Tx",
                                                   "O1",
                                                   "MS",
                                                   "q",
                                                   "xyz",
                                                   "HTTP/1.1",
                                                   "\r\n",
                                                   "\n",
                                                   "\r",
                                                   " ",
                                                   " ",
                                                   " ",
                                                   "\t",
                                                   std::string(1, '\0'),
                                                   "\r\n",
                                                   "\r\n",
                                                   "1048577",
                                                   std::string(260, 'a')};
  std::string stream;
  const size_t pieces = (*rng)() % 60;
  for (size_t i = 0; i < pieces; ++i) stream += kPieces[(*rng)() % kPieces.size()];
  return stream;
}

TEST(ParserTest, ChunkingDoesNotChangeTheResult) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const std::string stream = RandomStream(&rng);
    const std::vector<std::string> whole = Drive(stream, 0);
    for (size_t read_size : {1, 2, 3, 7, 64}) {
      ASSERT_EQ(Drive(stream, read_size), whole) << stream << " read " << read_size;
    }
  }
}

// ---- Long get lines -----------------------------------------------------------------------

struct GetRun {
  std::vector<std::string> keys;
  ParseResult last;  // the result that ended the line
  Request request;
  size_t parts = 0;  // kOk results with partial == true
  size_t max_buffer = 0;
  std::string left;  // unparsed bytes after the line
};

// Feeds `stream` to the parser `read_size` bytes at a time, as a connection would, and collects
// the keys of the first (get) request.
GetRun RunGet(std::string_view stream, size_t read_size, const ParserLimits& limits) {
  GetRun run;
  std::string buffer;
  size_t fed = 0;
  bool continuing = false;
  for (;;) {
    const ParseResult r = continuing ? ParseGetContinuation(buffer, limits, &run.request)
                                     : ParseRequest(buffer, limits, &run.request);
    if (r.status == kNeedMore) {
      if (fed == stream.size()) {
        ADD_FAILURE() << "stream ended inside the request";
        return run;
      }
      const size_t n = std::min(read_size, stream.size() - fed);
      buffer.append(stream.substr(fed, n));
      fed += n;
      run.max_buffer = std::max(run.max_buffer, buffer.size());
      continue;
    }
    for (const std::string& key : Keys(run.request.keys)) run.keys.push_back(key);
    buffer.erase(0, r.consumed);
    if (r.status == kError || !run.request.partial) {
      run.last = r;
      run.left = buffer + std::string(stream.substr(fed));
      return run;
    }
    ++run.parts;
    continuing = true;
  }
}

std::string ManyKeys(size_t n, std::vector<std::string>* keys) {
  std::string line;
  for (size_t i = 0; i < n; ++i) {
    keys->push_back("key:" + std::to_string(i));
    line += " " + keys->back();
  }
  return line;
}

TEST(ParserTest, FiftyThousandKeyGetInParts) {
  std::vector<std::string> keys;
  const std::string stream = "get" + ManyKeys(50000, &keys) + "\r\nmn\r\n";
  for (size_t read_size : {1000, 16384, 100000}) {
    SCOPED_TRACE(read_size);
    const ParserLimits limits;
    const GetRun run = RunGet(stream, read_size, limits);
    EXPECT_EQ(run.last.status, kOk);
    EXPECT_EQ(run.request.command, Command::kGet);
    EXPECT_EQ(run.keys, keys);
    EXPECT_GT(run.parts, 3u);
    EXPECT_LE(run.max_buffer, limits.max_get_line + read_size);
    EXPECT_EQ(run.left, "mn\r\n");
  }
}

TEST(ParserTest, LongGatKeepsExptime) {
  std::vector<std::string> keys;
  const std::string stream = "gats 77" + ManyKeys(20000, &keys) + " \n";
  const GetRun run = RunGet(stream, 4096, {});
  EXPECT_EQ(run.last.status, kOk);
  EXPECT_EQ(run.request.command, Command::kGats);
  EXPECT_EQ(run.request.exptime, 77);
  EXPECT_EQ(run.keys, keys);
}

TEST(ParserTest, LongGetEveryReadSize) {  // cuts between '\r' and '\n', inside keys, ...
  std::vector<std::string> keys;
  const std::string stream = "get" + ManyKeys(1000, &keys) + "\r\n";
  const ParserLimits limits{.max_line = 64, .max_get_line = ParserLimits::kMinGetLine};
  for (size_t read_size = 1; read_size < 1200; read_size += 37) {
    const GetRun run = RunGet(stream, read_size, limits);
    ASSERT_EQ(run.last.status, kOk) << read_size;
    ASSERT_EQ(run.keys, keys) << read_size;
    ASSERT_EQ(run.left, "") << read_size;
  }
}

TEST(ParserTest, LongGetWithAKeyTooLongFailsAtTheNewline) {
  std::vector<std::string> keys;
  const std::string line = "get" + ManyKeys(10000, &keys);
  for (const std::string& stream : {line + " " + Repeat('x', 251) + " a\r\nmn\r\n",
                                    line + " " + Repeat('x', 100000) + " a\r\nmn\r\n",
                                    line + " " + Repeat('x', 251) + "\r\nmn\r\n"}) {
    const GetRun run = RunGet(stream, 8192, {});
    EXPECT_EQ(run.last.status, kError);
    EXPECT_EQ(run.last.error, Error::kKeyTooLong);
    EXPECT_FALSE(run.last.close);
    EXPECT_EQ(run.left, "mn\r\n");
    EXPECT_FALSE(run.request.partial);
  }
}

TEST(ParserTest, KeyOf250BytesThenCarriageReturnAtTheEndOfARead) {
  const std::string key = Repeat('k', 250);
  const ParserLimits limits;
  Request r;
  const std::string head = "get a" + Repeat(' ', 70000) + key + "\r";
  ParseResult res = ParseRequest(head, limits, &r);
  ASSERT_EQ(res.status, kOk);
  ASSERT_TRUE(r.partial);
  EXPECT_EQ(Keys(r.keys), std::vector<std::string>{"a"});
  const std::string rest = head.substr(res.consumed) + "\n";
  res = ParseGetContinuation(rest, limits, &r);
  ASSERT_EQ(res.status, kOk);
  EXPECT_FALSE(r.partial);
  EXPECT_EQ(Keys(r.keys), std::vector<std::string>{key});
}

TEST(ParserTest, LongGatWithBadExptimeFailsAtTheNewline) {
  std::vector<std::string> keys;
  const GetRun run = RunGet("gat abc" + ManyKeys(10000, &keys) + "\r\nmn\r\n", 8192, {});
  EXPECT_EQ(run.last.error, Error::kBadExptime);
  EXPECT_TRUE(run.keys.empty());
  EXPECT_EQ(run.left, "mn\r\n");
}

TEST(ParserTest, LongGetStopsAtNul) {
  std::vector<std::string> keys;
  const std::string line = "get" + ManyKeys(10000, &keys);
  const GetRun run = RunGet(line + std::string("\0", 1) + " junk x\r\nmn\r\n", 8192, {});
  EXPECT_EQ(run.last.status, kOk);
  EXPECT_EQ(run.keys, keys);
  EXPECT_EQ(run.left, "mn\r\n");
}

TEST(ParserTest, PathologicalLongGetLines) {
  const ParserLimits limits;
  // One endless key: skipped, failed at the newline.
  Parsed p = Parse("gets " + Repeat('a', 70000));
  ASSERT_EQ(p.result.status, kOk);
  EXPECT_TRUE(p.request.partial);
  EXPECT_TRUE(Keys(p.request.keys).empty());
  EXPECT_EQ(p.result.consumed, 70005u);
  ParseResult r = ParseGetContinuation("aaa\r\n", limits, &p.request);
  EXPECT_EQ(r.error, Error::kKeyTooLong);
  EXPECT_EQ(r.consumed, 5u);
  // Nothing but blanks, or "get" glued to a NUL: closed.
  EXPECT_EQ(Parse("get " + Repeat(' ', 70000)).result.error, Error::kLineTooLong);
  EXPECT_EQ(Parse(std::string("get\0", 4) + Repeat('a', 70000)).result.error, Error::kLineTooLong);
  EXPECT_EQ(Parse("gat " + Repeat('1', 70000)).result.error, Error::kLineTooLong);
  // A NUL before the first key: memcached sees "get" alone (ERROR), "gat 5" (no keys).
  p = Parse(std::string("get \0", 5) + Repeat('a', 70000));
  ASSERT_EQ(p.result.status, kOk);
  EXPECT_EQ(ParseGetContinuation("a b\r\n", limits, &p.request).error, Error::kUnknownCommand);
  p = Parse(std::string("gat 5 \0", 7) + Repeat('a', 70000));
  ASSERT_EQ(p.result.status, kOk);
  r = ParseGetContinuation("a b\r\n", limits, &p.request);
  EXPECT_EQ(r.status, kOk);
  EXPECT_FALSE(p.request.partial);
  EXPECT_TRUE(Keys(p.request.keys).empty());
}

TEST(ParserTest, NextKey) {
  std::string_view rest = "  a bb  c ", key;
  std::vector<std::string> keys;
  while (NextKey(&rest, &key)) keys.emplace_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "bb", "c"}));
  rest = "";
  EXPECT_FALSE(NextKey(&rest, &key));
  rest = "   ";
  EXPECT_FALSE(NextKey(&rest, &key));
}

}  // namespace
}  // namespace cinch::proto
