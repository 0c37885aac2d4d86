// stream_rss: the peak RSS of storing one large value, by a streaming write (Store::BeginWrite,
// filled 64 KiB at a time as a network body would arrive) or by Store::Write of a std::string
// holding the whole value. Run each mode in its own process (peak RSS is per process):
//
//   stream_rss stream [MiB]     # default 256
//   stream_rss write [MiB]
//
// Prints the RSS before the write, the peak during it, and the peak less the value's size. The
// value is read back and compared, so a run that stored the wrong bytes exits 1.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "cinch/options.h"
#include "cinch/store.h"

namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kChunk = 64 * 1024;

// Current resident set, from /proc/self/status (VmRSS, KiB).
size_t RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

size_t PeakKiB() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<size_t>(u.ru_maxrss);
}

// Byte i of the value: cheap to produce chunk by chunk and to check.
char ByteAt(size_t i) { return static_cast<char>((i * 2654435761u) >> 13); }

void FillChunk(size_t at, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) out[i] = ByteAt(at + i);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "stream") != 0 && std::strcmp(argv[1], "write") != 0)) {
    std::fprintf(stderr, "usage: stream_rss stream|write [MiB]\n");
    return 2;
  }
  const bool stream = std::strcmp(argv[1], "stream") == 0;
  const size_t size = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 256) * kMiB;
  cinch::Options o;
  o.memory_limit = 2 * size + 64 * kMiB;
  o.max_item_size = size + kMiB;
  o.background_cleaner = false;
  std::unique_ptr<cinch::Store> store;
  cinch::Status s = cinch::Store::Open(o, &store);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    return 1;
  }
  const cinch::Keyspace ks{1};
  const size_t before = RssKiB();
  cinch::Outcome outcome;
  if (stream) {
    cinch::ValueWriter w;
    outcome = store->BeginWrite(ks, cinch::SetMode::kSet, "blob", size, 0, 0, &w);
    if (outcome == cinch::Outcome::kStored) {
      char chunk[kChunk];  // what a socket read would hand over
      for (size_t at = 0; at < size; at += kChunk) {
        size_t n = std::min(kChunk, size - at);
        FillChunk(at, n, chunk);
        std::memcpy(w.data() + at, chunk, n);
      }
      outcome = w.Commit();
    }
  } else {
    std::string value(size, '\0');
    FillChunk(0, size, value.data());
    outcome = store->Write(ks, cinch::SetMode::kSet, "blob", value, 0, 0);
  }
  const size_t peak = PeakKiB();
  cinch::ItemRef ref;
  bool ok = outcome == cinch::Outcome::kStored && store->Get(ks, "blob", &ref) &&
            ref.value().size() == size;
  for (size_t i = 0; ok && i < size; i += 4093) ok = ref.value()[i] == ByteAt(i);
  std::printf(
      "%s of %zu MiB: %s, RSS before %.1f MiB, peak %.1f MiB, peak - before %.1f MiB "
      "(%.2fx the value)\n",
      stream ? "streaming write" : "Write of a std::string", size / kMiB,
      std::string(cinch::OutcomeName(outcome)).c_str(), before / 1024.0, peak / 1024.0,
      (peak - before) / 1024.0, (peak - before) * 1024.0 / static_cast<double>(size));
  return ok ? 0 : 1;
}
