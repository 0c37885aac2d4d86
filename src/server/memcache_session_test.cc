// The memcached session on a real store, without sockets: bytes in, reply bytes out.
#include "server/memcache_session.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/version.h"
#include "server/session_test_util.h"
#include "server/users.h"

namespace cinch::server {
namespace {

using test::FakeOutput;

class SessionTest : public test::SessionFixture {
 protected:
  std::string Send(std::string_view input) { return SendRaw(input); }
};

TEST_F(SessionTest, SetGetDelete) {
  EXPECT_EQ(Send("set k 5 0 3\r\nabc\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("get k\r\n"), "VALUE k 5 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(Send("get nope k nope\r\n"), "VALUE k 5 3\r\nabc\r\nEND\r\n");
  EXPECT_EQ(Send("delete k\r\n"), "DELETED\r\n");
  EXPECT_EQ(Send("delete k\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Send("get k\r\n"), "END\r\n");
}

// One latency observation per request, in its class: get (get/gets/gat/gats/mg, whatever the
// number of keys), set (set/add/replace/append/prepend/cas/ms), other (the rest, errors too).
TEST_F(SessionTest, LatencyHistogramsCountEachRequestInItsClass) {
  Send("set a 0 0 1\r\n1\r\nadd b 0 0 1\r\n2\r\nms c 1\r\n3\r\n");
  Send("get a\r\nget a b c nope\r\nmg a v\r\ngets b\r\n");
  Send("delete a\r\nversion\r\nbogus\r\nincr nope 1\r\n");
  const auto latency = context_->counters.SumLatency();
  EXPECT_EQ(latency[static_cast<int>(CommandClass::kSet)].count(), 3u);
  EXPECT_EQ(latency[static_cast<int>(CommandClass::kGet)].count(), 4u);
  EXPECT_EQ(latency[static_cast<int>(CommandClass::kOther)].count(), 4u);
  // Not reset with the stats counters: a Prometheus histogram only grows.
  Send("stats reset\r\n");
  EXPECT_EQ(context_->counters.SumLatency()[static_cast<int>(CommandClass::kGet)].count(), 4u);
}

TEST_F(SessionTest, PipelinedAndSplitInput) {
  std::string batch = "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b\r\n";
  std::string replies;
  for (char c : batch) replies += Send(std::string_view(&c, 1));
  EXPECT_EQ(replies, "STORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\n");
}

TEST_F(SessionTest, AddReplaceAppendPrependCas) {
  EXPECT_EQ(Send("add k 0 0 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("add k 0 0 1\r\nb\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(Send("replace x 0 0 1\r\nb\r\n"), "NOT_STORED\r\n");
  EXPECT_EQ(Send("append k 0 0 2\r\nyz\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("prepend k 0 0 2\r\n01\r\n"), "STORED\r\n");
  std::string got = Send("gets k\r\n");
  ASSERT_EQ(got.rfind("VALUE k 0 5 ", 0), 0u) << got;
  std::string cas = got.substr(12, got.find("\r\n") - 12);
  EXPECT_EQ(Send("cas k 0 0 1 " + cas + "\r\nQ\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("cas k 0 0 1 " + cas + "\r\nR\r\n"), "EXISTS\r\n");
  EXPECT_EQ(Send("cas nope 0 0 1 1\r\nR\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Send("get k\r\n"), "VALUE k 0 1\r\nQ\r\nEND\r\n");
}

TEST_F(SessionTest, NoreplySuppressesReplies) {
  EXPECT_EQ(Send("set k 0 0 1 noreply\r\na\r\nadd k 0 0 1 noreply\r\nb\r\n"), "");
  EXPECT_EQ(Send("delete k noreply\r\nget k\r\n"), "END\r\n");
}

TEST_F(SessionTest, IncrDecr) {
  EXPECT_EQ(Send("incr n 1\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(Send("set n 0 0 20\r\n18446744073709551615\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("incr n 2\r\n"), "1\r\n");
  EXPECT_EQ(Send("decr n 5\r\n"), "0\r\n");
  EXPECT_EQ(Send("set s 0 0 2\r\nab\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("incr s 1\r\n"),
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
}

TEST_F(SessionTest, ExpiryTouchAndDebugTimeClock) {
  EXPECT_EQ(Send("set k 0 10 1\r\na\r\n"), "STORED\r\n");
  clock_.Shift(11);
  EXPECT_EQ(Send("get k\r\n"), "END\r\n");
  EXPECT_EQ(Send("set k 0 10 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("touch k 100\r\n"), "TOUCHED\r\n");
  clock_.Shift(50);
  EXPECT_EQ(Send("gat 0 k\r\n"), "VALUE k 0 1\r\na\r\nEND\r\n");
  clock_.Shift(100);
  EXPECT_EQ(Send("get k\r\n"), "VALUE k 0 1\r\na\r\nEND\r\n");  // gat 0: never expires
  EXPECT_EQ(Send("touch nope 1\r\n"), "NOT_FOUND\r\n");
}

// memcached's replies; without a server's governor the session sets the store's limit itself.
TEST_F(SessionTest, CacheMemlimit) {
  EXPECT_EQ(Send("cache_memlimit 7\r\n"),
            "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n");
  EXPECT_EQ(Send("cache_memlimit 1000000001\r\n"),
            "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n");
  EXPECT_EQ(Send("cache_memlimit -1\r\n"), "ERROR\r\n");
  EXPECT_EQ(Send("cache_memlimit 7 noreply\r\nversion\r\n").substr(0, 8), "VERSION ");
  EXPECT_EQ(Send("cache_memlimit 16\r\n"), "OK\r\n");
  EXPECT_EQ(store_->GetStats().memory_limit, size_t{16} << 20);
  EXPECT_EQ(Send("cache_memlimit 100 noreply\r\nversion\r\n").substr(0, 8), "VERSION ");
  EXPECT_EQ(store_->GetStats().memory_limit, size_t{32} << 20);  // at most what it opened with
}

TEST_F(SessionTest, DebugTimeOnlyWhenEnabled) {
  EXPECT_EQ(Send("debugtime 5\r\n"), "ERROR\r\n");
  ServerOptions o;
  o.debugtime_enabled = true;
  Open(o);
  EXPECT_EQ(Send("set k 0 3 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("debugtime 5\r\n"), "OK\r\n");
  EXPECT_EQ(Send("get k\r\n"), "END\r\n");
  // p/r pause and resume the clock: a paused clock moves only by debugtime <seconds>.
  EXPECT_EQ(Send("debugtime p\r\n"), "OK\r\n");
  const int64_t frozen = clock_.NowSeconds();
  EXPECT_EQ(Send("debugtime 7\r\n"), "OK\r\n");
  EXPECT_EQ(clock_.NowSeconds(), frozen + 7);
  EXPECT_EQ(Send("debugtime r\r\n"), "OK\r\n");
  EXPECT_GE(clock_.NowSeconds(), frozen + 7);
}

TEST_F(SessionTest, FlushAll) {
  EXPECT_EQ(Send("set k 0 0 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("flush_all\r\n"), "OK\r\n");
  EXPECT_EQ(Send("get k\r\n"), "END\r\n");
  ServerOptions o;
  o.flush_enabled = false;
  Open(o);
  EXPECT_EQ(Send("flush_all\r\n").rfind("CLIENT_ERROR", 0), 0u);
}

TEST_F(SessionTest, TooLargeValueIsSwallowedAcrossInputs) {
  std::string big(2 << 20, 'x');
  std::string line = "set big 0 0 " + std::to_string(big.size()) + "\r\n";
  std::string replies = Send(line);
  for (size_t i = 0; i < big.size(); i += 100000) replies += Send(big.substr(i, 100000));
  replies += Send("\r\nget big\r\n");
  EXPECT_EQ(replies, "SERVER_ERROR object too large for cache\r\nEND\r\n");
}

TEST_F(SessionTest, LargeValuesAreSentByReference) {
  std::string value(10000, 'v');
  EXPECT_EQ(Send("set big 0 0 10000\r\n" + value + "\r\n"), "STORED\r\n");
  pending_ = "get big\r\n";
  net::SessionResult r = session_->OnInput(pending_, &out_, 1 << 20);
  EXPECT_EQ(r.consumed, pending_.size());
  EXPECT_EQ(out_.references(), 1u);
  pending_.clear();
  out_.Flush();
  EXPECT_EQ(out_.Take(), "VALUE big 0 10000\r\n" + value + "\r\nEND\r\n");
}

TEST_F(SessionTest, QuitClosesAndErrorsKeepGoing) {
  EXPECT_EQ(Send("bogus\r\nversion\r\n").substr(0, 15), "ERROR\r\nVERSION ");
  Send("quit\r\n");
  EXPECT_TRUE(closed_);
}

// One version string: `version` and `stats` both print common/version.h's, memcached's first.
TEST_F(SessionTest, VersionAndStatsReportTheSameVersion) {
  std::string version(kServerVersion);
  EXPECT_EQ(version.rfind(kMemcachedVersion, 0), 0u) << version;
  EXPECT_EQ(version.substr(version.size() - kCinchVersion.size()), kCinchVersion) << version;
  EXPECT_EQ(Send("version\r\n"), "VERSION " + version + "\r\n");
  std::string stats = Send("stats\r\n");
  EXPECT_NE(stats.find("STAT version " + version + "\r\n"), std::string::npos) << stats;
}

TEST_F(SessionTest, StatsReportItems) {
  Send("set a 0 0 1\r\n1\r\nget a\r\nget b\r\n");
  std::string stats = Send("stats\r\n");
  EXPECT_NE(stats.find("STAT curr_items 1\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("STAT get_hits 1\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("STAT get_misses 1\r\n"), std::string::npos) << stats;
  EXPECT_EQ(stats.substr(stats.size() - 5), "END\r\n");
  std::string mem = Send("stats cinch\r\n");
  EXPECT_NE(mem.find("STAT index_bytes "), std::string::npos) << mem;
  EXPECT_NE(Send("stats settings\r\n").find("STAT item_size_max "), std::string::npos);
  // memcached's answers without slab classes to list or a size histogram kept.
  EXPECT_EQ(Send("stats sizes\r\n"), "STAT sizes_status disabled\r\nEND\r\n");
  EXPECT_EQ(Send("stats slabs\r\n"), "END\r\n");
  EXPECT_EQ(Send("stats items\r\n"), "END\r\n");
}

TEST_F(SessionTest, MetaCommands) {
  EXPECT_EQ(Send("ms mk 2 T0 F7\r\nhi\r\n"), "HD\r\n");
  EXPECT_EQ(Send("mg mk v f s k Oab\r\n"), "VA 2 f7 s2 kmk Oab\r\nhi\r\n");
  EXPECT_EQ(Send("mg missing v\r\n"), "EN\r\n");
  EXPECT_EQ(Send("mg missing v q\r\nmn\r\n"), "MN\r\n");
  EXPECT_EQ(Send("ms mk 1 MA\r\n!\r\n"), "HD\r\n");
  EXPECT_EQ(Send("mg mk v\r\n"), "VA 3\r\nhi!\r\n");
  EXPECT_EQ(Send("ma cnt\r\n"), "NF\r\n");
  EXPECT_EQ(Send("ma cnt N0 J10 v\r\n"), "VA 2\r\n10\r\n");
  EXPECT_EQ(Send("ma cnt D5 v\r\n"), "VA 2\r\n15\r\n");
  EXPECT_EQ(Send("ma cnt MD D20 v\r\n"), "VA 1\r\n0\r\n");
  EXPECT_EQ(Send("md mk q\r\nmd mk\r\n"), "NF\r\n");
  // base64 key "Zm9v" is "foo"
  EXPECT_EQ(Send("ms Zm9v 1 b\r\nz\r\n"), "HD\r\n");
  EXPECT_EQ(Send("get foo\r\n"), "VALUE foo 0 1\r\nz\r\nEND\r\n");
}

TEST_F(SessionTest, MetaCasCompare) {
  EXPECT_EQ(Send("ms k 1\r\na\r\n"), "HD\r\n");
  std::string got = Send("mg k c\r\n");
  ASSERT_EQ(got.rfind("HD c", 0), 0u) << got;
  std::string cas = got.substr(4, got.size() - 6);
  EXPECT_EQ(Send("ms k 1 C" + cas + "\r\nb\r\n"), "HD\r\n");
  EXPECT_EQ(Send("ms k 1 C" + cas + "\r\nc\r\n"), "EX\r\n");
  EXPECT_EQ(Send("md k C" + cas + "\r\n"), "EX\r\n");
}

// Found by tests/integration/differential_random.py against memcached 1.6.18.
TEST_F(SessionTest, GatWithAnExptimeAlreadyPastAnswersThenExpires) {
  EXPECT_EQ(Send("set k 0 0 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("gat 2592001 k\r\n"), "VALUE k 0 1\r\na\r\nEND\r\n");  // 1970: past
  EXPECT_EQ(Send("get k\r\n"), "END\r\n");
  EXPECT_EQ(Send("set k 0 0 1\r\na\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("gats -1 k\r\n").rfind("VALUE k 0 1 ", 0), 0u);
  EXPECT_EQ(Send("get k\r\n"), "END\r\n");
}

TEST_F(SessionTest, MetaArithmeticReadsTtlFlagsInOrder) {
  EXPECT_EQ(Send("ma a v t N1000\r\n"), "VA 1 t-1\r\n0\r\n");  // t before N: no TTL yet
  EXPECT_EQ(Send("mg a t\r\n"), "HD t1000\r\n");
  EXPECT_EQ(Send("ma b N1000 t\r\n"), "HD t1000\r\n");
  EXPECT_EQ(Send("ma c N-1 T100\r\n"), "HD\r\n");  // the last of N and T wins
  EXPECT_EQ(Send("mg c t\r\n"), "HD t100\r\n");
  EXPECT_EQ(Send("ma d T100 N-1\r\n"), "HD\r\n");
  EXPECT_EQ(Send("mg d t\r\n"), "EN\r\n");
  EXPECT_EQ(Send("ma c N50 t\r\n"), "HD t100\r\n");  // N only for an item it creates
}

TEST_F(SessionTest, MetaArithmeticTtlIsNotAnAccess) {
  EXPECT_EQ(Send("set n 0 0 1\r\n1\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("ma n T100\r\n"), "HD\r\n");
  EXPECT_EQ(Send("mg n h t\r\n"), "HD h0 t100\r\n");
  EXPECT_EQ(Send("ma m N0 J1\r\n"), "HD\r\n");
  EXPECT_EQ(Send("mg m h\r\n"), "HD h0\r\n");
}

// memcached increments in place when the number fits the value, else into a new item: that
// one starts without the old one's item flags, and ma's T changes the replaced item.
TEST_F(SessionTest, ArithmeticGrowingTheValueMakesANewItem) {
  EXPECT_EQ(Send("set s 0 0 2\r\n10\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("md s I\r\n"), "HD\r\n");
  EXPECT_EQ(Send("incr s 1\r\n"), "11\r\n");
  EXPECT_EQ(Send("mg s\r\n"), "HD X W\r\n");  // in place: still stale
  EXPECT_EQ(Send("md s I\r\n"), "HD\r\n");
  EXPECT_EQ(Send("incr s 100\r\n"), "111\r\n");
  EXPECT_EQ(Send("mg s h\r\n"), "HD h0\r\n");  // a new item: fresh
  EXPECT_EQ(Send("set n 0 0 1\r\n9\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("ma n T100 t\r\n"), "HD t100\r\n");
  EXPECT_EQ(Send("mg n t\r\n"), "HD t-1\r\n");
  EXPECT_EQ(Send("ma n T100\r\n"), "HD\r\n");  // 11: fits
  EXPECT_EQ(Send("mg n t\r\n"), "HD t100\r\n");
}

TEST_F(SessionTest, MetaArithmeticTtlOnAStaleItemHandsOutNoToken) {
  EXPECT_EQ(Send("set s 0 0 2\r\n10\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("md s I\r\n"), "HD\r\n");
  EXPECT_EQ(Send("ma s T100\r\n"), "HD\r\n");
  EXPECT_EQ(Send("mg s\r\n"), "HD X W\r\n");
}

TEST_F(SessionTest, MetaArithmeticChecksForAnEmptyValueBeforeTheCas) {
  EXPECT_EQ(Send("set e 0 0 0\r\n\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("ma e C1\r\n"),
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  EXPECT_EQ(Send("set x 0 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_EQ(Send("ma x C1\r\n"), "EX\r\n");
}

TEST_F(SessionTest, MetaSetInvalidateWithCasZeroIsNoStaleStore) {
  EXPECT_EQ(Send("ms k 1\r\na\r\n"), "HD\r\n");
  EXPECT_EQ(Send("ms k 1 I C0\r\nb\r\n"), "EX\r\n");
  EXPECT_EQ(Send("mg k v\r\n"), "VA 1\r\na\r\n");
  EXPECT_EQ(Send("ms k 1 I C1\r\nc\r\n"), "HD\r\n");  // lower: stored as stale
  EXPECT_EQ(Send("mg k v\r\n"), "VA 1 X W\r\nc\r\n");
}

// A get line naming one large value many times is answered in steps of the output limit: the
// session stops at a key, the connection writes, the session takes the line up again there.
TEST_F(SessionTest, LongGetLineStopsAtTheOutputLimit) {
  const std::string value(64 * 1024, 'v');
  ASSERT_EQ(Send("set big 7 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n"),
            "STORED\r\n");
  constexpr int kRepeats = 1000;
  std::string line = "get";
  for (int i = 0; i < kRepeats; ++i) line += " big";
  line += " missing\r\nversion\r\n";
  const size_t limit = 256 * 1024;
  std::string input = line, replies;
  size_t max_pending = 0, calls = 0;
  while (!input.empty()) {
    net::SessionResult r = session_->OnInput(input, &out_, limit);
    ASSERT_FALSE(r.close);
    ASSERT_GT(r.consumed, 0u);
    input.erase(0, r.consumed);
    max_pending = std::max(max_pending, out_.pending());
    out_.Flush();  // written: the pins go back
    replies += out_.Take();
    ++calls;
  }
  EXPECT_LE(max_pending, limit + value.size() + 64);
  EXPECT_GE(calls, kRepeats * value.size() / (limit + value.size()));
  std::string want;
  for (int i = 0; i < kRepeats; ++i) want += "VALUE big 7 65536\r\n" + value + "\r\n";
  want += "END\r\nVERSION ";
  ASSERT_EQ(replies.substr(0, want.size()), want);
  EXPECT_EQ(replies.find("END", want.size()), std::string::npos);  // one END, at the end
}

// The file tier: a request naming a key whose item is on file does not run on the worker. The
// session waits (SessionResult::wait, nothing consumed) while the I/O thread promotes the key,
// and once resumed runs the request, parsed before, on the same input.
class FileTierSessionTest : public SessionTest {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/cinch-session-tier-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ServerOptions o;
    o.store.segment_size = 64 * 1024;
    o.store.tier_files.push_back({dir_ + "/tier", 8 << 20});
    o.store.space_wait_ms = 20;  // a promotion without memory gives up soon
    Open(o, 2 << 20);
    promoter_ = std::make_unique<TierPromoter>(store_.get(), 1);
    context_->promoter = promoter_.get();
    session_->SetResumer(&resumer_);
  }
  void TearDown() override {
    SessionTest::TearDown();
    promoter_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  static std::string Value(int i) {
    return std::string(900 + i % 200, static_cast<char>('a' + i % 26));
  }
  // Writes until some items are on file; returns how many keys were written.
  int Fill() {
    int n = 0;
    while (n < 20000 && store_->GetStats().tier_items < 500) {
      std::string v = Value(n);
      EXPECT_EQ(Send("set k" + std::to_string(n) + " " + std::to_string(n) + " 0 " +
                     std::to_string(v.size()) + "\r\n" + v + "\r\n"),
                "STORED\r\n");
      ++n;
    }
    return n;
  }
  int OnFile(int written) {
    for (int i = 0; i < written; ++i) {
      if (store_->InFileTier(Keyspace{}, "k" + std::to_string(i))) return i;
    }
    return -1;
  }
  // Runs `request` as the connection would: waits for the resume when the session waits.
  std::string SendWaiting(const std::string& request, bool* waited) {
    pending_ = request;
    *waited = false;
    std::string replies;
    while (!pending_.empty()) {
      const int before = resumer_.resumes.load();
      net::SessionResult r = session_->OnInput(pending_, &out_, 1 << 20);
      pending_.erase(0, r.consumed);
      if (r.wait) {
        EXPECT_EQ(r.consumed, 0u);
        *waited = true;
        for (int i = 0; i < 10000 && resumer_.resumes.load() == before; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_EQ(resumer_.resumes.load(), before + 1);
        continue;
      }
      if (r.consumed == 0) break;
    }
    out_.Flush();
    return out_.Take();
  }

  std::string dir_;
  std::unique_ptr<TierPromoter> promoter_;
  test::CountingResumer resumer_;
};

TEST_F(FileTierSessionTest, GetOfAFileItemWaitsThenAnswers) {
  const int written = Fill();
  const int i = OnFile(written);
  ASSERT_GE(i, 0) << "nothing went to the file";
  const std::string key = "k" + std::to_string(i);
  bool waited = false;
  const std::string v = Value(i);
  EXPECT_EQ(SendWaiting("get " + key + "\r\n", &waited), "VALUE " + key + " " + std::to_string(i) +
                                                             " " + std::to_string(v.size()) +
                                                             "\r\n" + v + "\r\nEND\r\n");
  EXPECT_TRUE(waited);
  EXPECT_FALSE(store_->InFileTier(Keyspace{}, key)) << "promoted";
  EXPECT_GE(store_->GetStats().tier_promotions, 1u);
  // In memory now: no wait.
  EXPECT_EQ(SendWaiting("get " + key + "\r\n", &waited).substr(0, 6), "VALUE ");
  EXPECT_FALSE(waited);
  Counters c = context_->counters.Sum();
  EXPECT_EQ(c.tier_waits, 1u);
}

TEST_F(FileTierSessionTest, EveryKeyedCommandWaitsForTheFile) {
  const int written = Fill();
  const std::vector<std::string> commands = {
      "set @ 0 0 1\r\nx\r\n", "delete @\r\n",   "touch @ 100\r\n", "mg @ v\r\n",
      "md @ q\r\nmn\r\n",     "gets a @ b\r\n", "incr @ 1\r\n",    "me @\r\n"};
  int from = 0;
  for (const std::string& command : commands) {
    int i = -1;
    for (int j = from; j < written && i < 0; ++j) {
      if (store_->InFileTier(Keyspace{}, "k" + std::to_string(j))) i = j;
    }
    if (i < 0) break;  // ran out of file items: what ran is checked
    from = i + 1;
    std::string request = command;
    request.replace(request.find('@'), 1, "k" + std::to_string(i));
    bool waited = false;
    std::string reply = SendWaiting(request, &waited);
    EXPECT_TRUE(waited) << request;
    EXPECT_FALSE(reply.empty()) << request;
    EXPECT_EQ(reply.find("SERVER_ERROR"), std::string::npos) << request << reply;
    EXPECT_NE(reply, "ERROR\r\n") << request;
  }
  EXPECT_EQ(context_->counters.Sum().tier_sync_reads, 0u);
}

// An item on file that no memory can be found to read back into (every RAM segment pinned by
// readers here) is kept, and its get answers as memcached's does when an extstore read finds
// no memory: the other keys' values, then SERVER_ERROR in place of END.
TEST_F(FileTierSessionTest, GetOfAFileItemWithoutMemoryIsAnErrorAndKeepsIt) {
  const int written = Fill();
  std::vector<ItemRef> held;  // pins every RAM segment, then every item promoted
  int in_ram = -1;
  for (int i = 0; i < written; ++i) {
    const std::string key = "k" + std::to_string(i);
    if (store_->InFileTier(Keyspace{}, key)) continue;
    ItemRef ref;
    if (!store_->Get(key, &ref)) continue;
    held.push_back(std::move(ref));
    in_ram = i;
  }
  ASSERT_GE(in_ram, 0);
  int refused = -1;
  for (int i = 0; i < written && refused < 0; ++i) {
    const std::string key = "k" + std::to_string(i);
    if (!store_->InFileTier(Keyspace{}, key)) continue;
    ItemRef ref;
    Miss miss = Miss::kNone;
    if (store_->Get(Keyspace{}, key, &ref, false, &miss)) {
      held.push_back(std::move(ref));
    } else if (miss == Miss::kNoMemory) {
      refused = i;
    }
  }
  ASSERT_GE(refused, 0) << "every item on file was promoted";
  const std::string key = "k" + std::to_string(refused);
  const std::string ram_key = "k" + std::to_string(in_ram);
  const std::string v = Value(in_ram);
  bool waited = false;
  EXPECT_EQ(SendWaiting("get " + ram_key + " " + key + "\r\n", &waited),
            "VALUE " + ram_key + " " + std::to_string(in_ram) + " " + std::to_string(v.size()) +
                "\r\n" + v + "\r\nSERVER_ERROR out of memory writing get response\r\n");
  EXPECT_EQ(SendWaiting("mg " + key + " v q\r\nmn\r\n", &waited),
            "SERVER_ERROR out of memory writing get response\r\nMN\r\n");
  EXPECT_TRUE(store_->InFileTier(Keyspace{}, key));
  const std::string stats = SendWaiting("stats\r\n", &waited);
  EXPECT_EQ(stats.find("STAT get_oom_extstore 0\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("STAT get_oom_extstore "), std::string::npos) << stats;
  EXPECT_EQ(store_->GetStats().tier_evictions, 0u);
  held.clear();
  const std::string kept = Value(refused);
  EXPECT_EQ(SendWaiting("get " + key + "\r\n", &waited),
            "VALUE " + key + " " + std::to_string(refused) + " " + std::to_string(kept.size()) +
                "\r\n" + kept + "\r\nEND\r\n");
}

// A key dump meets items on file: the stretches holding them are listed on the I/O thread (the
// session waits), and they stay on file.
TEST_F(FileTierSessionTest, MetadumpListsItemsOnFileOnTheIoThread) {
  const int written = Fill();
  const int on_file = static_cast<int>(store_->GetStats().tier_items);
  ASSERT_GT(on_file, 0);
  const uint64_t promotions = store_->GetStats().tier_promotions;
  bool waited = false;
  const std::string replies = SendWaiting("lru_crawler metadump all\r\n", &waited);
  EXPECT_TRUE(waited);
  std::set<std::string> keys;
  size_t pos = 0;
  for (size_t nl; (nl = replies.find('\n', pos)) != std::string::npos && replies[pos] == 'k';
       pos = nl + 1) {
    EXPECT_TRUE(keys.insert(replies.substr(pos + 4, replies.find(' ', pos) - pos - 4)).second);
  }
  EXPECT_EQ(replies.substr(pos), "END\r\n");
  EXPECT_EQ(keys.size(), static_cast<size_t>(written));
  EXPECT_TRUE(keys.count("k0"));
  EXPECT_EQ(store_->GetStats().tier_promotions, promotions);
  // Nothing was brought back (the dump's own memory may have sent more to the file).
  EXPECT_GE(store_->GetStats().tier_items, static_cast<uint64_t>(on_file));
  EXPECT_GE(context_->counters.Sum().tier_waits, 1u);
}

// -Y: memcached's text authentication, then every command in the user's keyspace.
class AuthSessionTest : public SessionTest {
 protected:
  void SetUp() override {
    SessionTest::SetUp();
    std::vector<AuthEntry> entries;
    ASSERT_TRUE(ParseAuthFile("alice:secret\nbob:pw\nten1:t1:8\nten2:t2:8\n", &entries).ok());
    ASSERT_TRUE(users_.Load(entries).ok());
    context_->users = &users_;
  }
  // A new connection (the same store and users).
  void Reconnect() {
    out_.Flush();
    session_ = std::make_unique<MemcacheSession>(context_.get());
    pending_.clear();
    closed_ = false;
  }
  std::string Login(std::string_view user, std::string_view password) {
    std::string data = std::string(user) + " " + std::string(password);
    return Send("set auth 0 0 " + std::to_string(data.size()) + "\r\n" + data + "\r\n");
  }

  UserTable users_;
};

TEST_F(AuthSessionTest, NothingBeforeAuthentication) {
  for (std::string_view c : {"get k\r\n", "version\r\n", "stats\r\n", "mg k v\r\n", "mn\r\n",
                             "quit\r\n", "flush_all\r\n", "bogus\r\n"}) {
    EXPECT_EQ(Send(c), "CLIENT_ERROR unauthenticated\r\n") << c;
    EXPECT_FALSE(closed_) << c;
  }
  // A pipeline: one reply each, and the data line of a refused storage command is a line too.
  EXPECT_EQ(Send("add k 0 0 12\r\nalice secret\r\n"),
            "CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n");
  EXPECT_EQ(Login("alice", "wrong"), "CLIENT_ERROR authentication failure\r\n");
  EXPECT_EQ(Login("alice", ""), "CLIENT_ERROR bad authentication token format\r\n");
  EXPECT_EQ(Send("get k\r\n"), "CLIENT_ERROR unauthenticated\r\n");
  Counters c = context_->counters.Sum();
  EXPECT_EQ(c.auth_cmds, 1u);
  EXPECT_EQ(c.auth_errors, 1u);
  EXPECT_EQ(c.cmd_get, 0u);
}

TEST_F(AuthSessionTest, AuthenticatedSessionRunsCommands) {
  EXPECT_EQ(Send("set auth 0 0 12\r\nalice secret\r\nset k 0 0 1\r\nv\r\nget k auth\r\n"),
            "STORED\r\nSTORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n");         // nothing stored by auth
  EXPECT_EQ(Send("set auth 0 0 11\r\nalice wrong\r\n"), "STORED\r\n");  // an ordinary set now
  EXPECT_EQ(context_->counters.Sum().auth_cmds, 1u);
}

TEST_F(AuthSessionTest, TenantsHaveTheirOwnKeyspaces) {
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  EXPECT_EQ(Send("set k 0 0 2\r\nt1\r\nms m 2\r\nm1\r\n"), "STORED\r\nHD\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten2", "t2"), "STORED\r\n");
  EXPECT_EQ(Send("get k\r\nmg m v\r\n"), "END\r\nEN\r\n");
  EXPECT_EQ(Send("set k 0 0 2\r\nt2\r\nincr k 1\r\n"),
            "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
  Reconnect();
  ASSERT_EQ(Login("alice", "secret"), "STORED\r\n");
  EXPECT_EQ(Send("set k 0 0 1\r\nd\r\n"), "STORED\r\n");
  Reconnect();
  ASSERT_EQ(Login("bob", "pw"), "STORED\r\n");  // no quota: the default keyspace, alice's
  EXPECT_EQ(Send("get k\r\n"), "VALUE k 0 1\r\nd\r\nEND\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  EXPECT_EQ(Send("get k\r\nmg m v\r\ndelete k\r\n"),
            "VALUE k 0 2\r\nt1\r\nEND\r\nVA 2\r\nm1\r\nDELETED\r\n");
  const uint16_t id = users_.Authenticate("ten2", "t2")->keyspace.id;
  ItemRef ref;
  ASSERT_TRUE(store_->Peek(Keyspace{id}, "k", &ref));
  EXPECT_EQ(ref.value(), "t2");
}

// A key dump lists the connection's keyspace only.
TEST_F(AuthSessionTest, TenantsDumpTheirOwnKeys) {
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  EXPECT_EQ(Send("set mine 0 0 1\r\n1\r\n"), "STORED\r\n");
  Reconnect();
  ASSERT_EQ(Login("alice", "secret"), "STORED\r\n");
  EXPECT_EQ(Send("set shared 0 0 1\r\n2\r\n"), "STORED\r\n");
  const std::string dump = Send("lru_crawler metadump all\r\n");
  EXPECT_EQ(dump.substr(0, 11), "key=shared ") << dump;
  EXPECT_EQ(dump.find("mine"), std::string::npos) << dump;
  Reconnect();
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  EXPECT_EQ(Send("stats cachedump 1 0\r\n"), "ITEM mine [1 b; 0 s]\r\nEND\r\n");
}

// A tenant's flush_all flushes its own keyspace, and its stats are its keyspace's figures;
// with an auth file, a default-keyspace user's flush_all leaves the tenants' items.
TEST_F(AuthSessionTest, TenantsFlushAndStatsTheirOwn) {
  const uint16_t ten1 = users_.Authenticate("ten1", "t1")->keyspace.id;
  store_->SetKeyspaceQuota(Keyspace{ten1}, 8 << 20);
  ASSERT_EQ(Login("alice", "secret"), "STORED\r\n");
  ASSERT_EQ(Send("set a 0 0 1\r\na\r\n"), "STORED\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten2", "t2"), "STORED\r\n");
  ASSERT_EQ(Send("set b 0 0 1\r\nb\r\n"), "STORED\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  ASSERT_EQ(Send("set x 0 0 3\r\nxyz\r\nset y 0 0 1\r\ny\r\nget x nope\r\n"),
            "STORED\r\nSTORED\r\nVALUE x 0 3\r\nxyz\r\nEND\r\n");
  std::string stats = Send("stats\r\n");
  EXPECT_NE(stats.find("STAT curr_items 2\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("STAT limit_maxbytes 8388608\r\n"), std::string::npos) << stats;
  EXPECT_NE(stats.find("STAT get_hits 1\r\nSTAT get_misses 1\r\n"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("STAT curr_connections"), std::string::npos) << stats;
  EXPECT_EQ(Send("stats settings\r\nstats cinch\r\n"), "END\r\nEND\r\n");
  EXPECT_EQ(Send("flush_all\r\nget x y\r\nstats\r\n").find("END\r\nSTAT pid"), 4u);
  EXPECT_EQ(store_->GetKeyspaceStats(Keyspace{ten1}).flushes, 1u);
  Reconnect();
  ASSERT_EQ(Login("ten2", "t2"), "STORED\r\n");
  EXPECT_EQ(Send("get b\r\n"), "VALUE b 0 1\r\nb\r\nEND\r\n");
  Reconnect();
  ASSERT_EQ(Login("bob", "pw"), "STORED\r\n");
  EXPECT_EQ(Send("get a\r\nflush_all\r\nget a\r\n"), "VALUE a 0 1\r\na\r\nEND\r\nOK\r\nEND\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten2", "t2"), "STORED\r\n");
  EXPECT_EQ(Send("get b\r\n"), "VALUE b 0 1\r\nb\r\nEND\r\n");
}

// The server's log level is the operator's: a tenant's verbosity command is answered and
// changes nothing; a default-keyspace user's sets it, as without an auth file.
TEST_F(AuthSessionTest, OnlyTheDefaultKeyspaceSetsVerbosity) {
  log::SetVerbosity(0);
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  EXPECT_EQ(Send("verbosity 2\r\n"), "OK\r\n");
  EXPECT_EQ(log::Verbosity(), 0);
  Reconnect();
  ASSERT_EQ(Login("alice", "secret"), "STORED\r\n");
  EXPECT_EQ(Send("verbosity 2\r\n"), "OK\r\n");
  EXPECT_EQ(log::Verbosity(), 2);
  log::SetVerbosity(0);  // the process's level: leave it as the other tests expect
}

// A tenant's "stats reset" resets its own counters only: the server's, which the operator and
// the default keyspace's users see, and the other tenants' stay.
TEST_F(AuthSessionTest, TenantStatsResetIsItsOwn) {
  for (const char* user : {"ten1", "ten2"}) {  // as the server's ApplyQuotas does
    const std::string password = std::string("t") + user[3];
    store_->SetKeyspaceQuota(users_.Authenticate(user, password)->keyspace, 8 << 20);
  }
  ASSERT_EQ(Login("alice", "secret"), "STORED\r\n");
  ASSERT_EQ(Send("get a b\r\n"), "END\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten2", "t2"), "STORED\r\n");
  ASSERT_EQ(Send("get c\r\n"), "END\r\n");
  Reconnect();
  ASSERT_EQ(Login("ten1", "t1"), "STORED\r\n");
  ASSERT_EQ(Send("set x 0 0 1\r\nx\r\nget x y\r\n"), "STORED\r\nVALUE x 0 1\r\nx\r\nEND\r\n");
  const uint64_t server_gets = context_->counters.Sum().cmd_get;
  EXPECT_EQ(Send("stats reset\r\n"), "RESET\r\n");
  std::string stats = Send("stats\r\n");
  EXPECT_NE(stats.find("STAT cmd_get 0\r\nSTAT get_hits 0\r\nSTAT get_misses 0\r\n"),
            std::string::npos)
      << stats;
  EXPECT_NE(stats.find("STAT curr_items 1\r\n"), std::string::npos) << stats;  // not a counter
  EXPECT_EQ(context_->counters.Sum().cmd_get, server_gets);
  ASSERT_EQ(Send("get x\r\n"), "VALUE x 0 1\r\nx\r\nEND\r\n");
  EXPECT_NE(Send("stats\r\n").find("STAT cmd_get 1\r\nSTAT get_hits 1\r\nSTAT get_misses 0\r\n"),
            std::string::npos);
  Reconnect();
  ASSERT_EQ(Login("ten2", "t2"), "STORED\r\n");
  EXPECT_NE(Send("stats\r\n").find("STAT cmd_get 1\r\nSTAT get_hits 0\r\nSTAT get_misses 1\r\n"),
            std::string::npos);
  Reconnect();
  ASSERT_EQ(Login("bob", "pw"), "STORED\r\n");
  EXPECT_EQ(Send("stats reset\r\n"), "RESET\r\n");  // a default-keyspace user's: the server's
  EXPECT_EQ(context_->counters.Sum().cmd_get, 0u);
}

TEST_F(AuthSessionTest, ReloadRevokesOnlyRemovedUsers) {
  EXPECT_TRUE(session_->StillAllowed());  // not authenticated: nothing to revoke
  ASSERT_EQ(Login("bob", "pw"), "STORED\r\n");
  auto alice = std::make_unique<MemcacheSession>(context_.get());
  FakeOutput alice_out;
  alice->OnInput("set a 0 0 12\r\nalice secret\r\n", &alice_out, 1 << 20);
  ASSERT_EQ(alice_out.Take(), "STORED\r\n");
  std::vector<AuthEntry> entries;
  ASSERT_TRUE(ParseAuthFile("alice:secret\ncarol:new\n", &entries).ok());
  ASSERT_TRUE(users_.Load(entries).ok());
  EXPECT_FALSE(session_->StillAllowed());
  EXPECT_TRUE(alice->StillAllowed());
}

}  // namespace
}  // namespace cinch::server
