#include "common/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace cinch::log {
namespace {

// Sends stderr to a temporary file for the life of the object; Text() reads what was written.
class CapturedStderr {
 public:
  CapturedStderr() {
    char path[] = "/tmp/cinch-log-test-XXXXXX";
    fd_ = mkstemp(path);
    unlink(path);
    saved_ = dup(STDERR_FILENO);
    dup2(fd_, STDERR_FILENO);
  }
  ~CapturedStderr() {
    dup2(saved_, STDERR_FILENO);
    close(saved_);
    close(fd_);
  }
  std::string Text() const {
    std::string text;
    char buffer[8192];
    ssize_t n;
    off_t at = 0;
    while ((n = pread(fd_, buffer, sizeof buffer, at)) > 0) {
      text.append(buffer, static_cast<size_t>(n));
      at += n;
    }
    return text;
  }

 private:
  int fd_ = -1;
  int saved_ = -1;
};

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override { SetVerbosity(0); }
};

TEST_F(LogTest, VerbosityOpensLevels) {
  SetVerbosity(0);
  EXPECT_TRUE(Enabled(Level::kError));
  EXPECT_TRUE(Enabled(Level::kWarning));
  EXPECT_TRUE(Enabled(Level::kNotice));
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_FALSE(Enabled(Level::kDebug));
  SetVerbosity(1);
  EXPECT_TRUE(Enabled(Level::kInfo));
  EXPECT_FALSE(Enabled(Level::kDebug));
  SetVerbosity(2);
  EXPECT_TRUE(Enabled(Level::kDebug));
  SetVerbosity(-3);
  EXPECT_EQ(Verbosity(), 0);
}

TEST_F(LogTest, OneLineWithTimestampPidAndLevel) {
  CapturedStderr err;
  CINCH_LOG_WARNING("hello %d", 42);
  CINCH_LOG_INFO("not shown at verbosity 0");
  SetVerbosity(2);
  CINCH_LOG_DEBUG("shown at -vv");
  const std::string text = err.Text();
  const std::regex line(
      "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z cinchd\\[" + std::to_string(getpid()) +
      "\\] warning: hello 42\n"
      "\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z cinchd\\[\\d+\\] debug: shown at -vv\n");
  EXPECT_TRUE(std::regex_match(text, line)) << text;
}

TEST_F(LogTest, LongLinesAreCutAndStillEndTheLine) {
  CapturedStderr err;
  const std::string long_text(10000, 'x');
  CINCH_LOG_ERROR("%s", long_text.c_str());
  const std::string text = err.Text();
  EXPECT_LT(text.size(), 4097u);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
}

TEST_F(LogTest, ThreadsNeverInterleaveWithinALine) {
  CapturedStderr err;
  constexpr int kThreads = 4, kLines = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      const std::string body(100, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) CINCH_LOG_NOTICE("%s", body.c_str());
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string text = err.Text();
  int lines = 0;
  for (size_t at = 0; at < text.size();) {
    const size_t end = text.find('\n', at);
    ASSERT_NE(end, std::string::npos);
    const std::string l = text.substr(at, end - at);
    const std::string body = l.substr(l.rfind(' ') + 1);
    EXPECT_EQ(body, std::string(100, body[0])) << l;
    ++lines;
    at = end + 1;
  }
  EXPECT_EQ(lines, kThreads * kLines);
}

TEST(LogLimiter, OneLinePerIntervalCountingTheRest) {
  LogLimiter limiter(1000);
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.Allow(0, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limiter.Allow(1, &suppressed));
  EXPECT_FALSE(limiter.Allow(500, &suppressed));
  EXPECT_FALSE(limiter.Allow(999, &suppressed));
  EXPECT_TRUE(limiter.Allow(1000, &suppressed));
  EXPECT_EQ(suppressed, 3u);
  EXPECT_TRUE(limiter.Allow(5000, &suppressed));
  EXPECT_EQ(suppressed, 0u);
}

TEST(LogLimiter, ConcurrentEventsAreEachLoggedOrCounted) {
  LogLimiter limiter(1'000'000);  // one line at most during the test
  std::atomic<uint64_t> allowed{0};
  constexpr int kThreads = 4, kEvents = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEvents; ++i) {
        uint64_t s;
        if (limiter.Allow(0, &s)) allowed.fetch_add(1 + s);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  uint64_t rest = 0;
  EXPECT_TRUE(limiter.Allow(2'000'000, &rest));
  EXPECT_EQ(allowed.load(), 1u);
  EXPECT_EQ(allowed.load() + rest, static_cast<uint64_t>(kThreads * kEvents));
}

}  // namespace
}  // namespace cinch::log
