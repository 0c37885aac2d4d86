// Snapshots (Store::SaveTo, Store::OpenFrom; docs/restart-format.md): a round trip brings back
// every item as it was, and a file that is damaged, truncated, stale, of another configuration
// or not a snapshot at all never yields a wrong value.
//
// Time comes from a ManualClock and the background cleaner is off, so every test is
// deterministic.

#include "store/snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "store/test_data.h"

namespace cinch {
namespace {

using Result = RestoreReport::Result;
constexpr size_t kKiB = 1024;
constexpr size_t kMiB = 1024 * 1024;

struct Expected {
  std::string value;
  uint32_t flags = 0;
  uint64_t cas = 0;
  int64_t expiry = 0;
};
using Model = std::map<std::pair<uint16_t, std::string>, Expected>;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class SnapshotTest : public ::testing::Test {
 protected:
  SnapshotTest() {
    char dir[] = "/tmp/cinch_snapshot_testXXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/memory";
  }
  ~SnapshotTest() override {
    store_.reset();
    for (const std::string& tier : tiers_) std::remove(tier.c_str());
    std::remove(path_.c_str());
    std::remove((path_ + ".copy").c_str());
    rmdir(dir_.c_str());
  }

  // 64 KiB segments (items above 8 KiB are jumbo), room for everything the tests write.
  Options StoreOptions() {
    Options o;
    o.memory_limit = 32 * kMiB;
    o.segment_size = 64 * kKiB;
    o.max_item_size = 512 * kKiB;
    o.background_cleaner = false;
    o.clock = &clock_;
    return o;
  }

  void Put(Keyspace ks, const std::string& key, const std::string& value, uint32_t flags,
           int64_t exptime) {
    ASSERT_EQ(store_->Write(ks, SetMode::kSet, key, value, flags, exptime), Outcome::kStored);
  }

  // Fills the store with a mix of what items can be: binary keys, flags, expiries, CAS values
  // handed out, three keyspaces, jumbo items, overwritten and deleted keys. Returns the model
  // of what it holds (CAS values read with gets).
  Model Fill(int n) {
    std::mt19937 rng(7);
    const Keyspace spaces[] = {Keyspace{0}, Keyspace{1}, Keyspace{40000}};
    for (int i = 0; i < n; ++i) {
      Keyspace ks = spaces[i % 3];
      std::string key = test::Key(i);
      if (i % 5 == 0) key += std::string("\0\r\n \xff", 5);  // binary
      size_t size = i % 97 == 0 ? 20 * kKiB + rng() % (100 * kKiB) : rng() % 300;
      uint32_t flags = i % 4 == 0 ? rng() : 0;
      int64_t exptime = i % 7 == 0 ? 3600 : i % 11 == 0 ? clock_.NowSeconds() + 86400 : 0;
      Put(ks, key, test::Pattern(size, static_cast<uint32_t>(i)), flags, exptime);
      if (i % 13 == 0) Put(ks, key, test::Pattern(size / 2, i + 1000000), flags, exptime);
      if (i % 17 == 0) {
        EXPECT_EQ(store_->Delete(ks, key), Outcome::kDeleted);
      }
      if (i % 19 == 0) store_->Touch(ks, key, 7200);
    }
    Model model;
    for (int i = 0; i < n; ++i) {
      Keyspace ks = spaces[i % 3];
      std::string key = test::Key(i);
      if (i % 5 == 0) key += std::string("\0\r\n \xff", 5);
      ItemRef ref;
      // Half of them read with their CAS value (which a move must then keep).
      if (!store_->Get(ks, key, &ref, /*with_cas=*/i % 2 == 0)) continue;
      uint64_t cas = ref.cas();
      if (cas == 0) {
        ItemRef again;
        EXPECT_TRUE(store_->Peek(ks, key, &again, true));
        cas = again.cas();
      }
      model[{ks.id, key}] = {std::string(ref.value()), ref.flags(), cas, ref.expiry()};
    }
    return model;
  }

  // Every item the store returns is the model's; returns how many it returned. No item outside
  // the model and `extra` is counted (the stats say how many items there are).
  size_t Check(const Model& model, size_t extra = 0) {
    size_t found = CheckFound(model);
    EXPECT_EQ(store_->GetStats().items, found + extra);
    return found;
  }

  // Check without the count: in a store whose memory and file tier are both full, reading an
  // item on file promotes it, which may evict others.
  size_t CheckFound(const Model& model) {
    size_t found = 0;
    for (const auto& [k, want] : model) {
      ItemRef ref;
      if (!store_->Get(Keyspace{k.first}, k.second, &ref, true)) continue;
      ++found;
      EXPECT_EQ(ref.value(), want.value) << k.second;
      EXPECT_EQ(ref.flags(), want.flags) << k.second;
      EXPECT_EQ(ref.cas(), want.cas) << k.second;
      EXPECT_EQ(ref.expiry(), want.expiry) << k.second;
    }
    return found;
  }

  RestoreReport Restore(const Options& o, const std::string& path) {
    RestoreReport report;
    store_.reset();
    Status s = Store::OpenFrom(o, path, SnapshotOptions{}, &store_, &report);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return report;
  }

  void Save() {
    Status s = store_->SaveTo(path_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Open() { ASSERT_TRUE(Store::Open(StoreOptions(), &store_).ok()); }

  // The store still works: the cleaner can move every item, and writes go on.
  void Exercise(const Model& model, size_t extra = 0) {
    store_->Write(SetMode::kSet, "after", "restart", 0, 0);
    store_->RunCleanerOnce();
    Check(model, extra + 1);
  }

  // Tiny stores (4 KiB segments, RAM `extra` segments above the minimum) with a file tier of
  // `tier_segments` (none if 0) in this test's directory.
  Options TierOptions(size_t extra, size_t tier_segments) {
    Options o = test::TinyOptions(&clock_, extra, /*eviction=*/true);
    if (tier_segments > 0) {
      tiers_.push_back(dir_ + "/tier" + std::to_string(tiers_.size()));
      o.tier_files.push_back(TierFile{tiers_.back(), tier_segments * o.segment_size});
    }
    return o;
  }

  // Writes n items of 40 to 400 bytes (flags, some expiring at an absolute time, every CAS
  // value seen by a client right after its write), overwrites and deletes some; returns the
  // model of what is stored. The store evicts nothing (checked).
  Model FillTiny(int n) {
    std::mt19937 rng(11);
    const Keyspace spaces[] = {Keyspace{0}, Keyspace{3}};
    Model model;
    for (int i = 0; i < n; ++i) {
      const Keyspace ks = spaces[i % 2];
      const std::string key = test::Key(i);
      const int64_t exptime = i % 9 == 0 ? clock_.NowSeconds() + 86400 : 0;
      const uint32_t flags = i % 4 == 0 ? static_cast<uint32_t>(rng()) : 0;
      std::string value = test::Pattern(40 + rng() % 360, static_cast<uint32_t>(i));
      Put(ks, key, value, flags, exptime);
      ItemRef ref;
      EXPECT_TRUE(store_->Peek(ks, key, &ref, /*with_cas=*/true));
      model[{ks.id, key}] = {value, flags, ref.cas(), exptime};
    }
    // Items on file too by now: their overwritten and deleted versions are dead bytes there.
    for (int i = 0; i < n; i += 13) {
      const Keyspace ks = spaces[i % 2];
      if (i % 2 == 0) {
        EXPECT_EQ(store_->Delete(ks, test::Key(i)), Outcome::kDeleted);
        model.erase({ks.id, test::Key(i)});
      } else {
        std::string value = test::Pattern(100, static_cast<uint32_t>(i) + 7);
        Put(ks, test::Key(i), value, 5, 0);
        ItemRef ref;
        EXPECT_TRUE(store_->Peek(ks, test::Key(i), &ref, /*with_cas=*/true));
        model[{ks.id, test::Key(i)}] = {value, 5, ref.cas(), 0};
      }
    }
    EXPECT_EQ(store_->GetStats().evictions, 0u);
    EXPECT_EQ(store_->GetStats().items, model.size());
    return model;
  }

  RestoreReport RestoreTagged(const Options& o, uint64_t memory_limit) {
    RestoreReport report;
    store_.reset();
    Status s = Store::OpenFrom(o, path_, SnapshotOptions{memory_limit}, &store_, &report);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return report;
  }

  ManualClock clock_{1'700'000'000};
  std::vector<std::string> tiers_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SnapshotTest, RoundTripKeepsEveryItem) {
  Open();
  Model model = Fill(6000);
  ASSERT_GT(model.size(), 4000u);
  Save();
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.result, Result::kLoaded) << report.message;
  EXPECT_EQ(report.items, model.size());
  EXPECT_EQ(report.records_refused, 0u);
  EXPECT_EQ(Check(model), model.size());
  EXPECT_EQ(store_->GetKeyspaceStats(Keyspace{1}).items +
                store_->GetKeyspaceStats(Keyspace{}).items +
                store_->GetKeyspaceStats(Keyspace{40000}).items,
            model.size());
  std::vector<uint16_t> ids;
  for (Keyspace ks : store_->Keyspaces()) ids.push_back(ks.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<uint16_t>{0, 1, 40000}));  // the loaded items' keyspaces
  // New versions get CAS values no restored item has.
  std::set<uint64_t> seen;
  for (const auto& [k, e] : model) seen.insert(e.cas);
  for (int i = 0; i < 200; ++i) {
    std::string key = "new" + std::to_string(i);
    store_->Write(SetMode::kSet, key, "v", 0, 0);
    ItemRef ref;
    ASSERT_TRUE(store_->Get(key, &ref, true));
    EXPECT_TRUE(seen.insert(ref.cas()).second) << key;
  }
  Exercise(model, 200);
}

TEST_F(SnapshotTest, CasSurvivesMovesAfterRestore) {
  Open();
  Model model = Fill(3000);
  Save();
  Restore(StoreOptions(), path_);
  // Sparse segments: the cleaner's give-back compaction moves the rest.
  int i = 0;
  for (auto it = model.begin(); it != model.end(); ++i) {
    if (i % 4 == 0) {
      ++it;
      continue;
    }
    EXPECT_EQ(store_->Delete(Keyspace{it->first.first}, it->first.second), Outcome::kDeleted);
    it = model.erase(it);
  }
  store_->RunCleanerOnce();
  ASSERT_GT(store_->GetStats().relocated_items, 0u);
  EXPECT_EQ(Check(model), model.size());
}

TEST_F(SnapshotTest, HitBeforeAndFrequencySurvive) {
  Open();
  Put(Keyspace{}, "read", "r", 0, 0);
  Put(Keyspace{}, "unread", "u", 0, 0);
  ItemRef ref;
  ASSERT_TRUE(store_->Get("read", &ref));
  ref.Reset();
  Save();
  Restore(StoreOptions(), path_);
  FetchResult fr;
  ASSERT_TRUE(store_->Fetch("read", FetchOptions{}, &ref, &fr));
  EXPECT_TRUE(ref.fetched_before());
  ASSERT_TRUE(store_->Fetch("unread", FetchOptions{}, &ref, &fr));
  EXPECT_FALSE(ref.fetched_before());
}

TEST_F(SnapshotTest, ItemsThatExpiredWhileDownAreGone) {
  Open();
  for (int i = 0; i < 500; ++i)
    Put(Keyspace{}, test::Key(i), "v" + std::to_string(i), 0, i % 2 ? 100 : 0);
  Save();
  clock_.Advance(200);
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.result, Result::kLoaded);
  EXPECT_EQ(report.expired, 250u);
  EXPECT_EQ(report.items, 250u);
  for (int i = 0; i < 500; ++i) {
    ItemRef ref;
    EXPECT_EQ(store_->Get(test::Key(i), &ref), i % 2 == 0) << i;
  }
}

TEST_F(SnapshotTest, FlushedItemsAreNotSaved) {
  Open();
  for (int i = 0; i < 100; ++i) Put(Keyspace{}, test::Key(i), "old", 0, 0);
  store_->FlushAll();
  Put(Keyspace{}, "after", "new", 0, 0);
  Save();
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.items, 1u);
  ItemRef ref;
  EXPECT_FALSE(store_->Get(test::Key(3), &ref));
  EXPECT_TRUE(store_->Get("after", &ref));
}

TEST_F(SnapshotTest, AFileIsLoadedOnce) {
  Open();
  Model model = Fill(500);
  Save();
  EXPECT_EQ(Restore(StoreOptions(), path_).result, Result::kLoaded);
  // The store ran (and could have changed); without a new save the file is stale.
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.result, Result::kConsumed) << report.message;
  EXPECT_EQ(store_->GetStats().items, 0u);
}

TEST_F(SnapshotTest, AnotherConfigurationIsRefusedAndTheFileKept) {
  Open();
  Model model = Fill(500);
  Save();
  Options other = StoreOptions();
  other.segment_size = 128 * kKiB;
  RestoreReport report = Restore(other, path_);
  EXPECT_EQ(report.result, Result::kOtherConfig);
  EXPECT_NE(report.message.find("segments"), std::string::npos) << report.message;
  EXPECT_EQ(store_->GetStats().items, 0u);
  other = StoreOptions();
  other.memory_limit = 48 * kMiB;
  report = Restore(other, path_);
  EXPECT_EQ(report.result, Result::kOtherConfig);
  EXPECT_NE(report.message.find("memory limit"), std::string::npos) << report.message;
  // The embedder's own limit decides when it gives one.
  store_.reset();
  ASSERT_TRUE(
      Store::OpenFrom(StoreOptions(), path_, SnapshotOptions{48 * kMiB}, &store_, &report).ok());
  EXPECT_EQ(report.result, Result::kOtherConfig);
  // Another format version.
  std::string data = ReadFile(path_);
  std::string versioned = data;
  versioned[8] = 2;
  WriteFile(path_ + ".copy", versioned);
  EXPECT_EQ(Restore(StoreOptions(), path_ + ".copy").result, Result::kOtherConfig);
  // Untouched by all that: it still loads.
  EXPECT_EQ(Restore(StoreOptions(), path_).result, Result::kLoaded);
  EXPECT_EQ(Check(model), model.size());
}

TEST_F(SnapshotTest, GarbageEmptyAndMissingFiles) {
  EXPECT_EQ(Restore(StoreOptions(), path_).result, Result::kNoFile);
  WriteFile(path_, "");
  EXPECT_EQ(Restore(StoreOptions(), path_).result, Result::kEmpty);
  WriteFile(path_, "hello");
  EXPECT_EQ(Restore(StoreOptions(), path_).result, Result::kNotSnapshot);
  std::mt19937 rng(1);
  std::string junk(100000, '\0');
  for (char& c : junk) c = static_cast<char>(rng());
  WriteFile(path_, junk);
  EXPECT_EQ(Restore(StoreOptions(), path_).result, Result::kNotSnapshot);
  // A header copied onto garbage records: nothing verifies.
  Open();
  Fill(300);
  Save();
  std::string data = ReadFile(path_);
  WriteFile(path_, data.substr(0, sizeof(store::snapshot::FileHeader)) + junk);
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.result, Result::kPartial);
  EXPECT_EQ(report.items, 0u);
  EXPECT_EQ(store_->GetStats().items, 0u);
}

TEST_F(SnapshotTest, AWritingFileLoadsWhatVerifies) {
  Open();
  Model model = Fill(2000);
  Save();
  std::string data = ReadFile(path_);
  const uint32_t writing = store::snapshot::kStateWriting;
  std::memcpy(&data[store::snapshot::kStateOffset], &writing, 4);
  // Killed during the save: the header says WRITING and the end is missing.
  WriteFile(path_, data.substr(0, data.size() * 2 / 3));
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.result, Result::kPartial) << report.message;
  EXPECT_NE(report.message.find("did not finish"), std::string::npos) << report.message;
  EXPECT_GT(report.items, 0u);
  EXPECT_LT(report.items, model.size());
  EXPECT_EQ(Check(model), report.items);
  Exercise(model);
}

TEST_F(SnapshotTest, TruncatedFilesNeverYieldAWrongValue) {
  Open();
  Model model = Fill(1500);
  Save();
  const std::string data = ReadFile(path_);
  std::mt19937 rng(3);
  std::vector<size_t> cuts = {0, 1, 63, 64, 65, 111, 112, 113, data.size() - 49, data.size() - 1};
  for (int i = 0; i < 40; ++i) cuts.push_back(rng() % data.size());
  for (size_t cut : cuts) {
    WriteFile(path_ + ".copy", data.substr(0, cut));
    RestoreReport report = Restore(StoreOptions(), path_ + ".copy");
    EXPECT_NE(report.result, Result::kLoaded) << cut;
    EXPECT_EQ(Check(model), report.items) << cut;
  }
}

TEST_F(SnapshotTest, FlippedBytesNeverYieldAWrongValue) {
  Open();
  Model model = Fill(1500);
  Save();
  const std::string data = ReadFile(path_);
  std::mt19937 rng(5);
  for (int i = 0; i < 60; ++i) {
    std::string damaged = data;
    const size_t at = i < 10 ? static_cast<size_t>(i) * 7 : rng() % data.size();
    damaged[at] = static_cast<char>(damaged[at] ^ (1 + rng() % 255));
    WriteFile(path_ + ".copy", damaged);
    RestoreReport report = Restore(StoreOptions(), path_ + ".copy");
    if (at < 8) {
      EXPECT_EQ(report.result, Result::kNotSnapshot) << at;
    } else if (at >= 16 && at < sizeof(store::snapshot::FileHeader)) {
      EXPECT_EQ(report.result, Result::kDamaged) << at;
    } else if (at >= sizeof(store::snapshot::FileHeader)) {
      EXPECT_EQ(report.result, Result::kPartial) << at;
    }
    EXPECT_EQ(Check(model), report.items) << at;
  }
}

TEST_F(SnapshotTest, LoadStopsWhereTheMemoryEnds) {
  Open();
  Model model = Fill(6000);
  Save();
  // The same configuration tag, a smaller store: what does not fit is refused, the rest
  // is intact.
  Options small = StoreOptions();
  small.memory_limit = 4 * kMiB;
  RestoreReport report;
  store_.reset();
  ASSERT_TRUE(Store::OpenFrom(small, path_, SnapshotOptions{32 * kMiB}, &store_, &report).ok());
  EXPECT_EQ(report.result, Result::kPartial) << report.message;
  EXPECT_GT(report.records_refused, 0u);
  EXPECT_GT(report.items, 0u);
  EXPECT_EQ(Check(model), report.items);
  EXPECT_LE(store_->GetStats().resident_bytes, small.memory_limit);
}

TEST_F(SnapshotTest, UnwritableAndUnreadablePaths) {
  Open();
  Fill(10);
  EXPECT_FALSE(store_->SaveTo(dir_ + "/no/such/dir/memory").ok());
  RestoreReport report = Restore(StoreOptions(), dir_);  // a directory
  EXPECT_EQ(report.result, Result::kIoError) << report.message;
  EXPECT_EQ(store_->GetStats().items, 0u);
}

// A file crafted to name every key twice (each segment record copied under another open_seq,
// with checksums that verify) loads each key once, whichever copy wins, and the two keyspaces
// keep their own items; deleting a key leaves no second version behind.
TEST_F(SnapshotTest, AKeyNamedTwiceIsLoadedOnce) {
  Open();
  Model model;
  for (int i = 0; i < 2000; ++i) {
    for (uint16_t ks : {0, 1}) {
      const std::string value = test::Pattern(50, static_cast<uint32_t>(2 * i + ks));
      Put(Keyspace{ks}, test::Key(i), value, 0, 0);
      model[{ks, test::Key(i)}] = {value};
    }
  }
  Save();
  const std::string file = ReadFile(path_);
  size_t pos = sizeof(store::snapshot::FileHeader);
  std::string copies;
  uint64_t records = 0;
  for (;;) {
    store::snapshot::RecordHeader r;
    ASSERT_LE(pos + sizeof(r), file.size());
    std::memcpy(&r, file.data() + pos, sizeof(r));
    if (r.type == store::snapshot::kTypeTrailer) break;
    const size_t body = size_t{r.live_count} * 4 + r.length;
    store::snapshot::RecordHash hash;
    hash.Add(file.data() + pos + sizeof(r), body);
    r.open_seq += 1000;
    r.checksum = hash.Finish(r);
    copies.append(reinterpret_cast<const char*>(&r), sizeof(r));
    copies.append(file, pos + sizeof(r), body);
    pos += sizeof(r) + body;
    ++records;
  }
  ASSERT_GE(records, 2u);
  store::snapshot::RecordHeader trailer;
  std::memcpy(&trailer, file.data() + pos, sizeof(trailer));
  trailer.open_seq = 2 * records;
  trailer.checksum = store::snapshot::RecordHash().Finish(trailer);
  WriteFile(path_, file.substr(0, pos) + copies +
                       std::string(reinterpret_cast<const char*>(&trailer), sizeof(trailer)));

  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.items, model.size()) << report.message;
  EXPECT_EQ(report.items_refused, model.size()) << report.message;
  EXPECT_EQ(store_->GetStats().items, model.size());
  for (const auto& [k, want] : model) {
    ItemRef ref;
    ASSERT_TRUE(store_->Get(Keyspace{k.first}, k.second, &ref)) << k.second;
    EXPECT_EQ(ref.value(), want.value) << k.second;
  }
  for (const auto& [k, want] : model) {
    EXPECT_EQ(store_->Delete(Keyspace{k.first}, k.second), Outcome::kDeleted) << k.second;
    ItemRef ref;
    EXPECT_FALSE(store_->Get(Keyspace{k.first}, k.second, &ref)) << k.second;
  }
  EXPECT_EQ(store_->GetStats().items, 0u);
  EXPECT_EQ(store_->GetStats().key_value_bytes, 0u);
  store_->RunCleanerOnce();
}

TEST_F(SnapshotTest, AnEmptyStoreRoundTrips) {
  Open();
  Save();
  RestoreReport report = Restore(StoreOptions(), path_);
  EXPECT_EQ(report.result, Result::kLoaded) << report.message;
  EXPECT_EQ(report.items, 0u);
}

// --- with a file tier (docs/file-tier.md) ---

// A tiny RAM with most items on the tier file: a save reads them from the file, a load into
// the same configuration puts them back there, and every item comes back exactly.
TEST_F(SnapshotTest, ItemsOnTheFileTierSurviveARestart) {
  const Options o = TierOptions(/*extra=*/64, /*tier_segments=*/1024);
  ASSERT_TRUE(Store::Open(o, &store_).ok());
  Model model = FillTiny(6000);
  StoreStats before = store_->GetStats();
  ASSERT_GT(before.tier_items, model.size() / 2);  // most items are on file
  const uint64_t reads = before.tier_reads;
  Save();
  EXPECT_GT(store_->GetStats().tier_reads, reads);  // the save read them from the file
  EXPECT_EQ(store_->GetStats().tier_promotions, before.tier_promotions);  // without promoting

  RestoreReport report = Restore(o, path_);
  EXPECT_EQ(report.result, Result::kLoaded) << report.message;
  EXPECT_EQ(report.items, model.size());
  EXPECT_EQ(report.records_refused, 0u);
  EXPECT_EQ(report.records_no_room, 0u);
  EXPECT_GT(report.items_on_file, model.size() / 2);
  EXPECT_NE(report.message.find("on the file tier"), std::string::npos) << report.message;
  StoreStats after = store_->GetStats();
  EXPECT_EQ(after.tier_items, report.items_on_file);
  EXPECT_LE(after.resident_bytes, o.memory_limit);
  EXPECT_EQ(Check(model), model.size());  // reads promote, demote, compact the file as usual
  // It saves and loads again, whole, after all that movement.
  Save();
  report = Restore(o, path_);
  EXPECT_EQ(report.result, Result::kLoaded) << report.message;
  EXPECT_EQ(Check(model), model.size());
  Exercise(model);
}

// Items saved from the tier whose time ran out while the store was down are not loaded.
TEST_F(SnapshotTest, TierItemsThatExpiredWhileDownAreGone) {
  const Options o = TierOptions(64, 1024);
  ASSERT_TRUE(Store::Open(o, &store_).ok());
  Model model = FillTiny(3000);
  ASSERT_GT(store_->GetStats().tier_items, 0u);
  Save();
  clock_.Advance(86400 + 1);
  size_t expired = 0;
  for (auto it = model.begin(); it != model.end();) {
    if (it->second.expiry != 0) {
      ++expired;
      it = model.erase(it);
    } else {
      ++it;
    }
  }
  ASSERT_GT(expired, 0u);
  RestoreReport report = Restore(o, path_);
  EXPECT_EQ(report.result, Result::kLoaded) << report.message;
  EXPECT_EQ(report.expired, expired);
  EXPECT_EQ(report.items, model.size());
  EXPECT_EQ(Check(model), model.size());
}

// A snapshot of a large RAM loaded into a small RAM with a tier: what memory cannot hold goes
// to the file, nothing is dropped.
TEST_F(SnapshotTest, WhatMemoryCannotHoldGoesToTheTier) {
  const Options big = TierOptions(/*extra=*/512, 0);
  ASSERT_TRUE(Store::Open(big, &store_).ok());
  Model model = FillTiny(6000);
  ASSERT_EQ(store_->GetStats().tier_items, 0u);
  Save();
  const Options small = TierOptions(/*extra=*/64, /*tier_segments=*/1024);
  RestoreReport report = RestoreTagged(small, big.memory_limit);
  EXPECT_EQ(report.result, Result::kLoaded) << report.message;
  EXPECT_EQ(report.items, model.size());
  EXPECT_EQ(report.records_no_room, 0u);
  EXPECT_GT(report.items_on_file, model.size() / 2);
  EXPECT_LE(store_->GetStats().resident_bytes, small.memory_limit);
  EXPECT_EQ(Check(model), model.size());
}

// Into a store without a tier, or with a smaller one: what fits is loaded (exactly), the rest
// is counted as not fitting and the report says so.
TEST_F(SnapshotTest, ASmallerTierOrNoneLoadsWhatFits) {
  const Options o = TierOptions(64, 1024);
  ASSERT_TRUE(Store::Open(o, &store_).ok());
  Model model = FillTiny(6000);
  ASSERT_GT(store_->GetStats().tier_items, model.size() / 2);
  Save();
  const std::string saved = ReadFile(path_);

  for (size_t tier_segments : {size_t{0}, size_t{16}}) {
    SCOPED_TRACE(tier_segments);
    WriteFile(path_, saved);  // loading marks the file consumed
    const Options smaller = TierOptions(64, tier_segments);
    RestoreReport report = RestoreTagged(smaller, o.memory_limit);
    EXPECT_EQ(report.result, Result::kPartial) << report.message;
    EXPECT_GT(report.items, 0u);
    EXPECT_GT(report.records_no_room, 0u);
    EXPECT_EQ(report.records_refused, report.records_no_room);  // nothing was damaged
    EXPECT_EQ(report.items + report.items_no_room, model.size());
    EXPECT_EQ(report.items_on_file > 0, tier_segments > 0);
    EXPECT_NE(report.message.find("did not fit"), std::string::npos) << report.message;
    EXPECT_NE(report.message.find(tier_segments > 0 ? "nor the file tier" : "no file tier"),
              std::string::npos)
        << report.message;
    EXPECT_LE(store_->GetStats().resident_bytes, smaller.memory_limit);
    EXPECT_EQ(store_->GetStats().items, report.items);
    const size_t found = CheckFound(model);
    EXPECT_LE(found, report.items);
    if (tier_segments == 0) {
      EXPECT_EQ(found, report.items);  // no reads from a file
    }
  }
}

// A record from the tier is verified on the file it is copied to: a flipped byte in it never
// yields a wrong value.
TEST_F(SnapshotTest, ADamagedTierRecordIsRefused) {
  const Options o = TierOptions(64, 1024);
  ASSERT_TRUE(Store::Open(o, &store_).ok());
  Model model = FillTiny(3000);
  Save();
  std::string saved = ReadFile(path_);
  // A byte near the end: in the last record, one saved from the tier.
  saved[saved.size() - sizeof(store::snapshot::RecordHeader) - 100] ^= 0x20;
  WriteFile(path_, saved);
  RestoreReport report = Restore(o, path_);
  EXPECT_EQ(report.result, Result::kPartial) << report.message;
  EXPECT_EQ(report.records_refused, 1u);
  EXPECT_EQ(report.records_no_room, 0u);
  EXPECT_GT(report.items_on_file, 0u);
  EXPECT_EQ(Check(model), report.items);
  EXPECT_EQ(report.items + report.items_refused, model.size());
}

}  // namespace
}  // namespace cinch
