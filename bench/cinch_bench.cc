// cinch_bench: the engine benchmark driver, in the spirit of leveldb's db_bench.
//
// Runs named workloads against an in-process cinch::Store and prints one Markdown table per
// workload (it reads as plain text too). Every figure is measured during the run; nothing is
// hard-coded. Targets from the product issue are printed next to the figures, but a missed
// target does not fail the run: the exit status is 1 only when a workload read a wrong value
// (verification failure) or could not open a store, 2 on bad flags, 0 otherwise.
//
//   cinch_bench [--benchmarks=overhead,w1,...,w8,release,throughput,zipf,restart] [--quick]
//               [--threads=1,2] [--restart-items=N] [--restart-dir=PATH] [--restart-runs=N]
//               [--segment-size=BYTES]
//
// See bench/README.md for what each workload does and which target it checks.
//
// Values are a pure function of (key id, version, size), so every value read back can be
// checked byte for byte without keeping a copy.

#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <latch>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cinch/options.h"
#include "cinch/stats.h"
#include "cinch/status.h"
#include "cinch/store.h"

namespace cinch::bench {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;

// ---------------------------------------------------------------------------------------------
// Run configuration and shared results.

struct Config {
  std::vector<std::string> benchmarks;   // in the order given
  bool quick = false;                    // smaller sizes and durations, for CI and smoke runs
  std::vector<int> threads = {1, 2};     // thread counts of the throughput workload
  uint64_t restart_items = 0;            // items of the restart workload (0: its default)
  std::string restart_dir = "/dev/shm";  // where the restart workload writes its file
  int restart_runs = 3;
  size_t segment_size = 0;  // of the overhead workloads (0: Options' default)
};

// What workloads share: the configuration and the rows of the LSM summary printed at the end.
struct Context {
  Config config;
  std::vector<std::vector<std::string>> lsm_rows;
};

// ---------------------------------------------------------------------------------------------
// Formatting and tables.

std::string Format(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* format, ...) {
  char buffer[256];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(buffer, sizeof(buffer), format, args);
  va_end(args);
  return std::string(buffer, std::clamp<int>(n, 0, sizeof(buffer) - 1));
}

// 1234567 -> "1,234,567".
std::string Count(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Mib(double bytes) { return Format("%.1f MiB", bytes / kMiB); }
std::string Percent(double fraction) { return Format("%.2f %%", 100 * fraction); }
std::string Ratio(double x) { return Format("%.3f", x); }
std::string Verdict(bool met) { return met ? "yes" : "NO"; }

double SafeDiv(double a, double b) { return b == 0 ? 0 : a / b; }

// A Markdown table, padded so that it also reads well as plain text. Cells are ASCII.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  void Print() const {
    std::vector<size_t> widths = ColumnWidths();
    PrintRow(rows_[0], widths);
    std::vector<std::string> rule;
    for (size_t width : widths) rule.push_back(std::string(width, '-'));
    PrintRow(rule, widths);
    for (size_t i = 1; i < rows_.size(); ++i) PrintRow(rows_[i], widths);
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  std::vector<size_t> ColumnWidths() const {
    std::vector<size_t> widths(rows_[0].size(), 3);
    for (const auto& row : rows_) {
      for (size_t c = 0; c < row.size() && c < widths.size(); ++c) {
        widths[c] = std::max(widths[c], row[c].size());
      }
    }
    return widths;
  }

  static void PrintRow(const std::vector<std::string>& row, const std::vector<size_t>& widths) {
    std::string line = "|";
    for (size_t c = 0; c < widths.size(); ++c) {
      std::string cell = c < row.size() ? row[c] : "";
      line += " " + cell + std::string(widths[c] - cell.size(), ' ') + " |";
    }
    std::printf("%s\n", line.c_str());
  }

  std::vector<std::vector<std::string>> rows_;
};

// ---------------------------------------------------------------------------------------------
// Process memory and time.

// Resident set size of this process (VmRSS in /proc/self/status), in bytes; 0 if unknown.
uint64_t ReadRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * kKiB;
  }
  return 0;
}

// The 1-minute load average (/proc/loadavg), or "?": timing figures need an idle machine.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one_minute;
  return in >> one_minute ? one_minute : "?";
}

// Hands freed heap memory back to the OS, so that an RSS baseline taken next is not inflated
// by what an earlier workload freed.
void TrimHeap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

int64_t RssDelta(uint64_t now, uint64_t base) {
  return static_cast<int64_t>(now) - static_cast<int64_t>(base);
}

class Stopwatch {
 public:
  double Seconds() const {
    return std::chrono::duration<double>(SteadyClock::now() - start_).count();
  }

 private:
  using SteadyClock = std::chrono::steady_clock;
  SteadyClock::time_point start_ = SteadyClock::now();
};

// ---------------------------------------------------------------------------------------------
// Deterministic randomness.

// The SplitMix64 output function: a cheap bijective mixer for deriving key lengths and bytes.
constexpr uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

// std::mt19937_64 with the few draws the workloads need, computed the same way on every
// standard library (the std distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  // Uniform in [0, n); the modulo bias is below 2^-40 for the n used here.
  uint64_t Below(uint64_t n) { return engine_() % n; }
  uint32_t Between(uint32_t lo, uint32_t hi) {
    return lo + static_cast<uint32_t>(Below(hi - lo + 1));
  }
  // Uniform in [0, 1).
  double Unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 engine_;
};

// ---------------------------------------------------------------------------------------------
// Keys and values.

constexpr size_t kMinKeySize = 8;
constexpr size_t kMaxKeySize = 16;

// The key of an id: "k" + the decimal id, zero-padded to a length of 8..16 bytes picked from a
// hash of the id. Distinct ids give distinct keys (equal strings have equal digits).
class Key {
 public:
  explicit Key(uint64_t id) : size_(static_cast<uint8_t>(SizeOf(id))) {
    data_[0] = 'k';
    for (size_t i = size_; i-- > 1; id /= 10) data_[i] = static_cast<char>('0' + id % 10);
  }
  std::string_view view() const { return {data_, size_}; }
  size_t size() const { return size_; }

  static size_t SizeOf(uint64_t id) {
    size_t digits = 1;
    for (uint64_t rest = id / 10; rest > 0; rest /= 10) ++digits;
    size_t wanted = kMinKeySize + Mix(id) % (kMaxKeySize - kMinKeySize + 1);
    return std::max(wanted, digits + 1);
  }

 private:
  char data_[24];  // "k" + up to 20 digits
  uint8_t size_;
};

// Value bytes are a pure function of (id, version, size): the id (8 bytes) and version (4 bytes)
// little-endian, then a SplitMix64 stream seeded from both. A value served for the wrong key,
// a stale version, or torn bytes all fail a byte comparison.
void FillValue(uint64_t id, uint32_t version, char* out, size_t size) {
  char header[12];
  std::memcpy(header, &id, 8);
  std::memcpy(header + 8, &version, 4);
  size_t head = std::min(size, sizeof(header));
  std::memcpy(out, header, head);
  uint64_t state = Mix(Mix(id) + version);
  for (size_t i = head; i < size; i += 8) {
    state = Mix(state);
    std::memcpy(out + i, &state, std::min<size_t>(8, size - i));
  }
}

// The id a value was made for (its first 8 bytes), or UINT64_MAX if it is too short.
uint64_t ValueId(std::string_view value) {
  if (value.size() < 8) return UINT64_MAX;
  uint64_t id;
  std::memcpy(&id, value.data(), 8);
  return id;
}

uint32_t ValueVersion(std::string_view value) {
  if (value.size() < 12) return UINT32_MAX;
  uint32_t version;
  std::memcpy(&version, value.data() + 8, 4);
  return version;
}

// Reusable buffer for making values; one per thread.
class ValueMaker {
 public:
  std::string_view Make(uint64_t id, uint32_t version, size_t size) {
    if (buffer_.size() < size) buffer_.resize(size);
    FillValue(id, version, buffer_.data(), size);
    return {buffer_.data(), size};
  }

 private:
  std::string buffer_;
};

// ---------------------------------------------------------------------------------------------
// Store access and verification.

std::unique_ptr<Store> OpenStore(const Options& options) {
  std::unique_ptr<Store> store;
  Status status = Store::Open(options, &store);
  if (!status.ok()) {
    std::fprintf(stderr, "Store::Open(memory_limit=%zu, segment_size=%zu) failed: %s\n",
                 options.memory_limit, options.segment_size, status.ToString().c_str());
    return nullptr;
  }
  return store;
}

enum class Found { kCorrect, kMissing, kWrong };

// Prints the first few wrong values to stderr, so an engine bug report has concrete evidence.
void ReportWrong(std::string_view key, std::string_view got, uint32_t version, size_t size) {
  static std::atomic<int> reported{0};
  if (reported.fetch_add(1) >= 10) return;
  std::fprintf(stderr,
               "WRONG VALUE for key %.*s: got %zu bytes (embedded id %llu, version %u), "
               "expected %zu bytes of version %u\n",
               static_cast<int>(key.size()), key.data(), got.size(),
               static_cast<unsigned long long>(ValueId(got)), ValueVersion(got), size, version);
}

// Reads the key of `id` and compares it with the value of (id, version, size).
Found CheckValue(Store& store, uint64_t id, uint32_t version, size_t size, ValueMaker& maker,
                 Keyspace ks = {}) {
  Key key(id);
  ItemRef ref;
  if (!store.Get(ks, key.view(), &ref)) return Found::kMissing;
  if (ref.key() == key.view() && ref.value() == maker.Make(id, version, size)) {
    return Found::kCorrect;
  }
  ReportWrong(key.view(), ref.value(), version, size);
  return Found::kWrong;
}

// A key that must be absent (deleted or flushed) but is readable counts as a wrong value.
bool IsAbsent(Store& store, uint64_t id) {
  Key key(id);
  ItemRef ref;
  if (!store.Get(key.view(), &ref)) return true;
  std::fprintf(stderr, "RESURRECTED key %.*s: readable after delete/flush (%zu bytes)\n",
               static_cast<int>(key.size()), key.view().data(), ref.value().size());
  return false;
}

struct VerifyTally {
  uint64_t correct = 0;
  uint64_t missing = 0;
  uint64_t wrong = 0;

  void Add(Found found) {
    if (found == Found::kCorrect) ++correct;
    if (found == Found::kMissing) ++missing;
    if (found == Found::kWrong) ++wrong;
  }
};

// Sets ids [0, count) to version-0 values of value_size(id) bytes; returns the number of
// writes that were not stored.
// The keyspace of object `id`: 0, or with `keyspaces` > 0 one of that many tenant keyspaces
// (ids from 16, as cinchd gives tenants), round robin.
Keyspace KeyspaceOf(uint64_t id, uint32_t keyspaces) {
  return keyspaces == 0 ? Keyspace{} : Keyspace{static_cast<uint16_t>(16 + id % keyspaces)};
}

uint64_t LoadSequential(Store& store, uint64_t count,
                        const std::function<size_t(uint64_t)>& value_size, uint32_t keyspaces = 0) {
  ValueMaker maker;
  uint64_t failed = 0;
  for (uint64_t id = 0; id < count; ++id) {
    Key key(id);
    if (store.Write(KeyspaceOf(id, keyspaces), SetMode::kSet, key.view(),
                    maker.Make(id, 0, value_size(id)), 0, 0) != Outcome::kStored) {
      ++failed;
    }
  }
  return failed;
}

VerifyTally VerifySequential(Store& store, uint64_t count,
                             const std::function<size_t(uint64_t)>& value_size,
                             uint32_t keyspaces = 0) {
  ValueMaker maker;
  VerifyTally tally;
  for (uint64_t id = 0; id < count; ++id) {
    tally.Add(CheckValue(store, id, 0, value_size(id), maker, KeyspaceOf(id, keyspaces)));
  }
  return tally;
}

// ---------------------------------------------------------------------------------------------
// overhead: bytes of memory per object beyond its key and value.

constexpr uint64_t kOverheadObjects = 2'000'000;
constexpr size_t kOverheadValueSize = 32;
constexpr double kOverheadTarget = 12.0;  // bytes per object; memcached measured 83, Redis 88

// Where the overhead goes, in bytes. `segment_slack` is segment memory not holding live keys,
// values or headers (open segments' unwritten tails, dead items); `unattributed` is resident
// memory outside every category of StoreStats and should be 0.
struct OverheadParts {
  int64_t total = 0;
  int64_t item_headers = 0;
  int64_t index = 0;
  int64_t metadata = 0;
  int64_t free_segments = 0;
  int64_t segment_slack = 0;
  int64_t unattributed = 0;
};

OverheadParts SplitOverhead(const StoreStats& s) {
  auto i = [](uint64_t v) { return static_cast<int64_t>(v); };
  OverheadParts p;
  p.total = i(s.resident_bytes) - i(s.external_bytes) - i(s.key_value_bytes);
  p.item_headers = i(s.item_header_bytes);
  p.index = i(s.index_bytes);
  p.metadata = i(s.metadata_bytes);
  p.free_segments = i(s.segments_free * s.segment_size);
  p.segment_slack =
      i(s.segment_bytes + s.jumbo_bytes) - p.free_segments - i(s.key_value_bytes) - p.item_headers;
  p.unattributed = i(s.resident_bytes) - i(s.external_bytes) -
                   i(s.segment_bytes + s.jumbo_bytes + s.index_bytes + s.metadata_bytes);
  return p;
}

void AddPerObjectRow(Table& table, const std::string& name, int64_t bytes, uint64_t items,
                     const std::string& target = "") {
  table.AddRow({name, (bytes < 0 ? "-" : "") + Count(std::abs(bytes)),
                Format("%.2f", SafeDiv(static_cast<double>(bytes), items)), target});
}

void PrintOverhead(const StoreStats& s, int64_t rss_growth, const VerifyTally& tally,
                   uint64_t failed_writes, double load_seconds) {
  OverheadParts p = SplitOverhead(s);
  uint64_t n = s.items;
  double per_object = SafeDiv(static_cast<double>(p.total), n);
  Table table({"component", "bytes", "bytes/object", "target"});
  AddPerObjectRow(table, "key + value (payload)", s.key_value_bytes, n);
  AddPerObjectRow(table, "item headers", p.item_headers, n);
  AddPerObjectRow(table, "index", p.index, n);
  AddPerObjectRow(table, "segment table + metadata", p.metadata, n);
  AddPerObjectRow(table, "free segments held (reserve)", p.free_segments, n);
  AddPerObjectRow(table, "segment slack (open tails, dead)", p.segment_slack, n);
  AddPerObjectRow(table, "resident outside all categories", p.unattributed, n);
  AddPerObjectRow(
      table, "TOTAL overhead (resident-external-kv)", p.total, n,
      Format("<= %.0f: %s", kOverheadTarget, Verdict(per_object <= kOverheadTarget).c_str()));
  AddPerObjectRow(table, "process RSS growth (load)", rss_growth, n);
  AddPerObjectRow(table, "process RSS growth - payload",
                  rss_growth - static_cast<int64_t>(s.key_value_bytes), n);
  table.Print();
  std::printf(
      "items %s, resident %s of limit %s, load %.2f s (%.2f Mops/s), evictions %s, "
      "failed writes %s\n",
      Count(n).c_str(), Mib(s.resident_bytes).c_str(), Mib(s.memory_limit).c_str(), load_seconds,
      SafeDiv(kOverheadObjects, load_seconds * 1e6), Count(s.evictions).c_str(),
      Count(failed_writes).c_str());
  std::printf("verify: %s correct, %s missing, %s wrong (all %s must be present and correct)\n\n",
              Count(tally.correct).c_str(), Count(tally.missing).c_str(),
              Count(tally.wrong).c_str(), Count(kOverheadObjects).c_str());
}

// `keyspaces` > 0: the objects are spread round robin over that many tenant keyspaces, each
// holding open segments of its own.
bool RunOverheadIn(const Config& config, uint32_t keyspaces) {
  Options options;
  options.memory_limit = 512 * kMiB;  // ~2.7x the payload: nothing may be evicted
  if (config.segment_size != 0) options.segment_size = config.segment_size;
  auto value_size = [](uint64_t) { return kOverheadValueSize; };
  std::printf("%s objects, keys 8-16 B, values %zu B, memory_limit %s, segment_size %s",
              Count(kOverheadObjects).c_str(), kOverheadValueSize,
              Mib(options.memory_limit).c_str(), Mib(options.segment_size).c_str());
  if (keyspaces > 0) std::printf(", %u keyspaces (round robin)", keyspaces);
  std::printf("\n\n");
  TrimHeap();
  uint64_t rss_before = ReadRssBytes();
  auto store = OpenStore(options);
  if (!store) return false;
  Stopwatch watch;
  uint64_t failed = LoadSequential(*store, kOverheadObjects, value_size, keyspaces);
  double load_seconds = watch.Seconds();
  StoreStats stats = store->GetStats();
  int64_t rss_growth = RssDelta(ReadRssBytes(), rss_before);
  VerifyTally tally = VerifySequential(*store, kOverheadObjects, value_size, keyspaces);
  PrintOverhead(stats, rss_growth, tally, failed, load_seconds);
  return tally.wrong == 0 && tally.missing == 0;
}

bool RunOverhead(Context& context) { return RunOverheadIn(context.config, 0); }

constexpr uint32_t kOverheadTenants = 1000;
bool RunOverheadTenants(Context& context) {
  return RunOverheadIn(context.config, kOverheadTenants);
}

// ---------------------------------------------------------------------------------------------
// quiet-tenant: the get latency of a quiet keyspace (5 MB, read at random) alone, then while a
// noisy keyspace writes as fast as one thread can at its quota of 16 MiB (evicting its own
// items all the time). Engine level: one reader thread, one writer thread, no network.

struct LatencySummary {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

LatencySummary Summarize(std::vector<uint32_t>& ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return ns.empty() ? 0.0 : ns[std::min(ns.size() - 1, static_cast<size_t>(q * ns.size()))] / 1e3;
  };
  return {at(0.5), at(0.99), at(0.999), ns.empty() ? 0.0 : ns.back() / 1e3};
}

bool RunQuietTenant(Context& context) {
  constexpr Keyspace kNoisy{16}, kQuiet{17};
  constexpr uint64_t kQuietItems = 50'000;  // 5 MB of 100-byte values
  constexpr size_t kQuietValue = 100, kNoisyValue = 1000;
  const uint64_t gets = context.config.quick ? 300'000 : 2'000'000;
  Options options;
  options.memory_limit = 64 * kMiB;
  auto store = OpenStore(options);
  if (!store) return false;
  store->SetKeyspaceQuota(kNoisy, 16 * kMiB);
  ValueMaker maker;
  for (uint64_t id = 0; id < kQuietItems; ++id) {
    Key key(id);
    store->Write(kQuiet, SetMode::kSet, key.view(), maker.Make(id, 0, kQuietValue), 0, 0);
  }
  auto read_quiet = [&](std::vector<uint32_t>* ns, uint64_t* missing) {
    std::mt19937_64 rng(42);
    ns->reserve(gets);
    for (uint64_t i = 0; i < gets; ++i) {
      Key key(rng() % kQuietItems);
      ItemRef ref;
      auto start = std::chrono::steady_clock::now();
      bool hit = store->Get(kQuiet, key.view(), &ref);
      auto end = std::chrono::steady_clock::now();
      *missing += !hit;
      ns->push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count()));
    }
  };
  Table table({"quiet keyspace gets", "p50 us", "p99 us", "p99.9 us", "max us", "misses",
               "noisy writes/s", "noisy evictions"});
  for (bool noisy : {false, true}) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> written{0};
    std::thread writer;
    const uint64_t evictions_before = store->GetKeyspaceStats(kNoisy).evictions;
    if (noisy) {
      writer = std::thread([&] {
        ValueMaker m;
        for (uint64_t id = 0; !stop.load(std::memory_order_relaxed); ++id) {
          Key key(id);
          store->Write(kNoisy, SetMode::kSet, key.view(), m.Make(id, 0, kNoisyValue), 0, 0);
          written.fetch_add(1, std::memory_order_relaxed);
        }
      });
      // Until the noisy keyspace is at its quota and evicting.
      while (store->GetKeyspaceStats(kNoisy).evictions == evictions_before) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    std::vector<uint32_t> ns;
    uint64_t missing = 0;
    const uint64_t written_before = written.load();
    const uint64_t evicting_before = store->GetKeyspaceStats(kNoisy).evictions;
    Stopwatch watch;
    read_quiet(&ns, &missing);
    const double seconds = watch.Seconds();
    const uint64_t writes = written.load() - written_before;
    const uint64_t evicted = store->GetKeyspaceStats(kNoisy).evictions - evicting_before;
    stop = true;
    if (writer.joinable()) writer.join();
    LatencySummary l = Summarize(ns);
    table.AddRow({noisy ? "beside a noisy keyspace at its quota" : "alone", Format("%.2f", l.p50),
                  Format("%.2f", l.p99), Format("%.2f", l.p999), Format("%.0f", l.max),
                  Count(missing), noisy ? Count(static_cast<uint64_t>(writes / seconds)) : "-",
                  noisy ? Count(evicted) : "-"});
    if (missing != 0) {
      table.Print();
      std::printf("FAIL: the quiet keyspace lost items\n");
      return false;
    }
  }
  table.Print();
  KeyspaceStats n = store->GetKeyspaceStats(kNoisy);
  std::printf("noisy keyspace: item_bytes %s of quota %s; quiet keyspace: %s items, %s evicted\n\n",
              Mib(n.item_bytes).c_str(), Mib(n.quota).c_str(),
              Count(store->GetKeyspaceStats(kQuiet).items).c_str(),
              Count(store->GetKeyspaceStats(kQuiet).evictions).c_str());
  return true;
}

// ---------------------------------------------------------------------------------------------
// w1..w8: the RAMCloud log-structured memory workloads (Rumble et al., FAST'14, Table 2).

struct SizeRange {
  uint32_t min;
  uint32_t max;
};

struct LsmSpec {
  const char* name;
  SizeRange before;        // value sizes of phase A
  SizeRange after;         // value sizes of phase C
  double delete_fraction;  // of the keys live after phase A, deleted in phase B
};

constexpr LsmSpec kLsmSpecs[] = {
    {"w1", {100, 100}, {100, 100}, 0.0},     {"w2", {100, 100}, {130, 130}, 0.0},
    {"w3", {100, 100}, {130, 130}, 0.9},     {"w4", {100, 150}, {200, 250}, 0.0},
    {"w5", {100, 150}, {200, 250}, 0.9},     {"w6", {100, 200}, {1000, 2000}, 0.5},
    {"w7", {1000, 2000}, {1500, 2500}, 0.9}, {"w8", {50, 150}, {5000, 15000}, 0.9},
};

constexpr double kLsmLiveFraction = 0.8;  // live key + value bytes, as a fraction of the limit
constexpr uint64_t kStatsEveryOps = 1000;
constexpr uint64_t kRssEveryOps = 1 << 16;

// What the driver believes the store holds: per id, the latest version and value size, and
// the set of live ids with O(1) random choice and removal. Ids are never reused.
class Model {
 public:
  uint64_t Add(uint32_t value_size) {
    uint64_t id = entries_.size();
    entries_.push_back({0, value_size, static_cast<uint32_t>(live_.size())});
    live_.push_back(static_cast<uint32_t>(id));
    live_bytes_ += Key::SizeOf(id) + value_size;
    return id;
  }

  void Update(uint64_t id, uint32_t value_size) {
    Entry& e = entries_[id];
    live_bytes_ += value_size;
    live_bytes_ -= e.value_size;
    e.value_size = value_size;
    ++e.version;
  }

  void Remove(uint64_t id) {
    Entry& e = entries_[id];
    uint32_t last = live_.back();
    live_[e.live_pos] = last;
    entries_[last].live_pos = e.live_pos;
    live_.pop_back();
    e.live_pos = kNotLive;
    live_bytes_ -= Key::SizeOf(id) + e.value_size;
  }

  uint64_t RandomLive(Rng& rng) const { return live_[rng.Below(live_.size())]; }
  bool IsLive(uint64_t id) const { return entries_[id].live_pos != kNotLive; }
  uint32_t version(uint64_t id) const { return entries_[id].version; }
  uint32_t value_size(uint64_t id) const { return entries_[id].value_size; }
  uint64_t id_count() const { return entries_.size(); }
  uint64_t live_count() const { return live_.size(); }
  uint64_t live_bytes() const { return live_bytes_; }
  uint64_t MemoryBytes() const {
    return entries_.capacity() * sizeof(Entry) + live_.capacity() * sizeof(uint32_t);
  }

 private:
  static constexpr uint32_t kNotLive = UINT32_MAX;
  struct Entry {
    uint32_t version;
    uint32_t value_size;
    uint32_t live_pos;  // index in live_, or kNotLive
  };

  std::vector<Entry> entries_;
  std::vector<uint32_t> live_;
  uint64_t live_bytes_ = 0;
};

struct LsmResult {
  uint64_t memory_limit = 0;
  uint64_t live_keys = 0;
  uint64_t live_bytes = 0;
  VerifyTally tally;
  uint64_t resurrected = 0;  // deleted keys still readable
  uint64_t peak_resident = 0;
  uint64_t peak_rss_delta = 0;
  uint64_t model_bytes = 0;
  uint64_t written_bytes = 0;
  uint64_t failed_writes = 0;
  uint64_t ops = 0;
  double seconds = 0;
  StoreStats final_stats;

  uint64_t wrong() const { return tally.wrong + resurrected; }
  double kept() const { return SafeDiv(tally.correct, live_keys); }
};

// Drives one LSM workload against a store and keeps the model in step with it.
class LsmRunner {
 public:
  LsmRunner(const LsmSpec& spec, Store* store, uint64_t write_budget, uint64_t rss_base)
      : spec_(spec),
        store_(store),
        limit_(store->options().memory_limit),
        target_bytes_(static_cast<uint64_t>(kLsmLiveFraction * limit_)),
        write_budget_(write_budget),
        rss_base_(rss_base),
        rng_(0x5eed0000 + spec.before.max * 7 + spec.after.max) {}

  // Phase A: insert new keys of "before" sizes until the live bytes reach the target.
  void Fill() {
    while (model_.live_bytes() < target_bytes_) Insert(spec_.before);
  }

  // Phase B: delete the given fraction of the live keys, chosen at random.
  void DeleteFraction() {
    auto n = static_cast<uint64_t>(std::llround(spec_.delete_fraction * model_.live_count()));
    for (uint64_t i = 0; i < n; ++i) Erase(model_.RandomLive(rng_));
  }

  // Phase C: write "after" sizes, keeping the live bytes at the target, until the budget of
  // written bytes is used up.
  void Churn() {
    while (written_bytes_ < write_budget_) ChurnStep();
  }

  LsmResult Finish(double seconds) {
    LsmResult r;
    SampleResident();
    r.memory_limit = limit_;
    r.live_keys = model_.live_count();
    r.live_bytes = model_.live_bytes();
    r.peak_resident = peak_resident_;
    r.peak_rss_delta = peak_rss_ > rss_base_ ? peak_rss_ - rss_base_ : 0;
    r.model_bytes = model_.MemoryBytes();
    r.written_bytes = written_bytes_;
    r.failed_writes = failed_writes_;
    r.ops = ops_;
    r.seconds = seconds;
    r.final_stats = store_->GetStats();
    Verify(&r);
    return r;
  }

 private:
  void ChurnStep() {
    bool below = model_.live_bytes() + RefillSlack() < target_bytes_;
    if (below || model_.live_count() == 0 || rng_.Unit() < 0.5) {
      Insert(spec_.after);
    } else {
      Overwrite(model_.RandomLive(rng_), spec_.after);
    }
    while (model_.live_bytes() > target_bytes_) Erase(model_.RandomLive(rng_));
  }

  // After trimming, the live bytes sit within one item of the target; only a larger gap
  // (phase B's deletions) means "refill with new keys only".
  uint64_t RefillSlack() const {
    return 2 * (std::max(spec_.before.max, spec_.after.max) + kMaxKeySize);
  }

  void Insert(SizeRange sizes) {
    uint32_t size = rng_.Between(sizes.min, sizes.max);
    uint64_t id = model_.Add(size);
    if (!Write(id, 0, size)) Forget(id);
  }

  void Overwrite(uint64_t id, SizeRange sizes) {
    model_.Update(id, rng_.Between(sizes.min, sizes.max));
    if (!Write(id, model_.version(id), model_.value_size(id))) Forget(id);
  }

  void Erase(uint64_t id) {
    store_->Delete(Key(id).view());  // kNotFound is fine: the key may have been evicted
    model_.Remove(id);
    CountOp();
  }

  bool Write(uint64_t id, uint32_t version, uint32_t size) {
    Key key(id);
    Outcome outcome = store_->Set(key.view(), maker_.Make(id, version, size));
    written_bytes_ += key.size() + size;
    CountOp();
    return outcome == Outcome::kStored;
  }

  // A refused write leaves the key's state unknown; delete it so the model is exact again.
  void Forget(uint64_t id) {
    ++failed_writes_;
    store_->Delete(Key(id).view());
    model_.Remove(id);
  }

  void CountOp() {
    ++ops_;
    if (ops_ % kStatsEveryOps == 0) SampleResident();
    if (ops_ % kRssEveryOps == 0) peak_rss_ = std::max(peak_rss_, ReadRssBytes());
  }

  void SampleResident() {
    peak_resident_ = std::max(peak_resident_, store_->GetStats().resident_bytes);
  }

  void Verify(LsmResult* r) {
    for (uint64_t id = 0; id < model_.id_count(); ++id) {
      if (model_.IsLive(id)) {
        r->tally.Add(CheckValue(*store_, id, model_.version(id), model_.value_size(id), maker_));
      } else if (!IsAbsent(*store_, id)) {
        ++r->resurrected;
      }
    }
  }

  const LsmSpec& spec_;
  Store* store_;
  uint64_t limit_;
  uint64_t target_bytes_;
  uint64_t write_budget_;
  uint64_t rss_base_;
  Rng rng_;
  Model model_;
  ValueMaker maker_;
  uint64_t ops_ = 0;
  uint64_t written_bytes_ = 0;
  uint64_t failed_writes_ = 0;
  uint64_t peak_resident_ = 0;
  uint64_t peak_rss_ = 0;
};

std::string SizesLabel(const LsmSpec& spec) {
  auto range = [](SizeRange r) {
    return r.min == r.max ? std::to_string(r.min) : Format("%u-%u", r.min, r.max);
  };
  return range(spec.before) + " -> " + range(spec.after) + " B";
}

void PrintLsm(const LsmResult& r) {
  const StoreStats& s = r.final_stats;
  double limit = static_cast<double>(r.memory_limit);
  double peak = r.peak_resident / limit;
  Table table({"metric", "value", "target"});
  table.AddRow({"live set at end (model)",
                Count(r.live_keys) + " keys, " + Mib(r.live_bytes) + " (" +
                    Percent(r.live_bytes / limit) + " of limit)",
                ""});
  table.AddRow(
      {"kept: present and correct", Percent(r.kept()), "100 %: " + Verdict(r.kept() >= 1.0)});
  table.AddRow({"missing (evicted or lost)", Count(r.tally.missing), ""});
  table.AddRow({"wrong values (incl. deleted keys readable)", Count(r.wrong()),
                "0: " + Verdict(r.wrong() == 0)});
  table.AddRow(
      {"peak resident / limit (every 1000 ops)", Ratio(peak), "<= 1.0: " + Verdict(peak <= 1.0)});
  table.AddRow({"final resident / limit", Ratio(s.resident_bytes / limit), ""});
  table.AddRow({"bytes written (key+value)",
                Mib(r.written_bytes) + Format(" (%.2fx limit)", r.written_bytes / limit), ""});
  table.AddRow({"relocated / written (cleaner write amp.)",
                Ratio(SafeDiv(s.relocated_bytes, r.written_bytes)), ""});
  table.AddRow({"evictions", Count(s.evictions), ""});
  table.AddRow({"segments compacted / evicted",
                Count(s.segments_compacted) + " / " + Count(s.segments_evicted), ""});
  table.AddRow({"failed writes (not kStored)", Count(r.failed_writes), ""});
  table.AddRow({"writes short of memory: own passes / segments cleaned / waits",
                Count(s.writer_cleaner_passes) + " / " + Count(s.writer_reclaims) + " / " +
                    Count(s.writer_space_waits),
                ""});
  table.AddRow({"store ops, time",
                Count(r.ops) +
                    Format(" ops, %.2f s, %.2f Mops/s", r.seconds, SafeDiv(r.ops, r.seconds * 1e6)),
                ""});
  table.AddRow({"peak process RSS - baseline (incl. model)", Mib(r.peak_rss_delta), ""});
  table.AddRow({"driver model memory", Mib(r.model_bytes), ""});
  table.Print();
}

std::vector<std::string> LsmSummaryRow(const LsmSpec& spec, const LsmResult& r) {
  const StoreStats& s = r.final_stats;
  return {spec.name,
          SizesLabel(spec),
          Format("%.0f %%", 100 * spec.delete_fraction),
          Percent(r.kept()),
          Count(r.wrong()),
          Ratio(static_cast<double>(r.peak_resident) / r.memory_limit),
          Ratio(SafeDiv(s.relocated_bytes, r.written_bytes)),
          Count(s.evictions),
          Format("%.1f", r.seconds)};
}

bool RunLsm(const LsmSpec& spec, Context& context) {
  bool quick = context.config.quick;
  Options options;
  options.memory_limit = (quick ? 64 : 256) * kMiB;
  auto write_budget = static_cast<uint64_t>((quick ? 2.0 : 3.0) * options.memory_limit);
  std::printf(
      "values %s, %.0f %% deleted after phase A; memory_limit %s, live target %.0f %%, "
      "write budget %s\n\n",
      SizesLabel(spec).c_str(), 100 * spec.delete_fraction, Mib(options.memory_limit).c_str(),
      100 * kLsmLiveFraction, Mib(write_budget).c_str());
  TrimHeap();
  uint64_t rss_base = ReadRssBytes();
  auto store = OpenStore(options);
  if (!store) return false;
  LsmRunner runner(spec, store.get(), write_budget, rss_base);
  Stopwatch watch;
  runner.Fill();
  runner.DeleteFraction();
  runner.Churn();
  LsmResult result = runner.Finish(watch.Seconds());
  PrintLsm(result);
  context.lsm_rows.push_back(LsmSummaryRow(spec, result));
  return result.wrong() == 0;
}

void PrintLsmSummary(const Context& context) {
  if (context.lsm_rows.size() < 2) return;
  std::printf("## LSM summary (targets: kept 100 %%, wrong 0, peak resident/limit <= 1.0)\n\n");
  Table table({"workload", "value sizes", "deleted", "kept", "wrong", "peak res/limit",
               "reloc/written", "evictions", "time s"});
  for (const auto& row : context.lsm_rows) table.AddRow(row);
  table.Print();
}

// ---------------------------------------------------------------------------------------------
// release: how fast memory goes back after everything is deleted or flushed.

constexpr double kReleaseFill = 0.8;
constexpr double kReleaseGoal = 0.05;        // resident <= 5 % of the limit ...
constexpr double kReleaseTargetSeconds = 2;  // ... within 2 s
constexpr double kReleasePollSeconds = 5;
constexpr auto kReleasePollInterval = std::chrono::milliseconds(100);

size_t ReleaseValueSize(uint64_t id) { return 90 + Mix(id ^ 0xabcdef) % 21; }  // ~100 B

struct ReleaseResult {
  uint64_t items = 0;
  uint64_t filled_resident = 0;
  double clear_seconds = 0;    // spent in the deletes or FlushAll()
  double settle_seconds = -1;  // after clearing, until resident <= goal; -1: not within poll
  uint64_t resident_at_end = 0;
  int64_t rss_delta = 0;  // over the pre-Open baseline, when the poll ended
  uint64_t readable_after = 0;
};

// Fills ids 0.. until the payload reaches kReleaseFill of the limit; returns the id count.
uint64_t FillForRelease(Store& store) {
  ValueMaker maker;
  uint64_t target = static_cast<uint64_t>(kReleaseFill * store.options().memory_limit);
  uint64_t bytes = 0;
  uint64_t id = 0;
  for (; bytes < target; ++id) {
    Key key(id);
    size_t size = ReleaseValueSize(id);
    (void)store.Set(key.view(), maker.Make(id, 0, size));
    bytes += key.size() + size;
  }
  return id;
}

// Polls until resident memory is at most the goal or the poll time is over; returns the
// seconds it took, or -1.
double WaitForRelease(Store& store) {
  uint64_t goal = static_cast<uint64_t>(kReleaseGoal * store.options().memory_limit);
  Stopwatch watch;
  for (;;) {
    if (store.GetStats().resident_bytes <= goal) return watch.Seconds();
    if (watch.Seconds() >= kReleasePollSeconds) return -1;
    std::this_thread::sleep_for(kReleasePollInterval);
  }
}

ReleaseResult RunReleaseCase(uint64_t memory_limit, bool flush) {
  ReleaseResult r;
  Options options;
  options.memory_limit = memory_limit;
  TrimHeap();
  uint64_t rss_base = ReadRssBytes();
  auto store = OpenStore(options);
  if (!store) return r;
  r.items = FillForRelease(*store);
  r.filled_resident = store->GetStats().resident_bytes;
  Stopwatch clear;
  if (flush) {
    store->FlushAll();
  } else {
    for (uint64_t id = 0; id < r.items; ++id) store->Delete(Key(id).view());
  }
  r.clear_seconds = clear.Seconds();
  r.settle_seconds = WaitForRelease(*store);
  r.resident_at_end = store->GetStats().resident_bytes;
  r.rss_delta = RssDelta(ReadRssBytes(), rss_base);
  for (uint64_t id = 0; id < r.items; ++id) r.readable_after += !IsAbsent(*store, id);
  return r;
}

bool RunRelease(Context& context) {
  uint64_t limit = (context.config.quick ? 64 : 256) * kMiB;
  std::printf(
      "memory_limit %s, values 90-110 B filled to %.0f %% of the limit, then cleared; "
      "poll every 100 ms for up to %.0f s\n\n",
      Mib(limit).c_str(), 100 * kReleaseFill, kReleasePollSeconds);
  Table table({"clear by", "items", "resident full", "clear time", "time to <= 5 %",
               "resident then", "RSS - baseline", "readable after", "target <= 5 % in 2 s"});
  bool ok = true;
  for (bool flush : {false, true}) {
    ReleaseResult r = RunReleaseCase(limit, flush);
    if (r.items == 0) return false;
    bool met = r.settle_seconds >= 0 && r.settle_seconds <= kReleaseTargetSeconds &&
               r.rss_delta <= kReleaseGoal * limit;
    table.AddRow({flush ? "FlushAll()" : "Delete() each key", Count(r.items),
                  Percent(static_cast<double>(r.filled_resident) / limit),
                  Format("%.2f s", r.clear_seconds),
                  r.settle_seconds < 0 ? Format("> %.0f s", kReleasePollSeconds)
                                       : Format("%.2f s", r.settle_seconds),
                  Percent(static_cast<double>(r.resident_at_end) / limit),
                  Mib(r.rss_delta) + " (" + Percent(r.rss_delta / static_cast<double>(limit)) + ")",
                  Count(r.readable_after), Verdict(met)});
    ok = ok && r.readable_after == 0;
  }
  table.Print();
  std::printf(
      "time to <= 5 %% is counted from the end of the deletes / FlushAll(); RSS is the "
      "process's VmRSS at that moment minus VmRSS before Store::Open.\n\n");
  return ok;
}

// ---------------------------------------------------------------------------------------------
// throughput: get/set mixes against a mutex-guarded std::unordered_map.

constexpr size_t kThroughputValueSize = 32;

// The baseline: one std::mutex over a std::unordered_map, as a naive embedded cache would be.
class MutexMapStore {
 public:
  void Set(std::string_view key, std::string_view value) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second.assign(value);
    } else {
      map_.emplace(std::string(key), std::string(value));
    }
  }

  // Calls read(value) under the lock, reading in place; false if the key is absent.
  template <typename Fn>
  bool Read(std::string_view key, Fn&& read) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    read(std::string_view(it->second));
    return true;
  }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  std::mutex mu_;
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> map_;
};

struct WorkerTally {
  uint64_t ops = 0;
  uint64_t reads = 0;
  uint64_t hits = 0;
  uint64_t wrong = 0;
  uint64_t digest = 0;  // sum of value bytes read, so reads cannot be optimized away

  void Merge(const WorkerTally& o) {
    ops += o.ops;
    reads += o.reads;
    hits += o.hits;
    wrong += o.wrong;
    digest += o.digest;
  }

  // Reads every byte of a value and checks that it was made for `id`.
  void Touch(std::string_view value, uint64_t id) {
    uint64_t sum = 0;
    for (unsigned char c : value) sum += c;
    digest += sum;
    hits += 1;
    wrong += ValueId(value) != id;
  }
};

// Adapters with one interface, so one worker loop drives both stores.
class CinchTarget {
 public:
  explicit CinchTarget(Store* store) : store_(store) {}
  void Read(std::string_view key, uint64_t id, WorkerTally* tally) {
    ItemRef ref;  // zero copy: the value is read in place under the item's pin
    if (store_->Get(key, &ref)) tally->Touch(ref.value(), id);
  }
  void Write(std::string_view key, std::string_view value) { (void)store_->Set(key, value); }

 private:
  Store* store_;
};

class MapTarget {
 public:
  explicit MapTarget(MutexMapStore* map) : map_(map) {}
  void Read(std::string_view key, uint64_t id, WorkerTally* tally) {
    map_->Read(key, [&](std::string_view value) { tally->Touch(value, id); });
  }
  void Write(std::string_view key, std::string_view value) { map_->Set(key, value); }

 private:
  MutexMapStore* map_;
};

template <typename Target>
WorkerTally RunWorker(Target target, const std::vector<Key>& keys, double read_fraction,
                      uint64_t seed, const std::atomic<bool>& stop) {
  Rng rng(seed);
  WorkerTally tally;
  char value[kThroughputValueSize];
  uint32_t version = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 64; ++i) {
      uint64_t id = rng.Below(keys.size());
      if (rng.Unit() < read_fraction) {
        ++tally.reads;
        target.Read(keys[id].view(), id, &tally);
      } else {
        FillValue(id, ++version, value, sizeof(value));
        target.Write(keys[id].view(), std::string_view(value, sizeof(value)));
      }
    }
    tally.ops += 64;
  }
  return tally;
}

struct CaseResult {
  double mops = 0;
  double seconds = 0;
  WorkerTally tally;
};

template <typename Target>
CaseResult RunCase(Target target, const std::vector<Key>& keys, double read_fraction, int threads,
                   double seconds, uint64_t seed) {
  std::atomic<bool> stop{false};
  std::vector<WorkerTally> tallies(threads);
  std::latch ready(threads + 1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.arrive_and_wait();
      tallies[t] = RunWorker(target, keys, read_fraction, seed + 131 * t, stop);
    });
  }
  ready.arrive_and_wait();
  Stopwatch watch;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& w : workers) w.join();
  CaseResult result;
  for (const auto& t : tallies) result.tally.Merge(t);
  result.seconds = watch.Seconds();
  result.mops = result.tally.ops / result.seconds / 1e6;
  return result;
}

// The stores under test, preloaded with every key, and what that cost in memory.
struct ThroughputStores {
  std::unique_ptr<Store> cinch;
  MutexMapStore map;
  uint64_t cinch_resident = 0;
  int64_t cinch_rss = 0;
  int64_t map_rss = 0;
};

// cinch and the baseline in alternating slices (which goes first alternates too), so that the
// drift of a shared machine, which moves either store's rate by tens of percent from one second
// to the next, lands on both: the ratio of each pair of slices is what is reported.
struct PairedResult {
  CaseResult cinch, map;
  std::vector<double> ratios;  // per slice pair, sorted
  double MedianRatio() const { return ratios[ratios.size() / 2]; }
};

PairedResult RunPaired(ThroughputStores& stores, const std::vector<Key>& keys, double read_fraction,
                       int threads, double seconds, int slices) {
  PairedResult r;
  for (int i = 0; i < slices; ++i) {
    uint64_t seed = 0x7e57 + 7919 * static_cast<uint64_t>(i);
    CaseResult c, m;
    auto run_cinch = [&] {
      c = RunCase(CinchTarget(stores.cinch.get()), keys, read_fraction, threads, seconds / slices,
                  seed);
    };
    auto run_map = [&] {
      m = RunCase(MapTarget(&stores.map), keys, read_fraction, threads, seconds / slices, seed);
    };
    if (i % 2 == 0) {
      run_cinch();
      run_map();
    } else {
      run_map();
      run_cinch();
    }
    r.ratios.push_back(SafeDiv(c.mops, m.mops));
    for (auto [total, part] : {std::pair{&r.cinch, &c}, std::pair{&r.map, &m}}) {
      total->tally.Merge(part->tally);
      total->seconds += part->seconds;
    }
  }
  for (CaseResult* total : {&r.cinch, &r.map}) {
    total->mops = total->tally.ops / total->seconds / 1e6;
  }
  std::sort(r.ratios.begin(), r.ratios.end());
  return r;
}

bool Preload(const std::vector<Key>& keys, ThroughputStores* stores) {
  Options options;
  options.memory_limit = 256 * kMiB;
  TrimHeap();
  uint64_t rss = ReadRssBytes();
  stores->cinch = OpenStore(options);
  if (!stores->cinch) return false;
  ValueMaker maker;
  for (uint64_t id = 0; id < keys.size(); ++id) {
    (void)stores->cinch->Set(keys[id].view(), maker.Make(id, 0, kThroughputValueSize));
  }
  stores->cinch_resident = stores->cinch->GetStats().resident_bytes;
  stores->cinch_rss = RssDelta(ReadRssBytes(), rss);
  TrimHeap();
  rss = ReadRssBytes();
  for (uint64_t id = 0; id < keys.size(); ++id) {
    stores->map.Set(keys[id].view(), maker.Make(id, 0, kThroughputValueSize));
  }
  stores->map_rss = RssDelta(ReadRssBytes(), rss);
  return true;
}

std::string HitRate(const WorkerTally& t) { return Percent(SafeDiv(t.hits, t.reads)); }

void PrintThroughputMemory(const ThroughputStores& s, uint64_t n) {
  Table table({"store", "memory after preload", "bytes/key", "measured as"});
  table.AddRow({"cinch", Mib(s.cinch_resident), Format("%.1f", SafeDiv(s.cinch_resident, n)),
                "stats.resident_bytes"});
  table.AddRow({"cinch", Mib(s.cinch_rss), Format("%.1f", SafeDiv(s.cinch_rss, n)),
                "VmRSS delta over Open + preload"});
  table.AddRow({"mutex + unordered_map", Mib(s.map_rss), Format("%.1f", SafeDiv(s.map_rss, n)),
                "VmRSS delta over preload"});
  table.Print();
}

bool RunThroughput(Context& context) {
  const Config& config = context.config;
  uint64_t n = config.quick ? 200'000 : 1'000'000;
  double seconds = config.quick ? 1.0 : 3.0;  // per store and case
  const int slices = config.quick ? 10 : 30;
  std::printf(
      "%s keys (8-16 B), values %zu B, uniform random keys, %.0f s per store and case in %d "
      "alternating slices of %.1f s; both stores read values in place (cinch under an ItemRef "
      "pin, the baseline under its mutex) and sum every byte; writes copy a fresh %zu B value "
      "in. cinch/baseline is the median of the per-slice ratios, with their range\n\n",
      Count(n).c_str(), kThroughputValueSize, seconds, slices, seconds / slices,
      kThroughputValueSize);
  std::vector<Key> keys;
  keys.reserve(n);
  for (uint64_t id = 0; id < n; ++id) keys.emplace_back(id);
  ThroughputStores stores;
  if (!Preload(keys, &stores)) return false;
  Table table({"mix get/set", "threads", "cinch Mops/s", "baseline Mops/s", "cinch/baseline",
               "slice ratios", "cinch hits", "baseline hits"});
  uint64_t wrong = 0;
  for (double read_fraction : {0.9, 0.5}) {
    for (int threads : config.threads) {
      PairedResult r = RunPaired(stores, keys, read_fraction, threads, seconds, slices);
      table.AddRow({Format("%.0f/%.0f", 100 * read_fraction, 100 - 100 * read_fraction),
                    std::to_string(threads), Format("%.2f", r.cinch.mops),
                    Format("%.2f", r.map.mops), Format("%.2fx", r.MedianRatio()),
                    Format("%.2f-%.2f", r.ratios.front(), r.ratios.back()), HitRate(r.cinch.tally),
                    HitRate(r.map.tally)});
      wrong += r.cinch.tally.wrong + r.map.tally.wrong;
    }
  }
  table.Print();
  PrintThroughputMemory(stores, n);
  std::printf("cinch resident after all cases: %s; values read with the wrong embedded id: %s\n\n",
              Mib(stores.cinch->GetStats().resident_bytes).c_str(), Count(wrong).c_str());
  return wrong == 0;
}

// ---------------------------------------------------------------------------------------------
// zipf: cache-aside miss ratio against an exact LRU of the same item capacity.

// Zipf ranks in [0, n): P(rank r) is proportional to 1 / (r + 1)^theta. Exact, by
// rejection-inversion (W. Hormann and G. Derflinger, "Rejection-inversion to generate variates
// from monotone discrete distributions", ACM TOMACS 6(3), 1996): invert the integral H of the
// hat x^-theta, round to the nearest integer k, and accept when the draw falls in the top
// h(k)-wide part of k's interval, so that every k is accepted with probability mass h(k).
// Deterministic for a given Rng; O(1) setup.
class ZipfGenerator {
 public:
  ZipfGenerator(uint64_t n, double theta)
      : n_(n),
        theta_(theta),
        u_low_(H(1.5) - 1.0),  // h(1) = 1: rank 1 owns [H(1.5) - 1, H(1.5)]
        u_high_(H(n + 0.5)) {}

  uint64_t Next(Rng& rng) const {
    for (;;) {
      double u = u_high_ + rng.Unit() * (u_low_ - u_high_);
      double x = HInverse(u);
      double k = std::clamp(std::floor(x + 0.5), 1.0, static_cast<double>(n_));
      if (u >= H(k + 0.5) - Density(k)) return static_cast<uint64_t>(k) - 1;
    }
  }

 private:
  double Density(double x) const { return std::exp(-theta_ * std::log(x)); }

  // H(x) = (x^(1-theta) - 1) / (1-theta), written to stay accurate as theta -> 1.
  double H(double x) const {
    double log_x = std::log(x);
    return ExpM1OverT((1.0 - theta_) * log_x) * log_x;
  }

  double HInverse(double u) const {
    double t = std::max(-1.0, u * (1.0 - theta_));
    return std::exp(Log1POverT(t) * u);
  }

  static double ExpM1OverT(double t) {
    return std::abs(t) > 1e-8 ? std::expm1(t) / t : 1.0 + t / 2.0;
  }
  static double Log1POverT(double t) {
    return std::abs(t) > 1e-8 ? std::log1p(t) / t : 1.0 - t / 2.0;
  }

  uint64_t n_;
  double theta_;
  double u_low_;
  double u_high_;
};

// An exact LRU cache of `capacity` items, keeping ids only.
class LruSimulator {
 public:
  explicit LruSimulator(size_t capacity) : capacity_(capacity) { where_.reserve(capacity + 1); }

  // Returns true on a hit; on a miss inserts the id, evicting the least recently used one.
  bool Access(uint64_t id) {
    auto it = where_.find(id);
    if (it != where_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return true;
    }
    order_.push_front(id);
    where_.emplace(id, order_.begin());
    if (order_.size() > capacity_) {
      where_.erase(order_.back());
      order_.pop_back();
    }
    return false;
  }

 private:
  size_t capacity_;
  std::list<uint64_t> order_;  // most recent first
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> where_;
};

constexpr double kZipfTheta = 0.99;
constexpr size_t kZipfValueSize = 100;
constexpr double kZipfCacheFraction = 0.10;
constexpr uint64_t kZipfSeed = 0x21bf;
constexpr uint64_t kZipfSampleEvery = 1000;

struct ZipfSetup {
  uint64_t keys = 0;
  uint64_t warmup = 0;    // requests before counting misses
  uint64_t measured = 0;  // requests whose misses are counted
};

struct CinchCacheRun {
  double miss_ratio = 0;
  double seconds = 0;  // of all requests, warm-up included
  double average_items = 0;
  uint64_t peak_resident = 0;
  uint64_t wrong = 0;
  StoreStats stats;
};

// One cache-aside request: get; on a miss, set. Returns true on a hit.
bool CacheAside(Store& store, uint64_t id, ValueMaker& maker, uint64_t* wrong) {
  Key key(id);
  ItemRef ref;
  std::string_view expected = maker.Make(id, 0, kZipfValueSize);
  if (store.Get(key.view(), &ref)) {
    if (ref.value() != expected) {
      ReportWrong(key.view(), ref.value(), 0, kZipfValueSize);
      ++*wrong;
    }
    return true;
  }
  (void)store.Set(key.view(), expected);
  return false;
}

CinchCacheRun RunCinchZipf(Store& store, const ZipfSetup& setup) {
  ZipfGenerator zipf(setup.keys, kZipfTheta);
  Rng rng(kZipfSeed);
  ValueMaker maker;
  CinchCacheRun run;
  Stopwatch watch;
  uint64_t misses = 0, samples = 0;
  double item_sum = 0;
  for (uint64_t i = 0; i < setup.warmup + setup.measured; ++i) {
    bool hit = CacheAside(store, zipf.Next(rng), maker, &run.wrong);
    if (i < setup.warmup) continue;
    misses += !hit;
    if ((i - setup.warmup) % kZipfSampleEvery == 0) {
      StoreStats s = store.GetStats();
      item_sum += s.items;
      ++samples;
      run.peak_resident = std::max(run.peak_resident, s.resident_bytes);
    }
  }
  run.seconds = watch.Seconds();
  run.miss_ratio = SafeDiv(misses, setup.measured);
  run.average_items = SafeDiv(item_sum, samples);
  run.stats = store.GetStats();
  return run;
}

double RunLruZipf(size_t capacity, const ZipfSetup& setup) {
  ZipfGenerator zipf(setup.keys, kZipfTheta);
  Rng rng(kZipfSeed);  // the same request sequence as the cinch run
  LruSimulator lru(capacity);
  uint64_t misses = 0;
  for (uint64_t i = 0; i < setup.warmup + setup.measured; ++i) {
    bool hit = lru.Access(zipf.Next(rng));
    if (i >= setup.warmup) misses += !hit;
  }
  return SafeDiv(misses, setup.measured);
}

Options ZipfOptions(uint64_t memory_limit, size_t segment_size) {
  Options options;
  options.memory_limit = memory_limit;
  options.segment_size = segment_size;
  return options;
}

constexpr uint64_t kZipfProbeSeed = 0x9b0be;
constexpr double kZipfMinSegments = 8;  // probes below this many segments are not tried

// Average item count of a store of this limit under the Zipf cache-aside traffic (a shorter
// run with another seed): the warm-up, then `keys / 2` requests over which items are averaged.
// Negative if the store cannot be opened with this limit.
double ProbeItems(uint64_t memory_limit, size_t segment_size, const ZipfSetup& setup) {
  std::unique_ptr<Store> store;
  if (!Store::Open(ZipfOptions(memory_limit, segment_size), &store).ok()) return -1;
  ZipfGenerator zipf(setup.keys, kZipfTheta);
  Rng rng(kZipfProbeSeed);
  ValueMaker maker;
  uint64_t requests = setup.warmup + setup.keys / 2, wrong = 0, samples = 0;
  double sum = 0;
  for (uint64_t i = 0; i < requests; ++i) {
    CacheAside(*store, zipf.Next(rng), maker, &wrong);
    if (i >= setup.warmup && i % 256 == 0) {
      sum += store->GetStats().items;
      ++samples;
    }
  }
  return SafeDiv(sum, samples);
}

// One calibration point: a memory_limit and the items a store of that limit held.
struct Probe {
  double limit;
  double items;
};

// The limit at which the line through two probes reaches target_items.
double Interpolate(const Probe& a, const Probe& b, double target_items) {
  if (b.items == a.items) return a.limit * SafeDiv(target_items, std::max(a.items, 1.0));
  return a.limit + (target_items - a.items) * (b.limit - a.limit) / (b.items - a.items);
}

// A memory_limit at which the store holds about target_items: secant steps on probes, kept
// within a factor of two per step (item counts are noisy: they move in steps of a segment),
// until a probe is within 2 % of the target or the steps are used up; the closest probe wins.
uint64_t CalibrateLimit(size_t segment_size, const ZipfSetup& setup, uint64_t target_items) {
  double floor = kZipfMinSegments * segment_size;
  auto probe = [&](double limit) {
    limit = std::max(limit, floor);
    return Probe{limit, ProbeItems(static_cast<uint64_t>(limit), segment_size, setup)};
  };
  auto miss = [&](const Probe& p) {
    return p.items < 0 ? HUGE_VAL : std::abs(p.items - target_items);
  };
  double per_item = (kMinKeySize + kMaxKeySize) / 2.0 + kZipfValueSize + 40;
  Probe a = probe(target_items * per_item + 4.0 * segment_size);
  Probe b = probe(1.5 * a.limit);
  for (int step = 0; step < 4 && std::min(miss(a), miss(b)) > 0.02 * target_items; ++step) {
    Probe& best = miss(a) <= miss(b) ? a : b;
    Probe& worst = miss(a) <= miss(b) ? b : a;
    double next = worst.items < 0 ? 2 * best.limit : Interpolate(a, b, target_items);
    Probe c = probe(std::clamp(next, best.limit / 2, best.limit * 2));
    if (c.items >= 0) worst = c;
  }
  return static_cast<uint64_t>(miss(a) <= miss(b) ? a.limit : b.limit);
}

// Segment sizes to run: a cache of ~10 % of the keys is small, so the default 1 MiB segments
// would make it a handful of segments; also run one scaled so the cache spans >= 32 segments.
std::vector<size_t> ZipfSegmentSizes(uint64_t target_items) {
  double cache_bytes = target_items * (kZipfValueSize + (kMinKeySize + kMaxKeySize) / 2.0);
  size_t scaled = 1 * kMiB;
  while (scaled > 4 * kKiB && cache_bytes / scaled < 32) scaled /= 2;
  std::vector<size_t> sizes = {scaled};
  if (scaled != 1 * kMiB && cache_bytes / (1 * kMiB) >= 8) sizes.push_back(1 * kMiB);
  return sizes;
}

bool RunZipfWithSegments(const ZipfSetup& setup, size_t segment_size, Table* table) {
  auto target_items = static_cast<uint64_t>(kZipfCacheFraction * setup.keys);
  uint64_t limit = CalibrateLimit(segment_size, setup, target_items);
  auto store = OpenStore(ZipfOptions(limit, segment_size));
  if (!store) return false;
  CinchCacheRun cinch = RunCinchZipf(*store, setup);
  auto capacity = static_cast<size_t>(std::llround(cinch.average_items));
  double lru = RunLruZipf(capacity, setup);
  std::string items = Count(capacity) + " (" + Percent(cinch.average_items / setup.keys) + ")";
  table->AddRow({"cinch", Format("%zu KiB", segment_size / kKiB), Mib(limit), items,
                 Percent(cinch.miss_ratio), Count(cinch.stats.evictions),
                 Ratio(static_cast<double>(cinch.peak_resident) / limit),
                 Format("%.2f", SafeDiv(setup.warmup + setup.measured, cinch.seconds * 1e6)),
                 Verdict(cinch.miss_ratio <= lru)});
  table->AddRow({"exact LRU", "-", "-", items, Percent(lru), "-", "-", "-", "-"});
  return cinch.wrong == 0;
}

bool RunZipf(Context& context) {
  ZipfSetup setup;
  setup.keys = context.config.quick ? 200'000 : 1'000'000;
  setup.warmup = setup.keys;
  setup.measured = 5 * setup.keys;
  std::printf(
      "Zipf(%.2f) over %s keys, values %zu B, cache-aside (get; on miss set); the "
      "limit is calibrated so cinch holds ~%.0f %% of the keys; LRU gets cinch's "
      "measured average item count; %s warm-up + %s measured requests\n\n",
      kZipfTheta, Count(setup.keys).c_str(), kZipfValueSize, 100 * kZipfCacheFraction,
      Count(setup.warmup).c_str(), Count(setup.measured).c_str());
  Table table({"cache", "segment", "memory_limit", "avg items (of keys)", "miss ratio", "evictions",
               "peak res/limit", "Mreq/s", "cinch <= LRU"});
  bool ok = true;
  for (size_t segment_size : ZipfSegmentSizes(kZipfCacheFraction * setup.keys)) {
    ok = RunZipfWithSegments(setup, segment_size, &table) && ok;
  }
  table.Print();
  return ok;
}

// ---------------------------------------------------------------------------------------------
// restart: Store::SaveTo and Store::OpenFrom of small items (docs/restart-format.md).

constexpr size_t kRestartValueSize = 32;

// CPU time of the whole process (every thread), in seconds.
double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

std::string MedianSpread(std::vector<double> v, const char* format) {
  std::sort(v.begin(), v.end());
  return Format(format, v[v.size() / 2]) + " (" + Format(format, v.front()) + "-" +
         Format(format, v.back()) + ")";
}

// Fills a store with n items of 32-byte values, then saves it and opens a new store from the
// file, `runs` times (each load consumes the file; the next save is of the loaded store), and
// checks every item after each load. The load is what a restart of cinchd waits for.
bool RunRestart(Context& context) {
  const Config& config = context.config;
  const uint64_t n = config.restart_items != 0 ? config.restart_items
                     : config.quick            ? 200'000
                                               : 1'000'000;
  Options options;
  // The items take ~55 B each with their index slot: room for all of them, nothing evicted.
  options.memory_limit = std::max<uint64_t>(256 * kMiB, (n * 110 + kMiB - 1) / kMiB * kMiB);
  const std::string path = config.restart_dir + "/cinch_bench_restart." + std::to_string(getpid());
  auto value_size = [](uint64_t) { return kRestartValueSize; };
  std::printf("%s items, keys 8-16 B, values %zu B, memory_limit %s, file %s, %d runs\n\n",
              Count(n).c_str(), kRestartValueSize, Mib(options.memory_limit).c_str(), path.c_str(),
              config.restart_runs);
  TrimHeap();
  const uint64_t rss_base = ReadRssBytes();
  auto store = OpenStore(options);
  if (!store) return false;
  if (uint64_t failed = LoadSequential(*store, n, value_size); failed != 0) {
    std::printf("%s writes not stored\n", Count(failed).c_str());
    return false;
  }
  std::vector<double> save_s, load_s, load_cpu, file_mib, rss_mib;
  VerifyTally last;
  bool ok = true;
  for (int run = 0; run < config.restart_runs && ok; ++run) {
    Stopwatch save;
    Status status = store->SaveTo(path);
    save_s.push_back(save.Seconds());
    store.reset();
    struct stat st {};
    if (!status.ok() || stat(path.c_str(), &st) != 0) {
      std::printf("SaveTo failed: %s\n", status.ToString().c_str());
      ok = false;
      break;
    }
    file_mib.push_back(static_cast<double>(st.st_size) / kMiB);
    TrimHeap();
    RestoreReport report;
    const double cpu = ProcessCpuSeconds();
    Stopwatch load;
    status = Store::OpenFrom(options, path, SnapshotOptions{}, &store, &report);
    load_s.push_back(load.Seconds());
    load_cpu.push_back(ProcessCpuSeconds() - cpu);
    rss_mib.push_back(static_cast<double>(RssDelta(ReadRssBytes(), rss_base)) / kMiB);
    if (!status.ok() || report.result != RestoreReport::Result::kLoaded) {
      std::printf("OpenFrom: %s; %s\n", status.ToString().c_str(), report.message.c_str());
      ok = false;
      break;
    }
    last = VerifySequential(*store, n, value_size);
    ok = last.wrong == 0 && last.missing == 0;
  }
  unlink(path.c_str());
  if (load_s.empty()) return false;
  Table table({"load (s)", "load CPU (s)", "save (s)", "file", "RSS after load", "target"});
  std::vector<double> per_1e7;
  for (double s : load_s) per_1e7.push_back(s * 1e7 / static_cast<double>(n));
  std::sort(per_1e7.begin(), per_1e7.end());
  table.AddRow({MedianSpread(load_s, "%.3f"), MedianSpread(load_cpu, "%.3f"),
                MedianSpread(save_s, "%.3f"), Format("%.1f MiB", file_mib.back()),
                Format("%.1f MiB", rss_mib.back()),
                Format("<= 1 s per 10^7 items: %.2f s, %s", per_1e7[per_1e7.size() / 2],
                       Verdict(per_1e7[per_1e7.size() / 2] <= 1.0).c_str())});
  table.Print();
  std::printf("verify after the last load: %s correct, %s missing, %s wrong\n\n",
              Count(last.correct).c_str(), Count(last.missing).c_str(), Count(last.wrong).c_str());
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Registry, flags and main.

struct Workload {
  std::string name;
  std::string summary;
  std::function<bool(Context&)> run;  // false on a verification failure
};

// Every workload, in the order of a default run.
const std::vector<Workload>& Registry() {
  static const std::vector<Workload>* registry = [] {
    auto* r = new std::vector<Workload>;
    r->push_back({"overhead", "memory overhead per object, 2M small objects", RunOverhead});
    r->push_back({"overhead-tenants", "the same over 1,000 tenant keyspaces", RunOverheadTenants});
    r->push_back({"quiet-tenant", "get latency of a quiet keyspace beside one at its quota",
                  RunQuietTenant});
    for (const LsmSpec& spec : kLsmSpecs) {
      r->push_back({spec.name,
                    Format("RAMCloud LSM workload %s, %.0f %% deleted", SizesLabel(spec).c_str(),
                           100 * spec.delete_fraction),
                    [&spec](Context& c) { return RunLsm(spec, c); }});
    }
    r->push_back({"release", "memory given back after delete-all / FlushAll", RunRelease});
    r->push_back({"throughput", "get/set throughput vs mutex + unordered_map", RunThroughput});
    r->push_back({"zipf", "Zipf(0.99) cache-aside miss ratio vs exact LRU", RunZipf});
    r->push_back({"restart", "save to a memory file and load it back (warm restart)", RunRestart});
    return r;
  }();
  return *registry;
}

const Workload* FindWorkload(std::string_view name) {
  for (const Workload& w : Registry()) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

std::vector<std::string> SplitList(std::string_view list) {
  std::vector<std::string> items;
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    if (!item.empty()) items.emplace_back(item);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return items;
}

void PrintUsage() {
  std::fprintf(stderr,
               "usage: cinch_bench [--benchmarks=name,...] [--quick] [--threads=1,2]\n"
               "                   [--restart-items=N] [--restart-dir=PATH] [--restart-runs=N]\n"
               "                   [--segment-size=BYTES] (of overhead and overhead-tenants)\n"
               "workloads (default: all, in this order):\n");
  for (const Workload& w : Registry()) {
    std::fprintf(stderr, "  %-11s %s\n", w.name.c_str(), w.summary.c_str());
  }
}

bool ParseThreads(std::string_view list, std::vector<int>* threads) {
  threads->clear();
  for (const std::string& item : SplitList(list)) {
    int n = std::atoi(item.c_str());
    if (n < 1 || n > 256) return false;
    threads->push_back(n);
  }
  return !threads->empty();
}

bool ParseFlags(int argc, char** argv, Config* config) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--quick") {
      config->quick = true;
    } else if (arg.starts_with("--benchmarks=")) {
      config->benchmarks = SplitList(arg.substr(13));
    } else if (arg.starts_with("--threads=")) {
      if (!ParseThreads(arg.substr(10), &config->threads)) return false;
    } else if (arg.starts_with("--restart-items=")) {
      config->restart_items = std::strtoull(arg.data() + 16, nullptr, 10);
      if (config->restart_items == 0) return false;
    } else if (arg.starts_with("--restart-dir=")) {
      config->restart_dir = arg.substr(14);
    } else if (arg.starts_with("--segment-size=")) {
      config->segment_size = std::strtoull(arg.data() + 15, nullptr, 10);
      if (!std::has_single_bit(config->segment_size)) return false;
    } else if (arg.starts_with("--restart-runs=")) {
      config->restart_runs = std::atoi(arg.data() + 15);
      if (config->restart_runs < 1 || config->restart_runs > 100) return false;
    } else {
      return false;
    }
  }
  if (config->benchmarks.empty()) {
    for (const Workload& w : Registry()) config->benchmarks.push_back(w.name);
  }
  for (const std::string& name : config->benchmarks) {
    if (FindWorkload(name) == nullptr) {
      std::fprintf(stderr, "unknown benchmark: %s\n", name.c_str());
      return false;
    }
  }
  return true;
}

int Main(int argc, char** argv) {
  Context context;
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    PrintUsage();
    return 0;
  }
  if (!ParseFlags(argc, argv, &context.config)) {
    PrintUsage();
    return 2;
  }
  std::printf("# cinch_bench (%s run, %u hardware threads, load average %s at start)\n\n",
              context.config.quick ? "quick" : "full", std::thread::hardware_concurrency(),
              LoadAverage().c_str());
  Stopwatch total;
  std::vector<std::string> failed;
  for (const std::string& name : context.config.benchmarks) {
    const Workload* w = FindWorkload(name);
    std::printf("## %s: %s\n\n", w->name.c_str(), w->summary.c_str());
    std::fflush(stdout);
    Stopwatch watch;
    if (!w->run(context)) failed.push_back(name);
    std::printf("(%s: %.1f s)\n\n", name.c_str(), watch.Seconds());
    std::fflush(stdout);
  }
  PrintLsmSummary(context);
  std::printf("total %.1f s; verification: %s\n", total.Seconds(),
              failed.empty() ? "all values correct" : "FAILED");
  for (const std::string& name : failed) std::printf("  FAILED: %s\n", name.c_str());
  return failed.empty() ? 0 : 1;
}

}  // namespace
}  // namespace cinch::bench

int main(int argc, char** argv) { return cinch::bench::Main(argc, argv); }
