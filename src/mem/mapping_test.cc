#include "mem/mapping.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include "mem/smaps_for_test.h"

namespace cinch::mem {
namespace {

TEST(MappingTest, RoundUpToPage) {
  size_t page = PageSize();
  EXPECT_EQ(RoundUpToPage(0), 0u);
  EXPECT_EQ(RoundUpToPage(1), page);
  EXPECT_EQ(RoundUpToPage(page), page);
  EXPECT_EQ(RoundUpToPage(page + 1), 2 * page);
}

TEST(MappingTest, MapsZeroedMemoryWithoutHugePages) {
  size_t bytes = 8 << 20;  // room for aligned 2 MiB huge pages, were they allowed
  char* p = MapNoReserve(bytes);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[bytes - 1], 0);
  p[bytes / 2] = 1;
  if (KernelHasThp()) {
    EXPECT_TRUE(NoHugePagesAt(p)) << "VmFlags:" << VmFlagsAt(p);
    EXPECT_TRUE(NoHugePagesAt(p + bytes - 1)) << "VmFlags:" << VmFlagsAt(p + bytes - 1);
  }
  EXPECT_EQ(munmap(p, bytes), 0);
}

TEST(MappingTest, VmFlagsAtFindsOnlyMappedAddresses) {
  size_t bytes = 4 * PageSize();
  char* p = MapNoReserve(bytes);
  ASSERT_NE(p, nullptr);
  EXPECT_NE(VmFlagsAt(p), "");
  EXPECT_EQ(munmap(p, bytes), 0);
  EXPECT_EQ(VmFlagsAt(p), "") << "an unmapped address has no mapping";
}

}  // namespace
}  // namespace cinch::mem
