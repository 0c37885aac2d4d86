// libFuzzer target: Store::OpenFrom (the snapshot reader, src/store/engine_snapshot.cc) fed
// arbitrary bytes as the snapshot file, on a tiny store (4 KiB segments, eviction on, no
// background cleaner, a ManualClock), so that a file never trusted is also a file that fills
// the store.
//
// Input: byte 0 picks the mode; the rest is the file.
//   - mode & 1 == 0: the bytes as they are (checksums must verify by chance: the header and
//     framing checks are what runs);
//   - mode & 1 == 1: "resealed": the header is made to match this store (magic, version, sizes,
//     state CLEAN or WRITING by mode & 2) and every record the framing reaches gets its
//     snapshot id and a correct checksum, so the structural checks and the loading of items
//     run on fuzzed segment bytes and live lists (overlapping, out of order, duplicate keys...);
//   - mode & 4: the store has a file tier of 16 segments (a memfd), so that records marked
//     `on file`, and records memory cannot hold, are copied to it and verified there.
//
// Checks:
//   - OpenFrom succeeds (a file is refused or loaded, never an error: the file is a memfd);
//   - the store counts exactly the items the report says it loaded;
//   - every key the store returns holds a value that some item in the file has under that key
//     and keyspace (never a value made of other bytes), before and after the cleaner runs and
//     writes evict and compact the loaded segments (without a tier, every loaded item is
//     returned; with one, reading items on file promotes them, which may evict others);
//   - the store saved again loads again: every item, or all but those of records that no longer
//     fit (the cleaner may have used its reserve segments, which a load leaves free);
//   - GetStats().resident_bytes <= memory_limit.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "cinch/clock.h"
#include "cinch/options.h"
#include "cinch/status.h"
#include "cinch/store.h"
#include "fuzz_check.h"
#include "store/snapshot.h"

namespace {

namespace snap = cinch::store::snapshot;

using Candidates = std::map<std::pair<uint16_t, std::string>, std::set<std::string>>;

cinch::Options TinyOptions(const cinch::Clock* clock) {
  cinch::Options o;
  o.segment_size = 4096;
  o.max_item_size = 4096;
  o.index_shards = 1;
  o.background_cleaner = false;
  o.clock = clock;
  o.memory_limit = cinch::Store::MinimumMemoryLimit(o) + 16 * o.segment_size;
  return o;
}

// A memfd holding `data`, reachable by path.
struct MemFile {
  explicit MemFile(const std::string& data) {
    fd = memfd_create("snapshot", 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  ~MemFile() { close(fd); }
  int fd;
  std::string path;
};

// Rewrites the header to match `o` and gives every record the framing reaches a valid
// checksum.
void Reseal(std::string* file, const cinch::Options& o, bool clean) {
  if (file->size() < sizeof(snap::FileHeader)) file->resize(sizeof(snap::FileHeader));
  snap::FileHeader h;
  std::memcpy(&h, file->data(), sizeof(h));
  std::memcpy(h.magic, snap::kMagic, sizeof(h.magic));
  h.version = snap::kFormatVersion;
  h.header_size = sizeof(h);
  h.segment_size = o.segment_size;
  h.memory_limit = o.memory_limit;
  h.checksum = snap::HeaderChecksum(h);
  h.state = clean ? snap::kStateClean : snap::kStateWriting;
  std::memcpy(file->data(), &h, sizeof(h));
  uint64_t pos = sizeof(h);
  while (pos + sizeof(snap::RecordHeader) <= file->size()) {
    snap::RecordHeader r;
    std::memcpy(&r, file->data() + pos, sizeof(r));
    r.magic = snap::kRecordMagic;
    r.snapshot_id = h.snapshot_id;
    const uint64_t body = uint64_t{r.live_count} * 4 + r.length;
    if (r.type != snap::kTypeSegment) {
      r.type = snap::kTypeTrailer;
    } else if (pos + sizeof(r) + body > file->size()) {
      break;
    }
    snap::RecordHash hash;
    if (r.type == snap::kTypeSegment) hash.Add(file->data() + pos + sizeof(r), body);
    r.checksum = hash.Finish(r);
    std::memcpy(file->data() + pos, &r, sizeof(r));
    if (r.type == snap::kTypeTrailer) break;
    pos += sizeof(r) + body;
  }
}

// Every item the file's records hold (live or not), by keyspace and key.
Candidates ItemsInFile(const std::string& file) {
  Candidates out;
  uint64_t pos = sizeof(snap::FileHeader);
  while (pos + sizeof(snap::RecordHeader) <= file.size()) {
    snap::RecordHeader r;
    std::memcpy(&r, file.data() + pos, sizeof(r));
    const uint64_t list = uint64_t{r.live_count} * 4;
    if (r.type != snap::kTypeSegment || pos + sizeof(r) + list + r.length > file.size()) break;
    const char* bytes = file.data() + pos + sizeof(r) + list;
    for (size_t at = 0; at < r.length;) {
      cinch::mem::ItemView v;
      if (!snap::DecodeItemChecked(bytes + at, r.length - at, &v)) break;
      out[{r.keyspace, std::string(v.key)}].insert(std::string(v.value));
      at += v.size;
    }
    pos += sizeof(r) + list + r.length;
  }
  return out;
}

// Every key the store returns holds a value the file has for it (keys the fuzzer wrote itself,
// "fuzz:*" in keyspace 0, are skipped with `skip_own`); returns how many it returned.
size_t CheckValues(cinch::Store& store, const Candidates& candidates, bool skip_own = false) {
  size_t found = 0;
  for (const auto& [k, values] : candidates) {
    if (skip_own && k.first == 0 && k.second.rfind("fuzz:", 0) == 0) continue;
    cinch::ItemRef ref;
    if (!store.Get(cinch::Keyspace{k.first}, k.second, &ref)) continue;
    ++found;
    FUZZ_CHECK(values.count(std::string(ref.value())) == 1);
  }
  return found;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  cinch::ManualClock clock(1'700'000'000);
  cinch::Options o = TinyOptions(&clock);
  const bool tiered = (mode & 4) != 0;
  MemFile tier("");
  if (tiered) o.tier_files.push_back(cinch::TierFile{tier.path, 16 * o.segment_size});
  if (mode & 1) Reseal(&file, o, (mode & 2) == 0);
  const Candidates candidates = ItemsInFile(file);

  std::unique_ptr<cinch::Store> store;
  cinch::RestoreReport report;
  {
    MemFile mem(file);
    cinch::Status s = cinch::Store::OpenFrom(o, mem.path, {}, &store, &report);
    FUZZ_CHECK(s.ok());
  }
  FUZZ_CHECK(store->GetStats().items == report.items);
  const size_t found = CheckValues(*store, candidates);
  FUZZ_CHECK(tiered ? found <= report.items : found == report.items);
  FUZZ_CHECK(store->GetStats().resident_bytes <= o.memory_limit);

  // The cleaner walks and moves the loaded segments; writes evict them.
  store->RunCleanerOnce();
  CheckValues(*store, candidates);
  std::string value(300, 'w');
  for (int i = 0; i < 150; ++i) {
    value[0] = static_cast<char>(i);
    FUZZ_CHECK(store->Set("fuzz:" + std::to_string(i), value) == cinch::Outcome::kStored);
  }
  cinch::ItemRef ref;
  FUZZ_CHECK(store->Get("fuzz:149", &ref) && ref.value() == value);
  ref.Reset();
  store->RunCleanerOnce();
  CheckValues(*store, candidates, /*skip_own=*/true);
  FUZZ_CHECK(store->GetStats().resident_bytes <= o.memory_limit);

  // Saved again, it loads again, whole.
  const uint64_t items = store->GetStats().items;
  MemFile again("");
  FUZZ_CHECK(store->SaveTo(again.path).ok());
  store.reset();
  FUZZ_CHECK(cinch::Store::OpenFrom(o, again.path, {}, &store, &report).ok());
  // All of it, unless the cleaner's reserve held some of it (a load leaves the reserve free).
  FUZZ_CHECK(report.loaded());
  FUZZ_CHECK(report.items + report.items_refused == items);
  return 0;
}
