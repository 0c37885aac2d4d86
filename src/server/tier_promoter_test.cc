// The tier's I/O threads: keys as requests write them, every job resumed exactly once, Stop
// runs what is queued. (With a file tier, file_tier.py and the session test cover promotion.)
#include "server/tier_promoter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/session_test_util.h"

namespace cinch::server {
namespace {

std::vector<std::string> Keys(std::string_view keys, TierKeys form) {
  std::vector<std::string> out;
  ForEachTierKey(keys, form, [&](std::string_view k) { out.emplace_back(k); });
  return out;
}

TEST(TierKeysTest, ListOneAndBase64) {
  EXPECT_EQ(Keys("a  bb c ", TierKeys::kList), (std::vector<std::string>{"a", "bb", "c"}));
  EXPECT_EQ(Keys("", TierKeys::kList), std::vector<std::string>{});
  EXPECT_EQ(Keys("one key", TierKeys::kOne), std::vector<std::string>{"one key"});
  const std::vector<std::string> binary = {std::string("foo\0bar", 7)};
  EXPECT_EQ(Keys("Zm9vAGJhcg==", TierKeys::kBase64), binary);
  EXPECT_EQ(Keys("!!!!", TierKeys::kBase64), std::vector<std::string>{});
}

using test::CountingResumer;

class TierPromoterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.memory_limit = 8 << 20;
    o.background_cleaner = false;
    ASSERT_TRUE(Store::Open(o, &store_).ok());
    ASSERT_EQ(store_->Set("a", "1"), Outcome::kStored);
  }
  std::unique_ptr<Store> store_;
};

TEST_F(TierPromoterTest, EveryJobIsResumedOnceFromManyThreads) {
  constexpr int kSubmitters = 4, kJobs = 200;
  TierPromoter promoter(store_.get());
  std::vector<CountingResumer> resumers(kSubmitters * kJobs);
  std::vector<TierPromoter::Job> jobs(resumers.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kSubmitters; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t * kJobs; i < (t + 1) * kJobs; ++i) {
        jobs[i].keys = "a b c";
        jobs[i].form = TierKeys::kList;
        jobs[i].done = &resumers[i];
        promoter.Submit(&jobs[i]);
      }
    });
  }
  for (auto& t : threads) t.join();
  promoter.Stop();
  for (const CountingResumer& r : resumers) EXPECT_EQ(r.resumes.load(), 1);
  EXPECT_EQ(promoter.queued(), 0u);
  EXPECT_EQ(promoter.promoted(), 0u) << "without a tier nothing is in it";
  ItemRef ref;
  EXPECT_TRUE(store_->Get("a", &ref));
}

TEST_F(TierPromoterTest, StopRunsWhatIsQueued) {
  std::vector<CountingResumer> resumers(64);
  std::vector<TierPromoter::Job> jobs(resumers.size());
  {
    TierPromoter promoter(store_.get(), /*threads=*/1);
    for (size_t i = 0; i < jobs.size(); ++i) {
      jobs[i].keys = "a";
      jobs[i].done = &resumers[i];
      promoter.Submit(&jobs[i]);
    }
    promoter.Stop();
    promoter.Stop();  // idempotent; the destructor stops again
  }
  for (const CountingResumer& r : resumers) EXPECT_EQ(r.resumes.load(), 1);
}

}  // namespace
}  // namespace cinch::server
