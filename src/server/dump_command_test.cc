// Key dumps: "lru_crawler metadump" and "stats cachedump" on a session (dump_command.cc).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "server/session_test_util.h"

namespace cinch::server {
namespace {

class DumpTest : public test::SessionFixture {
 protected:
  std::string Send(std::string_view input) { return SendRaw(input); }

  void Fill(int n, size_t value_size = 10) {
    for (int i = 0; i < n; ++i) {
      std::string key = "key" + std::to_string(i);
      ASSERT_EQ(store_->Set(key, std::string(value_size, 'v'), static_cast<uint32_t>(i)),
                Outcome::kStored);
    }
  }

  // Runs `input` on `session` with an output limit of `limit`, draining the output between
  // calls as a connection does; returns everything written and the most ever pending.
  static std::string Drain(MemcacheSession* session, std::string input, size_t limit,
                           size_t* max_pending = nullptr, int* calls = nullptr) {
    test::FakeOutput out;
    std::string replies;
    int n = 0;
    while (!input.empty()) {
      net::SessionResult r = session->OnInput(input, &out, limit);
      EXPECT_FALSE(r.wait || r.close);
      input.erase(0, r.consumed);
      if (max_pending != nullptr) *max_pending = std::max(*max_pending, out.pending());
      out.Flush();
      replies += out.Take();
      if (++n > 1'000'000 || (r.consumed == 0 && replies.empty())) break;
    }
    if (calls != nullptr) *calls = n;
    return replies;
  }

  // A keyspace with few items in a large index: the dump yields (resumes itself and waits) each
  // time a turn has read as much of the index as one ListItems call may, so that the worker serves
  // its other connections meanwhile; it still lists every item once. `mine` items among 200,000
  // of another keyspace; returns the number of waits.
  int SparseDump(int mine) {
    test::CountingResumer& resumer = resumer_;
    session_->SetResumer(&resumer);
    for (int i = 0; i < 200'000; ++i) {
      EXPECT_EQ(store_->Write(Keyspace{5}, SetMode::kSet, "t" + std::to_string(i), "v", 0, 0, 0),
                Outcome::kStored);
    }
    for (int i = 0; i < mine; ++i)
      EXPECT_EQ(store_->Set("key" + std::to_string(i), "v"), Outcome::kStored);
    std::string input = "lru_crawler metadump all\r\nmn\r\n";
    test::FakeOutput out;
    std::string replies;
    int waits = 0;
    for (int calls = 0; !input.empty() && calls < 10'000; ++calls) {
      const int before = resumer.resumes.load();
      net::SessionResult r = session_->OnInput(input, &out, 1 << 20);
      input.erase(0, r.consumed);
      if (r.wait) {
        EXPECT_EQ(r.consumed, 0u);
        EXPECT_EQ(resumer.resumes.load(), before + 1) << "a yield resumes itself, once";
        ++waits;
      } else {
        EXPECT_EQ(resumer.resumes.load(), before);
      }
      out.Flush();
      replies += out.Take();
    }
    EXPECT_EQ(replies.substr(replies.size() - 9), "END\r\nMN\r\n");
    const std::map<std::string, std::string> lines = Lines(replies.substr(0, replies.size() - 4));
    EXPECT_EQ(lines.size(), static_cast<size_t>(mine));
    for (int i = 0; i < mine; ++i) EXPECT_EQ(lines.count("key" + std::to_string(i)), 1u) << i;
    EXPECT_EQ(store_->GetStats().external_bytes, 0u);
    return waits;
  }

  // The metadump lines of `replies` by key (URI-encoded), checking each appears once.
  static std::map<std::string, std::string> Lines(const std::string& replies) {
    std::map<std::string, std::string> lines;
    size_t pos = 0;
    while (pos < replies.size() && replies.compare(pos, 4, "key=") == 0) {
      size_t nl = replies.find('\n', pos);
      std::string line = replies.substr(pos, nl - pos);
      std::string key = line.substr(4, line.find(' ') - 4);
      EXPECT_TRUE(lines.emplace(key, line).second) << "twice: " << key;
      pos = nl + 1;
    }
    EXPECT_EQ(replies.substr(pos, 5), "END\r\n");
    return lines;
  }

  test::CountingResumer resumer_;
};

TEST_F(DumpTest, MetadumpListsEveryItemAsMemcachedDoes) {
  clock_.Shift(1'800'000'000 - clock_.NowSeconds());
  const int64_t now = clock_.NowSeconds();
  ASSERT_EQ(Send("set a 0 0 1\r\nx\r\nset b%20c 3 100 2\r\nyy\r\nget a\r\n"),
            "STORED\r\nSTORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  const std::string replies = Send("lru_crawler metadump all\r\n");
  std::map<std::string, std::string> lines = Lines(replies);
  ASSERT_EQ(lines.size(), 2u) << replies;
  ItemRef a, b;
  ASSERT_TRUE(store_->Peek("a", &a, true));
  ASSERT_TRUE(store_->Peek("b%20c", &b, true));
  EXPECT_EQ(lines["a"], "key=a exp=-1 la=" + std::to_string(now) +
                            " cas=" + std::to_string(a.cas()) + " fetch=yes cls=1 size=2");
  EXPECT_EQ(lines["b%2520c"], "key=b%2520c exp=" + std::to_string(now + 100) +
                                  " la=" + std::to_string(now) + " cas=" + std::to_string(b.cas()) +
                                  " fetch=no cls=1 size=7");
  // "hash", and class lists naming class 1, list the same; other classes none.
  EXPECT_EQ(Lines(Send("lru_crawler metadump hash\r\n")).size(), 2u);
  EXPECT_EQ(Lines(Send("lru_crawler metadump 2,1\r\n")).size(), 2u);
  EXPECT_EQ(Lines(Send("lru_crawler metadump 1,,5\r\n")).size(), 2u);
  EXPECT_EQ(Send("lru_crawler metadump 2,63\r\n"), "END\r\n");
  EXPECT_EQ(Send("lru_crawler metadump 0\r\n"), "BADCLASS invalid class id\r\n");
  EXPECT_EQ(Send("lru_crawler metadump 1,64\r\n"), "BADCLASS invalid class id\r\n");
  EXPECT_EQ(Send("lru_crawler metadump ALL\r\n"), "BADCLASS invalid class id\r\n");
  EXPECT_EQ(Send("lru_crawler metadump ,\r\n"), "NOTSTARTED no items to crawl\r\n");
  EXPECT_EQ(Send("lru_crawler metadump\r\n"), "ERROR\r\n");
  EXPECT_EQ(Send("lru_crawler metadump all x\r\n"), "ERROR\r\n");
  EXPECT_EQ(Send("lru_crawler crawl all\r\n"), "ERROR\r\n");
  // The items were not touched: "a" only was fetched, by its get.
  EXPECT_NE(Send("me b%20c\r\n").find(" fetch=no "), std::string::npos);
  // Pipelined behind another reply: refused, as memcached does.
  EXPECT_EQ(Send("mg a v\r\nlru_crawler metadump all\r\nmn\r\n"),
            "VA 1\r\nx\r\nERROR cannot pipeline other commands before metadump\r\nMN\r\n");
  // Commands after it run after it.
  const std::string then = Send("lru_crawler metadump all\r\nversion\r\n");
  EXPECT_EQ(then.find("END\r\nVERSION "), then.find("END\r\n")) << then;
  // Without CAS (-C): cas=0.
  a.Reset();
  b.Reset();
  ServerOptions no_cas;
  no_cas.cas_enabled = false;
  Open(no_cas);
  ASSERT_EQ(Send("set a 0 0 1\r\nx\r\n"), "STORED\r\n");
  EXPECT_NE(Send("lru_crawler metadump all\r\n").find(" cas=0 "), std::string::npos);
}

TEST_F(DumpTest, CachedumpListsClassOneUpToItsLimit) {
  Fill(10, 3);
  ASSERT_EQ(Send("set e 0 1900000000 2\r\nee\r\n"), "STORED\r\n");
  const std::string all = Send("stats cachedump 1 0\r\n");
  std::set<std::string> lines;
  size_t pos = 0;
  for (size_t nl; (nl = all.find("\r\n", pos)) != std::string::npos; pos = nl + 2) {
    lines.insert(all.substr(pos, nl - pos));
  }
  EXPECT_EQ(lines.size(), 12u) << all;  // 11 items and END
  EXPECT_TRUE(lines.count("ITEM key7 [3 b; 0 s]")) << all;
  EXPECT_TRUE(lines.count("ITEM e [2 b; 1900000000 s]")) << all;
  EXPECT_EQ(all.substr(all.size() - 5), "END\r\n");
  const std::string three = Send("stats cachedump 1 3\r\n");
  EXPECT_EQ(std::count(three.begin(), three.end(), '\n'), 4) << three;
  EXPECT_EQ(Send("stats cachedump 2 0\r\n"), "END\r\n");
  EXPECT_EQ(Send("stats cachedump 0 0\r\n"), "END\r\n");
  EXPECT_EQ(Send("stats cachedump 64 0\r\n"), "CLIENT_ERROR Illegal slab id\r\n");
  EXPECT_EQ(Send("stats cachedump 1\r\n"), "CLIENT_ERROR bad command line\r\n");
  EXPECT_EQ(Send("stats cachedump 1 x\r\n"), "CLIENT_ERROR bad command line format\r\n");
  EXPECT_EQ(Send("stats cachedump -1 0\r\n"), "CLIENT_ERROR bad command line format\r\n");
  // A binary key (ms ... b) is left out, as memcached leaves it: raw, it could forge lines.
  ASSERT_EQ(Send("ms YSBiDQpj 1 b\r\nx\r\n"), "HD\r\n");  // "a b\r\nc"
  EXPECT_EQ(Send("stats cachedump 1 0\r\n"), all);
  EXPECT_NE(Send("lru_crawler metadump all\r\n").find("key=a%20b%0D%0Ac "), std::string::npos);
  // safe_strtoul's 32 bits: 4294967297 is class 1.
  EXPECT_EQ(Send("stats cachedump 4294967297 1\r\n").substr(0, 5), "ITEM ");
}

// A dump of many items through a small output: written as the output drains, never more than
// the limit and a line pending, each item once.
TEST_F(DumpTest, LargeDumpFollowsTheOutputLimit) {
  Fill(20'000);
  const size_t limit = 8 * 1024;
  size_t max_pending = 0;
  int calls = 0;
  const std::string replies =
      Drain(session_.get(), "lru_crawler metadump all\r\nmn\r\n", limit, &max_pending, &calls);
  ASSERT_EQ(replies.substr(replies.size() - 9), "END\r\nMN\r\n");
  EXPECT_EQ(Lines(replies.substr(0, replies.size() - 4)).size(), 20'000u);
  EXPECT_LE(max_pending, limit + 1024);
  EXPECT_GT(calls, 50);
  // The dump's memory was charged while it ran, and is given back.
  EXPECT_EQ(store_->GetStats().external_bytes, 0u);
}

TEST_F(DumpTest, SparseKeyspaceDumpYieldsToOtherConnections) {
  Open(ServerOptions{}, 64 << 20);
  // 200,000 items take as many index slots at least, read 32,768 at most per yield.
  EXPECT_GE(SparseDump(3), 6);
}

// Items enough to fill a batch every few thousand slots: each call fills its batch, and the
// turn still yields once it has read as much of the index as one call may.
TEST_F(DumpTest, ModeratelySparseKeyspaceDumpYieldsToo) {
  Open(ServerOptions{}, 64 << 20);
  EXPECT_GE(SparseDump(1000), 5);
}

// memcached's cachedump writes into a 2 MB buffer: it stops where the next line would not fit,
// with END.
TEST_F(DumpTest, CachedumpStopsAtTwoMegabytes) {
  Fill(100'000, 1);  // lines of 26-28 bytes: 2.6 MB in all
  const std::string big = Drain(session_.get(), "stats cachedump 1 0\r\n", 64 * 1024);
  EXPECT_LE(big.size(), size_t{2} << 20);
  EXPECT_GT(big.size(), (size_t{2} << 20) - 64);
  EXPECT_EQ(big.substr(big.size() - 5), "END\r\n");
}

// One metadump at a time (memcached has one crawler): another connection's is BUSY until the
// first ends, or its client leaves.
TEST_F(DumpTest, OneMetadumpAtATime) {
  Fill(5'000);
  auto other = std::make_unique<MemcacheSession>(context_.get());
  test::FakeOutput first_out;
  std::string input = "lru_crawler metadump all\r\n";
  net::SessionResult r = session_->OnInput(input, &first_out, 4096);  // stops at the limit
  ASSERT_EQ(r.consumed, 0u);
  ASSERT_GT(store_->GetStats().external_bytes, 0u);
  EXPECT_EQ(Drain(other.get(), "lru_crawler metadump all\r\n", 1 << 20),
            "BUSY currently processing crawler request\r\n");
  // A cachedump is no crawler: it runs.
  EXPECT_EQ(Drain(other.get(), "stats cachedump 1 2\r\n", 1 << 20).substr(0, 5), "ITEM ");
  first_out.Flush();
  const std::string rest = first_out.Take() + Drain(session_.get(), input, 4096);
  EXPECT_EQ(Lines(rest).size(), 5'000u);
  EXPECT_EQ(Lines(Drain(other.get(), "lru_crawler metadump all\r\n", 1 << 20)).size(), 5'000u);
  // A client that leaves during its dump ends it.
  test::FakeOutput out;
  r = other->OnInput(input, &out, 4096);
  ASSERT_EQ(r.consumed, 0u);
  out.Flush();
  other.reset();
  EXPECT_EQ(store_->GetStats().external_bytes, 0u);
  EXPECT_EQ(Lines(Send("lru_crawler metadump all\r\n")).size(), 5'000u);
}

}  // namespace
}  // namespace cinch::server
