#include "net/output_queue.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

namespace cinch::net {
namespace {

class LimitBudget final : public MemoryBudget {
 public:
  explicit LimitBudget(size_t limit) : limit_(limit) {}
  bool Charge(size_t bytes) override {
    if (used_ + bytes > limit_) return false;
    used_ += bytes;
    return true;
  }
  void Release(size_t bytes) override { used_ -= bytes; }
  size_t used() const { return used_; }
  void set_limit(size_t limit) { limit_ = limit; }

 private:
  size_t limit_;
  size_t used_ = 0;
};

struct Pair {
  Pair() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
  }
  ~Pair() {
    close(fds[0]);
    close(fds[1]);
  }
  std::string ReadAvailable() {
    std::string out;
    char buf[65536];
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    while (true) {
      ssize_t n = read(fds[1], buf, sizeof(buf));
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  int fds[2];
};

void CountRelease(void* arg) { ++*static_cast<int*>(arg); }

struct QueueTest : ::testing::Test {
  LimitBudget budget{size_t{1} << 30};
  MemoryMeter meter{&budget};
  ChunkPool pool{&meter, 4};
  Pair pair;
  uint64_t written = 0;

  std::string Drain(OutputQueue* q) {
    std::string out;
    while (!q->empty()) {
      OutputQueue::WriteResult r = q->WriteTo(pair.fds[0], &written);
      EXPECT_NE(r, OutputQueue::WriteResult::kError);
      out += pair.ReadAvailable();
    }
    return out;
  }
};

TEST_F(QueueTest, CopiesAndReferencesKeepOrder) {
  OutputQueue q(&pool, &meter);
  int released = 0;
  static const std::string kValue(5000, 'v');
  q.Append("VALUE k 0 5000\r\n");
  q.AppendReference(kValue, &CountRelease, &released);
  q.Append("\r\n");
  q.Append("END\r\n");
  EXPECT_EQ(q.pending(), 16 + 5000 + 2 + 5);
  EXPECT_EQ(released, 0);
  EXPECT_EQ(Drain(&q), "VALUE k 0 5000\r\n" + kValue + "\r\nEND\r\n");
  EXPECT_EQ(released, 1);
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_EQ(written, 16u + 5000 + 2 + 5);
}

TEST_F(QueueTest, LargeCopiesSpanChunksAndManyEntriesSpanWrites) {
  OutputQueue q(&pool, &meter);
  std::string big(100000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  static const std::string kRef = "0123456789";
  int released = 0;
  std::string expected = big;
  q.Append(big);
  for (int i = 0; i < 3000; ++i) {  // more entries than IOV_MAX
    q.AppendReference(kRef, &CountRelease, &released);
    q.Append("-");
    expected += kRef + "-";
  }
  q.AppendReference("", &CountRelease, &released);
  EXPECT_EQ(Drain(&q), expected);
  EXPECT_EQ(released, 3001);
  q.Clear();
  pool.Trim();
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(meter.uncharged(), 0u);
}

TEST_F(QueueTest, ClearReleasesUnwrittenReferences) {
  int released = 0;
  {
    OutputQueue q(&pool, &meter);
    q.Append("abc");
    q.AppendReference("ref", &CountRelease, &released);
    q.AppendReference("ref", &CountRelease, &released);
  }
  EXPECT_EQ(released, 2);
  pool.Trim();
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(QueueTest, StarvedWhenChunkRefusedAndRecovers) {
  budget.set_limit(1024);  // room for the entry ring, not for a chunk
  OutputQueue q(&pool, &meter);
  q.Append("PONG\r\n");
  EXPECT_TRUE(q.starved());
  EXPECT_GE(q.pending(), OutputQueue::kStarvedPending);
  EXPECT_EQ(q.bytes(), 6u);
  EXPECT_EQ(meter.uncharged(), sizeof(Chunk));
  EXPECT_EQ(Drain(&q), "PONG\r\n");
  EXPECT_EQ(meter.uncharged(), 0u);  // the emergency chunk is freed, not pooled
  EXPECT_FALSE(q.Recover());
  budget.set_limit(size_t{1} << 20);
  EXPECT_TRUE(q.Recover());
  EXPECT_EQ(q.pending(), 0u);
  q.Clear();
  pool.Trim();
  EXPECT_EQ(budget.used(), 0u);
}

TEST_F(QueueTest, IdleQueueHoldsNoChunk) {
  OutputQueue q(&pool, &meter);
  q.Append("hello");
  size_t with_chunk = budget.used();
  EXPECT_EQ(Drain(&q), "hello");
  pool.Trim();
  EXPECT_EQ(budget.used(), with_chunk - sizeof(Chunk));
}

}  // namespace
}  // namespace cinch::net
