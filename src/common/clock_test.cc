// Tests of the clocks (include/cinch/clock.h) and of Status/Outcome (include/cinch/status.h).
#include "cinch/clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cinch/status.h"

namespace cinch {
namespace {

TEST(ManualClockTest, StartsWhereToldAndStandsStill) {
  ManualClock fixed(1234);
  EXPECT_EQ(fixed.NowSeconds(), 1234);
  EXPECT_EQ(fixed.NowSeconds(), 1234);
  ManualClock by_default;
  EXPECT_EQ(by_default.NowSeconds(), 1'700'000'000);
}

TEST(ManualClockTest, AdvanceAndSet) {
  ManualClock clock(1000);
  clock.Advance(5);
  EXPECT_EQ(clock.NowSeconds(), 1005);
  clock.Advance(-10);
  EXPECT_EQ(clock.NowSeconds(), 995);
  clock.Advance(0);
  EXPECT_EQ(clock.NowSeconds(), 995);
  clock.Set(42);
  EXPECT_EQ(clock.NowSeconds(), 42);
  clock.Advance(1);
  EXPECT_EQ(clock.NowSeconds(), 43);
}

TEST(ManualClockTest, UsableThroughTheInterface) {
  ManualClock manual(500);
  const Clock* clock = &manual;
  manual.Advance(7);
  EXPECT_EQ(clock->NowSeconds(), 507);
}

TEST(ManualClockTest, ConcurrentAdvancesAddUp) {
  ManualClock clock(0);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&clock] {
      for (int i = 0; i < kPerThread; ++i) clock.Advance(1);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(clock.NowSeconds(), kThreads * kPerThread);
}

TEST(SystemClockTest, FollowsRealTime) {
  int64_t before = static_cast<int64_t>(std::time(nullptr));
  int64_t now = SystemClock::Default()->NowSeconds();
  int64_t after = static_cast<int64_t>(std::time(nullptr));
  EXPECT_LE(before, now);
  EXPECT_LE(now, after);
  EXPECT_GT(now, 1'600'000'000);  // a real Unix time, not a monotonic or zero clock
}

TEST(SystemClockTest, DefaultIsOneInstance) {
  EXPECT_NE(SystemClock::Default(), nullptr);
  EXPECT_EQ(SystemClock::Default(), SystemClock::Default());
}

// Checks that `clock` reads the system clock plus `offset`.
void ExpectSystemPlus(const OffsetClock& clock, int64_t offset) {
  int64_t before = SystemClock::Default()->NowSeconds();
  int64_t now = clock.NowSeconds();
  int64_t after = SystemClock::Default()->NowSeconds();
  EXPECT_LE(before + offset, now);
  EXPECT_LE(now, after + offset);
}

TEST(OffsetClockTest, StartsAtSystemTime) {
  OffsetClock clock;
  ExpectSystemPlus(clock, 0);
}

TEST(OffsetClockTest, ShiftsAccumulate) {
  OffsetClock clock;
  clock.Shift(3600);
  ExpectSystemPlus(clock, 3600);
  clock.Shift(-7200);
  ExpectSystemPlus(clock, -3600);
  clock.Shift(3600);
  ExpectSystemPlus(clock, 0);
}

TEST(OffsetClockTest, IndependentInstances) {
  OffsetClock a;
  OffsetClock b;
  a.Shift(100);
  ExpectSystemPlus(a, 100);
  ExpectSystemPlus(b, 0);
}

TEST(OffsetClockTest, PauseFreezesAndResumeFollowsTheRealClock) {
  OffsetClock clock;
  const int64_t before = SystemClock::Default()->NowSeconds();
  clock.Pause();
  const int64_t frozen = clock.NowSeconds();
  EXPECT_LE(before, frozen);
  clock.Pause();  // idempotent
  EXPECT_EQ(clock.NowSeconds(), frozen);
  // Wait for the real clock to tick: a frozen clock must not follow it.
  while (SystemClock::Default()->NowSeconds() <= frozen) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(clock.NowSeconds(), frozen);
  clock.Shift(9);
  EXPECT_EQ(clock.NowSeconds(), frozen + 9);
  clock.Resume();
  ExpectSystemPlus(clock, 9);
}

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(s.message().empty());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
}

TEST(StatusTest, InvalidArgument) {
  Status s = Status::InvalidArgument("segment size");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "segment size");
  EXPECT_EQ(s.ToString(), "Invalid argument: segment size");
}

TEST(StatusTest, IoError) {
  Status s = Status::IoError("mmap failed");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "mmap failed");
  EXPECT_EQ(s.ToString(), "IO error: mmap failed");
}

TEST(StatusTest, CopiesAndMoves) {
  Status original = Status::IoError("disk");
  Status copy = original;
  EXPECT_FALSE(copy.ok());
  EXPECT_EQ(copy.ToString(), original.ToString());
  Status moved = std::move(copy);
  EXPECT_EQ(moved.ToString(), "IO error: disk");
  moved = Status::Ok();
  EXPECT_TRUE(moved.ok());
}

TEST(OutcomeNameTest, MemcachedNames) {
  EXPECT_EQ(OutcomeName(Outcome::kStored), "STORED");
  EXPECT_EQ(OutcomeName(Outcome::kNotStored), "NOT_STORED");
  EXPECT_EQ(OutcomeName(Outcome::kExists), "EXISTS");
  EXPECT_EQ(OutcomeName(Outcome::kNotFound), "NOT_FOUND");
  EXPECT_EQ(OutcomeName(Outcome::kDeleted), "DELETED");
  EXPECT_EQ(OutcomeName(Outcome::kTouched), "TOUCHED");
  EXPECT_EQ(OutcomeName(Outcome::kNonNumeric), "NON_NUMERIC");
  EXPECT_EQ(OutcomeName(Outcome::kTooLarge), "TOO_LARGE");
  EXPECT_EQ(OutcomeName(Outcome::kOutOfMemory), "OUT_OF_MEMORY");
}

TEST(OutcomeNameTest, NamesAreDistinct) {
  std::set<std::string_view> names;
  for (int o = static_cast<int>(Outcome::kStored); o <= static_cast<int>(Outcome::kOutOfMemory);
       ++o) {
    std::string_view name = OutcomeName(static_cast<Outcome>(o));
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(names.size(), 9u);
}

}  // namespace
}  // namespace cinch
