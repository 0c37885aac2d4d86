#include "common/units.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace cinch {
namespace {

TEST(Mib, OneDecimal) {
  EXPECT_EQ(Mib(0), "0.0 MiB");
  EXPECT_EQ(Mib(64 << 20), "64.0 MiB");
  EXPECT_EQ(Mib(3 << 19), "1.5 MiB");
  EXPECT_EQ(Mib(100 << 10), "0.1 MiB");
  EXPECT_EQ(Mib(uint64_t{1} << 40), "1048576.0 MiB");
}

TEST(Mib, NoLimitReadsNone) {
  EXPECT_EQ(Mib(UINT64_MAX), "none");
  EXPECT_EQ(Mib(SIZE_MAX), "none");
  EXPECT_EQ(Mib(UINT64_MAX - 1), "17592186044416.0 MiB");
}

}  // namespace
}  // namespace cinch
