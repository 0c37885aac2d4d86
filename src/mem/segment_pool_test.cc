#include "mem/segment_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "mem/smaps_for_test.h"

namespace cinch::mem {
namespace {

const size_t kPage = static_cast<size_t>(sysconf(_SC_PAGESIZE));
constexpr size_t kSeg = 64 * 1024;
constexpr size_t kNoLimit = size_t{1} << 40;

SegmentPool::Config MakeConfig(uint32_t regular, uint32_t jumbo, uint32_t keep_resident,
                               uint32_t reserve) {
  return SegmentPool::Config{kSeg, regular, jumbo, keep_resident, reserve};
}

std::unique_ptr<SegmentPool> MustCreate(const SegmentPool::Config& config, Accountant* a) {
  std::unique_ptr<SegmentPool> pool;
  Status s = SegmentPool::Create(config, a, &pool);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return pool;
}

// The most metadata a pool of `config` charges (its whole table), so limits can be set in whole
// segments.
size_t MetadataBytes(const SegmentPool::Config& config) {
  return RoundUpToPage(sizeof(SegmentMeta) * (config.regular_count + config.jumbo_count));
}

bool AllZero(const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) return false;
  }
  return true;
}

TEST(SegmentPoolTest, CreateRejectsBadSegmentSizes) {
  Accountant a(kNoLimit);
  for (size_t size :
       {size_t{0}, size_t{1}, kPage / 2, kPage + 1, 3 * kPage, kSeg - kPage, kSeg + kPage}) {
    std::unique_ptr<SegmentPool> pool;
    SegmentPool::Config config{size, 4, 1, 0, 0};
    Status s = SegmentPool::Create(config, &a, &pool);
    EXPECT_FALSE(s.ok()) << size;
    EXPECT_EQ(pool, nullptr);
    EXPECT_EQ(a.total(), 0u) << "a rejected pool charged memory";
  }
  std::unique_ptr<SegmentPool> pool;
  SegmentPool::Config no_segments{kSeg, 0, 1, 0, 0};
  EXPECT_FALSE(SegmentPool::Create(no_segments, &a, &pool).ok());
  EXPECT_EQ(a.total(), 0u);
}

TEST(SegmentPoolTest, CreateFailsCleanlyWhenTheArenaCannotBeMapped) {
  // 2^20 segments of 1 GiB = 1 PiB: more address space than any machine has.
  Accountant a(kNoLimit);
  std::unique_ptr<SegmentPool> pool;
  Status s =
      SegmentPool::Create(SegmentPool::Config{size_t{1} << 30, 1u << 20, 2, 0, 0}, &a, &pool);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(pool, nullptr);
  EXPECT_EQ(a.total(), 0u);
}

TEST(SegmentPoolTest, CreateAcceptsOnePageAndLargerPowersOfTwo) {
  Accountant a(kNoLimit);
  for (size_t size : {kPage, 2 * kPage, kSeg, size_t{1} << 20}) {
    std::unique_ptr<SegmentPool> pool;
    Status s = SegmentPool::Create(SegmentPool::Config{size, 4, 1, 0, 0}, &a, &pool);
    ASSERT_TRUE(s.ok()) << size << ": " << s.ToString();
    EXPECT_EQ(pool->segment_size(), size);
    EXPECT_EQ(size_t{1} << pool->segment_shift(), size);
  }
}

TEST(SegmentPoolTest, ChargesMetadataPagesAsIdsAreFirstUsed) {
  Accountant a(kNoLimit);
  const size_t per_page = kPage / sizeof(SegmentMeta);
  SegmentPool::Config config = MakeConfig(static_cast<uint32_t>(3 * per_page), 2, 0, 0);
  {
    auto pool = MustCreate(config, &a);
    EXPECT_EQ(a.total(), 0u) << "Create charges nothing: the table is a reservation";
    EXPECT_EQ(pool->metadata_bytes(), 0u);
    std::vector<uint32_t> ids;
    for (size_t i = 0; i < per_page; ++i) ids.push_back(pool->Allocate(false));
    EXPECT_EQ(ids.front(), 0u) << "ids are handed out lowest first";
    EXPECT_EQ(ids.back(), per_page - 1);
    EXPECT_EQ(pool->metadata_bytes(), kPage) << "one page holds the first " << per_page;
    ids.push_back(pool->Allocate(false));
    EXPECT_EQ(pool->metadata_bytes(), 2 * kPage);
    // Freed ids are reused before fresh ones: the table stops growing.
    for (uint32_t id : ids) pool->Free(id);
    for (size_t i = 0; i <= per_page; ++i) ASSERT_LT(pool->Allocate(false), per_page + 1);
    EXPECT_EQ(pool->metadata_bytes(), 2 * kPage);
    // The first jumbo slot sits in the table's last page.
    uint32_t jumbo = pool->AllocateJumbo(kPage);
    ASSERT_EQ(jumbo, config.regular_count);
    EXPECT_EQ(pool->metadata_bytes(),
              3 * kPage + (3 * per_page * sizeof(SegmentMeta) % kPage ? kPage : 0));
    EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), pool->metadata_bytes());
    pool->Free(jumbo);
  }
  EXPECT_EQ(a.total(), a.ByKind(MemoryKind::kSegments)) << "metadata released with the pool";
}

// File tier segments: ids after the jumbo slots, locations from the first segment boundary past
// the jumbo slots, no memory of their own but what backs them while they are written.
TEST(SegmentPoolTest, FileSegmentsLayoutAndBacking) {
  Accountant a(kNoLimit);
  SegmentPool::Config config = MakeConfig(8, 3, 0, 0);
  config.file_count = 4;
  auto pool = MustCreate(config, &a);
  EXPECT_EQ(pool->total_count(), 15u);
  EXPECT_EQ(pool->file_first(), 11u);
  EXPECT_EQ(pool->location_end(), 9 * kSeg + 4 * kSeg) << "file_base: 8 segments + 3 slots, "
                                                          "rounded up to a segment";
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), pool->metadata_bytes());
  for (uint32_t f = 0; f < 4; ++f) {
    uint32_t id = pool->AllocateFile();
    ASSERT_EQ(id, 11 + f) << "lowest first";
    EXPECT_TRUE(pool->IsFile(id));
    EXPECT_FALSE(pool->IsJumbo(id));
    EXPECT_EQ(pool->FileBacking(id), kNoSegment);
    for (uint32_t offset : {0u, 7u, static_cast<uint32_t>(kSeg - 1)}) {
      uint64_t location = pool->Location(id, offset);
      EXPECT_EQ(location, 9 * kSeg + uint64_t{f} * kSeg + offset);
      EXPECT_TRUE(pool->IsFileLocation(location));
      EXPECT_EQ(pool->SegmentOf(location), id);
      EXPECT_EQ(pool->OffsetOf(location), offset);
      EXPECT_EQ(pool->ItemAt(location), nullptr) << "on file only";
    }
  }
  EXPECT_EQ(pool->AllocateFile(), kNoSegment);
  EXPECT_EQ(pool->files_in_use(), 4u);
  EXPECT_FALSE(pool->IsFileLocation(pool->Location(7, kSeg - 1)));
  EXPECT_FALSE(pool->IsFileLocation(pool->Location(10, 0)));
  // Backed by a RAM segment while written: its locations resolve into that segment's bytes.
  uint32_t ram = pool->Allocate(true);
  pool->SetFileBacking(12, ram);
  pool->SetFileMemory(12, pool->meta(ram).base);
  EXPECT_EQ(pool->ItemAt(pool->Location(12, 100)), pool->meta(ram).base + 100);
  EXPECT_EQ(pool->FileBacking(12), ram);
  pool->SetFileMemory(12, nullptr);
  EXPECT_EQ(pool->ItemAt(pool->Location(12, 100)), nullptr);
  pool->SetFileBacking(12, kNoSegment);
  // Freed file segments are handed out again, lowest first; they are never listed in use.
  std::vector<uint32_t> in_use;
  pool->InUse(&in_use);
  EXPECT_EQ(in_use, std::vector<uint32_t>{ram});
  pool->Free(14);
  pool->Free(12);
  EXPECT_EQ(pool->files_in_use(), 2u);
  EXPECT_EQ(pool->AllocateFile(), 12u);
  EXPECT_EQ(pool->AllocateFile(), 14u);
  EXPECT_EQ(pool->file_high_water(), 15u);
  pool->Free(ram);
}

TEST(SegmentPoolTest, MetadataPageIsChargedWithinTheLimit) {
  // Memory for exactly one segment: the metadata page does not fit beside it.
  Accountant a(kSeg);
  auto pool = MustCreate(MakeConfig(4, 0, 0, 0), &a);
  EXPECT_EQ(pool->Allocate(true), kNoSegment);
  EXPECT_LE(a.total(), a.limit());
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), 0u) << "a refused Allocate kept its charge";
  EXPECT_EQ(pool->free_count(), 4u);
}

// A demotion takes a file segment when memory is full: after ChargeFileMetadata (at open),
// taking every file segment charges nothing, even with no byte of the limit left.
TEST(SegmentPoolTest, FileMetadataIsChargedUpFront) {
  const size_t per_page = kPage / sizeof(SegmentMeta);
  // The file ids start in the jumbo slots' page and run over two more.
  SegmentPool::Config config = MakeConfig(4, 2, 0, 0);
  config.file_count = static_cast<uint32_t>(3 * per_page - 6 - per_page / 2);
  const size_t table = 3 * kPage;
  const size_t slots = 16 * size_t{config.file_count};
  Accountant a(kSeg + table + slots);
  auto pool = MustCreate(config, &a);
  EXPECT_EQ(a.total(), 0u) << "Create charges nothing";
  EXPECT_EQ(pool->FileMetadataBytes(), table + slots);
  ASSERT_EQ(pool->Allocate(true), 0u) << "charges the first page, shared with the file ids";
  EXPECT_EQ(pool->FileMetadataBytes(), 2 * kPage + slots);
  ASSERT_TRUE(pool->ChargeFileMetadata());
  EXPECT_EQ(pool->FileMetadataBytes(), 0u);
  EXPECT_EQ(a.Available(), 0u);
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), pool->metadata_bytes());
  for (uint32_t f = 0; f < config.file_count; ++f) {
    ASSERT_EQ(pool->AllocateFile(), pool->file_first() + f) << "with no memory left";
  }
  EXPECT_EQ(pool->AllocateFile(), kNoSegment);
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), table + slots);
  ASSERT_TRUE(pool->ChargeFileMetadata()) << "once is enough";
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), table + slots);
}

// All or nothing: a limit that holds part of it charges nothing.
TEST(SegmentPoolTest, FileMetadataThatDoesNotFitChargesNothing) {
  SegmentPool::Config config = MakeConfig(4, 2, 0, 0);
  config.file_count = static_cast<uint32_t>(4 * kPage / sizeof(SegmentMeta));
  Accountant a(2 * kPage);
  auto pool = MustCreate(config, &a);
  EXPECT_GT(pool->FileMetadataBytes(), 4 * kPage);
  EXPECT_FALSE(pool->ChargeFileMetadata());
  EXPECT_EQ(a.total(), 0u);
  EXPECT_EQ(pool->metadata_bytes(), 0u);
  EXPECT_GT(pool->FileMetadataBytes(), 4 * kPage) << "still all to charge";
}

TEST(SegmentPoolTest, LayoutOfIdsAndLocations) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(8, 3, 0, 0), &a);
  EXPECT_EQ(pool->regular_count(), 8u);
  EXPECT_EQ(pool->total_count(), 11u);
  EXPECT_EQ(pool->free_count(), 8u);
  EXPECT_EQ(pool->resident_free(), 0u);
  EXPECT_EQ(pool->location_end(), 8 * kSeg + 3);
  for (uint32_t id = 0; id < 8; ++id) {
    ASSERT_EQ(pool->Allocate(false), id);
    const SegmentMeta& m = pool->meta(id);
    EXPECT_FALSE(pool->IsJumbo(id));
    EXPECT_EQ(m.capacity, kSeg);
    EXPECT_EQ(m.state.load(), SegState::kFree);
    if (id > 0) {
      EXPECT_EQ(m.base, pool->meta(id - 1).base + kSeg);
    }
    for (uint32_t offset : {0u, 1u, static_cast<uint32_t>(kSeg - 1)}) {
      uint64_t location = pool->Location(id, offset);
      EXPECT_EQ(location, uint64_t{id} * kSeg + offset);
      EXPECT_EQ(pool->SegmentOf(location), id);
      EXPECT_EQ(pool->OffsetOf(location), offset);
      EXPECT_EQ(pool->ItemAt(location), m.base + offset);
    }
  }
  for (uint32_t j = 0; j < 3; ++j) {
    uint32_t id = pool->AllocateJumbo(kPage);
    ASSERT_EQ(id, 8 + j);
    EXPECT_TRUE(pool->IsJumbo(id));
    uint64_t location = pool->Location(id, 0);
    EXPECT_EQ(location, 8 * kSeg + j) << "one location per jumbo slot, after the arena";
    EXPECT_EQ(pool->SegmentOf(location), id);
    EXPECT_EQ(pool->OffsetOf(location), 0u);
    EXPECT_EQ(pool->ItemAt(location), pool->meta(id).base);
  }
}

TEST(SegmentPoolTest, InUseListsTheIdsHandedOut) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(8, 2, 1, 0), &a);
  std::vector<uint32_t> in_use;
  pool->InUse(&in_use);
  EXPECT_TRUE(in_use.empty());
  uint32_t x = pool->Allocate(false), y = pool->Allocate(false), z = pool->Allocate(true);
  uint32_t j = pool->AllocateJumbo(kPage);
  pool->InUse(&in_use);
  EXPECT_EQ(std::set<uint32_t>(in_use.begin(), in_use.end()), (std::set<uint32_t>{x, y, z, j}));
  pool->Free(y);  // kept resident: free all the same
  pool->Free(j);
  pool->InUse(&in_use);
  EXPECT_EQ(std::set<uint32_t>(in_use.begin(), in_use.end()), (std::set<uint32_t>{x, z}));
  EXPECT_EQ(in_use.size(), 2u);
}

TEST(SegmentPoolTest, TerabyteTableIsAddressSpaceOnly) {
  // 1 TiB of 1 MiB segments and their jumbo slots: nothing is charged or touched up front.
  constexpr size_t kMiB = size_t{1} << 20;
  Accountant a(kNoLimit);
  std::unique_ptr<SegmentPool> pool;
  SegmentPool::Config config{kMiB, (1u << 20) - 8, 1u << 23, 2, 2};
  Status s = SegmentPool::Create(config, &a, &pool);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(a.total(), 0u);
  EXPECT_EQ(pool->location_end(), (uint64_t{1} << 40) - 8 * kMiB + (1u << 23));
  EXPECT_LE(pool->location_end(), uint64_t{1} << 40);
  uint32_t id = pool->Allocate(false);
  ASSERT_EQ(id, 0u);
  EXPECT_EQ(a.total(), kMiB + kPage);
  uint32_t jumbo = pool->AllocateJumbo(kPage);
  ASSERT_EQ(jumbo, config.regular_count);
  uint64_t location = pool->Location(jumbo, 0);
  EXPECT_EQ(pool->SegmentOf(location), jumbo);
  EXPECT_EQ(a.ByKind(MemoryKind::kMetadata), 2 * kPage);
  std::vector<uint32_t> in_use;
  pool->InUse(&in_use);
  EXPECT_EQ(in_use.size(), 2u);
  pool->Free(jumbo);
  pool->Free(id);
}

TEST(SegmentPoolTest, SegmentMemoryIsWritable) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(2, 0, 0, 0), &a);
  uint32_t id = pool->Allocate(false);
  ASSERT_NE(id, kNoSegment);
  char* base = pool->meta(id).base;
  EXPECT_TRUE(AllZero(base, kSeg));
  std::memset(base, 0x5A, kSeg);
  EXPECT_EQ(base[0], 0x5A);
  EXPECT_EQ(base[kSeg - 1], 0x5A);
}

TEST(SegmentPoolTest, WritersCannotTakeTheReserveWhenSegmentsBind) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(8, 0, 0, 2), &a);
  EXPECT_EQ(pool->reserve_bytes(), 2 * kSeg);
  EXPECT_EQ(pool->FreeCapacity(), 8u);
  for (int i = 0; i < 6; ++i) ASSERT_NE(pool->Allocate(false), kNoSegment) << i;
  EXPECT_EQ(pool->FreeCapacity(), 2u);
  EXPECT_EQ(pool->Allocate(false), kNoSegment);
  EXPECT_EQ(pool->free_count(), 2u) << "a refused Allocate took a segment";
  EXPECT_NE(pool->Allocate(true), kNoSegment);
  EXPECT_NE(pool->Allocate(true), kNoSegment);
  EXPECT_EQ(pool->Allocate(true), kNoSegment);
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), 8 * kSeg);
}

TEST(SegmentPoolTest, WritersCannotTakeTheReserveWhenMemoryBinds) {
  SegmentPool::Config config = MakeConfig(16, 0, 0, 1);
  Accountant a(MetadataBytes(config) + 4 * kSeg);
  auto pool = MustCreate(config, &a);
  EXPECT_EQ(pool->FreeCapacity(), 4u);
  for (int i = 0; i < 3; ++i) ASSERT_NE(pool->Allocate(false), kNoSegment) << i;
  EXPECT_EQ(pool->Allocate(false), kNoSegment);
  EXPECT_NE(pool->Allocate(true), kNoSegment);
  EXPECT_EQ(pool->Allocate(true), kNoSegment) << "the accountant is full";
  EXPECT_EQ(a.total(), a.limit());
}

TEST(SegmentPoolTest, FreeKeepsUpToKeepResidentAndReleasesTheRest) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(8, 0, 2, 0), &a);
  std::vector<uint32_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(pool->Allocate(false));
  size_t metadata = pool->metadata_bytes();
  ASSERT_EQ(a.total(), metadata + 5 * kSeg);

  pool->Free(ids[0]);
  pool->Free(ids[1]);
  EXPECT_EQ(pool->resident_free(), 2u);
  EXPECT_EQ(a.total(), metadata + 5 * kSeg) << "kept segments stay charged";
  EXPECT_EQ(pool->bytes_released(), 0u);

  pool->Free(ids[2]);
  pool->Free(ids[3]);
  pool->Free(ids[4]);
  EXPECT_EQ(pool->resident_free(), 2u);
  EXPECT_EQ(a.total(), metadata + 2 * kSeg);
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), 2 * kSeg);
  EXPECT_EQ(pool->bytes_released(), 3 * kSeg);
  EXPECT_EQ(pool->free_count(), 8u);

  EXPECT_EQ(pool->TrimResident(), 2u);
  EXPECT_EQ(pool->resident_free(), 0u);
  EXPECT_EQ(a.total(), metadata);
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), 0u);
  EXPECT_EQ(pool->bytes_released(), 5 * kSeg);
  EXPECT_EQ(pool->free_count(), 8u);
  EXPECT_EQ(pool->TrimResident(), 0u);  // nothing left to trim
  EXPECT_EQ(pool->bytes_released(), 5 * kSeg);
}

TEST(SegmentPoolTest, ResidentSegmentsAreReusedWithoutNewCharge) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(8, 0, 2, 0), &a);
  uint32_t id = pool->Allocate(false);
  pool->Free(id);
  size_t total = a.total();
  EXPECT_EQ(pool->resident_free(), 1u);
  uint32_t again = pool->Allocate(false);
  EXPECT_EQ(again, id) << "the resident segment should be preferred";
  EXPECT_EQ(a.total(), total);
  EXPECT_EQ(pool->resident_free(), 0u);
}

TEST(SegmentPoolTest, ResidentFreeSegmentsCountTowardsTheReserve) {
  // Memory for 2 segments only, both resident after Free: writers still see them.
  SegmentPool::Config config = MakeConfig(8, 0, 2, 1);
  Accountant a(MetadataBytes(config) + 2 * kSeg);
  auto pool = MustCreate(config, &a);
  uint32_t x = pool->Allocate(false);
  uint32_t y = pool->Allocate(true);
  ASSERT_NE(x, kNoSegment);
  ASSERT_NE(y, kNoSegment);
  EXPECT_EQ(pool->FreeCapacity(), 0u);
  pool->Free(x);
  pool->Free(y);
  EXPECT_EQ(pool->FreeCapacity(), 2u);
  EXPECT_NE(pool->Allocate(false), kNoSegment);
  EXPECT_EQ(pool->Allocate(false), kNoSegment);
  EXPECT_NE(pool->Allocate(true), kNoSegment);
}

TEST(SegmentPoolTest, FreeResetsTheMetadata) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(2, 0, 0, 0), &a);
  uint32_t id = pool->Allocate(false);
  SegmentMeta& m = pool->meta(id);
  m.state = SegState::kSealed;
  m.write_offset = 1000;
  m.live_bytes = 900;
  m.live_items = 9;
  m.max_expiry = 12345;
  m.writers = 1;
  pool->Free(id);
  EXPECT_EQ(m.state.load(), SegState::kFree);
  EXPECT_EQ(m.write_offset.load(), 0u);
  EXPECT_EQ(m.live_bytes.load(), 0);
  EXPECT_EQ(m.live_items.load(), 0u);
  EXPECT_EQ(m.max_expiry.load(), 0u);
  EXPECT_EQ(m.writers.load(), 0u);
  EXPECT_EQ(m.capacity, kSeg);
}

TEST(SegmentPoolTest, ReleasedSegmentReadsBackZero) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(1, 0, 0, 0), &a);
  uint32_t id = pool->Allocate(false);
  ASSERT_NE(id, kNoSegment);
  std::memset(pool->meta(id).base, 0xEE, kSeg);
  pool->Free(id);
  EXPECT_EQ(pool->bytes_released(), kSeg);
  uint32_t again = pool->Allocate(false);
  ASSERT_EQ(again, id);  // the only segment
  EXPECT_TRUE(AllZero(pool->meta(again).base, kSeg)) << "MADV_DONTNEED did not drop the pages";
}

TEST(SegmentPoolTest, TrimmedSegmentReadsBackZero) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(1, 0, 1, 0), &a);
  uint32_t id = pool->Allocate(false);
  std::memset(pool->meta(id).base, 0xEE, kSeg);
  pool->Free(id);
  pool->TrimResident();
  ASSERT_EQ(pool->Allocate(false), id);
  EXPECT_TRUE(AllZero(pool->meta(id).base, kSeg));
}

TEST(SegmentPoolTest, JumboMapsPageRoundedChargedMemory) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(4, 2, 0, 0), &a);
  ASSERT_NE(pool->Allocate(false), kNoSegment);  // charges the table's only page
  size_t before = a.total();
  uint32_t id = pool->AllocateJumbo(3 * kPage + 1);
  ASSERT_NE(id, kNoSegment);
  EXPECT_GE(id, pool->regular_count());
  EXPECT_LT(id, pool->total_count());
  SegmentMeta& m = pool->meta(id);
  EXPECT_TRUE(pool->IsJumbo(id));
  EXPECT_EQ(m.capacity, 4 * kPage);
  ASSERT_NE(m.base, nullptr);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 4 * kPage);
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), kSeg);
  EXPECT_EQ(a.total(), before + 4 * kPage);
  EXPECT_TRUE(AllZero(m.base, m.capacity));
  std::memset(m.base, 0x77, m.capacity);

  uint32_t exact = pool->AllocateJumbo(2 * kPage);
  ASSERT_NE(exact, kNoSegment);
  EXPECT_NE(exact, id);
  EXPECT_EQ(pool->meta(exact).capacity, 2 * kPage);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 6 * kPage);
  EXPECT_EQ(pool->AllocateJumbo(kPage), kNoSegment) << "only two jumbo slots";
  EXPECT_EQ(pool->free_count(), 3u) << "jumbo allocations do not use regular segments";

  pool->Free(id);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 2 * kPage);
  EXPECT_EQ(pool->bytes_released(), 4 * kPage);
  EXPECT_EQ(m.base, nullptr);
  EXPECT_EQ(m.state.load(), SegState::kFree);
  pool->Free(exact);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 0u);
  EXPECT_EQ(a.total(), before);
  EXPECT_EQ(pool->bytes_released(), 6 * kPage);

  // The slots are reusable.
  uint32_t reused = pool->AllocateJumbo(kSeg);
  ASSERT_NE(reused, kNoSegment);
  EXPECT_TRUE(pool->IsJumbo(reused));
  EXPECT_EQ(pool->meta(reused).capacity, kSeg);
  EXPECT_TRUE(AllZero(pool->meta(reused).base, kSeg));
  pool->Free(reused);
}

// Touching a page of a segment or a jumbo item must make one page resident, not a 2 MiB huge
// page (THP `always`): the pool charges what it touches.
TEST(SegmentPoolTest, MemoryIsNotBackedByHugePages) {
  if (!KernelHasThp()) GTEST_SKIP() << "kernel without transparent huge pages";
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(64, 1, 0, 0), &a);  // a 4 MiB arena
  uint32_t id = pool->Allocate(false);
  ASSERT_NE(id, kNoSegment);
  const char* segment = pool->meta(id).base;
  EXPECT_TRUE(NoHugePagesAt(segment)) << "segment VmFlags:" << VmFlagsAt(segment);
  uint32_t jumbo = pool->AllocateJumbo(4 << 20);
  ASSERT_NE(jumbo, kNoSegment);
  const char* base = pool->meta(jumbo).base;
  EXPECT_TRUE(NoHugePagesAt(base)) << "jumbo VmFlags:" << VmFlagsAt(base);
  pool->Free(jumbo);
}

TEST(SegmentPoolTest, JumboRespectsTheReserveHeadroom) {
  SegmentPool::Config config = MakeConfig(16, 4, 0, 1);
  Accountant a(MetadataBytes(config) + 4 * kSeg);
  auto pool = MustCreate(config, &a);
  pool->Free(pool->Allocate(false));  // charges the table's only page
  // 4 segments of memory, 1 reserved: at most 3 segments' worth for jumbo items.
  EXPECT_EQ(pool->AllocateJumbo(3 * kSeg + 1), kNoSegment);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 0u) << "a refused jumbo charged memory";
  uint32_t id = pool->AllocateJumbo(3 * kSeg);
  ASSERT_NE(id, kNoSegment);
  EXPECT_EQ(a.Available(), kSeg);
  EXPECT_EQ(pool->AllocateJumbo(kPage), kNoSegment);
  // The reserve is left for the cleaner.
  EXPECT_EQ(pool->Allocate(false), kNoSegment);
  EXPECT_NE(pool->Allocate(true), kNoSegment);
  pool->Free(id);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 0u);
  EXPECT_NE(pool->Allocate(false), kNoSegment);
}

TEST(SegmentPoolTest, ConcurrentAllocateAndFreeHandOutEachSegmentOnce) {
  Accountant a(kNoLimit);
  auto pool = MustCreate(MakeConfig(32, 4, 4, 2), &a);
  std::vector<std::atomic<int>> owners(pool->total_count());
  std::atomic<bool> double_owned{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint32_t> mine;
      for (int i = 0; i < 3000; ++i) {
        if (mine.size() < 6 && (i + t) % 3 != 0) {
          uint32_t id =
              (i % 11 == 0) ? pool->AllocateJumbo(kPage * (1 + i % 3)) : pool->Allocate(i % 5 == 0);
          if (id == kNoSegment) continue;
          if (owners[id].fetch_add(1) != 0) double_owned = true;
          pool->meta(id).base[0] = static_cast<char>(t);
          mine.push_back(id);
        } else if (!mine.empty()) {
          uint32_t id = mine.back();
          mine.pop_back();
          owners[id].fetch_sub(1);
          pool->Free(id);
        }
      }
      for (uint32_t id : mine) {
        owners[id].fetch_sub(1);
        pool->Free(id);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(double_owned.load());
  EXPECT_EQ(pool->free_count(), 32u);
  EXPECT_LE(pool->resident_free(), 4u);
  EXPECT_EQ(a.ByKind(MemoryKind::kJumbo), 0u);
  EXPECT_EQ(a.ByKind(MemoryKind::kSegments), pool->resident_free() * kSeg);
  pool->TrimResident();
  EXPECT_EQ(a.total(), pool->metadata_bytes());
}

}  // namespace
}  // namespace cinch::mem
