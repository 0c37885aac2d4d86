// The fixture the store's keyspace, quota and stream tests share: a store whose time comes from
// a ManualClock and which has no background cleaner, so that every test is deterministic.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/store.h"

namespace cinch::test {

class StoreFixture : public ::testing::Test {
 protected:
  // A store of `memory_limit`, without a background cleaner, on clock_.
  Options BaseOptions(size_t memory_limit) {
    Options o;
    o.memory_limit = memory_limit;
    o.background_cleaner = false;
    o.clock = &clock_;
    return o;
  }

  void Open(const Options& options) {
    Status s = Store::Open(options, &store_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // The value of `key` in `ks`, or nullopt if it is not there.
  std::optional<std::string> Value(Keyspace ks, std::string_view key) {
    ItemRef ref;
    if (!store_->Get(ks, key, &ref)) return std::nullopt;
    EXPECT_EQ(ref.key(), key);
    return std::string(ref.value());
  }

  ManualClock clock_;
  std::unique_ptr<Store> store_;
};

}  // namespace cinch::test
