#include "server/memory_governor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "cinch/options.h"
#include "cinch/store.h"

namespace cinch::server {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// A store of 64 MiB under a process ceiling (-m) of 80 MiB: 16 MiB are the process's own.
class GovernorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cinch_governor_XXXXXX";
    root_ = mkdtemp(tmpl);  // no cgroup, no PSI: the tests pass the readings in
    Options o;
    o.memory_limit = 64 * kMiB;
    o.segment_size = 256 * 1024;
    o.background_cleaner = false;
    ASSERT_TRUE(Store::Open(o, &store_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<MemoryGovernor> Governor(bool pressure = true) {
    MemoryGovernor::Config c;
    c.ceiling = 80 * kMiB;
    c.fixed = 16 * kMiB;
    c.pressure = pressure;
    c.triggers = false;
    c.roots = {root_ + "/proc", root_};
    return std::make_unique<MemoryGovernor>(c, store_.get());
  }
  size_t StoreLimit() const { return store_->GetStats().memory_limit; }

  std::string root_;
  std::unique_ptr<Store> store_;
};

using Inputs = MemoryGovernor::Inputs;

TEST_F(GovernorTest, WithNothingElseTheLimitIsMinusM) {
  auto g = Governor();
  g->Evaluate(Inputs{std::nullopt, false, 0});
  EXPECT_EQ(g->limit(), 80 * kMiB);
  EXPECT_STREQ(g->source(), "-m");
  EXPECT_EQ(StoreLimit(), 64 * kMiB);
}

TEST_F(GovernorTest, CacheMemlimitLowersTheLimitAndRaisesItBackUpToMinusM) {
  auto g = Governor();
  g->Evaluate(Inputs{std::nullopt, false, 0});
  g->SetCacheMemlimit(48 * kMiB);
  EXPECT_EQ(g->limit(), 48 * kMiB);
  EXPECT_STREQ(g->source(), "cache_memlimit");
  EXPECT_EQ(StoreLimit(), 32 * kMiB);  // less the process's 16 MiB, as at start
  g->SetCacheMemlimit(1024 * kMiB);    // above -m: -m binds
  EXPECT_EQ(g->limit(), 80 * kMiB);
  EXPECT_STREQ(g->source(), "-m");
  EXPECT_EQ(StoreLimit(), 64 * kMiB);
  // Below what the process needs for itself: the store gets its least.
  g->SetCacheMemlimit(8 * kMiB);
  EXPECT_EQ(g->limit(), 8 * kMiB);
  EXPECT_GE(StoreLimit(), Store::MinimumMemoryLimit(store_->options()));
  EXPECT_LT(StoreLimit(), 32 * kMiB);
}

TEST_F(GovernorTest, TheCgroupsLimitLessItsMarginBinds) {
  auto g = Governor();
  g->Evaluate(Inputs{64 * kMiB, false, 0});
  EXPECT_EQ(g->limit(), 60 * kMiB);  // 64 less max(4 MiB, 1/16)
  EXPECT_STREQ(g->source(), "cgroup");
  EXPECT_EQ(g->cgroup_limit(), 64 * kMiB);
  EXPECT_EQ(StoreLimit(), 44 * kMiB);
  EXPECT_EQ(MemoryGovernor::CgroupShare(96 * kMiB), 90 * kMiB);
  EXPECT_EQ(MemoryGovernor::CgroupShare(1024 * kMiB), 960 * kMiB);
  // cache_memlimit below it binds; the cgroup's limit removed, -m is back.
  g->SetCacheMemlimit(50 * kMiB);
  EXPECT_STREQ(g->source(), "cache_memlimit");
  g->SetCacheMemlimit(0);
  g->Evaluate(Inputs{std::nullopt, false, 1000});
  EXPECT_EQ(g->limit(), 80 * kMiB);
  EXPECT_EQ(StoreLimit(), 64 * kMiB);
}

TEST_F(GovernorTest, PressureShrinksInStepsAndTheLimitGrowsBackSlowly) {
  auto g = Governor();
  g->Evaluate(Inputs{std::nullopt, true, 0});
  EXPECT_EQ(g->limit(), 70 * kMiB);  // an eighth off
  EXPECT_STREQ(g->source(), "pressure");
  EXPECT_EQ(StoreLimit(), 54 * kMiB);
  g->Evaluate(Inputs{std::nullopt, true, 1000});  // within the spacing: no second step
  EXPECT_EQ(g->limit(), 70 * kMiB);
  g->Evaluate(Inputs{std::nullopt, true, 2000});
  EXPECT_EQ(g->limit(), 70 * kMiB - 70 * kMiB / 8);
  EXPECT_EQ(g->pressure_shrinks(), 2u);
  const size_t low = g->limit();
  // Calm, but not for long enough yet.
  g->Evaluate(Inputs{std::nullopt, false, 2000 + MemoryGovernor::kCalmMs - 1});
  EXPECT_EQ(g->limit(), low);
  int64_t now = 2000 + MemoryGovernor::kCalmMs;
  g->Evaluate(Inputs{std::nullopt, false, now});
  EXPECT_EQ(g->limit(), low + 5 * kMiB);              // 1/16 of -m
  g->Evaluate(Inputs{std::nullopt, false, now + 1});  // one step per kGrowSpacingMs
  EXPECT_EQ(g->limit(), low + 5 * kMiB);
  for (int i = 1; i < 10 && std::strcmp(g->source(), "-m") != 0; ++i) {
    g->Evaluate(Inputs{std::nullopt, false, now + i * MemoryGovernor::kGrowSpacingMs});
  }
  EXPECT_EQ(g->limit(), 80 * kMiB);
  EXPECT_STREQ(g->source(), "-m");
  EXPECT_EQ(StoreLimit(), 64 * kMiB);
  EXPECT_EQ(g->pressure_grows(), 4u);  // 61.25 MiB + 4 x 5 MiB >= 80 MiB
}

TEST_F(GovernorTest, PressureStopsAtTheLeastTheStoreRunsWith) {
  auto g = Governor();
  for (int i = 0; i < 40; ++i) {
    g->Evaluate(Inputs{std::nullopt, true, i * MemoryGovernor::kShrinkSpacingMs});
  }
  const uint64_t shrinks = g->pressure_shrinks();
  EXPECT_LT(shrinks, 40u);
  EXPECT_EQ(g->limit(), 16 * kMiB + StoreLimit());
  g->Evaluate(Inputs{std::nullopt, true, 41 * MemoryGovernor::kShrinkSpacingMs});
  EXPECT_EQ(g->pressure_shrinks(), shrinks);
}

TEST_F(GovernorTest, PressureOffLeavesTheLimitAlone) {
  auto g = Governor(/*pressure=*/false);
  g->Evaluate(Inputs{std::nullopt, true, 0});
  g->Evaluate(Inputs{std::nullopt, true, 5000});
  EXPECT_EQ(g->limit(), 80 * kMiB);
  EXPECT_EQ(g->pressure_shrinks(), 0u);
  g->Evaluate(Inputs{64 * kMiB, true, 10000});  // the cgroup's limit applies all the same
  EXPECT_EQ(g->limit(), 60 * kMiB);
}

// The thread: reads the (fixture) cgroup every interval while cache_memlimit changes from
// another thread; Stop joins it. (For TSan, mostly: its decisions are the ones above.)
TEST_F(GovernorTest, ItsThreadRunsBesideCacheMemlimitAndStops) {
  MemoryGovernor::Config c;
  c.ceiling = 80 * kMiB;
  c.fixed = 16 * kMiB;
  c.interval_ms = 1;
  c.triggers = false;
  c.roots = {root_ + "/proc", root_};
  MemoryGovernor g(c, store_.get());
  g.Start();
  for (int i = 0; i < 200; ++i) {
    g.SetCacheMemlimit((i % 2 == 0 ? 48 : 64) * kMiB);
    EXPECT_LE(g.limit(), 64 * kMiB);
    if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  g.SetCacheMemlimit(0);
  EXPECT_EQ(g.limit(), 80 * kMiB);
  g.Stop();
  g.Stop();  // twice: nothing to join
  EXPECT_EQ(StoreLimit(), 64 * kMiB);
}

// The watcher's signals, from fixture files.
class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cinch_watcher_XXXXXX";
    root_ = mkdtemp(tmpl);
    std::filesystem::create_directories(root_ + "/proc/self");
    std::filesystem::create_directories(root_ + "/proc/pressure");
    Write("/proc/self/cgroup", "0::/\n");
    Write("/proc/self/mountinfo", "");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::string& path, const std::string& text) {
    std::ofstream(root_ + path) << text;
  }
  MemorySources::Roots Roots() const { return {root_ + "/proc", root_}; }
  std::string root_;
};

TEST_F(WatcherTest, PsiStallsOfTenPercentOfTheIntervalArePressure) {
  Write("/proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000\n");
  MemorySources sources(Roots());
  PressureWatcher w(&sources, /*triggers=*/false);
  EXPECT_FALSE(w.Check(false, 1000));
  Write("/proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=51000\n");
  EXPECT_FALSE(w.Check(false, 1000));  // 50 ms of 1 s
  Write("/proc/pressure/memory", "some avg10=9.00 avg60=0.00 avg300=0.00 total=200000\n");
  EXPECT_TRUE(w.Check(false, 1000));   // 149 ms of 1 s
  EXPECT_FALSE(w.Check(false, 1000));  // nothing since
  EXPECT_TRUE(w.Check(true, 1000));    // a trigger that fired
  EXPECT_NE(w.Describe().find("PSI"), std::string::npos);
}

TEST_F(WatcherTest, WithoutPsiLowMemAvailableIsPressure) {
  Write("/proc/meminfo", "MemTotal: 1000000 kB\nMemAvailable: 600000 kB\n");
  MemorySources sources(Roots());
  PressureWatcher w(&sources, false);
  EXPECT_FALSE(w.Check(false, 1000));
  Write("/proc/meminfo", "MemTotal: 1000000 kB\nMemAvailable: 40000 kB\n");
  EXPECT_TRUE(w.Check(false, 1000));
  EXPECT_EQ(w.Describe(), "MemAvailable");
}

TEST_F(WatcherTest, CgroupMemoryEventsHighAndMaxArePressure) {
  Write("/proc/self/cgroup", "0::/c\n");
  Write("/proc/self/mountinfo", "30 24 0:27 / /cg rw - cgroup2 cgroup2 rw\n");
  std::filesystem::create_directories(root_ + "/cg/c");
  Write("/cg/c/memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  Write("/proc/meminfo", "MemTotal: 1000000 kB\nMemAvailable: 600000 kB\n");
  MemorySources sources(Roots());
  PressureWatcher w(&sources, false);
  EXPECT_FALSE(w.Check(false, 1000));
  Write("/cg/c/memory.events", "low 0\nhigh 3\nmax 0\noom 0\noom_kill 0\n");
  EXPECT_TRUE(w.Check(false, 1000));
  EXPECT_FALSE(w.Check(false, 1000));
  Write("/cg/c/memory.events", "low 0\nhigh 3\nmax 1\noom 0\noom_kill 0\n");
  EXPECT_TRUE(w.Check(false, 1000));
}

}  // namespace
}  // namespace cinch::server
